//! Background chores beside the worker: disabling channels that fail without a success
//! for `disable_after`, and pruning what `retention` allows.

use std::time::Duration;

use certhook_store::Store;
use tokio_util::sync::CancellationToken;

/// Background chores: disable channels failing without a success for `disable_after`
/// (checked every 30 s), and prune what `retention` allows (every few minutes).
pub async fn run(store: Store, retention: Duration, disable_after: Duration, shutdown: CancellationToken) {
    let prune_every = (retention / 10).clamp(Duration::from_secs(60), Duration::from_secs(600));
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        match store.disable_failing(disable_after).await {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(channel_id = %id, "channel disabled: no successful delivery within disable_after");
                }
            }
            Err(e) => tracing::warn!(error = %e, "checking failing channels failed; will try again"),
        }
        if last_prune.elapsed() < prune_every {
            continue;
        }
        last_prune = tokio::time::Instant::now();
        match store.prune(retention).await {
            Ok(p) if p.deliveries + p.events > 0 => {
                tracing::info!(deliveries = p.deliveries, events = p.events, "pruned past retention")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; will try again"),
        }
    }
}
