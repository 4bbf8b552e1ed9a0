//! The two backends. Their SQL is the same text (both read `$N` parameters,
//! `ON CONFLICT`, `RETURNING`), so one macro writes both implementations and
//! the migrations are the only place where the dialects differ.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::audit::{AuditEntry, AuditKey, GENESIS, NewAudit, entry_mac};
use crate::error::{Doing, Result, StoreError};
use crate::model::{
    Alert, AlertChange, AlertFilter, AlertStatus, CorrelationState, Entities, Millis, NewDetection, NewEvent,
    NewQuarantined, NewRun, ObservableSearch, Page, QuarantineStatus, Quarantined, Recorded, RuleState, Run, RunStatus,
    RunStep, RunUndo, Scope, SenderHistory, StoredEvent, TicketLink, Token, Verdict, VerdictCounts,
};

/// Rows written or looked up by one statement (under both databases'
/// parameter limits).
const ROWS_PER_STATEMENT: usize = 500;

/// An alert's suppression window while a batch is recorded.
struct Window {
    /// `None` for an alert this batch creates.
    id: Option<i64>,
    first_ms: Millis,
    end_ms: Millis,
    last_ms: Millis,
    /// Detections this batch counts into it.
    added: i64,
    /// The detection that opens it (new alerts).
    founder: Option<usize>,
    /// The detections it takes, by index in the batch.
    members: Vec<usize>,
}

/// Most alerts one page may hold.
pub const MAX_PAGE: u32 = 1_000;

/// Everything Riposte keeps. Both backends pass the same test suite.
pub trait Store: Send + Sync {
    /// Stores events and detections in one transaction, with the correlation
    /// state they leave when given. Detections whose key is already stored
    /// are counted as duplicates and change nothing.
    fn record(
        &self,
        detections: &[NewDetection],
        events: &[NewEvent],
        correlation: Option<&CorrelationState>,
    ) -> impl Future<Output = Result<Recorded>> + Send;

    /// The correlation state last recorded.
    fn correlation_state(&self) -> impl Future<Output = Result<Option<CorrelationState>>> + Send;

