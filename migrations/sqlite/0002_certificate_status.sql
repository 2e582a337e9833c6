-- The inventory's status as last judged: 'active', 'revoked', or 'expired' (set by the
-- expiration scan). Events still derive status at their own time; this column is for
-- people and queries reading the inventory.
ALTER TABLE certhook_certificates ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
