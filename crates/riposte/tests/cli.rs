//! The `riposte` command as a user runs it: real files in a temporary
//! directory, the real binary, its output, messages and exit codes.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::common;

fn riposte() -> Command {
    let mut command = Command::cargo_bin("riposte").expect("the riposte binary");
    command.env("NO_COLOR", "1");
    command
}

/// A Sysmon process creation event, as flat JSON the way forwarders write it.
fn process_creation(record: u64, time: &str, image: &str, command_line: &str) -> String {
    serde_json::json!({
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": "WS-042.corp.example",
        "EventRecordID": record,
        "UtcTime": time,
        "Image": image,
        "CommandLine": command_line,
        "ParentImage": r"C:\Windows\System32\cmd.exe",
        "User": r"CORP\alice",
    })
    .to_string()
}

/// JSON lines with two Mimikatz runs, an event that matches nothing, and
/// (with `bad_line`) a line that is not JSON in the middle.
fn write_logs(dir: &Path, bad_line: bool) -> PathBuf {
    let mut lines = vec![
        process_creation(
            11,
            "2026-11-02 10:00:01.000",
            r"C:\Users\alice\m.exe",
            r#"m.exe "privilege::debug" "sekurlsa::logonpasswords" exit"#,
        ),
        process_creation(12, "2026-11-02 10:00:02.000", r"C:\Windows\System32\notepad.exe", "notepad.exe report.txt"),
    ];
    if bad_line {
        lines.push("{\"EventID\": 1, \"Channel\": oops".into());
    }
    lines.push(process_creation(
        13,
        "2026-11-02 10:05:00.000",
        r"C:\Users\alice\m.exe",
        r#"m.exe "lsadump::sam" exit"#,
    ));
    let path = dir.join("sysmon.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn hunt_reports_detections_for_people_and_machines() {
    let dir = tempfile::tempdir().unwrap();
    let logs = write_logs(dir.path(), false);

    // For a person: grouped by rule, with level, title, technique and the key fields.
    let output = riposte().args(["hunt"]).arg(&logs).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "detections exit with 1: {}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("CRITICAL Mimikatz Commands on a Command Line  (2 detections)"), "{text}");
    assert!(text.contains("T1003.001 OS Credential Dumping: LSASS Memory"), "{text}");
    assert!(text.contains("WS-042.corp.example"), "{text}");
    assert!(text.contains(r#"CommandLine=m.exe "lsadump::sam" exit"#), "{text}");
    let summary = stderr(&output);
    assert!(summary.contains("1 files, 3 events"), "{summary}");
    assert!(summary.contains("2 detections from 1 rules"), "{summary}");
    assert!(summary.contains("events/s") && summary.contains("MiB/s"), "{summary}");

    // For machines: the public field names, in order of time.
    let output = riposte().args(["hunt", "--format", "jsonl"]).arg(&logs).output().unwrap();
    let detections: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(detections.len(), 2);
    let first = &detections[0];
    assert_eq!(first["rule_id"], "75fc646d-bebd-4bd8-b45b-6ea93c6f1094");
    assert_eq!(first["rule_title"], "Mimikatz Commands on a Command Line");
    assert_eq!(first["level"], "critical");
    assert_eq!(first["status"], "stable");
    assert_eq!(first["techniques"], serde_json::json!(["T1003.001"]));
    assert_eq!(first["file"], logs.display().to_string());
    assert_eq!(first["record_id"], 11);
    assert_eq!(first["timestamp"], "2026-11-02T10:00:01Z");
    assert_eq!(first["computer"], "WS-042.corp.example");
    assert_eq!(first["event"]["Image"], r"C:\Users\alice\m.exe");
    assert_eq!(detections[1]["record_id"], 13);

    let output = riposte().args(["hunt", "--format", "json"]).arg(&logs).output().unwrap();
    let array: Vec<Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(array, detections, "json is the same detections as an array");

    let output = riposte().args(["hunt", "--format", "csv"]).arg(&logs).output().unwrap();
    let csv = stdout(&output);
    let mut rows = csv.lines();
    let header = rows.next().unwrap();
    for column in
        ["rule_id", "rule_title", "level", "status", "techniques", "file", "record_id", "timestamp", "computer"]
    {
        assert!(header.split(',').any(|name| name == column), "{column} missing from {header}");
    }
    assert_eq!(rows.count(), 2, "{csv}");

    // --output writes there, and nothing to standard output.
    let file = dir.path().join("detections.jsonl");
    let output = riposte().args(["hunt", "--format", "jsonl", "--output"]).arg(&file).arg(&logs).output().unwrap();
    assert!(stdout(&output).is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2);
}

#[test]
fn nothing_found_exits_with_zero() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("quiet.jsonl");
    std::fs::write(&logs, process_creation(1, "2026-11-02 10:00:00.000", r"C:\x\notepad.exe", "notepad") + "\n")
        .unwrap();
    let output = riposte().args(["hunt", "--format", "jsonl"]).arg(&logs).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
}

#[test]
fn rules_are_selected_by_level_status_and_tag() {
    let dir = tempfile::tempdir().unwrap();
    let logs = write_logs(dir.path(), false);
    let count = |extra: &[&str]| {
        let output = riposte().args(["hunt", "--format", "jsonl"]).args(extra).arg(&logs).output().unwrap();
        stdout(&output).lines().count()
    };
    assert_eq!(count(&["--min-level", "critical"]), 2);
    assert_eq!(count(&["--tag", "attack.t1003"]), 2, "a technique selects its sub-techniques");
    assert_eq!(count(&["--tag", "attack.t1059"]), 0);
    assert_eq!(count(&["--status", "stable"]), 2);
    let output = riposte().args(["hunt", "--status", "experimental"]).arg(&logs).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "no rule left is a rule error");
    assert!(stderr(&output).contains("no rule could be used"), "{}", stderr(&output));
}

#[test]
fn bad_json_lines_are_named_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let logs = write_logs(dir.path(), true);
    let output = riposte().args(["hunt", "--format", "jsonl"]).arg(&logs).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let messages = stderr(&output);
    assert!(messages.contains(&format!("{}", logs.display())) && messages.contains("line 3"), "{messages}");
    assert!(messages.contains("3 events") && messages.contains("1 records skipped"), "{messages}");
    assert_eq!(stdout(&output).lines().count(), 2, "the events after the bad line are read");
}

