-- consentd schema, migration 10: the shopper's preference-centre links and
-- sessions (SPEC §7 "Shopper", §10).
-- A link is a MAC over (kind, subject, expiry, generation) and is stored
-- nowhere; raising a subject's generation revokes every link made before.
CREATE TABLE link_generations (
    subject_id    TEXT    PRIMARY KEY REFERENCES subjects (id),
    generation    INTEGER NOT NULL CHECK (generation >= 0),
    revoked_at    INTEGER NOT NULL
) WITHOUT ROWID;
-- A session holds only the keyed hash of its random id (the cookie), the
-- subject it acts for, its kind and when it ends. Ending a session deletes
-- its row; expired rows are deleted when the next session starts.
CREATE TABLE sessions (
    hash          BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    kind          TEXT    NOT NULL CHECK (kind IN ('shopper')),
    subject_id    TEXT    NOT NULL REFERENCES subjects (id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_subject ON sessions (subject_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
