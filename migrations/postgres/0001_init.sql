-- certhook schema, PostgreSQL. Times are BIGINT unix milliseconds (UTC); ids are UUID text.
-- Every table is prefixed certhook_ so the schema can live inside a PKI's own database.

-- The database's clock, in the unit every time column uses. Leases and schedules are
-- judged by it, so workers on machines with drifting clocks agree.
CREATE FUNCTION certhook_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
$$;

CREATE TABLE certhook_applications (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE certhook_alerts (
    id              TEXT PRIMARY KEY NOT NULL,
    application_id  TEXT NOT NULL REFERENCES certhook_applications (id),
    type            TEXT NOT NULL CHECK (type IN ('expiration', 'issuance', 'renewal', 'revocation')),
    name            TEXT NOT NULL,
    description     TEXT,
    alert_before    TEXT,
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);
CREATE UNIQUE INDEX certhook_alerts_name ON certhook_alerts (application_id, name) WHERE deleted_at IS NULL;
CREATE INDEX certhook_alerts_app_type ON certhook_alerts (application_id, type) WHERE deleted_at IS NULL;

CREATE TABLE certhook_channels (
    id                          TEXT PRIMARY KEY NOT NULL,
    alert_id                    TEXT NOT NULL REFERENCES certhook_alerts (id),
    kind                        TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'pagerduty')),
    url                         TEXT,
    state                       TEXT NOT NULL
        CHECK (state IN ('pending_verification', 'active', 'paused', 'disabled')),
    content_type                TEXT,
    secret                      TEXT,
    previous_secret             TEXT,
    previous_secret_expires_at  BIGINT,
    routing_key                 TEXT,
    verification_token          TEXT,
    verification_expires_at     BIGINT,
    last_success_at             BIGINT,
    failing_since               BIGINT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    deleted_at                  BIGINT
);
CREATE INDEX certhook_channels_alert ON certhook_channels (alert_id) WHERE deleted_at IS NULL;

-- The outbox. A stable interface: a PKI may INSERT here in its own transaction, giving
-- application_id, type and certificate (JSON, as in the HTTP API) and optionally id and
-- idempotency_key; everything else has a default. certhook fans new rows out.
CREATE TABLE certhook_events (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE DEFAULT (gen_random_uuid()::text),
    application_id   TEXT NOT NULL REFERENCES certhook_applications (id),
    type             TEXT NOT NULL,
    idempotency_key  TEXT,
    certificate      TEXT,
    certificates     TEXT,
    alert_id         TEXT,
    occurred_at      BIGINT NOT NULL DEFAULT (certhook_now_ms()),
    created_at       BIGINT NOT NULL DEFAULT (certhook_now_ms()),
    fanned_out_at    BIGINT,
    error            TEXT
);
CREATE UNIQUE INDEX certhook_events_idempotency ON certhook_events (application_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX certhook_events_unfanned ON certhook_events (seq) WHERE fanned_out_at IS NULL;

-- One rendered CloudEvent per (event, alert), or per verification: the body every
-- delivery of it sends, byte for byte, on every attempt and replay.
CREATE TABLE certhook_messages (
    id          TEXT PRIMARY KEY NOT NULL,
    event_id    TEXT,
    alert_id    TEXT,
    type        TEXT NOT NULL,
    body        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX certhook_messages_event ON certhook_messages (event_id);

CREATE TABLE certhook_deliveries (
    id                TEXT PRIMARY KEY NOT NULL,
    message_id        TEXT NOT NULL REFERENCES certhook_messages (id),
    event_id          TEXT,
    channel_id        TEXT NOT NULL REFERENCES certhook_channels (id),
    type              TEXT NOT NULL,
    state             TEXT NOT NULL
        CHECK (state IN ('pending', 'leased', 'retrying', 'held', 'delivered', 'dead')),
    attempt_count     BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    lease_token       TEXT,
    lease_expires_at  BIGINT,
    last_status_code  BIGINT,
    last_error        TEXT,
    reason            TEXT,
    enqueued_at       BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    delivered_at      BIGINT,
    dead_at           BIGINT,
    UNIQUE (message_id, channel_id)
);
-- Claims walk these partial indexes only, so a claim stays O(log n) however many rows wait.
CREATE INDEX certhook_deliveries_due ON certhook_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX certhook_deliveries_leased ON certhook_deliveries (lease_expires_at) WHERE state = 'leased';
CREATE INDEX certhook_deliveries_token ON certhook_deliveries (lease_token) WHERE state = 'leased';
CREATE INDEX certhook_deliveries_channel ON certhook_deliveries (channel_id, state);
CREATE INDEX certhook_deliveries_dead ON certhook_deliveries (dead_at) WHERE state = 'dead';
CREATE INDEX certhook_deliveries_delivered ON certhook_deliveries (delivered_at) WHERE state = 'delivered';
CREATE INDEX certhook_deliveries_state ON certhook_deliveries (state, created_at);

CREATE TABLE certhook_attempts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       TEXT NOT NULL REFERENCES certhook_deliveries (id) ON DELETE CASCADE,
    number            BIGINT NOT NULL,
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    status_code       BIGINT,
    error             TEXT,
    response_snippet  TEXT
);
CREATE INDEX certhook_attempts_delivery ON certhook_attempts (delivery_id);

-- The inventory the expiration scanner reads: the certificate each PKI id currently names.
CREATE TABLE certhook_certificates (
    application_id     TEXT NOT NULL REFERENCES certhook_applications (id),
    id                 TEXT NOT NULL,
    serial_number      TEXT NOT NULL,
    common_name        TEXT NOT NULL,
    san                TEXT NOT NULL,
    profile_name       TEXT,
    not_before         BIGINT NOT NULL,
    not_after          BIGINT NOT NULL,
    revoked_at         BIGINT,
    revocation_reason  TEXT,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (application_id, id)
);
CREATE INDEX certhook_certificates_expiry ON certhook_certificates (application_id, not_after)
    WHERE revoked_at IS NULL;

-- What the scanner has reported: each (alert, certificate, notAfter) once.
CREATE TABLE certhook_expiration_reports (
    alert_id        TEXT NOT NULL,
    certificate_id  TEXT NOT NULL,
    not_after       BIGINT NOT NULL,
    event_id        TEXT NOT NULL,
    reported_at     BIGINT NOT NULL,
    PRIMARY KEY (alert_id, certificate_id, not_after)
);

-- New work wakes every listening worker at once (plain-SQL inserts included); polling
-- at poll_interval stays as the fallback.
CREATE FUNCTION certhook_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('certhook_work', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER certhook_events_notify AFTER INSERT ON certhook_events
    FOR EACH STATEMENT EXECUTE FUNCTION certhook_notify_work();
CREATE TRIGGER certhook_deliveries_notify AFTER INSERT OR UPDATE OF state ON certhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION certhook_notify_work();
