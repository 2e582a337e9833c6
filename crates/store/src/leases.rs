//! Leases: claiming due deliveries (and expired leases) for a worker, and recording what
//! became of them, each a batch at a time and fenced by the lease token.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use certhook_core::event::DeliveryType;
use uuid::Uuid;

use crate::backend::Backend;
use crate::batch::{AttemptRow, ChannelHealthRow, ChannelLimitRow, LeaseRow, OutcomeRow, json_array};
use crate::driver::{Driver, Record, Statement};
use crate::error::{Result, StoreError};
use crate::model::*;
use crate::rows::{duration_ms, millis, uuid_col};
use crate::sql::Queries;

/// The ways an outcome is written, each by its own batch statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Delivered,
    Retry,
    Dead,
    Released,
}

impl OutcomeKind {
    /// In the order a batch writes them.
    const ALL: [OutcomeKind; 4] =
        [OutcomeKind::Delivered, OutcomeKind::Retry, OutcomeKind::Dead, OutcomeKind::Released];

    /// The statement that writes this kind of outcome.
    fn statement(self, q: &Queries) -> &'static str {
        match self {
            OutcomeKind::Delivered => q.record_delivered,
            OutcomeKind::Retry => q.record_retry,
            OutcomeKind::Dead => q.record_dead,
            OutcomeKind::Released => q.record_released,
        }
    }
}

