//! The certificate inventory: `certhook certificates list|show`.

use certhook_store::{CertificateQuery, InventoryCertificate, Store};

use super::{Output, page_limit, parse_id};
use crate::cli::CertificatesCommand;
use crate::exit::BadInput;

fn certificate_line(c: &InventoryCertificate) -> String {
    let mut line = format!(
        "{}  {:<7}  notAfter={}  serial={}  {}",
        c.id,
        c.status,
        certhook_core::time::format_millis(c.not_after),
        c.serial_number,
        c.common_name
    );
    if let Some(p) = &c.profile_name {
        line.push_str(&format!("  profile={p}"));
    }
    line
}

/// `certhook certificates …`
pub async fn certificates(store: &Store, cmd: &CertificatesCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        CertificatesCommand::List { app, status, expiring_within, page } => {
            let application_id = parse_id("application", app)?;
            let query = CertificateQuery {
                status: status
                    .as_deref()
                    .map(|s| crate::input::certificate_status(s).map_err(|m| BadInput(format!("--status: {m}"))))
                    .transpose()?,
                expiring_within: expiring_within
                    .as_deref()
                    .map(|w| crate::input::window(w).map_err(|m| BadInput(format!("--expiring-within: {m}"))))
                    .transpose()?,
                after: page.after.clone(),
                limit: page_limit(page.limit)?,
            };
            let list = store.list_certificates(application_id, &query).await?;
            out.emit_page(&list, query.limit, |c| c.id.clone(), certificate_line)
        }
        CertificatesCommand::Show { app, id } => {
            let certificate = store.get_certificate(parse_id("application", app)?, id).await?;
            out.emit(&certificate, |c| {
                let mut lines = vec![certificate_line(c)];
                if !c.san.is_empty() {
                    lines.push(format!("  san: {}", c.san.join(", ")));
                }
                lines.push(format!("  notBefore={}", certhook_core::time::format_millis(c.not_before)));
                if let Some(at) = c.revoked_at {
                    let reason = c.revocation_reason.as_deref().unwrap_or("unspecified");
                    lines.push(format!("  revoked {} ({reason})", certhook_core::time::format_millis(at)));
                }
                lines
            })
        }
    }
}
