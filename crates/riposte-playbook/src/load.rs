//! Reading playbooks: YAML to a checked [`Playbook`], every problem found
//! at once and named with its file and line. A playbook that loads has
//! known actions with the inputs they take, templates that compile and read
//! only variables that exist where they are read, and no sub-playbook cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::catalog::Catalog;
use crate::model::{ApprovalSpec, Autonomy, Input, OnError, Playbook, Retry, Step, StepKind, parse_duration};
use crate::template::{Templates, Tmpl};
use crate::trigger::{AlertFilter, Cron, Trigger};

/// Why a playbook (or part of one) was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct LoadError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The step the problem is in.
    pub step: Option<String>,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(step) = &self.step {
            write!(f, ": step {step}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Variables every template may read.
const ROOTS: [&str; 6] = ["trigger", "alert", "inputs", "steps", "vars", "run"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    id: Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    autonomy: Option<Spanned<String>>,
    #[serde(default)]
    concurrency: Option<Spanned<u32>>,
    #[serde(default)]
    triggers: Vec<Spanned<RawTrigger>>,
    #[serde(default)]
    inputs: Vec<Spanned<RawInput>>,
    #[serde(default)]
    approval: Option<Spanned<RawApproval>>,
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(default)]
    alert: Option<RawAlertFilter>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    manual: Option<serde_json::Value>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertFilter {
    #[serde(default)]
    min_level: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    techniques: Vec<String>,
    #[serde(default)]
    when: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    required: Option<bool>,
    #[serde(default)]
    default: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    approvers: Vec<String>,
    #[serde(default)]
    escalate_to: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    escalate_after: Option<String>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    four_eyes: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    attempts: u32,
    #[serde(default)]
    backoff: Option<String>,
    #[serde(default)]
    max_backoff: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    enrich: Option<String>,
    #[serde(default, rename = "with")]
    inputs: Option<serde_json::Value>,
    #[serde(default)]
    autonomy: Option<String>,
    #[serde(default)]
    undo_after: Option<String>,
    #[serde(default, rename = "if")]
    condition: Option<String>,
    #[serde(default)]
    then: Option<Vec<Spanned<RawStep>>>,
    #[serde(default, rename = "else")]
    otherwise: Option<Vec<Spanned<RawStep>>>,
    #[serde(default)]
    switch: Option<String>,
    #[serde(default)]
    cases: Option<BTreeMap<String, Vec<Spanned<RawStep>>>>,
    #[serde(default)]
    default: Option<Vec<Spanned<RawStep>>>,
    #[serde(default)]
    for_each: Option<String>,
    #[serde(default, rename = "as")]
    item: Option<String>,
    #[serde(default, rename = "do")]
    body: Option<Vec<Spanned<RawStep>>>,
    #[serde(default)]
    parallel: Option<Vec<Vec<Spanned<RawStep>>>>,
    #[serde(default)]
    approval: Option<RawApproval>,
    #[serde(default)]
    wait: Option<String>,
    #[serde(default)]
    set: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    playbook: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    on_error: Option<String>,
    #[serde(default)]
    catch: Option<Vec<Spanned<RawStep>>>,
}

/// What a template may read at one point of a playbook.
#[derive(Clone, Default)]
struct Known {
    steps: BTreeSet<String>,
    vars: BTreeSet<String>,
    /// Loop items in scope.
    items: BTreeSet<String>,
}

/// Reads and checks one playbook against `catalog`. Sub-playbook references
/// are checked by [`Library::load`], which sees them all.
pub fn load(file: &str, text: &str, catalog: &Catalog) -> Result<Playbook, Vec<LoadError>> {
    let raw: RawPlaybook = serde_saphyr::from_str(text).map_err(|error| {
        vec![LoadError {
            file: file.to_owned(),
            line: error.location().map(|location| location.line() as usize),
            step: None,
            reason: yaml_reason(&error),
        }]
    })?;
    let mut loader = Loader {
        file,
        catalog,
        templates: Templates::default(),
        errors: Vec::new(),
        ids: BTreeMap::new(),
        all_ids: all_ids(&raw.steps),
        inputs: raw.inputs.iter().map(|input| input.value.name.clone()).collect(),
        has_alert: raw.triggers.iter().any(|trigger| trigger.value.alert.is_some()),
    };
    let id = raw.id.value.clone();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        loader.error(line(&raw.id), None, format!("id {id:?} must be letters, digits, '-', '_' or '.'"));
    }
    let autonomy = match &raw.autonomy {
        None => Autonomy::Approve,
        Some(text) => Autonomy::parse(&text.value).unwrap_or_else(|| {
            loader.error(line(text), None, format!("autonomy {:?} is not suggest, approve or auto", text.value));
            Autonomy::Suggest
        }),
    };
    let concurrency = match &raw.concurrency {
        None => 10,
        Some(value) if value.value == 0 => {
            loader.error(line(value), None, "concurrency must be at least 1".into());
            1
        }
        Some(value) => value.value,
    };
    let triggers = raw.triggers.iter().filter_map(|trigger| loader.trigger(trigger)).collect();
    let inputs = raw
        .inputs
        .iter()
        .map(|input| Input {
            name: input.value.name.clone(),
            description: input.value.description.clone().unwrap_or_default(),
            required: input.value.required.unwrap_or(input.value.default.is_none()),
            default: input.value.default.clone(),
        })
        .collect();
    let approval = match &raw.approval {
        Some(approval) => loader.approval(&approval.value, line(approval), None, &Known::default()),
        None => ApprovalSpec::default(),
    };
    if raw.steps.is_empty() {
        loader.error(None, None, "a playbook needs at least one step".into());
    }
    let mut known = Known::default();
    let steps = loader.steps(&raw.steps, &mut known);
    if !loader.errors.is_empty() {
        return Err(loader.errors);
    }
    Ok(Playbook {
        id,
        name: raw.name.unwrap_or_else(|| raw.id.value.clone()),
        description: raw.description.unwrap_or_default(),
        file: file.to_owned(),
        autonomy,
        concurrency,
        triggers,
        inputs,
        approval,
        steps,
        templates: loader.templates,
    })
}

fn line<T>(spanned: &Spanned<T>) -> Option<usize> {
    let line = spanned.referenced.line() as usize;
    (line > 0).then_some(line)
}

/// The parser's message without the location it also gives separately.
fn yaml_reason(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    first.split_once(" at line ").map_or(first, |(message, _)| message).to_owned()
}

struct Loader<'a> {
    file: &'a str,
    catalog: &'a Catalog,
    templates: Templates,
    errors: Vec<LoadError>,
    /// Step ids seen, with their lines.
    ids: BTreeMap<String, Option<usize>>,
    /// Every step id in the playbook, to tell "later" from "nowhere".
    all_ids: BTreeSet<String>,
    inputs: BTreeSet<String>,
    has_alert: bool,
}

