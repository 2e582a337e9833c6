//! Applications, alerts and channels.

use certhook_core::config::Config;
use certhook_core::event::ChannelState;
use certhook_core::lifecycle::ChannelAction;
use certhook_core::subscription::{AlertChange, AlertInput, ChannelInput, TlsInput, check_alert};
use certhook_store::{Alert, Application, Channel, ChannelTlsSummary, NewAlert, Store};

use super::{Output, parse_id};
use crate::channel_ops::{self, ChannelError, SettingsInput};
use crate::cli::{AlertCommand, AppCommand, ChannelCommand};
use crate::exit::BadInput;
use crate::secret_input;
use crate::shapes::Deleted;

fn app_line(a: &Application) -> String {
    format!("{}  {}", a.id, a.name)
}

fn alert_line(a: &Alert) -> String {
    let types: Vec<&str> = a.types.iter().map(|t| t.as_str()).collect();
    let mut line = format!("{}  {:<10}  {}", a.id, types.join(","), a.name);
    if let Some(b) = a.alert_before {
        line.push_str(&format!("  before={b}"));
    }
    if !a.filter.profiles.is_empty() {
        line.push_str(&format!("  profiles={}", a.filter.profiles.join(",")));
    }
    if !a.filter.name_patterns.is_empty() {
        let patterns: Vec<&str> = a.filter.name_patterns.iter().map(|p| p.as_str()).collect();
        line.push_str(&format!("  names={}", patterns.join(",")));
    }
    line
}

fn channel_line(c: &Channel) -> String {
    let url = c.url.as_deref().unwrap_or("-");
    let rate = c.rate_limit.map(|r| format!("  rate={r}")).unwrap_or_default();
    let tls = c.tls.as_ref().map(tls_words).unwrap_or_default();
    format!("{}  {:<9}  {:<20}  {url}{rate}{tls}", c.id, c.kind, c.state)
}

/// The TLS settings in a channel's line: the CAs' and client certificate's subjects.
fn tls_words(t: &ChannelTlsSummary) -> String {
    let mut words = String::new();
    for ca in &t.ca_certificates {
        words.push_str(&format!("  ca=\"{}\" (until {})", ca.subject, ca.not_after.format("%Y-%m-%d")));
    }
    if let Some(cert) = &t.client_certificate {
        words.push_str(&format!("  client-cert=\"{}\" (until {})", cert.subject, cert.not_after.format("%Y-%m-%d")));
    }
    words
}

/// The CLI's flag for an API field, so that a refusal names what the user typed.
const FLAGS: &[(&str, &str)] = &[
    ("rateLimit", "--rate-limit"),
    ("caPem", "--ca-file"),
    ("clientCertPem", "--client-cert"),
    ("clientKeyPem", "--client-key"),
];

/// A channel error, with the flag in place of the API field it names.
fn name_flag(e: ChannelError) -> anyhow::Error {
    if let ChannelError::Invalid(v) = &e
        && let Some(field) = v.field()
        && let Some((_, flag)) = FLAGS.iter().find(|(f, _)| *f == field)
    {
        let text = v.to_string();
        return BadInput(format!("{flag}{}", text.strip_prefix(field.as_str()).unwrap_or(&text))).into();
    }
    e.into()
}

/// The contents of a PEM file given by `flag`.
fn pem_file(path: Option<&std::path::Path>, flag: &str) -> Result<Option<String>, BadInput> {
    secret_input::resolve(None, path, flag)
}

/// `certhook app …`
pub async fn app(store: &Store, cmd: &AppCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() {
                return Err(crate::exit::BadInput("name: must not be empty".into()).into());
            }
            let app = store.create_application(name).await?;
            out.emit(&app, |a| vec![app_line(a)])
        }
        AppCommand::List => out.emit(&store.list_applications().await?, |l| l.iter().map(app_line).collect()),
        AppCommand::Show { id } => {
            out.emit(&store.get_application(parse_id("application", id)?).await?, |a| vec![app_line(a)])
        }
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
    let show = |a: &Alert| vec![alert_line(a)];
    match cmd {
        AlertCommand::Create { app, types, name, before, description, filters } => {
            let application_id = parse_id("application", app)?;
            let spec = check_alert(&AlertInput {
                types,
                name,
                alert_before: before.as_deref(),
                description: description.as_deref(),
                profiles: &filters.profiles,
                name_patterns: &filters.name_patterns,
            })?;
            let alert = store.create_alert(&NewAlert::from_spec(application_id, spec)).await?;
            out.emit(&alert, show)
        }
        AlertCommand::List { app } => {
            let app = app.as_deref().map(|a| parse_id("application", a)).transpose()?;
            out.emit(&store.list_alerts(app).await?, |l| l.iter().map(alert_line).collect())
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
                .await?;
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
    let show = |c: &Channel| vec![channel_line(c)];
    match cmd {
        ChannelCommand::Create(args) => {
            let alert_id = parse_id("alert", &args.alert)?;
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
                channel_ops::create(store, config, alert_id, &input, args.no_verify).await.map_err(name_flag)?;
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
            let alert = alert.as_deref().map(|a| parse_id("alert", a)).transpose()?;
            out.emit(&store.list_channels(alert).await?, |l| l.iter().map(channel_line).collect())
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
            let channel =
                channel_ops::update_settings(store, parse_id("channel", &args.id)?, &input).await.map_err(name_flag)?;
            out.emit(&channel, show)
        }
        ChannelCommand::UpdateUrl { id, url } => {
            out.emit(&channel_ops::update_url(store, config, parse_id("channel", id)?, url).await?, show)
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
