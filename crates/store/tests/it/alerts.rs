//! Alerts of several types and with certificate filters, alert updates and application
//! deletes, and the paged lists (certificates, events, deliveries), on both backends.

use std::time::Duration;

use certhook_core::event::{AlertType, Certificate, CertificateStatus, ChannelKind, ChannelState, NewEvent};
use certhook_core::filter::CertificateFilter;
use certhook_core::subscription::AlertChange;
use certhook_store::{
    CertificateQuery, DeliveryFilter, EventQuery, EventState, NewAlert, NewChannel, Store, StoreError,
};
use uuid::Uuid;

use crate::fixtures::*;

crate::both_backends!(
    one_channel_of_a_three_type_alert_receives_each_type,
    filters_pick_certificates_by_profile_and_name_pattern,
    the_expiration_scan_reports_only_certificates_that_pass_the_filters,
    a_renewal_resolves_pagerduty_incidents_and_alerts_the_other_channels,
    an_update_replaces_types_and_filters_and_keeps_the_channels,
    an_application_with_alerts_is_deleted_only_with_cascade,
    application_names_are_unique_among_live_applications,
    certificates_page_soonest_expiry_first_with_filters,
    events_and_deliveries_page_newest_first,
    an_events_detail_lists_the_deliveries_of_every_alert_it_matched,
);

fn filter(profiles: &[&str], patterns: &[&str]) -> CertificateFilter {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    CertificateFilter::parse(&s(profiles), &s(patterns)).unwrap()
}

async fn alert_of(
    store: &Store,
    app: Uuid,
    types: &[AlertType],
    name: &str,
    filter: CertificateFilter,
) -> certhook_store::Alert {
    let alert_before = types.contains(&AlertType::Expiration).then(|| "30d".parse().unwrap());
    let new = NewAlert {
        application_id: app,
        types: types.to_vec(),
        name: name.into(),
        description: None,
        alert_before,
        filter,
    };
    store.create_alert(&new).await.unwrap()
}

fn named(serial: &str, cn: &str, san: &[&str], profile: Option<&str>) -> Certificate {
    Certificate {
        common_name: cn.into(),
        san: san.iter().map(|s| s.to_string()).collect(),
        profile_name: profile.map(str::to_string),
        ..certificate(serial)
    }
}

fn event_for(app: Uuid, t: AlertType, c: Certificate) -> NewEvent {
    NewEvent { event_type: t, application_id: app, idempotency_key: None, certificate: c }
}

/// Claims everything due and returns (delivery type, CloudEvent body) per lease.
async fn claim_all(store: &Store) -> Vec<(String, serde_json::Value)> {
    let claim = store.claim(100, Duration::from_secs(60)).await.unwrap();
    claim
        .leases
        .iter()
        .map(|l| (l.delivery_type.as_str().to_string(), serde_json::from_slice(&l.body).unwrap()))
        .collect()
}

async fn one_channel_of_a_three_type_alert_receives_each_type(store: Store) {
    let app = app(&store).await;
    let all = [AlertType::Issuance, AlertType::Renewal, AlertType::Revocation];
    let alert = alert_of(&store, app.id, &all, "lifecycle", CertificateFilter::default()).await;
    assert_eq!((alert.alert_type, alert.types.clone()), (AlertType::Issuance, all.to_vec()));
    assert_eq!(store.get_alert(alert.id).await.unwrap(), alert, "read back as written");
    let ch = channel(&store, &alert, ChannelState::Active).await;
    let mut revoked = certificate("3");
    revoked.revoked_at = Some(chrono::Utc::now());
    let events = vec![
        event(app.id, AlertType::Issuance, "1", None),
        event(app.id, AlertType::Renewal, "2", None),
        event_for(app.id, AlertType::Revocation, revoked),
    ];
    store.enqueue(&events).await.unwrap();
    fan_out_all(&store).await;
    let mut got = claim_all(&store).await;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["issuance", "renewal", "revocation"]);
    for (t, body) in &got {
        assert_eq!(body["type"], format!("com.infisical.pki.certificate.{t}"), "rendered as its own type");
        assert_eq!(body["subject"], format!("certificate-{t}-alert"));
        assert_eq!(body["data"]["alert"]["id"], alert.id.to_string());
    }
    let deliveries = store.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    assert!(deliveries.iter().all(|d| d.channel_id == ch.id), "one channel for all three");
}

