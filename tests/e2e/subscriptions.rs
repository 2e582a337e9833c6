//! Issue 16 end to end: one channel for several event types, certificate filters, alert
//! updates and deletes, and the inventory and events lists paged through the CLI and the
//! API, on SQLite and on PostgreSQL.

use std::time::Duration;

use certhook_store::Store;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, failure};

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "one-secret-for-every-type-0123456789";

fn event(app: &str, event_type: &str, serial: &str, cn: &str, profile: &str) -> serde_json::Value {
    serde_json::json!({
        "type": event_type, "applicationId": app,
        "certificate": { "serialNumber": serial, "commonName": cn, "profileName": profile,
                         "notBefore": "2024-01-01T00:00:00Z", "notAfter": "2099-01-01T00:00:00Z" }
    })
}

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

on_both_backends!(
    three_types_one_channel,
    Env::fast(),
    one_channel_on_a_three_type_alert_gets_each_type_signed_after_one_verification_on_sqlite,
    one_channel_on_a_three_type_alert_gets_each_type_signed_after_one_verification_on_postgres
);

async fn three_types_one_channel(env: Env) {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let app = id(&env.json(&["app", "create", "--name", "pki"]));
    let alert = env.json(&[
        "alert",
        "create",
        "--app",
        &app,
        "--type",
        "issuance,renewal",
        "--type",
        "revocation",
        "--name",
        "lifecycle",
    ]);
    assert_eq!(alert["types"], serde_json::json!(["issuance", "renewal", "revocation"]));
    assert_eq!(alert["type"], "issuance", "the first type, for older clients");
    let serve = Serve::start(&env).await;
    let channel =
        env.json(&["channel", "create", "--alert", &id(&alert), "--url", &receiver.url("/hook"), "--secret", SECRET]);
    let verification = receiver.wait_for(1, WAIT).await;
    let token = verification[0].json()["data"]["verificationToken"].as_str().unwrap().to_string();
    assert_eq!(env.json(&["channel", "activate", &id(&channel), "--token", &token])["state"], "active");
    for (t, serial) in [("issuance", "1"), ("renewal", "2"), ("revocation", "3")] {
        serve.enqueue(&event(&app, t, serial, "api.example.com", "web")).await;
    }
    let got = receiver.wait_for(4, WAIT).await;
    let mut types: Vec<String> = got[1..].iter().map(|r| r.json()["type"].as_str().unwrap().to_string()).collect();
    types.sort();
    assert_eq!(
        types,
        ["issuance", "renewal", "revocation"].map(|t| format!("com.infisical.pki.certificate.{t}")),
        "one channel, every subscribed type"
    );
    let now = chrono::Utc::now().timestamp_millis();
    for r in &got[1..] {
        certhook_verify::verify_infisical(
            &r.header("x-infisical-signature"),
            &r.body,
            &[SECRET],
            now,
            Duration::from_secs(300),
        )
        .expect("signed with the channel's one secret");
    }
    let verifications =
        got.iter().filter(|r| r.json()["type"].as_str().unwrap().ends_with("webhook.verification")).count();
    assert_eq!(verifications, 1, "one verification for all three types");
    serve.terminate().await;
}

on_both_backends!(
    filters_and_updates,
    Env::fast(),
    filters_decide_what_reaches_the_channel_and_updates_change_them_on_sqlite,
    filters_decide_what_reaches_the_channel_and_updates_change_them_on_postgres
);

