//! Times on the wire: RFC 3339 in, RFC 3339 UTC with exactly three fractional digits out.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats an instant as the wire does: `2024-01-15T10:30:00.000Z`.
pub fn format_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 time with any offset into UTC.
pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// Truncates an instant to whole milliseconds, the precision the wire and the store keep.
pub fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Serde adapter that writes a time in the wire format.
pub mod serde_millis {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Serializes `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_millis(*t))
    }
}

/// Serde adapter that writes an optional time in the wire format (or `null`).
pub mod serde_millis_opt {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Serializes `Some(t)` as `YYYY-MM-DDTHH:MM:SS.mmmZ` and `None` as `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_millis(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_exactly_three_fractional_digits_in_utc() {
        let t = parse_rfc3339("2024-01-15T12:30:00+02:00").unwrap();
        assert_eq!(format_millis(t), "2024-01-15T10:30:00.000Z");
        let t = parse_rfc3339("2024-01-15T10:30:00.123456789Z").unwrap();
        assert_eq!(format_millis(t), "2024-01-15T10:30:00.123Z");
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert!(parse_rfc3339("2024-01-15").is_err());
        assert!(parse_rfc3339("2024-01-15 10:30:00").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
