//! The HTTP API for applications, alerts and channels (SPEC §6): the same objects and
//! rules as the CLI's `--json` output, through [`crate::channel_ops`] for channel operations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use certhook_core::lifecycle::ChannelAction;
use certhook_core::subscription::{AlertChange, AlertInput, ChannelInput, TlsInput, check_alert};
use certhook_store::{Alert, Application, Channel, NewAlert};
use serde::Deserialize;
use utoipa::ToSchema;

use super::input::{json_body, parse_uuid, present};
use super::{ApiError, ApiState, ErrorBody};
use crate::channel_ops::{self, ChannelError, TestReport};

/// The admin routes, to be nested under `/v1`.
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/applications", get(list_applications).post(create_application))
        .route("/applications/{id}", get(get_application).delete(delete_application))
        .route("/applications/{id}/alerts", get(list_alerts).post(create_alert))
        .route("/alerts/{id}", get(get_alert).patch(patch_alert).delete(delete_alert))
        .route("/alerts/{id}/channels", get(list_channels).post(create_channel))
        .route("/channels/{id}", get(get_channel).patch(patch_channel).delete(delete_channel))
        .route("/channels/{id}/activate", post(activate))
        .route("/channels/{id}/reverify", post(reverify))
        .route("/channels/{id}/test", post(test))
        .route("/channels/{id}/pause", post(pause))
        .route("/channels/{id}/resume", post(resume))
        .route("/channels/{id}/enable", post(enable))
        .route("/channels/{id}/rotate-secret", post(rotate_secret))
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Invalid(v) => v.into(),
            ChannelError::Store(s) => s.into(),
            ChannelError::Setup(m) => ApiError::internal(m),
        }
    }
}

/// `POST /v1/applications`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplicationBody {
    name: String,
}

/// List applications.
#[utoipa::path(get, path = "/v1/applications", security(("bearer" = [])), responses((status = 200, body = Vec<Application>)))]
async fn list_applications(State(s): State<ApiState>) -> Result<Json<Vec<Application>>, ApiError> {
    Ok(Json(s.store.list_applications().await?))
}

