//! Opening the store as the configuration says: every command and `serve` start here.

use certhook_core::config::Config;
use certhook_store::{Store, StoreSettings};

use crate::exit::BadInput;

/// Opens the database, creating it (SQLite) and applying pending migrations first, with
/// the keys that seal channel secrets and the size limit of outbox rows.
pub async fn open(config: &Config) -> anyhow::Result<Store> {
    let keys = config.keyring().map_err(|e| BadInput(e.to_string()))?;
    let settings = StoreSettings { keys, max_event_bytes: config.max_event_bytes };
    Ok(Store::connect(&config.database_url).await?.with_settings(settings))
}
