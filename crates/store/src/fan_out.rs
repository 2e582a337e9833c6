//! Fan-out: outbox rows become one rendered message per matching alert and one delivery
//! per channel of it, a batch at a time, written with one statement per table.
use std::borrow::Cow;
use std::collections::HashMap;

use certhook_core::event::{
    AlertType, Certificate, ChannelKind, ChannelState, DeadReason, DeliveryState, DeliveryType, NewEvent,
};
use certhook_core::render::{AlertRef, RenderSettings, render_alert_event};
use uuid::Uuid;

use crate::backend::Backend;
use crate::batch::{CertificateRow, DeliveryRow, MessageRow, byte_chunks, json_array};
use crate::driver::{Driver, Record, Statement};
use crate::error::Result;
use crate::inventory::certificate_row;
use crate::model::*;
use crate::outbox::Inserted;
use crate::rows::{alert_from, millis, parse_col};

/// Rows bound per batch statement at most (a bound JSON array stays a few MB).
pub(crate) const FAN_OUT_CHUNK: usize = 2_000;

/// Certificates one outbox row may carry (the scanner writes at most
/// `max_certificates_per_event`).
const MAX_CERTIFICATES_PER_ROW: usize = 1_000;

/// Payload bytes bound per batch statement, about.
pub(crate) const CHUNK_BYTES: usize = 8 << 20;

/// Where a new delivery for a channel in `state` starts, and why it is dead if it is.
fn initial_delivery_state(state: ChannelState) -> (DeliveryState, Option<&'static str>) {
    match state {
        ChannelState::Active => (DeliveryState::Pending, None),
        ChannelState::Paused | ChannelState::PendingVerification => (DeliveryState::Held, None),
        ChannelState::Disabled => (DeliveryState::Dead, Some(DeadReason::ChannelDisabled.as_str())),
    }
}

/// Alerts and channels read once per fan-out batch: a batch of events for one application
/// asks the same questions for every event.
#[derive(Default)]
struct FanOutCache {
    alerts: HashMap<(String, AlertType), Vec<Alert>>,
    alerts_by_id: HashMap<String, Vec<Alert>>,
    channels: HashMap<Uuid, Vec<LiveChannel>>,
    live_apps: HashMap<String, bool>,
}

impl FanOutCache {
    /// Whether the application exists and was not deleted.
    async fn app_live<D: Driver>(&mut self, b: &Backend<D>, conn: &mut D::Conn, application_id: &str) -> Result<bool> {
        if let Some(&hit) = self.live_apps.get(application_id) {
            return Ok(hit);
        }
        let live =
            D::statement(b.q.application_exists).bind(application_id).fetch_optional(&mut *conn).await?.is_some();
        self.live_apps.insert(application_id.to_string(), live);
        Ok(live)
    }

    async fn alerts_for<D: Driver>(
        &mut self,
        b: &Backend<D>,
        conn: &mut D::Conn,
        application_id: &str,
        alert_type: AlertType,
    ) -> Result<Vec<Alert>> {
        let key = (application_id.to_string(), alert_type);
        if let Some(hit) = self.alerts.get(&key) {
            return Ok(hit.clone());
        }
        let rows = D::statement(b.q.alerts_for_event)
            .bind(application_id)
            .bind(alert_type.as_str())
            .fetch_all(&mut *conn)
            .await?;
        let alerts = rows.iter().map(alert_from).collect::<Result<Vec<_>>>()?;
        self.alerts.insert(key, alerts.clone());
        Ok(alerts)
    }

    async fn alert_by_id<D: Driver>(&mut self, b: &Backend<D>, conn: &mut D::Conn, id: &str) -> Result<Vec<Alert>> {
        if let Some(hit) = self.alerts_by_id.get(id) {
            return Ok(hit.clone());
        }
        let rows = D::statement(b.q.get_alert).bind(id).fetch_all(&mut *conn).await?;
        let alerts = rows.iter().map(alert_from).collect::<Result<Vec<_>>>()?;
        self.alerts_by_id.insert(id.to_string(), alerts.clone());
        Ok(alerts)
    }

