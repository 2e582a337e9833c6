//! Issue 13: SQLite on a file system that fills up under load. While full, ingest answers
//! 503 naming the cause and stores nothing; once space is freed, delivery resumes by itself
//! (no connection is reused inside a failed transaction), nothing accepted is lost, and
//! the database passes its integrity check.
//!
//! The file system is a small tmpfs the test mounts, so it needs root: outside CI the test
//! says SKIPPED and passes when it cannot mount; with CI=true it fails instead.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event};

/// A small tmpfs, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            return Some(SmallFs { dir });
        }
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: mounting a tmpfs must work (run as root)");
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?); the full-disk test did not run");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills all but `room` bytes with a file; returns it.
    fn fill_leaving(&self, room: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(room)).unwrap();
        filler
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_and_delivery_resumes_when_space_is_freed() {
    let Some(fs) = SmallFs::mount("16m") else { return };
    let receiver = Receiver::start(Reply::Status(204)).await;
    let mut env = Env::fast();
    env.database_url = format!("sqlite://{}", fs.path().join("certhook.db").display());
    let (app, _channel) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    let http = reqwest::Client::new();

    // Room for a few hundred events: some are accepted and queued, then the disk fills
    // under load.
    let filler = fs.fill_leaving(1 << 20);
    let mut accepted: HashSet<String> = HashSet::new();
    let mut refusal = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while refusal.is_none() {
        assert!(Instant::now() < deadline, "the disk never filled up: {} events accepted", accepted.len());
        let batch: Vec<_> = (0..20).map(|i| event(&app, &format!("{n}-{i}"))).collect();
        let resp = http.post(serve.url("/v1/events/batch")).json(&batch).send().await.unwrap();
        match resp.status().as_u16() {
            202 => accepted.extend((0..20).map(|i| format!("{n}-{i}"))),
            503 => refusal = Some(resp.json::<serde_json::Value>().await.unwrap()),
            other => panic!("ingest answered {other}: {}", resp.text().await.unwrap()),
        }
        n += 1;
    }
    let refusal = refusal.unwrap();
    assert!(accepted.len() >= 40, "events were accepted before the disk filled: {}", accepted.len());
    assert_eq!(refusal["error"]["code"], "unavailable", "{refusal}");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(message.contains("full") && message.contains("retry"), "names the cause: {message}");

    // A while full: serve keeps running (its writes fail and are retried).
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::remove_file(filler).unwrap();
    // Delivery resumes by itself: every accepted event arrives.
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let serials: HashSet<String> = receiver
            .received()
            .iter()
            .map(|r| r.json()["data"]["certificates"][0]["serialNumber"].as_str().unwrap().to_string())
            .collect();
        if accepted.is_subset(&serials) {
            break serials;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} accepted events delivered after space was freed",
            accepted.intersection(&serials).count(),
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(delivered.len() >= accepted.len());
    // Ingest works again.
    serve.enqueue(&event(&app, "after")).await;
    receiver.wait_for(receiver.received().len() + 1, Duration::from_secs(20)).await;
    serve.terminate().await;

    let pool = sqlx::SqlitePool::connect(&env.database_url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await.unwrap();
    assert_eq!(check, "ok");
    pool.close().await;
}
