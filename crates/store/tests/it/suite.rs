//! The behavioural suite, run on both backends.

use std::time::Duration;

use certhook_core::event::{AlertType, ChannelState, DeliveryState};
use certhook_store::{
    AttemptRecord, ClaimRequest, DeadLetterSelector, DeliveryFilter, Disposition, EventQuery, EventState, Lease,
    Outcome, Replayed, SkippedChannel, Store, StoreError,
};
use chrono::Utc;

use crate::fixtures::*;
use crate::harness::{exec, scalar};

crate::both_backends!(
    a_delivery_type_this_version_does_not_know_is_claimed_not_dead_lettered,
    plain_sql_rows_are_checked_like_api_events_and_refusals_keep_their_reason,
    channel_secrets_are_sealed_at_rest_and_rewrapped_under_a_new_key,
    client_keys_are_sealed_at_rest_shown_only_as_present_and_erased_on_delete,
    rate_limits_and_tls_settings_are_stored_changed_and_removed,
    a_delivered_verification_keeps_its_body_but_not_its_token,
    enqueue_is_idempotent_on_key,
    a_large_batch_is_stored_in_order_with_each_id_in_its_place,
    batch_with_one_bad_event_stores_nothing,
    fan_out_creates_one_delivery_per_channel_of_each_matching_alert,
    an_enqueue_with_render_settings_fans_out_in_its_own_transaction_as_the_worker_would,
    a_large_enqueue_fans_out_across_chunks_and_a_huge_one_leaves_it_to_serve,
    paused_and_unverified_channels_hold_deliveries_until_active,
    disabled_channel_dead_letters_new_deliveries,
    claim_leases_due_rows_once,
    claim_respects_per_channel_caps_and_skips_full_channels,
    expired_lease_is_taken_over_and_the_old_owner_is_fenced_off,
    an_extended_lease_is_not_taken_over_and_extension_is_fenced,
    a_fenced_duplicate_in_one_batch_writes_no_attempt,
    a_claimed_row_that_cannot_be_read_is_dead_lettered_and_the_rest_go_out,
    a_410_from_a_url_the_channel_no_longer_has_disables_nothing,
    a_connection_left_inside_a_transaction_is_not_reused,
    a_busy_queue_still_takes_expired_leases_over_and_never_claims_past_the_limit,
    retry_schedules_the_next_attempt_and_logs_the_attempt,
    dead_letter_replay_keeps_the_cloud_event_id_and_resets_attempts,
    replay_and_purge_by_filter_with_dry_run,
    replay_and_purge_of_more_dead_letters_than_one_transaction_takes,
    released_lease_is_due_again_without_an_attempt,
    deleting_a_channel_dead_letters_its_waiting_deliveries,
    prune_removes_old_delivered_rows_but_never_dead_letters,
    plain_sql_insert_is_picked_up_by_fan_out,
    malformed_plain_sql_row_is_marked_and_not_delivered,
    transactional_outbox_commits_or_rolls_back_with_the_caller,
    issuance_and_revocation_update_the_inventory,
    one_fan_out_batch_with_several_events_for_a_certificate_keeps_the_last,
    a_body_survives_the_batch_write_byte_for_byte,
    status_counts_every_state,
    channels_failing_without_success_for_disable_after_are_disabled,
    a_batch_of_successes_is_fenced_per_outcome_and_sets_the_channels_health,
);

fn attempt(status: Option<u16>, error: Option<&str>) -> Option<AttemptRecord> {
    Some(AttemptRecord {
        started_at: Utc::now(),
        duration: Duration::from_millis(12),
        status_code: status,
        error: error.map(str::to_string),
        response_snippet: Some("ok".into()),
    })
}

fn outcome(lease: Lease, disposition: Disposition, status: Option<u16>) -> Outcome {
    Outcome { lease, attempt: attempt(status, None), disposition }
}

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

fn sealing(current: Option<&str>, previous: &[&str]) -> certhook_store::StoreSettings {
    let previous: Vec<certhook_core::Secret> = previous.iter().map(|k| certhook_core::Secret::new(*k)).collect();
    let keys = certhook_core::seal::Keyring::new(current.map(certhook_core::Secret::new).as_ref(), &previous).unwrap();
    certhook_store::StoreSettings { keys, ..Default::default() }
}

/// How many channel rows hold `needle` in any secret column, and how many sealed values.
async fn stored_secrets(store: &Store, needle: &str) -> (i64, i64) {
    let plain = scalar(
        store,
        &format!(
            "SELECT COUNT(*) FROM certhook_channels WHERE secret = '{needle}' OR previous_secret = '{needle}' \
             OR routing_key = '{needle}'"
        ),
    )
    .await;
    let sealed = scalar(store, "SELECT COUNT(*) FROM certhook_channels WHERE secret LIKE 'enc:v1:%'").await;
    (plain, sealed)
}

async fn channel_secrets_are_sealed_at_rest_and_rewrapped_under_a_new_key(store: Store) {
    let plain_store = store.clone();
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let secret = "the-signing-secret-0123456789abcdef";
    let new_channel = |secret: &str| certhook_store::NewChannel {
        secret: Some(certhook_core::Secret::new(secret)),
        ..certhook_store::NewChannel::webhook(alert.id, "https://receiver.test/hook", ChannelState::Active)
    };
    // Written before any key was set: plain, and still readable once one is.
    let legacy = new_channel("legacy-secret-0123456789abcdef0123");
    plain_store.create_channel(&legacy, None).await.unwrap();

    let sealed_store = store.clone().with_settings(sealing(Some(KEY_A), &[]));
    let ch = new_channel(secret);
    sealed_store.create_channel(&ch, None).await.unwrap();
    assert_eq!(stored_secrets(&store, secret).await, (0, 1), "the secret is stored sealed");
    let secrets_of = |targets: Vec<certhook_store::ChannelTarget>, id| -> Vec<String> {
        let t = targets.into_iter().find(|t| t.id == id).unwrap();
        t.secrets.iter().map(|s| s.expose().to_string()).collect()
    };
    assert_eq!(secrets_of(sealed_store.channel_targets().await.unwrap(), ch.id), [secret]);
    assert_eq!(
        secrets_of(sealed_store.channel_targets().await.unwrap(), legacy.id),
        ["legacy-secret-0123456789abcdef0123"]
    );
    assert!(matches!(plain_store.check_secrets().await, Err(StoreError::Sealed { .. })), "no key, sealed secret");

    // Rotation: key B seals, key A still opens; rewrap re-seals everything under B.
    let rotated = store.clone().with_settings(sealing(Some(KEY_B), &[KEY_A]));
    rotated
        .rotate_secret(
            ch.id,
            &certhook_core::Secret::new("next-secret-0123456789abcdef012345"),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    assert_eq!(
        secrets_of(rotated.channel_targets().await.unwrap(), ch.id),
        ["next-secret-0123456789abcdef012345", secret]
    );
    assert_eq!(rotated.rewrap_secrets(true).await.unwrap(), 2, "dry run: the rotated and the legacy channel");
    assert_eq!(rotated.rewrap_secrets(false).await.unwrap(), 2);
    assert_eq!(rotated.rewrap_secrets(false).await.unwrap(), 0, "nothing left to re-seal");
    assert_eq!(stored_secrets(&store, "legacy-secret-0123456789abcdef0123").await.0, 0);
    let only_b = store.clone().with_settings(sealing(Some(KEY_B), &[]));
    only_b.check_secrets().await.unwrap();
    assert_eq!(secrets_of(only_b.channel_targets().await.unwrap(), ch.id)[1], secret);
    match sealed_store.check_secrets().await {
        Err(e @ StoreError::Sealed { .. }) => {
            assert!(e.to_string().contains(&ch.id.to_string()) || e.to_string().contains(&legacy.id.to_string()), "{e}")
        }
        other => panic!("key A alone cannot open what B sealed: {other:?}"),
    }
    // A process without the key still reads every channel; those it cannot open say why.
    let targets = sealed_store.channel_targets().await.expect("one unreadable channel does not fail the rest");
    let t = targets.iter().find(|t| t.id == ch.id).unwrap();
    assert!(t.secrets.is_empty() && t.unreadable.as_deref().is_some_and(|w| w.contains("secret_key")), "{t:?}");

    // A deleted channel keeps no secret.
    only_b.delete_channel(ch.id).await.unwrap();
    let left =
        scalar(&store, &format!("SELECT COUNT(*) FROM certhook_channels WHERE id = '{}' AND secret IS NULL", ch.id))
            .await;
    assert_eq!(left, 1);
    // One deleted before deletion erased secrets still holds one; a rewrap erases it.
    exec(
        &store,
        &format!("UPDATE certhook_channels SET deleted_at = 1, secret = 'old-plain' WHERE id = '{}'", legacy.id),
    )
    .await;
    only_b.rewrap_secrets(false).await.unwrap();
    assert_eq!(stored_secrets(&store, "old-plain").await.0, 0);
}

/// A client certificate (`CN=certhook-client`) and its private key, in PEM.
fn client_identity() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "certhook-client");
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn tls_channel(alert: &certhook_store::Alert, cert: &str, key: &str) -> certhook_store::NewChannel {
    certhook_store::NewChannel {
        tls: certhook_core::subscription::ChannelTls {
            ca_pem: Some(cert.to_string()),
            client_cert_pem: Some(cert.to_string()),
            client_key: Some(certhook_core::Secret::new(key)),
        },
        ..certhook_store::NewChannel::webhook(alert.id, "https://receiver.test/hook", ChannelState::Active)
    }
}

