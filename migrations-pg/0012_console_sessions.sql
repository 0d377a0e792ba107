-- consentd schema for PostgreSQL, migration 12: DPO console sessions (see
-- migrations/0012_console_sessions.sql).
CREATE TABLE console_sessions (
    hash          bytea   PRIMARY KEY CHECK (octet_length(hash) = 32),
    token_id      bigint  NOT NULL REFERENCES tokens (id),
    created_at    bigint  NOT NULL,
    expires_at    bigint  NOT NULL
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
