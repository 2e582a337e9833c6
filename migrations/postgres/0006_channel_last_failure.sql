-- When a request to a channel last failed (the console shows it beside the last success;
-- failing_since clears on the next success, this does not).
ALTER TABLE certhook_channels ADD COLUMN last_failure_at BIGINT;
