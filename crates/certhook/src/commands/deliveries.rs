//! Deliveries and dead letters: `certhook deliveries list|show`, `certhook dlq list|replay|purge`.

use certhook_core::event::DeliveryState;
use certhook_store::{DeadLetterSelector, Delivery, DeliveryFilter, Store};

use super::{Filtered, Output, known_if_empty, page_limit, parse_flag_id, parse_id, parse_time, table};
use crate::cli::{DeliveriesCommand, DlqCommand, DlqFilter};
use crate::exit::BadInput;
use crate::shapes::Counted;

const DELIVERY_HEADER: &[&str] = &["ID", "STATE", "TYPE", "ATTEMPTS", "LAST STATUS", "REASON", "CHANNEL", "CREATED"];

fn delivery_row(d: &Delivery) -> Vec<String> {
    vec![
        d.id.to_string(),
        d.state.to_string(),
        d.delivery_type.clone(),
        d.attempt_count.to_string(),
        d.last_status_code.map(|c| c.to_string()).unwrap_or_default(),
        d.reason.clone().unwrap_or_default(),
        d.channel_id.to_string(),
        table::time(d.created_at),
    ]
}

fn delivery_fields(d: &Delivery) -> Vec<String> {
    table::fields(&[
        ("id", d.id.to_string()),
        ("state", d.state.to_string()),
        ("type", d.delivery_type.clone()),
        ("channel", d.channel_id.to_string()),
        ("event", d.event_id.map(|e| e.to_string()).unwrap_or_default()),
        ("cloudevent id", d.cloud_event_id.to_string()),
        ("attempts", d.attempt_count.to_string()),
        ("next attempt", table::opt_time(d.next_attempt_at)),
        ("last status", d.last_status_code.map(|c| c.to_string()).unwrap_or_default()),
        ("last error", d.last_error.clone().unwrap_or_default()),
        ("reason", d.reason.clone().unwrap_or_default()),
        ("created", table::time(d.created_at)),
        ("delivered", table::opt_time(d.delivered_at)),
        ("dead", table::opt_time(d.dead_at)),
    ])
}

/// `certhook deliveries …`
pub async fn deliveries(store: &Store, cmd: &DeliveriesCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        DeliveriesCommand::List { status, channel, page } => {
            let state = status
                .as_deref()
                .map(|s| s.parse::<DeliveryState>().map_err(|e| BadInput(format!("--status: {e}"))))
                .transpose()?;
            let channel_id = channel.as_deref().map(|c| parse_flag_id("--channel", "channel", c)).transpose()?;
            let limit = page_limit(page.limit)?;
            let after = page.after.as_deref().map(|a| parse_id("--after delivery", a)).transpose()?;
            let filter = DeliveryFilter { state, channel_id, limit: Some(limit), after, ..Default::default() };
            let list = store.list_deliveries(&filter).await?;
            known_if_empty(store, list.len(), channel_id.map(Filtered::Channel)).await?;
            out.emit_page(&list, limit, "deliveries", DELIVERY_HEADER, |d| d.id.to_string(), delivery_row)
        }
        DeliveriesCommand::Show { id } => {
            let detail = store.get_delivery(parse_id("delivery", id)?).await?;
            out.emit(&detail, |d| {
                let mut lines = delivery_fields(&d.delivery);
                lines.push(String::new());
                let attempts = table::rows(&["ATTEMPT", "STARTED", "DURATION", "STATUS", "ERROR"], &d.attempts, |a| {
                    vec![
                        a.number.to_string(),
                        table::time(a.started_at),
                        format!("{} ms", a.duration_ms),
                        a.status_code.map(|c| c.to_string()).unwrap_or_default(),
                        a.error.clone().unwrap_or_default(),
                    ]
                });
                if attempts.is_empty() {
                    lines.push("no attempts yet".into());
                }
                lines.extend(attempts);
                // The start of each response, under the table: it may be long.
                for a in &d.attempts {
                    if let Some(snippet) = a.response_snippet.as_deref().filter(|r| !r.trim().is_empty()) {
                        lines.push(format!("response to attempt {}: {}", a.number, table::one_line(snippet)));
                    }
                }
                lines
            })
        }
    }
}

fn dlq_filter(f: &DlqFilter) -> anyhow::Result<DeliveryFilter> {
    Ok(DeliveryFilter {
        channel_id: f.channel.as_deref().map(|c| parse_flag_id("--channel", "channel", c)).transpose()?,
        delivery_type: f
            .event_type
            .as_deref()
            .map(|t| crate::input::delivery_type(t).map_err(|m| BadInput(format!("--type: {m}"))))
            .transpose()?,
        dead_since: f.since.as_deref().map(|s| parse_time("--since", s)).transpose()?,
        ..Default::default()
    })
}

fn selector(id: &Option<String>, filter: DeliveryFilter) -> anyhow::Result<DeadLetterSelector> {
    Ok(match id {
        Some(id) => DeadLetterSelector::Id(parse_id("dead letter", id)?),
        None => DeadLetterSelector::Matching(filter),
    })
}

/// `certhook dlq …`
pub async fn dlq(store: &Store, cmd: &DlqCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List { filter, page } => {
            let limit = page_limit(page.limit)?;
            let after = page.after.as_deref().map(|a| parse_id("--after dead letter", a)).transpose()?;
            let filter =
                DeliveryFilter { state: Some(DeliveryState::Dead), limit: Some(limit), after, ..dlq_filter(filter)? };
            let list = store.list_deliveries(&filter).await?;
            known_if_empty(store, list.len(), filter.channel_id.map(Filtered::Channel)).await?;
            out.emit_page(&list, limit, "dead letters", DELIVERY_HEADER, |d| d.id.to_string(), delivery_row)
        }
        DlqCommand::Replay { id, filter, dry_run, .. } => {
            let filter = dlq_filter(filter)?;
            let channel = filter.channel_id.map(Filtered::Channel);
            let replayed = store.replay(&selector(id, filter)?, *dry_run).await?;
            known_if_empty(store, replayed.ids.len() + replayed.skipped.len(), channel).await?;
            let verb = if *dry_run { "would replay" } else { "replayed" };
            let counted = Counted::from(replayed);
            out.emit(&counted, |c| c.lines(verb))?;
            if !out.json {
                for skipped in &counted.skipped {
                    eprintln!("{}", skipped.explain());
                }
            }
            Ok(())
        }
        DlqCommand::Purge { id, channel, before, dry_run, .. } => {
            let filter = DeliveryFilter {
                channel_id: channel.as_deref().map(|c| parse_flag_id("--channel", "channel", c)).transpose()?,
                dead_before: before.as_deref().map(|b| parse_time("--before", b)).transpose()?,
                ..Default::default()
            };
            let channel = filter.channel_id.map(Filtered::Channel);
            let ids = store.purge(&selector(id, filter)?, *dry_run).await?;
            known_if_empty(store, ids.len(), channel).await?;
            let verb = if *dry_run { "would purge" } else { "purged" };
            out.emit(&Counted::purged(ids), |c| c.lines(verb))
        }
    }
}
