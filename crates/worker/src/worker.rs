//! The delivery loop: fan out new events, claim as many due deliveries as there are free
//! sending slots (global and per channel), send each in its own task, and hand outcomes
//! to the recorder, which writes them in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certhook_core::event::ChannelState;
use certhook_core::render::RenderSettings;
use certhook_core::retry::RetryPolicy;
use certhook_store::{AttemptRecord, ClaimRequest, Disposition, Lease, Outcome, Store};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::breaker::Breaker;
use crate::channels::{Destination, requests};
use crate::classify::{AttemptResult, Verdict, classify, dispose};
use crate::deliver::Sender;
use crate::metrics::Metrics;
use crate::record::{Settled, run_recorder};
use crate::targets::{Target, Targets};

/// The delivery type of a renewal resolving expiration incidents (PagerDuty).
pub const RESOLVE_TYPE: &str = "resolve";

/// Events fanned out per pass.
const FAN_OUT_BATCH: usize = 256;

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Type prefix and public URL of rendered events.
    pub render: RenderSettings,
    /// The durable retry schedule.
    pub retry: RetryPolicy,
    /// How long a claim lasts.
    pub lease: Duration,
    /// How often to look for due work besides notifications.
    pub poll_interval: Duration,
    /// Requests in flight per process.
    pub concurrency: usize,
    /// Requests in flight per channel.
    pub channel_concurrency: usize,
    /// Consecutive failures that open a channel's breaker.
    pub breaker_threshold: u32,
    /// PagerDuty Events API address.
    pub pagerduty_url: String,
}

/// The delivery worker of one process.
#[derive(Debug)]
pub struct Worker {
    store: Store,
    sender: Sender,
    config: WorkerConfig,
    metrics: Metrics,
}

/// Per-channel bookkeeping of the loop.
#[derive(Debug, Default)]
struct ChannelSlots {
    in_flight: usize,
    breaker: Breaker,
}

impl Worker {
    /// A worker over `store`, sending with `sender`.
    pub fn new(store: Store, sender: Sender, config: WorkerConfig, metrics: Metrics) -> Self {
        Worker { store, sender, config, metrics }
    }

    /// Runs until `shutdown` is cancelled, then stops claiming, lets in-flight requests
    /// finish (each is bounded by the request timeout), records their outcomes, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let (outcomes, rx) = mpsc::channel::<Settled>(self.config.concurrency.max(64) * 2);
        let recorder = tokio::spawn(run_recorder(self.store.clone(), rx, self.config.lease));
        let mut tasks: JoinSet<Settled> = JoinSet::new();
        let mut slots: HashMap<Uuid, ChannelSlots> = HashMap::new();
        let mut targets = Targets::default();
        let mut targets_loaded: Option<Instant> = None;

        while !shutdown.is_cancelled() {
            if targets_loaded.is_none_or(|t| t.elapsed() >= self.config.poll_interval) {
                match Targets::load(&self.store).await {
                    Ok(t) => {
                        targets = t;
                        targets_loaded = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!(error = %e, "loading channels failed; retrying"),
                }
            }
            let more_fan_out = match self.store.fan_out(&self.config.render, FAN_OUT_BATCH).await {
                Ok(n) => n == FAN_OUT_BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "fan-out failed; retrying");
                    false
                }
            };
            let claimed = self.claim_and_send(&mut tasks, &mut slots, &mut targets, &outcomes).await;
            let busy = more_fan_out || (claimed > 0 && tasks.len() < self.config.concurrency);
            let wait = if busy { Duration::ZERO } else { self.config.poll_interval };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    self.settle(done, &mut slots, &outcomes).await;
                    while let Some(done) = tasks.try_join_next() {
                        self.settle(done, &mut slots, &outcomes).await;
                    }
                }
                _ = self.store.wait_for_work(wait) => {}
            }
        }
        tracing::info!(in_flight = tasks.len(), "worker stopping: finishing in-flight deliveries");
        while let Some(done) = tasks.join_next().await {
            self.settle(done, &mut slots, &outcomes).await;
        }
        drop(outcomes);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "recorder task failed");
        }
    }

    async fn claim_and_send(
        &self,
        tasks: &mut JoinSet<Settled>,
        slots: &mut HashMap<Uuid, ChannelSlots>,
        targets: &mut Targets,
        outcomes: &mpsc::Sender<Settled>,
    ) -> usize {
        let free = self.config.concurrency.saturating_sub(tasks.len());
        // Claim in batches: waiting until a quarter of the slots are free turns one claim
        // transaction per delivery into one per several, at the cost of a few idle slots.
        let batch = (self.config.concurrency / 4).max(1);
        if free == 0 || (free < batch && !tasks.is_empty()) {
            return 0;
        }
        let threshold = self.config.breaker_threshold;
        let cap = self.config.channel_concurrency;
        let exclude: Vec<Uuid> = slots
            .iter()
            .filter(|(_, s)| s.in_flight >= s.breaker.allowed_in_flight(threshold, cap))
            .map(|(id, _)| *id)
            .collect();
        let request = ClaimRequest { limit: free, lease: self.config.lease, per_channel: cap, exclude: &exclude };
        let claim = match self.store.claim_with(&request).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claim failed; retrying");
                return 0;
            }
        };
        self.metrics.leases_expired.inc_by(claim.taken_over as u64);
        let claimed = claim.leases.len();
        if claim.leases.iter().any(|l| targets.get(&l.channel_id).is_none())
            && let Ok(t) = Targets::load(&self.store).await
        {
            *targets = t;
        }
        for lease in claim.leases {
            let slot = slots.entry(lease.channel_id).or_default();
            if slot.in_flight >= slot.breaker.allowed_in_flight(threshold, cap) {
                // More than the channel may have in flight (an open breaker allows one):
                // give it back at once rather than let it wait on its lease.
                let settled = Settled::released(lease);
                let _ = outcomes.send(settled).await;
                continue;
            }
            slot.in_flight += 1;
            let target = targets.get(&lease.channel_id);
            let sender = self.sender.clone();
            let metrics = self.metrics.clone();
            let retry = self.config.retry;
            let pagerduty_url = self.config.pagerduty_url.clone();
            tasks.spawn(async move { deliver_one(lease, target, &sender, &metrics, &retry, &pagerduty_url).await });
        }
        claimed
    }

    async fn settle(
        &self,
        done: Result<Settled, tokio::task::JoinError>,
        slots: &mut HashMap<Uuid, ChannelSlots>,
        outcomes: &mpsc::Sender<Settled>,
    ) {
        let settled = match done {
            Ok(s) => s,
            Err(e) => {
                // A panicking send loses only its in-memory outcome: the lease expires and
                // another claim sends the delivery again.
                tracing::error!(error = %e, "delivery task failed");
                return;
            }
        };
        if let Some(slot) = slots.get_mut(&settled.channel_id) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            match settled.success {
                Some(true) => slot.breaker.on_success(),
                Some(false) => slot.breaker.on_failure(),
                None => {}
            }
        }
        let threshold = self.config.breaker_threshold;
        slots.retain(|_, s| s.in_flight > 0 || s.breaker != Breaker::default());
        let open = slots.values().filter(|s| s.breaker.is_open(threshold)).count();
        self.metrics.circuit_open.set(open as i64);
        let _ = outcomes.send(settled).await;
    }
}

