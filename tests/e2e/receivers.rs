//! The receiver snippets of the README (ops/receivers/verify.js and verify.py) run against
//! real deliveries from `serve`: they verify them, and reject a tampered request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Env, Serve, client, event};

const SECRET: &str = "snippet-secret-0123456789abcdefghijkl";

struct Snippet {
    _child: tokio::process::Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

/// Starts `program script 0`, or `None` when the program is absent outside CI.
async fn start(program: &str, script: &str) -> Option<Snippet> {
    let path = format!("{}/../../ops/receivers/{script}", env!("CARGO_MANIFEST_DIR"));
    let spawned = tokio::process::Command::new(program)
        .args([path.as_str(), "0"])
        .env("CERTHOOK_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            // io::stderr() directly: libtest captures only the print macros.
            use std::io::Write;
            let notice = format!("\nSKIPPED the {script} snippet: cannot run {program}: {e}\n");
            let _ = std::io::stderr().write_all(notice.as_bytes());
            return None;
        }
        Err(e) => panic!("CI=true and {program} cannot run: {e}"),
    };
    let mut reader = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), reader.next_line()).await.unwrap().unwrap().unwrap();
    let url = first.strip_prefix("listening on ").expect("the snippet says where it listens").to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    Some(Snippet { _child: child, url, lines })
}

async fn wait_for(s: &Snippet, prefix: &str) -> String {
    for _ in 0..400 {
        if let Some(l) = s.lines.lock().unwrap().iter().find(|l| l.starts_with(prefix)) {
            return l.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the snippet never printed {prefix:?}: {:?}", s.lines.lock().unwrap());
}

async fn snippet_verifies_real_deliveries(program: &str, script: &str) {
    let Some(snippet) = start(program, script).await else { return };
    let env = Env::fast();
    let (app, _) = env.webhook("issuance", &format!("{}/hook", snippet.url), Some(SECRET));
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "9")).await;
    let line = wait_for(&snippet, "verified com.infisical.pki.certificate.issuance").await;
    serve.wait_status(Duration::from_secs(20), |s| s["deliveries"]["delivered"] == 1).await;
    let delivery = &serve.get("/v1/deliveries").await[0];
    assert_eq!(
        line,
        format!("verified com.infisical.pki.certificate.issuance {}", delivery["cloudEventId"].as_str().unwrap())
    );
    serve.terminate().await;

    let t = chrono::Utc::now().timestamp_millis();
    let resp = client()
        .post(format!("{}/hook", snippet.url))
        .header("x-infisical-signature", format!("t={t},v1={}", "0".repeat(64)))
        .body("{\"type\":\"x\",\"id\":\"y\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    wait_for(&snippet, "rejected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_snippet_verifies_and_rejects() {
    snippet_verifies_real_deliveries("node", "verify.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_snippet_verifies_and_rejects() {
    snippet_verifies_real_deliveries("python3", "verify.py").await;
}
