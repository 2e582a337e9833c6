//! API errors: a status and the JSON body SPEC §6 describes,
//! `{"error": {"code", "message", "field"}}`, mapped from every error the handlers meet.
//! Database details never reach a response (they are logged instead).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certhook_core::validate::ValidationError;
use certhook_producer::ProduceError;
use certhook_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An API error: a status and the JSON body SPEC §6 describes.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) field: Option<String>,
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

    /// A 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
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
            StoreError::Invalid(v) => ApiError::from(v.clone()),
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
