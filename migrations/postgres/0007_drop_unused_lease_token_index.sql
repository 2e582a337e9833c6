-- No statement looks a delivery up by its lease token (outcome writes find the row by id
-- and then compare the token), so the index only cost writes: every update of a
-- delivery that is not HOT writes all of its indexes. No version of certhook reads it,
-- so older processes run without it.
DROP INDEX IF EXISTS certhook_deliveries_token;
