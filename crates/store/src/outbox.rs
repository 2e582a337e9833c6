//! The outbox's producing side: events stored all or nothing, on the store's own
//! transaction or on one the caller (a PKI) holds, with idempotency keys honoured.

use std::collections::HashMap;

use certhook_core::event::NewEvent;
use uuid::Uuid;

use crate::backend::Backend;
use crate::batch::{EventRow, byte_chunks, json_array};
use crate::driver::{Driver, Record, Statement};
use crate::error::{Result, StoreError};
use crate::fan_out::CHUNK_BYTES;
use crate::rows::uuid_col;
use crate::sql::Queries;

/// Events written per statement at most.
const ENQUEUE_CHUNK: usize = 1_000;

impl<D: Driver> Backend<D> {
    /// Enqueues a batch of events, all or nothing, and returns their ids in input order.
    /// With render settings (see [`crate::StoreSettings::render`]) the new events of a
    /// batch of at most 5,000 are fanned out in the same transaction: their deliveries
    /// exist once this returns.
    ///
    /// The commit is on stable storage before this returns (see [`Driver::begin_durable`]).
    pub async fn enqueue(&self, events: &[NewEvent], progress: &mut (dyn FnMut(usize) + Send)) -> Result<Vec<Uuid>> {
        let (_writer, mut tx) = self.driver.begin_durable().await?;
        let fan_out = self.fan_out_on_enqueue.clone().filter(|_| events.len() <= ENQUEUE_FAN_OUT_MAX);
        let enqueued = enqueue_on::<D>(&mut tx, self.q, events, fan_out.is_some(), progress).await?;
        if let Some(settings) = &fan_out {
            self.fan_out_enqueued(&mut tx, settings, events, &enqueued.inserted).await?;
        }
        tx.commit().await?;
        self.wake();
        Ok(enqueued.ids)
    }
}

/// Events an enqueue fans out itself at most: the group commit's largest group, which the
/// API's requests (1,000 events at most) stay within. A library caller's larger batch is
/// left to serve's fan-out task, which sends the first deliveries while it fans out the
/// rest, so the enqueue's transaction (on SQLite, its hold of the one writer) stays as
/// short as a group's.
const ENQUEUE_FAN_OUT_MAX: usize = 5_000;

/// An event that an enqueue stored (not an idempotent repeat of an earlier one).
pub(crate) struct Inserted {
    /// Its place in the enqueued batch.
    pub index: usize,
    /// Its id.
    pub id: Uuid,
    /// The database's clock when it was stored (unix ms): its `occurred_at`.
    pub occurred_at: i64,
    /// The same, as `created_at` (read separately, so it may differ by a millisecond).
    pub created_at: i64,
}

/// What `enqueue_on` did: every event's id in input order, and the events it stored.
pub(crate) struct Enqueued {
    /// Each event's id, or the earlier event's whose idempotency key it repeated.
    pub ids: Vec<Uuid>,
    /// The events stored, in input order.
    pub inserted: Vec<Inserted>,
}

/// Enqueues `events` on an open connection or transaction (the transactional outbox):
/// checks each application, honours idempotency keys, and returns the ids in input order.
/// The rows are written a chunk at a time, one statement per chunk; `progress` hears how
/// many are written so far (before the commit that makes them count). `fanned`: the
/// caller fans the stored rows out in this transaction, so they are stored as fanned out.
pub(crate) async fn enqueue_on<D: Driver>(
    conn: &mut D::Conn,
    q: &Queries,
    events: &[NewEvent],
    fanned: bool,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Enqueued> {
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
    let mut done = Enqueued { ids: Vec::with_capacity(events.len()), inserted: Vec::new() };
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
            write_chunk::<D>(conn, q, chunk, fanned, &mut done).await?;
            progress(done.ids.len());
        }
    }
    Ok(done)
}

/// Inserts one chunk of events and appends their ids in order: each one's own, or, where
/// its idempotency key was taken, the first event's.
async fn write_chunk<D: Driver>(
    conn: &mut D::Conn,
    q: &Queries,
    chunk: &[EventRow<'_>],
    fanned: bool,
    done: &mut Enqueued,
) -> Result<()> {
    let inserted: HashMap<Uuid, (i64, i64)> = D::statement(q.insert_events)
        .bind(fanned)
        .bind(json_array(chunk))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((uuid_col(r, "id")?, (r.try_get("occurred_at")?, r.try_get("created_at")?))))
        .collect::<Result<_>>()?;
    for row in chunk {
        if let Some(&(occurred_at, created_at)) = inserted.get(&row.id) {
            done.ids.push(row.id);
            done.inserted.push(Inserted { index: row.n, id: row.id, occurred_at, created_at });
            continue;
        }
        let first = D::statement(q.find_idempotent)
            .bind(row.app.to_string())
            .bind(row.key.map(str::to_owned))
            .fetch_one(&mut *conn)
            .await?;
        done.ids.push(uuid_col(&first, "id")?);
    }
    Ok(())
}
