//! The bearer token on `/v1`: compared in constant time, never logged.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};

/// Refuses `/v1` requests without the configured token (none configured: all pass).
pub async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.admin_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.expose().as_bytes()))) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(request).await
}
