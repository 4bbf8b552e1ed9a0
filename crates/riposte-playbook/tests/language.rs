//! What `riposte playbook validate` rejects, and where it says the problem is.

mod common;

use riposte_playbook::{Library, LoadError, StepKind, load};

fn errors(text: &str) -> Vec<LoadError> {
    load("pb.yml", text, &common::catalog()).expect_err("the playbook should be rejected")
}

/// The one error's line and reason.
fn only(text: &str) -> (Option<usize>, String) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    (errors[0].line, errors[0].reason.clone())
}

const GOOD: &str = r#"
id: block-source
name: Block the source of a brute force
autonomy: auto
triggers:
  - alert: {min_level: high, techniques: [T1110]}
  - manual: {}
inputs:
  - name: channel
    default: soc
steps:
  - id: lookup
    enrich: intel.lookup
    with: {value: "{{ alert.entities.source_ip }}"}
    timeout: 10s
    retry: {attempts: 3, backoff: 1s}
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
      channel: "{{ inputs.channel }}"
      message: "{{ alert.rule_title }}: {{ vars.skipped if vars.skipped is defined else 'blocked' }}"
"#;

#[test]
fn a_good_playbook_loads() {
    let playbook = load("pb.yml", GOOD, &common::catalog()).unwrap();
    assert_eq!(playbook.id, "block-source");
    assert_eq!(playbook.triggers.len(), 2);
    assert_eq!(
        playbook.walk().map(|step| step.id.as_str()).collect::<Vec<_>>(),
        ["lookup", "decide", "block", "note", "tell"]
    );
    let block = playbook.step("block").unwrap();
    assert_eq!(block.line, 20);
    assert!(matches!(&block.kind, StepKind::Action { inverse: Some(inverse), .. } if inverse == "firewall.unblock_ip"));
}

#[test]
fn yaml_errors_name_their_line() {
    let (line, reason) = only("id: x\nsteps:\n  - id: a\n    wait: 1m\n   bad indent: [\n");
    assert!(line.is_some_and(|line| line >= 4), "{line:?} {reason}");
    let (line, reason) = only("id: x\nsteps:\n  - id: a\n    wait: 1m\n    colour: red\n");
    assert_eq!(line, Some(5), "{reason}");
    assert!(reason.contains("colour"), "{reason}");
}

#[test]
fn an_unknown_action_is_named_with_the_nearest_known_one() {
    let (line, reason) = only("id: x\nsteps:\n  - id: a\n    wait: 1m\n  - id: b\n    action: firewall.blockip\n");
    assert_eq!(line, Some(5));
    assert_eq!(reason, "unknown action firewall.blockip (did you mean firewall.block_ip?)");
}

#[test]
fn inputs_are_checked_against_the_action() {
    let text = "id: x\nsteps:\n  - id: a\n    action: firewall.block_ip\n    with: {addr: 1.2.3.4}\n";
    let errors = errors(text);
    let reasons: Vec<&str> = errors.iter().map(|error| error.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["firewall.block_ip takes no input addr (it takes address)", "firewall.block_ip needs input address"]
    );
    assert!(errors.iter().all(|error| error.line == Some(3) && error.step.as_deref() == Some("a")));
    let (_, reason) = only("id: x\nsteps:\n  - id: a\n    action: firewall.block_ip\n    with: {address: 7}\n");
    assert_eq!(reason, "firewall.block_ip input address is a \"string\"");
    let (_, reason) = only("id: x\nsteps:\n  - id: a\n    enrich: firewall.block_ip\n    with: {address: a}\n");
    assert!(reason.contains("use `action:`"), "{reason}");
}

