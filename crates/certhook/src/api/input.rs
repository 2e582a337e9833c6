//! Input shared by the handlers: ids, times and JSON bodies, each refused with an error
//! naming the field.

use axum::http::StatusCode;
use uuid::Uuid;

use super::ApiError;

/// Parses a UUID from a path or query, naming the field on failure.
pub fn parse_uuid(field: &str, text: &str) -> Result<Uuid, ApiError> {
    crate::input::uuid(text).map_err(|m| bad_field(field, m))
}

/// Parses an RFC 3339 time from a query or body, naming the field on failure.
pub fn parse_time(field: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    crate::input::time(text).map_err(|m| bad_field(field, m))
}

/// Parses a delivery type filter, naming the field on failure.
pub fn parse_delivery_type(field: &str, text: &str) -> Result<String, ApiError> {
    crate::input::delivery_type(text).map_err(|m| bad_field(field, m))
}

/// Parses a delivery state filter, naming the field on failure.
pub fn parse_state(field: &str, text: &str) -> Result<certhook_core::event::DeliveryState, ApiError> {
    text.parse().map_err(|e: certhook_core::event::UnknownValue| bad_field(field, e.to_string()))
}

/// Which time `since` and `before` bound.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// When a delivery was created (the delivery listing).
    Created,
    /// When it was dead-lettered (dead-letter listings and actions).
    DeadLettered,
}

/// The filters deliveries and dead letters share: channel, type, and a time range.
pub fn matching(
    channel: Option<&str>,
    delivery_type: Option<&str>,
    since: Option<&str>,
    before: Option<&str>,
    bound: Bound,
) -> Result<certhook_store::DeliveryFilter, ApiError> {
    let since = since.map(|t| parse_time("since", t)).transpose()?;
    let before = before.map(|t| parse_time("before", t)).transpose()?;
    let (created, dead) = match bound {
        Bound::Created => ((since, before), (None, None)),
        Bound::DeadLettered => ((None, None), (since, before)),
    };
    Ok(certhook_store::DeliveryFilter {
        channel_id: channel.map(|c| parse_uuid("channel", c)).transpose()?,
        delivery_type: delivery_type.map(|t| parse_delivery_type("type", t)).transpose()?,
        created_since: created.0,
        created_before: created.1,
        dead_since: dead.0,
        dead_before: dead.1,
        ..Default::default()
    })
}

/// A 400 naming `field`, for a query or body value that does not parse.
pub fn bad_field(field: &str, message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message: format!("{field}: {message}"),
        field: Some(field.to_string()),
    }
}

/// Parses a JSON request body (400 with the parser's message on failure).
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: absent is `None`, `null` is
/// `Some(None)` (remove), a value is `Some(Some(v))` (set): what a PATCH body means.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
