//! Validation of what operators configure: alerts and channels (SPEC §1, §4).
//!
//! Each refusal names the field, as producer input does.

use crate::destination::check_url;
use crate::duration::AlertBefore;
use crate::event::{AlertType, ChannelKind};
use crate::filter::CertificateFilter;
use crate::rate_limit::{RateLimit, SLACK_DEFAULT};
use crate::sign::validate_secret;
use crate::tls_pem::{certificates, check_private_key};
use crate::validate::ValidationError;

/// Longest alert name.
pub const MAX_ALERT_NAME_LEN: usize = 63;

fn invalid(field: &str, reason: impl Into<String>) -> ValidationError {
    ValidationError::InvalidField { field: field.to_string(), reason: reason.into() }
}

/// A checked alert definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSpec {
    /// What it subscribes to: at least one type, each once, in the order given.
    pub types: Vec<AlertType>,
    /// A slug.
    pub name: String,
    /// The expiration window, exactly when `types` includes expiration.
    pub alert_before: Option<AlertBefore>,
    /// Free text.
    pub description: Option<String>,
    /// Which certificates it is about.
    pub filter: CertificateFilter,
}

/// What an alert definition may give, as typed: each entry of `types` may itself be a
/// comma-separated list (`--type issuance,renewal --type revocation`).
#[derive(Debug, Clone, Default)]
pub struct AlertInput<'a> {
    /// Event types.
    pub types: &'a [String],
    /// A slug.
    pub name: &'a str,
    /// The expiration window (`30d`).
    pub alert_before: Option<&'a str>,
    /// Free text.
    pub description: Option<&'a str>,
    /// Profile names a certificate must have one of.
    pub profiles: &'a [String],
    /// DNS patterns one of a certificate's names must match.
    pub name_patterns: &'a [String],
}

