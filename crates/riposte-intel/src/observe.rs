//! The observables of an event, by the fields that hold them across the
//! sources Riposte reads (Windows, ECS, Zeek, Suricata, CEF, Wazuh,
//! syslog), and the indicators they match.

use std::net::IpAddr;
use std::sync::OnceLock;

use riposte_event::{Event, Symbol};
use serde::{Deserialize, Serialize};

use crate::indicator::IndicatorKind;
use crate::normalize::{domain, url};
use crate::set::{IndicatorId, IndicatorSet};

/// Fields holding IP addresses.
pub const IP_FIELDS: &[&str] = &[
    "IpAddress",
    "SourceIp",
    "DestinationIp",
    "src_ip",
    "dest_ip",
    "source.ip",
    "destination.ip",
    "ClientIP",
    "client.ip",
    "SourceAddress",
    "DestAddress",
    "id.orig_h",
    "id.resp_h",
    "data.srcip",
    "data.dstip",
    "src",
    "dst",
    "addr",
];

/// Fields holding domain names.
pub const DOMAIN_FIELDS: &[&str] = &[
    "QueryName",
    "DestinationHostname",
    "dns.question.name",
    "url.domain",
    "query",
    "dns.rrname",
    "http.hostname",
    "tls.sni",
    "server_name",
    "dhost",
];

/// Fields holding URLs.
pub const URL_FIELDS: &[&str] = &["url", "url.full", "http.url", "request", "requestUrl"];

/// Fields holding file hashes (Sysmon's `Hashes` list is read too).
pub const HASH_FIELDS: &[&str] = &[
    "md5",
    "sha1",
    "sha256",
    "hash.md5",
    "hash.sha1",
    "hash.sha256",
    "fileinfo.md5",
    "fileinfo.sha1",
    "fileinfo.sha256",
];

/// Fields holding e-mail addresses.
pub const EMAIL_FIELDS: &[&str] = &["email", "sender", "from", "to", "user.email", "suser"];

/// An observable that matched, and the indicators it matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub field: &'static str,
    pub kind: IndicatorKind,
    pub value: String,
    pub indicators: Vec<IndicatorId>,
}

struct Fields {
    ips: Vec<(Symbol, &'static str)>,
    domains: Vec<(Symbol, &'static str)>,
    urls: Vec<(Symbol, &'static str)>,
    hashes: Vec<(Symbol, &'static str)>,
    emails: Vec<(Symbol, &'static str)>,
    sysmon_hashes: Symbol,
}

fn fields() -> &'static Fields {
    static FIELDS: OnceLock<Fields> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let interned = |names: &[&'static str]| names.iter().map(|name| (Symbol::intern(name), *name)).collect();
        Fields {
            ips: interned(IP_FIELDS),
            domains: interned(DOMAIN_FIELDS),
            urls: interned(URL_FIELDS),
            hashes: interned(HASH_FIELDS),
            emails: interned(EMAIL_FIELDS),
            sysmon_hashes: Symbol::intern("Hashes"),
        }
    })
}

/// Matches every observable of `event` against `set`, leaving out the
/// indicators not live at `now_ms` (revoked, past `valid_until`, or decayed
/// below their threshold); hits go to `out`.
pub fn match_event(set: &IndicatorSet, event: &Event, now_ms: i64, out: &mut Vec<Hit>) {
    if set.is_empty() {
        return;
    }
    let fields = fields();
    let mut found = Vec::new();
    let hit =
        |out: &mut Vec<Hit>, field: &'static str, kind: IndicatorKind, value: &str, found: &mut Vec<IndicatorId>| {
            found.retain(|&id| set.is_live(id, now_ms));
            if !found.is_empty() && !out.iter().any(|known| known.kind == kind && known.value == value) {
                found.sort_unstable();
                found.dedup();
                out.push(Hit { field, kind, value: value.to_owned(), indicators: std::mem::take(found) });
            }
            found.clear();
        };
    for &(symbol, name) in &fields.ips {
        for value in event.values(symbol) {
            let Some(text) = value.as_text() else { continue };
            if let Ok(address) = text.trim().parse::<IpAddr>() {
                set.match_ip(address, &mut found);
                hit(out, name, IndicatorKind::Ip, text.trim(), &mut found);
            }
        }
    }
    for &(symbol, name) in &fields.domains {
        for value in event.values(symbol) {
            let Some(name_value) = value.as_text().and_then(domain) else { continue };
            set.match_domain(&name_value, &mut found);
            hit(out, name, IndicatorKind::Domain, &name_value, &mut found);
        }
    }
    for &(symbol, name) in &fields.urls {
        for value in event.values(symbol) {
            let Some(normalised) = value.as_text().and_then(url) else { continue };
            set.match_url(&normalised, &mut found);
            hit(out, name, IndicatorKind::Url, &normalised, &mut found);
        }
    }
    let hash = |out: &mut Vec<Hit>, field: &'static str, text: &str, found: &mut Vec<IndicatorId>| {
        let text = text.trim().to_ascii_lowercase();
        let kind = match text.len() {
            32 => IndicatorKind::Md5,
            40 => IndicatorKind::Sha1,
            64 => IndicatorKind::Sha256,
            _ => return,
        };
        found.extend(set.exact_id(kind, &text));
        hit(out, field, kind, &text, found);
    };
    for &(symbol, name) in &fields.hashes {
        for value in event.values(symbol) {
            if let Some(text) = value.as_text() {
                hash(out, name, text, &mut found);
            }
        }
    }
    // Sysmon: `SHA1=...,MD5=...,SHA256=...,IMPHASH=...`.
    if let Some(list) = event.text(fields.sysmon_hashes) {
        for part in list.split(',') {
            if let Some((algorithm, value)) = part.split_once('=')
                && !algorithm.eq_ignore_ascii_case("IMPHASH")
            {
                hash(out, "Hashes", value, &mut found);
            }
        }
    }
    for &(symbol, name) in &fields.emails {
        for value in event.values(symbol) {
            let Some(text) = value.as_text().filter(|text| text.contains('@')) else { continue };
            let Ok(email) = crate::normalize::normalize(IndicatorKind::Email, text) else { continue };
            set.match_email(&email, &mut found);
            hit(out, name, IndicatorKind::Email, &email, &mut found);
        }
    }
}

/// What threat intelligence says of one observable of an event: the
/// enrichment an alert carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntelMatch {
    /// The event field it was read from.
    pub field: String,
    pub kind: IndicatorKind,
    pub value: String,
    pub indicators: Vec<MatchedIndicator>,
}

