//! The expiration scan on both backends: window edges, batching, deduplication, renewals,
//! `as_of` determinism; and two concurrent scans on one PostgreSQL database.

use std::time::Duration;

use certhook_core::event::{AlertType, Certificate, ChannelState};
use certhook_core::time::parse_rfc3339;
use certhook_store::{CertificateQuery, Store};
use chrono::{DateTime, Utc};

use crate::fixtures::*;
use crate::harness::TestDb;

crate::both_backends!(
    window_edges_revoked_and_expired_certificates,
    batches_split_at_max_per_event_and_never_repeat,
    a_renewal_leaves_the_window_and_comes_back_with_its_new_not_after,
    the_rendered_event_is_fixed_by_as_of,
    a_scan_ahead_of_the_clock_reports_but_marks_nothing_expired,
);

fn at(s: &str) -> DateTime<Utc> {
    parse_rfc3339(s).unwrap()
}

const AS_OF: &str = "2024-01-15T10:30:00Z";

fn cert(id: &str, not_after: DateTime<Utc>) -> Certificate {
    Certificate { id: id.into(), serial_number: format!("serial-{id}"), not_after, ..certificate(id) }
}

async fn window_edges_revoked_and_expired_certificates(store: Store) {
    let app = app(&store).await;
    alert(&store, &app, AlertType::Expiration, "tls-expiry").await; // 30d
    let t = at(AS_OF);
    let mut revoked = cert("revoked", t + chrono::Duration::days(1));
    revoked.revoked_at = Some(t);
    let certs = vec![
        cert("edge", t + chrono::Duration::days(30)),
        cert("outside", t + chrono::Duration::days(30) + chrono::Duration::seconds(1)),
        cert("expired", t - chrono::Duration::seconds(1)),
        cert("at-now", t),
        cert("soon", t + chrono::Duration::hours(1)),
        revoked,
    ];
    store.upsert_certificates(app.id, &certs).await.unwrap();
    let out = store.scan_expirations(t, 100).await.unwrap();
    assert_eq!(out.alerts, 1);
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.reported, 2, "exactly at alertBefore is in, one second outside is out: {out:?}");
    assert_eq!(out.expired_marked, 2, "expired and at-now are marked expired");
    let inventory = store.list_certificates(app.id, &CertificateQuery::first(100)).await.unwrap();
    let status = |id: &str| inventory.iter().find(|c| c.id == id).unwrap().status.to_string();
    assert_eq!((status("expired").as_str(), status("at-now").as_str()), ("expired", "expired"));
    assert_eq!((status("edge").as_str(), status("revoked").as_str()), ("active", "revoked"));
}

async fn a_scan_ahead_of_the_clock_reports_but_marks_nothing_expired(store: Store) {
    let app = app(&store).await;
    alert(&store, &app, AlertType::Expiration, "tls-expiry").await; // 30d
    let now = store.now().await.unwrap();
    let certs = [cert("soon", now + chrono::Duration::days(2)), cert("past", now - chrono::Duration::days(1))];
    store.upsert_certificates(app.id, &certs).await.unwrap();
    let ahead = store.scan_expirations(now + chrono::Duration::days(10), 100).await.unwrap();
    assert_eq!(ahead.reported, 0, "soon is already past at that instant, so it is not reported either");
    assert_eq!(ahead.expired_marked, 1, "only the certificate the real clock has passed");
    let inventory = store.list_certificates(app.id, &CertificateQuery::first(100)).await.unwrap();
    let status = |id: &str| inventory.iter().find(|c| c.id == id).unwrap().status.to_string();
    assert_eq!((status("soon").as_str(), status("past").as_str()), ("active", "expired"));
}

async fn batches_split_at_max_per_event_and_never_repeat(store: Store) {
    let app = app(&store).await;
    alert(&store, &app, AlertType::Expiration, "tls-expiry").await;
    let t = at(AS_OF);
    let certs: Vec<_> = (0..5).map(|i| cert(&format!("c{i}"), t + chrono::Duration::days(i + 1))).collect();
    store.upsert_certificates(app.id, &certs).await.unwrap();
    let out = store.scan_expirations(t, 2).await.unwrap();
    assert_eq!((out.events.len(), out.reported), (3, 5));
    let again = store.scan_expirations(t + chrono::Duration::hours(1), 2).await.unwrap();
    assert_eq!((again.events.len(), again.reported), (0, 0), "each (alert, certificate, notAfter) is reported once");
    assert_eq!(store.status().await.unwrap().events.total, 3);
}

