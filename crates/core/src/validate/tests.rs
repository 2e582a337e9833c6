//! Every validation rule of SPEC §5, each asserting the field the error names.

use serde_json::{Value, json};

use super::*;

const APP: &str = "0190a5b4-7c3e-7a2b-9f00-0123456789ab";
const MAX: usize = 262_144;

fn now() -> DateTime<Utc> {
    parse_rfc3339("2024-06-15T14:22:00Z").unwrap()
}

fn valid() -> Value {
    json!({
        "type": "issuance",
        "applicationId": APP,
        "idempotencyKey": "order-42",
        "certificate": {
            "id": "cert-1", "serialNumber": "9876543210", "commonName": "api.example.com",
            "san": ["api.example.com"], "profileName": "API Server",
            "notBefore": "2024-06-15T00:00:00Z", "notAfter": "2025-06-15T23:59:59Z",
            "revokedAt": null, "revocationReason": null
        }
    })
}

fn with(path: &[&str], v: Value) -> Value {
    let mut e = valid();
    let mut cur = &mut e;
    for p in &path[..path.len() - 1] {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().insert(path[path.len() - 1].to_string(), v);
    e
}

fn without(path: &[&str]) -> Value {
    let mut e = valid();
    let mut cur = &mut e;
    for p in &path[..path.len() - 1] {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().remove(path[path.len() - 1]);
    e
}

fn field_of(v: &Value) -> String {
    let err = parse_event(v, now()).expect_err("event was accepted");
    err.field().unwrap_or_else(|| panic!("error names no field: {err}"))
}

#[test]
fn accepts_the_spec_example_and_normalises_times() {
    let e = parse_event(&valid(), now()).unwrap();
    assert_eq!(e.event_type, AlertType::Issuance);
    assert_eq!(e.application_id.to_string(), APP);
    assert_eq!(e.idempotency_key.as_deref(), Some("order-42"));
    assert_eq!(e.certificate.id, "cert-1");
    assert_eq!(e.certificate.not_after, parse_rfc3339("2025-06-15T23:59:59Z").unwrap());
    assert_eq!(e.certificate.revoked_at, None);
}

#[test]
fn defaults_id_san_and_profile_name() {
    let mut v = without(&["certificate", "id"]);
    let c = v["certificate"].as_object_mut().unwrap();
    c.remove("san");
    c.remove("profileName");
    let e = parse_event(&v, now()).unwrap();
    assert_eq!(e.certificate.id, "9876543210");
    assert!(e.certificate.san.is_empty());
    assert_eq!(e.certificate.profile_name, None);
}

#[test]
fn revocation_defaults_revoked_at_to_now_and_reason_to_unspecified() {
    let v = with(&["type"], json!("revocation"));
    let e = parse_event(&v, now()).unwrap();
    assert_eq!(e.certificate.revoked_at, Some(now()));
    assert_eq!(e.certificate.revocation_reason, Some(RevocationReason::Unspecified));

    let mut v = with(&["type"], json!("revocation"));
    v["certificate"]["revokedAt"] = json!("2024-06-01T00:00:00Z");
    v["certificate"]["revocationReason"] = json!("keyCompromise");
    let e = parse_event(&v, now()).unwrap();
    assert_eq!(e.certificate.revoked_at, Some(parse_rfc3339("2024-06-01T00:00:00Z").unwrap()));
    assert_eq!(e.certificate.revocation_reason, Some(RevocationReason::KeyCompromise));
}

#[test]
fn each_required_field_is_named_when_missing() {
    for path in [
        &["type"][..],
        &["applicationId"],
        &["certificate"],
        &["certificate", "serialNumber"],
        &["certificate", "commonName"],
        &["certificate", "notBefore"],
        &["certificate", "notAfter"],
    ] {
        let v = without(path);
        let err = parse_event(&v, now()).unwrap_err();
        assert!(matches!(err, ValidationError::MissingField(_)), "{err}");
        assert_eq!(err.field().unwrap(), path.join("."));
        // null counts as missing too
        assert_eq!(field_of(&with(path, Value::Null)), path.join("."));
    }
}

#[test]
fn unknown_type_is_refused_naming_type() {
    let err = parse_event(&with(&["type"], json!("issued")), now()).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("type"));
    assert!(err.to_string().contains("'issued'"), "{err}");
}

#[test]
fn malformed_fields_are_named() {
    let cases: Vec<(&[&str], Value)> = vec![
        (&["type"], json!(7)),
        (&["applicationId"], json!("not-a-uuid")),
        (&["idempotencyKey"], json!("")),
        (&["idempotencyKey"], json!("k".repeat(256))),
        (&["idempotencyKey"], json!(12)),
        (&["certificate"], json!("x")),
        (&["certificate", "id"], json!("")),
        (&["certificate", "serialNumber"], json!(12345)),
        (&["certificate", "serialNumber"], json!("  ")),
        (&["certificate", "commonName"], json!("")),
        (&["certificate", "san"], json!("api.example.com")),
        (&["certificate", "profileName"], json!(["x"])),
        (&["certificate", "notBefore"], json!("2024-06-15")),
        (&["certificate", "notAfter"], json!("tomorrow")),
        (&["certificate", "revocationReason"], json!("compromised")),
    ];
    for (path, v) in cases {
        assert_eq!(field_of(&with(path, v.clone())), path.join("."), "value {v}");
    }
    assert_eq!(field_of(&with(&["certificate", "san"], json!(["ok", 3]))), "certificate.san[1]");
}

#[test]
fn not_after_before_not_before_is_refused() {
    let v = with(&["certificate", "notAfter"], json!("2024-06-14T00:00:00Z"));
    let err = parse_event(&v, now()).unwrap_err();
    assert_eq!(err.to_string(), "certificate.notAfter: must be after certificate.notBefore");
    let v = with(&["certificate", "notAfter"], json!("2024-06-15T00:00:00Z"));
    assert_eq!(field_of(&v), "certificate.notAfter");
}

#[test]
fn revocation_fields_only_on_revocation_events() {
    let v = with(&["certificate", "revokedAt"], json!("2024-06-01T00:00:00Z"));
    assert_eq!(field_of(&v), "certificate.revokedAt");
    let v = with(&["certificate", "revocationReason"], json!("superseded"));
    assert_eq!(field_of(&v), "certificate.revocationReason");
}

#[test]
fn unknown_members_are_named() {
    assert_eq!(field_of(&with(&["applicationID"], json!(APP))), "applicationID");
    assert_eq!(field_of(&with(&["certificate", "notafter"], json!("x"))), "certificate.notafter");
    assert_eq!(field_of(&with(&["certificate", "status"], json!("active"))), "certificate.status");
}

#[test]
fn oversized_event_names_both_numbers() {
    let text = valid().to_string();
    let err = parse_events(text.as_bytes(), 100, now()).unwrap_err();
    assert_eq!(err, ValidationError::TooLarge { size: text.len(), max: 100 });
    assert_eq!(err.to_string(), format!("event size {} bytes exceeds max_event_bytes 100", text.len()));
    assert!(parse_events(text.as_bytes(), text.len(), now()).is_ok());
}

#[test]
fn accepts_one_object_an_array_or_ndjson() {
    let one = valid().to_string();
    assert_eq!(parse_events(one.as_bytes(), MAX, now()).unwrap().len(), 1);
    let arr = json!([valid(), valid(), valid()]).to_string();
    assert_eq!(parse_events(arr.as_bytes(), MAX, now()).unwrap().len(), 3);
    let nd = format!("{one}\n{one}\n\n{one}\n");
    assert_eq!(parse_events(nd.as_bytes(), MAX, now()).unwrap().len(), 3);
}

#[test]
fn one_bad_event_rejects_the_batch_naming_its_position() {
    let bad = without(&["certificate", "commonName"]);
    let arr = json!([valid(), valid(), bad.clone()]).to_string();
    let err = parse_events(arr.as_bytes(), MAX, now()).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("events[2].certificate.commonName"));
    assert_eq!(err.to_string(), "events[2]: certificate.commonName: missing required field");

    let nd = format!("{}\n{}\n", valid(), bad);
    let err = parse_events(nd.as_bytes(), MAX, now()).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("events[1].certificate.commonName"));

    let big = json!([valid(), valid()]).to_string();
    let one_len = valid().to_string().len();
    assert!(parse_events(big.as_bytes(), one_len, now()).is_ok(), "limit applies per event, not per batch");
}

#[test]
fn broken_or_empty_input_is_refused() {
    assert!(matches!(parse_events(b"{\"type\":", MAX, now()), Err(ValidationError::Json(_))));
    assert_eq!(parse_events(b"   ", MAX, now()), Err(ValidationError::Empty));
    assert_eq!(parse_events(b"[]", MAX, now()), Err(ValidationError::Empty));
    assert!(matches!(parse_events(b"[1]", MAX, now()), Err(ValidationError::InBatch { index: 0, .. })));
}
