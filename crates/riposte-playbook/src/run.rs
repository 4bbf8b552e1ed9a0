//! The interpreter. A run is replayed from its first step every time it is
//! taken up: steps that only compute (conditions, loops, `set`) are worked
//! out again from the trigger and the journal, and steps that touch the
//! world (actions, approvals, waits) read their result from the journal when
//! it is there. An action is written to the journal as started before it is
//! called and as done after, so a run resumed after a crash never calls an
//! action it finished; one it was in the middle of is called again with the
//! same idempotency key, for the remote side to recognise.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{BoxFuture, Either, FutureExt, join_all, select};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::load::Library;
use crate::model::{ApprovalSpec, Autonomy, OnError, Playbook, Step, StepKind};

/// Most items one `for_each` goes through.
pub const MAX_ITEMS: usize = 10_000;

/// Where one step of a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// An action was called and has not answered (or the process died).
    Started,
    Done,
    Failed,
    /// A wait, or an approval nobody has given yet.
    Waiting,
}

/// What the journal keeps for one step, by its path in the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub state: State,
    #[serde(default)]
    pub output: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts made (actions).
    #[serde(default)]
    pub attempts: u32,
    /// When a waiting step should be looked at again (Unix ms); none while
    /// only a person can move it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_ms: Option<i64>,
    /// How to take a done action back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Undo>,
}

impl Entry {
    fn new(state: State) -> Entry {
        Entry { state, output: Value::Null, error: None, attempts: 0, wake_ms: None, undo: None }
    }
}

/// The inverse of a done action, and when it is due by itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    pub action: String,
    pub inputs: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<i64>,
}

/// One call of a connector's action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Call {
    pub run_id: String,
    pub playbook: String,
    pub path: String,
    pub action: String,
    pub inputs: Value,
    /// The same for every attempt and every resumption of this step.
    pub idempotency_key: String,
    /// Whether it changes things (an action, not an enrichment).
    pub changes: bool,
    /// Who approved it, when a person did.
    pub approved_by: Option<String>,
}

/// Why an action failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ActError {
    pub message: String,
    /// Worth another attempt (a timeout, a 5xx), as opposed to a refusal.
    pub retryable: bool,
}

impl ActError {
    pub fn retryable(message: impl Into<String>) -> ActError {
        ActError { message: message.into(), retryable: true }
    }

    pub fn permanent(message: impl Into<String>) -> ActError {
        ActError { message: message.into(), retryable: false }
    }
}

/// What policy says about an action about to run.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    Allow,
    /// A person must approve it first (a protected asset, the kill switch).
    Hold(String),
    /// It must not run (a blast-radius limit): the step fails.
    Refuse(String),
}

/// The journal could not be written: the run stops where it is, to be
/// taken up again.
#[derive(Debug, thiserror::Error)]
#[error("the run's journal could not be written: {0}")]
pub struct HostError(pub String);

/// What a run needs from the world.
pub trait Host: Sync {
    fn now_ms(&self) -> i64;

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;

    /// Calls a connector.
    fn act(&self, call: &Call) -> impl Future<Output = Result<Value, ActError>> + Send;

    /// Policy's say on an action that changes things, just before it runs
    /// (once per step: a resumed step that already started is not asked again).
    fn admit(&self, call: &Call) -> impl Future<Output = Admission> + Send;

    /// Keeps `entry` durably before the run goes on.
    fn record(&self, path: &str, entry: &Entry) -> impl Future<Output = Result<(), HostError>> + Send;
}

/// How a run stands after being taken up.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Every step ran; the variables the run set.
    Completed {
        vars: Value,
    },
    Failed {
        error: String,
    },
    /// Waiting for a time or a person; take it up again at `wake_ms`, or
    /// when a person decides.
    Waiting {
        wake_ms: Option<i64>,
    },
}

/// One thing a run did or would do, in order, for dry runs and replay tests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    pub path: String,
    pub what: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// Takes up runs of a library's playbooks.
pub struct Interpreter<'a, H: Host> {
    library: &'a Library,
    host: &'a H,
    run_id: String,
    journal: Mutex<HashMap<String, Entry>>,
    trace: Mutex<Vec<Trace>>,
    dry_run: bool,
}

