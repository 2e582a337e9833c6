//! The queue gauges of `/metrics`, read from the store at most once per period: a
//! status read counts every delivery and channel, and scrapes (several Prometheus
//! servers, a dashboard left open, a loop) must not turn into database load.

use std::time::Duration;

use certhook_store::Store;
use certhook_worker::Metrics;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How stale the queue gauges may be.
pub const GAUGE_PERIOD: Duration = Duration::from_secs(5);

/// When the gauges were last read; scrapes that overlap wait for one read, not one each.
#[derive(Debug)]
pub struct GaugeCache {
    period: Duration,
    last: Mutex<Option<Instant>>,
}

impl GaugeCache {
    /// A cache that reads the store again once `period` has passed.
    pub fn new(period: Duration) -> Self {
        GaugeCache { period, last: Mutex::new(None) }
    }

    /// Brings `metrics`' queue gauges up to date if they are older than the period.
    pub async fn refresh(&self, store: &Store, metrics: &Metrics) {
        let mut last = self.last.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.period) {
            return;
        }
        match store.status().await {
            Ok(s) => metrics.observe_status(&s),
            // The gauges keep their last values; the next scrape tries again.
            Err(e) => {
                tracing::warn!(error = %e, "metrics: reading queue gauges failed");
                return;
            }
        }
        *last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use certhook_core::event::{AlertType, ChannelState};
    use certhook_store::{NewAlert, NewChannel};

    use super::*;

    fn active_channels(metrics: &Metrics) -> f64 {
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with("certhook_channels{state=\"active\"}")).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn scrapes_within_the_period_do_not_read_the_store_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("g.db").display())).await.unwrap();
        let metrics = Metrics::new();
        let cache = GaugeCache::new(Duration::from_millis(400));
        cache.refresh(&store, &metrics).await;
        assert_eq!(active_channels(&metrics), 0.0);

        let app = store.create_application("gauges").await.unwrap();
        let new_alert = NewAlert::single(app.id, AlertType::Issuance, "g");
        let alert = store.create_alert(&new_alert).await.unwrap();
        let channel = NewChannel::webhook(alert.id, "https://receiver.test/hook", ChannelState::Active);
        store.create_channel(&channel, None).await.unwrap();

        cache.refresh(&store, &metrics).await;
        assert_eq!(active_channels(&metrics), 0.0, "read again within the period");
        tokio::time::sleep(Duration::from_millis(450)).await;
        cache.refresh(&store, &metrics).await;
        assert_eq!(active_channels(&metrics), 1.0, "not read again after the period");
    }
}
