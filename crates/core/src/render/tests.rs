//! Golden tests: the two payloads of SPEC §2, rendered byte for byte, member order included.

use super::*;
use crate::time::parse_rfc3339;

const APP: &str = "0190a5b4-0000-7000-8000-00000000a001";
const ALERT: &str = "0190a5b4-0000-7000-8000-00000000b002";
const EVENT_ID: &str = "0190a5b4-0000-7000-8000-00000000e003";

fn settings() -> RenderSettings {
    RenderSettings { type_prefix: DEFAULT_TYPE_PREFIX.into(), public_url: "https://certhook.example.com".into() }
}

fn alert(alert_type: AlertType, name: &str, before: Option<&str>) -> AlertRef {
    AlertRef {
        id: ALERT.parse().unwrap(),
        name: name.into(),
        alert_type,
        alert_before: before.map(|b| b.parse().unwrap()),
        application_id: APP.parse().unwrap(),
    }
}

fn t(s: &str) -> DateTime<Utc> {
    parse_rfc3339(s).unwrap()
}

fn expiration_cert() -> Certificate {
    Certificate {
        id: "cert-0001".into(),
        serial_number: "1234567890".into(),
        common_name: "api.example.com".into(),
        san: vec!["api.example.com".into(), "www.api.example.com".into()],
        profile_name: Some("TLS Server".into()),
        not_before: t("2024-01-01T00:00:00Z"),
        not_after: t("2024-02-14T10:30:00Z"),
        revoked_at: None,
        revocation_reason: None,
    }
}

fn issuance_cert() -> Certificate {
    Certificate {
        id: "cert-0002".into(),
        serial_number: "9876543210".into(),
        common_name: "api.example.com".into(),
        san: vec!["api.example.com".into()],
        profile_name: Some("API Server".into()),
        not_before: t("2024-06-15T00:00:00Z"),
        not_after: t("2025-06-15T23:59:59Z"),
        revoked_at: None,
        revocation_reason: None,
    }
}

fn render(a: &AlertRef, time: &str, certs: &[Certificate]) -> String {
    String::from_utf8(render_alert_event(&settings(), a, EVENT_ID, t(time), certs)).unwrap()
}

#[test]
fn expiration_example_renders_exactly() {
    let body = render(
        &alert(AlertType::Expiration, "tls-expiry-alert", Some("30d")),
        "2024-01-15T10:30:00Z",
        &[expiration_cert()],
    );
    let expected = concat!(
        r#"{"specversion":"1.0","type":"com.infisical.pki.certificate.expiration","#,
        r#""source":"/applications/0190a5b4-0000-7000-8000-00000000a001/alerts/0190a5b4-0000-7000-8000-00000000b002","#,
        r#""id":"0190a5b4-0000-7000-8000-00000000e003","time":"2024-01-15T10:30:00.000Z","#,
        r#""datacontenttype":"application/json","subject":"certificate-expiration-alert","#,
        r#""data":{"alert":{"id":"0190a5b4-0000-7000-8000-00000000b002","name":"tls-expiry-alert","#,
        r#""alertBefore":"30d","applicationId":"0190a5b4-0000-7000-8000-00000000a001"},"#,
        r#""certificates":[{"id":"cert-0001","serialNumber":"1234567890","commonName":"api.example.com","#,
        r#""san":["api.example.com","www.api.example.com"],"profileName":"TLS Server","#,
        r#""notBefore":"2024-01-01T00:00:00.000Z","notAfter":"2024-02-14T10:30:00.000Z","#,
        r#""status":"active","daysUntilExpiry":30}],"#,
        r#""metadata":{"totalCertificates":1,"#,
        r#""viewUrl":"https://certhook.example.com/applications/0190a5b4-0000-7000-8000-00000000a001/certificates"}}}"#,
    );
    assert_eq!(body, expected);
}

