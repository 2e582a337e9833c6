//! One HTTP attempt: sign at send time, POST, read at most 64 KiB of the answer.
//!
//! One `reqwest::Client` is shared by every delivery of channels without TLS settings of
//! their own (keep-alive pools per host, HTTP/1.1 and HTTP/2, rustls, no redirects, no
//! environment proxies, a resolver that enforces the SSRF guard); a channel with its own
//! CA certificates or client certificate gets a client of its own (see [`crate::tls`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use certhook_core::sign::{SigningKey, sign};
use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::classify::AttemptResult;
use crate::guard::{Blocked, Guard};
use crate::tls::{ClientOptions, Clients, TlsError};

/// Response bodies are read up to this many bytes.
pub const MAX_RESPONSE_READ: usize = 64 * 1024;
/// And stored truncated to this many.
pub const MAX_SNIPPET: usize = 1024;

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// A configured header name is not valid.
    #[error("signature_header: '{0}' is not a valid header name")]
    HeaderName(String),
    /// The `ca_bundle` file, or reqwest, refused the configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How the sender is set up.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Name of the Infisical-style signature header.
    pub signature_header: String,
    /// The SSRF guard.
    pub guard: Arc<Guard>,
    /// `ca_bundle`: CA certificates trusted besides the system roots.
    pub ca_bundle: Option<std::path::PathBuf>,
}

impl SenderConfig {
    /// The sender a configuration asks for: its timeouts, signature header, private
    /// networks allowed and CA bundle.
    pub fn from_config(config: &certhook_core::config::Config) -> Self {
        SenderConfig {
            request_timeout: config.delivery.request_timeout,
            connect_timeout: config.delivery.connect_timeout,
            signature_header: config.signature_header.clone(),
            guard: Arc::new(Guard::new(config.allowed_networks.clone())),
            ca_bundle: config.ca_bundle.clone(),
        }
    }
}

/// One request to make.
#[derive(Debug)]
pub struct Request<'a> {
    /// Destination.
    pub url: &'a str,
    /// The exact bytes.
    pub body: bytes::Bytes,
    /// `Content-Type` header value.
    pub content_type: &'a str,
    /// `webhook-id`: the CloudEvent id.
    pub webhook_id: &'a str,
    /// Signing keys, newest first (empty: unsigned).
    pub keys: &'a [SigningKey],
}

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct Response {
    /// What happened on the wire.
    pub result: AttemptResult,
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// The error, when there was no 2xx (never contains a secret).
    pub error: Option<String>,
    /// The first KiB of the response body.
    pub snippet: Option<String>,
    /// `Retry-After`, parsed.
    pub retry_after: Option<Duration>,
}

/// Sends deliveries over the shared HTTP client, or a channel's own.
#[derive(Debug, Clone)]
pub struct Sender {
    clients: Arc<Clients>,
    signature_header: HeaderName,
    user_agent: HeaderValue,
    guard: Arc<Guard>,
}

impl Sender {
    /// Builds the shared client (reading `ca_bundle`, if set: an error names it).
    pub fn new(config: &SenderConfig) -> Result<Self, SenderError> {
        let options = ClientOptions {
            request_timeout: config.request_timeout,
            connect_timeout: config.connect_timeout,
            guard: config.guard.clone(),
        };
        let clients = Arc::new(Clients::new(options, config.ca_bundle.as_deref())?);
        let signature_header = HeaderName::from_bytes(config.signature_header.to_ascii_lowercase().as_bytes())
            .map_err(|_| SenderError::HeaderName(config.signature_header.clone()))?;
        let user_agent = HeaderValue::from_static(concat!("certhook/", env!("CARGO_PKG_VERSION")));
        Ok(Sender { clients, signature_header, user_agent, guard: config.guard.clone() })
    }

    /// The clients it sends with: the worker refreshes them as channels change.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Makes one attempt on `client`; never fails: every failure is a [`Response`] to classify.
    pub async fn send(&self, client: &reqwest::Client, req: Request<'_>) -> Response {
        let started_at = Utc::now();
        let clock = Instant::now();
        let blocked = |what: String| Response {
            result: AttemptResult::Blocked,
            started_at,
            duration: clock.elapsed(),
            error: Some(what),
            snippet: None,
            retry_after: None,
        };
        let url = match reqwest::Url::parse(req.url) {
            Ok(u) => u,
            Err(e) => {
                return Response {
                    result: AttemptResult::ConnectError,
                    started_at,
                    duration: clock.elapsed(),
                    error: Some(format!("invalid URL: {e}")),
                    snippet: None,
                    retry_after: None,
                };
            }
        };
        if let Err(b) = self.guard.check_url(&url) {
            return blocked(b.to_string());
        }
        let signed = sign(req.keys, req.webhook_id, started_at.timestamp_millis(), &req.body);
        let mut builder = client
            .post(url)
            .header(USER_AGENT, self.user_agent.clone())
            .header(CONTENT_TYPE, req.content_type)
            .header("webhook-id", signed.webhook_id)
            .header("webhook-timestamp", signed.webhook_timestamp);
        if let Some(sig) = signed.infisical {
            builder = builder.header(self.signature_header.clone(), sig);
        }
        if let Some(sig) = signed.standard {
            builder = builder.header("webhook-signature", sig);
        }
        let response = match builder.body(req.body).send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(b) = find_source::<Blocked>(&e) {
                    return blocked(b.to_string());
                }
                let result = if e.is_timeout() { AttemptResult::Timeout } else { AttemptResult::ConnectError };
                return Response {
                    result,
                    started_at,
                    duration: clock.elapsed(),
                    error: Some(describe(&e)),
                    snippet: None,
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| certhook_core::retry::parse_retry_after(v, Utc::now()));
        let (body, read_error) = read_capped(response).await;
        let snippet = (!body.is_empty()).then(|| snippet(&body));
        let (result, error) = match read_error {
            Some(e) if e.is_timeout() => (AttemptResult::Timeout, Some(describe(&e))),
            Some(e) if !(200..300).contains(&status) => (AttemptResult::Status(status), Some(describe(&e))),
            _ => (AttemptResult::Status(status), (!(200..300).contains(&status)).then(|| format!("HTTP {status}"))),
        };
        Response { result, started_at, duration: clock.elapsed(), error, snippet, retry_after }
    }
}