impl Loader<'_> {
    fn error(&mut self, line: Option<usize>, step: Option<&str>, reason: String) {
        self.errors.push(LoadError { file: self.file.to_owned(), line, step: step.map(str::to_owned), reason });
    }

    fn trigger(&mut self, trigger: &Spanned<RawTrigger>) -> Option<Trigger> {
        let at = line(trigger);
        let raw = &trigger.value;
        let given = [raw.alert.is_some(), raw.schedule.is_some(), raw.webhook.is_some(), raw.manual.is_some()];
        if given.iter().filter(|given| **given).count() != 1 {
            self.error(at, None, "a trigger is one of alert, schedule, webhook or manual".into());
            return None;
        }
        if let Some(filter) = &raw.alert {
            if let Some(level) = &filter.min_level
                && !AlertFilter::level_known(level)
            {
                self.error(at, None, format!("min_level {level:?} is not a Sigma level"));
            }
            let when = filter.when.as_deref().and_then(|when| match self.templates.expression(when) {
                Ok((expr, names)) => {
                    let unknown: Vec<&String> = names
                        .iter()
                        .filter(|name| root(name) != "alert" && !self.templates.is_global(root(name)))
                        .collect();
                    for name in unknown {
                        self.error(
                            at,
                            None,
                            format!("alert filter: `{name}` is not defined (the filter reads `alert`)"),
                        );
                    }
                    Some(expr)
                }
                Err(reason) => {
                    self.error(at, None, format!("alert filter `when`: {reason}"));
                    None
                }
            });
            return Some(Trigger::Alert(AlertFilter {
                min_level: filter.min_level.clone(),
                rules: filter.rules.clone(),
                techniques: filter.techniques.clone(),
                when,
            }));
        }
        if let Some(schedule) = &raw.schedule {
            return match Cron::parse(schedule) {
                Ok(cron) => Some(Trigger::Schedule(cron)),
                Err(reason) => {
                    self.error(at, None, reason);
                    None
                }
            };
        }
        if let Some(name) = &raw.webhook {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
                self.error(at, None, format!("webhook name {name:?} must be letters, digits, '-' or '_'"));
            }
            return Some(Trigger::Webhook { name: name.clone() });
        }
        Some(Trigger::Manual)
    }

    fn duration(
        &mut self,
        text: &str,
        what: &str,
        at: Option<usize>,
        step: Option<&str>,
    ) -> Option<std::time::Duration> {
        let parsed = parse_duration(text);
        if parsed.is_none() {
            self.error(at, step, format!("{what} {text:?} is not a duration (30s, 5m, 2h, 1d)"));
        }
        parsed
    }

    fn approval(&mut self, raw: &RawApproval, at: Option<usize>, step: Option<&str>, known: &Known) -> ApprovalSpec {
        let mut spec = ApprovalSpec {
            approvers: raw.approvers.clone(),
            escalate_to: raw.escalate_to.clone(),
            four_eyes: raw.four_eyes.unwrap_or(false),
            ..ApprovalSpec::default()
        };
        if let Some(message) = &raw.message {
            spec.message = self.template(&serde_json::Value::String(message.clone()), "message", at, step, known);
        }
        if let Some(timeout) = &raw.timeout {
            spec.timeout = self.duration(timeout, "timeout", at, step).unwrap_or(spec.timeout);
        }
        if let Some(after) = &raw.escalate_after {
            spec.escalate_after = self.duration(after, "escalate_after", at, step);
            if spec.escalate_to.is_empty() {
                self.error(at, step, "escalate_after needs escalate_to (who is asked next)".into());
            }
        }
        match raw.default.as_deref() {
            None | Some("reject") => {}
            Some("approve") => spec.default_approve = true,
            Some(other) => self.error(at, step, format!("approval default {other:?} is not approve or reject")),
        }
        spec
    }

    /// Compiles `value`'s templates and checks what they read against `known`.
    fn template(
        &mut self,
        value: &serde_json::Value,
        what: &str,
        at: Option<usize>,
        step: Option<&str>,
        known: &Known,
    ) -> Option<Tmpl> {
        let mut names = BTreeSet::new();
        match self.templates.compile(value, &mut names) {
            Ok(compiled) => {
                self.check_names(&names, what, at, step, known);
                Some(compiled)
            }
            Err(reason) => {
                self.error(at, step, format!("{what}: {reason}"));
                None
            }
        }
    }

    fn expression(
        &mut self,
        source: &str,
        what: &str,
        at: Option<usize>,
        step: Option<&str>,
        known: &Known,
    ) -> Option<crate::template::Expr> {
        match self.templates.expression(source) {
            Ok((expr, names)) => {
                self.check_names(&names, what, at, step, known);
                Some(expr)
            }
            Err(reason) => {
                self.error(at, step, format!("{what}: {reason}"));
                None
            }
        }
    }

    fn check_names(
        &mut self,
        names: &BTreeSet<String>,
        what: &str,
        at: Option<usize>,
        step: Option<&str>,
        known: &Known,
    ) {
        for name in names {
            let mut parts = name.split('.');
            let first = parts.next().unwrap_or_default();
            let second = parts.next();
            let problem = match (first, second) {
                ("steps", Some(id)) if !known.steps.contains(id) => Some(if self.all_ids.contains(id) {
                    format!("`{name}`: step {id} has not run at this point")
                } else {
                    format!("`{name}`: there is no step {id}")
                }),
                ("inputs", Some(input)) if !self.inputs.contains(input) => {
                    Some(format!("`{name}`: the playbook declares no input {input}"))
                }
                ("vars", Some(var)) if !known.vars.contains(var) => {
                    Some(format!("`{name}`: no `set` step sets {var} before this point"))
                }
                ("alert", _) if !self.has_alert => Some(format!("`{name}`: the playbook has no alert trigger")),
                (root, _) if ROOTS.contains(&root) || known.items.contains(root) || self.templates.is_global(root) => {
                    None
                }
                _ => Some(format!("`{name}` is not defined (templates read {})", ROOTS.join(", "))),
            };
            if let Some(problem) = problem {
                self.error(at, step, format!("{what}: {problem}"));
            }
        }
    }

    fn steps(&mut self, raw: &[Spanned<RawStep>], known: &mut Known) -> Vec<Step> {
        raw.iter().filter_map(|step| self.step(step, known)).collect()
    }

    /// Checks the steps of a branch in a copy of `known`; returns them and the copy.
    fn branch(&mut self, raw: &[Spanned<RawStep>], known: &Known) -> (Vec<Step>, Known) {
        let mut inner = known.clone();
        let steps = self.steps(raw, &mut inner);
        (steps, inner)
    }

    fn step(&mut self, spanned: &Spanned<RawStep>, known: &mut Known) -> Option<Step> {
        let at = line(spanned);
        let raw = &spanned.value;
        let id = raw.id.as_str();
        let step = Some(id);
        let _ = &raw.name;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.error(at, step, "a step id is letters, digits and '_' (templates read it as steps.ID)".into());
        }
        if let Some(first) = self.ids.insert(id.to_owned(), at) {
            let first = first.map_or_else(String::new, |line| format!(" (first on line {line})"));
            self.error(at, step, format!("step id {id} is used twice{first}"));
        }
        let kinds = [
            ("action", raw.action.is_some()),
            ("enrich", raw.enrich.is_some()),
            ("if", raw.condition.is_some()),
            ("switch", raw.switch.is_some()),
            ("for_each", raw.for_each.is_some()),
            ("parallel", raw.parallel.is_some()),
            ("approval", raw.approval.is_some()),
            ("wait", raw.wait.is_some()),
            ("set", raw.set.is_some()),
            ("playbook", raw.playbook.is_some()),
        ];
        let given: Vec<&str> = kinds.iter().filter(|(_, given)| *given).map(|(kind, _)| *kind).collect();
        let kind_name = match given[..] {
            [kind] => kind,
            [] => {
                let all: Vec<&str> = kinds.iter().map(|(kind, _)| *kind).collect();
                self.error(at, step, format!("a step needs one of {}", all.join(", ")));
                return None;
            }
            _ => {
                self.error(at, step, format!("a step is one kind, not {}", given.join(" and ")));
                return None;
            }
        };
        // Fields that belong to another kind of step are mistakes, not extras.
        let belongs = [
            ("with", raw.inputs.is_some(), &["action", "enrich", "playbook"][..]),
            ("autonomy", raw.autonomy.is_some(), &["action"][..]),
            ("undo_after", raw.undo_after.is_some(), &["action"][..]),
            ("then", raw.then.is_some(), &["if"][..]),
            ("else", raw.otherwise.is_some(), &["if"][..]),
            ("cases", raw.cases.is_some(), &["switch"][..]),
            ("default", raw.default.is_some(), &["switch"][..]),
            ("as", raw.item.is_some(), &["for_each"][..]),
            ("do", raw.body.is_some(), &["for_each"][..]),
            ("timeout", raw.timeout.is_some(), &["action", "enrich"][..]),
            ("retry", raw.retry.is_some(), &["action", "enrich"][..]),
        ];
        for (field, given, kinds) in belongs {
            if given && !kinds.contains(&kind_name) {
                self.error(at, step, format!("`{field}` belongs to {} steps, not {kind_name}", kinds.join(" or ")));
            }
        }

        let kind = match kind_name {
            "action" | "enrich" => {
                let name = raw.action.as_ref().or(raw.enrich.as_ref()).expect("one of them is given");
                self.action(raw, name, kind_name == "enrich", at, known)?
            }
            "if" => {
                let condition = self.expression(raw.condition.as_deref()?, "if", at, step, known);
                let Some(then) = &raw.then else {
                    self.error(at, step, "an `if` step needs `then`".into());
                    return None;
                };
                let (then, after_then) = self.branch(then, known);
                let (otherwise, after_else) = self.branch(raw.otherwise.as_deref().unwrap_or_default(), known);
                known.steps.extend(after_then.steps.into_iter().chain(after_else.steps));
                known.vars.extend(after_then.vars.into_iter().chain(after_else.vars));
                StepKind::If { condition: condition?, then, otherwise }
            }
            "switch" => {
                let value = self.expression(raw.switch.as_deref()?, "switch", at, step, known);
                let Some(cases) = &raw.cases else {
                    self.error(at, step, "a `switch` step needs `cases`".into());
                    return None;
                };
                let mut after = Vec::new();
                let mut checked = Vec::new();
                for (case, steps) in cases {
                    let (steps, inner) = self.branch(steps, known);
                    checked.push((case.clone(), steps));
                    after.push(inner);
                }
                let (default, inner) = self.branch(raw.default.as_deref().unwrap_or_default(), known);
                after.push(inner);
                for inner in after {
                    known.steps.extend(inner.steps);
                    known.vars.extend(inner.vars);
                }
                StepKind::Switch { value: value?, cases: checked, default }
            }
            "for_each" => {
                let items = self.expression(raw.for_each.as_deref()?, "for_each", at, step, known);
                let name = raw.item.clone().unwrap_or_else(|| "item".to_owned());
                if ROOTS.contains(&name.as_str()) {
                    self.error(at, step, format!("`as: {name}` would hide the playbook's own {name}"));
                }
                let Some(body) = &raw.body else {
                    self.error(at, step, "a `for_each` step needs `do`".into());
                    return None;
                };
                let mut inner = known.clone();
                inner.items.insert(name.clone());
                let body = self.steps(body, &mut inner);
                // What the body sets is the loop's; outside, the loop's output holds it.
                StepKind::ForEach { items: items?, name, body }
            }
            "parallel" => {
                let raw_branches = raw.parallel.as_ref()?;
                if raw_branches.len() < 2 {
                    self.error(at, step, "`parallel` needs at least two branches (lists of steps)".into());
                }
                let mut branches = Vec::new();
                let mut after = Vec::new();
                for branch in raw_branches {
                    // Branches run at once: none reads another's steps.
                    let (steps, inner) = self.branch(branch, known);
                    branches.push(steps);
                    after.push(inner);
                }
                for inner in after {
                    known.steps.extend(inner.steps);
                    known.vars.extend(inner.vars);
                }
                StepKind::Parallel { branches }
            }
            "approval" => StepKind::Approval(self.approval(raw.approval.as_ref()?, at, step, known)),
            "wait" => StepKind::Wait { duration: self.duration(raw.wait.as_deref()?, "wait", at, step)? },
            "set" => {
                let mut values = Vec::new();
                for (name, value) in raw.set.as_ref()? {
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        self.error(at, step, format!("variable name {name:?} is letters, digits and '_'"));
                    }
                    if let Some(value) = self.template(value, &format!("set {name}"), at, step, known) {
                        values.push((name.clone(), value));
                    }
                }
                known.vars.extend(values.iter().map(|(name, _)| name.clone()));
                StepKind::Set { values }
            }
            "playbook" => {
                let inputs = raw.inputs.clone().unwrap_or_else(|| serde_json::json!({}));
                if !inputs.is_object() {
                    self.error(at, step, "`with` is a map of input names to values".into());
                }
                let inputs = self.template(&inputs, "with", at, step, known)?;
                StepKind::Playbook { id: raw.playbook.clone()?, inputs }
            }
            _ => unreachable!("every kind is handled"),
        };

        let timeout = raw.timeout.as_deref().and_then(|timeout| self.duration(timeout, "timeout", at, step));
        let retry = match &raw.retry {
            None => Retry::default(),
            Some(retry) => {
                if !(1..=20).contains(&retry.attempts) {
                    self.error(at, step, format!("retry attempts {} is not 1 to 20", retry.attempts));
                }
                let default = Retry::default();
                Retry {
                    attempts: retry.attempts.clamp(1, 20),
                    backoff: retry
                        .backoff
                        .as_deref()
                        .and_then(|backoff| self.duration(backoff, "backoff", at, step))
                        .unwrap_or(default.backoff),
                    max_backoff: retry
                        .max_backoff
                        .as_deref()
                        .and_then(|max| self.duration(max, "max_backoff", at, step))
                        .unwrap_or(default.max_backoff),
                }
            }
        };
        let on_error = match (raw.on_error.as_deref(), &raw.catch) {
            (None | Some("fail"), None) => OnError::Fail,
            (Some("continue"), None) => OnError::Continue,
            (None, Some(catch)) => {
                // The failed step's `error` is readable in its catch steps.
                let mut inner = known.clone();
                inner.steps.insert(id.to_owned());
                let steps = self.steps(catch, &mut inner);
                known.steps.extend(inner.steps);
                known.vars.extend(inner.vars);
                OnError::Catch(steps)
            }
            (Some(other), None) => {
                self.error(at, step, format!("on_error {other:?} is not fail or continue (or give `catch` steps)"));
                OnError::Fail
            }
            (Some(_), Some(_)) => {
                self.error(at, step, "give either on_error or catch, not both".into());
                OnError::Fail
            }
        };
        known.steps.insert(id.to_owned());
        Some(Step { id: id.to_owned(), line: at.unwrap_or(0), kind, timeout, retry, on_error })
    }

    fn action(
        &mut self,
        raw: &RawStep,
        name: &str,
        enrich: bool,
        at: Option<usize>,
        known: &Known,
    ) -> Option<StepKind> {
        let step = Some(raw.id.as_str());
        let Some(spec) = self.catalog.get(name) else {
            let hint = self.catalog.nearest(name).map_or_else(String::new, |near| format!(" (did you mean {near}?)"));
            self.error(at, step, format!("unknown action {name}{hint}"));
            return None;
        };
        let spec = spec.clone();
        if enrich && spec.changes {
            self.error(at, step, format!("{name} changes things: use `action:`, not `enrich:`"));
        }
        let inputs = raw.inputs.clone().unwrap_or_else(|| serde_json::json!({}));
        let Some(map) = inputs.as_object() else {
            self.error(at, step, "`with` is a map of input names to values".into());
            return None;
        };
        for given in map.keys() {
            if !spec.inputs.iter().any(|input| &input.name == given) {
                let takes: Vec<&str> = spec.inputs.iter().map(|input| input.name.as_str()).collect();
                self.error(at, step, format!("{name} takes no input {given} (it takes {})", takes.join(", ")));
            }
        }
        for input in &spec.inputs {
            match map.get(&input.name) {
                None if input.required => self.error(at, step, format!("{name} needs input {}", input.name)),
                Some(value) if !is_template(value) && !input.kind.admits(value) => self.error(
                    at,
                    step,
                    format!(
                        "{name} input {} is a {}",
                        input.name,
                        serde_json::to_string(&input.kind).unwrap_or_default()
                    ),
                ),
                _ => {}
            }
        }
        let autonomy = raw.autonomy.as_deref().and_then(|text| {
            let parsed = Autonomy::parse(text);
            if parsed.is_none() {
                self.error(at, step, format!("autonomy {text:?} is not suggest, approve or auto"));
            }
            parsed
        });
        let undo_after = raw.undo_after.as_deref().and_then(|ttl| self.duration(ttl, "undo_after", at, step));
        if undo_after.is_some() && spec.inverse.is_none() {
            self.error(at, step, format!("{name} cannot be undone, so it has no undo_after"));
        }
        let inputs = self.template(&inputs, "with", at, step, known)?;
        Some(StepKind::Action {
            action: name.to_owned(),
            inputs,
            changes: spec.changes,
            autonomy,
            undo_after,
            inverse: spec.inverse.clone(),
        })
    }
}

