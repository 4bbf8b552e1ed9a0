//! One spelling per indicator value, so that feeds and events compare equal:
//! addresses in their canonical form, networks truncated to their prefix,
//! domains and hashes lower-cased, URLs with scheme and host lower-cased and
//! default ports dropped; and recognising what kind a bare value is.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::indicator::IndicatorKind;

/// Why a value cannot be an indicator of the kind given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}: {reason}")]
pub struct InvalidValue {
    pub kind: IndicatorKind,
    pub value: String,
    pub reason: &'static str,
}

/// The normalised form of `value` as an indicator of `kind`.
pub fn normalize(kind: IndicatorKind, value: &str) -> Result<String, InvalidValue> {
    let value = value.trim();
    let invalid = |reason| InvalidValue { kind, value: value.to_owned(), reason };
    if value.is_empty() {
        return Err(invalid("empty"));
    }
    match kind {
        // `::ffff:a.b.c.d` is the IPv4 address it carries (Windows logs write it so).
        IndicatorKind::Ip => {
            value.parse::<IpAddr>().map(|ip| ip.to_canonical().to_string()).map_err(|_| invalid("not an address"))
        }
        IndicatorKind::Cidr => match value.parse::<IpNet>() {
            Ok(net) => Ok(canonical_network(net).to_string()),
            Err(_) => {
                value.parse::<IpAddr>().map(|ip| IpNet::from(ip).to_string()).map_err(|_| invalid("not a network"))
            }
        },
        IndicatorKind::Domain => domain(value).ok_or_else(|| invalid("not a domain name")),
        IndicatorKind::Url => url(value).ok_or_else(|| invalid("not a URL with a scheme and a host")),
        IndicatorKind::Email => {
            let (local, host) = value.rsplit_once('@').ok_or_else(|| invalid("no @"))?;
            let host = domain(host).ok_or_else(|| invalid("not a domain after @"))?;
            if local.is_empty() {
                return Err(invalid("nothing before @"));
            }
            Ok(format!("{}@{host}", local.to_lowercase()))
        }
        IndicatorKind::Md5 | IndicatorKind::Ja3 => hex(value, 32).ok_or_else(|| invalid("not 32 hex digits")),
        IndicatorKind::Sha1 => hex(value, 40).ok_or_else(|| invalid("not 40 hex digits")),
        IndicatorKind::Sha256 => hex(value, 64).ok_or_else(|| invalid("not 64 hex digits")),
        IndicatorKind::Ja4 | IndicatorKind::RegistryKey | IndicatorKind::FileName => Ok(value.to_lowercase()),
        IndicatorKind::UserAgent => Ok(value.to_owned()),
    }
}

/// A network truncated to its prefix; one of IPv4-mapped IPv6 addresses
/// (`::ffff:45.77.12.0/120`) as the IPv4 network it is, as addresses are.
fn canonical_network(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Ok(mapped) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped.trunc());
    }
    net.trunc()
}

fn hex(value: &str, digits: usize) -> Option<String> {
    (value.len() == digits && value.bytes().all(|byte| byte.is_ascii_hexdigit())).then(|| value.to_ascii_lowercase())
}

/// A domain name lower-cased, without a trailing dot or a leading `*.`;
/// `None` unless it has at least two labels of letters, digits, `-` and `_`
/// and a top-level label that is not all digits.
pub fn domain(value: &str) -> Option<String> {
    let value = value.trim().trim_end_matches('.');
    let value = value.strip_prefix("*.").unwrap_or(value);
    if value.len() > 253 || !value.contains('.') {
        return None;
    }
    let mut labels = value.split('.');
    let valid = labels.all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte >= 0x80)
    });
    let top = value.rsplit('.').next().unwrap_or("");
    if !valid || top.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(value.to_lowercase())
}

/// A URL with its scheme and host lower-cased, the default port and the
/// fragment dropped, and `/` as the path when there is none.
pub fn url(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once("://")?;
    if scheme.is_empty() || !scheme.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte)) {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split('#').next().unwrap_or(rest);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (format!("[{}]", host.to_ascii_lowercase()), after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => {
                (host.to_ascii_lowercase(), Some(port))
            }
            _ => (host_port.to_ascii_lowercase(), None),
        },
    };
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return None;
    }
    let default =
        matches!((scheme.as_str(), port), ("http", Some("80")) | ("https", Some("443")) | ("ftp", Some("21")));
    let port = match port {
        Some(port) if !default && !port.is_empty() => format!(":{port}"),
        _ => String::new(),
    };
    let path = if path.is_empty() { "/" } else { path };
    Some(format!("{scheme}://{host}{port}{path}"))
}

/// An address as a key whose text order is its numeric order (`ip:` and 32
/// hex digits, IPv4 as IPv4-mapped IPv6), so that a stored address can be
/// found by a network's range (see [`network_range`]).
pub fn address_key(address: IpAddr) -> String {
    format!("ip:{:032x}", address_number(address))
}

