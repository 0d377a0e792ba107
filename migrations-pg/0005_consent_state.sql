-- consentd schema for PostgreSQL, migration 5: what the sale-of-data rules
-- and the person's own order of events need (see
-- migrations/0005_consent_state.sql). SQLite keeps the old projection as
-- consent_current_v1 until the upgrade step has compared and dropped it;
-- no PostgreSQL store has an old projection, so the table is made anew.
ALTER TABLE consent_events ADD COLUMN sale_ref bigint NOT NULL DEFAULT 0
    CHECK (sale_ref IN (0, 1));
ALTER TABLE consent_events ADD COLUMN superseded bigint NOT NULL DEFAULT 0
    CHECK (superseded IN (0, 1));
ALTER TABLE consent_events ADD COLUMN request_hash bytea
    CHECK (request_hash IS NULL OR octet_length(request_hash) = 32);
DROP TABLE consent_current;
CREATE TABLE consent_current (
    subject_id     text    NOT NULL,
    purpose        text    NOT NULL,
    channel        text    NOT NULL,
    seq            bigint  NOT NULL,
    state          text    NOT NULL,
    notice_version bigint  NOT NULL,
    method         text    NOT NULL,
    event_id       text    NOT NULL,
    recorded_at    bigint  NOT NULL,
    collected_at   bigint  NOT NULL,
    sale_ref       bigint  NOT NULL,
    PRIMARY KEY (subject_id, purpose, channel)
);
CREATE TABLE suppression_subjects (
    subject_id     text    NOT NULL,
    type           text    NOT NULL,
    blind          bytea   NOT NULL CHECK (octet_length(blind) = 32),
    PRIMARY KEY (subject_id, type, blind)
);
CREATE INDEX suppression_subjects_entry ON suppression_subjects (type, blind);