/// An indicator as it stood when it matched (a network's kind and value
/// when an address matched it), with its score then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchedIndicator {
    #[serde(flatten)]
    pub indicator: crate::indicator::Indicator,
    /// The confidence decayed at match time (0–100, one decimal).
    pub score: f64,
}

/// The enrichment a hit gives, with every score decayed to `now_ms`.
pub fn enrichment(set: &IndicatorSet, hit: &Hit, now_ms: i64) -> IntelMatch {
    let indicators = hit
        .indicators
        .iter()
        .map(|&id| MatchedIndicator {
            indicator: set.get(id).clone(),
            score: (set.score(id, now_ms) * 10.0).round() / 10.0,
        })
        .collect();
    IntelMatch { field: hit.field.to_owned(), kind: hit.kind, value: hit.value.clone(), indicators }
}

/// How a hit reads as a detection.
#[derive(Clone, Debug, PartialEq)]
pub struct Described {
    /// `intel:<kind>:<value>`.
    pub rule_id: String,
    /// What matched, where, who says so and what it is linked to.
    pub title: String,
    /// `high` (decayed score 80 or more), `medium` (50 or more) or `low`.
    pub level: &'static str,
    /// ATT&CK technique ids of the indicators' context.
    pub techniques: Vec<String>,
    pub intel: IntelMatch,
}

/// The detection a hit makes at `now_ms`, from the indicators it matched.
pub fn describe(set: &IndicatorSet, hit: &Hit, now_ms: i64) -> Described {
    let intel = enrichment(set, hit, now_ms);
    let indicators: Vec<&crate::indicator::Indicator> =
        intel.indicators.iter().map(|matched| &matched.indicator).collect();
    let best = intel.indicators.iter().map(|indicator| indicator.score).fold(0.0, f64::max);
    let level = match best {
        80.0.. => "high",
        50.0..80.0 => "medium",
        _ => "low",
    };
    let mut sources: Vec<&str> =
        indicators.iter().flat_map(|indicator| indicator.sources.iter().map(String::as_str)).collect();
    sources.sort_unstable();
    sources.dedup();
    let links = || indicators.iter().flat_map(|indicator| indicator.context.iter());
    let mut names: Vec<&str> = links()
        .filter(|link| link.kind != crate::indicator::ContextKind::Technique)
        .map(|link| link.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut techniques: Vec<String> = links()
        .filter(|link| link.kind == crate::indicator::ContextKind::Technique)
        .filter_map(|link| link.id.clone())
        .collect();
    techniques.sort_unstable();
    techniques.dedup();
    let about = if names.is_empty() { String::new() } else { format!(" · {}", names.join(", ")) };
    let title = format!("Known {} {} in {} ({}){about}", hit.kind, hit.value, hit.field, sources.join(", "));
    Described { rule_id: format!("intel:{}:{}", hit.kind, hit.value), title, level, techniques, intel }
}

/// How an indicator is looked for among the values [`observable_values`]
/// gives: one value, or (a network) the range of its addresses' keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sought {
    Value(String),
    Range(String, String),
}

