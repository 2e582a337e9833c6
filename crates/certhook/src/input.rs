//! Ids and times as operators type them, parsed once for the command line and the API;
//! each caller wraps the message in its own error (exit 2, or HTTP 400 naming the field).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A UUID, surrounding spaces allowed.
pub fn uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim()).map_err(|_| format!("'{text}' is not a UUID"))
}

/// An RFC 3339 time.
pub fn time(text: &str) -> Result<DateTime<Utc>, String> {
    certhook_core::time::parse_rfc3339(text.trim())
        .map_err(|_| format!("'{text}' is not an RFC 3339 time such as 2024-01-15T10:30:00Z"))
}

/// A delivery type to filter by: one of the types deliveries are stored with.
pub fn delivery_type(text: &str) -> Result<String, String> {
    text.trim().parse::<certhook_core::event::DeliveryType>().map(|t| t.as_str().to_string()).map_err(|e| e.to_string())
}

/// Most rows one page of a list holds.
pub const MAX_PAGE: u32 = 1000;

/// How many rows a page holds: 1 to [`MAX_PAGE`].
pub fn page_limit(limit: u32) -> Result<u32, String> {
    if (1..=MAX_PAGE).contains(&limit) { Ok(limit) } else { Err(format!("{limit} is not between 1 and {MAX_PAGE}")) }
}

/// A certificate status to filter by.
pub fn certificate_status(text: &str) -> Result<certhook_core::event::CertificateStatus, String> {
    text.trim().parse().map_err(|e: certhook_core::event::UnknownValue| e.to_string())
}

/// A window such as `30d` (a positive integer and one of m, h, d, w).
pub fn window(text: &str) -> Result<std::time::Duration, String> {
    let w: certhook_core::duration::AlertBefore = text.trim().parse().map_err(|e| format!("{e}"))?;
    w.as_duration().to_std().map_err(|_| format!("'{text}' is too long"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_and_times_parse_or_say_what_was_wrong() {
        assert!(super::uuid(" 0190a5b4-0000-7000-8000-000000000001 ").is_ok());
        assert_eq!(super::uuid("x").unwrap_err(), "'x' is not a UUID");
        assert!(super::time("2024-01-15T10:30:00Z").is_ok());
        assert!(super::time("yesterday").unwrap_err().contains("RFC 3339"));
        assert_eq!(super::delivery_type("expiration").unwrap(), "expiration");
        assert!(super::delivery_type("expirations").unwrap_err().contains("webhook.verification"));
    }

    #[test]
    fn pages_statuses_and_windows_are_checked() {
        assert_eq!(super::page_limit(1), Ok(1));
        assert_eq!(super::page_limit(1000), Ok(1000));
        assert!(super::page_limit(0).unwrap_err().contains("between 1 and 1000"));
        assert!(super::page_limit(1001).is_err());
        assert!(super::certificate_status("revoked").is_ok());
        assert!(super::certificate_status("gone").unwrap_err().contains("active"));
        assert_eq!(super::window("2d").unwrap(), std::time::Duration::from_secs(2 * 86_400));
        assert!(super::window("2s").is_err());
    }
}
