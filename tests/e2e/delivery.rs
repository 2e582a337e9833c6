//! Delivery end to end: `certhook serve` sending to real receivers on 127.0.0.1.

use std::time::Duration;

use base64::Engine;
use hmac::{KeyInit, Mac};

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event};

const SECRET: &str = "e2e-signing-secret-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(20);

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Checks both signature schemes of a request with an HMAC computed here, not by certhook.
fn assert_signed(r: &crate::receiver::Received) {
    let header = r.header("x-infisical-signature");
    let (t, v1) = header.split_once(",v1=").expect("t=..,v1=..");
    let t = t.strip_prefix("t=").unwrap();
    let expected = hex::encode(hmac(SECRET.as_bytes(), &[t.as_bytes(), b".", &r.body]));
    assert_eq!(v1, expected, "x-infisical-signature");
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    assert_eq!(ts, (t.parse::<i64>().unwrap() / 1000).to_string(), "both schemes sign the same instant");
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(hmac(SECRET.as_bytes(), &[id.as_bytes(), b".", ts.as_bytes(), b".", &r.body]));
    assert_eq!(r.header("webhook-signature"), format!("v1,{b64}"), "webhook-signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_a_signed_cloudevent_that_verifies_independently() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let env = Env::fast();
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), Some(SECRET));
    let serve = Serve::start(&env).await;
    let event_id = serve.enqueue(&event(&app, "1001")).await;
    let got = receiver.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.path, "/hook");
    assert_eq!(r.header("content-type"), "application/cloudevents+json; charset=utf-8");
    assert_eq!(r.header("user-agent"), format!("certhook/{}", env!("CARGO_PKG_VERSION")));
    assert_signed(r);
    let ce = r.json();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "com.infisical.pki.certificate.issuance");
    assert_eq!(ce["id"], r.header("webhook-id"));
    assert_eq!(ce["data"]["certificates"][0]["serialNumber"], "1001");
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 1).await;
    let deliveries = serve.get("/v1/deliveries").await;
    assert_eq!(deliveries[0]["eventId"], event_id);
    assert_eq!(deliveries[0]["attemptCount"], 1);
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_resend_the_identical_body_with_a_fresh_signature() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    receiver.script([Reply::Status(500), Reply::Status(502)]);
    let env = Env::fast();
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), Some(SECRET));
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "7")).await;
    let got = receiver.wait_for(3, WAIT).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 1).await;
    assert_eq!(receiver.received().len(), 3, "exactly three attempts");
    assert!(got.iter().all(|r| r.body == got[0].body), "byte-for-byte identical bodies");
    assert!(got.iter().all(|r| r.header("webhook-id") == got[0].header("webhook-id")));
    for r in &got {
        assert_signed(r);
    }
    let sigs: std::collections::HashSet<_> = got.iter().map(|r| r.header("x-infisical-signature")).collect();
    assert_eq!(sigs.len(), 3, "each attempt is signed afresh");
    let list = serve.get("/v1/deliveries").await;
    let detail = serve.get(&format!("/v1/deliveries/{}", list[0]["id"].as_str().unwrap())).await;
    let codes: Vec<_> = detail["attempts"].as_array().unwrap().iter().map(|a| a["statusCode"].clone()).collect();
    assert_eq!(codes, vec![500, 502, 204]);
    // `since` and `before` bound when a delivery was created (on dead letters: when each died).
    assert_eq!(listed(&serve, "/v1/deliveries?since=2020-01-01T00:00:00Z").await, 1);
    assert_eq!(listed(&serve, "/v1/deliveries?before=2020-01-01T00:00:00Z").await, 0);
    assert_eq!(listed(&serve, "/v1/deliveries?since=2020-01-01T00:00:00Z&before=2999-01-01T00:00:00Z").await, 1);
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_after_max_attempts_and_replay_keeps_the_cloudevent_id() {
    let receiver = Receiver::start(Reply::Status(500)).await;
    let env = Env::fast();
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "9")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["dead"] == 1).await;
    assert_eq!(receiver.received().len(), 3, "max_attempts = 3 in all");
    let dead = serve.get("/v1/dead-letters").await;
    assert_eq!(dead[0]["reason"], "max_attempts");
    assert_eq!(dead[0]["lastStatusCode"], 500);
    assert_eq!(dead[0]["attemptCount"], 3);
    // `since` bounds when a dead letter died on /v1/dead-letters, and when a delivery was
    // created on /v1/deliveries: from the moment it died, only the first still lists it.
    let detail = serve.get(&format!("/v1/deliveries/{}", dead[0]["id"].as_str().unwrap())).await;
    let created = dead[0]["createdAt"].as_str().unwrap().to_string();
    // It died once its last attempt was answered.
    let died = detail["attempts"][2]["startedAt"].as_str().unwrap().to_string();
    assert!(died > created, "retries take time: {detail}");
    assert_eq!(listed(&serve, &format!("/v1/dead-letters?since={died}")).await, 1);
    assert_eq!(listed(&serve, &format!("/v1/deliveries?since={died}")).await, 0);
    assert_eq!(listed(&serve, &format!("/v1/deliveries?since={created}")).await, 1);
    assert_eq!(listed(&serve, &format!("/v1/dead-letters?before={died}")).await, 0);
    // An operator reading serve's log at the default level sees each retry and the dead
    // letter, by result class, without the destination.
    let log = serve.log_tail(400);
    assert_eq!(log.matches("delivery failed; will retry").count(), 2, "{log}");
    assert!(log.contains("delivery dead-lettered") && log.contains("max_attempts") && log.contains("5xx"), "{log}");
    assert!(!log.contains("/hook"), "no URL in the log: {log}");

    receiver.set_default(Reply::Status(200));
    let replay = env.json(&["dlq", "replay", "--all"]);
    assert_eq!(replay["count"], 1);
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 1).await;
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].header("webhook-id"), got[0].header("webhook-id"), "replay keeps the CloudEvent id");
    assert_eq!(got[3].body, got[0].body);
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_respected() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    receiver.script([Reply::WithHeader(503, "retry-after", "1".into())]);
    let env = Env::fast();
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), None);
    // Retry-After is capped at max_backoff: raise the cap so the 1 s wish stands.
    let mut env = env;
    env.set("CERTHOOK_DELIVERY__MAX_BACKOFF", "5s");
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "3")).await;
    let got = receiver.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}, before the 1 s Retry-After");
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_channel_and_dead_letters_what_follows() {
    let receiver = Receiver::start(Reply::Status(410)).await;
    let env = Env::fast();
    let (app, channel) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "1")).await;
    serve.wait_status(WAIT, |s| s["channels"]["disabled"] == 1 && s["deliveries"]["dead"] == 1).await;
    let dead = serve.get("/v1/dead-letters").await;
    assert_eq!(dead[0]["reason"], "endpoint_gone");
    assert_eq!(env.json(&["channel", "show", &channel])["state"], "disabled");
    serve.enqueue(&event(&app, "2")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["dead"] == 2).await;
    let reasons: Vec<_> =
        serve.get("/v1/dead-letters").await.as_array().unwrap().iter().map(|d| d["reason"].clone()).collect();
    assert!(reasons.contains(&"channel_disabled".into()), "{reasons:?}");
    assert_eq!(receiver.received().len(), 1, "nothing more is sent to a gone endpoint");
    serve.terminate().await;
}

