//! Configuration (SPEC §8): defaults, then a TOML file, then `CERTHOOK_*` environment
//! variables (nested keys joined with `__`). Unknown keys are refused, naming the key and
//! where it came from. Loading is pure: the file text and the environment are arguments.

use std::{net::SocketAddr, time::Duration};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::duration::serde_duration;
use crate::render::{DEFAULT_TYPE_PREFIX, RenderSettings};
use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CERTHOOK_";

/// The whole configuration of a certhook process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://certhook.db` or `postgres://user@host/db`.
    pub database_url: String,
    /// Address of the HTTP API, `/metrics`, `/healthz` and `/readyz`.
    pub listen: SocketAddr,
    /// Optional separate address for `/metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token for `/v1`; required when `listen` is not loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// 32 bytes, base64: channel secrets and routing keys are sealed with it in the
    /// database. Without it they are stored in plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Secret>,
    /// Keys that sealed secrets before `secret_key` replaced them: they still open what
    /// they sealed until `certhook secrets rewrap` has re-sealed it.
    pub previous_secret_keys: Vec<Secret>,
    /// Base of `metadata.viewUrl`; defaults to `http://<listen>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// CloudEvent `type` prefix.
    pub event_type_prefix: String,
    /// Name of the Infisical-style signature header.
    pub signature_header: String,
    /// Accept `http://` channel URLs (local development and tests).
    pub allow_insecure_http: bool,
    /// Private destinations that deliveries may reach anyway (e.g. `127.0.0.0/8`).
    pub allowed_networks: Vec<IpNet>,
    /// `Host` header values the API answers to besides the listen address, `localhost` and
    /// `public_url`'s host (names a client or proxy uses to reach it, e.g. `certhook.pki.svc`).
    pub allowed_hosts: Vec<String>,
    /// How often `serve` scans the inventory for expiring certificates.
    #[serde(with = "serde_duration")]
    pub scan_interval: Duration,
    /// How long delivered rows and attempt logs are kept.
    #[serde(with = "serde_duration")]
    pub retention: Duration,
    /// Largest accepted event, in bytes of JSON.
    pub max_event_bytes: usize,
    /// Largest expiration batch in one event.
    pub max_certificates_per_event: usize,
    /// PagerDuty Events API v2 address.
    pub pagerduty_url: String,
    /// A PEM file of CA certificates that HTTPS deliveries trust besides the system roots
    /// (a private PKI's receivers); read again when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// The delivery worker's settings.
    pub delivery: DeliveryConfig,
}

