//! The certificate inventory: what fan-out and imports write, what the expiration scan
//! reads, and the scan itself (each report enqueued once, however many scans run).
use std::collections::HashMap;

use certhook_core::event::Certificate;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::backend::Backend;
use crate::batch::{CertificateRow, json_array};
use crate::driver::{Driver, Statement};
use crate::error::{Result, StoreError};
use crate::fan_out::FAN_OUT_CHUNK;
use crate::model::*;
use crate::rows::{alert_from, certificate_from, duration_ms, inventory_from};

/// A certificate as the inventory stores it.
pub(crate) fn certificate_row<'a>(application_id: &'a str, c: &'a Certificate) -> CertificateRow<'a> {
    CertificateRow {
        app: application_id,
        id: &c.id,
        serial: &c.serial_number,
        cn: &c.common_name,
        san: serde_json::to_string(&c.san).unwrap_or_else(|_| "[]".into()),
        profile: c.profile_name.as_deref(),
        not_before: c.not_before.timestamp_millis(),
        not_after: c.not_after.timestamp_millis(),
        revoked_at: c.revoked_at.map(|t| t.timestamp_millis()),
        reason: c.revocation_reason.map(|r| r.as_str()),
        status: if c.revoked_at.is_some() { "revoked" } else { "active" },
    }
}

/// Of several rows for one certificate the last (PostgreSQL refuses to update one row twice
/// in a statement), in key order: transactions that upsert overlapping certificates (two
/// processes fanning out, an enqueue beside a fan-out) then lock them in the same order and
/// cannot deadlock.
fn last_of_each_in_key_order<'r, 'a>(rows: &'r [CertificateRow<'a>]) -> Vec<&'r CertificateRow<'a>> {
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert((r.app, r.id), i);
    }
    let mut unique: Vec<&CertificateRow<'_>> =
        rows.iter().enumerate().filter(|(i, r)| last[&(r.app, r.id)] == *i).map(|(_, r)| r).collect();
    unique.sort_unstable_by_key(|r| (r.app, r.id));
    unique
}

