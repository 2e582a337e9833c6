//! Building blocks for store tests: applications, alerts, channels and events.

use certhook_core::event::{AlertType, Certificate, ChannelState, NewEvent};
use certhook_core::render::RenderSettings;
use certhook_core::time::parse_rfc3339;
use certhook_store::{Alert, Application, Channel, NewAlert, NewChannel, Store};
use uuid::Uuid;

pub fn settings() -> RenderSettings {
    RenderSettings { type_prefix: "com.infisical.pki.certificate".into(), public_url: "https://certhook.test".into() }
}

/// A new application; names are unique, so each gets its own.
pub async fn app(store: &Store) -> Application {
    let name = format!("pki-prod-{}", uuid::Uuid::now_v7().simple());
    store.create_application(&name).await.expect("create application")
}

pub async fn alert(store: &Store, app: &Application, alert_type: AlertType, name: &str) -> Alert {
    store.create_alert(&NewAlert::single(app.id, alert_type, name)).await.expect("create alert")
}

pub async fn channel(store: &Store, alert: &Alert, state: ChannelState) -> Channel {
    store
        .create_channel(&NewChannel::webhook(alert.id, "https://receiver.test/hook", state), None)
        .await
        .expect("create channel")
}

pub fn certificate(serial: &str) -> Certificate {
    Certificate {
        id: format!("cert-{serial}"),
        serial_number: serial.into(),
        common_name: "api.example.com".into(),
        san: vec!["api.example.com".into()],
        profile_name: Some("TLS Server".into()),
        not_before: parse_rfc3339("2024-06-15T00:00:00Z").unwrap(),
        not_after: parse_rfc3339("2025-06-15T00:00:00Z").unwrap(),
        revoked_at: None,
        revocation_reason: None,
    }
}

pub fn event(app: Uuid, event_type: AlertType, serial: &str, key: Option<&str>) -> NewEvent {
    NewEvent {
        event_type,
        application_id: app,
        idempotency_key: key.map(str::to_string),
        certificate: certificate(serial),
    }
}

/// Fans out until nothing is left.
pub async fn fan_out_all(store: &Store) -> usize {
    fan_out_in_batches(store, 500).await
}

/// Fans out `batch` rows at a time until nothing is left; how many rows were read.
pub async fn fan_out_in_batches(store: &Store, batch: usize) -> usize {
    let mut total = 0;
    loop {
        let n = store.fan_out(&settings(), batch).await.expect("fan out");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// One issuance alert with one active channel, and `n` fanned-out events for it.
pub async fn queue_with(store: &Store, n: usize) -> (Application, Channel) {
    let app = app(store).await;
    let alert = alert(store, &app, AlertType::Issuance, "issued").await;
    let channel = channel(store, &alert, ChannelState::Active).await;
    let events: Vec<NewEvent> = (0..n).map(|i| event(app.id, AlertType::Issuance, &format!("{i}"), None)).collect();
    for chunk in events.chunks(500) {
        store.enqueue(chunk).await.expect("enqueue");
    }
    fan_out_all(store).await;
    (app, channel)
}
