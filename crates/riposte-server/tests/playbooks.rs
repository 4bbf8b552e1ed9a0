//! The playbook runner on a real store (SQLite) with connectors against
//! real HTTP servers on loopback: restarts, approvals and their timeouts,
//! blast-radius limits, undo after a TTL, the kill switch, webhooks.

use std::sync::Arc;
use std::time::Duration;

use riposte_server::auth::AuditFiles;
use riposte_server::playbooks::{PlaybookConfig, Runner};
use riposte_store::{AlertFilter, AnyStore, RunStatus, SqliteStore, Store};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: AnyStore,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let store = AnyStore::Sqlite(SqliteStore::open(&root.join("riposte.db")).await.unwrap());
    std::fs::create_dir_all(root.join("playbooks")).unwrap();
    Setup { _dir: dir, root, store }
}

impl Setup {
    fn playbook(&self, name: &str, text: &str) {
        std::fs::write(self.root.join("playbooks").join(name), text).unwrap();
    }

    /// A runner as `serve` makes one (a "process"): dropping it is a restart.
    fn runner(&self, config: &str) -> Arc<Runner> {
        let mut config: PlaybookConfig = serde_saphyr::from_str(config).unwrap();
        config.dirs = vec![self.root.join("playbooks")];
        // The same process name across "restarts", as serve keeps it in its data directory.
        config.worker.get_or_insert_with(|| "this-host".to_owned());
        config.ready = false;
        let audit = Arc::new(AuditFiles::open(&self.root).unwrap());
        let (runner, errors, _) =
            Runner::new(&config, self.store.clone(), audit, Arc::new(Mutex::new(())), Vec::new(), None).unwrap();
        assert!(errors.is_empty(), "{errors:#?}");
        Arc::new(runner)
    }
}

/// Takes due runs up and waits for them.
async fn tick(runner: &Arc<Runner>) {
    for handle in runner.tick().await.unwrap() {
        handle.await.unwrap();
    }
}