#[test]
fn broken_evtx_files_are_named_and_every_other_file_is_read() {
    let Some(evtx) = common::corpus_or_skip("evtx", "broken_evtx_files_are_named_and_every_other_file_is_read") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read(evtx.join("Credential Access/CA_DCSync_4662.evtx")).unwrap();
    // A copy whose first chunk is scrambled past its header, and one cut short.
    let mut corrupt = sample.clone();
    for byte in &mut corrupt[4096 + 600..4096 + 9000] {
        *byte = byte.wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(dir.path().join("corrupt.evtx"), &corrupt).unwrap();
    std::fs::write(dir.path().join("truncated.evtx"), &sample[..4096 + 20_000]).unwrap();
    std::fs::write(dir.path().join("intact.evtx"), &sample).unwrap();
    std::fs::write(dir.path().join("not-a-log.evtx"), b"hello").unwrap();

    let output = riposte()
        .args(["hunt", "--format", "jsonl", "--rules"])
        .arg(evtx.join("../sigma/rules/windows/builtin/security"))
        .arg(dir.path())
        .output()
        .unwrap();
    let messages = stderr(&output);
    assert!(messages.contains("corrupt.evtx"), "{messages}");
    assert!(messages.contains("truncated.evtx"), "{messages}");
    assert!(messages.contains("not-a-log.evtx"), "{messages}");
    // The intact copy is fully read: its DCSync detection is there.
    let detections: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(
        detections.iter().any(|detection| detection["file"].as_str().unwrap().ends_with("intact.evtx")
            && detection["rule_title"].as_str().unwrap().contains("DcSync")),
        "{messages}"
    );
    assert!(!messages.contains(" 0 records skipped"), "damage is counted: {messages}");
}

/// A rule directory with one good rule and three broken ones.
fn write_rules(dir: &Path) {
    std::fs::write(
        dir.join("good.yml"),
        "title: Notepad\nid: 2f0c7f5e-1b0b-4a53-9b7e-2f2f1d1a0a01\nstatus: test\nlevel: low\nlogsource: {product: windows, category: process_creation}\ndetection:\n  selection:\n    Image|endswith: '\\notepad.exe'\n  condition: selection\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad_yaml.yml"), "title: Broken\ndetection: [unclosed\n").unwrap();
    std::fs::write(
        dir.join("bad_modifier.yml"),
        "title: Bad modifier\nlogsource: {product: windows}\ndetection:\n  selection:\n    Image|sortof: x\n  condition: selection\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bad_regex.yml"),
        "title: Bad regex\nlogsource: {product: windows}\ndetection:\n  selection:\n    CommandLine|re: '(unclosed'\n  condition: selection\n",
    )
    .unwrap();
}

#[test]
fn broken_rules_are_named_and_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    write_rules(&rules);
    let logs = write_logs(dir.path(), false);

    let output = riposte().args(["hunt", "--format", "jsonl", "--rules"]).arg(&rules).arg(&logs).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let messages = stderr(&output);
    for (file, reason) in [
        ("bad_yaml.yml", ""),
        ("bad_modifier.yml", "unknown modifier \"sortof\""),
        ("bad_regex.yml", "does not compile"),
    ] {
        let line =
            messages.lines().find(|line| line.contains(file)).unwrap_or_else(|| panic!("{file} not named: {messages}"));
        assert!(line.contains(reason), "{line}");
    }
    assert_eq!(stdout(&output).lines().count(), 1, "the good rule still runs");

    let output = riposte().args(["rules", "check"]).arg(&rules).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let report = stdout(&output);
    assert_eq!(report.lines().last(), Some("4 rules, 1 loaded, 3 failed"), "{report}");

    let output = riposte().args(["rules", "check", "--format", "json"]).arg(&rules).output().unwrap();
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!((json["rules"].as_u64(), json["loaded"].as_u64(), json["failed"].as_u64()), (Some(4), Some(1), Some(3)));
    let errors = json["errors"].as_array().unwrap();
    assert!(errors.iter().all(|error| error["file"].is_string() && error["reason"].is_string()), "{json}");
}

#[test]
fn missing_inputs_are_an_error_with_the_path() {
    let output = riposte().args(["hunt", "/nonexistent/logs"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("/nonexistent/logs"), "{}", stderr(&output));
}

#[test]
fn rules_update_downloads_and_unpacks_a_release() {
    let archive = {
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("rules/windows/notepad.yml", options).unwrap();
        std::io::Write::write_all(&mut zip, b"title: Notepad\nlogsource: {product: windows}\ndetection:\n  s:\n    Image|endswith: '\\notepad.exe'\n  condition: s\n").unwrap();
        zip.finish().unwrap();
        buffer.into_inner()
    };
    let evil = {
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        zip.start_file("../escape.yml", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut zip, b"title: x\n").unwrap();
        zip.finish().unwrap();
        buffer.into_inner()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/sigma.zip"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_bytes(archive))
            .mount(&server)
            .await;
        wiremock::Mock::given(wiremock::matchers::path("/evil.zip"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_bytes(evil))
            .mount(&server)
            .await;
        server
    });
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sigma");
    let output = riposte()
        .args(["rules", "update", "--url", &format!("{}/sigma.zip", server.uri()), "--dir"])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(target.join("rules/windows/notepad.yml").is_file());
    assert!(stdout(&output).contains("1 rules"), "{}", stdout(&output));

    let output = riposte()
        .args(["rules", "update", "--url", &format!("{}/evil.zip", server.uri()), "--dir"])
        .arg(&target)
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(!dir.path().join("escape.yml").exists());
    assert!(target.join("rules/windows/notepad.yml").is_file(), "a refused archive leaves the rules in place");
}

/// A failed logon (Security 4625) as flat JSON.
fn failed_logon(time: &str, user: &str, ip: &str) -> String {
    serde_json::json!({
        "EventID": 4625,
        "Channel": "Security",
        "Computer": "DC-01.corp.example",
        "TimeCreated": time,
        "TargetUserName": user,
        "IpAddress": ip,
        "LogonType": 3,
    })
    .to_string()
}

#[test]
fn correlations_run_over_every_file_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("failed_logon.yml"),
        "title: Failed logon\nname: failed_logon\nlevel: low\nlogsource: {product: windows, service: security}\ndetection:\n  selection: {EventID: 4625}\n  condition: selection\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("spraying.yml"),
        "title: Password spraying\nid: 6c3a1e4e-2f5b-4a7d-9b1c-0d2e3f4a5b6c\nlevel: high\ntags: [attack.credential-access, attack.t1110.003]\ncorrelation:\n  type: value_count\n  rules: failed_logon\n  group-by: [IpAddress]\n  timespan: 10m\n  condition: {field: TargetUserName, gte: 3}\n",
    )
    .unwrap();
    // Two files whose events interleave in time: only read together, in
    // order, do three users fail from one address within ten minutes.
    let first = [
        failed_logon("2026-11-02T10:00:00Z", "alice", "203.0.113.7"),
        failed_logon("2026-11-02T10:04:00Z", "carol", "203.0.113.7"),
        failed_logon("2026-11-02T11:00:00Z", "dave", "198.51.100.2"),
    ];
    let second = [
        failed_logon("2026-11-02T10:02:00Z", "bob", "203.0.113.7"),
        failed_logon("2026-11-02T10:30:00Z", "erin", "198.51.100.2"),
    ];
    std::fs::write(dir.path().join("dc1.jsonl"), first.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("dc2.jsonl"), second.join("\n") + "\n").unwrap();
    let logs = dir.path();

    let output = riposte().args(["hunt", "--format", "jsonl", "--rules"]).arg(&rules).arg(logs).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    // The failed logons feed the correlation and are not reported alone.
    assert_eq!(records.len(), 1, "{records:?}");
    let found = &records[0];
    assert_eq!(found["rule_title"], "Password spraying");
    assert_eq!(found["rule_id"], "6c3a1e4e-2f5b-4a7d-9b1c-0d2e3f4a5b6c");
    assert_eq!(found["level"], "high");
    assert_eq!(found["techniques"], serde_json::json!(["T1110.003"]));
    assert_eq!(found["timestamp"], "2026-11-02T10:04:00Z");
    assert_eq!(found["correlation"]["type"], "value_count");
    assert_eq!(found["correlation"]["first"], "2026-11-02T10:00:00Z");
    assert_eq!(found["correlation"]["group"], serde_json::json!({"IpAddress": "203.0.113.7"}));
    assert_eq!((found["correlation"]["value"].as_f64(), found["correlation"]["events"].as_u64()), (Some(3.0), Some(3)));
    let summary = stderr(&output);
    assert!(summary.contains("1 correlation matches from 5 detections"), "{summary}");

    let output = riposte().args(["hunt", "--rules"]).arg(&rules).arg(logs).output().unwrap();
    let text = stdout(&output);
    assert!(text.contains("HIGH     Password spraying  (correlation, 1 match)"), "{text}");
    assert!(text.contains("value_count over 10m"), "{text}");
    assert!(
        text.contains(
            "2026-11-02 10:00:00.000 → 2026-11-02 10:04:00.000  3 distinct TargetUserName  IpAddress=203.0.113.7"
        ),
        "{text}"
    );

    // A correlation whose rule is missing is named with the rule it lacks.
    std::fs::remove_file(rules.join("failed_logon.yml")).unwrap();
    let output = riposte().args(["hunt", "--rules"]).arg(&rules).arg(logs).output().unwrap();
    let messages = stderr(&output);
    assert!(messages.contains("Password spraying") && messages.contains("\"failed_logon\""), "{messages}");
}

