//! Every Prometheus family of SPEC §6, registered in one place. Counters are updated
//! where an outcome is decided; gauges are read from the shared store at scrape time, so
//! every process reports the same queue.

use certhook_core::event::{AlertType, ChannelKind, ChannelState, DeliveryOutcome, DeliveryState};
use certhook_store::Status;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::classify::AttemptResult;

/// The `state` values of `certhook_queue_depth`: every delivery state but `delivered`
/// (delivered rows are history, pruned after `retention`, not queue).
pub fn queue_states() -> impl Iterator<Item = DeliveryState> {
    DeliveryState::ALL.iter().copied().filter(|s| *s != DeliveryState::Delivered)
}

/// The process's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Events this process accepted (API, scanner), by `type`.
    pub events_enqueued: IntCounterVec,
    /// Deliveries settled by this process, by `outcome` and `channel_kind`.
    pub deliveries: IntCounterVec,
    /// Attempts made by this process, by `result`.
    pub attempts: IntCounterVec,
    /// Attempt durations, by `channel_kind`.
    pub delivery_duration: HistogramVec,
    /// Enqueue to successful delivery.
    pub end_to_end: Histogram,
    /// Deliveries per state (from the store).
    pub queue_depth: IntGaugeVec,
    /// Age of the oldest waiting delivery (from the store).
    pub oldest_pending_age: prometheus::Gauge,
    /// Deliveries this process took over from an expired lease.
    pub leases_expired: IntCounter,
    /// Dead letters this process replayed.
    pub replays: IntCounter,
    /// Channels per state (from the store).
    pub channels: IntGaugeVec,
    /// Channels whose breaker is open in this process.
    pub circuit_open: IntGauge,
    /// Expiration scans this process completed.
    pub scans: IntCounter,
    /// Unix time of this process's last completed expiration scan.
    pub last_scan: prometheus::Gauge,
    /// This process's attempts of the last hour, minute by minute (for the console).
    pub recent: std::sync::Arc<crate::history::Recent>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are fixed and distinct, so registration cannot collide.
    registry.register(Box::new(metric.clone())).expect("metric names are unique");
    metric
}