/// An address as one number, IPv4 as IPv4-mapped IPv6 (so an address and
/// its mapped form are one).
pub fn address_number(address: IpAddr) -> u128 {
    match address.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The first and last [`address_key`] of a network.
pub fn network_range(network: IpNet) -> (String, String) {
    let network = network.trunc();
    let (first, last) = (network.network(), network.broadcast());
    (address_key(first), address_key(last))
}

/// Whether an address belongs to no one on the internet: private, local,
/// shared, reserved or for documentation, IPv4 carried in IPv6 included. The
/// platform's HTTP client does not reach them by default, and reports'
/// mentions of them are not indicators.
pub fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a, b) == (198, 18)
                || (a, b) == (198, 19)
                || (a, b, c) == (192, 0, 0)
                || (a, b, c) == (192, 0, 2)
                || (a, b, c) == (198, 51, 100)
                || (a, b, c) == (203, 0, 113)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            // IPv4 carried in IPv6: NAT64 (64:ff9b::/96), 6to4 (2002::/16), compatible (::a.b.c.d).
            let embedded = match segments {
                [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some((high, low)),
                [0x2002, high, low, ..] => Some((high, low)),
                [0, 0, 0, 0, 0, 0, high, low] if high != 0 => Some((high, low)),
                _ => None,
            };
            if let Some((high, low)) = embedded {
                let v4 = std::net::Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8);
                if is_internal(IpAddr::V4(v4)) {
                    return true;
                }
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0], segments[1]) == (0x2001, 0x0db8)
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// The host of a normalised URL (see [`url`]): a name, an IPv4 address, or
/// an IPv6 address without its brackets.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    }
}

/// What kind of indicator a bare value is, and its normalised form: an
/// address, a network, a URL, an e-mail address, a hash (by its length) or a
/// domain. Other text is not recognised.
pub fn recognise(value: &str) -> Option<(IndicatorKind, String)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some((IndicatorKind::Ip, ip.to_canonical().to_string()));
    }
    if value.contains('/')
        && !value.contains("://")
        && let Ok(net) = value.parse::<IpNet>()
    {
        return Some((IndicatorKind::Cidr, net.trunc().to_string()));
    }
    if value.contains("://") {
        return url(value).map(|url| (IndicatorKind::Url, url));
    }
    if value.contains('@') {
        return normalize(IndicatorKind::Email, value).ok().map(|email| (IndicatorKind::Email, email));
    }
    if value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        let kind = match value.len() {
            32 => IndicatorKind::Md5,
            40 => IndicatorKind::Sha1,
            64 => IndicatorKind::Sha256,
            _ => return None,
        };
        return Some((kind, value.to_ascii_lowercase()));
    }
    domain(value).map(|domain| (IndicatorKind::Domain, domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(normalize(IndicatorKind::Ip, " 2001:DB8:0:0::1 ").unwrap(), "2001:db8::1");
        assert_eq!(normalize(IndicatorKind::Cidr, "::ffff:45.77.12.9/120").unwrap(), "45.77.12.0/24");
        assert_eq!(normalize(IndicatorKind::Cidr, "::ffff:0:0/64").unwrap(), "::/64", "wider than the mapped range");
        assert_eq!(normalize(IndicatorKind::Ip, "::ffff:203.0.113.5").unwrap(), "203.0.113.5");
        assert_eq!(url_host("http://[2001:db8::1]:8080/x"), "2001:db8::1");
        assert_eq!(url_host("https://evil.example:8443/x"), "evil.example");
        assert_eq!(url_host("http://45.77.12.9/x"), "45.77.12.9");
        assert_eq!(normalize(IndicatorKind::Cidr, "10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(normalize(IndicatorKind::Cidr, "10.1.2.3").unwrap(), "10.1.2.3/32");
        assert_eq!(normalize(IndicatorKind::Domain, "*.Evil.Example.").unwrap(), "evil.example");
        assert_eq!(
            normalize(IndicatorKind::Url, "HTTP://User@Evil.Example:80/Path?q=A#frag").unwrap(),
            "http://evil.example/Path?q=A"
        );
        assert_eq!(normalize(IndicatorKind::Url, "https://evil.example:8443").unwrap(), "https://evil.example:8443/");
        assert_eq!(
            normalize(IndicatorKind::Url, "http://[2001:DB8::1]:8080/x").unwrap(),
            "http://[2001:db8::1]:8080/x"
        );
        assert_eq!(normalize(IndicatorKind::Email, "Bob@Evil.Example").unwrap(), "bob@evil.example");
        assert_eq!(normalize(IndicatorKind::Sha256, &"AB".repeat(32)).unwrap(), "ab".repeat(32));
        for (kind, bad) in [
            (IndicatorKind::Ip, "300.1.1.1"),
            (IndicatorKind::Domain, "localhost"),
            (IndicatorKind::Domain, "1.2.3.4"),
            (IndicatorKind::Url, "evil.example/x"),
            (IndicatorKind::Md5, "xyz"),
            (IndicatorKind::Email, "@evil.example"),
        ] {
            assert!(normalize(kind, bad).is_err(), "{kind} {bad}");
        }
    }

    #[test]
    fn bare_values_are_recognised() {
        assert_eq!(recognise("198.51.100.7"), Some((IndicatorKind::Ip, "198.51.100.7".into())));
        assert_eq!(recognise("198.51.100.0/24"), Some((IndicatorKind::Cidr, "198.51.100.0/24".into())));
        assert_eq!(recognise("Evil.Example"), Some((IndicatorKind::Domain, "evil.example".into())));
        assert_eq!(recognise("d41d8cd98f00b204e9800998ecf8427e").unwrap().0, IndicatorKind::Md5);
        assert_eq!(
            recognise("hxxp://x").map(|(kind, _)| kind),
            Some(IndicatorKind::Url),
            "refang first to read it as http"
        );
        assert_eq!(recognise("just words"), None);
        assert_eq!(recognise("cafe"), None, "hex of no hash length");
    }
}
