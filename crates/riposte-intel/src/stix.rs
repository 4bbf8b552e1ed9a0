//! STIX 2.x bundles: indicators whose patterns reduce to values Riposte can
//! match, with the context their relationships give them (campaign, threat
//! actor, malware, ATT&CK technique, report).
//!
//! A pattern is matchable when it is one comparison, or comparisons and
//! observations joined by `OR`, each `path = 'value'` on a path Riposte
//! knows (`ipv4-addr:value`, `domain-name:value`, `file:hashes.'SHA-256'`,
//! ...). Others (`AND`, `FOLLOWEDBY`, `MATCHES`, qualifiers) are kept in the
//! report as not matchable, with the reason. One bad object is reported and
//! the rest imported.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::feed::parse_time;
use crate::indicator::{Context, ContextKind, Indicator, IndicatorKind, Tlp};
use crate::normalize::normalize;

/// A bundle that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum StixError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a STIX bundle (an object with `objects`) nor a list of STIX objects")]
    NotABundle,
}

/// What importing a bundle found.
#[derive(Clone, Debug, Default)]
pub struct StixImport {
    pub indicators: Vec<Indicator>,
    /// Objects by STIX type.
    pub counts: BTreeMap<String, usize>,
    /// Indicators whose pattern cannot be matched, and values of matchable
    /// patterns that were left out: (id, pattern, reason).
    pub unmatchable: Vec<(String, String, String)>,
    /// Objects that could not be read: (position in the bundle, reason).
    pub errors: Vec<(usize, String)>,
    /// Context objects (campaigns, actors, malware, techniques, reports) by id.
    pub context: HashMap<String, Context>,
}

/// The TLP marking definitions of the STIX 2.1 specification.
const TLP_MARKINGS: &[(&str, Tlp)] = &[
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", Tlp::Clear),
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", Tlp::Green),
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", Tlp::Amber),
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", Tlp::Red),
];

/// Reads a bundle (or a list of objects). `source` names the feed.
pub fn import_bundle(json: &str, source: &str) -> Result<StixImport, StixError> {
    let document: Value = serde_json::from_str(json)?;
    let objects = match &document {
        Value::Object(bundle) => bundle.get("objects").and_then(Value::as_array).ok_or(StixError::NotABundle)?,
        Value::Array(objects) => objects,
        _ => return Err(StixError::NotABundle),
    };
    let mut import = StixImport::default();
    for (position, object) in objects.iter().enumerate() {
        let Some(kind) = object.get("type").and_then(Value::as_str) else {
            import.errors.push((position, "object has no type".into()));
            continue;
        };
        *import.counts.entry(kind.to_owned()).or_default() += 1;
        if let Some(context) = context_of(kind, object)
            && let Some(id) = object.get("id").and_then(Value::as_str)
        {
            import.context.insert(id.to_owned(), context);
        }
    }
    // Which context each indicator is linked to: relationships from it, and
    // reports listing it; and when it was last sighted.
    let mut links: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut sighted: HashMap<&str, i64> = HashMap::new();
    for object in objects {
        match object.get("type").and_then(Value::as_str) {
            Some("sighting") => {
                let time = ["last_seen", "first_seen", "modified", "created"]
                    .iter()
                    .find_map(|name| object.get(*name).and_then(Value::as_str).and_then(parse_time));
                if let (Some(of), Some(time)) = (object.get("sighting_of_ref").and_then(Value::as_str), time) {
                    let latest = sighted.entry(of).or_insert(time);
                    *latest = (*latest).max(time);
                }
            }
            Some("relationship") => {
                let (Some(from), Some(to)) = (
                    object.get("source_ref").and_then(Value::as_str),
                    object.get("target_ref").and_then(Value::as_str),
                ) else {
                    continue;
                };
                links.entry(from).or_default().push(to);
                // `campaign uses/attributed-to ...` reach the indicator through the campaign.
                links.entry(to).or_default().push(from);
            }
            Some("report") => {
                let Some(id) = object.get("id").and_then(Value::as_str) else { continue };
                for reference in object.get("object_refs").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(reference) = reference.as_str() {
                        links.entry(reference).or_default().push(id);
                    }
                }
            }
            _ => {}
        }
    }
    // Each context object's links to other context objects only, worked out
    // once (a malware linked to 100,000 indicators would otherwise be
    // walked through for each of them).
    let context_links: HashMap<&str, Vec<&str>> = links
        .iter()
        .filter(|(id, _)| import.context.contains_key(**id))
        .map(|(id, linked)| (*id, linked.iter().copied().filter(|other| import.context.contains_key(*other)).collect()))
        .collect();
    for (position, object) in objects.iter().enumerate() {
        if object.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        match indicators_of(object, source, &links, &context_links, &import.context, &mut import.unmatchable) {
            Ok(mut found) => {
                let id = object.get("id").and_then(Value::as_str).unwrap_or("");
                if let Some(&time) = sighted.get(id) {
                    found.iter_mut().for_each(|indicator| crate::decay::sighting(indicator, time));
                }
                import.indicators.extend(found);
            }
            Err(Unmatchable { id, pattern, reason }) if !pattern.is_empty() => {
                import.unmatchable.push((id, pattern, reason));
            }
            Err(Unmatchable { reason, .. }) => import.errors.push((position, reason)),
        }
    }
    Ok(import)
}