/// Issue 13: a 410 dead-letters the delivery that got it and the channel's waiting ones;
/// `certhook_deliveries_total{outcome="dead_lettered"}` counts them all (it counted 1 of 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_counts_every_delivery_it_dead_letters() {
    let receiver = Receiver::start(Reply::Delay(Duration::from_millis(800), 410)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_DELIVERY__CHANNEL_CONCURRENCY", "1");
    let (app, _channel) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    // One in flight, one claimed behind it, the rest waiting in the table.
    for n in 0..6 {
        serve.enqueue(&event(&app, &n.to_string())).await;
    }
    serve.wait_status(WAIT, |s| s["deliveries"]["dead"] == 6).await;
    assert_eq!(receiver.received().len(), 1, "one request, one 410");
    let series = "certhook_deliveries_total{channel_kind=\"webhook\",outcome=\"dead_lettered\"}";
    assert_eq!(serve.wait_metric(series, WAIT, |n| n >= 6.0).await, 6.0);
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_big_answers_are_cut() {
    let receiver = Receiver::start(Reply::Body(200, 200 * 1024)).await;
    receiver.script([Reply::WithHeader(302, "location", "/elsewhere".into())]);
    let env = Env::fast();
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "1")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 1).await;
    let got = receiver.received();
    assert!(got.iter().all(|r| r.path == "/hook"), "the redirect target was never requested");
    let list = serve.get("/v1/deliveries").await;
    let detail = serve.get(&format!("/v1/deliveries/{}", list[0]["id"].as_str().unwrap())).await;
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["statusCode"], 302, "a 3xx is a failed attempt");
    assert_eq!(attempts[1]["statusCode"], 200);
    assert_eq!(attempts[1]["responseSnippet"].as_str().unwrap().len(), 1024, "stored truncated to 1 KiB");
    serve.terminate().await;
}

