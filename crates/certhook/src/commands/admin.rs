//! Applications, alerts and channels.

use certhook_core::event::ChannelState;
use certhook_core::subscription::{ChannelInput, check_alert, check_channel};
use certhook_store::{Alert, Application, Channel, NewAlert, NewChannel, Store};

use super::{Output, parse_id};
use crate::cli::{AlertCommand, AppCommand, ChannelCommand};

fn app_line(a: &Application) -> String {
    format!("{}  {}", a.id, a.name)
}

fn alert_line(a: &Alert) -> String {
    let before = a.alert_before.map(|b| format!("  before={b}")).unwrap_or_default();
    format!("{}  {:<10}  {}{before}", a.id, a.alert_type, a.name)
}

fn channel_line(c: &Channel) -> String {
    let url = c.url.as_deref().unwrap_or("-");
    format!("{}  {:<9}  {:<20}  {url}", c.id, c.kind, c.state)
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
    }
}

/// `certhook alert …`
pub async fn alert(store: &Store, cmd: &AlertCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        AlertCommand::Create { app, alert_type, name, before, description } => {
            let application_id = parse_id("application", app)?;
            let spec = check_alert(alert_type, name, before.as_deref(), description.as_deref())?;
            let alert = store
                .create_alert(&NewAlert {
                    application_id,
                    alert_type: spec.alert_type,
                    name: spec.name,
                    description: spec.description,
                    alert_before: spec.alert_before,
                })
                .await?;
            out.emit(&alert, |a| vec![alert_line(a)])
        }
        AlertCommand::List { app } => {
            let app = app.as_deref().map(|a| parse_id("application", a)).transpose()?;
            out.emit(&store.list_alerts(app).await?, |l| l.iter().map(alert_line).collect())
        }
    }
}

/// `certhook channel …` (the verification handshake and test sends arrive with the
/// channel-lifecycle work; until then `--no-verify` channels are the ones that deliver).
pub async fn channel(
    store: &Store,
    config: &certhook_core::config::Config,
    cmd: &ChannelCommand,
    out: &Output,
) -> anyhow::Result<()> {
    match cmd {
        ChannelCommand::Create(args) => {
            let alert_id = parse_id("alert", &args.alert)?;
            let spec = check_channel(
                &ChannelInput {
                    kind: args.kind.as_deref(),
                    url: args.url.as_deref(),
                    secret: args.secret.as_deref(),
                    routing_key: args.routing_key.as_deref(),
                    content_type: args.content_type.as_deref(),
                },
                config.allow_insecure_http,
            )?;
            let verify = !args.no_verify && spec.kind == certhook_core::event::ChannelKind::Webhook;
            let state = if verify { ChannelState::PendingVerification } else { ChannelState::Active };
            let channel = store
                .create_channel(&NewChannel {
                    alert_id,
                    kind: spec.kind,
                    url: spec.url,
                    state,
                    secret: spec.secret,
                    routing_key: spec.routing_key,
                    content_type: spec.content_type,
                })
                .await?;
            out.emit(&channel, |c| vec![channel_line(c)])
        }
        ChannelCommand::List { alert } => {
            let alert = alert.as_deref().map(|a| parse_id("alert", a)).transpose()?;
            out.emit(&store.list_channels(alert).await?, |l| l.iter().map(channel_line).collect())
        }
        ChannelCommand::Show { id } => {
            let channel = store.get_channel(parse_id("channel", id)?).await?;
            out.emit(&channel, |c| vec![channel_line(c)])
        }
        _ => anyhow::bail!("this channel command is not implemented yet in this build"),
    }
}