struct Unmatchable {
    id: String,
    pattern: String,
    reason: String,
}

fn context_of(kind: &str, object: &Value) -> Option<Context> {
    let context_kind = match kind {
        "campaign" => ContextKind::Campaign,
        "intrusion-set" | "threat-actor" => ContextKind::ThreatActor,
        "malware" | "tool" => ContextKind::Malware,
        "attack-pattern" => ContextKind::Technique,
        "report" => ContextKind::Report,
        _ => return None,
    };
    let name = object.get("name").and_then(Value::as_str)?.to_owned();
    // ATT&CK objects carry their technique or group id as an external reference.
    let external = object
        .get("external_references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|reference| {
            reference.get("source_name").and_then(Value::as_str).is_some_and(|name| name.starts_with("mitre-"))
        })
        .and_then(|reference| reference.get("external_id").and_then(Value::as_str));
    let id = external.or_else(|| object.get("id").and_then(Value::as_str)).map(str::to_owned);
    Some(Context { kind: context_kind, name, id })
}

fn indicators_of(
    object: &Value,
    source: &str,
    links: &HashMap<&str, Vec<&str>>,
    context_links: &HashMap<&str, Vec<&str>>,
    context: &HashMap<String, Context>,
    rejected_values: &mut Vec<(String, String, String)>,
) -> Result<Vec<Indicator>, Unmatchable> {
    let id = object.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
    let unmatchable =
        |pattern: &str, reason: String| Unmatchable { id: id.clone(), pattern: pattern.to_owned(), reason };
    let pattern = object
        .get("pattern")
        .and_then(Value::as_str)
        .ok_or_else(|| unmatchable("", "indicator has no pattern".into()))?;
    if let Some(kind) = object.get("pattern_type").and_then(Value::as_str)
        && kind != "stix"
    {
        return Err(unmatchable(pattern, format!("pattern type {kind:?} is not STIX")));
    }
    let (values, rejected) = pattern_values(pattern).map_err(|reason| unmatchable(pattern, reason))?;
    if values.is_empty() {
        return Err(unmatchable(pattern, rejected.join("; ")));
    }
    for reason in rejected {
        rejected_values.push((id.clone(), pattern.to_owned(), reason));
    }
    let time = |name: &str| object.get(name).and_then(Value::as_str).and_then(parse_time);
    let tlp = object
        .get("object_marking_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|marking| TLP_MARKINGS.iter().find(|(known, _)| *known == marking).map(|(_, tlp)| *tlp))
        .max()
        .unwrap_or_default();
    let tags: Vec<String> = ["labels", "indicator_types"]
        .iter()
        .filter_map(|name| object.get(*name).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let mut linked: Vec<Context> = Vec::new();
    // Context one step away (indicator → malware), then the context of that
    // context (malware → campaign), never back through other indicators.
    let direct: &[&str] = links.get(id.as_str()).map_or(&[], Vec::as_slice);
    for &reference in direct {
        let Some(found) = context.get(reference) else { continue };
        if !linked.contains(found) {
            linked.push(found.clone());
        }
        for &further in context_links.get(reference).map_or(&[][..], Vec::as_slice) {
            if let Some(found) = context.get(further)
                && !linked.contains(found)
            {
                linked.push(found.clone());
            }
        }
    }
    let mut indicators = Vec::new();
    for (kind, value) in values {
        let mut indicator = Indicator::new(kind, value, source);
        if let Some(confidence) = object.get("confidence").and_then(Value::as_u64) {
            indicator.confidence = confidence.min(100) as u8;
        }
        indicator.first_seen = time("valid_from");
        indicator.valid_until = time("valid_until");
        indicator.revoked = object.get("revoked").and_then(Value::as_bool).unwrap_or(false);
        indicator.tlp = tlp;
        indicator.tags = tags.clone();
        indicator.context = linked.clone();
        indicators.push(indicator);
    }
    Ok(indicators)
}

/// The kind of indicator a STIX object path names.
fn path_kind(path: &str, value: &str) -> Option<IndicatorKind> {
    let path = path.replace(' ', "");
    Some(match path.as_str() {
        "ipv4-addr:value" | "ipv6-addr:value" if value.contains('/') => IndicatorKind::Cidr,
        "ipv4-addr:value" | "ipv6-addr:value" => IndicatorKind::Ip,
        "domain-name:value" => IndicatorKind::Domain,
        "url:value" => IndicatorKind::Url,
        "email-addr:value" | "email-message:from_ref.value" | "email-message:sender_ref.value" => IndicatorKind::Email,
        "file:name" => IndicatorKind::FileName,
        "windows-registry-key:key" => IndicatorKind::RegistryKey,
        "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'" => IndicatorKind::UserAgent,
        hashes if hashes.starts_with("file:hashes.") || hashes.starts_with("artifact:hashes.") => {
            let algorithm = hashes.rsplit('.').next()?.trim_matches('\'').to_ascii_uppercase().replace('-', "");
            match algorithm.as_str() {
                "MD5" => IndicatorKind::Md5,
                "SHA1" => IndicatorKind::Sha1,
                "SHA256" => IndicatorKind::Sha256,
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// The (kind, normalised value) pairs of a pattern, and why any value was
/// left out.
pub type PatternValues = (Vec<(IndicatorKind, String)>, Vec<String>);

/// The values a STIX pattern matches, when it is an `OR` of equalities; a
/// value that is not valid for its kind (a domain with a space) is left out
/// and said why in the second list.
pub fn pattern_values(pattern: &str) -> Result<PatternValues, String> {
    let mut values = Vec::new();
    let mut rejected = Vec::new();
    let mut rest = pattern.trim();
    let mut expect_comparison = true;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if expect_comparison {
            rest = rest.trim_start_matches(['[', '(', ' ']);
            let (comparison, after) = comparison(rest)?;
            let (path, value) = comparison;
            let kind = path_kind(path, &value).ok_or_else(|| format!("path {path} is not one Riposte matches"))?;
            match normalize(kind, &value) {
                Ok(value) => values.push((kind, value)),
                Err(error) => rejected.push(error.to_string()),
            }
            rest = after.trim_start().trim_start_matches([']', ')', ' ']);
            expect_comparison = false;
        } else {
            let word_end = rest.find([' ', '[', '(']).unwrap_or(rest.len());
            let word = &rest[..word_end];
            match word.to_ascii_uppercase().as_str() {
                "OR" => {
                    rest = &rest[word_end..];
                    expect_comparison = true;
                }
                "" => return Err("comparisons not joined by OR".into()),
                other => return Err(format!("{other} makes the pattern more than a list of values")),
            }
        }
    }
    if values.is_empty() && rejected.is_empty() {
        return Err("no comparison".into());
    }
    Ok((values, rejected))
}

/// `path = 'value'` at the start of `text`, and what follows it.
fn comparison(text: &str) -> Result<((&str, String), &str), String> {
    let equals = text.find(['=', '!', '<', '>', ' ']).ok_or("no comparison operator")?;
    let path = text[..equals].trim();
    let after_path = text[equals..].trim_start();
    let Some(after_operator) = after_path.strip_prefix('=') else {
        let operator = after_path.split_whitespace().next().unwrap_or("");
        return Err(format!("operator {operator} is not an equality"));
    };
    let quoted = after_operator.trim_start().strip_prefix('\'').ok_or("value is not a quoted string")?;
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, ch)) = chars.next() {
        match ch {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '\'' => return Ok(((path, value), &quoted[at + 1..])),
            other => value.push(other),
        }
    }
    Err("unterminated string".into())
}

/// A STIX 2.1 bundle of what a report names: an indicator per value,
/// a vulnerability per CVE, an attack pattern per ATT&CK technique. Ids are
/// derived from the values, so the same report gives the same bundle.
/// `created` is an RFC 3339 time.
pub fn bundle_of(extracted: &crate::extract::Extracted, created: &str) -> Value {
    let mut objects = Vec::new();
    for (kind, value) in &extracted.indicators {
        let Some(pattern) = pattern_of(*kind, value) else { continue };
        objects.push(serde_json::json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": stix_id("indicator", &pattern),
            "created": created,
            "modified": created,
            "name": value,
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": created,
        }));
    }
    for cve in &extracted.cves {
        objects.push(serde_json::json!({
            "type": "vulnerability",
            "spec_version": "2.1",
            "id": stix_id("vulnerability", cve),
            "created": created,
            "modified": created,
            "name": cve,
            "external_references": [{"source_name": "cve", "external_id": cve}],
        }));
    }
    for technique in &extracted.techniques {
        objects.push(serde_json::json!({
            "type": "attack-pattern",
            "spec_version": "2.1",
            "id": stix_id("attack-pattern", technique),
            "created": created,
            "modified": created,
            "name": technique,
            "external_references": [{"source_name": "mitre-attack", "external_id": technique}],
        }));
    }
    let bundle_key: String = objects.iter().filter_map(|object| object["id"].as_str()).collect();
    serde_json::json!({"type": "bundle", "id": stix_id("bundle", &bundle_key), "objects": objects})
}

/// Indicators as a STIX 2.1 bundle that [`import_bundle`] reads back the
/// same (for indicators kept by Riposte itself, such as those added through
/// the API). Kinds with no STIX pattern are left out.
pub fn bundle_from_indicators(indicators: &[Indicator], created: &str) -> Value {
    let time = |ms: Option<i64>| ms.and_then(time_text).map(Value::String).unwrap_or(Value::Null);
    let objects: Vec<Value> = indicators
        .iter()
        .filter_map(|indicator| {
            let pattern = pattern_of(indicator.kind, &indicator.value)?;
            let mut object = serde_json::json!({
                "type": "indicator",
                "spec_version": "2.1",
                "id": stix_id("indicator", &format!("{pattern}|{}", indicator.sources.join(","))),
                "created": created,
                "modified": created,
                "pattern": pattern,
                "pattern_type": "stix",
                "valid_from": time(indicator.first_seen).as_str().unwrap_or(created),
                "confidence": indicator.confidence,
                "revoked": indicator.revoked,
                "labels": indicator.tags,
            });
            if let Some(until) = time(indicator.valid_until).as_str() {
                object["valid_until"] = Value::String(until.to_owned());
            }
            Some(object)
        })
        .collect();
    serde_json::json!({"type": "bundle", "id": stix_id("bundle", created), "objects": objects})
}

/// RFC 3339 UTC text of a time in ms since the epoch.
fn time_text(ms: i64) -> Option<String> {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (0..=9999).contains(&year).then(|| {
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", of_day / 3600, (of_day / 60) % 60, of_day % 60)
    })
}

/// The STIX pattern matching one value.
fn pattern_of(kind: IndicatorKind, value: &str) -> Option<String> {
    let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
    let path = match kind {
        IndicatorKind::Ip | IndicatorKind::Cidr if value.contains(':') => "ipv6-addr:value",
        IndicatorKind::Ip | IndicatorKind::Cidr => "ipv4-addr:value",
        IndicatorKind::Domain => "domain-name:value",
        IndicatorKind::Url => "url:value",
        IndicatorKind::Email => "email-addr:value",
        IndicatorKind::Md5 => "file:hashes.MD5",
        IndicatorKind::Sha1 => "file:hashes.'SHA-1'",
        IndicatorKind::Sha256 => "file:hashes.'SHA-256'",
        IndicatorKind::FileName => "file:name",
        IndicatorKind::RegistryKey => "windows-registry-key:key",
        IndicatorKind::Ja3 | IndicatorKind::Ja4 | IndicatorKind::UserAgent => return None,
    };
    Some(format!("[{path} = '{quoted}']"))
}

/// `type--uuid`, the UUID (version 5 in shape) derived from `key`.
fn stix_id(kind: &str, key: &str) -> String {
    let hash = |seed: u64| {
        format!("{kind}\0{key}")
            .bytes()
            .fold(seed, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
    };
    let (high, low) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    let high = (high & !0xf000) | 0x5000; // version 5
    let low = (low & !(0xc000 << 48)) | (0x8000 << 48); // RFC 4122 variant
    format!(
        "{kind}--{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_are_lists_of_values() {
        assert_eq!(
            pattern_values("[ipv4-addr:value = '10.0.0.0']").unwrap().0,
            [(IndicatorKind::Ip, "10.0.0.0".into())]
        );
        assert_eq!(
            pattern_values("[domain-name:value = 'www.Evil.example' OR ipv4-addr:value = '113.10.246.30']").unwrap().0,
            [(IndicatorKind::Domain, "www.evil.example".into()), (IndicatorKind::Ip, "113.10.246.30".into())]
        );
        let (kept, rejected) =
            pattern_values("[domain-name:value = 'domain bad.example' OR ipv4-addr:value = '60.10.1.115']").unwrap();
        assert_eq!((kept.len(), rejected.len()), (1, 1), "the valid value is kept");
        assert_eq!(
            pattern_values("[ipv4-addr:value = '223.166.0.0/15'] OR [file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C']")
                .unwrap()
                .0
                .iter()
                .map(|(kind, _)| *kind)
                .collect::<Vec<_>>(),
            [IndicatorKind::Cidr, IndicatorKind::Sha256]
        );
        assert_eq!(
            pattern_values("[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']").unwrap().0[0].0,
            IndicatorKind::Md5
        );
        assert_eq!(pattern_values(r"[file:name = 'it\'s.exe']").unwrap().0[0].1, "it's.exe");
    }

    #[test]
    fn other_patterns_say_why_not() {
        for (pattern, reason) in [
            ("[email-message:subject MATCHES '^[IMPORTANT]']", "MATCHES"),
            ("[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = '443']", "AND"),
            ("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.example']", "FOLLOWEDBY"),
            ("[process:name = 'x']", "path process:name"),
            ("[ipv4-addr:value = '1.2.3.4'] WITHIN 10 SECONDS", "WITHIN"),
            ("[ipv4-addr:value = '1.2.3.4'] [ipv4-addr:value = '1.2.3.5']", "not joined"),
        ] {
            let error = pattern_values(pattern).unwrap_err();
            assert!(error.contains(reason), "{pattern}: {error}");
        }
    }
}
