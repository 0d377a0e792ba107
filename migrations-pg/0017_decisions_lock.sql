-- consentd schema for PostgreSQL, migration 17: a change to a fact of a
-- decision row takes the writers' lock (the advisory lock every consentd
-- write transaction holds to its commit; store_int.h, STORE_PG_WRITE_LOCK)
-- before it drops the rows and notes the subject. consentd's writers hold
-- it already; a writer that is not consentd (plain SQL, an operator's
-- tool) now waits for consentd's transaction to commit, so that
-- transaction cannot rebuild a row from the state before the change and
-- commit it after the change dropped the rows: the change's drop, made
-- once it has the lock, sees that row and removes it.
CREATE OR REPLACE FUNCTION decisions_forget(subject text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7365726);
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = subject);
    INSERT INTO decisions_stale (subject_id) VALUES (subject);
END;
$$;
