//! Every statement the store runs, written once in a neutral dialect; each backend
//! (`sqlite::dialect`, `postgres::dialect`) turns it into its own SQL when it starts.
//!
//! Where the dialects differ, a statement says what it needs with a marker, and each backend
//! writes that part its own way:
//! - `?`: a placeholder (`$1…` on PostgreSQL);
//! - `NOW_MS`: the database's clock in unix milliseconds;
//! - `NOW_BOUND`: the same, read once per statement, where it bounds an index range (a
//!   claim's `next_attempt_at <= NOW_BOUND`): PostgreSQL cannot bound a range by a
//!   volatile function, and walked the whole index past it;
//! - `SKIP_LOCKED`: `FOR UPDATE SKIP LOCKED` where rows can be skipped (on SQLite, one
//!   `BEGIN IMMEDIATE` writer at a time makes it moot);
//! - `LOCK_ROWS`: `FOR NO KEY UPDATE` where rows can be locked;
//! - `JSON_LIST(?)`: a subquery over the strings of a bound JSON array;
//! - `JSON_ELEMENTS(?)`: a table of the objects of a bound JSON array (column `value`);
//! - `NOIDX(column)`: a text column that must not be matched to an index (a batch write
//!   that should reach its rows by primary key);
//! - `USE_INDEX(name)`: the index SQLite must use (PostgreSQL plans from its statistics);
//! - `TO_BYTES(text)`: UTF-8 text as the bytes of a `BLOB`/`BYTEA` column;
//! - `SERIALIZE(key)`: a statement that makes transactions taking the same key run one
//!   after another (a transaction-scoped advisory lock on PostgreSQL; on SQLite the one
//!   writer already does).

/// Replaces every `MARKER(arg)` (`open` is `MARKER(`) with `replace(arg)`: how a backend
/// writes a marker that takes an argument.
pub(crate) fn rewrite_calls(sql: &str, open: &str, replace: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(open) {
        out.push_str(&rest[..at]);
        let after = &rest[at + open.len()..];
        let end = after.find(')').unwrap_or_else(|| panic!("{open} is closed"));
        out.push_str(&replace(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Declares [`Queries`]: one field per statement, each written in the neutral dialect.
macro_rules! queries {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)+) => {
        /// Every statement the store runs, in one backend's dialect.
        pub struct Queries {
            $($(#[$doc])* pub $name: &'static str,)+
        }

        impl Queries {
            /// Every statement in one backend's dialect, as `translate` writes the markers.
            pub(crate) fn build(translate: fn(&str) -> String) -> Queries {
                // Built once per backend per process (a `LazyLock` each), so the leak is bounded.
                Queries { $($name: Box::leak(translate(&$sql).into_boxed_str()),)+ }
            }

            /// Every statement with its name, for tests that check a property of all of them.
            #[cfg(test)]
            pub(crate) fn all(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($name), self.$name)),+]
            }
        }
    };
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Queries")
    }
}

/// The stored secrets of every live channel that has any.
const CHANNEL_SECRETS: &str = "SELECT id, secret, previous_secret, routing_key, client_key FROM certhook_channels \
     WHERE deleted_at IS NULL AND (secret IS NOT NULL OR previous_secret IS NOT NULL OR routing_key IS NOT NULL \
     OR client_key IS NOT NULL) ORDER BY id";

/// What sending to live channels takes, secrets included.
const CHANNEL_TARGETS: &str = "SELECT c.id, c.kind, c.url, c.state, c.content_type, c.secret, c.previous_secret, \
     c.previous_secret_expires_at, c.routing_key, c.rate_limit, c.ca_pem, c.client_cert_pem, c.client_key, \
     a.application_id, c.alert_id FROM certhook_channels c \
     JOIN certhook_alerts a ON a.id = c.alert_id WHERE c.deleted_at IS NULL";

/// An alert as `alert_from` reads it.
const ALERT_COLUMNS: &str = "id, application_id, type, types, name, description, alert_before, profiles, name_patterns";

/// Whether the alert's comma-separated `types` include the bound type (an alert an older
/// version created during a rolling upgrade has only its `type`).
const HAS_TYPE: &str = "(',' || COALESCE(NULLIF(types, ''), type) || ',') LIKE ('%,' || ? || ',%')";

/// An outbox row as `event_from` reads it.
const EVENT_COLUMNS: &str = "id, application_id, type, idempotency_key, certificate, certificates, alert_id, \
     occurred_at, created_at, fanned_out_at, error";

/// An inventory row as `inventory_from` reads it.
const CERTIFICATE_COLUMNS: &str = "application_id, id, serial_number, common_name, san, profile_name, not_before, \
     not_after, revoked_at, revocation_reason, status, updated_at";

