//! What the store keeps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// A detection on its way into the store: one rule matching one event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewDetection {
    /// Unique per (event, rule): replays of the same event add nothing.
    pub key: String,
    /// Identical detections share it (rule and entities), and are counted in
    /// one alert while within the rule's suppression window.
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_title: String,
    pub level: String,
    pub techniques: Vec<String>,
    pub entities: Entities,
    /// When the event happened (or arrived, when it does not say).
    pub time_ms: Millis,
    /// How long after an alert's first detection identical ones join it.
    pub window_ms: Millis,
    /// The matched event's sequence number (see [`NewEvent`]).
    pub event_seq: i64,
    /// What threat intelligence says of the event's observables (opaque to
    /// the store; the server writes `riposte_intel::IntelMatch` values).
    pub intel: Vec<serde_json::Value>,
}

/// The correlation engine's state (opaque to the store: its own
/// serialisation) as of spool position `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationState {
    pub seq: i64,
    pub state: String,
}

/// An event to keep: every matched one, and recent raw ones.
#[derive(Clone, Debug, Serialize)]
pub struct NewEvent {
    /// Its position in the write-ahead spool: unique and increasing.
    pub seq: i64,
    pub received_ms: Millis,
    pub source: String,
    pub matched: bool,
    /// The event as JSON text (written once by whoever decoded it).
    pub body: Box<serde_json::value::RawValue>,
    /// Its observables, normalised, for retro-hunts (empty: none kept).
    pub observables: Vec<String>,
}

/// The things a detection is about, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
}

/// An alert as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_title: String,
    pub level: String,
    pub techniques: Vec<String>,
    pub entities: Entities,
    pub first_seen_ms: Millis,
    pub last_seen_ms: Millis,
    /// Detections counted in it.
    pub count: i64,
    pub status: AlertStatus,
    pub verdict: Option<Verdict>,
    /// The first matched event's sequence number.
    pub event_seq: i64,
    pub updated_ms: Millis,
    /// Threat intelligence on the first event's observables (see [`NewDetection::intel`]).
    pub intel: Vec<serde_json::Value>,
}

/// Where an analyst is with an alert.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    New,
    Acknowledged,
    InProgress,
    Closed,
}

/// An analyst's judgement of an alert.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    TruePositive,
    FalsePositive,
}

macro_rules! text_enum {
    ($type:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $type {
            pub const ALL: &'static [$type] = &[$($type::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($type::$variant => $text),+ }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($type::$variant),)+
                    other => Err(format!(
                        "{other:?} is not one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum!(AlertStatus { New = "new", Acknowledged = "acknowledged", InProgress = "in_progress", Closed = "closed" });

/// Where a quarantined message is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineStatus {
    /// Held back: nobody received it.
    Held,
    /// An analyst let it go.
    Released,
    /// An analyst deleted its bytes (the record and its hash stay).
    Deleted,
}

text_enum!(QuarantineStatus { Held = "held", Released = "released", Deleted = "deleted" });

/// How often a check of the phishing analysis, or a word of its
/// classifier, held on messages analysts judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    /// The check or word; `*` counts the judged messages themselves.
    pub name: String,
    pub phishing: i64,
    pub legitimate: i64,
}

/// What is known of a sender from earlier messages and analysts' verdicts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SenderHistory {
    pub address: String,
    pub first_seen_ms: Millis,
    /// Messages seen from it before.
    pub messages: i64,
    /// Its messages analysts judged legitimate, and phishing.
    pub legitimate: i64,
    pub phishing: i64,
}

/// A message to hold back.
#[derive(Clone, Debug, PartialEq)]
pub struct NewQuarantined {
    /// SHA-256 of the message's bytes, as kept.
    pub sha256: String,
    pub received_ms: Millis,
    pub sender: String,
    pub subject: String,
    pub verdict: String,
    pub score: f64,
    /// The analysis's findings (opaque to the store).
    pub findings: serde_json::Value,
    /// `api`, or the mailbox it was taken from (`imap://HOST:PORT/FOLDER`).
    pub origin: String,
}

/// A held (or formerly held) message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quarantined {
    pub id: i64,
    pub sha256: String,
    pub received_ms: Millis,
    pub sender: String,
    pub subject: String,
    pub verdict: String,
    pub score: f64,
    pub findings: serde_json::Value,
    pub origin: String,
    pub status: QuarantineStatus,
    pub updated_ms: Millis,
}
text_enum!(Verdict { TruePositive = "true_positive", FalsePositive = "false_positive" });
text_enum!(Scope { Read = "read", Write = "write", Admin = "admin" });

/// Which alerts to list. Alerts come newest first; `before` is the cursor
/// (the id of the last alert of the previous page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    /// Only these levels (empty: all).
    pub levels: Vec<String>,
    pub rule_id: Option<String>,
    pub since_ms: Option<Millis>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// One page of a list, and the cursor of the next one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

/// An analyst's change to an alert.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertChange {
    pub status: Option<AlertStatus>,
    pub verdict: Option<Verdict>,
}

