//! Indicators in unstructured reports: addresses, networks, domains, URLs,
//! e-mail addresses, hashes, CVE ids and ATT&CK technique ids, defanged forms
//! included; known-benign values (private and documentation ranges, the
//! domains of `data/benign-domains.txt`) left out.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::OnceLock;

use regex::Regex;

use crate::defang::refang;
use crate::indicator::IndicatorKind;
use crate::normalize::{domain, is_internal, normalize};

const TLDS: &str = include_str!("../data/tlds.txt");
const BENIGN_DOMAINS: &str = include_str!("../data/benign-domains.txt");

/// What a report names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Normalised indicators, in order of first appearance, each once.
    pub indicators: Vec<(IndicatorKind, String)>,
    /// `CVE-2024-3400`...
    pub cves: Vec<String>,
    /// `T1059.001`...
    pub techniques: Vec<String>,
    /// Values left out as benign, each once.
    pub benign: Vec<String>,
}

fn words(text: &'static str) -> BTreeSet<&'static str> {
    text.lines().filter(|line| !line.starts_with('#')).flat_map(str::split_whitespace).collect()
}

fn tlds() -> &'static BTreeSet<&'static str> {
    static TLD_SET: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    TLD_SET.get_or_init(|| words(TLDS))
}

fn benign_domains() -> &'static BTreeSet<&'static str> {
    static BENIGN: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    BENIGN.get_or_init(|| words(BENIGN_DOMAINS))
}

struct Patterns {
    url: Regex,
    email: Regex,
    ipv4: Regex,
    ipv6: Regex,
    hash: Regex,
    domain: Regex,
    cve: Regex,
    technique: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let regex = |pattern: &str| Regex::new(pattern).expect("a valid built-in pattern");
        Patterns {
            url: regex(r#"(?i)\b(?:https?|ftp|ftps)://[^\s<>"'`\)\]\}]+"#),
            email: regex(r"(?i)\b[a-z0-9._%+-]+@(?:[a-z0-9-]+\.)+[a-z]{2,63}\b"),
            ipv4: regex(r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:/(?:3[0-2]|[12]?[0-9]))?\b"),
            // Candidates only: each is parsed, so times (`10:30:00`) and MAC
            // addresses fall away.
            ipv6: regex(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:/[0-9]{1,3})?"),
            hash: regex(r"(?i)\b(?:[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{32})\b"),
            domain: regex(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b"),
            cve: regex(r"(?i)\bCVE-[0-9]{4}-[0-9]{4,7}\b"),
            technique: regex(r"\bT1[0-9]{3}(?:\.[0-9]{3})?\b"),
        }
    })
}

fn benign_domain(name: &str) -> bool {
    let benign = benign_domains();
    let mut rest = name;
    loop {
        if benign.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => return false,
        }
    }
}