/// `[delivery]`: how the worker sends, retries and isolates channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Whole-request timeout; a 2xx must arrive within it.
    #[serde(with = "serde_duration")]
    pub request_timeout: Duration,
    /// TCP + TLS connect timeout.
    #[serde(with = "serde_duration")]
    pub connect_timeout: Duration,
    /// Attempts in all before dead-lettering.
    pub max_attempts: u32,
    /// Ceiling of the first retry's delay.
    #[serde(with = "serde_duration")]
    pub initial_backoff: Duration,
    /// Growth of the ceiling per retry.
    pub backoff_factor: f64,
    /// Cap of every retry delay.
    #[serde(with = "serde_duration")]
    pub max_backoff: Duration,
    /// Requests in flight per process.
    pub concurrency: usize,
    /// Requests in flight per channel.
    pub channel_concurrency: usize,
    /// Consecutive failures that open a channel's circuit breaker.
    pub circuit_breaker_threshold: u32,
    /// How long a claim lasts before another worker may take the delivery over.
    #[serde(with = "serde_duration")]
    pub lease_duration: Duration,
    /// Failing without a single success for this long disables a channel.
    #[serde(with = "serde_duration")]
    pub disable_after: Duration,
    /// How often to look for due work besides notifications.
    #[serde(with = "serde_duration")]
    pub poll_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://certhook.db".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            admin_token: None,
            secret_key: None,
            previous_secret_keys: Vec::new(),
            public_url: None,
            event_type_prefix: DEFAULT_TYPE_PREFIX.into(),
            signature_header: "x-infisical-signature".into(),
            allow_insecure_http: false,
            allowed_networks: Vec::new(),
            allowed_hosts: Vec::new(),
            scan_interval: Duration::from_secs(3600),
            retention: Duration::from_secs(7 * 86400),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_certificates_per_event: 100,
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            ca_bundle: None,
            delivery: DeliveryConfig::default(),
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        DeliveryConfig {
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_attempts: retry.max_attempts,
            initial_backoff: retry.initial_backoff,
            backoff_factor: retry.backoff_factor,
            max_backoff: retry.max_backoff,
            concurrency: 256,
            channel_concurrency: 8,
            circuit_breaker_threshold: 5,
            lease_duration: Duration::from_secs(60),
            disable_after: Duration::from_secs(5 * 86400),
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML.
    #[error("{origin}: invalid TOML: {message}")]
    Toml {
        /// The file's name.
        origin: String,
        /// The parser's complaint.
        message: String,
    },
    /// A key certhook does not have.
    #[error("unknown configuration key '{key}' (from {origin})")]
    UnknownKey {
        /// Dotted key, e.g. `delivery.max_attempt`.
        key: String,
        /// The file or environment variable it came from.
        origin: String,
    },
    /// A key with a value of the wrong type or out of range.
    #[error("configuration key '{key}': {message}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The default `max_event_bytes`.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 262_144;

/// The shortest admin token accepted: 32 random characters are beyond guessing over HTTP.
pub const MIN_ADMIN_TOKEN: usize = 32;

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

/// The annotated configuration the repository ships as `certhook.example.toml`: every key
/// at its default (`certhook config defaults` prints it; a test keeps it in step).
pub const EXAMPLE: &str = include_str!("../../../certhook.example.toml");

/// Keys whose values are secrets: never quoted back in an error.
const SECRET_KEYS: &[&str] = &["admin_token", "secret_key", "previous_secret_keys"];

/// Keys that exist but have no default, so they are absent from the serialized defaults.
const OPTIONAL_KEYS: &[&str] = &["metrics_listen", "admin_token", "secret_key", "public_url", "ca_bundle"];

/// A configuration, and the `CERTHOOK_*` environment variables that named no key.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Variables ignored: Kubernetes injects `CERTHOOK_PORT`, `CERTHOOK_SERVICE_HOST`… for
    /// a Service named certhook, so an unknown variable is named in a warning, never fatal.
    pub ignored_env: Vec<String>,
}

/// `url` with the password of its user part, if any, replaced by `***`.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

impl Config {
    /// The configuration as TOML with every secret replaced by a note that it is set, for
    /// `certhook config check` to show what is in effect.
    pub fn redacted_toml(&self) -> String {
        let Ok(Value::Table(mut tree)) = Value::try_from(self) else { unreachable!("a struct serializes to a table") };
        for key in SECRET_KEYS {
            match tree.get_mut(*key) {
                Some(Value::String(s)) => *s = "(set; not shown)".into(),
                Some(Value::Array(a)) => a.iter_mut().for_each(|v| *v = Value::String("(set; not shown)".into())),
                _ => {}
            }
        }
        // A URL says where; a password in it is a secret like the others.
        for key in ["database_url", "public_url"] {
            if let Some(Value::String(s)) = tree.get_mut(key) {
                *s = without_password(s);
            }
        }
        toml::to_string(&Value::Table(tree)).expect("a TOML table prints")
    }

    /// Builds the configuration from defaults, an optional `(name, TOML text)` file, and the
    /// process environment given as `(name, value)` pairs (only `CERTHOOK_*` ones are read);
    /// see [`Config::load_reporting`] for the variables it ignored.
    pub fn load<I>(file: Option<(&str, &str)>, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        Config::load_reporting(file, env).map(|l| l.config)
    }