async fn start(runner: &Runner, playbook: &str) -> String {
    runner
        .start(playbook, json!({"kind": "manual", "by": "ann"}), Map::new(), Some("ann"), None)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn status(store: &AnyStore, run: &str) -> (RunStatus, Value) {
    let run = store.run(run).await.unwrap().unwrap();
    (run.status, run.outcome)
}

fn connector(kind: &str, server: &MockServer) -> String {
    format!("connectors: {{api: {{type: {kind}, url: '{}', allow_private: true}}}}", server.uri())
}

#[tokio::test]
async fn a_restart_mid_run_resumes_without_repeating_an_action() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/first"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    // The second call hangs the first time: the process dies meanwhile.
    Mock::given(method("POST"))
        .and(path("/second"))
        .and(header("idempotency-key", "RUN/second"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": 2})))
        .expect(0)
        .mount(&server)
        .await;
    setup.playbook(
        "contain.yml",
        "id: contain\nautonomy: auto\ntriggers: [{manual: {}}]\nsteps:\n\
         - {id: first, action: api.request, with: {method: POST, path: /first}}\n\
         - {id: second, action: api.request, with: {method: POST, path: /second}}\n",
    );
    let slow = Mock::given(method("POST"))
        .and(path("/second"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount_as_scoped(&server)
        .await;
    let config = format!("{}\n", connector("http", &server));
    let first_process = setup.runner(&config);
    let run = start(&first_process, "contain").await;
    let handles = first_process.tick().await.unwrap();
    // Wait until the second action is in flight, then "kill the process".
    for _ in 0..200 {
        let steps = setup.store.run_steps(&run).await.unwrap();
        if steps.iter().any(|step| step.path == "second" && step.state == "started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for handle in &handles {
        handle.abort();
    }
    drop(first_process);
    drop(slow);
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Running);

    // The key the remote side sees is the same both times.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/first"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/second"))
        .and(header("idempotency-key", format!("{run}/second").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": 2})))
        .expect(1)
        .mount(&server)
        .await;
    let second_process = setup.runner(&config);
    tick(&second_process).await;
    let (state, outcome) = status(&setup.store, &run).await;
    assert_eq!(state, RunStatus::Completed, "{outcome}");
    let second = setup.store.run_steps(&run).await.unwrap().into_iter().find(|step| step.path == "second").unwrap();
    assert_eq!(second.entry["attempts"], 2);
    assert_eq!(second.entry["output"], json!({"ok": 2}));
}

const ISOLATE: &str = "id: isolate\nautonomy: approve\n\
    approval: {approvers: [soc], timeout: 1s, four_eyes: true}\ntriggers: [{manual: {}}]\nsteps:\n\
    - {id: isolate, action: api.isolate, with: {host: ws7}}\n";

fn edr(server: &MockServer) -> String {
    format!(
        "connectors: {{api: {{type: edr, profile: defender, api: {{url: '{}', allow_private: true}}}}}}\n\
         approvers: {{soc: [ann, bob]}}\n",
        server.uri()
    )
}

#[tokio::test]
async fn an_approval_nobody_gives_times_out_to_its_default() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(path("/api/machines/ws7/isolate"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    setup.playbook("isolate.yml", ISOLATE);
    let runner = setup.runner(&edr(&server));
    let run = start(&runner, "isolate").await;
    tick(&runner).await;
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Waiting);
    let approvals = runner.approvals().await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].asked["request"]["inputs"], json!({"host": "ws7"}));

    // A restart changes nothing: the approval is in the store.
    let runner = setup.runner(&edr(&server));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    tick(&runner).await;
    let (state, outcome) = status(&setup.store, &run).await;
    assert_eq!(state, RunStatus::Failed);
    assert_eq!(outcome["error"], "step isolate: not approved: timed out, and the default is to reject");
}

#[tokio::test]
async fn an_approval_is_given_by_an_approver_who_did_not_start_the_run() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/machines/ws7/isolate"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "Pending"})))
        .expect(1)
        .mount(&server)
        .await;
    setup.playbook("isolate.yml", &ISOLATE.replace("timeout: 1s", "timeout: 1h"));
    let runner = setup.runner(&edr(&server));
    let run = start(&runner, "isolate").await;
    tick(&runner).await;
    let path = "isolate#approval";
    let refused = runner.decide(&run, path, true, "mallory", false, None).await.unwrap_err();
    assert_eq!(refused.to_string(), "mallory is not in soc");
    let refused = runner.decide(&run, path, true, "ann", false, None).await.unwrap_err();
    assert_eq!(refused.to_string(), "ann started this run and cannot also approve it (four eyes)");
    runner.decide(&run, path, true, "bob", false, Some("confirmed with the user")).await.unwrap();
    assert!(runner.decide(&run, path, true, "bob", false, None).await.is_err(), "decided once");
    tick(&runner).await;
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Completed);
    let audit = setup.store.audit_log().await.unwrap();
    assert!(audit.iter().any(|entry| entry.action == "run.approve" && entry.actor == "bob"));
}

#[tokio::test]
async fn the_eleventh_isolation_in_an_hour_is_stopped_and_raises_an_alert() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex("^/api/machines/ws[0-9]+/isolate$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .expect(10)
        .mount(&server)
        .await;
    setup.playbook(
        "contain.yml",
        "id: contain\nautonomy: auto\ntriggers: [{manual: {}}]\ninputs: [{name: host}]\nsteps:\n\
         - {id: isolate, action: api.isolate, with: {host: '{{ inputs.host }}'}}\n",
    );
    let runner = setup.runner(&edr(&server));
    let mut runs = Vec::new();
    for n in 0..11 {
        let inputs: Map<String, Value> = [("host".to_owned(), json!(format!("ws{n}")))].into_iter().collect();
        let run = runner.start("contain", json!({"kind": "manual"}), inputs, Some("ann"), None).await.unwrap().unwrap();
        runs.push(run.id);
    }
    tick(&runner).await;
    let mut failed = Vec::new();
    for run in &runs {
        let (state, outcome) = status(&setup.store, run).await;
        if state == RunStatus::Failed {
            failed.push(outcome["error"].as_str().unwrap_or_default().to_owned());
        } else {
            assert_eq!(state, RunStatus::Completed);
        }
    }
    assert_eq!(failed, ["step isolate: at most 10 isolate an hour"]);
    let alerts = setup.store.alerts(&AlertFilter { limit: 10, ..AlertFilter::default() }).await.unwrap().items;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule_id, "riposte:playbook-limit");
    assert!(alerts[0].rule_title.contains("at most 10 isolate an hour"), "{}", alerts[0].rule_title);
    assert_eq!(alerts[0].entities.hosts.len(), 1);
}

#[tokio::test]
async fn an_action_is_undone_after_its_ttl_even_after_a_restart() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(path("/api/machines/ws7/isolate"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/machines/ws7/unisolate"))
        .and(header("idempotency-key", "RUN"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    setup.playbook(
        "contain.yml",
        "id: contain\nautonomy: auto\ntriggers: [{manual: {}}]\nsteps:\n\
         - {id: isolate, action: api.isolate, with: {host: ws7, comment: worm}, undo_after: 1s}\n",
    );
    let runner = setup.runner(&edr(&server));
    let run = start(&runner, "contain").await;
    tick(&runner).await;
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Completed);
    assert_eq!(setup.store.pending_undos(Some(&run), None).await.unwrap().len(), 1);
    drop(runner);

    Mock::given(method("POST"))
        .and(path("/api/machines/ws7/unisolate"))
        .and(header("idempotency-key", format!("{run}/isolate#undo").as_str()))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let runner = setup.runner(&edr(&server));
    tick(&runner).await;
    assert_eq!(setup.store.pending_undos(Some(&run), None).await.unwrap().len(), 1, "not yet due");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    tick(&runner).await;
    assert!(setup.store.pending_undos(Some(&run), None).await.unwrap().is_empty());
    let audit = setup.store.audit_log().await.unwrap();
    assert!(audit.iter().any(|entry| entry.action == "run.undo" && entry.target == format!("run:{run}")));
}

#[tokio::test]
async fn the_kill_switch_and_protected_assets_hold_automatic_actions_for_a_person() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(path("/api/machines/dc01/isolate"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/machines/ws1/isolate"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    setup.playbook(
        "contain.yml",
        "id: contain\nautonomy: auto\ntriggers: [{manual: {}}]\ninputs: [{name: host}]\nsteps:\n\
         - {id: isolate, action: api.isolate, with: {host: '{{ inputs.host }}'}}\n",
    );
    let config = format!("{}protected: {{hosts: [DC01]}}\n", edr(&server));
    let runner = setup.runner(&config);
    let with_host = |host: &str| -> Map<String, Value> { [("host".to_owned(), json!(host))].into_iter().collect() };
    let protected =
        runner.start("contain", json!({"kind": "manual"}), with_host("dc01"), None, None).await.unwrap().unwrap();
    tick(&runner).await;
    assert_eq!(status(&setup.store, &protected.id).await.0, RunStatus::Waiting);
    let asked = &runner.approvals().await.unwrap()[0].asked;
    assert_eq!(asked["request"]["held"], "DC01 is protected");

    runner.set_paused(true, "admin").await.unwrap();
    let paused =
        runner.start("contain", json!({"kind": "manual"}), with_host("ws1"), None, None).await.unwrap().unwrap();
    tick(&runner).await;
    assert_eq!(status(&setup.store, &paused.id).await.0, RunStatus::Waiting);
    runner.set_paused(false, "admin").await.unwrap();
    // A person lets both go.
    for run in [&protected.id, &paused.id] {
        runner.decide(run, "isolate#approval", true, "bob", false, None).await.unwrap();
    }
    tick(&runner).await;
    for run in [&protected.id, &paused.id] {
        assert_eq!(status(&setup.store, run).await.0, RunStatus::Completed);
    }
    // Approved actions count against the limits like any other.
    assert_eq!(setup.store.actions_since("isolate", None, 0).await.unwrap(), 2);
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_runs_nothing() {
    let setup = setup().await;
    setup.playbook(
        "hook.yml",
        "id: hook\ntriggers: [{webhook: ticket}]\nsteps:\n - {id: note, set: {got: '{{ trigger.body.id }}'}}\n",
    );
    let runner = setup.runner("webhooks: {ticket: s3cret}\n");
    let body = br#"{"id": "T-1"}"#;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signature = |secret: &str, at: u64| {
        format!("sha256={}", riposte_connectors::rest::sign(&secret.to_owned().into(), at, body))
    };
    let timestamp = now.to_string();
    for (timestamp, signature) in [
        (Some(timestamp.as_str()), Some(signature("wrong", now))),
        (Some(timestamp.as_str()), None),
        (Some("1000"), Some(signature("s3cret", 1000))),
        (None, Some(signature("s3cret", now))),
    ] {
        assert!(runner.webhook("ticket", body, timestamp, signature.as_deref()).await.is_err());
    }
    assert!(runner.webhook("other", body, Some(&timestamp), Some(&signature("s3cret", now))).await.is_err());
    assert!(setup.store.runs(None, None, 10).await.unwrap().is_empty());

    let started = runner.webhook("ticket", body, Some(&timestamp), Some(&signature("s3cret", now))).await.unwrap();
    assert_eq!(started.len(), 1);
    tick(&runner).await;
    let (state, outcome) = status(&setup.store, &started[0].id).await;
    assert_eq!((state, &outcome["vars"]), (RunStatus::Completed, &json!({"got": "T-1"})));
}

#[test]
fn the_ready_playbooks_pass_their_replay_tests() {
    let catalog = riposte_server::playbooks::default_catalog();
    let (library, errors) = riposte_playbook::Library::load(riposte_server::playbooks::READY, &catalog);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(library.len(), 5);
    let mut cases = 0;
    for (file, text) in riposte_server::playbooks::READY_TESTS {
        let tests: riposte_playbook::replay::TestFile = serde_saphyr::from_str(text).unwrap();
        let playbook = file.trim_start_matches("ready/").trim_end_matches(".test.yml");
        assert!(tests.cases.len() >= 2, "{file}");
        for case in &tests.cases {
            if let Err(problems) = riposte_playbook::replay::check(&library, playbook, case) {
                panic!("{file}: {}: {}", case.name, problems.join("; "));
            }
            cases += 1;
        }
    }
    assert_eq!(cases, 14);
}

fn chat_setup(edr: &MockServer, chat: &MockServer, flavor: &str) -> String {
    format!(
        "connectors:\n  api: {{type: edr, profile: defender, api: {{url: '{}', allow_private: true}}}}\n  \
         chat: {{type: {flavor}, url: '{}/hook', allow_private: true}}\n\
         approvers: {{soc: [bob]}}\n\
         chat_approvals: {{connector: chat, slack_signing_secret: slack-secret, callback_secret: mm-secret, \
         public_url: 'https://riposte.example'}}\n",
        edr.uri(),
        chat.uri()
    )
}

/// The approval request chat received.
async fn posted(chat: &MockServer) -> Value {
    let received = chat.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "one request posted");
    received[0].body_json().unwrap()
}

#[tokio::test]
async fn approvals_are_asked_and_given_in_slack() {
    let setup = setup().await;
    let (edr, chat) = (MockServer::start().await, MockServer::start().await);
    Mock::given(path("/api/machines/ws7/isolate")).respond_with(ResponseTemplate::new(201)).expect(1).mount(&edr).await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&chat)
        .await;
    setup.playbook("isolate.yml", &ISOLATE.replace("timeout: 1s", "timeout: 1h"));
    let runner = setup.runner(&chat_setup(&edr, &chat, "slack"));
    let run = start(&runner, "isolate").await;
    tick(&runner).await;
    let message = posted(&chat).await;
    let buttons = &message["blocks"][1]["elements"];
    assert_eq!(buttons[0]["action_id"], "riposte_approve");
    assert_eq!(buttons[0]["value"], format!("{run}|isolate#approval"));
    assert!(message["text"].as_str().unwrap().contains("Approvers: soc"), "{message}");

    let press = |user: &str, action: &str| {
        let payload = json!({"type": "block_actions", "user": {"username": user},
            "actions": [{"action_id": action, "value": format!("{run}|isolate#approval")}]});
        format!("payload={}", riposte_connectors::rest::form_encode(&payload.to_string()))
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let signed = |body: &str, secret: &str| {
        format!(
            "v0={}",
            riposte_connectors::rest::hmac_hex(secret.as_bytes(), &[b"v0:", now.as_bytes(), b":", body.as_bytes()])
        )
    };
    let body = press("bob", "riposte_approve");
    let forged = runner.slack_action(body.as_bytes(), Some(&now), Some(&signed(&body, "guess"))).await;
    assert!(forged.is_err());
    let stale = runner.slack_action(body.as_bytes(), Some("1700000000"), Some(&signed(&body, "slack-secret"))).await;
    assert!(stale.is_err());
    let outsider = press("mallory", "riposte_approve");
    let said =
        runner.slack_action(outsider.as_bytes(), Some(&now), Some(&signed(&outsider, "slack-secret"))).await.unwrap();
    assert_eq!(said, "Not done: mallory is not in soc");
    let said = runner.slack_action(body.as_bytes(), Some(&now), Some(&signed(&body, "slack-secret"))).await.unwrap();
    assert_eq!(said, "Approved by bob");
    tick(&runner).await;
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Completed);
}

#[tokio::test]
async fn approvals_are_asked_and_given_in_mattermost() {
    let setup = setup().await;
    let (edr, chat) = (MockServer::start().await, MockServer::start().await);
    Mock::given(path("/api/machines/ws7/isolate")).respond_with(ResponseTemplate::new(201)).expect(0).mount(&edr).await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&chat)
        .await;
    setup.playbook("isolate.yml", &ISOLATE.replace("timeout: 1s", "timeout: 1h"));
    let runner = setup.runner(&chat_setup(&edr, &chat, "mattermost"));
    let run = start(&runner, "isolate").await;
    tick(&runner).await;
    let message = posted(&chat).await;
    let actions = &message["attachments"][0]["actions"];
    assert_eq!(actions[1]["integration"]["url"], "https://riposte.example/api/chat/mattermost");
    let reject = actions[1]["integration"]["context"].clone();
    assert_eq!(reject["approve"], false);
    // A context changed on the way (reject turned into approve) is refused.
    let mut tampered = reject.clone();
    tampered["approve"] = json!(true);
    let forged = json!({"user_name": "bob", "context": tampered}).to_string();
    assert!(runner.mattermost_action(forged.as_bytes()).await.is_err());
    let pressed = json!({"user_id": "u1", "user_name": "bob", "context": reject}).to_string();
    // With Mattermost's API configured, the name comes from Mattermost, not from the request.
    let mattermost = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/users/u1"))
        .and(header("authorization", "Bearer bot-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1", "username": "mallory"})))
        .mount(&mattermost)
        .await;
    let api = format!(
        "public_url: 'https://riposte.example', mattermost_api: {{url: '{}', allow_private: true, \
         auth: {{kind: bearer, token: bot-token}}}}}}",
        mattermost.uri()
    );
    let checked =
        setup.runner(&chat_setup(&edr, &chat, "mattermost").replace("public_url: 'https://riposte.example'}", &api));
    assert_eq!(checked.mattermost_action(pressed.as_bytes()).await.unwrap(), "Not done: mallory is not in soc");
    assert_eq!(runner.mattermost_action(pressed.as_bytes()).await.unwrap(), "Rejected by bob");
    tick(&runner).await;
    let (state, outcome) = status(&setup.store, &run).await;
    assert_eq!(state, RunStatus::Failed);
    assert_eq!(outcome["error"], "step isolate: not approved: rejected by bob");
}

