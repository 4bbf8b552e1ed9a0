//! STIX bundles of the corpus (`../shared/corpus/intel`, read in place):
//! the OASIS examples and threat reports, and the MITRE ATT&CK bundle.

use std::path::PathBuf;

use riposte_intel::{ContextKind, IndicatorKind, IndicatorSet, import_bundle};

fn corpus(path: &str) -> Option<String> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/intel").join(path);
    match std::fs::read_to_string(&full) {
        Ok(text) => Some(text),
        Err(_) => {
            eprintln!("SKIPPED: {} is absent", full.display());
            None
        }
    }
}

#[test]
fn the_poison_ivy_report() {
    let Some(text) = corpus("stix21-examples/threat-reports/poisonivy.json") else { return };
    let import = import_bundle(&text, "oasis").unwrap();
    assert_eq!(import.counts["indicator"], 25);
    assert_eq!(import.counts["relationship"], 90);
    assert!(import.errors.is_empty(), "{:?}", import.errors);
    // One value of the report is no domain (`domain autuo.xicp.net`): said,
    // and the address beside it kept.
    assert_eq!(import.unmatchable.len(), 1, "{:?}", import.unmatchable);
    assert!(import.unmatchable[0].2.contains("autuo.xicp.net"));
    assert!(import.indicators.iter().any(|indicator| indicator.value == "60.10.1.115"));
    // `[domain-name:value = ... OR ipv4-addr:value = ...]` gives several values.
    assert!(import.indicators.len() > 25, "{}", import.indicators.len());
    let mut set = IndicatorSet::new();
    for indicator in import.indicators {
        set.insert(indicator);
    }
    let id = set.exact_id(IndicatorKind::Domain, "www.webserver.dynssl.com").expect("a domain of the report");
    let indicator = set.get(id);
    // Linked through its relationships: the malware it indicates, and the
    // campaign that malware is attributed to; and the report listing it.
    let has = |kind: ContextKind, name: &str| {
        indicator.context.iter().any(|link| link.kind == kind && link.name.contains(name))
    };
    assert!(has(ContextKind::Malware, "PIVY"), "{:?}", indicator.context);
    assert!(has(ContextKind::Campaign, "admin@338"), "{:?}", indicator.context);
    assert!(has(ContextKind::Report, "Poison Ivy"), "{:?}", indicator.context);
    let mut found = Vec::new();
    set.match_ip("219.76.208.163".parse().unwrap(), &mut found);
    assert_eq!(found.len(), 1);
}

#[test]
fn apt1_networks_and_the_email_example() {
    let Some(text) = corpus("stix21-examples/threat-reports/apt1.json") else { return };
    let import = import_bundle(&text, "oasis").unwrap();
    let networks = import.indicators.iter().filter(|indicator| indicator.kind == IndicatorKind::Cidr).count();
    assert!(networks >= 3, "{networks}");
    let mut set = IndicatorSet::new();
    for indicator in import.indicators {
        set.insert(indicator);
    }
    let mut found = Vec::new();
    set.match_ip("223.167.1.1".parse().unwrap(), &mut found);
    assert_eq!(found.len(), 1, "inside 223.166.0.0/15");

    let Some(text) = corpus("stix21-examples/malicious-email-indicator-with-attachment.json") else { return };
    let import = import_bundle(&text, "oasis").unwrap();
    assert!(import.indicators.is_empty());
    assert_eq!(import.unmatchable.len(), 2, "MATCHES patterns are kept and reported");
    assert!(import.unmatchable.iter().all(|(_, _, reason)| reason.contains("MATCHES")));
}

#[test]
fn the_attack_enterprise_bundle() {
    let Some(text) = corpus("mitre-attack/enterprise-attack.json") else { return };
    let import = import_bundle(&text, "mitre-attack").unwrap();
    // The corpus README's counts.
    for (kind, count) in [
        ("attack-pattern", 835),
        ("x-mitre-tactic", 14),
        ("intrusion-set", 187),
        ("malware", 696),
        ("tool", 91),
        ("campaign", 52),
        ("relationship", 20_048),
    ] {
        assert_eq!(import.counts.get(kind), Some(&count), "{kind}");
    }
    assert_eq!(import.counts.values().sum::<usize>(), 22_341);
    assert!(import.errors.is_empty());
    let technique = import.context.values().find(|link| link.id.as_deref() == Some("T1059.001")).unwrap();
    assert_eq!((technique.kind, technique.name.as_str()), (ContextKind::Technique, "PowerShell"));
    let group = import.context.values().find(|link| link.id.as_deref() == Some("G0007")).unwrap();
    assert_eq!(group.kind, ContextKind::ThreatActor);
}

