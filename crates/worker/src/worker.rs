//! The delivery loop: keep the sending slots (global and per channel) fed from a buffer
//! of claimed leases that a background refill tops up, send each in its own task, and
//! hand outcomes to the recorder, which writes them in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certhook_core::event::DeadReason;
use certhook_core::render::RenderSettings;
use certhook_core::retry::RetryPolicy;
use certhook_store::Store;
use tokio::sync::{Notify, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::attempt::{dead_without_attempt, deliver_one};
use crate::breaker::Breaker;
use crate::budget::{self, Throughput};
use crate::deliver::Sender;
use crate::fan_out::run_fan_out;
use crate::lease::{HeldLeases, run_keeper};
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::rate::RateLimits;
use crate::record::{ChannelSignal, Settled, run_recorder};
use crate::refill::{Buffered, RefillRequest, Refilled, refill, refill_size};
use crate::targets::Targets;

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

/// Why the worker stopped by itself.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The task that writes outcomes ended: whatever was sent could no longer be recorded.
    #[error("the outcome recorder stopped, so outcomes could no longer be written; restart serve")]
    RecorderStopped,
}

/// The delivery worker of one process.
#[derive(Debug)]
pub struct Worker {
    store: Store,
    config: WorkerConfig,
    /// What each send task takes along, shared.
    kit: Arc<SendKit>,
    /// The leases claimed and not yet recorded, kept alive by the keeper.
    held: Arc<HeldLeases>,
}

/// What every send task needs: one reference count per send, rather than a copy of each
/// part (the metrics alone are a dozen `Arc`s, the PagerDuty address a `String`).
#[derive(Debug)]
struct SendKit {
    sender: Sender,
    metrics: Metrics,
    retry: RetryPolicy,
    pagerduty_url: String,
}

/// Per-channel bookkeeping of the loop.
#[derive(Debug)]
struct ChannelSlots {
    in_flight: usize,
    breaker: Breaker,
    /// Attempts completed per second: how much this channel may keep claimed.
    sent: Throughput,
    /// When this channel's endpoint answered `410 Gone`, and at which URL.
    gone: Option<(Instant, Option<String>)>,
}

impl Default for ChannelSlots {
    fn default() -> Self {
        ChannelSlots { in_flight: 0, breaker: Breaker::default(), sent: Throughput::new(Instant::now()), gone: None }
    }
}

/// After a `410 Gone`, how long the loop itself sends nothing more to that URL: enough for
/// the recorder to disable the channel and the loop's next channel reload to see it.
const GONE_HOLD: Duration = Duration::from_secs(2);

/// When the loop starts its next refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextRefill {
    /// As soon as there is room: the last one found work.
    Now,
    /// After a delivery completes: the last one came back empty while some channels were
    /// excluded as full, none of them has had room since, and a completion may free one.
    AfterCompletion,
    /// After a wake-up or the poll interval: the last one found nothing, or failed.
    AfterWake,
}

/// Whether a channel that a claim left out (`excluded`, sorted) has room now
/// (`excluded_now`, sorted): only then can claiming again find more than that claim did.
/// A channel newly full (rates only fall without completions) is no reason to claim.
fn freed_any(excluded: &[Uuid], excluded_now: &[Uuid]) -> bool {
    excluded.iter().any(|c| excluded_now.binary_search(c).is_err())
}

/// What the loop holds between turns.
#[derive(Default)]
struct Pipeline {
    tasks: JoinSet<Settled>,
    slots: HashMap<Uuid, ChannelSlots>,
    buffer: Queue,
    targets: Arc<Targets>,
    targets_loaded: Option<Instant>,
    /// The channels the last claim left out, sorted.
    excluded: Vec<Uuid>,
    /// Per send task: its channel and lease (delivery id, token), so a task that panics
    /// still frees its slot and lets its lease go.
    sending: HashMap<tokio::task::Id, (Uuid, (Uuid, Uuid))>,
    /// The recorder stopped taking outcomes.
    recorder_gone: bool,
    /// One limiter per rate-limited channel, in step with `targets`.
    rates: RateLimits,
    /// When the first lease held back by its channel's rate limit may go.
    rate_wake: Option<tokio::time::Instant>,
}