/// Whether channel `id`'s row satisfies `condition` (1 or 0).
async fn channel_rows_where(store: &Store, id: uuid::Uuid, condition: String) -> i64 {
    scalar(store, &format!("SELECT COUNT(*) FROM certhook_channels WHERE id = '{id}' AND {condition}")).await
}

async fn client_keys_are_sealed_at_rest_shown_only_as_present_and_erased_on_delete(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let (cert, key) = client_identity();
    let key_body = key.lines().nth(1).unwrap().to_string();
    let sealed_store = store.clone().with_settings(sealing(Some(KEY_A), &[]));
    let ch = tls_channel(&alert, &cert, &key);
    let shown = sealed_store.create_channel(&ch, None).await.unwrap();
    let raw = |condition: String| channel_rows_where(&store, ch.id, condition);
    assert_eq!(raw("client_key LIKE 'enc:v1:%'".into()).await, 1, "the key is stored sealed");
    assert_eq!(raw(format!("client_key LIKE '%{key_body}%'")).await, 0, "no plain key at rest");
    assert_eq!(
        raw("client_cert_pem LIKE '-----BEGIN CERTIFICATE-----%'".into()).await,
        1,
        "certificates are not secrets"
    );

    // Shown: the certificates by subject, the key only as being there.
    for c in [shown, sealed_store.get_channel(ch.id).await.unwrap()] {
        let tls = c.tls.expect("TLS settings are shown");
        assert_eq!(tls.client_certificate.unwrap().subject, "CN=certhook-client");
        assert_eq!(tls.ca_certificates.len(), 1);
        assert!(tls.has_client_key);
        let json = serde_json::to_string(&sealed_store.get_channel(ch.id).await.unwrap()).unwrap();
        assert!(!json.contains(&key_body) && !json.contains("PRIVATE KEY"), "{json}");
    }
    let target = sealed_store.channel_target(ch.id).await.unwrap();
    assert_eq!(target.tls.client_key.as_ref().map(|k| k.expose()), Some(key.as_str()), "the worker gets it opened");
    assert!(!format!("{target:?}").contains(&key_body), "a target's Debug hides the key");
    assert!(matches!(store.check_secrets().await, Err(StoreError::Sealed { .. })), "serve's start check sees it");

    // Rewrap re-seals it under a new key; a new identity is sealed too.
    let rotated = store.clone().with_settings(sealing(Some(KEY_B), &[KEY_A]));
    assert_eq!(rotated.rewrap_secrets(false).await.unwrap(), 1);
    let only_b = store.clone().with_settings(sealing(Some(KEY_B), &[]));
    only_b.check_secrets().await.unwrap();
    assert_eq!(only_b.channel_target(ch.id).await.unwrap().tls.client_key.unwrap().expose(), key);
    let (cert2, key2) = client_identity();
    let update = certhook_store::ChannelUpdate {
        client_identity: Some(Some((cert2.clone(), certhook_core::Secret::new(key2.clone())))),
        ..Default::default()
    };
    only_b.update_channel(ch.id, &update).await.unwrap();
    assert_eq!(raw("client_key LIKE 'enc:v1:%'".into()).await, 1, "a replaced key is sealed too");
    assert_eq!(only_b.channel_target(ch.id).await.unwrap().tls.client_key.unwrap().expose(), key2);

    // A deleted channel keeps no key.
    only_b.delete_channel(ch.id).await.unwrap();
    assert_eq!(raw("client_key IS NULL".into()).await, 1, "erased on delete");
    // One deleted before deletion erased keys still holds one; a rewrap erases it.
    exec(&store, &format!("UPDATE certhook_channels SET client_key = 'old-plain' WHERE id = '{}'", ch.id)).await;
    only_b.rewrap_secrets(false).await.unwrap();
    assert_eq!(raw("client_key IS NULL".into()).await, 1, "erased by rewrap");
}

async fn rate_limits_and_tls_settings_are_stored_changed_and_removed(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let (cert, key) = client_identity();
    let mut new = tls_channel(&alert, &cert, &key);
    new.rate_limit = Some("2/s".parse().unwrap());
    let created = store.create_channel(&new, None).await.unwrap();
    assert_eq!(created.rate_limit.map(|r| r.to_string()).as_deref(), Some("2/s"));
    let json = serde_json::to_value(store.get_channel(new.id).await.unwrap()).unwrap();
    assert_eq!(json["rateLimit"], "2/s");
    assert_eq!(json["tls"]["clientCertificate"]["subject"], "CN=certhook-client");
    assert_eq!(json["tls"]["hasClientKey"], true);
    assert_eq!(store.channel_target(new.id).await.unwrap().rate_limit.unwrap().to_string(), "2/s");

    // Only what an update names changes.
    let limit = certhook_store::ChannelUpdate { rate_limit: Some(Some("30/m".parse().unwrap())), ..Default::default() };
    let c = store.update_channel(new.id, &limit).await.unwrap();
    assert_eq!(c.rate_limit.unwrap().to_string(), "30/m");
    assert!(c.tls.as_ref().unwrap().has_client_key, "TLS settings untouched");
    let clear =
        certhook_store::ChannelUpdate { rate_limit: Some(None), ca_pem: Some(None), client_identity: Some(None) };
    assert!(!clear.is_empty() && certhook_store::ChannelUpdate::default().is_empty());
    let c = store.update_channel(new.id, &clear).await.unwrap();
    assert_eq!((c.rate_limit, c.tls), (None, None));
    let t = store.channel_target(new.id).await.unwrap();
    assert_eq!((t.rate_limit, t.tls), (None, Default::default()));
    let json = serde_json::to_value(store.get_channel(new.id).await.unwrap()).unwrap();
    assert!(json["rateLimit"].is_null() && json["tls"].is_null(), "{json}");
    let missing = store.update_channel(uuid::Uuid::now_v7(), &limit).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
}

/// How many stored message bodies contain `needle`.
async fn bodies_containing(store: &Store, needle: &str) -> i64 {
    let sql = match store.kind() {
        certhook_store::BackendKind::Sqlite => {
            format!("SELECT COUNT(*) FROM certhook_messages WHERE instr(CAST(body AS TEXT), '{needle}') > 0")
        }
        certhook_store::BackendKind::Postgres => {
            format!("SELECT COUNT(*) FROM certhook_messages WHERE position('{needle}'::bytea IN body) > 0")
        }
    };
    scalar(store, &sql).await
}

async fn a_delivered_verification_keeps_its_body_but_not_its_token(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let token = "f00dfeedf00dfeedf00dfeedf00dfeed";
    let body = format!(
        r#"{{"id":"v","type":"x.webhook.verification","data":{{"verificationToken":"{token}","channelId":"c"}}}}"#
    );
    let verification = certhook_store::Verification {
        token_hash: certhook_core::lifecycle::token_hash(token),
        expires_at: Utc::now() + chrono::Duration::minutes(30),
        message_id: uuid::Uuid::now_v7(),
        body: body.into_bytes(),
    };
    let new =
        certhook_store::NewChannel::webhook(alert.id, "https://receiver.test/hook", ChannelState::PendingVerification);
    store.create_channel(&new, Some(&verification)).await.unwrap();
    let lease = claim_one(&store).await;
    assert!(String::from_utf8_lossy(&lease.body).contains(token), "the endpoint gets the token");
    store.record(&[outcome(lease, Disposition::Retry { delay: Duration::ZERO }, Some(500))]).await.unwrap();
    assert_eq!(bodies_containing(&store, token).await, 1, "kept while it may be sent again");
    let lease = claim_one(&store).await;
    assert!(String::from_utf8_lossy(&lease.body).contains(token), "a retry sends the token again");
    store.record(&[outcome(lease, Disposition::Delivered, Some(204))]).await.unwrap();
    assert_eq!(bodies_containing(&store, token).await, 0, "the token stayed in the stored body");
    assert_eq!(bodies_containing(&store, certhook_core::lifecycle::TOKEN_REMOVED).await, 1);
    // The channel is activated with the token the endpoint received, as before.
    let activated = store.activate_channel(new.id, token).await.unwrap();
    assert_eq!(activated.state, ChannelState::Active);
}

