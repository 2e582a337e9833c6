//! An application's certificate inventory, soonest expiry first, with expiring, expired
//! and revoked certificates marked: the page `metadata.viewUrl` links to.

use axum::Extension;
use axum::extract::{Path, Query, State};
use certhook_core::event::CertificateStatus;
use certhook_store::{CertificateQuery, InventoryCertificate};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, badge, when};
use super::session::Ctx;
use super::{Failure, id};
use crate::api::ApiState;

/// Rows a page shows.
const PAGE: u32 = 100;

/// Within this many days of its notAfter a certificate is marked expiring.
const EXPIRING_DAYS: i64 = 30;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

/// What a certificate is, as the page marks it.
fn mark(c: &InventoryCertificate, now: DateTime<Utc>) -> &'static str {
    match c.status {
        CertificateStatus::Revoked => "revoked",
        _ if c.not_after <= now => "expired",
        _ if c.not_after <= now + chrono::Duration::days(EXPIRING_DAYS) => "expiring",
        _ => "active",
    }
}

/// `GET /applications/{id}/certificates`
pub async fn page(
    State(s): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(app): Path<String>,
    Query(p): Query<Params>,
) -> Result<Markup, Failure> {
    let app = s.store.get_application(id("application", &app)?).await?;
    let status = Some(p.status.trim())
        .filter(|v| !v.is_empty())
        .map(|v| crate::input::certificate_status(v).map_err(|m| Failure::bad(format!("Status: {m}"))))
        .transpose()?;
    let query = CertificateQuery {
        status,
        expiring_within: None,
        after: Some(p.after.trim().to_string()).filter(|a| !a.is_empty()),
        limit: PAGE,
    };
    let list = s.store.list_certificates(app.id, &query).await?;
    let now = Utc::now();
    let base = format!("/applications/{}/certificates", app.id);
    let body = html! {
        p { a href={ "/applications/" (app.id) } { "Alerts and channels of " (app.name) } }
        form.filters method="get" action=(base) role="search" {
            label { "Status"
                select name="status" {
                    option value="" selected[p.status.is_empty()] { "any" }
                    @for st in ["active", "expired", "revoked"] { option value=(st) selected[p.status == st] { (st) } }
                }
            }
            button type="submit" { "Filter" }
        }
        @if list.is_empty() { p { "No certificates." } }
        @else { div.scroll { table {
            thead { tr { th { "Common name" } th { "Status" } th { "Expires" } th { "Serial" } th { "Profile" } th { "Names" } th { "Id" } } }
            tbody { @for c in &list { tr {
                td { (c.common_name) }
                td { (badge(mark(c, now))) }
                td { (when(c.not_after, now)) }
                td.mono { (c.serial_number) }
                td { (c.profile_name.as_deref().unwrap_or("—")) }
                td { (c.san.join(", ")) }
                td.mono { (c.id) }
            } } }
        } } }
        (layout::pager(&base, &[("status", p.status.clone())], list.len() as u32 >= PAGE, list.last().map(|c| c.id.clone())))
    };
    Ok(layout::page(&ctx, "/applications", &format!("Certificates of {}", app.name), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_marked_by_what_needs_attention() {
        let now = Utc::now();
        let c = |days: i64, status| InventoryCertificate {
            application_id: uuid::Uuid::nil(),
            id: "c".into(),
            serial_number: "1".into(),
            common_name: "a".into(),
            san: vec![],
            profile_name: None,
            not_before: now - chrono::Duration::days(400),
            not_after: now + chrono::Duration::days(days),
            status,
            revoked_at: None,
            revocation_reason: None,
            updated_at: now,
        };
        assert_eq!(mark(&c(100, CertificateStatus::Active), now), "active");
        assert_eq!(mark(&c(10, CertificateStatus::Active), now), "expiring");
        assert_eq!(mark(&c(-1, CertificateStatus::Active), now), "expired", "past notAfter before any scan");
        assert_eq!(mark(&c(100, CertificateStatus::Revoked), now), "revoked");
    }
}