    /// The live channels of an alert.
    async fn channels_of<D: Driver>(
        &mut self,
        b: &Backend<D>,
        conn: &mut D::Conn,
        alert_id: Uuid,
    ) -> Result<Vec<LiveChannel>> {
        if let Some(hit) = self.channels.get(&alert_id) {
            return Ok(hit.clone());
        }
        let rows = D::statement(b.q.channels_of_alert).bind(alert_id.to_string()).fetch_all(&mut *conn).await?;
        let channels = rows
            .iter()
            .map(|r| {
                Ok(LiveChannel { id: r.try_get("id")?, state: parse_col(r, "state")?, kind: parse_col(r, "kind")? })
            })
            .collect::<Result<Vec<_>>>()?;
        self.channels.insert(alert_id, channels.clone());
        Ok(channels)
    }

    /// Whether everything this cache read (applications, alerts, channels and their
    /// states) still reads the same on `conn`: a plan made from it is still what fan-out
    /// would make now.
    async fn still_holds<D: Driver>(&self, b: &Backend<D>, conn: &mut D::Conn) -> Result<bool> {
        let mut now = FanOutCache::default();
        for (app, live) in &self.live_apps {
            if now.app_live(b, conn, app).await? != *live {
                return Ok(false);
            }
        }
        for ((app, alert_type), alerts) in &self.alerts {
            if &now.alerts_for(b, conn, app, *alert_type).await? != alerts {
                return Ok(false);
            }
        }
        for (id, alerts) in &self.alerts_by_id {
            if &now.alert_by_id(b, conn, id).await? != alerts {
                return Ok(false);
            }
        }
        for (alert, channels) in &self.channels {
            if &now.channels_of(b, conn, *alert).await? != channels {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A channel of an alert, as fan-out needs it.
#[derive(Clone, PartialEq)]
struct LiveChannel {
    id: String,
    state: ChannelState,
    kind: ChannelKind,
}

/// Which of an alert's channels an event goes to, and as what. A renewal goes to an
/// expiration alert's PagerDuty channels as the resolution of their incident, and to no
/// other of its channels unless the alert subscribes to renewals too; there, PagerDuty
/// channels get the resolution only, not a renewal incident of their own.
fn routes(alert: &Alert, event_type: AlertType, channels: &[LiveChannel]) -> Vec<(DeliveryType, Vec<LiveChannel>)> {
    let resolves = event_type == AlertType::Renewal && alert.subscribes_to(AlertType::Expiration);
    let pick =
        |pagerduty: bool| channels.iter().filter(move |c| (c.kind == ChannelKind::Pagerduty) == pagerduty).cloned();
    let mut out = Vec::new();
    if alert.subscribes_to(event_type) {
        let takers: Vec<LiveChannel> = if resolves { pick(false).collect() } else { channels.to_vec() };
        out.push((DeliveryType::Alert(event_type), takers));
    }
    if resolves {
        out.push((DeliveryType::Resolve, pick(true).collect()));
    }
    out.retain(|(_, takers)| !takers.is_empty());
    out
}

/// One alert an event goes to, with the channels it reaches, the certificates of the event
/// that pass the alert's filters, and what its deliveries are: the event as an alert, or
/// (`DeliveryType::Resolve`) a renewal resolving an expiration alert's PagerDuty incident.
struct FanOutTarget<'a> {
    alert: &'a Alert,
    channels: &'a [LiveChannel],
    certificates: &'a [Certificate],
    delivery_type: DeliveryType,
}

/// The rows one fan-out batch writes, one statement per table.
#[derive(Default)]
struct FanOutBatch<'a> {
    certificates: Vec<CertificateRow<'a>>,
    messages: Vec<MessageRow<'a>>,
    deliveries: Vec<DeliveryRow<'a>>,
}

impl<'a> FanOutBatch<'a> {
    /// Renders the event for one alert and adds a delivery per channel of it.
    fn add(&mut self, settings: &RenderSettings, ev: &'a PendingEvent, parsed: &ParsedEvent, target: FanOutTarget<'_>) {
        let FanOutTarget { alert, channels, certificates, delivery_type } = target;
        if channels.is_empty() || certificates.is_empty() {
            return;
        }
        // A resolution is rendered as the renewal it is and delivered as the resolution of
        // the alert's incident.
        let alert_type = match delivery_type {
            DeliveryType::Alert(t) => t,
            _ => AlertType::Renewal,
        };
        let delivery_type = delivery_type.as_str();
        let message_id = Uuid::now_v7().to_string();
        let alert_ref = AlertRef {
            id: alert.id,
            name: alert.name.clone(),
            alert_type,
            alert_before: alert.alert_before,
            application_id: parsed.application_id,
        };
        let body = render_alert_event(settings, &alert_ref, &message_id, millis(ev.occurred_at), certificates);
        for channel in channels {
            let (state, reason) = initial_delivery_state(channel.state);
            self.deliveries.push(DeliveryRow {
                id: Uuid::now_v7().to_string(),
                message: message_id.clone(),
                event: &ev.id,
                channel: channel.id.clone(),
                delivery_type,
                state: state.as_str(),
                reason,
                enqueued: ev.created_at,
            });
        }
        self.messages.push(MessageRow {
            id: message_id,
            event: &ev.id,
            alert: alert.id.to_string(),
            delivery_type,
            // serde_json writes UTF-8 and nothing else, so this cannot fail.
            body: String::from_utf8(body).expect("a rendered CloudEvent is UTF-8"),
        });
    }
}

/// An event row waiting for fan-out.
struct PendingEvent {
    id: String,
    application_id: String,
    event_type: String,
    certificate: Option<String>,
    certificates: Option<String>,
    alert_id: Option<String>,
    occurred_at: i64,
    created_at: i64,
}

/// What an outbox row turned out to hold.
struct ParsedEvent {
    alert_type: AlertType,
    application_id: Uuid,
    certificates: Vec<Certificate>,
    upsert: bool,
}

impl ParsedEvent {
    /// An event of one certificate, as the API takes it: all but an expiration (which the
    /// inventory's own scan found) update the inventory.
    fn single(alert_type: AlertType, application_id: Uuid, certificate: Certificate) -> ParsedEvent {
        let upsert = alert_type != AlertType::Expiration;
        ParsedEvent { alert_type, application_id, certificates: vec![certificate], upsert }
    }
}

/// Reads an outbox row: what the producer API wrote, or what a PKI inserted by plain SQL
/// (checked as the API checks an event, `max_event_bytes` included).
fn parse_pending(ev: &PendingEvent, max_event_bytes: usize) -> std::result::Result<ParsedEvent, String> {
    let occurred = millis(ev.occurred_at);
    if let Some(list) = &ev.certificates {
        // The scanner's batches; a plain-SQL row that fills this column gets every check too.
        let items: Vec<serde_json::Value> = serde_json::from_str(list).map_err(|e| format!("certificates: {e}"))?;
        if items.is_empty() || items.len() > MAX_CERTIFICATES_PER_ROW {
            return Err(format!("certificates: {} certificates; 1 to {MAX_CERTIFICATES_PER_ROW} allowed", items.len()));
        }
        let mut certificates = Vec::with_capacity(items.len());
        let mut alert_type = None;
        let mut application_id = None;
        for (i, item) in items.into_iter().enumerate() {
            let size = item.to_string().len();
            if size > max_event_bytes {
                return Err(format!(
                    "certificates[{i}]: certificate size {size} bytes exceeds max_event_bytes {max_event_bytes}"
                ));
            }
            let value =
                serde_json::json!({"type": ev.event_type, "applicationId": ev.application_id, "certificate": item});
            let checked = certhook_core::validate::parse_event(&value, occurred)
                .map_err(|e| format!("certificates[{i}]: {e}"))?;
            alert_type = Some(checked.event_type);
            application_id = Some(checked.application_id);
            certificates.push(checked.certificate);
        }
        let (Some(alert_type), Some(application_id)) = (alert_type, application_id) else {
            unreachable!("at least one certificate was checked")
        };
        return Ok(ParsedEvent { alert_type, application_id, certificates, upsert: false });
    }
    let certificate: serde_json::Value = match &ev.certificate {
        Some(text) if text.len() > max_event_bytes => {
            return Err(certhook_core::validate::ValidationError::TooLarge { size: text.len(), max: max_event_bytes }
                .to_string());
        }
        Some(text) => serde_json::from_str(text).map_err(|e| format!("certificate: invalid JSON: {e}"))?,
        None => return Err("certificate: missing required field".into()),
    };
    let value = serde_json::json!({
        "type": ev.event_type,
        "applicationId": ev.application_id,
        "certificate": certificate,
    });
    let NewEvent { event_type, application_id, certificate, .. } =
        certhook_core::validate::parse_event(&value, occurred).map_err(|e| e.to_string())?;
    Ok(ParsedEvent::single(event_type, application_id, certificate))
}

/// Whether an event that names its alert (`alert_id`) may go to it: an alert of the
/// event's own application and type. A plain-SQL row could otherwise send one
/// application's certificates to another's channels.
fn alert_fits(alert_id: &str, found: &[Alert], event: &ParsedEvent) -> std::result::Result<(), String> {
    let Some(alert) = found.first() else {
        return Err(format!("alertId: no alert '{alert_id}'"));
    };
    if alert.application_id != event.application_id {
        return Err(format!("alertId: alert '{alert_id}' belongs to another application"));
    }
    if !alert.subscribes_to(event.alert_type) {
        let types: Vec<&str> = alert.types.iter().map(|t| t.as_str()).collect();
        return Err(format!(
            "alertId: alert '{alert_id}' subscribes to {}, the event is {}",
            types.join(", "),
            event.alert_type
        ));
    }
    Ok(())
}

/// Outbox rows that parse, and the ids of those refused with why.
type Parsed<'a> = (Vec<(&'a PendingEvent, ParsedEvent)>, Vec<(&'a str, String)>);

/// What a batch of outbox rows becomes: the rows to write, and the rows refused with why.
struct Planned<'a> {
    batch: FanOutBatch<'a>,
    refused: Vec<(&'a str, String)>,
}

impl<D: Driver> Backend<D> {
    /// Fans out up to `limit` new outbox rows into deliveries; returns how many rows it read.
    ///
    /// Each row: the inventory is updated, one message is rendered per matching alert, and
    /// one delivery is created per channel of that alert, in the state the channel allows.
    /// The batch is written set-based: one statement per table over a JSON array of rows.
    pub async fn fan_out(&self, settings: &RenderSettings, limit: usize) -> Result<usize> {
        if D::LOCKS_ROWS {
            self.fan_out_locked(settings, limit).await
        } else {
            self.fan_out_then_write(settings, limit).await
        }
    }

    /// Where rows can be locked (PostgreSQL, several processes): the rows are read with
    /// `SKIP LOCKED` inside the transaction that writes them, so processes split the work.
    /// On SQLite, where the writer excludes every other, this is the fallback for a plan
    /// that no longer holds.
    async fn fan_out_locked(&self, settings: &RenderSettings, limit: usize) -> Result<usize> {
        // A read first: the worker calls this every pass, and a write transaction that
        // finds nothing would still take the writer's turn.
        if D::statement(self.q.any_unfanned).fetch_optional(&mut *self.conn().await?).await?.is_none() {
            return Ok(0);
        }
        let (_writer, mut tx) = self.begin_hot().await?;
        let rows = D::statement(self.q.unfanned_events).bind(limit as i64).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let events = rows.iter().map(pending_from).collect::<Result<Vec<_>>>()?;
        let (parsed, refused) = self.parse_all(&events);
        let planned = self.plan(&mut tx, settings, &parsed, refused, &mut FanOutCache::default()).await?;
        // Read unfanned and locked in this transaction: every row is taken.
        self.take_unfanned(&mut tx, &events).await?;
        let created = self.write_planned(&mut tx, planned).await?;
        tx.commit().await?;
        if created > 0 {
            self.wake();
        }
        Ok(events.len())
    }

    /// With one writer (SQLite): everything but the writes (reading the rows, their
    /// alerts and channels, rendering) happens before the writer is taken, which every
    /// claim and outcome write waits for. Under the writer the plan is checked: the
    /// applications, alerts and channels it read must read the same (a channel paused or
    /// resumed meanwhile changes the state its deliveries start in) and its rows must be
    /// still unfanned (another process may have fanned some out). If not, the batch is
    /// planned again with the writer held, as `fan_out_locked` does.
    async fn fan_out_then_write(&self, settings: &RenderSettings, limit: usize) -> Result<usize> {
        let mut conn = self.conn().await?;
        let rows = D::statement(self.q.unfanned_events).bind(limit as i64).fetch_all(&mut *conn).await?;
        let events = rows.iter().map(pending_from).collect::<Result<Vec<_>>>()?;
        if events.is_empty() {
            return Ok(0);
        }
        let (parsed, refused) = self.parse_all(&events);
        let mut cache = FanOutCache::default();
        let planned = self.plan(&mut conn, settings, &parsed, refused, &mut cache).await?;
        drop(conn);
        {
            let (_writer, mut tx) = self.begin_hot().await?;
            if cache.still_holds(self, &mut tx).await? && self.take_unfanned(&mut tx, &events).await? == events.len() {
                let created = self.write_planned(&mut tx, planned).await?;
                tx.commit().await?;
                if created > 0 {
                    self.wake();
                }
                return Ok(events.len());
            }
            tx.rollback().await?;
        }
        self.fan_out_locked(settings, limit).await
    }

    /// Fans out the events an enqueue just stored, in its transaction (`tx`), as one batch
    /// (an enqueue fans out at most 5,000, and `write_planned` bounds each statement): they
    /// were checked as they came in, so they are planned as parsed. Their rows were stored
    /// as fanned out; what the plan refuses (an application deleted since) gets its reason
    /// as a worker's fan-out would write it.
    pub(crate) async fn fan_out_enqueued(
        &self,
        tx: &mut sqlx::Transaction<'static, D::Db>,
        settings: &RenderSettings,
        events: &[NewEvent],
        inserted: &[Inserted],
    ) -> Result<()> {
        let pending: Vec<PendingEvent> = inserted
            .iter()
            .map(|row| {
                let ev = &events[row.index];
                PendingEvent {
                    id: row.id.to_string(),
                    application_id: ev.application_id.to_string(),
                    event_type: ev.event_type.as_str().to_string(),
                    certificate: None,
                    certificates: None,
                    alert_id: None,
                    occurred_at: row.occurred_at,
                    created_at: row.created_at,
                }
            })
            .collect();
        let parsed: Vec<(&PendingEvent, ParsedEvent)> = pending
            .iter()
            .zip(inserted)
            .map(|(p, row)| {
                let ev = &events[row.index];
                (p, ParsedEvent::single(ev.event_type, ev.application_id, ev.certificate.clone()))
            })
            .collect();
        // One plan, so one inventory upsert in key order: chunk by chunk, two enqueues
        // with overlapping certificates could lock them in opposite orders.
        let planned = self.plan(tx, settings, &parsed, Vec::new(), &mut FanOutCache::default()).await?;
        self.write_planned(tx, planned).await?;
        Ok(())
    }

    /// Marks those of `events` still unfanned as fanned out; how many that was.
    async fn take_unfanned(
        &self,
        tx: &mut sqlx::Transaction<'static, D::Db>,
        events: &[PendingEvent],
    ) -> Result<usize> {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        Ok(D::statement(self.q.take_unfanned).bind(json_array(&ids)).fetch_all(&mut **tx).await?.len())
    }

    /// Reads each outbox row: those that parse, and those refused with why.
    fn parse_all<'a>(&self, events: &'a [PendingEvent]) -> Parsed<'a> {
        let mut parsed = Vec::with_capacity(events.len());
        let mut refused = Vec::new();
        for ev in events {
            match parse_pending(ev, self.max_event_bytes) {
                Ok(p) => parsed.push((ev, p)),
                Err(error) => refused.push((ev.id.as_str(), error)),
            }
        }
        (parsed, refused)
    }

