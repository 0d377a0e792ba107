-- consentd schema for PostgreSQL, migration 15: one decision row per
-- identifier, keyed by its blind index, with what a check needs about its
-- subject; triggers drop a subject's rows and note it in the same
-- transaction as any change to one of its facts, and the store rebuilds
-- the noted subjects' rows before it commits (see
-- migrations/0015_decisions.sql and src/store/decisions.c). The triggers
-- fire on the same tables and events as SQLite's and have their names;
-- what they do is written once, in decisions_forget().
CREATE TABLE decisions (
    type        text    NOT NULL,
    blind       bytea   NOT NULL,
    subject_id  text    NOT NULL,
    body        bytea   NOT NULL,
    PRIMARY KEY (blind, type)
);
CREATE TABLE decisions_stale (
    subject_id  text    PRIMARY KEY
);
INSERT INTO decisions_stale (subject_id) SELECT DISTINCT subject_id FROM identifiers;

-- Drops the decision rows of the identifiers SUBJECT holds and notes it.
CREATE FUNCTION decisions_forget(subject text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = subject);
    INSERT INTO decisions_stale (subject_id) SELECT subject
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = subject);
END;
$$;

-- For a table with a subject_id column: the old row's subject and the
-- new one's.
CREATE FUNCTION decisions_subject_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM decisions_forget(NEW.subject_id);
    ELSE
        PERFORM decisions_forget(OLD.subject_id);
        IF TG_OP = 'UPDATE' AND NEW.subject_id IS DISTINCT FROM OLD.subject_id THEN
            PERFORM decisions_forget(NEW.subject_id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION decisions_subject_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM decisions_forget(NEW.id);
    RETURN NULL;
END;
$$;

-- A suppression entry: every subject holding the identifier or bound to
-- the entry, old or new (the row a trigger does not have is NULL, and
-- matches nothing).
CREATE FUNCTION decisions_suppression() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT subject_id FROM identifiers
                 WHERE type IN (OLD.type, NEW.type) AND blind IN (OLD.blind, NEW.blind)
             UNION SELECT subject_id FROM suppression_subjects
                 WHERE type IN (OLD.type, NEW.type) AND blind IN (OLD.blind, NEW.blind)
    LOOP
        PERFORM decisions_forget(s);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE TRIGGER decisions_subject_state AFTER UPDATE OF state ON subjects
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_state();
CREATE TRIGGER decisions_prefs_insert AFTER INSERT ON preferences
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_prefs_update AFTER UPDATE ON preferences
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_prefs_delete AFTER DELETE ON preferences
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_current_insert AFTER INSERT ON consent_current
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_current_update AFTER UPDATE ON consent_current
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_current_delete AFTER DELETE ON consent_current
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_conflict_insert AFTER INSERT ON merge_conflicts
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_conflict_update AFTER UPDATE ON merge_conflicts
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_conflict_delete AFTER DELETE ON merge_conflicts
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_bound_insert AFTER INSERT ON suppression_subjects
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_bound_update AFTER UPDATE ON suppression_subjects
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_bound_delete AFTER DELETE ON suppression_subjects
    FOR EACH ROW EXECUTE FUNCTION decisions_subject_row();
CREATE TRIGGER decisions_supp_insert AFTER INSERT ON suppressions
    FOR EACH ROW EXECUTE FUNCTION decisions_suppression();
CREATE TRIGGER decisions_supp_update AFTER UPDATE ON suppressions
    FOR EACH ROW EXECUTE FUNCTION decisions_suppression();
CREATE TRIGGER decisions_supp_delete AFTER DELETE ON suppressions
    FOR EACH ROW EXECUTE FUNCTION decisions_suppression();