async fn claim_one(store: &Store) -> Lease {
    let mut claim = store.claim(10, Duration::from_secs(60)).await.expect("claim");
    assert_eq!(claim.leases.len(), 1, "expected exactly one due delivery");
    claim.leases.pop().unwrap()
}

async fn state_counts(store: &Store) -> certhook_store::DeliveryCounts {
    store.status().await.expect("status").deliveries
}

async fn enqueue_is_idempotent_on_key(store: Store) {
    let app = app(&store).await;
    let first = store.enqueue(&[event(app.id, AlertType::Issuance, "1", Some("k-1"))]).await.unwrap();
    let again = store.enqueue(&[event(app.id, AlertType::Issuance, "2", Some("k-1"))]).await.unwrap();
    assert_eq!(first, again, "a repeated key answers with the first id");
    let batch = store
        .enqueue(&[
            event(app.id, AlertType::Issuance, "3", Some("k-2")),
            event(app.id, AlertType::Issuance, "4", Some("k-2")),
            event(app.id, AlertType::Issuance, "5", None),
        ])
        .await
        .unwrap();
    assert_eq!(batch[0], batch[1], "a key repeated inside one batch also answers with the first id");
    assert_ne!(batch[0], batch[2]);
    assert_eq!(store.status().await.unwrap().events.total, 3);
    // the repeat changed nothing: the stored certificate is the first one's
    let serial = scalar(
        &store,
        &format!(
            "SELECT COUNT(*) FROM certhook_events WHERE id = '{}' AND certificate LIKE '%\"serialNumber\":\"1\"%'",
            first[0]
        ),
    )
    .await;
    assert_eq!(serial, 1);
}

/// A batch written a chunk at a time: the ids come back in input order, a key repeated in a
/// later chunk answers with the first id, and the outbox keeps the batch's order.
async fn a_large_batch_is_stored_in_order_with_each_id_in_its_place(store: Store) {
    let app = app(&store).await;
    let events: Vec<_> = (0..2_500)
        .map(|n| {
            let key = match n {
                7 | 2_100 => Some("same"),
                _ => None,
            };
            event(app.id, AlertType::Issuance, &n.to_string(), key)
        })
        .collect();
    let ids = store.enqueue(&events).await.unwrap();
    assert_eq!(ids.len(), 2_500);
    assert_eq!(ids[2_100], ids[7], "a key repeated two chunks later answers with the first id");
    assert_eq!(store.status().await.unwrap().events.total, 2_499);
    let mut last_seq = 0;
    for (n, id) in ids.iter().enumerate() {
        if n == 2_100 {
            continue;
        }
        let seq = scalar(&store, &format!("SELECT seq FROM certhook_events WHERE id = '{id}'")).await;
        assert!(seq > last_seq, "event {n} is stored after the one before it");
        last_seq = seq;
        if n % 97 == 0 || n == 7 {
            let own = scalar(
                &store,
                &format!(
                    "SELECT COUNT(*) FROM certhook_events WHERE id = '{id}' \
                     AND certificate LIKE '%\"serialNumber\":\"{n}\"%'"
                ),
            )
            .await;
            assert_eq!(own, 1, "id {n} names the event sent in place {n}");
        }
    }
}

async fn batch_with_one_bad_event_stores_nothing(store: Store) {
    let app = app(&store).await;
    let unknown = uuid::Uuid::now_v7();
    let err = store
        .enqueue(&[event(app.id, AlertType::Issuance, "1", None), event(unknown, AlertType::Issuance, "2", None)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownApplication { index: 1, id } if id == unknown), "{err}");
    assert!(err.to_string().contains("events[1].applicationId"), "{err}");
    assert!(err.is_bad_input());
    assert_eq!(store.status().await.unwrap().events.total, 0);
}

async fn fan_out_creates_one_delivery_per_channel_of_each_matching_alert(store: Store) {
    let app = app(&store).await;
    let issued_a = alert(&store, &app, AlertType::Issuance, "issued-a").await;
    let issued_b = alert(&store, &app, AlertType::Issuance, "issued-b").await;
    let revoked = alert(&store, &app, AlertType::Revocation, "revoked").await;
    let a1 = channel(&store, &issued_a, ChannelState::Active).await;
    let a2 = channel(&store, &issued_a, ChannelState::Active).await;
    let b1 = channel(&store, &issued_b, ChannelState::Active).await;
    channel(&store, &revoked, ChannelState::Active).await;
    let other_app = store.create_application("other").await.unwrap();
    let other = alert(&store, &other_app, AlertType::Issuance, "issued").await;
    channel(&store, &other, ChannelState::Active).await;

    let ids = store.enqueue(&[event(app.id, AlertType::Issuance, "42", None)]).await.unwrap();
    assert_eq!(fan_out_all(&store).await, 1);
    assert_eq!(fan_out_all(&store).await, 0, "a fanned-out row is not fanned out again");

    let all = store.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|d| d.event_id == Some(ids[0]) && d.state == DeliveryState::Pending));
    let ce = |ch: uuid::Uuid| all.iter().find(|d| d.channel_id == ch).unwrap().cloud_event_id;
    assert_eq!(ce(a1.id), ce(a2.id), "one CloudEvent id per (event, alert)");
    assert_ne!(ce(a1.id), ce(b1.id));

    let claim = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claim.leases.len(), 3);
    for lease in &claim.leases {
        let v: serde_json::Value = serde_json::from_slice(&lease.body).unwrap();
        assert_eq!(v["id"], lease.cloud_event_id.to_string());
        assert_eq!(v["type"], "com.infisical.pki.certificate.issuance");
        assert_eq!(v["data"]["certificates"][0]["serialNumber"], "42");
        assert_eq!(lease.delivery_type.as_str(), "issuance");
    }
}

/// Each event's deliveries as (channel, type, state), and the bodies of those claimable as
/// (channel, body without its own id and time), in event order: what fan-out made of them.
async fn what_fan_out_made(store: &Store, events: &[uuid::Uuid]) -> Vec<Vec<String>> {
    let all = store.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    let claimed = store.claim(100, Duration::from_secs(60)).await.unwrap().leases;
    let mut made = Vec::new();
    for event in events {
        let mut rows: Vec<String> = all
            .iter()
            .filter(|d| d.event_id == Some(*event))
            .map(|d| {
                let body = claimed.iter().find(|l| l.delivery_id == d.id).map(|l| {
                    let mut v: serde_json::Value = serde_json::from_slice(&l.body).unwrap();
                    assert_eq!(v["id"], d.cloud_event_id.to_string(), "the body carries its CloudEvent id");
                    v["id"] = serde_json::Value::Null;
                    v["time"] = serde_json::Value::Null;
                    v
                });
                format!("{} {} {:?} {}", d.channel_id, d.delivery_type.as_str(), d.state, body.unwrap_or_default())
            })
            .collect();
        rows.sort();
        made.push(rows);
    }
    made
}

async fn an_enqueue_with_render_settings_fans_out_in_its_own_transaction_as_the_worker_would(store: Store) {
    let fanning =
        store.clone().with_settings(certhook_store::StoreSettings { render: Some(settings()), ..Default::default() });
    let app = app(&store).await;
    let issued = alert(&store, &app, AlertType::Issuance, "issued").await;
    let renewed = alert(&store, &app, AlertType::Renewal, "renewed").await;
    channel(&store, &issued, ChannelState::Active).await;
    let paused = channel(&store, &issued, ChannelState::Active).await;
    store.set_channel_state(paused.id, ChannelState::Paused).await.unwrap();
    channel(&store, &renewed, ChannelState::Active).await;
    // The third repeats the first's idempotency key: it is the first, and not fanned out again.
    let batch = |key: &str| {
        vec![
            event(app.id, AlertType::Issuance, "1", Some(key)),
            event(app.id, AlertType::Renewal, "2", None),
            event(app.id, AlertType::Issuance, "3", Some(key)),
        ]
    };

    let by_worker = store.enqueue(&batch("w")).await.unwrap();
    assert_eq!(state_counts(&store).await.pending, 0, "without render settings the worker fans out");
    assert_eq!(fan_out_all(&store).await, 2);
    let worker_made = what_fan_out_made(&store, &by_worker[..2]).await;
    assert_eq!(worker_made.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1], "{worker_made:?}");

    exec(&store, "DELETE FROM certhook_certificates").await;
    let by_enqueue = fanning.enqueue(&batch("e")).await.unwrap();
    assert_eq!(by_enqueue[0], by_enqueue[2], "the repeat answers with the first event's id");
    let counts = state_counts(&store).await;
    assert_eq!((counts.pending, counts.held), (2, 2), "the enqueue's deliveries exist as it returns");
    assert_eq!(fan_out_all(&store).await, 0, "its rows were stored fanned out");
    assert_eq!(what_fan_out_made(&store, &by_enqueue[..2]).await, worker_made);
    let certificates = store.list_certificates(app.id, &certhook_store::CertificateQuery::first(10)).await.unwrap();
    assert_eq!(certificates.len(), 2, "the inventory is updated as by the worker: {certificates:?}");

    // A repeat of a whole batch stores and fans out nothing.
    assert_eq!(fanning.enqueue(&batch("e")[..1]).await.unwrap()[0], by_enqueue[0]);
    assert_eq!(store.status().await.unwrap().events.total, 4);
    let counts = state_counts(&store).await;
    assert_eq!((counts.pending, counts.held), (0, 2), "no new deliveries");

    // A fan-out that fails takes its enqueue back with it: nothing is stored.
    exec(&store, "ALTER TABLE certhook_messages RENAME TO certhook_messages_away").await;
    let failed = fanning.enqueue(&[event(app.id, AlertType::Issuance, "9", None)]).await;
    exec(&store, "ALTER TABLE certhook_messages_away RENAME TO certhook_messages").await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(store.status().await.unwrap().events.total, 4, "the event went with its fan-out");
}

