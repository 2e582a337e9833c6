//! `make bench`: certhook measured against the raw HTTP ceiling of the same receiver, in
//! one run, on loopback (SPEC §10). Every figure is the median of `--runs` runs with its
//! min–max; ratios are taken between figures of the same run.
//!
//! `--quick` runs a seconds-long smoke version (CI runs it so the harness cannot rot).

mod receiver;
mod scenarios;

use std::fmt::Write as _;

use anyhow::Context;

/// What to run.
pub struct Options {
    /// Runs per figure.
    pub runs: usize,
    /// Events in a drain.
    pub events: usize,
    /// Events for the ingest figures.
    pub ingest_events: usize,
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
    /// Only the sections whose names start with one of these (ceiling always runs).
    pub only: Vec<String>,
}

impl Options {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| section.starts_with(o.as_str()))
    }
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        runs: 3,
        events: 100_000,
        ingest_events: 40_000,
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
                o.runs = 1;
                o.events = 2_000;
                o.ingest_events = 2_000;
                o.latency_secs = 3;
                o.claim_rows = 50_000;
            }
            "--runs" => o.runs = value("--runs")?.parse()?,
            "--events" => o.events = value("--events")?.parse()?,
            "--output" => o.output = Some(value("--output")?),
            "--only" => o.only = value("--only")?.split(',').map(str::to_string).collect(),
            other => anyhow::bail!(
                "unknown argument {other:?} (use --quick, --runs N, --events N, --only drain,drain-sqlite,drain-postgres,drain-fanout,ingest,latency,claim, --output FILE)"
            ),
        }
    }
    Ok(o)
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
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let ceiling = scenarios::repeat(o.runs, || scenarios::ceiling(&o)).await?;
    rows.push((
        format!("raw HTTP ceiling (keep-alive client, {} in flight)", o.concurrency),
        ceiling.show("req/s"),
        "1.00".into(),
    ));
    let ratio = |f: &Figure| format!("{:.2}", f.median / ceiling.median);

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
            Err(e) => rows.push(("drain, PostgreSQL".into(), format!("not measured: {e:#}"), "-".into())),
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
        let claims = scenarios::claims(&o).await?;
        rows.push(("claim rate, 10,000 rows waiting".into(), claims.small.show("rows/s"), "-".into()));
        rows.push((
            format!("claim rate, {} rows waiting", o.claim_rows),
            claims.large.show("rows/s"),
            format!("{:.2} × the 10k rate", claims.large.median / claims.small.median),
        ));
        rows.push((
            format!("serve peak RSS, {} rows waiting", o.claim_rows),
            format!("{:.1} MB", claims.rss_mb),
            "-".into(),
        ));
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
