//! Replay tests: recorded triggers (alerts, inputs) and the outputs their
//! steps would get, run dry, with the path the run must take and the inputs
//! its actions must be given. They live next to the playbook
//! (`name.test.yml` beside `name.yml`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::load::Library;
use crate::run::{DryRun, Interpreter, Outcome, Trace};

/// A file of cases for one playbook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The playbook's id (default: the file's name without `.test.yml`).
    #[serde(default)]
    pub playbook: Option<String>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// An alert as the API shows it; the trigger is then that alert.
    #[serde(default)]
    pub alert: Option<Value>,
    /// Any other trigger (`{kind: manual, by: ann}`).
    #[serde(default)]
    pub trigger: Option<Value>,
    #[serde(default)]
    pub inputs: Map<String, Value>,
    /// What each step (by id) answers.
    #[serde(default)]
    pub outputs: HashMap<String, Value>,
    pub expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Whether the case's alert starts the playbook (its alert triggers'
    /// filters); a case that expects not is not run.
    #[serde(default)]
    pub triggered: Option<bool>,
    /// `completed`, `failed` or `waiting`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Every line of the trace, in order (`enrich lookup`, `if decide: then`,
    /// `action block`, `approval isolate#approval`).
    #[serde(default)]
    pub trace: Option<Vec<String>>,
    /// Actions that must be called with (at least) these inputs, in order.
    #[serde(default)]
    pub actions: Vec<ExpectedAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAction {
    pub action: String,
    #[serde(default)]
    pub inputs: Map<String, Value>,
}

/// A trace line as tests write it.
pub fn line(trace: &Trace) -> String {
    match trace.what.as_str() {
        "branch" => format!("if {}: {}", trace.path, trace.detail.as_str().unwrap_or_default()),
        "case" => format!("switch {}: {}", trace.path, trace.detail.as_str().unwrap_or_default()),
        what => format!("{what} {}", trace.path),
    }
}

/// Runs `case` against `playbook` dry; what differs from its expectations.
pub fn check(library: &Library, playbook: &str, case: &Case) -> Result<Vec<Trace>, Vec<String>> {
    let Some(found) = library.get(playbook) else {
        return Err(vec![format!("playbook {playbook} is not loaded")]);
    };
    let trigger = match (&case.alert, &case.trigger) {
        (Some(alert), _) => crate::run::alert_trigger(alert.clone()),
        (None, Some(trigger)) => trigger.clone(),
        (None, None) => crate::run::manual_trigger("test"),
    };
    if let Some(expected) = case.expect.triggered {
        let alert = case.alert.as_ref().unwrap_or(&Value::Null);
        let triggered = found.triggers.iter().any(|trigger| match trigger {
            crate::trigger::Trigger::Alert(filter) => filter.matches(alert, found.templates()),
            _ => false,
        });
        if triggered != expected {
            let said = if triggered { "starts" } else { "does not start" };
            return Err(vec![format!("the alert {said} the playbook")]);
        }
        if !triggered {
            return Ok(Vec::new());
        }
    }
    let host = DryRun { outputs: case.outputs.clone(), now_ms: 0 };
    let interpreter = Interpreter::new(library, &host, "test", HashMap::new()).dry_run();
    let outcome = match block_on(interpreter.run(found, &trigger, &case.inputs)) {
        Ok(outcome) => outcome,
        Err(error) => return Err(vec![error.to_string()]),
    };
    let trace = interpreter.trace();
    let mut problems = Vec::new();
    let status = match &outcome {
        Outcome::Completed { .. } => "completed",
        Outcome::Failed { .. } => "failed",
        Outcome::Waiting { .. } => "waiting",
    };
    if let Some(expected) = &case.expect.outcome
        && expected != status
    {
        let detail = match &outcome {
            Outcome::Failed { error } => format!(" ({error})"),
            _ => String::new(),
        };
        problems.push(format!("the run {status}{detail}, expected {expected}"));
    }
    if let Some(expected) = &case.expect.trace {
        let actual: Vec<String> = trace.iter().map(line).collect();
        if &actual != expected {
            problems.push(format!(
                "the run went\n      {}\n    expected\n      {}",
                actual.join("\n      "),
                expected.join("\n      ")
            ));
        }
    }
    let called: Vec<&Trace> = trace.iter().filter(|trace| matches!(trace.what.as_str(), "action" | "enrich")).collect();
    let mut next = 0;
    for expected in &case.expect.actions {
        let found = called[next..].iter().position(|trace| {
            trace.detail.get("action").and_then(Value::as_str) == Some(expected.action.as_str())
                && expected
                    .inputs
                    .iter()
                    .all(|(name, value)| trace.detail.pointer(&format!("/inputs/{name}")) == Some(value))
        });
        match found {
            Some(offset) => next += offset + 1,
            None => problems.push(format!(
                "no call of {} with {} (in order); calls: {}",
                expected.action,
                Value::Object(expected.inputs.clone()),
                called.iter().map(|trace| trace.detail.to_string()).collect::<Vec<_>>().join("; ")
            )),
        }
    }
    if problems.is_empty() { Ok(trace) } else { Err(problems) }
}

/// Polls a future whose every wait is already over (a dry run's host
/// answers at once) to its end.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}
