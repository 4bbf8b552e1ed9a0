//! Held messages settled by an analyst, through the API or the CLI: one
//! way to release or delete, audited, the bytes going with a deletion.

use std::path::Path;

use riposte_store::{AnyStore, NewAudit, QuarantineStatus, Quarantined, Store, StoreError};
use serde_json::json;
use tokio::sync::Mutex;

use crate::auth::AuditFiles;

/// Why a held message could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no quarantined message {0}")]
    NotFound(i64),
    #[error("the message is already {0}")]
    NotHeld(QuarantineStatus),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The file that keeps a held message's bytes.
pub fn message_path(dir: &Path, sha256: &str) -> std::path::PathBuf {
    dir.join(format!("{sha256}.eml"))
}

/// Releases or deletes the held message `id` (only a held one) as `actor`,
/// audited; a deletion removes its bytes, its record and hash stay.
pub async fn settle(
    store: &AnyStore,
    audit: &AuditFiles,
    lock: &Mutex<()>,
    dir: &Path,
    id: i64,
    status: QuarantineStatus,
    actor: &str,
) -> Result<Quarantined, SettleError> {
    let held = store.quarantined_message(id).await?.ok_or(SettleError::NotFound(id))?;
    if held.status != QuarantineStatus::Held {
        return Err(SettleError::NotHeld(held.status));
    }
    let entry = NewAudit {
        actor: actor.to_owned(),
        action: if status == QuarantineStatus::Released { "mail.release" } else { "mail.delete" }.into(),
        target: format!("quarantine:{id}"),
        detail: json!({"sha256": held.sha256}).to_string(),
    };
    let changed = {
        let _one_at_a_time = lock.lock().await;
        let (changed, written) =
            store.change_quarantined(id, status, &entry, &audit.key).await?.ok_or(SettleError::NotFound(id))?;
        if let Err(error) = audit.set_head(written.seq, &written.mac) {
            tracing::error!(%error, "cannot record the audit head");
        }
        changed
    };
    if status == QuarantineStatus::Deleted {
        let _ = tokio::fs::remove_file(message_path(dir, &held.sha256)).await;
    }
    Ok(changed)
}