fn all_ids(steps: &[Spanned<RawStep>]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut stack: Vec<&RawStep> = steps.iter().map(|step| &step.value).collect();
    while let Some(step) = stack.pop() {
        ids.insert(step.id.clone());
        let nested = [&step.then, &step.otherwise, &step.default, &step.body, &step.catch];
        stack.extend(nested.into_iter().flatten().flatten().map(|step| &step.value));
        stack.extend(step.cases.iter().flat_map(|cases| cases.values()).flatten().map(|step| &step.value));
        stack.extend(step.parallel.iter().flatten().flatten().map(|step| &step.value));
    }
    ids
}

fn root(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

fn is_template(value: &serde_json::Value) -> bool {
    value.as_str().is_some_and(|text| text.contains("{{") || text.contains("{%"))
}

/// A set of playbooks that may run each other.
#[derive(Debug, Default)]
pub struct Library {
    playbooks: BTreeMap<String, Arc<Playbook>>,
}

impl Library {
    /// Loads `sources` (file name, text): playbooks with errors, or that run
    /// a playbook that is missing, failed, or leads back to them, are left
    /// out and their errors returned.
    pub fn load<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        catalog: &Catalog,
    ) -> (Library, Vec<LoadError>) {
        let mut errors = Vec::new();
        let mut loaded: BTreeMap<String, Playbook> = BTreeMap::new();
        for (file, text) in sources {
            match load(file, text, catalog) {
                Ok(playbook) => {
                    if let Some(other) = loaded.get(&playbook.id) {
                        errors.push(LoadError {
                            file: file.to_owned(),
                            line: None,
                            step: None,
                            reason: format!("playbook id {} is also the id of {}", playbook.id, other.file),
                        });
                        continue;
                    }
                    loaded.insert(playbook.id.clone(), playbook);
                }
                Err(found) => errors.extend(found),
            }
        }
        // Leave out, until nothing changes, every playbook that runs one that
        // is not there, and every cycle.
        loop {
            let mut broken = Vec::new();
            for playbook in loaded.values() {
                for step in playbook.walk() {
                    if let StepKind::Playbook { id, .. } = &step.kind
                        && !loaded.contains_key(id)
                    {
                        broken.push((playbook.id.clone(), step.line, step.id.clone(), id.clone()));
                    }
                }
            }
            for (playbook, line, step, missing) in &broken {
                if let Some(playbook) = loaded.remove(playbook) {
                    errors.push(LoadError {
                        file: playbook.file.clone(),
                        line: Some(*line),
                        step: Some(step.clone()),
                        reason: format!("runs playbook {missing}, which is not loaded"),
                    });
                }
            }
            let cycles = cycles(&loaded);
            for cycle in &cycles {
                let Some(first) = loaded.get(&cycle[0]) else { continue };
                let step =
                    first.walk().find(|step| matches!(&step.kind, StepKind::Playbook { id, .. } if *id == cycle[1]));
                errors.push(LoadError {
                    file: first.file.clone(),
                    line: step.map(|step| step.line),
                    step: step.map(|step| step.id.clone()),
                    reason: format!("playbooks run each other in a cycle: {}", cycle.join(" → ")),
                });
                for id in cycle {
                    loaded.remove(id);
                }
            }
            if broken.is_empty() && cycles.is_empty() {
                break;
            }
        }
        let playbooks = loaded.into_iter().map(|(id, playbook)| (id, Arc::new(playbook))).collect();
        (Library { playbooks }, errors)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Playbook>> {
        self.playbooks.get(id)
    }

    pub fn playbooks(&self) -> impl Iterator<Item = &Arc<Playbook>> {
        self.playbooks.values()
    }

    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }
}

/// Each cycle of sub-playbook calls, as the ids along it, first repeated at the end.
fn cycles(playbooks: &BTreeMap<String, Playbook>) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in playbooks.keys() {
        let mut path: Vec<&str> = Vec::new();
        visit(start, playbooks, &mut path, &mut done, &mut found);
    }
    found
}

fn visit<'a>(
    id: &'a str,
    playbooks: &'a BTreeMap<String, Playbook>,
    path: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
    found: &mut Vec<Vec<String>>,
) {
    if let Some(position) = path.iter().position(|on_path| *on_path == id) {
        let mut cycle: Vec<String> = path[position..].iter().map(|id| (*id).to_owned()).collect();
        cycle.push(id.to_owned());
        found.push(cycle);
        return;
    }
    if done.contains(id) {
        return;
    }
    let Some(playbook) = playbooks.get(id) else { return };
    path.push(id);
    for callee in playbook.calls() {
        visit(callee, playbooks, path, done, found);
    }
    path.pop();
    done.insert(id);
}