/// Finds the indicators of a report's text (refanged first).
pub fn extract(text: &str) -> Extracted {
    let text = refang(text);
    let patterns = patterns();
    let mut found = Extracted::default();
    let mut seen: BTreeSet<(IndicatorKind, String)> = BTreeSet::new();
    let mut benign_seen: BTreeSet<String> = BTreeSet::new();
    // Spans already taken by a URL or an e-mail address: their hosts are not
    // read again as domains.
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut add = |found: &mut Extracted, kind: IndicatorKind, value: String, benign: bool| {
        if benign {
            if benign_seen.insert(value.clone()) {
                found.benign.push(value);
            }
        } else if seen.insert((kind, value.clone())) {
            found.indicators.push((kind, value));
        }
    };
    for url in patterns.url.find_iter(&text) {
        taken.push((url.start(), url.end()));
        let raw = url.as_str().trim_end_matches(['.', ',', ';', ':']);
        if let Ok(value) = normalize(IndicatorKind::Url, raw) {
            let host = crate::normalize::url_host(&value);
            let benign = benign_domain(host) || host.parse::<IpAddr>().is_ok_and(is_internal);
            add(&mut found, IndicatorKind::Url, value, benign);
        }
    }
    for email in patterns.email.find_iter(&text) {
        if taken.iter().any(|&(start, end)| email.start() >= start && email.start() < end) {
            continue;
        }
        taken.push((email.start(), email.end()));
        if let Ok(value) = normalize(IndicatorKind::Email, email.as_str()) {
            let host = value.rsplit('@').next().unwrap_or("");
            add(&mut found, IndicatorKind::Email, value.clone(), benign_domain(host));
        }
    }
    let inside_taken =
        |start: usize, taken: &[(usize, usize)]| taken.iter().any(|&(from, to)| start >= from && start < to);
    for address in patterns.ipv4.find_iter(&text) {
        if inside_taken(address.start(), &taken) {
            continue;
        }
        let value = address.as_str();
        let (kind, parsed) = if value.contains('/') {
            (IndicatorKind::Cidr, normalize(IndicatorKind::Cidr, value))
        } else {
            (IndicatorKind::Ip, normalize(IndicatorKind::Ip, value))
        };
        if let Ok(parsed) = parsed {
            let host: Option<IpAddr> = parsed.split('/').next().and_then(|host| host.parse().ok());
            add(&mut found, kind, parsed, host.is_some_and(is_internal));
        }
    }
    for address in patterns.ipv6.find_iter(&text) {
        if inside_taken(address.start(), &taken) {
            continue;
        }
        let value = address.as_str();
        let kind = if value.contains('/') { IndicatorKind::Cidr } else { IndicatorKind::Ip };
        // Code (`std::string`, `Foo::Bar`) parses as addresses with one
        // non-zero group: an address worth reporting has two or more.
        let groups = value.split('/').next().and_then(|host| host.parse::<std::net::Ipv6Addr>().ok());
        if groups.is_none_or(|address| address.segments().iter().filter(|segment| **segment != 0).count() < 2) {
            continue;
        }
        if let Ok(parsed) = normalize(kind, value) {
            let host: Option<IpAddr> = parsed.split('/').next().and_then(|host| host.parse().ok());
            add(&mut found, kind, parsed, host.is_some_and(is_internal));
        }
    }
    for hash in patterns.hash.find_iter(&text) {
        let kind = match hash.as_str().len() {
            32 => IndicatorKind::Md5,
            40 => IndicatorKind::Sha1,
            _ => IndicatorKind::Sha256,
        };
        add(&mut found, kind, hash.as_str().to_ascii_lowercase(), false);
    }
    for name in patterns.domain.find_iter(&text) {
        if inside_taken(name.start(), &taken) {
            continue;
        }
        let Some(value) = domain(name.as_str()) else { continue };
        let top = value.rsplit('.').next().unwrap_or("");
        if !tlds().contains(top) {
            continue;
        }
        let benign = benign_domain(&value);
        add(&mut found, IndicatorKind::Domain, value, benign);
    }
    let mut cves = BTreeSet::new();
    for cve in patterns.cve.find_iter(&text) {
        let cve = cve.as_str().to_ascii_uppercase();
        if cves.insert(cve.clone()) {
            found.cves.push(cve);
        }
    }
    let mut techniques = BTreeSet::new();
    for technique in patterns.technique.find_iter(&text) {
        if techniques.insert(technique.as_str().to_owned()) {
            found.techniques.push(technique.as_str().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report() {
        let report = "\
The actor (tracked as G0007) used T1566.001 and T1059.001 and exploited CVE-2024-3400.
C2: hxxps://update[.]evil-cdn[.]net/gate.php?id=1, and 45.77.12[.]9 on port 443.
Payload SHA-256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08; dropper setup.exe, notes in report.pdf.
Mail from billing[at]invoices-evil[.]com. Internal host 10.0.0.5 and 192.0.2.1 are not indicators.
See https://attack.mitre.org/techniques/T1059/001/ and www.microsoft.com. Network 185.220.100.0/22.
IPv6 C2 2a03:b0c0:3:d0::1a2:3001 and doc 2001:db8::1.";
        let found = extract(report);
        let values: Vec<String> = found.indicators.iter().map(|(kind, value)| format!("{kind} {value}")).collect();
        assert_eq!(
            values,
            [
                "url https://update.evil-cdn.net/gate.php?id=1",
                "email billing@invoices-evil.com",
                "ip 45.77.12.9",
                "cidr 185.220.100.0/22",
                "ip 2a03:b0c0:3:d0::1a2:3001",
                "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ]
        );
        assert_eq!(found.cves, ["CVE-2024-3400"]);
        assert_eq!(found.techniques, ["T1566.001", "T1059.001", "T1059"]);
        for benign in [
            "10.0.0.5",
            "192.0.2.1",
            "2001:db8::1",
            "www.microsoft.com",
            "https://attack.mitre.org/techniques/T1059/001/",
        ] {
            assert!(found.benign.iter().any(|value| value == benign), "{benign} in {:?}", found.benign);
        }
    }

    #[test]
    fn file_names_are_not_domains() {
        let found = extract("run setup.exe then open invoice.pdf and index.html; beacon to evil.ru");
        assert_eq!(found.indicators, [(IndicatorKind::Domain, "evil.ru".to_owned())]);
        let code = extract("uses std::string and Foo::Bar in the loader");
        assert!(code.indicators.is_empty(), "{:?}", code.indicators);
    }
}
