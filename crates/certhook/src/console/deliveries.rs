//! Deliveries, filtered by state, channel, type and time, a page at a time; and one
//! delivery with every attempt (status, latency, error, the start of the response).

use axum::Extension;
use axum::extract::{Path, Query, State};
use certhook_core::event::DeliveryState;
use certhook_store::{Delivery, DeliveryFilter};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, badge, maybe_when, when};
use super::session::Ctx;
use super::{Failure, id};
use crate::api::ApiState;

/// Rows a page shows.
pub const PAGE: u32 = 50;

/// The delivery types a filter offers: each alert type, then what is not an alert.
fn delivery_types() -> impl Iterator<Item = &'static str> {
    use certhook_core::event::{AlertType, DeliveryType};
    AlertType::ALL
        .iter()
        .map(|t| t.as_str())
        .chain([DeliveryType::Resolve.as_str(), DeliveryType::Verification.as_str()])
}

/// The filters, as the form sends them (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    channel: String,
    #[serde(default, rename = "type")]
    delivery_type: String,
    /// Created (deliveries) or dead-lettered (dead letters) at or after.
    #[serde(default)]
    since: String,
    #[serde(default)]
    after: String,
}

impl Filters {
    /// The store filter; a value that does not parse is refused naming the field.
    pub fn filter(&self, dead: bool) -> Result<DeliveryFilter, Failure> {
        let given = |v: &str| Some(v.trim()).filter(|v| !v.is_empty()).map(str::to_string);
        let since = given(&self.since)
            .map(|t| crate::input::time(&t).map_err(|m| Failure::bad(format!("Since: {m}"))))
            .transpose()?;
        Ok(DeliveryFilter {
            state: if dead {
                Some(DeliveryState::Dead)
            } else {
                given(&self.status)
                    .map(|s| s.parse::<DeliveryState>().map_err(|e| Failure::bad(format!("State: {e}"))))
                    .transpose()?
            },
            channel_id: given(&self.channel).map(|c| id("channel", &c)).transpose()?,
            delivery_type: given(&self.delivery_type)
                .map(|t| crate::input::delivery_type(&t).map_err(|m| Failure::bad(format!("Type: {m}"))))
                .transpose()?,
            dead_since: if dead { since } else { None },
            created_since: if dead { None } else { since },
            limit: Some(PAGE),
            after: given(&self.after).map(|a| id("delivery", &a)).transpose()?,
            ..Default::default()
        })
    }

    /// The filters as query pairs, for the next page's link and the replay form.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("status", self.status.clone()),
            ("channel", self.channel.clone()),
            ("type", self.delivery_type.clone()),
            ("since", self.since.clone()),
        ]
    }

    /// The filter form, keeping what was asked.
    pub fn form(&self, action: &str, with_status: bool) -> Markup {
        html! {
            form.filters method="get" action=(action) role="search" {
                @if with_status {
                    label { "State"
                        select name="status" {
                            option value="" selected[self.status.is_empty()] { "any" }
                            @for s in DeliveryState::ALL {
                                option value=(s.as_str()) selected[self.status == s.as_str()] { (s.as_str()) }
                            }
                        }
                    }
                }
                label { "Channel id" input name="channel" value=(self.channel) size="36" placeholder="any"; }
                label { "Type"
                    select name="type" {
                        option value="" selected[self.delivery_type.is_empty()] { "any" }
                        @for t in delivery_types() {
                            option value=(t) selected[self.delivery_type == t] { (t) }
                        }
                    }
                }
                label { (if with_status { "Created since (UTC)" } else { "Dead since (UTC)" })
                    input name="since" value=(self.since) placeholder="2026-11-30T00:00:00Z" size="22";
                }
                button type="submit" { "Filter" }
                a href=(action) { "Clear" }
            }
        }
    }
}

/// The table of a page of deliveries.
pub fn table(list: &[Delivery], now: chrono::DateTime<Utc>) -> Markup {
    html! {
        @if list.is_empty() { p { "Nothing matches." } }
        @else { div.scroll { table {
            thead { tr {
                th { "Delivery" } th { "Type" } th { "State" } th { "Attempts" } th { "Last status" }
                th { "Created" } th { "Next attempt / delivered" } th { "Channel" }
            } }
            tbody { @for d in list { tr {
                td.mono { a href={ "/deliveries/" (d.id) } { (d.id) } }
                td { (d.delivery_type) }
                td { (badge(d.state.as_str())) @if let Some(r) = &d.reason { br; span.muted { (r) } } }
                td.num { (d.attempt_count) }
                td { @if let Some(c) = d.last_status_code { (c) } @else if d.last_error.is_some() { span.muted { "error" } } @else { "—" } }
                td { (when(d.created_at, now)) }
                td { (maybe_when(d.delivered_at.or(d.next_attempt_at), now)) }
                td.mono { a href={ "/deliveries?channel=" (d.channel_id) } { (d.channel_id) } }
            } } }
        } } }
    }
}

/// `GET /deliveries`
pub async fn list(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(f): Query<Filters>,
) -> Result<Markup, Failure> {
    let filter = f.filter(false)?;
    let list = s.store.list_deliveries(&filter).await?;
    let now = Utc::now();
    let full = list.len() as u32 >= PAGE;
    let body = html! {
        (f.form("/deliveries", true))
        (table(&list, now))
        (layout::pager("/deliveries", &f.pairs(), full, list.last().map(|d| d.id.to_string())))
    };
    Ok(layout::page(&ctx, "/deliveries", "Deliveries", body))
}

/// `GET /deliveries/{id}`
pub async fn detail(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(delivery): Path<String>,
) -> Result<Markup, Failure> {
    let detail = s.store.get_delivery(id("delivery", &delivery)?).await?;
    let d = &detail.delivery;
    let now = Utc::now();
    let body = html! {
        dl {
            dt { "State" } dd { (badge(d.state.as_str())) @if let Some(r) = &d.reason { " " span.muted { (r) } } }
            dt { "Type" } dd { (d.delivery_type) }
            dt { "CloudEvent id" } dd.mono { (d.cloud_event_id) }
            dt { "Channel" } dd.mono { a href={ "/deliveries?channel=" (d.channel_id) } { (d.channel_id) } }
            @if let Some(e) = d.event_id { dt { "Event" } dd.mono { (e) } }
            dt { "Created" } dd { (when(d.created_at, now)) }
            @if let Some(t) = d.next_attempt_at { dt { "Next attempt" } dd { (when(t, now)) } }
            @if let Some(t) = d.delivered_at { dt { "Delivered" } dd { (when(t, now)) } }
            @if let Some(e) = &d.last_error { dt { "Last error" } dd { (e) } }
        }
        h2 { "Attempts" }
        @if detail.attempts.is_empty() { p { "None yet." } }
        @else { div.scroll { table {
            thead { tr { th { "#" } th { "Started" } th { "Latency" } th { "Status" } th { "Error" } th { "Response (start)" } } }
            tbody { @for a in &detail.attempts { tr {
                td.num { (a.number) }
                td { (when(a.started_at, now)) }
                td.num { (a.duration_ms) " ms" }
                td { @match a.status_code {
                    Some(c @ 200..=299) => span.badge.ok { (c) },
                    Some(c) => span.badge.bad { (c) },
                    None => span.muted { "—" },
                } }
                td { (a.error.as_deref().unwrap_or("")) }
                td.mono { (a.response_snippet.as_deref().unwrap_or("")) }
            } } }
        } } }
    };
    Ok(layout::page(&ctx, "/deliveries", &format!("Delivery {}", d.id), body))
}