impl Metrics {
    /// Registers every family with each fixed label value present at 0.
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        // Metric options below are static and valid; construction cannot fail.
        let events_enqueued = register(
            r,
            IntCounterVec::new(
                Opts::new("certhook_events_enqueued_total", "Events accepted by this process"),
                &["type"],
            )
            .expect("valid metric"),
        );
        let deliveries = register(
            r,
            IntCounterVec::new(
                Opts::new("certhook_deliveries_total", "Deliveries settled by this process"),
                &["outcome", "channel_kind"],
            )
            .expect("valid metric"),
        );
        let attempts = register(
            r,
            IntCounterVec::new(Opts::new("certhook_delivery_attempts_total", "HTTP attempts by result"), &["result"])
                .expect("valid metric"),
        );
        let delivery_duration = register(
            r,
            HistogramVec::new(
                HistogramOpts::new("certhook_delivery_duration_seconds", "Duration of one delivery attempt")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0]),
                &["channel_kind"],
            )
            .expect("valid metric"),
        );
        let end_to_end = register(
            r,
            Histogram::with_opts(
                HistogramOpts::new("certhook_end_to_end_latency_seconds", "Enqueue to successful delivery").buckets(
                    vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 21600.0],
                ),
            )
            .expect("valid metric"),
        );
        let queue_depth = register(
            r,
            IntGaugeVec::new(Opts::new("certhook_queue_depth", "Deliveries per state"), &["state"])
                .expect("valid metric"),
        );
        let oldest_pending_age = register(
            r,
            prometheus::Gauge::new("certhook_oldest_pending_age_seconds", "Age of the oldest waiting delivery")
                .expect("valid metric"),
        );
        let leases_expired = register(
            r,
            IntCounter::new("certhook_leases_expired_total", "Deliveries taken over from an expired lease")
                .expect("valid metric"),
        );
        let replays = register(
            r,
            IntCounter::new("certhook_dead_letter_replays_total", "Dead letters replayed").expect("valid metric"),
        );
        let channels = register(
            r,
            IntGaugeVec::new(Opts::new("certhook_channels", "Channels per state"), &["state"]).expect("valid metric"),
        );
        let circuit_open = register(
            r,
            IntGauge::new("certhook_circuit_open", "Channels with an open circuit breaker").expect("valid metric"),
        );
        let scans = register(
            r,
            IntCounter::new("certhook_expiration_scans_total", "Expiration scans completed").expect("valid metric"),
        );
        let last_scan = register(
            r,
            prometheus::Gauge::new(
                "certhook_last_expiration_scan_timestamp_seconds",
                "Unix time of the last completed scan",
            )
            .expect("valid metric"),
        );
        let build_info = register(
            r,
            IntGaugeVec::new(Opts::new("certhook_build_info", "certhook version"), &["version"]).expect("valid metric"),
        );
        build_info.with_label_values(&[certhook_core::VERSION]).set(1);
        for t in AlertType::ALL {
            events_enqueued.with_label_values(&[t.as_str()]);
        }
        for outcome in DeliveryOutcome::ALL {
            for kind in ChannelKind::ALL {
                deliveries.with_label_values(&[outcome.as_str(), kind.as_str()]);
            }
        }
        for result in AttemptResult::EACH {
            attempts.with_label_values(&[result.label()]);
        }
        for kind in ChannelKind::ALL {
            delivery_duration.with_label_values(&[kind.as_str()]);
        }
        for state in queue_states() {
            queue_depth.with_label_values(&[state.as_str()]);
        }
        for state in ChannelState::ALL {
            channels.with_label_values(&[state.as_str()]);
        }
        Metrics {
            registry,
            events_enqueued,
            deliveries,
            attempts,
            delivery_duration,
            end_to_end,
            queue_depth,
            oldest_pending_age,
            leases_expired,
            replays,
            channels,
            circuit_open,
            scans,
            last_scan,
            recent: Default::default(),
        }
    }

    /// Sets the store-backed gauges from a fresh status.
    pub fn observe_status(&self, s: &Status) {
        for state in queue_states() {
            self.queue_depth.with_label_values(&[state.as_str()]).set(s.deliveries.of(state) as i64);
        }
        for state in ChannelState::ALL {
            self.channels.with_label_values(&[state.as_str()]).set(s.channels.of(*state) as i64);
        }
        self.oldest_pending_age.set(s.oldest_pending_age_seconds);
    }

    /// Counts `n` deliveries of `kind` that ended this step as `outcome`.
    pub fn count_deliveries(&self, outcome: DeliveryOutcome, kind: ChannelKind, n: u64) {
        self.deliveries.with_label_values(&[outcome.as_str(), kind.as_str()]).inc_by(n);
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_and_label_exists_from_the_start() {
        let text = Metrics::new().render();
        for line in [
            "certhook_events_enqueued_total{type=\"revocation\"} 0",
            "certhook_deliveries_total{channel_kind=\"slack\",outcome=\"dead_lettered\"} 0",
            "certhook_delivery_attempts_total{result=\"blocked\"} 0",
            "certhook_delivery_duration_seconds_count{channel_kind=\"webhook\"} 0",
            "certhook_end_to_end_latency_seconds_count 0",
            "certhook_queue_depth{state=\"held\"} 0",
            "certhook_oldest_pending_age_seconds 0",
            "certhook_leases_expired_total 0",
            "certhook_dead_letter_replays_total 0",
            "certhook_channels{state=\"pending_verification\"} 0",
            "certhook_circuit_open 0",
        ] {
            assert!(text.contains(line), "missing {line}");
        }
        assert!(text.contains(&format!("certhook_build_info{{version=\"{}\"}} 1", certhook_core::VERSION)));
    }
}