async fn a_renewal_leaves_the_window_and_comes_back_with_its_new_not_after(store: Store) {
    let app = app(&store).await;
    alert(&store, &app, AlertType::Expiration, "tls-expiry").await;
    let t = at(AS_OF);
    store.upsert_certificates(app.id, &[cert("web", t + chrono::Duration::days(10))]).await.unwrap();
    assert_eq!(store.scan_expirations(t, 100).await.unwrap().reported, 1);
    // renewed: same id, a year more
    let renewed_until = t + chrono::Duration::days(375);
    store.upsert_certificates(app.id, &[cert("web", renewed_until)]).await.unwrap();
    assert_eq!(store.scan_expirations(t + chrono::Duration::days(1), 100).await.unwrap().reported, 0);
    let later = renewed_until - chrono::Duration::days(29);
    assert_eq!(
        store.scan_expirations(later, 100).await.unwrap().reported,
        1,
        "alerted again when the new window comes"
    );
}

async fn the_rendered_event_is_fixed_by_as_of(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Expiration, "tls-expiry").await;
    channel(&store, &alert, ChannelState::Active).await;
    let t = at(AS_OF);
    let mut c = cert("api", at("2024-02-14T10:30:00Z"));
    c.common_name = "api.example.com".into();
    c.serial_number = "1234567890".into();
    c.san = vec!["api.example.com".into(), "www.api.example.com".into()];
    c.not_before = at("2024-01-01T00:00:00Z");
    store.upsert_certificates(app.id, &[c]).await.unwrap();
    let out = store.scan_expirations(t, 100).await.unwrap();
    fan_out_all(&store).await;
    let lease = store.claim(10, Duration::from_secs(60)).await.unwrap().leases.pop().unwrap();
    let ce: serde_json::Value = serde_json::from_slice(&lease.body).unwrap();
    assert_eq!(ce["type"], "com.infisical.pki.certificate.expiration");
    assert_eq!(ce["subject"], "certificate-expiration-alert");
    assert_eq!(ce["time"], "2024-01-15T10:30:00.000Z", "time is the scan instant");
    assert_eq!(ce["source"], format!("/applications/{}/alerts/{}", app.id, alert.id));
    assert_eq!(ce["id"], lease.cloud_event_id.to_string());
    let data = &ce["data"];
    assert_eq!(
        data["alert"],
        serde_json::json!({"id": alert.id, "name": "tls-expiry", "alertBefore": "30d", "applicationId": app.id})
    );
    assert_eq!(
        data["certificates"][0],
        serde_json::json!({"id": "api", "serialNumber": "1234567890", "commonName": "api.example.com",
            "san": ["api.example.com", "www.api.example.com"], "profileName": "TLS Server",
            "notBefore": "2024-01-01T00:00:00.000Z", "notAfter": "2024-02-14T10:30:00.000Z",
            "status": "active", "daysUntilExpiry": 30})
    );
    assert_eq!(data["metadata"]["totalCertificates"], 1);
    assert_eq!(data["metadata"]["viewUrl"], format!("https://certhook.test/applications/{}/certificates", app.id));
    let d = store.get_delivery(lease.delivery_id).await.unwrap().delivery;
    assert_eq!(d.event_id, Some(out.events[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_scans_on_postgres_report_each_certificate_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let store = db.store().await;
    let app = app(&store).await;
    alert(&store, &app, AlertType::Expiration, "tls-expiry").await;
    alert(&store, &app, AlertType::Expiration, "tls-expiry-7d").await;
    let t = at(AS_OF);
    let certs: Vec<_> = (0..200).map(|i| cert(&format!("c{i}"), t + chrono::Duration::hours(i + 1))).collect();
    store.upsert_certificates(app.id, &certs).await.unwrap();
    let a = Store::connect(db.url()).await.unwrap();
    let b = Store::connect(db.url()).await.unwrap();
    let (ra, rb) = tokio::join!(a.scan_expirations(t, 50), b.scan_expirations(t, 50));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.reported + rb.reported, 400, "200 certificates × 2 alerts, each once: {ra:?} {rb:?}");
    let events = store.status().await.unwrap().events.total;
    assert_eq!(events as usize, ra.events.len() + rb.events.len());
    a.close().await;
    b.close().await;
    store.close().await;
    db.finish().await;
}