#[test]
fn a_report_becomes_a_bundle_that_reads_back() {
    let report = "C2 at hxxp://evil[.]example/gate and 45.77.12.9; hash d41d8cd98f00b204e9800998ecf8427e; CVE-2024-3400; T1059.001";
    let extracted = riposte_intel::extract(report);
    let bundle = riposte_intel::stix::bundle_of(&extracted, "2026-11-30T00:00:00Z");
    assert_eq!(
        bundle,
        riposte_intel::stix::bundle_of(&extracted, "2026-11-30T00:00:00Z"),
        "the same report, the same ids"
    );
    let types: Vec<&str> =
        bundle["objects"].as_array().unwrap().iter().map(|object| object["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["indicator", "indicator", "indicator", "vulnerability", "attack-pattern"]);
    let id = bundle["objects"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("indicator--") && id.len() == "indicator--".len() + 36 && &id[25..26] == "5", "{id}");
    // Read back by the importer: the same values.
    let import = import_bundle(&bundle.to_string(), "report").unwrap();
    let mut values: Vec<String> = import.indicators.iter().map(|indicator| indicator.value.clone()).collect();
    values.sort();
    assert_eq!(values, ["45.77.12.9", "d41d8cd98f00b204e9800998ecf8427e", "http://evil.example/gate"]);
}

#[test]
fn indicators_kept_as_a_bundle_read_back_the_same() {
    use riposte_intel::Indicator;
    let mut kept = Indicator::new(IndicatorKind::Domain, "evil.example", "api");
    kept.confidence = 75;
    kept.first_seen = Some(1_795_946_400_000);
    kept.valid_until = Some(1_798_538_400_000);
    kept.tags = vec!["phishing".into()];
    let mut gone = Indicator::new(IndicatorKind::Ip, "45.77.12.9", "api");
    gone.revoked = true;
    let bundle = riposte_intel::stix::bundle_from_indicators(&[kept.clone(), gone], "2026-11-30T00:00:00Z");
    let import = import_bundle(&bundle.to_string(), "api").unwrap();
    assert_eq!(import.indicators.len(), 2);
    let back = &import.indicators[0];
    assert_eq!((back.kind, back.value.as_str(), back.confidence), (kept.kind, "evil.example", 75));
    assert_eq!((back.first_seen, back.valid_until), (kept.first_seen, kept.valid_until));
    assert_eq!(back.tags, ["phishing"]);
    assert!(import.indicators[1].revoked);
}

#[test]
fn sightings_refresh_the_indicator_they_are_of() {
    let bundle = r#"{"type": "bundle", "id": "bundle--s", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--a", "pattern": "[ipv4-addr:value = '45.77.12.9']",
         "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--b", "pattern": "[ipv4-addr:value = '45.77.12.10']",
         "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"},
        {"type": "sighting", "spec_version": "2.1", "id": "sighting--1", "sighting_of_ref": "indicator--a",
         "first_seen": "2026-11-01T00:00:00Z", "last_seen": "2026-11-20T00:00:00Z"},
        {"type": "sighting", "spec_version": "2.1", "id": "sighting--2", "sighting_of_ref": "indicator--a",
         "last_seen": "2026-06-01T00:00:00Z"}]}"#;
    let import = import_bundle(bundle, "feed").unwrap();
    let day = |text: &str| riposte_intel::feed::parse_time(text).unwrap();
    assert_eq!(import.indicators[0].last_seen, Some(day("2026-11-20T00:00:00Z")), "the latest sighting");
    assert_eq!(import.indicators[1].last_seen, None, "never sighted");
    assert_eq!(import.counts["sighting"], 2);
    // The sighted one is still live by the built-in model for addresses (30 days).
    let policy = riposte_intel::DecayPolicy::default();
    let at = day("2026-11-25T00:00:00Z");
    assert!(policy.is_live(&import.indicators[0], at));
    assert!(!policy.is_live(&import.indicators[1], at), "valid_from eleven months back");
}
