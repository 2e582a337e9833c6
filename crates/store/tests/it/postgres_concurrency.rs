//! Many workers on one PostgreSQL database: `FOR UPDATE SKIP LOCKED` hands each due row
//! to exactly one of them.

use std::collections::HashSet;
use std::time::Duration;

use certhook_core::event::{AlertType, ChannelState};
use certhook_store::{Disposition, Outcome, Store};

use crate::fixtures::*;
use crate::harness::{TestDb, exec};

const ROWS: usize = 10_000;
const WORKERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_claim_disjoint_rows_and_drain_them_all() {
    let Some(db) = TestDb::postgres().await else { return };
    let store = db.store().await;
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let ch = channel(&store, &alert, ChannelState::Active).await;
    exec(
        &store,
        &format!(
            "INSERT INTO certhook_messages (id, type, body, created_at) \
             SELECT md5('m' || i)::uuid::text, 'issuance', '\\x7b7d'::bytea, 0 FROM generate_series(1, {ROWS}) i; \
             INSERT INTO certhook_deliveries (id, message_id, channel_id, type, state, next_attempt_at, enqueued_at, created_at, updated_at) \
             SELECT gen_random_uuid()::text, md5('m' || i)::uuid::text, '{}', 'issuance', 'pending', 0, 0, 0, 0 \
             FROM generate_series(1, {ROWS}) i;",
            ch.id
        ),
    )
    .await;

    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let worker = Store::connect(db.url()).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claim = worker.claim(50, Duration::from_secs(120)).await.unwrap();
                if claim.leases.is_empty() {
                    break;
                }
                mine.extend(claim.leases.iter().map(|l| l.delivery_id));
                let outcomes: Vec<Outcome> = claim
                    .leases
                    .into_iter()
                    .map(|lease| Outcome { lease, attempt: None, disposition: Disposition::Delivered })
                    .collect();
                let accepted = worker.record(&outcomes).await.unwrap();
                assert!(accepted.iter().all(|a| *a), "every outcome of a live lease is accepted");
            }
            worker.close().await;
            mine
        }));
    }
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for t in tasks {
        let mine = t.await.unwrap();
        per_worker.push(mine.len());
        all.extend(mine);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), ROWS, "claimed {} rows in all (per worker: {per_worker:?})", all.len());
    assert_eq!(unique.len(), ROWS, "no row was held by two workers");
    let status = store.status().await.unwrap();
    assert_eq!(status.deliveries.delivered, ROWS as u64);
    assert_eq!(status.deliveries.pending + status.deliveries.leased, 0);
    assert!(per_worker.iter().filter(|n| **n > 0).count() >= 2, "the work was shared: {per_worker:?}");
    store.close().await;
    db.finish().await;
}

/// A row inserted by another process (here: plain SQL on another connection) wakes a
/// worker waiting on `LISTEN certhook_work` long before its poll interval ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_elsewhere_wakes_a_listening_worker() {
    let Some(db) = TestDb::postgres().await else { return };
    let worker = db.store().await;
    let listener = worker.listen_for_work().await.unwrap().expect("PostgreSQL listens");
    let producer = Store::connect(db.url()).await.unwrap();
    let app = app(&producer).await;
    let poll = Duration::from_secs(30);
    let waiter = tokio::spawn({
        let worker = worker.clone();
        async move {
            worker.wait_for_work(poll).await;
            std::time::Instant::now()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let inserted_at = std::time::Instant::now();
    exec(
        &producer,
        &format!(
            "INSERT INTO certhook_events (application_id, type, certificate) VALUES ('{}', 'issuance', \
             '{{\"serialNumber\":\"1\",\"commonName\":\"a\",\"notBefore\":\"2024-01-01T00:00:00Z\",\"notAfter\":\"2025-01-01T00:00:00Z\"}}')",
            app.id
        ),
    )
    .await;
    let woken_at = waiter.await.unwrap();
    assert!(woken_at >= inserted_at, "the waiter returned before anything was inserted");
    let waited = woken_at - inserted_at;
    assert!(waited < poll / 2, "woken by NOTIFY {waited:?} after the insert, not by the {poll:?} poll");
    listener.abort();
    producer.close().await;
    worker.close().await;
    db.finish().await;
}

/// How long `store` waits for a wake-up, at most `limit`.
async fn wake_delay(store: &Store, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    store.wait_for_work(limit).await;
    started.elapsed()
}

/// A worker's own claims and deliveries do not wake the other workers (each would cost a
/// NOTIFY under the cluster-wide notify lock and a pointless wake-up); a delivery that
/// becomes due again (a retry) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_deliveries_wake_no_one_but_a_retry_does() {
    let Some(db) = TestDb::postgres().await else { return };
    let listening = db.store().await;
    let listener = listening.listen_for_work().await.unwrap().expect("PostgreSQL listens");
    let worker = Store::connect(db.url()).await.unwrap();
    queue_with(&worker, 2).await;
    // Let the setup's own wake-ups drain: until a wait runs its full length undisturbed.
    let settle = Duration::from_millis(300);
    for tries in 0.. {
        if wake_delay(&listening, settle).await >= settle {
            break;
        }
        assert!(tries < 50, "the listener never went quiet");
    }

    let quiet = Duration::from_millis(700);
    let claim = worker.claim(2, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claim.leases.len(), 2);
    let mut leases = claim.leases.into_iter();
    let delivered = Outcome { lease: leases.next().unwrap(), attempt: None, disposition: Disposition::Delivered };
    assert_eq!(worker.record(&[delivered]).await.unwrap(), vec![true]);
    let waited = wake_delay(&listening, quiet).await;
    assert!(waited >= quiet, "a claim and a delivery woke a listener after {waited:?}");

    let retry = Outcome {
        lease: leases.next().unwrap(),
        attempt: None,
        disposition: Disposition::Retry { delay: Duration::from_millis(1) },
    };
    assert_eq!(worker.record(&[retry]).await.unwrap(), vec![true]);
    let waited = wake_delay(&listening, Duration::from_secs(30)).await;
    assert!(waited < Duration::from_secs(15), "a retry woke the listener only after {waited:?}");
    listener.abort();
    worker.close().await;
    listening.close().await;
    db.finish().await;
}
