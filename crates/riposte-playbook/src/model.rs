//! A playbook as the runner sees it: checked, with every template compiled.

use std::time::Duration;

use serde::Serialize;

use crate::template::{Expr, Templates, Tmpl};
use crate::trigger::Trigger;

/// How far a playbook (or one of its actions) may go on its own.
/// Ordered from least to most: the effective level of an action is the
/// lowest of the playbook's, the step's and what policy allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Autonomy {
    /// The action is proposed; it runs only when a person says so, however long that takes.
    Suggest,
    /// The action runs after an approval, which times out to its default.
    Approve,
    /// The action runs at once.
    Auto,
}

impl Autonomy {
    pub fn parse(text: &str) -> Option<Autonomy> {
        match text {
            "suggest" => Some(Autonomy::Suggest),
            "approve" => Some(Autonomy::Approve),
            "auto" => Some(Autonomy::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Autonomy::Suggest => "suggest",
            Autonomy::Approve => "approve",
            Autonomy::Auto => "auto",
        }
    }
}

/// A checked playbook.
#[derive(Debug)]
pub struct Playbook {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Where it was read from, as the caller named it.
    pub file: String,
    pub autonomy: Autonomy,
    /// Runs of this playbook at once; more wait their turn.
    pub concurrency: u32,
    pub triggers: Vec<Trigger>,
    pub inputs: Vec<Input>,
    /// Who approves, and how long they have, when an action needs approval
    /// and its step does not say.
    pub approval: ApprovalSpec,
    pub steps: Vec<Step>,
    pub(crate) templates: Templates,
}

/// An input a run is started with (manual runs, sub-playbooks).
#[derive(Clone, Debug, Serialize)]
pub struct Input {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub default: Option<serde_json::Value>,
}

/// One step, where it is written, and how its failures are handled.
#[derive(Debug)]
pub struct Step {
    pub id: String,
    /// 1-based line of the step in its file.
    pub line: usize,
    pub kind: StepKind,
    /// Longest one attempt may take (actions, sub-playbooks).
    pub timeout: Option<Duration>,
    pub retry: Retry,
    pub on_error: OnError,
}

#[derive(Debug)]
pub enum StepKind {
    /// A connector's action. `changes` is false for an enrichment: it reads
    /// and changes nothing, so it never waits for a person.
    Action {
        action: String,
        inputs: Tmpl,
        changes: bool,
        autonomy: Option<Autonomy>,
        /// Run the action's inverse this long after it succeeded.
        undo_after: Option<Duration>,
        /// The inverse action, when the connector declares one.
        inverse: Option<String>,
    },
    If {
        condition: Expr,
        then: Vec<Step>,
        otherwise: Vec<Step>,
    },
    Switch {
        value: Expr,
        cases: Vec<(String, Vec<Step>)>,
        default: Vec<Step>,
    },
    ForEach {
        items: Expr,
        /// The name each item has inside the body.
        name: String,
        body: Vec<Step>,
    },
    Parallel {
        branches: Vec<Vec<Step>>,
    },
    Approval(ApprovalSpec),
    Wait {
        duration: Duration,
    },
    Set {
        values: Vec<(String, Tmpl)>,
    },
    Playbook {
        id: String,
        inputs: Tmpl,
    },
}

/// Who decides, by when, and what happens when nobody does.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApprovalSpec {
    /// What the approvers read (a template).
    #[serde(skip)]
    pub message: Option<Tmpl>,
    pub approvers: Vec<String>,
    /// The second group asked when the first has not answered in `escalate_after`.
    pub escalate_to: Vec<String>,
    #[serde(with = "duration_seconds")]
    pub timeout: Duration,
    #[serde(with = "option_duration_seconds")]
    pub escalate_after: Option<Duration>,
    /// The decision taken when the timeout passes.
    pub default_approve: bool,
    /// The person who started the run may not approve it.
    pub four_eyes: bool,
}

impl Default for ApprovalSpec {
    fn default() -> Self {
        ApprovalSpec {
            message: None,
            approvers: Vec::new(),
            escalate_to: Vec::new(),
            timeout: Duration::from_secs(4 * 3600),
            escalate_after: None,
            default_approve: false,
            four_eyes: false,
        }
    }
}

/// Attempts of a failing step, with exponential backoff between them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 1, backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(60) }
    }
}

impl Retry {
    /// The pause before attempt `next` (2, 3, ...).
    pub fn pause_before(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        self.backoff.saturating_mul(1 << doublings).min(self.max_backoff)
    }
}

/// What a failed step leads to.
#[derive(Debug, Default)]
pub enum OnError {
    /// The run fails.
    #[default]
    Fail,
    /// The failure is recorded and the run goes on.
    Continue,
    /// These steps run, then the run goes on after the failed step.
    Catch(Vec<Step>),
}

mod duration_seconds {
    pub fn serialize<S: serde::Serializer>(duration: &std::time::Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_secs())
    }
}

mod option_duration_seconds {
    pub fn serialize<S: serde::Serializer>(
        duration: &Option<std::time::Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_some(&duration.as_secs()),
            None => serializer.serialize_none(),
        }
    }
}

/// Reads `30s`, `5m`, `2h`, `1d`, `500ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => number,
        "s" => number.checked_mul(1_000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        "d" => number.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

impl Playbook {
    /// Every step, depth first, in the order written.
    pub fn walk(&self) -> impl Iterator<Item = &Step> {
        let mut stack: Vec<&Step> = self.steps.iter().rev().collect();
        std::iter::from_fn(move || {
            let step = stack.pop()?;
            let mut children: Vec<&Step> = Vec::new();
            match &step.kind {
                StepKind::If { then, otherwise, .. } => children.extend(then.iter().chain(otherwise)),
                StepKind::Switch { cases, default, .. } => {
                    children.extend(cases.iter().flat_map(|(_, steps)| steps).chain(default))
                }
                StepKind::ForEach { body, .. } => children.extend(body),
                StepKind::Parallel { branches } => children.extend(branches.iter().flatten()),
                _ => {}
            }
            if let OnError::Catch(steps) = &step.on_error {
                children.extend(steps);
            }
            stack.extend(children.into_iter().rev());
            Some(step)
        })
    }

    /// Its compiled templates (for trigger filters).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The step with this id, anywhere in the playbook.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.walk().find(|step| step.id == id)
    }

    /// Ids of the playbooks this one runs as steps.
    pub fn calls(&self) -> impl Iterator<Item = &str> {
        self.walk().filter_map(|step| match &step.kind {
            StepKind::Playbook { id, .. } => Some(id.as_str()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "s", "10", "10 parsecs", "-1s", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_limit() {
        let retry = Retry { attempts: 5, backoff: Duration::from_secs(2), max_backoff: Duration::from_secs(5) };
        assert_eq!(retry.pause_before(2), Duration::from_secs(2));
        assert_eq!(retry.pause_before(3), Duration::from_secs(4));
        assert_eq!(retry.pause_before(4), Duration::from_secs(5));
    }
}