async fn a_large_enqueue_fans_out_across_chunks_and_a_huge_one_leaves_it_to_serve(store: Store) {
    let fanning =
        store.clone().with_settings(certhook_store::StoreSettings { render: Some(settings()), ..Default::default() });
    let app = app(&store).await;
    let issued = alert(&store, &app, AlertType::Issuance, "issued").await;
    channel(&store, &issued, ChannelState::Active).await;
    // 2,300 events, more than one insert and one fan-out statement take; the last 200
    // repeat the keys of the first 200, so they are not stored.
    let events: Vec<_> = (0..2_300)
        .map(|i| {
            let key = format!("k{}", i % 2_100);
            event(app.id, AlertType::Issuance, &(i % 2_100).to_string(), Some(key.as_str()))
        })
        .collect();
    let ids = fanning.enqueue(&events).await.unwrap();
    assert!((0..200).all(|i| ids[2_100 + i] == ids[i]), "repeats answer with the first event's id");
    assert_eq!(state_counts(&store).await.pending, 2_100, "one delivery per stored event");
    assert_eq!(fan_out_all(&store).await, 0);
    let listed = store.list_certificates(app.id, &certhook_store::CertificateQuery::first(3_000)).await.unwrap();
    assert_eq!(listed.len(), 2_100);

    // One more than an enqueue fans out itself: stored unfanned, for serve's fan-out.
    let events: Vec<_> = (0..5_001).map(|i| event(app.id, AlertType::Issuance, &format!("b{i}"), None)).collect();
    fanning.enqueue(&events).await.unwrap();
    assert_eq!(state_counts(&store).await.pending, 2_100);
    assert_eq!(fan_out_all(&store).await, 5_001);
    assert_eq!(state_counts(&store).await.pending, 7_101);
}

async fn paused_and_unverified_channels_hold_deliveries_until_active(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let paused = channel(&store, &alert, ChannelState::Active).await;
    let unverified = channel(&store, &alert, ChannelState::PendingVerification).await;
    store.set_channel_state(paused.id, ChannelState::Paused).await.unwrap();
    store.enqueue(&[event(app.id, AlertType::Issuance, "1", None)]).await.unwrap();
    fan_out_all(&store).await;
    assert_eq!(state_counts(&store).await.held, 2);
    assert!(store.claim(10, Duration::from_secs(60)).await.unwrap().leases.is_empty(), "held rows are not claimable");

    let resumed = store.set_channel_state(paused.id, ChannelState::Active).await.unwrap();
    assert_eq!(resumed.state, ChannelState::Active);
    let lease = claim_one(&store).await;
    assert_eq!(lease.channel_id, paused.id);

    store.set_channel_state(unverified.id, ChannelState::Active).await.unwrap();
    let lease = claim_one(&store).await;
    assert_eq!(lease.channel_id, unverified.id);

    // pausing again holds what was waiting, not what is in flight
    store.record(&[outcome(lease, Disposition::Retry { delay: Duration::ZERO }, Some(500))]).await.unwrap();
    store.set_channel_state(unverified.id, ChannelState::Paused).await.unwrap();
    assert_eq!(state_counts(&store).await.held, 1);
    store.set_channel_state(unverified.id, ChannelState::Active).await.unwrap();
    let d =
        store.list_deliveries(&DeliveryFilter { channel_id: Some(unverified.id), ..Default::default() }).await.unwrap();
    assert_eq!(d[0].state, DeliveryState::Retrying, "a released row that had attempts is retrying, due now");
    assert_eq!(d[0].attempt_count, 1);
}

async fn disabled_channel_dead_letters_new_deliveries(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let ch = channel(&store, &alert, ChannelState::Active).await;
    store.set_channel_state(ch.id, ChannelState::Disabled).await.unwrap();
    store.enqueue(&[event(app.id, AlertType::Issuance, "1", None)]).await.unwrap();
    fan_out_all(&store).await;
    let dead = store
        .list_deliveries(&DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason.as_deref(), Some("channel_disabled"));
    // replaying by id while disabled is refused with the reason; after enable it works
    let err = store.replay(&DeadLetterSelector::Id(dead[0].id), false).await.unwrap_err();
    assert!(err.to_string().contains("disabled"), "{err}");
    // by filter, it is left dead and the report says whose channel stops it
    let all = DeadLetterSelector::Matching(DeliveryFilter { channel_id: Some(ch.id), ..Default::default() });
    let report = store.replay(&all, false).await.unwrap();
    assert!(report.ids.is_empty());
    assert_eq!(report.skipped, vec![SkippedChannel { channel_id: ch.id, why: "disabled".into(), count: 1 }]);
    assert_eq!(state_counts(&store).await.dead, 1);
    store.set_channel_state(ch.id, ChannelState::Active).await.unwrap();
    assert_eq!(store.replay(&DeadLetterSelector::Id(dead[0].id), false).await.unwrap().ids, vec![dead[0].id]);
    claim_one(&store).await;
}

/// A newer version may add a delivery type; an older process in a rolling upgrade sends
/// such a row as an alert's event rather than dead-lettering it as unreadable.
async fn a_delivery_type_this_version_does_not_know_is_claimed_not_dead_lettered(store: Store) {
    queue_with(&store, 1).await;
    exec(&store, "UPDATE certhook_deliveries SET type = 'future.kind'").await;
    let lease = claim_one(&store).await;
    assert_eq!(lease.delivery_type, certhook_core::event::DeliveryType::Other);
    assert_eq!(state_counts(&store).await.dead, 0);
}

