//! The indicator set against its definition: a network matches exactly the
//! addresses it contains (IPv4 and IPv6, every prefix length), a domain
//! matches itself and its subdomains only, duplicates merge, and defanging
//! is undone by refanging.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use riposte_intel::{Indicator, IndicatorKind, IndicatorSet, Tlp, defang, normalize, refang};

fn set_of(values: &[(IndicatorKind, &str)]) -> IndicatorSet {
    let mut set = IndicatorSet::new();
    for (kind, value) in values {
        set.insert(Indicator::new(*kind, normalize(*kind, value).unwrap(), "test"));
    }
    set
}

fn matches_ip(set: &IndicatorSet, address: &str) -> Vec<String> {
    let mut found = Vec::new();
    set.match_ip(address.parse().unwrap(), &mut found);
    let mut values: Vec<String> = found.iter().map(|&id| set.get(id).value.clone()).collect();
    values.sort();
    values
}

#[test]
fn addresses_and_the_networks_holding_them() {
    let set = set_of(&[
        (IndicatorKind::Ip, "198.51.100.7"),
        (IndicatorKind::Cidr, "198.51.100.0/24"),
        (IndicatorKind::Cidr, "198.0.0.0/8"),
        (IndicatorKind::Cidr, "2001:db8::/32"),
        (IndicatorKind::Ip, "2001:db8::1"),
    ]);
    assert_eq!(matches_ip(&set, "198.51.100.7"), ["198.0.0.0/8", "198.51.100.0/24", "198.51.100.7"]);
    assert_eq!(matches_ip(&set, "198.51.101.7"), ["198.0.0.0/8"]);
    assert!(matches_ip(&set, "199.51.100.7").is_empty());
    assert_eq!(matches_ip(&set, "2001:db8::1"), ["2001:db8::/32", "2001:db8::1"]);
    assert!(matches_ip(&set, "2001:db9::1").is_empty());
}

#[test]
fn domains_match_themselves_and_their_subdomains_only() {
    let set = set_of(&[(IndicatorKind::Domain, "evil.example"), (IndicatorKind::Domain, "cdn.other.example")]);
    let names = |name: &str| {
        let mut found = Vec::new();
        set.match_domain(name, &mut found);
        found.iter().map(|&id| set.get(id).value.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names("evil.example"), ["evil.example"]);
    assert_eq!(names("a.b.evil.example"), ["evil.example"]);
    assert!(names("notevil.example").is_empty(), "a label is matched whole");
    assert!(names("other.example").is_empty(), "a parent of an indicator is not one");
    assert_eq!(names("x.cdn.other.example"), ["cdn.other.example"]);
}

#[test]
fn duplicates_across_feeds_merge_with_every_source_kept() {
    let mut set = IndicatorSet::new();
    let mut first = Indicator::new(IndicatorKind::Domain, "evil.example", "feed-a");
    first.confidence = 40;
    first.first_seen = Some(2_000);
    first.tags = vec!["phishing".into()];
    let mut second = Indicator::new(IndicatorKind::Domain, "evil.example", "feed-b");
    second.confidence = 90;
    second.first_seen = Some(1_000);
    second.last_seen = Some(5_000);
    second.tlp = Tlp::Amber;
    second.tags = vec!["phishing".into(), "c2".into()];
    let a = set.insert(first);
    let b = set.insert(second);
    assert_eq!(a, b);
    assert_eq!(set.len(), 1);
    let merged = set.get(a);
    assert_eq!(merged.sources, ["feed-a", "feed-b"]);
    assert_eq!((merged.confidence, merged.first_seen, merged.last_seen), (90, Some(1_000), Some(5_000)));
    assert_eq!(merged.tlp, Tlp::Amber);
    assert_eq!(merged.tags, ["phishing", "c2"]);
    assert_eq!(set.exact_id(IndicatorKind::Domain, "evil.example"), Some(a));
}

proptest! {
    #[test]
    fn an_ipv4_network_matches_exactly_what_it_contains(network in any::<u32>(), length in 0u8..=32, address in any::<u32>(), inside in any::<bool>()) {
        let net = Ipv4Net::new(Ipv4Addr::from(network), length).unwrap().trunc();
        // Half the time, an address inside the network.
        let address = if inside && length > 0 {
            let host_bits = 32 - u32::from(length);
            let host = if host_bits == 32 { address } else { address & ((1u32 << host_bits) - 1) };
            u32::from(net.network()) | host
        } else {
            address
        };
        let mut set = IndicatorSet::new();
        set.insert(Indicator::new(IndicatorKind::Cidr, net.to_string(), "p"));
        let mut found = Vec::new();
        set.match_ip(IpAddr::V4(Ipv4Addr::from(address)), &mut found);
        let contained = IpNet::V4(net).contains(&IpAddr::V4(Ipv4Addr::from(address)));
        prop_assert_eq!(!found.is_empty(), contained);
        // The retro-hunt's stored keys: a network is a range of them.
        let (low, high) = normalize::network_range(IpNet::V4(net));
        let key = normalize::address_key(IpAddr::V4(Ipv4Addr::from(address)));
        prop_assert_eq!(low <= key && key <= high, contained);
    }

    #[test]
    fn an_ipv6_network_matches_exactly_what_it_contains(network in any::<u128>(), length in 0u8..=128, address in any::<u128>(), inside in any::<bool>()) {
        let net = Ipv6Net::new(Ipv6Addr::from(network), length).unwrap().trunc();
        let address = if inside && length > 0 {
            let host_bits = 128 - u32::from(length);
            let host = if host_bits == 128 { address } else { address & ((1u128 << host_bits) - 1) };
            u128::from(net.network()) | host
        } else {
            address
        };
        let mut set = IndicatorSet::new();
        set.insert(Indicator::new(IndicatorKind::Cidr, net.to_string(), "p"));
        let mut found = Vec::new();
        set.match_ip(IpAddr::V6(Ipv6Addr::from(address)), &mut found);
        let contained = IpNet::V6(net).contains(&IpAddr::V6(Ipv6Addr::from(address)));
        prop_assert_eq!(!found.is_empty(), contained);
        let (low, high) = normalize::network_range(IpNet::V6(net));
        let key = normalize::address_key(IpAddr::V6(Ipv6Addr::from(address)));
        prop_assert_eq!(low <= key && key <= high, contained);
    }

    #[test]
    fn refanging_undoes_defanging(
        scheme in prop::sample::select(vec!["http", "https", "ftp"]),
        labels in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 2..5),
        path in "(/[a-zA-Z0-9_.-]{0,12}){0,3}",
        user in "[a-z][a-z0-9._]{0,10}",
    ) {
        let host = labels.join(".");
        let url = format!("{scheme}://{host}{path}");
        prop_assert_eq!(refang(&defang(&url)), url.clone());
        prop_assert!(!defang(&url).contains(&host) || !host.contains('.'), "the host cannot be followed");
        let email = format!("{user}@{host}");
        prop_assert_eq!(refang(&defang(&email)), email);
        prop_assert_eq!(refang(&defang(&host)), host);
    }

    #[test]
    fn refang_never_panics_and_keeps_plain_text(text in "\\PC{0,60}") {
        let once = refang(&text);
        // Nothing defanged in plain letters, digits and spaces.
        if text.chars().all(|ch| ch.is_alphanumeric() || ch == ' ') && !text.to_ascii_lowercase().contains("hxxp") && !text.to_ascii_lowercase().contains("fxp") {
            prop_assert_eq!(once, text);
        }
    }
}