const DELIVERY_COLUMNS: &str = "id, event_id, channel_id, message_id, type, state, attempt_count, next_attempt_at, \
     last_status_code, last_error, reason, created_at, delivered_at, dead_at";

/// What a claim returns per lease, the rendered body included (one statement, not two).
const LEASE_RETURNING: &str = "RETURNING id, channel_id, message_id, type, attempt_count, enqueued_at, \
    (SELECT body FROM certhook_messages WHERE certhook_messages.id = certhook_deliveries.message_id) AS body";

/// What a channel is shown as: the client key is read only to say whether there is one.
const CHANNEL_COLUMNS: &str = "id, alert_id, kind, url, state, content_type, secret, rate_limit, ca_pem, client_cert_pem, \
     client_key, last_success_at, last_failure_at, failing_since, created_at";

/// A batch of outcomes bound as one JSON array, as a table.
const OUTCOMES: &str = "(SELECT value ->> 'id' AS o_id, value ->> 'token' AS o_token, \
    CAST(value ->> 'added' AS BIGINT) AS o_added, CAST(value ->> 'status' AS BIGINT) AS o_status, \
    value ->> 'error' AS o_error, CAST(value ->> 'delay' AS BIGINT) AS o_delay, value ->> 'reason' AS o_reason \
    FROM JSON_ELEMENTS(?))";

/// The fence of a batch write: the row is still leased, under the outcome's lease token.
const FENCE: &str = "id = j.o_id AND NOIDX(lease_token) = j.o_token AND NOIDX(state) = 'leased'";

