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
    /// Input that does not pass the checks (an alert update that leaves it invalid).
    #[error(transparent)]
    Invalid(#[from] certhook_core::validate::ValidationError),
    /// A change the current state does not allow (duplicate name, wrong channel state).
    #[error("{0}")]
    Conflict(String),
    /// The URL is not one certhook can store to.
    #[error("database_url: {0}")]
    BadUrl(String),
    /// PostgreSQL could not be reached or refused this client, said once, with where and
    /// what to check.
    #[error("{0}")]
    Connect(String),
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed to apply.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A channel's stored secret does not open under the configured keys.
    #[error("channel {channel}: secret_key: {source}")]
    Sealed {
        /// The channel whose secret it is.
        channel: String,
        /// Which key is missing, or that the value is damaged.
        source: certhook_core::seal::SealError,
    },
    /// A stored value could not be read back (hand-edited rows, a newer schema).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the caller's input is at fault (exit code 2, HTTP 4xx).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::UnknownApplication { .. }
                | StoreError::NotFound { .. }
                | StoreError::Conflict(_)
                | StoreError::Invalid(_)
        )
    }
}

impl StoreError {
    /// What keeps the database from working just now, if that is the trouble (a full disk,
    /// an unreachable or restarting server): the operation may succeed later, so an
    /// ingest answers 503 with this and producers retry. Never the raw error, which may
    /// name hosts or paths.
    pub fn unavailable(&self) -> Option<&'static str> {
        let StoreError::Database(e) = self else { return None };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            // A connection that broke mid-handshake (a server going down or a proxy dropping
            // it) reads as a protocol error.
            | sqlx::Error::Protocol(_) => Some("the database is unreachable"),
            sqlx::Error::Database(db) => {
                let code = db.code()?;
                if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
                    // SQLSTATE classes 08 (connection), 53 (insufficient resources, disk
                    // full included), 57P (the server is shutting down or starting).
                    return match code.as_ref() {
                        "53100" => Some("the database or its disk is full"),
                        // A deadlock or serialization failure broke this transaction for
                        // another's sake (two group commits with overlapping keys): the
                        // same write succeeds when sent again.
                        "40P01" | "40001" => Some("the database was busy with a conflicting write"),
                        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
                            Some("the database is unavailable")
                        }
                        _ => None,
                    };
                }
                // SQLite: primary result codes (extended ones carry them in the low byte).
                match code.parse::<i32>().ok()? & 0xff {
                    13 => Some("the database or its disk is full"),
                    10 => Some("the database's disk cannot be written"),
                    5 | 6 => Some("the database is busy"),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_is_unavailable_and_bad_input_is_not() {
        let io = StoreError::Database(sqlx::Error::Io(std::io::Error::other("connection reset")));
        assert_eq!(io.unavailable(), Some("the database is unreachable"));
        assert_eq!(StoreError::Database(sqlx::Error::PoolTimedOut).unavailable(), Some("the database is unreachable"));
        assert_eq!(StoreError::Conflict("name taken".into()).unavailable(), None);
        assert_eq!(StoreError::Database(sqlx::Error::RowNotFound).unavailable(), None);
    }
}
