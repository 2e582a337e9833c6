//! Producer input: JSON events checked field by field into [`NewEvent`]s (SPEC §5).
//!
//! Every refusal names the field (`certificate.notAfter`) and, inside a batch, the event's
//! position (`events[3]`), so a producer can fix its input without guessing.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::{AlertType, Certificate, NewEvent, RevocationReason};
use crate::time::{parse_rfc3339, truncate_millis};

/// Longest accepted `idempotencyKey`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Why producer input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required field is absent or `null`.
    #[error("{0}: missing required field")]
    MissingField(String),
    /// A field has the wrong JSON type or a value out of its domain.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field's path, e.g. `certificate.notAfter`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A member this format does not have (often a typo of one it does).
    #[error("{0}: unknown field")]
    UnknownField(String),
    /// One event's JSON is larger than `max_event_bytes`.
    #[error("event size {size} bytes exceeds max_event_bytes {max}")]
    TooLarge {
        /// The event's size in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The input is not JSON at all.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The input holds no event.
    #[error("no event in input")]
    Empty,
    /// One event of a batch was refused, which refuses the whole batch.
    #[error("events[{index}]: {source}")]
    InBatch {
        /// The event's position in the batch, from 0.
        index: usize,
        /// What was wrong with it.
        source: Box<ValidationError>,
    },
}

impl ValidationError {
    /// The path of the offending field, when there is one (`events[2].certificate.notAfter`).
    pub fn field(&self) -> Option<String> {
        match self {
            ValidationError::MissingField(f) | ValidationError::UnknownField(f) => Some(f.clone()),
            ValidationError::InvalidField { field, .. } => Some(field.clone()),
            ValidationError::InBatch { index, source } => Some(match source.field() {
                Some(f) => format!("events[{index}].{f}"),
                None => format!("events[{index}]"),
            }),
            _ => None,
        }
    }

    fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ValidationError::InvalidField { field: field.to_string(), reason: reason.into() }
    }

    fn in_batch(self, index: usize) -> Self {
        ValidationError::InBatch { index, source: Box::new(self) }
    }
}

/// The members of an event.
pub const EVENT_FIELDS: &[&str] = &["type", "applicationId", "idempotencyKey", "certificate"];
/// The members of an event's `certificate`.
pub const CERTIFICATE_FIELDS: &[&str] = &[
    "id",
    "serialNumber",
    "commonName",
    "san",
    "profileName",
    "notBefore",
    "notAfter",
    "revokedAt",
    "revocationReason",
];

/// Parses one, an array of, or newline-delimited JSON events; all-or-nothing.
///
/// `now` fills `revokedAt` when a revocation omits it.
pub fn parse_events(
    input: &[u8],
    max_event_bytes: usize,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, ValidationError> {
    let text = std::str::from_utf8(input).map_err(|e| ValidationError::Json(e.to_string()))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(ValidationError::Empty);
    }
    if trimmed.starts_with('[') {
        let items: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(trimmed).map_err(|e| ValidationError::Json(e.to_string()))?;
        return collect_batch(items.iter().map(|raw| raw.get()), max_event_bytes, now);
    }
    // One object, or NDJSON: a stream of objects separated by whitespace.
    let mut pieces = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<&serde_json::value::RawValue>();
    for raw in stream {
        let raw = raw.map_err(|e| match pieces.len() {
            0 => ValidationError::Json(e.to_string()),
            n => ValidationError::Json(e.to_string()).in_batch(n),
        })?;
        pieces.push(raw.get());
    }
    if pieces.len() == 1 {
        return Ok(vec![parse_event_str(pieces[0], max_event_bytes, now)?]);
    }
    collect_batch(pieces.into_iter(), max_event_bytes, now)
}

fn collect_batch<'a>(
    items: impl Iterator<Item = &'a str>,
    max_event_bytes: usize,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, ValidationError> {
    let events = items
        .enumerate()
        .map(|(i, raw)| parse_event_str(raw, max_event_bytes, now).map_err(|e| e.in_batch(i)))
        .collect::<Result<Vec<_>, _>>()?;
    if events.is_empty() {
        return Err(ValidationError::Empty);
    }
    Ok(events)
}

/// Parses one event from its JSON text, checking its size first.
pub fn parse_event_str(raw: &str, max_event_bytes: usize, now: DateTime<Utc>) -> Result<NewEvent, ValidationError> {
    if raw.len() > max_event_bytes {
        return Err(ValidationError::TooLarge { size: raw.len(), max: max_event_bytes });
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| ValidationError::Json(e.to_string()))?;
    parse_event(&value, now)
}

