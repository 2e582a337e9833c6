//! The SQLite backend: one database file shared by `serve` and CLI commands, WAL mode,
//! `synchronous = NORMAL`, a busy timeout, and every write in `BEGIN IMMEDIATE` (a
//! deferred transaction that later upgrades to a write fails with SQLITE_BUSY at once,
//! whatever the busy timeout).

mod dialect;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use certhook_core::event::NewEvent;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, sqlite::SqliteRow};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::backend::Backend;
use crate::driver::{Driver, WriteTx};
use crate::error::{Result, StoreError};
use crate::sql::Queries;

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The driver for a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteDriver {
    pool: SqlitePool,
    /// One writer at a time inside this process: waiting here is fair and wakes at once,
    /// where SQLite's busy handler would sleep in growing steps (and add tens of
    /// milliseconds of latency under contention). Other processes still meet the busy timeout.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// One connection with `synchronous = FULL`, for enqueues: in WAL mode under `NORMAL`
    /// a committed transaction can still roll back after a power loss, and an event is
    /// acknowledged at its commit. Everything else stays `NORMAL` (a lost outcome write
    /// only means a delivery is sent again).
    durable: SqlitePool,
}

impl Driver for SqliteDriver {
    type Db = Sqlite;
    type Conn = SqliteConnection;
    type Row = SqliteRow;
    type Stmt = sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>;

    const LOCKS_ROWS: bool = false;

    fn statement(sql: &'static str) -> Self::Stmt {
        sqlx::query(sql)
    }

    fn sql(&self) -> &'static Queries {
        &dialect::SQL
    }

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<WriteTx<Sqlite>> {
        let guard = self.writer.clone().lock_owned().await;
        Ok((Some(guard), self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }

    async fn begin_durable(&self) -> Result<WriteTx<Sqlite>> {
        let guard = self.writer.clone().lock_owned().await;
        Ok((Some(guard), self.durable.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// SQLite's plans are pinned by index hints in the statements themselves.
    async fn begin_hot(&self) -> Result<WriteTx<Sqlite>> {
        self.begin_write().await
    }
}

/// The store on a SQLite file.
pub type SqliteBackend = Backend<SqliteDriver>;

impl Backend<SqliteDriver> {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    pub async fn connect(url: &str, work: Arc<Notify>) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A ping is a hop to the connection's thread while the writer is held; a file
            // connection does not break the way a socket does.
            .test_before_acquire(false)
            .after_release(crate::driver::discard_if_in_transaction)
            .connect_with(options.clone())
            .await?;
        crate::migrate::sqlite().run(&pool).await?;
        let durable = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_release(crate::driver::discard_if_in_transaction)
            .connect_with(options.synchronous(SqliteSynchronous::Full))
            .await?;
        let driver = SqliteDriver { pool, writer: Arc::new(tokio::sync::Mutex::new(())), durable };
        Ok(Backend::new(driver, work))
    }
}

/// Enqueues events on the caller's own SQLite connection or transaction, so the PKI's
/// write and the events commit or roll back together.
pub async fn enqueue_in_tx(conn: &mut SqliteConnection, events: &[NewEvent]) -> Result<Vec<Uuid>> {
    Ok(crate::outbox::enqueue_on::<SqliteDriver>(conn, &dialect::SQL, events, false, &mut |_| {}).await?.ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(tx: &mut sqlx::Transaction<'static, Sqlite>) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut **tx).await.unwrap()
    }

    #[tokio::test]
    async fn enqueues_commit_with_full_sync_and_the_hot_path_with_normal() {
        let (_dir, store) = fresh_store().await;
        let (_w, mut tx) = store.driver().begin_durable().await.unwrap();
        assert_eq!(synchronous(&mut tx).await, 2, "FULL");
        drop((_w, tx));
        let (_w, mut tx) = store.driver().begin_write().await.unwrap();
        assert_eq!(synchronous(&mut tx).await, 1, "NORMAL");
    }

    /// The steps of `sql`'s query plan, with `binds` bound.
    async fn plan(store: &SqliteBackend, sql: &str, binds: &[&str]) -> Vec<String> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for b in binds {
            query = query.bind(b.to_string());
        }
        query.fetch_all(store.pool()).await.unwrap().iter().map(|row| sqlx::Row::get(row, "detail")).collect()
    }

    /// A store on a new file, which lives as long as the returned directory.
    async fn fresh_store() -> (tempfile::TempDir, SqliteBackend) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteBackend::connect(&url, Arc::new(Notify::new())).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn an_events_deliveries_are_found_by_index_not_by_a_scan() {
        let (_dir, store) = fresh_store().await;
        let plan = plan(&store, dialect::SQL.deliveries_of_event, &[&Uuid::now_v7().to_string()]).await;
        assert!(plan.iter().all(|step| !step.starts_with("SCAN")), "{plan:?}");
        assert!(plan.iter().any(|step| step.contains("certhook_messages_event")), "{plan:?}");
    }

    #[tokio::test]
    async fn the_fan_out_read_walks_the_unfanned_index_in_order_with_its_limit_cast() {
        let (_dir, store) = fresh_store().await;
        // The limit is a cast the planner does not read: the read must still walk the
        // partial index in `seq` order and stop at the limit, not scan and sort.
        let plan = plan(&store, dialect::SQL.unfanned_events, &["256"]).await;
        assert!(plan.iter().any(|step| step.contains("certhook_events_unfanned")), "{plan:?}");
        assert!(plan.iter().all(|step| !step.contains("TEMP B-TREE")), "{plan:?}");
    }
}
