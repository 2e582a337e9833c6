//! Subscriptions: applications, their alerts, and the channels alerts reach; channel
//! lifecycle (verification, pause and resume, secret rotation, disabling) with the
//! holding, releasing and dead-lettering of deliveries each change implies.
use std::time::Duration;

use certhook_core::destination::redact_url;
use certhook_core::event::{ChannelState, DeadReason, DeliveryState, DeliveryType};
use certhook_core::lifecycle::ChannelAction;
use certhook_core::validate::ValidationError;
use chrono::Utc;
use uuid::Uuid;

use crate::backend::Backend;
use crate::driver::{Driver, Record, Statement};
use crate::error::{Result, StoreError};
use crate::model::*;
use crate::rows::{
    alert_from, application_from, channel_from, duration_ms, json_list_col, millis, opt_millis, parse_col,
    rate_limit_col, tls_summary, uuid_col,
};

/// The channel columns that hold secrets, sealed under `secret_key` when one is set.
const SEALED_COLUMNS: [&str; 4] = ["secret", "previous_secret", "routing_key", "client_key"];

impl<D: Driver> Backend<D> {
    /// Creates an application: its name trimmed, not empty, and not another live one's.
    pub async fn create_application(&self, name: &str) -> Result<Application> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid(ValidationError::InvalidField {
                field: "name".into(),
                reason: "must not be empty".into(),
            }));
        }
        let id = Uuid::now_v7();
        let (_writer, mut tx) = self.begin_write().await?;
        D::statement(self.q.serialize_application_names).execute(&mut *tx).await?;
        let inserted = D::statement(self.q.insert_application)
            .bind(id.to_string())
            .bind(name)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = inserted else {
            let existing: Option<String> =
                match D::statement(self.q.application_named).bind(name).fetch_optional(&mut *tx).await? {
                    Some(row) => Some(row.try_get(0)?),
                    None => None,
                };
            let which = existing.map(|e| format!(": {e}")).unwrap_or_default();
            return Err(StoreError::Conflict(format!("name: an application named {name:?} already exists{which}")));
        };
        let created: i64 = row.try_get(0)?;
        tx.commit().await?;
        Ok(Application { id, name: name.to_string(), created_at: millis(created) })
    }

    /// Every application, oldest first.
    pub async fn list_applications(&self) -> Result<Vec<Application>> {
        let rows = D::statement(self.q.list_applications).fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(application_from).collect()
    }

    /// One application.
    pub async fn get_application(&self, id: Uuid) -> Result<Application> {
        self.one(self.q.get_application, "application", id, application_from).await
    }

    /// Deletes an application. While it has alerts it is refused, unless `cascade`, which
    /// deletes its alerts and their channels too (their waiting deliveries become dead
    /// letters, `channel_deleted`). Its events and inventory stay for the record, and new
    /// events for it are refused. Returns how many deliveries were dead-lettered.
    pub async fn delete_application(&self, id: Uuid, cascade: bool) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        if D::statement(self.q.lock_application).bind(&key).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound { kind: "application", id: key });
        }
        let alerts: Vec<String> = D::statement(self.q.alerts_of_application)
            .bind(&key)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
        if !alerts.is_empty() && !cascade {
            return Err(StoreError::Conflict(format!(
                "application {key} still has {} alert(s); delete them first, or delete with --cascade",
                alerts.len()
            )));
        }
        let mut dead = 0;
        for alert in &alerts {
            dead += self.delete_alert_in(&mut tx, alert).await?;
        }
        D::statement(self.q.delete_application).bind(&key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(dead)
    }

    /// Creates an alert in an existing application; names are unique per application.
    pub async fn create_alert(&self, new: &NewAlert) -> Result<Alert> {
        let (_writer, mut tx) = self.begin_write().await?;
        let app = new.application_id.to_string();
        let exists = D::statement(self.q.lock_application).bind(&app).fetch_optional(&mut *tx).await?;
        if exists.is_none() {
            return Err(StoreError::NotFound { kind: "application", id: app });
        }
        let id = Uuid::now_v7();
        self.check_alert_name(&mut tx, new, "").await?;
        bind_definition(D::statement(self.q.insert_alert).bind(id.to_string()).bind(&app), new)?
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(alert_of(id, new))
    }

    async fn check_alert_name(
        &self,
        tx: &mut sqlx::Transaction<'static, D::Db>,
        new: &NewAlert,
        except: &str,
    ) -> Result<()> {
        let app = new.application_id.to_string();
        let taken = D::statement(self.q.alert_name_taken)
            .bind(&app)
            .bind(&new.name)
            .bind(except)
            .fetch_optional(&mut **tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "name: an alert named '{}' already exists in application {app}",
                new.name
            )));
        }
        Ok(())
    }

    /// Replaces an alert's definition with what `change` makes of it (in the same
    /// transaction that reads it, so two updates do not undo each other). Its channels,
    /// secrets and verification stay; events fanned out from now on use the new types and
    /// filters.
    pub async fn update_alert(
        &self,
        id: Uuid,
        change: impl FnOnce(&Alert) -> std::result::Result<NewAlert, certhook_core::validate::ValidationError>,
    ) -> Result<Alert> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let Some(row) = D::statement(self.q.get_alert_for_update).bind(&key).fetch_optional(&mut *tx).await? else {
            return Err(StoreError::NotFound { kind: "alert", id: key });
        };
        let current = alert_from(&row)?;
        let new = change(&current).map_err(StoreError::Invalid)?;
        self.check_alert_name(&mut tx, &new, &key).await?;
        bind_definition(D::statement(self.q.update_alert), &new)?.bind(&key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(alert_of(id, &new))
    }

    /// Alerts, optionally of one application.
    pub async fn list_alerts(&self, application_id: Option<Uuid>) -> Result<Vec<Alert>> {
        let app = application_id.map(|a| a.to_string());
        let rows = D::statement(self.q.list_alerts).bind(&app).bind(&app).fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(alert_from).collect()
    }

    /// One alert.
    pub async fn get_alert(&self, id: Uuid) -> Result<Alert> {
        self.one(self.q.get_alert, "alert", id, alert_from).await
    }

    /// Creates a channel on an existing alert, with its verification event when given.
    pub async fn create_channel(&self, new: &NewChannel, verification: Option<&Verification>) -> Result<Channel> {
        let (_writer, mut tx) = self.begin_write().await?;
        let alert = new.alert_id.to_string();
        if D::statement(self.q.get_alert_for_update).bind(&alert).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound { kind: "alert", id: alert });
        }
        let id = new.id.to_string();
        let created: i64 = D::statement(self.q.insert_channel)
            .bind(&id)
            .bind(&alert)
            .bind(new.kind.as_str())
            .bind(&new.url)
            .bind(new.state.as_str())
            .bind(&new.content_type)
            .bind(new.secret.as_ref().map(|s| self.keys.seal(s.expose(), &id)))
            .bind(new.routing_key.as_ref().map(|s| self.keys.seal(s.expose(), &id)))
            .bind(verification.map(|v| v.token_hash.clone()))
            .bind(verification.map(|v| v.expires_at.timestamp_millis()))
            .bind(new.rate_limit.map(|r| r.to_string()))
            .bind(&new.tls.ca_pem)
            .bind(&new.tls.client_cert_pem)
            .bind(new.tls.client_key.as_ref().map(|k| self.keys.seal(k.expose(), &id)))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
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
            url: new.url.as_deref().map(|u| redact_url(u, new.kind == certhook_core::event::ChannelKind::Slack)),
            state: new.state,
            content_type: new.content_type.clone(),
            has_secret: new.secret.is_some(),
            rate_limit: new.rate_limit,
            tls: tls_summary(
                new.tls.ca_pem.clone(),
                new.tls.client_cert_pem.clone(),
                new.tls.client_key.as_ref().map(|_| String::new()),
            ),
            last_success_at: None,
            last_failure_at: None,
            failing_since: None,
            created_at: millis(created),
        })
    }

    async fn insert_verification(
        &self,
        tx: &mut sqlx::Transaction<'static, D::Db>,
        channel_id: &str,
        v: &Verification,
    ) -> Result<()> {
        let message = v.message_id.to_string();
        D::statement(self.q.insert_message)
            .bind(&message)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(DeliveryType::Verification.as_str())
            .bind(&v.body)
            .execute(&mut **tx)
            .await?;
        D::statement(self.q.insert_delivery)
            .bind(Uuid::now_v7().to_string())
            .bind(&message)
            .bind(None::<String>)
            .bind(channel_id)
            .bind(DeliveryType::Verification.as_str())
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
        let updated = D::statement(self.q.start_verification)
            .bind(&v.token_hash)
            .bind(v.expires_at.timestamp_millis())
            .bind(new_url.map(str::to_string))
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        D::statement(self.q.hold_channel).bind(&key).execute(&mut *tx).await?;
        self.insert_verification(&mut tx, &key, v).await?;
        let row = D::statement(self.q.get_channel).bind(&key).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        self.wake();
        channel_from(&row)
    }

    /// Activates a `pending_verification` channel whose endpoint received `token` (judged
    /// against the stored hash and expiry by the database's clock); held deliveries go out.
    pub async fn activate_channel(&self, id: Uuid, token: &str) -> Result<Channel> {
        let key = id.to_string();
        let now = self.now().await?;
        let Some(row) =
            D::statement(self.q.channel_verification).bind(&key).fetch_optional(&mut *self.conn().await?).await?
        else {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        };
        let state: ChannelState = parse_col(&row, "state")?;
        certhook_core::lifecycle::transition(state, ChannelAction::Activate).map_err(StoreError::Conflict)?;
        let stored: Option<String> = row.try_get("verification_token")?;
        let expires = opt_millis(row.try_get("verification_expires_at")?);
        certhook_core::lifecycle::check_token(token, stored.as_deref(), expires, now)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let channel = self.set_channel_state(id, ChannelState::Active).await?;
        D::statement(self.q.clear_verification).bind(&key).execute(&mut *self.conn().await?).await?;
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
        let done = D::statement(self.q.rotate_secret)
            .bind(duration_ms(grace))
            .bind(self.keys.seal(secret.expose(), &key))
            .bind(&key)
            .execute(&mut *self.conn().await?)
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        self.get_channel(id).await
    }

    /// Re-points a channel without verification (Slack, PagerDuty, or `--no-verify` use).
    pub async fn set_channel_url(&self, id: Uuid, url: &str) -> Result<Channel> {
        let key = id.to_string();
        let done = D::statement(self.q.set_channel_url).bind(url).bind(&key).execute(&mut *self.conn().await?).await?;
        if done == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        self.get_channel(id).await
    }

    /// Changes a channel's rate limit and TLS settings, in one transaction; the client key
    /// is sealed like the signing secret.
    pub async fn update_channel(&self, id: Uuid, update: &ChannelUpdate) -> Result<Channel> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        if D::statement(self.q.get_channel).bind(&key).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        if let Some(limit) = &update.rate_limit {
            D::statement(self.q.set_channel_rate_limit)
                .bind(limit.map(|r| r.to_string()))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(ca) = &update.ca_pem {
            D::statement(self.q.set_channel_ca).bind(ca.clone()).bind(&key).execute(&mut *tx).await?;
        }
        if let Some(identity) = &update.client_identity {
            let (cert, sealed) = match identity {
                Some((cert, client_key)) => (Some(cert.clone()), Some(self.keys.seal(client_key.expose(), &key))),
                None => (None, None),
            };
            D::statement(self.q.set_channel_client_identity)
                .bind(cert)
                .bind(sealed)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        let row = D::statement(self.q.get_channel).bind(&key).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        channel_from(&row)
    }

    /// Channels, optionally of one alert.
    pub async fn list_channels(&self, alert_id: Option<Uuid>) -> Result<Vec<Channel>> {
        let alert = alert_id.map(|a| a.to_string());
        let rows =
            D::statement(self.q.list_channels).bind(&alert).bind(&alert).fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(channel_from).collect()
    }

    /// One channel.
    pub async fn get_channel(&self, id: Uuid) -> Result<Channel> {
        self.one(self.q.get_channel, "channel", id, channel_from).await
    }

    /// Moves a channel to `state`, holding or releasing its deliveries to match.
    ///
    /// Which transitions are allowed is the caller's rule; this applies one.
    pub async fn set_channel_state(&self, id: Uuid, state: ChannelState) -> Result<Channel> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let updated = D::statement(self.q.set_channel_state).bind(state.as_str()).bind(&key).execute(&mut *tx).await?;
        if updated == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        let release = match state {
            ChannelState::Active => {
                // A fresh start: failures before this do not count towards disable_after.
                D::statement(self.q.clear_failing).bind(&key).execute(&mut *tx).await?;
                true
            }
            ChannelState::Paused | ChannelState::PendingVerification => {
                D::statement(self.q.hold_channel).bind(&key).execute(&mut *tx).await?;
                false
            }
            ChannelState::Disabled => false,
        };
        if release {
            D::statement(self.q.release_channel).bind(&key).execute(&mut *tx).await?;
        }
        let row = D::statement(self.q.get_channel).bind(&key).fetch_one(&mut *tx).await?;
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
        let rows = D::statement(self.q.channel_targets).fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(|r| self.target_from(r, now)).collect()
    }

    /// What sending to one live channel needs (`channel test`).
    pub async fn channel_target(&self, id: Uuid) -> Result<ChannelTarget> {
        let now = self.now().await?;
        match D::statement(self.q.channel_target).bind(id.to_string()).fetch_optional(&mut *self.conn().await?).await? {
            Some(row) => self.target_from(&row, now),
            None => Err(StoreError::NotFound { kind: "channel", id: id.to_string() }),
        }
    }

    /// A `channel_targets` row as a target, its secrets opened as of `now`.
    fn target_from(&self, r: &D::Row, now: chrono::DateTime<Utc>) -> Result<ChannelTarget> {
        let id: String = r.try_get("id")?;
        let previous_live = opt_millis(r.try_get("previous_secret_expires_at")?).is_some_and(|until| until > now);
        let secret: Option<String> = r.try_get("secret")?;
        let previous = r.try_get::<Option<String>, _>("previous_secret")?.filter(|_| previous_live);
        let routing_key: Option<String> = r.try_get("routing_key")?;
        let client_key: Option<String> = r.try_get("client_key")?;
        let open = |v: Option<String>| v.map(|v| self.open_secret(&v, &id).map(certhook_core::Secret::new)).transpose();
        // One channel whose secret does not open (another process sealed it under a key this
        // one lacks) must not keep the others from being refreshed: it is sent nothing.
        let (secrets, routing_key, client_key, unreadable) =
            match (open(secret), open(previous), open(routing_key), open(client_key)) {
                (Ok(s), Ok(p), Ok(k), Ok(c)) => (s.into_iter().chain(p).collect(), k, c, None),
                (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                    (Vec::new(), None, None, Some(e.to_string()))
                }
            };
        Ok(ChannelTarget {
            id: uuid_col(r, "id")?,
            alert_id: uuid_col(r, "alert_id")?,
            application_id: uuid_col(r, "application_id")?,
            kind: parse_col(r, "kind")?,
            url: r.try_get("url")?,
            state: parse_col(r, "state")?,
            content_type: r.try_get("content_type")?,
            routing_key,
            secrets,
            rate_limit: rate_limit_col(r)?,
            tls: certhook_core::subscription::ChannelTls {
                ca_pem: r.try_get("ca_pem")?,
                client_cert_pem: r.try_get("client_cert_pem")?,
                client_key,
            },
            unreadable,
        })
    }

    /// A stored secret column's plain value, or which key it needs.
    fn open_secret(&self, stored: &str, channel: &str) -> Result<String> {
        self.keys.open(stored, channel).map_err(|source| StoreError::Sealed { channel: channel.to_string(), source })
    }

    /// See [`crate::Store::check_secrets`].
    pub async fn check_secrets(&self) -> Result<()> {
        let rows = D::statement(self.q.channel_secrets).fetch_all(&mut *self.conn().await?).await?;
        for r in &rows {
            let id: String = r.try_get("id")?;
            for column in SEALED_COLUMNS {
                if let Some(v) = r.try_get::<Option<String>, _>(column)? {
                    self.open_secret(&v, &id)?;
                }
            }
        }
        Ok(())
    }

    /// See [`crate::Store::rewrap_secrets`].
    pub async fn rewrap_secrets(&self, dry_run: bool) -> Result<usize> {
        let (_writer, mut tx) = self.begin_write().await?;
        let mut changed = 0;
        if !dry_run {
            D::statement(self.q.erase_deleted_secrets).execute(&mut *tx).await?;
        }
        let rows = D::statement(self.q.channel_secrets_to_rewrap).fetch_all(&mut *tx).await?;
        for r in &rows {
            let id: String = r.try_get("id")?;
            let mut values: [Option<String>; 4] = [
                r.try_get("secret")?,
                r.try_get("previous_secret")?,
                r.try_get("routing_key")?,
                r.try_get("client_key")?,
            ];
            if values.iter().flatten().all(|v| self.keys.is_current(v)) {
                continue;
            }
            for v in values.iter_mut().flatten() {
                *v = self.keys.seal(&self.open_secret(v, &id)?, &id);
            }
            changed += 1;
            if !dry_run {
                let [secret, previous, routing_key, client_key] = values;
                D::statement(self.q.set_channel_secrets)
                    .bind(secret)
                    .bind(previous)
                    .bind(routing_key)
                    .bind(client_key)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// A `410 Gone` from `url` (the channel's URL when the request went out; none for
    /// PagerDuty): disables the channel and dead-letters its waiting deliveries with
    /// `endpoint_gone`, in one transaction, if the channel still points there (a channel
    /// re-pointed since the request is left alone). Returns how many were dead-lettered.
    pub async fn channel_gone(&self, id: Uuid, url: Option<&str>) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let url = url.map(str::to_string);
        if D::statement(self.q.disable_gone_channel).bind(&key).bind(&url).bind(&url).execute(&mut *tx).await? == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        let dead = D::statement(self.q.dead_letter_channel)
            .bind(DeadReason::EndpointGone.as_str())
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(dead)
    }

    /// Disables active channels that have failed without a single success for `after`,
    /// dead-lettering their waiting deliveries (`channel_disabled`). Returns their ids.
    pub async fn disable_failing(&self, after: Duration) -> Result<Vec<Uuid>> {
        let (_writer, mut tx) = self.begin_write().await?;
        let rows = D::statement(self.q.disable_failing).bind(duration_ms(after)).fetch_all(&mut *tx).await?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            D::statement(self.q.dead_letter_channel)
                .bind(DeadReason::ChannelDisabled.as_str())
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            ids.push(uuid_col(row, "id")?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Dead-letters every delivery of a channel that is not in flight or done, with `reason`.
    pub async fn dead_letter_channel(&self, id: Uuid, reason: &str) -> Result<u64> {
        let done = D::statement(self.q.dead_letter_channel)
            .bind(reason)
            .bind(id.to_string())
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done)
    }

    /// Deletes an alert and its channels; their waiting deliveries become dead letters
    /// (`channel_deleted`). Returns how many were dead-lettered.
    pub async fn delete_alert(&self, id: Uuid) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        if D::statement(self.q.get_alert_for_update).bind(&key).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound { kind: "alert", id: key });
        }
        let dead = self.delete_alert_in(&mut tx, &key).await?;
        tx.commit().await?;
        Ok(dead)
    }

    async fn delete_alert_in(&self, tx: &mut sqlx::Transaction<'static, D::Db>, alert: &str) -> Result<u64> {
        let channels = D::statement(self.q.channels_of_alert).bind(alert).fetch_all(&mut **tx).await?;
        D::statement(self.q.delete_alert).bind(alert).execute(&mut **tx).await?;
        let mut dead = 0;
        for ch in &channels {
            let channel: String = ch.try_get("id")?;
            D::statement(self.q.delete_channel).bind(&channel).execute(&mut **tx).await?;
            dead += D::statement(self.q.dead_letter_channel)
                .bind(DeadReason::ChannelDeleted.as_str())
                .bind(&channel)
                .execute(&mut **tx)
                .await?;
        }
        Ok(dead)
    }

    /// Deletes a channel; its waiting deliveries become dead letters (`channel_deleted`).
    pub async fn delete_channel(&self, id: Uuid) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let key = id.to_string();
        let deleted = D::statement(self.q.delete_channel).bind(&key).execute(&mut *tx).await?;
        if deleted == 0 {
            return Err(StoreError::NotFound { kind: "channel", id: key });
        }
        let dead = D::statement(self.q.dead_letter_channel)
            .bind(DeadReason::ChannelDeleted.as_str())
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(dead)
    }
}

/// Binds an alert's definition as `insert_alert` and `update_alert` list its columns: type
/// (the first of the types), types (comma-separated), name, description, alert_before,
/// profiles, name_patterns.
fn bind_definition<S: Statement>(statement: S, new: &NewAlert) -> Result<S> {
    let Some(first) = new.types.first() else {
        return Err(StoreError::Invalid(certhook_core::validate::ValidationError::MissingField("types".into())));
    };
    let types = new.types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",");
    Ok(statement
        .bind(first.as_str())
        .bind(types)
        .bind(new.name.clone())
        .bind(new.description.clone())
        .bind(new.alert_before.map(|b| b.to_string()))
        .bind(json_list_col(&new.filter.profiles))
        .bind(json_list_col(&new.filter.name_patterns)))
}

/// The alert `new` describes, as stored under `id`.
fn alert_of(id: Uuid, new: &NewAlert) -> Alert {
    Alert {
        id,
        application_id: new.application_id,
        alert_type: new.types[0],
        types: new.types.clone(),
        name: new.name.clone(),
        description: new.description.clone(),
        alert_before: new.alert_before,
        filter: new.filter.clone(),
    }
}
