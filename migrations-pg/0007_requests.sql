-- consentd schema for PostgreSQL, migration 7: data-subject requests, their
-- timelines and verification codes (see migrations/0007_requests.sql).
CREATE TABLE dsr_requests (
    id            text    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'dsr_'),
    type          text    NOT NULL CHECK (type IN ('access', 'portability', 'erasure',
                                                   'rectification', 'restriction', 'objection')),
    subject_id    text    REFERENCES subjects (id),
    ident_type    text    NOT NULL,
    ident_blind   bytea   NOT NULL CHECK (octet_length(ident_blind) = 32),
    wrapped_key   bytea   CHECK (wrapped_key IS NULL OR octet_length(wrapped_key) = 72),
    sealed        bytea   NOT NULL,
    jurisdiction  text    NOT NULL CHECK (jurisdiction IN ('gdpr', 'uk_gdpr', 'ccpa')),
    source        text    NOT NULL,
    status        text    NOT NULL CHECK (status IN ('identity_unverified', 'verified',
                                                     'in_progress', 'awaiting_systems',
                                                     'completed', 'denied', 'canceled')),
    received_at   bigint  NOT NULL,
    due_at        bigint  NOT NULL,
    extended      bigint  NOT NULL DEFAULT 0 CHECK (extended IN (0, 1)),
    closed_at     bigint,
    updated_at    bigint  NOT NULL
);
CREATE INDEX dsr_requests_due ON dsr_requests (due_at, id);
CREATE INDEX dsr_requests_subject ON dsr_requests (subject_id, type, status);
CREATE TABLE dsr_timeline (
    request_id    text    NOT NULL REFERENCES dsr_requests (id),
    seq           bigint  NOT NULL,
    step          text    NOT NULL,
    status        text    NOT NULL,
    actor         text    NOT NULL,
    at            bigint  NOT NULL,
    reason        text,
    audit_index   bigint  NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE TABLE dsr_codes (
    request_id    text    PRIMARY KEY REFERENCES dsr_requests (id),
    hash          bytea   NOT NULL CHECK (octet_length(hash) = 32),
    expires_at    bigint  NOT NULL,
    attempts      bigint  NOT NULL DEFAULT 0
);
