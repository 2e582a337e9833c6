//! The cadence of the expired-lease sweep: a claim looks for expired leases when its due
//! rows fall short, and otherwise at most once per interval, so a busy queue does not pay
//! a statement per claim for what is rare (a crashed worker).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When the next sweep is due, shared by the clones of one store.
#[derive(Debug)]
pub(crate) struct Sweep {
    started: Instant,
    interval: Duration,
    next_ms: AtomicU64,
}

impl Sweep {
    /// A sweep due at once, then every `interval`.
    pub(crate) fn every(interval: Duration) -> Sweep {
        Sweep { started: Instant::now(), interval, next_ms: AtomicU64::new(0) }
    }

    /// Whether a sweep is due now; a `true` books the next one, so of several concurrent
    /// callers only one sweeps.
    pub(crate) fn due(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(next, now + self.interval.as_millis() as u64, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_at_once_then_once_per_interval() {
        let s = Sweep::every(Duration::from_millis(40));
        assert!(s.due());
        assert!(!s.due(), "booked: the next caller waits an interval");
        std::thread::sleep(Duration::from_millis(50));
        assert!(s.due());
        assert!(!s.due());
    }
}
