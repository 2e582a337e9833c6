-- PostgreSQL only (its migration 0008 drops the foreign keys that certhook's own writes
-- keep, checked per row on the hot path). On SQLite they cost nothing measurable, and
-- dropping one means rebuilding the table, so they stay. The version number is kept in
-- step with PostgreSQL's.
SELECT 1;
