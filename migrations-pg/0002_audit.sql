-- consentd schema for PostgreSQL, migration 2: the audit log (see
-- migrations/0002_audit.sql for what each table holds).
CREATE TABLE audit_entries (
    idx        bigint  PRIMARY KEY CHECK (idx >= 0),
    entry      bytea   NOT NULL CHECK (octet_length(entry) BETWEEN 2 AND 65536),
    leaf_hash  bytea   NOT NULL CHECK (octet_length(leaf_hash) = 32)
);
CREATE TABLE audit_hashes (
    level      bigint  NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx        bigint  NOT NULL CHECK (idx >= 0),
    hash       bytea   NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);
CREATE TABLE audit_checkpoints (
    size       bigint  PRIMARY KEY CHECK (size >= 0),
    root       bytea   NOT NULL CHECK (octet_length(root) = 32),
    note       text    NOT NULL,
    signed_at  bigint  NOT NULL
);
CREATE TABLE audit_pseudonyms (
    subject_id text PRIMARY KEY,
    pseudonym  text NOT NULL UNIQUE
);
CREATE TABLE audit_openings (
    idx        bigint  PRIMARY KEY REFERENCES audit_entries (idx),
    subject_id text    NOT NULL,
    sealed     bytea   NOT NULL
);
CREATE INDEX audit_openings_subject ON audit_openings (subject_id);
CREATE TABLE meta (
    key        text PRIMARY KEY,
    value      text NOT NULL
);
