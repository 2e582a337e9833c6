-- No statement looks a delivery up by its lease token (outcome writes find the row by id
-- and then compare the token), so the index only cost every claim and every outcome an
-- index write: on PostgreSQL, whose updates of an indexed row write all of its indexes,
-- one more per claim.
DROP INDEX IF EXISTS certhook_deliveries_token;