queries! {
    now = "SELECT NOW_MS";

    insert_application = "INSERT INTO certhook_applications (id, name, created_at) SELECT ?, ?, NOW_MS \
        WHERE NOT EXISTS (SELECT 1 FROM certhook_applications WHERE name = ? AND deleted_at IS NULL) RETURNING created_at";
    application_named = "SELECT id FROM certhook_applications WHERE name = ? AND deleted_at IS NULL";
    /// Taken before the check that a name is free, so two creates cannot both pass it.
    serialize_application_names = "SERIALIZE(727001)";
    list_applications = "SELECT id, name, created_at FROM certhook_applications WHERE deleted_at IS NULL \
        ORDER BY created_at, id";
    get_application = "SELECT id, name, created_at FROM certhook_applications WHERE id = ? AND deleted_at IS NULL";
    delete_application = "UPDATE certhook_applications SET deleted_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    alerts_of_application = "SELECT id FROM certhook_alerts WHERE application_id = ? AND deleted_at IS NULL \
        ORDER BY created_at, id";

    insert_alert = "INSERT INTO certhook_alerts (id, application_id, type, types, name, description, alert_before, \
        profiles, name_patterns, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NOW_MS)";
    update_alert = "UPDATE certhook_alerts SET type = ?, types = ?, name = ?, description = ?, alert_before = ?, \
        profiles = ?, name_patterns = ? WHERE id = ? AND deleted_at IS NULL";
    // The id excluded is the alert being renamed (none on create).
    alert_name_taken = "SELECT 1 FROM certhook_alerts WHERE application_id = ? AND name = ? AND deleted_at IS NULL \
        AND id <> ?";
    list_alerts = const_format(&["SELECT ", ALERT_COLUMNS, " FROM certhook_alerts \
        WHERE deleted_at IS NULL AND (CAST(? AS TEXT) IS NULL OR application_id = ?) ORDER BY created_at, id"]);
    get_alert = const_format(&["SELECT ", ALERT_COLUMNS, " FROM certhook_alerts WHERE id = ? AND deleted_at IS NULL"]);
    get_alert_for_update = const_format(&["SELECT ", ALERT_COLUMNS, " FROM certhook_alerts WHERE id = ? \
        AND deleted_at IS NULL LOCK_ROWS"]);
    alerts_for_event = const_format(&["SELECT ", ALERT_COLUMNS, " FROM certhook_alerts \
        WHERE application_id = ? AND ", HAS_TYPE, " AND deleted_at IS NULL ORDER BY created_at, id"]);

    insert_channel = "INSERT INTO certhook_channels (id, alert_id, kind, url, state, content_type, secret, routing_key, \
        verification_token, verification_expires_at, rate_limit, ca_pem, client_cert_pem, client_key, created_at, updated_at) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NOW_MS, NOW_MS) RETURNING created_at";
    start_verification = "UPDATE certhook_channels SET state = 'pending_verification', verification_token = ?, \
        verification_expires_at = ?, url = COALESCE(?, url), updated_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    channel_verification = "SELECT state, verification_token, verification_expires_at FROM certhook_channels \
        WHERE id = ? AND deleted_at IS NULL";
    clear_verification = "UPDATE certhook_channels SET verification_token = NULL, verification_expires_at = NULL WHERE id = ?";
    clear_failing = "UPDATE certhook_channels SET failing_since = NULL WHERE id = ?";
    rotate_secret = "UPDATE certhook_channels SET previous_secret = secret, previous_secret_expires_at = NOW_MS + ?, \
        secret = ?, updated_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    set_channel_url = "UPDATE certhook_channels SET url = ?, updated_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    list_channels = const_format(&["SELECT ", CHANNEL_COLUMNS, " FROM certhook_channels \
        WHERE deleted_at IS NULL AND (CAST(? AS TEXT) IS NULL OR alert_id = ?) ORDER BY created_at, id"]);
    get_channel = const_format(&["SELECT ", CHANNEL_COLUMNS, " FROM certhook_channels WHERE id = ? AND deleted_at IS NULL"]);
    set_channel_rate_limit = "UPDATE certhook_channels SET rate_limit = ?, updated_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    set_channel_ca = "UPDATE certhook_channels SET ca_pem = ?, updated_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    // The certificate and its key change together: one without the other cannot be presented.
    set_channel_client_identity = "UPDATE certhook_channels SET client_cert_pem = ?, client_key = ?, updated_at = NOW_MS \
        WHERE id = ? AND deleted_at IS NULL";
    channel_secrets = CHANNEL_SECRETS;
    // Rewrap reads what it re-seals with the rows locked, so a rotation or delete committed
    // meanwhile waits rather than being written over.
    channel_secrets_to_rewrap = const_format(&[CHANNEL_SECRETS, " LOCK_ROWS"]);
    set_channel_secrets = "UPDATE certhook_channels SET secret = ?, previous_secret = ?, routing_key = ?, client_key = ? \
        WHERE id = ? AND deleted_at IS NULL";
    // Channels deleted before deletion erased secrets still hold theirs.
    erase_deleted_secrets = "UPDATE certhook_channels SET secret = NULL, previous_secret = NULL, routing_key = NULL, \
        client_key = NULL WHERE deleted_at IS NOT NULL \
        AND (secret IS NOT NULL OR previous_secret IS NOT NULL OR routing_key IS NOT NULL OR client_key IS NOT NULL)";
    channel_targets = CHANNEL_TARGETS;
    channel_target = const_format(&[CHANNEL_TARGETS, " AND c.id = ?"]);
    channels_of_alert = "SELECT id, state, kind FROM certhook_channels WHERE alert_id = ? AND deleted_at IS NULL \
        ORDER BY created_at, id";
    set_channel_state = "UPDATE certhook_channels SET state = ?, updated_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    delete_alert = "UPDATE certhook_alerts SET deleted_at = NOW_MS WHERE id = ? AND deleted_at IS NULL";
    // A deleted channel sends nothing more, so it keeps no secret.
    delete_channel = "UPDATE certhook_channels SET deleted_at = NOW_MS, updated_at = NOW_MS, secret = NULL, \
        previous_secret = NULL, routing_key = NULL, client_key = NULL WHERE id = ? AND deleted_at IS NULL";
    hold_channel = "UPDATE certhook_deliveries SET state = 'held', updated_at = NOW_MS \
        WHERE channel_id = ? AND state IN ('pending', 'retrying') AND type <> 'webhook.verification'";
    release_channel = "UPDATE certhook_deliveries SET \
        state = CASE WHEN attempt_count > 0 THEN 'retrying' ELSE 'pending' END, next_attempt_at = NOW_MS, updated_at = NOW_MS \
        WHERE channel_id = ? AND state = 'held'";
    dead_letter_channel = "UPDATE certhook_deliveries SET state = 'dead', reason = ?, dead_at = NOW_MS, updated_at = NOW_MS, \
        lease_token = NULL, lease_expires_at = NULL WHERE channel_id = ? AND state IN ('pending', 'retrying', 'held')";

    application_exists = "SELECT 1 FROM certhook_applications WHERE id = ? AND deleted_at IS NULL";
    // Taken by what adds to or deletes an application, so the two cannot interleave.
    lock_application = "SELECT 1 FROM certhook_applications WHERE id = ? AND deleted_at IS NULL LOCK_ROWS";
    find_idempotent = "SELECT id FROM certhook_events WHERE application_id = ? AND idempotency_key = ?";
    // A batch of events in one statement, in batch order (so `seq` follows it); a row whose
    // idempotency key is taken (earlier, or earlier in the batch) is skipped and not returned.
    // The first `?` says whether the enqueue fans the rows out itself (in its transaction):
    // then they are born fanned out, and never enter the index of unfanned rows.
    insert_events = "INSERT INTO certhook_events (id, application_id, type, idempotency_key, certificate, occurred_at, \
        created_at, fanned_out_at) \
        SELECT value ->> 'id', value ->> 'app', value ->> 'type', value ->> 'key', value ->> 'certificate', NOW_MS, NOW_MS, \
        CASE WHEN ? THEN NOW_MS END \
        FROM JSON_ELEMENTS(?) WHERE true ORDER BY CAST(value ->> 'n' AS BIGINT) \
        ON CONFLICT (application_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
        RETURNING id, occurred_at, created_at";
    count_events = "SELECT COUNT(*) FROM certhook_events";

    any_unfanned = "SELECT 1 FROM certhook_events WHERE fanned_out_at IS NULL LIMIT 1";
    unfanned_events = "SELECT id, application_id, type, certificate, certificates, alert_id, occurred_at, created_at \
        FROM certhook_events WHERE fanned_out_at IS NULL ORDER BY seq LIMIT ? SKIP_LOCKED";
    mark_fanned_out = "UPDATE certhook_events SET fanned_out_at = NOW_MS, error = ? WHERE id = ?";
    // Fan-out takes its rows only if they are still unfanned: one planned outside the write
    // transaction may find that another process fanned some out meanwhile.
    take_unfanned = "UPDATE certhook_events SET fanned_out_at = NOW_MS, error = NULL \
        WHERE id IN JSON_LIST(?) AND fanned_out_at IS NULL RETURNING id";
    // Fan-out writes a batch of events with one statement per table, each over a JSON
    // array; `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join constraint.
    upsert_certificates = "INSERT INTO certhook_certificates (application_id, id, serial_number, common_name, san, \
        profile_name, not_before, not_after, revoked_at, revocation_reason, status, updated_at) \
        SELECT value ->> 'app', value ->> 'id', value ->> 'serial', value ->> 'cn', value ->> 'san', value ->> 'profile', \
        CAST(value ->> 'not_before' AS BIGINT), CAST(value ->> 'not_after' AS BIGINT), CAST(value ->> 'revoked_at' AS BIGINT), \
        value ->> 'reason', value ->> 'status', NOW_MS FROM JSON_ELEMENTS(?) WHERE true \
        ON CONFLICT (application_id, id) DO UPDATE SET serial_number = excluded.serial_number, \
        common_name = excluded.common_name, san = excluded.san, profile_name = excluded.profile_name, \
        not_before = excluded.not_before, not_after = excluded.not_after, revoked_at = excluded.revoked_at, \
        revocation_reason = excluded.revocation_reason, status = excluded.status, updated_at = excluded.updated_at";
    insert_messages = "INSERT INTO certhook_messages (id, event_id, alert_id, type, body, created_at) \
        SELECT value ->> 'id', value ->> 'event', value ->> 'alert', value ->> 'type', TO_BYTES(value ->> 'body'), NOW_MS \
        FROM JSON_ELEMENTS(?)";
    insert_deliveries = "INSERT INTO certhook_deliveries (id, message_id, event_id, channel_id, type, state, next_attempt_at, \
        reason, enqueued_at, created_at, updated_at, dead_at) \
        SELECT value ->> 'id', value ->> 'message', value ->> 'event', value ->> 'channel', value ->> 'type', value ->> 'state', \
        NOW_MS, value ->> 'reason', CAST(value ->> 'enqueued' AS BIGINT), NOW_MS, NOW_MS, \
        CASE WHEN value ->> 'state' = 'dead' THEN NOW_MS END FROM JSON_ELEMENTS(?) WHERE true \
        ON CONFLICT (message_id, channel_id) DO NOTHING";
    expiration_alerts = const_format(&["SELECT ", ALERT_COLUMNS, " FROM certhook_alerts \
        WHERE ", HAS_TYPE, " AND deleted_at IS NULL ORDER BY created_at, id"]);
    // Active, unrevoked certificates whose notAfter is in (asOf, asOf + window], not yet
    // reported for this alert at this notAfter.
    expiring_unreported = "SELECT c.id, c.serial_number, c.common_name, c.san, c.profile_name, c.not_before, c.not_after \
        FROM certhook_certificates c WHERE c.application_id = ? AND c.revoked_at IS NULL \
        AND c.not_after > ? AND c.not_after <= ? AND NOT EXISTS (SELECT 1 FROM certhook_expiration_reports r \
        WHERE r.alert_id = ? AND r.certificate_id = c.id AND r.not_after = c.not_after) ORDER BY c.not_after, c.id";
    insert_report = "INSERT INTO certhook_expiration_reports (alert_id, certificate_id, not_after, event_id, reported_at) \
        VALUES (?, ?, ?, ?, NOW_MS) ON CONFLICT (alert_id, certificate_id, not_after) DO NOTHING RETURNING certificate_id";
    insert_scan_event = "INSERT INTO certhook_events (id, application_id, type, certificates, alert_id, occurred_at, created_at) \
        VALUES (?, ?, 'expiration', ?, ?, ?, NOW_MS)";
    mark_expired = "UPDATE certhook_certificates SET status = 'expired', updated_at = NOW_MS \
        WHERE status = 'active' AND revoked_at IS NULL AND not_after <= ? AND not_after <= NOW_MS";
    // Soonest expiry first; a page continues after the (notAfter, id) of the certificate
    // named by `after`; `expiring_within` keeps unrevoked certificates whose notAfter is in
    // (now, now + window].
    list_certificates = const_format(&["SELECT ", CERTIFICATE_COLUMNS, " FROM certhook_certificates \
        WHERE application_id = ? AND (CAST(? AS TEXT) IS NULL OR status = ?) \
        AND (CAST(? AS BIGINT) IS NULL OR (revoked_at IS NULL AND not_after > NOW_BOUND AND not_after <= NOW_BOUND + ?)) \
        AND (not_after, id) > (?, ?) ORDER BY not_after, id LIMIT ?"]);
    // By the PKI's id, or else by serial number (the newest certificate with it).
    get_certificate = const_format(&["SELECT ", CERTIFICATE_COLUMNS, " FROM certhook_certificates \
        WHERE application_id = ? AND (id = ? OR serial_number = ?) ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END, \
        not_after DESC LIMIT 1"]);
    // Newest first; a page continues below the `seq` of the event named by `after`.
    // One statement per filter, each a plain range over its own index (the primary key,
    // `certhook_events_app`, `certhook_events_refused`): a page deep in a long outbox
    // starts where it should rather than walking there.
    list_events = const_format(&["SELECT ", EVENT_COLUMNS, " FROM certhook_events WHERE seq < ? \
        ORDER BY seq DESC LIMIT ?"]);
    list_events_of_app = const_format(&["SELECT ", EVENT_COLUMNS, " FROM certhook_events \
        WHERE application_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"]);
    list_refused_events = const_format(&["SELECT ", EVENT_COLUMNS, " FROM certhook_events \
        WHERE error IS NOT NULL AND seq < ? ORDER BY seq DESC LIMIT ?"]);
    list_refused_events_of_app = const_format(&["SELECT ", EVENT_COLUMNS, " FROM certhook_events \
        WHERE application_id = ? AND error IS NOT NULL AND seq < ? ORDER BY seq DESC LIMIT ?"]);
    get_event = const_format(&["SELECT ", EVENT_COLUMNS, " FROM certhook_events WHERE id = ?"]);
    event_seq = "SELECT seq FROM certhook_events WHERE id = ?";
    // Through the event's messages: deliveries have no index on `event_id` (one more index
    // write per delivery on the hot path), and every delivery of an event sends one of its
    // messages, whose `event_id` is the same. Two index searches instead of a scan of
    // every delivery ever kept.
    deliveries_of_event = const_format(&["SELECT ", DELIVERY_COLUMNS, " FROM certhook_deliveries \
        WHERE message_id IN (SELECT id FROM certhook_messages WHERE event_id = ?) ORDER BY created_at, id"]);
    insert_message = "INSERT INTO certhook_messages (id, event_id, alert_id, type, body, created_at) VALUES (?, ?, ?, ?, ?, NOW_MS)";
    insert_delivery = "INSERT INTO certhook_deliveries (id, message_id, event_id, channel_id, type, state, next_attempt_at, \
        reason, enqueued_at, created_at, updated_at, dead_at) \
        VALUES (?, ?, ?, ?, ?, ?, NOW_MS, ?, ?, NOW_MS, NOW_MS, CASE WHEN CAST(? AS TEXT) = 'dead' THEN NOW_MS END) \
        ON CONFLICT (message_id, channel_id) DO NOTHING";

    claim_expired = const_format(&["UPDATE certhook_deliveries SET lease_token = ?, lease_expires_at = NOW_MS + ?, updated_at = NOW_MS \
        WHERE id IN (SELECT id FROM certhook_deliveries USE_INDEX(certhook_deliveries_leased) \
        WHERE state = 'leased' AND lease_expires_at <= NOW_BOUND \
        ORDER BY lease_expires_at LIMIT ? SKIP_LOCKED) ", LEASE_RETURNING]);
    // The innermost query walks the due index (bounded by a window of rows, skipping
    // channels that have no free sending slot); the window function then gives no channel
    // more rows than it may have in flight, so a leased row is sent, not left waiting.
    claim_due = const_format(&["UPDATE certhook_deliveries SET state = 'leased', lease_token = ?, lease_expires_at = NOW_MS + ?, \
        updated_at = NOW_MS WHERE id IN (SELECT id FROM (SELECT id, channel_id, next_attempt_at, \
        ROW_NUMBER() OVER (PARTITION BY channel_id ORDER BY next_attempt_at, id) AS rn FROM \
        (SELECT id, channel_id, next_attempt_at FROM certhook_deliveries USE_INDEX(certhook_deliveries_due) \
        WHERE state IN ('pending', 'retrying') \
        AND next_attempt_at <= NOW_BOUND AND channel_id NOT IN JSON_LIST(?) ORDER BY next_attempt_at LIMIT ? SKIP_LOCKED) due) ranked \
        LEFT JOIN (SELECT value ->> 'c' AS l_channel, CAST(value ->> 'n' AS BIGINT) AS l_max FROM JSON_ELEMENTS(?)) limits \
        ON limits.l_channel = ranked.channel_id \
        WHERE rn <= COALESCE(limits.l_max, ?) ORDER BY next_attempt_at LIMIT ?) ", LEASE_RETURNING]);
    // A claimed row the worker cannot read (a plain-SQL writer's mistake): out of the queue,
    // kept for an operator, with what was wrong.
    dead_letter_corrupt = "UPDATE certhook_deliveries SET state = 'dead', reason = 'corrupt_row', last_error = ?, \
        dead_at = NOW_MS, updated_at = NOW_MS, lease_token = NULL, lease_expires_at = NULL WHERE id = ?";
    // Outcomes are written a batch at a time: one statement per kind of outcome, each over
    // a JSON array of (id, token, …) rows, instead of two statements per delivery.
    record_delivered = const_format(&["UPDATE certhook_deliveries SET state = 'delivered', attempt_count = attempt_count + j.o_added, \
        last_status_code = j.o_status, last_error = NULL, delivered_at = NOW_MS, lease_token = NULL, lease_expires_at = NULL, \
        updated_at = NOW_MS FROM ", OUTCOMES, " AS j WHERE ", FENCE, " RETURNING id, attempt_count"]);
    // A delivery that goes back to waiting goes where its channel is now: a channel paused,
    // re-pointed or deleted while the delivery was in flight holds or dead-letters it.
    record_retry = const_format(&["UPDATE certhook_deliveries SET ", &back_to_waiting("'retrying'"), ", \
        attempt_count = attempt_count + j.o_added, \
        last_status_code = j.o_status, last_error = j.o_error, next_attempt_at = NOW_MS + j.o_delay, lease_token = NULL, \
        lease_expires_at = NULL, updated_at = NOW_MS FROM ", OUTCOMES, " AS j WHERE ", FENCE, " RETURNING id, attempt_count"]);
    record_dead = const_format(&["UPDATE certhook_deliveries SET state = 'dead', attempt_count = attempt_count + j.o_added, \
        last_status_code = COALESCE(j.o_status, last_status_code), last_error = COALESCE(j.o_error, last_error), \
        reason = j.o_reason, dead_at = NOW_MS, lease_token = NULL, lease_expires_at = NULL, updated_at = NOW_MS \
        FROM ", OUTCOMES, " AS j WHERE ", FENCE, " RETURNING id, attempt_count"]);
    record_released = const_format(&["UPDATE certhook_deliveries SET ",
        &back_to_waiting("CASE WHEN attempt_count > 0 THEN 'retrying' ELSE 'pending' END"), ", next_attempt_at = NOW_MS, \
        lease_token = NULL, lease_expires_at = NULL, updated_at = NOW_MS FROM ", OUTCOMES, " AS j \
        WHERE ", FENCE, " RETURNING id, attempt_count"]);
    // Leases still being worked on, pushed forward: fenced like an outcome, so a lease
    // that was taken over stays with its new holder. Rows another transaction has locked
    // (on PostgreSQL, an outcome batch settling them right now) are skipped rather than
    // waited for: the two never deadlock, and a row being settled needs no extension.
    extend_leases = const_format(&["UPDATE certhook_deliveries SET lease_expires_at = NOW_MS + ?, updated_at = NOW_MS \
        WHERE id IN (SELECT d.id FROM certhook_deliveries d \
        JOIN (SELECT value ->> 'id' AS o_id, value ->> 'token' AS o_token FROM JSON_ELEMENTS(?)) AS j ON d.id = j.o_id \
        WHERE NOIDX(d.lease_token) = j.o_token AND NOIDX(d.state) = 'leased' SKIP_LOCKED) RETURNING id"]);
    // A delivered verification event keeps its body for the record, not its token.
    scrub_message = "UPDATE certhook_messages SET body = ? \
        WHERE id = (SELECT message_id FROM certhook_deliveries WHERE id = ?)";
    insert_attempts = "INSERT INTO certhook_attempts (delivery_id, number, started_at, duration_ms, status_code, error, \
        response_snippet) SELECT value ->> 'id', CAST(value ->> 'number' AS BIGINT), CAST(value ->> 'started' AS BIGINT), \
        CAST(value ->> 'duration' AS BIGINT), CAST(value ->> 'status' AS BIGINT), value ->> 'error', value ->> 'snippet' \
        FROM JSON_ELEMENTS(?)";
    // Batches written side by side (PostgreSQL) take their channel rows in id order first:
    // an UPDATE … FROM locks rows in whatever order its plan visits them, and two plans
    // (a custom and a generic one, or rows moved by earlier updates) deadlocked.
    lock_channels = "SELECT id FROM certhook_channels WHERE id IN JSON_LIST(?) ORDER BY id LOCK_ROWS";
    // Per channel of a batch: `ok` 1 if any attempt succeeded (the failure clock stops),
    // 0 if all failed (it starts, unless running); `failed` 1 if any attempt failed.
    channel_health = "UPDATE certhook_channels SET \
        last_success_at = CASE WHEN j.ok = 1 THEN NOW_MS ELSE last_success_at END, \
        failing_since = CASE WHEN j.ok = 1 THEN NULL ELSE COALESCE(failing_since, NOW_MS) END, \
        last_failure_at = CASE WHEN j.failed = 1 THEN NOW_MS ELSE last_failure_at END \
        FROM (SELECT value ->> 'c' AS c, CAST(value ->> 'ok' AS BIGINT) AS ok, \
        CAST(value ->> 'failed' AS BIGINT) AS failed FROM JSON_ELEMENTS(?)) AS j \
        WHERE id = j.c";
    // A 410 disables the channel only if it still points where the request went.
    disable_gone_channel = "UPDATE certhook_channels SET state = 'disabled', updated_at = NOW_MS \
        WHERE id = ? AND (url = ? OR (url IS NULL AND CAST(? AS TEXT) IS NULL)) AND deleted_at IS NULL";
    disable_failing = "UPDATE certhook_channels SET state = 'disabled', updated_at = NOW_MS \
        WHERE state = 'active' AND deleted_at IS NULL AND failing_since IS NOT NULL AND failing_since <= NOW_MS - ? RETURNING id";

    list_deliveries = const_format(&["SELECT ", DELIVERY_COLUMNS, " FROM certhook_deliveries \
        WHERE (CAST(? AS TEXT) IS NULL OR state = ?) AND (CAST(? AS TEXT) IS NULL OR channel_id = ?) \
        AND (CAST(? AS TEXT) IS NULL OR type = ?) AND (CAST(? AS BIGINT) IS NULL OR dead_at >= ?) \
        AND (CAST(? AS BIGINT) IS NULL OR dead_at < ?) AND (CAST(? AS BIGINT) IS NULL OR created_at >= ?) \
        AND (CAST(? AS BIGINT) IS NULL OR created_at < ?) \
        AND (CAST(? AS BIGINT) IS NULL OR (created_at, id) < (?, ?)) ORDER BY created_at DESC, id DESC LIMIT ?"]);
    delivery_position = "SELECT created_at FROM certhook_deliveries WHERE id = ?";
    get_delivery = const_format(&["SELECT ", DELIVERY_COLUMNS, " FROM certhook_deliveries WHERE id = ?"]);
    list_attempts = "SELECT number, started_at, duration_ms, status_code, error, response_snippet FROM certhook_attempts \
        WHERE delivery_id = ? ORDER BY id";
    replayable = "SELECT d.id, c.id AS channel_id, c.state, c.deleted_at FROM certhook_deliveries d JOIN certhook_channels c ON c.id = d.channel_id \
        WHERE d.id = ? AND d.state = 'dead'";
    replay_one = "UPDATE certhook_deliveries SET state = ?, attempt_count = 0, next_attempt_at = NOW_MS, reason = NULL, \
        dead_at = NULL, updated_at = NOW_MS WHERE id = ? AND state = 'dead'";
    purge_attempts = "DELETE FROM certhook_attempts WHERE delivery_id = ?";
    purge_one = "DELETE FROM certhook_deliveries WHERE id = ? AND state = 'dead'";

    count_deliveries = "SELECT state, COUNT(*) FROM certhook_deliveries GROUP BY state";
    oldest_waiting = "SELECT MIN(created_at) FROM certhook_deliveries WHERE state IN ('pending', 'retrying', 'leased')";
    count_channels = "SELECT state, COUNT(*) FROM certhook_channels WHERE deleted_at IS NULL GROUP BY state";

    // The attempts of exactly the deliveries deleted: a second `LIMIT` subquery need not
    // pick the same rows (the attempts' foreign key cascades too; prune does not rely on it).
    prune_delivered = "DELETE FROM certhook_deliveries WHERE id IN (SELECT id FROM certhook_deliveries \
        WHERE state = 'delivered' AND delivered_at < NOW_BOUND - ? LIMIT ?) RETURNING id";
    prune_attempts = "DELETE FROM certhook_attempts WHERE delivery_id IN JSON_LIST(?)";
    prune_messages = "DELETE FROM certhook_messages WHERE id IN (SELECT m.id FROM certhook_messages m \
        WHERE m.created_at < NOW_MS - ? AND NOT EXISTS (SELECT 1 FROM certhook_deliveries d WHERE d.message_id = m.id) LIMIT ?)";
    prune_events = "DELETE FROM certhook_events WHERE id IN (SELECT e.id FROM certhook_events e \
        WHERE e.fanned_out_at IS NOT NULL AND e.created_at < NOW_MS - ? \
        AND NOT EXISTS (SELECT 1 FROM certhook_deliveries d WHERE d.event_id = e.id) LIMIT ?)";
}

