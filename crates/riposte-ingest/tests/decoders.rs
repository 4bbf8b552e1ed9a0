//! Every decoder on records in the formats the tools write, awkward cases
//! included, found by content as `riposte hunt` finds them; the normalised
//! events are kept as golden files (`tests/snapshots/`).

use std::path::Path;

use riposte_event::{Event, Symbol};
use riposte_ingest::{Collect, Format, FormatChoice, JsonReader, LineReader, discover};
use serde_json::{Value, json};

/// Writes `text` as `name`, finds it as a hunt would, and reads it.
fn read_as_found(dir: &Path, name: &str, text: &str) -> (Format, Collect) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let discovery = discover(std::slice::from_ref(&path), FormatChoice::Auto);
    assert!(discovery.errors.is_empty(), "{:?}", discovery.errors);
    let input = &discovery.inputs[0];
    let mut sink = Collect::default();
    if input.format == Format::Json {
        JsonReader::new(None).read(input, &mut sink).unwrap();
    } else {
        LineReader::new(None).read(input, &mut sink).unwrap();
    }
    (input.format, sink)
}

/// What a golden file holds of an event.
fn golden(event: &Event) -> Value {
    let source = event.logsource.as_deref();
    json!({
        "logsource": {
            "product": source.and_then(|source| source.product.clone()),
            "service": source.and_then(|source| source.service.clone()),
        },
        "timestamp": event.timestamp.map(|time| time.to_string()),
        "record_id": event.record_id,
        "fields": event.to_json(),
    })
}

fn text(event: &Event, name: &str) -> Option<String> {
    Symbol::lookup(name).and_then(|symbol| event.text(symbol)).map(str::to_owned)
}

fn all(event: &Event, name: &str) -> Vec<String> {
    Symbol::lookup(name)
        .map(|symbol| event.values(symbol).filter_map(|value| value.as_text().map(str::to_owned)).collect())
        .unwrap_or_default()
}

const ZEEK_CONN: &str = "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2026-11-29-10-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\tlocal_orig\tconn_state\ttunnel_parents\thistory
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tbool\tstring\tset[string]\tstring
1764410400.123456\tCk2Xq91\t10.0.0.5\t49152\t203.0.113.9\t443\ttcp\tssl\t1.250000\tT\tSF\t(empty)\tShADadFf
1764410401.000000\tCk2Xq92\t10.0.0.5\t53000\t198.51.100.7\t53\tudp\t-\t-\tF\tS0\tCa1,Cb2\tD
1764410402.5\tCk2Xq93\t10.0.0.6\t1234\t10.0.0.7\t80\ttcp\thttp\\x09x\t0.1\tT\tSF\t-\t\\x2d
#close\t2026-11-29-11-00-00
";

#[test]
fn zeek_tab_separated_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (format, read) = read_as_found(dir.path(), "conn.log", ZEEK_CONN);
    assert_eq!(format, Format::Zeek);
    assert!(read.skipped.is_empty(), "{:?}", read.skipped);
    assert_eq!(read.events.len(), 3);
    let [first, second, third] = [&read.events[0], &read.events[1], &read.events[2]];
    assert_eq!(text(first, "id.resp_h").as_deref(), Some("203.0.113.9"));
    assert_eq!(first.get(Symbol::intern("id.resp_p")), Some(riposte_event::Value::Number("443")));
    assert_eq!(first.get(Symbol::intern("local_orig")), Some(riposte_event::Value::Bool(true)));
    assert!(all(first, "tunnel_parents").is_empty(), "an empty set is no value");
    assert_eq!(text(second, "service"), None, "unset fields are left out");
    assert_eq!(all(second, "tunnel_parents"), ["Ca1", "Cb2"], "a set is repeated values");
    assert_eq!(text(third, "service").as_deref(), Some("http\tx"), "\\x09 is a tab");
    assert_eq!(text(third, "history").as_deref(), Some("-"), "an escaped dash is a dash, not unset");
    assert_eq!(first.timestamp.unwrap().unix_timestamp(), 1_764_410_400);
    let source = first.logsource.as_deref().unwrap();
    assert_eq!((source.product.as_deref(), source.service.as_deref()), (Some("zeek"), Some("conn")));
    insta::assert_json_snapshot!("zeek_conn_tsv", read.events.iter().map(golden).collect::<Vec<_>>());
}

