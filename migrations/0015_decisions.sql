-- consentd schema, migration 15: the decision row.
-- What a check needs about the owner of one identifier (its state,
-- objection and pause, every suppression entry that binds it, the purposes
-- with open merge conflicts, and every current consent row) is kept as one
-- row keyed by the identifier's blind index, so a check is one probe.
-- The blind index leads the key: the triggers delete a subject's rows by
-- blind IN (…), one seek each (a blind index shared by two types would
-- only lose a row to a rebuild, never keep a stale one).
-- body is written by the store (src/store/decisions.c) and read only by it.
--
-- The triggers name their conflict handling nowhere (an OR clause of the
-- statement that fires them would override it): a subject already noted
-- is skipped by NOT EXISTS, so the store may write with OR FAIL, which
-- needs no statement journal.
--
-- Exactness does not rest on every writer remembering to update it: the
-- triggers below delete a subject's rows in the same transaction as any
-- change to a fact they were built from, whoever makes it (server, CLI,
-- dbtool, plain SQL), and note the subject in decisions_stale (identifiers
-- are the one table the store keeps in step itself; see below). A check
-- that finds no row reads the facts themselves, as before this migration.
-- The store rebuilds the rows of noted subjects just before its own
-- commits. Existing stores: every subject with an identifier is noted
-- here and rebuilt by the upgrade step that runs before serving.
CREATE TABLE decisions (
    type        TEXT    NOT NULL,
    blind       BLOB    NOT NULL,
    subject_id  TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    PRIMARY KEY (blind, type)
) WITHOUT ROWID;
CREATE TABLE decisions_stale (
    subject_id  TEXT    PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO decisions_stale (subject_id) SELECT DISTINCT subject_id FROM identifiers;

-- The subject's state (restricted, erased).
CREATE TRIGGER decisions_subject_state AFTER UPDATE OF state ON subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.id);
END;

-- Objection and pause.
CREATE TRIGGER decisions_prefs_insert AFTER INSERT ON preferences
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_prefs_update AFTER UPDATE ON preferences
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_prefs_delete AFTER DELETE ON preferences
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
END;

-- The current consent state.
CREATE TRIGGER decisions_current_insert AFTER INSERT ON consent_current
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_current_update AFTER UPDATE ON consent_current
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_current_delete AFTER DELETE ON consent_current
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
END;

-- Open merge conflicts.
CREATE TRIGGER decisions_conflict_insert AFTER INSERT ON merge_conflicts
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_conflict_update AFTER UPDATE ON merge_conflicts
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_conflict_delete AFTER DELETE ON merge_conflicts
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
END;

-- Who holds an identifier, and so which entries bind whom, has no
-- trigger: on this SQLite any trigger on identifiers (whose subject_id is a
-- foreign key) makes each insert keep a statement journal, which SQLCipher
-- encrypts, and that doubled the cost of a new person. The store's own
-- identifier writes (src/store/subjects.c, the only ones: an identifier is
-- a keyed blind index and a value sealed under the subject's key, which no
-- other writer can make) drop the rows and note the subjects themselves.

-- Entries kept bound to a subject after their identifier was unlinked.
CREATE TRIGGER decisions_bound_insert AFTER INSERT ON suppression_subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = NEW.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_bound_update AFTER UPDATE ON suppression_subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN (OLD.subject_id, NEW.subject_id));
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT NEW.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = NEW.subject_id);
END;
CREATE TRIGGER decisions_bound_delete AFTER DELETE ON suppression_subjects
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id = OLD.subject_id);
    INSERT INTO decisions_stale (subject_id) SELECT OLD.subject_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale WHERE subject_id = OLD.subject_id);
END;

-- The suppression list: every subject that holds the entry's identifier
-- or is bound to it.
CREATE TRIGGER decisions_supp_insert AFTER INSERT ON suppressions
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN
            (SELECT subject_id FROM identifiers WHERE type = NEW.type AND blind = NEW.blind
             UNION SELECT subject_id FROM suppression_subjects
                   WHERE type = NEW.type AND blind = NEW.blind));
    INSERT INTO decisions_stale (subject_id) SELECT b.subject_id FROM
        (SELECT subject_id FROM identifiers WHERE type = NEW.type AND blind = NEW.blind
         UNION SELECT subject_id FROM suppression_subjects
               WHERE type = NEW.type AND blind = NEW.blind) b
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale s WHERE s.subject_id = b.subject_id);
END;
CREATE TRIGGER decisions_supp_update AFTER UPDATE ON suppressions
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN
            (SELECT subject_id FROM identifiers WHERE type IN (OLD.type, NEW.type)
                 AND blind IN (OLD.blind, NEW.blind)
             UNION SELECT subject_id FROM suppression_subjects
                   WHERE type IN (OLD.type, NEW.type) AND blind IN (OLD.blind, NEW.blind)));
    INSERT INTO decisions_stale (subject_id) SELECT b.subject_id FROM
        (SELECT subject_id FROM identifiers WHERE type IN (OLD.type, NEW.type)
             AND blind IN (OLD.blind, NEW.blind)
         UNION SELECT subject_id FROM suppression_subjects
               WHERE type IN (OLD.type, NEW.type) AND blind IN (OLD.blind, NEW.blind)) b
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale s WHERE s.subject_id = b.subject_id);
END;
CREATE TRIGGER decisions_supp_delete AFTER DELETE ON suppressions
BEGIN
    DELETE FROM decisions WHERE blind IN
        (SELECT blind FROM identifiers WHERE subject_id IN
            (SELECT subject_id FROM identifiers WHERE type = OLD.type AND blind = OLD.blind
             UNION SELECT subject_id FROM suppression_subjects
                   WHERE type = OLD.type AND blind = OLD.blind));
    INSERT INTO decisions_stale (subject_id) SELECT b.subject_id FROM
        (SELECT subject_id FROM identifiers WHERE type = OLD.type AND blind = OLD.blind
         UNION SELECT subject_id FROM suppression_subjects
               WHERE type = OLD.type AND blind = OLD.blind) b
        WHERE NOT EXISTS (SELECT 1 FROM decisions_stale s WHERE s.subject_id = b.subject_id);
END;
