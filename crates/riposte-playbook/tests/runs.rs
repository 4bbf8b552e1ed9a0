//! Runs: data flow between steps, failures and their paths, approvals and
//! their timeouts, policy, and resuming after a restart without acting twice.

mod common;

use std::time::Duration;

use common::Memory;
use futures_executor::block_on;
use riposte_playbook::run::{alert_trigger, manual_trigger};
use riposte_playbook::{ActError, Admission, Entry, Interpreter, Library, Outcome, State};
use serde_json::{Map, Value, json};

const HOUR: i64 = 3_600_000;

fn alert() -> Value {
    alert_trigger(json!({
        "rule_id": "r1", "rule_title": "Brute force", "level": "high", "techniques": ["T1110.001"],
        "entities": {"source_ip": "45.77.12.9", "hosts": ["ws1", "ws2", "ws3"]},
    }))
}

fn run(library: &Library, host: &Memory, id: &str, trigger: &Value) -> Outcome {
    run_with(library, host, id, trigger, &Map::new())
}

fn run_with(library: &Library, host: &Memory, id: &str, trigger: &Value, inputs: &Map<String, Value>) -> Outcome {
    let interpreter = Interpreter::new(library, host, "run-1", host.saved());
    block_on(interpreter.run(library.get(id).unwrap(), trigger, inputs)).expect("the journal is writable")
}

const BLOCK: &str = r#"
id: block
autonomy: auto
triggers: [{alert: {min_level: high}}]
steps:
  - id: lookup
    enrich: intel.lookup
    with: {value: "{{ alert.entities.source_ip }}"}
  - id: decide
    if: "steps.lookup.output.score >= 50"
    then:
      - id: block
        action: firewall.block_ip
        with: {address: "{{ alert.entities.source_ip }}"}
        undo_after: 24h
    else:
      - id: note
        set: {skipped: "score {{ steps.lookup.output.score }}"}
  - id: tell
    action: chat.post
    with:
      message: "{{ alert.rule_title }}: {{ vars.skipped if vars.skipped is defined else 'blocked ' ~ steps.block.output.done }}"
"#;

#[test]
fn outputs_flow_from_step_to_step() {
    let library = common::library(&[("block.yml", BLOCK)]);
    let host = Memory::default();
    host.answer("intel.lookup", Ok(json!({"score": 90})));
    assert_eq!(run(&library, &host, "block", &alert()), Outcome::Completed { vars: json!({}) });
    assert_eq!(host.called(), ["intel.lookup", "firewall.block_ip", "chat.post"]);
    let calls = host.calls.lock().unwrap().clone();
    assert_eq!(calls[1].inputs, json!({"address": "45.77.12.9"}));
    assert_eq!(calls[1].idempotency_key, "run-1/block");
    assert_eq!(calls[2].inputs, json!({"message": "Brute force: blocked firewall.block_ip"}));
    // The block is undone by itself a day later.
    let undo = host.entry("block").unwrap().undo.unwrap();
    assert_eq!((undo.action.as_str(), undo.due_ms), ("firewall.unblock_ip", Some(24 * HOUR)));

    let host = Memory::default();
    host.answer("intel.lookup", Ok(json!({"score": 10})));
    assert_eq!(run(&library, &host, "block", &alert()), Outcome::Completed { vars: json!({"skipped": "score 10"}) });
    assert_eq!(host.called(), ["intel.lookup", "chat.post"]);
    assert_eq!(host.calls.lock().unwrap()[1].inputs, json!({"message": "Brute force: score 10"}));
}