impl<D: Driver> Backend<D> {
    /// Upserts inventory rows in one statement per chunk, the last row of each certificate,
    /// in key order (see [`last_of_each_in_key_order`]).
    pub(crate) async fn write_certificates(
        &self,
        tx: &mut sqlx::Transaction<'static, D::Db>,
        rows: Vec<CertificateRow<'_>>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        for chunk in last_of_each_in_key_order(&rows).chunks(FAN_OUT_CHUNK) {
            D::statement(self.q.upsert_certificates).bind(json_array(chunk)).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Loads certificates into an application's inventory without producing events
    /// (`import` without `--notify`). Returns how many were written.
    pub async fn upsert_certificates(&self, application_id: Uuid, certificates: &[Certificate]) -> Result<u64> {
        let (_writer, mut tx) = self.begin_write().await?;
        let app = application_id.to_string();
        if D::statement(self.q.application_exists).bind(&app).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound { kind: "application", id: app });
        }
        self.write_certificates(&mut tx, certificates.iter().map(|c| certificate_row(&app, c)).collect()).await?;
        tx.commit().await?;
        Ok(certificates.len() as u64)
    }

    /// An application's inventory, soonest expiry first, a page at a time, with each
    /// certificate's status as last judged.
    pub async fn list_certificates(
        &self,
        application_id: Uuid,
        query: &CertificateQuery,
    ) -> Result<Vec<InventoryCertificate>> {
        let app = application_id.to_string();
        self.get_application(application_id).await?;
        let after = match &query.after {
            Some(id) => Some(self.get_certificate(application_id, id).await.map_err(|e| match e {
                StoreError::NotFound { id, .. } => StoreError::NotFound { kind: "certificate (after)", id },
                e => e,
            })?),
            None => None,
        };
        let status = query.status.map(|s| s.as_str());
        let within = query.expiring_within.map(duration_ms);
        let rows = D::statement(self.q.list_certificates)
            .bind(&app)
            .bind(status)
            .bind(status)
            .bind(within)
            .bind(within)
            // From the start: before every (notAfter, id).
            .bind(after.as_ref().map_or(i64::MIN, |c| c.not_after.timestamp_millis()))
            .bind(after.map_or_else(String::new, |c| c.id))
            .bind(i64::from(query.limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(inventory_from).collect()
    }

    /// One certificate of an application's inventory, by the PKI's id or by serial number.
    pub async fn get_certificate(&self, application_id: Uuid, id_or_serial: &str) -> Result<InventoryCertificate> {
        let row = D::statement(self.q.get_certificate)
            .bind(application_id.to_string())
            .bind(id_or_serial)
            .bind(id_or_serial)
            .bind(id_or_serial)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound { kind: "certificate", id: id_or_serial.to_string() });
        };
        inventory_from(&row)
    }

    /// The expiration scan at instant `as_of` (SPEC §5): for every expiration alert, the
    /// active, unrevoked certificates of its application whose notAfter falls within the
    /// alert's window and that were not yet reported for that alert at that notAfter, in
    /// events of at most `max_per_event` certificates. A report row per (alert,
    /// certificate, notAfter) is claimed with `ON CONFLICT DO NOTHING`, so concurrent scans
    /// on one database enqueue each report once. Also marks expired the certificates whose notAfter has
    /// passed by both `as_of` and the database clock: a scan ahead of time never marks one.
    pub async fn scan_expirations(&self, as_of: DateTime<Utc>, max_per_event: usize) -> Result<ScanOutcome> {
        self.scan(as_of, max_per_event, true).await
    }

    /// What [`Self::scan_expirations`] would report and mark at `as_of`, with nothing
    /// stored: the same transaction, rolled back. No event ids are returned.
    pub async fn preview_expirations(&self, as_of: DateTime<Utc>, max_per_event: usize) -> Result<ScanOutcome> {
        self.scan(as_of, max_per_event, false).await
    }

    /// The scan: candidates are read outside any write transaction, then each event's
    /// worth of certificates is claimed and enqueued in a transaction of its own, so a scan
    /// of a large inventory never holds the SQLite writer for long. `commit: false` rolls
    /// every transaction back (the preview).
    async fn scan(&self, as_of: DateTime<Utc>, max_per_event: usize, commit: bool) -> Result<ScanOutcome> {
        let now_ms = as_of.timestamp_millis();
        let alerts = D::statement(self.q.expiration_alerts)
            .bind(certhook_core::event::AlertType::Expiration.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut outcome = ScanOutcome { alerts: alerts.len(), ..Default::default() };
        for row in &alerts {
            let alert = alert_from(row)?;
            let Some(window) = alert.alert_before else { continue };
            let until = now_ms + window.as_duration().num_milliseconds();
            let alert_key = alert.id.to_string();
            let mut candidates = D::statement(self.q.expiring_unreported)
                .bind(alert.application_id.to_string())
                .bind(now_ms)
                .bind(until)
                .bind(&alert_key)
                .fetch_all(&mut *self.conn().await?)
                .await?
                .iter()
                .map(certificate_from)
                .collect::<Result<Vec<_>>>()?;
            // An expiration event lists only the certificates that pass the alert's filters;
            // the others are not reported for it at all.
            candidates.retain(|c| alert.filter.passes(c));
            let mut reported = Vec::new();
            for chunk in candidates.chunks(max_per_event.max(1)) {
                let (_writer, mut tx) = self.begin_write().await?;
                // Each report is claimed once, however many scans run: a concurrent scan's
                // claims are skipped here.
                let mut won = Vec::with_capacity(chunk.len());
                for cert in chunk {
                    let claimed = D::statement(self.q.insert_report)
                        .bind(&alert_key)
                        .bind(&cert.id)
                        .bind(cert.not_after.timestamp_millis())
                        .bind("")
                        .fetch_optional(&mut *tx)
                        .await?;
                    if claimed.is_some() {
                        won.push(cert.clone());
                    }
                }
                if !won.is_empty() {
                    let event_id = Uuid::now_v7();
                    let certificates = serde_json::to_string(&won)
                        .map_err(|e| StoreError::Corrupt(format!("certificates do not serialize: {e}")))?;
                    D::statement(self.q.insert_scan_event)
                        .bind(event_id.to_string())
                        .bind(alert.application_id.to_string())
                        .bind(certificates)
                        .bind(&alert_key)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                    outcome.events.push(event_id);
                    outcome.reported += won.len();
                    reported.extend(won);
                }
                if commit {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
            }
            if !reported.is_empty() {
                outcome.reports.push(ScanReport {
                    alert_id: alert.id,
                    alert_name: alert.name.clone(),
                    certificates: reported,
                });
            }
        }
        let (_writer, mut tx) = self.begin_write().await?;
        outcome.expired_marked = D::statement(self.q.mark_expired).bind(now_ms).execute(&mut *tx).await?;
        if !commit {
            tx.rollback().await?;
            outcome.events.clear();
            return Ok(outcome);
        }
        tx.commit().await?;
        if !outcome.events.is_empty() {
            self.wake();
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(app: &'a str, id: &'a str, serial: &'a str) -> CertificateRow<'a> {
        CertificateRow {
            app,
            id,
            serial,
            cn: "a.example",
            san: "[]".into(),
            profile: None,
            not_before: 0,
            not_after: 1,
            revoked_at: None,
            reason: None,
            status: "active",
        }
    }

    #[test]
    fn upserts_keep_the_last_row_of_each_certificate_in_key_order() {
        let rows = [row("b", "2", "first"), row("a", "9", "x"), row("b", "1", "y"), row("b", "2", "last")];
        let picked: Vec<(&str, &str, &str)> =
            last_of_each_in_key_order(&rows).iter().map(|r| (r.app, r.id, r.serial)).collect();
        assert_eq!(picked, [("a", "9", "x"), ("b", "1", "y"), ("b", "2", "last")]);
    }
}
