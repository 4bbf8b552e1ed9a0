//! Secrets a connector needs: read from the environment or a file when the
//! connector is built, and never shown (their `Debug` is a placeholder).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from. A plain string is taken as the secret itself
/// (convenient for tests and loopback services; prefer `env` or `file`).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Secret {
    Env {
        env: String,
    },
    File {
        file: PathBuf,
    },
    /// Kept encrypted in the data directory (`riposte secret set NAME`).
    Stored {
        stored: String,
    },
    Value(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env { env } => write!(f, "Secret(env {env})"),
            Secret::File { file } => write!(f, "Secret(file {})", file.display()),
            Secret::Stored { stored } => write!(f, "Secret(stored {stored})"),
            Secret::Value(_) => f.write_str("Secret(given)"),
        }
    }
}

/// A secret's value; shown as `(secret)`.
#[derive(Clone, PartialEq)]
pub struct SecretValue(String);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        SecretValue(value)
    }
}

impl SecretValue {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Secret {
    /// The secret's value, or why it cannot be read (naming where, never what).
    pub fn read(&self, vault: Option<&crate::vault::Vault>) -> Result<SecretValue, String> {
        match self {
            Secret::Stored { stored } => match vault {
                Some(vault) => vault.get(stored).map_err(|error| error.to_string()),
                None => Err(format!("secret {stored} is stored, and no data directory's vault is open here")),
            },
            Secret::Env { env } => {
                std::env::var(env).map(SecretValue).map_err(|_| format!("the environment variable {env} is not set"))
            }
            Secret::File { file } => std::fs::read_to_string(file)
                .map(|text| SecretValue(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|error| format!("{}: {error}", file.display())),
            Secret::Value(value) => Ok(SecretValue(value.clone())),
        }
    }
}
