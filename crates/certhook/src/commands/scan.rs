//! `certhook scan`: the expiration scan once, or a preview of it.

use certhook_core::config::Config;
use certhook_store::Store;

use super::{Output, parse_time};
use crate::cli::ScanArgs;

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
        let n = |count: usize, one: &str| format!("{count} {one}{}", if count == 1 { "" } else { "s" });
        let mut lines = vec![format!(
            "scan at {at}{}: {}, {} {verb}{}, {} {marked} expired",
            if args.dry_run { " (dry run: nothing stored or sent)" } else { "" },
            n(outcome.alerts, "expiration alert"),
            n(outcome.reported, "certificate"),
            if args.dry_run { String::new() } else { format!(" in {}", n(outcome.events.len(), "event")) },
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