/// Sends one delivery and decides what becomes of it.
async fn deliver_one(
    lease: Lease,
    target: Option<Arc<Target>>,
    sender: &Sender,
    metrics: &Metrics,
    retry: &RetryPolicy,
    pagerduty_url: &str,
) -> Settled {
    let Some(target) = target else {
        return Settled::without_attempt(lease, "channel_deleted");
    };
    let channel = &target.channel;
    if channel.state == ChannelState::Disabled {
        return Settled::without_attempt(lease, "channel_disabled");
    }
    let destination = Destination {
        kind: channel.kind,
        url: channel.url.as_deref(),
        content_type: channel.content_type.as_deref(),
        routing_key: channel.routing_key.as_ref().map(|k| k.expose()),
        pagerduty_url,
    };
    let outgoing = match requests(&destination, &lease.body, lease.delivery_type == RESOLVE_TYPE) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(delivery_id = %lease.delivery_id, error = %e, "delivery cannot be built");
            return Settled::without_attempt(lease, "channel_misconfigured");
        }
    };
    let response = sender.send_all(outgoing, &lease.cloud_event_id.to_string(), &target.keys).await;
    let Some(response) = response else {
        return Settled::without_attempt(lease, "channel_misconfigured");
    };
    let kind = channel.kind.as_str();
    metrics.attempts.with_label_values(&[response.result.label()]).inc();
    metrics.delivery_duration.with_label_values(&[kind]).observe(response.duration.as_secs_f64());
    let verdict = classify(response.result, response.retry_after);
    let disposition = dispose(verdict, retry, lease.attempts_before + 1, rand::random::<f64>());
    let outcome_label = match &disposition {
        Disposition::Delivered => {
            let e2e = (chrono::Utc::now() - lease.enqueued_at).to_std().unwrap_or_default();
            metrics.end_to_end.observe(e2e.as_secs_f64());
            "delivered"
        }
        Disposition::Retry { .. } => "retried",
        Disposition::Dead { .. } | Disposition::Released => "dead_lettered",
    };
    metrics.deliveries.with_label_values(&[outcome_label, kind]).inc();
    if let Disposition::Dead { reason } = &disposition {
        tracing::warn!(delivery_id = %lease.delivery_id, channel_id = %lease.channel_id, reason, "delivery dead-lettered");
    }
    let success = match response.result {
        AttemptResult::Blocked => None,
        _ => Some(verdict == Verdict::Delivered),
    };
    Settled {
        channel_id: lease.channel_id,
        success,
        gone: verdict == Verdict::Gone,
        outcome: Outcome {
            lease,
            attempt: Some(AttemptRecord {
                started_at: response.started_at,
                duration: response.duration,
                status_code: match response.result {
                    AttemptResult::Status(s) => Some(s),
                    _ => None,
                },
                error: response.error,
                response_snippet: response.snippet,
            }),
            disposition,
        },
    }
}
