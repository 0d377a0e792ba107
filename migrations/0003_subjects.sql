-- consentd schema, migration 3: the unified customer record.
-- A subject is one person. Its data key is stored only wrapped by the
-- key-encryption key (AD = subject id); destroying it (wrapped_key NULL)
-- makes every value sealed under it unreadable, in every copy.
CREATE TABLE subjects (
    id           TEXT    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'sub_'),
    state        TEXT    NOT NULL CHECK (state IN ('active', 'restricted', 'erased')),
    wrapped_key  BLOB    CHECK (wrapped_key IS NULL OR length(wrapped_key) = 72),
    merged_into  TEXT    REFERENCES subjects (id),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
-- Identifiers are found only by their blind index (keyed BLAKE2b of the
-- normalised value); the value itself is sealed under the subject's key.
CREATE TABLE identifiers (
    type         TEXT    NOT NULL,
    blind        BLOB    NOT NULL CHECK (length(blind) = 32),
    subject_id   TEXT    NOT NULL REFERENCES subjects (id),
    sealed       BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    verified     INTEGER NOT NULL CHECK (verified IN (0, 1)),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (type, blind)
) WITHOUT ROWID;
CREATE INDEX identifiers_subject ON identifiers (subject_id);
-- Profile attributes: the name is schema, the value is sealed.
CREATE TABLE profile_attributes (
    subject_id   TEXT    NOT NULL REFERENCES subjects (id),
    name         TEXT    NOT NULL,
    sealed       BLOB    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (subject_id, name)
) WITHOUT ROWID;
