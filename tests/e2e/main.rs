//! End-to-end tests: the real `certhook` binary against real databases and receivers on
//! 127.0.0.1.

/// Declares two tests of `scenario(env)`: `$sqlite` on the SQLite file of `$make_env`, and
/// `$postgres` on a scratch PostgreSQL database (skipped without a server outside CI,
/// dropped afterwards).
macro_rules! on_both_backends {
    ($scenario:path, $make_env:expr, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $scenario($make_env).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let scratch = certhook_store::scratch::for_test("certhook_e2e", env!("CARGO_TARGET_TMPDIR")).await;
            let Some(db) = scratch else { return };
            let mut env = $make_env;
            env.database_url = db.url.clone();
            $scenario(env).await;
            db.drop_database().await.unwrap();
        }
    };
}

mod api;
mod browser;
mod channel_tls;
mod cli;
mod console;
mod delivery;
mod disk_full;
mod docs;
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
