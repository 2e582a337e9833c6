//! Per-channel send rate limits: `N/s` or `N/m`, as operators write them.
//!
//! A limit spaces requests evenly (one every second / N, or minute / N) with no burst:
//! receivers that publish a limit (Slack: about one message per second per webhook)
//! count requests in short windows, so two requests back to back can already be one too
//! many.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// The unit a limit counts requests in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Per {
    /// `N/s`.
    Second,
    /// `N/m`.
    Minute,
}

/// At most `count` requests per second or per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Requests per unit.
    pub count: NonZeroU32,
    /// The unit.
    pub per: Per,
}

/// What Slack channels get when no limit is given: Slack allows about one message per
/// second per incoming webhook and answers bursts with 429.
pub const SLACK_DEFAULT: RateLimit = RateLimit { count: NonZeroU32::MIN, per: Per::Second };

/// Largest count accepted: beyond it the spacing is below a millisecond, which is no limit.
pub const MAX_COUNT: u32 = 1000;

/// Why a rate limit was refused (the caller names the flag or field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a rate limit: {reason} (write N/s or N/m, e.g. 2/s or 30/m, with N from 1 to {MAX_COUNT})")]
pub struct RateLimitError {
    /// What was given (cut to 64 characters).
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl RateLimit {
    /// The time between two requests.
    pub fn interval(&self) -> Duration {
        let unit = match self.per {
            Per::Second => Duration::from_secs(1),
            Per::Minute => Duration::from_secs(60),
        };
        unit / self.count.get()
    }
}

impl FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| RateLimitError { input: s.chars().take(64).collect(), reason };
        let (count, unit) = s.trim().split_once('/').ok_or_else(|| refuse("no '/'"))?;
        let per = match unit.trim() {
            "s" => Per::Second,
            "m" => Per::Minute,
            _ => return Err(refuse("the unit must be s or m")),
        };
        let count: u32 = count.trim().parse().map_err(|_| refuse("the count must be a whole number"))?;
        if count > MAX_COUNT {
            return Err(refuse("the count is too large"));
        }
        let count = NonZeroU32::new(count).ok_or_else(|| refuse("the count must be at least 1"))?;
        Ok(RateLimit { count, per })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per {
            Per::Second => "s",
            Per::Minute => "m",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl serde::Serialize for RateLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_and_per_minute_parse_and_print_back() {
        for text in ["2/s", "1/s", "30/m", "1000/s"] {
            assert_eq!(text.parse::<RateLimit>().unwrap().to_string(), text);
        }
        assert_eq!(" 5 / m ".parse::<RateLimit>().unwrap().to_string(), "5/m");
        assert_eq!(SLACK_DEFAULT.to_string(), "1/s");
    }

    #[test]
    fn the_interval_spaces_requests_evenly() {
        assert_eq!("2/s".parse::<RateLimit>().unwrap().interval(), Duration::from_millis(500));
        assert_eq!("30/m".parse::<RateLimit>().unwrap().interval(), Duration::from_secs(2));
    }

    #[test]
    fn zero_words_other_units_and_huge_counts_are_refused() {
        for bad in ["0/s", "abc", "5/h", "5", "/s", "-1/s", "1.5/s", "1001/s", "2/sec", ""] {
            let e = bad.parse::<RateLimit>().unwrap_err();
            assert!(e.to_string().contains("N/s or N/m"), "{bad}: {e}");
        }
    }
}