/// What to look for among stored observables to find `indicator`; nothing
/// for the kinds [`observable_values`] does not keep.
pub fn sought(indicator: &crate::indicator::Indicator) -> Vec<Sought> {
    match indicator.kind {
        // Its key, and its text as stores written before keys kept it (they
        // age out with the retention).
        IndicatorKind::Ip => match indicator.value.parse::<IpAddr>() {
            Ok(address) => vec![
                Sought::Value(crate::normalize::address_key(address)),
                Sought::Value(address.to_canonical().to_string()),
            ],
            Err(_) => Vec::new(),
        },
        IndicatorKind::Cidr => match indicator.value.parse::<ipnet::IpNet>() {
            Ok(network) => {
                let (low, high) = crate::normalize::network_range(network);
                vec![Sought::Range(low, high)]
            }
            Err(_) => Vec::new(),
        },
        IndicatorKind::Domain
        | IndicatorKind::Url
        | IndicatorKind::Email
        | IndicatorKind::Md5
        | IndicatorKind::Sha1
        | IndicatorKind::Sha256 => vec![Sought::Value(indicator.value.clone())],
        _ => Vec::new(),
    }
}

/// The observables of `event` as normalised values, for a later retro-hunt:
/// addresses (as [`crate::normalize::address_key`]s, so that a network finds
/// them as a range), domains and each of their parents (a later indicator for
/// `evil.example` finds `cdn.evil.example`), URLs, hashes, e-mail addresses.
pub fn observable_values(event: &Event, out: &mut Vec<String>) {
    let fields = fields();
    let mut push = |value: String| {
        if !out.contains(&value) {
            out.push(value);
        }
    };
    for &(symbol, _) in &fields.ips {
        for value in event.values(symbol) {
            if let Some(address) = value.as_text().and_then(|text| text.trim().parse::<IpAddr>().ok()) {
                push(crate::normalize::address_key(address));
            }
        }
    }
    // A domain and each of its parents.
    let with_parents = |name: &str, push: &mut dyn FnMut(String)| {
        let mut rest = name;
        loop {
            push(rest.to_owned());
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => break,
            }
        }
    };
    for &(symbol, _) in &fields.domains {
        for value in event.values(symbol) {
            if let Some(name) = value.as_text().and_then(domain) {
                with_parents(&name, &mut push);
            }
        }
    }
    for &(symbol, _) in &fields.urls {
        for value in event.values(symbol) {
            if let Some(normalised) = value.as_text().and_then(url) {
                // Its host too: a later indicator for the host or its domain finds it.
                let host = crate::normalize::url_host(&normalised).to_owned();
                match host.parse::<IpAddr>() {
                    Ok(address) => push(crate::normalize::address_key(address)),
                    Err(_) => with_parents(&host, &mut push),
                }
                push(normalised);
            }
        }
    }
    for &(symbol, _) in &fields.hashes {
        for value in event.values(symbol) {
            if let Some(text) = value.as_text().filter(|text| matches!(text.trim().len(), 32 | 40 | 64)) {
                push(text.trim().to_ascii_lowercase());
            }
        }
    }
    if let Some(list) = event.text(fields.sysmon_hashes) {
        for part in list.split(',') {
            if let Some((algorithm, value)) = part.split_once('=')
                && !algorithm.eq_ignore_ascii_case("IMPHASH")
            {
                push(value.trim().to_ascii_lowercase());
            }
        }
    }
    for &(symbol, _) in &fields.emails {
        for value in event.values(symbol) {
            if let Some(email) = value
                .as_text()
                .filter(|text| text.contains('@'))
                .and_then(|text| crate::normalize::normalize(IndicatorKind::Email, text).ok())
            {
                if let Some(host) = email.rsplit('@').next() {
                    with_parents(host, &mut push);
                }
                push(email);
            }
        }
    }
}
