//! certhook-worker: the delivery loop that leases, signs, sends and records.
//!
//! # Layout
//!
//! - [`worker`]: the loop: send from the buffer within free slots, settle.
//! - [`fan_out`]: new outbox rows into deliveries, in a task of its own.
//! - [`refill`]: the background claim that keeps the buffer full.
//! - [`queue`]: the buffer: claimed leases waiting for a slot, one queue per channel.
//! - [`lease`]: the leases this process holds, extended until their outcomes are written.
//! - `attempt`: one delivery start to finish: channel checks, the send, its outcome.
//! - [`deliver`]: the shared HTTP client; `send_now` builds a channel's requests and
//!   sends them (signing at send time).
//! - [`classify`]: what a result means, and what becomes of the delivery (pure).
//! - [`guard`]: SSRF protection, for IP literals and at DNS resolution.
//! - [`channels`]: Slack and PagerDuty formats (pure).
//! - [`breaker`]: the per-channel circuit breaker (pure).
//! - [`budget`]: how much each channel may keep claimed, from its observed rate (pure).
//! - [`targets`]: the channel cache the loop sends with.
//! - [`rate`]: per-channel send rate limits, one limiter per limited channel.
//! - [`tls`]: the HTTP clients: the shared one, per-channel ones for private CAs and
//!   client certificates, and the `ca_bundle` they all trust.
//! - [`record`]: batched outcome writes.
//! - [`metrics`]: every Prometheus family.
//! - [`housekeeping`]: disabling channels that keep failing, pruning past retention.
#![deny(missing_docs)]

mod attempt;
pub mod breaker;
pub mod budget;
pub mod channels;
pub mod classify;
pub mod deliver;
pub mod fan_out;
pub mod guard;
pub mod history;
pub mod housekeeping;
pub mod lease;
pub mod metrics;
pub mod queue;
pub mod rate;
pub mod record;
pub mod refill;
pub mod targets;
pub mod tls;
pub mod worker;

pub use deliver::{Sender, SenderConfig};
pub use metrics::Metrics;
pub use worker::{Worker, WorkerConfig};