async fn filters_pick_certificates_by_profile_and_name_pattern(store: Store) {
    let app = app(&store).await;
    let by_both =
        alert_of(&store, app.id, &[AlertType::Issuance], "prod-web", filter(&["web"], &["*.prod.example.com"])).await;
    let by_name = alert_of(&store, app.id, &[AlertType::Issuance], "api", filter(&[], &["API.example.com"])).await;
    channel(&store, &by_both, ChannelState::Active).await;
    channel(&store, &by_name, ChannelState::Active).await;
    let certs = [
        named("1", "a.prod.example.com", &[], Some("web")), // both: prod-web
        named("2", "service", &["x.test", "b.prod.example.com"], Some("web")), // a SAN: prod-web
        named("3", "a.prod.example.com", &[], Some("client")), // wrong profile
        named("4", "a.b.prod.example.com", &[], Some("web")), // two labels under the wildcard
        named("5", "api.example.com", &[], None),           // api only
        named("6", "prod.example.com", &["api.example.com."], Some("web")), // api by SAN
    ];
    let events: Vec<NewEvent> = certs.iter().map(|c| event_for(app.id, AlertType::Issuance, c.clone())).collect();
    store.enqueue(&events).await.unwrap();
    fan_out_all(&store).await;
    let mut got: Vec<(String, String)> = claim_all(&store)
        .await
        .into_iter()
        .map(|(_, b)| {
            let alert = b["data"]["alert"]["name"].as_str().unwrap().to_string();
            (alert, b["data"]["certificates"][0]["serialNumber"].as_str().unwrap().to_string())
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [("api", "5"), ("api", "6"), ("prod-web", "1"), ("prod-web", "2")]
        .iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect();
    assert_eq!(got, want);
}

async fn the_expiration_scan_reports_only_certificates_that_pass_the_filters(store: Store) {
    let app = app(&store).await;
    let alert =
        alert_of(&store, app.id, &[AlertType::Expiration], "prod-expiry", filter(&[], &["*.prod.example.com"])).await;
    let soon = chrono::Utc::now() + chrono::Duration::days(5);
    let certs = vec![
        Certificate { not_after: soon, ..named("p1", "a.prod.example.com", &[], None) },
        Certificate { not_after: soon, ..named("s1", "a.staging.example.com", &[], None) },
        Certificate { not_after: soon, ..named("p2", "svc", &["b.prod.example.com"], None) },
    ];
    store.upsert_certificates(app.id, &certs).await.unwrap();
    let preview = store.preview_expirations(chrono::Utc::now(), 100).await.unwrap();
    assert_eq!(preview.reported, 2, "the preview filters too: {preview:?}");
    let out = store.scan_expirations(chrono::Utc::now(), 100).await.unwrap();
    let reported: Vec<&str> = out.reports[0].certificates.iter().map(|c| c.serial_number.as_str()).collect();
    assert_eq!(reported, ["p1", "p2"]);
    assert_eq!(out.reports[0].alert_id, alert.id);
}

async fn a_renewal_resolves_pagerduty_incidents_and_alerts_the_other_channels(store: Store) {
    let app = app(&store).await;
    let alert = alert_of(
        &store,
        app.id,
        &[AlertType::Expiration, AlertType::Renewal],
        "expiry-and-renewal",
        filter(&[], &["*.example.com"]),
    )
    .await;
    let webhook = channel(&store, &alert, ChannelState::Active).await;
    let pagerduty = NewChannel {
        id: Uuid::now_v7(),
        alert_id: alert.id,
        kind: ChannelKind::Pagerduty,
        url: None,
        state: ChannelState::Active,
        secret: None,
        routing_key: Some(certhook_core::Secret::new("0123456789abcdef0123456789abcdef")),
        content_type: None,
        rate_limit: None,
        tls: Default::default(),
    };
    let pagerduty = store.create_channel(&pagerduty, None).await.unwrap();
    store.enqueue(&[event(app.id, AlertType::Renewal, "1", None)]).await.unwrap();
    // A certificate outside the alert's filters had no incident to resolve, nor is its
    // renewal the alert's business.
    let outside = named("2", "api.example.org", &[], None);
    store.enqueue(&[event_for(app.id, AlertType::Renewal, outside)]).await.unwrap();
    fan_out_all(&store).await;
    let deliveries = store.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    let of = |id: Uuid| {
        deliveries.iter().filter(|d| d.channel_id == id).map(|d| d.delivery_type.clone()).collect::<Vec<_>>()
    };
    assert_eq!(of(webhook.id), ["renewal"]);
    assert_eq!(of(pagerduty.id), ["resolve"], "a resolution only, no renewal incident");
}

async fn an_update_replaces_types_and_filters_and_keeps_the_channels(store: Store) {
    let app = app(&store).await;
    let alert = alert_of(&store, app.id, &[AlertType::Issuance], "issued", CertificateFilter::default()).await;
    let other = alert_of(&store, app.id, &[AlertType::Issuance], "taken", CertificateFilter::default()).await;
    let ch = channel(&store, &alert, ChannelState::Active).await;
    let change = AlertChange {
        types: Some(vec!["revocation,issuance".into()]),
        name_patterns: Some(vec!["*.example.com".into()]),
        description: Some(Some("narrowed".into())),
        ..Default::default()
    };
    let updated = store
        .update_alert(alert.id, |a| change.apply(&a.spec()).map(|s| NewAlert::from_spec(a.application_id, s)))
        .await
        .unwrap();
    assert_eq!(updated.types, [AlertType::Revocation, AlertType::Issuance]);
    assert_eq!(updated.alert_type, AlertType::Revocation);
    assert_eq!(store.get_alert(alert.id).await.unwrap(), updated);
    assert_eq!(store.list_channels(Some(alert.id)).await.unwrap()[0].id, ch.id);

    let rename = AlertChange { name: Some(other.name.clone()), ..Default::default() };
    let e = store
        .update_alert(alert.id, |a| rename.apply(&a.spec()).map(|s| NewAlert::from_spec(a.application_id, s)))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let window = AlertChange { types: Some(vec!["expiration".into()]), ..Default::default() };
    let e = store
        .update_alert(alert.id, |a| window.apply(&a.spec()).map(|s| NewAlert::from_spec(a.application_id, s)))
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.field().as_deref() == Some("alertBefore")), "{e}");
    assert_eq!(store.get_alert(alert.id).await.unwrap(), updated, "a refused update changes nothing");
    let gone = store.update_alert(Uuid::now_v7(), |a| Ok(NewAlert::from_spec(a.application_id, a.spec()))).await;
    assert!(matches!(gone, Err(StoreError::NotFound { kind: "alert", .. })));
}