#[test]
fn zeek_escaped_set_separators_and_other_time_columns() {
    let dir = tempfile::tempdir().unwrap();
    let log = "#separator \\x09\n#set_separator\t,\n#path\tkerberos\n#fields\tts\tuid\tclient\ttill\tnames\n#types\ttime\tstring\tstring\ttime\tset[string]\n1795946400.0\tCk1\talice/CORP\t1795990000.0\ta\\x2cb,c\n";
    let (_, read) = read_as_found(dir.path(), "kerberos.log", log);
    let event = &read.events[0];
    assert_eq!(all(event, "names"), ["a,b", "c"], "an escaped comma is inside an element");
    assert_eq!(event.timestamp.unwrap().unix_timestamp(), 1_795_946_400, "the time is ts, not the ticket's expiry");
}

#[test]
fn zeek_json_without_connection_fields_is_known_by_its_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let x509 = r#"{"ts":1795946400.0,"fingerprint":"abc","certificate.subject":"CN=evil.example","certificate.not_valid_after":1800000000.0}"#;
    let (_, read) = read_as_found(dir.path(), "x509.log", &format!("{x509}\n"));
    let source = read.events[0].logsource.as_deref().unwrap();
    assert_eq!((source.product.as_deref(), source.service.as_deref()), (Some("zeek"), Some("x509")));
}

#[test]
fn zeek_bad_lines_are_reported_and_the_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = "1764410400.0\tno header yet\n#separator \\x09\n#fields\tts\tuid\n#types\ttime\tstring\n1764410400.0\tC1\n1764410401.0\tC2\textra\n1764410402.0\tC3\n";
    let path = dir.path().join("weird.log");
    std::fs::write(&path, text).unwrap();
    let discovery = discover(std::slice::from_ref(&path), FormatChoice::Zeek);
    let mut sink = Collect::default();
    LineReader::new(None).read(&discovery.inputs[0], &mut sink).unwrap();
    assert_eq!(sink.events.len(), 2);
    let reasons: Vec<String> = sink.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("line 1") && reasons[0].contains("before the #fields header"), "{reasons:?}");
    assert!(reasons[1].contains("line 6") && reasons[1].contains("#fields"), "{reasons:?}");
}

#[test]
fn zeek_json_logs_take_their_log_from_the_record_or_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let dns = r#"{"ts":1764410400.5,"uid":"CdNs1","id.orig_h":"10.0.0.5","id.orig_p":51000,"id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp","query":"update.evil.example","qtype_name":"A","answers":["203.0.113.66"],"rcode_name":"NOERROR"}"#;
    let (format, read) = read_as_found(dir.path(), "dns.log", &format!("{dns}\n"));
    assert_eq!(format, Format::Json);
    let source = read.events[0].logsource.as_deref().unwrap();
    assert_eq!((source.product.as_deref(), source.service.as_deref()), (Some("zeek"), Some("dns")));
    let with_path = r#"{"_path":"http","ts":"2026-11-29T10:00:00.000000Z","uid":"CHt1","id.orig_h":"10.0.0.5","id.orig_p":50000,"id.resp_h":"203.0.113.9","id.resp_p":80,"method":"GET","host":"evil.example","uri":"/a.ps1","user_agent":"curl/8.0"}"#;
    let (_, read) = read_as_found(dir.path(), "zeek.json", &format!("{with_path}\n"));
    let source = read.events[0].logsource.as_deref().unwrap();
    assert_eq!(source.service.as_deref(), Some("http"));
    assert_eq!(read.events[0].timestamp.unwrap().unix_timestamp(), 1_795_946_400);
}

