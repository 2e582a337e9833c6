//! PagerDuty Events API v2: one `trigger` per certificate, with a `dedup_key` stable per
//! alert and certificate, severity by days left (revocation: critical), and the CloudEvent
//! in `custom_details`. A renewal resolves the expiration incident of its certificate.

use certhook_core::event::AlertType;
use serde_json::{Value, json};

use super::{EventKind, EventView};

/// Severity of an expiration by whole days left.
pub fn severity_for_days(days: i64) -> &'static str {
    match days {
        d if d <= 7 => "critical",
        d if d <= 14 => "error",
        d if d <= 30 => "warning",
        _ => "info",
    }
}

/// The Events API's limits: `dedup_key` and `payload.source` 255 characters, `summary` 1,024.
const MAX_KEY: usize = 255;
const MAX_SOURCE: usize = 255;
const MAX_SUMMARY: usize = 1024;

/// The `dedup_key` of an alert's incident about a certificate. An expiration incident's
/// key is `certhook:<alert>:<certificate>`, which the renewal that resolves it computes
/// too; any other type's names the type (`certhook:<alert>:revocation:<certificate>`), so
/// an alert of several types never folds a revocation or an issuance into an open
/// expiration incident, or the reverse. A certificate id too long for the Events API is
/// replaced by its SHA-256, so the key stays unique and stable.
pub fn dedup_key(alert_id: &str, event_type: AlertType, certificate_id: &str) -> String {
    let scope = match event_type {
        AlertType::Expiration => format!("certhook:{alert_id}:"),
        other => format!("certhook:{alert_id}:{other}:"),
    };
    let key = format!("{scope}{certificate_id}");
    if key.chars().count() <= MAX_KEY {
        return key;
    }
    use sha2::Digest;
    format!("{scope}sha256:{}", hex::encode(sha2::Sha256::digest(certificate_id.as_bytes())))
}

