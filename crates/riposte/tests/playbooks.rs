//! `riposte playbook` and `riposte run` as a user runs them, and playbooks
//! inside `riposte serve`: an alert starts a run, its approval survives the
//! server being killed, and the approved action reaches the connector.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn riposte() -> Command {
    Command::new(env!("CARGO_BIN_EXE_riposte"))
}

fn output(command: &mut Command) -> (i32, String) {
    let output = command.output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn playbook_validate_names_file_line_and_step() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yml"),
        "id: broken\ntriggers: [{alert: {min_level: high}}]\nsteps:\n\
         - id: block\n  action: firewall.blockip\n  with: {address: '{{ alert.entities.ips[0] }}'}\n\
         - id: tell\n  action: chat.post_message\n  with: {text: '{{ steps.lookup.output }}'}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("fine.yml"), "id: fine\nsteps:\n - {id: pause, wait: 1m}\n").unwrap();
    let (code, text) = output(riposte().args(["playbook", "validate"]).arg(dir.path()));
    assert_eq!(code, 2, "{text}");
    let broken = dir.path().join("broken.yml").display().to_string();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            format!("{broken}:4: step block: unknown action firewall.blockip (did you mean firewall.block_ip?)"),
            format!("{broken}:7: step tell: with: `steps.lookup.output`: there is no step lookup"),
            "2 playbooks, 1 valid, 1 with errors".to_owned(),
        ]
    );
    riposte().args(["playbook", "validate"]).arg(dir.path().join("fine.yml")).assert().success();
    let (code, listed) = output(riposte().args(["playbook", "actions"]));
    assert_eq!(code, 0);
    assert!(
        listed
            .lines()
            .any(|line| line.starts_with("action  firewall.block_ip") && line.ends_with("undo: firewall.unblock_ip")),
        "{listed}"
    );
    let (_, json) = output(riposte().args(["playbook", "actions", "--format", "json"]));
    let specs: Vec<Value> = serde_json::from_str(&json).unwrap();
    let chat = specs.iter().find(|spec| spec["name"] == "chat.post_message").unwrap();
    assert!(chat["secrets"][0].as_str().unwrap().starts_with("url"), "{chat}");
}

#[test]
fn playbook_test_replays_cases_and_says_which_failed() {
    riposte().args(["playbook", "test", "--ready"]).assert().success();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notify.yml"),
        "id: notify\nautonomy: auto\ntriggers: [{alert: {min_level: high}}]\nsteps:\n\
         - {id: tell, action: chat.post_message, with: {text: 'alert {{ alert.rule_title }}'}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notify.test.yml"),
        "cases:\n\
         - name: says the title\n  alert: {rule_title: Mimikatz, level: high}\n  expect:\n    trace: [action tell]\n    \
           actions: [{action: chat.post_message, inputs: {text: alert Mimikatz}}]\n\
         - name: wrongly expects silence\n  alert: {rule_title: Mimikatz, level: high}\n  expect: {trace: []}\n",
    )
    .unwrap();
    let (code, text) = output(riposte().args(["playbook", "test"]).arg(dir.path()));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("ok    ") && text.contains("notify.test.yml: says the title"), "{text}");
    assert!(text.contains("FAIL  ") && text.contains("wrongly expects silence"), "{text}");
    assert!(text.ends_with("2 cases, 1 passed, 1 failed\n"), "{text}");
}

