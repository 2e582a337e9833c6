//! HTTPS delivery to receivers behind a private CA, and mutual TLS: real TLS receivers on
//! 127.0.0.1 (HTTP/2 and HTTP/1.1 by ALPN) with certificates from CAs made in each test.

use std::time::Duration;

use crate::support::{Env, Serve, event};
use crate::tls_receiver::{TestCa, TlsReceiver};

/// Fast settings, with room for many retries while a test changes what is trusted.
fn env() -> Env {
    let mut env = Env::fast();
    env.set("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "100");
    env
}

/// An application and an issuance alert; their ids.
fn alert(env: &Env) -> (String, String) {
    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    let alert = env.json(&["alert", "create", "--app", &app, "--type", "issuance", "--name", "issued"]);
    (app, alert["id"].as_str().unwrap().to_string())
}

/// A `--no-verify` channel to `url` with `extra` flags; its id.
fn channel(env: &Env, alert: &str, url: &str, extra: &[&str]) -> String {
    let mut args = vec!["channel", "create", "--alert", alert, "--url", url, "--no-verify"];
    args.extend(extra);
    env.json(&args)["id"].as_str().unwrap().to_string()
}

/// Waits until channel `id`'s delivery matches `check`; returns it.
async fn wait_delivery(serve: &Serve, id: &str, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    for _ in 0..300 {
        let list = serve.get(&format!("/v1/deliveries?channel={id}")).await;
        if let Some(d) = list.as_array().and_then(|l| l.iter().find(|d| check(d))) {
            return d.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("channel {id}'s delivery never matched: {}\n{}", serve.get("/v1/deliveries").await, serve.log_tail(20));
}

fn retrying_with_error(d: &serde_json::Value) -> bool {
    d["state"] == "retrying" && d["lastError"].is_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_refused_until_the_ca_bundle_trusts_it_and_the_bundle_is_read_again_on_change() {
    let ca = TestCa::new("receiver-ca");
    let receiver = TlsReceiver::start(&ca.issue("receiver", &["127.0.0.1"]), None).await;
    let mut env = env();
    // At first the bundle holds another CA: valid, but not the receiver's.
    let bundle = env.path("bundle.pem");
    std::fs::write(&bundle, TestCa::new("unrelated-ca").pem).unwrap();
    env.set("CERTHOOK_CA_BUNDLE", bundle.to_str().unwrap());
    let (app, alert) = alert(&env);
    let id = channel(&env, &alert, &receiver.url("/hook"), &[]);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "1")).await;

    let refused = wait_delivery(&serve, &id, retrying_with_error).await;
    let error = refused["lastError"].as_str().unwrap();
    assert!(error.contains("invalid peer certificate") && error.contains("UnknownIssuer"), "{error}");
    assert!(receiver.hits().is_empty(), "nothing got through the handshake");

    // The receiver's CA joins the bundle: the retries get through, without a restart.
    std::fs::write(&bundle, format!("{}{}", TestCa::new("another").pem, ca.pem)).unwrap();
    let delivered = wait_delivery(&serve, &id, |d| d["state"] == "delivered").await;
    assert!(delivered["attemptCount"].as_u64().unwrap() >= 2, "{delivered}");
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].version, axum::http::Version::HTTP_2, "ALPN chose HTTP/2");
    assert!(serve.log_tail(200).contains("ca_bundle reloaded"), "{}", serve.log_tail(40));
    serve.terminate().await;

    // A bundle that cannot be read stops serve at start, naming the key.
    env.set("CERTHOOK_CA_BUNDLE", env.path("absent.pem").to_str().unwrap());
    let out = env.run_within(&["serve"], Duration::from_secs(30));
    let (code, stderr) = crate::support::failure(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("ca_bundle: cannot read"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channels_ca_file_trusts_its_receiver_and_no_other_channels() {
    let ca = TestCa::new("receiver-ca");
    let receiver = TlsReceiver::start(&ca.issue("receiver", &["127.0.0.1"]), None).await;
    let env = env();
    let ca_file = env.path("receiver-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (app, alert) = alert(&env);
    let trusted = channel(&env, &alert, &receiver.url("/trusted"), &["--ca-file", ca_file.to_str().unwrap()]);
    let plain = channel(&env, &alert, &receiver.url("/plain"), &[]);
    // A receiver that speaks HTTP/1.1 only, trusted through the same kind of CA file.
    let http1 = TlsReceiver::start_speaking(&ca.issue("receiver", &["127.0.0.1"]), None, &[b"http/1.1"]).await;
    let old_style = channel(&env, &alert, &http1.url("/http1"), &["--ca-file", ca_file.to_str().unwrap()]);
    let shown = env.json(&["channel", "show", &trusted]);
    assert_eq!(shown["tls"]["caCertificates"][0]["subject"], "CN=receiver-ca", "{shown}");
    assert_eq!(shown["tls"]["hasClientKey"], false);
    assert!(env.json(&["channel", "show", &plain])["tls"].is_null());

    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "1")).await;
    wait_delivery(&serve, &trusted, |d| d["state"] == "delivered").await;
    wait_delivery(&serve, &old_style, |d| d["state"] == "delivered").await;
    let hits = http1.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].version, axum::http::Version::HTTP_11, "HTTP/1.1 where that is all the receiver speaks");
    assert_eq!(receiver.hits()[0].version, axum::http::Version::HTTP_2);
    let refused = wait_delivery(&serve, &plain, retrying_with_error).await;
    assert!(refused["lastError"].as_str().unwrap().contains("UnknownIssuer"), "{refused}");
    let paths: Vec<String> = receiver.hits().into_iter().map(|h| h.path).collect();
    assert_eq!(paths, ["/trusted"]);

    // Removing the CA file takes the trust away (the worker sees it on its next refresh).
    env.json(&["channel", "update", &trusted, "--no-ca-file"]);
    // Forty poll intervals: time enough for the worker's refresh on a loaded machine.
    tokio::time::sleep(Duration::from_secs(2)).await;
    serve.enqueue(&event(&app, "2")).await;
    for _ in 0..100 {
        let list = serve.get(&format!("/v1/deliveries?channel={trusted}")).await;
        if list.as_array().unwrap().iter().any(retrying_with_error) {
            serve.terminate().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the second delivery was not refused once the CA file was removed: {}\n{}",
        serve.get(&format!("/v1/deliveries?channel={trusted}")).await,
        serve.log_tail(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_requiring_a_client_certificate_accepts_the_channel_that_presents_one() {
    let server_ca = TestCa::new("receiver-ca");
    let client_ca = TestCa::new("client-ca");
    let receiver = TlsReceiver::start(&server_ca.issue("receiver", &["127.0.0.1"]), Some(&client_ca)).await;
    let mut env = env();
    let bundle = env.path("bundle.pem");
    std::fs::write(&bundle, &server_ca.pem).unwrap();
    env.set("CERTHOOK_CA_BUNDLE", bundle.to_str().unwrap());
    env.set("CERTHOOK_SECRET_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    let client = client_ca.issue("certhook-client", &["certhook.test"]);
    let (cert_file, key_file) = (env.path("client.pem"), env.path("client-key.pem"));
    std::fs::write(&cert_file, &client.cert).unwrap();
    std::fs::write(&key_file, &client.key).unwrap();
    let (app, alert) = alert(&env);
    let (cert_arg, key_arg) = (cert_file.to_str().unwrap(), key_file.to_str().unwrap());
    let with = channel(&env, &alert, &receiver.url("/with"), &["--client-cert", cert_arg, "--client-key", key_arg]);
    let without = channel(&env, &alert, &receiver.url("/without"), &[]);
    let shown = env.command().args(["--json", "channel", "show", &with]).output().unwrap();
    let shown_text = String::from_utf8(shown.stdout).unwrap();
    let shown: serde_json::Value = serde_json::from_str(&shown_text).unwrap();
    assert_eq!(shown["tls"]["clientCertificate"]["subject"], "CN=certhook-client");
    assert_eq!(shown["tls"]["hasClientKey"], true);
    let key_line = client.key.lines().nth(1).unwrap();
    assert!(!shown_text.contains(key_line) && !shown_text.contains("PRIVATE KEY"), "the key is never shown");

    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "1")).await;
    wait_delivery(&serve, &with, |d| d["state"] == "delivered").await;
    let refused = wait_delivery(&serve, &without, retrying_with_error).await;
    let error = refused["lastError"].as_str().unwrap();
    // TLS 1.3 tells a client it was refused only after the handshake: the alert
    // (CertificateRequired) or a closed connection, whichever the client reads first.
    assert!(refused["lastStatusCode"].is_null() && error.starts_with("request error"), "refused: {error}");
    let paths: Vec<String> = receiver.hits().into_iter().map(|h| h.path).collect();
    assert_eq!(paths, ["/with"]);
    assert!(!serve.log_tail(500).contains(key_line), "the key is never logged");
    serve.terminate().await;
}

#[test]
fn tls_flags_are_checked_naming_the_flag_and_nothing_is_stored() {
    let env = Env::fast();
    let (_, alert) = alert(&env);
    let ca = TestCa::new("some-ca");
    let client = ca.issue("client", &["client.test"]);
    let other = ca.issue("other", &["other.test"]);
    let write = |name: &str, text: &str| {
        let path = env.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (junk, cert, key, other_key) = (
        write("junk.pem", "junk"),
        write("c.pem", &client.cert),
        write("k.pem", &client.key),
        write("o.pem", &other.key),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--ca-file", &junk], "--ca-file:"),
        (vec!["--ca-file", &key], "--ca-file:"),
        (vec!["--client-cert", &junk, "--client-key", &key], "--client-cert:"),
        (vec!["--client-cert", &cert, "--client-key", &cert], "--client-key:"),
        (vec!["--client-cert", &cert, "--client-key", &other_key], "--client-key:"),
        (vec!["--client-cert", &cert], "--client-key"),
        (vec!["--ca-file", "/nonexistent/ca.pem"], "--ca-file: cannot read"),
    ];
    for (flags, expected) in cases {
        let mut args =
            vec!["channel", "create", "--alert", &alert, "--url", "https://receiver.test/hook", "--no-verify"];
        args.extend(&flags);
        let (code, stderr) = crate::support::failure(&env.run(&args));
        assert_eq!(code, 2, "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(!stderr.contains(client.key.lines().nth(1).unwrap()), "no key in errors: {stderr}");
    }
    assert_eq!(env.json(&["channel", "list"]).as_array().unwrap().len(), 0, "nothing stored");
}

/// The TLS settings through the API: created with `caPem`, `clientCertPem` and
/// `clientKeyPem`; a PATCH leaves absent members alone, removes what is `null`, and
/// changes the certificate and key together. Run on both backends.
async fn tls_settings_through_the_api(env: Env) {
    let (_, alert) = alert(&env);
    let ca = TestCa::new("api-ca");
    let client = ca.issue("api-client", &["client.test"]);
    let serve = Serve::start(&env).await;
    let http = serve.http();
    let created = http
        .post(serve.url(&format!("/v1/alerts/{alert}/channels")))
        .json(&serde_json::json!({"url": "https://receiver.test/hook", "noVerify": true, "caPem": ca.pem,
                                  "clientCertPem": client.cert, "clientKeyPem": client.key}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["tls"]["caCertificates"][0]["subject"], "CN=api-ca");
    assert_eq!(created["tls"]["clientCertificate"]["subject"], "CN=api-client");
    assert_eq!(created["tls"]["hasClientKey"], true);
    assert!(!created.to_string().contains("PRIVATE KEY"), "the key is never shown");
    let patch = |body: serde_json::Value| http.patch(serve.url(&format!("/v1/channels/{id}"))).json(&body).send();

    let limited: serde_json::Value =
        patch(serde_json::json!({"rateLimit": "1/s"})).await.unwrap().json().await.unwrap();
    assert_eq!(limited["rateLimit"], "1/s");
    assert_eq!(limited["tls"], created["tls"], "absent members are left alone");
    let resp = patch(serde_json::json!({"clientCertPem": client.cert})).await.unwrap();
    assert_eq!(resp.status(), 422, "a certificate without its key");
    let resp = patch(serde_json::json!({"caPem": "junk"})).await.unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["error"]["field"], "caPem");
    let no_ca: serde_json::Value = patch(serde_json::json!({"caPem": null})).await.unwrap().json().await.unwrap();
    assert!(no_ca["tls"]["caCertificates"].as_array().is_none_or(|l| l.is_empty()), "{no_ca}");
    assert_eq!(no_ca["tls"]["hasClientKey"], true, "the client certificate stays");
    let none: serde_json::Value =
        patch(serde_json::json!({"clientCertPem": null, "clientKeyPem": null, "rateLimit": null}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(none["tls"].is_null() && none["rateLimit"].is_null(), "{none}");
    assert_eq!(serve.get(&format!("/v1/channels/{id}")).await, none, "as stored");
    serve.terminate().await;
}

on_both_backends!(
    tls_settings_through_the_api,
    env(),
    tls_settings_through_the_api_on_sqlite,
    tls_settings_through_the_api_on_postgres
);
