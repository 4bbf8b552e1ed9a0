//! `riposte serve` as a process: killed with SIGKILL in the middle of a
//! stream and restarted, and its audit trail tampered with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_riposte"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A configuration with the HTTP API on `port`, no syslog listeners, small
/// batches (so that a kill finds work in progress).
fn write_config(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("riposte.yml");
    let text = format!(
        "data_dir: {}\nhttp: {{listen: '127.0.0.1:{port}'}}\nsources: []\npipeline: {{batch: 16}}\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The server process, killed (SIGKILL) when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path) -> Serving {
    let child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Serving(child)
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/api/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn event(host: &str) -> String {
    json!({
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": host,
        "User": "CORP\\eve",
        "Image": "C:\\Temp\\m.exe",
        "CommandLine": "m.exe sekurlsa::logonpasswords exit",
    })
    .to_string()
}

/// Every alert, by host.
async fn alerts_by_host(client: &reqwest::Client, base: &str, token: &str) -> BTreeMap<String, Vec<i64>> {
    let mut by_host: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut cursor: Option<i64> = None;
    loop {
        let mut url = format!("{base}/api/alerts?limit=1000");
        if let Some(cursor) = cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = client.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        for alert in page["items"].as_array().unwrap() {
            let host = alert["entities"]["hosts"][0].as_str().unwrap().to_owned();
            by_host.entry(host).or_default().push(alert["count"].as_i64().unwrap());
        }
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => return by_host,
        }
    }
}

#[test]
fn a_killed_server_loses_nothing_it_acknowledged_and_counts_nothing_twice() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let mut server = start(&config);
        wait_healthy(&client, &base).await;
        let token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap().trim().to_owned();

        // Requests of 50 events, each event its own host (its own alert),
        // sent until the server is gone; it is killed once 2,000 are
        // acknowledged, while they are still being sent and processed.
        let host = |batch: usize, n: usize| format!("host-{batch:04}-{n:02}");
        let acknowledged_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sender = {
            let (client, base, token, count) =
                (client.clone(), base.clone(), token.clone(), acknowledged_count.clone());
            tokio::spawn(async move {
                let (mut acknowledged, mut attempted) = (Vec::new(), 0);
                for batch in 0..4_000 {
                    attempted = batch + 1;
                    let hosts: Vec<String> = (0..50).map(|n| host(batch, n)).collect();
                    let body = hosts.iter().map(|host| event(host)).collect::<Vec<_>>().join("\n");
                    let sent = client.post(format!("{base}/api/ingest")).bearer_auth(&token).body(body).send().await;
                    match sent {
                        Ok(response) if response.status().as_u16() == 202 => acknowledged.extend(hosts),
                        _ => break,
                    }
                    count.store(acknowledged.len(), std::sync::atomic::Ordering::Relaxed);
                }
                (acknowledged, attempted)
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged_count.load(std::sync::atomic::Ordering::Relaxed) < 2_000 {
            assert!(Instant::now() < deadline, "the server acknowledged too little");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let processed = alerts_by_host(&client, &base, &token).await.len();
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        let (acknowledged, attempted) = sender.await.unwrap();
        eprintln!("SIGKILL with {} events acknowledged, about {processed} processed", acknowledged.len());
        assert!(attempted < 4_000, "the kill came mid-stream");
        assert!(processed < acknowledged.len(), "acknowledged events were waiting in the spool");

        // Restarted, it processes what was spooled and not yet committed.
        let _server = start(&config);
        wait_healthy(&client, &base).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let by_host = loop {
            let by_host = alerts_by_host(&client, &base, &token).await;
            if acknowledged.iter().all(|host| by_host.contains_key(host)) {
                // Let anything still spooled land, then look again.
                tokio::time::sleep(Duration::from_millis(500)).await;
                break alerts_by_host(&client, &base, &token).await;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} acknowledged events have an alert",
                by_host.len(),
                acknowledged.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for host in &acknowledged {
            assert_eq!(by_host[host], [1], "{host}: exactly one alert counting one detection");
        }
        // Nothing appears that was not sent (the request cut by the kill may
        // have been spooled without its answer).
        let sent = |name: &str| {
            let batch = name.strip_prefix("host-").and_then(|rest| rest.split('-').next()?.parse::<usize>().ok());
            batch.is_some_and(|batch| batch < attempted)
        };
        assert!(by_host.keys().all(|name| sent(name)), "an alert for a host never sent");
    });
}

fn riposte(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(binary()).args(args).arg("--config").arg(config).output().unwrap()
}

#[test]
fn audit_verify_finds_edits_and_deletions() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port());
    for name in ["first", "second", "third"] {
        let output = riposte(&["token", "create", "--name", name, "--scope", "read"], &config);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).starts_with("rpt_"), "the token is printed once");
    }
    let verified = riposte(&["audit", "verify"], &config);
    assert_eq!(verified.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("3 entries verified"));

    let database = dir.path().join("data/riposte.db");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sql = |statement: &'static str| {
        runtime.block_on(async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", database.display())).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
            pool.close().await;
        })
    };

    // An edit: the entry's MAC no longer matches.
    sql("UPDATE audit SET detail = '{\"name\":\"first\",\"scope\":\"admin\"}' WHERE seq = 1");
    let output = riposte(&["audit", "verify"], &config);
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("BROKEN") && report.contains("entry 1 was changed"), "{report}");
    sql("UPDATE audit SET detail = '{\"name\":\"first\",\"scope\":\"read\"}' WHERE seq = 1");
    assert_eq!(riposte(&["audit", "verify"], &config).status.code(), Some(0), "the original text verifies again");

    // Deleting the newest entry is seen too (the head is kept outside the database).
    sql("DELETE FROM audit WHERE seq = 3");
    let output = riposte(&["audit", "verify"], &config);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("newest audit entries are missing"));
}