/// A delivery's channel as it is now: its state, or `deleted`.
const CHANNEL_NOW: &str = "(SELECT CASE WHEN c.deleted_at IS NOT NULL THEN 'deleted' ELSE c.state END \
    FROM certhook_channels c WHERE c.id = certhook_deliveries.channel_id)";

/// The `SET` terms that put a delivery back to waiting (`waiting`: its waiting state) as
/// its channel now allows: held while the channel is paused or awaits verification (its
/// own verification event excepted), dead-lettered if the channel was deleted or disabled.
fn back_to_waiting(waiting: &str) -> String {
    format!(
        "state = CASE {CHANNEL_NOW} WHEN 'deleted' THEN 'dead' WHEN 'disabled' THEN 'dead' WHEN 'paused' THEN 'held' \
         WHEN 'pending_verification' THEN CASE WHEN type = 'webhook.verification' THEN {waiting} ELSE 'held' END \
         ELSE {waiting} END, \
         reason = CASE {CHANNEL_NOW} WHEN 'deleted' THEN 'channel_deleted' WHEN 'disabled' THEN 'channel_disabled' \
         ELSE reason END, \
         dead_at = CASE WHEN {CHANNEL_NOW} IN ('deleted', 'disabled') THEN NOW_MS ELSE dead_at END"
    )
}

