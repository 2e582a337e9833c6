//! The store's share of a delivery on SQLite: the CPU that the hot path's database work
//! costs per delivery (fan-out, claims, outcome writes, and apart from them the enqueue),
//! run in this process with no HTTP at all. SQLite runs inside the process, so its CPU is
//! all counted; set beside serve's CPU per delivery in the pipeline rows, it splits a
//! delivery's cost into the store's part and the rest (sending, signing, the loop).
//!
//! The stages run one after another, a batch at a time, as the worker runs them but
//! without the sends in between: claim a batch, record it delivered, claim the next.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail};
use certhook_core::event::{AlertType, NewEvent};
use certhook_core::render::RenderSettings;
use certhook_store::{AttemptRecord, ClaimRequest, Disposition, Outcome, Store};

use crate::Options;
use crate::scenarios::{Db, FreshDb, certificate, subscribe};

/// Leases per claim: what the worker's refill asks for at the defaults (two rounds of the
/// global concurrency, less what is in flight).
const CLAIM_BATCH: usize = 256;

/// Microseconds of CPU per delivery, by stage, in one run.
pub struct StoreCost {
    pub enqueue: f64,
    pub fan_out: f64,
    pub claim: f64,
    pub record: f64,
}

impl StoreCost {
    /// What serve's hot path costs the store: fan-out, claim and outcome write.
    pub fn hot_path(&self) -> f64 {
        self.fan_out + self.claim + self.record
    }
}

/// CPU time of this process so far, in nanoseconds: the sum over its threads of the time
/// each has run (`/proc/self/task/*/schedstat`), which unlike `/proc/self/stat` counts to
/// the nanosecond, so a single claim can be timed.
fn cpu_ns() -> anyhow::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")? {
        let path = task?.path().join("schedstat");
        // A thread that ended since the listing has no file any more; its time is gone
        // with it either way.
        let Ok(stat) = std::fs::read_to_string(&path) else { continue };
        total += schedstat_ns(&stat).with_context(|| format!("{}: {stat:?}", path.display()))?;
    }
    Ok(total)
}

/// The time on CPU from a `schedstat` line: its first field, in nanoseconds.
fn schedstat_ns(line: &str) -> anyhow::Result<u64> {
    Ok(line.split_whitespace().next().context("an empty schedstat")?.parse()?)
}

/// The CPU `f` takes, in nanoseconds, and what it returns.
async fn timed<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<(u64, T)> {
    let before = cpu_ns()?;
    let out = f.await?;
    Ok((cpu_ns()?.saturating_sub(before), out))
}

/// One run: `o.pipeline_events` deliveries over `channels` channels of one alert.
pub async fn run(o: &Options, channels: usize) -> anyhow::Result<StoreCost> {
    let fresh = FreshDb::new(o, Db::Sqlite).await?;
    let measured = run_in(o, &fresh, channels).await;
    fresh.finish(measured).await
}

async fn run_in(o: &Options, fresh: &FreshDb, channels: usize) -> anyhow::Result<StoreCost> {
    let store = Store::connect(&fresh.url).await?;
    // Nothing is sent: the channels only have to exist and be active.
    let app = subscribe(&store, "http://127.0.0.1:9/", channels).await?;
    let events = o.pipeline_events / channels;
    let total = events * channels;
    let far = chrono::Utc::now() + chrono::Duration::days(300);
    let batch: Vec<NewEvent> = (0..events)
        .map(|i| NewEvent {
            event_type: AlertType::Issuance,
            application_id: app,
            idempotency_key: None,
            certificate: certificate(i, far),
        })
        .collect();
    let (enqueue, ()) = timed(async {
        // The chunks `enqueue --file` writes.
        for chunk in batch.chunks(1000) {
            store.enqueue(chunk).await?;
        }
        Ok(())
    })
    .await?;
    let settings = RenderSettings::default();
    let (fan_out, fanned) = timed(async {
        let mut fanned = 0;
        loop {
            let n = store.fan_out(&settings, certhook_worker::fan_out::FAN_OUT_BATCH).await?;
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
    let (mut claim, mut record, mut settled) = (0, 0, 0);
    while settled < total {
        let request = ClaimRequest {
            limit: CLAIM_BATCH,
            lease: Duration::from_secs(600),
            per_channel: CLAIM_BATCH,
            exclude: &[],
            channel_limits: &[],
        };
        let (ns, claimed) = timed(async { Ok(store.claim_with(&request).await?) }).await?;
        claim += ns;
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
        let (ns, accepted) = timed(async { Ok(store.record(&outcomes).await?) }).await?;
        record += ns;
        if accepted.iter().any(|a| !a) {
            bail!("an outcome was refused with no one else claiming");
        }
        settled += outcomes.len();
    }
    store.close().await;
    let per = |ns: u64| ns as f64 / 1000.0 / total as f64;
    Ok(StoreCost { enqueue: per(enqueue), fan_out: per(fan_out), claim: per(claim), record: per(record) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_time_on_cpu_from_schedstat() {
        assert_eq!(schedstat_ns("123456789 2000 17\n").unwrap(), 123_456_789);
        assert!(schedstat_ns("").is_err());
        assert!(schedstat_ns("x 1 2").is_err());
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let before = cpu_ns().unwrap();
        // Work the optimiser cannot drop.
        let sum: u64 = (0..2_000_000u64).map(std::hint::black_box).sum();
        assert!(sum > 0);
        assert!(cpu_ns().unwrap() > before, "time on CPU grows while this thread runs");
    }
}
