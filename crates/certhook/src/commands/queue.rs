//! The queue: migrate, enqueue, deliveries, dead letters, status.

use std::io::Read;

use certhook_core::config::Config;
use certhook_core::event::{AlertType, DeliveryState, NewEvent, RevocationReason};
use certhook_producer::Producer;
use certhook_producer::pem::{read_certificates, read_folder};
use certhook_store::{DeadLetterSelector, Delivery, DeliveryFilter, Store};
use serde::Serialize;
use uuid::Uuid;

use super::{Output, parse_id, parse_time};
use crate::cli::{DeliveriesCommand, DlqCommand, DlqFilter, EnqueueArgs, ImportArgs, ScanArgs};
use crate::exit::BadInput;

/// `certhook migrate`: connecting applies pending migrations.
pub async fn migrate(config: &Config, out: &Output) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.close().await;
    out.emit(&serde_json::json!({"migrated": true}), |_| vec!["migrations applied".to_string()])
}

#[derive(Serialize)]
struct Ids {
    ids: Vec<Uuid>,
}

/// `certhook enqueue --file F` (`-` reads standard input), or `--app A --type T --pem P`.
pub async fn enqueue(store: &Store, config: &Config, args: &EnqueueArgs, out: &Output) -> anyhow::Result<()> {
    let producer = Producer::new(store.clone(), config.max_event_bytes);
    let ids = match (&args.file, &args.pem, &args.app, &args.event_type) {
        (Some(path), _, _, _) => {
            let input = if path.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf)?;
                buf
            } else {
                std::fs::read(path).map_err(|e| BadInput(format!("--file {}: {e}", path.display())))?
            };
            producer.enqueue_json(&input).await?
        }
        (None, Some(pem), Some(app), Some(event_type)) => {
            let application_id = parse_id("application", app)?;
            let event_type: AlertType = event_type.parse().map_err(|e| BadInput(format!("--type: {e}")))?;
            if event_type == AlertType::Expiration {
                return Err(BadInput(
                    "--type: expiration events come from `certhook scan`; use issuance, renewal or revocation".into(),
                )
                .into());
            }
            let bytes = std::fs::read(pem).map_err(|e| BadInput(format!("--pem {}: {e}", pem.display())))?;
            let mut certificate = read_certificates(&bytes)
                .map_err(|e| BadInput(format!("--pem {}: {e}", pem.display())))?
                .swap_remove(0);
            if event_type == AlertType::Revocation {
                certificate.revoked_at = Some(certhook_core::time::truncate_millis(chrono::Utc::now()));
                certificate.revocation_reason = Some(RevocationReason::Unspecified);
            }
            producer.enqueue(vec![NewEvent { event_type, application_id, idempotency_key: None, certificate }]).await?
        }
        _ => return Err(BadInput("give --file, or --app, --type and --pem".into()).into()),
    };
    out.emit(&Ids { ids }, |r| r.ids.iter().map(Uuid::to_string).collect())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportReport {
    imported: usize,
    notified: bool,
    event_ids: Vec<Uuid>,
    files: Vec<String>,
    skipped: Vec<Skipped>,
}

#[derive(Serialize)]
struct Skipped {
    file: String,
    reason: String,
}

/// `certhook import --app A --dir D [--notify]`
pub async fn import(store: &Store, config: &Config, args: &ImportArgs, out: &Output) -> anyhow::Result<()> {
    let application_id = parse_id("application", &args.app)?;
    store.get_application(application_id).await?;
    let scan = read_folder(&args.dir).map_err(|e| BadInput(format!("--dir {}: {e}", args.dir.display())))?;
    let certificates: Vec<_> = scan.certificates.iter().map(|(_, c)| c.clone()).collect();
    let event_ids = if args.notify {
        let events: Vec<NewEvent> = certificates
            .iter()
            .map(|c| NewEvent {
                event_type: AlertType::Issuance,
                application_id,
                idempotency_key: None,
                certificate: c.clone(),
            })
            .collect();
        Producer::new(store.clone(), config.max_event_bytes).enqueue(events).await?
    } else {
        store.upsert_certificates(application_id, &certificates).await?;
        Vec::new()
    };
    let report = ImportReport {
        imported: certificates.len(),
        notified: args.notify,
        event_ids,
        files: scan.read.iter().map(|p| p.display().to_string()).collect(),
        skipped: scan
            .skipped
            .iter()
            .map(|(p, r)| Skipped { file: p.display().to_string(), reason: r.clone() })
            .collect(),
    };
    out.emit(&report, |r| {
        let mut lines = vec![format!(
            "imported {} certificates{}",
            r.imported,
            if r.notified { " (issuance alerts enqueued)" } else { " into the inventory (no alerts sent)" }
        )];
        lines.extend(r.skipped.iter().map(|s| format!("skipped {}: {}", s.file, s.reason)));
        lines
    })
}

