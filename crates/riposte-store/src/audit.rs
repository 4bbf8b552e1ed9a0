//! The audit trail: every change made through the API, append-only, each
//! entry authenticated together with the one before it.
//!
//! An entry's MAC is HMAC-SHA-256, under a key kept outside the database,
//! of its own fields and the previous entry's MAC. Editing an entry breaks
//! its MAC; deleting one breaks the sequence and the next entry's link;
//! rewriting the chain needs the key. The last sequence number and MAC are
//! also kept outside the database (the *head*), so that dropping the newest
//! entries is detected too.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::model::Millis;

/// The MAC of the entry before the first.
pub const GENESIS: &str = "genesis";

/// The secret the chain is authenticated with.
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl AuditKey {
    pub fn new(bytes: Vec<u8>) -> AuditKey {
        AuditKey(bytes)
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

/// A change to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAudit {
    /// Who: a token's id and name, or `cli`.
    pub actor: String,
    /// What, e.g. `alert.status`, `rule.disable`, `token.create`.
    pub action: String,
    /// On what, e.g. `alert:42`, `rule:<id>`, `token:<id>`.
    pub target: String,
    /// The change itself, as JSON text.
    pub detail: String,
}

/// An entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub time_ms: Millis,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub prev_mac: String,
    pub mac: String,
}

/// The MAC of an entry with these fields after `prev_mac`.
pub fn entry_mac(key: &AuditKey, seq: i64, time_ms: Millis, entry: &NewAudit, prev_mac: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    // Lengths before texts: no two different entries write the same bytes.
    for field in [entry.actor.as_str(), &entry.action, &entry.target, &entry.detail, prev_mac] {
        mac.update(&(field.len() as u64).to_le_bytes());
        mac.update(field.as_bytes());
    }
    mac.update(&seq.to_le_bytes());
    mac.update(&time_ms.to_le_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The newest entry's position and MAC, kept outside the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub mac: String,
}

/// Where a chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditBreak {
    #[error("audit entry {seq} was changed (its MAC does not match its fields)")]
    Edited { seq: i64 },
    #[error("audit entries are missing before entry {seq} (expected {expected})")]
    Missing { seq: i64, expected: i64 },
    #[error("audit entry {seq} does not follow the one before it")]
    Unlinked { seq: i64 },
    #[error("the newest audit entries are missing: the head is entry {head}, the log ends at {last}")]
    Truncated { head: i64, last: i64 },
    #[error("the audit head (entry {seq}) does not match the stored entry")]
    HeadMismatch { seq: i64 },
}

/// Checks a whole chain, oldest first, against the key and the head.
/// Returns how many entries were checked.
pub fn verify(entries: &[AuditEntry], key: &AuditKey, head: Option<&AuditHead>) -> Result<usize, AuditBreak> {
    let mut prev_mac = GENESIS.to_owned();
    let mut expected = 1;
    for entry in entries {
        if entry.seq != expected {
            return Err(AuditBreak::Missing { seq: entry.seq, expected });
        }
        if entry.prev_mac != prev_mac {
            return Err(AuditBreak::Unlinked { seq: entry.seq });
        }
        let fields = NewAudit {
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            detail: entry.detail.clone(),
        };
        if entry_mac(key, entry.seq, entry.time_ms, &fields, &entry.prev_mac) != entry.mac {
            return Err(AuditBreak::Edited { seq: entry.seq });
        }
        prev_mac = entry.mac.clone();
        expected += 1;
    }
    if let Some(head) = head {
        let last = expected - 1;
        if head.seq > last {
            return Err(AuditBreak::Truncated { head: head.seq, last });
        }
        let stored = entries.iter().find(|entry| entry.seq == head.seq);
        if stored.is_none_or(|entry| entry.mac != head.mac) {
            return Err(AuditBreak::HeadMismatch { seq: head.seq });
        }
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(key: &AuditKey, count: i64) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for seq in 1..=count {
            let fields = NewAudit {
                actor: "token:t1".into(),
                action: "alert.status".into(),
                target: format!("alert:{seq}"),
                detail: r#"{"status":"closed"}"#.into(),
            };
            let prev_mac = entries.last().map_or(GENESIS.to_owned(), |entry| entry.mac.clone());
            let mac = entry_mac(key, seq, 1_000 + seq, &fields, &prev_mac);
            entries.push(AuditEntry {
                seq,
                time_ms: 1_000 + seq,
                actor: fields.actor,
                action: fields.action,
                target: fields.target,
                detail: fields.detail,
                prev_mac,
                mac,
            });
        }
        entries
    }

    #[test]
    fn detects_edits_deletions_and_truncation() {
        let key = AuditKey::new(b"secret".to_vec());
        let entries = chain(&key, 5);
        let head = AuditHead { seq: 5, mac: entries[4].mac.clone() };
        assert_eq!(verify(&entries, &key, Some(&head)), Ok(5));

        let mut edited = entries.clone();
        edited[2].detail = r#"{"status":"new"}"#.into();
        assert_eq!(verify(&edited, &key, Some(&head)), Err(AuditBreak::Edited { seq: 3 }));

        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, &key, Some(&head)), Err(AuditBreak::Missing { seq: 3, expected: 2 }));

        let truncated = entries[..3].to_vec();
        assert_eq!(verify(&truncated, &key, Some(&head)), Err(AuditBreak::Truncated { head: 5, last: 3 }));

        // Rewriting the chain without the key does not verify.
        let forged = chain(&AuditKey::new(b"guess".to_vec()), 5);
        assert_eq!(verify(&forged, &key, None), Err(AuditBreak::Edited { seq: 1 }));
    }
}
