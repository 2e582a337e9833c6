//! Scratch PostgreSQL databases for tests and benchmarks: each run gets a fresh database
//! on a server, dropped when it is done, so runs never see each other's rows.

use sqlx::Connection;
use uuid::Uuid;

/// A database created for one test or benchmark run.
#[derive(Debug, Clone)]
pub struct ScratchDatabase {
    /// Its URL.
    pub url: String,
    admin_url: String,
    name: String,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<random>` on the server `admin_url` points at.
    pub async fn create(admin_url: &str, prefix: &str) -> Result<ScratchDatabase, sqlx::Error> {
        let (base, _) = admin_url
            .rsplit_once('/')
            .ok_or_else(|| sqlx::Error::Configuration("the PostgreSQL URL has no database path".into()))?;
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        // Only characters of [a-z0-9_]: the prefix comes from code, the rest is a UUID.
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        Ok(ScratchDatabase { url: format!("{base}/{name}"), admin_url: admin_url.to_string(), name })
    }

    /// Drops the database, disconnecting whoever is still connected.
    pub async fn drop_database(&self) -> Result<(), sqlx::Error> {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

/// The PostgreSQL server tests use: `CERTHOOK_TEST_POSTGRES_URL`, or the local one.
pub fn test_admin_url() -> String {
    std::env::var("CERTHOOK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Name of the file, in the directory given to [`for_test`], that lists skipped tests.
pub const SKIP_LOG: &str = "postgres-skipped.txt";

/// Name of the file, in the same directory, that lists the tests that ran on PostgreSQL.
pub const RAN_LOG: &str = "postgres-ran.txt";

/// Appends the calling test's name to `dir/name`.
fn log_test(dir: &str, name: &str) -> String {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a PostgreSQL test").to_string();
    let _ = std::fs::create_dir_all(dir);
    if let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(format!("{dir}/{name}")) {
        let _ = writeln!(log, "{test}");
    }
    test
}

/// A fresh database for the calling test, or `None` when PostgreSQL is unreachable and
/// `CI` is not `true`: the test then skips, says so on the terminal (past the test
/// harness's output capture), and appends its name to `skip_log_dir/`[`SKIP_LOG`] so that
/// `make test` can count the skips; a test that gets its database is listed in [`RAN_LOG`].
/// Under `CI=true` an unreachable server panics: CI must never pass by skipping the
/// backend it is meant to prove.
pub async fn for_test(prefix: &str, skip_log_dir: &str) -> Option<ScratchDatabase> {
    use std::io::Write;
    let admin = test_admin_url();
    match ScratchDatabase::create(&admin, prefix).await {
        Ok(db) => {
            log_test(skip_log_dir, RAN_LOG);
            Some(db)
        }
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            let test = log_test(skip_log_dir, SKIP_LOG);
            // io::stderr() directly: libtest captures only the print macros.
            let notice = format!("\nSKIPPED {test}: PostgreSQL unusable at {admin}: {e}\n");
            let _ = std::io::stderr().write_all(notice.as_bytes());
            None
        }
        Err(e) => panic!("CI=true and PostgreSQL is unusable at {admin}: {e}"),
    }
}
