//! Durations as people write them: `alertBefore` windows and configuration values.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest `alertBefore` window accepted: ten years, far past any certificate lifetime.
const MAX_ALERT_BEFORE_MINUTES: u64 = 3650 * 24 * 60;

/// How long before `notAfter` an expiration alert fires: a positive integer and one unit
/// of `m`, `h`, `d` or `w` (SPEC §1), kept as written so it renders back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertBefore {
    amount: u64,
    unit: char,
}

/// Why an `alertBefore` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertBeforeError {
    /// Not `<positive integer><m|h|d|w>`.
    #[error("'{0}' is not a window such as 30d, 12h, 2w or 90m (a positive integer and one unit of m, h, d, w)")]
    Malformed(String),
    /// Longer than ten years.
    #[error("'{0}' is longer than the maximum of 3650d")]
    TooLong(String),
}

impl AlertBefore {
    /// The window as a duration.
    pub fn as_duration(&self) -> chrono::Duration {
        chrono::Duration::minutes((self.amount * unit_minutes(self.unit)) as i64)
    }
}

fn unit_minutes(unit: char) -> u64 {
    match unit {
        'm' => 1,
        'h' => 60,
        'd' => 24 * 60,
        _ => 7 * 24 * 60,
    }
}

impl FromStr for AlertBefore {
    type Err = AlertBeforeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || AlertBeforeError::Malformed(s.to_string());
        let unit = s.chars().last().ok_or_else(malformed)?;
        if !matches!(unit, 'm' | 'h' | 'd' | 'w') {
            return Err(malformed());
        }
        let digits = &s[..s.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let amount: u64 = digits.parse().map_err(|_| AlertBeforeError::TooLong(s.into()))?;
        if amount == 0 {
            return Err(malformed());
        }
        if amount.saturating_mul(unit_minutes(unit)) > MAX_ALERT_BEFORE_MINUTES {
            return Err(AlertBeforeError::TooLong(s.to_string()));
        }
        Ok(AlertBefore { amount, unit })
    }
}

impl fmt::Display for AlertBefore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit)
    }
}

impl Serialize for AlertBefore {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AlertBefore {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for AlertBefore {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[1-9][0-9]*[mhdw]$"))
            .examples(["30d"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for AlertBefore {}

/// Parses a configuration duration such as `250ms`, `5s`, `30m`, `6h` or `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration such as 250ms, 5s, 30m, 6h or 7d ({e})"))
}

/// A duration in one unit, the largest of days and hours that it is a whole number of,
/// else seconds, else milliseconds (`7d`, `6h`, `90s`, `250ms`); finer ones as `humantime`
/// writes them.
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(u128, &str); 2] = [(86_400_000, "d"), (3_600_000, "h")];
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return humantime::format_duration(d).to_string();
    }
    for (unit, suffix) in UNITS {
        if ms >= unit && ms.is_multiple_of(unit) {
            return format!("{}{suffix}", ms / unit);
        }
    }
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

/// Serde adapter for configuration durations written as strings.
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a duration as the configuration is written (`7d`, `6h`, `60s`, `250ms`), so
    /// `config check` reads like the example file; what reads back (see [`deserialize`]).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::format_duration(*d))
    }

    /// Reads `250ms`, `5s`, `7d`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_the_configuration_writes_them_and_read_back() {
        for text in ["7d", "5d", "6h", "1h", "60s", "15s", "0s", "250ms", "90s", "1500ms"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(1800)), "1800s");
        let fine = Duration::from_micros(1500);
        assert_eq!(parse_duration(&format_duration(fine)).unwrap(), fine);
    }

    #[test]
    fn alert_before_accepts_each_unit_and_renders_as_written() {
        for (s, minutes) in [("30d", 30 * 1440), ("12h", 720), ("2w", 2 * 7 * 1440), ("90m", 90)] {
            let a: AlertBefore = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
            assert_eq!(a.as_duration(), chrono::Duration::minutes(minutes));
        }
    }

    #[test]
    fn alert_before_refuses_everything_else() {
        for s in ["", "d", "0d", "-1d", "1.5d", "30", "30s", "30D", "30 d", " 30d", "1d2h", "99999999999999999999d"] {
            assert!(s.parse::<AlertBefore>().is_err(), "{s:?} was accepted");
        }
        assert!(matches!("3651d".parse::<AlertBefore>(), Err(AlertBeforeError::TooLong(_))));
        assert!("3650d".parse::<AlertBefore>().is_ok());
    }

    #[test]
    fn config_durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
        let e = parse_duration("soon").unwrap_err();
        assert!(e.contains("'soon'"), "{e}");
    }
}
