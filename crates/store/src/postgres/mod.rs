//! The PostgreSQL backend: any number of `serve` processes on any number of machines
//! share the queue. Claims use `FOR UPDATE SKIP LOCKED` in short statements, and new work
//! wakes listeners through `LISTEN certhook_work` (a trigger on the outbox NOTIFYs).

mod dialect;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use certhook_core::event::NewEvent;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, postgres::PgRow};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::backend::Backend;
use crate::driver::{Driver, WriteTx};
use crate::error::{Result, StoreError};
use crate::sql::Queries;

/// The NOTIFY channel the outbox trigger signals.
pub const WORK_CHANNEL: &str = "certhook_work";

/// How long a pooled connection may sit idle before it is pinged on its way out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(2);

/// The driver for a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresDriver {
    pool: PgPool,
}

impl Driver for PostgresDriver {
    type Db = Postgres;
    type Conn = PgConnection;
    type Row = PgRow;
    type Stmt = sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments>;

    const LOCKS_ROWS: bool = true;

    fn statement(sql: &'static str) -> Self::Stmt {
        sqlx::query(sql)
    }

    fn sql(&self) -> &'static Queries {
        &dialect::SQL
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// PostgreSQL has row locks and SKIP LOCKED: writers need no serialising here.
    async fn begin_write(&self) -> Result<WriteTx<Postgres>> {
        Ok((None, self.pool.begin().await?))
    }

    /// PostgreSQL's `synchronous_commit` (on by default) already waits for the WAL flush.
    async fn begin_durable(&self) -> Result<WriteTx<Postgres>> {
        self.begin_write().await
    }

    /// Planned without bitmap scans, and committed without waiting for the WAL flush.
    ///
    /// `synchronous_commit = off`: what the hot path writes (fan-out of stored events,
    /// claims, outcomes, lease extensions) can be written again, so it need not wait for
    /// the disk, as SQLite's `synchronous = NORMAL` does not. A PostgreSQL server crash or
    /// a failover (not a clean restart, not a cut connection) may take back the last few hundred
    /// milliseconds of them: those events are fanned out again, those deliveries sent
    /// again. Enqueues and every operator's write stay synchronous (`begin_write`).
    ///
    /// Hot statements must walk their partial indexes in order and stop at the LIMIT. A
    /// queue grows faster than autovacuum re-analyzes it; with statistics that still say
    /// "a few hundred rows" PostgreSQL picks a bitmap scan and sorts the whole backlog on
    /// every call instead (measured: 37 ms against 0.75 ms for the oldest 1,000 unfanned
    /// events with 34,000 waiting, and growing with the backlog). `SET LOCAL` keeps the
    /// setting inside this transaction, so poolers and other queries see nothing of it.
    async fn begin_hot(&self) -> Result<WriteTx<Postgres>> {
        // One round trip: the simple query protocol takes both statements at once. (Should
        // the SET fail after the BEGIN, sqlx would not count the transaction and the pool
        // could keep the connection in an aborted one; a `SET LOCAL` of settings that every
        // role may change does not fail short of the connection breaking.)
        Ok((
            None,
            self.pool
                .begin_with("BEGIN; SET LOCAL enable_bitmapscan = off; SET LOCAL synchronous_commit = off")
                .await?,
        ))
    }
}

/// The store on a PostgreSQL database.
pub type PostgresBackend = Backend<PostgresDriver>;

