//! certhook-core: the pure heart of certhook — no I/O, no clock reads, no network.
//!
//! # Layout
//!
//! - [`secret`]: the [`Secret`] newtype that never prints its contents.
//! - [`seal`]: channel secrets encrypted at rest under `secret_key`, and key rotation.
//! - [`time`]: RFC 3339 parsing and the millisecond UTC format of the wire.
//! - [`duration`]: `alertBefore` windows (`30d`) and configuration durations (`250ms`).
//! - [`event`]: the domain types of events, certificates, alerts and channels.
//! - [`lifecycle`]: channel state transitions and verification tokens.
//! - [`validate`]: turning producer JSON into a checked [`event::NewEvent`], or an error
//!   naming the field.
//! - [`render`]: the CloudEvents 1.0 body of a delivery, byte-for-byte deterministic.
//! - [`sign`]: the `x-infisical-signature` and Standard Webhooks headers.
//! - [`retry`]: the durable retry schedule (exponential backoff, full jitter, `Retry-After`).
//! - [`subscription`]: validation of alerts and channels as operators define them.
//! - [`destination`]: channel URLs checked at create/update, and redacted for display.
//! - [`rate_limit`]: per-channel send rate limits (`2/s`, `30/m`) and Slack's default.
//! - [`tls_pem`]: a channel's CA certificates and client certificate and key, checked and
//!   summarized.
//! - [`config`]: the configuration file and its `CERTHOOK_*` environment overrides.
#![deny(missing_docs)]

pub mod config;
pub mod destination;
pub mod duration;
pub mod event;
pub mod filter;
pub mod lifecycle;
pub mod rate_limit;
pub mod render;
pub mod retry;
pub mod seal;
pub mod secret;
pub mod sign;
pub mod subscription;
pub mod time;
pub mod tls_pem;
pub mod validate;

pub use secret::Secret;

/// certhook's version, as sent in `user-agent: certhook/<version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