async fn claim_leases_due_rows_once(store: Store) {
    queue_with(&store, 5).await;
    let first = store.claim(3, Duration::from_secs(60)).await.unwrap();
    assert_eq!(first.leases.len(), 3);
    assert_eq!(first.taken_over, 0);
    let second = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(second.leases.len(), 2);
    let mut ids: Vec<_> = first.leases.iter().chain(&second.leases).map(|l| l.delivery_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no delivery is leased twice");
    assert!(store.claim(10, Duration::from_secs(60)).await.unwrap().leases.is_empty());
    assert_eq!(state_counts(&store).await.leased, 5);
}

async fn expired_lease_is_taken_over_and_the_old_owner_is_fenced_off(store: Store) {
    queue_with(&store, 1).await;
    let lease = Duration::from_secs(2);
    let claimed_at = std::time::Instant::now();
    let old = store.claim(10, lease).await.unwrap().leases.pop().unwrap();
    // Poll until the lease has expired by the database clock and a claim takes it over.
    let mut claim = loop {
        let claim = store.claim(10, Duration::from_secs(60)).await.unwrap();
        if !claim.leases.is_empty() {
            break claim;
        }
        assert!(claimed_at.elapsed() < lease * 10, "the expired lease was never taken over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(claimed_at.elapsed() >= lease, "a live lease is not taken");
    assert_eq!(claim.taken_over, 1);
    let new = claim.leases.pop().unwrap();
    assert_eq!(new.delivery_id, old.delivery_id);
    assert_ne!(new.token, old.token);

    let accepted = store.record(&[outcome(old, Disposition::Delivered, Some(200))]).await.unwrap();
    assert_eq!(accepted, vec![false], "an outcome under a re-taken lease is refused");
    let detail = store.get_delivery(new.delivery_id).await.unwrap();
    assert_eq!(detail.delivery.state, DeliveryState::Leased);
    assert!(detail.attempts.is_empty(), "the refused outcome logged nothing");

    let accepted = store.record(&[outcome(new, Disposition::Delivered, Some(204))]).await.unwrap();
    assert_eq!(accepted, vec![true]);
    let detail = store.get_delivery(detail.delivery.id).await.unwrap();
    assert_eq!(detail.delivery.state, DeliveryState::Delivered);
    assert_eq!(detail.delivery.last_status_code, Some(204));
    assert!(detail.delivery.delivered_at.is_some());
}

/// Issue 13: the old holder's outcome and the new holder's for one delivery in the same
/// batch; only the new one is accepted and only it logs an attempt.
async fn a_fenced_duplicate_in_one_batch_writes_no_attempt(store: Store) {
    queue_with(&store, 2).await;
    let mut old = store.claim(10, Duration::from_millis(300)).await.unwrap().leases;
    let mut new = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let claim = store.claim(10, Duration::from_secs(60)).await.unwrap();
        if claim.leases.len() == 2 {
            break claim.leases;
        }
        assert!(claim.leases.is_empty(), "both leases expire together");
    };
    old.sort_by_key(|l| l.delivery_id);
    new.sort_by_key(|l| l.delivery_id);
    let ids = [new[0].delivery_id, new[1].delivery_id];
    let (new_b, new_a) = (new.pop().unwrap(), new.pop().unwrap());
    let (old_b, old_a) = (old.pop().unwrap(), old.pop().unwrap());
    // Both orders: the stale outcome first, and the stale outcome last.
    let batch = [
        outcome(old_a, Disposition::Delivered, Some(200)),
        outcome(new_a, Disposition::Delivered, Some(204)),
        outcome(new_b, Disposition::Delivered, Some(204)),
        outcome(old_b, Disposition::Delivered, Some(200)),
    ];
    assert_eq!(store.record(&batch).await.unwrap(), vec![false, true, true, false]);
    for id in ids {
        let detail = store.get_delivery(id).await.unwrap();
        assert_eq!(detail.attempts.len(), 1, "the fenced outcome logged nothing: {:?}", detail.attempts);
        assert_eq!(detail.attempts[0].status_code, Some(204));
        assert_eq!((detail.delivery.attempt_count, detail.delivery.last_status_code), (1, Some(204)));
    }
}

/// Issue 13: one unreadable row (a delivery id that is not a UUID, written by hand) used to
/// fail the whole claim after it had committed, orphaning the other leases.
async fn a_claimed_row_that_cannot_be_read_is_dead_lettered_and_the_rest_go_out(store: Store) {
    let (_app, channel) = queue_with(&store, 2).await;
    let message = uuid::Uuid::now_v7();
    exec(
        &store,
        &format!(
            "INSERT INTO certhook_messages (id, event_id, alert_id, type, body, created_at) \
             SELECT '{message}', event_id, alert_id, type, body, created_at FROM certhook_messages LIMIT 1"
        ),
    )
    .await;
    exec(
        &store,
        &format!(
            "INSERT INTO certhook_deliveries (id, message_id, event_id, channel_id, type, state, next_attempt_at, \
             enqueued_at, created_at, updated_at) SELECT 'not-a-uuid', '{message}', event_id, '{}', type, 'pending', 0, \
             enqueued_at, created_at, updated_at FROM certhook_deliveries LIMIT 1",
            channel.id
        ),
    )
    .await;
    let claim = store.claim(10, Duration::from_secs(60)).await.expect("the claim succeeds");
    assert_eq!(claim.leases.len(), 2, "the two readable deliveries are leased");
    let dead = scalar(
        &store,
        "SELECT COUNT(*) FROM certhook_deliveries WHERE id = 'not-a-uuid' AND state = 'dead' AND reason = 'corrupt_row' \
         AND lease_token IS NULL",
    )
    .await;
    assert_eq!(dead, 1, "the unreadable one is dead-lettered, not left leased");
    let listed = store.list_deliveries(&DeliveryFilter::default()).await.expect("lists still work");
    assert_eq!(listed.len(), 2);
}

/// Issue 13: a 410 answered by the old URL of a channel re-pointed since leaves it alone.
async fn a_410_from_a_url_the_channel_no_longer_has_disables_nothing(store: Store) {
    let (_app, channel) = queue_with(&store, 1).await;
    store.set_channel_url(channel.id, "https://moved.test/hook").await.unwrap();
    assert_eq!(store.channel_gone(channel.id, Some("https://receiver.test/hook")).await.unwrap(), 0);
    assert_eq!(
        store.get_channel(channel.id).await.unwrap().state,
        ChannelState::Active,
        "the old URL's 410 is ignored"
    );
    assert_eq!(state_counts(&store).await.pending, 1, "its deliveries still wait");
    assert_eq!(store.channel_gone(channel.id, Some("https://moved.test/hook")).await.unwrap(), 1);
    assert_eq!(store.get_channel(channel.id).await.unwrap().state, ChannelState::Disabled);
    assert_eq!(state_counts(&store).await.dead, 1, "the current URL's 410 dead-letters what waits");
}

/// Issue 13: a connection that went back to the pool inside a transaction (its `COMMIT`
/// failed on a full disk) made every later write fail with "begin_with at non-zero
/// transaction depth" until a restart.
async fn a_connection_left_inside_a_transaction_is_not_reused(store: Store) {
    queue_with(&store, 3).await;
    async fn leave_open<C: sqlx::Connection>(conn: &mut C) {
        std::mem::forget(conn.begin().await.expect("begin"));
    }
    match &store {
        Store::Sqlite(b) => leave_open(&mut *b.pool().acquire().await.unwrap()).await,
        Store::Postgres(b) => leave_open(&mut *b.pool().acquire().await.unwrap()).await,
    }
    for _ in 0..8 {
        store.claim(1, Duration::from_secs(60)).await.expect("every later write transaction begins");
    }
    assert_eq!(state_counts(&store).await.leased, 3);
}

/// A worker still sending pushes its lease forward; a lease taken over is not extended by
/// its old holder (issue 13: a send outliving its lease was sent again, for ever).
async fn an_extended_lease_is_not_taken_over_and_extension_is_fenced(store: Store) {
    queue_with(&store, 2).await;
    let lease = Duration::from_secs(2);
    let mut leases = store.claim(10, lease).await.unwrap().leases;
    assert_eq!(leases.len(), 2);
    let lapsed = leases.pop().unwrap();
    let kept = leases.pop().unwrap();
    let started = std::time::Instant::now();
    // Extend one of the two every quarter lease, for three lease lengths.
    while started.elapsed() < lease * 3 {
        tokio::time::sleep(lease / 4).await;
        let extended = store.extend(&[(kept.delivery_id, kept.token)], lease).await.unwrap();
        assert_eq!(extended, vec![kept.delivery_id], "a held lease is extended");
    }
    let taken = store.claim(10, Duration::from_secs(60)).await.unwrap();
    let ids: Vec<_> = taken.leases.iter().map(|l| l.delivery_id).collect();
    assert_eq!(ids, vec![lapsed.delivery_id], "only the lease nobody extended was taken over");
    assert_eq!(taken.taken_over, 1);
    let extended = store.extend(&[(lapsed.delivery_id, lapsed.token), (kept.delivery_id, kept.token)], lease).await;
    assert_eq!(extended.unwrap(), vec![kept.delivery_id], "the old holder cannot extend a lease taken over");
    let (kept_id, kept_token) = (kept.delivery_id, kept.token);
    let accepted = store.record(&[outcome(kept, Disposition::Delivered, Some(200))]).await.unwrap();
    assert_eq!(accepted, vec![true], "the extended lease's outcome is accepted");
    assert!(store.extend(&[(kept_id, kept_token)], lease).await.unwrap().is_empty(), "settled: nothing to extend");
}

/// Due rows that fill every claim do not starve a crashed worker's leases: the once-a-second
/// sweep takes them over first, within the claim's limit.
async fn a_busy_queue_still_takes_expired_leases_over_and_never_claims_past_the_limit(store: Store) {
    queue_with(&store, 10).await;
    let old = store.claim(1, Duration::from_millis(100)).await.unwrap().leases.pop().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let claim = store.claim(3, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claim.leases.len(), 3, "seven rows are due, and the claim asked for three");
    assert_eq!(claim.taken_over, 1);
    assert_eq!(claim.leases[0].delivery_id, old.delivery_id, "the expired lease comes first");
}

async fn retry_schedules_the_next_attempt_and_logs_the_attempt(store: Store) {
    queue_with(&store, 1).await;
    let lease = claim_one(&store).await;
    let id = lease.delivery_id;
    let before = store.now().await.unwrap();
    let out = Outcome {
        lease,
        attempt: attempt(Some(503), Some("HTTP 503")),
        disposition: Disposition::Retry { delay: Duration::from_secs(120) },
    };
    assert_eq!(store.record(&[out]).await.unwrap(), vec![true]);
    let d = store.get_delivery(id).await.unwrap();
    assert_eq!(d.delivery.state, DeliveryState::Retrying);
    assert_eq!(d.delivery.attempt_count, 1);
    assert_eq!(d.delivery.last_status_code, Some(503));
    assert_eq!(d.delivery.last_error.as_deref(), Some("HTTP 503"));
    let wait = d.delivery.next_attempt_at.unwrap() - before;
    assert!(wait >= chrono::Duration::seconds(119) && wait <= chrono::Duration::seconds(125), "{wait}");
    assert_eq!(d.attempts.len(), 1);
    assert_eq!((d.attempts[0].number, d.attempts[0].status_code), (1, Some(503)));
    assert!(store.claim(10, Duration::from_secs(60)).await.unwrap().leases.is_empty(), "not due yet");

    // a zero delay is due at once, and attempt numbers keep counting
    exec(&store, &format!("UPDATE certhook_deliveries SET next_attempt_at = 0 WHERE id = '{id}'")).await;
    let lease = claim_one(&store).await;
    assert_eq!(lease.attempts_before, 1);
    store.record(&[outcome(lease, Disposition::Delivered, Some(200))]).await.unwrap();
    let d = store.get_delivery(id).await.unwrap();
    assert_eq!(d.attempts.iter().map(|a| a.number).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(d.delivery.attempt_count, 2);
    assert_eq!(d.delivery.last_error, None);
}

async fn dead_letter_replay_keeps_the_cloud_event_id_and_resets_attempts(store: Store) {
    queue_with(&store, 1).await;
    let lease = claim_one(&store).await;
    let (id, ce, body) = (lease.delivery_id, lease.cloud_event_id, lease.body.clone());
    store
        .record(&[outcome(
            lease,
            Disposition::Dead { reason: certhook_core::event::DeadReason::MaxAttempts },
            Some(500),
        )])
        .await
        .unwrap();
    let dead = store
        .list_deliveries(&DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason.as_deref(), Some("max_attempts"));
    assert_eq!(dead[0].last_status_code, Some(500));

    assert_eq!(store.replay(&DeadLetterSelector::Id(id), true).await.unwrap().ids, vec![id]);
    assert_eq!(state_counts(&store).await.dead, 1, "dry run changes nothing");
    assert_eq!(store.replay(&DeadLetterSelector::Id(id), false).await.unwrap().ids, vec![id]);
    let d = store.get_delivery(id).await.unwrap().delivery;
    assert_eq!((d.state, d.attempt_count, d.reason), (DeliveryState::Pending, 0, None));
    let again = claim_one(&store).await;
    assert_eq!(again.cloud_event_id, ce, "replay keeps the CloudEvent id");
    assert_eq!(again.body, body, "and the exact bytes");
    let err = store.replay(&DeadLetterSelector::Id(id), false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { kind: "dead letter", .. }), "{err}");
}

async fn replay_and_purge_by_filter_with_dry_run(store: Store) {
    let (_, ch) = queue_with(&store, 3).await;
    let claim = store.claim(10, Duration::from_secs(60)).await.unwrap();
    let outcomes = claim
        .leases
        .into_iter()
        .map(|l| outcome(l, Disposition::Dead { reason: certhook_core::event::DeadReason::MaxAttempts }, Some(500)));
    store.record(&outcomes.collect::<Vec<_>>()).await.unwrap();
    let all = DeadLetterSelector::Matching(DeliveryFilter { channel_id: Some(ch.id), ..Default::default() });
    let other =
        DeadLetterSelector::Matching(DeliveryFilter { channel_id: Some(uuid::Uuid::now_v7()), ..Default::default() });
    assert_eq!(store.replay(&other, false).await.unwrap(), Replayed::default());
    let future = DeadLetterSelector::Matching(DeliveryFilter {
        dead_since: Some(Utc::now() + chrono::Duration::hours(1)),
        ..Default::default()
    });
    assert!(store.purge(&future, false).await.unwrap().is_empty(), "--since in the future matches nothing");
    assert_eq!(store.purge(&all, true).await.unwrap().len(), 3);
    assert_eq!(state_counts(&store).await.dead, 3, "dry run changes nothing");
    let replayed = store.replay(&all, false).await.unwrap().ids;
    assert_eq!(replayed.len(), 3);
    let claim = store.claim(10, Duration::from_secs(60)).await.unwrap();
    let outcomes = claim
        .leases
        .into_iter()
        .map(|l| outcome(l, Disposition::Dead { reason: certhook_core::event::DeadReason::EndpointGone }, Some(410)));
    store.record(&outcomes.collect::<Vec<_>>()).await.unwrap();
    let purged = store.purge(&all, false).await.unwrap();
    assert_eq!(purged.len(), 3);
    assert_eq!(state_counts(&store).await.dead, 0);
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM certhook_attempts").await, 0, "attempts go with them");
}

/// Issue 13: replay and purge work in chunks of 500 per transaction; 1,100 dead letters
/// span three, and every one is replayed, then purged.
async fn replay_and_purge_of_more_dead_letters_than_one_transaction_takes(store: Store) {
    let (_, ch) = queue_with(&store, 1_100).await;
    assert_eq!(store.dead_letter_channel(ch.id, "max_attempts").await.unwrap(), 1_100);
    let all = DeadLetterSelector::Matching(DeliveryFilter { channel_id: Some(ch.id), ..Default::default() });
    assert_eq!(store.replay(&all, false).await.unwrap().ids.len(), 1_100);
    let counts = state_counts(&store).await;
    assert_eq!((counts.pending, counts.dead), (1_100, 0));
    store.dead_letter_channel(ch.id, "max_attempts").await.unwrap();
    let purged = store.purge(&all, false).await.unwrap();
    let mut unique = purged.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((purged.len(), unique.len()), (1_100, 1_100));
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM certhook_deliveries").await, 0);
}

async fn released_lease_is_due_again_without_an_attempt(store: Store) {
    queue_with(&store, 1).await;
    let lease = claim_one(&store).await;
    let id = lease.delivery_id;
    store.record(&[Outcome { lease, attempt: None, disposition: Disposition::Released }]).await.unwrap();
    let d = store.get_delivery(id).await.unwrap();
    assert_eq!((d.delivery.state, d.delivery.attempt_count), (DeliveryState::Pending, 0));
    assert!(d.attempts.is_empty());
    claim_one(&store).await;
}

async fn deleting_a_channel_dead_letters_its_waiting_deliveries(store: Store) {
    let (_, ch) = queue_with(&store, 2).await;
    let in_flight = store.claim(1, Duration::from_secs(60)).await.unwrap().leases.pop().unwrap();
    assert_eq!(store.delete_channel(ch.id).await.unwrap(), 1);
    let dead = store
        .list_deliveries(&DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason.as_deref(), Some("channel_deleted"));
    assert!(matches!(store.get_channel(ch.id).await, Err(StoreError::NotFound { .. })));
    assert!(store.list_channels(None).await.unwrap().is_empty());
    // the in-flight one still records its outcome
    assert_eq!(store.record(&[outcome(in_flight, Disposition::Delivered, Some(200))]).await.unwrap(), vec![true]);
    assert!(matches!(store.delete_channel(ch.id).await, Err(StoreError::NotFound { .. })));

    let (_, ch) = queue_with(&store, 2).await;
    assert_eq!(store.dead_letter_channel(ch.id, "endpoint_gone").await.unwrap(), 2);
}

async fn prune_removes_old_delivered_rows_but_never_dead_letters(store: Store) {
    queue_with(&store, 2).await;
    let mut leases = store.claim(10, Duration::from_secs(60)).await.unwrap().leases;
    let dead = leases.pop().unwrap();
    let done = leases.pop().unwrap();
    store
        .record(&[
            outcome(done, Disposition::Delivered, Some(200)),
            outcome(dead, Disposition::Dead { reason: certhook_core::event::DeadReason::MaxAttempts }, Some(500)),
        ])
        .await
        .unwrap();
    let kept = store.prune(Duration::from_secs(3600)).await.unwrap();
    assert_eq!((kept.deliveries, kept.events), (0, 0), "nothing is younger than retention yet");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pruned = store.prune(Duration::from_millis(1)).await.unwrap();
    assert_eq!((pruned.deliveries, pruned.events), (1, 1));
    let counts = state_counts(&store).await;
    assert_eq!((counts.delivered, counts.dead), (0, 1));
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM certhook_attempts").await, 1, "the dead letter keeps its attempt");
    assert_eq!(store.status().await.unwrap().events.total, 1, "the dead letter's event stays");
}

async fn plain_sql_insert_is_picked_up_by_fan_out(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    channel(&store, &alert, ChannelState::Active).await;
    exec(
        &store,
        &format!(
            "INSERT INTO certhook_events (application_id, type, idempotency_key, certificate) VALUES ('{}', 'issuance', 'sql-1', \
             '{{\"serialNumber\":\"777\",\"commonName\":\"sql.example.com\",\"notBefore\":\"2024-01-01T00:00:00Z\",\"notAfter\":\"2025-01-01T00:00:00Z\"}}')",
            app.id
        ),
    )
    .await;
    assert_eq!(fan_out_all(&store).await, 1);
    let lease = claim_one(&store).await;
    let v: serde_json::Value = serde_json::from_slice(&lease.body).unwrap();
    assert_eq!(v["data"]["certificates"][0]["serialNumber"], "777");
    assert_eq!(v["data"]["certificates"][0]["id"], "777", "id defaults to the serial number");
    assert_eq!(v["data"]["certificates"][0]["profileName"], serde_json::Value::Null);
    let event_id = lease.cloud_event_id;
    assert!(!event_id.is_nil());
    // the plain-SQL path is idempotent too
    let again = store.enqueue(&[event(app.id, AlertType::Issuance, "778", Some("sql-1"))]).await.unwrap();
    let sql_id = scalar(&store, "SELECT COUNT(*) FROM certhook_events").await;
    assert_eq!(sql_id, 1);
    assert_eq!(store.get_delivery(lease.delivery_id).await.unwrap().delivery.event_id, Some(again[0]));
}

async fn malformed_plain_sql_row_is_marked_and_not_delivered(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    channel(&store, &alert, ChannelState::Active).await;
    exec(
        &store,
        &format!(
            "INSERT INTO certhook_events (application_id, type, certificate) VALUES ('{}', 'issuance', '{{\"serialNumber\":\"1\"}}')",
            app.id
        ),
    )
    .await;
    store.enqueue(&[event(app.id, AlertType::Issuance, "2", None)]).await.unwrap();
    assert_eq!(fan_out_all(&store).await, 2);
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM certhook_events WHERE error LIKE '%certificate.commonName%'").await,
        1,
        "the refusal names the field"
    );
    assert_eq!(store.list_deliveries(&DeliveryFilter::default()).await.unwrap().len(), 1, "the good row still flows");
}

/// Issue 14: a plain-SQL producer's rows get the API's checks at fan-out: size, and an
/// `alert_id` of the event's own application and type.
async fn plain_sql_rows_are_checked_like_api_events_and_refusals_keep_their_reason(store: Store) {
    let store = store.with_settings(certhook_store::StoreSettings { max_event_bytes: 400, ..Default::default() });
    let mine = app(&store).await;
    let theirs = app(&store).await;
    let my_alert = alert(&store, &mine, AlertType::Issuance, "mine").await;
    let my_revocations = alert(&store, &mine, AlertType::Revocation, "revoked").await;
    let their_alert = alert(&store, &theirs, AlertType::Issuance, "theirs").await;
    for a in [&my_alert, &my_revocations, &their_alert] {
        channel(&store, a, ChannelState::Active).await;
    }
    let cert = |cn: &str| {
        format!(
            r#"{{"serialNumber":"1","commonName":"{cn}","notBefore":"2024-01-01T00:00:00Z","notAfter":"2025-01-01T00:00:00Z"}}"#
        )
    };
    let insert = |key: &str, alert: Option<uuid::Uuid>, certificate: String| {
        let alert = alert.map_or("NULL".to_string(), |a| format!("'{a}'"));
        format!(
            "INSERT INTO certhook_events (application_id, type, idempotency_key, alert_id, certificate) \
             VALUES ('{}', 'issuance', '{key}', {alert}, '{certificate}')",
            mine.id
        )
    };
    exec(&store, &insert("big", None, cert(&"x".repeat(500)))).await;
    exec(&store, &insert("foreign", Some(their_alert.id), cert("a.example"))).await;
    exec(&store, &insert("wrong-type", Some(my_revocations.id), cert("b.example"))).await;
    exec(&store, &insert("unknown", Some(uuid::Uuid::now_v7()), cert("c.example"))).await;
    exec(&store, &insert("good", Some(my_alert.id), cert("d.example"))).await;
    // The scanner's own column is no way around the checks either.
    let list = format!("[{}, {}]", cert("e.example"), cert(""));
    exec(
        &store,
        &format!(
            "INSERT INTO certhook_events (application_id, type, idempotency_key, certificates) \
             VALUES ('{}', 'issuance', 'list', '{list}')",
            mine.id
        ),
    )
    .await;
    assert_eq!(fan_out_all(&store).await, 6);
    for (key, reason) in [
        ("big", "exceeds max_event_bytes 400"),
        ("foreign", "belongs to another application"),
        ("wrong-type", "subscribes to revocation, the event is issuance"),
        ("unknown", "alertId: no alert"),
        ("list", "certificates[1]: certificate.commonName"),
    ] {
        let sql = format!(
            "SELECT COUNT(*) FROM certhook_events WHERE idempotency_key = '{key}' AND fanned_out_at IS NOT NULL \
             AND error LIKE '%{reason}%'"
        );
        assert_eq!(scalar(&store, &sql).await, 1, "{key}: kept, marked, with its reason");
    }
    // The events list shows the refused rows, newest first, with why.
    let refused = store.list_events(&EventQuery { refused: true, limit: 10, ..Default::default() }).await.unwrap();
    let keys: Vec<_> = refused.iter().map(|e| e.idempotency_key.clone().unwrap()).collect();
    assert_eq!(keys, ["list", "unknown", "wrong-type", "foreign", "big"]);
    assert!(refused.iter().all(|e| e.state == EventState::Refused && e.error.is_some()));
    let all = store.list_events(&EventQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all.iter().find(|e| e.idempotency_key.as_deref() == Some("good")).unwrap().state, EventState::FannedOut);
    let deliveries = store.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    assert_eq!(deliveries.len(), 1, "only the good row was fanned out: {deliveries:?}");
    let lease = claim_one(&store).await;
    assert!(String::from_utf8_lossy(&lease.body).contains("d.example"));
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM certhook_certificates").await,
        1,
        "refused rows touch no inventory"
    );
}

