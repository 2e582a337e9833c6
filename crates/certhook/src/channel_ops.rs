//! Channel operations shared by the CLI and the HTTP API: creation with the verification
//! handshake, re-verification, URL changes, rate limit and TLS changes, secret rotation
//! and test sends.

use std::time::Instant;

use certhook_core::config::Config;
use certhook_core::destination::check_url;
use certhook_core::event::{ChannelKind, ChannelState, DeliveryType};
use certhook_core::lifecycle::{VERIFICATION_TTL, new_token, token_hash};
use certhook_core::render::{ChannelRef, render_test_event, render_verification_event};
use certhook_core::sign::validate_secret;
use certhook_core::subscription::{ChannelInput, ChannelTls, TlsInput, check_channel, check_rate_limit, check_tls};
use certhook_core::validate::ValidationError;
use certhook_store::{Channel, ChannelUpdate, NewChannel, Store, StoreError, Verification};
use certhook_worker::targets::Target;
use certhook_worker::{Sender, SenderConfig};
use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

/// Why a channel operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Bad input, naming the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Unknown id, refused state change, or a database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The test send could not be set up.
    #[error("{0}")]
    Setup(String),
}

impl ChannelError {
    /// True when the caller's input is at fault.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ChannelError::Invalid(_) => true,
            ChannelError::Store(e) => e.is_bad_input(),
            ChannelError::Setup(_) => false,
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> ChannelError {
    ChannelError::Invalid(ValidationError::InvalidField { field: field.into(), reason: reason.into() })
}

async fn channel_ref(store: &Store, channel_id: Uuid, alert_id: Uuid) -> Result<ChannelRef, StoreError> {
    let alert = store.get_alert(alert_id).await?;
    Ok(ChannelRef { id: channel_id, alert_id, application_id: alert.application_id })
}

/// A fresh token and the verification event that carries it to the endpoint. The token
/// is not returned: the operator reads it where the endpoint received it.
fn verification(config: &Config, channel: &ChannelRef) -> Verification {
    let token = new_token();
    let now = Utc::now();
    let expires_at = now + VERIFICATION_TTL;
    let message_id = Uuid::now_v7();
    let body =
        render_verification_event(&config.render_settings(), channel, &message_id.to_string(), now, &token, expires_at);
    Verification { token_hash: token_hash(&token), expires_at, message_id, body }
}

/// Creates a channel; a webhook channel is verified unless `no_verify`.
pub async fn create(
    store: &Store,
    config: &Config,
    alert_id: Uuid,
    input: &ChannelInput<'_>,
    no_verify: bool,
) -> Result<Channel, ChannelError> {
    let spec = check_channel(input, config.allow_insecure_http)?;
    check_client(&spec.tls)?;
    let id = Uuid::now_v7();
    let verify = !no_verify && spec.kind == ChannelKind::Webhook;
    let new = NewChannel {
        id,
        alert_id,
        kind: spec.kind,
        url: spec.url,
        state: if verify { ChannelState::PendingVerification } else { ChannelState::Active },
        secret: spec.secret,
        routing_key: spec.routing_key,
        content_type: spec.content_type,
        rate_limit: spec.rate_limit,
        tls: spec.tls,
    };
    let v = if verify { Some(verification(config, &channel_ref(store, id, alert_id).await?)) } else { None };
    Ok(store.create_channel(&new, v.as_ref()).await?)
}

/// Asks the TLS stack whether checked PEM makes a client: the key must open and match its
/// certificate. The error names the field at fault, never the key.
fn check_client(tls: &ChannelTls) -> Result<(), ChannelError> {
    if !tls.is_set() {
        return Ok(());
    }
    // The CA certificates alone first, so a failure is blamed on the field that has it.
    if tls.ca_pem.is_some() {
        let ca_only = ChannelTls { ca_pem: tls.ca_pem.clone(), ..ChannelTls::default() };
        certhook_worker::tls::check(&ca_only).map_err(|e| invalid("caPem", format!("not usable for TLS: {e}")))?;
    }
    if tls.client_key.is_some() {
        certhook_worker::tls::check(tls).map_err(|e| invalid("clientKeyPem", format!("not usable for TLS: {e}")))?;
    }
    Ok(())
}

/// Changes to a channel's settings as given: `None` leaves one alone; `Some(None)` (or a
/// rate limit of `none`) removes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsInput<'a> {
    /// `N/s`, `N/m` or `none`.
    pub rate_limit: Option<&'a str>,
    /// New CA certificates (PEM), or none.
    pub ca_pem: Option<Option<&'a str>>,
    /// A new client certificate and key (PEM), or neither.
    pub client_identity: Option<Option<(&'a str, &'a str)>>,
}

