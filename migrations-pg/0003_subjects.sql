-- consentd schema for PostgreSQL, migration 3: subjects, their identifiers
-- (keyed blind indexes, the values sealed under the subject's key) and
-- profile attributes (sealed).
CREATE TABLE subjects (
    id           text    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'sub_'),
    state        text    NOT NULL CHECK (state IN ('active', 'restricted', 'erased')),
    wrapped_key  bytea   CHECK (wrapped_key IS NULL OR octet_length(wrapped_key) = 72),
    merged_into  text    REFERENCES subjects (id),
    created_at   bigint  NOT NULL,
    updated_at   bigint  NOT NULL
);
CREATE TABLE identifiers (
    type         text    NOT NULL,
    blind        bytea   NOT NULL CHECK (octet_length(blind) = 32),
    subject_id   text    NOT NULL REFERENCES subjects (id),
    sealed       bytea   NOT NULL,
    source       text    NOT NULL,
    verified     bigint  NOT NULL CHECK (verified IN (0, 1)),
    created_at   bigint  NOT NULL,
    PRIMARY KEY (type, blind)
);
CREATE INDEX identifiers_subject ON identifiers (subject_id);
CREATE TABLE profile_attributes (
    subject_id   text    NOT NULL REFERENCES subjects (id),
    name         text    NOT NULL,
    sealed       bytea   NOT NULL,
    updated_at   bigint  NOT NULL,
    PRIMARY KEY (subject_id, name)
);
