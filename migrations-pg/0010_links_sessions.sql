-- consentd schema for PostgreSQL, migration 10: preference-link
-- generations and shopper sessions (see migrations/0010_links_sessions.sql).
CREATE TABLE link_generations (
    subject_id    text    PRIMARY KEY REFERENCES subjects (id),
    generation    bigint  NOT NULL CHECK (generation >= 0),
    revoked_at    bigint  NOT NULL
);
CREATE TABLE sessions (
    hash          bytea   PRIMARY KEY CHECK (octet_length(hash) = 32),
    kind          text    NOT NULL CHECK (kind IN ('shopper')),
    subject_id    text    NOT NULL REFERENCES subjects (id),
    created_at    bigint  NOT NULL,
    expires_at    bigint  NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