    /// As [`Config::load`], also saying which `CERTHOOK_*` variables named no key (a file's
    /// unknown key is an error: a file is written for certhook, the environment is shared).
    pub fn load_reporting<I>(file: Option<(&str, &str)>, env: I) -> Result<Loaded, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        // Config's defaults have string keys and no value toml cannot hold.
        let mut tree = match Value::try_from(Config::default()).expect("defaults serialize to TOML") {
            Value::Table(t) => t,
            _ => unreachable!("a struct serializes to a table"),
        };
        let defaults = tree.clone();
        if let Some((origin, text)) = file {
            let table: Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Toml {
                origin: origin.into(),
                message: e.message().into(),
            })?;
            check_keys(&table, &defaults, "", origin)?;
            merge(&mut tree, table);
        }
        let mut env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        env.sort();
        let mut ignored_env = Vec::new();
        for (name, raw) in env {
            let path: Vec<String> = name[ENV_PREFIX.len()..].split("__").map(|p| p.to_ascii_lowercase()).collect();
            let key = path.join(".");
            let default = lookup(&defaults, &path);
            if default.is_none() && !(path.len() == 1 && OPTIONAL_KEYS.contains(&key.as_str())) {
                ignored_env.push(name);
                continue;
            }
            let value = match default {
                Some(Value::String(_)) | None => Value::String(raw),
                Some(_) => parse_scalar(&raw),
            };
            set(&mut tree, &path, value);
        }
        let config: Config = serde_path_to_error::deserialize(Value::Table(tree)).map_err(|e| {
            let key = e.path().to_string();
            // serde's message quotes the value it could not take, and these values are secrets.
            if SECRET_KEYS.iter().any(|k| key.starts_with(k)) {
                let wanted = if key.starts_with("previous_secret_keys") { "a list of strings" } else { "a string" };
                return invalid(&key, format!("must be {wanted} (the value is not shown)"));
            }
            invalid(&key, e.into_inner().message())
        })?;
        config.validate()?;
        Ok(Loaded { config, ignored_env })
    }

    /// Checks the rules that span keys or ranges serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        if let Some(token) = &self.admin_token {
            // The length only: the token itself never goes into an error.
            let n = token.expose().chars().count();
            if n < MIN_ADMIN_TOKEN {
                return Err(invalid(
                    "admin_token",
                    format!("must be at least {MIN_ADMIN_TOKEN} characters (it guards the whole API), got {n}"),
                ));
            }
        }
        if let Some(key) = &self.secret_key {
            crate::seal::Keyring::new(Some(key), &[]).map_err(|e| invalid("secret_key", e.to_string()))?;
        }
        for (i, key) in self.previous_secret_keys.iter().enumerate() {
            crate::seal::Keyring::new(Some(key), &[])
                .map_err(|e| invalid(&format!("previous_secret_keys[{i}]"), e.to_string()))?;
        }
        let scheme_ok = ["sqlite:", "postgres://", "postgresql://"].iter().any(|p| self.database_url.starts_with(p));
        if !scheme_ok {
            return Err(invalid("database_url", "must start with sqlite:, postgres:// or postgresql://"));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid("public_url", "must be an http:// or https:// URL"));
        }
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            let ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c));
            if !ok {
                return Err(invalid(
                    &format!("allowed_hosts[{i}]"),
                    format!("{host:?} is not a host name or host:port (no scheme, path or spaces)"),
                ));
            }
        }
        if self.event_type_prefix.is_empty() || self.event_type_prefix.contains(char::is_whitespace) {
            return Err(invalid("event_type_prefix", "must be a non-empty string without spaces"));
        }
        let header_ok = !self.signature_header.is_empty()
            && self.signature_header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !header_ok {
            return Err(invalid("signature_header", "must be an HTTP header name (letters, digits, '-')"));
        }
        if self.max_event_bytes == 0 {
            return Err(invalid("max_event_bytes", "must be at least 1"));
        }
        if self.max_certificates_per_event == 0 {
            return Err(invalid("max_certificates_per_event", "must be at least 1"));
        }
        if self.scan_interval.is_zero() {
            return Err(invalid("scan_interval", "must be longer than 0"));
        }
        for (key, v) in [
            ("delivery.request_timeout", d.request_timeout),
            ("delivery.connect_timeout", d.connect_timeout),
            ("delivery.poll_interval", d.poll_interval),
        ] {
            if v.is_zero() {
                return Err(invalid(key, "must be longer than 0"));
            }
        }
        if d.max_attempts == 0 {
            return Err(invalid("delivery.max_attempts", "must be at least 1"));
        }
        if !(d.backoff_factor.is_finite() && d.backoff_factor >= 1.0) {
            return Err(invalid("delivery.backoff_factor", "must be a number of at least 1.0"));
        }
        if d.max_backoff < d.initial_backoff {
            return Err(invalid("delivery.max_backoff", "must not be shorter than delivery.initial_backoff"));
        }
        for (key, v) in
            [("delivery.concurrency", d.concurrency), ("delivery.channel_concurrency", d.channel_concurrency)]
        {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if d.circuit_breaker_threshold == 0 {
            return Err(invalid("delivery.circuit_breaker_threshold", "must be at least 1"));
        }
        // A lease must outlive the request plus the time to record its outcome, or a slow
        // but successful send would be taken over and sent twice.
        let min_lease = d.request_timeout + Duration::from_secs(2);
        if d.lease_duration < min_lease {
            return Err(invalid(
                "delivery.lease_duration",
                format!(
                    "must be at least delivery.request_timeout + 2s ({}), got {}",
                    humantime::format_duration(min_lease),
                    humantime::format_duration(d.lease_duration)
                ),
            ));
        }
        Ok(())
    }

    /// The base of `metadata.viewUrl`: `public_url`, or `http://<listen>`.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// What rendering needs from this configuration.
    pub fn render_settings(&self) -> RenderSettings {
        RenderSettings { type_prefix: self.event_type_prefix.clone(), public_url: self.public_url() }
    }

    /// The keys that seal channel secrets (`secret_key`, `previous_secret_keys`).
    pub fn keyring(&self) -> Result<crate::seal::Keyring, ConfigError> {
        crate::seal::Keyring::new(self.secret_key.as_ref(), &self.previous_secret_keys)
            .map_err(|e| invalid("secret_key", e.to_string()))
    }

    /// The retry schedule of `[delivery]`.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: self.delivery.initial_backoff,
            backoff_factor: self.delivery.backoff_factor,
            max_backoff: self.delivery.max_backoff,
            max_attempts: self.delivery.max_attempts,
        }
    }
}

fn check_keys(table: &Table, defaults: &Table, prefix: &str, origin: &str) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = format!("{prefix}{k}");
        match defaults.get(k) {
            Some(Value::Table(sub)) => {
                if let Value::Table(given) = v {
                    check_keys(given, sub, &format!("{key}."), origin)?;
                }
            }
            Some(_) => {}
            None if prefix.is_empty() && OPTIONAL_KEYS.contains(&k.as_str()) => {}
            None => return Err(ConfigError::UnknownKey { key, origin: origin.into() }),
        }
    }
    Ok(())
}

fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn lookup<'a>(table: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let v = table.get(first)?;
    match (rest.is_empty(), v) {
        (true, v) => Some(v),
        (false, Value::Table(t)) => lookup(t, rest),
        _ => None,
    }
}

fn set(table: &mut Table, path: &[String], value: Value) {
    let (first, rest) = path.split_first().expect("environment keys have at least one part");
    if rest.is_empty() {
        table.insert(first.clone(), value);
    } else if let Some(Value::Table(t)) = table.get_mut(first) {
        set(t, rest, value);
    }
}

/// Reads an environment value as a TOML value (`5`, `true`, `["127.0.0.0/8"]`), else a string.
fn parse_scalar(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests;
