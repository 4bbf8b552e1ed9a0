//! A store chosen at run time.

use crate::audit::{AuditEntry, AuditKey, NewAudit};
use crate::backend::{PostgresStore, SqliteStore, Store};
use crate::error::{Result, StoreError};
use crate::model::{
    Alert, AlertChange, AlertFilter, CorrelationState, Millis, NewDetection, NewEvent, NewQuarantined, NewRun,
    ObservableSearch, Page, QuarantineStatus, Quarantined, Recorded, RuleState, Run, RunStatus, RunStep, RunUndo,
    SenderHistory, StoredEvent, TicketLink, Token, VerdictCounts,
};

/// The store a configuration names.
#[derive(Clone, Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl AnyStore {
    /// Opens `sqlite:PATH` or `postgres://...` (also `postgresql://`).
    pub async fn open(url: &str) -> Result<AnyStore> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return Ok(AnyStore::Sqlite(SqliteStore::open(std::path::Path::new(path)).await?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(AnyStore::Postgres(PostgresStore::connect(url).await?));
        }
        Err(StoreError::UnsupportedUrl(crate::backend::redact(url)))
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Postgres($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn record(
        &self,
        detections: &[NewDetection],
        events: &[NewEvent],
        correlation: Option<&CorrelationState>,
    ) -> Result<Recorded> {
        dispatch!(self, store => store.record(detections, events, correlation))
    }

    async fn correlation_state(&self) -> Result<Option<CorrelationState>> {
        dispatch!(self, store => store.correlation_state())
    }

    async fn events_with_observables(&self, search: &ObservableSearch, since_ms: Millis) -> Result<Vec<StoredEvent>> {
        dispatch!(self, store => store.events_with_observables(search, since_ms))
    }

    async fn prune_events(&self, keep: u64) -> Result<u64> {
        dispatch!(self, store => store.prune_events(keep))
    }

    async fn event(&self, seq: i64) -> Result<Option<StoredEvent>> {
        dispatch!(self, store => store.event(seq))
    }

    async fn event_counts(&self) -> Result<(u64, u64)> {
        dispatch!(self, store => store.event_counts())
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Page<Alert>> {
        dispatch!(self, store => store.alerts(filter))
    }

    async fn alert(&self, id: i64) -> Result<Option<Alert>> {
        dispatch!(self, store => store.alert(id))
    }

    async fn change_alert(
        &self,
        id: i64,
        change: &AlertChange,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> Result<Option<(Alert, AuditEntry)>> {
        dispatch!(self, store => store.change_alert(id, change, audit, key))
    }

    async fn create_token(
        &self,
        token: &Token,
        secret_sha256: &str,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> Result<AuditEntry> {
        dispatch!(self, store => store.create_token(token, secret_sha256, audit, key))
    }

    async fn token(&self, id: &str) -> Result<Option<(Token, String)>> {
        dispatch!(self, store => store.token(id))
    }

    async fn rule_states(&self) -> Result<Vec<RuleState>> {
        dispatch!(self, store => store.rule_states())
    }

    async fn set_rule_state(
        &self,
        rule_id: &str,
        enabled: bool,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> Result<AuditEntry> {
        dispatch!(self, store => store.set_rule_state(rule_id, enabled, audit, key))
    }

    async fn append_audit(&self, audit: &NewAudit, key: &AuditKey) -> Result<AuditEntry> {
        dispatch!(self, store => store.append_audit(audit, key))
    }

    async fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        dispatch!(self, store => store.audit_log())
    }

    async fn quarantine(
        &self,
        message: &NewQuarantined,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> Result<(Quarantined, AuditEntry)> {
        dispatch!(self, store => store.quarantine(message, audit, key))
    }

    async fn quarantined(&self, status: Option<QuarantineStatus>, limit: u32) -> Result<Vec<Quarantined>> {
        dispatch!(self, store => store.quarantined(status, limit))
    }

    async fn quarantined_message(&self, id: i64) -> Result<Option<Quarantined>> {
        dispatch!(self, store => store.quarantined_message(id))
    }

    async fn sender_history(&self, address: &str) -> Result<Option<SenderHistory>> {
        dispatch!(self, store => store.sender_history(address))
    }

    async fn note_sender(&self, address: &str, domain: &str, seen_ms: Millis) -> Result<()> {
        dispatch!(self, store => store.note_sender(address, domain, seen_ms))
    }

    async fn domain_messages(&self, domain: &str) -> Result<i64> {
        dispatch!(self, store => store.domain_messages(domain))
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
        dispatch!(self, store => store.judge_sender(address, phishing, checks, words, audit, key))
    }

    async fn learn_verdicts(
        &self,
        checks: &[VerdictCounts],
        words: &[VerdictCounts],
        audit: &NewAudit,
        key: &AuditKey,
    ) -> Result<AuditEntry> {
        dispatch!(self, store => store.learn_verdicts(checks, words, audit, key))
    }

    async fn check_verdicts(&self) -> Result<Vec<VerdictCounts>> {
        dispatch!(self, store => store.check_verdicts())
    }

    async fn word_verdicts(&self) -> Result<Vec<VerdictCounts>> {
        dispatch!(self, store => store.word_verdicts())
    }

    async fn prune_word_verdicts(&self, keep: u64) -> Result<u64> {
        dispatch!(self, store => store.prune_word_verdicts(keep))
    }

    async fn change_quarantined(
        &self,
        id: i64,
        status: QuarantineStatus,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> Result<Option<(Quarantined, AuditEntry)>> {
        dispatch!(self, store => store.change_quarantined(id, status, audit, key))
    }

    async fn create_run(&self, run: &NewRun) -> Result<Option<Run>> {
        dispatch!(self, store => store.create_run(run))
    }

    async fn run(&self, id: &str) -> Result<Option<Run>> {
        dispatch!(self, store => store.run(id))
    }

    async fn runs(&self, playbook: Option<&str>, status: Option<RunStatus>, limit: u32) -> Result<Vec<Run>> {
        dispatch!(self, store => store.runs(playbook, status, limit))
    }

    async fn runs_due(&self, now_ms: Millis) -> Result<Vec<Run>> {
        dispatch!(self, store => store.runs_due(now_ms))
    }

    async fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        wake_ms: Option<Millis>,
        outcome: Option<&serde_json::Value>,
    ) -> Result<()> {
        dispatch!(self, store => store.set_run_status(id, status, wake_ms, outcome))
    }

    async fn prune_runs(&self, ended_before_ms: Millis) -> Result<u64> {
        dispatch!(self, store => store.prune_runs(ended_before_ms))
    }

    async fn run_steps(&self, run_id: &str) -> Result<Vec<RunStep>> {
        dispatch!(self, store => store.run_steps(run_id))
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
        dispatch!(self, store => store.record_step(run_id, path, state, entry, undo, owner))
    }

    async fn decide_step(
        &self,
        run_id: &str,
        path: &str,
        entry: &serde_json::Value,
        audit: &NewAudit,
        key: &AuditKey,
    ) -> Result<Option<AuditEntry>> {
        dispatch!(self, store => store.decide_step(run_id, path, entry, audit, key))
    }

    async fn waiting_steps(&self) -> Result<Vec<RunStep>> {
        dispatch!(self, store => store.waiting_steps())
    }

    async fn pending_undos(&self, run_id: Option<&str>, due_by: Option<Millis>) -> Result<Vec<RunUndo>> {
        dispatch!(self, store => store.pending_undos(run_id, due_by))
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
        dispatch!(self, store => store.settle_undo(run_id, path, done, detail, audit, key))
    }

    async fn actions_since(&self, kind: &str, playbook: Option<&str>, since_ms: Millis) -> Result<u64> {
        dispatch!(self, store => store.actions_since(kind, playbook, since_ms))
    }

    async fn note_action(&self, run_id: &str, path: &str, playbook: &str, kind: &str, at_ms: Millis) -> Result<()> {
        dispatch!(self, store => store.note_action(run_id, path, playbook, kind, at_ms))
    }

    async fn link_ticket(&self, link: &TicketLink) -> Result<()> {
        dispatch!(self, store => store.link_ticket(link))
    }

    async fn open_ticket_links(&self) -> Result<Vec<TicketLink>> {
        dispatch!(self, store => store.open_ticket_links())
    }

    async fn update_ticket_link(
        &self,
        status_action: &str,
        ticket: &str,
        status: &serde_json::Value,
        closed: bool,
    ) -> Result<()> {
        dispatch!(self, store => store.update_ticket_link(status_action, ticket, status, closed))
    }

    async fn lease_run(&self, id: &str, owner: &str, now_ms: Millis, until_ms: Millis) -> Result<bool> {
        dispatch!(self, store => store.lease_run(id, owner, now_ms, until_ms))
    }
}
