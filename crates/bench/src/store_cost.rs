//! The store's share of a delivery: the CPU that the hot path's database work costs per
//! delivery (fan-out, claims, outcome writes, and apart from them the enqueue), run in
//! this process with no HTTP at all. SQLite runs inside the process, so its CPU is all in
//! the process's own; set beside serve's CPU per delivery in the pipeline rows, it splits
//! a delivery's cost into the store's part and the rest (sending, signing, the loop).
//! PostgreSQL's own CPU is read from `/proc` for the server processes serving the
//! measured database, which works when the server runs on this machine.
//!
//! The stages run one after another as the worker runs them, without the sends in
//! between, and in the worker's sizes at its defaults in steady state (see
//! [`steady_claim`]): claims as its refill makes them for busy channels, outcome writes of
//! [`RECORD_BATCH`], the enqueue in the API cases' batches of [`ENQUEUE_BATCH`]. The
//! store work serve does beside these (channel reloads, lease extensions) is left out.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail};
use certhook_core::render::RenderSettings;
use certhook_store::{AttemptRecord, ClaimRequest, Disposition, Outcome, Store};
use sqlx::Connection;

use crate::Options;
use crate::scenarios::{Db, FreshDb, cpu_secs_of, issuance_events, subscribe};

/// Outcomes per write, assumed: the recorder writes what has arrived since its last write,
/// which at a few thousand deliveries a second is tens of outcomes, not its maximum of 256.
const RECORD_BATCH: usize = 64;

/// Events per enqueue: what the API cases post per request.
const ENQUEUE_BATCH: usize = 100;

/// A claim as the worker's refill makes it at the defaults for `channels` busy channels,
/// in steady state: each channel may hold its allowance (a busy channel's is
/// `delivery.concurrency`), the loop at most twice `delivery.concurrency` in all. With many
/// channels the loop's bound decides: it refills once half a round is free. With one, the
/// channel's room does, and the size is assumed: half its allowance, between the quarter
/// at which the loop claims for it and the 97–121 leases measured (BENCHMARKS,
/// "2026-12-01"). The leases wanted, each channel's room, and the limit for a channel the
/// claim does not name (the refill's: two rounds of `delivery.channel_concurrency`).
fn steady_claim(channels: usize) -> (usize, usize, usize) {
    let d = certhook_core::config::DeliveryConfig::default();
    let horizon = certhook_worker::budget::horizon(d.lease_duration);
    let allowance = certhook_worker::budget::allowance(d.channel_concurrency, f64::MAX, horizon, d.concurrency);
    let held = (allowance / 2).min((2 * d.concurrency - d.concurrency / 2) / channels);
    let in_flight = d.channel_concurrency.min(held) * channels;
    let limit = certhook_worker::refill::refill_size(d.concurrency, in_flight, held * channels - in_flight)
        .unwrap_or(d.concurrency);
    (limit, allowance - held, 2 * d.channel_concurrency)
}

/// Microseconds of CPU per delivery in one stage: this process's, and the database
/// server's (zero for SQLite, which runs in this process).
#[derive(Clone, Copy, Default)]
pub struct Cost {
    /// This process's: certhook's store code, sqlx, and SQLite itself.
    pub process: f64,
    /// PostgreSQL's server processes for the measured database.
    pub server: f64,
}

/// Microseconds of CPU per delivery, by stage, in one run.
pub struct StoreCost {
    /// Writing the events to the outbox (serve's only in the API cases).
    pub enqueue: Cost,
    /// Turning events into messages and deliveries.
    pub fan_out: Cost,
    /// Leasing due deliveries.
    pub claim: Cost,
    /// Writing their outcomes (delivered, with an attempt each).
    pub record: Cost,
}

impl StoreCost {
    /// What serve's hot path costs the store: fan-out, claim and outcome write.
    pub fn hot_path(&self, side: fn(&Cost) -> f64) -> f64 {
        side(&self.fan_out) + side(&self.claim) + side(&self.record)
    }
}

