//! Configuration: defaults, file, environment override, unknown keys refused.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_are_the_specs() {
    let c = Config::load(None, Vec::new()).unwrap();
    assert_eq!(c.database_url, "sqlite://certhook.db");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.event_type_prefix, "com.infisical.pki.certificate");
    assert_eq!(c.signature_header, "x-infisical-signature");
    assert_eq!(c.scan_interval, Duration::from_secs(3600));
    assert_eq!(c.retention, Duration::from_secs(7 * 86400));
    assert_eq!((c.max_event_bytes, c.max_certificates_per_event), (262_144, 100));
    let d = &c.delivery;
    assert_eq!((d.request_timeout, d.connect_timeout), (Duration::from_secs(15), Duration::from_secs(5)));
    assert_eq!((d.max_attempts, d.backoff_factor), (10, 4.0));
    assert_eq!((d.initial_backoff, d.max_backoff), (Duration::from_secs(5), Duration::from_secs(21600)));
    assert_eq!((d.concurrency, d.channel_concurrency, d.circuit_breaker_threshold), (256, 8, 5));
    assert_eq!(d.lease_duration, Duration::from_secs(60));
    assert_eq!(d.disable_after, Duration::from_secs(5 * 86400));
    assert_eq!(d.poll_interval, Duration::from_millis(250));
    assert_eq!(c.public_url(), "http://127.0.0.1:8080");
}

#[test]
fn file_values_override_defaults() {
    let file = r#"
        database_url = "postgres://postgres@127.0.0.1/certhook"
        admin_token = "tok-0123456789abcdef0123456789abcdef"
        public_url = "https://certhook.example.com"
        allowed_networks = ["127.0.0.0/8", "::1/128"]
        retention = "30d"
        [delivery]
        max_attempts = 3
        poll_interval = "50ms"
        backoff_factor = 2.5
    "#;
    let c = Config::load(Some(("certhook.toml", file)), Vec::new()).unwrap();
    assert_eq!(c.database_url, "postgres://postgres@127.0.0.1/certhook");
    assert_eq!(c.admin_token.as_ref().unwrap().expose(), "tok-0123456789abcdef0123456789abcdef");
    assert_eq!(c.public_url(), "https://certhook.example.com");
    assert_eq!(c.allowed_networks.len(), 2);
    assert_eq!(c.retention, Duration::from_secs(30 * 86400));
    assert_eq!(c.delivery.max_attempts, 3);
    assert_eq!(c.delivery.poll_interval, Duration::from_millis(50));
    assert_eq!(c.delivery.backoff_factor, 2.5);
    assert_eq!(c.delivery.concurrency, 256, "untouched keys keep their defaults");
}