#[test]
fn rules_run_on_the_logs_of_network_and_linux_tools() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let rule = |name: &str, text: &str| std::fs::write(rules.join(name), text).unwrap();
    // Generic categories: the mapping says which Zeek and Suricata fields they mean.
    rule(
        "dns.yml",
        "title: Lookup of a known bad domain\nlevel: high\nlogsource: {category: dns}\ndetection:\n  selection:\n    query|endswith: '.evil.example'\n  condition: selection\n",
    );
    rule(
        "proxy.yml",
        "title: Download with curl\nlevel: medium\nlogsource: {category: proxy}\ndetection:\n  selection:\n    c-useragent|startswith: 'curl/'\n    c-uri|endswith: '.ps1'\n  condition: selection\n",
    );
    rule(
        "auditd.yml",
        "title: Shadow file read\nlevel: high\nlogsource: {product: linux, service: auditd}\ndetection:\n  selection:\n    type: EXECVE\n    a1: /etc/shadow\n  condition: selection\n",
    );
    rule(
        "cef.yml",
        "title: Firewall denied\nlevel: low\nlogsource: {product: cef}\ndetection:\n  selection: {act: deny}\n  condition: selection\n",
    );
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(
        logs.join("dns.log"),
        "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.resp_h\tquery\tqtype_name\n#types\ttime\tstring\taddr\taddr\tstring\tstring\n1795946400.0\tC1\t10.0.0.5\t10.0.0.1\tupdate.evil.example\tA\n1795946401.0\tC2\t10.0.0.5\t10.0.0.1\twww.example.org\tA\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("eve.json"),
        r#"{"timestamp":"2026-11-29T10:00:02.000000+0000","flow_id":7,"event_type":"dns","src_ip":"10.0.0.6","dest_ip":"10.0.0.1","proto":"UDP","dns":{"type":"query","rrname":"c2.evil.example","rrtype":"A"}}
{"timestamp":"2026-11-29T10:00:03.000000+0000","flow_id":8,"event_type":"http","src_ip":"10.0.0.6","dest_ip":"203.0.113.9","proto":"TCP","http":{"hostname":"evil.example","url":"/stage.ps1","http_user_agent":"curl/8.5.0","http_method":"GET","status":200}}
"#,
    )
    .unwrap();
    std::fs::write(
        logs.join("audit.log"),
        "type=SYSCALL msg=audit(1795946404.000:9): syscall=59 success=yes comm=\"cat\" exe=\"/usr/bin/cat\"\ntype=EXECVE msg=audit(1795946404.000:9): argc=2 a0=\"cat\" a1=2F6574632F736861646F77\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("fw.log"),
        "<134>1 2026-11-29T10:00:05Z fw01 CEF - - - CEF:0|Vendor|NGFW|9.1|threat|Blocked|8|src=10.0.0.5 dst=203.0.113.9 act=deny\n",
    )
    .unwrap();

    // A Wazuh alert is reported as Wazuh raised it.
    std::fs::write(
        logs.join("alerts.json"),
        r#"{"timestamp":"2026-11-29T10:00:06.000+0000","rule":{"level":12,"description":"Multiple authentication failures","id":"40111","mitre":{"id":["T1110"]}},"agent":{"id":"002","name":"db01"},"manager":{"name":"wazuh"}}"#,
    )
    .unwrap();

    let output = riposte().args(["hunt", "--format", "jsonl", "--rules"]).arg(&rules).arg(&logs).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let mut records: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let wazuh = records.pop().unwrap();
    assert_eq!((wazuh["rule_id"].as_str(), wazuh["level"].as_str()), (Some("wazuh:40111"), Some("high")), "{wazuh}");
    assert_eq!(wazuh["rule_title"], "Multiple authentication failures");
    assert_eq!(wazuh["techniques"], serde_json::json!(["T1110"]));
    assert_eq!(wazuh["computer"], "db01", "the Wazuh agent is the computer");
    let found: Vec<(String, String)> = records
        .iter()
        .map(|record| {
            let file = record["file"].as_str().unwrap();
            let name = Path::new(file).file_name().unwrap().to_string_lossy().into_owned();
            (record["rule_title"].as_str().unwrap().to_owned(), name)
        })
        .collect();
    let expected = [
        ("Lookup of a known bad domain", "dns.log"),
        ("Lookup of a known bad domain", "eve.json"),
        ("Download with curl", "eve.json"),
        ("Shadow file read", "audit.log"),
        ("Firewall denied", "fw.log"),
    ]
    .map(|(title, file)| (title.to_owned(), file.to_owned()));
    assert_eq!(found, expected, "in time order");
    // Two audit records are one event.
    let summary = stderr(&output);
    assert!(summary.contains("5 files, 7 events") && summary.contains("1 alerts of other tools"), "{summary}");
    let output = riposte().args(["hunt", "--rules"]).arg(&rules).arg(&logs).output().unwrap();
    let text = stdout(&output);
    assert!(text.contains("HIGH     Multiple authentication failures  (1 alert raised by wazuh:40111)"), "{text}");
}

