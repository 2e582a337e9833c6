-- Every claim and every outcome write changed `state`, so the statement-level trigger sent
-- a NOTIFY on each of the worker's own hot transactions: each such commit takes
-- PostgreSQL's cluster-wide notify lock, and every listening worker woke for nothing.
-- Now new deliveries wake workers (per statement, as before), and an update wakes them
-- only when it makes a delivery waiting again (retry, release, replay, resume).
DROP TRIGGER certhook_deliveries_notify ON certhook_deliveries;
CREATE TRIGGER certhook_deliveries_notify AFTER INSERT ON certhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION certhook_notify_work();
CREATE TRIGGER certhook_deliveries_waiting_again AFTER UPDATE OF state ON certhook_deliveries
    FOR EACH ROW WHEN (NEW.state IN ('pending', 'retrying') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION certhook_notify_work();
