//! What the store hands out and takes in: rows as domain values, leases and outcomes.

use std::sync::Arc;
use std::time::Duration;

use certhook_core::duration::AlertBefore;
use certhook_core::event::{AlertType, CertificateStatus, ChannelKind, ChannelState, DeliveryState};
use certhook_core::filter::CertificateFilter;
use certhook_core::rate_limit::RateLimit;
use certhook_core::subscription::ChannelTls;
use certhook_core::time::{serde_millis, serde_millis_opt};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use certhook_core::tls_pem::CertificateSummary;

/// A group of certificates: one PKI, one team, one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// When it was created.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
}

/// A subscription inside an application to one or more event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Its id.
    pub id: Uuid,
    /// The application it watches.
    pub application_id: Uuid,
    /// The first of `types`, kept in the JSON for clients written when an alert had one.
    #[serde(rename = "type")]
    pub alert_type: AlertType,
    /// What it subscribes to: one channel, secret and verification for all of them.
    pub types: Vec<AlertType>,
    /// A slug.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The expiration window, when `types` includes expiration.
    pub alert_before: Option<AlertBefore>,
    /// Which certificates it is about.
    #[serde(flatten)]
    pub filter: CertificateFilter,
}

impl Alert {
    /// Whether it subscribes to `t`.
    pub fn subscribes_to(&self, t: AlertType) -> bool {
        self.types.contains(&t)
    }

    /// Its definition, as an operator's change applies to it.
    pub fn spec(&self) -> certhook_core::subscription::AlertSpec {
        certhook_core::subscription::AlertSpec {
            types: self.types.clone(),
            name: self.name.clone(),
            alert_before: self.alert_before,
            description: self.description.clone(),
            filter: self.filter.clone(),
        }
    }
}

/// What creating or replacing an alert takes (validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The application it watches.
    pub application_id: Uuid,
    /// What it subscribes to, at least one.
    pub types: Vec<AlertType>,
    /// A slug.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The expiration window.
    pub alert_before: Option<AlertBefore>,
    /// Which certificates it is about.
    pub filter: CertificateFilter,
}

impl NewAlert {
    /// The alert an operator's checked definition describes, in `application_id`.
    pub fn from_spec(application_id: Uuid, spec: certhook_core::subscription::AlertSpec) -> Self {
        NewAlert {
            application_id,
            types: spec.types,
            name: spec.name,
            description: spec.description,
            alert_before: spec.alert_before,
            filter: spec.filter,
        }
    }

    /// One alert of one type and no filters (expiration alerts warn 30 days ahead).
    pub fn single(application_id: Uuid, alert_type: AlertType, name: &str) -> Self {
        NewAlert {
            application_id,
            types: vec![alert_type],
            name: name.to_string(),
            description: None,
            alert_before: (alert_type == AlertType::Expiration).then(|| "30d".parse().expect("a valid window")),
            filter: CertificateFilter::default(),
        }
    }
}

/// Where an alert sends, as shown to operators (secrets never leave the store this way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// Its id.
    pub id: Uuid,
    /// The alert it belongs to.
    pub alert_id: Uuid,
    /// webhook, slack or pagerduty.
    pub kind: ChannelKind,
    /// Destination, redacted (a Slack path, `user:password`, query values) because this is
    /// what operators see; none for PagerDuty, whose address is configuration.
    pub url: Option<String>,
    /// Lifecycle state.
    pub state: ChannelState,
    /// Content-Type override.
    pub content_type: Option<String>,
    /// Whether requests are signed.
    pub has_secret: bool,
    /// At most this many requests per second or minute (`2/s`, `30/m`); none when unlimited.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2/s"))]
    pub rate_limit: Option<RateLimit>,
    /// What it trusts and presents over TLS beyond the defaults; none when nothing is set.
    pub tls: Option<ChannelTlsSummary>,
    /// When a request to it last got a 2xx.
    #[serde(with = "serde_millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_success_at: Option<DateTime<Utc>>,
    /// When a request to it last failed (an error status, a timeout, no connection).
    #[serde(with = "serde_millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Since when every request to it has failed (none while it succeeds); a channel failing
    /// for `disable_after` is disabled.
    #[serde(with = "serde_millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was created.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
}

/// A channel's TLS settings as shown: certificates by subject and notAfter; the client
/// key only as being there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelTlsSummary {
    /// CA certificates trusted besides the system roots and `ca_bundle`.
    pub ca_certificates: Vec<CertificateSummary>,
    /// The client certificate presented (the first of its chain).
    pub client_certificate: Option<CertificateSummary>,
    /// Whether its private key is stored.
    pub has_client_key: bool,
}

