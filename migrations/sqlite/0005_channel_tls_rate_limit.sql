-- Per-channel send rate limits and TLS settings (issue 16).
-- rate_limit: 'N/s' or 'N/m', NULL for none. ca_pem and client_cert_pem: PEM text as the
-- operator gave it (not paths: several machines may share this database). client_key: the
-- client certificate's private key, stored like the signing secret (sealed under
-- secret_key when one is set) and erased when the channel is deleted.
ALTER TABLE certhook_channels ADD COLUMN rate_limit TEXT;
ALTER TABLE certhook_channels ADD COLUMN ca_pem TEXT;
ALTER TABLE certhook_channels ADD COLUMN client_cert_pem TEXT;
ALTER TABLE certhook_channels ADD COLUMN client_key TEXT;
-- Slack allows about one message per second per incoming webhook: existing Slack channels
-- get the default new ones get.
UPDATE certhook_channels SET rate_limit = '1/s' WHERE kind = 'slack' AND deleted_at IS NULL;
