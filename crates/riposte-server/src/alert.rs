//! A detection becomes an alert: the rule, the entities it is about, and a
//! fingerprint that identical detections share.

use std::sync::OnceLock;

use riposte_event::{Event, Symbol};
use riposte_ingest::NativeAlert;
use riposte_sigma::{Correlation, CorrelationMatch, Rule};
use riposte_store::{Entities, NewDetection};
use sha2::{Digest, Sha256};

/// Field names that hold each kind of entity, across the sources Riposte
/// reads (Windows, ECS, Zeek, Suricata, CEF, Wazuh, Falco, auditd, syslog).
const HOSTS: &[&str] = &[
    "Computer",
    "System_Computer",
    "hostname",
    "host.name",
    "host",
    "ComputerName",
    "WorkstationName",
    "Workstation",
    "agent.name",
    "node",
    "dvchost",
    "shost",
    "dhost",
];
const USERS: &[&str] = &[
    "User",
    "TargetUserName",
    "SubjectUserName",
    "user.name",
    "user",
    "AccountName",
    "username",
    "data.srcuser",
    "data.dstuser",
    "suser",
    "duser",
    "acct",
    "output_fields.user.name",
];
// Addresses, domains and hashes are the observables threat intelligence
// matches: one list of their fields, in `riposte_intel::observe`.
const IPS: &[&str] = riposte_intel::observe::IP_FIELDS;
const PROCESSES: &[&str] = &[
    "Image",
    "ParentImage",
    "NewProcessName",
    "process.executable",
    "SourceImage",
    "TargetImage",
    "exe",
    "output_fields.proc.exepath",
];
const HASH_FIELDS: &[&str] = riposte_intel::observe::HASH_FIELDS;
const DOMAINS: &[&str] = riposte_intel::observe::DOMAIN_FIELDS;

/// Most values of one kind kept per alert.
const MAX_PER_KIND: usize = 8;

/// The symbols of a list of field names, interned once.
fn symbols(names: &'static [&'static str], cell: &'static OnceLock<Vec<Symbol>>) -> &'static [Symbol] {
    cell.get_or_init(|| names.iter().map(|name| Symbol::intern(name)).collect())
}

macro_rules! interned {
    ($names:expr) => {{
        static CELL: OnceLock<Vec<Symbol>> = OnceLock::new();
        symbols($names, &CELL)
    }};
}

fn values(event: &Event, fields: &[Symbol], out: &mut Vec<String>) {
    for &symbol in fields {
        for value in event.values(symbol) {
            let Some(text) = value.as_text() else { continue };
            let text = text.trim();
            if text.is_empty() || text == "-" || out.iter().any(|known| known == text) || out.len() >= MAX_PER_KIND {
                continue;
            }
            out.push(text.to_owned());
        }
    }
}

/// The entities an event is about.
pub fn entities(event: &Event) -> Entities {
    let mut entities = Entities::default();
    values(event, interned!(HOSTS), &mut entities.hosts);
    values(event, interned!(USERS), &mut entities.users);
    values(event, interned!(IPS), &mut entities.ips);
    values(event, interned!(PROCESSES), &mut entities.processes);
    values(event, interned!(HASH_FIELDS), &mut entities.hashes);
    values(event, interned!(&["Imphash"]), &mut entities.hashes);
    // Sysmon's `Hashes`: `SHA1=...,MD5=...,SHA256=...,IMPHASH=...`.
    if let Some(hashes) = interned!(&["Hashes"]).first().and_then(|symbol| event.text(*symbol)) {
        for part in hashes.split(',') {
            if let Some((_, hash)) = part.split_once('=')
                && !hash.is_empty()
                && entities.hashes.len() < MAX_PER_KIND
                && !entities.hashes.iter().any(|known| known.eq_ignore_ascii_case(hash))
            {
                entities.hashes.push(hash.to_ascii_lowercase());
            }
        }
    }
    values(event, interned!(DOMAINS), &mut entities.domains);
    entities
}