    /// Stored events holding any observable `search` names, received at or
    /// after `since_ms`, oldest first.
    fn events_with_observables(
        &self,
        search: &ObservableSearch,
        since_ms: Millis,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;

    /// Deletes the oldest unmatched events beyond `keep`; returns how many.
    fn prune_events(&self, keep: u64) -> impl Future<Output = Result<u64>> + Send;

    fn event(&self, seq: i64) -> impl Future<Output = Result<Option<StoredEvent>>> + Send;

    /// (matched, unmatched) events stored.
    fn event_counts(&self) -> impl Future<Output = Result<(u64, u64)>> + Send;

    fn alerts(&self, filter: &AlertFilter) -> impl Future<Output = Result<Page<Alert>>> + Send;

    fn alert(&self, id: i64) -> impl Future<Output = Result<Option<Alert>>> + Send;

    /// Applies an analyst's change and records it in the audit trail, in one
    /// transaction. `None` when there is no such alert.
    fn change_alert(
        &self,
        id: i64,
        change: &AlertChange,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<Option<(Alert, AuditEntry)>>> + Send;

    /// Stores a new token (its secret only as a hash) and audits it.
    fn create_token(
        &self,
        token: &Token,
        secret_sha256: &str,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;

    /// A token and the hash of its secret.
    fn token(&self, id: &str) -> impl Future<Output = Result<Option<(Token, String)>>> + Send;

    fn rule_states(&self) -> impl Future<Output = Result<Vec<RuleState>>> + Send;

    /// Turns a rule on or off (kept across restarts) and audits it.
    fn set_rule_state(
        &self,
        rule_id: &str,
        enabled: bool,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;

    fn append_audit(&self, audit: &NewAudit, key: &AuditKey) -> impl Future<Output = Result<AuditEntry>> + Send;

    /// The whole audit trail, oldest first.
    fn audit_log(&self) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;

    /// Records a message held back, and audits it, in one transaction.
    fn quarantine(
        &self,
        message: &NewQuarantined,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<(Quarantined, AuditEntry)>> + Send;

    /// Quarantined messages, newest first, of `status` when given.
    fn quarantined(
        &self,
        status: Option<QuarantineStatus>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Quarantined>>> + Send;

    fn quarantined_message(&self, id: i64) -> impl Future<Output = Result<Option<Quarantined>>> + Send;

    /// What is known of `address` before this message.
    fn sender_history(&self, address: &str) -> impl Future<Output = Result<Option<SenderHistory>>> + Send;

    /// Counts a message from `address` and from its registered `domain`
    /// (each first seen now when new).
    fn note_sender(&self, address: &str, domain: &str, seen_ms: Millis) -> impl Future<Output = Result<()>> + Send;

    /// Messages seen from the registered `domain` before (0: never).
    fn domain_messages(&self, domain: &str) -> impl Future<Output = Result<i64>> + Send;

    /// Records an analyst's verdict on a message from `address` on which
    /// `checks` held and whose words were `words` (empty when its bytes are
    /// gone): its sender's history and the organisation's counts per check
    /// and per word, audited.
    fn judge_sender(
        &self,
        address: &str,
        phishing: bool,
        checks: &[String],
        words: &[String],
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;

    /// Adds the counts of many judged messages at once (`*` rows count the
    /// messages), audited: verdicts given in bulk, with no sender history.
    fn learn_verdicts(
        &self,
        checks: &[VerdictCounts],
        words: &[VerdictCounts],
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;

    /// How often each check held on judged messages (`*`: all of them).
    fn check_verdicts(&self) -> impl Future<Output = Result<Vec<VerdictCounts>>> + Send;

    /// How many judged messages held each word (`*`: all of them).
    fn word_verdicts(&self) -> impl Future<Output = Result<Vec<VerdictCounts>>> + Send;

    /// When more than `keep` words are counted, forgets the rarest (those on
    /// the fewest judged messages) down to nine tenths of `keep`; returns
    /// how many went.
    fn prune_word_verdicts(&self, keep: u64) -> impl Future<Output = Result<u64>> + Send;

    /// Starts a run; `None` when a run with the same dedup key exists.
    fn create_run(&self, run: &NewRun) -> impl Future<Output = Result<Option<Run>>> + Send;

    fn run(&self, id: &str) -> impl Future<Output = Result<Option<Run>>> + Send;

    /// Runs, newest first.
    fn runs(
        &self,
        playbook: Option<&str>,
        status: Option<RunStatus>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Run>>> + Send;

    /// Runs to take up now: running ones (a restart left them) and waiting
    /// ones whose time has come, oldest first.
    fn runs_due(&self, now_ms: Millis) -> impl Future<Output = Result<Vec<Run>>> + Send;

    /// Leases a run to `owner` until `until_ms`, unless another owner holds
    /// a lease that has not run out at `now_ms`; whether it was leased.
    fn lease_run(
        &self,
        id: &str,
        owner: &str,
        now_ms: Millis,
        until_ms: Millis,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Moves a run to `status` (ending its lease), to be taken up at
    /// `wake_ms`, with its outcome once it ended. A cancelled run stays so.
    fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        wake_ms: Option<Millis>,
        outcome: Option<&serde_json::Value>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes runs that ended before `ended_before_ms` with their journals,
    /// keeping any with an inverse still pending or a ticket still followed;
    /// returns how many went.
    fn prune_runs(&self, ended_before_ms: Millis) -> impl Future<Output = Result<u64>> + Send;

    /// A run's journal.
    fn run_steps(&self, run_id: &str) -> impl Future<Output = Result<Vec<RunStep>>> + Send;

    /// Writes one journal entry, and the inverse of the action it records
    /// when given, in one transaction. An entry already done or failed is
    /// final: it is not overwritten, and `false` says so (a person decided
    /// while the run was being worked on). With `owner`, only while that
    /// owner holds the run's lease (`false` otherwise).
    fn record_step(
        &self,
        run_id: &str,
        path: &str,
        state: &str,
        entry: &serde_json::Value,
        undo: Option<&RunUndo>,
        owner: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// A person's decision on a waiting step, audited: written only while
    /// the step still waits (`None` otherwise), and the run is due at once.
    fn decide_step(
        &self,
        run_id: &str,
        path: &str,
        entry: &serde_json::Value,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<Option<AuditEntry>>> + Send;

    /// Waiting steps (approvals and waits) of runs not ended, oldest first.
    fn waiting_steps(&self) -> impl Future<Output = Result<Vec<RunStep>>> + Send;

    /// Pending inverses: of one run, or due by `due_by`.
    fn pending_undos(
        &self,
        run_id: Option<&str>,
        due_by: Option<Millis>,
    ) -> impl Future<Output = Result<Vec<RunUndo>>> + Send;

    /// Marks an inverse done or failed, audited.
    fn settle_undo(
        &self,
        run_id: &str,
        path: &str,
        done: bool,
        detail: &str,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;

    /// Actions of `kind` counted since `since_ms` (of one playbook, or all).
    fn actions_since(
        &self,
        kind: &str,
        playbook: Option<&str>,
        since_ms: Millis,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Counts an action toward the limits (counts over a day old are dropped).
    fn note_action(
        &self,
        run_id: &str,
        path: &str,
        playbook: &str,
        kind: &str,
        at_ms: Millis,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Follows a ticket a run opened (once per ticket).
    fn link_ticket(&self, link: &TicketLink) -> impl Future<Output = Result<()>> + Send;

    /// Tickets not closed yet.
    fn open_ticket_links(&self) -> impl Future<Output = Result<Vec<TicketLink>>> + Send;

    /// Records a ticket's status, and whether it closed.
    fn update_ticket_link(
        &self,
        status_action: &str,
        ticket: &str,
        status: &serde_json::Value,
        closed: bool,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Moves a held message to `status` (released or deleted) and audits it;
    /// `None` when there is no such message.
    fn change_quarantined(
        &self,
        id: i64,
        status: QuarantineStatus,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> impl Future<Output = Result<Option<(Quarantined, AuditEntry)>>> + Send;
}

/// The columns of a quarantined message, as a literal for `concat!`.
macro_rules! quarantine_columns {
    () => {
        "id, sha256, received_ms, sender, subject, verdict, score, findings, origin, status, updated_ms"
    };
}

pub(crate) fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn parse<T: FromStr<Err = String>>(what: &'static str, text: &str) -> Result<T> {
    text.parse().map_err(|reason| StoreError::Corrupt { what, reason })
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt { what, reason: error.to_string() })
}

/// The columns of a run, as a literal for `concat!`.
macro_rules! run_columns {
    () => {
        "id, playbook, status, trigger_json, inputs_json, requested_by, created_ms, updated_ms, wake_ms, outcome_json"
    };
}

/// The columns of an undo, as a literal for `concat!`.
macro_rules! undo_columns {
    () => {
        "run_id, path, action, inputs_json, due_ms, state, detail"
    };
}

/// The columns of an alert, as a literal for `concat!` (SQL text must be static).
macro_rules! alert_columns {
    () => {
        "id, fingerprint, rule_id, rule_title, level, techniques, entities, first_seen_ms, last_seen_ms, count, \
         status, verdict, event_seq, updated_ms, intel"
    };
}

macro_rules! backend {
    ($store:ident, $pool:ty, $lock_audit:expr, $begin:expr) => {
        impl $store {
            fn alert_from(row: &<<$pool as PoolDatabase>::Database as sqlx::Database>::Row) -> Result<Alert> {
                let text = |name: &str| row.try_get::<String, _>(name).doing("reading an alert");
                Ok(Alert {
                    id: row.try_get("id").doing("reading an alert")?,
                    fingerprint: text("fingerprint")?,
                    rule_id: text("rule_id")?,
                    rule_title: text("rule_title")?,
                    level: text("level")?,
                    techniques: parse_json("alert techniques", &text("techniques")?)?,
                    entities: parse_json::<Entities>("alert entities", &text("entities")?)?,
                    first_seen_ms: row.try_get("first_seen_ms").doing("reading an alert")?,
                    last_seen_ms: row.try_get("last_seen_ms").doing("reading an alert")?,
                    count: row.try_get("count").doing("reading an alert")?,
                    status: parse::<AlertStatus>("alert status", &text("status")?)?,
                    verdict: row
                        .try_get::<Option<String>, _>("verdict")
                        .doing("reading an alert")?
                        .map(|verdict| parse::<Verdict>("alert verdict", &verdict))
                        .transpose()?,
                    event_seq: row.try_get("event_seq").doing("reading an alert")?,
                    updated_ms: row.try_get("updated_ms").doing("reading an alert")?,
                    intel: parse_json("alert intel", &text("intel")?)?,
                })
            }

            fn quarantined_from(row: &<<$pool as PoolDatabase>::Database as sqlx::Database>::Row) -> Result<Quarantined> {
                let text = |name: &str| row.try_get::<String, _>(name).doing("reading a quarantined message");
                Ok(Quarantined {
                    id: row.try_get("id").doing("reading a quarantined message")?,
                    sha256: text("sha256")?,
                    received_ms: row.try_get("received_ms").doing("reading a quarantined message")?,
                    sender: text("sender")?,
                    subject: text("subject")?,
                    verdict: text("verdict")?,
                    score: row.try_get("score").doing("reading a quarantined message")?,
                    findings: parse_json("quarantine findings", &text("findings")?)?,
                    origin: text("origin")?,
                    status: parse::<QuarantineStatus>("quarantine status", &text("status")?)?,
                    updated_ms: row.try_get("updated_ms").doing("reading a quarantined message")?,
                })
            }

            fn run_from(row: &<<$pool as PoolDatabase>::Database as sqlx::Database>::Row) -> Result<Run> {
                let text = |name: &str| row.try_get::<String, _>(name).doing("reading a run");
                Ok(Run {
                    id: text("id")?,
                    playbook: text("playbook")?,
                    status: parse::<RunStatus>("run status", &text("status")?)?,
                    trigger: parse_json("run trigger", &text("trigger_json")?)?,
                    inputs: parse_json("run inputs", &text("inputs_json")?)?,
                    requested_by: row.try_get("requested_by").doing("reading a run")?,
                    created_ms: row.try_get("created_ms").doing("reading a run")?,
                    updated_ms: row.try_get("updated_ms").doing("reading a run")?,
                    wake_ms: row.try_get("wake_ms").doing("reading a run")?,
                    outcome: match row.try_get::<Option<String>, _>("outcome_json").doing("reading a run")? {
                        Some(outcome) => parse_json("run outcome", &outcome)?,
                        None => serde_json::Value::Null,
                    },
                })
            }

            fn step_from(row: &<<$pool as PoolDatabase>::Database as sqlx::Database>::Row) -> Result<RunStep> {
                let text = |name: &str| row.try_get::<String, _>(name).doing("reading a run's journal");
                Ok(RunStep {
                    run_id: text("run_id")?,
                    path: text("path")?,
                    state: text("state")?,
                    entry: parse_json("journal entry", &text("entry_json")?)?,
                    updated_ms: row.try_get("updated_ms").doing("reading a run's journal")?,
                })
            }

            fn undo_from(row: &<<$pool as PoolDatabase>::Database as sqlx::Database>::Row) -> Result<RunUndo> {
                let text = |name: &str| row.try_get::<String, _>(name).doing("reading an undo");
                Ok(RunUndo {
                    run_id: text("run_id")?,
                    path: text("path")?,
                    action: text("action")?,
                    inputs: parse_json("undo inputs", &text("inputs_json")?)?,
                    due_ms: row.try_get("due_ms").doing("reading an undo")?,
                    state: text("state")?,
                    detail: row.try_get("detail").doing("reading an undo")?,
                })
            }

            fn audit_from(row: &<<$pool as PoolDatabase>::Database as sqlx::Database>::Row) -> Result<AuditEntry> {
                let text = |name: &str| row.try_get::<String, _>(name).doing("reading the audit log");
                Ok(AuditEntry {
                    seq: row.try_get("seq").doing("reading the audit log")?,
                    time_ms: row.try_get("time_ms").doing("reading the audit log")?,
                    actor: text("actor")?,
                    action: text("action")?,
                    target: text("target")?,
                    detail: text("detail")?,
                    prev_mac: text("prev_mac")?,
                    mac: text("mac")?,
                })
            }

            /// Adds `rows` to the counts of `table` (a verdict table of
            /// this file, never a caller's text).
            async fn add_verdict_counts(
                transaction: &mut sqlx::Transaction<'_, <$pool as PoolDatabase>::Database>,
                table: &'static str,
                column: &'static str,
                rows: &[VerdictCounts],
            ) -> Result<()> {
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::new(format!("INSERT INTO {table} ({column}, phishing, legitimate) "));
                    query.push_values(chunk, |mut row, counts| {
                        row.push_bind(counts.name.clone()).push_bind(counts.phishing).push_bind(counts.legitimate);
                    });
                    query.push(format!(
                        " ON CONFLICT ({column}) DO UPDATE SET phishing = {table}.phishing + excluded.phishing, \
                         legitimate = {table}.legitimate + excluded.legitimate"
                    ));
                    query.build().execute(&mut **transaction).await.doing("counting verdicts")?;
                }
                Ok(())
            }

            /// The counts `select` reads (`name`, `phishing`, `legitimate`).
            async fn verdict_counts(&self, select: &'static str) -> Result<Vec<VerdictCounts>> {
                let rows = sqlx::query(select)
                    .fetch_all(&self.pool)
                    .await
                    .doing("reading the verdict counts")?;
                rows.iter()
                    .map(|row| {
                        Ok(VerdictCounts {
                            name: row.try_get("name").doing("reading the verdict counts")?,
                            phishing: row.try_get("phishing").doing("reading the verdict counts")?,
                            legitimate: row.try_get("legitimate").doing("reading the verdict counts")?,
                        })
                    })
                    .collect()
            }
            /// Appends to the audit trail inside a transaction.
            async fn append_in(
                transaction: &mut sqlx::Transaction<'_, <$pool as PoolDatabase>::Database>,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<AuditEntry> {
                let lock: &str = $lock_audit;
                if !lock.is_empty() {
                    sqlx::query(lock).execute(&mut **transaction).await.doing("locking the audit log")?;
                }
                let last = sqlx::query("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut **transaction)
                    .await
                    .doing("reading the audit log")?;
                let (seq, prev_mac) = match last {
                    Some(row) => (
                        row.try_get::<i64, _>("seq").doing("reading the audit log")? + 1,
                        row.try_get::<String, _>("mac").doing("reading the audit log")?,
                    ),
                    None => (1, GENESIS.to_owned()),
                };
                let time_ms = now_ms();
                let mac = entry_mac(key, seq, time_ms, audit, &prev_mac);
                sqlx::query(
                    "INSERT INTO audit (seq, time_ms, actor, action, target, detail, prev_mac, mac) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(seq)
                .bind(time_ms)
                .bind(&audit.actor)
                .bind(&audit.action)
                .bind(&audit.target)
                .bind(&audit.detail)
                .bind(&prev_mac)
                .bind(&mac)
                .execute(&mut **transaction)
                .await
                .doing("appending to the audit log")?;
                Ok(AuditEntry {
                    seq,
                    time_ms,
                    actor: audit.actor.clone(),
                    action: audit.action.clone(),
                    target: audit.target.clone(),
                    detail: audit.detail.clone(),
                    prev_mac,
                    mac,
                })
            }
        }

        impl Store for $store {
            async fn record(
                &self,
                detections: &[NewDetection],
                events: &[NewEvent],
                correlation: Option<&CorrelationState>,
            ) -> Result<Recorded> {
                // A few statements per batch, not per detection: each statement
                // is a round trip to the database (or to SQLite's thread).
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                if let Some(state) = correlation {
                    sqlx::query(
                        "INSERT INTO correlation_state (id, seq, state, updated_ms) VALUES (1, $1, $2, $3) \
                         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, state = excluded.state, \
                         updated_ms = excluded.updated_ms",
                    )
                    .bind(state.seq)
                    .bind(&state.state)
                    .bind(now_ms())
                    .execute(&mut *transaction)
                    .await
                    .doing("storing the correlation state")?;
                }
                for chunk in events.chunks(ROWS_PER_STATEMENT) {
                    let mut query =
                        sqlx::QueryBuilder::new("INSERT INTO events (seq, received_ms, source, matched, body) ");
                    query.push_values(chunk, |mut row, event| {
                        row.push_bind(event.seq)
                            .push_bind(event.received_ms)
                            .push_bind(event.source.as_str())
                            .push_bind(event.matched)
                            .push_bind(event.body.get());
                    });
                    query.push(" ON CONFLICT (seq) DO NOTHING");
                    query.build().execute(&mut *transaction).await.doing("storing events")?;
                }
                let observables: Vec<(i64, &String)> =
                    events.iter().flat_map(|event| event.observables.iter().map(move |value| (event.seq, value))).collect();
                if !observables.is_empty() {
                    // A replayed batch stores its observables again: the old ones go first.
                    for chunk in events.chunks(ROWS_PER_STATEMENT) {
                        let mut query = sqlx::QueryBuilder::new("DELETE FROM observables WHERE seq IN (");
                        let mut list = query.separated(", ");
                        for event in chunk {
                            list.push_bind(event.seq);
                        }
                        query.push(")");
                        query.build().execute(&mut *transaction).await.doing("storing observables")?;
                    }
                }
                for chunk in observables.chunks(ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::new("INSERT INTO observables (value, seq) ");
                    query.push_values(chunk, |mut row, (seq, value)| {
                        row.push_bind((*value).clone()).push_bind(*seq);
                    });
                    query.build().execute(&mut *transaction).await.doing("storing observables")?;
                }
                if detections.is_empty() {
                    transaction.commit().await.doing("committing events")?;
                    return Ok(Recorded::default());
                }

                // Detections already stored (a replay after a crash) change nothing.
                let mut known: HashSet<String> = HashSet::new();
                for chunk in detections.chunks(ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::new("SELECT key FROM detections WHERE key IN (");
                    let mut keys = query.separated(", ");
                    for detection in chunk {
                        keys.push_bind(detection.key.clone());
                    }
                    query.push(")");
                    for row in query.build().fetch_all(&mut *transaction).await.doing("looking up detections")? {
                        known.insert(row.try_get("key").doing("looking up detections")?);
                    }
                }
                let mut fresh: Vec<&NewDetection> = Vec::with_capacity(detections.len());
                for detection in detections {
                    if known.insert(detection.key.clone()) {
                        fresh.push(detection);
                    }
                }
                let mut recorded =
                    Recorded { duplicates: (detections.len() - fresh.len()) as u64, ..Recorded::default() };
                fresh.sort_by_key(|detection| detection.time_ms);

                // The alerts still open for these fingerprints.
                let mut windows: HashMap<&str, Vec<Window>> = HashMap::new();
                let earliest = fresh.first().map_or(0, |detection| detection.time_ms);
                let mut fingerprints: Vec<&str> = fresh.iter().map(|detection| detection.fingerprint.as_str()).collect();
                fingerprints.sort_unstable();
                fingerprints.dedup();
                for chunk in fingerprints.chunks(ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::new(
                        "SELECT id, fingerprint, first_seen_ms, window_end_ms FROM alerts WHERE window_end_ms >= ",
                    );
                    query.push_bind(earliest).push(" AND fingerprint IN (");
                    let mut list = query.separated(", ");
                    for fingerprint in chunk {
                        list.push_bind(fingerprint.to_string());
                    }
                    query.push(")");
                    for row in query.build().fetch_all(&mut *transaction).await.doing("looking up open alerts")? {
                        let fingerprint: String = row.try_get("fingerprint").doing("looking up open alerts")?;
                        let Ok(position) = fingerprints.binary_search(&fingerprint.as_str()) else { continue };
                        let key = fingerprints[position];
                        windows.entry(key).or_default().push(Window {
                            id: Some(row.try_get("id").doing("looking up open alerts")?),
                            first_ms: row.try_get("first_seen_ms").doing("looking up open alerts")?,
                            end_ms: row.try_get("window_end_ms").doing("looking up open alerts")?,
                            last_ms: i64::MIN,
                            added: 0,
                            founder: None,
                            members: Vec::new(),
                        });
                    }
                }

                // Each detection joins the window that covers it, or opens one.
                for (index, detection) in fresh.iter().enumerate() {
                    let list = windows.entry(detection.fingerprint.as_str()).or_default();
                    let time = detection.time_ms;
                    match list.iter_mut().find(|window| window.first_ms <= time && time <= window.end_ms) {
                        Some(window) => {
                            window.added += 1;
                            window.last_ms = window.last_ms.max(time);
                            window.members.push(index);
                        }
                        None => list.push(Window {
                            id: None,
                            first_ms: time,
                            end_ms: time.saturating_add(detection.window_ms.max(0)),
                            last_ms: time,
                            added: 1,
                            founder: Some(index),
                            members: vec![index],
                        }),
                    }
                }

                let now = now_ms();
                // Detections counted into alerts already open: one statement
                // for many alerts (a batch often adds to hundreds of them).
                let counted: Vec<(i64, i64, Millis)> = windows
                    .values()
                    .flatten()
                    .filter(|window| window.added > 0)
                    .filter_map(|window| window.id.map(|id| (id, window.added, window.last_ms)))
                    .collect();
                for chunk in counted.chunks(ROWS_PER_STATEMENT) {
                    // A VALUES list's columns are column1, column2... in both databases.
                    let mut query = sqlx::QueryBuilder::new(
                        "UPDATE alerts SET count = alerts.count + v.column2, \
                         last_seen_ms = CASE WHEN alerts.last_seen_ms > v.column3 THEN alerts.last_seen_ms \
                         ELSE v.column3 END, updated_ms = ",
                    );
                    query.push_bind(now).push(" FROM (");
                    query.push_values(chunk, |mut row, (id, added, last_ms)| {
                        row.push_bind(*id).push_bind(*added).push_bind(*last_ms);
                    });
                    query.push(") AS v WHERE alerts.id = v.column1");
                    query.build().execute(&mut *transaction).await.doing("counting detections into their alerts")?;
                    recorded.merged += chunk.iter().map(|(_, added, _)| *added as u64).sum::<u64>();
                }
                let mut alert_of: Vec<i64> = vec![0; fresh.len()];
                for list in windows.values() {
                    for window in list.iter().filter(|window| window.added > 0) {
                        let id = match (window.id, window.founder) {
                            (Some(id), _) => id,
                            (None, Some(founder)) => {
                                let detection = fresh[founder];
                                let row = sqlx::query(
                                    "INSERT INTO alerts (fingerprint, rule_id, rule_title, level, techniques, entities, \
                                     first_seen_ms, last_seen_ms, window_end_ms, count, status, event_seq, updated_ms, intel) \
                                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'new', $11, $12, $13) \
                                     RETURNING id",
                                )
                                .bind(&detection.fingerprint)
                                .bind(&detection.rule_id)
                                .bind(&detection.rule_title)
                                .bind(&detection.level)
                                .bind(json_text(&detection.techniques))
                                .bind(json_text(&detection.entities))
                                .bind(window.first_ms)
                                .bind(window.last_ms)
                                .bind(window.end_ms)
                                .bind(window.added)
                                .bind(detection.event_seq)
                                .bind(now)
                                .bind(json_text(&detection.intel))
                                .fetch_one(&mut *transaction)
                                .await
                                .doing("creating an alert")?;
                                recorded.created += 1;
                                recorded.merged += window.added.saturating_sub(1) as u64;
                                row.try_get("id").doing("creating an alert")?
                            }
                            (None, None) => continue,
                        };
                        for &member in &window.members {
                            alert_of[member] = id;
                        }
                    }
                }
                let members: Vec<(&NewDetection, i64)> = fresh.iter().copied().zip(alert_of).collect();
                for chunk in members.chunks(ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::new("INSERT INTO detections (key, alert_id) ");
                    query.push_values(chunk, |mut row, (detection, alert)| {
                        row.push_bind(detection.key.clone()).push_bind(*alert);
                    });
                    query.build().execute(&mut *transaction).await.doing("recording detections")?;
                }
                transaction.commit().await.doing("committing events and detections")?;
                Ok(recorded)
            }

            async fn correlation_state(&self) -> Result<Option<CorrelationState>> {
                let row = sqlx::query("SELECT seq, state FROM correlation_state WHERE id = 1")
                    .fetch_optional(&self.pool)
                    .await
                    .doing("reading the correlation state")?;
                row.map(|row| {
                    Ok(CorrelationState {
                        seq: row.try_get("seq").doing("reading the correlation state")?,
                        state: row.try_get("state").doing("reading the correlation state")?,
                    })
                })
                .transpose()
            }

            async fn prune_events(&self, keep: u64) -> Result<u64> {
                let keep = i64::try_from(keep).unwrap_or(i64::MAX);
                let done = sqlx::query(
                    "DELETE FROM events WHERE matched = $1 AND seq < \
                     (SELECT seq FROM events WHERE matched = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                )
                .bind(false)
                .bind(keep.saturating_sub(1).max(0))
                .execute(&self.pool)
                .await
                .doing("pruning old events")?;
                if done.rows_affected() > 0 {
                    sqlx::query(
                        "DELETE FROM observables WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.seq = observables.seq)",
                    )
                    .execute(&self.pool)
                    .await
                    .doing("pruning old observables")?;
                }
                Ok(done.rows_affected())
            }

            async fn events_with_observables(
                &self,
                search: &ObservableSearch,
                since_ms: Millis,
            ) -> Result<Vec<StoredEvent>> {
                let select = || {
                    let mut query = sqlx::QueryBuilder::new(
                        "SELECT seq, received_ms, source, matched, body FROM events WHERE received_ms >= ",
                    );
                    query.push_bind(since_ms).push(" AND seq IN (SELECT seq FROM observables WHERE ");
                    query
                };
                let mut queries = Vec::new();
                for chunk in search.values.chunks(ROWS_PER_STATEMENT) {
                    let mut query = select();
                    query.push("value IN (");
                    let mut list = query.separated(", ");
                    for value in chunk {
                        list.push_bind(value.clone());
                    }
                    query.push(")) ORDER BY seq");
                    queries.push(query);
                }
                // Each range is its own index range scan.
                for chunk in search.ranges.chunks(ROWS_PER_STATEMENT / 2) {
                    let mut query = select();
                    for (index, (low, high)) in chunk.iter().enumerate() {
                        query.push(if index == 0 { "(value >= " } else { " OR (value >= " });
                        query.push_bind(low.clone()).push(" AND value <= ").push_bind(high.clone()).push(")");
                    }
                    query.push(") ORDER BY seq");
                    queries.push(query);
                }
                let mut found = Vec::new();
                let mut seen: HashSet<i64> = HashSet::new();
                for mut query in queries {
                    for row in query.build().fetch_all(&self.pool).await.doing("looking for observables")? {
                        let seq: i64 = row.try_get("seq").doing("looking for observables")?;
                        if !seen.insert(seq) {
                            continue;
                        }
                        found.push(StoredEvent {
                            seq,
                            received_ms: row.try_get("received_ms").doing("looking for observables")?,
                            source: row.try_get("source").doing("looking for observables")?,
                            matched: row.try_get("matched").doing("looking for observables")?,
                            body: parse_json(
                                "event body",
                                &row.try_get::<String, _>("body").doing("looking for observables")?,
                            )?,
                        });
                    }
                }
                found.sort_by_key(|event| event.seq);
                Ok(found)
            }

            async fn event(&self, seq: i64) -> Result<Option<StoredEvent>> {
                let row = sqlx::query("SELECT seq, received_ms, source, matched, body FROM events WHERE seq = $1")
                    .bind(seq)
                    .fetch_optional(&self.pool)
                    .await
                    .doing("reading an event")?;
                row.map(|row| {
                    Ok(StoredEvent {
                        seq: row.try_get("seq").doing("reading an event")?,
                        received_ms: row.try_get("received_ms").doing("reading an event")?,
                        source: row.try_get("source").doing("reading an event")?,
                        matched: row.try_get("matched").doing("reading an event")?,
                        body: parse_json("event body", &row.try_get::<String, _>("body").doing("reading an event")?)?,
                    })
                })
                .transpose()
            }

            async fn event_counts(&self) -> Result<(u64, u64)> {
                let count = |matched: bool| {
                    sqlx::query("SELECT COUNT(*) AS n FROM events WHERE matched = $1").bind(matched).fetch_one(&self.pool)
                };
                let matched: i64 = count(true).await.doing("counting events")?.try_get("n").doing("counting events")?;
                let unmatched: i64 = count(false).await.doing("counting events")?.try_get("n").doing("counting events")?;
                Ok((matched.max(0) as u64, unmatched.max(0) as u64))
            }

            async fn alerts(&self, filter: &AlertFilter) -> Result<Page<Alert>> {
                let limit = filter.limit.clamp(1, MAX_PAGE);
                let mut query = sqlx::QueryBuilder::new(concat!("SELECT ", alert_columns!(), " FROM alerts WHERE 1 = 1"));
                if let Some(status) = filter.status {
                    query.push(" AND status = ").push_bind(status.as_str());
                }
                if !filter.levels.is_empty() {
                    query.push(" AND level IN (");
                    let mut levels = query.separated(", ");
                    for level in &filter.levels {
                        levels.push_bind(level.clone());
                    }
                    query.push(")");
                }
                if let Some(rule_id) = &filter.rule_id {
                    query.push(" AND rule_id = ").push_bind(rule_id.clone());
                }
                if let Some(since) = filter.since_ms {
                    query.push(" AND last_seen_ms >= ").push_bind(since);
                }
                if let Some(before) = filter.before {
                    query.push(" AND id < ").push_bind(before);
                }
                query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit) + 1);
                let rows = query.build().fetch_all(&self.pool).await.doing("listing alerts")?;
                let mut items = rows.iter().map(Self::alert_from).collect::<Result<Vec<_>>>()?;
                let next = if items.len() > limit as usize {
                    items.truncate(limit as usize);
                    items.last().map(|alert| alert.id)
                } else {
                    None
                };
                Ok(Page { items, next })
            }

            async fn alert(&self, id: i64) -> Result<Option<Alert>> {
                let row = sqlx::query(concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .doing("reading an alert")?;
                row.as_ref().map(Self::alert_from).transpose()
            }

            async fn change_alert(
                &self,
                id: i64,
                change: &AlertChange,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<Option<(Alert, AuditEntry)>> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                let now = now_ms();
                let mut query = sqlx::QueryBuilder::new("UPDATE alerts SET updated_ms = ");
                query.push_bind(now);
                if let Some(status) = change.status {
                    query.push(", status = ").push_bind(status.as_str());
                }
                if let Some(verdict) = change.verdict {
                    query.push(", verdict = ").push_bind(verdict.as_str());
                }
                query.push(" WHERE id = ").push_bind(id);
                let done = query.build().execute(&mut *transaction).await.doing("changing an alert")?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                let row = sqlx::query(concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1"))
                    .bind(id)
                    .fetch_one(&mut *transaction)
                    .await
                    .doing("reading an alert")?;
                let alert = Self::alert_from(&row)?;
                transaction.commit().await.doing("committing an alert change")?;
                Ok(Some((alert, entry)))
            }

            async fn create_token(
                &self,
                token: &Token,
                secret_sha256: &str,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<AuditEntry> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                sqlx::query(
                    "INSERT INTO tokens (id, name, scope, secret_sha256, created_ms) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.id)
                .bind(&token.name)
                .bind(token.scope.as_str())
                .bind(secret_sha256)
                .bind(token.created_ms)
                .execute(&mut *transaction)
                .await
                .doing("storing a token")?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing a token")?;
                Ok(entry)
            }

            async fn token(&self, id: &str) -> Result<Option<(Token, String)>> {
                let row = sqlx::query("SELECT id, name, scope, secret_sha256, created_ms FROM tokens WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .doing("reading a token")?;
                row.map(|row| {
                    let token = Token {
                        id: row.try_get("id").doing("reading a token")?,
                        name: row.try_get("name").doing("reading a token")?,
                        scope: parse::<Scope>("token scope", &row.try_get::<String, _>("scope").doing("reading a token")?)?,
                        created_ms: row.try_get("created_ms").doing("reading a token")?,
                    };
                    Ok((token, row.try_get("secret_sha256").doing("reading a token")?))
                })
                .transpose()
            }

            async fn quarantine(
                &self,
                message: &NewQuarantined,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<(Quarantined, AuditEntry)> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                let row = sqlx::query(concat!(
                    "INSERT INTO quarantine (sha256, received_ms, sender, subject, verdict, score, findings, origin, \
                     status, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'held', $9) RETURNING ",
                    quarantine_columns!()
                ))
                .bind(&message.sha256)
                .bind(message.received_ms)
                .bind(&message.sender)
                .bind(&message.subject)
                .bind(&message.verdict)
                .bind(message.score)
                .bind(json_text(&message.findings))
                .bind(&message.origin)
                .bind(now_ms())
                .fetch_one(&mut *transaction)
                .await
                .doing("quarantining a message")?;
                let held = Self::quarantined_from(&row)?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing a quarantined message")?;
                Ok((held, entry))
            }

            async fn quarantined(&self, status: Option<QuarantineStatus>, limit: u32) -> Result<Vec<Quarantined>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    quarantine_columns!(),
                    " FROM quarantine WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2"
                ))
                .bind(status.map(QuarantineStatus::as_str))
                .bind(i64::from(limit.min(MAX_PAGE)))
                .fetch_all(&self.pool)
                .await
                .doing("listing quarantined messages")?;
                rows.iter().map(|row| Self::quarantined_from(row)).collect()
            }

            async fn quarantined_message(&self, id: i64) -> Result<Option<Quarantined>> {
                let row = sqlx::query(concat!("SELECT ", quarantine_columns!(), " FROM quarantine WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .doing("reading a quarantined message")?;
                row.map(|row| Self::quarantined_from(&row)).transpose()
            }

            async fn change_quarantined(
                &self,
                id: i64,
                status: QuarantineStatus,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<Option<(Quarantined, AuditEntry)>> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                let row = sqlx::query(concat!(
                    "UPDATE quarantine SET status = $2, updated_ms = $3 WHERE id = $1 RETURNING ",
                    quarantine_columns!()
                ))
                .bind(id)
                .bind(status.as_str())
                .bind(now_ms())
                .fetch_optional(&mut *transaction)
                .await
                .doing("changing a quarantined message")?;
                let Some(row) = row else { return Ok(None) };
                let changed = Self::quarantined_from(&row)?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing a quarantine change")?;
                Ok(Some((changed, entry)))
            }

            async fn sender_history(&self, address: &str) -> Result<Option<SenderHistory>> {
                let row = sqlx::query(
                    "SELECT address, first_seen_ms, messages, legitimate, phishing FROM mail_senders WHERE address = $1",
                )
                .bind(address)
                .fetch_optional(&self.pool)
                .await
                .doing("reading a sender's history")?;
                row.map(|row| {
                    Ok(SenderHistory {
                        address: row.try_get("address").doing("reading a sender's history")?,
                        first_seen_ms: row.try_get("first_seen_ms").doing("reading a sender's history")?,
                        messages: row.try_get("messages").doing("reading a sender's history")?,
                        legitimate: row.try_get("legitimate").doing("reading a sender's history")?,
                        phishing: row.try_get("phishing").doing("reading a sender's history")?,
                    })
                })
                .transpose()
            }

            async fn note_sender(&self, address: &str, domain: &str, seen_ms: Millis) -> Result<()> {
                sqlx::query(
                    "INSERT INTO mail_senders (address, first_seen_ms, messages, legitimate, phishing, updated_ms) \
                     VALUES ($1, $2, 1, 0, 0, $2) \
                     ON CONFLICT (address) DO UPDATE SET messages = mail_senders.messages + 1, updated_ms = $2",
                )
                .bind(address)
                .bind(seen_ms)
                .execute(&self.pool)
                .await
                .doing("counting a sender's message")?;
                sqlx::query(
                    "INSERT INTO mail_domains (domain, first_seen_ms, messages, updated_ms) VALUES ($1, $2, 1, $2) \
                     ON CONFLICT (domain) DO UPDATE SET messages = mail_domains.messages + 1, updated_ms = $2",
                )
                .bind(domain)
                .bind(seen_ms)
                .execute(&self.pool)
                .await
                .doing("counting a sender domain's message")?;
                Ok(())
            }

            async fn domain_messages(&self, domain: &str) -> Result<i64> {
                let messages: Option<i64> = sqlx::query_scalar("SELECT messages FROM mail_domains WHERE domain = $1")
                    .bind(domain)
                    .fetch_optional(&self.pool)
                    .await
                    .doing("reading a sender domain's history")?;
                Ok(messages.unwrap_or(0))
            }

            async fn judge_sender(
                &self,
                address: &str,
                phishing: bool,
                checks: &[String],
                words: &[String],
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<AuditEntry> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                let now = now_ms();
                sqlx::query(
                    "INSERT INTO mail_senders (address, first_seen_ms, messages, legitimate, phishing, updated_ms) \
                     VALUES ($1, $2, 0, $3, $4, $2) \
                     ON CONFLICT (address) DO UPDATE SET legitimate = mail_senders.legitimate + $3, \
                     phishing = mail_senders.phishing + $4, updated_ms = $2",
                )
                .bind(address)
                .bind(now)
                .bind(i64::from(!phishing))
                .bind(i64::from(phishing))
                .execute(&mut *transaction)
                .await
                .doing("recording a verdict on a sender")?;
                let once = |names: &[String]| {
                    let mut names: Vec<&str> = names.iter().map(String::as_str).filter(|name| *name != "*").collect();
                    names.sort_unstable();
                    names.dedup();
                    names.push("*");
                    names
                        .into_iter()
                        .map(|name| VerdictCounts {
                            name: name.to_owned(),
                            phishing: i64::from(phishing),
                            legitimate: i64::from(!phishing),
                        })
                        .collect::<Vec<_>>()
                };
                Self::add_verdict_counts(&mut transaction, "mail_check_verdicts", "check_name", &once(checks)).await?;
                if !words.is_empty() {
                    Self::add_verdict_counts(&mut transaction, "mail_word_verdicts", "token", &once(words)).await?;
                }
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing a verdict on a sender")?;
                Ok(entry)
            }

            async fn learn_verdicts(
                &self,
                checks: &[VerdictCounts],
                words: &[VerdictCounts],
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<AuditEntry> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                Self::add_verdict_counts(&mut transaction, "mail_check_verdicts", "check_name", checks).await?;
                Self::add_verdict_counts(&mut transaction, "mail_word_verdicts", "token", words).await?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing learned verdicts")?;
                Ok(entry)
            }

            async fn check_verdicts(&self) -> Result<Vec<VerdictCounts>> {
                self.verdict_counts(
                    "SELECT check_name AS name, phishing, legitimate FROM mail_check_verdicts ORDER BY check_name",
                )
                .await
            }

            async fn word_verdicts(&self) -> Result<Vec<VerdictCounts>> {
                self.verdict_counts("SELECT token AS name, phishing, legitimate FROM mail_word_verdicts ORDER BY token")
                    .await
            }

            async fn prune_word_verdicts(&self, keep: u64) -> Result<u64> {
                let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_word_verdicts WHERE token <> '*'")
                    .fetch_one(&self.pool)
                    .await
                    .doing("counting the words")?;
                let counted = u64::try_from(counted).unwrap_or(0);
                if counted <= keep {
                    return Ok(0);
                }
                // Down to nine tenths, so that the next verdicts do not prune again at once.
                let excess = i64::try_from(counted - keep / 10 * 9).unwrap_or(i64::MAX);
                let gone = sqlx::query(
                    "DELETE FROM mail_word_verdicts WHERE token IN (SELECT token FROM mail_word_verdicts \
                     WHERE token <> '*' ORDER BY phishing + legitimate, token LIMIT $1)",
                )
                .bind(excess)
                .execute(&self.pool)
                .await
                .doing("forgetting rare words")?;
                Ok(gone.rows_affected())
            }

            async fn create_run(&self, run: &NewRun) -> Result<Option<Run>> {
                let now = now_ms();
                let row = sqlx::query(concat!(
                    "INSERT INTO playbook_runs (id, playbook, status, trigger_json, inputs_json, requested_by, \
                     dedup_key, created_ms, updated_ms) VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $7) \
                     ON CONFLICT DO NOTHING RETURNING ",
                    run_columns!()
                ))
                .bind(&run.id)
                .bind(&run.playbook)
                .bind(json_text(&run.trigger))
                .bind(json_text(&run.inputs))
                .bind(&run.requested_by)
                .bind(&run.dedup_key)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .doing("starting a run")?;
                row.map(|row| Self::run_from(&row)).transpose()
            }

            async fn run(&self, id: &str) -> Result<Option<Run>> {
                let row = sqlx::query(concat!("SELECT ", run_columns!(), " FROM playbook_runs WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .doing("reading a run")?;
                row.map(|row| Self::run_from(&row)).transpose()
            }

            async fn runs(&self, playbook: Option<&str>, status: Option<RunStatus>, limit: u32) -> Result<Vec<Run>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM playbook_runs WHERE ($1 IS NULL OR playbook = $1) AND ($2 IS NULL OR status = $2) \
                     ORDER BY created_ms DESC, id DESC LIMIT $3"
                ))
                .bind(playbook)
                .bind(status.map(RunStatus::as_str))
                .bind(i64::from(limit.min(MAX_PAGE)))
                .fetch_all(&self.pool)
                .await
                .doing("listing runs")?;
                rows.iter().map(|row| Self::run_from(row)).collect()
            }

            async fn runs_due(&self, now_ms: Millis) -> Result<Vec<Run>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM playbook_runs WHERE status = 'running' \
                     OR (status = 'waiting' AND wake_ms IS NOT NULL AND wake_ms <= $1) ORDER BY created_ms, id"
                ))
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await
                .doing("finding runs to take up")?;
                rows.iter().map(|row| Self::run_from(row)).collect()
            }

            async fn set_run_status(
                &self,
                id: &str,
                status: RunStatus,
                wake_ms: Option<Millis>,
                outcome: Option<&serde_json::Value>,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE playbook_runs SET status = $2, wake_ms = $3, outcome_json = COALESCE($4, outcome_json), \
                     updated_ms = $5, leased_by = NULL, lease_until_ms = NULL \
                     WHERE id = $1 AND (status <> 'cancelled' OR $2 = 'cancelled')",
                )
                .bind(id)
                .bind(status.as_str())
                .bind(wake_ms)
                .bind(outcome.map(json_text))
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .doing("changing a run's status")?;
                Ok(())
            }

            async fn lease_run(&self, id: &str, owner: &str, now_ms: Millis, until_ms: Millis) -> Result<bool> {
                let leased = sqlx::query(
                    "UPDATE playbook_runs SET leased_by = $2, lease_until_ms = $4 WHERE id = $1 \
                     AND (leased_by IS NULL OR leased_by = $2 OR lease_until_ms IS NULL OR lease_until_ms < $3)",
                )
                .bind(id)
                .bind(owner)
                .bind(now_ms)
                .bind(until_ms)
                .execute(&self.pool)
                .await
                .doing("leasing a run")?;
                Ok(leased.rows_affected() == 1)
            }

            async fn prune_runs(&self, ended_before_ms: Millis) -> Result<u64> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                // The runs to forget, in a table of their own for the three deletes.
                let old = "SELECT id FROM playbook_runs r WHERE r.status IN ('completed', 'failed', 'cancelled') \
                           AND r.updated_ms < $1 \
                           AND NOT EXISTS (SELECT 1 FROM playbook_undos u WHERE u.run_id = r.id AND u.state = 'pending') \
                           AND NOT EXISTS (SELECT 1 FROM ticket_links t WHERE t.run_id = r.id AND t.state = 'open')";
                for table in ["playbook_steps", "playbook_undos", "ticket_links"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE run_id IN ({old})")))
                        .bind(ended_before_ms)
                        .execute(&mut *transaction)
                        .await
                        .doing("forgetting old runs")?;
                }
                let deleted = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM playbook_runs WHERE id IN ({old})")))
                    .bind(ended_before_ms)
                    .execute(&mut *transaction)
                    .await
                    .doing("forgetting old runs")?
                    .rows_affected();
                transaction.commit().await.doing("committing forgotten runs")?;
                Ok(deleted)
            }

            async fn run_steps(&self, run_id: &str) -> Result<Vec<RunStep>> {
                let rows = sqlx::query(
                    "SELECT run_id, path, state, entry_json, updated_ms FROM playbook_steps WHERE run_id = $1 \
                     ORDER BY updated_ms, path",
                )
                .bind(run_id)
                .fetch_all(&self.pool)
                .await
                .doing("reading a run's journal")?;
                rows.iter().map(|row| Self::step_from(row)).collect()
            }

            async fn record_step(
                &self,
                run_id: &str,
                path: &str,
                state: &str,
                entry: &serde_json::Value,
                undo: Option<&RunUndo>,
                owner: Option<&str>,
            ) -> Result<bool> {
                let now = now_ms();
                let write = sqlx::query(
                    "INSERT INTO playbook_steps (run_id, path, state, entry_json, updated_ms) \
                     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM playbook_runs \
                     WHERE id = $1 AND ($6 IS NULL OR leased_by = $6)) \
                     ON CONFLICT (run_id, path) DO UPDATE SET state = $3, entry_json = $4, updated_ms = $5 \
                     WHERE playbook_steps.state NOT IN ('done', 'failed')",
                )
                .bind(run_id)
                .bind(path)
                .bind(state)
                .bind(json_text(entry))
                .bind(now)
                .bind(owner);
                // Most entries are one statement: no transaction around it
                // (a third of the round trips on the runner's hot path).
                let Some(undo) = undo else {
                    let written = write.execute(&self.pool).await.doing("writing a run's journal")?;
                    return Ok(written.rows_affected() == 1);
                };
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                if write.execute(&mut *transaction).await.doing("writing a run's journal")?.rows_affected() == 0 {
                    return Ok(false);
                }
                {
                    sqlx::query(
                        "INSERT INTO playbook_undos (run_id, path, action, inputs_json, due_ms, state, updated_ms) \
                         VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (run_id, path) DO NOTHING",
                    )
                    .bind(run_id)
                    .bind(path)
                    .bind(&undo.action)
                    .bind(json_text(&undo.inputs))
                    .bind(undo.due_ms)
                    .bind(now)
                    .execute(&mut *transaction)
                    .await
                    .doing("scheduling an undo")?;
                }
                transaction.commit().await.doing("committing a run's journal")?;
                Ok(true)
            }

            async fn decide_step(
                &self,
                run_id: &str,
                path: &str,
                entry: &serde_json::Value,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<Option<AuditEntry>> {
                let now = now_ms();
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                let decided = sqlx::query(
                    "UPDATE playbook_steps SET state = 'done', entry_json = $3, updated_ms = $4 \
                     WHERE run_id = $1 AND path = $2 AND state = 'waiting'",
                )
                .bind(run_id)
                .bind(path)
                .bind(json_text(entry))
                .bind(now)
                .execute(&mut *transaction)
                .await
                .doing("recording a decision")?;
                if decided.rows_affected() == 0 {
                    return Ok(None);
                }
                sqlx::query(
                    "UPDATE playbook_runs SET wake_ms = $2, updated_ms = $2 WHERE id = $1 AND status = 'waiting'",
                )
                .bind(run_id)
                .bind(now)
                .execute(&mut *transaction)
                .await
                .doing("waking a run")?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing a decision")?;
                Ok(Some(entry))
            }

            async fn waiting_steps(&self) -> Result<Vec<RunStep>> {
                let rows = sqlx::query(
                    "SELECT s.run_id, s.path, s.state, s.entry_json, s.updated_ms FROM playbook_steps s \
                     JOIN playbook_runs r ON r.id = s.run_id \
                     WHERE s.state = 'waiting' AND r.status IN ('running', 'waiting') ORDER BY s.updated_ms, s.path",
                )
                .fetch_all(&self.pool)
                .await
                .doing("listing waiting steps")?;
                rows.iter().map(|row| Self::step_from(row)).collect()
            }

            async fn pending_undos(&self, run_id: Option<&str>, due_by: Option<Millis>) -> Result<Vec<RunUndo>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    undo_columns!(),
                    " FROM playbook_undos WHERE state = 'pending' AND ($1 IS NULL OR run_id = $1) \
                     AND ($2 IS NULL OR (due_ms IS NOT NULL AND due_ms <= $2)) ORDER BY due_ms, run_id, path"
                ))
                .bind(run_id)
                .bind(due_by)
                .fetch_all(&self.pool)
                .await
                .doing("listing undos")?;
                rows.iter().map(|row| Self::undo_from(row)).collect()
            }

            async fn settle_undo(
                &self,
                run_id: &str,
                path: &str,
                done: bool,
                detail: &str,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<AuditEntry> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                sqlx::query(
                    "UPDATE playbook_undos SET state = $3, detail = $4, updated_ms = $5 WHERE run_id = $1 AND path = $2",
                )
                .bind(run_id)
                .bind(path)
                .bind(if done { "done" } else { "failed" })
                .bind(detail)
                .bind(now_ms())
                .execute(&mut *transaction)
                .await
                .doing("settling an undo")?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing an undo")?;
                Ok(entry)
            }

            async fn actions_since(&self, kind: &str, playbook: Option<&str>, since_ms: Millis) -> Result<u64> {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM playbook_actions WHERE kind = $1 AND ($2 IS NULL OR playbook = $2) \
                     AND at_ms >= $3",
                )
                .bind(kind)
                .bind(playbook)
                .bind(since_ms)
                .fetch_one(&self.pool)
                .await
                .doing("counting actions")?;
                Ok(count.max(0) as u64)
            }

            async fn note_action(&self, run_id: &str, path: &str, playbook: &str, kind: &str, at_ms: Millis) -> Result<()> {
                sqlx::query(
                    "INSERT INTO playbook_actions (run_id, path, playbook, kind, at_ms) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (run_id, path) DO NOTHING",
                )
                .bind(run_id)
                .bind(path)
                .bind(playbook)
                .bind(kind)
                .bind(at_ms)
                .execute(&self.pool)
                .await
                .doing("counting an action")?;
                // Limits look back an hour; a day is kept for people to read.
                sqlx::query("DELETE FROM playbook_actions WHERE kind = $1 AND at_ms < $2")
                    .bind(kind)
                    .bind(at_ms - 86_400_000)
                    .execute(&self.pool)
                    .await
                    .doing("dropping old action counts")?;
                Ok(())
            }

            async fn link_ticket(&self, link: &TicketLink) -> Result<()> {
                sqlx::query(
                    "INSERT INTO ticket_links (status_action, ticket, inputs_json, alert_id, run_id, state, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT (status_action, ticket) DO NOTHING",
                )
                .bind(&link.status_action)
                .bind(&link.ticket)
                .bind(json_text(&link.inputs))
                .bind(link.alert_id)
                .bind(&link.run_id)
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .doing("following a ticket")?;
                Ok(())
            }

            async fn open_ticket_links(&self) -> Result<Vec<TicketLink>> {
                let rows = sqlx::query(
                    "SELECT status_action, ticket, inputs_json, alert_id, run_id, state, status_json FROM ticket_links \
                     WHERE state = 'open' ORDER BY updated_ms, ticket",
                )
                .fetch_all(&self.pool)
                .await
                .doing("listing followed tickets")?;
                rows.iter()
                    .map(|row| {
                        let text = |name: &str| row.try_get::<String, _>(name).doing("reading a followed ticket");
                        Ok(TicketLink {
                            status_action: text("status_action")?,
                            ticket: text("ticket")?,
                            inputs: parse_json("ticket inputs", &text("inputs_json")?)?,
                            alert_id: row.try_get("alert_id").doing("reading a followed ticket")?,
                            run_id: text("run_id")?,
                            state: text("state")?,
                            status: match row.try_get::<Option<String>, _>("status_json").doing("reading a followed ticket")? {
                                Some(status) => parse_json("ticket status", &status)?,
                                None => serde_json::Value::Null,
                            },
                        })
                    })
                    .collect()
            }

            async fn update_ticket_link(
                &self,
                status_action: &str,
                ticket: &str,
                status: &serde_json::Value,
                closed: bool,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE ticket_links SET status_json = $3, state = $4, updated_ms = $5 \
                     WHERE status_action = $1 AND ticket = $2",
                )
                .bind(status_action)
                .bind(ticket)
                .bind(json_text(status))
                .bind(if closed { "closed" } else { "open" })
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .doing("recording a ticket's status")?;
                Ok(())
            }

            async fn rule_states(&self) -> Result<Vec<RuleState>> {
                let rows = sqlx::query("SELECT rule_id, enabled, updated_ms FROM rule_states ORDER BY rule_id")
                    .fetch_all(&self.pool)
                    .await
                    .doing("reading rule states")?;
                rows.iter()
                    .map(|row| {
                        Ok(RuleState {
                            rule_id: row.try_get("rule_id").doing("reading rule states")?,
                            enabled: row.try_get("enabled").doing("reading rule states")?,
                            updated_ms: row.try_get("updated_ms").doing("reading rule states")?,
                        })
                    })
                    .collect()
            }

            async fn set_rule_state(
                &self,
                rule_id: &str,
                enabled: bool,
                audit: &NewAudit,
                key: &AuditKey,
            ) -> Result<AuditEntry> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                sqlx::query(
                    "INSERT INTO rule_states (rule_id, enabled, updated_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (rule_id) DO UPDATE SET enabled = $2, updated_ms = $3",
                )
                .bind(rule_id)
                .bind(enabled)
                .bind(now_ms())
                .execute(&mut *transaction)
                .await
                .doing("storing a rule state")?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing a rule state")?;
                Ok(entry)
            }

            async fn append_audit(&self, audit: &NewAudit, key: &AuditKey) -> Result<AuditEntry> {
                let mut transaction = self.pool.begin_with($begin).await.doing("starting a transaction")?;
                let entry = Self::append_in(&mut transaction, audit, key).await?;
                transaction.commit().await.doing("committing an audit entry")?;
                Ok(entry)
            }

            async fn audit_log(&self) -> Result<Vec<AuditEntry>> {
                let rows = sqlx::query("SELECT seq, time_ms, actor, action, target, detail, prev_mac, mac FROM audit ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await
                    .doing("reading the audit log")?;
                rows.iter().map(Self::audit_from).collect()
            }
        }
    };
}

/// The database type of a pool, for the macro.
trait PoolDatabase {
    type Database: sqlx::Database;
}

impl PoolDatabase for SqlitePool {
    type Database = sqlx::Sqlite;
}

impl PoolDatabase for PgPool {
    type Database = sqlx::Postgres;
}

/// The default store: one SQLite file in WAL mode.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if needed) and migrates the database at `path`.
    pub async fn open(path: &std::path::Path) -> Result<SqliteStore> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| StoreError::Open {
                url: format!("sqlite:{}", path.display()),
                error: sqlx::Error::Io(error),
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses no committed transaction on a process
            // crash (only on a power loss, the last ones).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Two processes opening a new database at once (`serve` and a CLI
        // command) contend for it: one finds it locked while the other
        // switches it to WAL, or finds the tables of the first migration
        // made; on another try it sees the database ready and recorded.
        let migrator = sqlx::migrate!("migrations/sqlite");
        let mut tries = 0;
        loop {
            let opened = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
                .map_err(|error| StoreError::Open { url: format!("sqlite:{}", path.display()), error });
            let ready = match opened {
                Ok(pool) => migrator.run(&pool).await.map(|()| pool).map_err(StoreError::from),
                Err(error) => Err(error),
            };
            match ready {
                Ok(pool) => return Ok(SqliteStore { pool }),
                Err(_) if tries < 8 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

// SQLite write transactions take the write lock when they begin: one that
// began as a reader could not become a writer once another writer had
// committed (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out), and the
// runner writes beside the pipeline.
backend!(SqliteStore, SqlitePool, "", "BEGIN IMMEDIATE");

/// PostgreSQL, for several workers or more than one machine.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and migrates the database.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|error| StoreError::Open { url: redact(url), error })?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }
}

backend!(PostgresStore, PgPool, "LOCK TABLE audit IN EXCLUSIVE MODE", "BEGIN");

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