#[test]
fn issuance_example_renders_exactly() {
    let body =
        render(&alert(AlertType::Issuance, "prod-issuance-notify", None), "2024-06-15T14:22:00Z", &[issuance_cert()]);
    let expected = concat!(
        r#"{"specversion":"1.0","type":"com.infisical.pki.certificate.issuance","#,
        r#""source":"/applications/0190a5b4-0000-7000-8000-00000000a001/alerts/0190a5b4-0000-7000-8000-00000000b002","#,
        r#""id":"0190a5b4-0000-7000-8000-00000000e003","time":"2024-06-15T14:22:00.000Z","#,
        r#""datacontenttype":"application/json","subject":"certificate-issuance-alert","#,
        r#""data":{"alert":{"id":"0190a5b4-0000-7000-8000-00000000b002","name":"prod-issuance-notify","#,
        r#""applicationId":"0190a5b4-0000-7000-8000-00000000a001"},"#,
        r#""certificates":[{"id":"cert-0002","serialNumber":"9876543210","commonName":"api.example.com","#,
        r#""san":["api.example.com"],"profileName":"API Server","#,
        r#""notBefore":"2024-06-15T00:00:00.000Z","notAfter":"2025-06-15T23:59:59.000Z","#,
        r#""status":"active","daysUntilExpiry":365}],"#,
        r#""metadata":{"totalCertificates":1,"#,
        r#""viewUrl":"https://certhook.example.com/applications/0190a5b4-0000-7000-8000-00000000a001/certificates"}}}"#,
    );
    assert_eq!(body, expected);
}

#[test]
fn renewal_differs_from_issuance_only_in_type_and_subject() {
    let issuance = render(&alert(AlertType::Issuance, "n", None), "2024-06-15T14:22:00Z", &[issuance_cert()]);
    let renewal = render(&alert(AlertType::Renewal, "n", None), "2024-06-15T14:22:00Z", &[issuance_cert()]);
    let expected = issuance
        .replace("certificate.issuance", "certificate.renewal")
        .replace("certificate-issuance-alert", "certificate-renewal-alert");
    assert_eq!(renewal, expected);
}

