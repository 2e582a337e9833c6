//! The recorder: writes outcomes in batches (one transaction per batch, several side by
//! side on PostgreSQL), and applies a `410 Gone` to its channel. If the database is away,
//! it keeps retrying a batch until it is back (each write is fenced, so a lease taken over
//! meanwhile is simply refused); only once the worker is stopping does it give up after a
//! lease's length, and those deliveries are sent again by whoever takes their leases.

use std::time::{Duration, Instant};

use std::sync::Arc;

use certhook_core::event::{ChannelKind, DeadReason, DeliveryOutcome};
use certhook_store::{BackendKind, Disposition, Lease, Outcome, Store};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::lease::HeldLeases;
use crate::metrics::Metrics;

/// Outcomes written per transaction at most.
const RECORD_BATCH: usize = 256;

/// A settled lease on its way to the store.
#[derive(Debug)]
pub struct Settled {
    /// The channel it was for.
    pub channel_id: Uuid,
    /// What the attempt says about the channel.
    pub signal: ChannelSignal,
    /// What to record.
    pub outcome: Outcome,
}

/// What one settled delivery says about its channel: the circuit breaker, the observed
/// rate and the `410` handling read it.
#[derive(Debug)]
pub enum ChannelSignal {
    /// No request reached the endpoint (not sent, or refused before connecting).
    Silent,
    /// It answered 2xx.
    Healthy,
    /// It failed (an error status, a timeout, a refused connection).
    Failing,
    /// It answered `410 Gone`: a failure, and the channel is to be disabled if it still
    /// has the URL the request went to.
    Gone(Gone),
}

impl ChannelSignal {
    /// Whether a request reached the endpoint.
    pub fn reached(&self) -> bool {
        !matches!(self, ChannelSignal::Silent)
    }
}

/// A `410 Gone` answer, to apply to its channel once the outcome is recorded.
#[derive(Debug, Clone)]
pub struct Gone {
    /// The channel's URL when the request went out (`None` for PagerDuty, whose channels
    /// have none).
    pub url: Option<String>,
    /// The channel's kind, for the metrics of what the 410 dead-letters.
    pub channel_kind: ChannelKind,
}

impl Settled {
    /// Dead-lettered without an attempt (the channel is gone or disabled).
    pub fn without_attempt(lease: Lease, reason: DeadReason) -> Settled {
        Settled {
            channel_id: lease.channel_id,
            signal: ChannelSignal::Silent,
            outcome: Outcome { lease, attempt: None, disposition: Disposition::Dead { reason } },
        }
    }

    /// Not sent, and due again after `delay` with no attempt counted (its channel cannot
    /// be sent to by this process just now).
    pub fn parked(lease: Lease, delay: Duration) -> Settled {
        Settled {
            channel_id: lease.channel_id,
            signal: ChannelSignal::Silent,
            outcome: Outcome { lease, attempt: None, disposition: Disposition::Retry { delay } },
        }
    }

    /// Given back unsent.
    pub fn released(lease: Lease) -> Settled {
        Settled {
            channel_id: lease.channel_id,
            signal: ChannelSignal::Silent,
            outcome: Outcome { lease, attempt: None, disposition: Disposition::Released },
        }
    }
}

/// Record transactions in flight at once, once outcomes come faster than full batches
/// are written: PostgreSQL runs them side by side (each batch touches its own rows),
/// SQLite has one writer, so more would only queue.
fn parallel_batches(store: &Store) -> usize {
    match store.kind() {
        BackendKind::Sqlite => 1,
        BackendKind::Postgres => 4,
    }
}

