//! Ingest: `POST /v1/events` (one event or NDJSON) and `POST /v1/events/batch`, both at
//! most [`MAX_BATCH`] events, validated once and enqueued through the producer's group commit.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, ApiState, ErrorBody};
use crate::shapes::Ids;

/// Largest batch `POST /v1/events/batch` takes.
pub const MAX_BATCH: usize = 1000;

/// Validates once, enqueues, and counts what was accepted by type.
async fn ingest(state: &ApiState, body: &[u8]) -> Result<Response, ApiError> {
    let events = state.producer.parse(body)?;
    // Whatever the route and format (an NDJSON body on /v1/events counts too).
    if events.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{} events exceed the maximum of {MAX_BATCH} per request", events.len()),
        ));
    }
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    let ids = state.producer.enqueue(events).await?;
    for t in types {
        state.metrics.events_enqueued.with_label_values(&[t.as_str()]).inc();
    }
    Ok((StatusCode::ACCEPTED, Json(Ids { ids })).into_response())
}

/// Enqueue events.
///
/// The body is one event, or (as `application/x-ndjson`) one event per line, at most 1000. The answer (202) comes once the events are on stable storage. An event with an `idempotencyKey` already used answers the first event's id again.
#[utoipa::path(post, path = "/v1/events", request_body = EventInput, security(("bearer" = [])),
    responses((status = 202, body = Ids), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn enqueue_one(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let trimmed = body.iter().find(|b| !b.is_ascii_whitespace());
    if trimmed != Some(&b'{') {
        return Err(ApiError::bad_request("body must be one JSON event object (use /v1/events/batch for several)"));
    }
    ingest(&state, &body).await
}

/// Enqueue a batch of events, all or nothing.
///
/// At most 1000; one bad event refuses the whole batch, and the error names its position.
#[utoipa::path(post, path = "/v1/events/batch", request_body = Vec<EventInput>, security(("bearer" = [])),
    responses((status = 202, body = Ids), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn enqueue_batch(
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("batch of {} events exceeds the maximum of {MAX_BATCH}", items.len()),
        ));
    }
    ingest(&state, &body).await
}

/// A certificate in producer input (SPEC §5); defaults apply to what is omitted.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only: input is validated field by field, not deserialized into this
struct CertificateInput {
    /// Defaults to the serial number.
    id: Option<String>,
    serial_number: String,
    common_name: String,
    /// Defaults to `[]`.
    san: Option<Vec<String>>,
    profile_name: Option<String>,
    /// RFC 3339.
    not_before: String,
    /// RFC 3339, after notBefore.
    not_after: String,
    /// Revocation only; defaults to the time of enqueue.
    revoked_at: Option<String>,
    /// Revocation only: an RFC 5280 reason in camelCase; defaults to `unspecified`.
    revocation_reason: Option<String>,
}

/// One event as a producer hands it in (SPEC §5).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only, as above
struct EventInput {
    /// issuance, renewal, revocation (or expiration).
    #[serde(rename = "type")]
    event_type: String,
    application_id: Uuid,
    /// A repeat with the same key returns the first event's id and changes nothing.
    idempotency_key: Option<String>,
    certificate: CertificateInput,
}
