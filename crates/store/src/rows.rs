//! Rows as domain values: the decoding every concern shares, and the time and duration
//! conversions between the database's unix milliseconds and Rust's types.

use std::time::Duration;

use certhook_core::destination::redact_url;
use certhook_core::duration::AlertBefore;
use certhook_core::event::{AlertType, Certificate, ChannelKind, ChannelState, DeliveryState};
use certhook_core::filter::{CertificateFilter, NamePattern};
use certhook_core::rate_limit::{RateLimit, RateLimitError};
use certhook_core::tls_pem::summarize;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::driver::Record;
use crate::error::{Result, StoreError};
use crate::model::*;

pub(crate) fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn opt_millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(millis)
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn uuid_col(row: &impl Record, col: &str) -> Result<Uuid> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt(format!("{col} '{text}' is not a UUID")))
}

pub(crate) fn opt_uuid_col(row: &impl Record, col: &str) -> Result<Option<Uuid>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| Uuid::parse_str(&t).map_err(|_| StoreError::Corrupt(format!("{col} '{t}' is not a UUID")))).transpose()
}

pub(crate) fn parse_col<T: std::str::FromStr>(row: &impl Record, col: &str) -> Result<T> {
    let text: String = row.try_get(col)?;
    text.parse().map_err(|_| StoreError::Corrupt(format!("{col} '{text}' is not a known value")))
}

pub(crate) fn application_from(row: &impl Record) -> Result<Application> {
    Ok(Application {
        id: uuid_col(row, "id")?,
        name: row.try_get("name")?,
        created_at: millis(row.try_get("created_at")?),
    })
}

pub(crate) fn alert_from(row: &impl Record) -> Result<Alert> {
    let before: Option<String> = row.try_get("alert_before")?;
    // An alert an older version created while both ran (a rolling upgrade) has no `types`.
    let types_col: String =
        Some(row.try_get::<String, _>("types")?).filter(|t| !t.is_empty()).map_or_else(|| row.try_get("type"), Ok)?;
    let types = types_col
        .split(',')
        .map(|t| {
            t.parse::<AlertType>().map_err(|_| StoreError::Corrupt(format!("types '{types_col}' is not a type list")))
        })
        .collect::<Result<Vec<_>>>()?;
    let Some(&alert_type) = types.first() else {
        return Err(StoreError::Corrupt("types is empty".into()));
    };
    let profiles: Vec<String> = json_list(row, "profiles")?;
    let name_patterns = json_list::<String>(row, "name_patterns")?
        .iter()
        .map(|p| p.parse::<NamePattern>().map_err(|e| StoreError::Corrupt(format!("name_patterns: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Alert {
        id: uuid_col(row, "id")?,
        application_id: uuid_col(row, "application_id")?,
        alert_type,
        types,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        alert_before: before
            .map(|b| b.parse::<AlertBefore>().map_err(|e| StoreError::Corrupt(format!("alert_before: {e}"))))
            .transpose()?,
        filter: CertificateFilter { profiles, name_patterns },
    })
}

/// A column holding a JSON array, or NULL for an empty one.
fn json_list<T: serde::de::DeserializeOwned>(row: &impl Record, col: &str) -> Result<Vec<T>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{col}: {e}"))))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// A list as its JSON array column stores it: NULL when empty.
pub(crate) fn json_list_col<T: serde::Serialize>(items: &[T]) -> Option<String> {
    (!items.is_empty()).then(|| serde_json::to_string(items).expect("strings serialize"))
}

pub(crate) fn inventory_from(row: &impl Record) -> Result<InventoryCertificate> {
    let c = certificate_from(row)?;
    Ok(InventoryCertificate {
        application_id: uuid_col(row, "application_id")?,
        id: c.id,
        serial_number: c.serial_number,
        common_name: c.common_name,
        san: c.san,
        profile_name: c.profile_name,
        not_before: c.not_before,
        not_after: c.not_after,
        status: parse_col(row, "status")?,
        revoked_at: opt_millis(row.try_get("revoked_at")?),
        revocation_reason: row.try_get("revocation_reason")?,
        updated_at: millis(row.try_get("updated_at")?),
    })
}

pub(crate) fn event_from(row: &impl Record) -> Result<EventRecord> {
    // Shown as stored: a refused row's certificate may not be JSON at all.
    let as_json = |text: Option<String>| text.map(|t| serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t)));
    let fanned_out_at = opt_millis(row.try_get("fanned_out_at")?);
    let error: Option<String> = row.try_get("error")?;
    let state = match (fanned_out_at, &error) {
        (_, Some(_)) => EventState::Refused,
        (Some(_), None) => EventState::FannedOut,
        (None, None) => EventState::Waiting,
    };
    Ok(EventRecord {
        id: row.try_get("id")?,
        application_id: row.try_get("application_id")?,
        event_type: row.try_get("type")?,
        idempotency_key: row.try_get("idempotency_key")?,
        alert_id: row.try_get("alert_id")?,
        certificate: as_json(row.try_get("certificate")?),
        certificates: as_json(row.try_get("certificates")?),
        occurred_at: millis(row.try_get("occurred_at")?),
        created_at: millis(row.try_get("created_at")?),
        fanned_out_at,
        state,
        error,
    })
}

