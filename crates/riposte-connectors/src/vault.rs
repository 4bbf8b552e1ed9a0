//! Secrets kept encrypted in the data directory: `secrets.sealed` holds
//! each secret sealed with ChaCha20-Poly1305 under a key in `secrets.key`
//! (readable by its owner only, made the first time). The name is the
//! additional data, so a sealed value moved under another name does not
//! open. A configuration names a kept secret as `{stored: NAME}`;
//! `riposte secret set NAME` keeps one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::SecretValue;

const KEY_FILE: &str = "secrets.key";
const SEALED_FILE: &str = "secrets.sealed";

/// Why the vault could not be used.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("secret {0} is not kept (riposte secret set {0})")]
    Missing(String),
    #[error("secret {0} does not open with this data directory's key")]
    WrongKey(String),
    #[error("secret names are letters, digits, '_', '-' and '.'")]
    BadName,
}

/// The sealed secrets of one data directory.
pub struct Vault {
    key: LessSafeKey,
    sealed: BTreeMap<String, String>,
    dir: PathBuf,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("dir", &self.dir).field("names", &self.sealed.keys().collect::<Vec<_>>()).finish()
    }
}

impl Vault {
    /// Opens the vault in `dir`, making its key the first time.
    pub fn open(dir: &Path) -> Result<Vault, VaultError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |error| VaultError::Io { path, error }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join(KEY_FILE);
        let key_bytes = match std::fs::read_to_string(&key_path) {
            Ok(text) => hex::decode(text.trim()).ok().filter(|bytes| bytes.len() == 32).ok_or_else(|| {
                VaultError::Corrupt { path: key_path.clone(), reason: "not a 32-byte hex key".into() }
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| VaultError::Corrupt { path: key_path.clone(), reason: "no randomness".into() })?;
                write_private(&key_path, hex::encode(bytes).as_bytes()).map_err(io(&key_path))?;
                bytes.to_vec()
            }
            Err(error) => return Err(VaultError::Io { path: key_path, error }),
        };
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key_bytes).expect("a 32-byte key"));
        let sealed_path = dir.join(SEALED_FILE);
        let sealed = match std::fs::read(&sealed_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|error| VaultError::Corrupt { path: sealed_path.clone(), reason: error.to_string() })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => return Err(VaultError::Io { path: sealed_path, error }),
        };
        Ok(Vault { key, sealed, dir: dir.to_owned() })
    }

    /// The names of the kept secrets.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sealed.keys().map(String::as_str)
    }

    /// A kept secret, opened.
    pub fn get(&self, name: &str) -> Result<SecretValue, VaultError> {
        let text = self.sealed.get(name).ok_or_else(|| VaultError::Missing(name.to_owned()))?;
        let wrong = || VaultError::WrongKey(name.to_owned());
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| wrong())?;
        if bytes.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut sealed = sealed.to_vec();
        let opened = self.key.open_in_place(nonce, Aad::from(name.as_bytes()), &mut sealed).map_err(|_| wrong())?;
        String::from_utf8(opened.to_vec()).map(SecretValue::from).map_err(|_| wrong())
    }

    /// Keeps `value` under `name` (replacing one there), sealed, on disk at once.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), VaultError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(VaultError::BadName);
        }
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| VaultError::Corrupt { path: self.dir.clone(), reason: "no randomness".into() })?;
        let mut sealed = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(name.as_bytes()), &mut sealed)
            .expect("sealing a short value");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        self.sealed.insert(name.to_owned(), base64::engine::general_purpose::STANDARD.encode(bytes));
        self.save()
    }

    /// Forgets `name`; whether it was kept.
    pub fn remove(&mut self, name: &str) -> Result<bool, VaultError> {
        let removed = self.sealed.remove(name).is_some();
        if removed {
            self.save()?;
        }
        Ok(removed)
    }

    fn save(&self) -> Result<(), VaultError> {
        let path = self.dir.join(SEALED_FILE);
        let text = serde_json::to_vec_pretty(&self.sealed).expect("a map of strings");
        let temporary = path.with_extension("tmp");
        write_private(&temporary, &text).map_err(|error| VaultError::Io { path: temporary.clone(), error })?;
        std::fs::rename(&temporary, &path).map_err(|error| VaultError::Io { path, error })
    }
}

/// Writes a file only its owner may read, and syncs it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sealed_on_disk_and_open_only_under_their_name_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = Vault::open(dir.path()).unwrap();
        vault.set("jira_token", "s3cret-value").unwrap();
        let on_disk = std::fs::read_to_string(dir.path().join(SEALED_FILE)).unwrap();
        assert!(!on_disk.contains("s3cret-value"));
        let again = Vault::open(dir.path()).unwrap();
        assert_eq!(again.get("jira_token").unwrap().expose(), "s3cret-value");
        assert!(matches!(again.get("other"), Err(VaultError::Missing(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is its owner's only");
        }

        // Moved under another name: does not open.
        let mut moved: BTreeMap<String, String> = serde_json::from_str(&on_disk).unwrap();
        let value = moved.remove("jira_token").unwrap();
        moved.insert("slack_url".into(), value);
        std::fs::write(dir.path().join(SEALED_FILE), serde_json::to_string(&moved).unwrap()).unwrap();
        assert!(matches!(Vault::open(dir.path()).unwrap().get("slack_url"), Err(VaultError::WrongKey(_))));

        // Another data directory's key does not open it either.
        let other = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join(SEALED_FILE), other.path().join(SEALED_FILE)).unwrap();
        assert!(matches!(Vault::open(other.path()).unwrap().get("slack_url"), Err(VaultError::WrongKey(_))));
        assert!(matches!(vault.set("bad name", "x"), Err(VaultError::BadName)));
    }
}
