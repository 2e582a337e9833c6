//! The channel lifecycle end to end: verification handshake, activation, pause/resume,
//! URL change, secret rotation and test sends, against a real receiver.

use std::time::Duration;

use hmac::{KeyInit, Mac};

use crate::receiver::{Received, Receiver, Reply};
use crate::support::{Env, Serve, event, failure};

const WAIT: Duration = Duration::from_secs(20);
const NEW_SECRET: &str = "rotated-secret-abcdefghijklmnopqrstuvwxyz";
const OLD_SECRET: &str = "original-secret-0123456789abcdefghijkl";

fn verification_token(r: &Received) -> String {
    let ce = r.json();
    assert_eq!(ce["type"], "com.infisical.pki.certificate.webhook.verification");
    ce["data"]["verificationToken"].as_str().unwrap().to_string()
}

fn v1_entries(r: &Received) -> (String, Vec<String>) {
    let header = r.header("x-infisical-signature");
    let mut parts = header.split(',');
    let t = parts.next().unwrap().strip_prefix("t=").unwrap().to_string();
    (t, parts.map(|p| p.strip_prefix("v1=").unwrap().to_string()).collect())
}

fn hex_hmac(secret: &str, t: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn alert_id(env: &Env, app: &str) -> String {
    let app = env.json(&["app", "create", "--name", app])["id"].as_str().unwrap().to_string();
    env.json(&["alert", "create", "--app", &app, "--type", "issuance", "--name", "issued"])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn app_of(env: &Env, alert: &str) -> String {
    env.json(&["alert", "list"]).as_array().unwrap().iter().find(|a| a["id"] == alert).unwrap()["applicationId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_activation_pause_resume_and_url_change() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let env = Env::fast();
    let alert = alert_id(&env, "pki");
    let app = app_of(&env, &alert);
    let serve = Serve::start(&env).await;
    let channel =
        env.json(&["channel", "create", "--alert", &alert, "--url", &receiver.url("/v1-hook"), "--secret", OLD_SECRET]);
    let id = channel["id"].as_str().unwrap().to_string();
    assert_eq!(channel["state"], "pending_verification");

    let got = receiver.wait_for(1, WAIT).await;
    let token = verification_token(&got[0]);
    assert_eq!(got[0].json()["data"]["channelId"], id.as_str());
    assert!(got[0].try_header("x-infisical-signature").is_some(), "the verification event is signed too");

    serve.enqueue(&event(&app, "1")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["held"] == 1).await;

    let (code, err) = failure(&env.run(&["channel", "activate", &id, "--token", "not-the-token"]));
    assert_eq!(code, 2);
    assert!(err.contains("wrong verification token"), "{err}");
    let (code, err) = failure(&env.run(&["channel", "pause", &id]));
    assert_eq!(code, 2, "a pending channel cannot be paused: {err}");

    assert_eq!(env.json(&["channel", "activate", &id, "--token", &token])["state"], "active");
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].json()["type"], "com.infisical.pki.certificate.issuance", "the held event went out");
    let (code, err) = failure(&env.run(&["channel", "activate", &id, "--token", &token]));
    assert_eq!(code, 2, "activating twice is refused: {err}");

    assert_eq!(env.json(&["channel", "pause", &id])["state"], "paused");
    serve.enqueue(&event(&app, "2")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["held"] == 1).await;
    assert_eq!(receiver.received().len(), 2, "nothing is sent to a paused channel");
    assert_eq!(env.json(&["channel", "resume", &id])["state"], "active");
    receiver.wait_for(3, WAIT).await;

    let moved = env.json(&["channel", "update-url", &id, "--url", &receiver.url("/moved")]);
    assert_eq!(moved["state"], "pending_verification");
    assert!(moved["url"].as_str().unwrap().ends_with("/moved"));
    let got = receiver.wait_for(4, WAIT).await;
    assert_eq!(got[3].path, "/moved");
    let token = verification_token(&got[3]);
    assert_eq!(env.json(&["channel", "activate", &id, "--token", &token])["state"], "active");
    serve.enqueue(&event(&app, "3")).await;
    let got = receiver.wait_for(5, WAIT).await;
    assert_eq!(got[4].path, "/moved");
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_both_secrets_during_grace_and_one_after() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let env = Env::fast();
    let (app, id) = env.webhook("issuance", &receiver.url("/hook"), Some(OLD_SECRET));
    let serve = Serve::start(&env).await;
    env.json(&["channel", "rotate-secret", &id, "--secret", NEW_SECRET, "--grace", "4s"]);
    // The worker re-reads channels every poll_interval (50 ms here): twenty of them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    serve.enqueue(&event(&app, "1")).await;
    let got = receiver.wait_for(1, WAIT).await;
    let (t, sigs) = v1_entries(&got[0]);
    assert_eq!(
        sigs,
        vec![hex_hmac(NEW_SECRET, &t, &got[0].body), hex_hmac(OLD_SECRET, &t, &got[0].body)],
        "newest first"
    );
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);

    tokio::time::sleep(Duration::from_secs(4) + Duration::from_secs(1)).await; // past the grace, and a refresh
    serve.enqueue(&event(&app, "2")).await;
    let got = receiver.wait_for(2, WAIT).await;
    let (t, sigs) = v1_entries(&got[1]);
    assert_eq!(sigs, vec![hex_hmac(NEW_SECRET, &t, &got[1].body)], "after the grace only the new secret signs");

    let (code, err) = failure(&env.run(&["channel", "rotate-secret", &id, "--secret", "short"]));
    assert_eq!(code, 2);
    assert!(err.contains("secret") && !err.contains("short\""), "{err}");
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sends_at_once_and_reports_status_and_latency() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let env = Env::fast();
    let (_, id) = env.webhook("issuance", &receiver.url("/hook"), Some(OLD_SECRET));
    let report = env.json(&["channel", "test", &id]);
    assert_eq!(report["statusCode"], 204);
    assert_eq!(report["ok"], true);
    assert!(report["latencyMs"].is_u64());
    let got = receiver.received();
    assert_eq!(got.len(), 1, "sent synchronously, without serve");
    assert_eq!(got[0].json()["type"], "com.infisical.pki.certificate.webhook.test");
    let (t, sigs) = v1_entries(&got[0]);
    assert_eq!(sigs, vec![hex_hmac(OLD_SECRET, &t, &got[0].body)]);
    assert_eq!(env.json(&["status"])["deliveries"]["pending"], 0, "nothing was queued");

    receiver.set_default(Reply::Status(500));
    let out = env.run(&["channel", "test", &id]);
    assert_eq!(out.status.code(), Some(1), "a failed test send exits 1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_validates_like_the_cli() {
    let mut env = Env::fast();
    env.set("CERTHOOK_ALLOW_INSECURE_HTTP", "false");
    let serve = Serve::start(&env).await;
    let http = serve.http();
    let post = |path: &str, body: serde_json::Value| http.post(serve.url(path)).json(&body).send();
    let resp = post("/v1/applications", serde_json::json!({"name": "pki"})).await.unwrap();
    assert_eq!(resp.status(), 201);
    let app: serde_json::Value = resp.json().await.unwrap();
    let app_id = app["id"].as_str().unwrap();
    let dup = post("/v1/applications", serde_json::json!({"name": "pki"})).await.unwrap();
    assert_eq!(dup.status(), 409, "application names are unique");
    let dup: serde_json::Value = dup.json().await.unwrap();
    assert!(dup["error"]["message"].as_str().unwrap().contains(app_id), "names the one that has it: {dup}");
    let alerts = format!("/v1/applications/{app_id}/alerts");
    for (body, field) in [
        (serde_json::json!({"type": "issued", "name": "x"}), "type"),
        (serde_json::json!({"types": ["issuance", "issued"], "name": "x"}), "types"),
        (serde_json::json!({"types": [], "name": "x"}), "types"),
        (serde_json::json!({"types": ["issuance"], "type": "issuance", "name": "x"}), "type"),
        (serde_json::json!({"types": ["issuance"], "name": "x", "namePatterns": ["*"]}), "namePatterns"),
        (serde_json::json!({"types": ["issuance"], "name": "x", "profiles": [""]}), "profiles"),
        (serde_json::json!({"type": "issuance", "name": "Not_A_Slug"}), "name"),
        (serde_json::json!({"type": "expiration", "name": "x"}), "alertBefore"),
        (serde_json::json!({"type": "expiration", "name": "x", "alertBefore": "30s"}), "alertBefore"),
    ] {
        let resp = post(&alerts, body).await.unwrap();
        assert_eq!(resp.status(), 422);
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let resp = post(&alerts, serde_json::json!({"type": "expiration", "name": "tls-expiry", "alertBefore": "30d"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let alert: serde_json::Value = resp.json().await.unwrap();
    let dup = post(&alerts, serde_json::json!({"type": "issuance", "name": "tls-expiry"})).await.unwrap();
    assert_eq!(dup.status(), 409, "names are unique per application");
    let channels = format!("/v1/alerts/{}/channels", alert["id"].as_str().unwrap());
    for (body, field) in [
        (serde_json::json!({"url": "http://example.com/hook"}), "url"),
        (serde_json::json!({"url": "https://example.com/hook", "secret": "short"}), "secret"),
        (serde_json::json!({"kind": "pagerduty", "routingKey": "xyz"}), "routingKey"),
    ] {
        let resp = post(&channels, body).await.unwrap();
        assert_eq!(resp.status(), 422);
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let resp = post(&channels, serde_json::json!({"url": "https://hooks.slack.com/services/T/B/X"})).await.unwrap();
    assert_eq!(resp.status(), 201);
    let slack: serde_json::Value = resp.json().await.unwrap();
    assert_eq!((slack["kind"].as_str(), slack["state"].as_str()), (Some("slack"), Some("active")));
    let pause =
        post(&format!("/v1/channels/{}/resume", slack["id"].as_str().unwrap()), serde_json::json!({})).await.unwrap();
    assert_eq!(pause.status(), 409, "resuming an active channel is a refused state change");
    let (code, err) = failure(&env.run(&[
        "channel",
        "create",
        "--alert",
        alert["id"].as_str().unwrap(),
        "--url",
        "http://example.com/x",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("url:"), "{err}");
    serve.terminate().await;
}
