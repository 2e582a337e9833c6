//! The expiration scan as `certhook scan` and `serve` run it: every event accepted before
//! the scan started is folded into the inventory first (fanned out, as the worker would),
//! so a certificate handed over by `enqueue` is alerted on by the very next scan; then
//! the inventory is scanned. A preview stores nothing.

use certhook_core::render::RenderSettings;
use certhook_store::{Result, ScanOutcome, Store};
use chrono::{DateTime, Utc};

/// Outbox rows fanned out per transaction while folding.
const FOLD_BATCH: usize = 1_000;

/// Batches folded at most before the scan goes ahead (a million events): events that
/// keep arriving during a scan are the next scan's.
const MAX_FOLD_BATCHES: usize = 1_000;

/// Folds waiting events into the inventory, then runs the scan at `as_of`.
pub async fn scan(
    store: &Store,
    render: &RenderSettings,
    as_of: DateTime<Utc>,
    max_per_event: usize,
) -> Result<ScanOutcome> {
    fold_waiting_events(store, render).await?;
    store.scan_expirations(as_of, max_per_event).await
}

/// What [`scan`] would report and mark at `as_of`, storing nothing. Events not yet fanned
/// out are not in the inventory, and a preview does not fold them in.
pub async fn preview(store: &Store, as_of: DateTime<Utc>, max_per_event: usize) -> Result<ScanOutcome> {
    store.preview_expirations(as_of, max_per_event).await
}

/// Fans out what waits in the outbox; how many rows it read.
pub async fn fold_waiting_events(store: &Store, render: &RenderSettings) -> Result<usize> {
    let mut total = 0;
    for _ in 0..MAX_FOLD_BATCHES {
        let n = store.fan_out(render, FOLD_BATCH).await?;
        total += n;
        if n < FOLD_BATCH {
            break;
        }
    }
    Ok(total)
}
