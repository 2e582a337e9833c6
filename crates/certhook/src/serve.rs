//! `certhook serve`: wires the worker, housekeeping, the expiration scanner and
//! the HTTP API in one process, until SIGINT or SIGTERM; then it stops claiming, finishes
//! in-flight deliveries, and exits 0.

use std::sync::Arc;

use anyhow::Context;
use certhook_core::config::Config;
use certhook_producer::Producer;
use certhook_store::Store;
use certhook_worker::tls::TlsError;
use certhook_worker::{Metrics, Sender, SenderConfig, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::exit::BadInput;
use crate::http_server::Limits;

/// Runs `serve` until a signal arrives.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    if !config.listen.ip().is_loopback() && config.admin_token.is_none() {
        return Err(BadInput(format!(
            "admin_token: required to listen on the non-loopback address {} (set admin_token or CERTHOOK_ADMIN_TOKEN)",
            config.listen
        ))
        .into());
    }
    let store = crate::database::open_serving(&config).await?;
    // A secret that does not open would park that channel's deliveries; better to refuse
    // to start, saying which key is missing.
    if let Err(e) = store.check_secrets().await {
        return Err(match e {
            certhook_store::StoreError::Sealed { .. } => BadInput(e.to_string()).into(),
            other => other.into(),
        });
    }
    let notify_task = store.listen_for_work().await.context("listening for PostgreSQL notifications")?;
    let metrics = Metrics::new();
    let sender = Sender::new(&SenderConfig::from_config(&config)).map_err(|e| match e {
        // A configuration mistake, like any other refused key: exit 2.
        certhook_worker::deliver::SenderError::Tls(
            t @ (TlsError::BundleUnreadable { .. } | TlsError::BundleInvalid { .. }),
        ) => anyhow::Error::from(BadInput(t.to_string())),
        other => other.into(),
    })?;
    let worker = Worker::new(
        store.clone(),
        sender,
        WorkerConfig {
            render: config.render_settings(),
            retry: config.retry_policy(),
            lease: config.delivery.lease_duration,
            poll_interval: config.delivery.poll_interval,
            concurrency: config.delivery.concurrency,
            channel_concurrency: config.delivery.channel_concurrency,
            breaker_threshold: config.delivery.circuit_breaker_threshold,
            pagerduty_url: config.pagerduty_url.clone(),
        },
        metrics.clone(),
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    let worker_task = tokio::spawn(worker.run(shutdown.clone()));
    let scan_metrics = metrics.clone();
    let scanner = tokio::spawn(certhook_producer::scan::run_every(
        store.clone(),
        config.render_settings(),
        config.scan_interval,
        config.max_certificates_per_event,
        move |out| {
            scan_metrics
                .events_enqueued
                .with_label_values(&[certhook_core::event::AlertType::Expiration.as_str()])
                .inc_by(out.events.len() as u64);
            scan_metrics.scans.inc();
            scan_metrics.last_scan.set(chrono::Utc::now().timestamp() as f64);
        },
    ));
    let housekeeping = tokio::spawn(certhook_worker::housekeeping::run(
        store.clone(),
        config.retention,
        config.delivery.disable_after,
        shutdown.clone(),
    ));

    let state = ApiState {
        store: store.clone(),
        producer: Producer::with_group_commit(store.clone(), config.max_event_bytes),
        metrics,
        admin_token: config.admin_token.clone().map(Arc::new),
        max_event_bytes: config.max_event_bytes,
        config: Arc::new(config.clone()),
        gauges: Arc::new(api::gauges::GaugeCache::new(api::gauges::GAUGE_PERIOD)),
        console: Arc::default(),
    };
    if let Some(addr) = config.metrics_listen {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics_listen: binding {addr}"))?;
        let app = api::metrics_router(state.clone());
        let stop = shutdown.clone();
        tokio::spawn(crate::http_server::serve(listener, app, Limits::default(), stop));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen: binding {}", config.listen))?;
    let bound = listener.local_addr()?;
    // Tests and scripts read this line to find the port when `listen` ends in :0.
    eprintln!("certhook: listening on http://{bound}");
    tracing::info!(%bound, database = store_kind(&store), "serving");
    crate::http_server::serve(listener, api::router(state), Limits::default(), shutdown.clone()).await;

    // No new scan or chore while the worker drains (each step is its own transaction, so
    // stopping between them loses nothing).
    scanner.abort();
    housekeeping.abort();
    worker_task.await.context("worker task")??;
    if let Some(task) = notify_task {
        task.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn store_kind(store: &Store) -> &'static str {
    match store.kind() {
        certhook_store::BackendKind::Sqlite => "sqlite",
        certhook_store::BackendKind::Postgres => "postgres",
    }
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}