/// CPU time of this process so far, in nanoseconds, every thread's (ended ones too), up
/// to date for the calling thread.
fn cpu_ns() -> anyhow::Result<u64> {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// A CPU clock's reading, in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> anyhow::Result<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes one timespec through the pointer, and `ts` is a
    // valid, writable one that outlives the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    anyhow::ensure!(rc == 0, "clock_gettime({clock}): {}", std::io::Error::last_os_error());
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// CPU in nanoseconds, this process's and the server's, summed over the timed stages.
#[derive(Clone, Copy, Default)]
struct Spent {
    process: u64,
    server: u64,
}

impl std::ops::AddAssign for Spent {
    fn add_assign(&mut self, other: Spent) {
        self.process += other.process;
        self.server += other.server;
    }
}

/// Reads the CPU the stages spend.
struct Meter {
    /// PostgreSQL: a connection of its own, which lists the server processes serving the
    /// measured database (its own left out); none for SQLite.
    monitor: Option<sqlx::PgConnection>,
    /// CPU of each server process when last read, in nanoseconds: a process that
    /// appears counts from its start, and one that ends keeps what it was counted.
    seen: HashMap<i32, u64>,
}

impl Meter {
    async fn new(db: Db, url: &str) -> anyhow::Result<Meter> {
        let monitor = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(sqlx::PgConnection::connect(url).await?),
        };
        Ok(Meter { monitor, seen: HashMap::new() })
    }

    /// The server's CPU since the last reading, in nanoseconds (whole clock ticks of
    /// 10 ms: a single claim is mostly 0 or 1 tick, but the ticks add up over a run).
    async fn server_delta(&mut self) -> anyhow::Result<u64> {
        let Some(monitor) = &mut self.monitor else { return Ok(0) };
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(monitor)
        .await?;
        let mut delta = 0;
        let mut read = 0;
        for pid in pids {
            let path = format!("/proc/{pid}/stat");
            let stat = match std::fs::read_to_string(&path) {
                Ok(stat) => stat,
                // A server process that ended since the listing is read no more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {path}: is the server on this machine?")),
            };
            // A pid of another process namespace (a server in a container) would name an
            // unrelated process here: only PostgreSQL's own are counted.
            anyhow::ensure!(
                stat.contains(" (postgres) "),
                "{path} is not a PostgreSQL server process: the server's CPU can only be read on its own machine"
            );
            read += 1;
            let secs = cpu_secs_of(&stat).with_context(|| format!("no utime and stime in {path}: {stat:?}"))?;
            let ns = (secs * 1e9) as u64;
            delta += ns.saturating_sub(self.seen.insert(pid, ns).unwrap_or(0));
        }
        anyhow::ensure!(read > 0, "no PostgreSQL server process of this database could be read in /proc");
        Ok(delta)
    }

    /// The CPU `f` takes, and what it returns.
    async fn timed<T>(&mut self, f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<(Spent, T)> {
        self.server_delta().await?;
        let before = cpu_ns()?;
        let out = f.await?;
        let process = cpu_ns()? - before;
        Ok((Spent { process, server: self.server_delta().await? }, out))
    }
}

/// One run: `o.pipeline_events` deliveries over `channels` channels of one alert.
pub async fn run(o: &Options, db: Db, channels: usize) -> anyhow::Result<StoreCost> {
    let fresh = FreshDb::new(o, db).await?;
    let measured = run_in(o, &fresh, db, channels).await;
    fresh.finish(measured).await
}

async fn run_in(o: &Options, fresh: &FreshDb, db: Db, channels: usize) -> anyhow::Result<StoreCost> {
    let store = Store::connect(&fresh.url).await?;
    let mut meter = Meter::new(db, &fresh.url).await?;
    // Nothing is sent: the channels only have to exist and be active.
    let app = subscribe(&store, "http://127.0.0.1:9/", channels).await?;
    let events = o.pipeline_events / channels;
    let total = events * channels;
    anyhow::ensure!(total > 0, "{} deliveries cannot be spread over {channels} channels", o.pipeline_events);
    let batch = issuance_events(app, events);
    let (enqueue, ()) = meter
        .timed(async {
            for chunk in batch.chunks(ENQUEUE_BATCH) {
                store.enqueue(chunk).await?;
            }
            Ok(())
        })
        .await?;
    let settings = RenderSettings::default();
    let (fan_out, fanned) = meter
        .timed(async {
            let mut fanned = 0;
            loop {
                let n = store.fan_out(&settings, certhook_worker::fan_out::fan_out_batch(store.kind())).await?;
                if n == 0 {
                    return Ok(fanned);
                }
                fanned += n;
            }
        })
        .await?;
    if fanned != events {
        bail!("fanned out {fanned} of {events} events");
    }
    let (limit, room, per_channel) = steady_claim(channels);
    let channel_limits: Vec<(uuid::Uuid, usize)> =
        store.list_channels(None).await?.into_iter().map(|c| (c.id, room)).collect();
    let request = ClaimRequest {
        limit,
        lease: Duration::from_secs(600),
        per_channel,
        exclude: &[],
        channel_limits: &channel_limits,
    };
    let (mut claim, mut record, mut settled) = (Spent::default(), Spent::default(), 0);
    while settled < total {
        let (spent, claimed) = meter.timed(async { Ok(store.claim_with(&request).await?) }).await?;
        claim += spent;
        if claimed.leases.is_empty() {
            bail!("the queue ran dry after {settled} of {total}");
        }
        let now = chrono::Utc::now();
        let outcomes: Vec<Outcome> = claimed
            .leases
            .into_iter()
            .map(|lease| Outcome {
                lease,
                attempt: Some(AttemptRecord {
                    started_at: now,
                    duration: Duration::from_millis(1),
                    status_code: Some(204),
                    error: None,
                    response_snippet: None,
                }),
                disposition: Disposition::Delivered,
            })
            .collect();
        for chunk in outcomes.chunks(RECORD_BATCH) {
            let (spent, accepted) = meter.timed(async { Ok(store.record(chunk).await?) }).await?;
            record += spent;
            if accepted.iter().any(|a| !a) {
                bail!("an outcome was refused with no one else claiming");
            }
        }
        settled += outcomes.len();
    }
    store.close().await;
    let per = |s: Spent| Cost {
        process: s.process as f64 / 1000.0 / total as f64,
        server: s.server as f64 / 1000.0 / total as f64,
    };
    Ok(StoreCost { enqueue: per(enqueue), fan_out: per(fan_out), claim: per(claim), record: per(record) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns CPU on the calling thread for about `ms` milliseconds of its own CPU time.
    fn burn(ms: u64) {
        let thread_ns = || clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).unwrap();
        let until = thread_ns() + ms * 1_000_000;
        let mut x = 0u64;
        while thread_ns() < until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn the_process_clock_keeps_what_an_ended_thread_used() {
        let before = cpu_ns().unwrap();
        std::thread::spawn(|| burn(30)).join().unwrap();
        let used = cpu_ns().unwrap() - before;
        assert!(used >= 29_000_000, "a thread that ended still counts: {used} ns");
    }

    #[test]
    fn the_steady_claims_are_the_worker_s_at_its_defaults() {
        // One channel: it holds half of its allowance of 256, i.e. 128, 8 of them in flight;
        // the loop may hold 512.
        assert_eq!(steady_claim(1), (384, 128, 16));
        // Ten: the loop's bound (512, refilling once 128 are free) splits ten ways.
        assert_eq!(steady_claim(10), (132, 218, 16));
    }
}
