//! Fan-out in its own task: new outbox rows become deliveries a batch at a time, beside
//! the claims and sends, never in front of them. While a backlog of events is being fanned
//! out, the deliveries already made are claimed and sent; each batch's inserts wake the
//! loop (through the store) so they are claimed at once.

use std::sync::Arc;
use std::time::Duration;

use certhook_core::render::RenderSettings;
use certhook_store::{BackendKind, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Events fanned out per transaction: large enough that a backlog costs few transactions
/// (each pays for finding the oldest unfanned rows), small enough to stay a short write.
///
/// SQLite has one writer, and a batch holds it from its first insert to its commit: at
/// 1,000 events that was 50–140 ms, while one busy channel's claimed leases last ~20 ms,
/// so its sends and the API's enqueues waited on fan-out. At 250 one channel was 33–45 %
/// faster and no case measurably slower (BENCHMARKS.md, "2026-12-01, evening"). On
/// PostgreSQL batches do not exclude claims, and 250 made one channel 18–56 % slower
/// (more transactions, each finding the oldest unfanned rows).
pub fn fan_out_batch(kind: BackendKind) -> usize {
    match kind {
        BackendKind::Sqlite => 250,
        BackendKind::Postgres => 1_000,
    }
}

/// Fans out until `shutdown`: again at once while batches come back full, otherwise when
/// `kick` is notified (new events) or after `poll_interval` (rows a plain-SQL producer or
/// another process inserted).
pub async fn run_fan_out(
    store: Store,
    render: RenderSettings,
    kick: Arc<Notify>,
    poll_interval: Duration,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    let batch = fan_out_batch(store.kind());
    while !shutdown.is_cancelled() {
        let full = match store.fan_out(&render, batch).await {
            Ok(n) => {
                failures = 0;
                n == batch
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "fan-out failed; retrying");
                false
            }
        };
        if full {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = kick.notified() => {}
            _ = tokio::time::sleep(poll_interval) => {}
        }
    }
}