async fn transactional_outbox_commits_or_rolls_back_with_the_caller(store: Store) {
    let app = app(&store).await;
    let ev = event(app.id, AlertType::Issuance, "1", None);
    match &store {
        Store::Sqlite(b) => {
            let mut tx = b.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
            certhook_store::sqlite::enqueue_in_tx(&mut tx, std::slice::from_ref(&ev)).await.unwrap();
            tx.rollback().await.unwrap();
            let mut tx = b.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
            certhook_store::sqlite::enqueue_in_tx(&mut tx, &[ev]).await.unwrap();
            tx.commit().await.unwrap();
        }
        Store::Postgres(b) => {
            let mut tx = b.pool().begin().await.unwrap();
            certhook_store::postgres::enqueue_in_tx(&mut tx, std::slice::from_ref(&ev)).await.unwrap();
            tx.rollback().await.unwrap();
            let mut tx = b.pool().begin().await.unwrap();
            certhook_store::postgres::enqueue_in_tx(&mut tx, &[ev]).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
    assert_eq!(store.status().await.unwrap().events.total, 1, "the rolled-back event is gone, the committed one stays");
}

async fn issuance_and_revocation_update_the_inventory(store: Store) {
    let app = app(&store).await;
    let mut revoked = event(app.id, AlertType::Revocation, "2", None);
    revoked.certificate.id = "cert-1".into();
    revoked.certificate.revoked_at = Some(Utc::now());
    revoked.certificate.revocation_reason = Some(certhook_core::event::RevocationReason::KeyCompromise);
    let mut issued = event(app.id, AlertType::Issuance, "1", None);
    issued.certificate.id = "cert-1".into();
    store.enqueue(&[issued]).await.unwrap();
    fan_out_all(&store).await;
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM certhook_certificates WHERE revoked_at IS NULL").await, 1);
    store.enqueue(&[revoked]).await.unwrap();
    fan_out_all(&store).await;
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM certhook_certificates WHERE revocation_reason = 'keyCompromise' AND revoked_at IS NOT NULL").await,
        1
    );
    let mut renewed = event(app.id, AlertType::Renewal, "3", None);
    renewed.certificate.id = "cert-1".into();
    store.enqueue(&[renewed]).await.unwrap();
    fan_out_all(&store).await;
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM certhook_certificates WHERE serial_number = '3' AND revoked_at IS NULL")
            .await,
        1,
        "a renewal replaces the certificate the id names"
    );
}