/// The same for the same rule and entities: what makes two detections "the
/// same alert".
pub fn fingerprint(rule_id: &str, entities: &Entities) -> String {
    let mut hash = Sha256::new();
    hash.update(rule_id.as_bytes());
    for kind in
        [&entities.hosts, &entities.users, &entities.ips, &entities.processes, &entities.hashes, &entities.domains]
    {
        hash.update([0x1e]);
        let mut sorted: Vec<String> = kind.iter().map(|value| value.to_lowercase()).collect();
        sorted.sort();
        for value in sorted {
            hash.update(value.as_bytes());
            hash.update([0x1f]);
        }
    }
    hex::encode(&hash.finalize()[..16])
}

/// A rule's id, or a stable stand-in for rules without one.
pub fn rule_key(rule: &Rule) -> String {
    match &rule.meta.id {
        Some(id) => id.clone(),
        None => format!("title:{}", hex::encode(&Sha256::digest(rule.meta.title.as_bytes())[..8])),
    }
}

/// The detection of `rule` on the event spooled as `seq`. `origin`, when not
/// empty, names the event in its source instead (see `spool::Record`).
pub fn detection(rule: &Rule, event: &Event, seq: u64, origin: &str, received_ms: i64, window_ms: i64) -> NewDetection {
    let about = Detected {
        rule_id: rule_key(rule),
        title: rule.meta.title.clone(),
        level: rule.meta.level.map_or_else(|| "informational".to_owned(), |level| level.to_string()),
        techniques: rule.meta.techniques.iter().map(|technique| technique.id.clone()).collect(),
    };
    event_detection(about, event, seq, origin, received_ms, window_ms)
}

/// The alert another tool raised (Wazuh, Falco), under its own rule id.
pub fn native_detection(
    native: &NativeAlert,
    event: &Event,
    seq: u64,
    origin: &str,
    received_ms: i64,
    window_ms: i64,
) -> NewDetection {
    let about = Detected {
        rule_id: native.rule_id.clone(),
        title: native.title.clone(),
        level: native.level.to_owned(),
        techniques: native.techniques.clone(),
    };
    event_detection(about, event, seq, origin, received_ms, window_ms)
}

/// An observable threat intelligence names (see `riposte_intel::describe`).
pub fn intel_detection(
    described: riposte_intel::Described,
    event: &Event,
    seq: u64,
    origin: &str,
    received_ms: i64,
    window_ms: i64,
) -> NewDetection {
    let intel = serde_json::to_value(&described.intel).map_or_else(|_| Vec::new(), |value| vec![value]);
    let about = Detected {
        rule_id: described.rule_id,
        title: described.title,
        level: described.level.to_owned(),
        techniques: described.techniques,
    };
    NewDetection { intel, ..event_detection(about, event, seq, origin, received_ms, window_ms) }
}

/// What fired, whatever fired it.
struct Detected {
    rule_id: String,
    title: String,
    level: String,
    techniques: Vec<String>,
}

fn event_detection(
    about: Detected,
    event: &Event,
    seq: u64,
    origin: &str,
    received_ms: i64,
    window_ms: i64,
) -> NewDetection {
    let entities = entities(event);
    let time_ms = event
        .timestamp
        .map_or(received_ms, |time| i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(received_ms));
    let rule_id = about.rule_id;
    NewDetection {
        key: if origin.is_empty() { format!("{seq}:{rule_id}") } else { format!("{origin}:{rule_id}") },
        fingerprint: fingerprint(&rule_id, &entities),
        rule_title: about.title,
        level: about.level,
        techniques: about.techniques,
        entities,
        time_ms,
        window_ms,
        event_seq: i64::try_from(seq).unwrap_or(i64::MAX),
        rule_id,
        intel: Vec::new(),
    }
}