const SURICATA: &str = r#"{"timestamp":"2026-11-29T10:00:00.100000+0000","flow_id":1111,"in_iface":"eth0","event_type":"alert","src_ip":"10.0.0.5","src_port":49152,"dest_ip":"203.0.113.9","dest_port":443,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2027865,"rev":3,"signature":"ET INFO Observed DNS Query to .cloud TLD","category":"Potentially Bad Traffic","severity":2}}
{"timestamp":"2026-11-29T10:00:01.000000+0000","flow_id":1112,"event_type":"dns","src_ip":"10.0.0.5","src_port":51000,"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","dns":{"version":2,"type":"answer","id":1,"rrname":"update.evil.example","rrtype":"A","rcode":"NOERROR","answers":[{"rrname":"update.evil.example","rrtype":"A","ttl":60,"rdata":"203.0.113.66"}]}}
{"timestamp":"2026-11-29T10:00:02.000000+0000","flow_id":1113,"event_type":"http","src_ip":"10.0.0.5","src_port":50000,"dest_ip":"203.0.113.9","dest_port":80,"proto":"TCP","http":{"hostname":"evil.example","url":"/a.ps1","http_user_agent":"curl/8.0","http_method":"GET","protocol":"HTTP/1.1","status":200,"length":512}}
{"timestamp":"2026-11-29T10:00:03.000000+0000","flow_id":1114,"event_type":"tls","src_ip":"10.0.0.5","src_port":50001,"dest_ip":"203.0.113.9","dest_port":443,"proto":"TCP","tls":{"subject":"CN=evil.example","issuerdn":"CN=evil.example","sni":"evil.example","version":"TLS 1.2","ja3":{"hash":"e7d705a3286e19ea42f587b344ee6865"}}}
{"timestamp":"2026-11-29T10:00:04.000000+0000","flow_id":1115,"event_type":"flow","src_ip":"10.0.0.5","src_port":50002,"dest_ip":"198.51.100.7","dest_port":4444,"proto":"TCP","flow":{"pkts_toserver":10,"pkts_toclient":8,"bytes_toserver":900,"bytes_toclient":700,"state":"closed","reason":"timeout"}}
{"timestamp":"2026-11-29T10:00:05.000000+0000","flow_id":1116,"event_type":"fileinfo","src_ip":"203.0.113.9","src_port":80,"dest_ip":"10.0.0.5","dest_port":50000,"proto":"TCP","fileinfo":{"filename":"/a.ps1","magic":"ASCII text","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","size":512,"stored":false}}
{"timestamp":"2026-11-29T10:00:06.000000+0000","event_type":"anomaly","src_ip":"10.0.0.5","dest_ip":"10.0.0.1","proto":"UDP","anomaly":{"type":"decode","event":"ipv4.trunc_pkt"}}
"#;

#[test]
fn suricata_eve() {
    let dir = tempfile::tempdir().unwrap();
    let (format, read) = read_as_found(dir.path(), "eve.json", SURICATA);
    assert_eq!(format, Format::Json);
    assert_eq!(read.events.len(), 7);
    let services: Vec<Option<String>> =
        read.events.iter().map(|event| event.logsource.as_deref().and_then(|source| source.service.clone())).collect();
    let expected = ["alert", "dns", "http", "tls", "flow", "fileinfo", "anomaly"];
    assert_eq!(services, expected.map(|service| Some(service.to_owned())));
    assert!(read.events.iter().all(|event| event.logsource.as_deref().unwrap().product.as_deref() == Some("suricata")));
    assert_eq!(text(&read.events[1], "dns.answers.rdata").as_deref(), Some("203.0.113.66"));
    assert_eq!(read.events[0].timestamp.unwrap().unix_timestamp(), 1_795_946_400, "+0000 offsets are read");
    insta::assert_json_snapshot!("suricata_eve", read.events.iter().map(golden).collect::<Vec<_>>());
}

