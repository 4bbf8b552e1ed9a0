use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// Why a rule (or a whole rule file) was not loaded.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize)]
pub struct LoadError {
    /// The file, as the caller named it.
    pub file: String,
    /// The 1-based line near the problem, when known.
    pub line: Option<usize>,
    pub rule_id: Option<String>,
    pub rule_title: Option<String>,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        match (&self.rule_title, &self.rule_id) {
            (Some(title), Some(id)) => write!(f, ": rule {title:?} ({id})")?,
            (Some(title), None) => write!(f, ": rule {title:?}")?,
            (None, Some(id)) => write!(f, ": rule {id}")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why log-source or field mappings could not be loaded.
#[derive(Debug, Error)]
pub enum MappingError {
    #[error("invalid mapping YAML: {0}")]
    Yaml(String),
    #[error("mapping: {0}")]
    Invalid(String),
}
