//! What an attempt's result means (pure): delivered, retry, gone, or blocked — and the
//! metric label of the result. Kept apart from transport and from the backoff policy.

use std::time::Duration;

use certhook_core::event::DeadReason;
use certhook_core::retry::{RetryDecision, RetryPolicy};
use certhook_store::Disposition;

/// What happened on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A response arrived with this status.
    Status(u16),
    /// No complete response within the request timeout.
    Timeout,
    /// No connection (refused, reset, DNS failure, TLS failure).
    ConnectError,
    /// The destination is in a forbidden address range; nothing was sent.
    Blocked,
}

impl AttemptResult {
    /// The `result` label of `certhook_delivery_attempts_total`.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptResult::Status(200..=299) => "2xx",
            AttemptResult::Status(300..=399) => "3xx",
            AttemptResult::Status(400..=499) => "4xx",
            AttemptResult::Status(_) => "5xx",
            AttemptResult::Timeout => "timeout",
            AttemptResult::ConnectError => "connect_error",
            AttemptResult::Blocked => "blocked",
        }
    }

    /// One result of each label, so each series exists from the start.
    pub const EACH: [AttemptResult; 7] = [
        AttemptResult::Status(200),
        AttemptResult::Status(300),
        AttemptResult::Status(400),
        AttemptResult::Status(500),
        AttemptResult::Timeout,
        AttemptResult::ConnectError,
        AttemptResult::Blocked,
    ];
}

/// What the result means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx.
    Delivered,
    /// Worth another attempt; `retry_after` is the receiver's wish (429/503 only).
    Failed {
        /// Delay from a `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// `410 Gone`: the channel is disabled.
    Gone,
    /// A forbidden destination: dead-lettered at once, never retried.
    Blocked,
}

/// Classifies an attempt. 3xx are failures (redirects are not followed); `Retry-After` is
/// honoured only on 429 and 503.
pub fn classify(result: AttemptResult, retry_after: Option<Duration>) -> Verdict {
    match result {
        AttemptResult::Status(200..=299) => Verdict::Delivered,
        AttemptResult::Status(410) => Verdict::Gone,
        AttemptResult::Status(429 | 503) => Verdict::Failed { retry_after },
        AttemptResult::Blocked => Verdict::Blocked,
        _ => Verdict::Failed { retry_after: None },
    }
}

/// Turns a verdict into what happens to the delivery; `attempts` counts this one.
pub fn dispose(verdict: Verdict, policy: &RetryPolicy, attempts: u32, jitter: f64) -> Disposition {
    match verdict {
        Verdict::Delivered => Disposition::Delivered,
        Verdict::Gone => Disposition::Dead { reason: DeadReason::EndpointGone },
        Verdict::Blocked => Disposition::Dead { reason: DeadReason::DestinationBlocked },
        Verdict::Failed { retry_after } => match policy.decide(attempts, retry_after, jitter) {
            RetryDecision::RetryAfter(delay) => Disposition::Retry { delay },
            RetryDecision::GiveUp => Disposition::Dead { reason: DeadReason::MaxAttempts },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_verdicts_and_labels() {
        assert_eq!(classify(AttemptResult::Status(204), None), Verdict::Delivered);
        assert_eq!(classify(AttemptResult::Status(301), None), Verdict::Failed { retry_after: None });
        assert_eq!(classify(AttemptResult::Status(410), None), Verdict::Gone);
        let wish = Some(Duration::from_secs(7));
        assert_eq!(classify(AttemptResult::Status(429), wish), Verdict::Failed { retry_after: wish });
        assert_eq!(classify(AttemptResult::Status(503), wish), Verdict::Failed { retry_after: wish });
        assert_eq!(classify(AttemptResult::Status(500), wish), Verdict::Failed { retry_after: None });
        assert_eq!(classify(AttemptResult::Timeout, None), Verdict::Failed { retry_after: None });
        assert_eq!(classify(AttemptResult::Blocked, None), Verdict::Blocked);
        let labels: Vec<_> = [200, 302, 404, 503].map(|s| AttemptResult::Status(s).label()).into();
        assert_eq!(labels, vec!["2xx", "3xx", "4xx", "5xx"]);
        assert_eq!(AttemptResult::ConnectError.label(), "connect_error");
    }

    #[test]
    fn failures_retry_until_max_attempts_then_dead_letter() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let failed = Verdict::Failed { retry_after: None };
        assert_eq!(dispose(failed, &p, 1, 1.0), Disposition::Retry { delay: Duration::from_secs(5) });
        assert_eq!(dispose(failed, &p, 2, 0.5), Disposition::Retry { delay: Duration::from_secs(10) });
        assert_eq!(dispose(failed, &p, 3, 0.5), Disposition::Dead { reason: DeadReason::MaxAttempts });
        assert_eq!(dispose(Verdict::Gone, &p, 1, 0.5), Disposition::Dead { reason: DeadReason::EndpointGone });
        assert_eq!(dispose(Verdict::Blocked, &p, 1, 0.5), Disposition::Dead { reason: DeadReason::DestinationBlocked });
        let wish = Verdict::Failed { retry_after: Some(Duration::from_secs(9)) };
        assert_eq!(dispose(wish, &p, 1, 0.0), Disposition::Retry { delay: Duration::from_secs(9) });
    }
}