/// Fan-out writes a batch set-based: several events about one certificate in one batch
/// must leave the inventory as the last of them says (PostgreSQL refuses to upsert a row
/// twice in one statement, so the batch must fold them first).
async fn one_fan_out_batch_with_several_events_for_a_certificate_keeps_the_last(store: Store) {
    let app = app(&store).await;
    let issuance = alert(&store, &app, AlertType::Issuance, "issued").await;
    channel(&store, &issuance, ChannelState::Active).await;
    let mut issued = event(app.id, AlertType::Issuance, "1", None);
    issued.certificate.id = "cert-1".into();
    let mut revoked = event(app.id, AlertType::Revocation, "1", None);
    revoked.certificate.id = "cert-1".into();
    revoked.certificate.revoked_at = Some(Utc::now());
    revoked.certificate.revocation_reason = Some(certhook_core::event::RevocationReason::Superseded);
    let other = event(app.id, AlertType::Issuance, "2", None);
    store.enqueue(&[issued, other, revoked]).await.unwrap();
    assert_eq!(store.fan_out(&settings(), 500).await.unwrap(), 3, "one batch");
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM certhook_certificates").await, 2);
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM certhook_certificates WHERE id = 'cert-1' AND status = 'revoked'").await,
        1
    );
    assert_eq!(state_counts(&store).await.pending, 2, "the two issuances reach the issuance alert's channel");
}

