//! Slack incoming-webhook messages: a `text` fallback for notifications, and `blocks` —
//! a header naming the alert, one section per certificate (at most 20, then an
//! "and N more" line), and a link to the certificates.

use certhook_core::event::AlertType;
use serde_json::{Value, json};

use super::{EventKind, EventView};

/// Certificates shown as sections; the rest are counted.
pub const MAX_SECTIONS: usize = 20;

fn title(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Alert(AlertType::Expiration) => "Certificates expiring",
        EventKind::Alert(AlertType::Issuance) => "Certificate issued",
        EventKind::Alert(AlertType::Renewal) => "Certificate renewed",
        EventKind::Alert(AlertType::Revocation) => "Certificate revoked",
        EventKind::Test => "certhook test message",
        EventKind::Other => "Certificate event",
    }
}

/// A value as Slack text: `&`, `<` and `>` as entities, so that a certificate field
/// (a CSR's subject is often chosen by whoever asked for the certificate) can neither
/// mention (`<!channel>`) nor plant a link (`<https://…|Renew now>`).
pub fn escape(value: &str) -> String {
    value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An optional field, escaped, or `?`.
fn field(v: &Option<String>) -> String {
    v.as_deref().map(escape).unwrap_or_else(|| "?".into())
}

/// The Slack message for a CloudEvent.
pub fn message(ce: &EventView) -> Value {
    let kind = ce.kind();
    let alert = ce.data.alert.as_ref();
    let name = alert.map(|a| escape(&a.name)).filter(|n| !n.is_empty()).unwrap_or_else(|| "certhook".into());
    let certs = &ce.data.certificates;
    let window =
        alert.and_then(|a| a.alert_before.as_deref()).map(|w| format!(" within {}", escape(w))).unwrap_or_default();
    let text = match (kind, certs.len()) {
        (EventKind::Test, _) => "certhook test message: this channel is reachable".to_string(),
        (EventKind::Alert(AlertType::Expiration), n) => {
            format!("{n} certificate{} expiring{window} ({name})", if n == 1 { "" } else { "s" })
        }
        (_, _) => {
            let cn = certs.first().map_or_else(|| "?".into(), |c| field(&c.common_name));
            format!("{}: {cn} ({name})", title(kind))
        }
    };
    let mut blocks =
        vec![json!({"type": "header", "text": {"type": "plain_text", "text": format!("{}: {name}", title(kind))}})];
    for c in certs.iter().take(MAX_SECTIONS) {
        let days = c.days_until_expiry.map_or_else(|| "?".to_string(), |d| d.to_string());
        let mut lines = vec![
            format!("*{}*", field(&c.common_name)),
            format!("Serial: `{}`", field(&c.serial_number)),
            format!("Not after: {}", field(&c.not_after)),
            format!("Days left: {days}"),
        ];
        if let Some(reason) = &c.revocation_reason {
            lines.push(format!("Revoked: {} ({})", field(&c.revoked_at), escape(reason)));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}}));
    }
    if certs.len() > MAX_SECTIONS {
        let more = certs.len() - MAX_SECTIONS;
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("and {more} more")}]}));
    }
    if let Some(url) = ce.data.metadata.as_ref().and_then(|m| m.view_url.as_deref()) {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("<{url}|View certificates>")}}));
    }
    json!({"text": text, "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(ce: &Value) -> EventView {
        serde_json::from_value(ce.clone()).unwrap()
    }

    fn event(kind: &str, n: usize) -> Value {
        let certs: Vec<Value> = (0..n)
            .map(|i| {
                json!({"id": format!("c{i}"), "serialNumber": format!("{i}"), "commonName": format!("h{i}.example.com"),
                       "notAfter": "2024-02-14T10:30:00.000Z", "daysUntilExpiry": 30})
            })
            .collect();
        json!({"type": format!("com.infisical.pki.certificate.{kind}"),
               "data": {"alert": {"id": "a", "name": "tls-expiry", "alertBefore": "30d"}, "certificates": certs,
                        "metadata": {"totalCertificates": n, "viewUrl": "https://c.example/applications/x/certificates"}}})
    }

    /// Issue 14: a hostile commonName neither pings the channel nor plants a link.
    #[test]
    fn certificate_fields_cannot_mention_or_link() {
        let mut ce = event("issuance", 1);
        ce["data"]["certificates"][0]["commonName"] = "<!channel> <https://phish.example/renew|Renew now> & co".into();
        ce["data"]["alert"]["name"] = "<@U123>".into();
        let m = message(&view(&ce));
        let all = m.to_string();
        assert!(!all.contains("<!channel>") && !all.contains("<https://phish") && !all.contains("<@U123>"), "{all}");
        assert!(
            m["text"]
                .as_str()
                .unwrap()
                .contains("&lt;!channel&gt; &lt;https://phish.example/renew|Renew now&gt; &amp; co")
        );
        assert!(m["blocks"][1]["text"]["text"].as_str().unwrap().starts_with("*&lt;!channel&gt;"));
        let link = m["blocks"].as_array().unwrap().last().unwrap()["text"]["text"].as_str().unwrap().to_string();
        assert_eq!(
            link, "<https://c.example/applications/x/certificates|View certificates>",
            "certhook's own link stays"
        );
    }

    #[test]
    fn expiration_message_has_fallback_header_sections_and_link() {
        let m = message(&view(&event("expiration", 2)));
        assert_eq!(m["text"], "2 certificates expiring within 30d (tls-expiry)");
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Certificates expiring: tls-expiry");
        assert_eq!(
            blocks[1]["text"]["text"],
            "*h0.example.com*\nSerial: `0`\nNot after: 2024-02-14T10:30:00.000Z\nDays left: 30"
        );
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[3]["text"]["text"], "<https://c.example/applications/x/certificates|View certificates>");
    }

    #[test]
    fn at_most_twenty_sections_then_a_count() {
        let m = message(&view(&event("expiration", 23)));
        let blocks = m["blocks"].as_array().unwrap();
        let sections =
            blocks.iter().filter(|b| b["type"] == "section" && b["text"]["text"].as_str().unwrap().starts_with('*'));
        assert_eq!(sections.count(), 20);
        assert!(blocks.iter().any(|b| b["type"] == "context" && b["elements"][0]["text"] == "and 3 more"));
    }

    #[test]
    fn single_certificate_events_name_the_certificate() {
        assert_eq!(message(&view(&event("issuance", 1)))["text"], "Certificate issued: h0.example.com (tls-expiry)");
    }
}
