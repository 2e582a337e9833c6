// The store's logic, written once and compiled once per backend: `sqlite.rs` and
// `postgres.rs` each `include!` this file after defining `Db`, `DbPool`, `DbRow`,
// `Backend { pool, q, work }`, `Backend::begin_write` and `Backend::begin_hot`. The SQL differs per dialect
// (see `sql.rs`); the Rust around it does not, and neither does its behaviour.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use certhook_core::duration::AlertBefore;
use certhook_core::event::{AlertType, Certificate, ChannelKind, ChannelState, DeliveryState, NewEvent};
use certhook_core::lifecycle::ChannelAction;
use certhook_core::render::{AlertRef, RenderSettings, render_alert_event};
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::sql::{
    AttemptRow, CertificateRow, ChannelHealthRow, ChannelLimitRow, DeliveryRow, MessageRow, OutcomeRow, byte_chunks,
    json_array,
};

/// Held for the length of a write transaction where the backend serialises writers.
type WriterGuard = Option<tokio::sync::OwnedMutexGuard<()>>;

/// Rows a retention pass deletes per statement, so no statement holds the writer for long.
const PRUNE_CHUNK: i64 = 5_000;

/// Rows bound per batch statement at most (a bound JSON array stays a few MB).
const FAN_OUT_CHUNK: usize = 2_000;

/// Payload bytes bound per batch statement, about.
const CHUNK_BYTES: usize = 8 << 20;

/// How often a claim looks for expired leases even when due rows fill it.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The delivery type of verification events.
const VERIFICATION_TYPE: &str = "webhook.verification";

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn opt_millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(millis)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn uuid_col(row: &DbRow, col: &str) -> Result<Uuid> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt(format!("{col} '{text}' is not a UUID")))
}

fn opt_uuid_col(row: &DbRow, col: &str) -> Result<Option<Uuid>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| Uuid::parse_str(&t).map_err(|_| StoreError::Corrupt(format!("{col} '{t}' is not a UUID")))).transpose()
}

fn parse_col<T: std::str::FromStr>(row: &DbRow, col: &str) -> Result<T> {
    let text: String = row.try_get(col)?;
    text.parse().map_err(|_| StoreError::Corrupt(format!("{col} '{text}' is not a known value")))
}

fn application_from(row: &DbRow) -> Result<Application> {
    Ok(Application {
        id: uuid_col(row, "id")?,
        name: row.try_get("name")?,
        created_at: millis(row.try_get("created_at")?),
    })
}

fn alert_from(row: &DbRow) -> Result<Alert> {
    let before: Option<String> = row.try_get("alert_before")?;
    Ok(Alert {
        id: uuid_col(row, "id")?,
        application_id: uuid_col(row, "application_id")?,
        alert_type: parse_col(row, "type")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        alert_before: before
            .map(|b| b.parse::<AlertBefore>().map_err(|e| StoreError::Corrupt(format!("alert_before: {e}"))))
            .transpose()?,
    })
}

fn channel_from(row: &DbRow) -> Result<Channel> {
    let secret: Option<String> = row.try_get("secret")?;
    Ok(Channel {
        id: uuid_col(row, "id")?,
        alert_id: uuid_col(row, "alert_id")?,
        kind: parse_col::<ChannelKind>(row, "kind")?,
        url: row.try_get("url")?,
        state: parse_col::<ChannelState>(row, "state")?,
        content_type: row.try_get("content_type")?,
        has_secret: secret.is_some(),
        created_at: millis(row.try_get("created_at")?),
    })
}

fn delivery_from(row: &DbRow) -> Result<Delivery> {
    let state: DeliveryState = parse_col(row, "state")?;
    let next: i64 = row.try_get("next_attempt_at")?;
    let waiting = matches!(state, DeliveryState::Pending | DeliveryState::Retrying);
    Ok(Delivery {
        id: uuid_col(row, "id")?,
        event_id: opt_uuid_col(row, "event_id")?,
        channel_id: uuid_col(row, "channel_id")?,
        cloud_event_id: uuid_col(row, "message_id")?,
        delivery_type: row.try_get("type")?,
        state,
        attempt_count: row.try_get::<i64, _>("attempt_count")? as u32,
        next_attempt_at: waiting.then(|| millis(next)),
        last_status_code: row.try_get::<Option<i64>, _>("last_status_code")?.map(|c| c as u16),
        last_error: row.try_get("last_error")?,
        reason: row.try_get("reason")?,
        created_at: millis(row.try_get("created_at")?),
        delivered_at: opt_millis(row.try_get("delivered_at")?),
        dead_at: opt_millis(row.try_get("dead_at")?),
    })
}

fn certificate_from(row: &DbRow) -> Result<Certificate> {
    let san: String = row.try_get("san")?;
    Ok(Certificate {
        id: row.try_get("id")?,
        serial_number: row.try_get("serial_number")?,
        common_name: row.try_get("common_name")?,
        san: serde_json::from_str(&san).map_err(|e| StoreError::Corrupt(format!("san: {e}")))?,
        profile_name: row.try_get("profile_name")?,
        not_before: millis(row.try_get("not_before")?),
        not_after: millis(row.try_get("not_after")?),
        revoked_at: None,
        revocation_reason: None,
    })
}

/// Where a new delivery for a channel in `state` starts, and why it is dead if it is.
fn initial_delivery_state(state: ChannelState) -> (DeliveryState, Option<&'static str>) {
    match state {
        ChannelState::Active => (DeliveryState::Pending, None),
        ChannelState::Paused | ChannelState::PendingVerification => (DeliveryState::Held, None),
        ChannelState::Disabled => (DeliveryState::Dead, Some("channel_disabled")),
    }
}

