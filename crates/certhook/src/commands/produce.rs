//! Producing events from the command line: `certhook enqueue` (JSON, NDJSON or a PEM) and
//! `certhook import` (a folder of PEM certificates into the inventory).

use certhook_core::config::Config;
use certhook_core::event::{AlertType, NewEvent, RevocationReason};
use certhook_producer::Producer;
use certhook_producer::pem::{read_certificates, read_folder_reporting};
use certhook_store::Store;
use serde::Serialize;
use uuid::Uuid;

use super::{Output, parse_flag_id};
use crate::cli::{EnqueueArgs, ImportArgs};
use crate::exit::BadInput;
use crate::progress::Progress;
use crate::shapes::Ids;

/// `certhook enqueue --file F` (`-` reads standard input), or `--app A --type T --pem P`.
pub async fn enqueue(store: &Store, config: &Config, args: &EnqueueArgs, out: &Output) -> anyhow::Result<()> {
    let producer = Producer::new(store.clone(), config.max_event_bytes);
    let ids = match (&args.file, &args.pem, &args.app, &args.event_type) {
        (Some(path), _, _, _) => {
            let input = crate::secret_input::read_input(path)
                .map_err(|e| BadInput(format!("--file {}: {e}", path.display())))?;
            let events = producer.parse(&input)?;
            let mut progress = Progress::on_terminal("writing events", Some(events.len()));
            let ids = store.enqueue_reporting(&events, &mut |n| progress.update(n)).await;
            progress.finish();
            ids?
        }
        (None, Some(pem), Some(app), Some(event_type)) => {
            let application_id = parse_flag_id("--app", "application", app)?;
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
pub async fn import(store: &Store, args: &ImportArgs, out: &Output) -> anyhow::Result<()> {
    let application_id = parse_flag_id("--app", "application", &args.app)?;
    store.get_application(application_id).await?;
    let mut progress = Progress::on_terminal("reading files", None);
    let scan = read_folder_reporting(&args.dir, &mut |n| progress.update(n));
    progress.finish();
    let scan = scan.map_err(|e| BadInput(format!("--dir {}: {e}", args.dir.display())))?;
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
        let mut progress = Progress::on_terminal("writing events", Some(events.len()));
        let ids = store.enqueue_reporting(&events, &mut |n| progress.update(n)).await;
        progress.finish();
        ids?
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