#[tokio::test]
async fn an_alert_closes_when_the_ticket_opened_for_it_closes() {
    let setup = setup().await;
    let detection = riposte_store::NewDetection {
        key: "k1".into(),
        fingerprint: "f1".into(),
        rule_id: "r1".into(),
        rule_title: "Mimikatz".into(),
        level: "critical".into(),
        techniques: vec![],
        entities: riposte_store::Entities { hosts: vec!["WS7".into()], ..Default::default() },
        time_ms: 1,
        window_ms: 0,
        event_seq: 0,
        intel: vec![],
    };
    setup.store.record(&[detection], &[], None).await.unwrap();
    let alert = setup.store.alerts(&AlertFilter { limit: 1, ..AlertFilter::default() }).await.unwrap().items.remove(0);
    let jira = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"issues": []})))
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/2/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "10001", "key": "SOC-12"})))
        .expect(1)
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/issue/SOC-12"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"fields": {"status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}}}),
        ))
        .up_to_n_times(1)
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/2/issue/SOC-12"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}}})),
        )
        .mount(&jira)
        .await;
    setup.playbook(
        "ticket.yml",
        "id: ticket\nautonomy: auto\ntriggers: [{alert: {}}]\nsteps:\n\
         - {id: open, action: tickets.create_issue, with: {summary: '{{ alert.rule_title }} on {{ alert.entities.hosts[0] }}'}}\n",
    );
    let runner = setup.runner(&format!(
        "connectors: {{tickets: {{type: jira, project: SOC, api: {{url: '{}', allow_private: true}}}}}}\n",
        jira.uri()
    ));
    let trigger = riposte_playbook::run::alert_trigger(serde_json::to_value(&alert).unwrap());
    let run = runner.start("ticket", trigger, Map::new(), None, None).await.unwrap().unwrap();
    tick(&runner).await;
    assert_eq!(status(&setup.store, &run.id).await.0, RunStatus::Completed);

    assert_eq!(runner.sync_tickets().await.unwrap(), 0, "the ticket is in progress");
    assert_eq!(setup.store.alert(alert.id).await.unwrap().unwrap().status, riposte_store::AlertStatus::New);
    assert_eq!(runner.sync_tickets().await.unwrap(), 1, "the ticket is done");
    assert_eq!(setup.store.alert(alert.id).await.unwrap().unwrap().status, riposte_store::AlertStatus::Closed);
    assert!(setup.store.open_ticket_links().await.unwrap().is_empty());
    let audit = setup.store.audit_log().await.unwrap();
    let closing = audit.iter().find(|entry| entry.action == "alert.change").unwrap();
    assert_eq!(closing.actor, "ticket SOC-12 (tickets.issue_status)");
    assert_eq!(runner.sync_tickets().await.unwrap(), 0, "followed no more");
}