/// Changes to a channel's settings; `None` leaves one as it is, `Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelUpdate {
    /// A new rate limit, or none.
    pub rate_limit: Option<Option<RateLimit>>,
    /// New CA certificates (PEM), or none.
    pub ca_pem: Option<Option<String>>,
    /// A new client certificate (PEM) and its key, or neither.
    pub client_identity: Option<Option<(String, certhook_core::Secret)>>,
}

impl ChannelUpdate {
    /// Whether it changes anything.
    pub fn is_empty(&self) -> bool {
        self.rate_limit.is_none() && self.ca_pem.is_none() && self.client_identity.is_none()
    }
}

/// What creating a channel takes (validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChannel {
    /// Its id, chosen by the caller so a verification event can name it before it exists.
    pub id: Uuid,
    /// The alert it belongs to.
    pub alert_id: Uuid,
    /// webhook, slack or pagerduty.
    pub kind: ChannelKind,
    /// Destination.
    pub url: Option<String>,
    /// Initial state: `pending_verification` or `active`.
    pub state: ChannelState,
    /// Signing secret.
    pub secret: Option<certhook_core::Secret>,
    /// PagerDuty routing key.
    pub routing_key: Option<certhook_core::Secret>,
    /// Content-Type override.
    pub content_type: Option<String>,
    /// Requests per second or minute at most.
    pub rate_limit: Option<RateLimit>,
    /// CA certificates, client certificate and key.
    pub tls: ChannelTls,
}

impl NewChannel {
    /// An unsigned webhook channel to `url`, in `state`, with a fresh id and nothing else set.
    pub fn webhook(alert_id: Uuid, url: &str, state: ChannelState) -> Self {
        NewChannel {
            id: Uuid::now_v7(),
            alert_id,
            kind: ChannelKind::Webhook,
            url: Some(url.to_string()),
            state,
            secret: None,
            routing_key: None,
            content_type: None,
            rate_limit: None,
            tls: ChannelTls::default(),
        }
    }
}

/// A verification to send: the token's hash to keep, and the rendered event carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// SHA-256 of the token: the token itself is stored only in the event's body, and
    /// taken out of it once the event has been delivered.
    pub token_hash: String,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The CloudEvent id of the verification event.
    pub message_id: Uuid,
    /// The rendered verification event.
    pub body: Vec<u8>,
}

/// One delivery: one event (or verification) for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Its id.
    pub id: Uuid,
    /// The event it delivers (none for a verification).
    pub event_id: Option<Uuid>,
    /// The channel it goes to.
    pub channel_id: Uuid,
    /// The CloudEvent `id`, stable across retries and replays.
    pub cloud_event_id: Uuid,
    /// Alert type, or `webhook.verification`.
    #[serde(rename = "type")]
    pub delivery_type: String,
    /// Where it is in its life.
    pub state: DeliveryState,
    /// Attempts made since it was created or last replayed.
    pub attempt_count: u32,
    /// When it is next due (pending, retrying).
    #[serde(with = "serde_millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Status code of the last attempt.
    pub last_status_code: Option<u16>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
    /// When it was created.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// When a 2xx arrived.
    #[serde(with = "serde_millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was dead-lettered.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub dead_at: Option<DateTime<Utc>>,
}

/// One HTTP request of a delivery, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1 for the first attempt (since creation or the last replay).
    pub number: u32,
    /// When the request started.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// The response status, if one came.
    pub status_code: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The start of the response body (at most 1 KiB).
    pub response_snippet: Option<String>,
}

/// A delivery with its attempt history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// Filters for listing deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this state.
    pub state: Option<DeliveryState>,
    /// Only this channel.
    pub channel_id: Option<Uuid>,
    /// Only this type (alert type or `webhook.verification`).
    pub delivery_type: Option<String>,
    /// Dead letters only: dead-lettered at or after.
    pub dead_since: Option<DateTime<Utc>>,
    /// Dead letters only: dead-lettered before.
    pub dead_before: Option<DateTime<Utc>>,
    /// Created at or after.
    pub created_since: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// At most this many rows (newest first); `None` for all.
    pub limit: Option<u32>,
    /// The page after this delivery (the last one of the previous page).
    pub after: Option<Uuid>,
}

/// Which dead letters a replay or purge takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterSelector {
    /// Exactly this one.
    Id(Uuid),
    /// Every dead letter matching the filter (its `state` is ignored).
    Matching(DeliveryFilter),
}

/// What a replay did: the dead letters put back, and those left dead because of their
/// channel, so that a replay matching nothing can say why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// The dead letters replayed (or, with a dry run, that would be).
    pub ids: Vec<Uuid>,
    /// Dead letters that matched but stay dead, per channel.
    pub skipped: Vec<SkippedChannel>,
}

/// Dead letters of one channel that a replay left dead, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedChannel {
    /// The channel.
    pub channel_id: Uuid,
    /// `deleted`, or the state that stops it (`disabled`).
    pub why: String,
    /// How many of its dead letters matched.
    pub count: u64,
}

