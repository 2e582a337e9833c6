//! Producing events: validate, then write to the outbox in one transaction.
//!
//! An event is durable from the moment these functions return `Ok`.

use certhook_core::event::NewEvent;
use certhook_core::validate::{ValidationError, parse_events};
use certhook_store::{Store, StoreError};
use chrono::Utc;
use uuid::Uuid;

/// Enqueues on the caller's own SQLite transaction: the PKI's write and the events commit
/// or roll back together. Begin it with `BEGIN IMMEDIATE` (`pool.begin_with`).
pub use certhook_store::sqlite::enqueue_in_tx as enqueue_in_sqlite_tx;

/// Enqueues on the caller's own PostgreSQL transaction: the PKI's write and the events
/// commit or roll back together.
pub use certhook_store::postgres::enqueue_in_tx as enqueue_in_postgres_tx;

/// Why events were not enqueued. Nothing was stored in either case.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The input is not a valid event (or batch); the message names the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store refused (unknown application) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProduceError {
    /// True when the producer's input is at fault (exit code 2, HTTP 4xx).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ProduceError::Invalid(_) => true,
            ProduceError::Store(e) => e.is_bad_input(),
        }
    }
}

/// Hands events to the outbox, enforcing `max_event_bytes`.
#[derive(Debug, Clone)]
pub struct Producer {
    store: Store,
    max_event_bytes: usize,
    group: Option<crate::group::GroupCommit>,
}

impl Producer {
    /// A producer writing to `store`, refusing events larger than `max_event_bytes`.
    pub fn new(store: Store, max_event_bytes: usize) -> Self {
        Producer { store, max_event_bytes, group: None }
    }

    /// The same, committing concurrent enqueues together (for servers under load).
    pub fn with_group_commit(store: Store, max_event_bytes: usize) -> Self {
        let group = Some(crate::group::GroupCommit::spawn(store.clone()));
        Producer { store, max_event_bytes, group }
    }

    /// Enqueues one JSON event, a JSON array of events, or NDJSON; all or nothing.
    /// Returns the event ids in input order (the first id again for a repeated key).
    pub async fn enqueue_json(&self, input: &[u8]) -> Result<Vec<Uuid>, ProduceError> {
        self.enqueue(self.parse(input)?).await
    }

    /// Validates one JSON event, a JSON array of events, or NDJSON, against `max_event_bytes`.
    pub fn parse(&self, input: &[u8]) -> Result<Vec<NewEvent>, ProduceError> {
        Ok(parse_events(input, self.max_event_bytes, Utc::now())?)
    }

    /// Enqueues already validated events; all or nothing.
    pub async fn enqueue(&self, events: Vec<NewEvent>) -> Result<Vec<Uuid>, ProduceError> {
        match &self.group {
            Some(group) => Ok(group.enqueue(events).await?),
            None => Ok(self.store.enqueue(&events).await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(app: Uuid, cn: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "issuance", "applicationId": app.to_string(),
            "certificate": { "serialNumber": "1", "commonName": cn,
                             "notBefore": "2024-01-01T00:00:00Z", "notAfter": "2025-01-01T00:00:00Z" }
        })
    }

    #[tokio::test]
    async fn json_is_validated_then_stored_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("p.db").display())).await.unwrap();
        let app = store.create_application("a").await.unwrap();
        let producer = Producer::new(store.clone(), 4096);

        let ids = producer.enqueue_json(event(app.id, "a.example").to_string().as_bytes()).await.unwrap();
        assert_eq!(ids.len(), 1);

        let batch = serde_json::json!([event(app.id, "b.example"), event(app.id, "")]).to_string();
        let err = producer.enqueue_json(batch.as_bytes()).await.unwrap_err();
        assert!(err.is_bad_input());
        assert_eq!(err.to_string(), "events[1]: certificate.commonName: must not be empty");

        let unknown = serde_json::json!([event(app.id, "b.example"), event(Uuid::now_v7(), "c.example")]).to_string();
        let err = producer.enqueue_json(unknown.as_bytes()).await.unwrap_err();
        assert!(
            err.is_bad_input() && err.to_string().starts_with("events[1].applicationId: unknown application"),
            "{err}"
        );

        let big = event(app.id, &"x".repeat(5000)).to_string();
        let err = producer.enqueue_json(big.as_bytes()).await.unwrap_err();
        assert!(err.to_string().contains("exceeds max_event_bytes 4096"), "{err}");

        assert_eq!(store.status().await.unwrap().events.total, 1, "refused input stored nothing");
    }
}
