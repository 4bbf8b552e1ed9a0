//! Every REST connector against a real HTTP server on loopback (wiremock),
//! and nftables inside a network namespace the test makes.

use std::collections::BTreeMap;
use std::time::Duration;

use riposte_connectors::{ConnectorConfig, Connectors};
use riposte_playbook::{ActError, Call};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, body_string_contains, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn connectors(yaml: &str) -> Connectors {
    let configs: BTreeMap<String, ConnectorConfig> = serde_saphyr::from_str(yaml).expect("the configuration reads");
    Connectors::new(&configs, None).expect("the connectors build")
}

fn call(action: &str, inputs: Value) -> Call {
    Call {
        run_id: "run-7".into(),
        playbook: "pb".into(),
        path: "step".into(),
        action: action.into(),
        inputs,
        idempotency_key: "run-7/step".into(),
        changes: true,
        approved_by: None,
    }
}

async fn act(connectors: &Connectors, action: &str, inputs: Value) -> Result<Value, ActError> {
    connectors.act(&call(action, inputs)).await
}

#[tokio::test]
async fn http_get_and_request_with_an_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/ip"))
        .and(query_param("q", "45.77.12.9"))
        .and(header("x-api-key", "k3y"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"score": 90})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/block"))
        .and(header("idempotency-key", "run-7/step"))
        .and(body_json(json!({"ip": "45.77.12.9"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 5})))
        .expect(1)
        .mount(&server)
        .await;
    let connectors = connectors(&format!(
        "api: {{type: http, url: '{}/v1', allow_private: true, auth: {{kind: api_key, key: k3y}}}}",
        server.uri()
    ));
    let found = act(&connectors, "api.get", json!({"path": "ip", "query": {"q": "45.77.12.9"}})).await.unwrap();
    assert_eq!(found, json!({"score": 90}));
    let made =
        act(&connectors, "api.request", json!({"method": "post", "path": "/block", "json": {"ip": "45.77.12.9"}}))
            .await
            .unwrap();
    assert_eq!(made, json!({"id": 5}));
    let error = act(&connectors, "api.get", json!({"path": "http://elsewhere.example/"})).await.unwrap_err();
    assert!(!error.retryable);
}

