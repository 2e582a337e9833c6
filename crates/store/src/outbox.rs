//! The outbox's producing side: events stored all or nothing, on the store's own
//! transaction or on one the caller (a PKI) holds, with idempotency keys honoured.

use certhook_core::event::NewEvent;
use uuid::Uuid;

use crate::backend::Backend;
use crate::driver::{Driver, Record, Statement};
use crate::error::{Result, StoreError};
use crate::sql::Queries;

impl<D: Driver> Backend<D> {
    /// Enqueues a batch of events, all or nothing, and returns their ids in input order.
    ///
    /// The commit is on stable storage before this returns (see [`Driver::begin_durable`]).
    pub async fn enqueue(&self, events: &[NewEvent], progress: &mut (dyn FnMut(usize) + Send)) -> Result<Vec<Uuid>> {
        let (_writer, mut tx) = self.driver.begin_durable().await?;
        let ids = enqueue_on::<D>(&mut tx, self.q, events, progress).await?;
        tx.commit().await?;
        self.wake();
        Ok(ids)
    }
}

/// Enqueues `events` on an open connection or transaction (the transactional outbox):
/// checks each application, honours idempotency keys, and returns the ids in input order.
/// `progress` hears how many are written so far (before the commit that makes them count).
pub(crate) async fn enqueue_on<D: Driver>(
    conn: &mut D::Conn,
    q: &Queries,
    events: &[NewEvent],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(events.len());
    let mut known_apps: Vec<Uuid> = Vec::new();
    for (index, ev) in events.iter().enumerate() {
        let app = ev.application_id.to_string();
        if !known_apps.contains(&ev.application_id) {
            if D::statement(q.application_exists).bind(&app).fetch_optional(&mut *conn).await?.is_none() {
                return Err(StoreError::UnknownApplication { index, id: ev.application_id });
            }
            known_apps.push(ev.application_id);
        }
        let certificate = serde_json::to_string(&ev.certificate)
            .map_err(|e| StoreError::Corrupt(format!("certificate does not serialize: {e}")))?;
        let id = Uuid::now_v7();
        let inserted = D::statement(q.insert_event)
            .bind(id.to_string())
            .bind(&app)
            .bind(ev.event_type.as_str())
            .bind(&ev.idempotency_key)
            .bind(certificate)
            .fetch_optional(&mut *conn)
            .await?;
        let id = match inserted {
            Some(_) => id,
            None => {
                // The idempotency key was seen before: answer with the first event's id.
                let first: String = D::statement(q.find_idempotent)
                    .bind(&app)
                    .bind(&ev.idempotency_key)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get(0)?;
                Uuid::parse_str(&first).map_err(|_| StoreError::Corrupt(format!("event id '{first}' is not a UUID")))?
            }
        };
        ids.push(id);
        progress(ids.len());
    }
    Ok(ids)
}