#[test]
fn revocation_appends_revoked_at_and_reason_last() {
    let mut c = issuance_cert();
    c.revoked_at = Some(t("2024-07-01T08:00:00.5Z"));
    c.revocation_reason = Some(RevocationReason::KeyCompromise);
    let body = render(&alert(AlertType::Revocation, "revoked", None), "2024-07-01T08:00:01Z", &[c]);
    assert!(body.contains(r#""type":"com.infisical.pki.certificate.revocation""#), "{body}");
    assert!(body.contains(r#""subject":"certificate-revocation-alert""#), "{body}");
    assert!(
        body.contains(r#""status":"revoked","daysUntilExpiry":349,"revokedAt":"2024-07-01T08:00:00.500Z","revocationReason":"keyCompromise"}"#),
        "{body}"
    );
}

#[test]
fn non_revocation_events_carry_no_revocation_members_and_null_profile() {
    let mut c = issuance_cert();
    c.profile_name = None;
    let body = render(&alert(AlertType::Issuance, "n", None), "2024-06-15T14:22:00Z", &[c]);
    assert!(body.contains(r#""profileName":null,"#), "{body}");
    assert!(!body.contains("revokedAt") && !body.contains("revocationReason"), "{body}");
}

#[test]
fn alert_before_only_on_expiration_events() {
    let body = render(&alert(AlertType::Issuance, "n", Some("30d")), "2024-06-15T14:22:00Z", &[issuance_cert()]);
    assert!(!body.contains("alertBefore"), "{body}");
}

#[test]
fn expired_certificates_show_expired_and_zero_days() {
    let body = render(&alert(AlertType::Expiration, "n", Some("30d")), "2024-03-01T00:00:00Z", &[expiration_cert()]);
    assert!(body.contains(r#""status":"expired","daysUntilExpiry":0}"#), "{body}");
}

#[test]
fn expiration_batches_count_their_certificates() {
    let mut second = expiration_cert();
    second.id = "cert-0003".into();
    let body =
        render(&alert(AlertType::Expiration, "n", Some("30d")), "2024-01-15T10:30:00Z", &[expiration_cert(), second]);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["certificates"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"]["metadata"]["totalCertificates"], 2);
}

#[test]
fn prefix_and_public_url_are_configurable() {
    let s = RenderSettings { type_prefix: "org.example.pki".into(), public_url: "https://pki.example.org/".into() };
    let body = String::from_utf8(render_alert_event(
        &s,
        &alert(AlertType::Issuance, "n", None),
        EVENT_ID,
        t("2024-06-15T14:22:00Z"),
        &[issuance_cert()],
    ))
    .unwrap();
    assert!(body.contains(r#""type":"org.example.pki.issuance""#), "{body}");
    assert!(
        body.contains(&format!(r#""viewUrl":"https://pki.example.org/applications/{APP}/certificates""#)),
        "{body}"
    );
}

#[test]
fn verification_and_test_events() {
    let channel = ChannelRef {
        id: "0190a5b4-0000-7000-8000-00000000c004".parse().unwrap(),
        alert_id: ALERT.parse().unwrap(),
        application_id: APP.parse().unwrap(),
    };
    let body = render_verification_event(
        &settings(),
        &channel,
        EVENT_ID,
        t("2024-06-15T14:22:00Z"),
        "tok123",
        t("2024-06-15T14:52:00Z"),
    );
    let expected = concat!(
        r#"{"specversion":"1.0","type":"com.infisical.pki.certificate.webhook.verification","#,
        r#""source":"/applications/0190a5b4-0000-7000-8000-00000000a001/alerts/0190a5b4-0000-7000-8000-00000000b002/channels/0190a5b4-0000-7000-8000-00000000c004","#,
        r#""id":"0190a5b4-0000-7000-8000-00000000e003","time":"2024-06-15T14:22:00.000Z","#,
        r#""datacontenttype":"application/json","subject":"webhook-verification","#,
        r#""data":{"verificationToken":"tok123","channelId":"0190a5b4-0000-7000-8000-00000000c004","#,
        r#""expiresAt":"2024-06-15T14:52:00.000Z"}}"#,
    );
    assert_eq!(String::from_utf8(body).unwrap(), expected);

    let body = render_test_event(&settings(), &channel, EVENT_ID, t("2024-06-15T14:22:00Z"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "com.infisical.pki.certificate.webhook.test");
    assert_eq!(v["subject"], "webhook-test");
    assert_eq!(v["data"]["channelId"], "0190a5b4-0000-7000-8000-00000000c004");
}

/// The repository's docs/wire-format.md shows one full body per event type: each must be
/// exactly what the renderer writes for the inputs it shows (values and members alike).
#[test]
fn the_documented_examples_are_what_the_renderer_writes() {
    let doc = include_str!("../../../../docs/wire-format.md");
    let examples: Vec<serde_json::Value> = doc
        .split("```json\n")
        .skip(1)
        .map(|block| serde_json::from_str(&block[..block.find("```").unwrap()]).expect("each ```json block parses"))
        .collect();
    let mut seen = Vec::new();
    for example in &examples {
        let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
        let event_type = s(&example["type"]);
        let suffix = event_type.strip_prefix(&format!("{DEFAULT_TYPE_PREFIX}.")).expect("default prefix");
        let data = &example["data"];
        let time = t(&s(&example["time"]));
        let id = s(&example["id"]);
        let parts: Vec<&str> = example["source"].as_str().unwrap().split('/').collect();
        let rendered = match suffix {
            "webhook.verification" | "webhook.test" => {
                let channel = ChannelRef {
                    id: parts[6].parse().unwrap(),
                    alert_id: parts[4].parse().unwrap(),
                    application_id: parts[2].parse().unwrap(),
                };
                if suffix == "webhook.test" {
                    render_test_event(&settings(), &channel, &id, time)
                } else {
                    let token = s(&data["verificationToken"]);
                    render_verification_event(&settings(), &channel, &id, time, &token, t(&s(&data["expiresAt"])))
                }
            }
            alert_type => {
                let alert = AlertRef {
                    id: s(&data["alert"]["id"]).parse().unwrap(),
                    name: s(&data["alert"]["name"]),
                    alert_type: alert_type.parse().unwrap(),
                    alert_before: data["alert"]["alertBefore"].as_str().map(|b| b.parse().unwrap()),
                    application_id: s(&data["alert"]["applicationId"]).parse().unwrap(),
                };
                let certificates: Vec<Certificate> = data["certificates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        let mut input = c.clone();
                        let input = input.as_object_mut().unwrap();
                        for shown in ["status", "daysUntilExpiry"] {
                            input.remove(shown);
                        }
                        serde_json::from_value(serde_json::Value::Object(input.clone())).unwrap()
                    })
                    .collect();
                render_alert_event(&settings(), &alert, &id, time, &certificates)
            }
        };
        let rendered: serde_json::Value = serde_json::from_slice(&rendered).unwrap();
        assert_eq!(&rendered, example, "docs/wire-format.md's {suffix} example differs from what is rendered");
        seen.push(suffix.to_string());
    }
    seen.sort();
    assert_eq!(
        seen,
        ["expiration", "issuance", "renewal", "revocation", "webhook.test", "webhook.verification"],
        "one example per event type"
    );
}