/// A claimed delivery: the right, until `expires`, to send it and report its outcome.
///
/// Consumed by [`Outcome`]s, so a lease cannot be reported twice.
#[derive(Debug)]
pub struct Lease {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The fencing token: outcomes are accepted only while the row still carries it.
    pub token: Uuid,
    /// The channel to send to.
    pub channel_id: Uuid,
    /// The CloudEvent id (`webhook-id`).
    pub cloud_event_id: Uuid,
    /// What it carries.
    pub delivery_type: certhook_core::event::DeliveryType,
    /// Attempts made before this one.
    pub attempts_before: u32,
    /// The exact bytes to send.
    pub body: Arc<[u8]>,
    /// When the event was enqueued (for end-to-end latency).
    pub enqueued_at: DateTime<Utc>,
}

/// What became of a leased delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A 2xx arrived.
    Delivered,
    /// Failed; due again after `delay` (judged by the database's clock).
    Retry {
        /// How long to wait.
        delay: Duration,
    },
    /// Failed for good.
    Dead {
        /// Why.
        reason: certhook_core::event::DeadReason,
    },
    /// Not attempted (shutdown): back to the queue, due at once, no attempt counted.
    Released,
}

/// The record of one HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// The response status, if one came.
    pub status_code: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The start of the response body.
    pub response_snippet: Option<String>,
}

/// A lease's outcome, to be recorded with others in one transaction.
#[derive(Debug)]
pub struct Outcome {
    /// The lease it settles.
    pub lease: Lease,
    /// What happened on the wire (none for [`Disposition::Released`] or a refusal before sending).
    pub attempt: Option<AttemptRecord>,
    /// What happens to the delivery now.
    pub disposition: Disposition,
}

/// What a claim asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// At most this many leases (the worker's free sending slots).
    pub limit: usize,
    /// How long the leases last.
    pub lease: Duration,
    /// At most this many new leases per channel not named in `channel_limits`.
    pub per_channel: usize,
    /// Channels with no free sending slot.
    pub exclude: &'a [Uuid],
    /// At most this many new leases for each channel named here.
    pub channel_limits: &'a [(Uuid, usize)],
}

impl ClaimRequest<'_> {
    /// A plain claim: `limit` rows, any channel.
    pub fn simple(limit: usize, lease: Duration) -> ClaimRequest<'static> {
        ClaimRequest { limit, lease, per_channel: limit.max(1), exclude: &[], channel_limits: &[] }
    }
}

/// What the worker needs to send to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTarget {
    /// Channel id.
    pub id: Uuid,
    /// Its alert.
    pub alert_id: Uuid,
    /// Its alert's application.
    pub application_id: Uuid,
    /// webhook, slack or pagerduty.
    pub kind: ChannelKind,
    /// Destination.
    pub url: Option<String>,
    /// Lifecycle state.
    pub state: ChannelState,
    /// Content-Type override.
    pub content_type: Option<String>,
    /// Active signing secrets, newest first.
    pub secrets: Vec<certhook_core::Secret>,
    /// PagerDuty routing key.
    pub routing_key: Option<certhook_core::Secret>,
    /// Requests per second or minute at most.
    pub rate_limit: Option<RateLimit>,
    /// CA certificates, client certificate and key (opened).
    pub tls: ChannelTls,
    /// Why its secrets could not be read (sealed under a key this process does not have);
    /// then `secrets`, `routing_key` and the client key are empty and nothing may be sent to it.
    pub unreadable: Option<String>,
}

/// What a claim returned.
#[derive(Debug, Default)]
pub struct Claim {
    /// The leases, oldest due first.
    pub leases: Vec<Lease>,
    /// How many of them were taken over from an expired lease.
    pub taken_over: usize,
}

/// Counts for `certhook status` and the queue gauges.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Event counts.
    pub events: EventCounts,
    /// Deliveries per state.
    pub deliveries: DeliveryCounts,
    /// Age of the oldest delivery still waiting to be delivered (pending, retrying, leased).
    pub oldest_pending_age_seconds: f64,
    /// Channels per state.
    pub channels: ChannelCounts,
}

/// Event counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventCounts {
    /// Events in the outbox.
    pub total: u64,
}

/// Deliveries per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryCounts {
    /// Due or waiting to be due.
    pub pending: u64,
    /// Being sent.
    pub leased: u64,
    /// Waiting for a retry.
    pub retrying: u64,
    /// Held by a paused or unverified channel.
    pub held: u64,
    /// Delivered (until pruned).
    pub delivered: u64,
    /// Dead letters.
    pub dead: u64,
}

/// Channels per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelCounts {
    /// Waiting for activation.
    pub pending_verification: u64,
    /// Receiving.
    pub active: u64,
    /// Holding.
    pub paused: u64,
    /// Disabled.
    pub disabled: u64,
}

