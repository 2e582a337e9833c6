//! `make bench`: certhook measured against the raw HTTP ceiling of the same receiver, in
//! one run, on loopback (SPEC §10). Every figure is the median of `--runs` runs with its
//! min–max; ratios are taken between figures of the same run.
//!
//! `--quick` runs a seconds-long smoke version (CI runs it so the harness cannot rot): any
//! figure that cannot be measured fails it. A full run reports such a figure as "not
//! measured" (and prints the error to stderr) where the figure depends on what the machine
//! offers (a PostgreSQL server; /proc for the RSS and serve's CPU time); every other
//! error fails it too.

mod claims;
mod pipeline;
mod receiver;
mod scenarios;
mod store_cost;

use std::fmt::Write as _;

use anyhow::Context;

/// The sections `--only` can name (by prefix).
const SECTIONS: [&str; 11] = [
    "pipeline-sqlite",
    "pipeline-postgres",
    "pipeline-processes",
    "drain-sqlite",
    "drain-postgres",
    "drain-fanout",
    "ingest",
    "latency",
    "claim",
    "store-sqlite",
    "store-postgres",
];

/// A row of the report: figure, median (min–max), ratio.
type Row = (String, String, String);

/// What to run.
pub struct Options {
    /// `--quick`: the smoke run, where nothing may go unmeasured.
    pub quick: bool,
    /// Runs per figure.
    pub runs: usize,
    /// Events in a drain.
    pub events: usize,
    /// Deliveries in a headline pipeline run (events = this / channels), and in a run of
    /// the store sections.
    pub pipeline_events: usize,
    /// Events for the ingest figures.
    pub ingest_events: usize,
    /// How long a drain may take before it counts as stuck.
    pub drain_timeout: std::time::Duration,
    /// Seconds of the latency run.
    pub latency_secs: u64,
    /// Rows waiting in the large claim test.
    pub claim_rows: usize,
    /// Requests in flight, for certhook and for the ceiling alike.
    pub concurrency: usize,
    /// PostgreSQL server for the PostgreSQL figures.
    pub postgres_url: String,
    /// Where to write the report (besides stdout).
    pub output: Option<String>,
    /// Only the sections whose names start with one of these (the 32-in-flight ceiling
    /// always runs; the one-channel ceiling with the pipeline sections).
    pub only: Vec<String>,
}

impl Options {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| section.starts_with(o.as_str()))
    }
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        quick: false,
        runs: 3,
        events: 100_000,
        pipeline_events: 60_000,
        ingest_events: 40_000,
        drain_timeout: std::time::Duration::from_secs(600),
        latency_secs: 20,
        claim_rows: 1_000_000,
        concurrency: 32,
        postgres_url: std::env::var("CERTHOOK_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        output: None,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => {
                o.quick = true;
                o.runs = 1;
                o.events = 2_000;
                o.pipeline_events = 2_000;
                o.ingest_events = 2_000;
                o.drain_timeout = std::time::Duration::from_secs(120);
                o.latency_secs = 3;
                o.claim_rows = 50_000;
            }
            "--runs" => o.runs = value("--runs")?.parse()?,
            "--events" => o.events = value("--events")?.parse()?,
            "--pipeline-events" => o.pipeline_events = value("--pipeline-events")?.parse()?,
            "--output" => o.output = Some(value("--output")?),
            "--only" => {
                o.only = value("--only")?.split(',').map(str::to_string).collect();
                // A name that selects nothing would silently measure only the ceiling.
                if let Some(bad) = o.only.iter().find(|n| !SECTIONS.iter().any(|s| s.starts_with(n.as_str()))) {
                    anyhow::bail!("--only: no section is named {bad:?} (sections: {})", SECTIONS.join(","));
                }
            }
            other => anyhow::bail!(
                "unknown argument {other:?} (use --quick, --runs N, --events N, --pipeline-events N, \
                 --only NAME,… with sections or prefixes of them: {}, --output FILE)",
                SECTIONS.join(",")
            ),
        }
    }
    anyhow::ensure!(o.runs >= 1, "--runs must be at least 1");
    Ok(o)
}

/// A figure that could not be measured. Under `--quick` (CI's smoke run) the error fails
/// the run, so a broken path cannot pass as a "not measured" row; in a full run the row
/// says "not measured" and the error also goes to stderr.
fn not_measured(o: &Options, rows: &mut Vec<Row>, figure: &str, e: anyhow::Error) -> anyhow::Result<()> {
    if o.quick {
        return Err(e.context(format!("{figure}: not measured (--quick fails on any figure it cannot measure)")));
    }
    eprintln!("certhook-bench: {figure}: not measured: {e:#}");
    rows.push((figure.into(), format!("not measured: {e:#}"), "-".into()));
    Ok(())
}