/// Alerts and channels read once per fan-out batch: a batch of events for one application
/// asks the same questions for every event.
#[derive(Default)]
struct FanOutCache {
    alerts: HashMap<(String, AlertType), Vec<Alert>>,
    alerts_by_id: HashMap<String, Vec<Alert>>,
    channels: HashMap<(Uuid, bool), Vec<(String, ChannelState)>>,
}

impl FanOutCache {
    async fn alerts_for(
        &mut self,
        b: &Backend,
        tx: &mut sqlx::Transaction<'static, Db>,
        application_id: &str,
        alert_type: AlertType,
    ) -> Result<Vec<Alert>> {
        let key = (application_id.to_string(), alert_type);
        if let Some(hit) = self.alerts.get(&key) {
            return Ok(hit.clone());
        }
        let rows = sqlx::query(b.q.alerts_for_event)
            .bind(application_id)
            .bind(alert_type.as_str())
            .fetch_all(&mut **tx)
            .await?;
        let alerts = rows.iter().map(alert_from).collect::<Result<Vec<_>>>()?;
        self.alerts.insert(key, alerts.clone());
        Ok(alerts)
    }

    async fn alert_by_id(
        &mut self,
        b: &Backend,
        tx: &mut sqlx::Transaction<'static, Db>,
        id: &str,
    ) -> Result<Vec<Alert>> {
        if let Some(hit) = self.alerts_by_id.get(id) {
            return Ok(hit.clone());
        }
        let rows = sqlx::query(b.q.get_alert).bind(id).fetch_all(&mut **tx).await?;
        let alerts = rows.iter().map(alert_from).collect::<Result<Vec<_>>>()?;
        self.alerts_by_id.insert(id.to_string(), alerts.clone());
        Ok(alerts)
    }

    /// The live channels of an alert (only its PagerDuty ones when `pagerduty_only`).
    async fn channels_of(
        &mut self,
        b: &Backend,
        tx: &mut sqlx::Transaction<'static, Db>,
        alert_id: Uuid,
        pagerduty_only: bool,
    ) -> Result<Vec<(String, ChannelState)>> {
        if let Some(hit) = self.channels.get(&(alert_id, pagerduty_only)) {
            return Ok(hit.clone());
        }
        let sql = if pagerduty_only { b.q.pagerduty_channels_of_alert } else { b.q.channels_of_alert };
        let rows = sqlx::query(sql).bind(alert_id.to_string()).fetch_all(&mut **tx).await?;
        let channels =
            rows.iter().map(|r| Ok((r.try_get("id")?, parse_col(r, "state")?))).collect::<Result<Vec<_>>>()?;
        self.channels.insert((alert_id, pagerduty_only), channels.clone());
        Ok(channels)
    }
}

/// One alert an event goes to, with the channels it reaches; `resolve` marks a renewal
/// going to an expiration alert's PagerDuty channels.
struct FanOutTarget<'a> {
    alert: &'a Alert,
    channels: &'a [(String, ChannelState)],
    resolve: bool,
}

/// The rows one fan-out batch writes, one statement per table.
#[derive(Default)]
struct FanOutBatch<'a> {
    certificates: Vec<CertificateRow<'a>>,
    messages: Vec<MessageRow<'a>>,
    deliveries: Vec<DeliveryRow<'a>>,
    done: Vec<&'a str>,
}

