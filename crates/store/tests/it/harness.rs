//! Real databases for tests: a SQLite file in a temporary directory, and a fresh
//! PostgreSQL database per test on `CERTHOOK_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! Without PostgreSQL the PostgreSQL tests skip with a message, except under `CI=true`,
//! where they fail: CI must never pass by skipping the backend it is meant to prove.

use certhook_store::Store;
use certhook_store::scratch::ScratchDatabase;

/// A database that exists for one test.
pub enum TestDb {
    /// A SQLite file, removed with its directory.
    Sqlite { url: String, _dir: tempfile::TempDir },
    /// A PostgreSQL database, dropped by [`TestDb::finish`].
    Postgres(ScratchDatabase),
}

impl TestDb {
    /// A fresh SQLite file.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("certhook.db").display());
        TestDb::Sqlite { url, _dir: dir }
    }

    /// A fresh PostgreSQL database, or `None` (skip) when the server is unreachable outside CI.
    pub async fn postgres() -> Option<TestDb> {
        certhook_store::scratch::for_test("certhook_test", env!("CARGO_TARGET_TMPDIR")).await.map(TestDb::Postgres)
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } => url,
            TestDb::Postgres(db) => &db.url,
        }
    }

    /// Opens a store on it (migrations included).
    pub async fn store(&self) -> Store {
        Store::connect(self.url()).await.expect("store connects and migrates")
    }

    /// Drops the PostgreSQL database (SQLite files go with their directory).
    pub async fn finish(self) {
        if let TestDb::Postgres(db) = self {
            db.drop_database().await.expect("drop test database");
        }
    }
}

/// Runs a raw SQL statement (no binds) on the store's own pool.
pub async fn exec(store: &Store, sql: &str) {
    match store {
        Store::Sqlite(b) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(b.pool()).await.expect("sql runs");
        }
        Store::Postgres(b) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(b.pool()).await.expect("sql runs");
        }
    }
}

/// Runs a raw SQL query that returns one integer.
pub async fn scalar(store: &Store, sql: &str) -> i64 {
    match store {
        Store::Sqlite(b) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(b.pool()).await,
        Store::Postgres(b) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(b.pool()).await,
    }
    .expect("scalar query")
}

/// Runs a test that opens stores (processes) of its own on `db`.
pub async fn with_db<F: std::future::Future<Output = ()>>(db: TestDb, test: impl FnOnce(TestDb) -> F) {
    test(db).await;
}

/// Runs a test on one store over `db`, then closes it and drops the database.
pub async fn with_store<F: std::future::Future<Output = ()>>(db: TestDb, test: impl FnOnce(Store) -> F) {
    let store = db.store().await;
    test(store.clone()).await;
    store.close().await;
    db.finish().await;
}

/// Declares one test per backend for each async `fn name(store: Store)` listed.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $crate::per_backend!(with_store; $($name),+);
    };
}

/// Declares one test per backend for each async `fn name(db: TestDb)` listed: for tests
/// that open stores (processes) of their own on the database.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {
        $crate::per_backend!(with_db; $($name),+);
    };
}

/// The two macros above: a `sqlite` and a `postgres` test per name, each run by the
/// harness's `run` (`with_store` or `with_db`); PostgreSQL tests skip when it is away.
#[macro_export]
macro_rules! per_backend {
    ($run:ident; $($name:ident),+) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::harness::$run($crate::harness::TestDb::sqlite(), super::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::harness::TestDb::postgres().await else { return };
                    $crate::harness::$run(db, super::$name).await;
                }
            )+
        }
    };
}
