-- consentd schema, migration 7: data-subject requests (SPEC §7, §8).
-- A request is about the subject holding its identifier, or about nobody
-- (no data held, which Art. 15 asks us to confirm). What in it is personal
-- (the identifier asked about, the request's details) is sealed: under the
-- subject's key, so an erasure makes it unreadable with the rest, or under
-- the request's own wrapped key when nobody holds the identifier. Status,
-- dates and the timeline stay readable: they are the controller's record
-- of how it handled the request (Art. 5(2)).
CREATE TABLE dsr_requests (
    id            TEXT    PRIMARY KEY CHECK (length(id) = 30 AND substr(id, 1, 4) = 'dsr_'),
    type          TEXT    NOT NULL CHECK (type IN ('access', 'portability', 'erasure',
                                                   'rectification', 'restriction', 'objection')),
    subject_id    TEXT    REFERENCES subjects (id),
    ident_type    TEXT    NOT NULL,
    ident_blind   BLOB    NOT NULL CHECK (length(ident_blind) = 32),
    wrapped_key   BLOB    CHECK (wrapped_key IS NULL OR length(wrapped_key) = 72),
    sealed        BLOB    NOT NULL,
    jurisdiction  TEXT    NOT NULL CHECK (jurisdiction IN ('gdpr', 'uk_gdpr', 'ccpa')),
    source        TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('identity_unverified', 'verified',
                                                     'in_progress', 'awaiting_systems',
                                                     'completed', 'denied', 'canceled')),
    received_at   INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    extended      INTEGER NOT NULL DEFAULT 0 CHECK (extended IN (0, 1)),
    closed_at     INTEGER,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX dsr_requests_due ON dsr_requests (due_at, id);
CREATE INDEX dsr_requests_subject ON dsr_requests (subject_id, type, status);
-- Every step of a request, in order: who (token name, shopper, system:NAME,
-- cli), when, the status it left the request in, and the reason given. The
-- reason is the controller's own words (documented: no personal data).
CREATE TABLE dsr_timeline (
    request_id    TEXT    NOT NULL REFERENCES dsr_requests (id),
    seq           INTEGER NOT NULL,
    step          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    reason        TEXT,
    audit_index   INTEGER NOT NULL,
    PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;
-- The identity code of a request: only a keyed hash of it, its expiry and
-- the attempts made against it.
CREATE TABLE dsr_codes (
    request_id    TEXT    PRIMARY KEY REFERENCES dsr_requests (id),
    hash          BLOB    NOT NULL CHECK (length(hash) = 32),
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
