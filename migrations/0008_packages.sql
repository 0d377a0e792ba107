-- consentd schema, migration 8: access and portability packages (SPEC §8).
-- A package is a file under the data directory (packages/ID), sealed with
-- a key of its own; the key is kept here wrapped under the key-encryption
-- key with the package id as associated data. Deleting the row destroys
-- the key, so the file cannot be read even before it is removed. A
-- portability request has two packages: the JSON document and its CSV.
CREATE TABLE dsr_packages (
    id            TEXT    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'pkg_'),
    request_id    TEXT    NOT NULL REFERENCES dsr_requests (id),
    subject_id    TEXT    NOT NULL REFERENCES subjects (id),
    format        TEXT    NOT NULL CHECK (format IN ('json', 'csv')),
    wrapped_key   BLOB    NOT NULL CHECK (length(wrapped_key) = 72),
    size          INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    UNIQUE (request_id, format)
) WITHOUT ROWID;
CREATE INDEX dsr_packages_subject ON dsr_packages (subject_id);
CREATE INDEX dsr_packages_expiry ON dsr_packages (expires_at);