/// Bodies travel to the database as strings inside a JSON array: escapes, non-ASCII and
/// astral characters must come back as the exact bytes that were rendered.
async fn a_body_survives_the_batch_write_byte_for_byte(store: Store) {
    let app = app(&store).await;
    let issuance = alert(&store, &app, AlertType::Issuance, "issued").await;
    channel(&store, &issuance, ChannelState::Active).await;
    let name = "ünï \"quoted\" back\\slash tab\t \u{1F512} <&> '.example.com";
    let mut e = event(app.id, AlertType::Issuance, "1", None);
    e.certificate.common_name = name.into();
    store.enqueue(&[e]).await.unwrap();
    fan_out_all(&store).await;
    let lease = claim_one(&store).await;
    let body = std::str::from_utf8(&lease.body).expect("UTF-8 body");
    let escaped = serde_json::to_string(name).unwrap();
    assert!(body.contains(&format!("\"commonName\":{escaped}")), "{body}");
    let parsed: serde_json::Value = serde_json::from_slice(&lease.body).unwrap();
    assert_eq!(parsed["data"]["certificates"][0]["commonName"], name);
}

async fn status_counts_every_state(store: Store) {
    let (app, ch) = queue_with(&store, 4).await;
    let held_alert = alert(&store, &app, AlertType::Revocation, "revoked").await;
    channel(&store, &held_alert, ChannelState::PendingVerification).await;
    store.enqueue(&[event(app.id, AlertType::Revocation, "9", None)]).await.unwrap();
    fan_out_all(&store).await;
    let mut leases = store.claim(3, Duration::from_secs(60)).await.unwrap().leases;
    let a = leases.pop().unwrap();
    let b = leases.pop().unwrap();
    store
        .record(&[
            outcome(a, Disposition::Delivered, Some(200)),
            outcome(b, Disposition::Retry { delay: Duration::from_secs(600) }, Some(500)),
        ])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let s = store.status().await.unwrap();
    assert_eq!(s.events.total, 5);
    let d = &s.deliveries;
    assert_eq!((d.pending, d.leased, d.retrying, d.held, d.delivered, d.dead), (1, 1, 1, 1, 1, 0));
    assert!(s.oldest_pending_age_seconds > 0.0);
    assert_eq!((s.channels.active, s.channels.pending_verification), (1, 1));
    store.set_channel_state(ch.id, ChannelState::Paused).await.unwrap();
    let json = serde_json::to_value(store.status().await.unwrap()).unwrap();
    assert_eq!(json["channels"]["paused"], 1);
    assert!(json["oldestPendingAgeSeconds"].is_number());
    assert_eq!(json["deliveries"]["held"], 3);
}

async fn claim_respects_per_channel_caps_and_skips_full_channels(store: Store) {
    let app = app(&store).await;
    let alert = alert(&store, &app, AlertType::Issuance, "issued").await;
    let a = channel(&store, &alert, ChannelState::Active).await;
    let b = channel(&store, &alert, ChannelState::Active).await;
    let events: Vec<_> = (0..5).map(|i| event(app.id, AlertType::Issuance, &i.to_string(), None)).collect();
    store.enqueue(&events).await.unwrap();
    fan_out_all(&store).await;
    let lease = Duration::from_secs(60);
    let limits = [(a.id, 1)];
    let request = ClaimRequest { limit: 10, lease, per_channel: 2, exclude: &[], channel_limits: &limits };
    let claim = store.claim_with(&request).await.unwrap();
    let on = |ch: uuid::Uuid| claim.leases.iter().filter(|l| l.channel_id == ch).count();
    assert_eq!((on(a.id), on(b.id)), (1, 2), "a named channel gets its own limit, the others the default");
    let request = ClaimRequest { limit: 10, lease, per_channel: 1, exclude: &[], channel_limits: &[(b.id, 0)] };
    let claim = store.claim_with(&request).await.unwrap();
    let on = |ch: uuid::Uuid| claim.leases.iter().filter(|l| l.channel_id == ch).count();
    assert_eq!((on(a.id), on(b.id)), (1, 0), "no channel gets more than its limit");
    let request = ClaimRequest { limit: 10, lease, per_channel: 8, exclude: &[a.id], channel_limits: &[] };
    let claim = store.claim_with(&request).await.unwrap();
    assert_eq!(claim.leases.len(), 3);
    assert!(claim.leases.iter().all(|l| l.channel_id == b.id), "a full channel is skipped");
    let request = ClaimRequest { limit: 10, lease, per_channel: 8, exclude: &[], channel_limits: &[] };
    let claim = store.claim_with(&request).await.unwrap();
    assert_eq!(claim.leases.len(), 3);
}

async fn channels_failing_without_success_for_disable_after_are_disabled(store: Store) {
    let (_, ch) = queue_with(&store, 3).await;
    let mut leases = store.claim(1, Duration::from_secs(60)).await.unwrap().leases;
    let first = leases.pop().unwrap();
    store.record(&[outcome(first, Disposition::Retry { delay: Duration::from_secs(600) }, Some(500))]).await.unwrap();
    assert!(store.disable_failing(Duration::from_secs(3600)).await.unwrap().is_empty(), "not failing long enough");
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(store.disable_failing(Duration::from_millis(10)).await.unwrap(), vec![ch.id]);
    assert_eq!(store.get_channel(ch.id).await.unwrap().state, ChannelState::Disabled);
    let dead = store
        .list_deliveries(&DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(dead.len(), 3, "its waiting deliveries, the retrying one included, are dead-lettered");
    assert!(dead.iter().all(|d| d.reason.as_deref() == Some("channel_disabled")));

    // a success clears the failure clock
    let (_, ch) = queue_with(&store, 2).await;
    let mut leases = store.claim(2, Duration::from_secs(60)).await.unwrap().leases;
    let (a, b) = (leases.pop().unwrap(), leases.pop().unwrap());
    store.record(&[outcome(a, Disposition::Retry { delay: Duration::from_secs(600) }, Some(500))]).await.unwrap();
    store.record(&[outcome(b, Disposition::Delivered, Some(200))]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(store.disable_failing(Duration::from_millis(10)).await.unwrap().is_empty());
    let shown = store.get_channel(ch.id).await.unwrap();
    assert_eq!(shown.state, ChannelState::Active);
    assert!(shown.failing_since.is_none(), "the success stopped the failure clock");
    assert!(shown.last_failure_at.is_some() && shown.last_success_at.is_some(), "both are kept for people: {shown:?}");
}

/// A batch of nothing but successes, one under a token that no longer holds its row: each
/// outcome is accepted or refused on its own, only the accepted ones log their attempt,
/// whole, and the channel's success clock is set.
async fn a_batch_of_successes_is_fenced_per_outcome_and_sets_the_channels_health(store: Store) {
    let (_, ch) = queue_with(&store, 3).await;
    let mut leases = store.claim(10, Duration::from_secs(60)).await.unwrap().leases;
    leases.sort_by_key(|l| l.delivery_id);
    let c = leases.pop().unwrap();
    let (b, a) = (leases.pop().unwrap(), leases.pop().unwrap());
    let (a_id, b_id, c_id) = (a.delivery_id, b.delivery_id, c.delivery_id);
    let stale = Lease { token: uuid::Uuid::new_v4(), ..c };
    let batch = [
        outcome(a, Disposition::Delivered, Some(204)),
        outcome(stale, Disposition::Delivered, Some(200)),
        outcome(b, Disposition::Delivered, Some(201)),
    ];
    assert_eq!(store.record(&batch).await.unwrap(), vec![true, false, true]);
    for (id, status) in [(a_id, 204), (b_id, 201)] {
        let detail = store.get_delivery(id).await.unwrap();
        assert_eq!(detail.delivery.state, DeliveryState::Delivered);
        assert_eq!((detail.delivery.attempt_count, detail.delivery.last_status_code), (1, Some(status)));
        assert!(detail.delivery.delivered_at.is_some());
        let [attempt] = detail.attempts.as_slice() else { panic!("one attempt: {:?}", detail.attempts) };
        assert_eq!((attempt.number, attempt.status_code, attempt.duration_ms), (1, Some(status), 12));
        assert_eq!((attempt.error.as_deref(), attempt.response_snippet.as_deref()), (None, Some("ok")));
    }
    let refused = store.get_delivery(c_id).await.unwrap();
    assert_eq!(refused.delivery.state, DeliveryState::Leased, "the stale token changed nothing");
    assert!(refused.attempts.is_empty(), "the refused outcome logged nothing");
    let shown = store.get_channel(ch.id).await.unwrap();
    assert!(shown.last_success_at.is_some() && shown.failing_since.is_none(), "{shown:?}");
}
