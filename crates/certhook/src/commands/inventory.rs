//! The certificate inventory: `certhook certificates list|show`.

use certhook_store::{CertificateQuery, InventoryCertificate, Store};

use super::{Output, page_limit, parse_flag_id, table};
use crate::cli::CertificatesCommand;
use crate::exit::BadInput;

const CERTIFICATE_HEADER: &[&str] = &["ID", "STATUS", "NOT AFTER", "SERIAL", "COMMON NAME", "PROFILE"];

fn certificate_row(c: &InventoryCertificate) -> Vec<String> {
    vec![
        c.id.clone(),
        c.status.to_string(),
        table::time(c.not_after),
        c.serial_number.clone(),
        c.common_name.clone(),
        c.profile_name.clone().unwrap_or_default(),
    ]
}

fn certificate_fields(c: &InventoryCertificate) -> Vec<String> {
    table::fields(&[
        ("id", c.id.clone()),
        ("application", c.application_id.to_string()),
        ("status", c.status.to_string()),
        ("serial", c.serial_number.clone()),
        ("common name", c.common_name.clone()),
        ("names (SAN)", c.san.join(", ")),
        ("profile", c.profile_name.clone().unwrap_or_default()),
        ("not before", table::time(c.not_before)),
        ("not after", table::time(c.not_after)),
        ("revoked", table::opt_time(c.revoked_at)),
        ("revocation reason", c.revocation_reason.clone().unwrap_or_default()),
        ("updated", table::time(c.updated_at)),
    ])
}

/// `certhook certificates …`
pub async fn certificates(store: &Store, cmd: &CertificatesCommand, out: &Output) -> anyhow::Result<()> {
    match cmd {
        CertificatesCommand::List { app, status, expiring_within, page } => {
            let application_id = parse_flag_id("--app", "application", app)?;
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
            out.emit_page(&list, query.limit, "certificates", CERTIFICATE_HEADER, |c| c.id.clone(), certificate_row)
        }
        CertificatesCommand::Show { app, id } => {
            let certificate = store.get_certificate(parse_flag_id("--app", "application", app)?, id).await?;
            out.emit(&certificate, certificate_fields)
        }
    }
}
