//! Each decoder alone on one thread: 100,000 records in memory, in the shape
//! the tool writes them (values vary from record to record), decoded into
//! one reused event. Run with `cargo bench -p riposte-ingest --bench
//! decoders`; figures are in docs/PERFORMANCE.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riposte_event::{Event, JsonDecoder};
use riposte_ingest::{AuditdDecoder, CefDecoder, Dialects, SyslogDecoder, ZeekTsvDecoder};

const RECORDS: usize = 100_000;

fn zeek_lines() -> (Vec<String>, Vec<String>) {
    let header = vec![
        "#separator \\x09".to_owned(),
        "#set_separator\t,".into(),
        "#empty_field\t(empty)".into(),
        "#unset_field\t-".into(),
        "#path\tconn".into(),
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tmissed_bytes\thistory\torig_pkts\tresp_pkts\ttunnel_parents".into(),
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tcount\tstring\tcount\tcount\tset[string]".into(),
    ];
    let lines = (0..RECORDS)
        .map(|index| {
            format!(
                "{}.{:06}\tC{index:x}q\t10.0.{}.{}\t{}\t203.0.113.{}\t443\ttcp\tssl\t{}.25\t{}\t{}\tSF\tT\t0\tShADadFf\t{}\t{}\t(empty)",
                1_795_946_400 + index / 10,
                index % 1_000_000,
                (index >> 8) & 255,
                index & 255,
                1024 + index % 60_000,
                index % 250,
                index % 7,
                index % 9_000,
                index % 70_000,
                index % 90,
                index % 80
            )
        })
        .collect();
    (header, lines)
}

fn cef_lines() -> Vec<String> {
    (0..RECORDS)
        .map(|index| {
            format!(
                "CEF:0|Vendor|NGFW|9.1|{}|Connection {} blocked|{}|src=10.0.{}.{} dst=203.0.113.{} spt={} dpt=443 proto=TCP act=deny suser=user{} msg=Policy rule {} matched\\=yes cs1Label=Rule cs1=Block outbound rt=1795946400{:03}",
                100 + index % 50,
                index,
                index % 10,
                (index >> 8) & 255,
                index & 255,
                index % 250,
                1024 + index % 60_000,
                index % 300,
                index % 40,
                index % 1000
            )
        })
        .collect()
}

fn audit_lines() -> Vec<String> {
    let mut lines = Vec::with_capacity(RECORDS * 3);
    for index in 0..RECORDS {
        let stamp = format!("{}.{:03}:{}", 1_795_946_400 + index / 100, index % 1000, 10_000 + index);
        lines.push(format!(
            "type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c1a0 a1=55d0c1b0 a2=55d0c1c0 a3=0 items=2 ppid={} pid={} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm=\"cat\" exe=\"/usr/bin/cat\" key=\"exec\"",
            1000 + index % 500,
            2000 + index
        ));
        lines.push(format!("type=EXECVE msg=audit({stamp}): argc=2 a0=\"cat\" a1=2F6574632F736861646F77"));
        lines.push(format!("type=PROCTITLE msg=audit({stamp}): proctitle=636174002F6574632F736861646F77"));
    }
    lines
}

fn suricata_lines() -> Vec<String> {
    (0..RECORDS)
        .map(|index| {
            format!(
                r#"{{"timestamp":"2026-11-29T10:{:02}:{:02}.{:06}+0000","flow_id":{},"in_iface":"eth0","event_type":"dns","src_ip":"10.0.{}.{}","src_port":{},"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","dns":{{"version":2,"type":"answer","id":{},"rrname":"host{}.example.org","rrtype":"A","rcode":"NOERROR","answers":[{{"rrname":"host{}.example.org","rrtype":"A","ttl":60,"rdata":"203.0.113.{}"}}]}}}}"#,
                (index / 60) % 60,
                index % 60,
                index % 1_000_000,
                1_000_000 + index,
                (index >> 8) & 255,
                index & 255,
                1024 + index % 60_000,
                index % 65_536,
                index % 5_000,
                index % 5_000,
                index % 250
            )
        })
        .collect()
}

fn syslog_lines() -> Vec<String> {
    (0..RECORDS)
        .map(|index| {
            format!(
                "<38>1 2026-11-29T10:00:{:02}.{:03}Z web{} sshd {} - - Failed password for invalid user user{} from 198.51.100.{} port {} ssh2",
                index % 60,
                index % 1000,
                index % 20,
                1000 + index % 9000,
                index % 300,
                index % 250,
                1024 + index % 60_000
            )
        })
        .collect()
}

fn total_bytes(lines: &[String]) -> u64 {
    lines.iter().map(|line| line.len() as u64 + 1).sum()
}

fn decoders(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    let mut event = Event::new();

    let (header, zeek) = zeek_lines();
    group.throughput(Throughput::Elements(RECORDS as u64));
    eprintln!("zeek_conn_tsv: {} bytes/record", total_bytes(&zeek) / RECORDS as u64);
    group.bench_function("zeek_conn_tsv", |b| {
        b.iter(|| {
            let mut decoder = ZeekTsvDecoder::new();
            for line in header.iter().chain(&zeek) {
                decoder.decode_line(line.as_bytes(), &mut event).unwrap();
            }
        })
    });

    let cef = cef_lines();
    eprintln!("cef: {} bytes/record", total_bytes(&cef) / RECORDS as u64);
    let mut decoder = CefDecoder::new();
    group.bench_function("cef", |b| {
        b.iter(|| {
            for line in &cef {
                decoder.decode_into(line.as_bytes(), &mut event).unwrap();
            }
        })
    });

    let audit = audit_lines();
    eprintln!("auditd: {} bytes/event (3 records)", total_bytes(&audit) / RECORDS as u64);
    group.bench_function("auditd_3_records_per_event", |b| {
        b.iter(|| {
            let mut decoder = AuditdDecoder::new();
            let mut events = 0;
            for line in &audit {
                events += usize::from(decoder.decode_line(line.as_bytes(), &mut event).unwrap());
            }
            events += usize::from(decoder.finish(&mut event));
            assert_eq!(events, RECORDS);
        })
    });

    let eve = suricata_lines();
    eprintln!("suricata_eve_dns: {} bytes/record", total_bytes(&eve) / RECORDS as u64);
    let mut json = JsonDecoder::new();
    let mut dialects = Dialects::new();
    group.bench_function("suricata_eve_dns", |b| {
        b.iter(|| {
            for line in &eve {
                json.decode_into(line.as_bytes(), &mut event).unwrap();
                dialects.complete(&mut event, None).unwrap();
            }
        })
    });

    let syslog = syslog_lines();
    eprintln!("syslog_5424: {} bytes/record", total_bytes(&syslog) / RECORDS as u64);
    let mut decoder = SyslogDecoder::default();
    let now = time::OffsetDateTime::now_utc();
    group.bench_function("syslog_5424", |b| {
        b.iter(|| {
            for line in &syslog {
                decoder.decode_into(line.as_bytes(), now, &mut event).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
