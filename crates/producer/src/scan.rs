//! The expiration scan as `certhook scan` and `serve` run it: every event accepted before
//! the scan started is folded into the inventory first (fanned out, as the worker would),
//! so a certificate handed over by `enqueue` is alerted on by the very next scan; then
//! the inventory is scanned. A preview stores nothing.

use certhook_core::render::RenderSettings;
use certhook_store::{Result, ScanOutcome, Store};
use chrono::{DateTime, Utc};
use std::time::Duration;

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

/// `serve`'s scanner: a scan at start, then one every `every`, forever (the caller aborts
/// the task to stop it). Each outcome goes to `on_scan`; a failed scan is logged and
/// tried again at the next turn.
pub async fn run_every(
    store: Store,
    render: RenderSettings,
    every: Duration,
    max_per_event: usize,
    on_scan: impl Fn(&ScanOutcome) + Send,
) {
    loop {
        let as_of = match store.now().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "expiration scan: database unreachable; will try again");
                Utc::now()
            }
        };
        match scan(&store, &render, as_of, max_per_event).await {
            Ok(out) => {
                on_scan(&out);
                if out.reported > 0 || out.expired_marked > 0 {
                    tracing::info!(
                        reported = out.reported,
                        events = out.events.len(),
                        expired = out.expired_marked,
                        "expiration scan"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "expiration scan failed; will try again"),
        }
        tokio::time::sleep(every).await;
    }
}
