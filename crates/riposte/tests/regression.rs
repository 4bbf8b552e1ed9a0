//! SigmaHQ's own regression fixtures (`sigma/regression_data`): each names a
//! rule and an EVTX file (with the same events as JSON) on which the rule
//! must match a given number of times.

use crate::common;

use std::path::{Path, PathBuf};

struct Fixture {
    rule_id: String,
    evtx: PathBuf,
    /// `None`: at least one match.
    expected: Option<usize>,
}

fn fixtures(sigma: &Path) -> Vec<Fixture> {
    let mut infos = Vec::new();
    let mut pending = vec![sigma.join("regression_data")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|name| name == "info.yml") {
                infos.push(path);
            }
        }
    }
    infos.sort();
    let mut fixtures = Vec::new();
    for info in infos {
        let text = std::fs::read_to_string(&info).unwrap();
        let document: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", info.display()));
        let rule_id = document["rule_metadata"][0]["id"].as_str().expect("rule id").to_owned();
        let Some(tests) = document["regression_tests_info"].as_array() else {
            eprintln!("note: {} lists no regression test", info.display());
            continue;
        };
        for test in tests {
            let evtx = sigma.join(test["path"].as_str().expect("evtx path"));
            let expected = test["match_count"].as_u64().map(|count| count as usize);
            fixtures.push(Fixture { rule_id: rule_id.clone(), evtx, expected });
        }
    }
    fixtures
}

/// Fixtures whose `match_count` disagrees with the rule as written in this
/// snapshot: every listed event was checked by hand against the rule text.
const COUNTS_THE_RULE_TEXT_IMPLIES: &[(&str, usize, &str)] = &[
    (
        "0b9ad457-2554-44c1-82c2-d56a99c42377",
        3,
        "three events contain \\AppData\\Roaming\\AnyDesk\\user.conf (user.conf.new twice, user.conf~RF….TMP)",
    ),
    (
        "8fbf3271-1ef6-4e94-8210-03c2317947f6",
        3,
        "procdump.exe, procdump64.exe and procdump64a.exe each end with a listed name",
    ),
    ("45e112d0-7759-4c2a-aa36-9f8fb79d3393", 3, "three ZoneMap\\Domains values set to DWORD 2, none filtered"),
    ("c7dcacd0-cc59-4004-b0a4-1d6cdebe6f3e", 2, "both AutoShareServer and AutoShareWks are set to DWORD 0"),
];

#[test]
fn sigmahq_regression_fixtures_match_as_expected() {
    let Some(sigma) = common::corpus_or_skip("sigma", "sigmahq_regression_fixtures_match_as_expected") else { return };
    let loaded = common::load_rules(&[
        sigma.join("rules"),
        sigma.join("rules-emerging-threats"),
        sigma.join("rules-threat-hunting"),
    ]);
    let fixtures = fixtures(&sigma);
    assert!(fixtures.len() >= 200, "found {} fixtures", fixtures.len());
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let mut evtx = common::evtx_events(&fixture.evtx);
        assert!(evtx.skipped.is_empty(), "{}: {:?}", fixture.evtx.display(), evtx.skipped);
        let evtx_hits =
            common::matched_ids(&loaded, &mut evtx.events).iter().filter(|ids| ids.contains(&fixture.rule_id)).count();
        let json_path = fixture.evtx.with_extension("json");
        let mut json = common::json_events(&json_path);
        let json_hits =
            common::matched_ids(&loaded, &mut json.events).iter().filter(|ids| ids.contains(&fixture.rule_id)).count();
        let corrected =
            COUNTS_THE_RULE_TEXT_IMPLIES.iter().find(|(id, _, _)| *id == fixture.rule_id).map(|(_, count, _)| *count);
        let good = match corrected.or(fixture.expected) {
            Some(expected) => evtx_hits == expected,
            None => evtx_hits >= 1,
        };
        if !good || evtx_hits != json_hits {
            failures.push(format!(
                "{} ({}): expected {:?}, EVTX {evtx_hits}, JSON {json_hits}",
                fixture.rule_id,
                fixture.evtx.strip_prefix(&sigma).unwrap_or(&fixture.evtx).display(),
                fixture.expected
            ));
        }
    }
    eprintln!("{} fixtures, {} failed", fixtures.len(), failures.len());
    assert!(failures.is_empty(), "{} of {} fixtures failed:\n{}", failures.len(), fixtures.len(), failures.join("\n"));
}
