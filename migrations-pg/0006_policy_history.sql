-- consentd schema for PostgreSQL, migration 6: every notice text served,
-- never changed and never deleted (see migrations/0006_policy_history.sql).
-- The refusal is an integrity error, as SQLite's RAISE(ABORT) in a
-- trigger is a constraint failure.
CREATE TABLE policy_notices (
    purpose          text    NOT NULL CHECK (length(purpose) BETWEEN 1 AND 64),
    version          bigint  NOT NULL CHECK (version >= 1),
    sha256           bytea   NOT NULL CHECK (octet_length(sha256) = 32),
    lawful_basis     text    NOT NULL,
    notice           text    NOT NULL,
    first_served_at  bigint  NOT NULL,
    audit_index      bigint  NOT NULL,
    PRIMARY KEY (purpose, version)
);
CREATE FUNCTION policy_notices_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'a served notice is never changed'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RAISE EXCEPTION 'a served notice is never deleted'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER policy_notices_keep BEFORE UPDATE ON policy_notices
    FOR EACH ROW EXECUTE FUNCTION policy_notices_keep();
CREATE TRIGGER policy_notices_keep_rows BEFORE DELETE ON policy_notices
    FOR EACH ROW EXECUTE FUNCTION policy_notices_keep();