    /// Reads what the parsed rows go to and renders them: the rows to write, and the
    /// refusals (`refused` and those found here).
    async fn plan<'a>(
        &self,
        conn: &mut D::Conn,
        settings: &RenderSettings,
        parsed_events: &'a [(&'a PendingEvent, ParsedEvent)],
        mut refused: Vec<(&'a str, String)>,
        cache: &mut FanOutCache,
    ) -> Result<Planned<'a>> {
        let mut batch = FanOutBatch::default();
        for (ev, parsed) in parsed_events {
            // The outbox's foreign key admits a deleted application's id: a plain-SQL row
            // (or an event accepted just before the delete) goes nowhere, with why.
            if !cache.app_live(self, conn, &ev.application_id).await? {
                let error = format!("applicationId: application '{}' was deleted", ev.application_id);
                refused.push((ev.id.as_str(), error));
                continue;
            }
            let alerts = match &ev.alert_id {
                Some(alert) => {
                    let alerts = cache.alert_by_id(self, conn, alert).await?;
                    if let Err(error) = alert_fits(alert, &alerts, parsed) {
                        refused.push((ev.id.as_str(), error));
                        continue;
                    }
                    alerts
                }
                None => cache.alerts_for(self, conn, &ev.application_id, parsed.alert_type).await?,
            };
            if parsed.upsert {
                for c in &parsed.certificates {
                    batch.certificates.push(certificate_row(&ev.application_id, c));
                }
            }
            // A renewal also resolves the certificate's open expiration incidents
            // (PagerDuty) of the application's expiration alerts.
            let mut targets = alerts;
            if parsed.alert_type == AlertType::Renewal && ev.alert_id.is_none() {
                for alert in cache.alerts_for(self, conn, &ev.application_id, AlertType::Expiration).await? {
                    if !targets.iter().any(|a| a.id == alert.id) {
                        targets.push(alert);
                    }
                }
            }
            for alert in &targets {
                let passing: Cow<'_, [Certificate]> = if alert.filter.is_empty() {
                    Cow::Borrowed(&parsed.certificates)
                } else {
                    parsed.certificates.iter().filter(|c| alert.filter.passes(c)).cloned().collect()
                };
                let channels = cache.channels_of(self, conn, alert.id).await?;
                for (delivery_type, takers) in routes(alert, parsed.alert_type, &channels) {
                    batch.add(
                        settings,
                        ev,
                        parsed,
                        FanOutTarget { alert, channels: &takers, certificates: &passing, delivery_type },
                    );
                }
            }
        }
        Ok(Planned { batch, refused })
    }

    /// Writes a planned batch, its rows already taken: the refusals' reasons, the
    /// inventory, and messages before their deliveries (a foreign key on SQLite), each in
    /// bounded statements. Returns how many deliveries it created.
    async fn write_planned(&self, tx: &mut sqlx::Transaction<'static, D::Db>, planned: Planned<'_>) -> Result<usize> {
        let Planned { batch, refused } = planned;
        for (id, error) in refused {
            tracing::warn!(event_id = %id, %error, "outbox row refused at fan-out");
            D::statement(self.q.mark_fanned_out).bind(Some(error)).bind(id.to_string()).execute(&mut **tx).await?;
        }
        let created = batch.deliveries.len();
        self.write_certificates(tx, batch.certificates).await?;
        for chunk in byte_chunks(&batch.messages, FAN_OUT_CHUNK, CHUNK_BYTES, |m| m.body.len()) {
            D::statement(self.q.insert_messages).bind(json_array(chunk)).execute(&mut **tx).await?;
        }
        for chunk in batch.deliveries.chunks(FAN_OUT_CHUNK) {
            D::statement(self.q.insert_deliveries).bind(json_array(chunk)).execute(&mut **tx).await?;
        }
        Ok(created)
    }
}

/// An outbox row as `unfanned_events` reads it.
fn pending_from(row: &impl Record) -> Result<PendingEvent> {
    Ok(PendingEvent {
        id: row.try_get("id")?,
        application_id: row.try_get("application_id")?,
        event_type: row.try_get("type")?,
        certificate: row.try_get("certificate")?,
        certificates: row.try_get("certificates")?,
        alert_id: row.try_get("alert_id")?,
        occurred_at: row.try_get("occurred_at")?,
        created_at: row.try_get("created_at")?,
    })
}
