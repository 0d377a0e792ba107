-- consentd schema, migration 1: API tokens.
-- Tokens are stored only as a public selector and a keyed hash of the whole
-- token; the token itself is printed once at creation and never kept.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    selector    TEXT    NOT NULL UNIQUE CHECK (length(selector) = 16),
    hash        BLOB    NOT NULL CHECK (length(hash) = 32),
    scopes      INTEGER NOT NULL CHECK (scopes > 0),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
-- A name belongs to at most one active token; a revoked name may be reused.
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