/// `text` cut to at most `max` characters (with an ellipsis when cut).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The Events API requests for a CloudEvent (`ce`, read as `view`): one per certificate.
/// `resolve` turns them into resolutions (a renewal closing the expiration incident of the
/// same alert).
pub fn events(view: &EventView, ce: &Value, routing_key: &str, resolve: bool) -> Vec<Value> {
    let kind = view.kind();
    let alert_id = view.data.alert.as_ref().map_or("", |a| a.id.as_str());
    let alert_name = view.data.alert.as_ref().map(|a| a.name.as_str()).filter(|n| !n.is_empty()).unwrap_or("certhook");
    let certs = &view.data.certificates;
    if certs.is_empty() {
        let channel = view.data.channel_id.as_deref().unwrap_or("");
        return vec![json!({
            "routing_key": routing_key, "event_action": "trigger", "dedup_key": format!("certhook:test:{channel}"),
            "payload": {"summary": "certhook test event: this channel is reachable", "source": "certhook",
                        "severity": "info", "custom_details": ce},
        })];
    }
    certs
        .iter()
        .map(|c| {
            let cn = c.common_name.as_deref().unwrap_or("?");
            // A resolution closes the expiration incident of the certificate.
            let incident = match kind {
                EventKind::Alert(t) if !resolve => t,
                _ => AlertType::Expiration,
            };
            let key = dedup_key(alert_id, incident, &c.id);
            if resolve {
                return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": key});
            }
            let days = c.days_until_expiry.unwrap_or(0);
            let (severity, summary) = match kind {
                EventKind::Alert(AlertType::Expiration) => {
                    (severity_for_days(days), format!("Certificate {cn} expires in {days} days ({alert_name})"))
                }
                EventKind::Alert(AlertType::Revocation) => {
                    ("critical", format!("Certificate {cn} was revoked ({alert_name})"))
                }
                EventKind::Alert(AlertType::Renewal) => {
                    ("info", format!("Certificate {cn} was renewed ({alert_name})"))
                }
                _ => ("info", format!("Certificate {cn} was issued ({alert_name})")),
            };
            json!({
                "routing_key": routing_key, "event_action": "trigger", "dedup_key": key,
                "payload": {"summary": cut(&summary, MAX_SUMMARY), "source": cut(cn, MAX_SOURCE), "severity": severity,
                            "timestamp": view.time, "custom_details": ce},
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `events` on a CloudEvent given as JSON.
    fn of(ce: &Value, key: &str, resolve: bool) -> Vec<Value> {
        events(&serde_json::from_value(ce.clone()).unwrap(), ce, key, resolve)
    }

    /// Issue 14: fields a PKI controls are cut to the Events API's limits; a long
    /// certificate id gives a stable hashed key.
    #[test]
    fn fields_fit_the_events_api_limits() {
        let mut e = ce("expiration", &[5]);
        let long_cn = "h".repeat(5000);
        e["data"]["certificates"][0]["commonName"] = long_cn.clone().into();
        e["data"]["certificates"][0]["id"] = "i".repeat(400).into();
        let out = of(&e, "rk", false);
        let p = &out[0]["payload"];
        assert_eq!(p["source"].as_str().unwrap().chars().count(), 255);
        assert_eq!(p["summary"].as_str().unwrap().chars().count(), 1024);
        let key = out[0]["dedup_key"].as_str().unwrap();
        assert!(key.len() <= 255 && key.contains(":sha256:"), "{key}");
        assert_eq!(of(&e, "rk", true)[0]["dedup_key"], key, "the renewal resolves the same incident");
        assert_eq!(dedup_key("a", AlertType::Expiration, "c-1"), "certhook:a:c-1", "short ids are kept as they are");
        let revoked = dedup_key("a", AlertType::Revocation, &"i".repeat(400));
        assert!(revoked.starts_with("certhook:a:revocation:sha256:") && revoked.len() <= 255, "{revoked}");
    }

    fn ce(kind: &str, days: &[i64]) -> Value {
        let certs: Vec<Value> = days
            .iter()
            .enumerate()
            .map(|(i, d)| json!({"id": format!("c{i}"), "commonName": format!("h{i}.example.com"), "daysUntilExpiry": d}))
            .collect();
        json!({"type": format!("com.infisical.pki.certificate.{kind}"), "time": "2024-01-15T10:30:00.000Z",
               "data": {"alert": {"id": "al", "name": "tls-expiry"}, "certificates": certs}})
    }

    #[test]
    fn severity_follows_days_left() {
        let severities: Vec<_> = [0, 7, 8, 14, 15, 30, 31].map(severity_for_days).into();
        assert_eq!(severities, vec!["critical", "critical", "error", "error", "warning", "warning", "info"]);
    }

    #[test]
    fn one_trigger_per_certificate_with_stable_dedup_keys() {
        let evs = of(&ce("expiration", &[3, 20]), "0123456789abcdef0123456789abcdef", false);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0]["event_action"], "trigger");
        assert_eq!(evs[0]["dedup_key"], "certhook:al:c0");
        assert_eq!(evs[0]["payload"]["severity"], "critical");
        assert_eq!(evs[1]["payload"]["severity"], "warning");
        assert_eq!(evs[0]["payload"]["summary"], "Certificate h0.example.com expires in 3 days (tls-expiry)");
        assert_eq!(evs[0]["payload"]["source"], "h0.example.com");
        assert_eq!(evs[0]["payload"]["custom_details"]["type"], "com.infisical.pki.certificate.expiration");
        assert_eq!(evs[0]["routing_key"], "0123456789abcdef0123456789abcdef");
    }

    /// Issue 16: one alert may have several types; each type's incident is its own.
    #[test]
    fn each_type_has_its_own_incident_and_a_renewal_resolves_the_expiration_one() {
        let key = |kind: &str, resolve: bool| of(&ce(kind, &[5]), "k", resolve)[0]["dedup_key"].clone();
        assert_eq!(key("expiration", false), "certhook:al:c0");
        assert_eq!(key("renewal", true), "certhook:al:c0", "the resolution closes the expiration incident");
        assert_eq!(key("revocation", false), "certhook:al:revocation:c0");
        assert_eq!(key("issuance", false), "certhook:al:issuance:c0");
        assert_eq!(key("renewal", false), "certhook:al:renewal:c0");
    }

    #[test]
    fn revocation_is_critical_and_renewal_can_resolve() {
        assert_eq!(of(&ce("revocation", &[100]), "k", false)[0]["payload"]["severity"], "critical");
        let resolve = &of(&ce("renewal", &[300]), "k", true)[0];
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], "certhook:al:c0");
        assert!(resolve.get("payload").is_none());
    }
}
