//! The measured scenarios. Each builds its own fresh database and receiver, so runs do
//! not disturb each other; every server binds 127.0.0.1 and every loop is bounded.

use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certhook_core::event::{AlertType, Certificate, ChannelState, NewEvent};
use certhook_core::render::RenderSettings;
use certhook_store::scratch::ScratchDatabase;
use certhook_store::{NewAlert, NewChannel, Store};
use certhook_worker::guard::Guard;
use certhook_worker::{Metrics, Sender, SenderConfig, Worker, WorkerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::receiver;
use crate::{Figure, Options};

const SECRET: &str = "bench-signing-secret-0123456789abcdef";

/// Runs a measurement `runs` times.
pub async fn repeat<F, Fut>(runs: usize, f: F) -> anyhow::Result<Figure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<f64>>,
{
    Ok(Figure::of(each_run(runs, f).await?))
}

/// What each of `runs` runs of `f` measured, in order; the first error stops them.
pub async fn each_run<T, F, Fut>(runs: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut xs = Vec::with_capacity(runs);
    for _ in 0..runs {
        xs.push(f().await?);
    }
    Ok(xs)
}

/// A payload the size of a real delivery.
fn sample_body() -> Vec<u8> {
    let c = certificate(0, chrono::Utc::now() + chrono::Duration::days(300));
    let alert = certhook_core::render::AlertRef {
        id: Uuid::now_v7(),
        name: "bench".into(),
        alert_type: AlertType::Issuance,
        alert_before: None,
        application_id: Uuid::now_v7(),
    };
    certhook_core::render::render_alert_event(&RenderSettings::default(), &alert, "id", chrono::Utc::now(), &[c])
}

/// `n` issuance events of `app`, each for its own certificate, valid for 300 days.
pub(crate) fn issuance_events(app: Uuid, n: usize) -> Vec<NewEvent> {
    let far = chrono::Utc::now() + chrono::Duration::days(300);
    (0..n)
        .map(|i| NewEvent {
            event_type: AlertType::Issuance,
            application_id: app,
            idempotency_key: None,
            certificate: certificate(i, far),
        })
        .collect()
}

/// The `i`th certificate of a run, each with its own id and serial, valid until `not_after`.
fn certificate(i: usize, not_after: chrono::DateTime<chrono::Utc>) -> Certificate {
    Certificate {
        id: format!("cert-{i}"),
        serial_number: i.to_string(),
        common_name: format!("host-{i}.example.com"),
        san: vec![format!("host-{i}.example.com")],
        profile_name: Some("TLS Server".into()),
        not_before: chrono::Utc::now() - chrono::Duration::days(1),
        not_after,
        revoked_at: None,
        revocation_reason: None,
    }
}

/// The raw ceiling: a plain keep-alive client loop against the receiver, same payload,
/// same number of requests in flight.
pub async fn ceiling(o: &Options) -> anyhow::Result<f64> {
    ceiling_at(o, o.concurrency).await
}

/// The raw ceiling with `in_flight` requests in flight (with a channel's
/// `channel_concurrency`: what one channel could send if nothing but the request took time).
pub async fn ceiling_at(o: &Options, in_flight: usize) -> anyhow::Result<f64> {
    let per_task = o.events.checked_div(in_flight).unwrap_or(0);
    anyhow::ensure!(per_task > 0, "ceiling: {} events cannot keep {in_flight} requests in flight", o.events);
    let (url, counter) = receiver::start().await;
    let client = reqwest::Client::new();
    let body = bytes::Bytes::from(sample_body());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let r = client.post(&url).header("content-type", "application/json").body(body.clone()).send().await;
                r.expect("receiver answers").bytes().await.expect("body");
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let n = counter.count.load(Ordering::Relaxed) as f64;
    Ok(n / started.elapsed().as_secs_f64())
}

/// Which database.
#[derive(Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh database URL; the guard removes it.
pub(crate) struct FreshDb {
    pub(crate) url: String,
    _dir: Option<TempDir>,
    pg: Option<ScratchDatabase>,
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("certhook-bench: could not remove {}: {e}", self.0.display());
        }
    }
}

