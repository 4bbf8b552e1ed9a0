//! What can go wrong in the store.

/// A store error, with what the store was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {url}: {error}")]
    Open { url: String, error: sqlx::Error },
    #[error("cannot migrate the store: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("store query failed while {doing}: {error}")]
    Query { doing: &'static str, error: sqlx::Error },
    #[error("unsupported store URL {0:?} (expected sqlite:PATH or postgres://...)")]
    UnsupportedUrl(String),
    #[error("stored {what} is not valid: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(error)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Adds what the store was doing to a driver error.
pub(crate) trait Doing<T> {
    fn doing(self, doing: &'static str) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, sqlx::Error> {
    fn doing(self, doing: &'static str) -> Result<T> {
        self.map_err(|error| StoreError::Query { doing, error })
    }
}
