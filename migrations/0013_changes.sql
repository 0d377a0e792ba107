-- consentd schema, migration 13: the change feed (GET /v1/changes).
-- One row per consent, preference or suppression change, per restriction
-- or objection (both change what the check answers) and per erasure,
-- written in the same transaction as the change. seq is the feed's
-- position: the store has one writer at a time, so seq grows in commit
-- order and a reader's snapshot always holds every row up to its largest
-- seq. AUTOINCREMENT because erasure deletes rows: a seq is never given
-- twice, so a sender's cursor can never point past a later change.
-- body is the change's non-personal details as canonical JSON; the
-- identifier a suppression names is kept only as its type and blind index.
-- Erasing a subject deletes its rows (and those of subjects merged into
-- it); the erasure itself stays, naming only the subject id.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL
                CHECK (kind IN ('consent', 'preferences', 'suppression', 'restriction',
                                'objection', 'erasure')),
    at          INTEGER NOT NULL,
    subject_id  TEXT,
    type        TEXT,
    blind       BLOB    CHECK (blind IS NULL OR length(blind) = 32),
    body        TEXT    NOT NULL
);
CREATE INDEX changes_subject ON changes (subject_id);