impl DeliveryCounts {
    /// How many deliveries are in `state`.
    pub fn of(&self, state: DeliveryState) -> u64 {
        match state {
            DeliveryState::Pending => self.pending,
            DeliveryState::Leased => self.leased,
            DeliveryState::Retrying => self.retrying,
            DeliveryState::Held => self.held,
            DeliveryState::Delivered => self.delivered,
            DeliveryState::Dead => self.dead,
        }
    }
}

impl ChannelCounts {
    /// How many channels are in `state`.
    pub fn of(&self, state: ChannelState) -> u64 {
        match state {
            ChannelState::PendingVerification => self.pending_verification,
            ChannelState::Active => self.active,
            ChannelState::Paused => self.paused,
            ChannelState::Disabled => self.disabled,
        }
    }
}

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Delivered deliveries (with their attempts).
    pub deliveries: u64,
    /// Events with nothing left to deliver.
    pub events: u64,
}

/// What one expiration scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanOutcome {
    /// Expiration alerts evaluated.
    pub alerts: usize,
    /// Events enqueued, in order.
    pub events: Vec<Uuid>,
    /// Certificates reported in those events.
    pub reported: usize,
    /// Certificates newly marked expired in the inventory.
    pub expired_marked: u64,
    /// Per alert, the certificates reported (or, in a preview, that would be).
    pub reports: Vec<ScanReport>,
}

/// The certificates one expiration alert reports in a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    /// The expiration alert.
    pub alert_id: Uuid,
    /// Its name.
    pub alert_name: String,
    /// The certificates, soonest expiry first.
    pub certificates: Vec<certhook_core::event::Certificate>,
}

/// A certificate in an application's inventory, with its status as last judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InventoryCertificate {
    /// The application it belongs to.
    pub application_id: Uuid,
    /// The PKI's id for it.
    pub id: String,
    /// Serial number as the PKI writes it.
    pub serial_number: String,
    /// Subject common name.
    pub common_name: String,
    /// Subject alternative names.
    pub san: Vec<String>,
    /// Profile or template, when known.
    pub profile_name: Option<String>,
    /// Start of validity.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub not_before: DateTime<Utc>,
    /// End of validity.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub not_after: DateTime<Utc>,
    /// `active`, `expired` (judged by the last scan) or `revoked`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: CertificateStatus,
    /// When it was revoked.
    #[serde(with = "serde_millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revocation_reason: Option<String>,
    /// When an event or import last wrote it.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
}

/// Which of an application's certificates to list, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateQuery {
    /// Only this status.
    pub status: Option<CertificateStatus>,
    /// Only unrevoked certificates whose notAfter is within this long from now (and not past).
    pub expiring_within: Option<Duration>,
    /// The page after this certificate id (the last one of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: u32,
}

impl CertificateQuery {
    /// The first `limit` certificates, unfiltered.
    pub fn first(limit: u32) -> Self {
        CertificateQuery { status: None, expiring_within: None, after: None, limit }
    }
}

/// What became of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Not fanned out yet.
    Waiting,
    /// Fanned out to the alerts that matched it (possibly none).
    FannedOut,
    /// Refused at fan-out (a plain-SQL row that does not pass the checks); see `error`.
    Refused,
}

impl EventState {
    /// Its word, as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Waiting => "waiting",
            EventState::FannedOut => "fanned_out",
            EventState::Refused => "refused",
        }
    }
}

/// An event as the outbox holds it: accepted, or a plain-SQL row fan-out refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// Its id.
    pub id: String,
    /// The application it is for.
    pub application_id: String,
    /// The event type as written.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The producer's idempotency key.
    pub idempotency_key: Option<String>,
    /// The alert a scanner event was made for.
    pub alert_id: Option<String>,
    /// The certificate, as JSON (as written, when it is not JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub certificate: Option<serde_json::Value>,
    /// An expiration event's certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub certificates: Option<serde_json::Value>,
    /// When it happened.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: DateTime<Utc>,
    /// When it was stored.
    #[serde(with = "serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// When fan-out took it.
    #[serde(with = "serde_millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub fanned_out_at: Option<DateTime<Utc>>,
    /// Waiting, fanned out, or refused.
    pub state: EventState,
    /// Why fan-out refused it.
    pub error: Option<String>,
}

/// An event with the deliveries it made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    /// The event.
    #[serde(flatten)]
    pub event: EventRecord,
    /// One per channel it went to, oldest first.
    pub deliveries: Vec<Delivery>,
}

/// Which events to list, newest first, a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this application's.
    pub application_id: Option<Uuid>,
    /// Only rows fan-out refused.
    pub refused: bool,
    /// The page after this event id (the last one of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: u32,
}
