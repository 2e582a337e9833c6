-- Foreign keys that certhook's own writes already keep, checked once per row on the hot
-- path: each is a trigger running a keyed lookup and a row lock on the referenced row, for
-- every delivery fanned out (its message and its channel) and every certificate fanned
-- out (its application). The rows they point at are written in the same statement or
-- transaction or earlier, and are never deleted while referenced: channels and
-- applications are only soft-deleted, and messages are pruned only once no delivery
-- refers to them. Two keys stay: the outbox's to its application (plain-SQL producers
-- need an unknown application refused) and the attempts' to their delivery, whose
-- cascade older versions' prune relies on while they run beside this one.
--
-- Dropping a key locks its table and the one it points at; a process still fanning out
-- holds the latter. Rather than queue every claim behind a long wait (or deadlock with
-- that process), give up after a few seconds: the command that migrates fails and is run
-- again.
SET LOCAL lock_timeout = '5s';
ALTER TABLE certhook_deliveries DROP CONSTRAINT IF EXISTS certhook_deliveries_message_id_fkey;
ALTER TABLE certhook_deliveries DROP CONSTRAINT IF EXISTS certhook_deliveries_channel_id_fkey;
ALTER TABLE certhook_certificates DROP CONSTRAINT IF EXISTS certhook_certificates_application_id_fkey;
