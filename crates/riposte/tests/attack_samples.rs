//! The public attack samples in `../shared/corpus/evtx`, hunted with the
//! SigmaHQ rules and with the built-in starter pack.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use riposte::rules::{self, RuleOptions};

/// The titles of the rules that fire on one sample file.
fn titles(loaded: &riposte::rules::LoadedRules, file: &Path) -> BTreeSet<String> {
    let mut events = common::evtx_events(file);
    assert!(events.skipped.is_empty(), "{}: {:?}", file.display(), events.skipped);
    let mut scratch = loaded.engine.new_scratch();
    let mut matched = Vec::new();
    let mut titles = BTreeSet::new();
    for event in &mut events.events {
        loaded.engine.matches(event, &mut scratch, &mut matched);
        titles.extend(matched.iter().map(|&rule| loaded.engine.rule(rule).meta.title.clone()));
    }
    titles
}

fn expect(loaded: &riposte::rules::LoadedRules, evtx: &Path, file: &str, wanted: &[&str]) {
    let found = titles(loaded, &evtx.join(file));
    for title in wanted {
        assert!(found.contains(*title), "{file}: expected {title:?}, found {found:?}");
    }
}

#[test]
fn sigmahq_rules_find_the_known_attacks() {
    let (Some(evtx), Some(sigma)) =
        (common::corpus_or_skip("evtx", "sigmahq_rules_find_the_known_attacks"), common::corpus("sigma/rules"))
    else {
        return;
    };
    let loaded = common::load_rules(&[sigma]);
    expect(
        &loaded,
        &evtx,
        "Credential Access/CA_DCSync_4662.evtx",
        &["Active Directory Replication from Non Machine Account - DcSync Indicator"],
    );
    expect(
        &loaded,
        &evtx,
        "Credential Access/CA_Mimikatz_Memssp_Default_Logs_Sysmon_11.evtx",
        &["HackTool - Mimikatz Kirbi File Creation"],
    );
    expect(
        &loaded,
        &evtx,
        "Credential Access/sysmon_10_lsass_mimikatz_sekurlsa_logonpasswords.evtx",
        &["HackTool - Generic Process Access"],
    );
    expect(
        &loaded,
        &evtx,
        "Lateral Movement/LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx",
        &["Outgoing Logon with New Credentials", "Pass the Hash Activity 2", "Successful Overpass the Hash Attempt"],
    );
    expect(
        &loaded,
        &evtx,
        "Privilege Escalation/sysmon_privesc_psexec_dwell.evtx",
        &["PsExec Service Execution", "PsExec Service Child Process Execution as LOCAL SYSTEM"],
    );
    expect(&loaded, &evtx, "Lateral Movement/LM_renamed_psexecsvc_5145.evtx", &["Suspicious PsExec Execution"]);
    expect(
        &loaded,
        &evtx,
        "Credential Access/sysmon_10_11_lsass_memdump.evtx",
        &["LSASS Process Memory Dump Files", "LSASS Process Memory Dump Creation Via Taskmgr.EXE"],
    );
    // Only Security 4662 events are in this sample: exactly the one rule for
    // them fires (no rule of another log source is ever evaluated on them).
    assert_eq!(
        titles(&loaded, &evtx.join("Credential Access/CA_DCSync_4662.evtx")),
        BTreeSet::from(["Active Directory Replication from Non Machine Account - DcSync Indicator".to_owned()])
    );
}

#[test]
fn starter_pack_finds_the_known_attacks() {
    let Some(evtx) = common::corpus_or_skip("evtx", "starter_pack_finds_the_known_attacks") else { return };
    let loaded = rules::load(&RuleOptions::default()).unwrap();
    expect(
        &loaded,
        &evtx,
        "Credential Access/sysmon_10_1_memdump_comsvcs_minidump.evtx",
        &["LSASS Dumped With Comsvcs MiniDump"],
    );
    expect(
        &loaded,
        &evtx,
        "Credential Access/CA_DCSync_4662.evtx",
        &["Directory Replication Requested by a User Account"],
    );
    expect(
        &loaded,
        &evtx,
        "Credential Access/sysmon_10_lsass_mimikatz_sekurlsa_logonpasswords.evtx",
        &["LSASS Opened With Memory-Read Rights"],
    );
    expect(
        &loaded,
        &evtx,
        "Lateral Movement/LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx",
        &["New-Credentials Logon Through Seclogo"],
    );
    expect(
        &loaded,
        &evtx,
        "Privilege Escalation/sysmon_privesc_psexec_dwell.evtx",
        &["PsExec Service Running a Command"],
    );
    expect(&loaded, &evtx, "Execution/exec_sysmon_lobin_regsvr32_sct.evtx", &["Regsvr32 Running a Remote Scriptlet"]);
}

/// The index only decides which rules to evaluate: on every event of the
/// corpus, indexed matching must find exactly what evaluating every rule of
/// the event's log source finds.
#[test]
fn index_finds_what_brute_force_finds() {
    let (Some(evtx), Some(sigma)) =
        (common::corpus_or_skip("evtx", "index_finds_what_brute_force_finds"), common::corpus("sigma"))
    else {
        return;
    };
    let loaded = common::load_rules(&[
        sigma.join("rules"),
        sigma.join("rules-emerging-threats"),
        sigma.join("rules-threat-hunting"),
    ]);
    let mut files = common::evtx_files(&evtx);
    files.extend(common::evtx_files(&sigma.join("regression_data")));
    let mut scratch = loaded.engine.new_scratch();
    let (mut indexed, mut brute) = (Vec::new(), Vec::new());
    let (mut events, mut detections) = (0, 0);
    for file in &files {
        for mut event in common::evtx_events(file).events {
            let mut copy = event.clone();
            loaded.engine.matches(&mut event, &mut scratch, &mut indexed);
            loaded.engine.matches_unindexed(&mut copy, &mut scratch, &mut brute);
            assert_eq!(indexed, brute, "{} record {:?}", file.display(), event.record_id);
            events += 1;
            detections += indexed.len();
        }
    }
    eprintln!("{events} events from {} files, {detections} detections, index and brute force agree", files.len());
    assert!(events > 8_000 && detections > 1_000);
}
