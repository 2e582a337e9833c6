//! The HTTP server under the API: axum's router on hyper connections with the limits a
//! listener open to clients needs (SPEC §6). A client that opens connections and sends
//! nothing, or sends headers a byte at a time, would otherwise hold file descriptors that
//! deliveries need, for as long as it likes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;

/// How long a connection may take to send a request's headers; also how long an idle
/// keep-alive connection is kept.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request may take from its headers to its response (a body sent a byte at
/// a time, say). A handler's open transaction rolls back; events already handed to the
/// group commit may still be stored, so producers retry with an idempotency key.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections served at once; further ones wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 512;

/// How long in-flight requests get to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The server's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read: Duration,
    /// See [`REQUEST_TIMEOUT`].
    pub request: Duration,
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { header_read: HEADER_READ_TIMEOUT, request: REQUEST_TIMEOUT, max_connections: MAX_CONNECTIONS }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: CancellationToken) {
    let app = app.layer(from_fn(move |request: Request, next: Next| within(limits.request, request, next)));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: its header-read timer runs from the moment a connection opens and
    // while it idles between requests. HTTP/2 (a version sniff first, then pings that keep
    // any connection alive) would let idle connections hold their slots for ever; the
    // API's clients (a PKI, the CLI, curl) need nothing it adds.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to be freed
                    // rather than spin.
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("API connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
}

/// Runs the request, or answers 408 once `limit` has passed.
async fn within(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took longer than {}s", limit.as_secs_f64()),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn start(limits: Limits) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "ok" })).route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, app, limits, stop.clone()));
        (addr, stop)
    }

    /// Sends a GET and reads what comes back within `wait` (empty if nothing did).
    async fn get_within(stream: &mut TcpStream, wait: Duration) -> String {
        stream.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_sends_headers_too_slowly_is_disconnected() {
        let (addr, _stop) = start(Limits {
            header_read: Duration::from_millis(300),
            request: Duration::from_secs(30),
            max_connections: 8,
        })
        .await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n").await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
        let n = read.expect("the server closes the connection after the header timeout");
        assert!(n.is_ok_and(|_| !String::from_utf8_lossy(&buf).contains("200 OK")), "{buf:?}");
        // A client that is quick enough is still served.
        let mut quick = TcpStream::connect(addr).await.unwrap();
        assert!(get_within(&mut quick, Duration::from_secs(5)).await.contains("200 OK"));
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_and_frees_its_slot() {
        let limits =
            Limits { header_read: Duration::from_millis(300), request: Duration::from_secs(30), max_connections: 1 };
        let (addr, _stop) = start(limits).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "an idle connection kept its slot");
        let mut next = TcpStream::connect(addr).await.unwrap();
        assert!(get_within(&mut next, Duration::from_secs(5)).await.contains("200 OK"));
        // Nor does an HTTP/2 preface buy a connection that idles for ever.
        let mut h2 = TcpStream::connect(addr).await.unwrap();
        h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), h2.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "an HTTP/2 connection kept its slot");
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_one_closes() {
        let (addr, _stop) = start(Limits {
            header_read: Duration::from_secs(30),
            request: Duration::from_secs(30),
            max_connections: 2,
        })
        .await;
        let first = TcpStream::connect(addr).await.unwrap();
        let _second = TcpStream::connect(addr).await.unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        let answer = get_within(&mut third, Duration::from_millis(500)).await;
        assert_eq!(answer, "", "served beyond the cap of 2 connections");
        drop(first);
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut out)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&out).contains("200 OK"), "{out:?}");
    }

    #[tokio::test]
    async fn a_request_that_takes_too_long_gets_408() {
        let limits =
            Limits { header_read: Duration::from_secs(5), request: Duration::from_millis(300), max_connections: 8 };
        let (addr, _stop) = start(limits).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /slow HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 408") && text.contains("request_timeout"), "{text}");
    }
}