async fn filters_and_updates(env: Env) {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let app = id(&env.json(&["app", "create", "--name", "pki"]));
    let alert = env.json(&[
        "alert",
        "create",
        "--app",
        &app,
        "--type",
        "issuance",
        "--name",
        "prod-web",
        "--profile",
        "web",
        "--name-pattern",
        "*.PROD.example.com",
    ]);
    assert_eq!(alert["profiles"], serde_json::json!(["web"]));
    assert_eq!(alert["namePatterns"], serde_json::json!(["*.prod.example.com"]));
    env.channel(&id(&alert), &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "issuance", "1", "a.prod.example.com", "web")).await;
    serve.enqueue(&event(&app, "issuance", "2", "a.prod.example.com", "client")).await;
    serve.enqueue(&event(&app, "issuance", "3", "a.staging.example.com", "web")).await;
    serve.enqueue(&event(&app, "issuance", "4", "x.b.prod.example.com", "web")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 1).await;

    // Widen it: any profile, staging too. The channel, its secret and state stay.
    let updated = env.json(&[
        "alert",
        "update",
        &id(&alert),
        "--no-profiles",
        "--name-pattern",
        "*.prod.example.com",
        "--name-pattern",
        "*.staging.example.com",
        "--description",
        "prod and staging",
    ]);
    assert_eq!(updated["profiles"], serde_json::json!([]));
    assert_eq!(env.json(&["alert", "show", &id(&alert)]), updated);
    serve.enqueue(&event(&app, "issuance", "5", "b.staging.example.com", "client")).await;
    serve.wait_status(WAIT, |s| s["deliveries"]["delivered"] == 2).await;
    let serials: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["data"]["certificates"][0]["serialNumber"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serials, ["1", "5"]);

    let (code, err) = failure(&env.run(&["alert", "update", &id(&alert), "--name-pattern", "*.*.example.com"]));
    assert_eq!(code, 2);
    assert!(err.contains("--name-pattern:") && err.contains("leftmost"), "{err}");
    let (code, err) = failure(&env.run(&["alert", "update", &id(&alert), "--type", "expiration"]));
    assert_eq!(code, 2, "expiration needs a window: {err}");
    assert_eq!(env.json(&["alert", "show", &id(&alert)]), updated, "a refused update changes nothing");

    // Through the API: PATCH replaces what it names; `type` still works for older clients.
    let http = serve.http();
    let patch =
        |body: serde_json::Value| http.patch(serve.url(&format!("/v1/alerts/{}", id(&alert)))).json(&body).send();
    let resp = patch(serde_json::json!({"types": ["issuance", "revocation"], "description": null})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (body["types"].clone(), body["description"].clone()),
        (serde_json::json!(["issuance", "revocation"]), serde_json::Value::Null)
    );
    let resp = patch(serde_json::json!({"namePatterns": ["a..b"]})).await.unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["error"]["field"], "namePatterns");
    let resp = patch(serde_json::json!({"colour": "red"})).await.unwrap();
    assert_eq!(resp.status(), 400, "unknown members are refused");

    // Deleting the application needs --cascade while it has alerts.
    let (code, err) = failure(&env.run(&["app", "delete", &app]));
    assert_eq!(code, 2);
    assert!(err.contains("--cascade"), "{err}");
    let resp = http.delete(serve.url(&format!("/v1/applications/{app}"))).send().await.unwrap();
    assert_eq!(resp.status(), 409);
    let deleted = env.json(&["app", "delete", &app, "--cascade"]);
    assert_eq!(deleted["deleted"], true);
    let (code, _) = failure(&env.run(&["app", "show", &app]));
    assert_eq!(code, 2);
    let (code, _) = failure(&env.run(&["alert", "show", &id(&alert)]));
    assert_eq!(code, 2, "its alerts went with it");
    serve.terminate().await;
}

/// Runs a statement on the database `env` uses, as a PKI writing the outbox by hand would.
async fn raw_sql(env: &Env, sql: &str) {
    let store = Store::connect(&env.database_url).await.unwrap();
    match &store {
        Store::Sqlite(b) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(b.pool()).await.map(|_| ()),
        Store::Postgres(b) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(b.pool()).await.map(|_| ()),
    }
    .unwrap();
    store.close().await;
}

