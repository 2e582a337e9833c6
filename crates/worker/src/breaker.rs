//! A per-channel circuit breaker (SPEC §3): after `threshold` consecutive failures the
//! channel gets one request at a time (a probe) until one succeeds.

/// The breaker state of one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Breaker {
    consecutive_failures: u32,
}

impl Breaker {
    /// Records a 2xx: the circuit closes.
    pub fn on_success(&mut self) {
        self.consecutive_failures = 0;
    }

    /// Records a failed attempt.
    pub fn on_failure(&mut self) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
    }

    /// Whether the circuit is open (the channel is being probed).
    pub fn is_open(&self, threshold: u32) -> bool {
        self.consecutive_failures >= threshold
    }

    /// How many requests the channel may have in flight.
    pub fn allowed_in_flight(&self, threshold: u32, cap: usize) -> usize {
        if self.is_open(threshold) { 1 } else { cap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_failures_and_closes_on_success() {
        let mut b = Breaker::default();
        for _ in 0..4 {
            b.on_failure();
        }
        assert!(!b.is_open(5));
        assert_eq!(b.allowed_in_flight(5, 8), 8);
        b.on_failure();
        assert!(b.is_open(5));
        assert_eq!(b.allowed_in_flight(5, 8), 1, "an open circuit sends one probe at a time");
        b.on_success();
        assert!(!b.is_open(5));
    }
}