#[test]
fn intel_lookup_and_extract() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocklist.txt"), "# c2\n45.77.12.9\nevil[.]example\n").unwrap();
    std::fs::write(
        dir.path().join("feed.csv"),
        "indicator,type,confidence,tags\n45.77.12.9,ip,90,c2\n185.220.100.0/22,cidr,70,tor\n",
    )
    .unwrap();
    let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
        {"type":"indicator","spec_version":"2.1","id":"indicator--a","pattern":"[domain-name:value = 'evil.example']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z","confidence":80},
        {"type":"campaign","spec_version":"2.1","id":"campaign--c","name":"Operation Example"},
        {"type":"relationship","spec_version":"2.1","id":"relationship--r","relationship_type":"indicates","source_ref":"indicator--a","target_ref":"campaign--c"}]}"#;
    std::fs::write(dir.path().join("bundle.json"), bundle).unwrap();
    let misp = r#"{"Event": {"info": "Wave 3", "threat_level_id": "2", "Attribute": [{"type": "sha256", "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "to_ids": true}]}}"#;
    std::fs::write(dir.path().join("misp-event.json"), misp).unwrap();
    let intel = ["blocklist.txt", "feed.csv", "bundle.json", "misp-event.json"].map(|name| dir.path().join(name));

    let lookup = |value: &str| {
        let mut command = riposte();
        command.args(["intel", "lookup", value, "--format", "json"]);
        for file in &intel {
            command.arg("--intel").arg(file);
        }
        let output = command.output().unwrap();
        let json: Value = serde_json::from_str(&stdout(&output)).unwrap_or(Value::Null);
        (output.status.code(), json)
    };
    let (code, json) = lookup("45.77.12[.]9");
    assert_eq!(code, Some(1), "a match exits with 1");
    let found = &json["matches"][0]["indicator"];
    assert_eq!(found["sources"], serde_json::json!(["blocklist.txt", "feed.csv"]), "merged across feeds: {json}");
    assert_eq!(found["confidence"], 90);
    let (_, json) = lookup("cdn.evil.example");
    assert_eq!(json["matches"][0]["indicator"]["value"], "evil.example", "a subdomain matches");
    assert_eq!(json["matches"][0]["indicator"]["context"][0]["name"], "Operation Example");
    let (_, json) = lookup("185.220.101.4");
    assert_eq!(json["matches"][0]["indicator"]["value"], "185.220.100.0/22");
    let (_, json) = lookup("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08");
    assert_eq!(json["matches"][0]["indicator"]["context"][0]["name"], "Wave 3", "from the MISP event");
    assert_eq!(json["matches"][0]["indicator"]["confidence"], 70);
    let (code, json) = lookup("8.8.8.8");
    assert_eq!((code, json["matches"].as_array().map(Vec::len)), (Some(0), Some(0)));

    let report = dir.path().join("report.html");
    std::fs::write(
        &report,
        "<p>Beacon to <b>hxxps://c2[.]evil-cdn[.]net/a</b> &amp; 45.77.12.9; CVE-2024-3400, T1059.001.</p>",
    )
    .unwrap();
    let output = riposte().args(["intel", "extract", "--format", "json"]).arg(&report).output().unwrap();
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["indicators"][0], serde_json::json!({"type": "url", "value": "https://c2.evil-cdn.net/a"}));
    assert_eq!(json["indicators"][1], serde_json::json!({"type": "ip", "value": "45.77.12.9"}));
    assert_eq!(json["cves"], serde_json::json!(["CVE-2024-3400"]));
    let output = riposte().args(["intel", "extract", "--format", "stix"]).arg(&report).output().unwrap();
    let bundle: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(bundle["type"], "bundle");
    assert_eq!(bundle["objects"][0]["pattern"], "[url:value = 'https://c2.evil-cdn.net/a']");
    let output = riposte().args(["intel", "extract"]).arg(&report).output().unwrap();
    assert!(
        stdout(&output).contains("url      hxxps://c2[.]evil-cdn[.]net/a"),
        "defanged for a person: {}",
        stdout(&output)
    );
}

#[test]
fn hunt_matches_events_against_threat_intelligence() {
    let dir = tempfile::tempdir().unwrap();
    let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    std::fs::write(dir.path().join("c2.txt"), "45.77.12.0/24\n").unwrap();
    let bundle = format!(
        r#"{{"type":"bundle","id":"bundle--1","objects":[
        {{"type":"indicator","spec_version":"2.1","id":"indicator--h","pattern":"[file:hashes.'SHA-256' = '{sha256}']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z","confidence":85}},
        {{"type":"malware","spec_version":"2.1","id":"malware--m","name":"ExampleRAT","is_family":true}},
        {{"type":"relationship","spec_version":"2.1","id":"relationship--r","relationship_type":"indicates","source_ref":"indicator--h","target_ref":"malware--m"}}]}}"#
    );
    std::fs::write(dir.path().join("bundle.json"), bundle).unwrap();
    let events = [
        serde_json::json!({"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-1", "UtcTime": "2026-11-29 10:00:00.000", "DestinationIp": "45.77.12.9", "Image": "C:\\x\\a.exe"}),
        serde_json::json!({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-1", "UtcTime": "2026-11-29 10:00:01.000", "Image": "C:\\x\\b.exe", "Hashes": format!("MD5=D41D8CD98F00B204E9800998ECF8427E,SHA256={},IMPHASH=00", sha256.to_uppercase())}),
        serde_json::json!({"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-1", "UtcTime": "2026-11-29 10:00:02.000", "DestinationIp": "8.8.8.8"}),
    ];
    let logs = dir.path().join("sysmon.jsonl");
    std::fs::write(&logs, events.iter().map(|event| event.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    write_rules(&rules);
    let output = riposte()
        .args(["hunt", "--format", "jsonl", "--rules"])
        .arg(rules.join("good.yml"))
        .arg("--intel")
        .arg(dir.path().join("c2.txt"))
        .arg("--intel")
        .arg(dir.path().join("bundle.json"))
        .arg(&logs)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["rule_id"], "intel:ip:45.77.12.9");
    let intel = &records[0]["intel"];
    assert_eq!(
        (&intel["kind"], &intel["value"], &intel["field"]),
        (&Value::from("ip"), &Value::from("45.77.12.9"), &Value::from("DestinationIp"))
    );
    assert_eq!(intel["indicators"][0]["value"], "45.77.12.0/24", "the network that holds the address");
    assert_eq!(intel["indicators"][0]["score"], 50.0, "no dates: the confidence undecayed");
    let hash = &records[1]["intel"]["indicators"][0];
    assert_eq!(hash["context"][0]["name"], "ExampleRAT");
    assert!(hash["score"].as_f64().unwrap() > 80.0 && hash["score"].as_f64().unwrap() <= 85.0, "{hash}");
    assert_eq!(records[0]["level"], "medium", "a blocklist's default confidence");
    assert_eq!(records[1]["rule_id"], format!("intel:sha256:{sha256}"));
    assert_eq!(records[1]["level"], "high");
    assert!(records[1]["rule_title"].as_str().unwrap().contains("ExampleRAT"), "{}", records[1]["rule_title"]);
    assert!(stderr(&output).contains("2 threat-intelligence matches"), "{}", stderr(&output));
}

/// A configuration with a data directory and `feeds` (YAML flow maps) under
/// `intel.feeds`, in `dir`: (data directory, configuration file).
fn feeds_config(dir: &std::path::Path, feeds: &[String]) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    let config = dir.join("riposte.yml");
    let mut text = format!("data_dir: {}\nintel:\n  feeds:\n", data.display());
    for feed in feeds {
        text.push_str(&format!("    - {feed}\n"));
    }
    std::fs::write(&config, text).unwrap();
    (data, config)
}

#[test]
fn intel_pull_fetches_feeds_and_keeps_the_last_good_copy() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/c2.txt"))
            .and(wiremock::matchers::header("authorization", "Bearer s3cret-token"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("45.77.12.9\nevil.example\n"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        // The second pull meets an error mid-way.
        wiremock::Mock::given(wiremock::matchers::path("/c2.txt"))
            .respond_with(wiremock::ResponseTemplate::new(500))
            .mount(&server)
            .await;
        wiremock::Mock::given(wiremock::matchers::path("/bundle.json"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(
                r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--a","pattern":"[domain-name:value = 'c2.example']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}]}"#,
            ))
            .mount(&server)
            .await;
        server
    });
    let dir = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let (data, config) = feeds_config(
        dir.path(),
        &[
            format!("{{name: c2, url: '{uri}/c2.txt', token: s3cret-token, allow_private: true}}"),
            format!("{{name: stix, url: '{uri}/bundle.json', allow_private: true}}"),
            format!("{{name: internal, url: '{uri}/c2.txt'}}"),
        ],
    );
    let output = riposte().args(["intel", "pull", "--config"]).arg(&config).output().unwrap();
    let text = stdout(&output);
    assert!(text.contains("c2                       2 indicators"), "{text}");
    assert!(text.contains("stix                     1 indicators"), "{text}");
    // Without allow_private, the loopback server is refused.
    let internal = text.lines().find(|line| line.starts_with("internal")).unwrap();
    assert!(internal.contains("internal address"), "{internal}");
    assert!(!text.contains("s3cret-token") && !stderr(&output).contains("s3cret-token"), "the token is never shown");
    assert_eq!(output.status.code(), Some(3));
    assert!(data.join("intel/c2.txt").exists() && data.join("intel/stix.json").exists());

    // The feed fails now: its last good copy stays.
    let output = riposte().args(["intel", "pull", "--config"]).arg(&config).output().unwrap();
    let text = stdout(&output);
    let c2 = text.lines().find(|line| line.starts_with("c2")).unwrap();
    assert!(c2.contains("last good copy stays") && c2.contains("HTTP 500"), "{c2}");
    assert_eq!(std::fs::read_to_string(data.join("intel/c2.txt")).unwrap(), "45.77.12.9\nevil.example\n");
    drop(server);
}