/// Reads a list of alert types: comma-separated entries, each a known type, at least one;
/// a repeat is dropped.
pub fn parse_types(entries: &[String]) -> Result<Vec<AlertType>, ValidationError> {
    let mut types = Vec::new();
    for entry in entries {
        for t in entry.split(',').map(str::trim) {
            if t.is_empty() {
                return Err(invalid("types", format!("'{}' has an empty entry", entry.escape_debug())));
            }
            let t: AlertType = t.parse().map_err(|e: crate::event::UnknownValue| invalid("types", e.to_string()))?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
    }
    if types.is_empty() {
        return Err(ValidationError::MissingField("types".into()));
    }
    Ok(types)
}

/// Checks an alert: known types, slug name, `alertBefore` exactly when the types include
/// expiration, well-formed filters.
pub fn check_alert(input: &AlertInput<'_>) -> Result<AlertSpec, ValidationError> {
    let types = parse_types(input.types)?;
    check_slug(input.name)?;
    let expiration = types.contains(&AlertType::Expiration);
    let alert_before = match (expiration, input.alert_before) {
        (true, None) => {
            return Err(invalid(
                "alertBefore",
                "required when the types include expiration: how long before notAfter to alert, such as 30d",
            ));
        }
        (true, Some(b)) => Some(b.parse::<AlertBefore>().map_err(|e| invalid("alertBefore", e.to_string()))?),
        (false, Some(_)) => {
            return Err(invalid("alertBefore", "only alerts whose types include expiration have a window"));
        }
        (false, None) => None,
    };
    if input.description.is_some_and(|d| d.chars().count() > 1024) {
        return Err(invalid("description", "must be at most 1024 characters"));
    }
    let filter = CertificateFilter::parse(input.profiles, input.name_patterns)?;
    Ok(AlertSpec {
        types,
        name: input.name.to_string(),
        alert_before,
        description: input.description.map(str::to_string),
        filter,
    })
}

/// A change to an alert, as an operator gives it: what is `Some` replaces what the alert
/// had (`description: Some(None)` removes it; an empty filter list removes that filter).
#[derive(Debug, Clone, Default)]
pub struct AlertChange {
    /// A new name.
    pub name: Option<String>,
    /// A new description, or none.
    pub description: Option<Option<String>>,
    /// New types (entries may be comma-separated).
    pub types: Option<Vec<String>>,
    /// A new expiration window.
    pub alert_before: Option<String>,
    /// A new profile filter.
    pub profiles: Option<Vec<String>>,
    /// A new name-pattern filter.
    pub name_patterns: Option<Vec<String>>,
}

impl AlertChange {
    /// The alert `current` becomes, checked as a new one would be. A window the alert had
    /// is kept while its types include expiration and dropped when they no longer do.
    pub fn apply(&self, current: &AlertSpec) -> Result<AlertSpec, ValidationError> {
        let types: Vec<String> = match &self.types {
            Some(t) => t.clone(),
            None => current.types.iter().map(|t| t.as_str().to_string()).collect(),
        };
        let expiration = parse_types(&types)?.contains(&AlertType::Expiration);
        let alert_before = match &self.alert_before {
            Some(b) => Some(b.clone()),
            None if expiration => current.alert_before.map(|b| b.to_string()),
            None => None,
        };
        let description = match &self.description {
            Some(d) => d.clone(),
            None => current.description.clone(),
        };
        let profiles = self.profiles.clone().unwrap_or_else(|| current.filter.profiles.clone());
        let name_patterns = self
            .name_patterns
            .clone()
            .unwrap_or_else(|| current.filter.name_patterns.iter().map(|p| p.as_str().to_string()).collect());
        check_alert(&AlertInput {
            types: &types,
            name: self.name.as_deref().unwrap_or(&current.name),
            alert_before: alert_before.as_deref(),
            description: description.as_deref(),
            profiles: &profiles,
            name_patterns: &name_patterns,
        })
    }
}

fn check_slug(name: &str) -> Result<(), ValidationError> {
    let well_formed = !name.is_empty()
        && name
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if !well_formed {
        return Err(invalid(
            "name",
            format!(
                "'{name}' must be lowercase letters and digits in words joined by single dashes (e.g. tls-expiry-alert)"
            ),
        ));
    }
    if name.len() > MAX_ALERT_NAME_LEN {
        return Err(invalid("name", format!("must be at most {MAX_ALERT_NAME_LEN} characters")));
    }
    Ok(())
}

/// A checked channel definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Where it sends.
    pub kind: ChannelKind,
    /// Destination (none for PagerDuty).
    pub url: Option<String>,
    /// Signing secret.
    pub secret: Option<crate::Secret>,
    /// PagerDuty routing key.
    pub routing_key: Option<crate::Secret>,
    /// Content-Type override.
    pub content_type: Option<String>,
    /// Requests per second or minute at most (Slack's default when none was given).
    pub rate_limit: Option<RateLimit>,
    /// What it trusts and presents over TLS.
    pub tls: ChannelTls,
}

/// A channel's TLS settings, checked: PEM text, stored as given so that every process
/// sharing the database can use them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelTls {
    /// CA certificates trusted besides the system roots (and `ca_bundle`).
    pub ca_pem: Option<String>,
    /// The client certificate (and its chain) presented to the receiver.
    pub client_cert_pem: Option<String>,
    /// Its private key: a secret, sealed at rest like the signing secret.
    pub client_key: Option<crate::Secret>,
}

impl ChannelTls {
    /// Whether anything differs from the system's defaults.
    pub fn is_set(&self) -> bool {
        self.ca_pem.is_some() || self.client_cert_pem.is_some()
    }
}

/// A channel's TLS settings as given (PEM text).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsInput<'a> {
    /// `caPem`: CA certificates.
    pub ca_pem: Option<&'a str>,
    /// `clientCertPem`: the client certificate.
    pub client_cert_pem: Option<&'a str>,
    /// `clientKeyPem`: its private key.
    pub client_key_pem: Option<&'a str>,
}