/// `certhook scan [--as-of TIME] [--dry-run]`
pub async fn scan(store: &Store, config: &Config, args: &ScanArgs, out: &Output) -> anyhow::Result<()> {
    let as_of = match &args.as_of {
        Some(t) => parse_time("--as-of", t)?,
        None => store.now().await?,
    };
    let max = config.max_certificates_per_event;
    let outcome = if args.dry_run {
        certhook_producer::scan::preview(store, as_of, max).await?
    } else {
        certhook_producer::scan::scan(store, &config.render_settings(), as_of, max).await?
    };
    let at = certhook_core::time::format_millis(as_of);
    let report = serde_json::json!({
        "asOf": at,
        "dryRun": args.dry_run,
        "alerts": outcome.alerts,
        "reported": outcome.reported,
        "eventIds": outcome.events,
        "expiredMarked": outcome.expired_marked,
        "reports": outcome.reports,
    });
    out.emit(&report, |_| {
        let (verb, marked) = if args.dry_run { ("would report", "would mark") } else { ("reported", "marked") };
        let mut lines = vec![format!(
            "scan at {at}{}: {} expiration alerts, {} certificates {verb}{}, {} {marked} expired",
            if args.dry_run { " (dry run: nothing stored or sent)" } else { "" },
            outcome.alerts,
            outcome.reported,
            if args.dry_run { String::new() } else { format!(" in {} events", outcome.events.len()) },
            outcome.expired_marked
        )];
        for r in &outcome.reports {
            for c in &r.certificates {
                lines.push(format!(
                    "  {}: {} ({}) expires {}",
                    r.alert_name,
                    c.common_name,
                    c.id,
                    certhook_core::time::format_millis(c.not_after)
                ));
            }
        }
        lines
    })
}

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
        DeliveriesCommand::List { status, channel } => {
            let state = status
                .as_deref()
                .map(|s| s.parse::<DeliveryState>().map_err(|e| BadInput(format!("--status: {e}"))))
                .transpose()?;
            let channel_id = channel.as_deref().map(|c| parse_id("channel", c)).transpose()?;
            let filter = DeliveryFilter { state, channel_id, limit: Some(1000), ..Default::default() };
            out.emit(&store.list_deliveries(&filter).await?, |l| l.iter().map(delivery_line).collect())
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
        delivery_type: f.event_type.clone(),
        dead_since: f.since.as_deref().map(|s| parse_time("--since", s)).transpose()?,
        ..Default::default()
    })
}

#[derive(Serialize)]
struct Counted {
    count: usize,
    ids: Vec<Uuid>,
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
        DlqCommand::List(f) => {
            let filter = DeliveryFilter { state: Some(DeliveryState::Dead), ..dlq_filter(f)? };
            out.emit(&store.list_deliveries(&filter).await?, |l| l.iter().map(delivery_line).collect())
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

/// `certhook status`
pub async fn status(store: &Store, out: &Output) -> anyhow::Result<()> {
    let s = store.status().await?;
    out.emit(&s, |s| {
        let d = &s.deliveries;
        let c = &s.channels;
        vec![
            format!("events          {}", s.events.total),
            format!(
                "deliveries      pending={} leased={} retrying={} held={} delivered={} dead={}",
                d.pending, d.leased, d.retrying, d.held, d.delivered, d.dead
            ),
            format!("oldest pending  {:.1}s", s.oldest_pending_age_seconds),
            format!(
                "channels        pending_verification={} active={} paused={} disabled={}",
                c.pending_verification, c.active, c.paused, c.disabled
            ),
        ]
    })
}