impl<'a> FanOutBatch<'a> {
    /// Renders the event for one alert and adds a delivery per channel of it.
    fn add(&mut self, settings: &RenderSettings, ev: &'a PendingEvent, parsed: &ParsedEvent, target: FanOutTarget<'_>) {
        let FanOutTarget { alert, channels, resolve } = target;
        if channels.is_empty() {
            return;
        }
        // `resolve`: the event is a renewal sent to the PagerDuty channels of an expiration
        // alert, rendered as a renewal and delivered as a resolution of that alert's incident.
        let (alert_type, delivery_type) =
            if resolve { (AlertType::Renewal, "resolve") } else { (alert.alert_type, alert.alert_type.as_str()) };
        let message_id = Uuid::now_v7().to_string();
        let alert_ref = AlertRef {
            id: alert.id,
            name: alert.name.clone(),
            alert_type,
            alert_before: alert.alert_before,
            application_id: parsed.application_id,
        };
        let body = render_alert_event(settings, &alert_ref, &message_id, millis(ev.occurred_at), &parsed.certificates);
        for (channel_id, channel_state) in channels {
            let (state, reason) = initial_delivery_state(*channel_state);
            self.deliveries.push(DeliveryRow {
                id: Uuid::now_v7().to_string(),
                message: message_id.clone(),
                event: &ev.id,
                channel: channel_id.clone(),
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

/// A certificate as the inventory stores it.
fn certificate_row<'a>(application_id: &'a str, c: &'a Certificate) -> CertificateRow<'a> {
    CertificateRow {
        app: application_id,
        id: &c.id,
        serial: &c.serial_number,
        cn: &c.common_name,
        san: serde_json::to_string(&c.san).unwrap_or_else(|_| "[]".into()),
        profile: c.profile_name.as_deref(),
        not_before: c.not_before.timestamp_millis(),
        not_after: c.not_after.timestamp_millis(),
        revoked_at: c.revoked_at.map(|t| t.timestamp_millis()),
        reason: c.revocation_reason.map(|r| r.as_str()),
        status: if c.revoked_at.is_some() { "revoked" } else { "active" },
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

/// Reads an outbox row: what the producer API wrote, or what a PKI inserted by plain SQL.
fn parse_pending(ev: &PendingEvent) -> std::result::Result<ParsedEvent, String> {
    let occurred = millis(ev.occurred_at);
    if let Some(list) = &ev.certificates {
        let certificates: Vec<Certificate> = serde_json::from_str(list).map_err(|e| format!("certificates: {e}"))?;
        let alert_type: AlertType = ev.event_type.parse().map_err(|e| format!("type: {e}"))?;
        let application_id =
            Uuid::parse_str(&ev.application_id).map_err(|_| "applicationId: not a UUID".to_string())?;
        return Ok(ParsedEvent { alert_type, application_id, certificates, upsert: false });
    }
    let certificate: serde_json::Value = match &ev.certificate {
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
    let upsert = event_type != AlertType::Expiration;
    Ok(ParsedEvent { alert_type: event_type, application_id, certificates: vec![certificate], upsert })
}

impl Backend {
    /// The database's clock.
    pub async fn now(&self) -> Result<DateTime<Utc>> {
        let ms: i64 = sqlx::query_scalar(self.q.now).fetch_one(&self.pool).await?;
        Ok(millis(ms))
    }

    /// Wakes this process's worker: new work is due.
    fn wake(&self) {
        self.work.notify_one();
    }

    // ---- applications, alerts, channels ----

    /// Creates an application.
    pub async fn create_application(&self, name: &str) -> Result<Application> {
        let id = Uuid::now_v7();
        let created: i64 =
            sqlx::query_scalar(self.q.insert_application).bind(id.to_string()).bind(name).fetch_one(&self.pool).await?;
        Ok(Application { id, name: name.to_string(), created_at: millis(created) })
    }

    /// Every application, oldest first.
    pub async fn list_applications(&self) -> Result<Vec<Application>> {
        let rows = sqlx::query(self.q.list_applications).fetch_all(&self.pool).await?;
        rows.iter().map(application_from).collect()
    }

    /// One application.
    pub async fn get_application(&self, id: Uuid) -> Result<Application> {
        let row = sqlx::query(self.q.get_application).bind(id.to_string()).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => application_from(&row),
            None => Err(StoreError::NotFound { kind: "application", id: id.to_string() }),
        }
    }

    /// Creates an alert in an existing application; names are unique per application.
    pub async fn create_alert(&self, new: &NewAlert) -> Result<Alert> {
        let (_writer, mut tx) = self.begin_write().await?;
        let app = new.application_id.to_string();
        let exists = sqlx::query(self.q.application_exists).bind(&app).fetch_optional(&mut *tx).await?;
        if exists.is_none() {
            return Err(StoreError::NotFound { kind: "application", id: app });
        }
        let taken = sqlx::query(self.q.alert_name_taken).bind(&app).bind(&new.name).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "name: an alert named '{}' already exists in application {app}",
                new.name
            )));
        }
        let id = Uuid::now_v7();
        sqlx::query(self.q.insert_alert)
            .bind(id.to_string())
            .bind(&app)
            .bind(new.alert_type.as_str())
            .bind(&new.name)
            .bind(&new.description)
            .bind(new.alert_before.map(|b| b.to_string()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Alert {
            id,
            application_id: new.application_id,
            alert_type: new.alert_type,
            name: new.name.clone(),
            description: new.description.clone(),
            alert_before: new.alert_before,
        })
    }

    /// Alerts, optionally of one application.
    pub async fn list_alerts(&self, application_id: Option<Uuid>) -> Result<Vec<Alert>> {
        let app = application_id.map(|a| a.to_string());
        let rows = sqlx::query(self.q.list_alerts).bind(&app).bind(&app).fetch_all(&self.pool).await?;
        rows.iter().map(alert_from).collect()
    }

    /// One alert.
    pub async fn get_alert(&self, id: Uuid) -> Result<Alert> {
        let row = sqlx::query(self.q.get_alert).bind(id.to_string()).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => alert_from(&row),
            None => Err(StoreError::NotFound { kind: "alert", id: id.to_string() }),
        }
    }

    /// Creates a channel on an existing alert, with its verification event when given.
    pub async fn create_channel(&self, new: &NewChannel, verification: Option<&Verification>) -> Result<Channel> {
        let (_writer, mut tx) = self.begin_write().await?;
        let alert = new.alert_id.to_string();
        if sqlx::query(self.q.get_alert).bind(&alert).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound { kind: "alert", id: alert });
        }
        let id = new.id.to_string();
        let created: i64 = sqlx::query_scalar(self.q.insert_channel)
            .bind(&id)
            .bind(&alert)
            .bind(new.kind.as_str())
            .bind(&new.url)
            .bind(new.state.as_str())
            .bind(&new.content_type)
            .bind(new.secret.as_ref().map(|s| s.expose().to_string()))
            .bind(new.routing_key.as_ref().map(|s| s.expose().to_string()))
            .bind(verification.map(|v| v.token_hash.clone()))
            .bind(verification.map(|v| v.expires_at.timestamp_millis()))
            .fetch_one(&mut *tx)
            .await?;
        if let Some(v) = verification {
            self.insert_verification(&mut tx, &id, v).await?;
        }
        tx.commit().await?;
        if verification.is_some() {
            self.wake();
        }
        Ok(Channel {
            id: new.id,
            alert_id: new.alert_id,
            kind: new.kind,
            url: new.url.clone(),
            state: new.state,
            content_type: new.content_type.clone(),
            has_secret: new.secret.is_some(),
            created_at: millis(created),
        })
    }

    async fn insert_verification(
        &self,
        tx: &mut sqlx::Transaction<'static, Db>,
        channel_id: &str,
        v: &Verification,
    ) -> Result<()> {
        let message = v.message_id.to_string();
        sqlx::query(self.q.insert_message)
            .bind(&message)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(VERIFICATION_TYPE)
            .bind(&v.body)
            .execute(&mut **tx)
            .await?;
        sqlx::query(self.q.insert_delivery)
            .bind(Uuid::now_v7().to_string())
            .bind(&message)
            .bind(None::<String>)
            .bind(channel_id)
            .bind(VERIFICATION_TYPE)
            .bind(DeliveryState::Pending.as_str())
            .bind(None::<String>)
            .bind(Utc::now().timestamp_millis())
            .bind(DeliveryState::Pending.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Puts a channel (back) into `pending_verification` with a new token and sends it the
    /// verification event; `new_url` re-points it first. Its other deliveries are held.
    pub async fn start_verification(&self, id: Uuid, new_url: Option<&str>, v: &Verification) -> Result<Channel> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let updated = sqlx::query(self.q.start_verification)
            .bind(&v.token_hash)
            .bind(v.expires_at.timestamp_millis())
            .bind(new_url)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        sqlx::query(self.q.hold_channel).bind(&key).execute(&mut *tx).await?;
        self.insert_verification(&mut tx, &key, v).await?;
        let row = sqlx::query(self.q.get_channel).bind(&key).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        self.wake();
        channel_from(&row)
    }

    /// Activates a `pending_verification` channel whose endpoint received `token` (judged
    /// against the stored hash and expiry by the database's clock); held deliveries go out.
    pub async fn activate_channel(&self, id: Uuid, token: &str) -> Result<Channel> {
        let key = id.to_string();
        let now = self.now().await?;
        let Some(row) = sqlx::query(self.q.channel_verification).bind(&key).fetch_optional(&self.pool).await? else {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        };
        let state: ChannelState = parse_col(&row, "state")?;
        certhook_core::lifecycle::transition(state, ChannelAction::Activate).map_err(StoreError::Conflict)?;
        let stored: Option<String> = row.try_get("verification_token")?;
        let expires = opt_millis(row.try_get("verification_expires_at")?);
        certhook_core::lifecycle::check_token(token, stored.as_deref(), expires, now)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let channel = self.set_channel_state(id, ChannelState::Active).await?;
        sqlx::query(self.q.clear_verification).bind(&key).execute(&self.pool).await?;
        Ok(channel)
    }

    /// Applies an operator action (pause, resume, enable) if the channel's state allows it.
    pub async fn apply_channel_action(&self, id: Uuid, action: ChannelAction) -> Result<Channel> {
        let current = self.get_channel(id).await?;
        let next = certhook_core::lifecycle::transition(current.state, action).map_err(StoreError::Conflict)?;
        self.set_channel_state(id, next).await
    }

    /// Replaces the signing secret; the previous one keeps signing for `grace`.
    pub async fn rotate_secret(&self, id: Uuid, secret: &certhook_core::Secret, grace: Duration) -> Result<Channel> {
        let key = id.to_string();
        let done = sqlx::query(self.q.rotate_secret)
            .bind(duration_ms(grace))
            .bind(secret.expose())
            .bind(&key)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        self.get_channel(id).await
    }

    /// Re-points a channel without verification (Slack, PagerDuty, or `--no-verify` use).
    pub async fn set_channel_url(&self, id: Uuid, url: &str) -> Result<Channel> {
        let key = id.to_string();
        let done = sqlx::query(self.q.set_channel_url).bind(url).bind(&key).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        self.get_channel(id).await
    }

    /// Channels, optionally of one alert.
    pub async fn list_channels(&self, alert_id: Option<Uuid>) -> Result<Vec<Channel>> {
        let alert = alert_id.map(|a| a.to_string());
        let rows = sqlx::query(self.q.list_channels).bind(&alert).bind(&alert).fetch_all(&self.pool).await?;
        rows.iter().map(channel_from).collect()
    }

    /// One channel.
    pub async fn get_channel(&self, id: Uuid) -> Result<Channel> {
        let row = sqlx::query(self.q.get_channel).bind(id.to_string()).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => channel_from(&row),
            None => Err(StoreError::NotFound { kind: "channel", id: id.to_string() }),
        }
    }

    /// Moves a channel to `state`, holding or releasing its deliveries to match.
    ///
    /// Which transitions are allowed is the caller's rule; this applies one.
    pub async fn set_channel_state(&self, id: Uuid, state: ChannelState) -> Result<Channel> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let updated = sqlx::query(self.q.set_channel_state).bind(state.as_str()).bind(&key).execute(&mut *tx).await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        let release = match state {
            ChannelState::Active => {
                // A fresh start: failures before this do not count towards disable_after.
                sqlx::query(self.q.clear_failing).bind(&key).execute(&mut *tx).await?;
                true
            }
            ChannelState::Paused | ChannelState::PendingVerification => {
                sqlx::query(self.q.hold_channel).bind(&key).execute(&mut *tx).await?;
                false
            }
            ChannelState::Disabled => false,
        };
        if release {
            sqlx::query(self.q.release_channel).bind(&key).execute(&mut *tx).await?;
        }
        let row = sqlx::query(self.q.get_channel).bind(&key).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        if release {
            self.wake();
        }
        channel_from(&row)
    }