impl Worker {
    /// A worker over `store`, sending with `sender`.
    pub fn new(store: Store, sender: Sender, config: WorkerConfig, metrics: Metrics) -> Self {
        let kit = SendKit { sender, metrics, retry: config.retry, pagerduty_url: config.pagerduty_url.clone() };
        Worker { store, config, kit: Arc::new(kit), held: Arc::default() }
    }

    /// Runs until `shutdown` is cancelled, then stops claiming, gives buffered leases
    /// back, lets in-flight requests finish (each is bounded by the request timeout),
    /// records their outcomes, and returns. If the outcome recorder stops, nothing more
    /// could be recorded: the worker cancels `shutdown` itself and returns the error.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let (outcomes, rx) = mpsc::channel::<Settled>(self.config.concurrency.max(64) * 2);
        let recorder = tokio::spawn(run_recorder(
            self.store.clone(),
            rx,
            self.held.clone(),
            self.kit.metrics.clone(),
            self.config.lease,
            shutdown.clone(),
        ));
        // The keeper outlives the loop: in-flight sends and unwritten outcomes after a
        // shutdown request still hold leases until the recorder is done.
        let keeper_stop = CancellationToken::new();
        let keeper =
            tokio::spawn(run_keeper(self.store.clone(), self.held.clone(), self.config.lease, keeper_stop.clone()));
        let kick = Arc::new(Notify::new());
        let fan_out = tokio::spawn(run_fan_out(
            self.store.clone(),
            self.config.render.clone(),
            kick.clone(),
            self.config.poll_interval,
            shutdown.clone(),
        ));
        let mut p = Pipeline::default();
        let mut refilling: Option<JoinHandle<Refilled>> = None;
        let mut next = NextRefill::Now;

