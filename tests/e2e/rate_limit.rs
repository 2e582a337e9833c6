//! Per-channel rate limits end to end: `serve` spaces a limited channel's requests, on
//! SQLite and on PostgreSQL; bad limits are refused by the CLI and the API.

use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event, failure};

/// 20 events to a channel limited to 2/s: all delivered, no two requests closer than the
/// limit allows (500 ms, less a scheduling tolerance).
async fn twenty_events_at_two_per_second(env: Env) {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let (app, channel) = env.webhook("issuance", &receiver.url("/hook"), None);
    // A second channel of the same alert, unlimited: it is not held up by the first.
    let alert = env.json(&["channel", "show", &channel])["alertId"].as_str().unwrap().to_string();
    let fast = Receiver::start(Reply::Status(204)).await;
    env.channel(&alert, &fast.url("/fast"), None);
    let limited = env.json(&["channel", "update", &channel, "--rate-limit", "2/s"]);
    assert_eq!(limited["rateLimit"], "2/s");
    let serve = Serve::start(&env).await;
    const N: usize = 20;
    for i in 0..N {
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    let unlimited = fast.wait_for(N, Duration::from_secs(20)).await;
    let got = receiver.wait_for(N, Duration::from_secs(40)).await;
    serve.wait_status(Duration::from_secs(20), |s| s["deliveries"]["delivered"] == 2 * N).await;
    assert_eq!(got.len(), N, "each event once");
    let mut serials: Vec<String> =
        got.iter().map(|r| r.json()["data"]["certificates"][0]["serialNumber"].as_str().unwrap().to_string()).collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), N, "every event arrived");
    // Measured where the requests arrive, so each gap carries the scheduling jitter of two
    // sends on a loaded machine: any k consecutive gaps span at least k × 500 ms, less a
    // tolerance that does not grow with k.
    let at: Vec<std::time::Instant> = got.iter().map(|r| r.at).collect();
    let tolerance = Duration::from_millis(150);
    for i in 0..N {
        for j in i + 1..N {
            let span = at[j].duration_since(at[i]);
            let allowed = Duration::from_millis(500) * (j - i) as u32;
            assert!(span + tolerance >= allowed, "requests {i} and {j} {span:?} apart at 2/s (at least {allowed:?})");
        }
    }
    let limited_span = at[N - 1].duration_since(at[0]);
    let span = unlimited.last().unwrap().at.duration_since(unlimited[0].at);
    assert!(span < limited_span / 2, "the unlimited channel was held up: {span:?} against {limited_span:?}");

    // Lifted while serve runs: the worker picks the change up on its next channel refresh
    // (poll_interval), and the next events are no longer spaced. At 2/s, 6 would span ≥ 2.5 s.
    env.json(&["channel", "update", &channel, "--rate-limit", "none"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in N..N + 6 {
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    let after = receiver.wait_for(N + 6, Duration::from_secs(20)).await;
    let lifted = after[N + 5].at.duration_since(after[N].at);
    assert!(lifted < Duration::from_millis(1500), "the lifted limit still spaced requests: {lifted:?}");
    serve.terminate().await;
}

on_both_backends!(
    twenty_events_at_two_per_second,
    Env::fast(),
    a_channel_at_two_per_second_gets_every_event_spaced_on_sqlite,
    a_channel_at_two_per_second_gets_every_event_spaced_on_postgres
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rate_limits_are_refused_naming_the_flag_or_field_and_nothing_is_stored() {
    let env = Env::fast();
    let (_, channel) = env.webhook("issuance", "https://receiver.test/hook", None);
    let alert = env.json(&["channel", "show", &channel])["alertId"].as_str().unwrap().to_string();
    for bad in ["0/s", "abc", "5/h"] {
        let args =
            ["channel", "create", "--alert", &alert, "--url", "https://x.test/h", "--no-verify", "--rate-limit", bad];
        let (code, stderr) = failure(&env.run(&args));
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(stderr.contains("--rate-limit:") && stderr.contains(bad), "{bad}: {stderr}");
        let (code, stderr) = failure(&env.run(&["channel", "update", &channel, "--rate-limit", bad]));
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(stderr.contains("--rate-limit:"), "{stderr}");
    }
    assert_eq!(env.json(&["channel", "list"]).as_array().unwrap().len(), 1, "no channel stored");
    assert!(env.json(&["channel", "show", &channel])["rateLimit"].is_null(), "the limit did not change");

    let serve = Serve::start(&env).await;
    let http = serve.http();
    for bad in ["0/s", "abc", "5/h"] {
        let resp = http
            .post(serve.url(&format!("/v1/alerts/{alert}/channels")))
            .json(&serde_json::json!({"url": "https://x.test/h", "noVerify": true, "rateLimit": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{bad}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["field"], "rateLimit", "{body}");
        let resp = http
            .patch(serve.url(&format!("/v1/channels/{channel}")))
            .json(&serde_json::json!({"rateLimit": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{bad}");
    }
    assert_eq!(serve.get(&format!("/v1/alerts/{alert}/channels")).await.as_array().unwrap().len(), 1);
    let patched = http
        .patch(serve.url(&format!("/v1/channels/{channel}")))
        .json(&serde_json::json!({"rateLimit": "30/m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.json::<serde_json::Value>().await.unwrap()["rateLimit"], "30/m");
    let cleared: serde_json::Value = http
        .patch(serve.url(&format!("/v1/channels/{channel}")))
        .json(&serde_json::json!({"rateLimit": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(cleared["rateLimit"].is_null(), "{cleared}");
    let slack: serde_json::Value = http
        .post(serve.url(&format!("/v1/alerts/{alert}/channels")))
        .json(&serde_json::json!({"url": "https://hooks.slack.com/services/T/B/X"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(slack["rateLimit"], "1/s", "Slack's default: {slack}");
    serve.terminate().await;
}
