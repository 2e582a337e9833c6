//! Deliveries and their attempt logs: `GET /v1/deliveries`, `GET /v1/deliveries/{id}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use certhook_store::DeliveryFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use axum::extract::OriginalUri;
use axum::response::Response;

use super::input::{Bound, matching, parse_state, parse_uuid};
use super::page;
use super::{ApiError, ApiState, ErrorBody};

/// Filters of the delivery listings.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeliveryQuery {
    /// pending, leased, retrying, held, delivered or dead.
    status: Option<String>,
    /// Only this channel's.
    channel: Option<String>,
    /// Only this alert type's (or `webhook.verification`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    delivery_type: Option<String>,
    /// At or after this RFC 3339 time: when the delivery was created (`/v1/deliveries`) or
    /// dead-lettered (`/v1/dead-letters`).
    since: Option<String>,
    /// Before this RFC 3339 time: when the delivery was created (`/v1/deliveries`) or
    /// dead-lettered (`/v1/dead-letters`).
    before: Option<String>,
    /// At most this many rows, newest first (default 100, at most 1000).
    limit: Option<u32>,
    /// The page after this delivery: the id of the last one of the previous page.
    after: Option<String>,
}

impl DeliveryQuery {
    /// The store filter these parameters ask for; `bound` says which time `since` and
    /// `before` bound.
    pub(super) fn filter(&self, bound: Bound) -> Result<DeliveryFilter, ApiError> {
        Ok(DeliveryFilter {
            state: self.status.as_deref().map(|s| parse_state("status", s)).transpose()?,
            limit: Some(page::limit(self.limit)?),
            after: self.after.as_deref().map(|a| parse_uuid("after", a)).transpose()?,
            ..matching(
                self.channel.as_deref(),
                self.delivery_type.as_deref(),
                self.since.as_deref(),
                self.before.as_deref(),
                bound,
            )?
        })
    }
}

/// List deliveries, newest first.
#[utoipa::path(get, path = "/v1/deliveries", params(DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<certhook_store::Delivery>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn list_deliveries(
    State(state): State<ApiState>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<DeliveryQuery>,
) -> Result<Response, ApiError> {
    let filter = q.filter(Bound::Created)?;
    let list = state.store.list_deliveries(&filter).await?;
    Ok(page::respond(list, filter.limit.unwrap_or(page::DEFAULT_PAGE), &uri, |d| d.id.to_string()))
}

/// Get a delivery with its attempts.
#[utoipa::path(get, path = "/v1/deliveries/{id}", params(("id" = String, Path, description = "delivery id")),
    security(("bearer" = [])), responses((status = 200, body = certhook_store::DeliveryDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get_delivery(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<certhook_store::DeliveryDetail>, ApiError> {
    Ok(Json(state.store.get_delivery(parse_uuid("id", &id)?).await?))
}
