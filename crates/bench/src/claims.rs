//! Claim scaling and memory: the claim rate with 10,000 rows waiting against the rate with
//! `--claim-rows` (a million by default), and `serve`'s peak RSS with the large queue.

use std::time::{Duration, Instant};

use anyhow::bail;
use certhook_store::Store;

use crate::receiver;
use crate::scenarios::{Db, FreshDb, Serve, subscribe};
use crate::{Figure, Options};

/// Claim rates with 10,000 and with `o.claim_rows` rows waiting, and serve's peak RSS
/// with the large queue.
pub struct Claims {
    pub small: Figure,
    pub large: Figure,
    /// Or why it could not be read.
    pub rss_mb: anyhow::Result<f64>,
}

async fn filled(o: &Options, rows: usize, url: &str) -> anyhow::Result<(FreshDb, Store)> {
    let fresh = FreshDb::new(o, Db::Sqlite).await?;
    let store = Store::connect(&fresh.url).await?;
    let app = subscribe(&store, url, 1).await?;
    let channel = store.list_channels(None).await?[0].id;
    // Bodies are tiny here: the figure is the claim's index walk, not reading payloads.
    let body = "{}";
    let Store::Sqlite(backend) = &store else { bail!("SQLite expected") };
    // Bulk rows straight into the tables: the figure is the claim, not the fill.
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
         INSERT INTO certhook_messages (id, event_id, alert_id, type, body, created_at) \
         SELECT printf('00000000-0000-4000-8000-%012d', i), NULL, NULL, 'issuance', CAST('{body}' AS BLOB), 0 FROM n; \
         INSERT INTO certhook_deliveries (id, message_id, event_id, channel_id, type, state, next_attempt_at, \
         enqueued_at, created_at, updated_at) SELECT printf('10000000-0000-4000-8000-%012d', i), \
         printf('00000000-0000-4000-8000-%012d', i), NULL, '{channel}', 'issuance', 'pending', i, 0, 0, 0 \
         FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) SELECT i FROM n);"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(backend.pool()).await?;
    let _ = app;
    Ok((fresh, store))
}

async fn claim_rate(store: &Store, rows: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut claimed = 0;
    while claimed < rows {
        let c = store.claim(100, Duration::from_secs(600)).await?;
        if c.leases.is_empty() {
            bail!("queue ran dry after {claimed}");
        }
        claimed += c.leases.len();
    }
    Ok(claimed as f64 / started.elapsed().as_secs_f64())
}

pub async fn claims(o: &Options) -> anyhow::Result<Claims> {
    let measure = 5_000;
    let (url, _counter) = receiver::start().await;
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut rss_mb = Err(anyhow::anyhow!("not measured"));
    for run in 0..o.runs {
        let (_fresh_small, s) = filled(o, 10_000, &url).await?;
        small.push(claim_rate(&s, measure).await?);
        s.close().await;
        let (fresh_large, l) = filled(o, o.claim_rows, &url).await?;
        large.push(claim_rate(&l, measure).await?);
        l.close().await;
        if run == 0 {
            // serve with the large queue waiting: peak RSS over a few seconds of draining
            let mut serve = Serve::start(&fresh_large.url, o).await?;
            rss_mb = async {
                let mut peak: f64 = 0.0;
                for _ in 0..30 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    peak = peak.max(serve.rss_mb()?);
                }
                anyhow::Ok(peak)
            }
            .await;
            drop(serve);
        }
    }
    Ok(Claims { small: Figure::of(small), large: Figure::of(large), rss_mb })
}