pub(crate) fn channel_from(row: &impl Record) -> Result<Channel> {
    let secret: Option<String> = row.try_get("secret")?;
    let kind = parse_col::<ChannelKind>(row, "kind")?;
    Ok(Channel {
        id: uuid_col(row, "id")?,
        alert_id: uuid_col(row, "alert_id")?,
        kind,
        url: row.try_get::<Option<String>, _>("url")?.map(|u| redact_url(&u, kind == ChannelKind::Slack)),
        state: parse_col::<ChannelState>(row, "state")?,
        content_type: row.try_get("content_type")?,
        has_secret: secret.is_some(),
        rate_limit: rate_limit_col(row)?,
        tls: tls_summary(row.try_get("ca_pem")?, row.try_get("client_cert_pem")?, row.try_get("client_key")?),
        last_success_at: opt_millis(row.try_get("last_success_at")?),
        last_failure_at: opt_millis(row.try_get("last_failure_at")?),
        failing_since: opt_millis(row.try_get("failing_since")?),
        created_at: millis(row.try_get("created_at")?),
    })
}

pub(crate) fn rate_limit_col(row: &impl Record) -> Result<Option<RateLimit>> {
    let text: Option<String> = row.try_get("rate_limit")?;
    text.map(|t| t.parse().map_err(|e: RateLimitError| StoreError::Corrupt(format!("rate_limit: {e}")))).transpose()
}

/// What a channel's stored TLS settings are shown as; the key's value is only looked at
/// to say whether there is one.
pub(crate) fn tls_summary(ca: Option<String>, cert: Option<String>, key: Option<String>) -> Option<ChannelTlsSummary> {
    if ca.is_none() && cert.is_none() && key.is_none() {
        return None;
    }
    Some(ChannelTlsSummary {
        ca_certificates: ca.as_deref().and_then(summarize).unwrap_or_default(),
        client_certificate: cert.as_deref().and_then(summarize).and_then(|chain| chain.into_iter().next()),
        has_client_key: key.is_some(),
    })
}

pub(crate) fn delivery_from(row: &impl Record) -> Result<Delivery> {
    let state: DeliveryState = parse_col(row, "state")?;
    let next: i64 = row.try_get("next_attempt_at")?;
    let waiting = matches!(state, DeliveryState::Pending | DeliveryState::Retrying);
    Ok(Delivery {
        id: uuid_col(row, "id")?,
        event_id: opt_uuid_col(row, "event_id")?,
        channel_id: uuid_col(row, "channel_id")?,
        cloud_event_id: uuid_col(row, "message_id")?,
        delivery_type: row.try_get("type")?,
        state,
        attempt_count: row.try_get::<i64, _>("attempt_count")? as u32,
        next_attempt_at: waiting.then(|| millis(next)),
        last_status_code: row.try_get::<Option<i64>, _>("last_status_code")?.map(|c| c as u16),
        last_error: row.try_get("last_error")?,
        reason: row.try_get("reason")?,
        created_at: millis(row.try_get("created_at")?),
        delivered_at: opt_millis(row.try_get("delivered_at")?),
        dead_at: opt_millis(row.try_get("dead_at")?),
    })
}

pub(crate) fn certificate_from(row: &impl Record) -> Result<Certificate> {
    let san: String = row.try_get("san")?;
    Ok(Certificate {
        id: row.try_get("id")?,
        serial_number: row.try_get("serial_number")?,
        common_name: row.try_get("common_name")?,
        san: serde_json::from_str(&san).map_err(|e| StoreError::Corrupt(format!("san: {e}")))?,
        profile_name: row.try_get("profile_name")?,
        not_before: millis(row.try_get("not_before")?),
        not_after: millis(row.try_get("not_after")?),
        revoked_at: None,
        revocation_reason: None,
    })
}