#[test]
fn templates_may_read_only_what_exists_where_they_are() {
    // A step's output before the step ran.
    let text = r#"
id: x
steps:
  - id: tell
    action: chat.post
    with: {message: "{{ steps.lookup.output.score }}"}
  - id: lookup
    enrich: intel.lookup
    with: {value: "a"}
"#;
    let (line, reason) = only(text);
    assert_eq!(line, Some(4));
    assert_eq!(reason, "with: `steps.lookup.output.score`: step lookup has not run at this point");
    let (_, reason) =
        only("id: x\nsteps:\n  - id: a\n    action: chat.post\n    with: {message: \"{{ steps.nope }}\"}\n");
    assert_eq!(reason, "with: `steps.nope`: there is no step nope");
    let (_, reason) =
        only("id: x\nsteps:\n  - id: a\n    action: chat.post\n    with: {message: \"{{ inputs.who }}\"}\n");
    assert_eq!(reason, "with: `inputs.who`: the playbook declares no input who");
    let (_, reason) =
        only("id: x\nsteps:\n  - id: a\n    action: chat.post\n    with: {message: \"{{ alert.title }}\"}\n");
    assert_eq!(reason, "with: `alert.title`: the playbook has no alert trigger");
    let (_, reason) =
        only("id: x\nsteps:\n  - id: a\n    action: chat.post\n    with: {message: \"{{ hostname }}\"}\n");
    assert!(reason.starts_with("with: `hostname` is not defined"), "{reason}");
    let (_, reason) =
        only("id: x\nsteps:\n  - id: a\n    if: \"vars.n > 1\"\n    then:\n      - id: b\n        wait: 1s\n");
    assert_eq!(reason, "if: `vars.n`: no `set` step sets n before this point");
    // Functions of the template language and loop items are known.
    let text = r#"
id: x
triggers: [{manual: {}}]
inputs: [{name: hosts}]
steps:
  - id: each
    for_each: "inputs.hosts"
    as: host
    do:
      - id: isolate
        action: edr.isolate
        with: {host: "{{ host }}"}
      - id: tell
        action: chat.post
        with: {message: "{{ range(3) | join(',') }} {{ steps.isolate.output }}"}
"#;
    load("pb.yml", text, &common::catalog()).unwrap();
}

#[test]
fn template_syntax_errors_are_found_at_load() {
    let (line, reason) = only("id: x\nsteps:\n  - id: a\n    action: chat.post\n    with: {message: \"{{ 1 + }}\"}\n");
    assert_eq!(line, Some(3));
    assert!(reason.starts_with("with: syntax error"), "{reason}");
    let (_, reason) = only("id: x\nsteps:\n  - id: a\n    if: \"== 2\"\n    then: [{id: b, wait: 1s}]\n");
    assert!(reason.starts_with("if: syntax error"), "{reason}");
}

#[test]
fn step_shapes_are_checked() {
    let (line, reason) = only("id: x\nsteps:\n  - id: a\n    wait: 1m\n  - id: a\n    wait: 2m\n");
    assert_eq!((line, reason.as_str()), (Some(5), "step id a is used twice (first on line 3)"));
    let (_, reason) = only("id: x\nsteps:\n  - id: a\n    wait: 1m\n    set: {b: 1}\n");
    assert_eq!(reason, "a step is one kind, not wait and set");
    let (_, reason) = only("id: x\nsteps:\n  - id: a\n    wait: 1m\n    then: []\n");
    assert_eq!(reason, "`then` belongs to if steps, not wait");
    let (_, reason) = only("id: x\nsteps:\n  - id: a\n    wait: soon\n");
    assert_eq!(reason, "wait \"soon\" is not a duration (30s, 5m, 2h, 1d)");
    let (_, reason) =
        only("id: x\nsteps:\n  - id: a\n    action: chat.post\n    with: {message: m}\n    undo_after: 1h\n");
    assert_eq!(reason, "chat.post cannot be undone, so it has no undo_after");
    let (_, reason) = only("id: x\ntriggers: [{schedule: '61 * * * *'}]\nsteps: [{id: a, wait: 1s}]\n");
    assert!(reason.contains("minute"), "{reason}");
    let (_, reason) = only("id: x\nsteps: [{id: a, action: chat.post, with: {message: m}, on_error: ignore}]\n");
    assert!(reason.starts_with("on_error \"ignore\""), "{reason}");
}

#[test]
fn sub_playbooks_must_exist_and_not_run_each_other_in_a_cycle() {
    let a = "id: a\nsteps:\n  - id: first\n    wait: 1s\n  - id: call_b\n    playbook: b\n";
    let b = "id: b\nsteps:\n  - id: call_a\n    playbook: a\n";
    let c = "id: c\nsteps:\n  - id: call_missing\n    playbook: missing\n";
    let d = "id: d\nsteps:\n  - id: call_a\n    playbook: a\n";
    let (library, errors) = Library::load([("a.yml", a), ("b.yml", b), ("c.yml", c), ("d.yml", d)], &common::catalog());
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "c.yml:3: step call_missing: runs playbook missing, which is not loaded",
            "a.yml:5: step call_b: playbooks run each other in a cycle: a → b → a",
            "d.yml:3: step call_a: runs playbook a, which is not loaded",
        ]
    );
    assert!(library.is_empty());
}
