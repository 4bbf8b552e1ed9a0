//! Benchmark of the playbook runner: N concurrent runs of a 10-step
//! playbook whose every step calls a loopback HTTP API (a connector of type
//! `http`), journaled in SQLite as in `serve`. Reports runs/s, step latency
//! (from one step's journal entry to the next, so journal writes and
//! queueing count) and peak memory.
//!
//! ```sh
//! cargo run --release -p riposte-server --example playbook_runs -- 1000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use riposte_server::auth::AuditFiles;
use riposte_server::playbooks::{PlaybookConfig, Runner};
use riposte_store::{AnyStore, RunStatus, SqliteStore, Store};
use serde_json::{Map, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STEPS: usize = 10;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn percentile(sorted: &[i64], fraction: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runs: usize = std::env::args().nth(1).and_then(|text| text.parse().ok()).unwrap_or(1000);

    // The tool the playbook acts through: answers every POST with a small JSON body.
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let api = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::Relaxed);
            axum::Json(json!({"ok": true}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    let mut playbook =
        format!("id: bench\nautonomy: auto\nconcurrency: {runs}\ntriggers: [{{manual: {{}}}}]\nsteps:\n");
    for step in 0..STEPS {
        playbook.push_str(&format!(
            "  - {{id: s{step}, action: api.request, with: {{method: POST, path: /step/{step}, json: {{run: '{{{{ run.id }}}}'}}}}}}\n"
        ));
    }
    std::fs::write(dir.path().join("playbooks/bench.yml"), playbook).unwrap();
    let mut config: PlaybookConfig = serde_saphyr::from_str(&format!(
        "connectors: {{api: {{type: http, url: 'http://{address}', allow_private: true}}}}"
    ))
    .unwrap();
    config.dirs = vec![dir.path().join("playbooks")];
    config.ready = false;
    let store = AnyStore::Sqlite(SqliteStore::open(&dir.path().join("riposte.db")).await.unwrap());
    let audit = Arc::new(AuditFiles::open(dir.path()).unwrap());
    let (runner, errors, _) =
        Runner::new(&config, store.clone(), audit, Arc::new(tokio::sync::Mutex::new(())), Vec::new(), None).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let runner = Arc::new(runner);

    let started = Instant::now();
    let mut ids = Vec::with_capacity(runs);
    for _ in 0..runs {
        let run = runner.start("bench", json!({"kind": "manual"}), Map::new(), None, None).await.unwrap().unwrap();
        ids.push(run.id);
    }
    let created = started.elapsed();
    let handles = runner.tick().await.unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    let elapsed = started.elapsed();

    let mut completed = 0;
    let mut latencies = Vec::with_capacity(runs * STEPS);
    for id in &ids {
        let run = store.run(id).await.unwrap().unwrap();
        if run.status == RunStatus::Completed {
            completed += 1;
        }
        let steps = store.run_steps(id).await.unwrap();
        let mut previous = run.created_ms;
        for step in 0..STEPS {
            if let Some(entry) = steps.iter().find(|entry| entry.path == format!("s{step}")) {
                latencies.push(entry.updated_ms - previous);
                previous = entry.updated_ms;
            }
        }
    }
    latencies.sort_unstable();
    println!(
        "{runs} runs of {STEPS} steps: {completed} completed in {:.2} s ({:.2} s to create them) = {:.0} runs/s, {:.0} steps/s; \
         {} HTTP calls; step latency p50 {} ms, p99 {} ms, max {} ms; peak RSS {:.0} MiB",
        elapsed.as_secs_f64(),
        created.as_secs_f64(),
        runs as f64 / elapsed.as_secs_f64(),
        (runs * STEPS) as f64 / elapsed.as_secs_f64(),
        calls.load(Ordering::Relaxed),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        peak_rss_mib(),
    );
}
