//! The OpenAPI document at `/openapi.json`, generated from the handlers and their types.

use axum::Json;
use utoipa::OpenApi;

use super::certificates::{__path_get_certificate, __path_list_certificates};
use super::dead_letters::{__path_list_dead_letters, __path_purge, __path_replay};
use super::deliveries::{__path_get_delivery, __path_list_deliveries};
use super::event_log::{__path_get_event, __path_list_events};
use super::events::{__path_enqueue_batch, __path_enqueue_one};
use super::health::{__path_metrics, __path_readyz, __path_status};

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
    paths(enqueue_one, enqueue_batch, list_events, get_event, list_certificates, get_certificate, list_deliveries,
        get_delivery, list_dead_letters, replay, purge, status, readyz, metrics),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub(super) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::admin::AdminDoc::openapi());
    Json(doc)
}
