//! Running the binary in a scratch directory with its own SQLite database, and
//! `certhook serve` as a child process.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A scratch directory with its own database and configuration, and the binary to run there.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    vars: Vec<(String, String)>,
}

/// Settings that make retries and polling fast enough for tests, on loopback receivers.
pub const FAST: &[(&str, &str)] = &[
    ("CERTHOOK_ALLOW_INSECURE_HTTP", "true"),
    ("CERTHOOK_ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]"),
    ("CERTHOOK_LISTEN", "127.0.0.1:0"),
    ("CERTHOOK_DELIVERY__INITIAL_BACKOFF", "50ms"),
    ("CERTHOOK_DELIVERY__BACKOFF_FACTOR", "2.0"),
    ("CERTHOOK_DELIVERY__MAX_BACKOFF", "200ms"),
    ("CERTHOOK_DELIVERY__POLL_INTERVAL", "50ms"),
    ("CERTHOOK_DELIVERY__REQUEST_TIMEOUT", "2s"),
    ("CERTHOOK_DELIVERY__LEASE_DURATION", "5s"),
    ("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "3"),
];

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("certhook.db").display());
        Env { dir, database_url, vars: Vec::new() }
    }

    /// An environment with the [`FAST`] settings.
    pub fn fast() -> Env {
        let mut env = Env::new();
        env.set_all(FAST);
        env
    }

    /// Sets a variable for every command run from this environment.
    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_string(), value.to_string()));
    }

    /// Removes a variable set earlier.
    pub fn unset(&mut self, key: &str) {
        self.vars.retain(|(k, _)| k != key);
    }

    pub fn set_all(&mut self, vars: &[(&str, &str)]) {
        for (k, v) in vars {
            self.set(k, v);
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `certhook` command with a clean environment (only this Env's CERTHOOK_* variables).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certhook"));
        for (key, _) in std::env::vars() {
            if key.starts_with("CERTHOOK_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir.path()).env("CERTHOOK_DATABASE_URL", &self.database_url).env("RUST_LOG", "warn");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `certhook <args>` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run certhook")
    }

    /// Runs `certhook <args>` and returns its output; kills it and panics if it is still
    /// running after `limit` (for commands that must exit, such as a refused `serve`).
    pub fn run_within(&self, args: &[&str], limit: Duration) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run certhook");
        let deadline = std::time::Instant::now() + limit;
        while child.try_wait().expect("wait for certhook").is_none() {
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!("certhook {args:?} still ran after {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("collect output")
    }

    /// Runs `certhook --json <args>`, expects success, and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.command().arg("--json").args(args).output().expect("run certhook");
        assert!(out.status.success(), "certhook {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
    }

    /// Enqueues `events` with `certhook enqueue --file` (one NDJSON file), no `serve`
    /// needed; returns what the command printed.
    pub fn enqueue_file(&self, events: &[serde_json::Value]) -> serde_json::Value {
        let file = self.path(&format!("events-{}.ndjson", uuid::Uuid::new_v4().simple()));
        let ndjson: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        std::fs::write(&file, ndjson.join("\n")).expect("write the events file");
        self.json(&["enqueue", "--file", file.to_str().expect("a UTF-8 path")])
    }

    /// Creates an application, an alert of `alert_type` and a `--no-verify` webhook channel
    /// to `url`; returns (application id, channel id).
    pub fn webhook(&self, alert_type: &str, url: &str, secret: Option<&str>) -> (String, String) {
        // Application names are unique: a test may make several of these in one database.
        let name = format!("alert-{}", uuid::Uuid::new_v4().simple());
        let app = self.json(&["app", "create", "--name", &format!("pki-{name}")]);
        let app_id = app["id"].as_str().unwrap().to_string();
        let mut args = vec!["alert", "create", "--app", &app_id, "--type", alert_type, "--name", &name];
        if alert_type == "expiration" {
            args.extend(["--before", "30d"]);
        }
        let alert = self.json(&args);
        let channel = self.channel(alert["id"].as_str().unwrap(), url, secret);
        (app_id, channel)
    }

    /// Adds a `--no-verify` webhook channel to an alert; returns its id.
    pub fn channel(&self, alert_id: &str, url: &str, secret: Option<&str>) -> String {
        let mut args = vec!["channel", "create", "--alert", alert_id, "--url", url, "--no-verify"];
        if let Some(s) = secret {
            args.extend(["--secret", s]);
        }
        self.json(&args)["id"].as_str().unwrap().to_string()
    }
}

/// The exit code and stderr of a run that should have failed.
pub fn failure(out: &Output) -> (i32, String) {
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// An issuance event for `app` as JSON.
pub fn event(app: &str, serial: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "issuance", "applicationId": app,
        "certificate": { "serialNumber": serial, "commonName": format!("host-{serial}.example.com"),
                         "notBefore": "2024-01-01T00:00:00Z", "notAfter": "2030-01-01T00:00:00Z" }
    })
}

/// The value of one series (name and labels, as exposed) in Prometheus text.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no series {series}"))
}

/// `certhook serve` running as a child process.
pub struct Serve {
    child: tokio::process::Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Serve {
    /// Starts `serve` in `env` and waits until it listens.
    pub async fn start(env: &Env) -> Serve {
        Serve::start_with_args(env, &[]).await
    }

    /// Starts `certhook <global args> serve`.
    pub async fn start_with_args(env: &Env, args: &[&str]) -> Serve {
        let mut cmd = tokio::process::Command::from(env.command());
        cmd.args(args)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd.kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn certhook serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(line.clone());
                if let Some(url) = line.strip_prefix("certhook: listening on ") {
                    return url.to_string();
                }
            }
            panic!("serve exited before listening: {:?}", log.lock().unwrap());
        })
        .await
        .expect("serve listens within 30 s");
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Serve { child, base, log, http: client() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs one event to `/v1/events` and returns its id.
    pub async fn enqueue(&self, event: &serde_json::Value) -> String {
        let resp = self.http.post(self.url("/v1/events")).json(event).send().await.unwrap();
        assert_eq!(resp.status(), 202, "enqueue refused: {}", resp.text().await.unwrap());
        let body: serde_json::Value = resp.json().await.unwrap();
        body["ids"][0].as_str().unwrap().to_string()
    }

    /// GETs a JSON document.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        self.http.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    /// Polls `/v1/status` until `check` holds, or panics after `timeout`.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.get("/v1/status").await;
            if check(&status) {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                let log = self.log.lock().unwrap();
                let tail = log.iter().rev().take(30).rev().cloned().collect::<Vec<_>>().join("\n");
                panic!("status never matched: {status}\nserve log (last lines):\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `n` lines serve wrote to stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log.iter().rev().take(n).rev().cloned().collect::<Vec<_>>().join("\n")
    }

    /// This process's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    /// Polls `/metrics` until `series` satisfies `check`; returns its value, or panics after `timeout`.
    pub async fn wait_metric(&self, series: &str, timeout: Duration, check: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = metric(&self.metrics().await, series);
            if check(value) {
                return value;
            }
            assert!(tokio::time::Instant::now() < deadline, "{series} stayed at {value} for {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no chance to record anything.
    pub async fn kill9(mut self) {
        self.child.kill().await.expect("SIGKILL serve");
    }

    /// SIGTERM, then the exit code.
    pub async fn terminate(mut self) -> i32 {
        let pid = self.child.id().expect("serve is running").to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.expect("exits").unwrap();
        status.code().unwrap_or(-1)
    }
}

/// A plain HTTP client for talking to `serve` (rustls needs its provider installed first).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
