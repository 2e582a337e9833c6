//! The SQLite backend: one database file shared by `serve` and CLI commands, WAL mode,
//! `synchronous = NORMAL`, a busy timeout, and every write in `BEGIN IMMEDIATE` (a
//! deferred transaction that later upgrades to a write fails with SQLITE_BUSY at once,
//! whatever the busy timeout).

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite as Db, SqliteConnection as DbConn, SqlitePool as DbPool, sqlite::SqliteRow as DbRow};
use tokio::sync::Notify;

use crate::sql::{Queries, SQLITE};
use crate::sweep::Sweep;

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The store on a SQLite file.
#[derive(Debug, Clone)]
pub struct Backend {
    pool: DbPool,
    q: &'static Queries,
    pub(crate) work: Arc<Notify>,
    /// When claims next look for expired leases regardless.
    sweep: Arc<Sweep>,
    /// One writer at a time inside this process: waiting here is fair and wakes at once,
    /// where SQLite's busy handler would sleep in growing steps (and add tens of
    /// milliseconds of latency under contention). Other processes still meet the busy timeout.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl Backend {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    pub async fn connect(url: &str, work: Arc<Notify>) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        crate::migrate::sqlite().run(&pool).await?;
        Ok(Backend {
            pool,
            q: &SQLITE,
            work,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            sweep: Arc::new(Sweep::every(SWEEP_INTERVAL)),
        })
    }

    /// The connection pool, for callers that run their own transactions (transactional outbox).
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<(WriterGuard, sqlx::Transaction<'static, Db>)> {
        let guard = self.writer.clone().lock_owned().await;
        Ok((Some(guard), self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// A write transaction for the hot path (fan-out, claims); SQLite's plans are pinned
    /// by index hints in the statements themselves.
    async fn begin_hot(&self) -> Result<(WriterGuard, sqlx::Transaction<'static, Db>)> {
        self.begin_write().await
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Enqueues events on the caller's own SQLite connection or transaction, so the PKI's
/// write and the events commit or roll back together.
pub async fn enqueue_in_tx(conn: &mut DbConn, events: &[NewEvent]) -> Result<Vec<Uuid>> {
    enqueue_on(conn, &SQLITE, events).await
}

include!("backend.rs");
