//! The real server on loopback: events sent over HTTP, syslog UDP and TCP and
//! a followed file become stored alerts that the API serves; tokens, scopes,
//! limits, rule changes and the audit trail as a client meets them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use riposte_server::config::{Config, FileFormat, SourceConfig, TlsFiles};
use riposte_server::{ADMIN_TOKEN_FILE, Server};
use serde_json::{Value, json};

const SSH_RULE: &str = "title: SSH Password Failure
id: 5d3f0c2e-8a4b-4e6f-9b1a-2c3d4e5f6a7b
status: test
level: medium
logsource: {product: linux, service: syslog}
detection:
  keywords: ['Failed password']
  condition: keywords
";

const MIMIKATZ_RULE: &str = "title: Mimikatz Commands
id: 0b5e3a1c-7d2f-4c8e-a6b4-9f1e2d3c4b5a
status: test
level: critical
tags: [attack.credential-access, attack.t1003.001]
logsource: {product: windows, category: process_creation}
detection:
  selection:
    CommandLine|contains: ['sekurlsa::', 'lsadump::']
  condition: selection
";

const APP_RULE: &str = "title: App Admin Login From Outside
id: 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
status: test
level: high
logsource: {product: myapp}
detection:
  selection:
    action: admin_login
    outside: true
  condition: selection
";

fn process_creation(command_line: &str) -> Value {
    json!({
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": "WS-7",
        "User": "CORP\\bob",
        "Image": "C:\\Users\\bob\\m.exe",
        "CommandLine": command_line,
        "UtcTime": "2026-11-29 10:00:00.000",
    })
}

