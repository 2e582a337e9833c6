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
