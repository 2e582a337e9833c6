//! The HTTP API (SPEC §6): ingest, deliveries, dead letters, status, health and metrics.
//!
//! Errors are JSON `{"error": {"code", "message", "field"}}`; database details never
//! reach a response (they are logged instead).

//!
//! One module per resource (`events`, `deliveries`, `dead_letters`, `admin`, `health`),
//! with `error` (the error body), `input` (shared parsers), `auth` (the bearer token),
//! `edge` and `hosts` (the checks every request passes first), `gauges` (the queue
//! gauges of `/metrics`) and `openapi` (the document).

mod admin;
pub mod auth;
mod certificates;
mod dead_letters;
mod deliveries;
mod edge;
mod error;
mod event_log;
mod events;
pub mod gauges;
mod health;
pub mod hosts;
mod input;
mod openapi;
mod page;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use certhook_core::Secret;
use certhook_producer::Producer;
use certhook_store::Store;
use certhook_worker::Metrics;

pub use error::{ApiError, ErrorBody};
pub use events::MAX_BATCH;
use hosts::AllowedHosts;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The outbox.
    pub store: Store,
    /// Validating enqueue.
    pub producer: Producer,
    /// Process metrics.
    pub metrics: Metrics,
    /// Bearer token for `/v1`; `None` leaves `/v1` open (allowed on loopback only).
    pub admin_token: Option<Arc<Secret>>,
    /// Per-event size limit.
    pub max_event_bytes: usize,
    /// The configuration (channel operations need it).
    pub config: Arc<certhook_core::config::Config>,
    /// When `/metrics` last read the queue gauges from the store.
    pub gauges: Arc<gauges::GaugeCache>,
    /// The console's signed-in sessions.
    pub console: Arc<crate::console::session::Sessions>,
}

/// Largest body of the event routes, whatever `max_event_bytes` allows per event: one
/// request is one group-commit transaction, and a smaller batch costs nothing.
pub const MAX_EVENTS_BODY: usize = 32 * 1024 * 1024;

/// Largest body of every other route (applications, alerts, channels, dead-letter actions).
pub const MAX_ADMIN_BODY: usize = 64 * 1024;

/// The router with every route, the auth layer on `/v1`, and the request checks of
/// [`edge`] in front of everything.
pub fn router(state: ApiState) -> Router {
    let event_limit = state.max_event_bytes.saturating_mul(MAX_BATCH).min(MAX_EVENTS_BODY).max(state.max_event_bytes);
    let events = Router::new()
        .route("/events", post(events::enqueue_one).get(event_log::list_events))
        .route("/events/batch", post(events::enqueue_batch))
        .route("/events/{id}", get(event_log::get_event))
        .layer(DefaultBodyLimit::max(event_limit));
    let v1 = Router::new()
        .route("/deliveries", get(deliveries::list_deliveries))
        .route("/deliveries/{id}", get(deliveries::get_delivery))
        .route("/dead-letters", get(dead_letters::list_dead_letters))
        .route("/dead-letters/replay", post(dead_letters::replay))
        .route("/dead-letters/purge", post(dead_letters::purge))
        .route("/status", get(health::status))
        .route("/applications/{id}/certificates", get(certificates::list_certificates))
        .route("/applications/{id}/certificates/{certificate}", get(certificates::get_certificate))
        .merge(admin::routes())
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .merge(events)
        .layer(from_fn_with_state(state.clone(), auth::require_token));
    let hosts = Arc::new(AllowedHosts::new(
        state.config.listen,
        state.config.public_url.as_deref(),
        &state.config.allowed_hosts,
    ));
    Router::new()
        .nest("/v1", v1)
        .merge(probes())
        .route("/openapi.json", get(openapi::openapi))
        .merge(crate::console::router(state.clone()))
        .layer(from_fn_with_state(hosts, edge::guard))
        .with_state(state)
}

/// The router of `metrics_listen`: `/metrics` and the probes, nothing else, so a sidecar
/// can keep its API on loopback and still be probed and scraped by the pod's address.
pub fn metrics_router(state: ApiState) -> Router {
    probes().with_state(state)
}

/// `/healthz`, `/readyz` and `/metrics`: what probes and scrapers reach, on either address.
fn probes() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}
