//! Inspection and upkeep: delivery lists and details, dead-letter replay and purge, queue
//! status, and retention pruning.
use std::time::Duration;

use certhook_core::event::{ChannelState, DeliveryState};
use uuid::Uuid;

use crate::backend::Backend;
use crate::batch::json_array;
use crate::driver::{Driver, Record, Statement};
use crate::error::{Result, StoreError};
use crate::model::*;
use crate::rows::{delivery_from, duration_ms, event_from, millis, parse_col, uuid_col};

/// Rows a retention pass deletes per statement, so no statement holds the writer for long.
const PRUNE_CHUNK: i64 = 5_000;

/// Dead letters replayed or purged per transaction.
const DEAD_LETTER_CHUNK: usize = 500;

impl<D: Driver> Backend<D> {
    /// Deliveries matching `filter`, newest first.
    pub async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>> {
        let state = filter.state.map(|s| s.as_str());
        let channel = filter.channel_id.map(|c| c.to_string());
        let since = filter.dead_since.map(|t| t.timestamp_millis());
        let before = filter.dead_before.map(|t| t.timestamp_millis());
        let created_since = filter.created_since.map(|t| t.timestamp_millis());
        let created_before = filter.created_before.map(|t| t.timestamp_millis());
        let limit = filter.limit.map(i64::from).unwrap_or(i64::MAX);
        let after = match filter.after {
            Some(id) => {
                let key = id.to_string();
                let row =
                    D::statement(self.q.delivery_position).bind(&key).fetch_optional(&mut *self.conn().await?).await?;
                let Some(row) = row else { return Err(StoreError::NotFound { kind: "delivery (after)", id: key }) };
                Some((row.try_get::<i64, _>("created_at")?, key))
            }
            None => None,
        };
        let after_at = after.as_ref().map(|a| a.0);
        let rows = D::statement(self.q.list_deliveries)
            .bind(state)
            .bind(state)
            .bind(&channel)
            .bind(&channel)
            .bind(&filter.delivery_type)
            .bind(&filter.delivery_type)
            .bind(since)
            .bind(since)
            .bind(before)
            .bind(before)
            .bind(created_since)
            .bind(created_since)
            .bind(created_before)
            .bind(created_before)
            .bind(after_at)
            .bind(after_at)
            .bind(after.as_ref().map(|a| a.1.clone()))
            .bind(limit)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        // A row that cannot be read (written by hand, not by certhook) is skipped with a
        // warning, so it does not hide every other delivery from the lists.
        Ok(rows
            .iter()
            .filter_map(|row| {
                delivery_from(row)
                    .inspect_err(|e| tracing::warn!(error = %e, "a delivery row cannot be read; not listed"))
                    .ok()
            })
            .collect())
    }

    /// Events, newest first, a page at a time: accepted ones and plain-SQL rows fan-out
    /// refused (with why).
    pub async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>> {
        let app = query.application_id.map(|a| a.to_string());
        let after = match &query.after {
            Some(id) => {
                let row = D::statement(self.q.event_seq).bind(id).fetch_optional(&mut *self.conn().await?).await?;
                let Some(row) = row else { return Err(StoreError::NotFound { kind: "event (after)", id: id.clone() }) };
                Some(row.try_get::<i64, _>("seq")?)
            }
            None => None,
        };
        let before = after.unwrap_or(i64::MAX);
        let limit = i64::from(query.limit);
        let sql = match (app.is_some(), query.refused) {
            (false, false) => self.q.list_events,
            (true, false) => self.q.list_events_of_app,
            (false, true) => self.q.list_refused_events,
            (true, true) => self.q.list_refused_events_of_app,
        };
        let mut statement = D::statement(sql);
        if let Some(app) = app {
            statement = statement.bind(app);
        }
        let rows = statement.bind(before).bind(limit).fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(event_from).collect()
    }