struct Harness {
    server: Server,
    /// The certificate of the TLS syslog source (DER), for clients to trust.
    certificate: Vec<u8>,
    client: reqwest::Client,
    token: String,
    base: String,
    rules: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(rules.join("ssh.yml"), SSH_RULE).unwrap();
        std::fs::write(rules.join("mimikatz.yml"), MIMIKATZ_RULE).unwrap();
        std::fs::write(rules.join("app.yml"), APP_RULE).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.path().join("syslog.crt"), certified.cert.pem()).unwrap();
        std::fs::write(dir.path().join("syslog.key"), certified.signing_key.serialize_pem()).unwrap();
        let certificate = certified.cert.der().to_vec();
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
        config.http.listen = loopback;
        config.http.max_body = 64 << 10;
        config.rules.paths = vec![rules.clone()];
        config.pipeline.batch = 64;
        config.sources = vec![
            SourceConfig::SyslogUdp {
                name: "udp".into(),
                listen: loopback,
                logsource: Some("product=linux,service=syslog".into()),
            },
            SourceConfig::SyslogTcp {
                name: "tcp".into(),
                listen: loopback,
                logsource: Some("product=linux,service=syslog".into()),
                tls: None,
            },
            SourceConfig::SyslogTcp {
                name: "tls".into(),
                listen: loopback,
                logsource: Some("product=linux,service=syslog".into()),
                tls: Some(TlsFiles { cert: dir.path().join("syslog.crt"), key: dir.path().join("syslog.key") }),
            },
            SourceConfig::File {
                name: "app".into(),
                path: dir.path().join("app.jsonl"),
                format: FileFormat::Json,
                logsource: Some("product=myapp".into()),
            },
        ];
        let server = Server::start(config).await.unwrap();
        let token = std::fs::read_to_string(dir.path().join("data").join(ADMIN_TOKEN_FILE)).unwrap().trim().to_owned();
        let base = format!("http://{}", server.http);
        Harness { server, certificate, client: reqwest::Client::new(), token, base, rules, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).bearer_auth(&self.token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The metrics, once they hold `line` (polling).
    async fn metrics_with(&self, line: &str) -> String {
        metrics_when(&self.client, &self.base, &format!("no {line}"), |metrics| metrics.contains(line)).await
    }

    /// Waits (polling) until the alerts of a rule reach `count` detections.
    async fn wait_for(&self, rule_id: &str, detections: i64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(&format!("/api/alerts?rule_id={rule_id}")).await;
            assert_eq!(status, 200, "{body}");
            let items = body["items"].as_array().cloned().unwrap_or_default();
            let counted: i64 = items.iter().map(|alert| alert["count"].as_i64().unwrap_or(0)).sum();
            if counted >= detections {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {detections} detections of {rule_id}, have {counted}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The metrics of the server at `base`, once `ready` says so (polling);
/// `waiting` says what did not happen when it never does.
async fn metrics_when(client: &reqwest::Client, base: &str, waiting: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        if ready(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "{waiting}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The newest alert of `rule_id`, once there is one (polling).
/// The JSON body a GET with the token answers.
async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Value {
    client.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

async fn first_alert(client: &reqwest::Client, base: &str, token: &str, rule_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = get_json(client, &format!("{base}/api/alerts?rule_id={rule_id}"), token).await;
        if let Some(alert) = body["items"].as_array().and_then(|items| items.first()).cloned() {
            return alert;
        }
        assert!(Instant::now() < deadline, "no alert of {rule_id}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server on loopback, its data under `dir`, no sources.
fn loopback_config(dir: &Path) -> Config {
    let mut config = Config { data_dir: dir.join("data"), ..Config::default() };
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.sources = Vec::new();
    config
}

/// Starts the server of `config` (data under `dir`): the server, the admin
/// token it made, and its base URL.
async fn start(config: Config, dir: &Path) -> (Server, String, String) {
    let server = Server::start(config).await.unwrap();
    let token = std::fs::read_to_string(dir.join("data").join(ADMIN_TOKEN_FILE)).unwrap().trim().to_owned();
    let base = format!("http://{}", server.http);
    (server, token, base)
}

fn write_append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_every_source_become_alerts() {
    let harness = Harness::start().await;

    // HTTP: JSON lines, one of them broken, one that matches nothing.
    let body = [
        process_creation("m.exe \"sekurlsa::logonpasswords\" exit").to_string(),
        "{broken".to_owned(),
        process_creation("notepad.exe").to_string(),
        process_creation("m.exe \"lsadump::sam\" exit").to_string(),
    ]
    .join("\n");
    let response = harness
        .client
        .post(harness.url("/api/ingest"))
        .bearer_auth(&harness.token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["accepted"], 3);
    assert_eq!(accepted["rejected"][0]["line"], 2);

    // Syslog over UDP, and over TCP in both framings.
    let failed = "<38>Nov 29 10:00:00 web01 sshd[123]: Failed password for root from 203.0.113.9 port 22 ssh2";
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(failed.as_bytes(), harness.server.address_of("udp").unwrap()).await.unwrap();
    let mut tcp = tokio::net::TcpStream::connect(harness.server.address_of("tcp").unwrap()).await.unwrap();
    let framed = format!("{} {failed}\n{failed}\n", failed.len());
    tokio::io::AsyncWriteExt::write_all(&mut tcp, framed.as_bytes()).await.unwrap();
    drop(tcp);

    // Syslog over TLS, trusting the server's certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(harness.certificate.clone())).unwrap();
    let tls_config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls_config));
    let socket = tokio::net::TcpStream::connect(harness.server.address_of("tls").unwrap()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut secure = connector.connect(name, socket).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut secure, format!("{failed}\n").as_bytes()).await.unwrap();
    tokio::io::AsyncWriteExt::shutdown(&mut secure).await.unwrap();
    // Plain text on the TLS port is refused, and counted.
    let mut plain = tokio::net::TcpStream::connect(harness.server.address_of("tls").unwrap()).await.unwrap();
    let _ = tokio::io::AsyncWriteExt::write_all(&mut plain, format!("{failed}\n").as_bytes()).await;
    drop(plain);

    // A followed file.
    let app_log = harness._dir.path().join("app.jsonl");
    write_append(
        &app_log,
        "{\"action\": \"admin_login\", \"outside\": true, \"user\": \"eve\", \"src_ip\": \"198.51.100.7\"}\n",
    );
    write_append(&app_log, "{\"action\": \"login\", \"outside\": false}\n{\"action\": \"admin_lo");

    let mimikatz = harness.wait_for("0b5e3a1c-7d2f-4c8e-a6b4-9f1e2d3c4b5a", 2).await;
    assert_eq!(mimikatz.len(), 1, "the same rule on the same entities within the window is one alert");
    let alert = &mimikatz[0];
    assert_eq!(alert["count"], 2);
    assert_eq!(alert["level"], "critical");
    assert_eq!(alert["techniques"], json!(["T1003.001"]));
    assert_eq!(alert["entities"]["hosts"], json!(["WS-7"]));
    assert_eq!(alert["entities"]["users"], json!(["CORP\\bob"]));
    assert_eq!(alert["status"], "new");

    let ssh = harness.wait_for("5d3f0c2e-8a4b-4e6f-9b1a-2c3d4e5f6a7b", 4).await;
    assert_eq!(ssh[0]["entities"]["hosts"], json!(["web01"]));
    let app = harness.wait_for("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", 1).await;
    assert_eq!(app[0]["entities"]["ips"], json!(["198.51.100.7"]));
    // The unfinished line is read once it is finished.
    write_append(&app_log, "gin\", \"outside\": true, \"user\": \"mallory\"}\n");
    harness.wait_for("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", 2).await;

    // One alert, with its event.
    let id = alert["id"].as_i64().unwrap();
    let (status, full) = harness.get(&format!("/api/alerts/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(full["event"]["CommandLine"], "m.exe \"sekurlsa::logonpasswords\" exit");

    // An analyst closes it as a false positive; the audit trail has it.
    let (status, changed) = harness
        .send(
            reqwest::Method::PATCH,
            &format!("/api/alerts/{id}"),
            Some(&harness.token),
            Some(json!({"status": "closed", "verdict": "false_positive"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!((changed["status"].as_str(), changed["verdict"].as_str()), (Some("closed"), Some("false_positive")));
    let (status, _) = harness
        .send(reqwest::Method::PATCH, &format!("/api/alerts/{id}"), Some(&harness.token), Some(json!({"state": "x"})))
        .await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (_, closed) = harness.get("/api/alerts?status=closed").await;
    assert_eq!(closed["items"].as_array().unwrap().len(), 1);

    // Cursor pagination.
    let (_, first) = harness.get("/api/alerts?limit=1").await;
    let cursor = first["next_cursor"].as_i64().expect("a next page");
    let (_, second) = harness.get(&format!("/api/alerts?limit=1&cursor={cursor}")).await;
    assert!(second["items"][0]["id"].as_i64().unwrap() < first["items"][0]["id"].as_i64().unwrap());

    // What the operator sees of bad input and throughput.
    let (_, sources) = harness.get("/api/sources").await;
    assert!(sources["bad_message_samples"]["http"].as_str().is_some(), "{sources}");
    let metrics = harness.metrics_with("riposte_events_failed_total{source=\"tls\"} 1").await;
    assert!(metrics.contains("riposte_events_decoded_total{source=\"tcp\"} 2"), "{metrics}");
    assert!(
        metrics.contains("riposte_detections_total{rule_id=\"5d3f0c2e-8a4b-4e6f-9b1a-2c3d4e5f6a7b\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("riposte_events_decoded_total{source=\"tls\"} 1"), "{metrics}");
    let (status, openapi) = harness.send(reqwest::Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(openapi["openapi"], "3.1.0");

    harness.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_scopes_limits_and_rule_changes() {
    let harness = Harness::start().await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    // No token, a wrong one: 401 and no data.
    let (status, body) = harness.send(get.clone(), "/api/alerts", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body.get("items").is_none());
    let forged = "rpt_000000000000_0000000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(harness.send(get.clone(), "/api/alerts", Some(forged), None).await.0, 401);

    // A read token reads, and may not write.
    let (status, created) = harness
        .send(post.clone(), "/api/tokens", Some(&harness.token), Some(json!({"name": "viewer", "scope": "read"})))
        .await;
    assert_eq!(status, 201, "{created}");
    let reader = created["token"].as_str().unwrap().to_owned();
    assert_eq!(harness.send(get.clone(), "/api/alerts", Some(&reader), None).await.0, 200);
    let (status, body) = harness.send(post.clone(), "/api/ingest", Some(&reader), Some(process_creation("x"))).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(harness.send(post.clone(), "/api/rules/reload", Some(&reader), None).await.0, 403);

    // Oversized bodies: 413.
    let big = "x".repeat(70 << 10);
    let response =
        harness.client.post(harness.url("/api/ingest")).bearer_auth(&harness.token).body(big).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413);

    // Turning a rule off and on again, through a reload each time.
    let mimikatz = "0b5e3a1c-7d2f-4c8e-a6b4-9f1e2d3c4b5a";
    let (status, body) =
        harness.send(post.clone(), &format!("/api/rules/{mimikatz}/disable"), Some(&harness.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["loaded"], 2);
    let (_, rules) = harness.get("/api/rules").await;
    assert!(rules["rules"].as_array().unwrap().iter().any(|rule| rule["id"] == mimikatz && rule["enabled"] == false));
    assert_eq!(
        harness.send(post.clone(), &format!("/api/rules/{mimikatz}/enable"), Some(&harness.token), None).await.0,
        200
    );
    assert_eq!(harness.send(post.clone(), "/api/rules/nope/enable", Some(&harness.token), None).await.0, 404);

    // A broken rule file: the reload is refused, the running rules stay.
    std::fs::write(
        harness.rules.join("broken.yml"),
        "title: Broken\ndetection: {selection: {a|nosuch: 1}, condition: selection}\nlogsource: {product: x}\n",
    )
    .unwrap();
    let (status, body) = harness.send(post.clone(), "/api/rules/reload", Some(&harness.token), None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("broken.yml"), "{body}");
    let (_, rules) = harness.get("/api/rules").await;
    assert_eq!(rules["loaded"], 3, "still running");
    std::fs::remove_file(harness.rules.join("broken.yml")).unwrap();
    assert_eq!(harness.send(post.clone(), "/api/rules/reload", Some(&harness.token), None).await.0, 200);

    // Every change is in the audit trail, which verifies.
    let log = harness.server.state.store.clone();
    let entries = riposte_store::Store::audit_log(&log).await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(actions, ["token.create", "token.create", "rule.disable", "rule.enable", "rules.reload"]);
    let head = harness.server.state.audit.head().unwrap();
    assert_eq!(riposte_store::verify(&entries, &harness.server.state.audit.key, head.as_ref()), Ok(5));

    harness.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_server_says_so() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
    config.http.listen = loopback;
    // No room at all: every source meets its back-pressure.
    config.spool.max_pending = 0;
    config.sources = vec![SourceConfig::SyslogUdp { name: "udp".into(), listen: loopback, logsource: None }];
    let server = Server::start(config).await.unwrap();
    let token = std::fs::read_to_string(dir.path().join("data").join(ADMIN_TOKEN_FILE)).unwrap().trim().to_owned();
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.http);

    // HTTP: 503 with Retry-After, gzip or not.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, process_creation("x").to_string().as_bytes()).unwrap();
    let response = client
        .post(format!("{base}/api/ingest"))
        .bearer_auth(&token)
        .header("content-encoding", "gzip")
        .body(gzip.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    let ready = client.get(format!("{base}/api/ready")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);

    // UDP: dropped, and counted.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..3 {
        udp.send_to(b"<13>Nov 29 10:00:00 h app: hello", server.address_of("udp").unwrap()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.state.metrics.dropped_count("udp") < 3 {
        assert!(Instant::now() < deadline, "datagrams were not counted as dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_read() {
    let harness = Harness::start().await;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let lines =
        [process_creation("m.exe sekurlsa::logonpasswords").to_string(), process_creation("calc.exe").to_string()];
    std::io::Write::write_all(&mut gzip, lines.join("\n").as_bytes()).unwrap();
    let response = harness
        .client
        .post(harness.url("/api/ingest"))
        .bearer_auth(&harness.token)
        .header("content-encoding", "gzip")
        .body(gzip.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    harness.wait_for("0b5e3a1c-7d2f-4c8e-a6b4-9f1e2d3c4b5a", 1).await;
    harness.server.shutdown().await;
}

const FAILED_LOGIN_RULE: &str = "title: App Login Failed
name: app_login_failed
level: low
logsource: {product: myapp}
detection:
  selection: {action: login_failed}
  condition: selection
";

const BRUTE_FORCE_CORRELATION: &str = "title: App Brute Force
id: 3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b
level: high
tags: [attack.credential-access, attack.t1110.001]
correlation:
  type: event_count
  rules: app_login_failed
  group-by: [user]
  timespan: 10m
  condition: {gte: 5}
";

/// An app event at `second` past a fixed minute, as JSON.
fn app_event(second: u32, action: &str, user: &str) -> Value {
    json!({"timestamp": format!("2026-11-29T10:00:{second:02}Z"), "action": action, "user": user})
}

fn append_events(path: &Path, events: &[Value]) {
    let lines: Vec<String> = events.iter().map(|event| format!("{event}\n")).collect();
    write_append(path, &lines.concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlation_windows_survive_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("failed.yml"), FAILED_LOGIN_RULE).unwrap();
    std::fs::write(rules.join("brute.yml"), BRUTE_FORCE_CORRELATION).unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
    config.http.listen = loopback;
    config.rules.paths = vec![rules];
    let log = dir.path().join("app.jsonl");
    config.sources = vec![SourceConfig::File {
        name: "app".into(),
        path: log.clone(),
        format: FileFormat::Json,
        logsource: Some("product=myapp".into()),
    }];
    config.correlation.allowed_lateness = Duration::from_secs(1);
    let start = |config: Config| async move {
        let server = Server::start(config).await.unwrap();
        let base = format!("http://{}", server.http);
        (server, base)
    };
    let client = reqwest::Client::new();

    // Three failures for alice, and time moving on: one open window.
    let (server, base) = start(config.clone()).await;
    let token = std::fs::read_to_string(dir.path().join("data").join(ADMIN_TOKEN_FILE)).unwrap().trim().to_owned();
    let failures: Vec<Value> = (0..3).map(|second| app_event(second, "login_failed", "alice")).collect();
    append_events(&log, &failures);
    append_events(&log, &[app_event(10, "page_view", "bob")]);
    metrics_when(&client, &base, "no open window", |metrics| metrics.contains("riposte_correlation_groups 1\n")).await;
    server.shutdown().await;

    // A new process: the window is back from the store, not from a replay
    // of the spool; two more failures make five within ten minutes.
    let (server, base) = start(config).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(!metrics.contains("riposte_events_decoded_total{source=\"app\"}"), "{metrics}");
        if metrics.contains("riposte_correlation_groups 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the window was not restored:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failures: Vec<Value> = (20..22).map(|second| app_event(second, "login_failed", "alice")).collect();
    append_events(&log, &failures);
    append_events(&log, &[app_event(40, "page_view", "bob")]);
    // The correlation fires after the restart.
    let alert = first_alert(&client, &base, &token, "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b").await;
    assert_eq!(alert["rule_title"], "App Brute Force");
    assert_eq!(alert["level"], "high");
    assert_eq!(alert["techniques"], json!(["T1110.001"]));
    assert_eq!(alert["entities"]["users"], json!(["alice"]));
    // The failed logons feed the correlation only (no `generate`).
    let body = get_json(&client, &format!("{base}/api/alerts"), &token).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_network_and_linux_tools_become_alerts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let rule = |name: &str, id: &str, text: &str| {
        std::fs::write(rules.join(name), format!("title: {name}\nid: {id}\nlevel: high\n{text}")).unwrap()
    };
    rule(
        "dns.yml",
        "11111111-0000-4000-8000-000000000001",
        "logsource: {category: dns}\ndetection:\n  selection:\n    query|endswith: '.evil.example'\n  condition: selection\n",
    );
    rule(
        "auditd.yml",
        "11111111-0000-4000-8000-000000000002",
        "logsource: {product: linux, service: auditd}\ndetection:\n  selection:\n    type: EXECVE\n    a1: /etc/shadow\n  condition: selection\n",
    );
    rule(
        "suricata_stats.yml",
        "11111111-0000-4000-8000-000000000004",
        "logsource: {product: suricata, service: stats}\ndetection:\n  selection:\n    stats.capture.kernel_drops|gt: 1000\n  condition: selection\n",
    );
    rule(
        "cef.yml",
        "11111111-0000-4000-8000-000000000003",
        "logsource: {product: cef}\ndetection:\n  selection: {act: deny}\n  condition: selection\n",
    );
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
    config.http.listen = loopback;
    config.rules.paths = vec![rules];
    let file = |name: &str, format: FileFormat| SourceConfig::File {
        name: name.into(),
        path: dir.path().join(format!("{name}.log")),
        format,
        logsource: None,
    };
    config.sources = vec![
        file("zeek", FileFormat::Zeek),
        file("audit", FileFormat::Auditd),
        file("firewall", FileFormat::Cef),
        // Named as Suricata's: even records of no recognisable shape (stats).
        file("eve", FileFormat::Suricata),
        SourceConfig::SyslogUdp { name: "udp".into(), listen: loopback, logsource: None },
    ];
    let (server, token, base) = start(config, dir.path()).await;
    let client = reqwest::Client::new();

    write_append(
        &dir.path().join("zeek.log"),
        "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.resp_h\tquery\n#types\ttime\tstring\taddr\taddr\tstring\n1795946400.0\tC1\t10.0.0.5\t10.0.0.1\tc2.evil.example\n",
    );
    // An audit event whose end no record announces: written once the file is quiet.
    write_append(
        &dir.path().join("audit.log"),
        "type=SYSCALL msg=audit(1795946401.000:7): syscall=59 comm=\"cat\"\ntype=EXECVE msg=audit(1795946401.000:7): argc=2 a0=\"cat\" a1=2F6574632F736861646F77\n",
    );
    write_append(&dir.path().join("firewall.log"), "CEF:0|Vendor|NGFW|9.1|t|Blocked|8|src=10.0.0.5 act=deny\n");
    write_append(
        &dir.path().join("eve.log"),
        "{\"timestamp\":\"2026-11-29T10:00:09.000000+0000\",\"event_type\":\"stats\",\"stats\":{\"capture\":{\"kernel_drops\":5000}}}\n",
    );
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(
        b"<134>1 2026-11-29T10:00:05Z fw02 CEF - - - CEF:0|Vendor|NGFW|9.1|t|Blocked|8|src=10.0.0.6 act=deny",
        server.address_of("udp").unwrap(),
    )
    .await
    .unwrap();
    // Suricata EVE over HTTP: recognised by its shape.
    let eve = r#"{"timestamp":"2026-11-29T10:00:06.000000+0000","flow_id":9,"event_type":"dns","src_ip":"10.0.0.7","dest_ip":"10.0.0.1","proto":"UDP","dns":{"type":"query","rrname":"update.evil.example","rrtype":"A"}}"#;
    // Wazuh and Falco alerts are alerts as they are, under their own rule ids.
    let wazuh = r#"{"timestamp":"2026-11-29T10:00:07.000+0000","rule":{"level":10,"description":"sshd: brute force trying to get access to the system.","id":"5712","mitre":{"id":["T1110"]}},"agent":{"id":"001","name":"web01"},"manager":{"name":"wazuh"},"data":{"srcip":"198.51.100.7"}}"#;
    let falco = r#"{"hostname":"node-1","output":"A shell was spawned in a container","priority":"Warning","rule":"Terminal shell in container","source":"syscall","tags":["container","T1059"],"time":"2026-11-29T10:00:08.000000000Z"}"#;
    let body = [eve, wazuh, falco].join("\n");
    let response = client.post(format!("{base}/api/ingest")).bearer_auth(&token).body(body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);

    let deadline = Instant::now() + Duration::from_secs(20);
    let counts = loop {
        let body = get_json(&client, &format!("{base}/api/alerts?limit=100"), &token).await;
        let mut counts: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        for alert in body["items"].as_array().unwrap() {
            *counts.entry(alert["rule_title"].as_str().unwrap().to_owned()).or_default() +=
                alert["count"].as_i64().unwrap();
        }
        if counts.values().sum::<i64>() >= 8 {
            break counts;
        }
        assert!(Instant::now() < deadline, "alerts so far: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expected: std::collections::BTreeMap<String, i64> = [
        ("dns.yml", 2),
        ("auditd.yml", 1),
        ("cef.yml", 2),
        ("suricata_stats.yml", 1),
        ("sshd: brute force trying to get access to the system.", 1),
        ("Terminal shell in container", 1),
    ]
    .map(|(title, count)| (title.to_owned(), count))
    .into();
    assert_eq!(counts, expected);
    let body = get_json(&client, &format!("{base}/api/alerts?rule_id=wazuh:5712"), &token).await;
    let alert = &body["items"][0];
    assert_eq!((alert["level"].as_str(), alert["techniques"].clone()), (Some("medium"), json!(["T1110"])), "{body}");
    assert_eq!(alert["entities"]["ips"], json!(["198.51.100.7"]), "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observables_named_by_threat_intelligence_become_alerts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c2.csv"), "indicator,type,confidence,tags\n45.77.12.0/24,cidr,85,c2\n").unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
    config.http.listen = loopback;
    config.sources = Vec::new();
    config.intel.files = vec![dir.path().join("c2.csv")];
    let (server, token, base) = start(config, dir.path()).await;
    let client = reqwest::Client::new();
    let events = [
        json!({"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-9", "DestinationIp": "45.77.12.9", "UtcTime": "2026-11-29 10:00:00.000"}),
        json!({"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-9", "DestinationIp": "8.8.8.8", "UtcTime": "2026-11-29 10:00:01.000"}),
    ];
    let body: Vec<String> = events.iter().map(Value::to_string).collect();
    let response =
        client.post(format!("{base}/api/ingest")).bearer_auth(&token).body(body.join("\n")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let alert = first_alert(&client, &base, &token, "intel:ip:45.77.12.9").await;
    assert_eq!(alert["level"], "high");
    assert!(alert["rule_title"].as_str().unwrap().contains("DestinationIp (c2.csv)"), "{alert}");
    assert_eq!(alert["entities"]["hosts"], json!(["WS-9"]));
    let body = get_json(&client, &format!("{base}/api/alerts"), &token).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "8.8.8.8 is in no feed: {body}");
    server.shutdown().await;

    // A feed that cannot be read stops the start with its name.
    let mut config = Config { data_dir: dir.path().join("data2"), ..Config::default() };
    config.http.listen = loopback;
    config.sources = Vec::new();
    config.intel.files = vec![dir.path().join("missing.txt")];
    let error = Server::start(config).await.err().expect("a missing feed is an error").to_string();
    assert!(error.contains("missing.txt"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_are_pulled_on_schedule_and_the_indicators_swapped_live() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let feed = wiremock::MockServer::start().await;
    // First pull: one address; every later pull: another.
    wiremock::Mock::given(wiremock::matchers::path("/c2.txt"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("45.77.12.9\n"))
        .up_to_n_times(1)
        .mount(&feed)
        .await;
    wiremock::Mock::given(wiremock::matchers::path("/c2.txt"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("45.77.12.9\n203.0.113.200\n"))
        .mount(&feed)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    config.intel.feeds = vec![
        serde_json::from_value(
            json!({"name": "c2", "url": format!("{}/c2.txt", feed.uri()), "allow_private": true, "every": 1}),
        )
        .unwrap(),
    ];
    let (server, token, base) = start(config, dir.path()).await;
    let client = reqwest::Client::new();
    let metric = |text: &str, name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse::<u64>().ok()))
            .unwrap_or(0)
    };
    // The second pull (a second later) brings the second address.
    metrics_when(&client, &base, "the set was not swapped", |text| metric(text, "riposte_intel_indicators ") == 2)
        .await;
    let event = json!({"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-3", "DestinationIp": "203.0.113.200"});
    let response =
        client.post(format!("{base}/api/ingest")).bearer_auth(&token).body(event.to_string()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    first_alert(&client, &base, &token, "intel:ip:203.0.113.200").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indicators_added_and_revoked_through_the_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("dns.yml"),
        "title: Lookup of a CDN name\nid: 0b6a7c1e-8f1d-4d8e-9a55-2f1f0c8d9e01\nlevel: low\n\
         logsource: {product: windows, category: dns_query}\n\
         detection: {selection: {QueryName|startswith: 'cdn.'}, condition: selection}\n",
    )
    .unwrap();
    let mut config = loopback_config(dir.path());
    config.rules.paths = vec![rules];
    let (server, token, base) = start(config, dir.path()).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = client.post(format!("{base}{path}")).bearer_auth(&token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = post(
        "/api/intel/indicators",
        json!({"type": "domain", "value": "evil[.]example", "confidence": 90, "tags": ["c2"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["indicator"]["value"], "evil.example");
    let (status, body) = post("/api/intel/indicators", json!({"type": "ip", "value": "not an address"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");

    let lookup = |value: &str| {
        // The values here need no URL escaping.
        let request = client.get(format!("{base}/api/intel/lookup?value={value}")).bearer_auth(&token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let found = lookup("cdn.evil.example").await;
    assert_eq!(found["matches"][0]["indicator"]["sources"], json!(["api"]), "{found}");
    post("/api/intel/indicators", json!({"type": "ip", "value": "45.77.12.9", "tags": ["scanner"]})).await;
    let search = |query: &str| {
        let request = client.get(format!("{base}/api/intel/indicators?{query}")).bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (_, page) = search("tag=c2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["indicator"]["value"], "evil.example");
    let (_, page) = search("limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, rest) = search(&format!("limit=1&cursor={}", page["next_cursor"])).await;
    assert_eq!(rest["items"][0]["indicator"]["value"], "45.77.12.9", "{rest}");
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, found) = search("type=ip&contains=77.12").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (status, body) = search("type=ipaddr").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");

    let event = json!({"EventID": 22, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-5", "QueryName": "cdn.evil.example"});
    let response =
        client.post(format!("{base}/api/ingest")).bearer_auth(&token).body(event.to_string()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let alert = first_alert(&client, &base, &token, "intel:domain:cdn.evil.example").await;
    assert_eq!(alert["level"], "high");
    let indicator = &alert["intel"][0]["indicators"][0];
    assert_eq!((&indicator["value"], &indicator["score"]), (&json!("evil.example"), &json!(90.0)), "{alert}");
    assert_eq!(indicator["tags"], json!(["c2"]));
    // The Sigma rule's alert on the same event carries what intel says of it.
    let body =
        get_json(&client, &format!("{base}/api/alerts?rule_id=0b6a7c1e-8f1d-4d8e-9a55-2f1f0c8d9e01"), &token).await;
    let sigma = &body["items"][0];
    assert_eq!(sigma["intel"][0]["field"], "QueryName", "{body}");
    assert_eq!(sigma["intel"][0]["value"], "cdn.evil.example");
    assert_eq!(sigma["intel"][0]["indicators"][0]["sources"], json!(["api"]));

    let (status, _) = post("/api/intel/indicators/revoke", json!({"type": "domain", "value": "evil.example"})).await;
    assert_eq!(status, 200);
    let found = lookup("evil.example").await;
    assert_eq!(found["matches"][0]["indicator"]["revoked"], true, "{found}");
    assert_eq!(found["matches"][0]["live"], false);

    let feeds = get_json(&client, &format!("{base}/api/intel/feeds"), &token).await;
    assert_eq!(feeds["indicators"], 2);
    let audit = riposte_store::Store::audit_log(&server.state.store).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    assert!(actions.contains(&"intel.add") && actions.contains(&"intel.revoke"), "{actions:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_indicator_is_looked_for_in_stored_events() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feed.txt"), "# nothing yet\n").unwrap();
    let mut config = loopback_config(dir.path());
    config.intel.files = vec![dir.path().join("feed.txt")];
    let (server, token, base) = start(config, dir.path()).await;
    let client = reqwest::Client::new();
    // An event no indicator names yet: stored (the first batch keeps its raw events).
    let events = [
        json!({"EventID": 22, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-8", "QueryName": "beacon.apt.example", "UtcTime": "2026-11-29 10:00:00.000"}),
        json!({"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-9", "DestinationIp": "45.77.12.9", "UtcTime": "2026-11-29 10:00:01.000"}),
        json!({"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-9", "DestinationIp": "45.77.13.9", "UtcTime": "2026-11-29 10:00:02.000"}),
    ];
    let body = events.iter().map(|event| event.to_string()).collect::<Vec<_>>().join("\n");
    let response = client.post(format!("{base}/api/ingest")).bearer_auth(&token).body(body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    metrics_when(&client, &base, "the event was not stored", |text| {
        text.lines().any(|line| line.starts_with("riposte_batches_total") && !line.ends_with(" 0"))
    })
    .await;
    // Each new indicator is looked for in what was stored: how many it found.
    let add = |indicator: Value| {
        let request = client.post(format!("{base}/api/intel/indicators")).bearer_auth(&token).json(&indicator);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["retro_hunt_detections"].clone() }
    };
    // Then the indicator arrives: the stored event is found.
    assert_eq!(add(json!({"type": "domain", "value": "apt.example", "confidence": 80})).await, 1);
    let body = get_json(&client, &format!("{base}/api/alerts?rule_id=intel:domain:beacon.apt.example"), &token).await;
    let alert = &body["items"][0];
    assert!(alert["rule_title"].as_str().unwrap().starts_with("Retro-hunt: Known domain beacon.apt.example"), "{body}");
    assert_eq!(alert["entities"]["hosts"], json!(["WS-8"]));
    // Adding it again finds nothing new.
    assert_eq!(add(json!({"type": "domain", "value": "apt.example"})).await, 0);
    // A network finds the addresses it holds, and only those.
    assert_eq!(add(json!({"type": "cidr", "value": "45.77.12.0/24", "confidence": 70})).await, 1);
    let body = get_json(&client, &format!("{base}/api/alerts?rule_id=intel:ip:45.77.12.9"), &token).await;
    assert_eq!(body["items"][0]["intel"][0]["indicators"][0]["value"], "45.77.12.0/24", "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_goes_back_only_where_the_message_came_from() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    // A configured mailbox that cannot be reached: touching it fails, visibly.
    config.email.imap = Some(riposte_server::imap::ImapConfig {
        address: "127.0.0.1:1".into(),
        tls: false,
        ca_file: None,
        user: "soc".into(),
        password: "not-used".into(),
        folder: "INBOX".into(),
        quarantine_folder: "Quarantine".into(),
    });
    let (server, token, base) = start(config, dir.path()).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (index, origin) in ["api", "", "imap://127.0.0.1:1/INBOX"].into_iter().enumerate() {
        let raw =
            format!("From: x@paypa1.com\r\nMessage-ID: <held-{index}@paypa1.com>\r\nSubject: held\r\n\r\nVerify\r\n");
        let sha256 = format!("{index:0>64}");
        std::fs::create_dir_all(&server.state.quarantine_dir).unwrap();
        std::fs::write(riposte_server::quarantine::message_path(&server.state.quarantine_dir, &sha256), raw).unwrap();
        let held = riposte_store::NewQuarantined {
            sha256,
            received_ms: 1,
            sender: "x@paypa1.com".into(),
            subject: "held".into(),
            verdict: "phishing".into(),
            score: 6.0,
            findings: json!([]),
            origin: origin.into(),
        };
        let entry = riposte_store::NewAudit {
            actor: "test".into(),
            action: "mail.quarantine".into(),
            target: "message".into(),
            detail: "{}".into(),
        };
        let (held, written) =
            riposte_store::Store::quarantine(&server.state.store, &held, &entry, &server.state.audit.key)
                .await
                .unwrap();
        server.state.audit.keep_head(&written);
        ids.push(held.id);
    }
    let release = |id: i64| client.post(format!("{base}/api/quarantine/{id}/release")).bearer_auth(&token).send();
    // Sent to the API: nothing to move back; released without the mailbox.
    assert_eq!(release(ids[0]).await.unwrap().status(), 200);
    // Held before origins were recorded, and taken from the mailbox: both go
    // back through it, so the unreachable mailbox stops them, still held.
    for id in &ids[1..] {
        let response = release(*id).await.unwrap();
        assert_eq!(response.status(), 502, "{}", response.text().await.unwrap());
    }
    let held = get_json(&client, &format!("{base}/api/quarantine?status=held"), &token).await;
    assert_eq!(held["items"].as_array().unwrap().len(), 2, "{held}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_words_of_judged_mail_weigh_in_serve() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (server, token, base) = start(loopback_config(dir.path()), dir.path()).await;
    // An organisation's verdicts in bulk (as `riposte email learn` gives them):
    // crypto lures judged phishing, its own work mail legitimate.
    let counts = |name: &str, phishing: i64, legitimate: i64| riposte_store::VerdictCounts {
        name: name.to_owned(),
        phishing,
        legitimate,
    };
    let mut words = vec![counts("*", 60, 60)];
    for lure in ["wallet", "airdrop", "claim", "reward", "bonus", "connect"] {
        words.push(counts(lure, 55, 0));
    }
    for work in ["roadmap", "budget", "agenda", "minutes", "draft", "team"] {
        words.push(counts(work, 0, 55));
    }
    let entry = riposte_store::NewAudit {
        actor: "test".into(),
        action: "mail.learn".into(),
        target: "verdicts".into(),
        detail: "{}".into(),
    };
    let written = riposte_store::Store::learn_verdicts(
        &server.state.store,
        &[counts("*", 60, 60)],
        &words,
        &entry,
        &server.state.audit.key,
    )
    .await
    .unwrap();
    server.state.audit.keep_head(&written);
    let client = reqwest::Client::new();
    let analyze = |subject: &str, text: &str| {
        let raw =
            format!("From: someone@else.example\r\nTo: ann@riposte-corp.com\r\nSubject: {subject}\r\n\r\n{text}\r\n");
        let request = client.post(format!("{base}/api/email/analyze?quarantine=false")).bearer_auth(&token).body(raw);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let finding = |body: &Value, check: &str| {
        body["findings"].as_array().unwrap().iter().find(|finding| finding["check"] == check).cloned()
    };
    let lure = analyze("Claim your reward", "Connect your wallet for the airdrop bonus").await;
    let phishing = finding(&lure, "learned.resembles_phishing").expect("the words of judged phishing");
    assert_eq!(lure["verdict"], "phishing", "{lure}");
    assert!(phishing["evidence"].as_str().unwrap().contains("wallet"), "{phishing}");
    let work = analyze("Budget", "The draft agenda and minutes for the team roadmap").await;
    assert!(finding(&work, "learned.resembles_legitimate").is_some(), "{work}");
    assert_eq!(work["verdict"], "clean", "{work}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_verdicts_reweigh_checks_for_the_organisation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (server, token, base) = start(loopback_config(dir.path()), dir.path()).await;
    let client = reqwest::Client::new();
    let analyze = |sender: String, subject: &str| {
        let raw = format!(
            "From: \"PayPal\" <{sender}>\r\nTo: bob@riposte-corp.com\r\nSubject: {subject}\r\n\
MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Verify your account: <a href=\"http://203.0.113.9/x\">https://www.paypal.com</a></p>\r\n"
        );
        let request = client.post(format!("{base}/api/email/analyze")).bearer_auth(&token).body(raw);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let weight_of = |body: &Value, check: &str| {
        body["findings"].as_array().unwrap().iter().find(|finding| finding["check"] == check).cloned()
    };
    let before = analyze("service@paypa1.com".into(), "Account notice").await;
    let base_weight =
        weight_of(&before, "links.ip_address").expect("an address for a link")["weight"].as_f64().unwrap();
    // Analysts judge six held messages: five phishing, one legitimate.
    for index in 0..6 {
        let held = analyze(format!("notice{index}@paypa1-{index}.com"), &format!("Notice {index}")).await;
        let id = held["quarantine_id"].as_i64().expect("held");
        let verdict = if index == 5 { "legitimate" } else { "phishing" };
        let response = client
            .post(format!("{base}/api/quarantine/{id}/verdict"))
            .bearer_auth(&token)
            .json(&json!({"verdict": verdict}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // The next message's checks are weighed with what they said, and say so.
    let after = analyze("billing@paypa1-new.com".into(), "Final notice").await;
    let learned = weight_of(&after, "links.ip_address").unwrap();
    assert!(learned["weight"].as_f64().unwrap() > base_weight, "{after}");
    assert!(
        learned["evidence"]
            .as_str()
            .unwrap()
            .contains("learned from analysts' verdicts: on 5 of 5 messages judged phishing, 1 of 1"),
        "{learned}"
    );
    // What was taught, for a person: the checks' factors, and the words
    // of the judged messages (read from their kept bytes), too few yet for
    // the classifier to speak.
    let taught = get_json(&client, &format!("{base}/api/email/learned"), &token).await;
    assert_eq!((taught["phishing"].as_u64(), taught["legitimate"].as_u64()), (Some(5), Some(1)), "{taught}");
    let ip = taught["checks"].as_array().unwrap().iter().find(|check| check["check"] == "links.ip_address").unwrap();
    assert!(ip["factor"].as_f64().unwrap() > 1.0, "{ip}");
    let words = &taught["words"];
    assert_eq!((words["phishing"].as_u64(), words["legitimate"].as_u64()), (Some(5), Some(1)), "{taught}");
    assert!(words["tokens"].as_u64().unwrap() > 10 && words["speaks"] == false, "{taught}");
    // The six messages share their words: none leans either way.
    assert_eq!(words["phishing_tokens"], json!([]), "{taught}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_analysis_verifies_spf_and_dmarc_from_recorded_records() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.zone");
    std::fs::write(
        &records,
        "example.com. IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n_dmarc.example.com. IN TXT \"v=DMARC1; p=reject\"\n",
    )
    .unwrap();
    let mut config = loopback_config(dir.path());
    config.email.dns_records = vec![records];
    let (server, token, base) = start(config, dir.path()).await;
    let client = reqwest::Client::new();
    let message = "From: Alice <alice@example.com>\r\nTo: bob@riposte-corp.com\r\nSubject: invoice\r\n\r\nSee you.\r\n";
    let analyze = |query: &str| {
        let request =
            client.post(format!("{base}/api/email/analyze?quarantine=false{query}")).bearer_auth(&token).body(message);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let checks = |body: &Value| -> Vec<String> {
        body["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| finding["check"].as_str().unwrap().to_owned())
            .collect()
    };
    // From inside the published network: SPF passes, aligned, so DMARC does.
    let inside = analyze("&client_ip=192.0.2.7&helo=mx.example.com&mail_from=alice@example.com").await;
    assert_eq!(inside["authentication"]["spf"], "pass", "{inside}");
    assert_eq!(inside["authentication"]["dmarc"], "pass", "{inside}");
    assert!(!checks(&inside).iter().any(|check| check.starts_with("auth.")), "{inside}");
    // From elsewhere, unsigned: both fail, each a finding.
    let outside = analyze("&client_ip=198.51.100.9&helo=mx.evil.example&mail_from=alice@example.com").await;
    assert_eq!(outside["authentication"]["spf"], "fail", "{outside}");
    assert_eq!(outside["authentication"]["dmarc"], "fail", "{outside}");
    let found = checks(&outside);
    assert!(found.contains(&"auth.spf_fail".to_owned()) && found.contains(&"auth.dmarc_fail".to_owned()), "{found:?}");
    // Without the envelope only DKIM is verified (the message is unsigned).
    let unsigned = analyze("").await;
    assert_eq!(unsigned["authentication"]["dkim"], json!([]), "{unsigned}");
    assert_eq!(unsigned["authentication"]["spf"], Value::Null, "{unsigned}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phishing_is_held_back_and_an_analyst_releases_or_deletes_it() {
    use sha2::Digest as _;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (server, token, base) = start(loopback_config(dir.path()), dir.path()).await;
    let client = reqwest::Client::new();
    let phish = |subject: &str| {
        format!(
            "From: \"PayPal\" <service@paypa1.com>\r\nTo: bob@riposte-corp.com\r\nSubject: {subject}\r\n\
MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Verify your account: <a href=\"http://203.0.113.9/x\">https://www.paypal.com</a></p>\r\n"
        )
    };
    let analyze = |raw: String, query: &str| {
        let request = client.post(format!("{base}/api/email/analyze{query}")).bearer_auth(&token).body(raw);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let first = phish("Your account has been suspended");
    let (status, body) = analyze(first.clone(), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "phishing", "{body}");
    assert!(body["findings"].as_array().unwrap().iter().any(|finding| finding["check"] == "lookalike.sender_domain"));
    let first_id = body["quarantine_id"].as_i64().expect("held");
    let (_, second) = analyze(phish("Second notice"), "").await;
    let second_id = second["quarantine_id"].as_i64().unwrap();
    // Judged only, not held, when asked so; a clean message is never held.
    let (_, only) = analyze(phish("Third"), "?quarantine=false").await;
    assert_eq!(only["quarantine_id"], Value::Null);
    let (_, clean) =
        analyze("From: Alice <alice@example.org>\r\nSubject: Lunch?\r\n\r\nThursday?\r\n".into(), "").await;
    assert_eq!((clean["verdict"].as_str(), &clean["quarantine_id"]), (Some("clean"), &Value::Null));
    let (status, _) = analyze("no header at all".into(), "").await;
    assert_eq!(status, 400);

    let get = |path: String| client.get(format!("{base}{path}")).bearer_auth(&token).send();
    let held: Value = get("/api/quarantine?status=held".into()).await.unwrap().json().await.unwrap();
    assert_eq!(held["items"].as_array().unwrap().len(), 2, "{held}");
    assert_eq!(held["items"][1]["sender"], "service@paypa1.com");
    assert_eq!(held["items"][1]["origin"], "api");
    // The original bytes, intact, under their recorded hash.
    let bytes = get(format!("/api/quarantine/{first_id}/message")).await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), first.as_bytes());
    assert_eq!(held["items"][1]["sha256"], hex::encode(sha2::Sha256::digest(first.as_bytes())));
    // An alert for each held message.
    let alerts: Value = get("/api/alerts?rule_id=mail:phishing".into()).await.unwrap().json().await.unwrap();
    assert_eq!(alerts["items"].as_array().unwrap().len(), 2, "{alerts}");
    assert!(alerts["items"][0]["rule_title"].as_str().unwrap().contains("lookalike.sender_domain"), "{alerts}");

    // The sender was new the first time, known the second.
    let has = |body: &Value, check: &str| {
        body["findings"].as_array().unwrap().iter().any(|finding| finding["check"] == check)
    };
    assert!(has(&body, "history.new_sender_domain") && !has(&body, "history.first_time_sender"), "{body}");
    assert!(!has(&second, "history.new_sender_domain") && !has(&second, "history.first_time_sender"), "{second}");
    // Another address of the same domain: a new sender, not a new domain.
    let (_, other) =
        analyze(phish("Fifth").replace("service@paypa1.com", "billing@mail.paypa1.com"), "?quarantine=false").await;
    assert!(has(&other, "history.first_time_sender") && !has(&other, "history.new_sender_domain"), "{other}");
    // An analyst says the sender is legitimate: its next message is judged with that, within bounds.
    let judged: Value = client
        .post(format!("{base}/api/quarantine/{first_id}/verdict"))
        .bearer_auth(&token)
        .json(&json!({"verdict": "legitimate"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(judged["sender"]["legitimate"], 1, "{judged}");
    let (_, later) = analyze(phish("Fourth"), "?quarantine=false").await;
    let trust = later["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["check"] == "history.judged_legitimate")
        .cloned();
    assert_eq!(trust.map(|finding| finding["weight"].clone()), Some(json!(-1.0)), "{later}");
    assert!(later["score"].as_f64().unwrap() < second["score"].as_f64().unwrap());

    let post = |path: String| client.post(format!("{base}{path}")).bearer_auth(&token).send();
    let released: Value = post(format!("/api/quarantine/{first_id}/release")).await.unwrap().json().await.unwrap();
    assert_eq!(released["status"], "released");
    let again = post(format!("/api/quarantine/{first_id}/release")).await.unwrap();
    assert_eq!(again.status().as_u16(), 409, "only a held message changes");
    // One taken from a mailbox no longer configured cannot be put back there: refused, still held.
    let (from_mailbox, written) = riposte_store::Store::quarantine(
        &server.state.store,
        &riposte_store::NewQuarantined {
            sha256: "cd".repeat(32),
            received_ms: 1,
            sender: "x@paypa1.com".into(),
            subject: "From a mailbox".into(),
            verdict: "phishing".into(),
            score: 6.0,
            findings: json!([]),
            origin: "imap://mail.gone.example:993/INBOX".into(),
        },
        &riposte_store::NewAudit {
            actor: "test".into(),
            action: "mail.quarantine".into(),
            target: "message".into(),
            detail: "{}".into(),
        },
        &server.state.audit.key,
    )
    .await
    .unwrap();
    server.state.audit.keep_head(&written);
    let refused = post(format!("/api/quarantine/{}/release", from_mailbox.id)).await.unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "mailbox_not_configured", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("imap://mail.gone.example:993/INBOX"), "{refused}");
    let deleted: Value = post(format!("/api/quarantine/{second_id}/delete")).await.unwrap().json().await.unwrap();
    assert_eq!(deleted["status"], "deleted");
    let gone = get(format!("/api/quarantine/{second_id}/message")).await.unwrap();
    assert_eq!(gone.status().as_u16(), 410);
    let sha = deleted["sha256"].as_str().unwrap();
    assert!(!dir.path().join("data/quarantine").join(format!("{sha}.eml")).exists(), "its bytes are gone");
    let audit = riposte_store::Store::audit_log(&server.state.store).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    for action in ["mail.quarantine", "mail.verdict", "mail.release", "mail.delete"] {
        assert!(actions.contains(&action), "{action} not audited: {actions:?}");
    }
    server.shutdown().await;
}