/// Checks TLS settings: the CA file holds certificates only, the client certificate and
/// key come together and each parses. Errors name `caPem`, `clientCertPem` or `clientKeyPem`.
pub fn check_tls(input: &TlsInput<'_>) -> Result<ChannelTls, ValidationError> {
    let pem = |field: &str, e: crate::tls_pem::TlsPemError| invalid(field, e.to_string());
    if let Some(ca) = input.ca_pem {
        certificates(ca).map_err(|e| pem("caPem", e))?;
    }
    match (input.client_cert_pem, input.client_key_pem) {
        (Some(cert), Some(key)) => {
            certificates(cert).map_err(|e| pem("clientCertPem", e))?;
            check_private_key(key).map_err(|e| pem("clientKeyPem", e))?;
        }
        (Some(_), None) => return Err(ValidationError::MissingField("clientKeyPem".into())),
        (None, Some(_)) => return Err(ValidationError::MissingField("clientCertPem".into())),
        (None, None) => {}
    }
    Ok(ChannelTls {
        ca_pem: input.ca_pem.map(str::to_string),
        client_cert_pem: input.client_cert_pem.map(str::to_string),
        client_key: input.client_key_pem.map(crate::Secret::new),
    })
}

/// Word that removes a rate limit (`--rate-limit none`, `"rateLimit": "none"`).
pub const NO_RATE_LIMIT: &str = "none";

/// Checks a rate limit as given: `N/s`, `N/m`, or `none` (no limit). Errors name `rateLimit`.
pub fn check_rate_limit(text: &str) -> Result<Option<RateLimit>, ValidationError> {
    if text.trim() == NO_RATE_LIMIT {
        return Ok(None);
    }
    text.parse::<RateLimit>().map(Some).map_err(|e| invalid("rateLimit", e.to_string()))
}

/// What a channel definition may give.
#[derive(Debug, Clone, Default)]
pub struct ChannelInput<'a> {
    /// `webhook`, `slack` or `pagerduty`; detected from the URL when absent.
    pub kind: Option<&'a str>,
    /// Destination URL.
    pub url: Option<&'a str>,
    /// Signing secret.
    pub secret: Option<&'a str>,
    /// PagerDuty routing key.
    pub routing_key: Option<&'a str>,
    /// Content-Type override.
    pub content_type: Option<&'a str>,
    /// `N/s`, `N/m` or `none`; Slack channels default to [`SLACK_DEFAULT`].
    pub rate_limit: Option<&'a str>,
    /// TLS settings.
    pub tls: TlsInput<'a>,
}

/// Slack incoming webhooks live here; such URLs make a Slack channel without `--kind`.
pub const SLACK_PREFIX: &str = "https://hooks.slack.com/";

/// Checks a channel: kind, URL scheme, secret length, routing key, content type, rate
/// limit and TLS settings.
pub fn check_channel(input: &ChannelInput<'_>, allow_insecure_http: bool) -> Result<ChannelSpec, ValidationError> {
    let kind = match input.kind {
        Some(k) => k.parse::<ChannelKind>().map_err(|e| invalid("kind", e.to_string()))?,
        None if input.url.is_some_and(|u| u.starts_with(SLACK_PREFIX)) => ChannelKind::Slack,
        None if input.routing_key.is_some() && input.url.is_none() => ChannelKind::Pagerduty,
        None => ChannelKind::Webhook,
    };
    let url = match (kind, input.url) {
        (ChannelKind::Pagerduty, Some(u)) => Some(check_url(u, allow_insecure_http)?),
        (ChannelKind::Pagerduty, None) => None,
        (_, Some(u)) => Some(check_url(u, allow_insecure_http)?),
        (_, None) => return Err(ValidationError::MissingField("url".into())),
    };
    let routing_key = match (kind, input.routing_key) {
        (ChannelKind::Pagerduty, Some(k)) => {
            if k.len() != 32 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("routingKey", "must be 32 hexadecimal characters"));
            }
            Some(crate::Secret::new(k))
        }
        (ChannelKind::Pagerduty, None) => return Err(ValidationError::MissingField("routingKey".into())),
        (_, Some(_)) => return Err(invalid("routingKey", "only pagerduty channels have a routing key")),
        (_, None) => None,
    };
    let secret = match input.secret {
        Some(_) if kind != ChannelKind::Webhook => {
            return Err(invalid(
                "secret",
                format!("{kind} channels are not signed; only webhook channels take a secret"),
            ));
        }
        Some(s) => {
            validate_secret(s)
                .map_err(|e| invalid("secret", e.to_string().trim_start_matches("secret: ").to_string()))?;
            Some(crate::Secret::new(s))
        }
        None => None,
    };
    let content_type = match input.content_type {
        Some(t) => {
            if !is_media_type(t) {
                // Debug-formatted: a control character in the input is shown escaped.
                return Err(invalid("contentType", format!("{t:?} is not a media type such as application/json")));
            }
            Some(t.to_string())
        }
        None => None,
    };
    let rate_limit = match input.rate_limit {
        Some(text) => check_rate_limit(text)?,
        None if kind == ChannelKind::Slack => Some(SLACK_DEFAULT),
        None => None,
    };
    let tls = check_tls(&input.tls)?;
    Ok(ChannelSpec { kind, url, secret, routing_key, content_type, rate_limit, tls })
}