/// Checks one event already parsed as JSON (its size is the caller's to check).
pub fn parse_event(value: &Value, now: DateTime<Utc>) -> Result<NewEvent, ValidationError> {
    let obj = value.as_object().ok_or_else(|| ValidationError::invalid("event", "must be a JSON object"))?;
    reject_unknown(obj, EVENT_FIELDS, "")?;

    let type_text = required_str(obj, "type", "type")?;
    let event_type: AlertType =
        type_text.parse().map_err(|e: crate::event::UnknownValue| ValidationError::invalid("type", e.to_string()))?;
    let app_text = required_str(obj, "applicationId", "applicationId")?;
    let application_id = Uuid::parse_str(app_text)
        .map_err(|_| ValidationError::invalid("applicationId", format!("'{app_text}' is not a UUID")))?;
    let idempotency_key = optional_str(obj, "idempotencyKey", "idempotencyKey")?;
    if let Some(key) = &idempotency_key
        && (key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_LEN)
    {
        return Err(ValidationError::invalid(
            "idempotencyKey",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
        ));
    }
    let cert = match obj.get("certificate") {
        None | Some(Value::Null) => return Err(ValidationError::MissingField("certificate".into())),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(ValidationError::invalid("certificate", "must be a JSON object")),
    };
    let certificate = parse_certificate(cert, event_type, now)?;
    Ok(NewEvent { event_type, application_id, idempotency_key, certificate })
}

fn parse_certificate(
    obj: &Map<String, Value>,
    event_type: AlertType,
    now: DateTime<Utc>,
) -> Result<Certificate, ValidationError> {
    reject_unknown(obj, CERTIFICATE_FIELDS, "certificate.")?;
    let serial_number =
        non_empty(required_str(obj, "serialNumber", "certificate.serialNumber")?, "certificate.serialNumber")?;
    let common_name = non_empty(required_str(obj, "commonName", "certificate.commonName")?, "certificate.commonName")?;
    let id = match optional_str(obj, "id", "certificate.id")? {
        Some(id) => non_empty(&id, "certificate.id")?,
        None => serial_number.clone(),
    };
    let san = match obj.get("san") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_str() {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(ValidationError::invalid(&format!("certificate.san[{i}]"), "must be a non-empty string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ValidationError::invalid("certificate.san", "must be an array of strings")),
    };
    let profile_name = optional_str(obj, "profileName", "certificate.profileName")?;
    let not_before = required_time(obj, "notBefore", "certificate.notBefore")?;
    let not_after = required_time(obj, "notAfter", "certificate.notAfter")?;
    if not_after <= not_before {
        return Err(ValidationError::invalid("certificate.notAfter", "must be after certificate.notBefore"));
    }
    let revoked_at = optional_time(obj, "revokedAt", "certificate.revokedAt")?;
    let reason = optional_str(obj, "revocationReason", "certificate.revocationReason")?
        .map(|r| {
            r.parse::<RevocationReason>()
                .map_err(|e| ValidationError::invalid("certificate.revocationReason", e.to_string()))
        })
        .transpose()?;
    let (revoked_at, revocation_reason) = if event_type == AlertType::Revocation {
        (Some(revoked_at.unwrap_or(truncate_millis(now))), Some(reason.unwrap_or(RevocationReason::Unspecified)))
    } else {
        if revoked_at.is_some() {
            return Err(ValidationError::invalid("certificate.revokedAt", "only allowed on revocation events"));
        }
        if reason.is_some() {
            return Err(ValidationError::invalid("certificate.revocationReason", "only allowed on revocation events"));
        }
        (None, None)
    };
    Ok(Certificate {
        id,
        serial_number,
        common_name,
        san,
        profile_name,
        not_before,
        not_after,
        revoked_at,
        revocation_reason,
    })
}

fn reject_unknown(obj: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), ValidationError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ValidationError::UnknownField(format!("{prefix}{k}"))),
        None => Ok(()),
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a str, ValidationError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(ValidationError::MissingField(field.to_string())),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ValidationError::invalid(field, "must be a string")),
    }
}

fn optional_str(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, ValidationError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ValidationError::invalid(field, "must be a string or null")),
    }
}

fn non_empty(s: &str, field: &str) -> Result<String, ValidationError> {
    if s.trim().is_empty() {
        return Err(ValidationError::invalid(field, "must not be empty"));
    }
    Ok(s.to_string())
}

fn parse_time(s: &str, field: &str) -> Result<DateTime<Utc>, ValidationError> {
    parse_rfc3339(s).map(truncate_millis).map_err(|_| {
        ValidationError::invalid(field, format!("'{s}' is not an RFC 3339 time such as 2024-01-15T10:30:00Z"))
    })
}

fn required_time(obj: &Map<String, Value>, key: &str, field: &str) -> Result<DateTime<Utc>, ValidationError> {
    parse_time(required_str(obj, key, field)?, field)
}

fn optional_time(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Option<DateTime<Utc>>, ValidationError> {
    optional_str(obj, key, field)?.map(|s| parse_time(&s, field)).transpose()
}

#[cfg(test)]
mod tests;