impl<D: Driver> Backend<D> {
    /// Claims up to `limit` due deliveries under one fresh lease, at most `per_channel`
    /// per channel and none of the `exclude`d channels. Expired leases (a crashed
    /// worker's) are taken over first once a second, and otherwise whenever the due rows
    /// fall short of `limit`, so a busy queue does not pay a statement per claim for what
    /// is rare.
    pub async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim> {
        let limit = request.limit;
        if limit == 0 {
            return Ok(Claim::default());
        }
        let token = Uuid::new_v4();
        let tok = token.to_string();
        let lease_ms = duration_ms(request.lease);
        let exclude = json_array(&request.exclude.iter().map(Uuid::to_string).collect::<Vec<_>>());
        let window = (limit * 4).max(64) as i64;
        let channel_limits = json_array(
            &request
                .channel_limits
                .iter()
                .map(|(c, n)| ChannelLimitRow { c: c.to_string(), n: *n })
                .collect::<Vec<_>>(),
        );
        let (_writer, mut tx) = self.begin_hot().await?;
        let swept = self.sweep.due();
        let mut rows = if swept { self.claim_expired(&mut tx, &tok, lease_ms, limit).await? } else { Vec::new() };
        let mut taken_over = rows.len();
        if rows.len() < limit {
            let due = D::statement(self.q.claim_due)
                .bind(&tok)
                .bind(lease_ms)
                .bind(&exclude)
                .bind(window)
                .bind(&channel_limits)
                .bind(request.per_channel.max(1) as i64)
                .bind((limit - rows.len()) as i64)
                .fetch_all(&mut *tx)
                .await?;
            rows.extend(due);
        }
        if !swept && rows.len() < limit {
            let expired = self.claim_expired(&mut tx, &tok, lease_ms, limit - rows.len()).await?;
            taken_over += expired.len();
            rows.extend(expired);
        }
        // Rows read before the commit: one that cannot be read is dead-lettered in this
        // transaction, and the rest go out, rather than the whole claim failing after it
        // committed and leaving its leases to expire.
        let mut bodies: HashMap<String, Arc<[u8]>> = HashMap::new();
        let mut leases = Vec::with_capacity(rows.len());
        for r in &rows {
            match lease_from(r, token, &mut bodies) {
                Ok(lease) => leases.push(lease),
                Err(e) => {
                    let id: String = r.try_get("id")?;
                    tracing::error!(delivery_id = %id, error = %e, "a claimed delivery cannot be read; dead-lettered");
                    D::statement(self.q.dead_letter_corrupt).bind(e.to_string()).bind(&id).execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(Claim { leases, taken_over })
    }

    /// Takes over up to `limit` expired leases under `token`.
    async fn claim_expired(&self, conn: &mut D::Conn, token: &str, lease_ms: i64, limit: usize) -> Result<Vec<D::Row>> {
        D::statement(self.q.claim_expired).bind(token).bind(lease_ms).bind(limit as i64).fetch_all(conn).await
    }

    /// Pushes the given leases (delivery id and token) out to `lease` from now, in one
    /// statement; the ids whose lease still held and was extended. A lease that was taken
    /// over or settled meanwhile is left alone.
    pub async fn extend(&self, leases: &[(Uuid, Uuid)], lease: Duration) -> Result<Vec<Uuid>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<LeaseRow> =
            leases.iter().map(|(id, token)| LeaseRow { id: id.to_string(), token: token.to_string() }).collect();
        let (_writer, mut tx) = self.begin_hot().await?;
        let extended = D::statement(self.q.extend_leases)
            .bind(duration_ms(lease))
            .bind(json_array(&rows))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| uuid_col(r, "id"))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        Ok(extended)
    }

    /// Records a batch of outcomes in one transaction: one statement per kind of outcome
    /// and one for all attempts, each over a bound JSON array. Each outcome is accepted
    /// only if its lease still holds the row (fencing); the result says which were, in
    /// input order.
    pub async fn record(&self, outcomes: &[Outcome]) -> Result<Vec<bool>> {
        let ids: Vec<String> = outcomes.iter().map(|o| o.lease.delivery_id.to_string()).collect();
        // The same delivery twice in one batch (an old holder's fenced outcome and the new
        // holder's) goes in separate rounds: a round's statements return ids only, which
        // must name one outcome each.
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
        let rounds: Vec<usize> = ids
            .iter()
            .map(|id| {
                let n = seen.entry(id.as_str()).or_insert(0);
                *n += 1;
                *n - 1
            })
            .collect();
        let (_writer, mut tx) = self.begin_hot().await?;
        // Per outcome: its attempt number if accepted (the lease still held the row).
        let mut numbers: Vec<Option<i64>> = vec![None; outcomes.len()];
        for round in 0..rounds.iter().max().map_or(0, |m| m + 1) {
            let mut by_kind: [Vec<OutcomeRow>; OutcomeKind::ALL.len()] = Default::default();
            let mut index_of: HashMap<&str, usize> = HashMap::new();
            for (i, (Outcome { lease, attempt, disposition }, id)) in outcomes.iter().zip(&ids).enumerate() {
                if rounds[i] != round {
                    continue;
                }
                index_of.insert(id.as_str(), i);
                let (kind, delay, reason) = match disposition {
                    Disposition::Delivered => (OutcomeKind::Delivered, 0, None),
                    Disposition::Retry { delay } => (OutcomeKind::Retry, duration_ms(*delay), None),
                    Disposition::Dead { reason } => (OutcomeKind::Dead, 0, Some(reason.as_str())),
                    Disposition::Released => (OutcomeKind::Released, 0, None),
                };
                by_kind[kind as usize].push(OutcomeRow {
                    id,
                    token: lease.token.to_string(),
                    added: i64::from(attempt.is_some()),
                    status: attempt.as_ref().and_then(|a| a.status_code),
                    error: attempt.as_ref().and_then(|a| a.error.as_deref()),
                    delay,
                    reason,
                });
            }
            for kind in OutcomeKind::ALL {
                let rows = &by_kind[kind as usize];
                if rows.is_empty() {
                    continue;
                }
                for row in D::statement(kind.statement(self.q)).bind(json_array(rows)).fetch_all(&mut *tx).await? {
                    let id: String = row.try_get("id")?;
                    if let Some(&i) = index_of.get(id.as_str()) {
                        numbers[i] = Some(row.try_get("attempt_count")?);
                    }
                }
            }
        }
        let mut accepted = Vec::with_capacity(outcomes.len());
        let mut attempts = Vec::new();
        // Per channel: did any attempt in this batch succeed, did any fail?
        let mut channel_health: HashMap<Uuid, (bool, bool)> = HashMap::new();
        let mut released = false;
        for ((Outcome { lease, attempt, disposition }, id), number) in outcomes.iter().zip(&ids).zip(numbers) {
            let Some(number) = number else {
                accepted.push(false);
                continue;
            };
            accepted.push(true);
            released |= matches!(disposition, Disposition::Released);
            if let Some(a) = attempt {
                let delivered = matches!(disposition, Disposition::Delivered);
                let (ok, failed) = channel_health.entry(lease.channel_id).or_insert((false, false));
                *ok |= delivered;
                *failed |= !delivered;
                attempts.push(AttemptRow {
                    id,
                    number,
                    started: a.started_at.timestamp_millis(),
                    duration: duration_ms(a.duration),
                    status: a.status_code,
                    error: a.error.as_deref(),
                    snippet: a.response_snippet.as_deref(),
                });
            }
        }
        // Verification events are a channel's first and rarest deliveries: one statement each.
        for ((Outcome { lease, disposition, .. }, id), ok) in outcomes.iter().zip(&ids).zip(&accepted) {
            if *ok
                && *disposition == Disposition::Delivered
                && lease.delivery_type == DeliveryType::Verification
                && let Some(body) = certhook_core::lifecycle::without_token(&lease.body)
            {
                D::statement(self.q.scrub_message).bind(body).bind(id.as_str()).execute(&mut *tx).await?;
            }
        }
        if !attempts.is_empty() {
            D::statement(self.q.insert_attempts).bind(json_array(&attempts)).execute(&mut *tx).await?;
        }
        if !channel_health.is_empty() {
            // Channel rows locked in id order, then one statement for both kinds: batches
            // written side by side (PostgreSQL) cannot deadlock on them.
            let mut health: Vec<ChannelHealthRow> = channel_health
                .iter()
                .map(|(c, (ok, failed))| ChannelHealthRow {
                    c: c.to_string(),
                    ok: i64::from(*ok),
                    failed: i64::from(*failed),
                })
                .collect();
            health.sort_by(|a, b| a.c.cmp(&b.c));
            let ids: Vec<&str> = health.iter().map(|h| h.c.as_str()).collect();
            D::statement(self.q.lock_channels).bind(json_array(&ids)).fetch_all(&mut *tx).await?;
            D::statement(self.q.channel_health).bind(json_array(&health)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if released {
            self.wake();
        }
        Ok(accepted)
    }
}

/// A claimed row as a lease; deliveries of one message (fan-out) share its body.
fn lease_from(r: &impl Record, token: Uuid, bodies: &mut HashMap<String, Arc<[u8]>>) -> Result<Lease> {
    let message: String = r.try_get("message_id")?;
    let body = match bodies.get(&message) {
        Some(b) => b.clone(),
        None => {
            let b: Arc<[u8]> = Arc::from(
                r.try_get::<Option<Vec<u8>>, _>("body")?
                    .ok_or_else(|| StoreError::Corrupt(format!("message {message} has no body")))?,
            );
            bodies.insert(message.clone(), b.clone());
            b
        }
    };
    Ok(Lease {
        delivery_id: uuid_col(r, "id")?,
        token,
        channel_id: uuid_col(r, "channel_id")?,
        cloud_event_id: uuid_col(r, "message_id")?,
        delivery_type: DeliveryType::read(&r.try_get::<String, _>("type")?),
        attempts_before: r.try_get::<i64, _>("attempt_count")? as u32,
        body,
        enqueued_at: millis(r.try_get("enqueued_at")?),
    })
}