    /// One event with the deliveries it made.
    pub async fn get_event(&self, id: &str) -> Result<EventDetail> {
        let Some(row) = D::statement(self.q.get_event).bind(id).fetch_optional(&mut *self.conn().await?).await? else {
            return Err(StoreError::NotFound { kind: "event", id: id.to_string() });
        };
        let event = event_from(&row)?;
        let deliveries = D::statement(self.q.deliveries_of_event)
            .bind(id)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(delivery_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(EventDetail { event, deliveries })
    }

    /// One delivery with its attempts.
    pub async fn get_delivery(&self, id: Uuid) -> Result<DeliveryDetail> {
        let key = id.to_string();
        let Some(row) = D::statement(self.q.get_delivery).bind(&key).fetch_optional(&mut *self.conn().await?).await?
        else {
            return Err(StoreError::NotFound { kind: "delivery", id: key });
        };
        let delivery = delivery_from(&row)?;
        let attempts = D::statement(self.q.list_attempts)
            .bind(&key)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(|r| {
                Ok(Attempt {
                    number: r.try_get::<i64, _>("number")? as u32,
                    started_at: millis(r.try_get("started_at")?),
                    duration_ms: r.try_get::<i64, _>("duration_ms")?.max(0) as u64,
                    status_code: r.try_get::<Option<i64>, _>("status_code")?.map(|c| c as u16),
                    error: r.try_get("error")?,
                    response_snippet: r.try_get("response_snippet")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DeliveryDetail { delivery, attempts })
    }

    async fn select_dead(&self, selector: &DeadLetterSelector) -> Result<Vec<Uuid>> {
        match selector {
            DeadLetterSelector::Id(id) => {
                let d = self.get_delivery(*id).await?.delivery;
                if d.state != DeliveryState::Dead {
                    return Err(StoreError::NotFound { kind: "dead letter", id: id.to_string() });
                }
                Ok(vec![*id])
            }
            DeadLetterSelector::Matching(filter) => {
                let filter =
                    DeliveryFilter { state: Some(DeliveryState::Dead), limit: None, after: None, ..filter.clone() };
                Ok(self.list_deliveries(&filter).await?.into_iter().map(|d| d.id).collect())
            }
        }
    }

    /// Puts dead letters back in the queue with fresh attempts and the same CloudEvent ids.
    ///
    /// Dead letters of a disabled or deleted channel stay dead (replaying them would only
    /// dead-letter them again); naming one by id is refused with the reason.
    pub async fn replay(&self, selector: &DeadLetterSelector, dry_run: bool) -> Result<Replayed> {
        let candidates = self.select_dead(selector).await?;
        let mut report = Replayed { ids: Vec::with_capacity(candidates.len()), skipped: Vec::new() };
        // A chunk per transaction: `dlq replay --all` over a big dead-letter queue never
        // holds the SQLite writer for long, and the worker's writes go in between.
        for chunk in candidates.chunks(DEAD_LETTER_CHUNK) {
            let (_writer, mut tx) = self.begin_write().await?;
            let mut replayed_here = false;
            for &id in chunk {
                let key = id.to_string();
                let Some(row) = D::statement(self.q.replayable).bind(&key).fetch_optional(&mut *tx).await? else {
                    continue;
                };
                let deleted: Option<i64> = row.try_get("deleted_at")?;
                let channel_state: ChannelState = parse_col(&row, "state")?;
                let target = match (deleted, channel_state) {
                    (None, ChannelState::Active) => DeliveryState::Pending,
                    (None, ChannelState::Paused | ChannelState::PendingVerification) => DeliveryState::Held,
                    (deleted, state) => {
                        let why = if deleted.is_some() { "deleted".to_string() } else { state.to_string() };
                        if matches!(selector, DeadLetterSelector::Id(_)) {
                            tx.rollback().await?;
                            let fix = if deleted.is_some() { "" } else { "; enable it first" };
                            return Err(StoreError::Conflict(format!("dead letter {id}: its channel is {why}{fix}")));
                        }
                        let channel_id = uuid_col(&row, "channel_id")?;
                        match report.skipped.iter_mut().find(|s| s.channel_id == channel_id) {
                            Some(s) => s.count += 1,
                            None => report.skipped.push(SkippedChannel { channel_id, why, count: 1 }),
                        }
                        continue;
                    }
                };
                if !dry_run {
                    D::statement(self.q.replay_one).bind(target.as_str()).bind(&key).execute(&mut *tx).await?;
                    replayed_here = true;
                }
                report.ids.push(id);
            }
            tx.commit().await?;
            if replayed_here {
                self.wake();
            }
        }
        Ok(report)
    }

    /// Deletes dead letters and their attempts: the only way they are ever deleted. A
    /// chunk per transaction, as [`Self::replay`].
    pub async fn purge(&self, selector: &DeadLetterSelector, dry_run: bool) -> Result<Vec<Uuid>> {
        let ids = self.select_dead(selector).await?;
        if dry_run || ids.is_empty() {
            return Ok(ids);
        }
        let mut purged = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(DEAD_LETTER_CHUNK) {
            let (_writer, mut tx) = self.begin_write().await?;
            for &id in chunk {
                let key = id.to_string();
                // The row first: one replayed since it was selected keeps its attempts.
                if D::statement(self.q.purge_one).bind(&key).execute(&mut *tx).await? == 1 {
                    D::statement(self.q.purge_attempts).bind(&key).execute(&mut *tx).await?;
                    purged.push(id);
                }
            }
            tx.commit().await?;
        }
        Ok(purged)
    }

    /// Queue depth per state, oldest waiting age, events, channels by state.
    pub async fn status(&self) -> Result<Status> {
        let mut status = Status::default();
        for row in D::statement(self.q.count_deliveries).fetch_all(&mut *self.conn().await?).await? {
            let n = row.try_get::<i64, _>(1)?.max(0) as u64;
            let c = &mut status.deliveries;
            match parse_col::<DeliveryState>(&row, "state")? {
                DeliveryState::Pending => c.pending = n,
                DeliveryState::Leased => c.leased = n,
                DeliveryState::Retrying => c.retrying = n,
                DeliveryState::Held => c.held = n,
                DeliveryState::Delivered => c.delivered = n,
                DeliveryState::Dead => c.dead = n,
            }
        }
        for row in D::statement(self.q.count_channels).fetch_all(&mut *self.conn().await?).await? {
            let n = row.try_get::<i64, _>(1)?.max(0) as u64;
            let c = &mut status.channels;
            match parse_col::<ChannelState>(&row, "state")? {
                ChannelState::PendingVerification => c.pending_verification = n,
                ChannelState::Active => c.active = n,
                ChannelState::Paused => c.paused = n,
                ChannelState::Disabled => c.disabled = n,
            }
        }
        let total: i64 = D::statement(self.q.count_events).fetch_one(&mut *self.conn().await?).await?.try_get(0)?;
        status.events.total = total.max(0) as u64;
        let oldest: Option<i64> =
            D::statement(self.q.oldest_waiting).fetch_one(&mut *self.conn().await?).await?.try_get(0)?;
        if let Some(oldest) = oldest {
            let now = self.now().await?.timestamp_millis();
            status.oldest_pending_age_seconds = ((now - oldest).max(0) as f64) / 1000.0;
        }
        Ok(status)
    }

    /// Deletes delivered deliveries (with their attempts), and events and messages nothing
    /// refers to any more, once they are older than `retention`. Dead letters stay.
    pub async fn prune(&self, retention: Duration) -> Result<Pruned> {
        let age = duration_ms(retention);
        let mut pruned = Pruned::default();
        loop {
            let (_writer, mut tx) = self.begin_write().await?;
            let gone = D::statement(self.q.prune_delivered).bind(age).bind(PRUNE_CHUNK).fetch_all(&mut *tx).await?;
            let ids = gone.iter().map(|r| r.try_get::<String, _>(0)).collect::<std::result::Result<Vec<_>, _>>()?;
            D::statement(self.q.prune_attempts).bind(json_array(&ids)).execute(&mut *tx).await?;
            tx.commit().await?;
            let n = ids.len() as u64;
            pruned.deliveries += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        loop {
            let n = D::statement(self.q.prune_messages)
                .bind(age)
                .bind(PRUNE_CHUNK)
                .execute(&mut *self.conn().await?)
                .await?;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        loop {
            let n =
                D::statement(self.q.prune_events).bind(age).bind(PRUNE_CHUNK).execute(&mut *self.conn().await?).await?;
            pruned.events += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        Ok(pruned)
    }
}
