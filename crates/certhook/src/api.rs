//! The HTTP API (SPEC §6): ingest, deliveries, dead letters, status, health and metrics.
//!
//! Errors are JSON `{"error": {"code", "message", "field"}}`; database details never
//! reach a response (they are logged instead).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use certhook_core::Secret;
use certhook_core::event::DeliveryState;
use certhook_core::validate::ValidationError;
use certhook_producer::{ProduceError, Producer};
use certhook_store::{DeadLetterSelector, DeliveryFilter, Store, StoreError};
use certhook_worker::Metrics;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::hosts::AllowedHosts;

/// Largest batch `POST /v1/events/batch` takes.
pub const MAX_BATCH: usize = 1000;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The outbox.
    pub store: Store,
    /// Validating enqueue.
    pub producer: Producer,
    /// Process metrics.
    pub metrics: Metrics,
    /// Bearer token for `/v1`; `None` leaves `/v1` open (allowed on loopback only).
    pub admin_token: Option<Arc<Secret>>,
    /// Per-event size limit.
    pub max_event_bytes: usize,
    /// The configuration (channel operations need it).
    pub config: Arc<certhook_core::config::Config>,
    /// When `/metrics` last read the queue gauges from the store.
    pub gauges: Arc<crate::gauges::GaugeCache>,
}

/// An API error: a status and the JSON body SPEC §6 describes.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong: a stable code, a message for people, and the offending field.
#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    /// An error with `status`, a stable `code` and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
    }

    /// The stable code clients match on.
    #[cfg(test)]
    pub fn code(&self) -> &'static str {
        self.code
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A 422 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        }
    }

    /// A 500 whose details go to the log, not the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error in API request");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, field: self.field } };
        (self.status, Json(body)).into_response()
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let (status, code) = match &e {
            ValidationError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ValidationError::InBatch { source, .. } if matches!(**source, ValidationError::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            ValidationError::Json(_) | ValidationError::Empty => (StatusCode::BAD_REQUEST, "invalid_json"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        };
        ApiError { status, code, message: e.to_string(), field: e.field() }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::UnknownApplication { index, .. } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "unknown_application",
                message: e.to_string(),
                field: Some(format!("events[{index}].applicationId")),
            },
            StoreError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            StoreError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            _ => match e.unavailable() {
                // Nothing was stored; the same request later will be.
                Some(why) => {
                    tracing::warn!(error = %e, "storage unavailable");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        format!("{why}; nothing was stored, retry later"),
                    )
                }
                None => ApiError::internal(e),
            },
        }
    }
}

impl From<ProduceError> for ApiError {
    fn from(e: ProduceError) -> Self {
        match e {
            ProduceError::Invalid(v) => v.into(),
            ProduceError::Store(s) => s.into(),
        }
    }
}

/// Largest body of the event routes, whatever `max_event_bytes` allows per event: one
/// request is one group-commit transaction, and a smaller batch costs nothing.
pub const MAX_EVENTS_BODY: usize = 32 * 1024 * 1024;

/// Largest body of every other route (applications, alerts, channels, dead-letter actions).
pub const MAX_ADMIN_BODY: usize = 64 * 1024;

/// The router with every route, the auth layer on `/v1`, and the request checks of
/// [`crate::edge`] in front of everything.
pub fn router(state: ApiState) -> Router {
    let event_limit = state.max_event_bytes.saturating_mul(MAX_BATCH).min(MAX_EVENTS_BODY).max(state.max_event_bytes);
    let events = Router::new()
        .route("/events", post(enqueue_one))
        .route("/events/batch", post(enqueue_batch))
        .layer(DefaultBodyLimit::max(event_limit));
    let v1 = Router::new()
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/{id}", get(get_delivery))
        .route("/dead-letters", get(list_dead_letters))
        .route("/dead-letters/replay", post(replay))
        .route("/dead-letters/purge", post(purge))
        .route("/status", get(status))
        .merge(crate::api_admin::routes())
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .merge(events)
        .layer(from_fn_with_state(state.clone(), require_token));
    let hosts = Arc::new(AllowedHosts::new(
        state.config.listen,
        state.config.public_url.as_deref(),
        &state.config.allowed_hosts,
    ));
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .layer(from_fn_with_state(hosts, crate::edge::guard))
        .with_state(state)
}

/// A router with `/metrics` only, for `metrics_listen`.
pub fn metrics_router(state: ApiState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.admin_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.expose().as_bytes())) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(request).await
}

/// Event ids in input order (the first event's id again for a repeated idempotency key).
#[derive(Serialize, ToSchema)]
struct Ids {
    ids: Vec<Uuid>,
}

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

#[utoipa::path(post, path = "/v1/events", request_body = EventInput, security(("bearer" = [])),
    responses((status = 202, body = Ids), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn enqueue_one(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let trimmed = body.iter().find(|b| !b.is_ascii_whitespace());
    if trimmed != Some(&b'{') {
        return Err(ApiError::bad_request("body must be one JSON event object (use /v1/events/batch for several)"));
    }
    ingest(&state, &body).await
}

#[utoipa::path(post, path = "/v1/events/batch", request_body = Vec<EventInput>, security(("bearer" = [])),
    responses((status = 202, body = Ids), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn enqueue_batch(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
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

/// Filters of the delivery listings.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    /// pending, leased, retrying, held, delivered or dead.
    status: Option<String>,
    /// Only this channel's.
    channel: Option<String>,
    /// Only this alert type's (or `webhook.verification`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    delivery_type: Option<String>,
    /// Dead letters dead-lettered at or after this RFC 3339 time.
    since: Option<String>,
    /// Dead letters dead-lettered before this RFC 3339 time.
    before: Option<String>,
    /// At most this many rows, newest first (default 1000, at most 10000).
    limit: Option<u32>,
}

/// Parses a UUID from a path or query, naming the field on failure.
pub fn parse_uuid(field: &str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message: format!("{field}: '{text}' is not a UUID"),
        field: Some(field.to_string()),
    })
}

