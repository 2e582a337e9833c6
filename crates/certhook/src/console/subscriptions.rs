//! Applications → alerts → channels, and what an operator may do to a channel: send a
//! test, pause, resume, verify again, enable. Each action asks for confirmation first, then
//! shows what happened.

use axum::Extension;
use axum::extract::{Form, Path, State};
use certhook_core::event::{ChannelKind, ChannelState};
use certhook_core::lifecycle::ChannelAction;
use certhook_store::{Alert, Channel};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, badge, csrf_field, maybe_when, when};
use super::session::{Ctx, csrf_ok};
use super::{Failure, id};
use crate::api::ApiState;
use crate::channel_ops;

/// What an operator may do to a channel from the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Test,
    Pause,
    Resume,
    Reverify,
    Enable,
}

impl Action {
    const ALL: [Action; 5] = [Action::Test, Action::Pause, Action::Resume, Action::Reverify, Action::Enable];

    fn parse(word: &str) -> Result<Action, Failure> {
        Action::ALL.into_iter().find(|a| a.word() == word).ok_or_else(|| Failure {
            status: axum::http::StatusCode::NOT_FOUND,
            message: format!("no action '{word}'"),
        })
    }

    fn word(self) -> &'static str {
        match self {
            Action::Test => "test",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Reverify => "reverify",
            Action::Enable => "enable",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Action::Test => "Send a test",
            Action::Pause => "Pause",
            Action::Resume => "Resume",
            Action::Reverify => "Verify again",
            Action::Enable => "Enable",
        }
    }

    /// What confirming will do, in plain words.
    fn explains(self) -> &'static str {
        match self {
            Action::Test => "sends a test event to the channel now and shows the answer; nothing is queued",
            Action::Pause => "holds the channel's deliveries until it is resumed",
            Action::Resume => "sends the held deliveries, and new ones again",
            Action::Reverify => {
                "sends a new verification token; the channel's deliveries are held until it is activated with it"
            }
            Action::Enable => "makes a disabled channel active again; its earlier failures stop counting",
        }
    }

    /// The actions that make sense for a channel as it is.
    fn offered(c: &Channel) -> Vec<Action> {
        match c.state {
            ChannelState::Active if c.kind == ChannelKind::Webhook => {
                vec![Action::Test, Action::Pause, Action::Reverify]
            }
            ChannelState::Active => vec![Action::Test, Action::Pause],
            ChannelState::Paused => vec![Action::Test, Action::Resume],
            ChannelState::Disabled => vec![Action::Enable],
            ChannelState::PendingVerification => vec![Action::Reverify],
        }
    }
}

/// `GET /applications`
pub async fn applications(State(s): State<ApiState>, Extension(ctx): Extension<Ctx>) -> Result<Markup, Failure> {
    let apps = s.store.list_applications().await?;
    let now = Utc::now();
    let body = html! {
        @if apps.is_empty() {
            p { "No applications yet. Create one with " code { "certhook app create --name NAME" } "." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Name" } th { "Id" } th { "Created" } th { "Inventory" } } }
                tbody { @for a in &apps { tr {
                    td { a href={ "/applications/" (a.id) } { (a.name) } }
                    td.mono { (a.id) }
                    td { (when(a.created_at, now)) }
                    td { a href={ "/applications/" (a.id) "/certificates" } { "Certificates" } }
                } } }
            } }
        }
    };
    Ok(layout::page(&ctx, "/applications", "Applications", body))
}

/// `GET /applications/{id}`: its alerts, each with its channels and their actions.
pub async fn application(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(app): Path<String>,
) -> Result<Markup, Failure> {
    let app = s.store.get_application(id("application", &app)?).await?;
    let alerts = s.store.list_alerts(Some(app.id)).await?;
    let mut sections = Vec::with_capacity(alerts.len());
    for alert in &alerts {
        sections.push((alert, s.store.list_channels(Some(alert.id)).await?));
    }
    let now = Utc::now();
    let body = html! {
        p {
            span.mono { (app.id) } " · "
            a href={ "/applications/" (app.id) "/certificates" } { "Certificate inventory" } " · "
            a href={ "/deliveries" } { "Deliveries" }
        }
        @if alerts.is_empty() {
            p { "No alerts yet. Create one with " code { "certhook alert create --app " (app.id) " --type issuance --name NAME" } "." }
        }
        @for (alert, channels) in &sections {
            (alert_section(alert, channels, now))
        }
    };
    Ok(layout::page(&ctx, "/applications", &format!("Application {}", app.name), body))
}

