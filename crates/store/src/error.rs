//! What can go wrong in the store, named for what the caller can do about it.

use uuid::Uuid;

/// A store operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An event names an application that does not exist (`index` is its batch position).
    #[error("events[{index}].applicationId: unknown application '{id}'")]
    UnknownApplication {
        /// Position of the event in its batch, from 0.
        index: usize,
        /// The id given.
        id: Uuid,
    },
    /// An id that names nothing.
    #[error("unknown {kind} '{id}'")]
    NotFound {
        /// What was looked for: `application`, `alert`, `channel`, `delivery`, `dead letter`.
        kind: &'static str,
        /// The id given.
        id: String,
    },
    /// A change the current state does not allow (duplicate name, wrong channel state).
    #[error("{0}")]
    Conflict(String),
    /// The URL is not one certhook can store to.
    #[error("database_url: {0}")]
    BadUrl(String),
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed to apply.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (hand-edited rows, a newer schema).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the caller's input is at fault (exit code 2, HTTP 4xx).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, StoreError::UnknownApplication { .. } | StoreError::NotFound { .. } | StoreError::Conflict(_))
    }
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
