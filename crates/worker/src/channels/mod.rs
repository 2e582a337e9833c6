//! What each channel kind puts on the wire, built from the stored CloudEvent (pure).
//!
//! - `webhook`: the CloudEvent itself, signed (see [`crate::deliver`]).
//! - [`slack`]: an incoming-webhook message with a text fallback and blocks.
//! - [`pagerduty`]: Events API v2 requests, one per certificate.

pub mod pagerduty;
pub mod slack;

use serde_json::Value;

/// The certificates of a CloudEvent (empty for verification and test events).
pub(crate) fn certificates(ce: &Value) -> &[Value] {
    ce["data"]["certificates"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The alert type of a CloudEvent: the last segment of its `type`.
pub(crate) fn kind_of(ce: &Value) -> &str {
    ce["type"].as_str().and_then(|t| t.rsplit('.').next()).unwrap_or("")
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
/// PagerDuty batches. `resolve` marks a renewal closing expiration incidents.
pub fn requests(dest: &Destination<'_>, body: &[u8], resolve: bool) -> Result<Vec<Outgoing>, String> {
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
            let ce: Value = serde_json::from_slice(body).map_err(|e| format!("stored event is not JSON: {e}"))?;
            let url = dest.url.ok_or("slack channel without a URL")?;
            Ok(vec![Outgoing { url: url.to_string(), ..json(slack::message(&ce)) }])
        }
        ChannelKind::Pagerduty => {
            let ce: Value = serde_json::from_slice(body).map_err(|e| format!("stored event is not JSON: {e}"))?;
            let key = dest.routing_key.ok_or("pagerduty channel without a routing key")?;
            let url = dest.url.unwrap_or(dest.pagerduty_url);
            Ok(pagerduty::events(&ce, key, resolve)
                .into_iter()
                .map(|v| Outgoing { url: url.to_string(), ..json(v) })
                .collect())
        }
    }
}
