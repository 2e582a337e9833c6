//! The store's behavioural suite: every test in `suite` runs against a real SQLite file
//! and a fresh PostgreSQL database; that suite is the definition of the store.

mod alerts;
mod crash;
mod fan_out_race;
mod fixtures;
mod harness;
mod postgres_concurrency;
mod scan;
mod suite;
mod upgrade;
