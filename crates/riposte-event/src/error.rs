use thiserror::Error;

/// Why a record could not become an event.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("more than {limit} fields in one record")]
    TooManyFields { limit: usize },
}

pub type Result<T, E = DecodeError> = std::result::Result<T, E>;
