-- consentd schema, migration 6: the history of the policy's notices.
-- Every purpose version the service has served, with its notice text as
-- shown (title, description, lawful basis, channels, data categories,
-- recipients) in canonical JSON and the SHA-256 of exactly those bytes, so
-- what a person was told when they decided can always be shown. Rows are
-- only added: a purpose that leaves the policy keeps its history. No
-- personal data is held here.
CREATE TABLE policy_notices (
    purpose          TEXT    NOT NULL CHECK (length(purpose) BETWEEN 1 AND 64),
    version          INTEGER NOT NULL CHECK (version >= 1),
    sha256           BLOB    NOT NULL CHECK (length(sha256) = 32),
    lawful_basis     TEXT    NOT NULL,
    notice           TEXT    NOT NULL,
    first_served_at  INTEGER NOT NULL,
    audit_index      INTEGER NOT NULL,
    PRIMARY KEY (purpose, version)
) WITHOUT ROWID;
CREATE TRIGGER policy_notices_keep BEFORE UPDATE ON policy_notices
BEGIN
    SELECT RAISE(ABORT, 'a served notice is never changed');
END;
CREATE TRIGGER policy_notices_keep_rows BEFORE DELETE ON policy_notices
BEGIN
    SELECT RAISE(ABORT, 'a served notice is never deleted');
END;
