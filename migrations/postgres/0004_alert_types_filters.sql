-- Alerts subscribe to one or more event types and may filter the certificates they are
-- about; applications can be deleted; the events list pages by newest first.
--
-- types: the alert's event types, comma-separated ('issuance,renewal'); `type` keeps the
-- first of them. profiles, name_patterns: JSON arrays of strings, NULL when not set.
ALTER TABLE certhook_alerts ADD COLUMN types TEXT NOT NULL DEFAULT '';
UPDATE certhook_alerts SET types = type;
ALTER TABLE certhook_alerts ADD COLUMN profiles TEXT;
ALTER TABLE certhook_alerts ADD COLUMN name_patterns TEXT;
ALTER TABLE certhook_applications ADD COLUMN deleted_at BIGINT;
CREATE INDEX certhook_events_app ON certhook_events (application_id, seq);
CREATE INDEX certhook_events_refused ON certhook_events (seq) WHERE error IS NOT NULL;
