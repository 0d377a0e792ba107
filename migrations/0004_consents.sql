-- consentd schema, migration 4: the consent ledger.
-- Events are append-only; consent_current is the projection the check
-- reads, kept in step in the same transaction. channel '*' means all
-- channels of the purpose. Evidence is sealed under the subject's key.
CREATE TABLE consent_events (
    seq            INTEGER PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    subject_id     TEXT    NOT NULL REFERENCES subjects (id),
    purpose        TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('granted', 'withdrawn', 'refused')),
    notice_version INTEGER NOT NULL CHECK (notice_version >= 1),
    method         TEXT    NOT NULL,
    collected_at   INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    evidence       BLOB,
    client         TEXT    NOT NULL,
    request_id     TEXT,
    audit_index    INTEGER NOT NULL
);
CREATE UNIQUE INDEX consent_events_request ON consent_events (client, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX consent_events_subject ON consent_events (subject_id, seq);
CREATE TABLE consent_current (
    subject_id     TEXT    NOT NULL,
    purpose        TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    notice_version INTEGER NOT NULL,
    method         TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    PRIMARY KEY (subject_id, purpose, channel)
) WITHOUT ROWID;
-- "Do not contact": blind indexes only, whether or not a subject has them.
CREATE TABLE suppressions (
    type           TEXT    NOT NULL,
    blind          BLOB    NOT NULL CHECK (length(blind) = 32),
    reason         TEXT    NOT NULL CHECK (reason IN ('unsubscribed', 'bounced',
                                           'complained', 'manual', 'erased')),
    since          INTEGER NOT NULL,
    PRIMARY KEY (type, blind)
) WITHOUT ROWID;
-- Preference-centre settings and the Art. 21 objection to direct marketing.
CREATE TABLE preferences (
    subject_id     TEXT    PRIMARY KEY REFERENCES subjects (id),
    channels       TEXT,
    topics         TEXT,
    frequency      TEXT,
    paused_until   INTEGER,
    objected_at    INTEGER,
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;
-- Disagreements found when two subjects merged, open until the person
-- decides again for that purpose and channel.
CREATE TABLE merge_conflicts (
    id             INTEGER PRIMARY KEY,
    subject_id     TEXT    NOT NULL REFERENCES subjects (id),
    merged_from    TEXT    NOT NULL,
    purpose        TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    kept_state     TEXT    NOT NULL,
    other_state    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    resolved_at    INTEGER
);
CREATE INDEX merge_conflicts_open ON merge_conflicts (subject_id, purpose)
    WHERE resolved_at IS NULL;
-- Unsubscribe reasons, counted by month: no per-person data.
CREATE TABLE unsubscribe_reasons (
    month          TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    count          INTEGER NOT NULL,
    PRIMARY KEY (month, reason)
) WITHOUT ROWID;
