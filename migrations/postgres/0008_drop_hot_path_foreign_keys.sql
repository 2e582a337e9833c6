-- Foreign keys that certhook's own writes already keep, checked once per row on the hot
-- path: each is a trigger running a keyed lookup and a row lock on the referenced row, for
-- every delivery fanned out (its message and its channel), every certificate fanned out
-- (its application) and every attempt recorded (its delivery). The rows they point at
-- are written in the same statement or transaction or earlier, and are never deleted
-- while referenced: channels and applications are only soft-deleted, messages are
-- pruned only once no delivery refers to them, and deliveries are deleted (prune, purge)
-- together with their attempts by the statements that delete them. The outbox's key to
-- its application stays: plain-SQL producers write there, and an unknown application
-- must fail their INSERT.
ALTER TABLE certhook_deliveries DROP CONSTRAINT IF EXISTS certhook_deliveries_message_id_fkey;
ALTER TABLE certhook_deliveries DROP CONSTRAINT IF EXISTS certhook_deliveries_channel_id_fkey;
ALTER TABLE certhook_attempts DROP CONSTRAINT IF EXISTS certhook_attempts_delivery_id_fkey;
ALTER TABLE certhook_certificates DROP CONSTRAINT IF EXISTS certhook_certificates_application_id_fkey;
