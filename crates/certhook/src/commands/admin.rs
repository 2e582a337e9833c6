//! Applications, alerts and channels.

use certhook_core::config::Config;
use certhook_core::event::ChannelState;
use certhook_core::lifecycle::ChannelAction;
use certhook_core::subscription::{AlertChange, AlertInput, ChannelInput, TlsInput, check_alert};
use certhook_core::validate::ValidationError;
use certhook_store::{Alert, Application, Channel, NewAlert, Store, StoreError};

use super::{Filtered, Output, known_if_empty, parse_flag_id, parse_id, table};
use crate::channel_ops::{self, ChannelError, SettingsInput};
use crate::cli::{AlertCommand, AppCommand, ChannelCommand};
use crate::exit::BadInput;
use crate::secret_input;
use crate::shapes::Deleted;

const APP_HEADER: &[&str] = &["ID", "NAME", "CREATED"];

fn app_row(a: &Application) -> Vec<String> {
    vec![a.id.to_string(), a.name.clone(), table::time(a.created_at)]
}

fn app_fields(a: &Application) -> Vec<String> {
    table::fields(&[("id", a.id.to_string()), ("name", a.name.clone()), ("created", table::time(a.created_at))])
}

fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

const ALERT_HEADER: &[&str] = &["ID", "APPLICATION", "NAME", "TYPES", "BEFORE", "PROFILES", "NAME PATTERNS"];

fn alert_row(a: &Alert) -> Vec<String> {
    vec![
        a.id.to_string(),
        a.application_id.to_string(),
        a.name.clone(),
        joined(&a.types),
        a.alert_before.map(|b| b.to_string()).unwrap_or_default(),
        a.filter.profiles.join(","),
        joined(&a.filter.name_patterns),
    ]
}

fn alert_fields(a: &Alert) -> Vec<String> {
    table::fields(&[
        ("id", a.id.to_string()),
        ("application", a.application_id.to_string()),
        ("name", a.name.clone()),
        ("types", joined(&a.types)),
        ("before", a.alert_before.map(|b| b.to_string()).unwrap_or_default()),
        ("description", a.description.clone().unwrap_or_default()),
        ("profiles", a.filter.profiles.join(", ")),
        ("name patterns", joined(&a.filter.name_patterns)),
    ])
}

const CHANNEL_HEADER: &[&str] = &["ID", "ALERT", "KIND", "STATE", "URL", "RATE LIMIT", "LAST SUCCESS"];

fn channel_row(c: &Channel) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.alert_id.to_string(),
        c.kind.to_string(),
        c.state.to_string(),
        c.url.clone().unwrap_or_default(),
        c.rate_limit.map(|r| r.to_string()).unwrap_or_else(|| "none".into()),
        table::opt_time(c.last_success_at),
    ]
}

/// Every field of a channel; secrets only as being there.
fn channel_fields(c: &Channel) -> Vec<String> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let certificate =
        |x: &certhook_core::tls_pem::CertificateSummary| format!("{} (until {})", x.subject, table::time(x.not_after));
    let tls = c.tls.as_ref();
    table::fields(&[
        ("id", c.id.to_string()),
        ("alert", c.alert_id.to_string()),
        ("kind", c.kind.to_string()),
        ("state", c.state.to_string()),
        ("url", c.url.clone().unwrap_or_default()),
        ("content type", c.content_type.clone().unwrap_or_else(|| "(default)".into())),
        ("signed", yes_no(c.has_secret)),
        ("rate limit", c.rate_limit.map(|r| r.to_string()).unwrap_or_else(|| "none".into())),
        (
            "trusted CAs",
            tls.map(|t| t.ca_certificates.iter().map(certificate).collect::<Vec<_>>().join("; ")).unwrap_or_default(),
        ),
        ("client certificate", tls.and_then(|t| t.client_certificate.as_ref()).map(certificate).unwrap_or_default()),
        ("client key", if tls.is_some_and(|t| t.has_client_key) { "stored (not shown)".into() } else { String::new() }),
        ("created", table::time(c.created_at)),
        ("last success", table::opt_time(c.last_success_at)),
        ("last failure", table::opt_time(c.last_failure_at)),
        ("failing since", table::opt_time(c.failing_since)),
    ])
}

/// The CLI's flag for an API field, so that a refusal names what the user typed.
const FLAGS: &[(&str, &str)] = &[
    ("name", "--name"),
    ("type", "--type"),
    ("types", "--type"),
    ("alertBefore", "--before"),
    ("description", "--description"),
    ("profiles", "--profile"),
    ("namePatterns", "--name-pattern"),
    ("kind", "--kind"),
    ("url", "--url"),
    ("secret", "--secret"),
    ("routingKey", "--routing-key"),
    ("contentType", "--content-type"),
    ("rateLimit", "--rate-limit"),
    ("caPem", "--ca-file"),
    ("clientCertPem", "--client-cert"),
    ("clientKeyPem", "--client-key"),
];