fn alert_section(alert: &Alert, channels: &[Channel], now: chrono::DateTime<Utc>) -> Markup {
    let types: Vec<&str> = alert.types.iter().map(|t| t.as_str()).collect();
    html! {
        section aria-labelledby={ "alert-" (alert.id) } {
            h2 id={ "alert-" (alert.id) } { "Alert " (alert.name) }
            p.muted {
                "Types: " (types.join(", "))
                @if let Some(b) = alert.alert_before { " · warns " (b) " ahead" }
                @if !alert.filter.profiles.is_empty() { " · profiles: " (alert.filter.profiles.join(", ")) }
                @if !alert.filter.name_patterns.is_empty() {
                    " · names: "
                    (alert.filter.name_patterns.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "))
                }
                @if let Some(d) = &alert.description { " · " (d) }
            }
            @if channels.is_empty() {
                p { "No channels." }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th { "Channel" } th { "Kind" } th { "Destination" } th { "State" }
                        th { "Last success" } th { "Last failure" } th { "Failing since" } th { "Actions" }
                    } }
                    tbody { @for c in channels { tr id={ "channel-" (c.id) } {
                        td.mono { a href={ "/deliveries?channel=" (c.id) } { (c.id) } }
                        td { (c.kind) @if let Some(r) = c.rate_limit { br; span.muted { "≤ " (r) } } }
                        td.mono { (c.url.as_deref().unwrap_or("(PagerDuty events API)")) }
                        td { (badge(c.state.as_str())) }
                        td { (maybe_when(c.last_success_at, now)) }
                        td { (maybe_when(c.last_failure_at, now)) }
                        td { (maybe_when(c.failing_since, now)) }
                        td { div.actions { @for a in Action::offered(c) {
                            a href={ "/channels/" (c.id) "/" (a.word()) } { (a.label()) }
                        } } }
                    } } }
                } }
            }
        }
    }
}

/// `GET /channels/{id}/{action}`: what the action will do, and a button to do it.
pub async fn confirm_action(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path((channel, action)): Path<(String, String)>,
) -> Result<Markup, Failure> {
    let action = Action::parse(&action)?;
    let channel = s.store.get_channel(id("channel", &channel)?).await?;
    let back = back_to(&s, &channel).await?;
    let body = html! {
        p { "Channel " span.mono { (channel.id) } " (" (channel.kind) ", " (badge(channel.state.as_str())) ")" }
        p { strong { (action.label()) } " " (action.explains()) "." }
        form method="post" action={ "/channels/" (channel.id) "/" (action.word()) } {
            (csrf_field(&ctx))
            div.actions {
                button.primary type="submit" { (action.label()) }
                a href=(back) { "Cancel" }
            }
        }
    };
    Ok(layout::page(&ctx, "/applications", &format!("{}?", action.label()), body))
}

/// Where a channel's page is: its application's page, at the channel.
async fn back_to(s: &ApiState, channel: &Channel) -> Result<String, Failure> {
    let alert = s.store.get_alert(channel.alert_id).await?;
    Ok(format!("/applications/{}#channel-{}", alert.application_id, channel.id))
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /channels/{id}/{action}`: does it, and says what happened.
pub async fn act(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path((channel, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Markup, Failure> {
    if !csrf_ok(&ctx, &form.csrf) {
        return Err(Failure::forged());
    }
    let action = Action::parse(&action)?;
    let channel_id = id("channel", &channel)?;
    let (tone, message) = match action {
        Action::Test => {
            let report = channel_ops::test(&s.store, &s.config, channel_id).await?;
            let status = report.status_code.map_or("no response".to_string(), |c| format!("HTTP {c}"));
            let error = report.error.map(|e| format!(" ({e})")).unwrap_or_default();
            let tone = if report.ok { "ok" } else { "bad" };
            (tone, format!("Test sent: {status} in {} ms{error}.", report.latency_ms))
        }
        Action::Reverify => {
            channel_ops::reverify(&s.store, &s.config, channel_id).await?;
            ("ok", "A new verification token is on its way; activate the channel with it.".to_string())
        }
        Action::Pause | Action::Resume | Action::Enable => {
            let lifecycle = match action {
                Action::Pause => ChannelAction::Pause,
                Action::Resume => ChannelAction::Resume,
                _ => ChannelAction::Enable,
            };
            let after = s.store.apply_channel_action(channel_id, lifecycle).await?;
            ("ok", format!("Done: the channel is now {}.", after.state.as_str().replace('_', " ")))
        }
    };
    let channel = s.store.get_channel(channel_id).await?;
    let back = back_to(&s, &channel).await?;
    let body = html! {
        (layout::notice(tone, &message))
        p { "Channel " span.mono { (channel.id) } " is " (badge(channel.state.as_str())) "." }
        p { a href=(back) { "Back to the channel" } }
    };
    Ok(layout::page(&ctx, "/applications", action.label(), body))
}