#[tokio::test]
async fn failures_say_whether_another_attempt_may_help() {
    let server = MockServer::start().await;
    Mock::given(path("/busy"))
        .respond_with(ResponseTemplate::new(503).set_body_string("try later"))
        .mount(&server)
        .await;
    Mock::given(path("/gone")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    Mock::given(path("/garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy</html>"))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let connectors =
        connectors(&format!("api: {{type: http, url: '{}', allow_private: true, timeout: 1s}}", server.uri()));
    let get = |path: &str| act(&connectors, "api.get", json!({ "path": path }));
    let busy = get("busy").await.unwrap_err();
    assert!(busy.retryable && busy.message == "api: HTTP 503: try later", "{busy:?}");
    let gone = get("gone").await.unwrap_err();
    assert!(!gone.retryable && gone.message == "api: HTTP 404", "{gone:?}");
    let garbage = get("garbage").await.unwrap_err();
    assert!(garbage.retryable && garbage.message.starts_with("api: the answer is not JSON"), "{garbage:?}");
    let slow = get("slow").await.unwrap_err();
    assert!(slow.retryable && slow.message == "api: no answer in 1 s", "{slow:?}");
}

#[tokio::test]
async fn internal_addresses_are_refused_unless_allowed() {
    let server = MockServer::start().await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let connectors = connectors(&format!("api: {{type: http, url: '{}'}}", server.uri()));
    let error = act(&connectors, "api.get", json!({"path": "x"})).await.unwrap_err();
    assert!(!error.retryable);
    assert!(error.message.contains("127.0.0.1 is an internal address"), "{}", error.message);
}

#[tokio::test]
async fn oauth2_client_credentials_are_fetched_once_and_reused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=riposte"))
        .and(body_string_contains("client_secret=s%26cret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "tok-1", "expires_in": 3600})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/devices"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(2)
        .mount(&server)
        .await;
    let uri = server.uri();
    let connectors = connectors(&format!(
        "api: {{type: http, url: '{uri}/api', allow_private: true, auth: {{kind: oauth2, token_url: '{uri}/token', \
         client_id: riposte, client_secret: 's&cret'}}}}"
    ));
    for _ in 0..2 {
        act(&connectors, "api.get", json!({"path": "devices"})).await.unwrap();
    }
}

#[tokio::test]
async fn webhooks_are_signed_with_hmac() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header_exists("x-riposte-signature"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let connectors = connectors(&format!(
        "hook: {{type: webhook, url: '{}/hook', allow_private: true, auth: {{kind: hmac, secret: shh}}}}",
        server.uri()
    ));
    assert_eq!(act(&connectors, "hook.send", json!({"payload": {"a": 1}})).await.unwrap(), json!({"status": 204}));
    let received: Vec<Request> = server.received_requests().await.unwrap();
    let request = &received[0];
    let timestamp: u64 = request.headers["x-riposte-timestamp"].to_str().unwrap().parse().unwrap();
    let expected = riposte_connectors::rest::sign(&"shh".to_owned().into(), timestamp, &request.body);
    assert_eq!(request.headers["x-riposte-signature"].to_str().unwrap(), format!("sha256={expected}"));
    assert_eq!(serde_json::from_slice::<Value>(&request.body).unwrap(), json!({"a": 1}));
}

#[tokio::test]
async fn chat_messages_and_the_webhook_url_kept_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T0/B0/secret-part"))
        .and(body_json(json!({"text": "blocked 45.77.12.9", "channel": "#soc"})))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/teams"))
        .and(body_json(json!({"text": "blocked 45.77.12.9"})))
        .respond_with(ResponseTemplate::new(200).set_body_string("1"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/hooks/refused"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_team"))
        .mount(&server)
        .await;
    let uri = server.uri();
    let connectors = connectors(&format!(
        "slack: {{type: slack, url: '{uri}/services/T0/B0/secret-part', allow_private: true}}\n\
         teams: {{type: teams, url: '{uri}/teams', allow_private: true}}\n\
         mattermost: {{type: mattermost, url: '{uri}/hooks/refused', allow_private: true}}"
    ));
    let message = json!({"text": "blocked 45.77.12.9", "channel": "#soc"});
    assert_eq!(act(&connectors, "slack.post_message", message.clone()).await.unwrap(), json!({"posted": true}));
    act(&connectors, "teams.post_message", message.clone()).await.unwrap();
    let refused = act(&connectors, "mattermost.post_message", message).await.unwrap_err();
    assert_eq!(refused.message, "mattermost: HTTP 404 no_team");
    assert!(!refused.message.contains("hooks"));
}

#[tokio::test]
async fn edr_isolation_by_profile() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/machines/dev%201/isolate"))
        .and(body_json(json!({"Comment": "ransomware", "IsolationType": "Full"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "act-1", "status": "Pending"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/devices/entities/devices-actions/v2"))
        .and(query_param("action_name", "lift_containment"))
        .and(body_json(json!({"ids": ["abc123"]})))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"resources": [{"id": "abc123"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let uri = server.uri();
    let connectors = connectors(&format!(
        "defender: {{type: edr, profile: defender, api: {{url: '{uri}', allow_private: true, auth: {{kind: bearer, token: t}}}}}}\n\
         falcon: {{type: edr, profile: crowdstrike, api: {{url: '{uri}', allow_private: true}}}}"
    ));
    let isolated =
        act(&connectors, "defender.isolate", json!({"host": "dev 1", "comment": "ransomware"})).await.unwrap();
    assert_eq!(isolated["answer"]["status"], "Pending");
    act(&connectors, "falcon.release", json!({"host": "abc123"})).await.unwrap();
    assert!(connectors.catalog().get("falcon.isolate").unwrap().inverse.as_deref() == Some("falcon.release"));
}

#[tokio::test]
async fn jira_issues_are_created_once_moved_and_read() {
    let server = MockServer::start().await;
    // No issue carries the step's label yet, then one does.
    Mock::given(method("GET"))
        .and(path("/rest/api/2/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"issues": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"issues": [{"key": "SOC-12"}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .and(header("authorization", "Basic Ym90OnB3"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "10001", "key": "SOC-12"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/issue/SOC-12/transitions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"transitions": [
            {"id": "21", "name": "Start", "to": {"name": "In Progress"}},
            {"id": "31", "name": "Resolve", "to": {"name": "Done"}},
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue/SOC-12/transitions"))
        .and(body_json(json!({"transition": {"id": "31"}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/issue/SOC-12"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}}})),
        )
        .mount(&server)
        .await;
    let connectors = connectors(&format!(
        "jira: {{type: jira, project: SOC, api: {{url: '{}', allow_private: true, auth: {{kind: basic, user: bot, password: pw}}}}}}",
        server.uri()
    ));
    let issue = json!({"summary": "Brute force from 45.77.12.9"});
    assert_eq!(act(&connectors, "jira.create_issue", issue.clone()).await.unwrap()["key"], "SOC-12");
    // The same step again (a resumed run): found by its label, not created twice.
    let again = act(&connectors, "jira.create_issue", issue).await.unwrap();
    assert_eq!(again, json!({"key": "SOC-12", "created": false}));
    let created: Vec<Request> = server.received_requests().await.unwrap();
    let body: Value = created.iter().find(|request| request.method.as_str() == "POST").unwrap().body_json().unwrap();
    assert_eq!(body["fields"]["project"]["key"], "SOC");
    assert!(body["fields"]["labels"][0].as_str().unwrap().starts_with("riposte-"));
    assert_eq!(
        act(&connectors, "jira.transition", json!({"issue": "SOC-12", "to": "done"})).await.unwrap(),
        json!({"to": "Done"})
    );
    let refused = act(&connectors, "jira.transition", json!({"issue": "SOC-12", "to": "Reopened"})).await.unwrap_err();
    assert_eq!(refused.message, "jira: the issue cannot move to Reopened (it can: Start, Resolve)");
    let status = act(&connectors, "jira.issue_status", json!({"issue": "SOC-12"})).await.unwrap();
    assert_eq!(status, json!({"status": "Done", "category": "done"}));
}

#[tokio::test]
async fn thehive_alerts_cases_and_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/alert"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"_id": "~41"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/alert"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"type": "CreateError", "message": "Alert already exists"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"_id": "~41"}])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/case"))
        .and(header("authorization", "Bearer hive-key"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"_id": "~7", "number": 3})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/case/~7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Resolved", "stage": "Closed"})))
        .mount(&server)
        .await;
    let connectors = connectors(&format!(
        "hive: {{type: thehive, url: '{}', allow_private: true, auth: {{kind: bearer, token: hive-key}}}}",
        server.uri()
    ));
    let alert = json!({"title": "Phishing reported", "severity": 3});
    assert_eq!(
        act(&connectors, "hive.create_alert", alert.clone()).await.unwrap(),
        json!({"id": "~41", "created": true})
    );
    assert_eq!(act(&connectors, "hive.create_alert", alert).await.unwrap(), json!({"id": "~41", "created": false}));
    let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!((sent["severity"].as_u64(), sent["source"].as_str()), (Some(3), Some("riposte")));
    let case = act(&connectors, "hive.create_case", json!({"title": "Account takeover"})).await.unwrap();
    assert_eq!(case, json!({"id": "~7", "number": 3}));
    let status = act(&connectors, "hive.case_status", json!({"id": "~7"})).await.unwrap();
    assert_eq!(status["status"], "Resolved");
}

/// A network namespace of the test's own, removed when dropped.
struct Netns(String);

impl Netns {
    fn create() -> Result<Netns, String> {
        let name = format!("riposte-test-{}", std::process::id());
        let made =
            std::process::Command::new("ip").args(["netns", "add", &name]).output().map_err(|e| e.to_string())?;
        if !made.status.success() {
            return Err(String::from_utf8_lossy(&made.stderr).trim().to_owned());
        }
        Ok(Netns(name))
    }

    fn nft(&self, args: &[&str]) -> String {
        let output =
            std::process::Command::new("ip").args(["netns", "exec", &self.0, "nft"]).args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[tokio::test]
async fn nftables_blocks_and_unblocks_inside_a_network_namespace() {
    if std::process::Command::new("nft").arg("--version").output().is_err() {
        eprintln!("SKIPPED: nft is not installed (.ci/run installs nftables)");
        return;
    }
    let netns = match Netns::create() {
        Ok(netns) => netns,
        Err(reason) => {
            eprintln!("SKIPPED: cannot create a network namespace here: {reason}");
            return;
        }
    };
    let connectors = connectors(&format!("firewall: {{type: nftables, netns: {}}}", netns.0));
    let blocked =
        act(&connectors, "firewall.block_ip", json!({"address": "45.77.12.9", "timeout": "1h"})).await.unwrap();
    assert_eq!(blocked, json!({"address": "45.77.12.9", "timeout_s": 3600}));
    act(&connectors, "firewall.block_ip", json!({"address": "2001:db8::7"})).await.unwrap();
    // Twice is the same as once: no duplicate rule.
    act(&connectors, "firewall.block_ip", json!({"address": "45.77.12.9", "timeout": "1h"})).await.unwrap();
    let ruleset = netns.nft(&["list", "table", "inet", "riposte"]);
    assert_eq!(ruleset.matches("ip saddr @blocked4 drop").count(), 2, "{ruleset}");
    assert!(ruleset.contains("45.77.12.9 timeout 1h"), "{ruleset}");
    let listed = act(&connectors, "firewall.list_blocked", json!({})).await.unwrap();
    let addresses: Vec<&str> =
        listed["addresses"].as_array().unwrap().iter().map(|entry| entry["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, ["45.77.12.9", "2001:db8::7"]);
    let removed = act(&connectors, "firewall.unblock_ip", json!({"address": "45.77.12.9"})).await.unwrap();
    assert_eq!(removed["removed"], true);
    let again = act(&connectors, "firewall.unblock_ip", json!({"address": "45.77.12.9"})).await.unwrap();
    assert_eq!(again["removed"], false);
    let refused =
        act(&connectors, "firewall.block_ip", json!({"address": "1.2.3.4; flush ruleset"})).await.unwrap_err();
    assert!(!refused.retryable);
    assert!(netns.nft(&["list", "set", "inet", "riposte", "blocked6"]).contains("2001:db8::7"));
}

#[tokio::test]
async fn accounts_are_disabled_and_enabled_by_profile() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/v1.0/users/mallory%40corp.example"))
        .and(body_json(json!({"accountEnabled": false})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/users/00u1/lifecycle/unsuspend"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let uri = server.uri();
    let connectors = connectors(&format!(
        "entra: {{type: identity, profile: entra, api: {{url: '{uri}', allow_private: true}}}}\n\
         okta: {{type: identity, profile: okta, api: {{url: '{uri}', allow_private: true}}}}"
    ));
    let disabled = act(&connectors, "entra.disable_account", json!({"user": "mallory@corp.example"})).await.unwrap();
    assert_eq!(disabled, json!({"user": "mallory@corp.example", "answer": null}));
    act(&connectors, "okta.enable_account", json!({"user": "00u1"})).await.unwrap();
    let spec = connectors.catalog().get("okta.disable_account").unwrap();
    assert_eq!(spec.inverse.as_deref(), Some("okta.enable_account"));
    let Err(unknown) = Connectors::new(
        &serde_saphyr::from_str(&format!("x: {{type: identity, profile: ldap, api: {{url: '{uri}'}}}}")).unwrap(),
        None,
    ) else {
        panic!("an unknown profile is refused")
    };
    assert_eq!(unknown, "connector x: profile ldap is not entra, okta or custom");
}

/// A minimal SMTP server on loopback that keeps what it is given.
async fn smtp_sink() -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (reader, mut writer) = socket.into_split();
        let mut lines = BufReader::new(reader).lines();
        let mut said = Vec::new();
        writer.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            said.push(line.clone());
            let reply: &[u8] = if in_data {
                if line != "." {
                    continue;
                }
                in_data = false;
                b"250 2.0.0 queued as 42\r\n"
            } else {
                match line.get(..4).unwrap_or_default().to_ascii_uppercase().as_str() {
                    "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        writer.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    }
                    _ => b"250 ok\r\n",
                }
            };
            writer.write_all(reply).await.unwrap();
        }
        said
    });
    (port, handle)
}

#[tokio::test]
async fn email_is_sent_over_smtp() {
    let (port, sink) = smtp_sink().await;
    let connectors = connectors(&format!(
        "email: {{type: smtp, host: 127.0.0.1, port: {port}, tls: none, allow_private: true, from: 'Riposte <soc@corp.example>'}}"
    ));
    let sent = act(
        &connectors,
        "email.send",
        json!({"to": ["it@corp.example"], "cc": "lead@corp.example", "subject": "Host WS7 isolated", "body": "By run 7."}),
    )
    .await
    .unwrap();
    assert_eq!(sent["to"], json!(["it@corp.example"]));
    assert!(sent["reply"].as_str().unwrap().contains("queued as 42"), "{sent}");
    let said = sink.await.unwrap();
    assert!(said.iter().any(|line| line == "MAIL FROM:<soc@corp.example>"), "{said:?}");
    assert!(said.iter().any(|line| line == "RCPT TO:<lead@corp.example>"), "{said:?}");
    assert!(said.iter().any(|line| line == "Subject: Host WS7 isolated"), "{said:?}");
    assert!(said.iter().any(|line| line == "By run 7."), "{said:?}");

    // The policy on internal addresses holds for mail too.
    let refused =
        connectors_refusing().act(&call("email.send", json!({"to": "a@b.example", "subject": "s", "body": "b"}))).await;
    assert!(refused.unwrap_err().message.contains("is an internal address"));
}

fn connectors_refusing() -> Connectors {
    connectors("email: {type: smtp, host: 127.0.0.1, port: 2525, tls: none, from: soc@corp.example}")
}

#[tokio::test]
async fn a_rest_firewall_blocks_and_unblocks_by_profile() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/firewall/alias_util/add/riposte_blocked"))
        .and(header("authorization", "Basic a2V5OnNlY3JldA=="))
        .and(body_json(json!({"address": "45.77.12.9"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "done"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/firewall/alias_util/delete/riposte_blocked"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "done"})))
        .expect(1)
        .mount(&server)
        .await;
    let connectors = connectors(&format!(
        "edge: {{type: rest_firewall, profile: opnsense, api: {{url: '{}', allow_private: true, \
         auth: {{kind: basic, user: key, password: secret}}}}}}",
        server.uri()
    ));
    let blocked = act(&connectors, "edge.block_ip", json!({"address": "45.77.12.9"})).await.unwrap();
    assert_eq!(blocked["answer"]["status"], "done");
    act(&connectors, "edge.unblock_ip", json!({"address": "45.77.12.9"})).await.unwrap();
    let refused = act(&connectors, "edge.block_ip", json!({"address": "45.77.12.9/../x"})).await.unwrap_err();
    assert!(!refused.retryable);
    assert_eq!(connectors.catalog().get("edge.block_ip").unwrap().inverse.as_deref(), Some("edge.unblock_ip"));
}

#[test]
fn tickets_say_how_they_are_followed_until_they_close() {
    let specs = riposte_connectors::specs("thehive", "hive");
    let case = specs.iter().find(|spec| spec.name == "hive.create_case").unwrap();
    let follow = case.follow.as_ref().unwrap();
    assert_eq!((follow.status_action.as_str(), follow.input.as_str()), ("hive.case_status", "id"));
    assert!(follow.closed(&json!({"status": "TruePositive", "stage": "Closed"})));
    assert!(follow.closed(&json!({"status": "Resolved"})));
    assert!(!follow.closed(&json!({"status": "InProgress", "stage": "InProgress"})));
    let jira = riposte_connectors::specs("jira", "tickets");
    let issue = jira.iter().find(|spec| spec.name == "tickets.create_issue").unwrap().follow.as_ref().unwrap();
    assert!(issue.closed(&json!({"status": "Done", "category": "done"})));
    assert!(!issue.closed(&json!({"status": "In Progress", "category": "indeterminate"})));
    assert!(jira.iter().filter(|spec| spec.name != "tickets.create_issue").all(|spec| spec.follow.is_none()));
}