/// How one step ended.
enum Stepped {
    Ok(Value),
    Failed(String),
    Waiting(Option<i64>),
}

/// How a list of steps ended.
enum Flow {
    Next,
    Failed(String),
    Waiting(Option<i64>),
}

/// An approval's answer.
enum Gate {
    Approved(Option<String>),
    Rejected(String),
    Waiting(Option<i64>),
}

/// The names a run's templates read, with the steps done so far.
#[derive(Clone)]
struct Scope {
    root: Map<String, Value>,
}

impl Scope {
    fn context(&self) -> minijinja::Value {
        crate::template::context(&self.root)
    }

    fn table(&mut self, name: &str) -> &mut Map<String, Value> {
        let slot = self.root.entry(name.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        slot.as_object_mut().expect("made an object above")
    }

    fn set_step(&mut self, id: &str, status: &str, output: Value, error: Option<&str>) {
        let mut record = json!({ "status": status, "output": output });
        if let Some(error) = error {
            record["error"] = Value::String(error.to_owned());
        }
        self.table("steps").insert(id.to_owned(), record);
    }

    /// Takes over what `other` (a branch of this scope) added.
    fn merge(&mut self, other: Scope) {
        for table in ["steps", "vars"] {
            if let Some(Value::Object(added)) = other.root.get(table) {
                let own = self.table(table);
                for (key, value) in added {
                    own.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<'a, H: Host> Interpreter<'a, H> {
    /// An interpreter for run `run_id`, with the journal it left so far.
    pub fn new(library: &'a Library, host: &'a H, run_id: &str, journal: HashMap<String, Entry>) -> Self {
        Interpreter {
            library,
            host,
            run_id: run_id.to_owned(),
            journal: Mutex::new(journal),
            trace: Mutex::new(Vec::new()),
            dry_run: false,
        }
    }

    /// A dry run: approvals are taken as given and waits as over, and the
    /// host is expected not to act (see [`DryRun`]).
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// What the run did, in order.
    pub fn trace(&self) -> Vec<Trace> {
        self.trace.lock().expect("trace lock").clone()
    }

    /// The journal as it stands.
    pub fn journal(&self) -> HashMap<String, Entry> {
        self.journal.lock().expect("journal lock").clone()
    }

    /// Takes up a run of `playbook`, started by `trigger` (`{"kind": ..., ...}`)
    /// with `inputs`, and goes as far as it can.
    pub async fn run(
        &self,
        playbook: &Playbook,
        trigger: &Value,
        inputs: &Map<String, Value>,
    ) -> Result<Outcome, HostError> {
        let inputs = match with_defaults(playbook, inputs) {
            Ok(inputs) => inputs,
            Err(error) => return Ok(Outcome::Failed { error }),
        };
        let mut root = Map::new();
        if trigger.get("kind").and_then(Value::as_str) == Some("alert") {
            root.insert("alert".into(), trigger.get("alert").cloned().unwrap_or(Value::Null));
        }
        root.insert("trigger".into(), trigger.clone());
        root.insert("inputs".into(), Value::Object(inputs));
        root.insert("steps".into(), Value::Object(Map::new()));
        root.insert("vars".into(), Value::Object(Map::new()));
        root.insert("run".into(), json!({ "id": self.run_id, "playbook": playbook.id }));
        let mut scope = Scope { root };
        Ok(match self.block(playbook, &playbook.steps, &mut scope, String::new()).await? {
            Flow::Next => Outcome::Completed { vars: scope.root.remove("vars").unwrap_or(Value::Null) },
            Flow::Failed(error) => Outcome::Failed { error },
            Flow::Waiting(wake_ms) => Outcome::Waiting { wake_ms },
        })
    }

    fn entry(&self, path: &str) -> Option<Entry> {
        self.journal.lock().expect("journal lock").get(path).cloned()
    }

    async fn record(&self, path: &str, entry: Entry) -> Result<(), HostError> {
        self.host.record(path, &entry).await?;
        self.journal.lock().expect("journal lock").insert(path.to_owned(), entry);
        Ok(())
    }

    fn note(&self, path: &str, what: &str, detail: Value) {
        self.trace.lock().expect("trace lock").push(Trace { path: path.to_owned(), what: what.to_owned(), detail });
    }

    fn block<'s>(
        &'s self,
        playbook: &'s Playbook,
        steps: &'s [Step],
        scope: &'s mut Scope,
        prefix: String,
    ) -> BoxFuture<'s, Result<Flow, HostError>>
    where
        H: Sync,
    {
        async move {
            for step in steps {
                match self.step(playbook, step, scope, &prefix).await? {
                    Stepped::Ok(output) => scope.set_step(&step.id, "ok", output, None),
                    Stepped::Waiting(wake) => return Ok(Flow::Waiting(wake)),
                    Stepped::Failed(error) => {
                        scope.set_step(&step.id, "failed", Value::Null, Some(&error));
                        match &step.on_error {
                            OnError::Fail => return Ok(Flow::Failed(format!("step {}: {error}", step.id))),
                            OnError::Continue => self.note(&format!("{prefix}{}", step.id), "continued", json!(error)),
                            OnError::Catch(catch) => match self.block(playbook, catch, scope, prefix.clone()).await? {
                                Flow::Next => {}
                                other => return Ok(other),
                            },
                        }
                    }
                }
            }
            Ok(Flow::Next)
        }
        .boxed()
    }

    async fn step(
        &self,
        playbook: &Playbook,
        step: &Step,
        scope: &mut Scope,
        prefix: &str,
    ) -> Result<Stepped, HostError> {
        let path = format!("{prefix}{}", step.id);
        let templates = &playbook.templates;
        let context = scope.context();
        Ok(match &step.kind {
            StepKind::Action { action, inputs, changes, autonomy, undo_after, inverse } => {
                let inputs = match templates.render(inputs, &context) {
                    Ok(inputs) => inputs,
                    Err(error) => return Ok(Stepped::Failed(format!("with: {error}"))),
                };
                let call = Call {
                    run_id: self.run_id.clone(),
                    playbook: playbook.id.clone(),
                    path: path.clone(),
                    action: action.clone(),
                    inputs,
                    idempotency_key: format!("{}/{path}", self.run_id),
                    changes: *changes,
                    approved_by: None,
                };
                let undo = inverse.as_ref().map(|inverse| (inverse.clone(), *undo_after));
                let autonomy = if *changes { autonomy.unwrap_or(playbook.autonomy) } else { Autonomy::Auto };
                // The playbook's own approval message, when it has one, in this step's context.
                let asked = match &playbook.approval.message {
                    Some(message) => match templates.render(message, &context) {
                        Ok(Value::String(message)) => Some(message),
                        Ok(other) => Some(other.to_string()),
                        Err(error) => return Ok(Stepped::Failed(format!("approval message: {error}"))),
                    },
                    None => None,
                };
                self.action(playbook, step, call, autonomy, undo, asked).await?
            }
            StepKind::If { condition, then, otherwise } => {
                let taken = match templates.test(condition, &context) {
                    Ok(taken) => taken,
                    Err(error) => return Ok(Stepped::Failed(format!("if: {error}"))),
                };
                let (branch, steps) = if taken { ("then", then) } else { ("else", otherwise) };
                self.note(&path, "branch", json!(branch));
                match self.block(playbook, steps, scope, prefix.to_owned()).await? {
                    Flow::Next => Stepped::Ok(json!({ "branch": branch })),
                    Flow::Failed(error) => Stepped::Failed(error),
                    Flow::Waiting(wake) => Stepped::Waiting(wake),
                }
            }
            StepKind::Switch { value, cases, default } => {
                let value = match templates.eval(value, &context) {
                    Ok(Value::String(text)) => text,
                    Ok(Value::Null) => String::new(),
                    Ok(other) => other.to_string(),
                    Err(error) => return Ok(Stepped::Failed(format!("switch: {error}"))),
                };
                let (case, steps) = cases
                    .iter()
                    .find(|(case, _)| *case == value)
                    .map_or(("default", default), |(case, steps)| (case.as_str(), steps));
                self.note(&path, "case", json!(case));
                match self.block(playbook, steps, scope, prefix.to_owned()).await? {
                    Flow::Next => Stepped::Ok(json!({ "case": case })),
                    Flow::Failed(error) => Stepped::Failed(error),
                    Flow::Waiting(wake) => Stepped::Waiting(wake),
                }
            }
            StepKind::ForEach { items, name, body } => {
                let items = match templates.eval(items, &context) {
                    Ok(Value::Array(items)) => items,
                    Ok(Value::Null) => Vec::new(),
                    Ok(other) => return Ok(Stepped::Failed(format!("for_each: {other} is not a list"))),
                    Err(error) => return Ok(Stepped::Failed(format!("for_each: {error}"))),
                };
                if items.len() > MAX_ITEMS {
                    return Ok(Stepped::Failed(format!("for_each: {} items, more than {MAX_ITEMS}", items.len())));
                }
                let mut outputs = Vec::with_capacity(items.len());
                for (index, item) in items.into_iter().enumerate() {
                    let mut inner = scope.clone();
                    inner.root.insert(name.clone(), item);
                    inner.root.insert("steps".into(), scope.root.get("steps").cloned().unwrap_or_default());
                    match self.block(playbook, body, &mut inner, format!("{path}[{index}].")).await? {
                        Flow::Next => {}
                        Flow::Failed(error) => return Ok(Stepped::Failed(format!("item {index}: {error}"))),
                        Flow::Waiting(wake) => return Ok(Stepped::Waiting(wake)),
                    }
                    let steps = inner.table("steps");
                    let of_body: Map<String, Value> = body
                        .iter()
                        .filter_map(|step| steps.get(&step.id).map(|record| (step.id.clone(), record.clone())))
                        .collect();
                    outputs.push(Value::Object(of_body));
                }
                Stepped::Ok(Value::Array(outputs))
            }
            StepKind::Parallel { branches } => {
                let mut scopes: Vec<Scope> = branches.iter().map(|_| scope.clone()).collect();
                let flows = join_all(
                    branches
                        .iter()
                        .zip(scopes.iter_mut())
                        .map(|(branch, inner)| self.block(playbook, branch, inner, prefix.to_owned())),
                )
                .await;
                let mut failed = None;
                let mut waiting = None;
                let mut any_waiting = false;
                for flow in flows {
                    match flow? {
                        Flow::Next => {}
                        Flow::Failed(error) => failed = failed.or(Some(error)),
                        Flow::Waiting(wake) => {
                            waiting = if any_waiting { earliest(waiting, wake) } else { wake };
                            any_waiting = true;
                        }
                    }
                }
                for inner in scopes {
                    scope.merge(inner);
                }
                match (failed, any_waiting) {
                    (Some(error), _) => Stepped::Failed(error),
                    (None, true) => Stepped::Waiting(waiting),
                    (None, false) => Stepped::Ok(json!({ "branches": branches.len() })),
                }
            }
            StepKind::Approval(spec) => {
                let message = match &spec.message {
                    Some(message) => match templates.render(message, &context) {
                        Ok(Value::String(message)) => message,
                        Ok(other) => other.to_string(),
                        Err(error) => return Ok(Stepped::Failed(format!("message: {error}"))),
                    },
                    None => format!("Approve the next steps of playbook {}?", playbook.name),
                };
                match self.gate(&path, spec, message, false, Value::Null).await? {
                    Gate::Approved(by) => Stepped::Ok(json!({ "approved": true, "by": by })),
                    Gate::Rejected(why) => Stepped::Failed(why),
                    Gate::Waiting(wake) => Stepped::Waiting(wake),
                }
            }
            StepKind::Wait { duration } => {
                if self.dry_run {
                    self.note(&path, "wait", json!(duration.as_secs()));
                    return Ok(Stepped::Ok(Value::Null));
                }
                let now = self.host.now_ms();
                match self.entry(&path) {
                    Some(entry) if entry.state == State::Done => Stepped::Ok(Value::Null),
                    Some(entry) if entry.wake_ms.is_some_and(|wake| wake > now) => Stepped::Waiting(entry.wake_ms),
                    Some(_) => {
                        self.record(&path, Entry::new(State::Done)).await?;
                        Stepped::Ok(Value::Null)
                    }
                    None => {
                        let wake = now + duration.as_millis() as i64;
                        self.record(&path, Entry { wake_ms: Some(wake), ..Entry::new(State::Waiting) }).await?;
                        self.note(&path, "wait", json!(duration.as_secs()));
                        Stepped::Waiting(Some(wake))
                    }
                }
            }
            StepKind::Set { values } => {
                let mut set = Map::new();
                for (name, value) in values {
                    match templates.render(value, &context) {
                        Ok(value) => {
                            set.insert(name.clone(), value);
                        }
                        Err(error) => return Ok(Stepped::Failed(format!("set {name}: {error}"))),
                    }
                }
                let vars = scope.table("vars");
                for (name, value) in &set {
                    vars.insert(name.clone(), value.clone());
                }
                Stepped::Ok(Value::Object(set))
            }
            StepKind::Playbook { id, inputs } => {
                let Some(called) = self.library.get(id) else {
                    return Ok(Stepped::Failed(format!("playbook {id} is not loaded")));
                };
                let inputs = match templates.render(inputs, &context) {
                    Ok(Value::Object(inputs)) => inputs,
                    Ok(_) => return Ok(Stepped::Failed("with: not a map".into())),
                    Err(error) => return Ok(Stepped::Failed(format!("with: {error}"))),
                };
                let inputs = match with_defaults(called, &inputs) {
                    Ok(inputs) => inputs,
                    Err(error) => return Ok(Stepped::Failed(error)),
                };
                let mut inner = Scope { root: scope.root.clone() };
                inner.root.insert("inputs".into(), Value::Object(inputs));
                inner.root.insert("steps".into(), Value::Object(Map::new()));
                inner.root.insert("vars".into(), Value::Object(Map::new()));
                self.note(&path, "playbook", json!(id));
                match self.block(called, &called.steps, &mut inner, format!("{path}/")).await? {
                    Flow::Next => Stepped::Ok(inner.root.remove("vars").unwrap_or(Value::Null)),
                    Flow::Failed(error) => Stepped::Failed(format!("playbook {id}: {error}")),
                    Flow::Waiting(wake) => Stepped::Waiting(wake),
                }
            }
        })
    }

    /// An action (or enrichment) step: its approval when it needs one,
    /// policy's say, then attempts until one succeeds or none is left.
    async fn action(
        &self,
        playbook: &Playbook,
        step: &Step,
        mut call: Call,
        autonomy: Autonomy,
        undo: Option<(String, Option<Duration>)>,
        asked: Option<String>,
    ) -> Result<Stepped, HostError> {
        let path = call.path.clone();
        let gate_path = format!("{path}#approval");
        let mut entry = self.entry(&path);
        match &entry {
            Some(done) if done.state == State::Done => return Ok(Stepped::Ok(done.output.clone())),
            Some(failed) if failed.state == State::Failed => {
                return Ok(Stepped::Failed(failed.error.clone().unwrap_or_default()));
            }
            _ => {}
        }
        // Not yet started: approval first (when asked for, or already open), then policy.
        if entry.is_none() {
            let held = self.entry(&gate_path).is_some();
            if autonomy < Autonomy::Auto || held {
                let message = asked.clone().unwrap_or_else(|| format!("Run {} with {}?", call.action, call.inputs));
                let request = json!({ "action": call.action, "inputs": call.inputs });
                match self.gate(&gate_path, &playbook.approval, message, autonomy == Autonomy::Suggest, request).await?
                {
                    Gate::Approved(by) => call.approved_by = by,
                    Gate::Rejected(why) => return Ok(Stepped::Failed(why)),
                    Gate::Waiting(wake) => return Ok(Stepped::Waiting(wake)),
                }
            }
            if call.changes && !self.dry_run {
                match self.host.admit(&call).await {
                    Admission::Allow => {}
                    Admission::Refuse(reason) => {
                        let failed = Entry { error: Some(reason.clone()), ..Entry::new(State::Failed) };
                        self.record(&path, failed).await?;
                        return Ok(Stepped::Failed(reason));
                    }
                    Admission::Hold(reason) if call.approved_by.is_none() => {
                        let message = format!(
                            "{} ({reason})",
                            asked.unwrap_or_else(|| format!("Run {} with {}?", call.action, call.inputs))
                        );
                        let request = json!({ "action": call.action, "inputs": call.inputs, "held": reason });
                        return Ok(match self.gate(&gate_path, &playbook.approval, message, false, request).await? {
                            Gate::Rejected(why) => Stepped::Failed(why),
                            Gate::Waiting(wake) => Stepped::Waiting(wake),
                            // Approved by a person: next time it runs (as theirs).
                            Gate::Approved(Some(_)) => Stepped::Waiting(Some(self.host.now_ms())),
                            // Approved by a timeout's default: a held action needs a person.
                            Gate::Approved(None) => Stepped::Failed(format!(
                                "held ({reason}), and nobody approved it (a timeout's default does not release a hold)"
                            )),
                        });
                    }
                    Admission::Hold(_) => {}
                }
            }
        } else if let Some(gate) = self.entry(&gate_path) {
            call.approved_by = gate.output.get("by").and_then(Value::as_str).map(str::to_owned);
        }
        let mut attempts = entry.take().map_or(0, |started| started.attempts);
        loop {
            attempts += 1;
            self.record(&path, Entry { attempts, ..Entry::new(State::Started) }).await?;
            self.note(
                &path,
                if call.changes { "action" } else { "enrich" },
                json!({ "action": call.action, "inputs": call.inputs }),
            );
            let acted = match step.timeout {
                None => self.host.act(&call).await,
                Some(timeout) => {
                    let act = std::pin::pin!(self.host.act(&call));
                    let sleep = std::pin::pin!(self.host.sleep(timeout));
                    match select(act, sleep).await {
                        Either::Left((acted, _)) => acted,
                        Either::Right(_) => {
                            Err(ActError::retryable(format!("no answer in {} s", timeout.as_secs_f64())))
                        }
                    }
                }
            };
            match acted {
                Ok(output) => {
                    let now = self.host.now_ms();
                    let undo = undo.map(|(action, ttl)| Undo {
                        action,
                        inputs: call.inputs.clone(),
                        due_ms: ttl.map(|ttl| now + ttl.as_millis() as i64),
                    });
                    let done = Entry { output: output.clone(), attempts, undo, ..Entry::new(State::Done) };
                    self.record(&path, done).await?;
                    return Ok(Stepped::Ok(output));
                }
                Err(error) if error.retryable && attempts < step.retry.attempts => {
                    self.note(&path, "retry", json!(error.message));
                    self.host.sleep(step.retry.pause_before(attempts + 1)).await;
                }
                Err(error) => {
                    let message = if attempts > 1 {
                        format!("{} (after {attempts} attempts)", error.message)
                    } else {
                        error.message
                    };
                    let failed = Entry { error: Some(message.clone()), attempts, ..Entry::new(State::Failed) };
                    self.record(&path, failed).await?;
                    return Ok(Stepped::Failed(message));
                }
            }
        }
    }

    /// An approval at `path`: asked once, escalated, and decided by a person
    /// or by its default when the timeout passes. A suggestion waits for a
    /// person however long it takes.
    async fn gate(
        &self,
        path: &str,
        spec: &ApprovalSpec,
        message: String,
        suggestion: bool,
        request: Value,
    ) -> Result<Gate, HostError> {
        if self.dry_run {
            self.note(path, "approval", json!({ "approvers": spec.approvers, "message": message }));
            return Ok(Gate::Approved(None));
        }
        let now = self.host.now_ms();
        let Some(entry) = self.entry(path) else {
            let deadline = (!suggestion).then(|| now + spec.timeout.as_millis() as i64);
            let escalate =
                if suggestion { None } else { spec.escalate_after.map(|after| now + after.as_millis() as i64) };
            let asked = json!({
                "message": message,
                "approvers": spec.approvers,
                "escalate_to": spec.escalate_to,
                "four_eyes": spec.four_eyes,
                "suggestion": suggestion,
                "deadline_ms": deadline,
                "escalate_ms": escalate,
                "escalated": false,
                "default": if spec.default_approve { "approve" } else { "reject" },
                "request": request,
            });
            let wake = earliest(escalate, deadline);
            self.record(path, Entry { output: asked, wake_ms: wake, ..Entry::new(State::Waiting) }).await?;
            self.note(path, "approval", json!({ "approvers": spec.approvers, "message": message }));
            return Ok(Gate::Waiting(wake));
        };
        if entry.state == State::Done {
            let by = entry.output.get("by").and_then(Value::as_str).map(str::to_owned);
            return Ok(if entry.output.get("approved").and_then(Value::as_bool) == Some(true) {
                Gate::Approved(by)
            } else {
                let reason = entry.output.get("reason").and_then(Value::as_str).unwrap_or("rejected");
                Gate::Rejected(match by {
                    Some(by) => format!("not approved: {reason} by {by}"),
                    None => format!("not approved: {reason}"),
                })
            });
        }
        let asked = &entry.output;
        let deadline = asked.get("deadline_ms").and_then(Value::as_i64);
        let escalate = asked.get("escalate_ms").and_then(Value::as_i64);
        let escalated = asked.get("escalated").and_then(Value::as_bool).unwrap_or(false);
        if deadline.is_some_and(|deadline| now >= deadline) {
            let approve = asked.get("default").and_then(Value::as_str) == Some("approve");
            let decided = json!({ "approved": approve, "by": null, "reason": "timed out", "decided_ms": now });
            self.record(path, Entry { output: decided, ..Entry::new(State::Done) }).await?;
            self.note(path, "approval timed out", json!(if approve { "approve" } else { "reject" }));
            return Ok(if approve {
                Gate::Approved(None)
            } else {
                Gate::Rejected("not approved: timed out, and the default is to reject".into())
            });
        }
        if !escalated && escalate.is_some_and(|escalate| now >= escalate) {
            let mut asked = asked.clone();
            asked["escalated"] = Value::Bool(true);
            self.record(path, Entry { output: asked, wake_ms: deadline, ..Entry::new(State::Waiting) }).await?;
            self.note(path, "escalated", json!(spec.escalate_to));
            return Ok(Gate::Waiting(deadline));
        }
        Ok(Gate::Waiting(if escalated { deadline } else { earliest(escalate, deadline) }))
    }
}

/// `given` inputs with the playbook's defaults, or which required one is missing.
fn with_defaults(playbook: &Playbook, given: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut inputs = given.clone();
    for input in &playbook.inputs {
        if inputs.contains_key(&input.name) {
            continue;
        }
        match &input.default {
            Some(default) => {
                inputs.insert(input.name.clone(), default.clone());
            }
            None if input.required => return Err(format!("input {} is required", input.name)),
            None => {
                inputs.insert(input.name.clone(), Value::Null);
            }
        }
    }
    Ok(inputs)
}

/// A host for dry runs and replay tests: acts on nothing, answers each
/// action with the output recorded for its step (or `null`), and keeps the
/// journal in memory.
#[derive(Default)]
pub struct DryRun {
    /// Outputs by step id (the last part of the path).
    pub outputs: HashMap<String, Value>,
    pub now_ms: i64,
}

impl Host for DryRun {
    fn now_ms(&self) -> i64 {
        self.now_ms
    }

    fn sleep(&self, _: Duration) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    fn act(&self, call: &Call) -> impl Future<Output = Result<Value, ActError>> + Send {
        let id = call.path.rsplit(['.', '/']).next().unwrap_or(&call.path);
        std::future::ready(Ok(self.outputs.get(id).cloned().unwrap_or(Value::Null)))
    }

    fn admit(&self, _: &Call) -> impl Future<Output = Admission> + Send {
        std::future::ready(Admission::Allow)
    }

    fn record(&self, _: &str, _: &Entry) -> impl Future<Output = Result<(), HostError>> + Send {
        std::future::ready(Ok(()))
    }
}

/// The trigger JSON for an alert.
pub fn alert_trigger(alert: Value) -> Value {
    json!({ "kind": "alert", "alert": alert })
}

/// The trigger JSON for a manual run.
pub fn manual_trigger(by: &str) -> Value {
    json!({ "kind": "manual", "by": by })
}
