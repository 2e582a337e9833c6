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
