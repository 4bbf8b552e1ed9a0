//! Messages judged and held back, one way for every path they come by (the
//! API, an IMAP mailbox) and settled by an analyst one way (API or CLI):
//! audited, the bytes kept by hash and going with a deletion, and a message
//! held in a mailbox's quarantine folder moved back when released.

use std::path::Path;
use std::sync::Arc;

use riposte_store::{AnyStore, NewAudit, QuarantineStatus, Quarantined, Store, StoreError, VerdictCounts};
use serde_json::json;
use tokio::sync::Mutex;

use crate::auth::AuditFiles;
use crate::imap::ImapConfig;

/// Why a held message could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no quarantined message {0}")]
    NotFound(i64),
    #[error("the message is already {0}")]
    NotHeld(QuarantineStatus),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the message could not be moved back to the mailbox: {0}")]
    Mailbox(#[from] crate::imap::ImapError),
    #[error(
        "the message was taken from {0}, which is not the configured mailbox (email.imap): it cannot be moved back"
    )]
    MailboxGone(String),
}

/// Judges a message with what the organisation knows: its indicators, its
/// sender's history (which this message then adds to), what its analysts
/// taught, and SPF/DKIM/DMARC verified when a verifier is configured.
pub async fn judge(
    desk: &crate::api::AppState,
    raw: &[u8],
    mail: &riposte_mail::Mail,
    envelope: Option<&crate::mail_auth::Envelope>,
    now_ms: i64,
) -> Result<(riposte_mail::Analysis, Option<riposte_mail::Verified>), StoreError> {
    let store = &desk.store;
    let sender = mail.from.as_ref().map(|from| from.address.clone()).filter(|address| address.contains('@'));
    let domain = mail.from.as_ref().map_or("", |from| riposte_mail::domain::registered(from.domain())).to_owned();
    let history = match &sender {
        Some(address) => {
            let known = store.sender_history(address).await?.unwrap_or_default();
            Some(riposte_mail::History {
                messages: known.messages,
                legitimate: known.legitimate,
                phishing: known.phishing,
                domain_messages: store.domain_messages(&domain).await?,
            })
        }
        None => None,
    };
    let verified = match &desk.mail_auth {
        Some(auth) => Some(auth.verify(raw, envelope).await),
        None => None,
    };
    let settings = riposte_mail::Settings {
        intel: desk.intel.current(),
        now_ms,
        history,
        verified: verified.clone().unwrap_or_default(),
        learned: Some(desk.learned.get(store).await?),
        trusted_arc_sealers: desk.mail_auth.as_ref().map(|auth| auth.trusted_arc_sealers.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let analysis = riposte_mail::analyze(mail, &settings);
    if let Some(address) = &sender {
        store.note_sender(address, &domain, now_ms).await?;
    }
    Ok((analysis, verified))
}

/// What the organisation's analysts have taught, as riposte-mail reads it,
/// kept in memory: read again when a verdict was given through this
/// process, and at least every [`LearnedCache::FRESH_FOR`] (verdicts given
/// through another process sharing the store).
///
/// Reading it can take a second (hundreds of thousands of words). When it is
/// merely old, one task reads it again while the others go on judging with
/// what is kept; only when nothing is kept (at start, or after a verdict)
/// do they wait for the read.
#[derive(Default)]
pub struct LearnedCache {
    kept: Mutex<Kept>,
    /// Held by the one task reading from the store.
    reading: Mutex<()>,
}

#[derive(Default)]
struct Kept {
    verdicts: Option<(std::time::Instant, Arc<riposte_mail::Verdicts>)>,
    /// Counts [`LearnedCache::forget`]s: a read that began before one may
    /// miss the verdict that caused it, and is not kept.
    forgotten: u64,
}

impl Kept {
    /// What is kept, if it was read less than [`LearnedCache::FRESH_FOR`] ago.
    fn fresh(&self) -> Option<Arc<riposte_mail::Verdicts>> {
        let (read, verdicts) = self.verdicts.as_ref()?;
        (read.elapsed() < LearnedCache::FRESH_FOR).then(|| verdicts.clone())
    }
}

impl LearnedCache {
    pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(60);

    pub async fn get(&self, store: &AnyStore) -> Result<Arc<riposte_mail::Verdicts>, StoreError> {
        self.get_with(|| learned(store)).await
    }

    /// [`LearnedCache::get`], reading with `read`.
    async fn get_with<F, R>(&self, read: F) -> Result<Arc<riposte_mail::Verdicts>, StoreError>
    where
        F: Fn() -> R,
        R: std::future::Future<Output = Result<riposte_mail::Verdicts, StoreError>>,
    {
        loop {
            let (stale, forgotten) = {
                let kept = self.kept.lock().await;
                if let Some(fresh) = kept.fresh() {
                    return Ok(fresh);
                }
                (kept.verdicts.as_ref().map(|(_, verdicts)| verdicts.clone()), kept.forgotten)
            };
            let reading = match (self.reading.try_lock(), stale) {
                (Ok(reading), _) => reading,
                (Err(_), Some(stale)) => return Ok(stale),
                // Nothing to judge with yet: wait for the read under way.
                (Err(_), None) => self.reading.lock().await,
            };
            // Another task may have read it while this one waited.
            if let Some(fresh) = self.kept.lock().await.fresh() {
                return Ok(fresh);
            }
            let started = std::time::Instant::now();
            let verdicts = Arc::new(read().await?);
            let mut kept = self.kept.lock().await;
            drop(reading);
            if kept.forgotten == forgotten {
                kept.verdicts = Some((started, verdicts.clone()));
                return Ok(verdicts);
            }
        }
    }

    /// Forgets what was read: the next message is judged with the new verdicts.
    pub async fn forget(&self) {
        let mut kept = self.kept.lock().await;
        kept.verdicts = None;
        kept.forgotten += 1;
    }
}

/// What the organisation's analysts have judged, as riposte-mail reads it.
pub async fn learned(store: &AnyStore) -> Result<riposte_mail::Verdicts, StoreError> {
    let mut verdicts = riposte_mail::Verdicts::default();
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    for row in store.check_verdicts().await? {
        let counts = (count(row.phishing), count(row.legitimate));
        if row.name == "*" {
            (verdicts.phishing, verdicts.legitimate) = counts;
        } else {
            verdicts.checks.insert(row.name, counts);
        }
    }
    for row in store.word_verdicts().await? {
        let counts = (count(row.phishing), count(row.legitimate));
        if row.name == "*" {
            (verdicts.words.phishing, verdicts.words.legitimate) = counts;
        } else {
            verdicts.words.tokens.insert(row.name, counts);
        }
    }
    Ok(verdicts)
}

/// What `verdicts` counted, as the store keeps it: rows per check and per
/// word, each with a `*` row counting the judged messages (the reverse of
/// [`learned`]).
pub fn verdict_rows(verdicts: &riposte_mail::Verdicts) -> (Vec<VerdictCounts>, Vec<VerdictCounts>) {
    let row = |name: &str, (phishing, legitimate): (u64, u64)| VerdictCounts {
        name: name.to_owned(),
        phishing: i64::try_from(phishing).unwrap_or(i64::MAX),
        legitimate: i64::try_from(legitimate).unwrap_or(i64::MAX),
    };
    let rows = |all: (u64, u64), counted: &mut dyn Iterator<Item = (&String, &(u64, u64))>| {
        let mut rows: Vec<VerdictCounts> = counted.map(|(name, counts)| row(name, *counts)).collect();
        rows.push(row("*", all));
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    };
    let words = &verdicts.words;
    (
        rows((verdicts.phishing, verdicts.legitimate), &mut verdicts.checks.iter()),
        rows((words.phishing, words.legitimate), &mut words.tokens.iter()),
    )
}

/// Why a message could not be held.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("the message could not be kept: {0}")]
    Keep(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keeps a judged message's bytes by hash (before anything refers to
/// them), records it held with where it came from (`api`, or the mailbox's
/// [`ImapConfig::origin`]) and its audit entry, and raises its alert.
pub async fn hold(
    desk: &crate::api::AppState,
    raw: &[u8],
    mail: &riposte_mail::Mail,
    analysis: &riposte_mail::Analysis,
    now_ms: i64,
    actor: &str,
    origin: &str,
) -> Result<Quarantined, HoldError> {
    use sha2::Digest as _;
    let (store, audit) = (&desk.store, &desk.audit);
    let sha256 = hex::encode(sha2::Sha256::digest(raw));
    let dir = &desk.quarantine_dir;
    let path = message_path(dir, &sha256);
    let write = async {
        tokio::fs::create_dir_all(dir).await?;
        let temporary = path.with_extension("eml.new");
        tokio::fs::write(&temporary, raw).await?;
        tokio::fs::rename(&temporary, &path).await
    };
    write.await.map_err(HoldError::Keep)?;
    let held = riposte_store::NewQuarantined {
        sha256: sha256.clone(),
        received_ms: now_ms,
        sender: mail.from.as_ref().map_or_else(String::new, |from| from.address.clone()),
        subject: mail.subject.clone(),
        verdict: analysis.verdict.as_str().to_owned(),
        score: analysis.score,
        findings: json!(analysis.findings),
        origin: origin.to_owned(),
    };
    let entry = NewAudit {
        actor: actor.to_owned(),
        action: "mail.quarantine".into(),
        target: format!("message:{sha256}"),
        detail: json!({"verdict": held.verdict, "score": held.score, "origin": origin}).to_string(),
    };
    let held = {
        let _one_at_a_time = desk.audit_lock.lock().await;
        let (held, written) = store.quarantine(&held, &entry, &audit.key).await?;
        audit.keep_head(&written);
        held
    };
    let reasons: Vec<&str> = analysis.findings.iter().take(3).map(|finding| finding.check).collect();
    store.record(&[crate::alert::mail_detection(&held, &reasons)], &[], None).await?;
    Ok(held)
}

/// The file that keeps a held message's bytes.
pub fn message_path(dir: &Path, sha256: &str) -> std::path::PathBuf {
    dir.join(format!("{sha256}.eml"))
}

/// Releases or deletes the held message `id` (only a held one) as `actor`,
/// audited; a deletion removes its bytes, its record and hash stay. With a
/// mailbox, a released message found in its quarantine folder (by
/// Message-ID) is moved back first; when the mailbox cannot be reached
/// nothing changes. A message not in the folder (one sent to the API) is
/// released in the store only.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    store: &AnyStore,
    audit: &AuditFiles,
    lock: &Mutex<()>,
    dir: &Path,
    imap: Option<&ImapConfig>,
    id: i64,
    status: QuarantineStatus,
    actor: &str,
) -> Result<Quarantined, SettleError> {
    let held = store.quarantined_message(id).await?.ok_or(SettleError::NotFound(id))?;
    if held.status != QuarantineStatus::Held {
        return Err(SettleError::NotHeld(held.status));
    }
    // A message taken from a mailbox goes back to it; one sent to the API
    // has nowhere to go back to; one held before origins were recorded ('')
    // is looked for in the configured mailbox, as it was then.
    let mailbox = match held.origin.as_str() {
        _ if status != QuarantineStatus::Released => None,
        "" => imap,
        origin if origin.starts_with("imap://") => Some(
            imap.filter(|imap| imap.origin() == origin).ok_or_else(|| SettleError::MailboxGone(origin.to_owned()))?,
        ),
        _ => None,
    };
    if let Some(imap) = mailbox
        && let Ok(raw) = tokio::fs::read(message_path(dir, &held.sha256)).await
        && let Some(mail) = riposte_mail::parse(&raw, &riposte_mail::Limits::default())
        && !mail.message_id.is_empty()
    {
        let mut mailbox = crate::imap::Mailbox::connect(imap).await?;
        mailbox.release(&mail.message_id).await?;
        let _ = mailbox.logout().await;
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
        audit.keep_head(&written);
        changed
    };
    if status == QuarantineStatus::Deleted {
        let _ = tokio::fs::remove_file(message_path(dir, &held.sha256)).await;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::sync::Notify;

    use super::*;

    fn verdicts(phishing: u64) -> riposte_mail::Verdicts {
        riposte_mail::Verdicts { phishing, ..Default::default() }
    }

    fn unread() -> std::future::Ready<Result<riposte_mail::Verdicts, StoreError>> {
        panic!("read from the store although what is kept was enough")
    }

    /// A cache holding `phishing` counted, read longer ago than it stays fresh.
    async fn old_cache(phishing: u64) -> Arc<LearnedCache> {
        let cache = Arc::new(LearnedCache::default());
        let long_ago = Instant::now().checked_sub(LearnedCache::FRESH_FOR + Duration::from_secs(1)).unwrap();
        cache.kept.lock().await.verdicts = Some((long_ago, Arc::new(verdicts(phishing))));
        cache
    }

    /// Starts a task reading `phishing` once `go` is notified (one more at
    /// each read after the first); returns once it is reading.
    async fn slow_read(
        cache: &Arc<LearnedCache>,
        go: &Arc<Notify>,
        phishing: u64,
    ) -> tokio::task::JoinHandle<Arc<riposte_mail::Verdicts>> {
        let (reading, go) = (cache.clone(), go.clone());
        let task = tokio::spawn(async move {
            let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let read = || {
                let (go, reads) = (go.clone(), reads.clone());
                async move {
                    go.notified().await;
                    Ok(verdicts(phishing + reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
                }
            };
            reading.get_with(read).await.unwrap()
        });
        // (A probe holds the lock only between two awaits, when the task
        // cannot run: tests run on one thread.)
        while cache.reading.try_lock().is_ok() {
            tokio::task::yield_now().await;
        }
        task
    }

    #[tokio::test]
    async fn old_verdicts_serve_while_one_task_reads_them_again() {
        let cache = old_cache(1).await;
        let go = Arc::new(Notify::new());
        let reader = slow_read(&cache, &go, 2).await;
        assert_eq!(cache.get_with(unread).await.unwrap().phishing, 1, "the old ones, without waiting");
        go.notify_one();
        assert_eq!(reader.await.unwrap().phishing, 2);
        assert_eq!(cache.get_with(unread).await.unwrap().phishing, 2, "the new ones are kept");
    }

    #[tokio::test]
    async fn a_read_begun_before_a_verdict_is_not_kept() {
        let cache = old_cache(1).await;
        let go = Arc::new(Notify::new());
        let reader = slow_read(&cache, &go, 2).await;
        cache.forget().await;
        // The reader's first read ends, is dropped, and it reads again.
        go.notify_one();
        tokio::task::yield_now().await;
        go.notify_one();
        assert_eq!(reader.await.unwrap().phishing, 3, "read again after the verdict");
        assert_eq!(cache.get_with(unread).await.unwrap().phishing, 3, "the second read was kept");
    }
}
