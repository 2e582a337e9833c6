//! The contract a backend fulfils, and nothing else: its sqlx types, how it opens write
//! transactions, and its statements in its own dialect. The store's logic (subscriptions,
//! outbox and fan-out, leases, inspection) is written once against [`Driver`]; `sqlite`
//! and `postgres` each implement it.
//!
//! sqlx code that is generic over a database needs a higher-ranked bound for every type it
//! binds or reads, repeated on every function. Instead, [`Statement`] and [`Record`] name
//! the few operations the logic uses, each implemented for both backends' concrete types
//! below, so the logic needs only `D: Driver`.

use std::future::Future;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{ColumnIndex, Database, Decode, Encode, Pool, Postgres, Sqlite, Transaction, Type};

use crate::error::Result;
use crate::sql::Queries;

/// Held for the length of a write transaction where the backend serialises writers.
pub type WriterGuard = Option<tokio::sync::OwnedMutexGuard<()>>;

/// A write transaction and, where the backend serialises writers, this process's turn.
pub type WriteTx<Db> = (WriterGuard, Transaction<'static, Db>);

/// One backend: its sqlx types, its statements, its transactions.
pub trait Driver: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The sqlx database.
    type Db: Database<Connection = Self::Conn, Row = Self::Row>;
    /// A connection (what a transaction dereferences to).
    type Conn: sqlx::Connection<Database = Self::Db>;
    /// A result row.
    type Row: sqlx::Row<Database = Self::Db> + Record;
    /// A statement with its bound arguments.
    type Stmt: Statement<Conn = Self::Conn, Row = Self::Row>;

    /// Whether transactions lock rows (`LOCK_ROWS`, `SKIP_LOCKED`), so that processes
    /// sharing the database can split work by locking it; SQLite's one writer excludes
    /// every other writer instead.
    const LOCKS_ROWS: bool;

    /// A statement of this backend's [`Queries`], to bind and run.
    fn statement(sql: &'static str) -> Self::Stmt;

    /// Every statement the store runs, in this backend's dialect.
    fn sql(&self) -> &'static Queries;

    /// The connection pool.
    fn pool(&self) -> &Pool<Self::Db>;

    /// A transaction that will write, started so that it cannot fail later for want of a
    /// write lock.
    fn begin_write(&self) -> impl Future<Output = Result<WriteTx<Self::Db>>> + Send;

    /// A write transaction whose commit is on stable storage when it returns: what an
    /// acknowledged enqueue is written in (a lost outcome only means a re-send, a lost
    /// event is lost).
    fn begin_durable(&self) -> impl Future<Output = Result<WriteTx<Self::Db>>> + Send;

    /// A write transaction for the hot path (fan-out, claims, outcomes, lease extensions),
    /// planned for a queue, whose commit may be lost to a power loss or a database server
    /// crash: all it writes can be written again (a re-send at worst).
    fn begin_hot(&self) -> impl Future<Output = Result<WriteTx<Self::Db>>> + Send;
}

/// The pools' release hook: a connection that comes back still inside a transaction (its
/// `COMMIT` or `ROLLBACK` failed, say on a full disk or a cut connection) is closed, not
/// reused, so no later `BEGIN` meets a transaction already open and every later write
/// fails. The pool opens a fresh connection in its place.
pub(crate) fn discard_if_in_transaction<C: sqlx::Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn Future<Output = std::result::Result<bool, sqlx::Error>> + Send + '_>> {
    // Also true, briefly, of a transaction dropped on an error path whose rollback is still
    // queued: closing that connection costs a reconnect, nothing more.
    let keep = !conn.is_in_transaction();
    if !keep {
        tracing::debug!("a database connection came back inside a transaction; closing it");
    }
    Box::pin(std::future::ready(Ok(keep)))
}

/// A value every backend can bind.
pub trait Arg:
    for<'t> Encode<'t, Sqlite> + Type<Sqlite> + for<'t> Encode<'t, Postgres> + Type<Postgres> + Send
{
}

impl<T> Arg for T where
    T: for<'t> Encode<'t, Sqlite> + Type<Sqlite> + for<'t> Encode<'t, Postgres> + Type<Postgres> + Send
{
}

/// A column type every backend can read.
pub trait Col: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> {}

impl<T> Col for T where T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> {}

/// A column index (a name or a position) on every backend's rows.
pub trait Idx: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

impl<T> Idx for T where T: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

/// A result row, as the store's logic reads it.
pub trait Record: Send + Sync + 'static {
    /// The column at `index` as a `T` (`NULL` only into an `Option`).
    fn try_get<T: Col, I: Idx>(&self, index: I) -> std::result::Result<T, sqlx::Error>;
}

/// A statement and its arguments, run on a backend's connection.
pub trait Statement: Sized + Send {
    /// The connection it runs on.
    type Conn: Send;
    /// The rows it returns.
    type Row: Record;

    /// Binds the next `?`.
    fn bind<T: Arg>(self, value: T) -> Self;

    /// Every row.
    fn fetch_all(self, conn: &mut Self::Conn) -> impl Future<Output = Result<Vec<Self::Row>>> + Send;

    /// Exactly one row.
    fn fetch_one(self, conn: &mut Self::Conn) -> impl Future<Output = Result<Self::Row>> + Send;

    /// At most one row.
    fn fetch_optional(self, conn: &mut Self::Conn) -> impl Future<Output = Result<Option<Self::Row>>> + Send;

    /// Runs it for the rows it changed.
    fn execute(self, conn: &mut Self::Conn) -> impl Future<Output = Result<u64>> + Send;
}

/// Implements [`Record`] and [`Statement`] for one backend's concrete sqlx types.
macro_rules! backend_types {
    ($db:ty, $conn:ty, $row:ty) => {
        impl Record for $row {
            fn try_get<T: Col, I: Idx>(&self, index: I) -> std::result::Result<T, sqlx::Error> {
                sqlx::Row::try_get(self, index)
            }
        }

        impl Statement for sqlx::query::Query<'static, $db, <$db as Database>::Arguments> {
            type Conn = $conn;
            type Row = $row;

            fn bind<T: Arg>(self, value: T) -> Self {
                sqlx::query::Query::bind(self, value)
            }

            async fn fetch_all(self, conn: &mut $conn) -> Result<Vec<$row>> {
                Ok(sqlx::query::Query::fetch_all(self, conn).await?)
            }

            async fn fetch_one(self, conn: &mut $conn) -> Result<$row> {
                Ok(sqlx::query::Query::fetch_one(self, conn).await?)
            }

            async fn fetch_optional(self, conn: &mut $conn) -> Result<Option<$row>> {
                Ok(sqlx::query::Query::fetch_optional(self, conn).await?)
            }

            async fn execute(self, conn: &mut $conn) -> Result<u64> {
                Ok(sqlx::query::Query::execute(self, conn).await?.rows_affected())
            }
        }
    };
}

backend_types!(Sqlite, SqliteConnection, SqliteRow);
backend_types!(Postgres, PgConnection, PgRow);