impl Backend<PostgresDriver> {
    /// Connects to `url` and applies pending migrations (serialised by sqlx's advisory lock).
    pub async fn connect(url: &str, work: Arc<Notify>) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        // One connection first: its failure says what is wrong, where, once (the pool
        // would retry it for the whole acquire timeout and then say only that it timed out).
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await;
        match first {
            Ok(Ok(conn)) => drop(conn),
            Ok(Err(e)) => return Err(StoreError::Connect(explain_connect_error(&options, &e))),
            Err(_) => {
                return Err(StoreError::Connect(format!(
                    "no answer from PostgreSQL at {} within {}s: check the host and port in database_url, and \
                     that nothing between here and there drops the connection",
                    place(&options),
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // No ping before each transaction of a busy pool: it is a round trip, and hot
            // transactions are a few round trips each. A connection idle for a while is
            // pinged first, so one that a restart, a failover or a firewall dropped meanwhile
            // is replaced rather than failing (or hanging) the caller's first statement.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_release(crate::driver::discard_if_in_transaction)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        crate::migrate::postgres().run(&pool).await?;
        Ok(Backend::new(PostgresDriver { pool }, work))
    }

    /// Forwards `NOTIFY certhook_work` to this process's wake-up until the pool closes.
    ///
    /// The listener reconnects by itself after a database restart; notifications missed
    /// meanwhile are covered by polling.
    pub async fn listen_for_work(&self) -> Result<tokio::task::JoinHandle<()>> {
        let mut listener = PgListener::connect_with(self.pool()).await?;
        listener.listen(WORK_CHANNEL).await?;
        let work = self.work.clone();
        let pool = self.pool().clone();
        Ok(tokio::spawn(async move {
            while !pool.is_closed() {
                match listener.recv().await {
                    Ok(_) => work.notify_one(),
                    Err(e) => {
                        tracing::debug!(error = %e, "LISTEN connection lost; reconnecting");
                        work.notify_one();
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }))
    }
}

/// How long the first connection may take before `connect` gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `host:port/database`, as an error names the place.
fn place(options: &PgConnectOptions) -> String {
    format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or("postgres"))
}

/// What a failed first connection means for the operator: where, what, and what to do.
/// The password is never part of it.
fn explain_connect_error(options: &PgConnectOptions, e: &sqlx::Error) -> String {
    let at = place(options);
    let (host, port) = (options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("postgres");
    let user = options.get_username();
    if let sqlx::Error::Database(db) = e {
        match db.code().as_deref() {
            Some("3D000") => {
                return format!(
                    "PostgreSQL at {host}:{port} has no database \"{database}\": create it \
                     (createdb -h {host} -p {port} -U {user} {database}) or fix database_url"
                );
            }
            Some("28P01") | Some("28000") => {
                return format!(
                    "PostgreSQL at {at} refused user \"{user}\": check the user and password in database_url \
                     (and pg_hba.conf on the server)"
                );
            }
            _ => {}
        }
    }
    if let sqlx::Error::Io(io) = e {
        let why = match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "refused the connection: is the server running and listening there?"
            }
            std::io::ErrorKind::NotFound => "is not a host this machine can resolve: check database_url",
            _ => "could not be reached",
        };
        return format!("PostgreSQL at {at} {why} ({io})");
    }
    format!("cannot connect to PostgreSQL at {at}: {e}")
}

/// Enqueues events on the caller's own PostgreSQL connection or transaction, so the PKI's
/// write and the events commit or roll back together.
pub async fn enqueue_in_tx(conn: &mut PgConnection, events: &[NewEvent]) -> Result<Vec<Uuid>> {
    Ok(crate::outbox::enqueue_on::<PostgresDriver>(conn, &dialect::SQL, events, false, &mut |_| {}).await?.ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Rows Removed by Filter` in an `EXPLAIN (ANALYZE, FORMAT JSON)` plan, summed.
    fn removed_by_filter(plan: &serde_json::Value) -> u64 {
        match plan {
            serde_json::Value::Object(node) => node
                .iter()
                .map(|(k, v)| {
                    if k == "Rows Removed by Filter" {
                        v.as_f64().unwrap_or(0.0).round() as u64
                    } else {
                        removed_by_filter(v)
                    }
                })
                .sum(),
            serde_json::Value::Array(nodes) => nodes.iter().map(removed_by_filter).sum(),
            _ => 0,
        }
    }

    /// A migrated scratch database and a store on it; `None` (the test skips, and says so
    /// in the skip log) when no PostgreSQL server answers outside CI.
    async fn scratch_store(prefix: &str) -> Option<(crate::scratch::ScratchDatabase, PostgresBackend)> {
        let ran = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tmp");
        let db = crate::scratch::for_test(prefix, ran).await?;
        let store = PostgresBackend::connect(&db.url, Arc::new(Notify::new())).await.unwrap();
        Some((db, store))
    }

    /// An application, an alert, one webhook channel `c`, and 5,000 messages `m1`… for
    /// the plan tests' deliveries.
    const SCRATCH_CHANNEL: &str = "INSERT INTO certhook_applications (id, name, created_at) VALUES ('a', 'a', 0); \
        INSERT INTO certhook_alerts (id, application_id, type, types, name, created_at) \
        VALUES ('al', 'a', 'issuance', 'issuance', 'al', 0); \
        INSERT INTO certhook_channels (id, alert_id, kind, url, state, created_at, updated_at) \
        VALUES ('c', 'al', 'webhook', 'https://receiver.test/', 'active', 0, 0); \
        INSERT INTO certhook_messages (id, type, body, created_at) \
        SELECT 'm' || i, 'issuance', '\\x7b7d'::bytea, 0 FROM generate_series(1, 5000) i; ";

    /// A receiver down for hours leaves a long queue waiting for its retries. A claim that
    /// finds nothing due must stop at the first row scheduled for later, not read them all
    /// (it did, on every claim, while the database's clock was a per-row filter).
    #[tokio::test]
    async fn a_claim_with_nothing_due_reads_none_of_the_rows_scheduled_for_later() {
        let Some((db, store)) = scratch_store("certhook_plan").await else { return };
        let setup = SCRATCH_CHANNEL.to_string()
            + "INSERT INTO certhook_deliveries (id, message_id, channel_id, type, state, next_attempt_at, \
            lease_expires_at, enqueued_at, created_at, updated_at) \
            SELECT 'd' || i, 'm' || i, 'c', 'issuance', CASE WHEN i % 2 = 0 THEN 'retrying' ELSE 'leased' END, \
            9000000000000 + i, 9000000000000 + i, 0, 0, 0 FROM generate_series(1, 5000) i; \
            ANALYZE certhook_deliveries;";
        sqlx::raw_sql(sqlx::AssertSqlSafe(setup)).execute(store.pool()).await.unwrap();
        let (_, mut tx) = store.driver().begin_hot().await.unwrap();
        let explain = |sql: &str| {
            sqlx::query_scalar::<_, serde_json::Value>(sqlx::AssertSqlSafe(format!(
                "EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
            )))
            .bind("token")
            .bind(60_000_i64)
        };
        // As the worker binds them: no channel left out or limited, a window of 256, 8 per
        // channel, 64 wanted.
        let due = explain(dialect::SQL.claim_due).bind("[]").bind(256_i64).bind("[]").bind(8_i64).bind(64_i64);
        let due = due.fetch_one(&mut *tx).await.unwrap();
        let expired = explain(dialect::SQL.claim_expired).bind(64_i64).fetch_one(&mut *tx).await.unwrap();
        for (name, plan) in [("claim_due", due), ("claim_expired", expired)] {
            assert_eq!(removed_by_filter(&plan), 0, "{name} read rows that were not due: {plan:#}");
        }
        drop(tx);
        store.close().await;
        db.drop_database().await.unwrap();
    }

    /// A transaction PostgreSQL breaks to end a deadlock reads as the database being busy
    /// (the API answers 503 and the producer sends it again), not as an internal error.
    #[tokio::test]
    async fn a_deadlock_victim_reads_as_busy_for_a_retry() {
        let Some((db, store)) = scratch_store("certhook_deadlock").await else { return };
        let setup = "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2)";
        sqlx::raw_sql(setup).execute(store.pool()).await.unwrap();
        let lock = |id: i32| sqlx::query("UPDATE t SET id = id WHERE id = $1").bind(id);
        let (mut one, mut two) = (store.pool().begin().await.unwrap(), store.pool().begin().await.unwrap());
        lock(1).execute(&mut *one).await.unwrap();
        lock(2).execute(&mut *two).await.unwrap();
        // Each now waits for the other's row; PostgreSQL breaks one of them.
        let (a, b) = tokio::join!(lock(2).execute(&mut *one), lock(1).execute(&mut *two));
        let victim = a.err().or(b.err()).expect("one of the two is broken");
        let error = crate::StoreError::Database(victim);
        assert_eq!(error.unavailable(), Some("the database was busy with a conflicting write"), "{error}");
        drop((one, two));
        store.close().await;
        db.drop_database().await.unwrap();
    }

    /// The hot path's writes (all of which can be written again) commit without waiting
    /// for the WAL flush; an enqueue's and an operator's wait as the server is set to, and
    /// the hot path's setting ends with its transaction.
    #[tokio::test]
    async fn only_the_hot_path_commits_without_waiting_for_the_disk() {
        let Some((db, store)) = scratch_store("certhook_sync").await else { return };
        let show = "SHOW synchronous_commit";
        let server: String = sqlx::query_scalar(show).fetch_one(store.pool()).await.unwrap();
        if server == "off" {
            eprintln!("skipped: this server commits without waiting for the disk by default");
            return;
        }
        let (_, mut tx) = store.driver().begin_hot().await.unwrap();
        let hot: String = sqlx::query_scalar(show).fetch_one(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let (_, mut tx) = store.driver().begin_durable().await.unwrap();
        let durable: String = sqlx::query_scalar(show).fetch_one(&mut *tx).await.unwrap();
        drop(tx);
        let (_, mut tx) = store.driver().begin_write().await.unwrap();
        let write: String = sqlx::query_scalar(show).fetch_one(&mut *tx).await.unwrap();
        drop(tx);
        let after: String = sqlx::query_scalar(show).fetch_one(store.pool()).await.unwrap();
        assert_eq!(
            (hot.as_str(), durable.as_str(), write.as_str(), after.as_str()),
            ("off", &*server, &*server, &*server)
        );
        store.close().await;
        db.drop_database().await.unwrap();
    }

    /// Migration 0008 drops the keys certhook's writes keep, and only those: the outbox's
    /// key refuses a plain-SQL row for an unknown application, and older versions' prune,
    /// running beside this one during a rollout, relies on the attempts' cascade.
    #[tokio::test]
    async fn the_migrated_schema_keeps_the_keys_that_something_relies_on() {
        let Some((db, store)) = scratch_store("certhook_keys").await else { return };
        let mut keys: Vec<String> = sqlx::query_scalar(
            "SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE contype = 'f' AND connamespace = current_schema()::regnamespace",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        keys.sort();
        assert_eq!(
            keys,
            [
                "certhook_alerts FOREIGN KEY (application_id) REFERENCES certhook_applications(id)",
                "certhook_attempts FOREIGN KEY (delivery_id) REFERENCES certhook_deliveries(id) ON DELETE CASCADE",
                "certhook_channels FOREIGN KEY (alert_id) REFERENCES certhook_alerts(id)",
                "certhook_events FOREIGN KEY (application_id) REFERENCES certhook_applications(id)",
            ]
        );
        store.close().await;
        db.drop_database().await.unwrap();
    }

    /// Rows of `certhook_deliveries` the plan's scans returned or filtered out, over all
    /// their loops (the update node itself not counted).
    fn deliveries_read(plan: &serde_json::Value) -> u64 {
        // Newer servers print row counts as decimals (per-loop averages).
        let number = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        match plan {
            serde_json::Value::Object(node) => {
                let scan = node.get("Relation Name").is_some_and(|r| r == "certhook_deliveries")
                    && node.get("Node Type").is_some_and(|t| t != "ModifyTable");
                let own = if scan {
                    let rows = number(node.get("Actual Rows")) + number(node.get("Rows Removed by Filter"));
                    (rows * number(node.get("Actual Loops"))).round() as u64
                } else {
                    0
                };
                own + node.iter().map(|(_, v)| deliveries_read(v)).sum::<u64>()
            }
            serde_json::Value::Array(nodes) => nodes.iter().map(deliveries_read).sum(),
            _ => 0,
        }
    }

    /// A batch of outcomes reaches its own rows by primary key. With statistics taken
    /// before the rows were leased (as in any run that leases faster than autovacuum
    /// analyzes), the planner drove the join from the index on `state` and read every
    /// leased row for each batch: O(rows in flight) per batch.
    #[tokio::test]
    async fn a_batch_of_outcomes_reads_its_own_rows_not_every_lease() {
        let Some((db, store)) = scratch_store("certhook_plan").await else { return };
        let setup = SCRATCH_CHANNEL.to_string()
            + "ALTER TABLE certhook_deliveries SET (autovacuum_enabled = false); \
            INSERT INTO certhook_messages (id, type, body, created_at) \
            SELECT 'm' || i, 'issuance', '\\x7b7d'::bytea, 0 FROM generate_series(5001, 60000) i; \
            INSERT INTO certhook_deliveries (id, message_id, channel_id, type, state, next_attempt_at, \
            enqueued_at, created_at, updated_at) \
            SELECT 'd' || i, 'm' || i, 'c', 'issuance', 'pending', i, 0, 0, 0 FROM generate_series(1, 60000) i; \
            ANALYZE certhook_deliveries; \
            UPDATE certhook_deliveries SET state = 'leased', lease_token = 'token', lease_expires_at = 9000000000000 \
            WHERE next_attempt_at <= 5000;";
        sqlx::raw_sql(sqlx::AssertSqlSafe(setup)).execute(store.pool()).await.unwrap();
        let (_, mut tx) = store.driver().begin_hot().await.unwrap();
        let batch = |fields: &str| {
            let rows: Vec<String> = (1..=10).map(|i| format!(r#"{{"id":"d{i}","token":"token"{fields}}}"#)).collect();
            format!("[{}]", rows.join(","))
        };
        let explain = |sql: &str| {
            sqlx::query_scalar::<_, serde_json::Value>(sqlx::AssertSqlSafe(format!(
                "EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
            )))
        };
        let delivered = explain(dialect::SQL.record_delivered)
            .bind(batch(r#","added":1,"status":204,"error":null,"delay":0,"reason":null"#))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        // Its 10 rows, not the 5,000 leased. (Lease extension is not held to this: its
        // locking subquery is planned on its own.)
        assert!(deliveries_read(&delivered) <= 10, "record_delivered read more than its own rows: {delivered:#}");
        drop(tx);
        store.close().await;
        db.drop_database().await.unwrap();
    }
}
