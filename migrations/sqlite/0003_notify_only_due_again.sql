-- PostgreSQL only (its NOTIFY triggers); SQLite has no triggers to change. This file keeps
-- the two backends on the same version numbers.
SELECT 1;