/// Drains `rx` until every sender is dropped, recording in batches; each lease is let go
/// once its outcome is written. Once `stopping` is cancelled, a batch the database keeps
/// refusing is given up after `give_up_after`.
pub async fn run_recorder(
    store: Store,
    mut rx: mpsc::Receiver<Settled>,
    held: Arc<HeldLeases>,
    metrics: Metrics,
    give_up_after: Duration,
    stopping: CancellationToken,
) {
    let retry = Retry { give_up_after, stopping };
    let parallel = parallel_batches(&store);
    let mut writing = JoinSet::new();
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        if batch.is_empty() && rx.recv_many(&mut batch, RECORD_BATCH).await == 0 {
            break;
        }
        // While earlier batches are being written, keep gathering: a batch starts once the
        // writes before it are done, or once it is full. Started at once, batches came as
        // small as the writes were fast, and each costs its statements and its commit
        // whatever its size.
        while batch.len() < RECORD_BATCH && !writing.is_empty() {
            let room = RECORD_BATCH - batch.len();
            tokio::select! {
                _ = join_one(&mut writing) => {}
                n = rx.recv_many(&mut batch, room) => if n == 0 { break },
            }
        }
        let gone: Vec<(usize, Uuid, Gone)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.signal {
                ChannelSignal::Gone(g) => Some((i, s.channel_id, g.clone())),
                _ => None,
            })
            .collect();
        let outcomes: Vec<Outcome> = batch.drain(..).map(|s| s.outcome).collect();
        if !gone.is_empty() {
            // A 410 disables the channel after everything recorded before it, and before
            // anything recorded after it: no batch may commit around it.
            join_all(&mut writing).await;
            let accepted = record_with_retry(&store, &held, outcomes, &retry).await;
            for (i, channel, g) in gone {
                // Only an outcome that still held its lease speaks for the channel.
                if !accepted.as_ref().is_some_and(|a| a[i]) {
                    continue;
                }
                match store.channel_gone(channel, g.url.as_deref()).await {
                    Ok(n) => {
                        // The waiting deliveries it dead-lettered (the one that got the 410
                        // was counted when it was sent).
                        metrics.count_deliveries(DeliveryOutcome::DeadLettered, g.channel_kind, n);
                        tracing::warn!(channel_id = %channel, dead_lettered = n, "410 Gone: channel disabled")
                    }
                    Err(e) => tracing::error!(channel_id = %channel, error = %e, "disabling a gone channel failed"),
                }
            }
            continue;
        }
        while writing.len() >= parallel {
            join_one(&mut writing).await;
        }
        let (store, held, retry) = (store.clone(), held.clone(), retry.clone());
        writing.spawn(async move {
            record_with_retry(&store, &held, outcomes, &retry).await;
        });
    }
    join_all(&mut writing).await;
}

async fn join_one(writing: &mut JoinSet<()>) {
    if let Some(Err(e)) = writing.join_next().await {
        // Only the in-memory outcomes are lost: their leases expire and are sent again.
        tracing::error!(error = %e, "recording task failed");
    }
}

async fn join_all(writing: &mut JoinSet<()>) {
    while !writing.is_empty() {
        join_one(writing).await;
    }
}

/// When the recorder gives up on a batch.
#[derive(Debug, Clone)]
struct Retry {
    give_up_after: Duration,
    stopping: CancellationToken,
}

/// Which outcomes were accepted, or `None` if the batch was given up.
async fn record_with_retry(
    store: &Store,
    held: &HeldLeases,
    outcomes: Vec<Outcome>,
    retry: &Retry,
) -> Option<Vec<bool>> {
    let mut delay = Duration::from_millis(100);
    let mut stopping_since: Option<Instant> = None;
    let result = loop {
        match store.record(&outcomes).await {
            Ok(accepted) => {
                let fenced = accepted.iter().filter(|a| !**a).count();
                if fenced > 0 {
                    tracing::info!(fenced, "outcomes refused: their leases were taken over");
                }
                break Some(accepted);
            }
            Err(e) => {
                held.mark_store_down();
                if retry.stopping.is_cancelled() {
                    let since = *stopping_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= retry.give_up_after {
                        tracing::error!(error = %e, outcomes = outcomes.len(), "recording outcomes failed while stopping; their leases will expire and the deliveries be sent again");
                        break None;
                    }
                }
                tracing::warn!(error = %e, outcomes = outcomes.len(), "recording outcomes failed; retrying until the database is back");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    held.let_go(outcomes.iter().map(|o| (o.lease.delivery_id, o.lease.token)));
    result
}
