//! Lists that can grow come a page at a time: `limit` rows (default 100, at most 1000)
//! after the row named by `after` (the id of the last row of the previous page). The body
//! stays a bare JSON array, as the CLI prints it; a full page carries the next page's
//! address in a `Link: <…>; rel="next"` header.

use axum::Json;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ApiError;

/// Rows a page holds when `limit` is not given.
pub(super) const DEFAULT_PAGE: u32 = 100;

/// The checked `limit` parameter.
pub(super) fn limit(given: Option<u32>) -> Result<u32, ApiError> {
    crate::input::page_limit(given.unwrap_or(DEFAULT_PAGE))
        .map_err(|m| ApiError { field: Some("limit".into()), ..ApiError::bad_request(format!("limit: {m}")) })
}

/// The page as a JSON array, with a `Link` to the next one when it is full.
pub(super) fn respond<T: Serialize>(items: Vec<T>, limit: u32, uri: &Uri, id: impl Fn(&T) -> String) -> Response {
    let next = (items.len() as u64 >= u64::from(limit)).then(|| items.last().map(&id)).flatten();
    let mut response = Json(items).into_response();
    if let Some(last) = next
        && let Ok(link) = HeaderValue::from_str(&format!("<{}>; rel=\"next\"", next_page(uri, &last)))
    {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// `uri` with `after` set to `last`, every other parameter kept.
fn next_page(uri: &Uri, last: &str) -> String {
    let kept = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).filter(|(k, _)| k != "after");
    let query =
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).append_pair("after", last).finish();
    format!("{}?{query}", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_keeps_the_filters_and_moves_after() {
        let uri: Uri = "/v1/deliveries?status=dead&after=old&limit=2".parse().unwrap();
        assert_eq!(next_page(&uri, "a b"), "/v1/deliveries?status=dead&limit=2&after=a+b");
        let response = respond(vec!["x", "y"], 2, &uri, |s| s.to_string());
        let link = response.headers()[header::LINK].to_str().unwrap();
        assert_eq!(link, "</v1/deliveries?status=dead&limit=2&after=y>; rel=\"next\"");
        assert!(respond(vec!["x"], 2, &uri, |s| s.to_string()).headers().get(header::LINK).is_none(), "last page");
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(limit(Some(0)).unwrap_err().code(), "bad_request");
        assert!(limit(Some(1001)).is_err());
    }
}
