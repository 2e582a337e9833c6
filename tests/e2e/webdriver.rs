//! Just enough WebDriver (W3C) to drive Debian's Chromium through its `chromedriver`,
//! over the HTTP client the tests already have: start the driver on 127.0.0.1, open a
//! headless session, navigate, find, click, type, read, take screenshots.
//!
//! The browser and driver are the ones installed from Debian's packages (`chromium`,
//! `chromium-driver`), named by path; nothing is downloaded, and the browser runs with
//! its background networking (updates, metrics, safe browsing, sync) turned off.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// Debian's ChromeDriver.
pub const DRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Chromium.
pub const BROWSER: &str = "/usr/bin/chromium";

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The driver process and everything it starts (its own process group), ended when dropped:
/// a test that fails half-way leaves no browser behind.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // The negative pid names the whole group: the driver and the browser it started.
        // `--` first: procps' kill reads a bare `-<pid>` as a signal and kills nothing.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running driver with one browser session; both end when this is dropped.
pub struct Browser {
    _driver: Group,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// An element on the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts the driver and a headless browser, or `None` (the test skips) when the Debian
    /// packages are not installed outside CI. Under `CI=true` a missing browser fails.
    pub async fn start() -> Option<Browser> {
        if !Path::new(DRIVER).exists() || !Path::new(BROWSER).exists() {
            assert!(
                std::env::var("CI").is_err(),
                "{DRIVER} or {BROWSER} is missing: .ci/run installs Debian's chromium and chromium-driver"
            );
            eprintln!(
                "SKIPPED: browser test ({DRIVER} and {BROWSER} from Debian's chromium-driver and chromium are not installed)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Without --allowed-ips the driver accepts local connections only.
        let driver = Group(
            Command::new(DRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver"),
        );
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A hung driver fails the test instead of hanging the run.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{root}/status")).send().await;
            if let Ok(r) = ready
                && r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--disable-domain-reliability".into(),
            "--disable-client-side-phishing-detection".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication".into(),
            "--metrics-recording-only".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": BROWSER, "args": args},
        }}});
        let created: Value =
            http.post(format!("{root}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session =
            created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        Some(Browser { _driver: driver, base: format!("{root}/session/{session}"), http, _profile: profile })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            request = request.json(&b);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    /// Opens `url`.
    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The page's address now.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_string()
    }

    /// The page's HTML now.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None).await.as_str().unwrap().to_string()
    }

    /// The first element `css` selects.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let found =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        Element { browser: self, id: found[ELEMENT].as_str().unwrap().to_string() }
    }

    /// Resizes the window (a phone is 390 × 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// Saves a PNG of the page under `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Element<'_> {
    /// Clicks it.
    pub async fn click(&self) {
        self.browser.call(reqwest::Method::POST, &format!("/element/{}/click", self.id), Some(json!({}))).await;
    }

    /// Types `text` into it.
    pub async fn send_keys(&self, text: &str) {
        self.browser
            .call(reqwest::Method::POST, &format!("/element/{}/value", self.id), Some(json!({"text": text})))
            .await;
    }

    /// Its visible text.
    pub async fn text(&self) -> String {
        let v = self.browser.call(reqwest::Method::GET, &format!("/element/{}/text", self.id), None).await;
        v.as_str().unwrap().to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser goes with its session; the group's end (`Group`) catches the rest.
        self.end_session();
    }
}

impl Browser {
    /// `DELETE /session/{id}`, blocking (it runs in `drop`, also while a test unwinds).
    fn end_session(&self) {
        use std::io::{Read, Write};
        let Some(rest) = self.base.strip_prefix("http://") else { return };
        let Some((host, path)) = rest.split_once('/') else { return };
        let Ok(mut stream) = std::net::TcpStream::connect(host) else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request =
            format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}