    /// Everything the worker needs to send to each live channel, secrets included.
    ///
    /// The previous secret is included only while its grace period lasts.
    pub async fn channel_targets(&self) -> Result<Vec<ChannelTarget>> {
        let now = self.now().await?;
        let rows = sqlx::query(self.q.channel_targets).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mut secrets = Vec::new();
                if let Some(s) = r.try_get::<Option<String>, _>("secret")? {
                    secrets.push(certhook_core::Secret::new(s));
                }
                let previous: Option<String> = r.try_get("previous_secret")?;
                let until = opt_millis(r.try_get("previous_secret_expires_at")?);
                if let (Some(p), Some(until)) = (previous, until)
                    && until > now
                {
                    secrets.push(certhook_core::Secret::new(p));
                }
                Ok(ChannelTarget {
                    id: uuid_col(r, "id")?,
                    alert_id: uuid_col(r, "alert_id")?,
                    application_id: uuid_col(r, "application_id")?,
                    kind: parse_col(r, "kind")?,
                    url: r.try_get("url")?,
                    state: parse_col(r, "state")?,
                    content_type: r.try_get("content_type")?,
                    secrets,
                    routing_key: r.try_get::<Option<String>, _>("routing_key")?.map(certhook_core::Secret::new),
                })
            })
            .collect()
    }

    /// A `410 Gone`: disables the channel and dead-letters its waiting deliveries with
    /// `endpoint_gone`, in one transaction. Returns how many were dead-lettered.
    pub async fn channel_gone(&self, id: Uuid) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        sqlx::query(self.q.set_channel_state)
            .bind(ChannelState::Disabled.as_str())
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        let dead = sqlx::query(self.q.dead_letter_channel).bind("endpoint_gone").bind(&key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(dead.rows_affected())
    }

    /// Disables active channels that have failed without a single success for `after`,
    /// dead-lettering their waiting deliveries (`channel_disabled`). Returns their ids.
    pub async fn disable_failing(&self, after: Duration) -> Result<Vec<Uuid>> {
        let (_writer, mut tx) = self.begin_write().await?;
        let rows = sqlx::query(self.q.disable_failing).bind(duration_ms(after)).fetch_all(&mut *tx).await?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            sqlx::query(self.q.dead_letter_channel).bind("channel_disabled").bind(&id).execute(&mut *tx).await?;
            ids.push(uuid_col(row, "id")?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Dead-letters every delivery of a channel that is not in flight or done, with `reason`.
    pub async fn dead_letter_channel(&self, id: Uuid, reason: &str) -> Result<u64> {
        let done =
            sqlx::query(self.q.dead_letter_channel).bind(reason).bind(id.to_string()).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Deletes an alert and its channels; their waiting deliveries become dead letters
    /// (`channel_deleted`). Returns how many were dead-lettered.
    pub async fn delete_alert(&self, id: Uuid) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let channels = sqlx::query(self.q.channels_of_alert).bind(&key).fetch_all(&mut *tx).await?;
        if sqlx::query(self.q.delete_alert).bind(&key).execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "alert", id: key });
        }
        let mut dead = 0;
        for ch in &channels {
            let channel: String = ch.try_get("id")?;
            sqlx::query(self.q.delete_channel).bind(&channel).execute(&mut *tx).await?;
            dead += sqlx::query(self.q.dead_letter_channel)
                .bind("channel_deleted")
                .bind(&channel)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(dead)
    }

    /// Deletes a channel; its waiting deliveries become dead letters (`channel_deleted`).
    pub async fn delete_channel(&self, id: Uuid) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let deleted = sqlx::query(self.q.delete_channel).bind(&key).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        let dead = sqlx::query(self.q.dead_letter_channel).bind("channel_deleted").bind(&key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(dead.rows_affected())
    }

    // ---- producing ----

    /// Enqueues a batch of events, all or nothing, and returns their ids in input order.
    pub async fn enqueue(&self, events: &[NewEvent]) -> Result<Vec<Uuid>> {
        let (_writer, mut tx) = self.begin_write().await?;
        let ids = enqueue_on(&mut tx, self.q, events).await?;
        tx.commit().await?;
        self.wake();
        Ok(ids)
    }

    /// Fans out up to `limit` new outbox rows into deliveries; returns how many rows it read.
    ///
    /// Each row: the inventory is updated, one message is rendered per matching alert, and
    /// one delivery is created per channel of that alert, in the state the channel allows.
    /// The batch is written set-based: one statement per table over a JSON array of rows.
    pub async fn fan_out(&self, settings: &RenderSettings, limit: usize) -> Result<usize> {
        // A read first: the worker calls this every pass, and a write transaction that
        // finds nothing would still take the writer's turn.
        if sqlx::query(self.q.any_unfanned).fetch_optional(&self.pool).await?.is_none() {
            return Ok(0);
        }
        let (_writer, mut tx) = self.begin_hot().await?;
        let rows = sqlx::query(self.q.unfanned_events).bind(limit as i64).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let events = rows
            .iter()
            .map(|row| {
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
            })
            .collect::<Result<Vec<_>>>()?;
        let mut cache = FanOutCache::default();
        let mut batch = FanOutBatch::default();
        let mut parsed_events = Vec::with_capacity(events.len());
        for ev in &events {
            match parse_pending(ev) {
                Ok(p) => parsed_events.push((ev, p)),
                Err(error) => {
                    tracing::warn!(event_id = %ev.id, %error, "outbox row refused at fan-out");
                    sqlx::query(self.q.mark_fanned_out).bind(Some(error)).bind(&ev.id).execute(&mut *tx).await?;
                }
            }
        }
        for (ev, parsed) in &parsed_events {
            if parsed.upsert {
                for c in &parsed.certificates {
                    batch.certificates.push(certificate_row(&ev.application_id, c));
                }
            }
            let alerts = match &ev.alert_id {
                Some(alert) => cache.alert_by_id(self, &mut tx, alert).await?,
                None => cache.alerts_for(self, &mut tx, &ev.application_id, parsed.alert_type).await?,
            };
            for alert in &alerts {
                let channels = cache.channels_of(self, &mut tx, alert.id, false).await?;
                batch.add(settings, ev, parsed, FanOutTarget { alert, channels: &channels, resolve: false });
            }
            if parsed.alert_type == AlertType::Renewal && ev.alert_id.is_none() {
                // A renewal resolves the certificate's open expiration incidents (PagerDuty).
                for alert in &cache.alerts_for(self, &mut tx, &ev.application_id, AlertType::Expiration).await? {
                    let channels = cache.channels_of(self, &mut tx, alert.id, true).await?;
                    batch.add(settings, ev, parsed, FanOutTarget { alert, channels: &channels, resolve: true });
                }
            }
            batch.done.push(&ev.id);
        }
        let created = batch.deliveries.len();
        self.write_certificates(&mut tx, batch.certificates).await?;
        // Messages before their deliveries (foreign key), each in bounded statements.
        for chunk in byte_chunks(&batch.messages, FAN_OUT_CHUNK, CHUNK_BYTES, |m| m.body.len()) {
            sqlx::query(self.q.insert_messages).bind(json_array(chunk)).execute(&mut *tx).await?;
        }
        for chunk in batch.deliveries.chunks(FAN_OUT_CHUNK) {
            sqlx::query(self.q.insert_deliveries).bind(json_array(chunk)).execute(&mut *tx).await?;
        }
        if !batch.done.is_empty() {
            sqlx::query(self.q.mark_all_fanned_out).bind(json_array(&batch.done)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if created > 0 {
            self.wake();
        }
        Ok(rows.len())
    }

    /// Upserts inventory rows in one statement; of several rows for one certificate the
    /// last wins (PostgreSQL refuses to update one row twice in a statement).
    async fn write_certificates(
        &self,
        tx: &mut sqlx::Transaction<'static, Db>,
        rows: Vec<CertificateRow<'_>>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            last.insert((r.app, r.id), i);
        }
        let unique: Vec<&CertificateRow<'_>> =
            rows.iter().enumerate().filter(|(i, r)| last[&(r.app, r.id)] == *i).map(|(_, r)| r).collect();
        for chunk in unique.chunks(FAN_OUT_CHUNK) {
            sqlx::query(self.q.upsert_certificates).bind(json_array(chunk)).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Loads certificates into an application's inventory without producing events
    /// (`import` without `--notify`). Returns how many were written.
    pub async fn upsert_certificates(&self, application_id: Uuid, certificates: &[Certificate]) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let app = application_id.to_string();
        if sqlx::query(self.q.application_exists).bind(&app).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound { kind: "application", id: app });
        }
        self.write_certificates(&mut tx, certificates.iter().map(|c| certificate_row(&app, c)).collect()).await?;
        tx.commit().await?;
        Ok(certificates.len() as u64)
    }

    /// An application's inventory, soonest expiry first, with each certificate's status
    /// as last judged.
    pub async fn list_certificates(&self, application_id: Uuid) -> Result<Vec<(Certificate, String)>> {
        let rows = sqlx::query(self.q.list_certificates).bind(application_id.to_string()).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mut c = certificate_from(r)?;
                c.revoked_at = opt_millis(r.try_get("revoked_at")?);
                c.revocation_reason = r.try_get::<Option<String>, _>("revocation_reason")?.and_then(|x| x.parse().ok());
                Ok((c, r.try_get("status")?))
            })
            .collect()
    }

    /// The expiration scan at instant `as_of` (SPEC §5): for every expiration alert, the
    /// active, unrevoked certificates of its application whose notAfter falls within the
    /// alert's window and that were not yet reported for that alert at that notAfter, in
    /// events of at most `max_per_event` certificates. A report row per (alert,
    /// certificate, notAfter) is claimed with `ON CONFLICT DO NOTHING`, so concurrent scans
    /// on one database enqueue each report once. Also marks expired the certificates whose notAfter has
    /// passed by both `as_of` and the database clock: a scan ahead of time never marks one.
    pub async fn scan_expirations(&self, as_of: DateTime<Utc>, max_per_event: usize) -> Result<ScanOutcome> {
        let (_writer, mut tx) = self.begin_write().await?;
        let now_ms = as_of.timestamp_millis();
        let alerts = sqlx::query(self.q.expiration_alerts).fetch_all(&mut *tx).await?;
        let mut outcome = ScanOutcome { alerts: alerts.len(), ..Default::default() };
        for row in &alerts {
            let alert = alert_from(row)?;
            let Some(window) = alert.alert_before else { continue };
            let until = now_ms + window.as_duration().num_milliseconds();
            let alert_key = alert.id.to_string();
            let candidates = sqlx::query(self.q.expiring_unreported)
                .bind(alert.application_id.to_string())
                .bind(now_ms)
                .bind(until)
                .bind(&alert_key)
                .fetch_all(&mut *tx)
                .await?;
            let mut won = Vec::with_capacity(candidates.len());
            for c in &candidates {
                let cert = certificate_from(c)?;
                let claimed = sqlx::query(self.q.insert_report)
                    .bind(&alert_key)
                    .bind(&cert.id)
                    .bind(cert.not_after.timestamp_millis())
                    .bind("")
                    .fetch_optional(&mut *tx)
                    .await?;
                if claimed.is_some() {
                    won.push(cert);
                }
            }
            for chunk in won.chunks(max_per_event.max(1)) {
                let event_id = Uuid::now_v7();
                let certificates = serde_json::to_string(chunk)
                    .map_err(|e| StoreError::Corrupt(format!("certificates do not serialize: {e}")))?;
                sqlx::query(self.q.insert_scan_event)
                    .bind(event_id.to_string())
                    .bind(alert.application_id.to_string())
                    .bind(certificates)
                    .bind(&alert_key)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                outcome.events.push(event_id);
                outcome.reported += chunk.len();
            }
        }
        outcome.expired_marked = sqlx::query(self.q.mark_expired).bind(now_ms).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        if !outcome.events.is_empty() {
            self.wake();
        }
        Ok(outcome)
    }

    // ---- the worker's side ----

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
            &request.channel_limits.iter().map(|(c, n)| ChannelLimitRow { c: c.to_string(), n: *n }).collect::<Vec<_>>(),
        );
        let (_writer, mut tx) = self.begin_hot().await?;
        let swept = self.sweep.due();
        let mut rows = if swept { self.claim_expired(&mut tx, &tok, lease_ms, limit).await? } else { Vec::new() };
        let mut taken_over = rows.len();
        if rows.len() < limit {
            let due = sqlx::query(self.q.claim_due)
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
        tx.commit().await?;
        // Deliveries of one message (fan-out) share its body.
        let mut bodies: HashMap<String, Arc<[u8]>> = HashMap::new();
        let leases = rows
            .iter()
            .map(|r| {
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
                    delivery_type: r.try_get("type")?,
                    attempts_before: r.try_get::<i64, _>("attempt_count")? as u32,
                    body,
                    enqueued_at: millis(r.try_get("enqueued_at")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Claim { leases, taken_over })
    }

    /// Takes over up to `limit` expired leases under `token`.
    async fn claim_expired(&self, conn: &mut DbConn, token: &str, lease_ms: i64, limit: usize) -> Result<Vec<DbRow>> {
        Ok(sqlx::query(self.q.claim_expired).bind(token).bind(lease_ms).bind(limit as i64).fetch_all(conn).await?)
    }

    /// Records a batch of outcomes in one transaction: one statement per kind of outcome
    /// and one for all attempts, each over a bound JSON array. Each outcome is accepted
    /// only if its lease still holds the row (fencing); the result says which were, in
    /// input order.
    pub async fn record(&self, outcomes: &[Outcome]) -> Result<Vec<bool>> {
        let ids: Vec<String> = outcomes.iter().map(|o| o.lease.delivery_id.to_string()).collect();
        let mut by_kind: [Vec<OutcomeRow>; 4] = Default::default();
        for (Outcome { lease, attempt, disposition }, id) in outcomes.iter().zip(&ids) {
            let (kind, delay, reason) = match disposition {
                Disposition::Delivered => (0, 0, None),
                Disposition::Retry { delay } => (1, duration_ms(*delay), None),
                Disposition::Dead { reason } => (2, 0, Some(reason.as_str())),
                Disposition::Released => (3, 0, None),
            };
            by_kind[kind].push(OutcomeRow {
                id,
                token: lease.token.to_string(),
                added: i64::from(attempt.is_some()),
                status: attempt.as_ref().and_then(|a| a.status_code),
                error: attempt.as_ref().and_then(|a| a.error.as_deref()),
                delay,
                reason,
            });
        }
        let statements = [self.q.record_delivered, self.q.record_retry, self.q.record_dead, self.q.record_released];
        let (_writer, mut tx) = self.begin_write().await?;
        // Accepted deliveries (their lease still held the row) and their attempt counts.
        let mut counts: HashMap<String, i64> = HashMap::with_capacity(outcomes.len());
        for (rows, sql) in by_kind.iter().zip(statements) {
            if rows.is_empty() {
                continue;
            }
            for row in sqlx::query(sql).bind(json_array(rows)).fetch_all(&mut *tx).await? {
                counts.insert(row.try_get("id")?, row.try_get("attempt_count")?);
            }
        }
        let mut accepted = Vec::with_capacity(outcomes.len());
        let mut attempts = Vec::new();
        // Per channel: did any attempt in this batch succeed, or did all fail?
        let mut channel_health: HashMap<Uuid, bool> = HashMap::new();
        let mut released = false;
        for (Outcome { lease, attempt, disposition }, id) in outcomes.iter().zip(&ids) {
            let Some(&number) = counts.get(id) else {
                accepted.push(false);
                continue;
            };
            accepted.push(true);
            released |= matches!(disposition, Disposition::Released);
            if let Some(a) = attempt {
                *channel_health.entry(lease.channel_id).or_insert(false) |= matches!(disposition, Disposition::Delivered);
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
        if !attempts.is_empty() {
            sqlx::query(self.q.insert_attempts).bind(json_array(&attempts)).execute(&mut *tx).await?;
        }
        if !channel_health.is_empty() {
            // Channel rows locked in id order, then one statement for both kinds: batches
            // written side by side (PostgreSQL) cannot deadlock on them.
            let mut health: Vec<ChannelHealthRow> =
                channel_health.iter().map(|(c, ok)| ChannelHealthRow { c: c.to_string(), ok: i64::from(*ok) }).collect();
            health.sort_by(|a, b| a.c.cmp(&b.c));
            let ids: Vec<&str> = health.iter().map(|h| h.c.as_str()).collect();
            sqlx::query(self.q.lock_channels).bind(json_array(&ids)).fetch_all(&mut *tx).await?;
            sqlx::query(self.q.channel_health).bind(json_array(&health)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if released {
            self.wake();
        }
        Ok(accepted)
    }

    // ---- inspection ----

    /// Deliveries matching `filter`, newest first.
    pub async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>> {
        let state = filter.state.map(|s| s.as_str());
        let channel = filter.channel_id.map(|c| c.to_string());
        let since = filter.dead_since.map(|t| t.timestamp_millis());
        let before = filter.dead_before.map(|t| t.timestamp_millis());
        let limit = filter.limit.map(i64::from).unwrap_or(i64::MAX);
        let rows = sqlx::query(self.q.list_deliveries)
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
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_from).collect()
    }

    /// One delivery with its attempts.
    pub async fn get_delivery(&self, id: Uuid) -> Result<DeliveryDetail> {
        let key = id.to_string();
        let Some(row) = sqlx::query(self.q.get_delivery).bind(&key).fetch_optional(&self.pool).await? else {
            return Err(StoreError::NotFound { kind: "delivery", id: key });
        };
        let delivery = delivery_from(&row)?;
        let attempts = sqlx::query(self.q.list_attempts)
            .bind(&key)
            .fetch_all(&self.pool)
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
                let filter = DeliveryFilter { state: Some(DeliveryState::Dead), limit: None, ..filter.clone() };
                Ok(self.list_deliveries(&filter).await?.into_iter().map(|d| d.id).collect())
            }
        }
    }

    /// Puts dead letters back in the queue with fresh attempts and the same CloudEvent ids.
    ///
    /// Dead letters of a disabled or deleted channel stay dead (replaying them would only
    /// dead-letter them again); naming one by id is refused with the reason.
    pub async fn replay(&self, selector: &DeadLetterSelector, dry_run: bool) -> Result<Vec<Uuid>> {
        let candidates = self.select_dead(selector).await?;
        let (_writer, mut tx) = self.begin_write().await?;
        let mut replayed = Vec::with_capacity(candidates.len());
        for id in candidates {
            let key = id.to_string();
            let Some(row) = sqlx::query(self.q.replayable).bind(&key).fetch_optional(&mut *tx).await? else {
                continue;
            };
            let deleted: Option<i64> = row.try_get("deleted_at")?;
            let channel_state: ChannelState = parse_col(&row, "state")?;
            let target = match (deleted, channel_state) {
                (None, ChannelState::Active) => DeliveryState::Pending,
                (None, ChannelState::Paused | ChannelState::PendingVerification) => DeliveryState::Held,
                (deleted, state) => {
                    if matches!(selector, DeadLetterSelector::Id(_)) {
                        let why =
                            if deleted.is_some() { "deleted".to_string() } else { format!("{state}; enable it first") };
                        return Err(StoreError::Conflict(format!("dead letter {id}: its channel is {why}")));
                    }
                    continue;
                }
            };
            if !dry_run {
                sqlx::query(self.q.replay_one).bind(target.as_str()).bind(&key).execute(&mut *tx).await?;
            }
            replayed.push(id);
        }
        tx.commit().await?;
        if !dry_run && !replayed.is_empty() {
            self.wake();
        }
        Ok(replayed)
    }

    /// Deletes dead letters and their attempts: the only way they are ever deleted.
    pub async fn purge(&self, selector: &DeadLetterSelector, dry_run: bool) -> Result<Vec<Uuid>> {
        let ids = self.select_dead(selector).await?;
        if dry_run || ids.is_empty() {
            return Ok(ids);
        }
        let (_writer, mut tx) = self.begin_write().await?;
        let mut purged = Vec::with_capacity(ids.len());
        for id in ids {
            let key = id.to_string();
            sqlx::query(self.q.purge_attempts).bind(&key).execute(&mut *tx).await?;
            if sqlx::query(self.q.purge_one).bind(&key).execute(&mut *tx).await?.rows_affected() == 1 {
                purged.push(id);
            }
        }
        tx.commit().await?;
        Ok(purged)
    }

    /// Queue depth per state, oldest waiting age, events, channels by state.
    pub async fn status(&self) -> Result<Status> {
        let mut status = Status::default();
        for row in sqlx::query(self.q.count_deliveries).fetch_all(&self.pool).await? {
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
        for row in sqlx::query(self.q.count_channels).fetch_all(&self.pool).await? {
            let n = row.try_get::<i64, _>(1)?.max(0) as u64;
            let c = &mut status.channels;
            match parse_col::<ChannelState>(&row, "state")? {
                ChannelState::PendingVerification => c.pending_verification = n,
                ChannelState::Active => c.active = n,
                ChannelState::Paused => c.paused = n,
                ChannelState::Disabled => c.disabled = n,
            }
        }
        let total: i64 = sqlx::query_scalar(self.q.count_events).fetch_one(&self.pool).await?;
        status.events.total = total.max(0) as u64;
        let oldest: Option<i64> = sqlx::query_scalar(self.q.oldest_waiting).fetch_one(&self.pool).await?;
        if let Some(oldest) = oldest {
            let now: i64 = sqlx::query_scalar(self.q.now).fetch_one(&self.pool).await?;
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
            sqlx::query(self.q.prune_attempts).bind(age).bind(PRUNE_CHUNK).execute(&mut *tx).await?;
            let n = sqlx::query(self.q.prune_delivered).bind(age).bind(PRUNE_CHUNK).execute(&mut *tx).await?;
            tx.commit().await?;
            pruned.deliveries += n.rows_affected();
            if n.rows_affected() < PRUNE_CHUNK as u64 {
                break;
            }
        }
        loop {
            let n = sqlx::query(self.q.prune_messages).bind(age).bind(PRUNE_CHUNK).execute(&self.pool).await?;
            if n.rows_affected() < PRUNE_CHUNK as u64 {
                break;
            }
        }
        loop {
            let n = sqlx::query(self.q.prune_events).bind(age).bind(PRUNE_CHUNK).execute(&self.pool).await?;
            pruned.events += n.rows_affected();
            if n.rows_affected() < PRUNE_CHUNK as u64 {
                break;
            }
        }
        Ok(pruned)
    }
}

/// Enqueues `events` on an open connection or transaction (the transactional outbox):
/// checks each application, honours idempotency keys, and returns the ids in input order.
pub(crate) async fn enqueue_on(conn: &mut DbConn, q: &Queries, events: &[NewEvent]) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(events.len());
    let mut known_apps: Vec<Uuid> = Vec::new();
    for (index, ev) in events.iter().enumerate() {
        let app = ev.application_id.to_string();
        if !known_apps.contains(&ev.application_id) {
            if sqlx::query(q.application_exists).bind(&app).fetch_optional(&mut *conn).await?.is_none() {
                return Err(StoreError::UnknownApplication { index, id: ev.application_id });
            }
            known_apps.push(ev.application_id);
        }
        let certificate = serde_json::to_string(&ev.certificate)
            .map_err(|e| StoreError::Corrupt(format!("certificate does not serialize: {e}")))?;
        let id = Uuid::now_v7();
        let inserted: Option<String> = sqlx::query_scalar(q.insert_event)
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
                let first: String = sqlx::query_scalar(q.find_idempotent)
                    .bind(&app)
                    .bind(&ev.idempotency_key)
                    .fetch_one(&mut *conn)
                    .await?;
                Uuid::parse_str(&first).map_err(|_| StoreError::Corrupt(format!("event id '{first}' is not a UUID")))?
            }
        };
        ids.push(id);
    }
    Ok(ids)
}