async fn an_application_with_alerts_is_deleted_only_with_cascade(store: Store) {
    let (app, ch) = queue_with(&store, 3).await;
    let e = store.delete_application(app.id, false).await.unwrap_err();
    assert!(e.to_string().contains("--cascade"), "{e}");
    assert_eq!(store.get_application(app.id).await.unwrap().id, app.id, "still there");
    assert_eq!(store.delete_application(app.id, true).await.unwrap(), 3, "its waiting deliveries dead-lettered");
    assert!(matches!(store.get_application(app.id).await, Err(StoreError::NotFound { .. })));
    assert!(store.list_applications().await.unwrap().is_empty());
    assert!(store.list_alerts(Some(app.id)).await.unwrap().is_empty());
    assert!(matches!(store.get_channel(ch.id).await, Err(StoreError::NotFound { .. })));
    let refused = store.enqueue(&[event(app.id, AlertType::Issuance, "9", None)]).await.unwrap_err();
    assert!(matches!(refused, StoreError::UnknownApplication { .. }), "{refused}");
    // A row a PKI writes into the outbox by hand for the deleted application goes nowhere.
    crate::harness::exec(
        &store,
        &format!(
            "INSERT INTO certhook_events (application_id, type, certificate) VALUES ('{}', 'issuance', \
             '{{\"serialNumber\": \"9\", \"commonName\": \"a.example\", \"notBefore\": \"2024-01-01T00:00:00Z\", \
             \"notAfter\": \"2030-01-01T00:00:00Z\"}}')",
            app.id
        ),
    )
    .await;
    fan_out_all(&store).await;
    let refused = store.list_events(&EventQuery { refused: true, limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert!(refused[0].error.as_deref().unwrap().contains("was deleted"), "{refused:?}");
    let empty = self::app(&store).await;
    assert_eq!(store.delete_application(empty.id, false).await.unwrap(), 0, "no alerts: no cascade needed");
}

async fn application_names_are_unique_among_live_applications(store: Store) {
    for blank in ["", "  \t"] {
        let e = store.create_application(blank).await.unwrap_err();
        assert!(matches!(&e, StoreError::Invalid(v) if v.field().as_deref() == Some("name")), "{e}");
    }
    assert_eq!(store.create_application("  spaced ").await.unwrap().name, "spaced", "trimmed");
    let first = app(&store).await;
    let e = store.create_application(&first.name).await.unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains(&first.id.to_string())), "{e}");
    assert_eq!(store.list_applications().await.unwrap().len(), 2, "nothing stored");
    store.create_application("pki-staging").await.unwrap();
    store.delete_application(first.id, false).await.unwrap();
    let again = store.create_application(&first.name).await.unwrap();
    assert_ne!(again.id, first.id, "a deleted application's name can be used again");

    // Creates racing for one name: exactly one wins, on PostgreSQL too (READ COMMITTED
    // alone would let each pass the check before the other's insert is visible).
    let racers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.create_application("raced").await })
    });
    let mut won = 0;
    for racer in racers.collect::<Vec<_>>() {
        match racer.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert!(matches!(e, StoreError::Conflict(_)), "{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.list_applications().await.unwrap().iter().filter(|a| a.name == "raced").count(), 1);
}

async fn certificates_page_soonest_expiry_first_with_filters(store: Store) {
    let app = app(&store).await;
    let now = chrono::Utc::now();
    let mut certs: Vec<Certificate> = (0..5)
        .map(|i| Certificate { not_after: now + chrono::Duration::days(10 * (i + 1)), ..certificate(&format!("{i}")) })
        .collect();
    certs[1].revoked_at = Some(now);
    certs[3].not_after = certs[2].not_after; // a tie, broken by id
    store.upsert_certificates(app.id, &certs).await.unwrap();
    let page = |after: Option<&str>, limit| CertificateQuery {
        after: after.map(str::to_string),
        ..CertificateQuery::first(limit)
    };
    let first = store.list_certificates(app.id, &page(None, 2)).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["cert-0", "cert-1"]);
    let second = store.list_certificates(app.id, &page(Some("cert-1"), 2)).await.unwrap();
    let rest = store.list_certificates(app.id, &page(Some("cert-3"), 2)).await.unwrap();
    let ids: Vec<&str> = second.iter().chain(&rest).map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["cert-2", "cert-3", "cert-4"]);
    let after_tie = store.list_certificates(app.id, &page(Some("cert-2"), 1)).await.unwrap();
    assert_eq!(after_tie[0].id, "cert-3", "the tie's other half is neither skipped nor repeated");
    let revoked = CertificateQuery { status: Some(CertificateStatus::Revoked), ..CertificateQuery::first(10) };
    let revoked = store.list_certificates(app.id, &revoked).await.unwrap();
    assert_eq!((revoked.len(), revoked[0].id.as_str(), revoked[0].revoked_at.is_some()), (1, "cert-1", true));
    let expiring =
        CertificateQuery { expiring_within: Some(Duration::from_secs(25 * 86_400)), ..CertificateQuery::first(10) };
    let ids: Vec<String> =
        store.list_certificates(app.id, &expiring).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["cert-0"], "within 25 days and not revoked");
    let by_serial = store.get_certificate(app.id, "3").await.unwrap();
    assert_eq!(by_serial.id, "cert-3");
    assert_eq!(store.get_certificate(app.id, "cert-3").await.unwrap(), by_serial);
    assert!(matches!(
        store.get_certificate(app.id, "nope").await,
        Err(StoreError::NotFound { kind: "certificate", .. })
    ));
    let e = store.list_certificates(app.id, &page(Some("nope"), 2)).await.unwrap_err();
    assert!(e.to_string().contains("after"), "{e}");
    let e = store.list_certificates(Uuid::now_v7(), &page(None, 2)).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { kind: "application", .. }));
}

