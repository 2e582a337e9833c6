//! What every API request must pass before a handler sees it (SPEC §6): a `Host` this
//! server answers to, no `Origin` from another site, and a JSON body where there is one.
//!
//! Together they keep a web page from driving the API through the visitor's browser,
//! token or not: a cross-site form or `fetch` either carries the page's `Origin`, or a
//! `Content-Type` other than JSON (JSON would need a CORS preflight, which is never
//! answered), and a page that rebinds its own name to this address sends that name in `Host`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::hosts::AllowedHosts;

/// Paths a probe or a scraper reaches by the pod's address: answered whatever the `Host`.
/// They change nothing and reveal nothing secret.
const PROBES: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Checks `Host`, `Origin` and `Content-Type`, then runs the request.
pub async fn guard(State(hosts): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    if let Err(e) = check(&hosts, request.method(), request.uri().path(), request.headers()) {
        return e.into_response();
    }
    next.run(request).await
}

fn check(hosts: &AllowedHosts, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    if PROBES.contains(&path) {
        return Ok(());
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !hosts.allows(host) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            format!(
                "Host {host:?} is not one this server answers to: the listen address, localhost, \
                 public_url's host, or an entry of allowed_hosts"
            ),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| hosts.origin_allowed(o, host))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!("requests from the web page at {origin:?} are refused (cross-site)"),
        ));
    }
    if has_body(method, headers) {
        let ndjson_allowed = path == "/v1/events";
        // The console's forms are posted as forms; they carry a CSRF token, and a
        // cross-site form was refused above by its `Origin`.
        let form_allowed = !path.starts_with("/v1/");
        let given = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = given.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let ok = essence == "application/json"
            || ndjson_allowed && essence == "application/x-ndjson"
            || form_allowed && essence == "application/x-www-form-urlencoded";
        if !ok {
            let wanted = if ndjson_allowed {
                "application/json or application/x-ndjson"
            } else if form_allowed {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {given:?}: the body must be sent as {wanted}"),
            ));
        }
    }
    Ok(())
}

/// Whether the request carries a body (a `POST` with no body, such as `/pause`, needs no
/// media type).
fn has_body(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn hosts() -> AllowedHosts {
        AllowedHosts::new("127.0.0.1:8080".parse().unwrap(), None, &[])
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn code(method: Method, path: &str, pairs: &[(&'static str, &'static str)]) -> Option<&'static str> {
        check(&hosts(), &method, path, &headers(pairs)).err().map(|e| e.code())
    }

    #[test]
    fn json_bodies_pass_and_others_get_415() {
        let json =
            [("host", "127.0.0.1:8080"), ("content-type", "application/json; charset=utf-8"), ("content-length", "2")];
        assert_eq!(code(Method::POST, "/v1/applications", &json), None);
        let text = [("host", "127.0.0.1:8080"), ("content-type", "text/plain"), ("content-length", "2")];
        assert_eq!(code(Method::POST, "/v1/applications", &text), Some("unsupported_media_type"));
        let none = [("host", "127.0.0.1:8080"), ("content-length", "2")];
        assert_eq!(code(Method::PATCH, "/v1/channels/x", &none), Some("unsupported_media_type"));
        let ndjson =
            [("host", "localhost"), ("content-type", "application/x-ndjson"), ("transfer-encoding", "chunked")];
        assert_eq!(code(Method::POST, "/v1/events", &ndjson), None);
        assert_eq!(code(Method::POST, "/v1/events/batch", &ndjson), Some("unsupported_media_type"));
        // No body, no media type needed.
        assert_eq!(code(Method::POST, "/v1/channels/x/pause", &[("host", "localhost")]), None);
        assert_eq!(code(Method::POST, "/v1/channels/x/pause", &[("host", "localhost"), ("content-length", "0")]), None);
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused_but_probes_answer() {
        let evil = [("host", "evil.example"), ("content-type", "application/json"), ("content-length", "2")];
        assert_eq!(code(Method::POST, "/v1/applications", &evil), Some("host_not_allowed"));
        assert_eq!(code(Method::GET, "/v1/channels", &[]), Some("host_not_allowed"));
        for probe in PROBES {
            assert_eq!(code(Method::GET, probe, &[("host", "10.1.2.3:8080")]), None, "{probe}");
        }
        let cross = [("host", "127.0.0.1:8080"), ("origin", "https://evil.example")];
        assert_eq!(code(Method::POST, "/v1/channels/x/pause", &cross), Some("origin_not_allowed"));
        let null = [("host", "127.0.0.1:8080"), ("origin", "null")];
        assert_eq!(code(Method::POST, "/v1/channels/x/pause", &null), Some("origin_not_allowed"));
        let same = [("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")];
        assert_eq!(code(Method::POST, "/v1/channels/x/pause", &same), None);
    }
}
