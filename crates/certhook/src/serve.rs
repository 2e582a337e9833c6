//! `certhook serve`: the worker, housekeeping (pruning, disabling failing channels) and
//! the HTTP API in one process, until SIGINT or SIGTERM; then it stops claiming, finishes
//! in-flight deliveries, and exits 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use certhook_core::config::Config;
use certhook_producer::Producer;
use certhook_store::Store;
use certhook_worker::guard::Guard;
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
    let store = crate::commands::open(&config).await?;
    // A secret that does not open would stop that channel's deliveries one by one; better
    // to refuse to start, saying which key is missing.
    if let Err(e) = store.check_secrets().await {
        return Err(match e {
            certhook_store::StoreError::Sealed { .. } => BadInput(e.to_string()).into(),
            other => other.into(),
        });
    }
    let notify_task = store.listen_for_work().await.context("listening for PostgreSQL notifications")?;
    let metrics = Metrics::new();
    let sender = Sender::new(&SenderConfig {
        request_timeout: config.delivery.request_timeout,
        connect_timeout: config.delivery.connect_timeout,
        signature_header: config.signature_header.clone(),
        guard: Arc::new(Guard::new(config.allowed_networks.clone())),
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
    let scanner = tokio::spawn(scan_periodically(
        store.clone(),
        config.render_settings(),
        config.scan_interval,
        config.max_certificates_per_event,
        metrics.clone(),
        shutdown.clone(),
    ));
    let housekeeping =
        tokio::spawn(housekeeping(store.clone(), config.retention, config.delivery.disable_after, shutdown.clone()));

    let state = ApiState {
        store: store.clone(),
        producer: Producer::with_group_commit(store.clone(), config.max_event_bytes),
        metrics,
        admin_token: config.admin_token.clone().map(Arc::new),
        max_event_bytes: config.max_event_bytes,
        config: Arc::new(config.clone()),
        gauges: Arc::new(crate::gauges::GaugeCache::new(crate::gauges::GAUGE_PERIOD)),
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

    worker_task.await.context("worker task")??;
    housekeeping.abort();
    scanner.abort();
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

/// Background chores: disable channels failing without a success for `disable_after`
/// (checked every 30 s), and prune what `retention` allows (every few minutes).
async fn housekeeping(store: Store, retention: Duration, disable_after: Duration, shutdown: CancellationToken) {
    let prune_every = (retention / 10).clamp(Duration::from_secs(60), Duration::from_secs(600));
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        match store.disable_failing(disable_after).await {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(channel_id = %id, "channel disabled: no successful delivery within disable_after");
                }
            }
            Err(e) => tracing::warn!(error = %e, "checking failing channels failed; will try again"),
        }
        if last_prune.elapsed() < prune_every {
            continue;
        }
        last_prune = tokio::time::Instant::now();
        match store.prune(retention).await {
            Ok(p) if p.deliveries + p.events > 0 => {
                tracing::info!(deliveries = p.deliveries, events = p.events, "pruned past retention")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; will try again"),
        }
    }
}

/// The expiration scanner: once at start, then every `scan_interval`, each time after
/// folding the events accepted so far into the inventory. Several processes may scan the
/// same database; each report is enqueued once (see the store).
async fn scan_periodically(
    store: Store,
    render: certhook_core::render::RenderSettings,
    every: Duration,
    max_per_event: usize,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    loop {
        let as_of = match store.now().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "expiration scan: database unreachable; will try again");
                chrono::Utc::now()
            }
        };
        match certhook_producer::scan::scan(&store, &render, as_of, max_per_event).await {
            Ok(out) => {
                metrics.events_enqueued.with_label_values(&["expiration"]).inc_by(out.events.len() as u64);
                metrics.scans.inc();
                metrics.last_scan.set(chrono::Utc::now().timestamp() as f64);
                if out.reported > 0 || out.expired_marked > 0 {
                    tracing::info!(
                        reported = out.reported,
                        events = out.events.len(),
                        expired = out.expired_marked,
                        "expiration scan"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "expiration scan failed; will try again"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