/// A refusal that names an API field, reworded to name the flag instead.
fn in_flag_terms(e: impl Into<anyhow::Error>) -> anyhow::Error {
    let e = e.into();
    let invalid = e
        .downcast_ref::<ValidationError>()
        .or_else(|| match e.downcast_ref::<ChannelError>() {
            Some(ChannelError::Invalid(v)) => Some(v),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<StoreError>() {
            Some(StoreError::Invalid(v)) => Some(v),
            _ => None,
        });
    if let Some(v) = invalid
        && let Some(field) = v.field()
        && let Some((_, flag)) = FLAGS.iter().find(|(f, _)| *f == field)
    {
        let text = v.to_string();
        return BadInput(format!("{flag}{}", text.strip_prefix(field.as_str()).unwrap_or(&text))).into();
    }
    // A refused change that names its field ("name: an alert named … exists").
    if let Some(StoreError::Conflict(message)) = e.downcast_ref::<StoreError>()
        && let Some((field, rest)) = message.split_once(": ")
        && let Some((_, flag)) = FLAGS.iter().find(|(f, _)| *f == field)
    {
        return BadInput(format!("{flag}: {rest}")).into();
    }
    e
}

/// The contents of a PEM file given by `flag`.
fn pem_file(path: Option<&std::path::Path>, flag: &str) -> Result<Option<String>, BadInput> {
    secret_input::resolve(None, path, flag)
}

/// `certhook app …`
pub async fn app(store: &Store, cmd: &AppCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Create { name } => {
            let app = store.create_application(name).await.map_err(in_flag_terms)?;
            out.emit(&app, app_fields)
        }
        AppCommand::List => out.emit_list(&store.list_applications().await?, "applications", APP_HEADER, app_row),
        AppCommand::Show { id } => out.emit(&store.get_application(parse_id("application", id)?).await?, app_fields),
        AppCommand::Delete { id, cascade } => {
            let id = parse_id("application", id)?;
            let dead = store.delete_application(id, *cascade).await?;
            out.emit(&Deleted { id, deleted: true, dead_lettered: dead }, |d| {
                vec![format!("deleted application {}; {} waiting deliveries dead-lettered", d.id, d.dead_lettered)]
            })
        }
    }
}

/// `certhook alert …`
pub async fn alert(store: &Store, cmd: &AlertCommand, out: &Output) -> anyhow::Result<()> {
    let show = alert_fields;
    match cmd {
        AlertCommand::Create { app, types, name, before, description, filters } => {
            let application_id = parse_flag_id("--app", "application", app)?;
            let spec = check_alert(&AlertInput {
                types,
                name,
                alert_before: before.as_deref(),
                description: description.as_deref(),
                profiles: &filters.profiles,
                name_patterns: &filters.name_patterns,
            })
            .map_err(in_flag_terms)?;
            let alert = store.create_alert(&NewAlert::from_spec(application_id, spec)).await?;
            out.emit(&alert, show)
        }
        AlertCommand::List { app } => {
            let app = app.as_deref().map(|a| parse_flag_id("--app", "application", a)).transpose()?;
            let list = store.list_alerts(app).await?;
            known_if_empty(store, list.len(), app.map(Filtered::Application)).await?;
            out.emit_list(&list, "alerts", ALERT_HEADER, alert_row)
        }
        AlertCommand::Show { id } => out.emit(&store.get_alert(parse_id("alert", id)?).await?, show),
        AlertCommand::Update {
            id,
            name,
            description,
            no_description,
            types,
            before,
            profiles,
            no_profiles,
            name_patterns,
            no_name_patterns,
        } => {
            let listed = |given: &Vec<String>, clear: bool| (clear || !given.is_empty()).then(|| given.clone());
            let change = AlertChange {
                name: name.clone(),
                description: if *no_description { Some(None) } else { description.clone().map(Some) },
                types: (!types.is_empty()).then(|| types.clone()),
                alert_before: before.clone(),
                profiles: listed(profiles, *no_profiles),
                name_patterns: listed(name_patterns, *no_name_patterns),
            };
            let alert = store
                .update_alert(parse_id("alert", id)?, |current| {
                    change.apply(&current.spec()).map(|spec| NewAlert::from_spec(current.application_id, spec))
                })
                .await
                .map_err(in_flag_terms)?;
            out.emit(&alert, show)
        }
        AlertCommand::Delete { id } => {
            let id = parse_id("alert", id)?;
            let dead = store.delete_alert(id).await?;
            out.emit(&Deleted { id, deleted: true, dead_lettered: dead }, |d| {
                vec![format!(
                    "deleted alert {} and its channels; {} waiting deliveries dead-lettered",
                    d.id, d.dead_lettered
                )]
            })
        }
    }
}