#[test]
fn cef_alone_and_in_syslog() {
    let dir = tempfile::tempdir().unwrap();
    let cef = concat!(
        r"CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 msg=Detected a threat. No action needed cs1Label=Rule cs1=Block\=all rt=Nov 29 2026 10:00:00",
        "\n",
        r"CEF:0|Pipe\|Vendor|Fire\\wall|2.1|deny|Denied \| blocked|7|act=blocked request=http://evil.example/a\nb duser=bob",
        "\n",
        "CEF:0|Vendor|Product|1.0|100\n",
    );
    let (format, read) = read_as_found(dir.path(), "firewall.cef", cef);
    assert_eq!(format, Format::Cef);
    assert_eq!(read.events.len(), 2);
    assert_eq!(read.skipped.len(), 1, "a header cut short is named");
    assert!(read.skipped[0].to_string().contains("line 3"), "{}", read.skipped[0]);
    let [first, second] = [&read.events[0], &read.events[1]];
    assert_eq!(text(first, "msg").as_deref(), Some("Detected a threat. No action needed"));
    assert_eq!(text(first, "cs1").as_deref(), Some("Block=all"), "\\= is an escaped =");
    assert_eq!(text(first, "Rule").as_deref(), Some("Block=all"), "cs1 is readable by its label");
    assert_eq!(first.timestamp.map(|time| time.unix_timestamp()), Some(1_795_946_400));
    assert_eq!(text(second, "deviceVendor").as_deref(), Some("Pipe|Vendor"));
    assert_eq!(text(second, "deviceProduct").as_deref(), Some(r"Fire\wall"));
    assert_eq!(text(second, "name").as_deref(), Some("Denied | blocked"));
    assert_eq!(text(second, "request").as_deref(), Some("http://evil.example/a\nb"));
    let source = first.logsource.as_deref().unwrap();
    assert_eq!((source.product.as_deref(), source.service.as_deref()), (Some("cef"), Some("threatmanager")));

    let syslog = "<134>1 2026-11-29T10:00:00Z fw01 CEF - - - CEF:0|Vendor|NGFW|9.1|threat|Malware blocked|8|src=10.0.0.5 dst=203.0.113.9 act=deny\n";
    // RFC 3164: `CEF:` reads as a tag, or as the host name when there is none.
    let bsd = "<134>Nov 29 10:00:00 fw03 CEF:0|Vendor|NGFW|9.1|t|x|5|act=allow\n<134>Nov 29 10:00:01 CEF:0|Vendor|NGFW|9.1|t|y|5|act=deny\n";
    let (_, read) = read_as_found(dir.path(), "bsd.syslog", bsd);
    assert_eq!(
        read.events.iter().map(|event| text(event, "act")).collect::<Vec<_>>(),
        [Some("allow".to_owned()), Some("deny".to_owned())]
    );
    assert_eq!(text(&read.events[0], "hostname").as_deref(), Some("fw03"));

    let (format, read) = read_as_found(dir.path(), "fw.syslog", syslog);
    assert_eq!(format, Format::Syslog);
    let event = &read.events[0];
    assert_eq!(text(event, "hostname").as_deref(), Some("fw01"), "the syslog header is kept");
    assert_eq!(text(event, "act").as_deref(), Some("deny"));
    assert_eq!(event.logsource.as_deref().unwrap().service.as_deref(), Some("ngfw"));
    insta::assert_json_snapshot!("cef", [first, second, event].map(golden));
}

const AUDIT: &str = r#"type=SYSCALL msg=audit(1764410400.123:2001): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c1a0 a1=55d0c1b0 a2=55d0c1c0 a3=0 items=2 ppid=1000 pid=1234 auid=1000 uid=0 gid=0 euid=0 comm="cat" exe="/usr/bin/cat" subj=unconfined key="shadow_read"
type=EXECVE msg=audit(1764410400.123:2001): argc=2 a0="cat" a1=2F6574632F736861646F77
type=CWD msg=audit(1764410400.123:2001): cwd="/root"
type=PATH msg=audit(1764410400.123:2001): item=0 name="/usr/bin/cat" inode=1 nametype=NORMAL
type=PROCTITLE msg=audit(1764410400.123:2001): proctitle=636174002F6574632F736861646F77
type=EOE msg=audit(1764410400.123:2001):
node=web01 type=USER_LOGIN msg=audit(1764410401.500:2002): pid=99 uid=0 auid=1001 ses=3 msg='op=login acct="alice" exe="/usr/sbin/sshd" hostname=? addr=198.51.100.7 terminal=ssh res=failed'
this line is not an audit record
type=SYSCALL msg=audit(1764410402.000:2003): arch=c000003e syscall=42 success=no exit=-111 comm="nc" exe="/usr/bin/nc.openbsd" key=(null)
"#;

