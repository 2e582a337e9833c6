//! How the process and its queue are doing: `GET /v1/status`, `/healthz` (the process
//! answers), `/readyz` (the database answers), `/metrics` (Prometheus text; queue gauges at most every few seconds).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState, ErrorBody};

/// Queue depth per state, oldest pending age, events and channels by state.
#[utoipa::path(get, path = "/v1/status", security(("bearer" = [])),
    responses((status = 200, body = certhook_store::Status), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn status(State(state): State<ApiState>) -> Result<Json<certhook_store::Status>, ApiError> {
    Ok(Json(state.store.status().await?))
}

/// Liveness: 200 while the process serves HTTP (no token needed; the database is not asked).
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the process is up", content_type = "text/plain")))]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 when the database answers, else 503 (no token needed).
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "database reachable"), (status = 503, description = "database unreachable")))]
pub(super) async fn readyz(State(state): State<ApiState>) -> Response {
    match state.store.now().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

/// Prometheus metrics in the text exposition format (no token needed).
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<ApiState>) -> Response {
    state.gauges.refresh(&state.store, &state.metrics).await;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8".parse().expect("static header"));
    (headers, state.metrics.render()).into_response()
}
