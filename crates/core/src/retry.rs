//! The durable retry schedule (SPEC §3): exponential backoff with full jitter, capped,
//! and `Retry-After` honoured within the cap. A pure function of the policy, the attempt
//! number and a jitter draw, so the schedule is testable without sleeping.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// d_1, the ceiling of the first retry's delay.
    pub initial_backoff: Duration,
    /// Growth of the ceiling per retry.
    pub backoff_factor: f64,
    /// Upper bound of every delay, `Retry-After` included.
    pub max_backoff: Duration,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(5),
            backoff_factor: 4.0,
            max_backoff: Duration::from_secs(6 * 3600),
            max_attempts: 10,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// `max_attempts` reached: dead-letter.
    GiveUp,
}

impl RetryPolicy {
    /// d_n = min(max_backoff, initial_backoff × factor^(n−1)), the ceiling of retry `n` (from 1).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(i32::MAX as u32) as i32;
        let secs = self.initial_backoff.as_secs_f64() * self.backoff_factor.powi(exp);
        let max = self.max_backoff.as_secs_f64();
        if !secs.is_finite() || secs >= max { self.max_backoff } else { Duration::from_secs_f64(secs) }
    }

    /// Decides after the `attempts`-th failed attempt (from 1).
    ///
    /// `jitter` is a uniform draw from [0, 1]; `retry_after` is the receiver's own wish
    /// (from a 429 or 503), which replaces the drawn delay but not the cap.
    pub fn decide(&self, attempts: u32, retry_after: Option<Duration>, jitter: f64) -> RetryDecision {
        if attempts >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let delay = match retry_after {
            Some(wish) => wish.min(self.max_backoff),
            None => self.ceiling(attempts).mul_f64(jitter.clamp(0.0, 1.0)),
        };
        RetryDecision::RetryAfter(delay)
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date in any of the three forms
/// HTTP allows (judged against `now`).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ceilings_follow_the_spec_table() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=9).map(|n| p.ceiling(n).as_secs()).collect();
        assert_eq!(secs, vec![5, 20, 80, 320, 1280, 5120, 20480, 21600, 21600]);
        assert_eq!(p.ceiling(1000), p.max_backoff);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(1, None, 0.0), RetryDecision::RetryAfter(Duration::ZERO));
        assert_eq!(p.decide(1, None, 1.0), RetryDecision::RetryAfter(Duration::from_secs(5)));
        assert_eq!(p.decide(3, None, 0.5), RetryDecision::RetryAfter(Duration::from_secs(40)));
    }

    #[test]
    fn gives_up_after_max_attempts_in_all() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        assert!(matches!(p.decide(2, None, 0.5), RetryDecision::RetryAfter(_)));
        assert_eq!(p.decide(3, None, 0.5), RetryDecision::GiveUp);
        assert_eq!(p.decide(3, Some(Duration::from_secs(1)), 0.5), RetryDecision::GiveUp);
    }

    #[test]
    fn retry_after_replaces_the_draw_within_the_cap() {
        let p = RetryPolicy { max_backoff: Duration::from_secs(60), ..RetryPolicy::default() };
        assert_eq!(p.decide(1, Some(Duration::from_secs(30)), 0.0), RetryDecision::RetryAfter(Duration::from_secs(30)));
        assert_eq!(
            p.decide(1, Some(Duration::from_secs(3600)), 0.0),
            RetryDecision::RetryAfter(Duration::from_secs(60))
        );
    }

    #[test]
    fn parses_retry_after_seconds_and_http_dates() {
        let now = crate::time::parse_rfc3339("2015-10-21T07:27:00Z").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed Oct 21 07:30:00 2015", now), Some(Duration::from_secs(180)));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
