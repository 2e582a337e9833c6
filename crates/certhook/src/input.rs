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
}