#[test]
fn a_restart_resumes_the_run_without_repeating_an_action() {
    let library = common::library(&[("block.yml", BLOCK)]);
    let host = Memory::default();
    host.answer("intel.lookup", Ok(json!({"score": 90})));
    // The process dies after the block is written as done (lookup started,
    // lookup done, block started, block done), before the message.
    *host.writes_left.lock().unwrap() = Some(4);
    let interpreter = Interpreter::new(&library, &host, "run-1", host.saved());
    assert!(block_on(interpreter.run(library.get("block").unwrap(), &alert(), &Map::new())).is_err());
    assert_eq!(host.called(), ["intel.lookup", "firewall.block_ip"]);
    assert_eq!(host.entry("block").unwrap().state, State::Done);
    assert_eq!(host.entry("tell").map(|entry| entry.state), None);

    // After the restart: a new interpreter over the journal.
    *host.writes_left.lock().unwrap() = None;
    host.calls.lock().unwrap().clear();
    assert!(matches!(run(&library, &host, "block", &alert()), Outcome::Completed { .. }));
    assert_eq!(host.called(), ["chat.post"], "the lookup and the block are not done again");

    // Died between "started" and "done": the action is called again, with the same key.
    let host = Memory::default();
    host.answer("intel.lookup", Ok(json!({"score": 90})));
    *host.writes_left.lock().unwrap() = Some(3);
    let interpreter = Interpreter::new(&library, &host, "run-1", host.saved());
    assert!(block_on(interpreter.run(library.get("block").unwrap(), &alert(), &Map::new())).is_err());
    assert_eq!(host.entry("block").unwrap().state, State::Started);
    *host.writes_left.lock().unwrap() = None;
    host.calls.lock().unwrap().clear();
    assert!(matches!(run(&library, &host, "block", &alert()), Outcome::Completed { .. }));
    let calls = host.calls.lock().unwrap().clone();
    assert_eq!(calls.iter().map(|call| call.action.as_str()).collect::<Vec<_>>(), ["firewall.block_ip", "chat.post"]);
    assert_eq!(calls[0].idempotency_key, "run-1/block");
    assert_eq!(host.entry("block").unwrap().attempts, 2);
}

#[test]
fn retries_back_off_then_the_error_path_runs() {
    let text = r#"
id: flaky
autonomy: auto
steps:
  - id: post
    action: chat.post
    with: {message: hello}
    retry: {attempts: 3, backoff: 2s}
    catch:
      - id: fallback
        action: chat.post
        with: {message: "failed: {{ steps.post.error }}", channel: ops}
  - id: after
    set: {reached: true}
"#;
    let library = common::library(&[("flaky.yml", text)]);
    let host = Memory::default();
    host.answer("chat.post", Err(ActError::retryable("HTTP 503")));
    host.answer("chat.post", Err(ActError::retryable("HTTP 502")));
    host.answer("chat.post", Err(ActError::retryable("HTTP 500")));
    assert_eq!(
        run(&library, &host, "flaky", &manual_trigger("ann")),
        Outcome::Completed { vars: json!({"reached": true}) }
    );
    assert_eq!(host.called().len(), 4);
    // Backoff 2 s then 4 s.
    assert_eq!(host.now_ms(), 6_000);
    assert_eq!(host.calls.lock().unwrap()[3].inputs["message"], "failed: HTTP 500 (after 3 attempts)");

    // A refusal (4xx) is not retried.
    let host = Memory::default();
    host.answer("chat.post", Err(ActError::permanent("HTTP 403")));
    run(&library, &host, "flaky", &manual_trigger("ann"));
    assert_eq!(host.called().len(), 2);
}

use riposte_playbook::Host;

#[test]
fn a_step_that_never_answers_times_out_and_the_run_ends() {
    let text = r#"
id: hang
autonomy: auto
steps:
  - id: stuck
    action: never.answers
    timeout: 5s
    retry: {attempts: 2, backoff: 1s}
"#;
    let library = common::library(&[("hang.yml", text)]);
    let host = Memory::default();
    let outcome = run(&library, &host, "hang", &manual_trigger("ann"));
    assert_eq!(outcome, Outcome::Failed { error: "step stuck: no answer in 5 s (after 2 attempts)".into() });
    assert_eq!(host.called().len(), 2);
}

