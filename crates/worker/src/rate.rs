//! Per-channel send rate limits: one limiter (governor's GCRA) per rate-limited channel,
//! shared by every sending slot of this worker, rebuilt when the channel's limit changes.
//!
//! The loop asks before it starts a send and, when a channel must wait, keeps its lease
//! buffered and sends other channels' meanwhile: a waiting request never holds a slot.
//! Limits are per worker process; several `serve` processes on one database each allow
//! the channel's rate.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use certhook_core::rate_limit::RateLimit;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use uuid::Uuid;

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The quota of a limit: evenly spaced, no burst (see [`certhook_core::rate_limit`]).
fn quota(limit: RateLimit) -> Quota {
    Quota::with_period(limit.interval())
        .expect("a limit's interval is at least a millisecond")
        .allow_burst(NonZeroU32::MIN)
}

/// The limiters of every rate-limited channel.
pub struct RateLimits<C: Clock = DefaultClock> {
    clock: C,
    by_channel: HashMap<Uuid, (RateLimit, Limiter<C>)>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::with_clock(DefaultClock::default())
    }
}

impl<C: Clock> std::fmt::Debug for RateLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.by_channel.iter().map(|(id, (limit, _))| (id, limit.to_string()))).finish()
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// No limiter yet, on `clock`.
    pub fn with_clock(clock: C) -> Self {
        RateLimits { clock, by_channel: HashMap::new() }
    }

    /// Brings the limiters in line with the channels' limits: a limiter for each newly
    /// limited channel, a fresh one for a changed limit, none for a channel that has no
    /// limit any more or is gone. An unchanged limit keeps its limiter and its history.
    pub fn sync(&mut self, limits: impl IntoIterator<Item = (Uuid, Option<RateLimit>)>) {
        let wanted: HashMap<Uuid, RateLimit> = limits.into_iter().filter_map(|(id, l)| Some((id, l?))).collect();
        self.by_channel.retain(|id, (have, _)| wanted.get(id) == Some(have));
        for (id, limit) in wanted {
            self.by_channel
                .entry(id)
                .or_insert_with(|| (limit, RateLimiter::direct_with_clock(quota(limit), self.clock.clone())));
        }
    }

    /// Takes one send for `channel` if its limit allows it now; otherwise how long until
    /// it will (nothing is taken then). A channel without a limit may always send.
    pub fn try_acquire(&self, channel: &Uuid) -> Result<(), Duration> {
        match self.by_channel.get(channel) {
            None => Ok(()),
            Some((_, limiter)) => limiter.check().map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// How many channels are limited.
    pub fn len(&self) -> usize {
        self.by_channel.len()
    }

    /// Whether no channel is limited.
    pub fn is_empty(&self) -> bool {
        self.by_channel.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limit(text: &str) -> Option<RateLimit> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn two_per_second_spaces_sends_half_a_second_apart_with_no_burst() {
        let clock = FakeRelativeClock::default();
        let mut rates = RateLimits::with_clock(clock.clone());
        let id = Uuid::now_v7();
        rates.sync([(id, limit("2/s"))]);
        assert_eq!(rates.try_acquire(&id), Ok(()));
        assert_eq!(rates.try_acquire(&id), Err(Duration::from_millis(500)), "no burst");
        clock.advance(Duration::from_millis(200));
        assert_eq!(rates.try_acquire(&id), Err(Duration::from_millis(300)), "a refusal takes nothing");
        clock.advance(Duration::from_millis(300));
        assert_eq!(rates.try_acquire(&id), Ok(()));
        assert!(rates.try_acquire(&Uuid::now_v7()).is_ok(), "a channel without a limit always sends");
    }

    #[test]
    fn limiters_follow_the_channels_limits() {
        let clock = FakeRelativeClock::default();
        let mut rates = RateLimits::with_clock(clock.clone());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        rates.sync([(a, limit("1/s")), (b, limit("30/m"))]);
        assert_eq!(rates.len(), 2);
        rates.try_acquire(&a).unwrap();
        rates.try_acquire(&b).unwrap();
        assert_eq!(rates.try_acquire(&b), Err(Duration::from_secs(2)));
        rates.sync([(a, limit("1/s")), (b, limit("30/m"))]);
        assert!(rates.try_acquire(&a).is_err(), "an unchanged limit keeps its history");
        rates.sync([(a, limit("10/s")), (b, None)]);
        assert_eq!(rates.try_acquire(&a), Ok(()), "a changed limit starts afresh");
        assert_eq!(rates.try_acquire(&a), Err(Duration::from_millis(100)));
        assert_eq!(rates.try_acquire(&b), Ok(()), "a removed limit removes its limiter");
        rates.sync([]);
        assert!(rates.is_empty());
    }
}
