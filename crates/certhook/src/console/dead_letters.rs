//! Dead letters, filtered by channel, type and time, and their replay: the console counts
//! what a replay would take first (a dry run), and replays only once that is confirmed.

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use certhook_store::DeadLetterSelector;
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::deliveries::{Filters, PAGE, table};
use super::layout::{self, csrf_field};
use super::session::{Ctx, csrf_ok};
use super::{Failure, id};
use crate::api::ApiState;

/// What the page says after a replay (the replay redirects here, so a reload replays nothing).
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    replayed: Option<u64>,
}

/// `GET /dead-letters`
pub async fn list(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(f): Query<Filters>,
    Query(done): Query<Done>,
) -> Result<Markup, Failure> {
    let filter = f.filter(true)?;
    let list = s.store.list_deliveries(&filter).await?;
    let now = Utc::now();
    let full = list.len() as u32 >= PAGE;
    let body = html! {
        @if let Some(n) = done.replayed {
            (layout::notice("ok", &format!(
                "Replayed {n} dead letter{}: back in the queue with fresh attempts and the same CloudEvent ids.",
                if n == 1 { "" } else { "s" }
            )))
            p { a href="/deliveries" { "See the deliveries" } }
        }
        (f.form("/dead-letters", false))
        @if !list.is_empty() {
            form method="post" action="/dead-letters/replay" {
                (csrf_field(&ctx))
                @for (k, v) in f.pairs() { @if !v.is_empty() { input type="hidden" name=(k) value=(v); } }
                button type="submit" { "Replay every dead letter that matches…" }
                span.muted { " (a count first; nothing is replayed until you confirm)" }
            }
        }
        (table(&list, now))
        (layout::pager("/dead-letters", &f.pairs(), full, list.last().map(|d| d.id.to_string())))
    };
    Ok(layout::page(&ctx, "/dead-letters", "Dead letters", body))
}

/// What a replay form sends: one dead letter (`id`) or the filters; `confirm` after the count.
#[derive(Debug, Default, Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    confirm: String,
    /// When the count was made: the confirmed replay takes only what was dead by then.
    #[serde(default)]
    until: String,
    #[serde(flatten)]
    filters: Filters,
}

/// `POST /dead-letters/replay`: without `confirm`, how many would be replayed and a button
/// to do it; with it, the replay of what was counted (nothing that died since), then back
/// to the list, which says how many went back in the queue.
pub async fn replay(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<ReplayForm>,
) -> Result<Response, Failure> {
    if !csrf_ok(&ctx, &form.csrf) {
        return Err(Failure::forged());
    }
    let selector = if form.id.trim().is_empty() {
        let mut filter = form.filters.filter(true)?;
        filter.limit = None;
        filter.after = None;
        if let Some(until) = Some(form.until.trim()).filter(|u| !u.is_empty()) {
            filter.dead_before = Some(crate::input::time(until).map_err(|m| Failure::bad(format!("until: {m}")))?);
        }
        DeadLetterSelector::Matching(filter)
    } else {
        DeadLetterSelector::Id(id("dead letter", &form.id)?)
    };
    let confirmed = form.confirm == "yes";
    // Taken before the count: a dead letter that dies after it is not in the confirmed replay.
    let counted_at = chrono::Utc::now();
    let replayed = s.replay_dead_letters(&selector, !confirmed).await?;
    let n = replayed.ids.len();
    if confirmed {
        return Ok(Redirect::to(&format!("/dead-letters?replayed={n}")).into_response());
    }
    let skipped: Vec<String> = crate::shapes::Counted::from(replayed).skipped.iter().map(|k| k.explain()).collect();
    let body = if n == 0 {
        html! {
            @if skipped.is_empty() {
                (layout::notice("bad", "Nothing to replay: no dead letter matches."))
            } @else {
                (layout::notice("bad", "Nothing to replay: the dead letters that match belong to a disabled or deleted channel."))
                ul { @for line in &skipped { li { (line) } } }
            }
            p { a href="/dead-letters" { "Back to dead letters" } }
        }
    } else {
        html! {
            p { strong { (n) } " dead letter" (if n == 1 { "" } else { "s" }) " would go back in the queue with fresh attempts." }
            @if !skipped.is_empty() {
                p { "Others that match stay dead:" }
                ul { @for line in &skipped { li { (line) } } }
            }
            form method="post" action="/dead-letters/replay" {
                (csrf_field(&ctx))
                input type="hidden" name="confirm" value="yes";
                input type="hidden" name="until" value=(certhook_core::time::format_millis(counted_at + chrono::Duration::milliseconds(1)));
                @if !form.id.trim().is_empty() { input type="hidden" name="id" value=(form.id.trim()); }
                @for (k, v) in form.filters.pairs() { @if !v.is_empty() { input type="hidden" name=(k) value=(v); } }
                div.actions {
                    button.primary type="submit" { "Replay " (n) }
                    a href="/dead-letters" { "Cancel" }
                }
            }
        }
    };
    Ok(layout::page(&ctx, "/dead-letters", "Replay dead letters", body).into_response())
}