/// `certhook channel …`
pub async fn channel(store: &Store, config: &Config, cmd: &ChannelCommand, out: &Output) -> anyhow::Result<()> {
    let show = channel_fields;
    match cmd {
        ChannelCommand::Create(args) => {
            let alert_id = parse_flag_id("--alert", "alert", &args.alert)?;
            let secret = secret_input::resolve(args.secret.as_deref(), args.secret_file.as_deref(), "--secret-file")?;
            let routing_key = secret_input::resolve(
                args.routing_key.as_deref(),
                args.routing_key_file.as_deref(),
                "--routing-key-file",
            )?;
            let ca = pem_file(args.ca_file.as_deref(), "--ca-file")?;
            let cert = pem_file(args.client_cert.as_deref(), "--client-cert")?;
            let key = pem_file(args.client_key.as_deref(), "--client-key")?;
            let input = ChannelInput {
                kind: args.kind.as_deref(),
                url: args.url.as_deref(),
                secret: secret.as_deref(),
                routing_key: routing_key.as_deref(),
                content_type: args.content_type.as_deref(),
                rate_limit: args.rate_limit.as_deref(),
                tls: TlsInput {
                    ca_pem: ca.as_deref(),
                    client_cert_pem: cert.as_deref(),
                    client_key_pem: key.as_deref(),
                },
            };
            let channel =
                channel_ops::create(store, config, alert_id, &input, args.no_verify).await.map_err(in_flag_terms)?;
            out.emit(&channel, |c| {
                let mut lines = show(c);
                if c.state == ChannelState::PendingVerification {
                    lines.push(format!(
                        "a verification event is on its way to the endpoint (sent by `certhook serve`); \
                         activate with: certhook channel activate {} --token <token from the event>",
                        c.id
                    ));
                }
                lines
            })
        }
        ChannelCommand::List { alert } => {
            let alert = alert.as_deref().map(|a| parse_flag_id("--alert", "alert", a)).transpose()?;
            let list = store.list_channels(alert).await?;
            known_if_empty(store, list.len(), alert.map(Filtered::Alert)).await?;
            out.emit_list(&list, "channels", CHANNEL_HEADER, channel_row)
        }
        ChannelCommand::Show { id } => out.emit(&store.get_channel(parse_id("channel", id)?).await?, show),
        ChannelCommand::Activate { id, token } => {
            out.emit(&store.activate_channel(parse_id("channel", id)?, token).await?, show)
        }
        ChannelCommand::Reverify { id } => {
            out.emit(&channel_ops::reverify(store, config, parse_id("channel", id)?).await?, show)
        }
        ChannelCommand::Test { id } => {
            let report = channel_ops::test(store, config, parse_id("channel", id)?).await?;
            out.emit(&report, |r| {
                let status = r.status_code.map(|s| s.to_string()).unwrap_or_else(|| "no response".into());
                let error = r.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
                vec![format!("{}: {status} in {} ms{error}", if r.ok { "ok" } else { "failed" }, r.latency_ms)]
            })?;
            if !report.ok {
                anyhow::bail!("test delivery to channel {} failed", report.channel_id);
            }
            Ok(())
        }
        ChannelCommand::Pause { id } => out.emit(&action(store, id, ChannelAction::Pause).await?, show),
        ChannelCommand::Resume { id } => out.emit(&action(store, id, ChannelAction::Resume).await?, show),
        ChannelCommand::Enable { id } => out.emit(&action(store, id, ChannelAction::Enable).await?, show),
        ChannelCommand::Update(args) => {
            let ca = pem_file(args.ca_file.as_deref(), "--ca-file")?;
            let cert = pem_file(args.client_cert.as_deref(), "--client-cert")?;
            let key = pem_file(args.client_key.as_deref(), "--client-key")?;
            let input = SettingsInput {
                rate_limit: args.rate_limit.as_deref(),
                ca_pem: if args.no_ca_file { Some(None) } else { ca.as_deref().map(Some) },
                client_identity: if args.no_client_cert {
                    Some(None)
                } else {
                    cert.as_deref().zip(key.as_deref()).map(Some)
                },
            };
            if input.is_empty() {
                return Err(BadInput(
                    "nothing to change: give --rate-limit, --ca-file, --no-ca-file, --client-cert with --client-key, \
                     or --no-client-cert"
                        .into(),
                )
                .into());
            }
            let channel = channel_ops::update_settings(store, parse_id("channel", &args.id)?, &input)
                .await
                .map_err(in_flag_terms)?;
            out.emit(&channel, show)
        }
        ChannelCommand::UpdateUrl { id, url } => {
            let channel =
                channel_ops::update_url(store, config, parse_id("channel", id)?, url).await.map_err(in_flag_terms)?;
            out.emit(&channel, show)
        }
        ChannelCommand::RotateSecret { id, secret, secret_file, grace } => {
            let secret = secret_input::resolve(secret.as_deref(), secret_file.as_deref(), "--secret-file")?
                .ok_or_else(|| BadInput("--secret or --secret-file is required".into()))?;
            out.emit(&channel_ops::rotate_secret(store, parse_id("channel", id)?, &secret, grace).await?, show)
        }
        ChannelCommand::Delete { id } => {
            let id = parse_id("channel", id)?;
            let dead = store.delete_channel(id).await?;
            out.emit(&Deleted { id, deleted: true, dead_lettered: dead }, |_| {
                vec![format!("deleted {id}; {dead} waiting deliveries dead-lettered (channel_deleted)")]
            })
        }
    }
}

async fn action(store: &Store, id: &str, action: ChannelAction) -> anyhow::Result<Channel> {
    Ok(store.apply_channel_action(parse_id("channel", id)?, action).await?)
}