/// Certificates and events, listed and paged through the CLI and the API.
async fn inventory_and_events_page_through_cli_and_api(env: Env) {
    let app = id(&env.json(&["app", "create", "--name", "pki"]));
    env.json(&["alert", "create", "--app", &app, "--type", "issuance", "--name", "issued"]);
    for i in 0..5 {
        let mut e = event(&app, "issuance", &format!("s{i}"), &format!("h{i}.example.com"), "web");
        e["certificate"]["id"] = serde_json::json!(format!("c{i}"));
        e["certificate"]["notAfter"] = serde_json::json!(format!("209{i}-01-01T00:00:00Z"));
        env.enqueue_file(&[e]);
    }
    raw_sql(
        &env,
        &format!(
            "INSERT INTO certhook_events (application_id, type, idempotency_key, certificate) \
             VALUES ('{app}', 'issuance', 'hand-written', '{{\"serialNumber\": \"x\"}}')"
        ),
    )
    .await;
    let serve = Serve::start(&env).await;
    serve.wait_status(WAIT, |s| s["events"]["total"] == 6).await;
    // Fan-out (and so the inventory) runs in serve; wait until the bad row is judged.
    let deadline = std::time::Instant::now() + WAIT;
    while env.json(&["events", "list", "--refused"]).as_array().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the hand-written row was never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // CLI: a full page says how to get the next one.
    let out = env.run(&["--json", "certificates", "list", "--app", &app, "--limit", "2"]);
    assert!(out.status.success());
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = first.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c0", "c1"], "soonest expiry first");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--after c1"));
    let rest = env.json(&["certificates", "list", "--app", &app, "--limit", "10", "--after", "c1"]);
    let ids: Vec<&str> = rest.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c2", "c3", "c4"]);
    let shown = env.json(&["certificates", "show", "--app", &app, "s3"]);
    assert_eq!((shown["id"].as_str(), shown["status"].as_str()), (Some("c3"), Some("active")), "found by serial");
    let (code, err) = failure(&env.run(&["certificates", "list", "--app", &app, "--status", "gone"]));
    assert!(code == 2 && err.contains("--status"), "{err}");
    let (code, err) = failure(&env.run(&["certificates", "list", "--app", &app, "--limit", "0"]));
    assert!(code == 2 && err.contains("--limit"), "{err}");

    let refused = env.json(&["events", "list", "--refused"]);
    assert_eq!(refused.as_array().unwrap().len(), 1);
    assert_eq!(refused[0]["state"], "refused");
    assert!(refused[0]["error"].as_str().unwrap().contains("commonName"), "{refused}");
    let events = env.json(&["events", "list", "--app", &app, "--limit", "3"]);
    assert_eq!(events[0]["idempotencyKey"], "hand-written", "newest first");
    let older = env.json(&["events", "list", "--app", &app, "--after", events[2]["id"].as_str().unwrap()]);
    assert_eq!(older.as_array().unwrap().len(), 3);
    let detail = env.json(&["events", "show", older[0]["id"].as_str().unwrap()]);
    assert_eq!(detail["state"], "fanned_out");
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 0, "the alert has no channel");

    // API: the same pages, with a Link to the next one.
    let http = serve.http();
    let resp = http
        .get(serve.url(&format!("/v1/applications/{app}/certificates?limit=2&status=active")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, format!("</v1/applications/{app}/certificates?limit=2&status=active&after=c1>; rel=\"next\""));
    let page: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(page, first, "the API and the CLI print the same objects");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let page: serde_json::Value = http.get(serve.url(next)).send().await.unwrap().json().await.unwrap();
    assert_eq!(page[0]["id"], "c2");
    let within =
        http.get(serve.url(&format!("/v1/applications/{app}/certificates?expiringWithin=1w"))).send().await.unwrap();
    assert_eq!(within.json::<serde_json::Value>().await.unwrap(), serde_json::json!([]), "none expires this week");
    let bad =
        http.get(serve.url(&format!("/v1/applications/{app}/certificates?expiringWithin=soon"))).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let resp = http.get(serve.url("/v1/events?refused=true")).send().await.unwrap();
    assert!(resp.headers().get("link").is_none(), "one row, not a full page");
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap(), refused);
    let one = http.get(serve.url(&format!("/v1/events/{}", older[0]["id"].as_str().unwrap()))).send().await.unwrap();
    assert_eq!(one.json::<serde_json::Value>().await.unwrap(), detail);
    let missing = http.get(serve.url("/v1/events/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    serve.terminate().await;
}

on_both_backends!(
    inventory_and_events_page_through_cli_and_api,
    Env::fast(),
    inventory_and_events_page_on_sqlite,
    inventory_and_events_page_on_postgres
);
