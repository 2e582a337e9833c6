//! certhook-store: the durable outbox on SQLite and PostgreSQL.
//!
//! # Layout
//!
//! - [`Store`]: one API over both backends, chosen once from the database URL.
//! - [`driver`]: the contract each backend fulfils ([`driver::Driver`]): its sqlx types,
//!   its transactions, its statements.
//! - [`sqlite`], [`postgres`]: one driver each, with its connection set-up and its dialect
//!   of the statements (`sql.rs` holds them once, with markers where the dialects differ).
//! - The store's logic, written once over any driver ([`Backend`]), one module per concern:
//!   `subscriptions` (applications, alerts, channels and their lifecycle), `outbox`
//!   (enqueue), `fan_out`, `inventory` (certificates and the expiration scan), `leases`
//!   (claim and record), `inspection` (lists, replay and purge, status, pruning).
//! - `rows` (rows as domain values) and `batch` (the JSON rows batch statements bind).
//! - [`model`]: rows as domain values, leases and outcomes.
//! - [`scratch`]: throwaway PostgreSQL databases for tests and benchmarks.
//! - [`migrate`]: the embedded migrations of `migrations/sqlite` and `migrations/postgres`.
//! - [`error`]: what can go wrong ([`StoreError`]).
//!
//! A delivery moves only through named transitions: fan-out creates it `pending`, `held`
//! or `dead`; [`Store::claim`] leases it; [`Store::record`] settles the lease as
//! `delivered`, `retrying` or `dead` (or releases it); channel state changes hold and
//! release; [`Store::replay`] and [`Store::purge`] are the only ways out of `dead`.
#![deny(missing_docs)]

mod backend;
mod batch;
pub mod driver;
pub mod error;
mod fan_out;
mod inspection;
mod inventory;
mod leases;
pub mod migrate;
pub mod model;
mod outbox;
pub mod postgres;
mod rows;
pub mod scratch;
mod sql;
pub mod sqlite;
mod subscriptions;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use certhook_core::event::{ChannelState, NewEvent};
use certhook_core::lifecycle::ChannelAction;
use certhook_core::render::RenderSettings;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

pub use backend::{Backend, StoreSettings};
pub use error::{Result, StoreError};
pub use model::*;

/// The outbox, on whichever backend the database URL names.
#[derive(Debug, Clone)]
pub enum Store {
    /// One SQLite file.
    Sqlite(sqlite::SqliteBackend),
    /// A PostgreSQL database shared by any number of workers.
    Postgres(postgres::PostgresBackend),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Store::Sqlite($b) => $e,
            Store::Postgres($b) => $e,
        }
    };
}

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `sqlite:…`
    Sqlite,
    /// `postgres://…` or `postgresql://…`
    Postgres,
}

impl BackendKind {
    /// Reads the backend from a URL's scheme.
    pub fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(BackendKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(BackendKind::Postgres)
        } else {
            Err(StoreError::BadUrl("must start with sqlite:, postgres:// or postgresql://".into()))
        }
    }
}

