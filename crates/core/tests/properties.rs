//! Property tests: whatever a producer, an operator or a configuration file hands certhook,
//! parsing never panics, and a refusal names the field or key at fault.

use std::time::Duration;

use certhook_core::config::{Config, ConfigError};
use certhook_core::destination::{check_url, redact_url};
use certhook_core::duration::{AlertBefore, parse_duration};
use certhook_core::seal::Keyring;
use certhook_core::validate::{CERTIFICATE_FIELDS, EVENT_FIELDS, ValidationError, parse_events};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid event, for mutating one field at a time.
fn valid_event() -> Value {
    json!({
        "type": "revocation",
        "applicationId": "0190a5b4-0000-7000-8000-000000000001",
        "idempotencyKey": "k",
        "certificate": {
            "id": "c1", "serialNumber": "42", "commonName": "a.example", "san": ["a.example"],
            "profileName": "web", "notBefore": "2025-01-01T00:00:00Z", "notAfter": "2026-01-01T00:00:00Z",
            "revokedAt": "2025-06-01T00:00:00Z", "revocationReason": "keyCompromise"
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_event_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_events(&bytes, 262_144, now());
    }

    #[test]
    fn arbitrary_json_gets_an_event_or_an_error_with_a_field(value in any_json()) {
        let text = value.to_string();
        match parse_events(text.as_bytes(), 262_144, now()) {
            Ok(events) => prop_assert!(!events.is_empty()),
            Err(ValidationError::Json(_) | ValidationError::Empty) => {}
            Err(e) => prop_assert!(e.field().is_some(), "{e} names no field"),
        }
    }

    #[test]
    fn a_bad_value_in_one_field_is_refused_naming_that_field(
        field in prop::sample::select(EVENT_FIELDS),
        value in any_json(),
    ) {
        let mut event = valid_event();
        event[field] = value;
        if let Err(e) = parse_events(event.to_string().as_bytes(), 262_144, now()) {
            let named = e.field().unwrap_or_default();
            prop_assert!(named.starts_with(field), "{field}: the error names {named:?}: {e}");
        }
    }

    #[test]
    fn a_bad_certificate_field_is_refused_naming_it(
        field in prop::sample::select(CERTIFICATE_FIELDS),
        value in any_json(),
    ) {
        let mut event = valid_event();
        event["certificate"][field] = value;
        if let Err(e) = parse_events(event.to_string().as_bytes(), 262_144, now()) {
            let named = e.field().unwrap_or_default();
            // notBefore/notAfter/revokedAt are judged against each other: either may be named.
            prop_assert!(named.starts_with("certificate."), "{field}: the error names {named:?}: {e}");
        }
    }

    #[test]
    fn batches_name_the_event_at_fault(index in 0usize..5, value in any_json()) {
        let mut events: Vec<Value> = (0..5).map(|_| valid_event()).collect();
        events[index]["certificate"]["serialNumber"] = value;
        if let Err(e) = parse_events(Value::from(events).to_string().as_bytes(), 262_144, now()) {
            let named = e.field().unwrap_or_default();
            let expected = format!("events[{index}].certificate.serialNumber");
            prop_assert_eq!(named, expected);
        }
    }

    #[test]
    fn durations_parse_or_say_why(text in ".{0,24}") {
        let _ = parse_duration(&text);
        let _ = text.parse::<AlertBefore>();
    }

    #[test]
    fn durations_round_trip(n in 1u64..1_000_000, unit in prop::sample::select(&["ms", "s", "m", "h", "d"][..])) {
        let d = parse_duration(&format!("{n}{unit}")).unwrap();
        prop_assert!(d > Duration::ZERO);
    }

    #[test]
    fn urls_are_checked_or_refused_naming_url_and_never_echo_a_password(
        text in "(https?://)?([a-z0-9:@.\\[\\]_-]|%[0-9a-f]{2}){0,30}(/[ -~]{0,20})?",
    ) {
        match check_url(&text, true) {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.field(), Some("url".to_string())),
        }
        let shown = redact_url(&format!("https://user:s3cr3tpass@host.example/{text}"), false);
        prop_assert!(!shown.contains("s3cr3tpass"), "{shown}");
    }

    #[test]
    fn sealed_values_never_panic_to_open(text in ".{0,80}", keyish in "[A-Za-z0-9+/=]{0,50}") {
        let keys = Keyring::new(Some(&certhook_core::Secret::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")), &[]).unwrap();
        let _ = keys.open(&text, "c");
        let _ = keys.open(&format!("enc:v1:{text}"), "c");
        let _ = Keyring::new(Some(&certhook_core::Secret::new(keyish)), &[]);
        let sealed = keys.seal(&text, "c");
        prop_assert_eq!(keys.open(&sealed, "c").unwrap(), text);
    }

    #[test]
    fn configuration_files_load_or_name_the_key(
        key in prop::sample::select(&[
            "listen", "database_url", "admin_token", "public_url", "max_event_bytes", "allowed_networks",
            "allowed_hosts", "secret_key", "scan_interval", "delivery.max_attempts", "delivery.backoff_factor",
            "delivery.lease_duration", "delivery.concurrency", "nonsense",
        ][..]),
        value in prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "[ -~]{0,20}".prop_map(|s| format!("{s:?}")),
            Just("[\"x\", 1]".to_string()),
            Just("true".to_string()),
            Just("-1.5e400".to_string()),
        ],
    ) {
        let file = match key.split_once('.') {
            Some((table, k)) => format!("[{table}]\n{k} = {value}\n"),
            None => format!("{key} = {value}\n"),
        };
        match Config::load(Some(("c.toml", &file)), Vec::new()) {
            Ok(_) => {}
            Err(ConfigError::Toml { .. }) => {}
            Err(ConfigError::UnknownKey { key: k, .. }) => prop_assert_eq!(k, key),
            Err(ConfigError::Invalid { key: k, .. }) => {
                prop_assert!(k.starts_with(key), "{key}: named {k}");
            }
        }
    }

    #[test]
    fn environment_values_load_or_name_the_key(value in "[ -~]{0,30}") {
        for name in ["CERTHOOK_LISTEN", "CERTHOOK_DELIVERY__MAX_ATTEMPTS", "CERTHOOK_ALLOWED_NETWORKS", "CERTHOOK_RETENTION"] {
            let env = vec![(name.to_string(), value.clone())];
            if let Err(e) = Config::load(None, env) {
                let message = e.to_string();
                let key = name["CERTHOOK_".len()..].to_ascii_lowercase().replace("__", ".");
                prop_assert!(message.contains(&key) || message.contains("invalid TOML"), "{name}={value:?}: {message}");
            }
        }
    }

    #[test]
    fn secret_values_never_appear_in_configuration_errors(value in "[A-Za-z0-9+/]{12,44}", form in 0usize..4) {
        for key in ["admin_token", "secret_key", "previous_secret_keys"] {
            let file = match form {
                0 => format!("{key} = \"{value}\""),
                1 => format!("{key} = [\"{value}\"]"),
                2 => format!("{key} = {{ a = \"{value}\" }}"),
                _ => format!("{key} = [[\"{value}\"]]"),
            };
            if let Err(e) = Config::load(Some(("c.toml", &file)), Vec::new()) {
                prop_assert!(!e.to_string().contains(&value), "{file}: {e}");
            }
            let env = vec![(format!("CERTHOOK_{}", key.to_uppercase()), value.clone())];
            if let Err(e) = Config::load(None, env) {
                prop_assert!(!e.to_string().contains(&value), "{key} from the environment: {e}");
            }
        }
    }
}
