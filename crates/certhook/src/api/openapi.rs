//! The OpenAPI document at `/openapi.json`, generated from the handlers and their types.

use axum::Json;
use utoipa::OpenApi;

use super::certificates::{__path_get_certificate, __path_list_certificates};
use super::dead_letters::{__path_list_dead_letters, __path_purge, __path_replay};
use super::deliveries::{__path_get_delivery, __path_list_deliveries};
use super::event_log::{__path_get_event, __path_list_events};
use super::events::{__path_enqueue_batch, __path_enqueue_one};
use super::health::{__path_healthz, __path_metrics, __path_readyz, __path_status};

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
    info(title = "certhook", description = "Durable, signed delivery of certificate events. \
        Every `/v1` route takes `Authorization: Bearer <admin_token>` when a token is configured; `/healthz`, \
        `/readyz`, `/metrics` and `/openapi.json` need none. Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`. \
        Lists page with `limit` (at most 1000) and `after` (the last id of the previous page); a full page \
        carries `Link: <...>; rel=\"next\"`."),
    paths(enqueue_one, enqueue_batch, list_events, get_event, list_certificates, get_certificate, list_deliveries,
        get_delivery, list_dead_letters, replay, purge, status, healthz, readyz, metrics, openapi),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// This document: OpenAPI 3.1, generated from the handlers (no token needed).
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
pub(super) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// The whole document: these routes and the administration routes.
fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::admin::AdminDoc::openapi());
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_has_a_summary_and_the_probes_are_in() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(summary.len() > 10 && summary.ends_with('.'), "{method} {path}: summary {summary:?}");
                operations += 1;
            }
        }
        assert!(operations >= 37, "{operations}");
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            assert!(paths[path]["get"].is_object(), "{path}");
            assert!(paths[path]["get"].get("security").is_none(), "{path} needs no token");
        }
        // The description is the doc comment after its first line, where there is one.
        let replay = &paths["/v1/dead-letters/replay"]["post"];
        assert!(replay["description"].as_str().unwrap().contains("skipped"), "{replay}");
    }
}