const ISOLATE: &str = r#"
id: isolate
autonomy: approve
approval:
  message: "Isolate {{ alert.entities.hosts[0] }} ({{ alert.rule_title }})?"
  approvers: [soc]
  escalate_to: [soc-leads]
  escalate_after: 30m
  timeout: 2h
triggers: [{alert: {}}]
steps:
  - id: isolate
    action: edr.isolate
    with: {host: "{{ alert.entities.hosts[0] }}"}
    on_error: continue
  - id: tell
    action: chat.post
    with: {message: "isolate: {{ steps.isolate.status }}"}
    autonomy: auto
"#;

#[test]
fn an_action_that_needs_approval_waits_escalates_and_takes_its_default() {
    let library = common::library(&[("isolate.yml", ISOLATE)]);
    let host = Memory::default();
    assert_eq!(run(&library, &host, "isolate", &alert()), Outcome::Waiting { wake_ms: Some(30 * 60_000) });
    let asked = host.entry("isolate#approval").unwrap();
    assert_eq!(asked.state, State::Waiting);
    assert_eq!(asked.output["approvers"], json!(["soc"]));
    assert_eq!(asked.output["message"], "Isolate ws1 (Brute force)?");
    assert_eq!(asked.output["request"], json!({"action": "edr.isolate", "inputs": {"host": "ws1"}}));
    assert!(host.called().is_empty());

    // Half an hour on: the second group is asked.
    host.advance(Duration::from_secs(30 * 60));
    assert_eq!(run(&library, &host, "isolate", &alert()), Outcome::Waiting { wake_ms: Some(2 * HOUR) });
    assert_eq!(host.entry("isolate#approval").unwrap().output["escalated"], true);
    // Nobody answers in two hours: the default (reject) is taken, and the run goes on.
    host.advance(Duration::from_secs(90 * 60));
    assert!(matches!(run(&library, &host, "isolate", &alert()), Outcome::Completed { .. }));
    assert_eq!(host.called(), ["chat.post"]);
    assert_eq!(host.calls.lock().unwrap()[0].inputs["message"], "isolate: failed");
    assert_eq!(host.entry("isolate#approval").unwrap().output["reason"], "timed out");
}

#[test]
fn an_approved_action_runs_with_its_approver() {
    let library = common::library(&[("isolate.yml", ISOLATE)]);
    let host = Memory::default();
    run(&library, &host, "isolate", &alert());
    // What the API writes when a person approves.
    host.put("isolate#approval", Entry { output: json!({"approved": true, "by": "bob"}), ..waiting(State::Done) });
    assert!(matches!(run(&library, &host, "isolate", &alert()), Outcome::Completed { .. }));
    assert_eq!(host.called(), ["edr.isolate", "chat.post"]);
    assert_eq!(host.calls.lock().unwrap()[0].approved_by.as_deref(), Some("bob"));
}

fn waiting(state: State) -> Entry {
    Entry { state, output: Value::Null, error: None, attempts: 0, wake_ms: None, undo: None }
}

#[test]
fn policy_refuses_or_holds_an_automatic_action() {
    let library = common::library(&[("block.yml", BLOCK)]);
    let host = Memory::default();
    host.answer("intel.lookup", Ok(json!({"score": 90})));
    *host.admission.lock().unwrap() = Some(Admission::Refuse("at most 10 addresses blocked an hour".into()));
    let outcome = run(&library, &host, "block", &alert());
    assert_eq!(
        outcome,
        Outcome::Failed { error: "step decide: step block: at most 10 addresses blocked an hour".into() }
    );
    assert_eq!(host.called(), ["intel.lookup"]);

    let host = Memory::default();
    host.answer("intel.lookup", Ok(json!({"score": 90})));
    *host.admission.lock().unwrap() = Some(Admission::Hold("45.77.12.9 is protected".into()));
    assert!(matches!(run(&library, &host, "block", &alert()), Outcome::Waiting { .. }));
    let asked = host.entry("block#approval").unwrap();
    assert_eq!(asked.output["request"]["held"], "45.77.12.9 is protected");
    host.put("block#approval", Entry { output: json!({"approved": true, "by": "carol"}), ..waiting(State::Done) });
    // The block runs with its approver; the message after it is held in turn
    // (this host holds every action).
    assert!(matches!(run(&library, &host, "block", &alert()), Outcome::Waiting { .. }));
    assert_eq!(host.called(), ["intel.lookup", "firewall.block_ip"]);
    assert_eq!(host.calls.lock().unwrap()[1].approved_by.as_deref(), Some("carol"));
    assert!(host.entry("tell#approval").is_some());
}

