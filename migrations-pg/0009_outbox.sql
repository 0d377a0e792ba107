-- consentd schema for PostgreSQL, migration 9: the outbox of messages and
-- webhooks, the downstream systems and what each reported for a request
-- (see migrations/0009_outbox.sql).
CREATE TABLE outbox (
    id            text    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'obx_'),
    kind          text    NOT NULL CHECK (kind IN ('message', 'webhook')),
    request_id    text    REFERENCES dsr_requests (id),
    subject_id    text,
    name          text    NOT NULL,
    channel       text    NOT NULL,
    system        text,
    status        text    NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts      bigint  NOT NULL DEFAULT 0,
    next_at       bigint  NOT NULL,
    last_error    text,
    created_at    bigint  NOT NULL,
    sent_at       bigint,
    wrapped_key   bytea   CHECK (wrapped_key IS NULL OR octet_length(wrapped_key) = 72),
    body          bytea,
    CHECK (kind = 'message' OR system IS NOT NULL)
);
CREATE INDEX outbox_due ON outbox (status, next_at);
CREATE INDEX outbox_subject ON outbox (subject_id);
CREATE INDEX outbox_request ON outbox (request_id);
CREATE TABLE systems (
    name          text    PRIMARY KEY,
    url           text    NOT NULL,
    events        text    NOT NULL,
    secret        bytea   NOT NULL,
    created_at    bigint  NOT NULL
);
-- SQLite's instr(), with which the store's SQL finds the systems that take
-- an event.
CREATE FUNCTION instr(haystack text, needle text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT strpos(haystack, needle) $$;
CREATE TABLE dsr_systems (
    request_id    text    NOT NULL REFERENCES dsr_requests (id),
    system        text    NOT NULL,
    status        text    NOT NULL CHECK (status IN ('pending', 'completed', 'failed',
                                                     'no_data')),
    detail        text,
    updated_at    bigint  NOT NULL,
    PRIMARY KEY (request_id, system)
);
