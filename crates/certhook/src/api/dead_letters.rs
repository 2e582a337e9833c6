//! Dead letters: `GET /v1/dead-letters`, and `POST /v1/dead-letters/replay` and `/purge`
//! for one id or everything matching filters, with a dry run.

use axum::Json;
use axum::extract::{Query, State};
use certhook_core::event::DeliveryState;
use certhook_store::{DeadLetterSelector, DeliveryFilter, Replayed, StoreError};
use serde::Deserialize;
use utoipa::ToSchema;

use super::deliveries::DeliveryQuery;
use super::input::{Bound, json_body, matching, parse_uuid};
use super::{ApiError, ApiState, ErrorBody};
use crate::shapes::Counted;

/// List dead letters: deliveries that will not be retried, with the reason.
#[utoipa::path(get, path = "/v1/dead-letters", params(DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<certhook_store::Delivery>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn list_dead_letters(
    State(state): State<ApiState>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(q): Query<DeliveryQuery>,
) -> Result<axum::response::Response, ApiError> {
    let filter = DeliveryFilter { state: Some(DeliveryState::Dead), ..q.filter(Bound::DeadLettered)? };
    let list = state.store.list_deliveries(&filter).await?;
    Ok(super::page::respond(list, filter.limit.unwrap_or(super::page::DEFAULT_PAGE), &uri, |d| d.id.to_string()))
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
            (None, true) => Ok(DeadLetterSelector::Matching(matching(
                self.channel.as_deref(),
                self.delivery_type.as_deref(),
                self.since.as_deref(),
                self.before.as_deref(),
                Bound::DeadLettered,
            )?)),
            _ => Err(ApiError {
                field: Some("id".into()),
                ..ApiError::bad_request("give exactly one of id or all: true")
            }),
        }
    }
}

/// Replay dead letters.
///
/// Puts one dead letter (`id`) or every one matching the filters (`all: true`) back in the queue with fresh attempts and the same CloudEvent ids. Dead letters of disabled or deleted channels are not replayed: `skipped` says how many per channel, and why. `dryRun: true` changes nothing and answers what would be replayed.
#[utoipa::path(post, path = "/v1/dead-letters/replay", request_body = DeadLetterAction, security(("bearer" = [])),
    responses((status = 200, body = Counted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn replay(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Json<Counted>, ApiError> {
    let action: DeadLetterAction = json_body(&body)?;
    Ok(Json(state.replay_dead_letters(&action.selector()?, action.dry_run).await?.into()))
}

impl ApiState {
    /// Replays dead letters and counts the replays in `certhook_dead_letter_replays_total`:
    /// the one way the API and the console replay.
    pub(crate) async fn replay_dead_letters(
        &self,
        selector: &DeadLetterSelector,
        dry_run: bool,
    ) -> Result<Replayed, StoreError> {
        let replayed = self.store.replay(selector, dry_run).await?;
        if !dry_run {
            self.metrics.replays.inc_by(replayed.ids.len() as u64);
        }
        Ok(replayed)
    }
}

/// Delete dead letters: the only way they are ever deleted.
///
/// One (`id`) or every one matching the filters (`all: true`); `dryRun: true` changes nothing and answers what would be purged.
#[utoipa::path(post, path = "/v1/dead-letters/purge", request_body = DeadLetterAction, security(("bearer" = [])),
    responses((status = 200, body = Counted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn purge(State(state): State<ApiState>, body: axum::body::Bytes) -> Result<Json<Counted>, ApiError> {
    let action: DeadLetterAction = json_body(&body)?;
    Ok(Json(Counted::purged(state.store.purge(&action.selector()?, action.dry_run).await?)))
}
