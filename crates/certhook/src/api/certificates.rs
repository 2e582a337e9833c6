//! The inventory: `GET /v1/applications/{id}/certificates` (soonest expiry first, paged)
//! and `GET /v1/applications/{id}/certificates/{certificate}`.

use axum::Json;
use axum::extract::OriginalUri;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use certhook_store::{CertificateQuery, InventoryCertificate};
use serde::Deserialize;
use utoipa::IntoParams;

use super::input::{bad_field, parse_uuid};
use super::{ApiError, ApiState, ErrorBody, page};

/// Filters and paging of the inventory.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(super) struct CertificateParams {
    /// active, expired or revoked.
    status: Option<String>,
    /// Only unrevoked certificates expiring within this long from now (30d, 12h, 2w).
    expiring_within: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// The page after this certificate: the id of the last one of the previous page.
    after: Option<String>,
}

/// List an application's certificate inventory, soonest expiry first.
#[utoipa::path(get, path = "/v1/applications/{id}/certificates", params(("id" = String, Path), CertificateParams),
    security(("bearer" = [])), responses((status = 200, body = Vec<InventoryCertificate>),
    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_certificates(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<CertificateParams>,
) -> Result<Response, ApiError> {
    let application_id = parse_uuid("id", &id)?;
    let query = CertificateQuery {
        status: q
            .status
            .as_deref()
            .map(|t| crate::input::certificate_status(t).map_err(|m| bad_field("status", m)))
            .transpose()?,
        expiring_within: q
            .expiring_within
            .as_deref()
            .map(|w| crate::input::window(w).map_err(|m| bad_field("expiringWithin", m)))
            .transpose()?,
        after: q.after,
        limit: page::limit(q.limit)?,
    };
    let list = s.store.list_certificates(application_id, &query).await?;
    Ok(page::respond(list, query.limit, &uri, |c| c.id.clone()))
}

/// Get one certificate of the inventory, by the PKI's id or by serial number.
#[utoipa::path(get, path = "/v1/applications/{id}/certificates/{certificate}",
    params(("id" = String, Path), ("certificate" = String, Path, description = "the PKI's id or the serial number")),
    security(("bearer" = [])), responses((status = 200, body = InventoryCertificate), (status = 404, body = ErrorBody)))]
pub(super) async fn get_certificate(
    State(s): State<ApiState>,
    Path((id, certificate)): Path<(String, String)>,
) -> Result<Json<InventoryCertificate>, ApiError> {
    Ok(Json(s.store.get_certificate(parse_uuid("id", &id)?, &certificate).await?))
}