        while !shutdown.is_cancelled() {
            if p.recorder_gone {
                // Nothing sent from now on could be recorded: stop, and let serve exit with
                // an error so that its supervisor restarts it; held leases expire and are
                // taken over.
                tracing::error!("the outcome recorder stopped; stopping the worker");
                shutdown.cancel();
                break;
            }
            if refilling.is_none() && next == NextRefill::Now {
                refilling = self.start_refill(&mut p);
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                done = async { refilling.as_mut().expect("guarded by the branch condition").await }, if refilling.is_some() => {
                    refilling = None;
                    next = self.take_refill(done, &mut p);
                    kick.notify_one();
                }
                Some(done) = p.tasks.join_next_with_id(), if !p.tasks.is_empty() => {
                    self.settle(done, &mut p, &outcomes).await;
                    while let Some(done) = p.tasks.try_join_next_with_id() {
                        self.settle(done, &mut p, &outcomes).await;
                    }
                    // A completion matters only if it took a channel out of the exclusion
                    // the last claim was made with; otherwise that claim would find nothing
                    // again.
                    if next == NextRefill::AfterCompletion && self.freed_since_claim(&mut p) {
                        next = NextRefill::Now;
                    }
                }
                // A rate-limited channel may send again: dispatch, below, sends it.
                _ = tokio::time::sleep_until(p.rate_wake.unwrap_or_else(tokio::time::Instant::now)), if p.rate_wake.is_some() => {
                    p.rate_wake = None;
                }
                _ = self.store.wait_for_work(self.config.poll_interval), if refilling.is_none() && (next != NextRefill::Now || p.tasks.is_empty()) => {
                    next = NextRefill::Now;
                    kick.notify_one();
                }
            }
            self.dispatch(&mut p, &outcomes).await;
        }
        tracing::info!(in_flight = p.tasks.len(), "worker stopping: finishing in-flight deliveries");
        if let Some(r) = refilling {
            self.take_refill(r.await, &mut p);
        }
        let unsent: Vec<Buffered> = p.buffer.drain().collect();
        for b in unsent {
            let _ = outcomes.send(Settled::released(b.lease)).await;
        }
        while let Some(done) = p.tasks.join_next_with_id().await {
            self.settle(done, &mut p, &outcomes).await;
        }
        drop(outcomes);
        if let Err(e) = fan_out.await {
            tracing::error!(error = %e, "fan-out task failed");
        }
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "recorder task failed");
        }
        keeper_stop.cancel();
        let _ = keeper.await;
        if p.recorder_gone { Err(WorkerError::RecorderStopped) } else { Ok(()) }
    }

    /// Starts a background refill if the loop has room for one.
    fn start_refill(&self, p: &mut Pipeline) -> Option<JoinHandle<Refilled>> {
        // Deliveries a rate limit holds back do not count against the buffer: each limited
        // channel keeps only a few claimed (see `claim_plan`), and counted, enough of them
        // would stop the refills that feed every other channel.
        let limited = p.targets.limited();
        let held_back: usize = limited.keys().map(|id| p.buffer.of_channel(id)).sum();
        let limit = refill_size(self.config.concurrency, p.tasks.len(), p.buffer.len() - held_back)?;
        let (exclude, channel_limits) = self.claim_plan(p);
        p.excluded = exclude.clone();
        let request = RefillRequest {
            limit,
            lease: self.config.lease,
            per_channel: 2 * self.config.channel_concurrency.max(1),
            exclude,
            channel_limits,
            reload_targets: p.targets_loaded.is_none_or(|t| t.elapsed() >= self.config.poll_interval),
        };
        Some(tokio::spawn(refill(self.store.clone(), request, p.targets.clone(), self.held.clone())))
    }

    /// Which channels a claim leaves out, and how many new leases each other known channel
    /// may take. A channel may hold what it sends in a short horizon at its observed rate
    /// (at least two rounds of its in-flight cap); it is claimed for again only once a
    /// quarter of that is free, so that a busy channel's claims come in batches, not one
    /// transaction per completed request, while what is still buffered covers the claim.
    fn claim_plan(&self, p: &mut Pipeline) -> (Vec<Uuid>, Vec<(Uuid, usize)>) {
        let threshold = self.config.breaker_threshold;
        let cap = self.config.channel_concurrency;
        let now = Instant::now();
        let horizon = budget::horizon(self.config.lease);
        // Well short of what the worker may hold in all: a channel that was fast and then
        // stops answering cannot take the room the others' refills need until its breaker opens.
        let ceiling = budget::channel_ceiling(self.config.concurrency);
        let mut held: HashMap<Uuid, usize> = p.slots.iter().map(|(id, s)| (*id, s.in_flight)).collect();
        for (channel, n) in p.buffer.counts() {
            *held.entry(channel).or_default() += n;
        }
        // A rate-limited channel holds only what its limit lets it send soon, named in the
        // plan even when nothing of it is held yet (else a claim gives it the default):
        // deliveries waiting on a limiter would otherwise fill the buffer and starve the
        // other channels.
        let targets = p.targets.clone();
        let limited = targets.limited();
        for id in limited.keys() {
            held.entry(*id).or_default();
        }
        let mut exclude = Vec::new();
        let mut limits = Vec::new();
        for (id, n) in held {
            let (allowed, rate) = match p.slots.get_mut(&id) {
                // An open breaker sends one probe at a time, whatever the channel did before.
                Some(s) if s.breaker.is_open(threshold) => (1, 0.0),
                Some(s) => (s.breaker.allowed_in_flight(threshold, cap), s.sent.per_sec(now)),
                None => (cap, 0.0),
            };
            let mut allowance = budget::allowance(allowed, rate, horizon, ceiling);
            if let Some(&by_limit) = limited.get(&id) {
                allowance = allowance.min(by_limit);
            }
            let room = allowance.saturating_sub(n);
            if room == 0 || room < allowance / 4 {
                exclude.push(id);
            } else {
                limits.push((id, room));
            }
        }
        exclude.sort_unstable();
        (exclude, limits)
    }

    /// Takes a finished refill into the buffer; when to refill next.
    fn take_refill(&self, done: Result<Refilled, tokio::task::JoinError>, p: &mut Pipeline) -> NextRefill {
        let refilled = match done {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "refill task failed");
                return NextRefill::AfterWake;
            }
        };
        if let Some(t) = refilled.targets {
            p.rates.sync(t.rate_limits());
            self.kit.sender.clients().refresh(|id| t.contains(id));
            p.targets = Arc::new(t);
            p.targets_loaded = Some(Instant::now());
        }
        let claim = match refilled.claim {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claim failed; retrying");
                return NextRefill::AfterWake;
            }
        };
        self.kit.metrics.leases_expired.inc_by(claim.taken_over as u64);
        self.held.hold(&claim.leases);
        let claimed = claim.leases.len();
        let now = Instant::now();
        for lease in claim.leases {
            p.buffer.push(Buffered { lease, claimed_at: now });
        }
        if claimed > 0 {
            return NextRefill::Now;
        }
        if p.excluded.is_empty() {
            return NextRefill::AfterWake;
        }
        // Sends that completed while the claim ran may have freed a channel it left out.
        // Waiting for a completion to say so stalled the loop: with nothing left in flight
        // none comes, and it slept until the poll interval or a wake-up.
        if self.freed_since_claim(p) { NextRefill::Now } else { NextRefill::AfterCompletion }
    }

    /// Whether a channel the last claim left out as full has room now: only then can
    /// claiming again find more than that claim did.
    fn freed_since_claim(&self, p: &mut Pipeline) -> bool {
        let excluded_now = self.claim_plan(p).0;
        freed_any(&p.excluded, &excluded_now)
    }

    /// Sends buffered leases while there are free slots, globally and per channel, and
    /// their channels' rate limits allow, each channel's oldest first. A lease whose
    /// channel's breaker opened, or that waited half its length, goes back. A lease held
    /// back by its channel's rate limit stays buffered (holding no slot) and the loop wakes
    /// when it may go.
    async fn dispatch(&self, p: &mut Pipeline, outcomes: &mpsc::Sender<Settled>) {
        let threshold = self.config.breaker_threshold;
        let cap = self.config.channel_concurrency;
        let give_back_after = self.config.lease / 2;
        if self.held.store_down() {
            // Nothing new goes out while outcomes cannot be recorded: the buffered leases
            // wait (kept alive once the database is back) instead of lapsing after a send
            // and being sent again.
            return;
        }
        let now = Instant::now();
        let mut rate_wait: Option<Duration> = None;
        for channel in p.buffer.pass() {
            let target = p.targets.get(&channel);
            let slot = p.slots.entry(channel).or_default();
            // The endpoint said it is gone: what is claimed for it goes where the channel's
            // waiting deliveries go.
            let gone_kind = slot
                .gone
                .as_ref()
                .filter(|(at, _)| now.saturating_duration_since(*at) < GONE_HOLD)
                .and_then(|(_, url)| target.as_ref().filter(|t| &t.channel.url == url))
                .map(|t| t.channel.kind);
            if let Some(kind) = gone_kind {
                for b in p.buffer.take_channel(&channel) {
                    if self.held.holds(b.lease.delivery_id, b.lease.token) {
                        let settled = dead_without_attempt(&self.kit.metrics, kind, b.lease, DeadReason::EndpointGone);
                        self.hand_over(settled, outcomes, &mut p.recorder_gone).await;
                    }
                }
                continue;
            }
            // A queue is in claim order, so the leases that waited too long are in front.
            while p
                .buffer
                .front(&channel)
                .is_some_and(|b| now.saturating_duration_since(b.claimed_at) >= give_back_after)
            {
                let b = p.buffer.pop(&channel).expect("a front was just seen");
                self.give_back(b, outcomes, &mut p.recorder_gone).await;
            }
            loop {
                if slot.in_flight >= slot.breaker.allowed_in_flight(threshold, cap) {
                    // An open breaker sends one probe at a time; the rest wait in the table
                    // (where other workers can take them) rather than here under a lease.
                    if slot.breaker.is_open(threshold) {
                        for b in p.buffer.take_channel(&channel) {
                            self.give_back(b, outcomes, &mut p.recorder_gone).await;
                        }
                    }
                    break;
                }
                if p.tasks.len() >= self.config.concurrency {
                    break;
                }
                let Some(b) = p.buffer.pop(&channel) else { break };
                // Only a lease about to leave the buffer is looked up, so one waiting its
                // turn costs no lock per pass.
                if !self.held.holds(b.lease.delivery_id, b.lease.token) {
                    // Taken over by another worker, or claimed again by this one (the newer
                    // lease is in the buffer too): this copy is not ours.
                    continue;
                }
                if let Err(wait) = p.rates.try_acquire(&channel) {
                    rate_wait = Some(rate_wait.map_or(wait, |w| w.min(wait)));
                    p.buffer.push_front(b);
                    break;
                }
                slot.in_flight += 1;
                let ids = (b.lease.channel_id, (b.lease.delivery_id, b.lease.token));
                let (kit, target) = (self.kit.clone(), target.clone());
                let task = p.tasks.spawn(async move {
                    deliver_one(b.lease, target, &kit.sender, &kit.metrics, &kit.retry, &kit.pagerduty_url).await
                });
                p.sending.insert(task.id(), ids);
            }
        }
        // An idle channel's slot goes once its rate is stale; a busy one keeps its rate
        // across the moments it has nothing in flight.
        p.slots.retain(|_, s| {
            s.in_flight > 0
                || s.breaker != Breaker::default()
                || !s.sent.is_stale(now)
                || s.gone.as_ref().is_some_and(|(at, _)| now.saturating_duration_since(*at) < GONE_HOLD)
        });
        p.rate_wake = rate_wait.map(|w| tokio::time::Instant::now() + w);
    }

    /// Gives a buffered lease back unsent, if it is still this worker's.
    async fn give_back(&self, b: Buffered, outcomes: &mpsc::Sender<Settled>, recorder_gone: &mut bool) {
        if self.held.holds(b.lease.delivery_id, b.lease.token) {
            self.hand_over(Settled::released(b.lease), outcomes, recorder_gone).await;
        }
    }

    /// Frees a finished send's slot and hands its outcome to the recorder (noting in
    /// `p.recorder_gone` if it has stopped).
    async fn settle(
        &self,
        done: Result<(tokio::task::Id, Settled), tokio::task::JoinError>,
        p: &mut Pipeline,
        outcomes: &mpsc::Sender<Settled>,
    ) {
        let (task, settled) = match done {
            Ok(done) => done,
            Err(e) => {
                // A panicking send loses only its in-memory outcome: its slot is freed and
                // its lease let go, so it expires and another claim sends the delivery again.
                if let Some((channel, lease)) = p.sending.remove(&e.id()) {
                    if let Some(slot) = p.slots.get_mut(&channel) {
                        slot.in_flight = slot.in_flight.saturating_sub(1);
                    }
                    self.held.let_go([lease]);
                    tracing::error!(error = %e, delivery_id = %lease.0, "delivery task failed");
                } else {
                    tracing::error!(error = %e, "delivery task failed");
                }
                return;
            }
        };
        p.sending.remove(&task);
        if let Some(slot) = p.slots.get_mut(&settled.channel_id) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            match &settled.signal {
                ChannelSignal::Healthy => slot.breaker.on_success(),
                ChannelSignal::Failing => slot.breaker.on_failure(),
                ChannelSignal::Gone(g) => {
                    slot.breaker.on_failure();
                    slot.gone = Some((Instant::now(), g.url.clone()));
                }
                ChannelSignal::Silent => {}
            }
            if settled.signal.reached() {
                slot.sent.record(Instant::now());
            }
        }
        let threshold = self.config.breaker_threshold;
        let open = p.slots.values().filter(|s| s.breaker.is_open(threshold)).count();
        self.kit.metrics.circuit_open.set(open as i64);
        self.hand_over(settled, outcomes, &mut p.recorder_gone).await;
    }

    /// Hands an outcome to the recorder; if the recorder has stopped, lets the lease go (it
    /// expires and is sent again) and notes that in `recorder_gone`.
    async fn hand_over(&self, settled: Settled, outcomes: &mpsc::Sender<Settled>, recorder_gone: &mut bool) {
        let lease = (settled.outcome.lease.delivery_id, settled.outcome.lease.token);
        if outcomes.send(settled).await.is_err() {
            tracing::error!(delivery_id = %lease.0, "outcome lost: the recorder has stopped; the lease will expire");
            self.held.let_go([lease]);
            *recorder_gone = true;
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