async fn an_events_detail_lists_the_deliveries_of_every_alert_it_matched(store: Store) {
    // Two alerts make two messages of one event: the detail finds deliveries through the
    // event's messages, so it must list both messages' deliveries and no other event's.
    let app = app(&store).await;
    let first = alert_of(&store, app.id, &[AlertType::Issuance], "first", filter(&[], &[])).await;
    let second = alert_of(&store, app.id, &[AlertType::Issuance], "second", filter(&[], &[])).await;
    let mut channels = vec![
        channel(&store, &first, ChannelState::Active).await.id,
        channel(&store, &first, ChannelState::Active).await.id,
        channel(&store, &second, ChannelState::Active).await.id,
    ];
    let ids = store
        .enqueue(&[event(app.id, AlertType::Issuance, "1", None), event(app.id, AlertType::Issuance, "2", None)])
        .await
        .unwrap();
    fan_out_all(&store).await;
    let detail = store.get_event(&ids[0].to_string()).await.unwrap();
    let mut got: Vec<Uuid> = detail.deliveries.iter().map(|d| d.channel_id).collect();
    got.sort();
    channels.sort();
    assert_eq!(got, channels, "one delivery per channel of both alerts");
    assert!(detail.deliveries.iter().all(|d| d.event_id == Some(ids[0])), "none of the other event's");
    let messages: std::collections::HashSet<Uuid> = detail.deliveries.iter().map(|d| d.cloud_event_id).collect();
    assert_eq!(messages.len(), 2, "a message per alert");
}