#[test]
fn a_suggestion_waits_for_a_person_however_long() {
    let text = r#"
id: suggest
autonomy: suggest
steps:
  - id: block
    action: firewall.block_ip
    with: {address: 45.77.12.9}
"#;
    let library = common::library(&[("suggest.yml", text)]);
    let host = Memory::default();
    assert_eq!(run(&library, &host, "suggest", &manual_trigger("ann")), Outcome::Waiting { wake_ms: None });
    host.advance(Duration::from_secs(30 * 86_400));
    assert_eq!(run(&library, &host, "suggest", &manual_trigger("ann")), Outcome::Waiting { wake_ms: None });
    assert!(host.called().is_empty());
}

#[test]
fn loops_parallel_branches_waits_and_sub_playbooks() {
    let main = r#"
id: contain
autonomy: auto
triggers: [{alert: {}}]
steps:
  - id: each
    for_each: "alert.entities.hosts"
    as: host
    do:
      - id: isolate
        action: edr.isolate
        with: {host: "{{ host }}"}
  - id: both
    parallel:
      - - id: tell_soc
          action: chat.post
          with: {message: "isolated {{ steps.each.output | length }}", channel: soc}
      - - id: tell_it
          playbook: notify
          with: {text: "hosts {{ alert.entities.hosts | join(',') }}"}
  - id: pause
    wait: 10m
  - id: done
    set: {said: "{{ steps.tell_it.output.said }}"}
"#;
    let notify = r#"
id: notify
inputs: [{name: text}, {name: channel, default: it}]
steps:
  - id: post
    action: chat.post
    with: {message: "{{ inputs.text }}", channel: "{{ inputs.channel }}"}
    autonomy: auto
  - id: result
    set: {said: "{{ inputs.text }}"}
"#;
    let library = common::library(&[("contain.yml", main), ("notify.yml", notify)]);
    let host = Memory::default();
    assert_eq!(run(&library, &host, "contain", &alert()), Outcome::Waiting { wake_ms: Some(10 * 60_000) });
    let calls = host.calls.lock().unwrap().clone();
    let paths: Vec<&str> = calls.iter().map(|call| call.path.as_str()).collect();
    assert_eq!(paths, ["each[0].isolate", "each[1].isolate", "each[2].isolate", "tell_soc", "tell_it/post"]);
    assert_eq!(calls[3].inputs, json!({"message": "isolated 3", "channel": "soc"}));
    assert_eq!(calls[4].inputs, json!({"message": "hosts ws1,ws2,ws3", "channel": "it"}));

    host.advance(Duration::from_secs(600));
    assert_eq!(
        run(&library, &host, "contain", &alert()),
        Outcome::Completed { vars: json!({"said": "hosts ws1,ws2,ws3"}) }
    );
    assert_eq!(host.called().len(), 5, "nothing acted twice");
}

