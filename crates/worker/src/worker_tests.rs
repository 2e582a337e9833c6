//! The loop's bookkeeping: when a send task panics or the recorder is gone (issue 13), and
//! when it claims again after a claim that found nothing.

use std::sync::Arc;
use std::time::Duration;

use certhook_core::render::RenderSettings;
use certhook_store::{Lease, Store};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::*;
use crate::deliver::{Sender, SenderConfig};
use crate::guard::Guard;

fn lease(n: u128, channel: Uuid) -> Lease {
    Lease {
        delivery_id: Uuid::from_u128(n),
        token: Uuid::from_u128(1000 + n),
        channel_id: channel,
        cloud_event_id: Uuid::from_u128(n),
        delivery_type: certhook_core::event::DeliveryType::Alert(certhook_core::event::AlertType::Issuance),
        attempts_before: 0,
        body: Arc::from(&b"{}"[..]),
        enqueued_at: chrono::Utc::now(),
    }
}

async fn worker(dir: &tempfile::TempDir) -> Worker {
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("w.db").display())).await.unwrap();
    let sender = Sender::new(&SenderConfig {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        signature_header: "x-infisical-signature".into(),
        guard: Arc::new(Guard::new(Vec::new())),
        ca_bundle: None,
    })
    .unwrap();
    let config = WorkerConfig {
        render: RenderSettings::default(),
        retry: RetryPolicy::default(),
        lease: Duration::from_secs(60),
        poll_interval: Duration::from_millis(50),
        concurrency: 4,
        channel_concurrency: 2,
        breaker_threshold: 5,
        pagerduty_url: String::new(),
    };
    Worker::new(store, sender, config, Metrics::new())
}

/// One send task in flight for `channel`, its lease held, as dispatch leaves it.
fn in_flight(w: &Worker, p: &mut Pipeline, l: Lease, panics: bool) {
    let (channel, delivery, token) = (l.channel_id, l.delivery_id, l.token);
    w.held.hold([&l]);
    p.slots.entry(channel).or_default().in_flight += 1;
    let task = p.tasks.spawn(async move {
        if panics {
            panic!("a send that panics");
        }
        Settled::released(l)
    });
    p.sending.insert(task.id(), (channel, (delivery, token)));
}

/// One send to channel 7 that panics or returns, settled with the recorder alive or gone;
/// what the loop holds afterwards.
async fn settle_one(panics: bool, recorder_alive: bool) -> (tempfile::TempDir, Worker, Pipeline, bool) {
    let dir = tempfile::tempdir().unwrap();
    let w = worker(&dir).await;
    let mut p = Pipeline::default();
    in_flight(&w, &mut p, lease(1, Uuid::from_u128(7)), panics);
    let (outcomes, recorder) = mpsc::channel(4);
    if !recorder_alive {
        drop(recorder);
    }
    let done = p.tasks.join_next_with_id().await.unwrap();
    let panicked = done.as_ref().is_err_and(|e| e.is_panic());
    w.settle(done, &mut p, &outcomes).await;
    (dir, w, p, panicked)
}

#[tokio::test]
async fn a_send_task_that_panics_frees_its_slot_and_lets_its_lease_go() {
    let (_dir, w, p, panicked) = settle_one(true, true).await;
    assert!(panicked);
    assert!(!p.recorder_gone, "the recorder is still there");
    assert_eq!(p.slots[&Uuid::from_u128(7)].in_flight, 0, "the slot is free again");
    assert!(w.held.is_empty(), "the lease is let go, to expire and be sent again");
    assert!(p.sending.is_empty());
}

#[tokio::test]
async fn an_outcome_the_stopped_recorder_cannot_take_lets_its_lease_go_and_stops_the_loop() {
    let (_dir, w, p, _) = settle_one(false, false).await;
    assert!(p.recorder_gone, "the loop is told the recorder is gone");
    assert_eq!(p.slots[&Uuid::from_u128(7)].in_flight, 0);
    assert!(w.held.is_empty(), "not kept alive for ever");
}

/// A worker with an empty loop, and the channel (7) a test works with.
async fn empty_loop() -> (tempfile::TempDir, Worker, Pipeline, Uuid) {
    let dir = tempfile::tempdir().unwrap();
    let w = worker(&dir).await;
    (dir, w, Pipeline::default(), Uuid::from_u128(7))
}

#[tokio::test]
async fn a_buffered_lease_no_longer_held_is_not_sent() {
    let (_dir, w, mut p, channel) = empty_loop().await;
    let stale = lease(1, channel);
    let mut newer = lease(1, channel);
    newer.token = Uuid::from_u128(4242);
    // Claimed again since (the newer lease is held), and one taken over (held by nobody).
    w.held.hold([&newer]);
    let taken_over = lease(2, channel);
    let now = std::time::Instant::now();
    p.buffer.push(crate::refill::Buffered { lease: stale, claimed_at: now });
    p.buffer.push(crate::refill::Buffered { lease: taken_over, claimed_at: now });
    let (outcomes, _recorder) = mpsc::channel(4);
    w.dispatch(&mut p, &outcomes).await;
    assert!(p.tasks.is_empty(), "neither copy is sent");
    assert!(p.buffer.is_empty(), "and neither is kept");
    assert!(w.held.holds(newer.delivery_id, newer.token), "the newer lease stays held");
}