/// What an API token may do: `read` < `write` < `admin`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

/// An API token, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_ms: Millis,
}

/// What a retro-hunt looks for among stored observables (see
/// [`NewEvent::observables`]): exact values, and inclusive ranges of values
/// (a network's addresses, stored as sortable keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservableSearch {
    pub values: Vec<String>,
    pub ranges: Vec<(String, String)>,
}

impl ObservableSearch {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.ranges.is_empty()
    }
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub received_ms: Millis,
    pub source: String,
    pub matched: bool,
    pub body: serde_json::Value,
}

/// What one call to [`crate::Store::record`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Alerts created.
    pub created: u64,
    /// Detections counted into existing alerts.
    pub merged: u64,
    /// Detections already recorded (replays).
    pub duplicates: u64,
}

/// A rule turned on or off through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleState {
    pub rule_id: String,
    pub enabled: bool,
    pub updated_ms: Millis,
}

/// Where a playbook run stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being run, or to be taken up at once (after a restart).
    Running,
    /// Waiting for a time or a person.
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

text_enum!(RunStatus {
    Running = "running",
    Waiting = "waiting",
    Completed = "completed",
    Failed = "failed",
    Cancelled = "cancelled"
});

impl RunStatus {
    /// Whether the run is over.
    pub fn ended(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled)
    }
}

/// A run about to start.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewRun {
    pub id: String,
    pub playbook: String,
    pub trigger: serde_json::Value,
    pub inputs: serde_json::Value,
    pub requested_by: Option<String>,
    /// At most one run per key (e.g. playbook and alert).
    pub dedup_key: Option<String>,
}

/// A playbook run as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    pub id: String,
    pub playbook: String,
    pub status: RunStatus,
    pub trigger: serde_json::Value,
    pub inputs: serde_json::Value,
    pub requested_by: Option<String>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    pub wake_ms: Option<Millis>,
    /// How it ended (the interpreter's outcome), once it has.
    pub outcome: serde_json::Value,
}

/// One journal entry of a run (opaque JSON to the store but for its state).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunStep {
    pub run_id: String,
    pub path: String,
    pub state: String,
    pub entry: serde_json::Value,
    pub updated_ms: Millis,
}

/// The inverse of a done action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunUndo {
    pub run_id: String,
    pub path: String,
    pub action: String,
    pub inputs: serde_json::Value,
    /// When it runs by itself; none: only when a person undoes the run.
    pub due_ms: Option<Millis>,
    /// pending, done or failed.
    pub state: String,
    pub detail: Option<String>,
}

/// A ticket a run opened for an alert, followed until it closes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TicketLink {
    /// The read-only action that gives the ticket's status (`tickets.issue_status`).
    pub status_action: String,
    pub ticket: String,
    /// What the status action is called with.
    pub inputs: serde_json::Value,
    pub alert_id: i64,
    pub run_id: String,
    /// open or closed.
    pub state: String,
    /// The ticket's last status.
    pub status: serde_json::Value,
}