#[test]
fn a_dry_run_acts_on_nothing_and_shows_what_it_would_do() {
    let library = common::library(&[("isolate.yml", ISOLATE)]);
    let host = riposte_playbook::DryRun::default();
    let interpreter = Interpreter::new(&library, &host, "dry", Default::default()).dry_run();
    let outcome = block_on(interpreter.run(library.get("isolate").unwrap(), &alert(), &Map::new())).unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
    let trace: Vec<(String, String)> = interpreter.trace().into_iter().map(|trace| (trace.path, trace.what)).collect();
    assert_eq!(
        trace,
        [
            ("isolate#approval".to_owned(), "approval".to_owned()),
            ("isolate".to_owned(), "action".to_owned()),
            ("tell".to_owned(), "action".to_owned()),
        ]
    );
}

#[test]
fn a_missing_required_input_fails_the_run_before_any_step() {
    let text = "id: needs\ninputs: [{name: host}]\nsteps:\n  - id: a\n    action: edr.isolate\n    with: {host: \"{{ inputs.host }}\"}\n";
    let library = common::library(&[("needs.yml", text)]);
    let host = Memory::default();
    assert_eq!(
        run(&library, &host, "needs", &manual_trigger("ann")),
        Outcome::Failed { error: "input host is required".into() }
    );
    let inputs: Map<String, Value> = [("host".to_owned(), json!("ws9"))].into_iter().collect();
    assert_eq!(
        run_with(&library, &host, "needs", &manual_trigger("ann"), &inputs),
        Outcome::Waiting { wake_ms: Some(4 * HOUR) }
    );
}

#[test]
fn replay_tests_say_where_a_run_went_otherwise() {
    use riposte_playbook::replay::{TestFile, check};
    let library = common::library(&[("block.yml", BLOCK)]);
    let tests: TestFile = serde_saphyr::from_str(
        r#"
cases:
  - name: blocks
    alert: {rule_title: Brute force, level: high, entities: {source_ip: 45.77.12.9}}
    outputs: {lookup: {score: 90}, block: {done: yes}}
    expect:
      triggered: true
      outcome: completed
      trace: [enrich lookup, "if decide: then", action block, action tell]
      actions: [{action: firewall.block_ip, inputs: {address: 45.77.12.9}}]
  - name: wrongly expected
    alert: {rule_title: Brute force, level: low, entities: {source_ip: 45.77.12.9}}
    outputs: {lookup: {score: 10}}
    expect:
      outcome: failed
      trace: [enrich lookup, "if decide: then"]
      actions: [{action: firewall.block_ip}]
  - name: not triggered
    alert: {level: low}
    expect: {triggered: true}
"#,
    )
    .unwrap();
    check(&library, "block", &tests.cases[0]).unwrap();
    let problems = check(&library, "block", &tests.cases[1]).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_eq!(problems[0], "the run completed, expected failed");
    assert!(problems[1].contains("if decide: else"), "{}", problems[1]);
    assert!(problems[2].starts_with("no call of firewall.block_ip"), "{}", problems[2]);
    assert_eq!(check(&library, "block", &tests.cases[2]).unwrap_err(), ["the alert does not start the playbook"]);
}

#[test]
fn a_hold_is_released_by_a_person_not_by_a_timeout_that_approves() {
    let text = r#"
id: held
autonomy: auto
approval: {approvers: [soc], timeout: 1h, default: approve}
steps:
  - id: block
    action: firewall.block_ip
    with: {address: 10.1.2.3}
"#;
    let library = common::library(&[("held.yml", text)]);
    let host = Memory::default();
    *host.admission.lock().unwrap() = Some(Admission::Hold("10.1.2.3 is protected".into()));
    assert!(matches!(run(&library, &host, "held", &manual_trigger("ann")), Outcome::Waiting { .. }));
    host.advance(Duration::from_secs(3601));
    let outcome = run(&library, &host, "held", &manual_trigger("ann"));
    assert_eq!(
        outcome,
        Outcome::Failed {
            error: "step block: held (10.1.2.3 is protected), and nobody approved it (a timeout's default does not release a hold)"
                .into()
        }
    );
    assert!(host.called().is_empty());
}