#[test]
fn auditd_records_are_joined_into_events() {
    let dir = tempfile::tempdir().unwrap();
    let (format, read) = read_as_found(dir.path(), "audit.log", AUDIT);
    assert_eq!(format, Format::Auditd);
    assert_eq!(read.events.len(), 3);
    assert_eq!(read.skipped.len(), 1);
    assert!(read.skipped[0].to_string().contains("line 8"), "{}", read.skipped[0]);
    let first = &read.events[0];
    assert_eq!(all(first, "type"), ["SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE"]);
    assert_eq!(text(first, "proctitle").as_deref(), Some("cat /etc/shadow"), "hex decoded, NULs as spaces");
    assert_eq!(all(first, "a1"), ["55d0c1b0", "/etc/shadow"], "a register stays hex, an argument is decoded");
    assert_eq!(text(first, "exe").as_deref(), Some("/usr/bin/cat"));
    assert_eq!(text(first, "key").as_deref(), Some("shadow_read"));
    assert_eq!(first.record_id, Some(2001));
    assert_eq!(first.timestamp.unwrap().unix_timestamp(), 1_764_410_400);
    let login = &read.events[1];
    assert_eq!(text(login, "node").as_deref(), Some("web01"));
    assert_eq!(text(login, "res").as_deref(), Some("failed"), "the quoted msg is unpacked");
    assert_eq!(text(login, "acct").as_deref(), Some("alice"));
    assert!(text(login, "msg").unwrap().contains("res=failed"), "and kept whole");
    let last = &read.events[2];
    assert_eq!(text(last, "comm").as_deref(), Some("nc"), "the last event ends with the file");
    let source = first.logsource.as_deref().unwrap();
    assert_eq!((source.product.as_deref(), source.service.as_deref()), (Some("linux"), Some("auditd")));
    insta::assert_json_snapshot!("auditd", read.events.iter().map(golden).collect::<Vec<_>>());
}

#[test]
fn wazuh_falco_and_windows_json_forms() {
    let dir = tempfile::tempdir().unwrap();
    let wazuh = r#"{"timestamp":"2026-11-29T10:00:00.000+0000","rule":{"level":10,"description":"sshd: brute force trying to get access to the system.","id":"5712","mitre":{"id":["T1110"]},"groups":["syslog","sshd","authentication_failures"]},"agent":{"id":"001","name":"web01","ip":"10.0.0.8"},"manager":{"name":"wazuh"},"id":"1764410400.1","full_log":"Nov 29 10:00:00 web01 sshd[99]: Failed password for root from 198.51.100.7","decoder":{"name":"sshd"},"data":{"srcip":"198.51.100.7","dstuser":"root"},"location":"/var/log/auth.log"}"#;
    let falco = r#"{"hostname":"node-1","output":"10:00:00.000: Notice A shell was spawned in a container (user=root container_id=abc shell=bash)","priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["container","shell","mitre_execution"],"time":"2026-11-29T10:00:00.000000000Z","output_fields":{"container.id":"abc","proc.name":"bash","user.name":"root"}}"#;
    let winlogbeat = r#"{"@timestamp":"2026-11-29T10:00:00.000Z","event":{"code":"1"},"host":{"name":"WS-7"},"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":1,"provider_name":"Microsoft-Windows-Sysmon","computer_name":"WS-7.corp.example","record_id":4242,"event_data":{"Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c whoami","ParentImage":"C:\\Windows\\explorer.exe","User":"CORP\\bob"}}}"#;
    let flat = r#"{"EventID":4625,"Channel":"Security","Computer":"DC-01","TimeCreated":"2026-11-29T10:00:00Z","TargetUserName":"alice","IpAddress":"198.51.100.7"}"#;
    let (_, read) = read_as_found(dir.path(), "mixed.jsonl", &[wazuh, falco, winlogbeat, flat].join("\n"));
    assert_eq!(read.events.len(), 4);
    let products: Vec<Option<String>> =
        read.events.iter().map(|event| event.logsource.as_deref().and_then(|source| source.product.clone())).collect();
    // The flat Windows form needs no decoder's word: the log-source mapping
    // knows Windows events by their Channel.
    assert_eq!(
        products,
        [Some("wazuh"), Some("falco"), Some("windows"), None].map(|product| product.map(str::to_owned))
    );
    let beat = &read.events[2];
    assert_eq!(text(beat, "CommandLine").as_deref(), Some("cmd.exe /c whoami"), "event data under Sigma's names");
    assert_eq!(text(beat, "Channel").as_deref(), Some("Microsoft-Windows-Sysmon/Operational"));
    assert_eq!(text(beat, "EventID").as_deref(), Some("1"));
    assert_eq!(text(beat, "Computer").as_deref(), Some("WS-7.corp.example"));
    assert_eq!(text(&read.events[0], "rule.id").as_deref(), Some("5712"));
    assert_eq!(read.events[3].timestamp.unwrap().unix_timestamp(), 1_795_946_400);
    let wazuh = riposte_ingest::native_alert(&read.events[0]).unwrap();
    assert_eq!((wazuh.rule_id.as_str(), wazuh.level, wazuh.original_level.as_str()), ("wazuh:5712", "medium", "10"));
    assert_eq!(wazuh.title, "sshd: brute force trying to get access to the system.");
    assert_eq!(wazuh.techniques, ["T1110"]);
    let falco = riposte_ingest::native_alert(&read.events[1]).unwrap();
    assert_eq!((falco.rule_id.as_str(), falco.level), ("falco:Terminal shell in container", "low"));
    assert!(riposte_ingest::native_alert(&read.events[2]).is_none(), "a Windows event is no alert of its own");
    insta::assert_json_snapshot!("json_dialects", read.events.iter().map(golden).collect::<Vec<_>>());
}

