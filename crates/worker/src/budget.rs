//! How many leases a channel may hold (in flight plus claimed and waiting): the per-channel
//! cap bounds requests in flight, not what is claimed (SPEC §3). A channel keeps enough
//! claimed to stay busy for a short horizon at the rate it has been sending, never less
//! than two rounds of its in-flight allowance, and the rest stays in the queue for other
//! workers. Pure: the caller passes the clock.

use std::time::{Duration, Instant};

/// What one channel may hold at most (in flight plus claimed), given the worker's
/// `concurrency`: five eighths of the `2 × concurrency` the worker holds in all. A fast
/// channel then claims further ahead of its sends (at half, one busy channel's buffer ran
/// dry hundreds of times a second while its next claim waited for the writer). The other
/// channels keep three eighths: with one channel at its ceiling they still hold up to an
/// eighth and get a refill (which needs a quarter free, `refill_size`), so one fast channel
/// that stops answering does not stop the others' claims until its breaker opens.
pub fn channel_ceiling(concurrency: usize) -> usize {
    concurrency.max(1) * 5 / 4
}

/// How long a window of completions is before it becomes a rate sample.
const WINDOW: Duration = Duration::from_millis(250);

/// After this long without a completion a rate says nothing about the channel any more.
const STALE: Duration = Duration::from_secs(5);

/// A channel's observed sending rate: completed attempts per second, smoothed.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    window_start: Instant,
    in_window: u32,
    per_sec: f64,
    last: Instant,
}

impl Throughput {
    /// No observations yet, starting at `now`.
    pub fn new(now: Instant) -> Self {
        Throughput { window_start: now, in_window: 0, per_sec: 0.0, last: now }
    }

    /// Whether nothing completed for long enough that the rate can be forgotten.
    pub fn is_stale(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= STALE
    }

    /// One attempt finished at `now`.
    pub fn record(&mut self, now: Instant) {
        self.roll(now);
        self.in_window = self.in_window.saturating_add(1);
        self.last = now;
    }

    /// Attempts per second as last measured (a channel idle for a window counts as slower).
    pub fn per_sec(&mut self, now: Instant) -> f64 {
        self.roll(now);
        self.per_sec
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < WINDOW {
            return;
        }
        let sample = f64::from(self.in_window) / elapsed.as_secs_f64();
        // Half old, half new: follows a change within a few windows, ignores one odd window.
        self.per_sec = if self.per_sec == 0.0 { sample } else { (self.per_sec + sample) / 2.0 };
        self.window_start = now;
        self.in_window = 0;
    }
}

/// How far ahead a channel's claimed leases may reach: a second of sending, but never
/// more than an eighth of a lease (a buffered lease is given back after half of one).
pub fn horizon(lease: Duration) -> Duration {
    Duration::from_secs(1).min(lease / 8)
}

/// Leases a channel may hold: `rate × horizon`, at least two rounds of `in_flight_allowed`
/// (what is in flight and as much again ready), at most `ceiling` (the worker's own bound).
pub fn allowance(in_flight_allowed: usize, rate_per_sec: f64, horizon: Duration, ceiling: usize) -> usize {
    let floor = 2 * in_flight_allowed.max(1);
    let by_rate = (rate_per_sec * horizon.as_secs_f64()).ceil();
    // `as` saturates for floats: a huge or NaN rate cannot wrap.
    (by_rate as usize).max(floor).min(ceiling.max(floor))
}

/// How long ahead a rate-limited channel's claims look: a few seconds of its limit.
const LIMITED_HORIZON: Duration = Duration::from_secs(2);

/// What a rate-limited channel (one request per `interval`) may hold claimed: what its
/// limit lets it send within [`LIMITED_HORIZON`], at least one.
pub fn limited_allowance(interval: Duration) -> usize {
    // A zero interval divides to infinity, which `as` saturates to usize::MAX.
    let n = (LIMITED_HORIZON.as_secs_f64() / interval.as_secs_f64()).ceil();
    (n as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_channel_holds_two_rounds_of_its_cap() {
        assert_eq!(allowance(8, 0.0, Duration::from_secs(1), 512), 16);
        assert_eq!(allowance(0, 0.0, Duration::from_secs(1), 512), 2, "zero is treated as one");
    }

    #[test]
    fn a_fast_channel_holds_a_horizon_of_work_up_to_the_ceiling() {
        assert_eq!(allowance(8, 3000.0, Duration::from_millis(100), 512), 300);
        assert_eq!(allowance(8, 50_000.0, Duration::from_secs(1), 512), 512);
        assert_eq!(allowance(8, f64::NAN, Duration::from_secs(1), 512), 16);
        assert_eq!(allowance(8, f64::INFINITY, Duration::from_secs(1), 512), 512);
    }

    #[test]
    fn one_channel_at_its_ceiling_leaves_the_others_room_to_refill() {
        assert_eq!(channel_ceiling(256), 320);
        assert_eq!(allowance(8, 10_000.0, Duration::from_secs(1), channel_ceiling(256)), 320);
        for concurrency in [4, 64, 256, 1000] {
            assert!(channel_ceiling(concurrency) > concurrency, "{concurrency}: more than half the buffer");
        }
        for concurrency in [2, 3, 4, 8, 64, 256, 1000] {
            let busy = channel_ceiling(concurrency);
            // The other channels still hold something (a slow request in flight) and claim.
            let others = concurrency.div_ceil(8).max(1);
            assert!(
                crate::refill::refill_size(concurrency, others, busy).is_some(),
                "{concurrency}: a channel at {busy} and others holding {others} must still refill"
            );
        }
    }

    #[test]
    fn a_rate_limited_channel_holds_a_few_seconds_of_its_limit() {
        assert_eq!(limited_allowance(Duration::from_secs(1)), 2, "Slack's 1/s");
        assert_eq!(limited_allowance(Duration::from_millis(100)), 20);
        assert_eq!(limited_allowance(Duration::from_secs(60)), 1, "1/m still sends");
        assert_eq!(limited_allowance(Duration::ZERO), usize::MAX);
    }

    #[test]
    fn an_open_breaker_shrinks_the_floor() {
        assert_eq!(allowance(1, 0.5, Duration::from_secs(1), 512), 2);
    }

    #[test]
    fn the_horizon_is_a_second_or_an_eighth_of_a_lease() {
        assert_eq!(horizon(Duration::from_secs(60)), Duration::from_secs(1));
        assert_eq!(horizon(Duration::from_secs(4)), Duration::from_millis(500));
    }

    #[test]
    fn throughput_follows_completions_per_window() {
        let t0 = Instant::now();
        let mut t = Throughput::new(t0);
        for i in 0..100 {
            t.record(t0 + Duration::from_millis(i * 2)); // 100 in 200 ms
        }
        assert_eq!(t.per_sec(t0 + Duration::from_millis(200)), 0.0, "no full window yet");
        let rate = t.per_sec(t0 + Duration::from_millis(250));
        assert!((rate - 400.0).abs() < 1e-9, "{rate}");
        // an idle window halves it
        let rate = t.per_sec(t0 + Duration::from_millis(500));
        assert!((rate - 200.0).abs() < 1e-9, "{rate}");
        assert!(!t.is_stale(t0 + Duration::from_secs(5)));
        assert!(t.is_stale(t0 + Duration::from_millis(5200)), "five seconds after the last completion");
    }
}
