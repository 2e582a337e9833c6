//! Deliveries and dead letters: `certhook deliveries list|show`, `certhook dlq list|replay|purge`.

use certhook_core::event::DeliveryState;
use certhook_store::{DeadLetterSelector, Delivery, DeliveryFilter, Store};
use uuid::Uuid;

use super::{Output, page_limit, parse_id, parse_time};
use crate::cli::{DeliveriesCommand, DlqCommand, DlqFilter};
use crate::exit::BadInput;
use crate::shapes::Counted;

fn delivery_line(d: &Delivery) -> String {
    let mut line = format!(
        "{}  {:<9}  {:<10}  attempts={}  channel={}",
        d.id, d.state, d.delivery_type, d.attempt_count, d.channel_id
    );
    if let Some(code) = d.last_status_code {
        line.push_str(&format!("  last={code}"));
    }
    if let Some(reason) = &d.reason {
        line.push_str(&format!("  reason={reason}"));
    }
    line
}

/// `certhook deliveries …`
pub async fn deliveries(store: &Store, cmd: &DeliveriesCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        DeliveriesCommand::List { status, channel, page } => {
            let state = status
                .as_deref()
                .map(|s| s.parse::<DeliveryState>().map_err(|e| BadInput(format!("--status: {e}"))))
                .transpose()?;
            let channel_id = channel.as_deref().map(|c| parse_id("channel", c)).transpose()?;
            let limit = page_limit(page.limit)?;
            let after = page.after.as_deref().map(|a| parse_id("--after delivery", a)).transpose()?;
            let filter = DeliveryFilter { state, channel_id, limit: Some(limit), after, ..Default::default() };
            out.emit_page(&store.list_deliveries(&filter).await?, limit, |d| d.id.to_string(), delivery_line)
        }
        DeliveriesCommand::Show { id } => {
            let detail = store.get_delivery(parse_id("delivery", id)?).await?;
            out.emit(&detail, |d| {
                let mut lines = vec![delivery_line(&d.delivery)];
                lines.extend(d.attempts.iter().map(|a| {
                    let status = a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
                    let error = a.error.as_deref().unwrap_or("");
                    format!("  #{} {} {}ms status={status} {error}", a.number, a.started_at.to_rfc3339(), a.duration_ms)
                }));
                lines
            })
        }
    }
}

fn dlq_filter(f: &DlqFilter) -> anyhow::Result<DeliveryFilter> {
    Ok(DeliveryFilter {
        channel_id: f.channel.as_deref().map(|c| parse_id("channel", c)).transpose()?,
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
            out.emit_page(&store.list_deliveries(&filter).await?, limit, |d| d.id.to_string(), delivery_line)
        }
        DlqCommand::Replay { id, filter, dry_run, .. } => {
            let ids = store.replay(&selector(id, dlq_filter(filter)?)?, *dry_run).await?;
            let verb = if *dry_run { "would replay" } else { "replayed" };
            out.emit(&Counted { count: ids.len(), ids }, |c| {
                std::iter::once(format!("{verb} {}", c.count)).chain(c.ids.iter().map(Uuid::to_string)).collect()
            })
        }
        DlqCommand::Purge { id, channel, before, dry_run, .. } => {
            let filter = DeliveryFilter {
                channel_id: channel.as_deref().map(|c| parse_id("channel", c)).transpose()?,
                dead_before: before.as_deref().map(|b| parse_time("--before", b)).transpose()?,
                ..Default::default()
            };
            let ids = store.purge(&selector(id, filter)?, *dry_run).await?;
            let verb = if *dry_run { "would purge" } else { "purged" };
            out.emit(&Counted { count: ids.len(), ids }, |c| {
                std::iter::once(format!("{verb} {}", c.count)).chain(c.ids.iter().map(Uuid::to_string)).collect()
            })
        }
    }
}
