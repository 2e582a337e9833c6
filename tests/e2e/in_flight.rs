//! Issue 13: a channel changed while one of its deliveries is in flight. The slow failing
//! receiver keeps the first attempt in flight while the channel is paused, re-pointed or
//! deleted; what comes back must go where the channel is now.

use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event};

const WAIT: Duration = Duration::from_secs(20);

/// A channel to a receiver that takes 1.5 s to fail, and one event in flight to it.
async fn one_delivery_in_flight() -> (Env, Receiver, String, Serve) {
    let slow = Receiver::start(Reply::Delay(Duration::from_millis(1500), 500)).await;
    let env = Env::fast();
    let (app, channel) = env.webhook("issuance", &slow.url("/hook"), None);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "900")).await;
    slow.wait_for(1, WAIT).await;
    (env, slow, channel, serve)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_when_its_channel_is_paused_is_held_not_retried() {
    let (env, slow, channel, serve) = one_delivery_in_flight().await;
    env.json(&["channel", "pause", &channel]);
    serve.wait_status(WAIT, |s| s["deliveries"]["held"] == 1).await;
    // Retries come every 200 ms at most here: a paused channel would have had several.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slow.received().len(), 1, "no attempt while paused");
    slow.set_default(Reply::Status(204));
    env.json(&["channel", "resume", &channel]);
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 1).await;
    assert_eq!(slow.received().len(), 2, "resumed: sent again, once");
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_when_its_channel_is_repointed_waits_for_the_new_url_to_be_verified() {
    let (env, slow, channel, serve) = one_delivery_in_flight().await;
    let new = Receiver::start(Reply::Status(204)).await;
    env.json(&["channel", "update-url", &channel, "--url", &new.url("/new")]);
    serve.wait_status(WAIT, |s| s["deliveries"]["held"] == 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slow.received().len(), 1, "nothing more to the old URL");
    let got = new.received();
    assert_eq!(got.len(), 1, "only the verification event goes to the unverified URL");
    let verification = got[0].json();
    assert_eq!(verification["type"], "com.infisical.pki.certificate.webhook.verification");
    let token = verification["data"]["verificationToken"].as_str().unwrap().to_string();
    env.json(&["channel", "activate", &channel, "--token", &token]);
    let got = new.wait_for(2, WAIT).await;
    assert_eq!(got[1].json()["type"], "com.infisical.pki.certificate.issuance", "after activation it goes out");
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_when_its_channel_is_deleted_is_dead_lettered() {
    let (env, slow, channel, serve) = one_delivery_in_flight().await;
    env.json(&["channel", "delete", &channel]);
    serve.wait_status(WAIT, |s| s["deliveries"]["dead"] == 1).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(slow.received().len(), 1, "no attempt after the delete");
    let dead = serve.get("/v1/dead-letters").await;
    assert_eq!(dead[0]["reason"], "channel_deleted", "{dead}");
    assert_eq!(dead[0]["attemptCount"], 1, "the attempt in flight is on record");
    serve.terminate().await;
}