impl FreshDb {
    pub(crate) async fn new(o: &Options, db: Db) -> anyhow::Result<FreshDb> {
        match db {
            Db::Sqlite => {
                let dir = std::env::temp_dir().join(format!("certhook-bench-{}", Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir)?;
                let url = format!("sqlite://{}", dir.join("bench.db").display());
                Ok(FreshDb { url, _dir: Some(TempDir(dir)), pg: None })
            }
            Db::Postgres => {
                let db = ScratchDatabase::create(&o.postgres_url, "certhook_bench")
                    .await
                    .with_context(|| format!("PostgreSQL at {}", o.postgres_url))?;
                Ok(FreshDb { url: db.url.clone(), _dir: None, pg: Some(db) })
            }
        }
    }

    /// Drops the database whether the measurement worked or not, then gives the
    /// measurement; a failed drop is an error too (it would leave databases behind).
    pub(crate) async fn finish<T>(self, measured: anyhow::Result<T>) -> anyhow::Result<T> {
        let dropped = self.drop_pg().await;
        let figure = measured?;
        dropped?;
        Ok(figure)
    }

    /// Drops the PostgreSQL scratch database (a no-op for SQLite).
    async fn drop_pg(&self) -> anyhow::Result<()> {
        if let Some(db) = &self.pg {
            db.drop_database().await.with_context(|| format!("dropping the scratch database {}", db.url))?;
        }
        Ok(())
    }
}

/// An application with one issuance alert and `channels` active, signed channels to `url`.
pub(crate) async fn subscribe(store: &Store, url: &str, channels: usize) -> anyhow::Result<Uuid> {
    let app = store.create_application("bench").await?;
    let alert = store.create_alert(&NewAlert::single(app.id, AlertType::Issuance, "issued")).await?;
    for _ in 0..channels {
        store
            .create_channel(
                &NewChannel {
                    secret: Some(certhook_core::Secret::new(SECRET)),
                    ..NewChannel::webhook(alert.id, url, ChannelState::Active)
                },
                None,
            )
            .await?;
    }
    Ok(app.id)
}

/// Drains a filled queue: `o.events` deliveries (spread over `channels` channels) already
/// fanned out; measures deliveries/s from the worker's start to the last 2xx.
pub async fn drain(o: &Options, db: Db, channels: usize) -> anyhow::Result<f64> {
    let fresh = FreshDb::new(o, db).await?;
    let measured = drain_in(o, &fresh, channels).await;
    fresh.finish(measured).await
}

async fn drain_in(o: &Options, fresh: &FreshDb, channels: usize) -> anyhow::Result<f64> {
    let store = Store::connect(&fresh.url).await?;
    let (url, counter) = receiver::start().await;
    let app = subscribe(&store, &url, channels).await?;
    let events = o.events / channels;
    let batch = issuance_events(app, events);
    for chunk in batch.chunks(1000) {
        store.enqueue(chunk).await?;
    }
    let settings = RenderSettings::default();
    while store.fan_out(&settings, 1000).await? > 0 {}
    let total = (events * channels) as u64;

    let shutdown = CancellationToken::new();
    // Stops the worker on every way out, not only after a complete drain.
    let _stop = shutdown.clone().drop_guard();
    let worker = worker(&store, o, &shutdown)?;
    // A marker on stderr, so a profiler can attach for the drain alone.
    eprintln!("drain: {total} deliveries queued; draining");
    let started = Instant::now();
    let task = tokio::spawn(worker.run(shutdown.clone()));
    let deadline = started + o.drain_timeout;
    while counter.count.load(Ordering::Relaxed) < total {
        if task.is_finished() {
            let delivered = counter.count.load(Ordering::Relaxed);
            task.await??;
            bail!("the worker stopped after {delivered} of {total} deliveries");
        }
        if Instant::now() > deadline {
            let delivered = counter.count.load(Ordering::Relaxed);
            bail!("drain did not finish in {:?}: {delivered} of {total} delivered", o.drain_timeout);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    task.await??;
    store.close().await;
    Ok(total as f64 / elapsed)
}

fn worker(store: &Store, o: &Options, _shutdown: &CancellationToken) -> anyhow::Result<Worker> {
    let sender = Sender::new(&SenderConfig {
        request_timeout: Duration::from_secs(15),
        connect_timeout: Duration::from_secs(5),
        signature_header: "x-infisical-signature".into(),
        guard: Arc::new(Guard::new(vec!["127.0.0.0/8".parse()?])),
        ca_bundle: None,
    })?;
    Ok(Worker::new(
        store.clone(),
        sender,
        WorkerConfig {
            render: RenderSettings::default(),
            retry: certhook_core::retry::RetryPolicy::default(),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(50),
            concurrency: o.concurrency,
            channel_concurrency: o.concurrency,
            breaker_threshold: 5,
            pagerduty_url: String::new(),
        },
        Metrics::new(),
    ))
}

/// `certhook serve` (the release binary beside this one) as a child process.
pub(crate) struct Serve {
    child: tokio::process::Child,
    pub(crate) base: String,
}

impl Serve {
    /// `serve` on `database_url` with the bench's in-process settings.
    pub(crate) async fn start(database_url: &str, o: &Options) -> anyhow::Result<Serve> {
        let concurrency = o.concurrency.to_string();
        Serve::start_with(
            database_url,
            &[
                ("CERTHOOK_DELIVERY__CONCURRENCY", concurrency.as_str()),
                ("CERTHOOK_DELIVERY__CHANNEL_CONCURRENCY", concurrency.as_str()),
            ],
        )
        .await
    }

    /// The release `certhook` beside this binary.
    pub(crate) fn exe() -> anyhow::Result<std::path::PathBuf> {
        let exe = std::env::current_exe()?.with_file_name("certhook");
        if !exe.exists() {
            bail!("{} not found: build it with `cargo build --release -p certhook`", exe.display());
        }
        Ok(exe)
    }

    /// `serve` at its defaults but for loopback delivery and a free port, plus `settings`.
    pub(crate) async fn start_with(database_url: &str, settings: &[(&str, &str)]) -> anyhow::Result<Serve> {
        let mut child = tokio::process::Command::new(Serve::exe()?)
            .arg("serve")
            .env("CERTHOOK_DATABASE_URL", database_url)
            .env("CERTHOOK_LISTEN", "127.0.0.1:0")
            .env("CERTHOOK_ALLOW_INSECURE_HTTP", "true")
            .env("CERTHOOK_ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]")
            .envs(settings.iter().copied())
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("certhook: listening on ") {
                    return Some(url.to_string());
                }
                // What serve says before it listens (why it exited, if it does) is shown too.
                eprintln!("serve: {line}");
            }
            None
        })
        .await
        .context("serve did not listen within 30 s")?
        .context("serve exited before listening (its stderr is above)")?;
        // serve runs with RUST_LOG=warn: whatever it still says is worth seeing.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("serve: {line}");
            }
        });
        Ok(Serve { child, base })
    }

    /// Fails if serve has exited (a crash would otherwise cost a whole drain timeout).
    pub(crate) fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("serve exited ({status}) before the last delivery (its stderr is above)");
        }
        Ok(())
    }

    /// The path and text of serve's `/proc/<pid>/<file>`, read for `what`; fails if serve
    /// has exited (its pid may be another process's by now).
    fn proc_file(&mut self, file: &str, what: &str) -> anyhow::Result<(String, String)> {
        if let Some(status) = self.child.try_wait()? {
            bail!("serve exited ({status}) before its {what} could be read");
        }
        let pid = self.child.id().context("serve has no pid")?;
        let path = format!("/proc/{pid}/{file}");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        Ok((path, text))
    }

    /// CPU time serve has used so far, user and system, in seconds.
    pub(crate) fn cpu_secs(&mut self) -> anyhow::Result<f64> {
        let (path, stat) = self.proc_file("stat", "CPU time")?;
        cpu_secs_of(&stat).with_context(|| format!("no utime and stime in {path}: {stat:?}"))
    }

    /// Peak RSS so far (VmHWM), in MB.
    pub(crate) fn rss_mb(&mut self) -> anyhow::Result<f64> {
        let (path, status) = self.proc_file("status", "RSS")?;
        let kb = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .with_context(|| format!("no VmHWM line in {path}"))?;
        Ok(kb.parse::<f64>().with_context(|| format!("VmHWM {kb:?} in {path}"))? / 1024.0)
    }
}