/// Whether `t` is a media type as HTTP writes one (RFC 9110 §8.3.1): `type/subtype`
/// tokens, then `; name=value` parameters (token or quoted-string values); nothing that
/// could break a header line or smuggle another one.
fn is_media_type(t: &str) -> bool {
    let token =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    let quoted = |s: &str| {
        s.len() >= 2
            && s.starts_with('"')
            && s.ends_with('"')
            && s[1..s.len() - 1].chars().all(|c| c == '\t' || (' '..='~').contains(&c))
    };
    let mut parts = t.split(';');
    let Some((kind, sub)) = parts.next().and_then(|m| m.trim().split_once('/')) else { return false };
    token(kind)
        && token(sub)
        && parts.all(|p| {
            p.trim().split_once('=').is_some_and(|(name, value)| token(name) && (token(value) || quoted(value)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ValidationError) -> String {
        e.field().unwrap()
    }

    fn alert(types: &[&str], name: &str, before: Option<&str>) -> Result<AlertSpec, ValidationError> {
        let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        check_alert(&AlertInput { types: &types, name, alert_before: before, ..Default::default() })
    }

    #[test]
    fn alerts_need_known_types_and_a_slug_name() {
        let a = alert(&["expiration"], "tls-expiry-alert", Some("30d")).unwrap();
        assert_eq!(a.alert_before.unwrap().to_string(), "30d");
        assert_eq!(alert(&["issuance"], "prod-issuance-notify", None).unwrap().alert_before, None);
        assert_eq!(field(alert(&["issued"], "a", None).unwrap_err()), "types");
        assert_eq!(field(alert(&[], "a", None).unwrap_err()), "types");
        for bad in ["", "Tls", "tls_expiry", "-tls", "tls-", "tls--expiry", "tls expiry", &"a".repeat(64)] {
            assert_eq!(field(alert(&["issuance"], bad, None).unwrap_err()), "name", "{bad:?}");
        }
        assert!(alert(&["issuance"], &"a".repeat(63), None).is_ok());
    }

    #[test]
    fn several_types_in_commas_and_repeats_keep_their_order_once() {
        let a = alert(&["issuance, renewal", "revocation,issuance"], "all", None).unwrap();
        assert_eq!(a.types, vec![AlertType::Issuance, AlertType::Renewal, AlertType::Revocation]);
        let e = alert(&["issuance,,renewal"], "x", None).unwrap_err();
        assert_eq!(field(e.clone()), "types");
        assert!(e.to_string().contains("empty entry"), "{e}");
        let e = alert(&["issuance,expired"], "x", None).unwrap_err();
        assert!(e.to_string().contains("'expired'"), "{e}");
    }

    #[test]
    fn alert_before_only_and_always_with_expiration() {
        assert_eq!(field(alert(&["expiration"], "x", None).unwrap_err()), "alertBefore");
        assert_eq!(field(alert(&["issuance,expiration"], "x", None).unwrap_err()), "alertBefore");
        assert_eq!(field(alert(&["expiration"], "x", Some("30s")).unwrap_err()), "alertBefore");
        assert_eq!(field(alert(&["issuance"], "x", Some("30d")).unwrap_err()), "alertBefore");
        assert!(alert(&["renewal", "expiration"], "x", Some("2w")).is_ok());
    }

    #[test]
    fn alert_filters_are_checked() {
        let profiles = vec!["web-server".to_string()];
        let patterns = vec!["*.prod.example.com".to_string(), "a.*.b".to_string()];
        let types = vec!["issuance".to_string()];
        let input = AlertInput {
            types: &types,
            name: "x",
            profiles: &profiles,
            name_patterns: &patterns,
            ..Default::default()
        };
        assert_eq!(field(check_alert(&input).unwrap_err()), "namePatterns");
        let input = AlertInput { name_patterns: &patterns[..1], ..input };
        let spec = check_alert(&input).unwrap();
        assert_eq!(spec.filter.profiles, profiles);
        assert_eq!(spec.filter.name_patterns[0].as_str(), "*.prod.example.com");
    }

    #[test]
    fn a_change_replaces_what_it_gives_and_keeps_the_rest() {
        let types = vec!["issuance,expiration".to_string()];
        let patterns = vec!["*.example.com".to_string()];
        let current = check_alert(&AlertInput {
            types: &types,
            name: "all",
            alert_before: Some("30d"),
            description: Some("d"),
            name_patterns: &patterns,
            ..Default::default()
        })
        .unwrap();
        let same = AlertChange::default().apply(&current).unwrap();
        assert_eq!(same, current);
        let renamed = AlertChange { name: Some("other".into()), description: Some(None), ..Default::default() };
        let renamed = renamed.apply(&current).unwrap();
        assert_eq!((renamed.name.as_str(), renamed.description), ("other", None));
        assert_eq!(renamed.filter, current.filter);
        let narrowed = AlertChange { types: Some(vec!["renewal".into()]), ..Default::default() };
        let narrowed = narrowed.apply(&current).unwrap();
        assert_eq!((narrowed.types.clone(), narrowed.alert_before), (vec![AlertType::Renewal], None), "window dropped");
        let cleared = AlertChange { name_patterns: Some(vec![]), ..Default::default() }.apply(&current).unwrap();
        assert!(cleared.filter.is_empty());
        let no_window = AlertChange { types: Some(vec!["expiration".into()]), ..Default::default() };
        assert!(no_window.apply(&narrowed).is_err(), "expiration needs a window");
        let bad = AlertChange { alert_before: Some("30d".into()), ..Default::default() };
        assert_eq!(field(bad.apply(&narrowed).unwrap_err()), "alertBefore");
    }

    #[test]
    fn channels_need_https_unless_insecure_is_allowed() {
        let input = ChannelInput { url: Some("http://127.0.0.1:9000/hook"), ..Default::default() };
        let e = check_channel(&input, false).unwrap_err();
        assert_eq!(field(e.clone()), "url");
        assert!(e.to_string().contains("allow_insecure_http"), "{e}");
        assert_eq!(check_channel(&input, true).unwrap().kind, ChannelKind::Webhook);
        for bad in ["ftp://x", "https://", "example.com/hook", "https:// x"] {
            let input = ChannelInput { url: Some(bad), ..Default::default() };
            assert_eq!(field(check_channel(&input, true).unwrap_err()), "url", "{bad}");
        }
        assert_eq!(field(check_channel(&ChannelInput::default(), false).unwrap_err()), "url");
    }

    #[test]
    fn slack_is_detected_and_pagerduty_needs_a_routing_key() {
        let slack = ChannelInput { url: Some("https://hooks.slack.com/services/T/B/X"), ..Default::default() };
        assert_eq!(check_channel(&slack, false).unwrap().kind, ChannelKind::Slack);
        let pd = ChannelInput {
            kind: Some("pagerduty"),
            routing_key: Some("0123456789abcdef0123456789ABCDEF"),
            ..Default::default()
        };
        let spec = check_channel(&pd, false).unwrap();
        assert_eq!((spec.kind, spec.url), (ChannelKind::Pagerduty, None));
        let short = ChannelInput { kind: Some("pagerduty"), routing_key: Some("abc"), ..Default::default() };
        assert_eq!(field(check_channel(&short, false).unwrap_err()), "routingKey");
        let missing = ChannelInput { kind: Some("pagerduty"), ..Default::default() };
        assert_eq!(field(check_channel(&missing, false).unwrap_err()), "routingKey");
        let bad_kind = ChannelInput { kind: Some("email"), url: Some("https://x.test"), ..Default::default() };
        assert_eq!(field(check_channel(&bad_kind, false).unwrap_err()), "kind");
    }

    #[test]
    fn secrets_and_content_types_are_checked() {
        let short = ChannelInput { url: Some("https://x.test"), secret: Some("too-short"), ..Default::default() };
        let e = check_channel(&short, false).unwrap_err();
        assert_eq!(field(e.clone()), "secret");
        assert!(!e.to_string().contains("too-short"), "the secret is never echoed: {e}");
        let ok = ChannelInput {
            url: Some("https://x.test"),
            secret: Some(&"s".repeat(32)),
            content_type: Some("application/json"),
            ..Default::default()
        };
        let spec = check_channel(&ok, false).unwrap();
        assert!(spec.secret.is_some());
        let ct = ChannelInput { url: Some("https://x.test"), content_type: Some("json"), ..Default::default() };
        assert_eq!(field(check_channel(&ct, false).unwrap_err()), "contentType");
    }

    /// Issue 14: control characters used to pass the content-type check.
    #[test]
    fn media_types_are_checked_as_http_writes_them() {
        for ok in ["application/json", "application/cloudevents+json; charset=utf-8", "text/plain;q=\"a b\""] {
            assert!(is_media_type(ok), "{ok}");
        }
        for bad in [
            "json",
            "application/",
            "/json",
            "application/json\u{0}",
            "application/json\tx",
            "a/b; x",
            "a/b\r\nX-Injected: 1",
            "application/jsón",
            "a/b; c=\"\u{7}\"",
        ] {
            assert!(!is_media_type(bad), "{bad:?}");
            let input = ChannelInput { url: Some("https://x.test"), content_type: Some(bad), ..Default::default() };
            let e = check_channel(&input, false).unwrap_err();
            assert_eq!(field(e.clone()), "contentType");
            assert!(!e.to_string().chars().any(|c| c.is_control()), "no control character in the error: {e:?}");
        }
    }

    #[test]
    fn rate_limits_are_checked_and_slack_gets_its_default() {
        let with = |url: &'static str, limit: Option<&'static str>| ChannelInput {
            url: Some(url),
            rate_limit: limit,
            ..Default::default()
        };
        let slack = "https://hooks.slack.com/services/T/B/X";
        let webhook = "https://x.test/hook";
        assert_eq!(check_channel(&with(slack, None), false).unwrap().rate_limit, Some(SLACK_DEFAULT));
        assert_eq!(check_channel(&with(slack, Some("none")), false).unwrap().rate_limit, None);
        assert_eq!(check_channel(&with(webhook, None), false).unwrap().rate_limit, None);
        let two = check_channel(&with(webhook, Some("2/s")), false).unwrap().rate_limit.unwrap();
        assert_eq!(two.to_string(), "2/s");
        for bad in ["0/s", "abc", "5/h"] {
            assert_eq!(field(check_channel(&with(webhook, Some(bad)), false).unwrap_err()), "rateLimit", "{bad}");
        }
    }

    #[test]
    fn tls_settings_need_certificates_and_a_key_with_the_client_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.test".to_string()]).unwrap().self_signed(&key).unwrap();
        let (cert, key) = (cert.pem(), key.serialize_pem());
        let tls = |ca, c, k| TlsInput { ca_pem: ca, client_cert_pem: c, client_key_pem: k };
        let ok = check_tls(&tls(Some(&cert), Some(&cert), Some(&key))).unwrap();
        assert!(ok.is_set() && ok.client_key.is_some());
        assert!(!check_tls(&TlsInput::default()).unwrap().is_set());
        assert_eq!(field(check_tls(&tls(Some("junk"), None, None)).unwrap_err()), "caPem");
        assert_eq!(field(check_tls(&tls(None, Some(&cert), None)).unwrap_err()), "clientKeyPem");
        assert_eq!(field(check_tls(&tls(None, None, Some(&key))).unwrap_err()), "clientCertPem");
        assert_eq!(field(check_tls(&tls(None, Some(&key), Some(&key))).unwrap_err()), "clientCertPem");
        let e = check_tls(&tls(None, Some(&cert), Some(&cert))).unwrap_err();
        assert_eq!(field(e.clone()), "clientKeyPem");
        let in_error = &key[40..80];
        assert!(!e.to_string().contains(in_error), "no PEM in the error");
    }
}