#[tokio::test]
async fn two_processes_on_one_database_run_each_run_once() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/act"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})).set_delay(Duration::from_millis(20)))
        .expect(20)
        .mount(&server)
        .await;
    setup.playbook(
        "once.yml",
        "id: once\nautonomy: auto\ntriggers: [{manual: {}}]\nsteps:\n - {id: act, action: api.request, with: {method: POST, path: /act}}\n",
    );
    let config = connector("http", &server);
    let (first, second) =
        (setup.runner(&format!("{config}\nworker: one")), setup.runner(&format!("{config}\nworker: two")));
    let mut runs = Vec::new();
    for _ in 0..20 {
        runs.push(start(&first, "once").await);
    }
    let (a, b) = tokio::join!(first.tick(), second.tick());
    let (a, b) = (a.unwrap(), b.unwrap());
    for handle in a.into_iter().chain(b) {
        handle.await.unwrap();
    }
    for run in &runs {
        assert_eq!(status(&setup.store, run).await.0, RunStatus::Completed);
    }
}

#[tokio::test]
async fn a_cancelled_run_calls_nothing_more() {
    let setup = setup().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})).set_delay(Duration::from_millis(500)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/after"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    setup.playbook(
        "two.yml",
        "id: two\nautonomy: auto\ntriggers: [{manual: {}}]\nsteps:\n\
         - {id: slow, action: api.request, with: {method: POST, path: /slow}}\n\
         - {id: after, action: api.request, with: {method: POST, path: /after}}\n",
    );
    let runner = setup.runner(&connector("http", &server));
    let run = start(&runner, "two").await;
    let handles = runner.tick().await.unwrap();
    // Cancelled while the first action is in flight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    runner.cancel(&run, "ann").await.unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Cancelled);
    tick(&runner).await;
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Cancelled, "not taken up again");
}

#[tokio::test]
async fn ended_runs_are_forgotten_after_keep_runs() {
    let setup = setup().await;
    setup.playbook("note.yml", "id: note\ntriggers: [{manual: {}}]\nsteps:\n - {id: note, set: {said: hello}}\n");
    let runner = setup.runner("keep_runs: 1d\n");
    let run = start(&runner, "note").await;
    tick(&runner).await;
    assert_eq!(status(&setup.store, &run).await.0, RunStatus::Completed);
    tick(&runner).await;
    assert!(setup.store.run(&run).await.unwrap().is_some(), "kept a day");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let impatient = setup.runner("keep_runs: 5ms\n");
    tick(&impatient).await;
    assert!(setup.store.run(&run).await.unwrap().is_none(), "forgotten");
}
