//! The bearer token on `/v1`: compared in constant time, never logged.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};

/// Whether `given` is the admin token, compared in constant time (the API's bearer token
/// and the console's sign-in).
pub fn token_matches(token: &certhook_core::Secret, given: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// Refuses `/v1` requests without the configured token (none configured: all pass).
pub async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.admin_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| token_matches(token, g)) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(request).await
}