fn parse_time(field: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    certhook_core::time::parse_rfc3339(text).map_err(|_| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message: format!("{field}: '{text}' is not an RFC 3339 time"),
        field: Some(field.to_string()),
    })
}

impl DeliveryQuery {
    fn filter(&self) -> Result<DeliveryFilter, ApiError> {
        Ok(DeliveryFilter {
            state: self
                .status
                .as_deref()
                .map(|s| {
                    s.parse::<DeliveryState>().map_err(|e| ApiError {
                        status: StatusCode::BAD_REQUEST,
                        code: "invalid_field",
                        message: format!("status: {e}"),
                        field: Some("status".into()),
                    })
                })
                .transpose()?,
            channel_id: self.channel.as_deref().map(|c| parse_uuid("channel", c)).transpose()?,
            delivery_type: self.delivery_type.clone(),
            dead_since: self.since.as_deref().map(|t| parse_time("since", t)).transpose()?,
            dead_before: self.before.as_deref().map(|t| parse_time("before", t)).transpose()?,
            limit: Some(self.limit.unwrap_or(1000).min(10_000)),
        })
    }
}

#[utoipa::path(get, path = "/v1/deliveries", params(DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<certhook_store::Delivery>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<ApiState>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Vec<certhook_store::Delivery>>, ApiError> {
    Ok(Json(state.store.list_deliveries(&q.filter()?).await?))
}

#[utoipa::path(get, path = "/v1/deliveries/{id}", params(("id" = String, Path, description = "delivery id")),
    security(("bearer" = [])), responses((status = 200, body = certhook_store::DeliveryDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_delivery(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<certhook_store::DeliveryDetail>, ApiError> {
    Ok(Json(state.store.get_delivery(parse_uuid("id", &id)?).await?))
}

#[utoipa::path(get, path = "/v1/dead-letters", params(DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<certhook_store::Delivery>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_dead_letters(
    State(state): State<ApiState>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Vec<certhook_store::Delivery>>, ApiError> {
    let filter = DeliveryFilter { state: Some(DeliveryState::Dead), ..q.filter()? };
    Ok(Json(state.store.list_deliveries(&filter).await?))
}

/// Body of replay and purge: one `id`, or `all: true` with filters.
#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeadLetterAction {
    id: Option<String>,
    #[serde(default)]
    all: bool,
    channel: Option<String>,
    #[serde(rename = "type")]
    delivery_type: Option<String>,
    since: Option<String>,
    before: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

impl DeadLetterAction {
    fn selector(&self) -> Result<DeadLetterSelector, ApiError> {
        match (&self.id, self.all) {
            (Some(id), false) => Ok(DeadLetterSelector::Id(parse_uuid("id", id)?)),
            (None, true) => Ok(DeadLetterSelector::Matching(DeliveryFilter {
                channel_id: self.channel.as_deref().map(|c| parse_uuid("channel", c)).transpose()?,
                delivery_type: self.delivery_type.clone(),
                dead_since: self.since.as_deref().map(|t| parse_time("since", t)).transpose()?,
                dead_before: self.before.as_deref().map(|t| parse_time("before", t)).transpose()?,
                ..Default::default()
            })),
            _ => Err(ApiError {
                field: Some("id".into()),
                ..ApiError::bad_request("give exactly one of id or all: true")
            }),
        }
    }
}

/// What a replay or purge did (or, with `dryRun`, would do).
#[derive(Serialize, ToSchema)]
struct Counted {
    count: usize,
    ids: Vec<Uuid>,
}

/// Parses a JSON request body (400 with the parser's message on failure).
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))
}

#[utoipa::path(post, path = "/v1/dead-letters/replay", request_body = DeadLetterAction, security(("bearer" = [])),
    responses((status = 200, body = Counted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn replay(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Json<Counted>, ApiError> {
    let action: DeadLetterAction = json_body(&body)?;
    let ids = state.store.replay(&action.selector()?, action.dry_run).await?;
    if !action.dry_run {
        state.metrics.replays.inc_by(ids.len() as u64);
    }
    Ok(Json(Counted { count: ids.len(), ids }))
}

#[utoipa::path(post, path = "/v1/dead-letters/purge", request_body = DeadLetterAction, security(("bearer" = [])),
    responses((status = 200, body = Counted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn purge(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Json<Counted>, ApiError> {
    let action: DeadLetterAction = json_body(&body)?;
    let ids = state.store.purge(&action.selector()?, action.dry_run).await?;
    Ok(Json(Counted { count: ids.len(), ids }))
}

#[utoipa::path(get, path = "/v1/status", security(("bearer" = [])),
    responses((status = 200, body = certhook_store::Status), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn status(State(state): State<ApiState>) -> Result<Json<certhook_store::Status>, ApiError> {
    Ok(Json(state.store.status().await?))
}

#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "database reachable"), (status = 503, description = "database unreachable")))]
async fn readyz(State(state): State<ApiState>) -> Response {
    match state.store.now().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(state): State<ApiState>) -> Response {
    state.gauges.refresh(&state.store, &state.metrics).await;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8".parse().expect("static header"));
    (headers, state.metrics.render()).into_response()
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

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the handlers and their types.
#[derive(OpenApi)]
#[openapi(
    info(title = "certhook", description = "Durable, signed delivery of certificate events"),
    paths(enqueue_one, enqueue_batch, list_deliveries, get_delivery, list_dead_letters, replay, purge, status, readyz, metrics),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api_admin::AdminDoc::openapi());
    Json(doc)
}