impl SettingsInput<'_> {
    /// Whether it changes anything.
    pub fn is_empty(&self) -> bool {
        self.rate_limit.is_none() && self.ca_pem.is_none() && self.client_identity.is_none()
    }
}

/// Changes a channel's rate limit and TLS settings; each is checked as on creation, and
/// nothing is stored unless all of them are good.
pub async fn update_settings(store: &Store, id: Uuid, input: &SettingsInput<'_>) -> Result<Channel, ChannelError> {
    let rate_limit = input.rate_limit.map(check_rate_limit).transpose()?;
    let tls = check_tls(&TlsInput {
        ca_pem: input.ca_pem.flatten(),
        client_cert_pem: input.client_identity.flatten().map(|(c, _)| c),
        client_key_pem: input.client_identity.flatten().map(|(_, k)| k),
    })?;
    check_client(&tls)?;
    let update = ChannelUpdate {
        rate_limit,
        ca_pem: input.ca_pem.map(|_| tls.ca_pem.clone()),
        client_identity: input.client_identity.map(|_| tls.client_cert_pem.clone().zip(tls.client_key.clone())),
    };
    Ok(store.update_channel(id, &update).await?)
}

/// Sends a new verification token; the channel waits in `pending_verification`.
pub async fn reverify(store: &Store, config: &Config, id: Uuid) -> Result<Channel, ChannelError> {
    let channel = store.get_channel(id).await?;
    if channel.kind != ChannelKind::Webhook {
        return Err(ChannelError::Store(StoreError::Conflict(format!(
            "{} channels are not verified; only webhook channels are",
            channel.kind
        ))));
    }
    let v = verification(config, &channel_ref(store, id, channel.alert_id).await?);
    Ok(store.start_verification(id, None, &v).await?)
}

/// Re-points a channel; a webhook channel is verified again at its new URL.
pub async fn update_url(store: &Store, config: &Config, id: Uuid, url: &str) -> Result<Channel, ChannelError> {
    let url = check_url(url, config.allow_insecure_http)?;
    let channel = store.get_channel(id).await?;
    if channel.kind != ChannelKind::Webhook {
        return Ok(store.set_channel_url(id, &url).await?);
    }
    let v = verification(config, &channel_ref(store, id, channel.alert_id).await?);
    Ok(store.start_verification(id, Some(&url), &v).await?)
}

/// Replaces the signing secret; the previous one also signs until `grace` has passed.
pub async fn rotate_secret(store: &Store, id: Uuid, secret: &str, grace: &str) -> Result<Channel, ChannelError> {
    validate_secret(secret).map_err(|e| invalid("secret", e.to_string().trim_start_matches("secret: ").to_string()))?;
    let grace = certhook_core::duration::parse_duration(grace).map_err(|e| invalid("grace", e))?;
    let channel = store.get_channel(id).await?;
    if channel.kind != ChannelKind::Webhook {
        return Err(invalid("secret", format!("{} channels are not signed", channel.kind)));
    }
    Ok(store.rotate_secret(id, &certhook_core::Secret::new(secret), grace).await?)
}

/// What a test send got back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    /// The channel.
    pub channel_id: Uuid,
    /// The response status, if one came.
    pub status_code: Option<u16>,
    /// How long the request took.
    pub latency_ms: u64,
    /// Whether it was a 2xx.
    pub ok: bool,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// Sends a `webhook.test` event now, synchronously; nothing is queued.
pub async fn test(store: &Store, config: &Config, id: Uuid) -> Result<TestReport, ChannelError> {
    let target = Target::new(store.channel_target(id).await?);
    if let Some(why) = &target.channel.unreadable {
        return Err(ChannelError::Setup(why.clone()));
    }
    let sender = Sender::new(&SenderConfig::from_config(config)).map_err(|e| ChannelError::Setup(e.to_string()))?;
    let event_id = Uuid::now_v7().to_string();
    let c = &target.channel;
    let channel = ChannelRef { id, alert_id: c.alert_id, application_id: c.application_id };
    let body = render_test_event(&config.render_settings(), &channel, &event_id, Utc::now());
    let started = Instant::now();
    let response = sender
        .send_now(&target, &body, &event_id, DeliveryType::Test, &config.pagerduty_url)
        .await
        .map_err(ChannelError::Setup)?;
    let status_code = match response.result {
        certhook_worker::classify::AttemptResult::Status(s) => Some(s),
        _ => None,
    };
    Ok(TestReport {
        channel_id: id,
        status_code,
        latency_ms: started.elapsed().as_millis() as u64,
        ok: status_code.is_some_and(|s| (200..300).contains(&s)),
        error: response.error,
    })
}
