-- certhook schema, SQLite. Times are INTEGER unix milliseconds (UTC); ids are UUID text.
-- Every table is prefixed certhook_ so the schema can live inside a PKI's own database.

CREATE TABLE certhook_applications (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE certhook_alerts (
    id              TEXT PRIMARY KEY NOT NULL,
    application_id  TEXT NOT NULL REFERENCES certhook_applications (id),
    type            TEXT NOT NULL CHECK (type IN ('expiration', 'issuance', 'renewal', 'revocation')),
    name            TEXT NOT NULL,
    description     TEXT,
    alert_before    TEXT,
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER
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
    previous_secret_expires_at  INTEGER,
    routing_key                 TEXT,
    verification_token          TEXT,
    verification_expires_at     INTEGER,
    last_success_at             INTEGER,
    failing_since               INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    deleted_at                  INTEGER
);
CREATE INDEX certhook_channels_alert ON certhook_channels (alert_id) WHERE deleted_at IS NULL;

-- The outbox. A stable interface: a PKI may INSERT here in its own transaction, giving
-- application_id, type and certificate (JSON, as in the HTTP API) and optionally id and
-- idempotency_key; everything else has a default. certhook fans new rows out.
CREATE TABLE certhook_events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE DEFAULT (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
        substr(lower(hex(randomblob(2))), 2) || '-' ||
        substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
        lower(hex(randomblob(6)))),
    application_id   TEXT NOT NULL REFERENCES certhook_applications (id),
    type             TEXT NOT NULL,
    idempotency_key  TEXT,
    certificate      TEXT,
    certificates     TEXT,
    alert_id         TEXT,
    occurred_at      INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    created_at       INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    fanned_out_at    INTEGER,
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
    body        BLOB NOT NULL,
    created_at  INTEGER NOT NULL
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
    attempt_count     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    lease_token       TEXT,
    lease_expires_at  INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    reason            TEXT,
    enqueued_at       INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    delivered_at      INTEGER,
    dead_at           INTEGER,
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
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id       TEXT NOT NULL REFERENCES certhook_deliveries (id) ON DELETE CASCADE,
    number            INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL,
    status_code       INTEGER,
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
    not_before         INTEGER NOT NULL,
    not_after          INTEGER NOT NULL,
    revoked_at         INTEGER,
    revocation_reason  TEXT,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (application_id, id)
);
CREATE INDEX certhook_certificates_expiry ON certhook_certificates (application_id, not_after)
    WHERE revoked_at IS NULL;

-- What the scanner has reported: each (alert, certificate, notAfter) once.
CREATE TABLE certhook_expiration_reports (
    alert_id        TEXT NOT NULL,
    certificate_id  TEXT NOT NULL,
    not_after       INTEGER NOT NULL,
    event_id        TEXT NOT NULL,
    reported_at     INTEGER NOT NULL,
    PRIMARY KEY (alert_id, certificate_id, not_after)
);