#[test]
fn environment_overrides_file() {
    let file = "[delivery]\nmax_attempts = 3\n";
    let c = Config::load(
        Some(("certhook.toml", file)),
        env(&[
            ("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "5"),
            ("CERTHOOK_DELIVERY__REQUEST_TIMEOUT", "2s"),
            ("CERTHOOK_ADMIN_TOKEN", "12345678901234567890123456789012"),
            ("CERTHOOK_EVENT_TYPE_PREFIX", "org.example"),
            ("CERTHOOK_ALLOW_INSECURE_HTTP", "true"),
            ("CERTHOOK_ALLOWED_NETWORKS", r#"["127.0.0.0/8"]"#),
            ("PATH", "/usr/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(c.delivery.max_attempts, 5);
    assert_eq!(c.delivery.request_timeout, Duration::from_secs(2));
    assert_eq!(
        c.admin_token.unwrap().expose(),
        "12345678901234567890123456789012",
        "an all-digit token stays a string"
    );
    assert_eq!(c.event_type_prefix, "org.example");
    assert!(c.allow_insecure_http);
    assert_eq!(c.allowed_networks, vec!["127.0.0.0/8".parse::<IpNet>().unwrap()]);
}

#[test]
fn unknown_keys_are_refused_naming_key_and_origin() {
    let err = Config::load(Some(("certhook.toml", "listen_addr = \"x\"")), Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "unknown configuration key 'listen_addr' (from certhook.toml)");
    let err = Config::load(Some(("c.toml", "[delivery]\nmax_attempt = 3")), Vec::new()).unwrap_err();
    assert_eq!(err, ConfigError::UnknownKey { key: "delivery.max_attempt".into(), origin: "c.toml".into() });
    let err = Config::load(Some(("c.toml", "[server]\nport = 1")), Vec::new()).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "server"), "{err}");
}

/// Kubernetes injects `CERTHOOK_PORT=tcp://…` and more for a Service named certhook: an
/// unknown variable is reported, not fatal, and the known ones still apply.
#[test]
fn unknown_environment_variables_are_reported_not_fatal() {
    let vars = env(&[
        ("CERTHOOK_DELIVERY__RETRIES", "3"),
        ("CERTHOOK_PORT", "tcp://10.0.0.1:8080"),
        ("CERTHOOK_SERVICE_HOST", "10.0.0.1"),
        ("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "4"),
    ]);
    let loaded = Config::load_reporting(None, vars).unwrap();
    assert_eq!(loaded.config.delivery.max_attempts, 4, "the known variable applies");
    assert_eq!(loaded.ignored_env, ["CERTHOOK_DELIVERY__RETRIES", "CERTHOOK_PORT", "CERTHOOK_SERVICE_HOST"]);
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        ("[delivery]\nrequest_timeout = \"soon\"", "delivery.request_timeout"),
        ("[delivery]\nmax_attempts = \"ten\"", "delivery.max_attempts"),
        ("[delivery]\nmax_attempts = 0", "delivery.max_attempts"),
        ("[delivery]\nbackoff_factor = 0.5", "delivery.backoff_factor"),
        ("[delivery]\nconcurrency = 0", "delivery.concurrency"),
        ("listen = \"localhost\"", "listen"),
        ("allowed_networks = [\"10.0.0.0/33\"]", "allowed_networks[0]"),
        ("allowed_hosts = [\"ok.example\", \"https://x.example\"]", "allowed_hosts[1]"),
        ("allowed_hosts = [\"\"]", "allowed_hosts[0]"),
        ("secret_key = \"c2hvcnQ=\"", "secret_key"),
        ("previous_secret_keys = [\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\", \"x\"]", "previous_secret_keys[1]"),
        ("database_url = \"mysql://x\"", "database_url"),
        ("signature_header = \"x sig\"", "signature_header"),
        ("public_url = \"ftp://x\"", "public_url"),
    ];
    for (file, key) in cases {
        match Config::load(Some(("c.toml", file)), Vec::new()) {
            Err(ConfigError::Invalid { key: k, message }) => assert_eq!(k, key, "{file}: {message}"),
            other => panic!("{file}: expected an error naming {key}, got {other:?}"),
        }
    }
    assert!(matches!(Config::load(Some(("c.toml", "listen = ")), Vec::new()), Err(ConfigError::Toml { .. })));
}

#[test]
fn lease_must_exceed_request_timeout_plus_margin() {
    let err = Config::load(
        None,
        env(&[("CERTHOOK_DELIVERY__REQUEST_TIMEOUT", "30s"), ("CERTHOOK_DELIVERY__LEASE_DURATION", "31s")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration key 'delivery.lease_duration': must be at least delivery.request_timeout + 2s (32s), got 31s"
    );
    assert!(Config::load(None, env(&[("CERTHOOK_DELIVERY__REQUEST_TIMEOUT", "58s")])).is_ok());
}

#[test]
fn admin_token_never_shows_in_debug() {
    let c = Config::load(None, env(&[("CERTHOOK_ADMIN_TOKEN", "hunter2-admin-token-0123456789abcdef")])).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

/// Issue 14: an 11-character token used to start `serve` on 0.0.0.0.
#[test]
fn a_short_admin_token_is_refused_without_showing_it() {
    let err = Config::load(None, env(&[("CERTHOOK_ADMIN_TOKEN", "hunter2-abc")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration key 'admin_token': must be at least 32 characters (it guards the whole API), got 11"
    );
    assert!(Config::load(None, env(&[("CERTHOOK_ADMIN_TOKEN", &"x".repeat(32))])).is_ok());
}

/// Issue 18: the example is accepted as it is, sets every key to its default, and names
/// every optional key in a comment, so it cannot fall behind the code.
#[test]
fn the_shipped_example_holds_every_key_at_its_default() {
    let loaded = Config::load(Some(("certhook.example.toml", EXAMPLE)), Vec::new()).unwrap();
    assert_eq!(loaded, Config::default());
    let example: Table = EXAMPLE.parse().unwrap();
    let Value::Table(defaults) = Value::try_from(Config::default()).unwrap() else { unreachable!() };
    let keys = |t: &Table| {
        let mut k: Vec<String> = Vec::new();
        for (name, value) in t {
            match value {
                Value::Table(inner) => k.extend(inner.keys().map(|i| format!("{name}.{i}"))),
                _ => k.push(name.clone()),
            }
        }
        k.sort();
        k
    };
    assert_eq!(keys(&example), keys(&defaults), "every key with a default is in the example");
    for optional in OPTIONAL_KEYS {
        assert!(EXAMPLE.contains(&format!("\n# {optional} = ")), "{optional} is shown, commented out");
    }
}

#[test]
fn the_effective_configuration_is_shown_without_secrets() {
    let vars = env(&[
        ("CERTHOOK_ADMIN_TOKEN", "admin-token-0123456789abcdefghijklmnop"),
        ("CERTHOOK_SECRET_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "4"),
        ("CERTHOOK_DATABASE_URL", "postgres://certhook:hunter2secret@db.internal:5432/certhook"),
        ("CERTHOOK_PUBLIC_URL", "https://ops:pw-in-url@certhook.example.com"),
    ]);
    let shown = Config::load(None, vars).unwrap().redacted_toml();
    assert!(shown.contains("max_attempts = 4"), "{shown}");
    assert!(shown.contains("admin_token = \"(set; not shown)\""), "{shown}");
    assert!(!shown.contains("admin-token-0123") && !shown.contains("AAECAwQF"), "{shown}");
    assert!(shown.contains("database_url = \"postgres://certhook:***@db.internal:5432/certhook\""), "{shown}");
    assert!(!shown.contains("hunter2secret") && !shown.contains("pw-in-url"), "{shown}");
    // Durations as the example file writes them.
    assert!(shown.contains("retention = \"7d\"") && shown.contains("lease_duration = \"60s\""), "{shown}");
}