/// Create an application.
///
/// An application groups certificates and the alerts about them. Its name must not be empty and must not be taken by another application (409).
#[utoipa::path(post, path = "/v1/applications", request_body = NewApplicationBody, security(("bearer" = [])),
    responses((status = 201, body = Application), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_application(State(s): State<ApiState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let body: NewApplicationBody = json_body(&body)?;
    Ok((StatusCode::CREATED, Json(s.store.create_application(&body.name).await?)).into_response())
}

/// Get an application.
#[utoipa::path(get, path = "/v1/applications/{id}", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Application), (status = 404, body = ErrorBody)))]
async fn get_application(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Application>, ApiError> {
    Ok(Json(s.store.get_application(parse_uuid("id", &id)?).await?))
}

#[derive(Deserialize)]
struct CascadeQuery {
    #[serde(default)]
    cascade: bool,
}

/// Delete an application.
///
/// Refused (409) while the application has alerts, unless `cascade=true`: then its alerts and their channels go too, and their waiting deliveries are dead-lettered (`channel_deleted`).
#[utoipa::path(delete, path = "/v1/applications/{id}", params(("id" = String, Path),
    ("cascade" = Option<bool>, Query, description = "delete its alerts and channels too")), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_application(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    query: axum::extract::Query<CascadeQuery>,
) -> Result<StatusCode, ApiError> {
    s.store.delete_application(parse_uuid("id", &id)?, query.cascade).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/applications/{id}/alerts`: `types` (or, from older clients, one `type`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAlertBody {
    /// Event types the one channel receives: expiration, issuance, renewal, revocation.
    types: Option<Vec<String>>,
    /// One event type (older clients); give `types` or `type`.
    #[serde(rename = "type")]
    alert_type: Option<String>,
    name: String,
    alert_before: Option<String>,
    description: Option<String>,
    /// Only certificates of one of these profiles.
    #[serde(default)]
    profiles: Vec<String>,
    /// Only certificates with a name matching one of these DNS patterns (`*.example.com`).
    #[serde(default)]
    name_patterns: Vec<String>,
}

/// `types`, or the one `type` of an older client; not both.
fn types_of(types: Option<Vec<String>>, alert_type: Option<String>) -> Result<Option<Vec<String>>, ApiError> {
    match (types, alert_type) {
        (Some(_), Some(_)) => Err(ApiError::invalid("type", "type: give either types or type, not both")),
        (Some(t), None) => Ok(Some(t)),
        (None, Some(t)) => Ok(Some(vec![t])),
        (None, None) => Ok(None),
    }
}

/// An error about `types` names `type` for a client that sent `type`.
fn named_as_sent(mut e: ApiError, one_type: bool) -> ApiError {
    if one_type && e.field.as_deref() == Some("types") {
        e.field = Some("type".into());
        e.message = e.message.replacen("types", "type", 1);
    }
    e
}

/// `PATCH /v1/alerts/{id}`: what is given replaces what the alert had.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertPatchBody {
    name: Option<String>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    types: Option<Vec<String>>,
    #[serde(rename = "type")]
    alert_type: Option<String>,
    alert_before: Option<String>,
    /// `[]` removes the filter.
    profiles: Option<Vec<String>>,
    /// `[]` removes the filter.
    name_patterns: Option<Vec<String>>,
}

/// Change an alert.
///
/// A field left out keeps its value; `null` (or `[]` for a list) removes it. Channels, secrets and verification stay as they are.
#[utoipa::path(patch, path = "/v1/alerts/{id}", params(("id" = String, Path)), request_body = AlertPatchBody,
    security(("bearer" = [])), responses((status = 200, body = Alert), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn patch_alert(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Alert>, ApiError> {
    let id = parse_uuid("id", &id)?;
    let body: AlertPatchBody = json_body(&body)?;
    let one_type = body.alert_type.is_some();
    let change = AlertChange {
        name: body.name,
        description: body.description,
        types: types_of(body.types, body.alert_type)?,
        alert_before: body.alert_before,
        profiles: body.profiles,
        name_patterns: body.name_patterns,
    };
    let alert = s
        .store
        .update_alert(id, |current| {
            change.apply(&current.spec()).map(|spec| NewAlert::from_spec(current.application_id, spec))
        })
        .await
        .map_err(|e| named_as_sent(e.into(), one_type))?;
    Ok(Json(alert))
}

/// List an application's alerts.
#[utoipa::path(get, path = "/v1/applications/{id}/alerts", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<Alert>)))]
async fn list_alerts(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Vec<Alert>>, ApiError> {
    let app = parse_uuid("id", &id)?;
    s.store.get_application(app).await?;
    Ok(Json(s.store.list_alerts(Some(app)).await?))
}

/// Create an alert.
///
/// An alert subscribes its channels to one or more event types (`types`), optionally only for certificates matching `profiles` and `namePatterns`; `alertBefore` is required when `expiration` is among the types.
#[utoipa::path(post, path = "/v1/applications/{id}/alerts", params(("id" = String, Path)), request_body = NewAlertBody,
    security(("bearer" = [])), responses((status = 201, body = Alert), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_alert(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let application_id = parse_uuid("id", &id)?;
    let body: NewAlertBody = json_body(&body)?;
    let one_type = body.alert_type.is_some();
    let types = types_of(body.types, body.alert_type)?.unwrap_or_default();
    let spec = check_alert(&AlertInput {
        types: &types,
        name: &body.name,
        alert_before: body.alert_before.as_deref(),
        description: body.description.as_deref(),
        profiles: &body.profiles,
        name_patterns: &body.name_patterns,
    })
    .map_err(|e| named_as_sent(e.into(), one_type))?;
    let alert = s.store.create_alert(&NewAlert::from_spec(application_id, spec)).await?;
    Ok((StatusCode::CREATED, Json(alert)).into_response())
}

/// Get an alert.
#[utoipa::path(get, path = "/v1/alerts/{id}", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)))]
async fn get_alert(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Alert>, ApiError> {
    Ok(Json(s.store.get_alert(parse_uuid("id", &id)?).await?))
}

/// Delete an alert and its channels.
///
/// Waiting deliveries of its channels are dead-lettered (`channel_deleted`).
#[utoipa::path(delete, path = "/v1/alerts/{id}", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_alert(State(s): State<ApiState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.store.delete_alert(parse_uuid("id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/alerts/{id}/channels`
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewChannelBody {
    url: Option<String>,
    secret: Option<String>,
    kind: Option<String>,
    routing_key: Option<String>,
    content_type: Option<String>,
    #[serde(default)]
    no_verify: bool,
    /// At most this many requests: `N/s` or `N/m` (e.g. `2/s`), or `none`. Slack channels
    /// default to `1/s`, Slack's limit per incoming webhook.
    #[schema(example = "2/s")]
    rate_limit: Option<String>,
    /// PEM of CA certificates the receiver's certificate may chain to, trusted for this
    /// channel besides the system roots and `ca_bundle`.
    ca_pem: Option<String>,
    /// PEM of a client certificate to present (mutual TLS); needs `clientKeyPem`.
    client_cert_pem: Option<String>,
    /// PEM of its private key (unencrypted): stored like the signing secret, never shown.
    client_key_pem: Option<String>,
}

/// List an alert's channels.
#[utoipa::path(get, path = "/v1/alerts/{id}/channels", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<Channel>)))]
async fn list_channels(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Vec<Channel>>, ApiError> {
    let alert = parse_uuid("id", &id)?;
    s.store.get_alert(alert).await?;
    Ok(Json(s.store.list_channels(Some(alert)).await?))
}

/// Create a channel.
///
/// A webhook channel starts in `pending_verification`: a verification event carrying a token is sent to its URL, and `POST /v1/channels/{id}/activate` with that token makes it active (`noVerify: true` skips the handshake). Slack and PagerDuty channels are active at once. Secrets, routing keys and client keys are write-only.
#[utoipa::path(post, path = "/v1/alerts/{id}/channels", params(("id" = String, Path)), request_body = NewChannelBody,
    security(("bearer" = [])), responses((status = 201, body = Channel), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn create_channel(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let alert_id = parse_uuid("id", &id)?;
    let body: NewChannelBody = json_body(&body)?;
    let input = ChannelInput {
        kind: body.kind.as_deref(),
        url: body.url.as_deref(),
        secret: body.secret.as_deref(),
        routing_key: body.routing_key.as_deref(),
        content_type: body.content_type.as_deref(),
        rate_limit: body.rate_limit.as_deref(),
        tls: TlsInput {
            ca_pem: body.ca_pem.as_deref(),
            client_cert_pem: body.client_cert_pem.as_deref(),
            client_key_pem: body.client_key_pem.as_deref(),
        },
    };
    let channel = channel_ops::create(&s.store, &s.config, alert_id, &input, body.no_verify).await?;
    Ok((StatusCode::CREATED, Json(channel)).into_response())
}

/// Get a channel (secrets never shown).
#[utoipa::path(get, path = "/v1/channels/{id}", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody)))]
async fn get_channel(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Channel>, ApiError> {
    Ok(Json(s.store.get_channel(parse_uuid("id", &id)?).await?))
}

/// `PATCH /v1/channels/{id}`: what to change; what is absent stays as it is, `null`
/// removes a setting.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchChannelBody {
    /// A new URL (verified again for webhook channels).
    url: Option<String>,
    /// `N/s`, `N/m`, or `none`/`null` for no limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "2/s")]
    rate_limit: Option<Option<String>>,
    /// New CA certificates (PEM), or `null` to trust only the system roots and `ca_bundle`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    ca_pem: Option<Option<String>>,
    /// A new client certificate (PEM), with `clientKeyPem`; `null` with `clientKeyPem: null`
    /// presents none any more.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    client_cert_pem: Option<Option<String>>,
    /// Its private key (PEM, unencrypted), stored sealed and never shown; `null` erases it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    client_key_pem: Option<Option<String>>,
}

impl PatchChannelBody {
    /// The settings part of the body; the client certificate and key change together.
    fn settings(&self) -> Result<channel_ops::SettingsInput<'_>, ApiError> {
        let together = |field: &str| {
            ApiError::from(certhook_core::validate::ValidationError::InvalidField {
                field: field.into(),
                reason: "clientCertPem and clientKeyPem are given together (both null to remove them)".into(),
            })
        };
        let client_identity = match (&self.client_cert_pem, &self.client_key_pem) {
            (None, None) => None,
            (Some(None), Some(None)) => Some(None),
            (Some(Some(c)), Some(Some(k))) => Some(Some((c.as_str(), k.as_str()))),
            (Some(_), _) => return Err(together("clientKeyPem")),
            (None, Some(_)) => return Err(together("clientCertPem")),
        };
        Ok(channel_ops::SettingsInput {
            rate_limit: self
                .rate_limit
                .as_ref()
                .map(|r| r.as_deref().unwrap_or(certhook_core::subscription::NO_RATE_LIMIT)),
            ca_pem: self.ca_pem.as_ref().map(|c| c.as_deref()),
            client_identity,
        })
    }
}

/// Change a channel's URL, rate limit or TLS settings.
///
/// A field left out keeps its value; `null` removes the setting. A new URL is verified again. The client certificate and key change together.
#[utoipa::path(patch, path = "/v1/channels/{id}", params(("id" = String, Path)), request_body = PatchChannelBody,
    security(("bearer" = [])), responses((status = 200, body = Channel), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn patch_channel(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Channel>, ApiError> {
    let body: PatchChannelBody = json_body(&body)?;
    let id = parse_uuid("id", &id)?;
    let settings = body.settings()?;
    if settings.is_empty() && body.url.is_none() {
        return Err(ApiError::from(certhook_core::validate::ValidationError::MissingField(
            "url, rateLimit, caPem or clientCertPem with clientKeyPem".into(),
        )));
    }
    if let Some(url) = &body.url {
        // Checked before anything is stored: a bad URL changes nothing.
        certhook_core::destination::check_url(url, s.config.allow_insecure_http)?;
    }
    let mut channel = None;
    if !settings.is_empty() {
        channel = Some(channel_ops::update_settings(&s.store, id, &settings).await?);
    }
    if let Some(url) = &body.url {
        channel = Some(channel_ops::update_url(&s.store, &s.config, id, url).await?);
    }
    Ok(Json(channel.expect("one of them was given")))
}

/// Delete a channel.
///
/// Its waiting deliveries are dead-lettered (`channel_deleted`).
#[utoipa::path(delete, path = "/v1/channels/{id}", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_channel(State(s): State<ApiState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.store.delete_channel(parse_uuid("id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/channels/{id}/activate`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    token: String,
}

/// Activate a channel with the verification token its endpoint received.
#[utoipa::path(post, path = "/v1/channels/{id}/activate", params(("id" = String, Path)), request_body = ActivateBody,
    security(("bearer" = [])), responses((status = 200, body = Channel), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody)))]
async fn activate(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Channel>, ApiError> {
    let body: ActivateBody = json_body(&body)?;
    Ok(Json(s.store.activate_channel(parse_uuid("id", &id)?, &body.token).await?))
}

/// Send a new verification token to the channel's endpoint.
#[utoipa::path(post, path = "/v1/channels/{id}/reverify", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reverify(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Channel>, ApiError> {
    Ok(Json(channel_ops::reverify(&s.store, &s.config, parse_uuid("id", &id)?).await?))
}

/// Send a test event now and report the status code and latency.
#[utoipa::path(post, path = "/v1/channels/{id}/test", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = TestReport), (status = 404, body = ErrorBody)))]
async fn test(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<TestReport>, ApiError> {
    Ok(Json(channel_ops::test(&s.store, &s.config, parse_uuid("id", &id)?).await?))
}

async fn act(s: &ApiState, id: &str, action: ChannelAction) -> Result<Json<Channel>, ApiError> {
    Ok(Json(s.store.apply_channel_action(parse_uuid("id", id)?, action).await?))
}

/// Pause a channel: its deliveries are held until it is resumed.
#[utoipa::path(post, path = "/v1/channels/{id}/pause", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn pause(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Channel>, ApiError> {
    act(&s, &id, ChannelAction::Pause).await
}

/// Resume a paused channel: held deliveries are sent again.
#[utoipa::path(post, path = "/v1/channels/{id}/resume", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Channel>, ApiError> {
    act(&s, &id, ChannelAction::Resume).await
}

