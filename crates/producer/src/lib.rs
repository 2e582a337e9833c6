//! certhook-producer: what a PKI links or calls to hand certhook certificate events.
//!
//! # Layout
//!
//! - [`enqueue`]: validated enqueue of JSON or typed events on a [`certhook_store::Store`],
//!   and the transactional outbox (`enqueue_in_sqlite_tx` / `enqueue_in_postgres_tx`) on
//!   the caller's own sqlx transaction.
//! - [`group`]: group commit, so concurrent enqueues share a transaction.
//! - [`pem`]: certificates read from PEM files, and folder imports.
//! - [`scan`]: the expiration scan, with the events accepted before it folded in first.
#![deny(missing_docs)]

pub mod enqueue;
pub mod group;
pub mod pem;
pub mod scan;

pub use enqueue::{ProduceError, Producer, enqueue_in_postgres_tx, enqueue_in_sqlite_tx};
