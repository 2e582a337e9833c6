//! Group commit: concurrent enqueues share one transaction.
//!
//! Each API request alone would pay a whole write transaction; under load, requests that
//! arrive while one commit runs are gathered and written together, then each is answered
//! with its own ids. A batch that fails (one request names an unknown application) is
//! retried request by request, so one producer's bad input never fails another's.
//! Requests in flight together have no order between them: two committers may commit
//! them either way round.

use std::sync::Arc;

use certhook_core::event::NewEvent;
use certhook_store::{BackendKind, Store, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

/// Requests gathered into one transaction at most.
const MAX_REQUESTS: usize = 256;
/// Events gathered into one transaction at most.
const MAX_EVENTS: usize = 5_000;

type Reply = oneshot::Sender<Result<Vec<Uuid>, StoreError>>;

/// One request's events and where its answer goes.
type Job = (Vec<NewEvent>, Reply);

/// The queue of requests, shared by the committers.
type Jobs = Arc<Mutex<mpsc::Receiver<Job>>>;

/// A handle to the group-commit tasks.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the tasks writing to `store` (two on PostgreSQL, one on SQLite); they end
    /// when every handle is dropped.
    pub fn spawn(store: Store) -> GroupCommit {
        let (jobs, rx) = mpsc::channel(4 * MAX_REQUESTS);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers(store.kind()) {
            tokio::spawn(run(store.clone(), rx.clone()));
        }
        GroupCommit { jobs }
    }

    /// Enqueues one request's events (all or nothing) and returns their ids.
    pub async fn enqueue(&self, events: Vec<NewEvent>) -> Result<Vec<Uuid>, StoreError> {
        let (reply, answer) = oneshot::channel();
        // The task lives as long as any handle; a closed channel means the runtime is
        // shutting down, which callers see as a database error.
        if self.jobs.send((events, reply)).await.is_err() {
            return Err(StoreError::Corrupt("group commit stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Corrupt("group commit stopped".into())))
    }
}

/// Transactions written at once. An enqueue also fans its events out (renders them and
/// writes their deliveries), so one transaction is mostly serve's work, then mostly the
/// database's: on PostgreSQL two overlap those halves. SQLite's one writer would only make
/// the second wait.
fn committers(kind: BackendKind) -> usize {
    match kind {
        BackendKind::Sqlite => 1,
        BackendKind::Postgres => 2,
    }
}

/// One committer. The receiver is shared behind a lock so that one committer gathers the
/// next group while another commits its own; each group is everything waiting when the
/// lock came free.
async fn run(store: Store, rx: Jobs) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_REQUESTS);
    while rx.lock().await.recv_many(&mut batch, MAX_REQUESTS).await > 0 {
        // Stay under MAX_EVENTS per transaction: a huge request is written alone.
        let mut group = Vec::new();
        let mut events = 0;
        for job in batch.drain(..) {
            if !group.is_empty() && events + job.0.len() > MAX_EVENTS {
                commit(&store, std::mem::take(&mut group)).await;
                events = 0;
            }
            events += job.0.len();
            group.push(job);
        }
        if !group.is_empty() {
            commit(&store, group).await;
        }
    }
}

async fn commit(store: &Store, group: Vec<Job>) {
    if group.len() > 1 {
        let all: Vec<NewEvent> = group.iter().flat_map(|(e, _)| e.iter().cloned()).collect();
        if let Ok(ids) = store.enqueue(&all).await {
            let mut ids = ids.into_iter();
            for (events, reply) in group {
                let _ = reply.send(Ok(ids.by_ref().take(events.len()).collect()));
            }
            return;
        }
    }
    // One request, or a group that failed: each on its own, each with its own answer.
    for (events, reply) in group {
        let _ = reply.send(store.enqueue(&events).await);
    }
}

#[cfg(test)]
mod tests {
    use certhook_core::event::{AlertType, Certificate, ChannelState};
    use certhook_store::{NewAlert, NewChannel};

    use super::*;

    fn event(app: Uuid, serial: &str, key: Option<&str>) -> NewEvent {
        NewEvent {
            event_type: AlertType::Issuance,
            application_id: app,
            idempotency_key: key.map(str::to_string),
            certificate: Certificate {
                id: serial.into(),
                serial_number: serial.into(),
                common_name: "a.example".into(),
                san: vec![],
                profile_name: None,
                not_before: chrono::Utc::now(),
                not_after: chrono::Utc::now() + chrono::Duration::days(1),
                revoked_at: None,
                revocation_reason: None,
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_commits_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("g.db").display())).await.unwrap();
        requests_share_commits_and_a_bad_one_fails_alone(store.clone()).await;
        assert_eq!(store.status().await.unwrap().deliveries.pending, 0, "without render settings, serve fans out");
    }

    /// The same with two committers, and each event fanned out in its enqueue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_committers_on_postgresql_share_the_requests_and_a_bad_one_fails_alone() {
        let skip_log = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tmp");
        let Some(db) = certhook_store::scratch::for_test("certhook_group", skip_log).await else { return };
        let render = certhook_core::render::RenderSettings::default();
        let store = Store::connect(&db.url)
            .await
            .unwrap()
            .with_settings(certhook_store::StoreSettings { render: Some(render), ..Default::default() });
        assert_eq!(committers(store.kind()), 2);
        requests_share_commits_and_a_bad_one_fails_alone(store.clone()).await;
        assert_eq!(store.status().await.unwrap().deliveries.pending, 399, "each stored event fanned out once");
        store.close().await;
        db.drop_database().await.unwrap();
    }

    /// 199 good requests of two events and a bad one, sent at once, then a repeated key.
    async fn requests_share_commits_and_a_bad_one_fails_alone(store: Store) {
        let app = store.create_application("a").await.unwrap().id;
        let alert = store.create_alert(&NewAlert::single(app, AlertType::Issuance, "issued")).await.unwrap();
        let channel = NewChannel::webhook(alert.id, "https://receiver.test/hook", ChannelState::Active);
        store.create_channel(&channel, None).await.unwrap();
        let group = GroupCommit::spawn(store.clone());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let group = group.clone();
            let target = if i == 77 { Uuid::now_v7() } else { app };
            tasks.push(tokio::spawn(async move {
                group.enqueue(vec![event(target, &i.to_string(), None), event(target, &format!("{i}b"), None)]).await
            }));
        }
        let mut ok = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(ids) => {
                    assert_eq!(ids.len(), 2, "each request gets its own ids");
                    ok += 1;
                }
                Err(e) => {
                    assert_eq!(i, 77, "only the bad request fails: {e}");
                    assert!(matches!(e, StoreError::UnknownApplication { .. }));
                }
            }
        }
        assert_eq!(ok, 199);
        assert_eq!(store.status().await.unwrap().events.total, 398);
        let again = group.enqueue(vec![event(app, "x", Some("k")), event(app, "y", Some("k"))]).await.unwrap();
        assert_eq!(again[0], again[1], "idempotency holds inside a group");
    }
}
