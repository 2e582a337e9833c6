//! The fast receiver every figure is measured against: answers 204 at once and counts,
//! noting when each serial number arrived (for latency).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

/// Counts and arrival times.
#[derive(Default)]
pub struct Counter {
    pub count: AtomicU64,
    /// serial number → arrival, when `track` is on.
    pub arrivals: Mutex<HashMap<String, Instant>>,
    pub track: std::sync::atomic::AtomicBool,
}

/// Starts the receiver on 127.0.0.1; returns its base URL and counter.
pub async fn start() -> (String, Arc<Counter>) {
    let counter = Arc::new(Counter::default());
    let app = Router::new().fallback(receive).with_state(counter.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), counter)
}

async fn receive(State(c): State<Arc<Counter>>, body: Bytes) -> StatusCode {
    c.count.fetch_add(1, Ordering::Relaxed);
    if c.track.load(Ordering::Relaxed)
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(serial) = v["data"]["certificates"][0]["serialNumber"].as_str()
    {
        c.arrivals.lock().expect("lock").insert(serial.to_string(), Instant::now());
    }
    StatusCode::NO_CONTENT
}