/// An alert with webhook channels to `first` and `second`, `concurrency` slots in all and
/// two per channel, requests that may hang far longer than a test, and no breaker (it
/// would shield the other channel and hide what the caps do); returns the env and app id.
fn two_channels_that_may_hang(concurrency: usize, first: &str, second: &str) -> (Env, String) {
    let mut env = Env::fast();
    env.set("CERTHOOK_DELIVERY__CONCURRENCY", &concurrency.to_string());
    env.set("CERTHOOK_DELIVERY__CHANNEL_CONCURRENCY", "2");
    env.set("CERTHOOK_DELIVERY__REQUEST_TIMEOUT", "60s");
    env.set("CERTHOOK_DELIVERY__LEASE_DURATION", "90s");
    env.set("CERTHOOK_DELIVERY__CIRCUIT_BREAKER_THRESHOLD", "1000");
    let (app, _) = env.webhook("issuance", first, None);
    let alert = env.json(&["alert", "list", "--app", &app])[0]["id"].as_str().unwrap().to_string();
    env.channel(&alert, second, None);
    (env, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_channel_does_not_hold_up_a_healthy_one() {
    let healthy = Receiver::start(Reply::Status(204)).await;
    let black_hole = Receiver::start(Reply::Hang).await;
    // Four slots in all, two per channel: without the per-channel cap the black hole would
    // hold every slot.
    let (env, app) = two_channels_that_may_hang(4, &healthy.url("/ok"), &black_hole.url("/void"));
    let serve = Serve::start(&env).await;
    for i in 0..30 {
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    let got = healthy.wait_for(30, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 30);
    assert_eq!(black_hole.received().len(), 2, "the black hole holds exactly its two slots, no more");
    serve.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_channel_that_starts_hanging_does_not_starve_the_others() {
    let turns_silent = Receiver::start(Reply::Status(204)).await;
    let steady = Receiver::start(Reply::Status(204)).await;
    // The worker holds at most 16 leases; a fast channel may keep claimed what it sent in
    // the last second, but never more than 8 of them, however fast it was.
    let (env, app) = two_channels_that_may_hang(8, &turns_silent.url("/a"), &steady.url("/b"));
    let serve = Serve::start(&env).await;
    for i in 0..60 {
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    turns_silent.wait_for(60, WAIT).await;
    steady.wait_for(60, WAIT).await;
    // Both channels have a rate now; one stops answering while more work arrives.
    turns_silent.set_default(Reply::Hang);
    for i in 60..160 {
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    let got = steady.wait_for(160, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 160, "the steady channel got everything while the other hung");
    serve.kill9().await;
}

/// Every channel a worker sends to is full and hangs: another alert's channel still gets
/// its new deliveries within a few poll intervals, not when a hanging request ends (a
/// minute here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_for_another_channel_goes_out_while_every_busy_one_hangs() {
    let black_hole = Receiver::start(Reply::Hang).await;
    let healthy = Receiver::start(Reply::Status(204)).await;
    let (env, app) = two_channels_that_may_hang(8, &black_hole.url("/void"), &black_hole.url("/void2"));
    let revoked = env.json(&["alert", "create", "--app", &app, "--type", "revocation", "--name", "revoked"]);
    env.channel(revoked["id"].as_str().unwrap(), &healthy.url("/ok"), None);
    let serve = Serve::start(&env).await;
    for i in 0..20 {
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    // Both issuance channels hold their two slots, hanging, and have more claimed.
    black_hole.wait_for(4, WAIT).await;
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(130)).await;
        let mut e = event(&app, &format!("r{i}"));
        e["type"] = "revocation".into();
        serve.enqueue(&e).await;
    }
    let got = healthy.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 5, "the revocations went out while the other requests hung");
    serve.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_destinations_are_blocked_unless_allowed() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_ALLOWED_NETWORKS", "[]");
    // A name, not an IP literal: the check happens at resolution, and the connection goes
    // only to the addresses that passed it.
    let by_name = format!("http://localhost:{}/hook", receiver.addr.port());
    let (app, _) = env.webhook("issuance", &by_name, None);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "1")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["dead"] == 1).await;
    let dead = serve.get("/v1/dead-letters").await;
    assert_eq!(dead[0]["reason"], "destination_blocked");
    assert_eq!(dead[0]["attemptCount"], 1);
    let error = dead[0]["lastError"].as_str().unwrap();
    assert!(error.contains("localhost") && !error.contains("127.0.0.1"), "the name, not its address: {error}");
    assert!(receiver.received().is_empty(), "nothing reached the loopback receiver");
    serve.terminate().await;

    env.set("CERTHOOK_ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]");
    let serve = Serve::start(&env).await;
    assert_eq!(env.json(&["dlq", "replay", "--all"])["count"], 1);
    receiver.wait_for(1, WAIT).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 1).await;
    serve.terminate().await;
}

