//! The store over one driver: what every concern module (`subscriptions`, `outbox`,
//! `fan_out`, `inventory`, `leases`, `inspection`) adds methods to, and the few things
//! they share: the clock, the wake-up, connections and transactions.

use std::sync::Arc;
use std::time::Duration;

use certhook_core::config::DEFAULT_MAX_EVENT_BYTES;
use certhook_core::render::RenderSettings;
use certhook_core::seal::Keyring;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::driver::{Driver, Record, Statement, WriteTx};
use crate::error::{Result, StoreError};
use crate::rows::millis;
use crate::sql::Queries;
use crate::sweep::Sweep;

/// How often a claim looks for expired leases even when due rows fill it.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The store's logic on one backend's [`Driver`].
#[derive(Debug, Clone)]
pub struct Backend<D> {
    pub(crate) driver: D,
    pub(crate) q: &'static Queries,
    pub(crate) work: Arc<Notify>,
    /// When claims next look for expired leases regardless.
    pub(crate) sweep: Arc<Sweep>,
    /// Seals channel secrets on the way in and opens them on the way out.
    pub(crate) keys: Arc<Keyring>,
    /// The largest outbox row fan-out accepts from a plain-SQL producer.
    pub(crate) max_event_bytes: usize,
    /// Where set, [`Backend::enqueue`] fans its events out in the transaction that stores
    /// them, rendered with these settings; otherwise the worker's fan-out finds them.
    pub(crate) fan_out_on_enqueue: Option<Arc<RenderSettings>>,
}

/// What the store takes from the configuration.
#[derive(Debug)]
pub struct StoreSettings {
    /// Seals channel secrets (`secret_key`, `previous_secret_keys`).
    pub keys: Keyring,
    /// `max_event_bytes`, applied to outbox rows at fan-out as the API applies it to events.
    pub max_event_bytes: usize,
    /// How messages are rendered (`event_type_prefix`, `public_url`). Where given, events
    /// enqueued through the store are fanned out in the transaction that stores them;
    /// without it they wait for a worker's fan-out.
    pub render: Option<RenderSettings>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings { keys: Keyring::default(), max_event_bytes: DEFAULT_MAX_EVENT_BYTES, render: None }
    }
}

impl<D: Driver> Backend<D> {
    /// The store on `driver`, waking `work` when it makes work due.
    pub(crate) fn new(driver: D, work: Arc<Notify>) -> Self {
        let q = driver.sql();
        Backend {
            driver,
            q,
            work,
            sweep: Arc::new(Sweep::every(SWEEP_INTERVAL)),
            keys: Arc::default(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            fan_out_on_enqueue: None,
        }
    }

    /// This store with `settings` from the configuration.
    pub fn with_settings(mut self, settings: StoreSettings) -> Self {
        self.keys = Arc::new(settings.keys);
        self.max_event_bytes = settings.max_event_bytes;
        self.fan_out_on_enqueue = settings.render.map(Arc::new);
        self
    }

    /// The driver (and through it the pool, for callers that run their own transactions).
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The connection pool, for callers that run their own transactions (transactional outbox).
    pub fn pool(&self) -> &sqlx::Pool<D::Db> {
        self.driver.pool()
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.driver.pool().close().await;
    }

    /// A connection of the pool, for a statement outside a transaction.
    pub(crate) async fn conn(&self) -> Result<PoolConnection<D::Db>> {
        Ok(self.driver.pool().acquire().await?)
    }

    /// The row `sql` finds by `id`, decoded with `from`, or `NotFound` naming `kind`.
    pub(crate) async fn one<T>(
        &self,
        sql: &'static str,
        kind: &'static str,
        id: Uuid,
        from: fn(&D::Row) -> Result<T>,
    ) -> Result<T> {
        match D::statement(sql).bind(id.to_string()).fetch_optional(&mut *self.conn().await?).await? {
            Some(row) => from(&row),
            None => Err(StoreError::NotFound { kind, id: id.to_string() }),
        }
    }

    /// A write transaction (see [`Driver::begin_write`]).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<D::Db>> {
        self.driver.begin_write().await
    }

    /// A hot-path write transaction (see [`Driver::begin_hot`]).
    pub(crate) async fn begin_hot(&self) -> Result<WriteTx<D::Db>> {
        self.driver.begin_hot().await
    }

    /// The database's clock.
    pub async fn now(&self) -> Result<DateTime<Utc>> {
        let row = D::statement(self.q.now).fetch_one(&mut *self.conn().await?).await?;
        Ok(millis(row.try_get(0)?))
    }

    /// Wakes this process's worker: new work is due.
    pub(crate) fn wake(&self) {
        self.work.notify_one();
    }
}