#[test]
fn intel_pull_reads_a_taxii_collection_page_by_page() {
    use wiremock::matchers::{header, method, path, query_param};
    let indicator = |id: &str, value: &str, added: &str| {
        serde_json::json!({"type": "indicator", "spec_version": "2.1", "id": id, "created": added, "modified": added,
            "pattern": format!("[ipv4-addr:value = '{value}']"), "pattern_type": "stix", "valid_from": added})
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        let objects = "/api1/collections/c1/objects/";
        // Basic authentication: `analyst:pw`.
        let auth = || header("authorization", "Basic YW5hbHlzdDpwdw==");
        // Discovery, then the API root's collections (the feed names one by title).
        wiremock::Mock::given(method("GET"))
            .and(path("/taxii2/"))
            .and(auth())
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "title": "Recorded TAXII server", "default": format!("{}/api1/", server.uri()),
                "api_roots": [format!("{}/api1/", server.uri()), "/api2/"]})))
            .mount(&server)
            .await;
        // A discovery document pointing elsewhere: the credentials do not follow.
        wiremock::Mock::given(method("GET"))
            .and(path("/elsewhere/taxii2/"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "title": "Redirecting", "api_roots": ["http://localhost:1/api1/"]})))
            .mount(&server)
            .await;
        wiremock::Mock::given(method("GET"))
            .and(path("/api1/collections/"))
            .and(auth())
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"collections": [
                {"id": "c0", "title": "Malware samples", "can_read": true, "can_write": false},
                {"id": "c1", "title": "High-confidence IPs", "can_read": true, "can_write": false}]})))
            .mount(&server)
            .await;
        // The first pull's second page fails: nothing of that pull is kept.
        wiremock::Mock::given(method("GET"))
            .and(path(objects))
            .and(auth())
            .and(query_param("next", "page2"))
            .respond_with(wiremock::ResponseTemplate::new(502))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        wiremock::Mock::given(method("GET"))
            .and(path(objects))
            .and(auth())
            .and(query_param("next", "page2"))
            .respond_with(
                wiremock::ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({
                        "more": false, "objects": [indicator("indicator--2", "45.77.12.10", "2026-11-29T10:00:02Z")]}))
                    // When the page's newest object was added: the next pull's `added_after`.
                    .insert_header("X-TAXII-Date-Added-Last", "2026-11-29T10:00:02Z"),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        wiremock::Mock::given(method("GET"))
            .and(path(objects))
            .and(auth())
            .and(query_param("added_after", "2026-11-29T10:00:02Z"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "more": false, "objects": [indicator("indicator--3", "45.77.12.11", "2026-11-29T11:00:00Z")]})))
            .mount(&server)
            .await;
        wiremock::Mock::given(method("GET"))
            .and(path(objects))
            .and(auth())
            .respond_with(
                wiremock::ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({
                        "more": true, "next": "page2", "objects": [indicator("indicator--1", "45.77.12.9", "2026-11-29T10:00:01Z")]}))
                    .insert_header("X-TAXII-Date-Added-Last", "2026-11-29T10:00:01Z"),
            )
            .up_to_n_times(2)
            .mount(&server)
            .await;
        server
    });
    let dir = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let (data, config) = feeds_config(
        dir.path(),
        &[format!(
            "{{name: taxii, url: '{uri}/taxii2/', taxii_collection: high-confidence ips, user: analyst, password: pw, allow_private: true}}"
        )],
    );
    let output = riposte().args(["intel", "pull", "--config"]).arg(&config).output().unwrap();
    assert!(stdout(&output).contains("HTTP 502"), "{}", stdout(&output));
    let elsewhere = dir.path().join("elsewhere.yml");
    std::fs::write(
        &elsewhere,
        format!(
            "data_dir: {}\nintel:\n  feeds:\n    - {{name: other, url: '{}/elsewhere/taxii2/', taxii_collection: c1, user: analyst, password: pw, allow_private: true}}\n",
            data.display(),
            server.uri()
        ),
    )
    .unwrap();
    let output = riposte().args(["intel", "pull", "--config"]).arg(&elsewhere).output().unwrap();
    assert!(stdout(&output).contains("is on another server"), "{}", stdout(&output));
    assert!(!data.join("intel/taxii.json").exists() && !data.join("intel/taxii.taxii-added-after").exists());
    let output = riposte().args(["intel", "pull", "--config"]).arg(&config).output().unwrap();
    assert!(stdout(&output).contains("taxii                    2 indicators"), "{}", stdout(&output));
    // The next pull asks only for what was added since, and keeps the rest.
    let output = riposte().args(["intel", "pull", "--config"]).arg(&config).output().unwrap();
    assert!(
        stdout(&output).contains("taxii                    3 indicators"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let output = riposte()
        .args(["intel", "lookup", "45.77.12.10", "--format", "json", "--intel"])
        .arg(data.join("intel/taxii.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    drop(server);
}

#[test]
fn intel_pull_reads_a_misp_feed_directory() {
    use wiremock::matchers::path;
    let event = |uuid: &str, value: &str, timestamp: &str| {
        serde_json::json!({"Event": {"uuid": uuid, "info": format!("event {uuid}"), "threat_level_id": "1", "timestamp": timestamp,
            "Attribute": [{"type": "ip-dst", "value": value, "to_ids": true}]}})
    };
    let a = "5e9b3d3a-0000-4000-8000-00000000000a";
    let b = "5e9b3d3a-0000-4000-8000-00000000000b";
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(path("/feed/manifest.json"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                a: {"info": "a", "timestamp": "1795946400"}, b: {"info": "b", "timestamp": "1795946400"}})))
            .mount(&server)
            .await;
        // Each event is fetched once: the second pull finds nothing changed.
        wiremock::Mock::given(path(format!("/feed/{a}.json")))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(event(a, "45.77.12.9", "1795946400")))
            .expect(1)
            .mount(&server)
            .await;
        wiremock::Mock::given(path(format!("/feed/{b}.json")))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(event(b, "45.77.12.10", "1795946400")))
            .expect(1)
            .mount(&server)
            .await;
        server
    });
    let dir = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let (data, config) = feeds_config(
        dir.path(),
        &[format!("{{name: osint, url: '{uri}/feed/', misp_feed: true, allow_private: true}}")],
    );
    for _ in 0..2 {
        let output = riposte().args(["intel", "pull", "--config"]).arg(&config).output().unwrap();
        assert!(stdout(&output).contains("osint                    2 indicators"), "{}", stdout(&output));
    }
    let output = riposte()
        .args(["intel", "lookup", "45.77.12.10", "--format", "json", "--intel"])
        .arg(data.join("intel/osint.json"))
        .output()
        .unwrap();
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["matches"][0]["indicator"]["confidence"], 90);
    runtime.block_on(server.verify());
}

