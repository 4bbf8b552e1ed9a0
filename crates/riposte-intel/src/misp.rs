//! MISP events (the JSON of a MISP feed's `<uuid>.json`, or of the REST
//! API's `/events/view`): attributes meant for detection (`to_ids`) become
//! indicators, with the event's TLP, threat level and galaxies (threat
//! actors, malware, ATT&CK techniques) as their context. The feed's
//! `manifest.json` lists the events and when each last changed.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::feed::parse_time;
use crate::indicator::{Context, ContextKind, Indicator, IndicatorKind, Tlp};
use crate::normalize::normalize;

/// What reading one MISP event found.
#[derive(Clone, Debug, Default)]
pub struct MispImport {
    pub indicators: Vec<Indicator>,
    /// Attributes left out: (attribute type, value, reason).
    pub skipped: Vec<(String, String, String)>,
}

/// A MISP event that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum MispError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a MISP event (no `Event` object)")]
    NotAnEvent,
}

/// The events a feed's manifest lists, with their last change (ms), for
/// incremental pulls: fetch those changed since the last pull.
pub fn manifest(json: &str) -> Result<BTreeMap<String, Option<i64>>, MispError> {
    let document: Value = serde_json::from_str(json)?;
    let entries = document.as_object().ok_or(MispError::NotAnEvent)?;
    Ok(entries
        .iter()
        .map(|(uuid, entry)| {
            let changed = entry.get("timestamp").and_then(text_of).and_then(|text| parse_time(&text));
            (uuid.clone(), changed)
        })
        .collect())
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The indicator kind of a MISP attribute type (the part of a composite
/// type such as `filename|md5` that is matchable).
pub(crate) fn kind_of(attribute_type: &str) -> Option<IndicatorKind> {
    Some(match attribute_type {
        "ip-src" | "ip-dst" | "ip" => IndicatorKind::Ip,
        "domain" | "hostname" => IndicatorKind::Domain,
        "url" | "uri" | "link" => IndicatorKind::Url,
        "email" | "email-src" | "email-dst" => IndicatorKind::Email,
        "md5" => IndicatorKind::Md5,
        "sha1" => IndicatorKind::Sha1,
        "sha256" => IndicatorKind::Sha256,
        "ja3-fingerprint-md5" => IndicatorKind::Ja3,
        "ja4-fingerprint" => IndicatorKind::Ja4,
        "user-agent" => IndicatorKind::UserAgent,
        "regkey" => IndicatorKind::RegistryKey,
        "filename" => IndicatorKind::FileName,
        _ => return None,
    })
}

/// Reads one event. `source` names the feed.
pub fn import_event(json: &str, source: &str) -> Result<MispImport, MispError> {
    let document: Value = serde_json::from_str(json)?;
    let event = document.get("Event").unwrap_or(&document);
    if !event.is_object() || event.get("Attribute").is_none() && event.get("Object").is_none() {
        return Err(MispError::NotAnEvent);
    }
    let tags: Vec<String> = event
        .get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tag| tag.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let tlp = tags.iter().filter_map(|tag| tag.parse::<Tlp>().ok()).max().unwrap_or_default();
    // MISP threat levels: 1 high, 2 medium, 3 low, 4 undefined.
    let confidence = match event.get("threat_level_id").and_then(text_of).as_deref() {
        Some("1") => 90,
        Some("2") => 70,
        Some("3") => 50,
        _ => 30,
    };
    let mut context = Vec::new();
    if let Some(info) = event.get("info").and_then(Value::as_str) {
        context.push(Context {
            kind: ContextKind::Report,
            name: info.to_owned(),
            id: event.get("uuid").and_then(Value::as_str).map(str::to_owned),
        });
    }
    for galaxy in event.get("Galaxy").and_then(Value::as_array).into_iter().flatten() {
        let galaxy_type = galaxy.get("type").and_then(Value::as_str).unwrap_or("");
        let kind = match galaxy_type {
            "threat-actor" | "mitre-intrusion-set" => ContextKind::ThreatActor,
            "malpedia" | "mitre-malware" | "mitre-tool" | "tool" | "ransomware" | "rat" | "botnet" => {
                ContextKind::Malware
            }
            "mitre-attack-pattern" => ContextKind::Technique,
            _ => continue,
        };
        for cluster in galaxy.get("GalaxyCluster").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = cluster.get("value").and_then(Value::as_str) else { continue };
            // ATT&CK clusters are named `Command and Scripting Interpreter - T1059`.
            let id = name.rsplit_once(" - ").map(|(_, id)| id.to_owned()).filter(|id| id.starts_with('T'));
            context.push(Context { kind, name: name.to_owned(), id });
        }
    }
    let event_time = event.get("timestamp").and_then(text_of).and_then(|text| parse_time(&text));
    let mut import = MispImport::default();
    let objects = event.get("Object").and_then(Value::as_array).into_iter().flatten();
    let attributes = event
        .get("Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(objects.flat_map(|object| object.get("Attribute").and_then(Value::as_array).into_iter().flatten()));
    for attribute in attributes {
        let attribute_type = attribute.get("type").and_then(Value::as_str).unwrap_or("");
        let value = attribute.get("value").and_then(Value::as_str).unwrap_or("");
        let skip = |import: &mut MispImport, reason: &str| {
            import.skipped.push((attribute_type.to_owned(), value.to_owned(), reason.to_owned()));
        };
        if attribute.get("to_ids").and_then(Value::as_bool) == Some(false) {
            skip(&mut import, "not meant for detection (to_ids is false)");
            continue;
        }
        if attribute.get("deleted").and_then(Value::as_bool) == Some(true) {
            skip(&mut import, "deleted");
            continue;
        }
        // Composite types (`filename|md5`, `domain|ip`, `ip-dst|port`) give
        // one indicator per matchable part.
        let types: Vec<&str> = attribute_type.split('|').collect();
        let values: Vec<&str> = if types.len() > 1 { value.splitn(types.len(), '|').collect() } else { vec![value] };
        let mut found = false;
        for (part_type, part_value) in types.iter().zip(values) {
            let Some(kind) = kind_of(part_type) else { continue };
            // MISP allows a network in `ip-src` and `ip-dst`.
            let kind = if kind == IndicatorKind::Ip && part_value.contains('/') { IndicatorKind::Cidr } else { kind };
            match normalize(kind, part_value) {
                Ok(normalised) => {
                    let mut indicator = Indicator::new(kind, normalised, source);
                    indicator.confidence = confidence;
                    indicator.tlp = tlp;
                    indicator.tags = tags.iter().filter(|tag| tag.parse::<Tlp>().is_err()).cloned().collect();
                    indicator.context = context.clone();
                    let seen = attribute.get("timestamp").and_then(text_of).and_then(|text| parse_time(&text));
                    indicator.first_seen = attribute
                        .get("first_seen")
                        .and_then(Value::as_str)
                        .and_then(parse_time)
                        .or(seen)
                        .or(event_time);
                    indicator.last_seen =
                        attribute.get("last_seen").and_then(Value::as_str).and_then(parse_time).or(seen).or(event_time);
                    // Sightings (type 0; 1 is a false positive, 2 an expiration) refresh it.
                    for sighting in attribute.get("Sighting").and_then(Value::as_array).into_iter().flatten() {
                        let kind = sighting.get("type").and_then(text_of).unwrap_or_else(|| "0".into());
                        if let Some(time) =
                            sighting.get("date_sighting").and_then(text_of).and_then(|text| parse_time(&text))
                            && kind == "0"
                        {
                            crate::decay::sighting(&mut indicator, time);
                        }
                    }
                    import.indicators.push(indicator);
                    found = true;
                }
                Err(error) => skip(&mut import, &error.to_string()),
            }
        }
        if !found && !types.iter().any(|part| kind_of(part).is_some()) {
            skip(&mut import, "an attribute type Riposte does not match");
        }
    }
    Ok(import)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"Event": {
        "uuid": "5e9b3d3a-0000-4000-8000-000000000001", "info": "Phishing wave with ExampleRAT",
        "threat_level_id": "1", "timestamp": "1795946400", "date": "2026-11-29",
        "Tag": [{"name": "tlp:amber"}, {"name": "type:OSINT"}],
        "Galaxy": [
            {"type": "threat-actor", "GalaxyCluster": [{"value": "APT-EXAMPLE"}]},
            {"type": "mitre-attack-pattern", "GalaxyCluster": [{"value": "Spearphishing Attachment - T1566.001"}]}
        ],
        "Attribute": [
            {"type": "ip-dst", "value": "45.77.12.9", "to_ids": true, "timestamp": "1795946000",
             "Sighting": [{"date_sighting": "1796000000", "type": "0"}, {"date_sighting": "1797000000", "type": "1"}]},
            {"type": "domain|ip", "value": "evil.example|45.77.12.10", "to_ids": true},
            {"type": "filename|sha256", "value": "invoice.exe|9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", "to_ids": true},
            {"type": "comment", "value": "seen by the SOC", "to_ids": false},
            {"type": "ip-dst", "value": "not-an-ip", "to_ids": true},
            {"type": "vulnerability", "value": "CVE-2024-3400", "to_ids": true}
        ],
        "Object": [{"name": "url", "Attribute": [{"type": "url", "value": "HTTP://Evil.Example/a", "to_ids": true}]}]
    }}"#;

    #[test]
    fn an_event_with_composite_attributes_and_galaxies() {
        let import = import_event(EVENT, "misp-feed").unwrap();
        let values: Vec<String> =
            import.indicators.iter().map(|indicator| format!("{} {}", indicator.kind, indicator.value)).collect();
        assert_eq!(
            values,
            [
                "ip 45.77.12.9",
                "domain evil.example",
                "ip 45.77.12.10",
                "file-name invoice.exe",
                "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "url http://evil.example/a",
            ]
        );
        let first = &import.indicators[0];
        assert_eq!((first.confidence, first.tlp), (90, Tlp::Amber));
        assert_eq!(first.tags, ["type:OSINT"]);
        assert_eq!(first.first_seen, Some(1_795_946_000_000));
        assert_eq!(first.last_seen, Some(1_796_000_000_000), "a sighting refreshes it; a false positive does not");
        assert!(first.context.iter().any(|link| link.kind == ContextKind::ThreatActor && link.name == "APT-EXAMPLE"));
        assert!(first.context.iter().any(|link| link.id.as_deref() == Some("T1566.001")));
        assert!(first.context.iter().any(|link| link.kind == ContextKind::Report && link.name.contains("ExampleRAT")));
        let reasons: Vec<&str> = import.skipped.iter().map(|(_, _, reason)| reason.as_str()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].contains("to_ids")
                && reasons[1].contains("not a valid ip")
                && reasons[2].contains("does not match")
        );
    }

    #[test]
    fn a_manifest_and_bad_input() {
        let listed =
            manifest(r#"{"5e9b3d3a-0000-4000-8000-000000000001": {"info": "x", "timestamp": "1795946400"}}"#).unwrap();
        assert_eq!(listed["5e9b3d3a-0000-4000-8000-000000000001"], Some(1_795_946_400_000));
        assert!(matches!(import_event("{\"x\": 1}", "f"), Err(MispError::NotAnEvent)));
        assert!(matches!(import_event("not json", "f"), Err(MispError::Json(_))));
    }
}
