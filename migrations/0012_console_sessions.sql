-- consentd schema, migration 12: the DPO console's sessions (SPEC §10).
-- A console session is started by an API token holding dsr:admin and acts
-- with that token's scopes for as long as both last: it names the token by
-- id, so revoking the token ends its sessions at once. Only the keyed hash
-- of the session's random id (the cookie) is kept. Ending a session deletes
-- its row; expired rows are deleted when the next session starts.
CREATE TABLE console_sessions (
    hash          BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    token_id      INTEGER NOT NULL REFERENCES tokens (id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