impl Sender {
    /// Sends `body` to `target` now, in the channel's format (a webhook's CloudEvent,
    /// Slack's message, PagerDuty's events), signed with its keys: what the worker does for
    /// each delivery and `channel test` does once. `Err` when the channel cannot be sent
    /// to as configured.
    pub async fn send_now(
        &self,
        target: &crate::targets::Target,
        body: &[u8],
        webhook_id: &str,
        delivery_type: certhook_core::event::DeliveryType,
        pagerduty_url: &str,
    ) -> Result<Response, String> {
        let channel = &target.channel;
        let destination = crate::channels::Destination {
            kind: channel.kind,
            url: channel.url.as_deref(),
            content_type: channel.content_type.as_deref(),
            routing_key: channel.routing_key.as_ref().map(|k| k.expose()),
            pagerduty_url,
        };
        let outgoing = crate::channels::requests(&destination, body, delivery_type)?;
        let client = self.clients.for_channel(channel.id, &channel.tls).map_err(|e| format!("TLS settings: {e}"))?;
        self.send_all(&client, outgoing, webhook_id, &target.keys).await.ok_or_else(|| "nothing to send".to_string())
    }

    /// Sends a delivery's requests in order (several for a PagerDuty batch), stopping at
    /// the first that does not get a 2xx; the result is that one's, or the last one's,
    /// with the durations added up. `None` when there was nothing to send.
    pub async fn send_all(
        &self,
        client: &reqwest::Client,
        outgoing: Vec<crate::channels::Outgoing>,
        webhook_id: &str,
        keys: &[SigningKey],
    ) -> Option<Response> {
        let mut combined: Option<Response> = None;
        for out in outgoing {
            let r = self
                .send(
                    client,
                    Request {
                        url: &out.url,
                        body: out.body,
                        content_type: &out.content_type,
                        webhook_id,
                        keys: if out.signed { keys } else { &[] },
                    },
                )
                .await;
            let failed = !matches!(r.result, AttemptResult::Status(200..=299));
            let r = match combined {
                Some(prev) => Response { started_at: prev.started_at, duration: prev.duration + r.duration, ..r },
                None => r,
            };
            combined = Some(r);
            if failed {
                // PagerDuty deduplicates on dedup_key, so a retry resending the batch is harmless.
                break;
            }
        }
        combined
    }
}

/// Reads at most [`MAX_RESPONSE_READ`] bytes of the body, then stops (the connection is
/// dropped rather than drained, so a huge answer costs nothing more).
async fn read_capped(mut response: reqwest::Response) -> (Vec<u8>, Option<reqwest::Error>) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_READ - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_RESPONSE_READ {
                    return (body, None);
                }
            }
            Ok(None) => return (body, None),
            Err(e) => return (body, Some(e)),
        }
    }
}

/// The stored start of a response body: at most 1 KiB, cut on a character boundary.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_SNIPPET)]);
    let mut end = text.len().min(MAX_SNIPPET);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn find_source<'a, E: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// A one-line description of a transport error with its causes. reqwest's own message,
/// which names the URL, is left out: a URL may carry a secret (a Slack webhook's path).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connect error".to_string()
    } else {
        "request error".to_string()
    };
    let mut cur = std::error::Error::source(e);
    while let Some(cause) = cur {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        cur = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn send_all_stops_at_the_first_failure_and_reports_it() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 1 { axum::http::StatusCode::INTERNAL_SERVER_ERROR } else { axum::http::StatusCode::ACCEPTED }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let sender = Sender::new(&SenderConfig {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            signature_header: "x-infisical-signature".into(),
            guard: Arc::new(Guard::new(vec!["127.0.0.0/8".parse().unwrap()])),
            ca_bundle: None,
        })
        .unwrap();
        let client = sender.clients().for_channel(uuid::Uuid::now_v7(), &Default::default()).unwrap();
        let out = |n: u8| crate::channels::Outgoing {
            url: url.clone(),
            body: bytes::Bytes::from(vec![n]),
            content_type: "application/json".into(),
            signed: false,
        };
        let r = sender.send_all(&client, vec![out(1), out(2), out(3)], "id", &[]).await.unwrap();
        assert_eq!(r.result, AttemptResult::Status(500), "the failing request is the result");
        assert_eq!(hits.load(Ordering::SeqCst), 2, "nothing is sent after a failure");
        assert!(sender.send_all(&client, Vec::new(), "id", &[]).await.is_none());
    }

    #[test]
    fn snippets_are_cut_at_1_kib_on_a_character_boundary() {
        assert_eq!(snippet(b"ok"), "ok");
        assert_eq!(snippet(&[b'a'; 5000]).len(), 1024);
        let text = "é".repeat(600); // 1200 bytes, 2 bytes per char
        let s = snippet(text.as_bytes());
        assert!(s.len() <= 1024 && s.chars().all(|c| c == 'é' || c == '\u{fffd}'), "{s}");
    }
}