/// The alert a held message raises: rule `mail:<verdict>`, the sender's
/// address and domain and the message's hash as entities, one alert per
/// message (its hash is the key).
pub fn mail_detection(held: &riposte_store::Quarantined, reasons: &[&str]) -> NewDetection {
    let rule_id = format!("mail:{}", held.verdict);
    let domain = held.sender.rsplit_once('@').map(|(_, domain)| domain.to_owned());
    let entities = Entities {
        users: vec![held.sender.clone()].into_iter().filter(|sender| !sender.is_empty()).collect(),
        domains: domain.into_iter().collect(),
        hashes: vec![held.sha256.clone()],
        ..Entities::default()
    };
    NewDetection {
        key: format!("mail:{}", held.sha256),
        fingerprint: fingerprint(&rule_id, &entities),
        rule_title: format!(
            "Quarantined {} message from {}: {:?} ({})",
            held.verdict,
            held.sender,
            held.subject,
            reasons.join(", ")
        ),
        level: if held.verdict == "malicious" { "critical" } else { "high" }.to_owned(),
        techniques: vec!["T1566".to_owned()],
        entities,
        time_ms: held.received_ms,
        window_ms: 0,
        event_seq: 0,
        rule_id,
        intel: Vec::new(),
    }
}

/// A correlation's id (or name), or a stable stand-in.
pub fn correlation_key(correlation: &Correlation) -> String {
    let meta = &correlation.meta;
    match (&meta.id, &meta.name) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => format!("title:{}", hex::encode(&Sha256::digest(meta.title.as_bytes())[..8])),
    }
}

/// The detection a correlation match makes, triggered by the event spooled
/// as `seq`. Its key is the match itself (rule, group, window), so the same
/// match replayed after a crash is recognised.
pub fn correlation_detection(
    correlation: &Correlation,
    found: &CorrelationMatch,
    seq: u64,
    window_ms: i64,
) -> NewDetection {
    let rule_id = correlation_key(correlation);
    let mut group = Event::new();
    for (field, value) in &found.group {
        group = group.with(field, value.as_str());
    }
    let entities = entities(&group);
    let mut key = Sha256::new();
    key.update(rule_id.as_bytes());
    for (field, value) in &found.group {
        key.update([0x1e]);
        key.update(field.as_bytes());
        key.update([0x1f]);
        key.update(value.as_bytes());
    }
    key.update(found.first_ms.to_le_bytes());
    key.update(found.time_ms.to_le_bytes());
    NewDetection {
        key: format!("correlation:{}", hex::encode(&key.finalize()[..16])),
        fingerprint: fingerprint(&rule_id, &entities),
        rule_title: correlation.meta.title.clone(),
        level: correlation.meta.level.map_or_else(|| "informational".to_owned(), |level| level.to_string()),
        techniques: correlation.meta.techniques.iter().map(|technique| technique.id.clone()).collect(),
        entities,
        time_ms: found.time_ms,
        window_ms,
        event_seq: i64::try_from(seq).unwrap_or(i64::MAX),
        rule_id,
        intel: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_fingerprints() {
        let event = Event::new()
            .with("Computer", "WS-1")
            .with("User", "CORP\\alice")
            .with("Image", "C:\\x\\m.exe")
            .with("Hashes", "SHA1=AA,MD5=BB,IMPHASH=CC")
            .with("IpAddress", "-")
            .with("QueryName", "evil.example");
        let found = entities(&event);
        assert_eq!(found.hosts, ["WS-1"]);
        assert_eq!(found.users, ["CORP\\alice"]);
        assert_eq!(found.processes, ["C:\\x\\m.exe"]);
        assert_eq!(found.hashes, ["aa", "bb", "cc"]);
        assert!(found.ips.is_empty(), "`-` is no address");
        assert_eq!(found.domains, ["evil.example"]);
        let same = fingerprint("r1", &found);
        let mut reordered = found.clone();
        reordered.hashes.reverse();
        assert_eq!(fingerprint("r1", &reordered), same, "order does not matter");
        assert_ne!(fingerprint("r2", &found), same);
        let mut other_host = found.clone();
        other_host.hosts = vec!["WS-2".into()];
        assert_ne!(fingerprint("r1", &other_host), same);
    }
}
