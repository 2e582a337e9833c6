//! Slack and PagerDuty channels, checked field by field against local receivers.

use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event};

const WAIT: Duration = Duration::from_secs(20);
const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";

fn alert(env: &Env, app: &str, alert_type: &str, name: &str) -> String {
    let mut args = vec!["alert", "create", "--app", app, "--type", alert_type, "--name", name];
    if alert_type == "expiration" {
        args.extend(["--before", "30d"]);
    }
    env.json(&args)["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_a_message_with_fallback_and_blocks_and_429_is_honoured() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    receiver.script([Reply::WithHeader(429, "retry-after", "1".into())]);
    let mut env = Env::fast();
    env.set("CERTHOOK_DELIVERY__MAX_BACKOFF", "5s");
    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    let alert = alert(&env, &app, "issuance", "prod-issued");
    let ch = env.json(&["channel", "create", "--alert", &alert, "--kind", "slack", "--url", &receiver.url("/slack")]);
    assert_eq!((ch["kind"].as_str(), ch["state"].as_str()), (Some("slack"), Some("active")), "slack is not verified");
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "77")).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert!(got[1].at - got[0].at >= Duration::from_millis(900), "Slack's Retry-After was honoured");
    let r = &got[1];
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.try_header("x-infisical-signature").is_none(), "Slack messages are not signed");
    let m = r.json();
    assert_eq!(m["text"], "Certificate issued: host-77.example.com (prod-issued)");
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "Certificate issued: prod-issued");
    let section = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(
        section.starts_with("*host-77.example.com*\nSerial: `77`\nNot after: 2030-01-01T00:00:00.000Z\nDays left: "),
        "{section}"
    );
    assert!(blocks.last().unwrap()["text"]["text"].as_str().unwrap().contains("|View certificates>"));
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_triggers_by_days_left_and_a_renewal_resolves() {
    let receiver = Receiver::start(Reply::Status(202)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_PAGERDUTY_URL", &receiver.url("/v2/enqueue"));
    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    let expiring = alert(&env, &app, "expiration", "tls-expiry");
    let ch =
        env.json(&["channel", "create", "--alert", &expiring, "--kind", "pagerduty", "--routing-key", ROUTING_KEY]);
    assert_eq!(ch["kind"], "pagerduty");
    let serve = Serve::start(&env).await;

    let not_after = (chrono::Utc::now() + chrono::Duration::days(5) + chrono::Duration::hours(1)).to_rfc3339();
    let mut expiration = event(&app, "500");
    expiration["type"] = "expiration".into();
    expiration["certificate"]["id"] = "cert-500".into();
    expiration["certificate"]["notAfter"] = not_after.clone().into();
    serve.enqueue(&expiration).await;
    let got = receiver.wait_for(1, WAIT).await;
    let trigger = got[0].json();
    assert_eq!(got[0].path, "/v2/enqueue");
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], format!("certhook:{expiring}:cert-500"));
    assert_eq!(trigger["payload"]["severity"], "critical", "5 days left");
    assert_eq!(trigger["payload"]["source"], "host-500.example.com");
    assert_eq!(trigger["payload"]["summary"], "Certificate host-500.example.com expires in 5 days (tls-expiry)");
    assert_eq!(trigger["payload"]["custom_details"]["type"], "com.infisical.pki.certificate.expiration");
    assert_eq!(trigger["payload"]["custom_details"]["data"]["alert"]["alertBefore"], "30d");

    let mut renewal = event(&app, "501");
    renewal["type"] = "renewal".into();
    renewal["certificate"]["id"] = "cert-500".into();
    serve.enqueue(&renewal).await;
    let got = receiver.wait_for(2, WAIT).await;
    let resolve = got[1].json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"], "the renewal closes the same incident");
    serve.terminate().await;
}

/// Issue 13: a PagerDuty delivery is one request per certificate. Six certificates to an
/// endpoint that takes 1.2 s each outlast the 5 s lease; the lease is kept alive while
/// the requests go out, so each certificate's trigger is sent once and the delivery ends
/// `delivered` after one attempt (it used to be taken over mid-send and sent again, for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pagerduty_delivery_longer_than_its_lease_is_sent_once() {
    const CERTS: usize = 6;
    let receiver = Receiver::start(Reply::Delay(Duration::from_millis(1200), 202)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_PAGERDUTY_URL", &receiver.url("/v2/enqueue"));
    env.set("CERTHOOK_SCAN_INTERVAL", "1h");
    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    let certs = env.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for n in 0..CERTS {
        let pem = crate::scan::pem(&format!("host-{n}.example.com"), 2000 + n as u64, 10);
        std::fs::write(certs.join(format!("{n}.pem")), pem).unwrap();
    }
    assert_eq!(env.json(&["import", "--app", &app, "--dir", certs.to_str().unwrap()])["imported"], CERTS);
    let expiring = alert(&env, &app, "expiration", "tls-expiry");
    env.json(&["channel", "create", "--alert", &expiring, "--kind", "pagerduty", "--routing-key", ROUTING_KEY]);

    // serve's scan at start reports all six in one event: one delivery of six requests.
    let serve = Serve::start(&env).await;
    serve.wait_status(Duration::from_secs(30), |s| s["deliveries"]["delivered"] == 1).await;
    // Long enough for an expired lease to be swept and sent again, had it expired.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.received();
    let mut keys: Vec<String> = got.iter().map(|r| r.json()["dedup_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), CERTS, "one trigger per certificate, none repeated: {keys:?}");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), CERTS, "six distinct incidents");
    let deliveries = serve.get("/v1/deliveries").await;
    let d = &deliveries[0];
    assert_eq!((d["state"].as_str(), d["attemptCount"].as_u64()), (Some("delivered"), Some(1)), "{deliveries}");
    assert_eq!(serve.get("/v1/status").await["deliveries"]["leased"], 0);
    serve.terminate().await;
}
