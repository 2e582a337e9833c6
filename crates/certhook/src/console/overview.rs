//! The overview: the queue by state, the oldest waiting delivery, the last hour's
//! attempts as a chart, channels by state and open circuits.

use axum::Extension;
use axum::extract::State;
use certhook_core::event::{ChannelState, DeliveryState};
use chrono::Utc;
use maud::{Markup, html};

use super::Failure;
use super::layout::{self, badge};
use super::session::Ctx;
use crate::api::ApiState;

/// `GET /`
pub async fn page(State(s): State<ApiState>, Extension(ctx): Extension<Ctx>) -> Result<Markup, Failure> {
    let status = s.store.status().await?;
    let now = Utc::now();
    let queue = DeliveryState::ALL.iter().map(|s| (s.as_str(), status.deliveries.of(*s)));
    let channels = ChannelState::ALL.iter().map(|s| (s.as_str(), status.channels.of(*s)));
    let oldest = status.oldest_pending_age_seconds;
    let open_circuits = s.metrics.circuit_open.get();
    let body = html! {
        section aria-labelledby="queue" {
            h2 id="queue" { "Queue" }
            div.cards {
                @for (state, n) in queue {
                    @let href = format!("/deliveries?status={state}");
                    a.card href=(href) { span.n { (n) } (badge(state)) }
                }
            }
            p {
                "Oldest waiting delivery: "
                @if oldest > 0.0 { strong { (layout::age(now - chrono::Duration::milliseconds((oldest * 1000.0) as i64), now)) } }
                @else { strong { "none waiting" } }
                ". Events accepted: " strong { (status.events.total) } "."
            }
        }
        section aria-labelledby="hour" {
            h2 id="hour" { "The last hour" }
            (layout::chart(&s.metrics.recent.last_hour(now)))
        }
        section aria-labelledby="channels" {
            h2 id="channels" { "Channels" }
            div.cards {
                @for (state, n) in channels {
                    div.card { span.n { (n) } (badge(state)) }
                }
                div.card {
                    span.n { (open_circuits) }
                    span class={ "badge " (if open_circuits > 0 { "bad" } else { "" }) } { "open circuits" }
                }
            }
            p { a href="/applications" { "Applications, alerts and channels →" } }
        }
    };
    Ok(layout::page(&ctx, "/", "Overview", body))
}
