//! Opening the store as the configuration says: every command and `serve` start here.

use certhook_core::config::Config;
use certhook_store::{BackendKind, Store, StoreSettings};

use crate::exit::BadInput;

/// Opens the database, creating it (SQLite) and applying pending migrations first, with
/// the keys that seal channel secrets and the size limit of outbox rows. Events enqueued
/// through it wait for serve's fan-out.
pub async fn open(config: &Config) -> anyhow::Result<Store> {
    connect(config, false).await
}

/// [`open`] for `serve`: on PostgreSQL, events posted to its API are also fanned out in
/// the transaction that stores them, rendered with its settings. There the API's enqueues
/// and serve's claims write beside each other, and one channel's deliveries of posted
/// events went out 17–25 % faster; on SQLite the enqueue would hold the one writer while
/// it renders, and measured no gain while batch ingest fell by a third (BENCHMARKS.md,
/// "sixth session"). Commands leave fan-out to serve, whose `public_url` and
/// `event_type_prefix` are the ones that count (a shell may not have its configuration),
/// and whose fan-out also checks what the API did not (PEM imports).
pub async fn open_serving(config: &Config) -> anyhow::Result<Store> {
    let on_postgres = BackendKind::of_url(&config.database_url)? == BackendKind::Postgres;
    connect(config, on_postgres).await
}

async fn connect(config: &Config, fan_out_on_enqueue: bool) -> anyhow::Result<Store> {
    let keys = config.keyring().map_err(|e| BadInput(e.to_string()))?;
    let render = fan_out_on_enqueue.then(|| config.render_settings());
    let settings = StoreSettings { keys, max_event_bytes: config.max_event_bytes, render };
    Ok(Store::connect(&config.database_url).await?.with_settings(settings))
}
