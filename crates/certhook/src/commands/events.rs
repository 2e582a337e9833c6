//! Events as the outbox holds them: `certhook events list|show`, refused rows included.

use certhook_store::{EventQuery, EventRecord, Store};

use super::{Filtered, Output, known_if_empty, page_limit, parse_flag_id, table};
use crate::cli::EventsCommand;

const EVENT_HEADER: &[&str] = &["ID", "TYPE", "STATE", "APPLICATION", "CREATED", "ERROR"];

fn event_row(e: &EventRecord) -> Vec<String> {
    vec![
        e.id.clone(),
        e.event_type.clone(),
        e.state.as_str().to_string(),
        e.application_id.clone(),
        table::time(e.created_at),
        e.error.clone().unwrap_or_default(),
    ]
}

fn event_fields(e: &EventRecord) -> Vec<String> {
    let certificate = e.certificate.as_ref().or(e.certificates.as_ref()).map(|c| c.to_string()).unwrap_or_default();
    table::fields(&[
        ("id", e.id.clone()),
        ("type", e.event_type.clone()),
        ("state", e.state.as_str().to_string()),
        ("application", e.application_id.clone()),
        ("alert", e.alert_id.clone().unwrap_or_default()),
        ("idempotency key", e.idempotency_key.clone().unwrap_or_default()),
        ("occurred", table::time(e.occurred_at)),
        ("created", table::time(e.created_at)),
        ("fanned out", table::opt_time(e.fanned_out_at)),
        ("error", e.error.clone().unwrap_or_default()),
        (if e.certificates.is_some() { "certificates" } else { "certificate" }, certificate),
    ])
}

/// `certhook events …`
pub async fn events(store: &Store, cmd: &EventsCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::List { app, refused, page } => {
            let query = EventQuery {
                application_id: app.as_deref().map(|a| parse_flag_id("--app", "application", a)).transpose()?,
                refused: *refused,
                after: page.after.clone(),
                limit: page_limit(page.limit)?,
            };
            let list = store.list_events(&query).await?;
            known_if_empty(store, list.len(), query.application_id.map(Filtered::Application)).await?;
            out.emit_page(&list, query.limit, "events", EVENT_HEADER, |e| e.id.clone(), event_row)
        }
        EventsCommand::Show { id } => {
            let detail = store.get_event(id.trim()).await?;
            out.emit(&detail, |d| {
                let mut lines = event_fields(&d.event);
                lines.push(String::new());
                let deliveries =
                    table::rows(&["DELIVERY", "STATE", "TYPE", "ATTEMPTS", "CHANNEL"], &d.deliveries, |x| {
                        vec![
                            x.id.to_string(),
                            x.state.to_string(),
                            x.delivery_type.clone(),
                            x.attempt_count.to_string(),
                            x.channel_id.to_string(),
                        ]
                    });
                if deliveries.is_empty() {
                    lines.push("no deliveries".into());
                }
                lines.extend(deliveries);
                lines
            })
        }
    }
}