pub(crate) fn event_json(app: Uuid, i: usize) -> serde_json::Value {
    serde_json::json!({
        "type": "issuance", "applicationId": app,
        "certificate": {"serialNumber": i.to_string(), "commonName": format!("host-{i}.example.com"),
                        "san": [format!("host-{i}.example.com")], "profileName": "TLS Server",
                        "notBefore": "2024-01-01T00:00:00Z", "notAfter": "2030-01-01T00:00:00Z"}
    })
}

/// API ingest with 64 concurrent clients, `per_request` events per request.
pub async fn ingest(o: &Options, per_request: usize) -> anyhow::Result<f64> {
    let fresh = FreshDb::new(o, Db::Sqlite).await?;
    let store = Store::connect(&fresh.url).await?;
    let app = store.create_application("bench").await?.id;
    store.close().await;
    let serve = Serve::start(&fresh.url, o).await?;
    let client = reqwest::Client::new();
    let clients = 64;
    let requests = (o.ingest_events / per_request).max(clients);
    let per_client = requests / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base) = (client.clone(), serve.base.clone());
        tasks.push(tokio::spawn(async move {
            for r in 0..per_client {
                let first = (c * per_client + r) * per_request;
                let (path, body) = if per_request == 1 {
                    ("/v1/events", event_json(app, first))
                } else {
                    (
                        "/v1/events/batch",
                        serde_json::Value::Array((first..first + per_request).map(|i| event_json(app, i)).collect()),
                    )
                };
                let resp = client.post(format!("{base}{path}")).json(&body).send().await.expect("serve answers");
                assert_eq!(resp.status(), 202, "ingest refused");
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let rate = (clients * per_client * per_request) as f64 / started.elapsed().as_secs_f64();
    drop(serve);
    Ok(rate)
}

/// Enqueue-to-delivery latency at 200 events/s offered through the API.
pub async fn latency_runs(o: &Options) -> anyhow::Result<(Figure, Figure)> {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..o.runs {
        let (p50, p99) = latency(o).await?;
        p50s.push(p50);
        p99s.push(p99);
    }
    Ok((Figure::of(p50s), Figure::of(p99s)))
}

async fn latency(o: &Options) -> anyhow::Result<(f64, f64)> {
    let fresh = FreshDb::new(o, Db::Sqlite).await?;
    let store = Store::connect(&fresh.url).await?;
    let (url, counter) = receiver::start().await;
    counter.track.store(true, Ordering::Relaxed);
    let app = subscribe(&store, &url, 1).await?;
    store.close().await;
    let serve = Serve::start(&fresh.url, o).await?;
    let client = reqwest::Client::new();
    let total = (200 * o.latency_secs) as usize;
    let mut sent = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut inflight = Vec::new();
    for i in 0..total {
        tick.tick().await;
        let (client, base) = (client.clone(), serve.base.clone());
        sent.push(Instant::now());
        inflight.push(tokio::spawn(async move {
            let resp = client.post(format!("{base}/v1/events")).json(&event_json(app, i)).send().await?;
            resp.error_for_status().context("serve refused an event")?;
            anyhow::Ok(())
        }));
    }
    for t in inflight {
        t.await??;
    }
    // Waits on the arrivals themselves: the receiver counts a request before it records its
    // arrival, so a count that has reached `total` can run ahead of the map read below.
    let arrived = || counter.arrivals.lock().expect("lock").len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrived() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrivals = counter.arrivals.lock().expect("lock").clone();
    let mut ms: Vec<f64> = sent
        .iter()
        .enumerate()
        .filter_map(|(i, s)| arrivals.get(&i.to_string()).map(|a| a.duration_since(*s).as_secs_f64() * 1000.0))
        .collect();
    if ms.len() < total {
        bail!("only {} of {total} events arrived", ms.len());
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    drop(serve);
    Ok((p(0.50), p(0.99)))
}

/// User plus system CPU seconds from a `/proc/<pid>/stat` line. The command name in
/// parentheses may hold spaces, so fields are counted from its closing parenthesis:
/// utime and stime are the 14th and 15th fields, in clock ticks of 1/100 s (`USER_HZ`,
/// 100 on x86-64 and arm64, the machines this bench runs on).
pub(crate) fn cpu_secs_of(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let mut after_name = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    // The first field after the name is the 3rd (state): utime is 11 further on.
    let utime: u64 = after_name.nth(11)?.parse().ok()?;
    let stime: u64 = after_name.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_past_a_name_with_spaces() {
        let stat = "4242 (cert hook) S 1 4242 4242 0 -1 4194560 2100 0 0 0 1234 566 0 0 20 0 9 0 77 1 2 3";
        assert_eq!(cpu_secs_of(stat), Some(18.0));
        let odd = "4242 (a) b) S 1 4242 4242 0 -1 4194560 2100 0 0 0 300 200 0 0 20 0 9 0 77 1 2 3";
        assert_eq!(cpu_secs_of(odd), Some(5.0), "a ')' inside the name");
        assert_eq!(cpu_secs_of("4242 (certhook) S 1"), None, "too short");
        assert_eq!(cpu_secs_of("no name here"), None);
    }
}
