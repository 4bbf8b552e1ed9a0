//! Load test of `riposte serve`, in one process: real Windows events (the
//! attack samples of `../shared/corpus/evtx`, as JSON) posted in HTTP
//! batches and syslog messages over TCP, through the spool, detection with
//! the SigmaHQ Windows rules and the SQLite store. Reports sustained
//! events/s, ingest-to-alert latency (p50/p99, from marker events that each
//! make an alert) and memory over time.
//!
//! ```sh
//! cargo run --release -p riposte-server --example load -- --seconds 60
//! cargo run --release -p riposte-server --example load -- --seconds 600   # memory over 10 minutes
//! cargo run --release -p riposte-server --example load -- --help          # every option
//! ```
//!
//! `--latencies FILE.csv` writes each marker's send time (from the first)
//! and latency, to see when the slow ones were.
//!
//! The load generator shares the machine (and this process) with the
//! server: the figures are what the two cores do for both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use riposte_ingest::{Collect, EvtxDecoder, EvtxFile};
use riposte_server::config::{Config, SourceConfig};
use riposte_server::{ADMIN_TOKEN_FILE, Server};
use riposte_store::{AlertFilter, Store};
use tokio::io::AsyncWriteExt;

/// The allocator the `riposte` binary runs with, so the figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    seconds: u64,
    /// Events offered per second (0: as fast as the server takes them).
    rate: u64,
    rules: PathBuf,
    corpus: PathBuf,
    http_clients: usize,
    batch: usize,
    /// Where to write each marker's send time and latency (a CSV), to see
    /// when the slow ones were.
    latencies: Option<PathBuf>,
}

fn options() -> Options {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut options = Options {
        seconds: 30,
        rate: 0,
        rules: root.join("sigma/rules/windows"),
        corpus: root.join("evtx"),
        http_clients: 2,
        batch: 1000,
        latencies: None,
    };
    const USAGE: &str = "load [--seconds N] [--rate EVENTS_PER_SECOND (0: as fast as it goes)] [--rules DIR] \
                         [--corpus DIR] [--http-clients N] [--batch N] [--latencies FILE.csv]";
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--seconds" => options.seconds = value.parse().expect("--seconds N"),
            "--rate" => options.rate = value.parse().expect("--rate EVENTS_PER_SECOND"),
            "--rules" => options.rules = PathBuf::from(value),
            "--corpus" => options.corpus = PathBuf::from(value),
            "--http-clients" => options.http_clients = value.parse().expect("--http-clients N"),
            "--batch" => options.batch = value.parse().ok().filter(|&batch| batch > 0).expect("--batch N (at least 1)"),
            "--latencies" => options.latencies = Some(PathBuf::from(value)),
            other => {
                eprintln!("unknown option {other}\nusage: {USAGE}");
                std::process::exit(2);
            }
        }
    }
    options
}

/// The corpus's events as JSON lines.
fn corpus_events(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "evtx") {
                files.push(path);
            }
        }
    }
    let mut decoder = EvtxDecoder::new();
    let mut sink = Collect::default();
    let mut buffer = Vec::new();
    for path in files {
        let file = EvtxFile::open(&path).expect("EVTX");
        for index in 0..file.chunk_count() {
            if let Ok(true) = file.read_chunk(index, &mut buffer) {
                decoder.decode_chunk(&path, index, std::mem::take(&mut buffer), &mut sink);
            }
        }
    }
    sink.events.iter().map(|event| event.to_json().to_string()).collect()
}

fn marker(index: u64, sent_ms: i64) -> String {
    serde_json::json!({
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": format!("marker-{index}"),
        "Image": "C:\\Windows\\System32\\vssadmin.exe",
        "OriginalFileName": "VSSADMIN.EXE",
        "CommandLine": "vssadmin.exe delete shadows /all /quiet",
        "sent_ms": sent_ms,
    })
    .to_string()
}

fn now_ms() -> i64 {
    riposte_server::pipeline::now_ms()
}

fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[i64], fraction: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = options();
    if !options.corpus.exists() || !options.rules.exists() {
        eprintln!("SKIPPED: {} or {} is absent", options.corpus.display(), options.rules.display());
        return;
    }
    let events = Arc::new(corpus_events(&options.corpus));
    let dir = tempfile::tempdir().unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
    config.http.listen = loopback;
    config.rules.paths = vec![options.rules.clone()];
    config.sources =
        vec![SourceConfig::SyslogTcp { name: "syslog".into(), listen: loopback, logsource: None, tls: None }];
    let started = Instant::now();
    let server = Server::start(config).await.expect("server");
    eprintln!(
        "server up in {:.2} s with {} rules; {} corpus events to replay; {} s of load",
        started.elapsed().as_secs_f64(),
        server.state.rules.current().engine.rules().len(),
        events.len(),
        options.seconds
    );
    let token = std::fs::read_to_string(dir.path().join("data").join(ADMIN_TOKEN_FILE)).unwrap().trim().to_owned();
    let base = format!("http://{}", server.http);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let markers = Arc::new(std::sync::Mutex::new(Vec::<(u64, i64)>::new()));
    let next_marker = Arc::new(AtomicU64::new(0));

    let mut generators = Vec::new();
    for client_index in 0..options.http_clients {
        let (events, stop, sent, markers, next_marker, base, token) = (
            events.clone(),
            stop.clone(),
            sent.clone(),
            markers.clone(),
            next_marker.clone(),
            base.clone(),
            token.clone(),
        );
        let batch = options.batch;
        // Nine tenths of the offered rate over HTTP, shared by the clients.
        let per_client = options.rate as f64 * 0.9 / options.http_clients as f64;
        generators.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            // The batches this client sends, built once: the generator's own
            // copying is CPU the server under test does not get.
            let batches: Vec<String> = (0..events.len().div_ceil(batch))
                .map(|number| {
                    let first = client_index * 997 + number * batch;
                    (first..first + batch).map(|at| events[at % events.len()].as_str()).collect::<Vec<_>>().join("\n")
                })
                .collect();
            let mut next_batch = 0;
            let begun = Instant::now();
            let mut offered = 0f64;
            while !stop.load(Ordering::Relaxed) {
                if per_client > 0.0 {
                    let due = begun + Duration::from_secs_f64(offered / per_client);
                    tokio::time::sleep_until(due.into()).await;
                    offered += batch as f64 + 1.0;
                }
                let events = &batches[next_batch % batches.len()];
                next_batch += 1;
                let index = next_marker.fetch_add(1, Ordering::Relaxed);
                let sent_ms = now_ms();
                let marker = marker(index, sent_ms);
                let mut body = String::with_capacity(events.len() + 1 + marker.len());
                body.push_str(events);
                body.push('\n');
                body.push_str(&marker);
                let response = client.post(format!("{base}/api/ingest")).bearer_auth(&token).body(body).send().await;
                match response {
                    Ok(response) if response.status().as_u16() == 202 => {
                        sent.fetch_add(batch as u64 + 1, Ordering::Relaxed);
                        markers.lock().unwrap().push((index, sent_ms));
                    }
                    // Back-pressure: wait as told.
                    Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }));
    }
    {
        let (stop, sent) = (stop.clone(), sent.clone());
        let address = server.address_of("syslog").unwrap();
        let rate = options.rate as f64 * 0.1;
        generators.push(tokio::spawn(async move {
            let mut connection = tokio::net::TcpStream::connect(address).await.unwrap();
            let mut n: u64 = 0;
            let mut chunk = String::new();
            let begun = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if rate > 0.0 {
                    tokio::time::sleep_until((begun + Duration::from_secs_f64(n as f64 / rate)).into()).await;
                }
                chunk.clear();
                for _ in 0..500 {
                    n += 1;
                    chunk.push_str(&format!(
                        "<38>Nov 29 10:00:00 web{:02} sshd[{}]: Accepted publickey for deploy from 10.0.{}.{} port 22 ssh2\n",
                        n % 50,
                        n % 30_000,
                        n % 250,
                        n % 200
                    ));
                }
                if connection.write_all(chunk.as_bytes()).await.is_err() {
                    break;
                }
                sent.fetch_add(500, Ordering::Relaxed);
            }
        }));
    }

    let metrics = server.state.metrics.clone();
    let decoded =
        |metrics: &riposte_server::metrics::Metrics| metrics.decoded_count("http") + metrics.decoded_count("syslog");
    let run = Instant::now();
    let mut last = (0u64, Instant::now());
    let mut rates = Vec::new();
    let mut rss = Vec::new();
    while run.elapsed() < Duration::from_secs(options.seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let processed = decoded(&metrics);
        let rate = (processed - last.0) as f64 / last.1.elapsed().as_secs_f64();
        last = (processed, Instant::now());
        rates.push(rate);
        rss.push(memory_kib("VmRSS:"));
        eprintln!(
            "{:>5.0} s  processed {:>10} ({:>8.0}/s)  sent {:>10}  spool depth {:>8}  lag {:>5} ms  RSS {:>6} MiB",
            run.elapsed().as_secs_f64(),
            processed,
            rate,
            sent.load(Ordering::Relaxed),
            server.state.spool.depth(),
            metrics.lag_ms.load(Ordering::Relaxed),
            memory_kib("VmRSS:") / 1024
        );
    }
    stop.store(true, Ordering::Relaxed);
    for generator in generators {
        let _ = generator.await;
    }
    // Let the pipeline drain what was accepted.
    let drain = Instant::now();
    while server.state.spool.depth() > 0 && drain.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = decoded(&metrics);
    let elapsed = run.elapsed().as_secs_f64();

    // Ingest-to-alert latency of every marker (each made its own alert).
    let mut alerts = std::collections::HashMap::new();
    let mut cursor = None;
    loop {
        let page = server
            .state
            .store
            .alerts(&AlertFilter { before: cursor, limit: 1000, ..AlertFilter::default() })
            .await
            .unwrap();
        for alert in &page.items {
            if let Some(host) = alert.entities.hosts.first().and_then(|host| host.strip_prefix("marker-")) {
                alerts.insert(host.parse::<u64>().unwrap_or(u64::MAX), alert.updated_ms);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let markers = std::mem::take(&mut *markers.lock().unwrap());
    let mut latencies: Vec<i64> =
        markers.iter().filter_map(|(index, sent_ms)| alerts.get(index).map(|stored| stored - sent_ms)).collect();
    if let Some(path) = &options.latencies {
        let first = markers.iter().map(|(_, sent_ms)| *sent_ms).min().unwrap_or_default();
        // A marker without an alert keeps its row, with no latency.
        let rows: String = markers
            .iter()
            .map(|(index, sent_ms)| {
                let latency = alerts.get(index).map(|stored| (stored - sent_ms).to_string()).unwrap_or_default();
                format!("{},{latency}\n", sent_ms - first)
            })
            .collect();
        std::fs::write(path, format!("sent_offset_ms,latency_ms\n{rows}")).expect("the latencies file written");
    }
    latencies.sort_unstable();
    let steady: Vec<f64> = rates.iter().skip(1).copied().collect();
    let sustained =
        if steady.is_empty() { total as f64 / elapsed } else { steady.iter().sum::<f64>() / steady.len() as f64 };
    println!(
        "{} events processed in {:.1} s (with the drain): sustained {:.0} events/s; markers {} sent, {} alerted; ingest-to-alert p50 {} ms, p99 {} ms, max {} ms; RSS first {} MiB, last {} MiB, peak {} MiB",
        total,
        elapsed,
        sustained,
        markers.len(),
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        rss.first().copied().unwrap_or(0) / 1024,
        rss.last().copied().unwrap_or(0) / 1024,
        memory_kib("VmHWM:") / 1024
    );
    server.shutdown().await;
}
