//! `serve` on PostgreSQL, several processes sharing one queue.
//!
//! Skips without PostgreSQL on a developer machine; fails under CI=true.

use std::collections::HashMap;
use std::time::Duration;

use certhook_store::scratch::ScratchDatabase;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event, metric};

/// A fresh database for one test, or `None` to skip.
async fn fresh_database() -> Option<ScratchDatabase> {
    certhook_store::scratch::for_test("certhook_e2e", env!("CARGO_TARGET_TMPDIR")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_one_postgres_queue() {
    let Some(db) = fresh_database().await else { return };
    let receiver = Receiver::start(Reply::Delay(Duration::from_millis(20), 204)).await;
    let mut env = Env::fast();
    env.database_url = db.url.clone();
    let (app, _) = env.webhook("issuance", &receiver.url("/hook"), None);
    let a = Serve::start(&env).await;
    let b = Serve::start(&env).await;
    const N: usize = 60;
    for i in 0..N {
        let serve = if i % 2 == 0 { &a } else { &b };
        serve.enqueue(&event(&app, &i.to_string())).await;
    }
    a.wait_status(Duration::from_secs(30), |s| s["deliveries"]["delivered"] == N).await;
    let got = receiver.received();
    let mut per_serial: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *per_serial
            .entry(r.json()["data"]["certificates"][0]["serialNumber"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_serial.len(), N, "every event arrived");
    assert!(per_serial.values().all(|n| *n == 1), "no delivery was sent twice without a crash");
    let delivered = "certhook_deliveries_total{channel_kind=\"webhook\",outcome=\"delivered\"}";
    let counted = async || (metric(&a.metrics().await, delivered), metric(&b.metrics().await, delivered));
    let (mut by_a, mut by_b) = counted().await;
    for _ in 0..100 {
        if by_a + by_b >= N as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // counters follow the recorded outcomes
        (by_a, by_b) = counted().await;
    }
    assert_eq!(by_a + by_b, N as f64, "the two processes' counters add up to every delivery");
    assert!(by_a > 0.0 && by_b > 0.0, "both processes delivered: {by_a} and {by_b}");
    assert_eq!(a.terminate().await, 0);
    assert_eq!(b.terminate().await, 0);
    db.drop_database().await.unwrap();
}