/// Re-enable a channel that was disabled after failing for `disable_after`.
#[utoipa::path(post, path = "/v1/channels/{id}/enable", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn enable(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Json<Channel>, ApiError> {
    act(&s, &id, ChannelAction::Enable).await
}

/// `POST /v1/channels/{id}/rotate-secret`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    secret: String,
    /// How long the previous secret keeps signing (default 24h).
    grace: Option<String>,
}

/// Replace a channel's signing secret.
///
/// The previous secret keeps signing too (a second signature) for `grace` (default 24h), so receivers can switch without losing a delivery.
#[utoipa::path(post, path = "/v1/channels/{id}/rotate-secret", params(("id" = String, Path)), request_body = RotateBody,
    security(("bearer" = [])), responses((status = 200, body = Channel), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn rotate_secret(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Channel>, ApiError> {
    let body: RotateBody = json_body(&body)?;
    let grace = body.grace.as_deref().unwrap_or("24h");
    Ok(Json(channel_ops::rotate_secret(&s.store, parse_uuid("id", &id)?, &body.secret, grace).await?))
}

/// The admin paths, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_applications,
    create_application,
    get_application,
    delete_application,
    list_alerts,
    create_alert,
    get_alert,
    patch_alert,
    delete_alert,
    list_channels,
    create_channel,
    get_channel,
    patch_channel,
    delete_channel,
    activate,
    reverify,
    test,
    pause,
    resume,
    enable,
    rotate_secret
))]
pub struct AdminDoc;
