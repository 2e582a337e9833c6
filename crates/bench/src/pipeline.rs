//! The headline scenario (SPEC §10): the whole pipeline as a user runs it. The release
//! `certhook serve` (one or more child processes) at its default settings — only the
//! loopback and plain-HTTP overrides — delivers `N` events to the bench receiver, timed
//! from serve's start to the last delivery. The events are either enqueued beforehand with
//! `certhook enqueue --file` (a backlog) or posted through the API at full speed while
//! serve runs; fan-out, claims, sends and outcome writes are all inside the timing.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certhook_store::Store;

use crate::Options;
use crate::receiver;
use crate::scenarios::{Db, FreshDb, Serve, event_json, subscribe};

/// How the events reach certhook.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// `certhook enqueue --file` before serve starts: a backlog.
    File,
    /// `POST /v1/events/batch` (100 events a request, 16 clients) while serve runs.
    Api,
}

/// One configuration of the headline scenario.
#[derive(Clone, Copy)]
pub struct Case {
    /// The database.
    pub db: Db,
    /// Channels on the one alert; each event goes to all of them.
    pub channels: usize,
    /// How events arrive.
    pub feed: Feed,
    /// `serve` processes sharing the database.
    pub processes: usize,
}

impl Case {
    /// The row's label.
    pub fn label(&self, deliveries: usize) -> String {
        let feed = match self.feed {
            Feed::File => "enqueue --file backlog",
            Feed::Api => "API batches while serving",
        };
        let processes =
            if self.processes == 1 { String::new() } else { format!(", {} serve processes", self.processes) };
        format!(
            "pipeline at defaults: {deliveries} deliveries, {}, {} channel{}, {feed}{processes}",
            self.db.name(),
            self.channels,
            if self.channels == 1 { "" } else { "s" },
        )
    }
}

/// What one run of a case measured.
pub struct Measured {
    /// Deliveries per second, serve's start to the last delivery.
    pub rate: f64,
    /// serve's CPU time (user and system, all processes) per delivery, in µs: what a
    /// change meant to save CPU has to lower. An error if /proc could not be read.
    pub cpu_us: anyhow::Result<f64>,
}

/// Runs one case.
pub async fn run(o: &Options, case: Case) -> anyhow::Result<Measured> {
    let fresh = FreshDb::new(o, case.db).await?;
    let measured = run_in(o, &fresh, case).await;
    fresh.finish(measured).await
}

async fn run_in(o: &Options, fresh: &FreshDb, case: Case) -> anyhow::Result<Measured> {
    let store = Store::connect(&fresh.url).await?;
    let (url, counter) = receiver::start().await;
    let app = subscribe(&store, &url, case.channels).await?;
    store.close().await;
    let events = o.pipeline_events / case.channels;
    let total = (events * case.channels) as u64;
    anyhow::ensure!(total > 0, "--pipeline-events {} is fewer than one event per channel", o.pipeline_events);

    if case.feed == Feed::File {
        let dir = tempfile_dir()?;
        let path = dir.0.join("events.ndjson");
        let mut ndjson = String::with_capacity(events * 300);
        for i in 0..events {
            ndjson.push_str(&event_json(app, i).to_string());
            ndjson.push('\n');
        }
        std::fs::write(&path, ndjson)?;
        let out = tokio::process::Command::new(Serve::exe()?)
            .args(["enqueue", "--file"])
            .arg(&path)
            .env("CERTHOOK_DATABASE_URL", &fresh.url)
            .env("RUST_LOG", "warn")
            .output()
            .await?;
        if !out.status.success() {
            bail!("certhook enqueue --file failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    eprintln!("pipeline: {total} deliveries; serving");
    let started = Instant::now();
    let mut serves = Vec::with_capacity(case.processes);
    for _ in 0..case.processes {
        serves.push(Serve::start_with(&fresh.url, &[]).await?);
    }
    if case.feed == Feed::Api {
        post_all(&serves, app, events).await?;
    }
    let deadline = started + o.drain_timeout;
    while counter.count.load(Ordering::Relaxed) < total {
        for serve in &mut serves {
            serve.check_running()?;
        }
        if Instant::now() > deadline {
            let delivered = counter.count.load(Ordering::Relaxed);
            bail!("the pipeline did not finish in {:?}: {delivered} of {total} delivered", o.drain_timeout);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu: anyhow::Result<f64> = serves.iter_mut().map(Serve::cpu_secs).sum();
    drop(serves);
    Ok(Measured { rate: total as f64 / elapsed, cpu_us: cpu.map(|secs| secs * 1e6 / total as f64) })
}

/// Posts `events` events in batches of 100 from 16 clients, spread over the serve processes.
async fn post_all(serves: &[Serve], app: uuid::Uuid, events: usize) -> anyhow::Result<()> {
    const CLIENTS: usize = 16;
    const BATCH: usize = 100;
    let client = reqwest::Client::new();
    let batches: Vec<std::ops::Range<usize>> =
        (0..events).step_by(BATCH).map(|first| first..(first + BATCH).min(events)).collect();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let batches = std::sync::Arc::new(batches);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let base = serves[c % serves.len()].base.clone();
        let (client, next, batches) = (client.clone(), next.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(range) = batches.get(i) else { return anyhow::Ok(()) };
                let body = serde_json::Value::Array(range.clone().map(|n| event_json(app, n)).collect());
                let resp = client.post(format!("{base}/v1/events/batch")).json(&body).send().await?;
                let status = resp.status();
                if status != 202 {
                    bail!("ingest refused with {status}: {}", resp.text().await.unwrap_or_default());
                }
            }
        }));
    }
    for t in tasks {
        t.await?.context("posting events")?;
    }
    Ok(())
}

/// A temporary directory for the NDJSON file, removed on drop.
fn tempfile_dir() -> anyhow::Result<crate::scenarios::TempDir> {
    let dir = std::env::temp_dir().join(format!("certhook-bench-feed-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(crate::scenarios::TempDir(dir))
}
