//! A worker process killed with SIGKILL while it holds leases loses nothing: once the
//! leases expire (by the database's clock) another worker takes every delivery over.
//!
//! The "worker" is this test binary re-executed as a child that runs only
//! `crash::child_claims_and_hangs`, claims, reports, and waits to be killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use certhook_store::{DeliveryFilter, Store};

use crate::fixtures::queue_with;
use crate::harness::TestDb;

const CHILD_ENV: &str = "CERTHOOK_TEST_CRASH_CHILD_DB";
const LEASE: Duration = Duration::from_millis(1500);

/// Run only as the child: claims everything due under a short lease, says so, and hangs.
#[tokio::test]
#[ignore = "run by killed_worker_loses_nothing as its child process"]
async fn child_claims_and_hangs() {
    let Ok(url) = std::env::var(CHILD_ENV) else { return };
    let store = Store::connect(&url).await.unwrap();
    let claim = store.claim(100, LEASE).await.unwrap();
    // libtest has already printed "test … ... " on this line: start a fresh one.
    println!("\nclaimed {}", claim.leases.len());
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

async fn killed_worker_loses_nothing(db: TestDb) {
    let store = db.store().await;
    queue_with(&store, 7).await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::child_claims_and_hangs", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child worker");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.starts_with("claimed "))
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line).await;
    if !matches!(&line, Ok(Ok(Some(l))) if l == "claimed 7") {
        child.kill().ok();
        panic!("the child did not report leasing every delivery: {line:?}");
    }
    assert_eq!(store.status().await.unwrap().deliveries.leased, 7);

    child.kill().expect("SIGKILL the child");
    child.wait().unwrap();

    assert!(store.claim(100, Duration::from_secs(60)).await.unwrap().leases.is_empty(), "live leases are respected");
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    let claim = store.claim(100, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claim.leases.len(), 7, "every delivery is taken over");
    assert_eq!(claim.taken_over, 7);
    let all = store.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    assert_eq!(all.len(), 7, "nothing was lost or duplicated");
    store.close().await;
    db.finish().await;
}

crate::both_databases!(killed_worker_loses_nothing);
