//! The CloudEvents 1.0 body of a delivery (SPEC §2), in structured JSON mode.
//!
//! Serde writes struct members in declaration order, so the member order of the wire is
//! the order of the fields below. Rendering is a pure function of its inputs: the same
//! delivery always renders to the same bytes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::duration::AlertBefore;
use crate::event::{AlertType, Certificate, CertificateStatus, RevocationReason};
use crate::time::{serde_millis, serde_millis_opt};

/// The default CloudEvent `type` prefix, so receivers written for Infisical work unchanged.
pub const DEFAULT_TYPE_PREFIX: &str = "com.infisical.pki.certificate";

/// The structured-mode media type, which CloudEvents SDKs need to recognise the event.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// What rendering takes from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSettings {
    /// `event_type_prefix`: the CloudEvent `type` is `<prefix>.<alert type>`.
    pub type_prefix: String,
    /// `public_url`: the base of `metadata.viewUrl`.
    pub public_url: String,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings { type_prefix: DEFAULT_TYPE_PREFIX.into(), public_url: "http://127.0.0.1:8080".into() }
    }
}

/// The alert a delivery is sent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRef {
    /// Alert id.
    pub id: Uuid,
    /// Alert name (a slug).
    pub name: String,
    /// The alert's type, which decides the CloudEvent `type` and `subject`.
    pub alert_type: AlertType,
    /// The window of an expiration alert; rendered only on expiration events.
    pub alert_before: Option<AlertBefore>,
    /// The application the alert belongs to.
    pub application_id: Uuid,
}

#[derive(Serialize)]
struct CloudEvent<'a, D: Serialize> {
    specversion: &'static str,
    #[serde(rename = "type")]
    event_type: String,
    source: String,
    id: &'a str,
    #[serde(with = "serde_millis")]
    time: DateTime<Utc>,
    datacontenttype: &'static str,
    subject: &'static str,
    data: D,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertData<'a> {
    alert: AlertView<'a>,
    certificates: Vec<CertificateView<'a>>,
    metadata: Metadata,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertView<'a> {
    id: Uuid,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_before: Option<AlertBefore>,
    application_id: Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateView<'a> {
    id: &'a str,
    serial_number: &'a str,
    common_name: &'a str,
    san: &'a [String],
    profile_name: Option<&'a str>,
    #[serde(with = "serde_millis")]
    not_before: DateTime<Utc>,
    #[serde(with = "serde_millis")]
    not_after: DateTime<Utc>,
    status: CertificateStatus,
    days_until_expiry: i64,
    #[serde(flatten)]
    revocation: Option<RevocationView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RevocationView {
    #[serde(with = "serde_millis_opt")]
    revoked_at: Option<DateTime<Utc>>,
    revocation_reason: Option<RevocationReason>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    total_certificates: usize,
    view_url: String,
}

fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Every value rendered here has string keys and no custom serializer that can fail.
    serde_json::to_vec(value).expect("CloudEvent serialization cannot fail")
}

fn alert_source(application_id: Uuid, alert_id: Uuid) -> String {
    format!("/applications/{application_id}/alerts/{alert_id}")
}

/// Renders the CloudEvent of one alert delivery.
///
/// `time` is when the event occurred (for expiration: when the scan found it); status and
/// `daysUntilExpiry` are judged at that instant, so retries and replays render the same bytes.
pub fn render_alert_event(
    settings: &RenderSettings,
    alert: &AlertRef,
    cloud_event_id: &str,
    time: DateTime<Utc>,
    certificates: &[Certificate],
) -> Vec<u8> {
    let is_revocation = alert.alert_type == AlertType::Revocation;
    let certificates = certificates
        .iter()
        .map(|c| CertificateView {
            id: &c.id,
            serial_number: &c.serial_number,
            common_name: &c.common_name,
            san: &c.san,
            profile_name: c.profile_name.as_deref(),
            not_before: c.not_before,
            not_after: c.not_after,
            status: c.status_at(time),
            days_until_expiry: c.days_until_expiry(time),
            revocation: is_revocation
                .then_some(RevocationView { revoked_at: c.revoked_at, revocation_reason: c.revocation_reason }),
        })
        .collect::<Vec<_>>();
    let event = CloudEvent {
        specversion: "1.0",
        event_type: format!("{}.{}", settings.type_prefix, alert.alert_type),
        source: alert_source(alert.application_id, alert.id),
        id: cloud_event_id,
        time,
        datacontenttype: "application/json",
        subject: alert.alert_type.subject(),
        data: AlertData {
            alert: AlertView {
                id: alert.id,
                name: &alert.name,
                alert_before: if alert.alert_type == AlertType::Expiration { alert.alert_before } else { None },
                application_id: alert.application_id,
            },
            metadata: Metadata {
                total_certificates: certificates.len(),
                view_url: format!(
                    "{}/applications/{}/certificates",
                    settings.public_url.trim_end_matches('/'),
                    alert.application_id
                ),
            },
            certificates,
        },
    };
    to_bytes(&event)
}

/// The channel a verification or test event is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRef {
    /// Channel id.
    pub id: Uuid,
    /// The alert the channel belongs to.
    pub alert_id: Uuid,
    /// The application the alert belongs to.
    pub application_id: Uuid,
}

impl ChannelRef {
    fn source(&self) -> String {
        format!("{}/channels/{}", alert_source(self.application_id, self.alert_id), self.id)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerificationData<'a> {
    verification_token: &'a str,
    channel_id: Uuid,
    #[serde(with = "serde_millis")]
    expires_at: DateTime<Utc>,
}

/// Renders the `<prefix>.webhook.verification` event that carries a channel's token (SPEC §4).
pub fn render_verification_event(
    settings: &RenderSettings,
    channel: &ChannelRef,
    cloud_event_id: &str,
    time: DateTime<Utc>,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Vec<u8> {
    to_bytes(&CloudEvent {
        specversion: "1.0",
        event_type: format!("{}.webhook.verification", settings.type_prefix),
        source: channel.source(),
        id: cloud_event_id,
        time,
        datacontenttype: "application/json",
        subject: "webhook-verification",
        data: VerificationData { verification_token: token, channel_id: channel.id, expires_at },
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestData<'a> {
    channel_id: Uuid,
    message: &'a str,
}

/// Renders the `<prefix>.webhook.test` event that `channel test` sends at once.
pub fn render_test_event(
    settings: &RenderSettings,
    channel: &ChannelRef,
    cloud_event_id: &str,
    time: DateTime<Utc>,
) -> Vec<u8> {
    to_bytes(&CloudEvent {
        specversion: "1.0",
        event_type: format!("{}.webhook.test", settings.type_prefix),
        source: channel.source(),
        id: cloud_event_id,
        time,
        datacontenttype: "application/json",
        subject: "webhook-test",
        data: TestData { channel_id: channel.id, message: "certhook test event: this endpoint is reachable" },
    })
}

#[cfg(test)]
mod tests;
