//! A real HTTP receiver on 127.0.0.1 for tests: answers from a script, records every request.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    /// The value of header `name`; panics when the request did not carry it, so that two
    /// missing headers never compare equal.
    pub fn header(&self, name: &str) -> String {
        self.try_header(name).unwrap_or_else(|| panic!("the request to {} has no {name} header", self.path))
    }

    /// The value of header `name`, if the request carried it.
    pub fn try_header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().expect("header is visible ASCII").to_string())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with one extra header.
    WithHeader(u16, &'static str, String),
    /// A status with a body of this many bytes.
    Body(u16, usize),
    /// Answer after a delay.
    Delay(Duration, u16),
    /// Never answer.
    Hang,
}

#[derive(Default)]
struct Shared {
    log: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

/// The receiver; it stops with the test's runtime.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 answering `default` unless scripted otherwise.
    pub async fn start(default: Reply) -> Receiver {
        let shared = Arc::new(Mutex::new(Shared { default: Some(default), ..Default::default() }));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with `replies`, in order, then the default again.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().unwrap().script.extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().unwrap().default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().log.clone()
    }

    /// Waits until at least `n` requests arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "received {} of {n} requests in {timeout:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(State(shared): State<Arc<Mutex<Shared>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let reply = {
        let mut s = shared.lock().unwrap();
        s.log.push(Received { path: parts.uri.path().to_string(), headers: parts.headers, body, at: Instant::now() });
        s.script.pop_front().or_else(|| s.default.clone()).unwrap_or(Reply::Status(204))
    };
    let status = |code: u16| StatusCode::from_u16(code).unwrap();
    match reply {
        Reply::Status(code) => status(code).into_response(),
        Reply::WithHeader(code, name, value) => (status(code), [(name, value)]).into_response(),
        Reply::Body(code, size) => (status(code), "x".repeat(size)).into_response(),
        Reply::Delay(d, code) => {
            tokio::time::sleep(d).await;
            status(code).into_response()
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}