#[test]
fn intel_pull_searches_a_misp_instance_page_by_page() {
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, ResponseTemplate};
    let event = |n: usize, timestamp: u64| {
        serde_json::json!({"Event": {"uuid": format!("5e9b3d3a-0000-4000-8000-{n:012}"), "info": format!("event {n}"),
            "threat_level_id": "2", "timestamp": timestamp.to_string(),
            "Attribute": [{"type": "ip-dst", "value": format!("45.77.{}.{}", n / 250, n % 250), "to_ids": true}]}})
    };
    let page = |events: Vec<Value>| ResponseTemplate::new(200).set_body_json(serde_json::json!({"response": events}));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        let search =
            || Mock::given(method("POST")).and(path("/events/restSearch")).and(header("authorization", "misp-k3y"));
        // First pull: everything, a full page of 100 then 3.
        search()
            .and(body_partial_json(serde_json::json!({"page": 1, "limit": 100, "returnFormat": "json"})))
            .respond_with(page((0..100).map(|n| event(n, 1_795_946_400)).collect()))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        search()
            .and(body_partial_json(serde_json::json!({"page": 2})))
            .respond_with(page((100..103).map(|n| event(n, 1_795_946_500)).collect()))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        // Later pulls ask only for what changed since the newest event kept;
        // the first of them fails on its second page.
        search()
            .and(body_partial_json(serde_json::json!({"page": 1, "timestamp": 1_795_946_500})))
            .respond_with(page((103..203).map(|n| event(n, 1_795_946_600)).collect()))
            .expect(2)
            .mount(&server)
            .await;
        search()
            .and(body_partial_json(serde_json::json!({"page": 2, "timestamp": 1_795_946_500})))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        search()
            .and(body_partial_json(serde_json::json!({"page": 2, "timestamp": 1_795_946_500})))
            .respond_with(page(vec![event(0, 1_795_946_700)]))
            .expect(1)
            .mount(&server)
            .await;
        server
    });
    let dir = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let (data, config) = feeds_config(
        dir.path(),
        &[format!("{{name: misp, url: '{uri}', misp_api: true, token: misp-k3y, allow_private: true}}")],
    );
    let pull = || riposte().args(["intel", "pull", "--config"]).arg(&config).output().unwrap();
    let output = pull();
    assert!(
        stdout(&output).lines().any(|line| line.starts_with("misp ") && line.ends_with(" 103 indicators")),
        "{}",
        stdout(&output)
    );
    let output = pull();
    assert!(stdout(&output).contains("HTTP 500"), "{}", stdout(&output));
    assert!(!format!("{}{}", stdout(&output), stderr(&output)).contains("misp-k3y"), "the key is never shown");
    assert_eq!(std::fs::read_to_string(data.join("intel/misp.misp-timestamp")).unwrap(), "1795946500", "state kept");
    let kept: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("intel/misp.json")).unwrap()).unwrap();
    assert_eq!(kept.len(), 103, "the last good copy stays");
    let output = pull();
    assert!(
        stdout(&output).lines().any(|line| line.starts_with("misp ") && line.ends_with(" 203 indicators")),
        "{}",
        stdout(&output)
    );
    let kept: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("intel/misp.json")).unwrap()).unwrap();
    assert_eq!(kept.len(), 203, "new events added, event 0 replaced by its newer version");
    assert_eq!(kept[0]["Event"]["timestamp"], "1795946700");
    assert_eq!(std::fs::read_to_string(data.join("intel/misp.misp-timestamp")).unwrap(), "1795946700");
    runtime.block_on(server.verify());

    // A lookup without files reads what `serve` would: the pulled copies,
    // known by their feed's name, scored by the configured decay.
    let lookup = || {
        let output =
            riposte().args(["intel", "lookup", "45.77.0.7", "--format", "json", "--config"]).arg(&config).output();
        let output = output.unwrap();
        serde_json::from_str::<Value>(&stdout(&output)).unwrap_or_else(|_| panic!("{}", stderr(&output)))
    };
    let found = lookup();
    assert_eq!(found["matches"][0]["indicator"]["sources"], serde_json::json!(["misp"]), "{found}");
    assert_eq!(found["matches"][0]["live"], true, "{found}");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("  decay:\n    by_source:\n      misp: {lifetime_days: 3650, speed: 1, threshold: 101}\n");
    std::fs::write(&config, text).unwrap();
    let found = lookup();
    assert_eq!(found["matches"][0]["live"], false, "a threshold no score reaches: {found}");
    assert!(found["matches"][0]["score"].as_f64().unwrap() > 0.0);
}

