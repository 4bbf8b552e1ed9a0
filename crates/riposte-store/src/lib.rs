//! Where Riposte keeps alerts, the events that matched (and a bounded window
//! of the others), API tokens, rule states and the audit trail.
//!
//! One [`Store`] trait, two backends with the same SQL and the same tests:
//! [`SqliteStore`] (the default, one file) and [`PostgresStore`] (for several
//! workers). [`AnyStore`] picks one from a URL.

mod audit;
mod backend;
mod error;
mod model;

pub use audit::{AuditBreak, AuditEntry, AuditHead, AuditKey, GENESIS, NewAudit, entry_mac, verify};
pub use backend::{MAX_PAGE, PostgresStore, SqliteStore, Store, redact};
pub use error::{Result, StoreError};
pub use model::{
    Alert, AlertChange, AlertFilter, AlertStatus, CorrelationState, Entities, Millis, NewDetection, NewEvent,
    NewQuarantined, NewRun, ObservableSearch, Page, QuarantineStatus, Quarantined, Recorded, RuleState, Run, RunStatus,
    RunStep, RunUndo, Scope, SenderHistory, StoredEvent, TicketLink, Token, Verdict, VerdictCounts,
};

mod any;
pub use any::AnyStore;
