//! Upgrades: a database written by an earlier version migrates with its rows intact.

use std::str::FromStr;

use certhook_core::event::{AlertType, ChannelState};
use certhook_store::migrate::{MIGRATIONS_TABLE, postgres, sqlite};
use sqlx::migrate::Migrator;

use crate::harness::TestDb;

/// The first `n` migrations of `full`, as an earlier version shipped them.
fn up_to(full: Migrator, n: usize) -> Migrator {
    let mut m = Migrator::with_migrations(full.iter().take(n).cloned().collect());
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

const APP: &str = "0190a5b4-0000-7000-8000-000000000001";
const ALERT: &str = "0190a5b4-0000-7000-8000-000000000002";

/// An application and an expiration alert as version 3 of the schema stored them.
fn version_3_rows() -> String {
    format!(
        "INSERT INTO certhook_applications (id, name, created_at) VALUES ('{APP}', 'pki', 1); \
         INSERT INTO certhook_alerts (id, application_id, type, name, alert_before, created_at) \
         VALUES ('{ALERT}', '{APP}', 'expiration', 'tls-expiry', '30d', 1);"
    )
}

async fn check_upgraded(db: &TestDb) {
    let store = db.store().await;
    let alert = store.get_alert(ALERT.parse().unwrap()).await.expect("the alert reads back after the upgrade");
    assert_eq!(alert.types, [AlertType::Expiration], "one type becomes a one-element list");
    assert_eq!(alert.alert_type, AlertType::Expiration);
    assert_eq!(alert.alert_before.unwrap().to_string(), "30d");
    assert!(alert.filter.is_empty());
    assert_eq!(store.list_applications().await.unwrap().len(), 1, "the application is not deleted");

    // An older process still running during the rollout writes alerts without `types`:
    // they read as their one type and fan-out still matches them.
    let old_alert = "0190a5b4-0000-7000-8000-000000000003";
    crate::harness::exec(
        &store,
        &format!(
            "INSERT INTO certhook_alerts (id, application_id, type, name, created_at) \
             VALUES ('{old_alert}', '{APP}', 'revocation', 'revoked', 1)"
        ),
    )
    .await;
    let alert = store.get_alert(old_alert.parse().unwrap()).await.unwrap();
    assert_eq!(alert.types, [AlertType::Revocation]);
    crate::fixtures::channel(&store, &alert, ChannelState::Active).await;
    let event = crate::fixtures::event(APP.parse().unwrap(), AlertType::Revocation, "1", None);
    store.enqueue(&[event]).await.unwrap();
    crate::fixtures::fan_out_all(&store).await;
    assert_eq!(store.list_deliveries(&Default::default()).await.unwrap().len(), 1, "matched by its type");
    store.close().await;
}

#[tokio::test]
async fn single_type_alerts_of_version_3_become_one_element_lists_on_sqlite() {
    let db = TestDb::sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(db.url()).unwrap().create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    up_to(sqlite(), 3).run(&pool).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(version_3_rows())).execute(&pool).await.unwrap();
    pool.close().await;
    check_upgraded(&db).await;
    db.finish().await;
}

#[tokio::test]
async fn single_type_alerts_of_version_3_become_one_element_lists_on_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    up_to(postgres(), 3).run(&pool).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(version_3_rows())).execute(&pool).await.unwrap();
    pool.close().await;
    check_upgraded(&db).await;
    db.finish().await;
}

/// `full` plus a migration this version does not know, as a newer version ships it.
fn newer(full: Migrator) -> Migrator {
    let mut migrations: Vec<_> = full.iter().cloned().collect();
    migrations.push(sqlx::migrate::Migration::new(
        99,
        "from a newer version".into(),
        sqlx::migrate::MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str("CREATE TABLE certhook_from_the_future (x INTEGER)"),
        false,
    ));
    let mut m = Migrator::with_migrations(migrations);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

async fn check_older_version_opens(db: &TestDb) {
    let store = db.store().await;
    store.create_application("pki").await.expect("an older version keeps working on a newer schema");
    assert_eq!(store.list_applications().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn an_older_version_opens_a_database_a_newer_one_migrated_on_sqlite() {
    let db = TestDb::sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(db.url()).unwrap().create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    newer(sqlite()).run(&pool).await.unwrap();
    pool.close().await;
    check_older_version_opens(&db).await;
    db.finish().await;
}

#[tokio::test]
async fn an_older_version_opens_a_database_a_newer_one_migrated_on_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    newer(postgres()).run(&pool).await.unwrap();
    pool.close().await;
    check_older_version_opens(&db).await;
    db.finish().await;
}
