//! Fan-out beside other writers. Two processes fanning out the same outbox at once: each
//! event becomes its deliveries exactly once, whether rows are split by locks
//! (PostgreSQL) or planned outside the writer and taken only if still unfanned (SQLite).
//! And a channel changed while a SQLite fan-out waits for the writer: the plan is redone.

use certhook_core::event::{AlertType, ChannelState};
use certhook_store::Store;

use crate::fixtures::*;
use crate::harness::{TestDb, scalar};

const EVENTS: usize = 600;

async fn two_processes_fan_out_each_event_once(db: TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    let app = app(&a).await;
    let alert = alert(&a, &app, AlertType::Issuance, "issued").await;
    channel(&a, &alert, ChannelState::Active).await;
    channel(&a, &alert, ChannelState::Active).await;
    let events: Vec<_> = (0..EVENTS).map(|n| event(app.id, AlertType::Issuance, &n.to_string(), None)).collect();
    a.enqueue(&events).await.unwrap();
    let (read_a, read_b) = tokio::join!(fan_out_in_batches(&a, 40), fan_out_in_batches(&b, 40));
    assert!(read_a + read_b >= EVENTS, "{read_a} + {read_b}");
    let count = |sql: &'static str| {
        let a = a.clone();
        async move { scalar(&a, sql).await }
    };
    assert_eq!(count("SELECT COUNT(*) FROM certhook_events WHERE fanned_out_at IS NULL").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM certhook_messages").await, EVENTS as i64, "one message per event");
    assert_eq!(count("SELECT COUNT(*) FROM certhook_deliveries").await, 2 * EVENTS as i64, "one per channel");
    assert_eq!(count("SELECT COUNT(DISTINCT event_id) FROM certhook_deliveries").await, EVENTS as i64);
    a.close().await;
    b.close().await;
    db.finish().await;
}

crate::both_databases!(two_processes_fan_out_each_event_once);

/// SQLite plans a fan-out before it takes the writer: a channel resumed in between (here
/// by another process holding the writer while fan-out plans) must not leave the new
/// deliveries `held` on an active channel, where nothing would release them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_resumed_while_fan_out_waits_for_the_writer_gets_its_deliveries_pending() {
    let db = TestDb::sqlite();
    let a = db.store().await;
    let app = app(&a).await;
    let alert = alert(&a, &app, AlertType::Issuance, "issued").await;
    let paused = channel(&a, &alert, ChannelState::Paused).await;
    a.enqueue(&[event(app.id, AlertType::Issuance, "1", None)]).await.unwrap();
    let Store::Sqlite(other) = db.store().await else { unreachable!("a SQLite database") };
    let mut holder = other.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    let fanning = tokio::spawn({
        let a = a.clone();
        async move { a.fan_out(&settings(), 100).await.unwrap() }
    });
    // Fan-out has read and planned by now, and waits for the write lock this holds.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sqlx::query("UPDATE certhook_channels SET state = 'active' WHERE id = ?")
        .bind(paused.id.to_string())
        .execute(&mut *holder)
        .await
        .unwrap();
    holder.commit().await.unwrap();
    assert_eq!(fanning.await.unwrap(), 1);
    assert_eq!(scalar(&a, "SELECT COUNT(*) FROM certhook_deliveries WHERE state = 'pending'").await, 1);
    assert_eq!(scalar(&a, "SELECT COUNT(*) FROM certhook_deliveries").await, 1);
    a.close().await;
    other.close().await;
    db.finish().await;
}
