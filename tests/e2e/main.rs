//! End-to-end tests: the real `certhook` binary against real databases and receivers on
//! 127.0.0.1.

mod api;
mod browser;
mod channel_tls;
mod cli;
mod console;
mod delivery;
mod disk_full;
mod in_flight;
mod lifecycle;
mod listen;
mod ops;
mod postgres;
mod rate_limit;
mod receiver;
mod receivers;
mod resilience;
mod scan;
mod slack_pagerduty;
mod subscriptions;
mod support;
mod tls_receiver;
mod webdriver;
