//! `certhook listen`: the development receiver verifies real deliveries, rejects tampered
//! ones, and prints the activation command for a verification event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Env, Serve, client, event};

const SECRET: &str = "listen-secret-0123456789abcdefghijkl";

struct Listen {
    _child: tokio::process::Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Listen {
    async fn start(env: &Env) -> Listen {
        Listen::start_with(env, &[]).await
    }

    async fn start_with(env: &Env, extra: &[&str]) -> Listen {
        let mut cmd = tokio::process::Command::from(env.command());
        cmd.args(["listen", "--port", "0", "--secret", SECRET])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), reader.next_line()).await.unwrap().unwrap().unwrap();
        let url = first.strip_prefix("listening on ").unwrap().split(' ').next().unwrap().to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Listen { _child: child, url, lines }
    }

    async fn wait_line(&self, prefix: &str) -> String {
        for _ in 0..400 {
            if let Some(l) = self.lines.lock().unwrap().iter().rev().find(|l| l.starts_with(prefix)) {
                return l.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("listen never printed {prefix:?}: {:?}", self.lines.lock().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_walks_through_activation_and_verifies_deliveries() {
    let env = Env::fast();
    let listen = Listen::start(&env).await;
    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    let alert = env.json(&["alert", "create", "--app", &app, "--type", "issuance", "--name", "issued"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let serve = Serve::start(&env).await;
    env.json(&["channel", "create", "--alert", &alert, "--url", &format!("{}/hook", listen.url), "--secret", SECRET]);

    let command = listen.wait_line("activate with: ").await;
    let args: Vec<&str> = command.strip_prefix("activate with: certhook ").unwrap().split(' ').collect();
    assert_eq!(env.json(&args)["state"], "active", "the printed command works as printed");

    serve.enqueue(&event(&app, "42")).await;
    listen.wait_line("received com.infisical.pki.certificate.issuance").await;
    let lines = listen.lines.lock().unwrap().clone();
    let at = lines.iter().rposition(|l| l.starts_with("received com.infisical.pki.certificate.issuance")).unwrap();
    assert_eq!(lines[at + 1], "  x-infisical-signature: verified");
    assert_eq!(lines[at + 2], "  webhook-signature: verified");
    assert_eq!(lines[at + 3], "  headers:");
    let id = lines[at].split(" id=").nth(1).unwrap().split(' ').next().unwrap();
    for shown in
        ["    content-type: application/cloudevents+json; charset=utf-8".to_string(), format!("    webhook-id: {id}")]
    {
        assert!(lines[at..].contains(&shown), "{shown:?} in {lines:?}");
    }
    serve.terminate().await;

    // A genuine signature over one body, sent with another body: rejected.
    let t = chrono::Utc::now().timestamp_millis();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{{\"a\":1}}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    let resp = client()
        .post(format!("{}/hook", listen.url))
        .header("x-infisical-signature", format!("t={t},v1={sig}"))
        .body("{\"a\":2}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    listen.wait_line("REJECTED").await;
    let lines = listen.lines.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.contains("x-infisical-signature: FAILED (no signature matches)")), "{lines:?}");
}

/// A short `--secret` is bad input like anywhere else: exit 2, naming the rule.
#[test]
fn a_short_secret_is_refused_with_exit_2() {
    let env = Env::new();
    let out = env.run_within(&["listen", "--port", "0", "--secret", "short"], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 characters"));
}

/// `--raw` prints the body exactly as it arrived: one line, members in wire order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_shows_the_body_as_received() {
    let env = Env::new();
    let listen = Listen::start_with(&env, &["--raw"]).await;
    let body = r#"{"specversion":"1.0","type":"com.example.test","id":"x1","subject":"s"}"#;
    let resp = client().post(format!("{}/hook", listen.url)).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 401, "unsigned");
    listen.wait_line("REJECTED").await;
    let lines = listen.lines.lock().unwrap().clone();
    assert!(lines.contains(&body.to_string()), "{lines:?}");
}
