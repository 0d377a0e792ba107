-- consentd schema, migration 16: the subjects whose decision rows are to
-- be rebuilt are noted in the order they arrive, not by subject id.
-- Each note was an insert after a NOT EXISTS probe, keyed by subject id;
-- now it is a plain append to a rowid table, and a subject noted twice is
-- rebuilt once: the store deletes the notes it has handled by seq
-- (src/store/decisions.c). The table is emptied by every commit of the
-- store's own, so this changes little for a write; a long list of notes
-- (an upgrade, another writer's changes) is now read and cleared in order.
--
-- The triggers are those of migration 15 but for the note itself, which
-- can no longer conflict with anything (an OR clause of the statement that
-- fires a trigger still has nothing to override). An update notes the
-- new subject as well only when it differs from the old.

DROP TRIGGER decisions_subject_state;
DROP TRIGGER decisions_prefs_insert;
DROP TRIGGER decisions_prefs_update;
DROP TRIGGER decisions_prefs_delete;
DROP TRIGGER decisions_current_insert;
DROP TRIGGER decisions_current_update;
DROP TRIGGER decisions_current_delete;
DROP TRIGGER decisions_conflict_insert;
DROP TRIGGER decisions_conflict_update;
DROP TRIGGER decisions_conflict_delete;
DROP TRIGGER decisions_bound_insert;
DROP TRIGGER decisions_bound_update;
DROP TRIGGER decisions_bound_delete;
DROP TRIGGER decisions_supp_insert;
DROP TRIGGER decisions_supp_update;
DROP TRIGGER decisions_supp_delete;
ALTER TABLE decisions_stale RENAME TO decisions_stale_v15;
CREATE TABLE decisions_stale (
    seq         INTEGER PRIMARY KEY,
    subject_id  TEXT    NOT NULL
);
INSERT INTO decisions_stale (subject_id) SELECT subject_id FROM decisions_stale_v15;
DROP TABLE decisions_stale_v15;

CREATE TRIGGER decisions_subject_state AFTER UPDATE OF state ON subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.id);
    INSERT INTO decisions_stale (subject_id) VALUES (NEW.id);
END;
CREATE TRIGGER decisions_prefs_insert AFTER INSERT ON preferences
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (NEW.subject_id);
END;
CREATE TRIGGER decisions_prefs_update AFTER UPDATE ON preferences
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NEW.subject_id IS NOT OLD.subject_id;
END;
CREATE TRIGGER decisions_prefs_delete AFTER DELETE ON preferences
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
END;
CREATE TRIGGER decisions_current_insert AFTER INSERT ON consent_current
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (NEW.subject_id);
END;
CREATE TRIGGER decisions_current_update AFTER UPDATE ON consent_current
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NEW.subject_id IS NOT OLD.subject_id;
END;
CREATE TRIGGER decisions_current_delete AFTER DELETE ON consent_current
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
END;
CREATE TRIGGER decisions_conflict_insert AFTER INSERT ON merge_conflicts
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (NEW.subject_id);
END;
CREATE TRIGGER decisions_conflict_update AFTER UPDATE ON merge_conflicts
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NEW.subject_id IS NOT OLD.subject_id;
END;
CREATE TRIGGER decisions_conflict_delete AFTER DELETE ON merge_conflicts
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
END;
CREATE TRIGGER decisions_bound_insert AFTER INSERT ON suppression_subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (NEW.subject_id);
END;
CREATE TRIGGER decisions_bound_update AFTER UPDATE ON suppression_subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NEW.subject_id IS NOT OLD.subject_id;
END;
CREATE TRIGGER decisions_bound_delete AFTER DELETE ON suppression_subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) VALUES (OLD.subject_id);
END;
CREATE TRIGGER decisions_supp_insert AFTER INSERT ON suppressions
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN
            (SELECT subject_id FROM identifiers WHERE type = NEW.type AND blind = NEW.blind
             UNION SELECT subject_id FROM suppression_subjects
                   WHERE type = NEW.type AND blind = NEW.blind));
    INSERT INTO decisions_stale (subject_id)
        SELECT subject_id FROM identifiers WHERE type = NEW.type AND blind = NEW.blind
         UNION SELECT subject_id FROM suppression_subjects
               WHERE type = NEW.type AND blind = NEW.blind;
END;
CREATE TRIGGER decisions_supp_update AFTER UPDATE ON suppressions
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN
            (SELECT subject_id FROM identifiers WHERE type IN (OLD.type, NEW.type)
                 AND blind IN (OLD.blind, NEW.blind)
             UNION SELECT subject_id FROM suppression_subjects
                   WHERE type IN (OLD.type, NEW.type) AND blind IN (OLD.blind, NEW.blind)));
    INSERT INTO decisions_stale (subject_id)
        SELECT subject_id FROM identifiers WHERE type IN (OLD.type, NEW.type)
             AND blind IN (OLD.blind, NEW.blind)
         UNION SELECT subject_id FROM suppression_subjects
               WHERE type IN (OLD.type, NEW.type) AND blind IN (OLD.blind, NEW.blind);
END;
CREATE TRIGGER decisions_supp_delete AFTER DELETE ON suppressions
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN
            (SELECT subject_id FROM identifiers WHERE type = OLD.type AND blind = OLD.blind
             UNION SELECT subject_id FROM suppression_subjects
                   WHERE type = OLD.type AND blind = OLD.blind));
    INSERT INTO decisions_stale (subject_id)
        SELECT subject_id FROM identifiers WHERE type = OLD.type AND blind = OLD.blind
         UNION SELECT subject_id FROM suppression_subjects
               WHERE type = OLD.type AND blind = OLD.blind;
END;