#[test]
fn a_named_tool_reads_every_record_as_its() {
    // A Suricata record without `flow_id` or `src_ip` (stats events) is not
    // recognised by its shape; named, it is read as Suricata's.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.json");
    std::fs::write(
        &path,
        r#"{"timestamp":"2026-11-29T10:00:00.000000+0000","event_type":"stats","stats":{"uptime":60}}"#,
    )
    .unwrap();
    let auto = discover(std::slice::from_ref(&path), FormatChoice::Auto);
    let mut sink = Collect::default();
    JsonReader::new(None).read(&auto.inputs[0], &mut sink).unwrap();
    assert_eq!(sink.events[0].logsource, None);
    let named = discover(std::slice::from_ref(&path), FormatChoice::JsonOf(riposte_ingest::Dialect::Suricata));
    let mut sink = Collect::default();
    JsonReader::new(None).read(&named.inputs[0], &mut sink).unwrap();
    let source = sink.events[0].logsource.as_deref().unwrap();
    assert_eq!((source.product.as_deref(), source.service.as_deref()), (Some("suricata"), Some("stats")));
}

#[test]
fn syslog_files_without_priorities() {
    let dir = tempfile::tempdir().unwrap();
    let auth = "Nov 29 10:00:00 web01 sshd[4242]: Failed password for invalid user admin from 198.51.100.7 port 52222 ssh2\n2026-11-29T10:00:01.123456+00:00 web01 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash\n";
    let path = dir.path().join("auth.log");
    std::fs::write(&path, auth).unwrap();
    let discovery = discover(std::slice::from_ref(&path), FormatChoice::Auto);
    assert_eq!(discovery.inputs[0].format, Format::Syslog);
    let source = riposte_event::LogSource::parse("product=linux,service=auth").unwrap();
    let mut sink = Collect::default();
    LineReader::new(Some(std::sync::Arc::new(source))).read(&discovery.inputs[0], &mut sink).unwrap();
    assert!(sink.skipped.is_empty(), "{:?}", sink.skipped);
    let [failed, sudo] = [&sink.events[0], &sink.events[1]];
    assert_eq!(
        (text(failed, "hostname").as_deref(), text(failed, "app_name").as_deref(), text(failed, "procid").as_deref()),
        (Some("web01"), Some("sshd"), Some("4242"))
    );
    assert!(text(failed, "message").unwrap().starts_with("Failed password"));
    assert_eq!(text(sudo, "app_name").as_deref(), Some("sudo"));
    assert_eq!(sudo.timestamp.unwrap().unix_timestamp(), 1_795_946_401);
    assert_eq!(sudo.logsource.as_deref().unwrap().service.as_deref(), Some("auth"), "--logsource names them");
}