/// A one-page PDF whose text layer holds `lines` (Helvetica, one line each).
fn pdf_of(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 11 Tf 72 720 Td 14 TL\n");
    for line in lines {
        let escaped = line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
        content.push_str(&format!("({escaped}) Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

#[test]
fn intel_extract_reads_the_text_of_a_pdf_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.pdf");
    std::fs::write(
        &report,
        pdf_of(&[
            "The actor staged payloads at hxxps://cdn[.]bad-updates[.]net/x.bin",
            "and beaconed to 45.77.12[.]9 exploiting CVE-2024-3400 (T1190).",
            "Internal host 10.1.2.3 was the first victim.",
        ]),
    )
    .unwrap();
    let output = riposte().args(["intel", "extract", "--format", "json"]).arg(&report).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "indicators found: {}", stderr(&output));
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let values: Vec<&str> =
        json["indicators"].as_array().unwrap().iter().map(|entry| entry["value"].as_str().unwrap()).collect();
    assert!(values.contains(&"https://cdn.bad-updates.net/x.bin"), "{json}");
    assert!(values.contains(&"45.77.12.9") && !values.contains(&"10.1.2.3"), "{json}");
    assert_eq!((json["cves"][0].as_str(), json["techniques"][0].as_str()), (Some("CVE-2024-3400"), Some("T1190")));

    // A broken PDF is an error naming the file, not a crash.
    let broken = dir.path().join("broken.pdf");
    std::fs::write(&broken, b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 9 0 R >>\n%%EOF")
        .unwrap();
    let output = riposte().args(["intel", "extract"]).arg(&broken).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "a bad input");
    assert!(stderr(&output).contains("broken.pdf") && !stderr(&output).contains("panicked"), "{}", stderr(&output));
}

#[test]
fn email_analyze_reads_an_mbox_and_gives_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("inbox.mbox");
    std::fs::write(
        &mbox,
        "From alice@example.org Mon Nov 30 10:00:00 2026\n\
From: Alice <alice@example.org>\n\
To: bob@riposte-corp.com\n\
Subject: Lunch on Thursday?\n\
\n\
Shall we try the new place on Thursday?\n\
\n\
From x@paypa1.com Mon Nov 30 10:05:00 2026\n\
From: \"PayPal\" <service@paypa1.com>\n\
To: bob@riposte-corp.com\n\
Subject: Your account has been suspended\n\
MIME-Version: 1.0\n\
Content-Type: text/html\n\
\n\
<p>Verify your account now: <a href=\"http://203.0.113.9/x\">https://www.paypal.com</a></p>\n",
    )
    .unwrap();
    let output = riposte().args(["email", "analyze", "--format", "jsonl"]).arg(&mbox).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "a phishing message was found: {}", stderr(&output));
    let records: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(records.len(), 2, "{}", stdout(&output));
    assert_eq!((records[0]["verdict"].as_str(), records[1]["verdict"].as_str()), (Some("clean"), Some("phishing")));
    assert!(records[0]["message"].as_str().unwrap().ends_with("inbox.mbox#1"));
    let reasons: Vec<&str> =
        records[1]["findings"].as_array().unwrap().iter().map(|finding| finding["check"].as_str().unwrap()).collect();
    assert!(
        reasons.contains(&"lookalike.sender_domain") && reasons.contains(&"links.text_href_mismatch"),
        "{reasons:?}"
    );
    assert!(stderr(&output).contains("2 messages"), "{}", stderr(&output));
    // With intel: the link's address is a known one.
    std::fs::write(dir.path().join("c2.txt"), "203.0.113.0/24\n").unwrap();
    let output = riposte()
        .args(["email", "analyze", "--format", "jsonl", "--intel"])
        .arg(dir.path().join("c2.txt"))
        .arg(&mbox)
        .output()
        .unwrap();
    let last: Value = serde_json::from_str(stdout(&output).lines().last().unwrap()).unwrap();
    let intel = last["findings"].as_array().unwrap().iter().find(|finding| finding["check"] == "intel.link").cloned();
    assert!(intel.is_some_and(|finding| finding["evidence"].as_str().unwrap().contains("203.0.113.0/24")), "{last}");
    // For a person: the verdict and each reason with its weight.
    let output = riposte().args(["email", "analyze"]).arg(&mbox).output().unwrap();
    assert!(
        stdout(&output).contains("PHISHING") && stdout(&output).contains("imitates paypal.com"),
        "{}",
        stdout(&output)
    );
    // Evidence reads as written: quotes are not escaped for a person.
    assert!(stdout(&output).contains(r#"says "verify your account""#), "{}", stdout(&output));
}

#[test]
fn email_analyze_verifies_dkim_against_recorded_records() {
    let Some(samples) =
        common::corpus_or_skip("email/edge-cases/mimekit/dkim", "email_analyze_verifies_dkim_against_recorded_records")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string(samples.join("gmail.pub")).unwrap();
    let key: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let records = dir.path().join("records.zone");
    std::fs::write(&records, format!("20120113._domainkey.gmail.com. 300 IN TXT \"v=DKIM1; k=rsa; p={key}\"\n"))
        .unwrap();
    let mut tampered = std::fs::read(samples.join("gmail.msg")).unwrap();
    let body = tampered.windows(2).position(|window| window == b"\n\n").unwrap();
    let at = body + tampered[body..].iter().position(u8::is_ascii_alphabetic).unwrap();
    tampered[at] ^= 0x20;
    std::fs::write(dir.path().join("tampered.msg"), tampered).unwrap();
    let output = riposte()
        .args(["email", "analyze", "--format", "jsonl", "--dns-records"])
        .arg(&records)
        .arg(samples.join("gmail.msg"))
        .arg(dir.path().join("tampered.msg"))
        .output()
        .unwrap();
    let records: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(records.len(), 2, "{}{}", stdout(&output), stderr(&output));
    let dkim = |record: &Value| record["authentication"]["dkim"][0]["result"].as_str().map(str::to_owned);
    assert_eq!(dkim(&records[0]).as_deref(), Some("pass"), "{}", records[0]);
    assert_eq!(dkim(&records[1]).as_deref(), Some("fail"), "{}", records[1]);
    // The receiving host's header says dkim=pass; the verification says
    // otherwise, and wins.
    let failed = records[1]["findings"].as_array().unwrap().iter().find(|finding| finding["check"] == "auth.dkim_fail");
    assert!(
        failed.is_some_and(|finding| finding["evidence"].as_str().unwrap().contains("gmail.com")),
        "{}",
        records[1]
    );
    // A record that is not TXT is named with its line.
    std::fs::write(dir.path().join("bad.zone"), "\ngmail.com. IN MX 5 mx.gmail.com.\n").unwrap();
    let output = riposte()
        .args(["email", "analyze", "--dns-records"])
        .arg(dir.path().join("bad.zone"))
        .arg(samples.join("gmail.msg"))
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("bad.zone, line 2: only TXT records are read"), "{}", stderr(&output));
}

#[test]
fn email_quarantine_list_show_release_and_delete_audited() {
    use riposte_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("riposte.yml");
    std::fs::write(&config, format!("data_dir: {}\n", data.display())).unwrap();
    // Two messages held as `serve` holds them: bytes by hash, a record, an audit entry.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ids: Vec<i64> = runtime.block_on(async {
        let store = riposte_store::SqliteStore::open(&data.join("riposte.db")).await.unwrap();
        let audit = riposte_server::auth::AuditFiles::open(&data).unwrap();
        let mut ids = Vec::new();
        for subject in ["First", "Second"] {
            let raw = format!("From: x@paypa1.com\r\nSubject: {subject}\r\n\r\nVerify your account\r\n");
            let sha256 = format!("{:0>64}", subject.len());
            std::fs::create_dir_all(data.join("quarantine")).unwrap();
            std::fs::write(riposte_server::quarantine::message_path(&data.join("quarantine"), &sha256), &raw).unwrap();
            let held = riposte_store::NewQuarantined {
                sha256,
                received_ms: 1,
                sender: "x@paypa1.com".into(),
                subject: subject.into(),
                verdict: "phishing".into(),
                score: 7.0,
                findings: serde_json::json!([]),
                origin: "api".into(),
            };
            let entry = riposte_store::NewAudit {
                actor: "test".into(),
                action: "mail.quarantine".into(),
                target: "message".into(),
                detail: "{}".into(),
            };
            let (held, written) = store.quarantine(&held, &entry, &audit.key).await.unwrap();
            audit.set_head(written.seq, &written.mac).unwrap();
            ids.push(held.id);
        }
        ids
    });
    let run = |args: &[&str]| {
        riposte().args(["email", "quarantine"]).args(args).arg("--config").arg(&config).output().unwrap()
    };
    let listed = run(&["list"]);
    assert!(stdout(&listed).contains("\"Second\"") && stdout(&listed).contains("held"), "{}", stdout(&listed));
    let shown = run(&["show", &ids[0].to_string()]);
    assert!(stdout(&shown).starts_with("From: x@paypa1.com\r\nSubject: First"), "{}", stdout(&shown));
    assert!(stdout(&run(&["release", &ids[0].to_string()])).contains("is released"));
    let again = run(&["release", &ids[0].to_string()]);
    assert_ne!(again.status.code(), Some(0));
    assert!(stderr(&again).contains("already released"), "{}", stderr(&again));
    assert!(stdout(&run(&["delete", &ids[1].to_string()])).contains("is deleted"));
    let gone = run(&["show", &ids[1].to_string()]);
    assert!(stderr(&gone).contains("is deleted"), "{}", stderr(&gone));
    let held = run(&["list", "--status", "held", "--json"]);
    assert_eq!(stdout(&held).lines().count(), 0, "{}", stdout(&held));
    // The trail holds the CLI's changes and still verifies.
    let verified = riposte().args(["audit", "verify", "--config"]).arg(&config).output().unwrap();
    assert!(stdout(&verified).contains("intact: 4 entries"), "{}", stdout(&verified));
}

