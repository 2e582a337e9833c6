//! The HTTP API: authentication, error shapes, size limits, and metrics that count what
//! the test caused.

use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event, metric};

const TOKEN: &str = "test-admin-token-0123456789abcdef01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_needs_the_bearer_token_and_errors_are_json() {
    let mut env = Env::fast();
    env.set("CERTHOOK_ADMIN_TOKEN", TOKEN);
    env.set("CERTHOOK_MAX_EVENT_BYTES", "2048");
    let app = env.json(&["app", "create", "--name", "a"])["id"].as_str().unwrap().to_string();
    let serve = Serve::start(&env).await;
    let http = serve.http();

    let resp = http.get(serve.url("/v1/status")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let resp = http.get(serve.url("/v1/status")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(http.get(serve.url("/healthz")).send().await.unwrap().status(), 200, "health needs no token");
    assert_eq!(http.get(serve.url("/readyz")).send().await.unwrap().status(), 200);

    let post = |body: String| {
        http.post(serve.url("/v1/events"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let mut bad = event(&app, "1");
    bad["certificate"]["notBefore"] = "yesterday".into();
    let resp = post(bad.to_string()).await.unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["field"], "certificate.notBefore");
    assert_eq!(body["error"]["code"], "invalid_field");

    let mut big = event(&app, "1");
    big["certificate"]["commonName"] = "x".repeat(3000).into();
    let resp = post(big.to_string()).await.unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("exceeds max_event_bytes 2048"), "{body}");

    // Issue 14: 1,001 NDJSON lines on /v1/events used to slip past the batch limit.
    let ndjson: String = (0..1001).map(|i| format!("{}\n", event(&app, &format!("n{i}")))).collect();
    let resp = post(ndjson).await.unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("1001 events exceed the maximum of 1000"), "{body}");

    // The event routes read at most 1000 × max_event_bytes (here 2 MB), before any parsing.
    // The server closes a connection whose body it did not read, so this one goes on a
    // connection of its own: the shared client could otherwise reuse the closing one.
    let resp = crate::support::client()
        .post(serve.url("/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(" ".repeat(3 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413, "a body over the event routes' limit");

    let resp = post("{not json".into()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = post(event("01a20ee0-0000-7000-8000-000000000000", "1").to_string()).await.unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_application");

    let resp = http
        .get(serve.url("/v1/deliveries/01a20ee0-0000-7000-8000-000000000000"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = http
        .post(serve.url("/v1/events/batch"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!([event(&app, "1"), event(&app, "2")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["ids"].as_array().unwrap().len(), 2);
    let status: serde_json::Value =
        http.get(serve.url("/v1/status")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["events"]["total"], 2, "refused requests stored nothing");
    // A mistyped type filter is refused, not silently matched against nothing.
    let resp = http.get(serve.url("/v1/dead-letters?type=expirations")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["field"], "type", "{body}");
    serve.terminate().await;
}

/// Issue 14: with no token on loopback, a web page could create a channel through the
/// visitor's browser (a text/plain form post, or a name rebound to 127.0.0.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_cannot_drive_the_token_less_api() {
    let mut env = Env::fast();
    env.set("CERTHOOK_ALLOWED_HOSTS", r#"["certhook.pki.internal"]"#);
    let serve = Serve::start(&env).await;
    let http = serve.http();
    let create = |host: Option<&'static str>, origin: Option<&'static str>, content_type: &'static str| {
        let mut req = http.post(serve.url("/v1/applications")).header("content-type", content_type);
        if let Some(h) = host {
            req = req.header("host", h);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        // Application names are unique: each request names its own.
        req.body(format!(r#"{{"name":"from-a-page-{}"}}"#, uuid::Uuid::new_v4().simple())).send()
    };
    let code = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        (status, body["error"]["code"].as_str().unwrap_or("").to_string())
    };

    // DNS rebinding: the browser sends the page's own name.
    let (status, c) = code(create(Some("evil.example"), None, "application/json").await.unwrap()).await;
    assert_eq!((status, c.as_str()), (421, "host_not_allowed"));
    // A form or no-cors fetch: a simple content type, and the page's Origin.
    let (status, c) = code(create(None, None, "text/plain").await.unwrap()).await;
    assert_eq!((status, c.as_str()), (415, "unsupported_media_type"));
    let (status, c) = code(create(None, Some("https://evil.example"), "application/json").await.unwrap()).await;
    assert_eq!((status, c.as_str()), (403, "origin_not_allowed"));
    let resp = http.post(serve.url("/v1/dead-letters/purge")).header("origin", "null").send().await.unwrap();
    assert_eq!(resp.status(), 403, "a body-less cross-site post is refused too");
    let apps = env.json(&["app", "list"]);
    assert_eq!(apps.as_array().unwrap().len(), 0, "nothing refused was stored: {apps}");

    // What the operator listed, localhost, and probes by any address still answer.
    let resp = create(Some("certhook.pki.internal:8080"), None, "application/json; charset=utf-8").await.unwrap();
    assert_eq!(resp.status(), 201);
    let resp = create(Some("localhost:8080"), Some("http://localhost:8080"), "application/json").await.unwrap();
    assert_eq!(resp.status(), 201, "a page of this server's own origin");
    // Another port on the same machine is another site.
    let (status, c) =
        code(create(Some("localhost:8080"), Some("http://localhost:3000"), "application/json").await.unwrap()).await;
    assert_eq!((status, c.as_str()), (403, "origin_not_allowed"));
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let resp = http.get(serve.url(probe)).header("host", "10.9.8.7:8080").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{probe}");
    }
    // Each route has its own body limit: an application is not a 32 MiB batch.
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(100 * 1024));
    let resp =
        http.post(serve.url("/v1/applications")).header("content-type", "application/json").body(big).send().await;
    assert_eq!(resp.unwrap().status(), 413);
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_listen_without_a_token_is_refused() {
    let mut env = Env::fast();
    env.set("CERTHOOK_LISTEN", "0.0.0.0:0");
    let out = env.run_within(&["serve"], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_what_happened() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    receiver.script([Reply::Status(500)]);
    let mut env = Env::fast();
    // three failures in a row (one dead letter's every attempt) open the circuit
    env.set("CERTHOOK_DELIVERY__CIRCUIT_BREAKER_THRESHOLD", "3");
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    let before = serve.metrics().await;
    assert_eq!(metric(&before, "certhook_events_enqueued_total{type=\"issuance\"}"), 0.0);
    serve.enqueue(&event(&app, "1")).await;
    serve.enqueue(&event(&app, "2")).await;
    serve.wait_status(Duration::from_secs(20), |s| s["deliveries"]["delivered"] == 2).await;
    let text = serve.metrics().await;
    assert_eq!(metric(&text, "certhook_events_enqueued_total{type=\"issuance\"}"), 2.0);
    assert_eq!(metric(&text, "certhook_delivery_attempts_total{result=\"2xx\"}"), 2.0);
    assert_eq!(metric(&text, "certhook_delivery_attempts_total{result=\"5xx\"}"), 1.0);
    assert_eq!(metric(&text, "certhook_deliveries_total{channel_kind=\"webhook\",outcome=\"delivered\"}"), 2.0);
    assert_eq!(metric(&text, "certhook_deliveries_total{channel_kind=\"webhook\",outcome=\"retried\"}"), 1.0);
    assert_eq!(metric(&text, "certhook_end_to_end_latency_seconds_count"), 2.0);
    assert_eq!(metric(&text, "certhook_channels{state=\"active\"}"), 1.0);
    assert_eq!(metric(&text, "certhook_circuit_open"), 0.0, "one failure is below the threshold");

    // Every attempt of the third event fails: a dead letter, and an open circuit.
    receiver.set_default(Reply::Status(500));
    serve.enqueue(&event(&app, "3")).await;
    serve.wait_status(Duration::from_secs(20), |s| s["deliveries"]["dead"] == 1).await;
    // Queue gauges are read from the store at most every 5 s, not on every scrape.
    serve.wait_metric("certhook_queue_depth{state=\"dead\"}", Duration::from_secs(15), |v| v == 1.0).await;
    let text = serve.metrics().await;
    assert_eq!(metric(&text, "certhook_queue_depth{state=\"pending\"}"), 0.0);
    assert_eq!(metric(&text, "certhook_deliveries_total{channel_kind=\"webhook\",outcome=\"dead_lettered\"}"), 1.0);
    assert_eq!(metric(&text, "certhook_circuit_open"), 1.0, "three failures in a row open the circuit");

    // Replayed through the API, it is delivered: the replay is counted and the circuit closes.
    receiver.set_default(Reply::Status(204));
    let resp = serve
        .http()
        .post(serve.url("/v1/dead-letters/replay"))
        .json(&serde_json::json!({ "all": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    serve.wait_status(Duration::from_secs(20), |s| s["deliveries"]["delivered"] == 3).await;
    let text = serve.metrics().await;
    assert_eq!(metric(&text, "certhook_dead_letter_replays_total"), 1.0);
    serve.wait_metric("certhook_queue_depth{state=\"dead\"}", Duration::from_secs(15), |v| v == 0.0).await;
    assert_eq!(metric(&text, "certhook_circuit_open"), 0.0);
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_every_v1_route() {
    let mut env = Env::fast();
    env.set("CERTHOOK_ADMIN_TOKEN", TOKEN);
    let serve = Serve::start(&env).await;
    let resp = serve.http().get(serve.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the document needs no token");
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Every route the server has, and only those: the document and the router must agree.
    let expected: std::collections::BTreeSet<(String, String)> = [
        ("/v1/events", "post"),
        ("/v1/events/batch", "post"),
        ("/v1/events", "get"),
        ("/v1/events/{id}", "get"),
        ("/v1/applications/{id}/certificates", "get"),
        ("/v1/applications/{id}/certificates/{certificate}", "get"),
        ("/v1/deliveries", "get"),
        ("/v1/deliveries/{id}", "get"),
        ("/v1/dead-letters", "get"),
        ("/v1/dead-letters/replay", "post"),
        ("/v1/dead-letters/purge", "post"),
        ("/v1/status", "get"),
        ("/v1/applications", "get"),
        ("/v1/applications", "post"),
        ("/v1/applications/{id}", "get"),
        ("/v1/applications/{id}", "delete"),
        ("/v1/applications/{id}/alerts", "get"),
        ("/v1/applications/{id}/alerts", "post"),
        ("/v1/alerts/{id}", "get"),
        ("/v1/alerts/{id}", "patch"),
        ("/v1/alerts/{id}", "delete"),
        ("/v1/alerts/{id}/channels", "get"),
        ("/v1/alerts/{id}/channels", "post"),
        ("/v1/channels/{id}", "get"),
        ("/v1/channels/{id}", "patch"),
        ("/v1/channels/{id}", "delete"),
        ("/v1/channels/{id}/activate", "post"),
        ("/v1/channels/{id}/reverify", "post"),
        ("/v1/channels/{id}/test", "post"),
        ("/v1/channels/{id}/pause", "post"),
        ("/v1/channels/{id}/resume", "post"),
        ("/v1/channels/{id}/enable", "post"),
        ("/v1/channels/{id}/rotate-secret", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    let documented: std::collections::BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (path.clone(), m.clone())))
        .filter(|(_, m)| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
        .collect();
    assert_eq!(documented, expected, "/openapi.json and the routes differ");
    // ... and each documented route is served: unknown ids get a JSON 404, not the router's.
    let nil = "00000000-0000-0000-0000-000000000000";
    for (path, method) in &documented {
        let url = serve.url(&path.replace("{id}", nil));
        let resp = serve
            .http()
            .request(method.to_uppercase().parse().unwrap(), &url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_ne!(code, 405, "{method} {path} is documented but not routed");
        if code == 404 {
            let err: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{method} {path} is documented but not routed: {body:?}"));
            assert_eq!(err["error"]["code"], "not_found", "{method} {path}: {body}");
        }
    }
    let schemas = &doc["components"]["schemas"];
    for name in [
        "Delivery",
        "DeliveryDetail",
        "Attempt",
        "Status",
        "EventInput",
        "ErrorBody",
        "DeliveryState",
        "Alert",
        "InventoryCertificate",
        "EventRecord",
        "EventDetail",
    ] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
    assert_eq!(schemas["Delivery"]["properties"]["cloudEventId"]["type"], "string");
    for field in ["types", "profiles", "namePatterns", "type"] {
        assert!(
            schemas["Alert"]["properties"][field].is_object() || schemas["Alert"]["allOf"].is_array(),
            "Alert.{field}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_their_own_address_and_logs_can_be_json() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut env = Env::fast();
    env.set("CERTHOOK_METRICS_LISTEN", &format!("127.0.0.1:{port}"));
    env.set("CERTHOOK_ADMIN_TOKEN", TOKEN);
    let serve = Serve::start_with_args(&env, &["--log-format", "json"]).await;
    let text = serve.http().get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("certhook_build_info"), "{text}");
    let resp = serve.http().get(format!("http://127.0.0.1:{port}/v1/status")).send().await.unwrap();
    assert_eq!(resp.status(), 404, "the metrics address serves /metrics and the probes only");
    for probe in ["/healthz", "/readyz"] {
        let resp = serve.http().get(format!("http://127.0.0.1:{port}{probe}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{probe} on the metrics address (a sidecar's API stays on loopback)");
    }
    let resp = serve.http().get(format!("http://127.0.0.1:{port}/")).send().await.unwrap();
    assert_eq!(resp.status(), 404, "no console there either");
    let log = serve.log.lock().unwrap().clone();
    let json_lines: Vec<serde_json::Value> = log.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(json_lines.iter().any(|l| l["fields"]["message"] == "serving"), "{log:?}");
    assert!(!log.iter().any(|l| l.contains(TOKEN)), "the admin token never reaches the log");
    serve.terminate().await;
}