async fn events_and_deliveries_page_newest_first(store: Store) {
    let (app, _) = queue_with(&store, 5).await;
    let other = self::app(&store).await;
    store.enqueue(&[event(other.id, AlertType::Issuance, "x", None)]).await.unwrap();
    let q = |after: Option<String>, limit| EventQuery { application_id: Some(app.id), after, limit, refused: false };
    let first = store.list_events(&q(None, 3)).await.unwrap();
    let second = store.list_events(&q(Some(first[2].id.clone()), 3)).await.unwrap();
    let serials: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|e| e.certificate.as_ref().unwrap()["serialNumber"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serials, ["4", "3", "2", "1", "0"], "newest first, no gap, no repeat");
    assert!(second.iter().all(|e| e.application_id == app.id.to_string()));
    for state in [EventState::Waiting, EventState::FannedOut, EventState::Refused] {
        assert_eq!(serde_json::to_value(state).unwrap(), state.as_str(), "the text and the JSON say the same");
    }
    let detail = store.get_event(&first[0].id).await.unwrap();
    assert_eq!(detail.deliveries.len(), 1);
    assert_eq!(detail.deliveries[0].event_id.unwrap().to_string(), first[0].id);
    assert!(matches!(store.get_event("nope").await, Err(StoreError::NotFound { kind: "event", .. })));

    let page = |after, limit| DeliveryFilter { after, limit: Some(limit), ..Default::default() };
    let a = store.list_deliveries(&page(None, 2)).await.unwrap();
    let b = store.list_deliveries(&page(Some(a[1].id), 2)).await.unwrap();
    let c = store.list_deliveries(&page(Some(b[1].id), 2)).await.unwrap();
    let all = store.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    let paged: Vec<Uuid> = a.iter().chain(&b).chain(&c).map(|d| d.id).collect();
    assert_eq!(paged, all.iter().map(|d| d.id).collect::<Vec<_>>());
    assert_eq!(paged.len(), 5);
    let e = store.list_deliveries(&page(Some(Uuid::now_v7()), 2)).await.unwrap_err();
    assert!(e.to_string().contains("after"), "{e}");
}