#[test]
fn email_learn_teaches_the_store_and_analyze_judges_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("riposte.yml");
    std::fs::write(&config, format!("data_dir: {}\n", data.display())).unwrap();
    // An organisation's mail, judged: crypto lures, and its own work mail (an mbox).
    let (phishing, legitimate) = (dir.path().join("phishing"), dir.path().join("legitimate.mbox"));
    std::fs::create_dir_all(&phishing).unwrap();
    let lures = ["wallet", "airdrop", "claim", "reward", "token", "bonus", "eligible", "connect"];
    let work = ["roadmap", "quarterly", "review", "budget", "agenda", "minutes", "draft", "team"];
    let mut mbox = String::new();
    for i in 0..60 {
        let (a, b) = (lures[i % 8], lures[(i / 8) % 8]);
        std::fs::write(
            phishing.join(format!("{i}.eml")),
            format!("From: x{i}@drop.example\r\nSubject: Your {a}\r\n\r\nHello, {a} and {b} at the portal\r\n"),
        )
        .unwrap();
        let (c, d) = (work[i % 8], work[(i / 8) % 8]);
        mbox.push_str(&format!(
            "From bob@riposte-corp.com Mon Nov 30 10:00:00 2026\r\nFrom: bob@riposte-corp.com\r\nSubject: The {c}\r\n\r\nHi, the {c} and {d} for Thursday\r\n\r\n"
        ));
    }
    std::fs::write(&legitimate, mbox).unwrap();
    let not_mail = dir.path().join("notes.txt");
    std::fs::write(&not_mail, "just some notes\n").unwrap();
    let learned = riposte()
        .args(["email", "learn", "--phishing"])
        .arg(&phishing)
        .arg("--phishing")
        .arg(&not_mail)
        .arg("--legitimate")
        .arg(&legitimate)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(learned.status.code(), Some(0), "{}", stderr(&learned));
    assert!(stdout(&learned).contains("learned from 60 phishing and 60 legitimate messages"), "{}", stdout(&learned));
    assert!(
        stdout(&learned).contains("1 unreadable left out") && stderr(&learned).contains("notes.txt"),
        "{}",
        stderr(&learned)
    );
    // What it taught, for a person and for machines.
    let shown = riposte().args(["email", "learned", "--config"]).arg(&config).output().unwrap();
    assert!(
        stdout(&shown).contains("the classifier speaks") && stdout(&shown).contains("leaning phishing: "),
        "{}",
        stdout(&shown)
    );
    let taught = riposte().args(["email", "learned", "--json", "--config"]).arg(&config).output().unwrap();
    let taught: serde_json::Value = serde_json::from_str(&stdout(&taught)).unwrap();
    assert_eq!((taught["words"]["phishing"].as_u64(), taught["words"]["legitimate"].as_u64()), (Some(60), Some(60)));
    // A new lure is judged with it, and says which words decided.
    let new = dir.path().join("new.eml");
    std::fs::write(
        &new,
        "From: y@other.example\r\nSubject: Claim your reward\r\n\r\nConnect your wallet for the bonus\r\n",
    )
    .unwrap();
    let judged = |learned: bool| {
        let mut command = riposte();
        command.args(["email", "analyze", "--format", "jsonl"]).arg(&new).arg("--config").arg(&config);
        if learned {
            command.arg("--learned");
        }
        serde_json::from_str::<serde_json::Value>(&stdout(&command.output().unwrap())).unwrap()
    };
    let (before, after) = (judged(false), judged(true));
    assert_eq!(before["verdict"], "suspicious", "{before}");
    assert_eq!(after["verdict"], "phishing", "{after}");
    let finding =
        after["findings"].as_array().unwrap().iter().find(|finding| finding["check"] == "learned.resembles_phishing");
    assert!(finding.unwrap()["evidence"].as_str().unwrap().contains("wallet"), "{after}");
    // Bulk verdicts join the audit trail.
    let verified = riposte().args(["audit", "verify", "--config"]).arg(&config).output().unwrap();
    assert!(stdout(&verified).contains("intact: 1 entries"), "{}", stdout(&verified));
}