/// A pipeline case's row, and below it serve's CPU per delivery in the same runs (or why
/// that was not measured: the rate stands either way).
fn push_pipeline(
    o: &Options,
    rows: &mut Vec<Row>,
    label: String,
    runs: Vec<pipeline::Measured>,
    ratio: impl Fn(&Figure) -> String,
) -> anyhow::Result<()> {
    let rate = Figure::of(runs.iter().map(|m| m.rate).collect());
    let cpu = runs.into_iter().map(|m| m.cpu_us).collect::<anyhow::Result<Vec<_>>>().map(Figure::of);
    let cpu_label = format!("serve's CPU per delivery (user + system, same runs): {label}");
    rows.push((label, rate.show("deliveries/s"), ratio(&rate)));
    match cpu {
        Ok(cpu) => rows.push((cpu_label, cpu.show("µs"), "-".into())),
        Err(e) => not_measured(o, rows, &cpu_label, e)?,
    }
    Ok(())
}

/// Median, min and max of a set of measurements.
pub struct Figure {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Figure {
    pub fn of(mut xs: Vec<f64>) -> Figure {
        xs.sort_by(|a, b| a.total_cmp(b));
        Figure { median: xs[xs.len() / 2], min: xs[0], max: xs[xs.len() - 1] }
    }

    fn show(&self, unit: &str) -> String {
        format!("{:.0} {unit} ({:.0}–{:.0})", self.median, self.min, self.max)
    }

