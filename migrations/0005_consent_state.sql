-- consentd schema, migration 5: the consent state follows collected_at.
-- The current state of (subject, purpose, channel) is the event with the
-- latest collected_at (ties: the later recorded), so an event collected
-- before the current one (a back-filled import) joins the history but
-- decides nothing; it is marked superseded. A grant made in the course of
-- a sale (evidence.sale_reference) is what a soft opt-in rests on. A
-- repeated request id is compared with a keyed hash of its first request.
ALTER TABLE consent_events ADD COLUMN sale_ref INTEGER NOT NULL DEFAULT 0
    CHECK (sale_ref IN (0, 1));
ALTER TABLE consent_events ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0
    CHECK (superseded IN (0, 1));
ALTER TABLE consent_events ADD COLUMN request_hash BLOB
    CHECK (request_hash IS NULL OR length(request_hash) = 32);
-- Events recorded after a newer-collected one of the same scope.
UPDATE consent_events SET superseded = 1 WHERE EXISTS (
    SELECT 1 FROM consent_events e2
    WHERE e2.subject_id = consent_events.subject_id
      AND e2.purpose = consent_events.purpose
      AND e2.channel IN (consent_events.channel, '*')
      AND e2.seq < consent_events.seq
      AND e2.collected_at > consent_events.collected_at);
-- The projection, rebuilt by the new rule. The old one stays, renamed,
-- until the upgrade step (src/core/upgrade.c) has compared the two and
-- kept every withdrawal the old one decided on; then it is dropped.
ALTER TABLE consent_current RENAME TO consent_current_v1;
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
    collected_at   INTEGER NOT NULL,
    sale_ref       INTEGER NOT NULL,
    PRIMARY KEY (subject_id, purpose, channel)
) WITHOUT ROWID;
INSERT INTO consent_current (subject_id, purpose, channel, seq, state, notice_version,
    method, event_id, recorded_at, collected_at, sale_ref)
SELECT e.subject_id, e.purpose, e.channel, e.seq, e.state, e.notice_version, e.method,
    e.event_id, e.recorded_at, e.collected_at, e.sale_ref
FROM consent_events e
WHERE e.seq = (SELECT e2.seq FROM consent_events e2
    WHERE e2.subject_id = e.subject_id AND e2.purpose = e.purpose
      AND e2.channel = e.channel
    ORDER BY e2.collected_at DESC, e2.seq DESC LIMIT 1);
-- A suppression binds the person: entries on any identifier the subject
-- holds apply to it (found through identifiers), and an identifier
-- unlinked while suppressed stays bound to the subject here.
CREATE TABLE suppression_subjects (
    subject_id     TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    blind          BLOB    NOT NULL CHECK (length(blind) = 32),
    PRIMARY KEY (subject_id, type, blind)
) WITHOUT ROWID;
CREATE INDEX suppression_subjects_entry ON suppression_subjects (type, blind);
-- Channel and topic switches are now read from the consent state.
UPDATE preferences SET channels = NULL, topics = NULL;
