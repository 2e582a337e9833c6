//! Crashes and shutdowns: nothing accepted is ever lost.

use std::collections::HashSet;
use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event, metric};

const EVENTS: usize = 40;

/// Starts `serve` on `env` with one webhook channel to `receiver` and enqueues `n` events.
async fn serve_with_events(env: &Env, receiver: &Receiver, n: usize) -> Serve {
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(env).await;
    for i in 0..n {
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    serve
}

fn serials(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.json()["data"]["certificates"][0]["serialNumber"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_stream_then_restart_delivers_every_event() {
    // Slow answers keep requests in flight when the process dies.
    let receiver = Receiver::start(Reply::Delay(Duration::from_millis(100), 204)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_DELIVERY__LEASE_DURATION", "3s");
    env.set("CERTHOOK_DELIVERY__REQUEST_TIMEOUT", "1s");
    env.set("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "20");
    // Enqueued before serve starts, so its first claim takes a channel's whole allowance
    // (twice the 8 it may have in flight): leased-but-unsent deliveries exist at the kill
    // however fast or slow the machine is (events posted one by one while serving can be
    // claimed as they trickle in, leaving nothing unsent).
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), None);
    env.enqueue_file(&(0..EVENTS).map(|i| event(&app, &i.to_string())).collect::<Vec<_>>());
    let serve = Serve::start(&env).await;
    receiver.wait_for(3, Duration::from_secs(20)).await;
    serve.kill9().await;
    let at_kill = env.json(&["status"]);
    let leased = at_kill["deliveries"]["leased"].as_u64().unwrap() as usize;
    let delivered = at_kill["deliveries"]["delivered"].as_u64().unwrap() as usize;
    tokio::time::sleep(Duration::from_millis(300)).await; // requests already on the wire land
    let sent = receiver.received().len();
    // Sent but not recorded: these are the only ones that may arrive twice.
    let unrecorded = sent - delivered;
    assert!(
        leased > unrecorded,
        "some deliveries were leased but not yet sent at the kill: {leased} leased, {unrecorded} sent unrecorded"
    );

    let serve = Serve::start(&env).await;
    serve.wait_status(Duration::from_secs(60), |s| s["deliveries"]["delivered"] == EVENTS).await;
    let got = serials(&receiver);
    assert_eq!(got.len(), EVENTS, "every event arrived at least once");
    let duplicates = receiver.received().len() - EVENTS;
    assert!(duplicates <= unrecorded, "{duplicates} duplicates, but only {unrecorded} were sent and not recorded");
    assert_eq!(
        metric(&serve.metrics().await, "certhook_leases_expired_total"),
        leased as f64,
        "the new process took over every lease the dead one held"
    );
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_slow_requests_in_flight_exits_0_and_loses_nothing() {
    let receiver = Receiver::start(Reply::Delay(Duration::from_millis(800), 204)).await;
    let env = Env::fast();
    let serve = serve_with_events(&env, &receiver, 5).await;
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let code = serve.terminate().await;
    assert_eq!(code, 0, "a signal is a clean stop");
    let status = env.json(&["status"]);
    assert_eq!(status["deliveries"]["leased"], 0, "in-flight requests finished and were recorded: {status}");

    let serve = Serve::start(&env).await;
    serve.wait_status(Duration::from_secs(30), |s| s["deliveries"]["delivered"] == 5).await;
    assert_eq!(serials(&receiver).len(), 5);
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_claimed_but_unsent_leases_back_at_once() {
    // Eight requests in flight per channel and as many again claimed ahead: the ones
    // claimed but not yet sent must go back to the queue at shutdown, not wait out a lease.
    let receiver = Receiver::start(Reply::Delay(Duration::from_millis(800), 204)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_DELIVERY__LEASE_DURATION", "10m");
    let serve = serve_with_events(&env, &receiver, EVENTS).await;
    receiver.wait_for(8, Duration::from_secs(20)).await;
    let code = serve.terminate().await;
    assert_eq!(code, 0);
    let status = env.json(&["status"]);
    assert_eq!(status["deliveries"]["leased"], 0, "nothing is left under a lease: {status}");

    // With a ten-minute lease, only deliveries given back can go out now.
    let serve = Serve::start(&env).await;
    serve.wait_status(Duration::from_secs(60), |s| s["deliveries"]["delivered"] == EVENTS).await;
    assert_eq!(serials(&receiver).len(), EVENTS);
    serve.terminate().await;
}