    fn show_ms(&self) -> String {
        format!("{:.1} ms ({:.1}–{:.1})", self.median, self.min, self.max)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let o = parse_args()?;
    let mut rows: Vec<Row> = Vec::new();
    let ceiling = scenarios::repeat(o.runs, || scenarios::ceiling(&o)).await?;
    rows.push((
        format!("raw HTTP ceiling (keep-alive client, {} in flight)", o.concurrency),
        ceiling.show("req/s"),
        "1.00".into(),
    ));
    let ratio = |f: &Figure| format!("{:.2}", f.median / ceiling.median);
    if SECTIONS.iter().any(|s| s.starts_with("pipeline") && o.wants(s)) {
        // The most one channel can get at the default `channel_concurrency` if sending took
        // nothing but the request: an upper bound for the 1-channel rows.
        let cap = certhook_core::config::DeliveryConfig::default().channel_concurrency;
        let one_channel = scenarios::repeat(o.runs, || scenarios::ceiling_at(&o, cap)).await?;
        rows.push((
            format!("raw HTTP ceiling (keep-alive client, {cap} in flight: one channel's default cap)"),
            one_channel.show("req/s"),
            ratio(&one_channel),
        ));
    }

    // The headline: the release serve at its defaults, enqueue to last delivery.
    use pipeline::{Case, Feed};
    for db in [scenarios::Db::Sqlite, scenarios::Db::Postgres] {
        let section = match db {
            scenarios::Db::Sqlite => "pipeline-sqlite",
            scenarios::Db::Postgres => "pipeline-postgres",
        };
        if !o.wants(section) {
            continue;
        }
        for (channels, feed) in [(1, Feed::File), (10, Feed::File), (1, Feed::Api), (10, Feed::Api)] {
            let case = Case { db, channels, feed, processes: 1 };
            let label = case.label(o.pipeline_events);
            match scenarios::each_run(o.runs, || pipeline::run(&o, case)).await {
                Ok(runs) => push_pipeline(&o, &mut rows, label, runs, ratio)?,
                Err(e) if matches!(db, scenarios::Db::Postgres) => not_measured(&o, &mut rows, &label, e)?,
                Err(e) => return Err(e.context(label)),
            }
        }
    }
    if o.wants("pipeline-processes") {
        for processes in [1, 2, 4] {
            let case = Case { db: scenarios::Db::Postgres, channels: 1, feed: Feed::File, processes };
            let label = case.label(o.pipeline_events);
            match scenarios::each_run(o.runs, || pipeline::run(&o, case)).await {
                Ok(runs) => push_pipeline(&o, &mut rows, label, runs, ratio)?,
                Err(e) => not_measured(&o, &mut rows, &label, e)?,
            }
        }
    }

    if o.wants("drain-sqlite") {
        let sqlite = scenarios::repeat(o.runs, || scenarios::drain(&o, scenarios::Db::Sqlite, 1)).await?;
        rows.push((
            format!("drain {} events, SQLite, 1 channel", o.events),
            sqlite.show("deliveries/s"),
            ratio(&sqlite),
        ));
    }
    if o.wants("drain-postgres") {
        match scenarios::repeat(o.runs, || scenarios::drain(&o, scenarios::Db::Postgres, 1)).await {
            Ok(pg) => rows.push((
                format!("drain {} events, PostgreSQL, 1 channel", o.events),
                pg.show("deliveries/s"),
                ratio(&pg),
            )),
            Err(e) => not_measured(&o, &mut rows, "drain, PostgreSQL", e)?,
        }
    }
    if o.wants("drain-fanout") {
        let fan = scenarios::repeat(o.runs, || scenarios::drain(&o, scenarios::Db::Sqlite, 10)).await?;
        rows.push((
            format!("drain {} deliveries, SQLite, fan-out to 10 channels", o.events),
            fan.show("deliveries/s"),
            ratio(&fan),
        ));
    }
    if o.wants("ingest") {
        let single = scenarios::repeat(o.runs, || scenarios::ingest(&o, 1)).await?;
        rows.push(("API ingest, single events, 64 clients".into(), single.show("events/s"), "-".into()));
        let batch = scenarios::repeat(o.runs, || scenarios::ingest(&o, 100)).await?;
        rows.push(("API ingest, batches of 100, 64 clients".into(), batch.show("events/s"), "-".into()));
    }
    if o.wants("latency") {
        let (p50, p99) = scenarios::latency_runs(&o).await?;
        rows.push((
            format!("enqueue→delivery p50 at 200 events/s for {} s", o.latency_secs),
            p50.show_ms(),
            "-".into(),
        ));
        rows.push((
            format!("enqueue→delivery p99 at 200 events/s for {} s", o.latency_secs),
            p99.show_ms(),
            "-".into(),
        ));
    }
    if o.wants("claim") {
        let claims = claims::claims(&o).await?;
        rows.push(("claim rate, 10,000 rows waiting".into(), claims.small.show("rows/s"), "-".into()));
        rows.push((
            format!("claim rate, {} rows waiting", o.claim_rows),
            claims.large.show("rows/s"),
            format!("{:.2} × the 10k rate", claims.large.median / claims.small.median),
        ));
        let rss = format!("serve peak RSS, {} rows waiting", o.claim_rows);
        match claims.rss_mb {
            Ok(mb) => rows.push((rss, format!("{mb:.1} MB"), "-".into())),
            Err(e) => not_measured(&o, &mut rows, &rss, e)?,
        }
    }

    for (db, section) in [(scenarios::Db::Sqlite, "store-sqlite"), (scenarios::Db::Postgres, "store-postgres")] {
        if !o.wants(section) {
            continue;
        }
        for channels in [1, 10] {
            let label = format!(
                "store's CPU per delivery, {}, {channels} channel{}, no HTTP: \
                 fan-out + claim + outcome write (the enqueue apart)",
                db.name(),
                if channels == 1 { "" } else { "s" }
            );
            let costs = match scenarios::each_run(o.runs, || store_cost::run(&o, db, channels)).await {
                Ok(costs) => costs,
                Err(e) if matches!(db, scenarios::Db::Postgres) => {
                    not_measured(&o, &mut rows, &label, e)?;
                    continue;
                }
                Err(e) => return Err(e.context(label)),
            };
            // The stages of the run whose total is the median, so that they add up to it.
            let show = |side: fn(&store_cost::Cost) -> f64| {
                let total = Figure::of(costs.iter().map(|c| c.hot_path(side)).collect());
                let median = costs.iter().find(|c| c.hot_path(side) == total.median).expect("the median is a run's");
                format!(
                    "{:.1} + {:.1} + {:.1} = {} (enqueue {:.1} µs)",
                    side(&median.fan_out),
                    side(&median.claim),
                    side(&median.record),
                    total.show("µs"),
                    side(&median.enqueue),
                )
            };
            let value = match db {
                scenarios::Db::Sqlite => show(|c| c.process),
                // The server's CPU is PostgreSQL's processes for this database, from /proc;
                // each half is its own median run.
                scenarios::Db::Postgres => format!(
                    "bench process (store code, sqlx): {}; PostgreSQL server processes: {}",
                    show(|c| c.process),
                    show(|c| c.server)
                ),
            };
            rows.push((label, value, "-".into()));
        }
    }

    let mut report = String::new();
    let _ = writeln!(report, "| figure | median (min–max) | ratio to ceiling |");
    let _ = writeln!(report, "| --- | --- | --- |");
    for (name, value, ratio) in &rows {
        let _ = writeln!(report, "| {name} | {value} | {ratio} |");
    }
    println!("{report}");
    if let Some(path) = &o.output {
        std::fs::write(path, &report).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
