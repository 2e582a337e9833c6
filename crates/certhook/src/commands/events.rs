//! Events as the outbox holds them: `certhook events list|show`, refused rows included.

use certhook_store::{EventQuery, EventRecord, Store};

use super::{Output, page_limit, parse_id};
use crate::cli::EventsCommand;

fn event_line(e: &EventRecord) -> String {
    let state = e.state.as_str();
    let mut line = format!(
        "{}  {:<10}  {:<10}  app={}  created={}",
        e.id,
        e.event_type,
        state,
        e.application_id,
        certhook_core::time::format_millis(e.created_at)
    );
    if let Some(error) = &e.error {
        line.push_str(&format!("  error: {error}"));
    }
    line
}

/// `certhook events …`
pub async fn events(store: &Store, cmd: &EventsCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::List { app, refused, page } => {
            let query = EventQuery {
                application_id: app.as_deref().map(|a| parse_id("application", a)).transpose()?,
                refused: *refused,
                after: page.after.clone(),
                limit: page_limit(page.limit)?,
            };
            out.emit_page(&store.list_events(&query).await?, query.limit, |e| e.id.clone(), event_line)
        }
        EventsCommand::Show { id } => {
            let detail = store.get_event(id.trim()).await?;
            out.emit(&detail, |d| {
                let mut lines = vec![event_line(&d.event)];
                lines.extend(d.deliveries.iter().map(|x| {
                    format!(
                        "  delivery {}  {:<9}  channel={}  attempts={}",
                        x.id, x.state, x.channel_id, x.attempt_count
                    )
                }));
                lines
            })
        }
    }
}
