//! What each channel kind puts on the wire, built from the stored CloudEvent (pure).
//!
//! - `webhook`: the CloudEvent itself, signed (see [`crate::deliver`]).
//! - [`slack`]: an incoming-webhook message with a text fallback and blocks.
//! - [`pagerduty`]: Events API v2 requests, one per certificate.

pub mod pagerduty;
pub mod slack;

use certhook_core::event::{AlertType, DeliveryType};
use serde::Deserialize;
use serde_json::Value;

/// The parts of a stored CloudEvent that Slack and PagerDuty messages are made of, read
/// into types on each attempt. Test and verification events have no alert and no
/// certificates; what is absent takes its default.
#[derive(Debug, Default, Deserialize)]
pub struct EventView {
    /// `<prefix>.<alert type>`, `<prefix>.webhook.test`, …
    #[serde(rename = "type", default)]
    pub event_type: String,
    /// When the event occurred (RFC 3339).
    #[serde(default)]
    pub time: Option<String>,
    /// Its `data`.
    #[serde(default)]
    pub data: EventData,
}

/// A CloudEvent's `data`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    /// The alert it was sent for.
    #[serde(default)]
    pub alert: Option<AlertView>,
    /// Its certificates.
    #[serde(default)]
    pub certificates: Vec<CertificateView>,
    /// Links and counts.
    #[serde(default)]
    pub metadata: Option<MetadataView>,
    /// The channel (test and verification events).
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// `data.alert`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its window (expiration alerts).
    #[serde(default)]
    pub alert_before: Option<String>,
}

/// One of `data.certificates`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    /// The PKI's id.
    #[serde(default)]
    pub id: String,
    /// Serial number.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// Subject common name.
    #[serde(default)]
    pub common_name: Option<String>,
    /// End of validity (RFC 3339).
    #[serde(default)]
    pub not_after: Option<String>,
    /// Whole days left at the event's time.
    #[serde(default)]
    pub days_until_expiry: Option<i64>,
    /// When it was revoked.
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// Why it was revoked.
    #[serde(default)]
    pub revocation_reason: Option<String>,
}

/// `data.metadata`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataView {
    /// Where the certificates can be seen.
    #[serde(default)]
    pub view_url: Option<String>,
}

/// What a CloudEvent announces, from the last segment of its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An alert's event.
    Alert(AlertType),
    /// `certhook channel test`.
    Test,
    /// Anything else (a verification event, a newer type).
    Other,
}

impl EventView {
    /// What the event announces.
    pub fn kind(&self) -> EventKind {
        match self.event_type.rsplit('.').next().unwrap_or("") {
            "test" => EventKind::Test,
            last => last.parse().map_or(EventKind::Other, EventKind::Alert),
        }
    }
}

/// One HTTP request of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination.
    pub url: String,
    /// Exact bytes.
    pub body: bytes::Bytes,
    /// `Content-Type`.
    pub content_type: String,
    /// Whether to sign it (webhook channels only).
    pub signed: bool,
}

/// What sending one stored CloudEvent to a channel takes.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The channel kind.
    pub kind: certhook_core::event::ChannelKind,
    /// The channel's URL (none for PagerDuty).
    pub url: Option<&'a str>,
    /// Content-Type override (webhook channels).
    pub content_type: Option<&'a str>,
    /// PagerDuty routing key.
    pub routing_key: Option<&'a str>,
    /// `pagerduty_url` from the configuration.
    pub pagerduty_url: &'a str,
}

/// The requests that deliver `body` (a stored CloudEvent) to a destination; several for
/// PagerDuty batches. A [`DeliveryType::Resolve`] closes expiration incidents.
pub fn requests(dest: &Destination<'_>, body: &[u8], delivery_type: DeliveryType) -> Result<Vec<Outgoing>, String> {
    use certhook_core::event::ChannelKind;
    let json = |v: Value| Outgoing {
        url: String::new(),
        body: serde_json::to_vec(&v).unwrap_or_default().into(),
        content_type: "application/json".into(),
        signed: false,
    };
    match dest.kind {
        ChannelKind::Webhook => Ok(vec![Outgoing {
            url: dest.url.ok_or("webhook channel without a URL")?.to_string(),
            body: bytes::Bytes::copy_from_slice(body),
            content_type: dest.content_type.unwrap_or(certhook_core::render::CLOUDEVENTS_CONTENT_TYPE).to_string(),
            signed: true,
        }]),
        ChannelKind::Slack => {
            let url = dest.url.ok_or("slack channel without a URL")?;
            let view: EventView = serde_json::from_slice(body).map_err(|e| format!("stored event: {e}"))?;
            Ok(vec![Outgoing { url: url.to_string(), ..json(slack::message(&view)) }])
        }
        ChannelKind::Pagerduty => {
            let key = dest.routing_key.ok_or("pagerduty channel without a routing key")?;
            let url = dest.url.unwrap_or(dest.pagerduty_url);
            // The whole event goes along as custom_details; the view is read from it.
            let ce: Value = serde_json::from_slice(body).map_err(|e| format!("stored event is not JSON: {e}"))?;
            let view = EventView::deserialize(&ce).map_err(|e| format!("stored event: {e}"))?;
            Ok(pagerduty::events(&view, &ce, key, delivery_type == DeliveryType::Resolve)
                .into_iter()
                .map(|v| Outgoing { url: url.to_string(), ..json(v) })
                .collect())
        }
    }
}
