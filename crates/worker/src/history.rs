//! The last hour of attempts, minute by minute: what this process sent and how much of it
//! failed, for the console's chart. Kept in memory (a few dozen numbers), so counting an
//! attempt costs no database write; each process shows what it sent itself.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Minutes kept.
pub const MINUTES: usize = 60;

/// One minute's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Minute {
    /// Its start, in minutes since the Unix epoch.
    pub minute: i64,
    /// Attempts answered 2xx.
    pub ok: u64,
    /// Every other attempt (an error status, a timeout, no connection, blocked).
    pub failed: u64,
}

/// The attempts of the last [`MINUTES`] minutes.
#[derive(Debug, Default)]
pub struct Recent {
    minutes: Mutex<VecDeque<Minute>>,
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl Recent {
    /// Counts one attempt made at `at`.
    pub fn record(&self, at: DateTime<Utc>, ok: bool) {
        let minute = minute_of(at);
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        let index = match minutes.iter().rposition(|m| m.minute == minute) {
            Some(i) => i,
            None => {
                // Attempts arrive in about the order they were made; one that started
                // before the newest minute kept is counted there rather than reordered.
                if minutes.back().is_some_and(|m| m.minute > minute) {
                    minutes.len() - 1
                } else {
                    minutes.push_back(Minute { minute, ..Minute::default() });
                    while minutes.len() > MINUTES {
                        minutes.pop_front();
                    }
                    minutes.len() - 1
                }
            }
        };
        let m = &mut minutes[index];
        if ok {
            m.ok += 1;
        } else {
            m.failed += 1;
        }
    }

    /// The last hour up to `now`, oldest first: exactly [`MINUTES`] minutes, quiet ones at 0.
    pub fn last_hour(&self, now: DateTime<Utc>) -> Vec<Minute> {
        let end = minute_of(now);
        let minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        (end - MINUTES as i64 + 1..=end)
            .map(|minute| {
                minutes.iter().find(|m| m.minute == minute).copied().unwrap_or(Minute { minute, ok: 0, failed: 0 })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: i64, second: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(minute * 60 + i64::from(second), 0).unwrap()
    }

    #[test]
    fn attempts_count_in_their_minute_and_quiet_minutes_are_zero() {
        let r = Recent::default();
        r.record(at(1000, 1), true);
        r.record(at(1000, 59), false);
        r.record(at(1002, 0), true);
        let hour = r.last_hour(at(1002, 30));
        assert_eq!(hour.len(), MINUTES);
        assert_eq!(hour[MINUTES - 1], Minute { minute: 1002, ok: 1, failed: 0 });
        assert_eq!(hour[MINUTES - 2], Minute { minute: 1001, ok: 0, failed: 0 });
        assert_eq!(hour[MINUTES - 3], Minute { minute: 1000, ok: 1, failed: 1 });
    }

    #[test]
    fn only_the_last_hour_is_kept() {
        let r = Recent::default();
        for m in 0..200 {
            r.record(at(m, 0), true);
        }
        assert_eq!(r.minutes.lock().unwrap().len(), MINUTES);
        let hour = r.last_hour(at(199, 0));
        assert_eq!(hour[0].minute, 140);
        assert!(hour.iter().all(|m| m.ok == 1));
        assert!(r.last_hour(at(400, 0)).iter().all(|m| m.ok == 0), "an hour later nothing is left");
    }

    #[test]
    fn a_late_attempt_counts_in_the_newest_minute() {
        let r = Recent::default();
        r.record(at(10, 0), true);
        r.record(at(9, 59), false);
        assert_eq!(r.last_hour(at(10, 1))[MINUTES - 1], Minute { minute: 10, ok: 1, failed: 1 });
    }
}