/// A pass sends each channel's oldest leases up to its cap, whatever another channel
/// holds, and gives back what waited half a lease; a full channel's rest waits.
#[tokio::test]
async fn dispatch_sends_each_channels_oldest_within_its_cap_and_gives_back_what_waited_too_long() {
    let (_dir, w, mut p, a) = empty_loop().await; // concurrency 4, 2 per channel, leases of 60 s
    let b = Uuid::from_u128(8);
    let now = std::time::Instant::now();
    let long_ago = now.checked_sub(Duration::from_secs(31)).expect("the machine has been up for 31 s");
    for (n, channel, claimed_at) in [(1, a, long_ago), (2, a, now), (3, a, now), (4, a, now), (5, b, now), (6, b, now)]
    {
        let l = lease(n, channel);
        w.held.hold([&l]);
        p.buffer.push(crate::refill::Buffered { lease: l, claimed_at });
    }
    let (outcomes, mut recorder) = mpsc::channel(8);
    w.dispatch(&mut p, &outcomes).await;
    let given_back = recorder.try_recv().expect("the lease that waited 31 s goes back");
    assert_eq!(given_back.outcome.lease.delivery_id, Uuid::from_u128(1));
    assert_eq!(given_back.outcome.disposition, certhook_store::Disposition::Released);
    assert!(recorder.try_recv().is_err(), "nothing else goes back");
    let mut sent: Vec<u128> = p.sending.values().map(|(_, (d, _))| d.as_u128()).collect();
    sent.sort_unstable();
    assert_eq!(sent, vec![2, 3, 5, 6], "two per channel, oldest first");
    assert_eq!((p.slots[&a].in_flight, p.slots[&b].in_flight), (2, 2));
    assert_eq!((p.buffer.len(), p.buffer.front(&a).map(|f| f.lease.delivery_id.as_u128())), (1, Some(4)));
    // No slot freed: another pass changes nothing.
    w.dispatch(&mut p, &outcomes).await;
    assert_eq!((p.tasks.len(), p.buffer.len()), (4, 1));
}

/// Issue 16 review: deliveries waiting on rate limits once filled the buffer and stopped
/// the refills every other channel depends on.
#[tokio::test]
async fn rate_limited_channels_hold_little_and_never_block_refills() {
    use certhook_core::event::{AlertType, ChannelState};
    let dir = tempfile::tempdir().unwrap();
    let w = worker(&dir).await; // concurrency 4: the buffer's cap is 8
    let app = w.store.create_application("a").await.unwrap();
    let alert =
        w.store.create_alert(&certhook_store::NewAlert::single(app.id, AlertType::Issuance, "a")).await.unwrap();
    let channel = |rate_limit: Option<&str>| {
        let new = certhook_store::NewChannel {
            rate_limit: rate_limit.map(|r| r.parse().unwrap()),
            ..certhook_store::NewChannel::webhook(alert.id, "https://receiver.test/hook", ChannelState::Active)
        };
        let store = w.store.clone();
        async move { store.create_channel(&new, None).await.unwrap().id }
    };
    let mut limited = Vec::new();
    for _ in 0..9 {
        limited.push(channel(Some("1/m")).await);
    }
    let unlimited = channel(None).await;
    let mut p = Pipeline { targets: Arc::new(Targets::load(&w.store).await.unwrap()), ..Pipeline::default() };
    // Eight limited channels each hold the one lease their limit allows; the ninth none.
    let now = std::time::Instant::now();
    for (i, ch) in limited[..8].iter().enumerate() {
        p.buffer.push(crate::refill::Buffered { lease: lease(i as u128 + 1, *ch), claimed_at: now });
    }
    let (exclude, limits) = w.claim_plan(&mut p);
    let mut full = limited[..8].to_vec();
    full.sort_unstable();
    assert_eq!(exclude, full, "a channel at its limit's allowance claims nothing more");
    assert_eq!(limits, vec![(limited[8], 1)], "one with nothing held may take one, not the default");
    assert!(!exclude.contains(&unlimited) && !limits.iter().any(|(c, _)| *c == unlimited));
    let refill = w.start_refill(&mut p).expect("held-back leases do not fill the buffer");
    refill.await.unwrap();
}

#[test]
fn only_a_left_out_channel_with_room_again_is_a_reason_to_claim() {
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    assert!(!freed_any(&[a, b], &[a, b]), "still full");
    assert!(freed_any(&[a, b], &[b]), "a has room again");
    assert!(freed_any(&[a], &[]), "every channel has room");
    assert!(!freed_any(&[a], &[a, b]), "b newly full: the claim would find nothing more");
    assert!(!freed_any(&[], &[a]), "nothing was left out");
}

/// A claim made while a channel was full comes back empty after that channel's sends all
/// finished: `take_refill` says to claim again at once. The loop used to wait for a
/// completion that could no longer come, and sat idle until the poll interval.
#[tokio::test]
async fn an_empty_claim_that_left_out_a_channel_freed_meanwhile_claims_again_at_once() {
    let (_dir, w, mut p, channel) = empty_loop().await;
    let empty = || Ok(crate::refill::Refilled { claim: Ok(certhook_store::Claim::default()), targets: None });
    // The claim was planned while the channel was full, and its sends finished meanwhile.
    p.excluded = vec![channel];
    p.slots.entry(channel).or_default();
    assert_eq!(w.take_refill(empty(), &mut p), NextRefill::Now);
    // Still full: a completion is what can change that.
    p.slots.get_mut(&channel).unwrap().in_flight = 4;
    assert_eq!(w.take_refill(empty(), &mut p), NextRefill::AfterCompletion);
}
