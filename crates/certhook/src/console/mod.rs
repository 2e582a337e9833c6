//! The operator console (SPEC §6): HTML pages for people, served by `serve` outside `/v1`
//! on its listen address, rendered here with every asset embedded (no CDN, no script
//! build, works offline).
//!
//! One module per page group: `overview`, `subscriptions` (applications → alerts →
//! channels and their actions), `deliveries`, `dead_letters`, `certificates`; `layout`
//! draws the page around them and `session` decides who may see them. Pages read the
//! store as the API does and change it only through the same operations (channel actions
//! through [`crate::channel_ops`] and the store), so the two cannot disagree.

mod certificates;
mod dead_letters;
mod deliveries;
pub mod layout;
mod overview;
pub mod session;
mod subscriptions;

use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use certhook_store::StoreError;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::api::ApiState;
use session::Ctx;

/// The console's routes, behind the session check.
pub fn router(state: ApiState) -> Router<ApiState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/applications", get(subscriptions::applications))
        .route("/applications/{id}", get(subscriptions::application))
        .route("/applications/{id}/certificates", get(certificates::page))
        .route("/channels/{id}/{action}", get(subscriptions::confirm_action).post(subscriptions::act))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::detail))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/replay", post(dead_letters::replay))
        .route(layout::CSS_PATH, get(css))
        .layer(from_fn_with_state(state, session::require))
        .layer(axum::middleware::map_response(guard_headers))
}

/// What every console response tells the browser: only this site's stylesheet and forms,
/// never inside another site's frame, nothing sniffed, nothing kept in caches.
async fn guard_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    }
    response
}

/// A page that could not be shown: a status and what to tell the operator.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    /// A refusal the operator can act on (400).
    pub fn bad(message: impl Into<String>) -> Self {
        Failure { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// A form that did not come from this console's page (403).
    pub fn forged() -> Self {
        Failure {
            status: StatusCode::FORBIDDEN,
            message: "This form is out of date or did not come from this console; reload the page and try again."
                .into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { .. } => Failure { status: StatusCode::NOT_FOUND, message: e.to_string() },
            _ if e.is_bad_input() => Failure { status: StatusCode::CONFLICT, message: e.to_string() },
            _ => {
                tracing::error!(error = %e, "console page failed");
                let message = e.unavailable().unwrap_or("internal error; see the server log").to_string();
                Failure { status: StatusCode::INTERNAL_SERVER_ERROR, message }
            }
        }
    }
}

impl From<crate::channel_ops::ChannelError> for Failure {
    fn from(e: crate::channel_ops::ChannelError) -> Self {
        match e {
            crate::channel_ops::ChannelError::Store(s) => s.into(),
            other if other.is_bad_input() => Failure::bad(other.to_string()),
            other => {
                tracing::error!(error = %other, "console action failed");
                Failure { status: StatusCode::INTERNAL_SERVER_ERROR, message: other.to_string() }
            }
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Error · certhook" }
                    link rel="stylesheet" href=(layout::CSS_PATH);
                }
                body { main {
                    h1 { "That did not work" }
                    (layout::notice("bad", &self.message))
                    p { a href="/" { "Back to the overview" } }
                } }
            }
        };
        (self.status, body).into_response()
    }
}

/// Parses an id from a path or form, naming what it should be.
pub fn id(kind: &str, text: &str) -> Result<uuid::Uuid, Failure> {
    crate::input::uuid(text).map_err(|m| Failure::bad(format!("{kind} id {m}")))
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], layout::CSS)
        .into_response()
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

async fn login_form(State(s): State<ApiState>, Query(q): Query<Next>) -> Response {
    if s.admin_token.is_none() {
        return Redirect::to("/").into_response();
    }
    login_page(q.next.as_deref(), None).into_response()
}

fn login_page(next: Option<&str>, error: Option<&str>) -> Markup {
    let ctx = Ctx { csrf: String::new(), signed_in: false };
    layout::page(
        &ctx,
        "/login",
        "Sign in",
        html! {
            @if let Some(e) = error { (layout::notice("bad", e)) }
            p { "The console needs the admin token this certhook was started with (" code { "admin_token" } ")." }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(session::local_path(next));
                p {
                    label for="token" { "Admin token" } br;
                    input id="token" type="password" name="token" autocomplete="current-password" required autofocus size="48";
                }
                button.primary type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login(State(s): State<ApiState>, Form(form): Form<LoginForm>) -> Response {
    let Some(expected) = &s.admin_token else { return Redirect::to("/").into_response() };
    let given = form.token.trim();
    if !crate::api::auth::token_matches(expected, given) {
        tracing::warn!("console sign-in with a wrong token");
        return (StatusCode::UNAUTHORIZED, login_page(form.next.as_deref(), Some("That is not the admin token.")))
            .into_response();
    }
    let (id, _) = s.console.open();
    let mut response = Redirect::to(session::local_path(form.next.as_deref())).into_response();
    response.headers_mut().append(header::SET_COOKIE, session::cookie(&s, Some(&id)));
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    headers: axum::http::HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Failure> {
    if !session::csrf_ok(&ctx, &form.csrf) {
        return Err(Failure::forged());
    }
    if let Some(id) = session::session_id(&headers) {
        s.console.close(&id);
    }
    let mut response = Redirect::to(if s.admin_token.is_some() { "/login" } else { "/" }).into_response();
    response.headers_mut().append(header::SET_COOKIE, session::cookie(&s, None));
    Ok(response)
}
