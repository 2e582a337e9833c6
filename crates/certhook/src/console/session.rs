//! Who may use the console, and proof that a form came from it.
//!
//! With an `admin_token`, the console asks for the token once and keeps a session: a
//! random id in a cookie (HttpOnly, SameSite=Strict, Secure behind an https `public_url`),
//! expiring on the server after [`SESSION_TTL`]. Without a token, `serve` listens on
//! loopback only and a session is opened on the first visit. Either way every form that
//! changes something carries the session's CSRF token, checked in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use crate::api::ApiState;

/// How long a session lasts after it is opened.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The session cookie's name.
pub const COOKIE: &str = "certhook_console";

/// Sessions open at most at once; the oldest go first beyond it.
const MAX_SESSIONS: usize = 1024;

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// The open sessions, in memory: a restart signs everyone out.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// What a page knows of its visitor.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session's CSRF token, for the forms on the page.
    pub csrf: String,
    /// Signed in with the admin token (so there is a "sign out").
    pub signed_in: bool,
}

impl Sessions {
    /// Opens a session; its id (for the cookie) and CSRF token.
    pub fn open(&self) -> (String, String) {
        let id = certhook_core::lifecycle::new_token();
        let csrf = certhook_core::lifecycle::new_token();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), Session { csrf: csrf.clone(), expires: now + SESSION_TTL });
        (id, csrf)
    }

    /// The CSRF token of a live session.
    fn csrf(&self, id: &str) -> Option<String> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(id).filter(|s| s.expires > Instant::now()).map(|s| s.csrf.clone())
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// The session id a request's cookie names.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value for a session (`None`: one that removes it).
pub fn cookie(state: &ApiState, id: Option<&str>) -> HeaderValue {
    let secure = state.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    let (value, age) = match id {
        Some(id) => (id, SESSION_TTL.as_secs()),
        None => ("", 0),
    };
    let text = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).expect("ids are hex")
}

/// Whether `given` is the CSRF token of the page's session.
pub fn csrf_ok(ctx: &Ctx, given: &str) -> bool {
    !ctx.csrf.is_empty() && bool::from(ctx.csrf.as_bytes().ct_eq(given.as_bytes()))
}

/// In front of every console page: a session, or the way to one. With a token, a visitor
/// without a session is sent to sign in (a form post is refused); without one, a session
/// is opened on the spot.
pub async fn require(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if path == "/login" || path == super::layout::CSS_PATH {
        return next.run(request).await;
    }
    let signed_in = state.admin_token.is_some();
    if !signed_in && !loopback_host(request.headers()) {
        // Without a token the console is for this machine only: not through a proxy that
        // forwards public_url or an allowed_hosts name to a loopback listen.
        return (
            StatusCode::FORBIDDEN,
            "Without an admin_token the console answers on loopback only (127.0.0.1, [::1], localhost); \
             set admin_token to use it through another name.",
        )
            .into_response();
    }
    if let Some(csrf) = session_id(request.headers()).and_then(|id| state.console.csrf(&id)) {
        request.extensions_mut().insert(Ctx { csrf, signed_in });
        return next.run(request).await;
    }
    if signed_in {
        if request.method() != Method::GET {
            return (StatusCode::FORBIDDEN, "sign in first").into_response();
        }
        let back = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let target =
            format!("/login?next={}", url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>());
        return Redirect::to(&target).into_response();
    }
    let (id, csrf) = state.console.open();
    request.extensions_mut().insert(Ctx { csrf, signed_in: false });
    let mut response = next.run(request).await;
    response.headers_mut().append(header::SET_COOKIE, cookie(&state, Some(&id)));
    response
}

/// Whether the request's `Host` names this machine's loopback.
fn loopback_host(headers: &HeaderMap) -> bool {
    crate::api::hosts::is_loopback(headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or(""))
}

/// Where to go after signing in: a path of this site only, never another host.
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        // No control character or space either: browsers drop tabs and newlines from a
        // URL, which would turn `/\t/evil.test` into `//evil.test`.
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            p
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_close_and_keep_their_csrf_token() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.open();
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.csrf(&id).as_deref(), Some(csrf.as_str()));
        assert_eq!(sessions.csrf("not-a-session"), None);
        sessions.close(&id);
        assert_eq!(sessions.csrf(&id), None);
    }

    #[test]
    fn the_cookie_names_the_session_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; certhook_console=abc; b=2"));
        assert_eq!(session_id(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("certhook_consolex=abc"));
        assert_eq!(session_id(&headers), None);
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let ctx = Ctx { csrf: "abc".into(), signed_in: true };
        assert!(csrf_ok(&ctx, "abc"));
        assert!(!csrf_ok(&ctx, "abd") && !csrf_ok(&ctx, "") && !csrf_ok(&ctx, "abcd"));
        assert!(!csrf_ok(&Ctx { csrf: String::new(), signed_in: false }, ""));
    }

    #[test]
    fn loopback_hosts_are_told_apart() {
        let host = |h: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(h));
            loopback_host(&headers)
        };
        for ok in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "127.0.0.2"] {
            assert!(host(ok), "{ok}");
        }
        for not in ["certhook.example.com", "10.0.0.1:8080", "[fe80::1]:80", "localhost.evil.test"] {
            assert!(!host(not), "{not}");
        }
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/deliveries?status=dead")), "/deliveries?status=dead");
        for bad in
            ["//evil.test/", "https://evil.test/", "/\\evil.test", "evil", "/\t/evil.test", "/\n/evil.test", "/ /x"]
        {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }
}
