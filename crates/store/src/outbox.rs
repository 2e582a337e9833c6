//! The outbox's producing side: events stored all or nothing, on the store's own
//! transaction or on one the caller (a PKI) holds, with idempotency keys honoured.

use std::collections::HashSet;

use certhook_core::event::NewEvent;
use uuid::Uuid;

use crate::backend::Backend;
use crate::batch::{EventRow, byte_chunks, json_array};
use crate::driver::{Driver, Statement};
use crate::error::{Result, StoreError};
use crate::fan_out::CHUNK_BYTES;
use crate::rows::uuid_col;
use crate::sql::Queries;

/// Events written per statement at most.
const ENQUEUE_CHUNK: usize = 1_000;

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
/// The rows are written a chunk at a time, one statement per chunk; `progress` hears how
/// many are written so far (before the commit that makes them count).
pub(crate) async fn enqueue_on<D: Driver>(
    conn: &mut D::Conn,
    q: &Queries,
    events: &[NewEvent],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Vec<Uuid>> {
    let mut known_apps: Vec<Uuid> = Vec::new();
    for (index, ev) in events.iter().enumerate() {
        if !known_apps.contains(&ev.application_id) {
            let app = ev.application_id.to_string();
            if D::statement(q.application_exists).bind(&app).fetch_optional(&mut *conn).await?.is_none() {
                return Err(StoreError::UnknownApplication { index, id: ev.application_id });
            }
            known_apps.push(ev.application_id);
        }
    }
    let mut ids = Vec::with_capacity(events.len());
    // Rows are built a chunk at a time, so a large file is not held twice over.
    for (first, group) in events.chunks(ENQUEUE_CHUNK).enumerate().map(|(i, g)| (i * ENQUEUE_CHUNK, g)) {
        let rows = group
            .iter()
            .enumerate()
            .map(|(i, ev)| {
                let certificate = serde_json::to_string(&ev.certificate)
                    .map_err(|e| StoreError::Corrupt(format!("certificate does not serialize: {e}")))?;
                Ok(EventRow {
                    n: first + i,
                    id: Uuid::now_v7(),
                    app: ev.application_id,
                    event_type: ev.event_type.as_str(),
                    key: ev.idempotency_key.as_deref(),
                    certificate,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for chunk in byte_chunks(&rows, ENQUEUE_CHUNK, CHUNK_BYTES, |r| r.certificate.len()) {
            write_chunk::<D>(conn, q, chunk, &mut ids).await?;
            progress(ids.len());
        }
    }
    Ok(ids)
}

/// Inserts one chunk of events and appends their ids in order: each one's own, or, where
/// its idempotency key was taken, the first event's.
async fn write_chunk<D: Driver>(
    conn: &mut D::Conn,
    q: &Queries,
    chunk: &[EventRow<'_>],
    ids: &mut Vec<Uuid>,
) -> Result<()> {
    let inserted: HashSet<Uuid> = D::statement(q.insert_events)
        .bind(json_array(chunk))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| uuid_col(r, "id"))
        .collect::<Result<_>>()?;
    for row in chunk {
        if inserted.contains(&row.id) {
            ids.push(row.id);
            continue;
        }
        let first = D::statement(q.find_idempotent)
            .bind(row.app.to_string())
            .bind(row.key.map(str::to_owned))
            .fetch_one(&mut *conn)
            .await?;
        ids.push(uuid_col(&first, "id")?);
    }
    Ok(())
}
