-- consentd schema for PostgreSQL, migration 8: access and portability
-- packages, each sealed under a key of its own (see
-- migrations/0008_packages.sql).
CREATE TABLE dsr_packages (
    id            text    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'pkg_'),
    request_id    text    NOT NULL REFERENCES dsr_requests (id),
    subject_id    text    NOT NULL REFERENCES subjects (id),
    format        text    NOT NULL CHECK (format IN ('json', 'csv')),
    wrapped_key   bytea   NOT NULL CHECK (octet_length(wrapped_key) = 72),
    size          bigint  NOT NULL,
    created_at    bigint  NOT NULL,
    expires_at    bigint  NOT NULL,
    UNIQUE (request_id, format)
);
CREATE INDEX dsr_packages_subject ON dsr_packages (subject_id);
CREATE INDEX dsr_packages_expiry ON dsr_packages (expires_at);