/// Joins statement fragments (the `queries!` entries are built at run time, once).
fn const_format(parts: &[&str]) -> String {
    parts.concat()
}

#[cfg(test)]
mod words {
    use certhook_core::event::{ChannelState, DeadReason, DeliveryState, DeliveryType};

    /// Every quoted word after `marker` in the statements.
    fn quoted_after<'a>(src: &'a str, marker: &str) -> Vec<&'a str> {
        src.match_indices(marker).filter_map(|(at, _)| src[at + marker.len()..].split('\'').next()).collect()
    }

    /// The states, reasons and types the statements write by hand are the enums' own words,
    /// so renaming a variant's word cannot leave the SQL behind.
    #[test]
    fn literal_states_reasons_and_types_are_the_enums_words() {
        let src = include_str!("sql.rs");
        let src = &src[..src.find("#[cfg(test)]\nmod words").expect("this module")];
        let reasons = quoted_after(src, "reason = '");
        let types = quoted_after(src, "type = '");
        let thens = quoted_after(src, "THEN '");
        assert!(!reasons.is_empty() && !types.is_empty() && !thens.is_empty());
        for word in reasons {
            assert!(word.parse::<DeadReason>().is_ok(), "reason '{word}'");
        }
        for word in types {
            assert!(word.parse::<DeliveryType>().is_ok(), "type '{word}'");
        }
        for word in thens {
            let known = word.parse::<DeadReason>().is_ok()
                || word.parse::<DeliveryState>().is_ok()
                || word.parse::<ChannelState>().is_ok()
                || word == "deleted";
            assert!(known, "THEN '{word}'");
        }
    }
}