/// Issue 14: with `secret_key`, channel secrets are sealed in the database, deliveries are
/// still signed with them, and a `serve` without the key refuses to start, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_secrets_still_sign_and_serve_refuses_a_missing_key() {
    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
    let receiver = Receiver::start(Reply::Status(204)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_SECRET_KEY", KEY_A);
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), Some(SECRET));
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "77")).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_signed(&got[0]);
    serve.terminate().await;
    let file = std::fs::read(env.path("certhook.db")).unwrap();
    let wal = std::fs::read(env.path("certhook.db-wal")).unwrap_or_default();
    let holds = |bytes: &[u8]| bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
    assert!(!holds(&file) && !holds(&wal), "the secret is in the database file in plain text");

    // Without the key (or with another one), serve will not start.
    for key in [None, Some(KEY_B)] {
        match key {
            Some(k) => env.set("CERTHOOK_SECRET_KEY", k),
            None => env.unset("CERTHOOK_SECRET_KEY"),
        }
        let out = env.run_within(&["serve"], Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("secret_key") && !stderr.contains(KEY_A), "{stderr}");
    }
    // Rotation: B seals, A still opens; after rewrap, B alone is enough.
    env.set("CERTHOOK_SECRET_KEY", KEY_B);
    env.set("CERTHOOK_PREVIOUS_SECRET_KEYS", &format!("[\"{KEY_A}\"]"));
    assert_eq!(env.json(&["secrets", "rewrap"])["count"], 1);
    env.unset("CERTHOOK_PREVIOUS_SECRET_KEYS");
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "78")).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_signed(&got[1]);

    // A channel sealed by a CLI holding another key: serve cannot open its secret, so it
    // sends that channel nothing (unsigned is not an option) and keeps serving the rest.
    let other = Receiver::start(Reply::Status(204)).await;
    env.set("CERTHOOK_SECRET_KEY", KEY_A);
    let alert = env.json(&["alert", "list"])[0]["id"].as_str().unwrap().to_string();
    let parked = env.channel(&alert, &other.url("/hook"), Some(SECRET));
    serve.enqueue(&event(&app, "79")).await;
    receiver.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(other.received().len(), 0, "sent to a channel whose secret it could not read");
    // Parked and tried again after a backoff (here 200 ms at most): between tries it is
    // retrying or, briefly, leased; never attempted.
    let waiting = serve.get(&format!("/v1/deliveries?channel={parked}")).await;
    assert!(waiting[0]["state"] == "retrying" || waiting[0]["state"] == "leased", "{waiting}");
    assert_eq!(waiting[0]["attemptCount"], 0, "parked, no attempt counted");
    assert_eq!(other.received().len(), 0);
    serve.terminate().await;
}

/// How many items a list route answers.
async fn listed(serve: &Serve, path: &str) -> usize {
    serve.get(path).await.as_array().unwrap().len()
}