#[test]
fn playbook_run_dry_run_shows_what_would_be_done() {
    let dir = tempfile::tempdir().unwrap();
    let alert = dir.path().join("alert.json");
    std::fs::write(
        &alert,
        json!({"id": 9, "rule_id": "x", "rule_title": "SSH brute force", "level": "high",
               "techniques": ["T1110.001"], "entities": {"ips": ["45.77.12.9"]}})
        .to_string(),
    )
    .unwrap();
    let (code, text) =
        output(riposte().args(["playbook", "run", "brute-force-block", "--dry-run", "--alert"]).arg(&alert));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(r#"action block  firewall.block_ip {"address":"45.77.12.9","timeout":"25h"}"#), "{text}");
    let (code, text) = output(riposte().args(["playbook", "run", "no-such-playbook", "--dry-run"]));
    assert_eq!(code, 3, "{text}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> Serving {
    Serving(
        riposte()
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn an_alert_starts_a_run_whose_approval_survives_a_killed_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let edr = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/note"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .expect(1)
            .mount(&edr)
            .await;
        Mock::given(method("POST"))
            .and(path("/isolate"))
            .and(body_json(json!({"host": "WS-7"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"isolated": true})))
            .expect(1)
            .mount(&edr)
            .await;
        let playbooks = dir.path().join("playbooks");
        std::fs::create_dir_all(&playbooks).unwrap();
        std::fs::write(
            playbooks.join("contain.yml"),
            "id: contain\nautonomy: auto\ntriggers: [{alert: {min_level: high}}]\n\
             approval: {approvers: [soc], timeout: 1d}\nsteps:\n\
             - {id: note, action: edr.request, with: {method: POST, path: /note, json: {rule: '{{ alert.rule_id }}'}}}\n\
             - {id: isolate, action: edr.request, autonomy: approve, \
                with: {method: POST, path: /isolate, json: {host: '{{ alert.entities.hosts[0] }}'}}}\n",
        )
        .unwrap();
        let port = free_port();
        let config = dir.path().join("riposte.yml");
        std::fs::write(
            &config,
            format!(
                "data_dir: {}\nhttp: {{listen: '127.0.0.1:{port}'}}\nsources: []\n\
                 playbooks:\n  ready: false\n  dirs: [{}]\n  approvers: {{soc: [analyst]}}\n  \
                 webhooks: {{tickets: hook-secret}}\n  \
                 connectors: {{edr: {{type: http, url: '{}', allow_private: true}}}}\n",
                dir.path().join("data").display(),
                playbooks.display(),
                edr.uri()
            ),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let server = serve(&config);
        until("the server", async || client.get(format!("{base}/api/health")).send().await.ok()).await;
        let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap().trim().to_owned();

        let event = json!({
            "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-7",
            "User": "CORP\\eve", "Image": "C:\\Temp\\m.exe", "CommandLine": "m.exe sekurlsa::logonpasswords exit",
        });
        let sent = client.post(format!("{base}/api/ingest")).bearer_auth(&admin).json(&event).send().await.unwrap();
        assert_eq!(sent.status().as_u16(), 202);
        let get = |url: String| {
            let (client, admin) = (client.clone(), admin.clone());
            async move { client.get(url).bearer_auth(admin).send().await.ok()?.json::<Value>().await.ok() }
        };
        let approvals = until("an approval", async || {
            let listed = get(format!("{base}/api/approvals")).await?;
            listed["approvals"].as_array().filter(|approvals| !approvals.is_empty()).cloned()
        })
        .await;
        assert_eq!(approvals[0]["path"], "isolate#approval");
        assert_eq!(approvals[0]["asked"]["request"]["inputs"]["json"], json!({"host": "WS-7"}));
        let run_id = approvals[0]["run_id"].as_str().unwrap().to_owned();

        // Killed (SIGKILL) and started again: the approval is still there.
        drop(server);
        let _server = serve(&config);
        until("the server again", async || client.get(format!("{base}/api/health")).send().await.ok()).await;
        let listed = get(format!("{base}/api/approvals")).await.unwrap();
        assert_eq!(listed["approvals"][0]["run_id"], run_id.as_str());

        // An approver of the group decides, with a token of their own.
        let analyst = riposte()
            .args(["token", "create", "--name", "analyst", "--scope", "write", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let analyst = String::from_utf8(analyst.stdout).unwrap().trim().to_owned();
        let decision = json!({"run_id": run_id, "path": "isolate#approval", "approve": true, "comment": "EDR agrees"});
        let decided =
            client.post(format!("{base}/api/approvals/decide")).bearer_auth(&analyst).json(&decision).send().await.unwrap();
        assert_eq!(decided.status().as_u16(), 200, "{}", decided.text().await.unwrap());
        let run = until("the run to complete", async || {
            let shown = get(format!("{base}/api/runs/{run_id}")).await?;
            (shown["run"]["status"] == "completed").then_some(shown)
        })
        .await;
        let journal: Vec<&str> = run["steps"].as_array().unwrap().iter().map(|step| step["path"].as_str().unwrap()).collect();
        assert!(journal.contains(&"note") && journal.contains(&"isolate"), "{journal:?}");

        // A webhook without the right signature: 401, nothing runs.
        let hooked = client.post(format!("{base}/api/hooks/tickets")).body("{}").send().await.unwrap();
        assert_eq!(hooked.status().as_u16(), 401);
        let runs = get(format!("{base}/api/runs")).await.unwrap();
        assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    });
}

#[test]
fn secrets_are_kept_encrypted_and_read_by_connectors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("riposte.yml");
    std::fs::write(&config, format!("data_dir: {}\n", dir.path().join("data").display())).unwrap();
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["secret", "set", "jira_token", "--config"])
        .arg(&config)
        .write_stdin("pa55-w0rd\n")
        .assert()
        .success();
    let (code, listed) = output(riposte().args(["secret", "list", "--config"]).arg(&config));
    assert_eq!((code, listed.as_str()), (0, "jira_token\n"));
    let sealed = std::fs::read_to_string(dir.path().join("data/secrets.sealed")).unwrap();
    assert!(!sealed.contains("pa55-w0rd"), "{sealed}");
    let vault = riposte_connectors::Vault::open(&dir.path().join("data")).unwrap();
    let secret: riposte_connectors::Secret = serde_saphyr::from_str("{stored: jira_token}").unwrap();
    assert_eq!(secret.read(Some(&vault)).unwrap().expose(), "pa55-w0rd");
    riposte().args(["secret", "delete", "jira_token", "--config"]).arg(&config).assert().success();
    riposte().args(["secret", "delete", "jira_token", "--config"]).arg(&config).assert().code(3);
}
