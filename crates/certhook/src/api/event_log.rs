//! Events as the outbox holds them: `GET /v1/events` (newest first, paged; `refused=true`
//! for the plain-SQL rows fan-out refused) and `GET /v1/events/{id}` with its deliveries.

use axum::Json;
use axum::extract::OriginalUri;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use certhook_store::{EventDetail, EventQuery, EventRecord};
use serde::Deserialize;
use utoipa::IntoParams;

use super::input::parse_uuid;
use super::{ApiError, ApiState, ErrorBody, page};

/// Filters and paging of the events list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventParams {
    /// Only this application's.
    application: Option<String>,
    /// Only outbox rows fan-out refused, with the reason.
    #[serde(default)]
    refused: bool,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// The page after this event: the id of the last one of the previous page.
    after: Option<String>,
}

/// List events as accepted, newest first (or, with `refused=true`, outbox rows that fan-out refused, with the reason).
#[utoipa::path(get, path = "/v1/events", params(EventParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<EventRecord>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_events(
    State(s): State<ApiState>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<EventParams>,
) -> Result<Response, ApiError> {
    let query = EventQuery {
        application_id: q.application.as_deref().map(|a| parse_uuid("application", a)).transpose()?,
        refused: q.refused,
        after: q.after,
        limit: page::limit(q.limit)?,
    };
    let list = s.store.list_events(&query).await?;
    Ok(page::respond(list, query.limit, &uri, |e| e.id.clone()))
}

/// Get an event with the deliveries it made.
#[utoipa::path(get, path = "/v1/events/{id}", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = EventDetail), (status = 404, body = ErrorBody)))]
pub(super) async fn get_event(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    Ok(Json(s.store.get_event(id.trim()).await?))
}