impl Store {
    /// Opens the database at `url` (creating a SQLite file if needed) and applies
    /// pending migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        let work = Arc::new(Notify::new());
        Ok(match BackendKind::of_url(url)? {
            BackendKind::Sqlite => Store::Sqlite(sqlite::SqliteBackend::connect(url, work).await?),
            BackendKind::Postgres => Store::Postgres(postgres::PostgresBackend::connect(url, work).await?),
        })
    }

    /// This store with what it takes from the configuration: the keys that seal channel
    /// secrets (see [`certhook_core::seal`]; without them secrets are stored as given), the
    /// size limit of outbox rows, and the render settings that let enqueues fan out.
    pub fn with_settings(self, settings: StoreSettings) -> Store {
        match self {
            Store::Sqlite(b) => Store::Sqlite(b.with_settings(settings)),
            Store::Postgres(b) => Store::Postgres(b.with_settings(settings)),
        }
    }

    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            Store::Sqlite(_) => BackendKind::Sqlite,
            Store::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Resolves when this process made work due, or (PostgreSQL, once
    /// [`Store::listen_for_work`] runs) another process did, or after `timeout`.
    pub async fn wait_for_work(&self, timeout: Duration) {
        let work = dispatch!(self, b => b.work.clone());
        let _ = tokio::time::timeout(timeout, work.notified()).await;
    }

    /// PostgreSQL: starts forwarding `NOTIFY` wake-ups; SQLite: nothing (polling finds
    /// rows that other processes inserted).
    pub async fn listen_for_work(&self) -> Result<Option<tokio::task::JoinHandle<()>>> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(b) => b.listen_for_work().await.map(Some),
        }
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        dispatch!(self, b => b.close().await)
    }

    /// The database's clock.
    pub async fn now(&self) -> Result<DateTime<Utc>> {
        dispatch!(self, b => b.now().await)
    }

    /// Creates an application.
    pub async fn create_application(&self, name: &str) -> Result<Application> {
        dispatch!(self, b => b.create_application(name).await)
    }

    /// Every application, oldest first.
    pub async fn list_applications(&self) -> Result<Vec<Application>> {
        dispatch!(self, b => b.list_applications().await)
    }

    /// One application.
    pub async fn get_application(&self, id: Uuid) -> Result<Application> {
        dispatch!(self, b => b.get_application(id).await)
    }

    /// Creates an alert.
    pub async fn create_alert(&self, new: &NewAlert) -> Result<Alert> {
        dispatch!(self, b => b.create_alert(new).await)
    }

    /// Alerts, optionally of one application.
    pub async fn list_alerts(&self, application_id: Option<Uuid>) -> Result<Vec<Alert>> {
        dispatch!(self, b => b.list_alerts(application_id).await)
    }

    /// One alert.
    pub async fn get_alert(&self, id: Uuid) -> Result<Alert> {
        dispatch!(self, b => b.get_alert(id).await)
    }

    /// Creates a channel, with its verification event when given.
    pub async fn create_channel(&self, new: &NewChannel, verification: Option<&Verification>) -> Result<Channel> {
        dispatch!(self, b => b.create_channel(new, verification).await)
    }

    /// Puts a channel into verification with a new token (and URL), sending the event.
    pub async fn start_verification(&self, id: Uuid, new_url: Option<&str>, v: &Verification) -> Result<Channel> {
        dispatch!(self, b => b.start_verification(id, new_url, v).await)
    }

    /// Activates a channel with the token its endpoint received.
    pub async fn activate_channel(&self, id: Uuid, token: &str) -> Result<Channel> {
        dispatch!(self, b => b.activate_channel(id, token).await)
    }

    /// Pause, resume or enable, if the channel's state allows it.
    pub async fn apply_channel_action(&self, id: Uuid, action: ChannelAction) -> Result<Channel> {
        dispatch!(self, b => b.apply_channel_action(id, action).await)
    }

    /// Re-seals every stored channel secret, routing key and client key as the keyring now seals
    /// (under `secret_key`, or plain without one); returns how many channels changed.
    pub async fn rewrap_secrets(&self, dry_run: bool) -> Result<usize> {
        dispatch!(self, b => b.rewrap_secrets(dry_run).await)
    }

    /// Checks that every stored secret opens under the configured keys (`serve` does, at start).
    pub async fn check_secrets(&self) -> Result<()> {
        dispatch!(self, b => b.check_secrets().await)
    }

    /// Replaces the signing secret; the previous one keeps signing for `grace`.
    pub async fn rotate_secret(&self, id: Uuid, secret: &certhook_core::Secret, grace: Duration) -> Result<Channel> {
        dispatch!(self, b => b.rotate_secret(id, secret, grace).await)
    }

    /// Re-points a channel without verification.
    pub async fn set_channel_url(&self, id: Uuid, url: &str) -> Result<Channel> {
        dispatch!(self, b => b.set_channel_url(id, url).await)
    }

    /// Changes a channel's rate limit and TLS settings.
    pub async fn update_channel(&self, id: Uuid, update: &ChannelUpdate) -> Result<Channel> {
        dispatch!(self, b => b.update_channel(id, update).await)
    }

    /// Channels, optionally of one alert.
    pub async fn list_channels(&self, alert_id: Option<Uuid>) -> Result<Vec<Channel>> {
        dispatch!(self, b => b.list_channels(alert_id).await)
    }

    /// One channel.
    pub async fn get_channel(&self, id: Uuid) -> Result<Channel> {
        dispatch!(self, b => b.get_channel(id).await)
    }

    /// Moves a channel to `state`, holding or releasing its deliveries to match.
    pub async fn set_channel_state(&self, id: Uuid, state: ChannelState) -> Result<Channel> {
        dispatch!(self, b => b.set_channel_state(id, state).await)
    }

    /// Disables channels failing without a success for `after`; their ids.
    pub async fn disable_failing(&self, after: Duration) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.disable_failing(after).await)
    }

    /// Dead-letters a channel's waiting deliveries with `reason`.
    pub async fn dead_letter_channel(&self, id: Uuid, reason: &str) -> Result<u64> {
        dispatch!(self, b => b.dead_letter_channel(id, reason).await)
    }

    /// Replaces an alert's definition with what `change` makes of the current one.
    pub async fn update_alert(
        &self,
        id: Uuid,
        change: impl FnOnce(&Alert) -> std::result::Result<NewAlert, certhook_core::validate::ValidationError>,
    ) -> Result<Alert> {
        dispatch!(self, b => b.update_alert(id, change).await)
    }

    /// Deletes an application (refused while it has alerts, unless `cascade`).
    pub async fn delete_application(&self, id: Uuid, cascade: bool) -> Result<u64> {
        dispatch!(self, b => b.delete_application(id, cascade).await)
    }

    /// Deletes an alert and its channels (their waiting deliveries are dead-lettered).
    pub async fn delete_alert(&self, id: Uuid) -> Result<u64> {
        dispatch!(self, b => b.delete_alert(id).await)
    }

    /// Deletes a channel; its waiting deliveries become dead letters (`channel_deleted`).
    pub async fn delete_channel(&self, id: Uuid) -> Result<u64> {
        dispatch!(self, b => b.delete_channel(id).await)
    }

    /// Enqueues a batch of validated events, all or nothing; ids in input order. With
    /// render settings ([`StoreSettings::render`]) a batch of at most 5,000 is also fanned out.
    pub async fn enqueue(&self, events: &[NewEvent]) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.enqueue(events, &mut |_| {}).await)
    }

    /// [`Self::enqueue`], telling `progress` how many events are written so far (the CLI's
    /// progress line for a long `enqueue --file`).
    pub async fn enqueue_reporting(
        &self,
        events: &[NewEvent],
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.enqueue(events, progress).await)
    }

    /// Fans out up to `limit` new outbox rows; returns how many rows it read.
    pub async fn fan_out(&self, settings: &RenderSettings, limit: usize) -> Result<usize> {
        dispatch!(self, b => b.fan_out(settings, limit).await)
    }

    /// Claims due deliveries as `request` allows (expired leases first).
    pub async fn claim_with(&self, request: &ClaimRequest<'_>) -> Result<Claim> {
        dispatch!(self, b => b.claim(request).await)
    }

    /// Claims up to `limit` due deliveries of any channel under a lease of `lease`.
    pub async fn claim(&self, limit: usize, lease: Duration) -> Result<Claim> {
        self.claim_with(&ClaimRequest::simple(limit, lease)).await
    }

    /// Extends leases still being worked on (id and token each) to `lease` from now; the
    /// ids whose lease still held. Fenced: a lease taken over meanwhile is not touched.
    pub async fn extend(&self, leases: &[(Uuid, Uuid)], lease: Duration) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.extend(leases, lease).await)
    }

    /// One live channel with what sending to it takes (secrets included).
    pub async fn channel_target(&self, id: Uuid) -> Result<ChannelTarget> {
        dispatch!(self, b => b.channel_target(id).await)
    }

    /// Every live channel with what sending to it takes (secrets included).
    pub async fn channel_targets(&self) -> Result<Vec<ChannelTarget>> {
        dispatch!(self, b => b.channel_targets().await)
    }

    /// A `410 Gone` from `url`: disables the channel and dead-letters its waiting
    /// deliveries, if the channel still points at `url`.
    pub async fn channel_gone(&self, id: Uuid, url: Option<&str>) -> Result<u64> {
        dispatch!(self, b => b.channel_gone(id, url).await)
    }

    /// Records outcomes in one transaction; which were accepted (not fenced off).
    ///
    /// Recording the same outcomes again after success changes nothing: the lease token
    /// was cleared, so every repeat is refused as fenced.
    pub async fn record(&self, outcomes: &[Outcome]) -> Result<Vec<bool>> {
        dispatch!(self, b => b.record(outcomes).await)
    }

    /// Deliveries matching a filter, newest first.
    pub async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>> {
        dispatch!(self, b => b.list_deliveries(filter).await)
    }

    /// One delivery with its attempts.
    pub async fn get_delivery(&self, id: Uuid) -> Result<DeliveryDetail> {
        dispatch!(self, b => b.get_delivery(id).await)
    }

    /// Replays dead letters (same CloudEvent ids, fresh attempts); the ids replayed, and
    /// those left dead because their channel is disabled or deleted.
    pub async fn replay(&self, selector: &DeadLetterSelector, dry_run: bool) -> Result<Replayed> {
        dispatch!(self, b => b.replay(selector, dry_run).await)
    }

    /// Purges dead letters; the ids purged.
    pub async fn purge(&self, selector: &DeadLetterSelector, dry_run: bool) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.purge(selector, dry_run).await)
    }

    /// Loads certificates into an application's inventory without producing events.
    pub async fn upsert_certificates(
        &self,
        application_id: Uuid,
        certificates: &[certhook_core::event::Certificate],
    ) -> Result<u64> {
        dispatch!(self, b => b.upsert_certificates(application_id, certificates).await)
    }

    /// An application's inventory, soonest expiry first, a page at a time.
    pub async fn list_certificates(
        &self,
        application_id: Uuid,
        query: &CertificateQuery,
    ) -> Result<Vec<InventoryCertificate>> {
        dispatch!(self, b => b.list_certificates(application_id, query).await)
    }

    /// One certificate of an application's inventory, by the PKI's id or by serial number.
    pub async fn get_certificate(&self, application_id: Uuid, id_or_serial: &str) -> Result<InventoryCertificate> {
        dispatch!(self, b => b.get_certificate(application_id, id_or_serial).await)
    }

    /// Events, newest first, a page at a time, refused outbox rows included.
    pub async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>> {
        dispatch!(self, b => b.list_events(query).await)
    }

    /// One event with the deliveries it made.
    pub async fn get_event(&self, id: &str) -> Result<EventDetail> {
        dispatch!(self, b => b.get_event(id).await)
    }

    /// What the expiration scan at `as_of` would report and mark, storing nothing.
    pub async fn preview_expirations(&self, as_of: DateTime<Utc>, max_per_event: usize) -> Result<ScanOutcome> {
        dispatch!(self, b => b.preview_expirations(as_of, max_per_event).await)
    }

    /// Runs the expiration scan at `as_of`, enqueueing each report once.
    pub async fn scan_expirations(&self, as_of: DateTime<Utc>, max_per_event: usize) -> Result<ScanOutcome> {
        dispatch!(self, b => b.scan_expirations(as_of, max_per_event).await)
    }

    /// Queue depth per state, oldest waiting age, events, channels by state.
    pub async fn status(&self) -> Result<Status> {
        dispatch!(self, b => b.status().await)
    }

    /// Deletes what `retention` allows: delivered rows, their attempts, orphaned events.
    pub async fn prune(&self, retention: Duration) -> Result<Pruned> {
        dispatch!(self, b => b.prune(retention).await)
    }
}
