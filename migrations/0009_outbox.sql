-- consentd schema, migration 9: the durable outbox, downstream systems and
-- what each system reported for each request (SPEC §7 "Outbox", §8).
-- A queued row's body (the message with its recipient, or the webhook's
-- JSON) is sealed: under its subject's key, so an erasure's key
-- destruction destroys it, or under a key of its own (wrapped_key, AD =
-- the row's id) when it must outlive the subject key (the completion
-- notice of an erasure, erasure webhooks) or there is no subject. The
-- body and that key are deleted once delivered (and the key once dead).
-- last_error never holds personal data: a status code or a transport
-- error's class.
CREATE TABLE outbox (
    id            TEXT    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'obx_'),
    kind          TEXT    NOT NULL CHECK (kind IN ('message', 'webhook')),
    request_id    TEXT    REFERENCES dsr_requests (id),
    subject_id    TEXT,
    name          TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    system        TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    wrapped_key   BLOB    CHECK (wrapped_key IS NULL OR length(wrapped_key) = 72),
    body          BLOB,
    CHECK (kind = 'message' OR system IS NOT NULL)
) WITHOUT ROWID;
CREATE INDEX outbox_due ON outbox (status, next_at);
CREATE INDEX outbox_subject ON outbox (subject_id);
CREATE INDEX outbox_request ON outbox (request_id);
-- Downstream systems: where they are called, for which events (a JSON
-- array of names), and the secret webhooks are signed with, sealed under
-- the data directory's secret key (AD = "system:NAME").
CREATE TABLE systems (
    name          TEXT    PRIMARY KEY,
    url           TEXT    NOT NULL,
    events        TEXT    NOT NULL,
    secret        BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
-- What each system called for a request has reported.
CREATE TABLE dsr_systems (
    request_id    TEXT    NOT NULL REFERENCES dsr_requests (id),
    system        TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'completed', 'failed',
                                                     'no_data')),
    detail        TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (request_id, system)
) WITHOUT ROWID;
