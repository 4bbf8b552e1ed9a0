//! API tokens and the audit trail's key.
//!
//! A token reads `rpt_<id>_<secret>`: the id finds it, the secret proves it.
//! Only the SHA-256 of the secret is stored (secrets are 256 random bits, so
//! a plain hash is enough), and the token is shown once, when it is made.

use std::path::{Path, PathBuf};

use riposte_store::{AuditEntry, AuditHead, AuditKey, Scope, Token};
use sha2::{Digest, Sha256};

use crate::pipeline::now_ms;

const PREFIX: &str = "rpt_";

/// A new token: what to store, and the text to give its owner once.
pub struct IssuedToken {
    pub token: Token,
    pub secret_sha256: String,
    /// `rpt_<id>_<secret>`: never stored, never logged.
    pub text: String,
}

pub(crate) fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| std::io::Error::other(error.to_string()))?;
    Ok(hex::encode(buffer))
}

pub fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Makes a token with a fresh id and secret.
pub fn issue(name: &str, scope: Scope) -> std::io::Result<IssuedToken> {
    let id = random_hex(6)?;
    let secret = random_hex(32)?;
    Ok(IssuedToken {
        token: Token { id: id.clone(), name: name.to_owned(), scope, created_ms: now_ms() },
        secret_sha256: secret_sha256(&secret),
        text: format!("{PREFIX}{id}_{secret}"),
    })
}

/// The id and secret of a token's text (from `Authorization: Bearer ...`).
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim().strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && secret.len() == 64 && rest.bytes().all(|byte| byte.is_ascii_hexdigit() || byte == b'_'))
        .then_some((id, secret))
}

/// Equal hashes, compared in constant time.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
}

/// The audit key and head files in the data directory.
pub struct AuditFiles {
    pub key: AuditKey,
    head: PathBuf,
}

impl AuditFiles {
    /// Reads the key, making one (readable by the owner only) the first time.
    pub fn open(data_dir: &Path) -> std::io::Result<AuditFiles> {
        std::fs::create_dir_all(data_dir)?;
        let key_path = data_dir.join("audit.key");
        let key = match std::fs::read_to_string(&key_path) {
            Ok(text) => hex::decode(text.trim()).map_err(|error| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {error}", key_path.display()))
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = random_hex(32)?;
                write_private(&key_path, key.as_bytes())?;
                hex::decode(key).map_err(std::io::Error::other)?
            }
            Err(error) => return Err(error),
        };
        Ok(AuditFiles { key: AuditKey::new(key), head: data_dir.join("audit.head") })
    }

    /// Remembers the newest entry outside the database.
    pub fn set_head(&self, seq: i64, mac: &str) -> std::io::Result<()> {
        let temporary = self.head.with_extension("head.new");
        write_private(&temporary, format!("{seq} {mac}\n").as_bytes())?;
        std::fs::rename(&temporary, &self.head)
    }

    /// Remembers `entry` as the newest; a failure is logged, not returned
    /// (the entry is in the store, and `riposte audit verify` reports a head
    /// that lags behind it).
    pub fn keep_head(&self, entry: &AuditEntry) {
        if let Err(error) = self.set_head(entry.seq, &entry.mac) {
            tracing::error!(%error, "cannot record the audit head");
        }
    }

    pub fn head(&self) -> std::io::Result<Option<AuditHead>> {
        match std::fs::read_to_string(&self.head) {
            Ok(text) => {
                let (seq, mac) = text.trim().split_once(' ').ok_or_else(|| bad(&self.head))?;
                Ok(Some(AuditHead { seq: seq.parse().map_err(|_| bad(&self.head))?, mac: mac.to_owned() }))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

fn bad(path: &Path) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not an audit head", path.display()))
}

/// Writes a file only its owner can read (one way for the data directory's
/// keys, tokens and positions, shared with the secrets vault).
pub use riposte_connectors::vault::write_private;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_only_their_hash_is_kept() {
        let issued = issue("soc", Scope::Read).unwrap();
        let (id, secret) = parse(&issued.text).unwrap();
        assert_eq!(id, issued.token.id);
        assert!(same_hash(&secret_sha256(secret), &issued.secret_sha256));
        assert!(!issued.secret_sha256.contains(secret));
        assert!(parse("rpt_nothex_x").is_none());
        assert!(parse("Bearer abc").is_none());
        assert!(!same_hash("abc", "abd"));
    }

    #[test]
    fn the_audit_key_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = AuditFiles::open(dir.path()).unwrap();
        let second = AuditFiles::open(dir.path()).unwrap();
        assert_eq!(format!("{:?}", first.key), "AuditKey(..)", "never printed");
        first.set_head(3, "abc").unwrap();
        assert_eq!(second.head().unwrap(), Some(AuditHead { seq: 3, mac: "abc".into() }));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("audit.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
