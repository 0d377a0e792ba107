-- consentd schema, migration 2: the append-only audit log.
-- Entries are canonical JSON, stored exactly as hashed; the Merkle tree
-- (RFC 6962) keeps the hash of every perfect, aligned subtree so roots and
-- proofs for any size come from O(log n) reads. Level 0 (leaf hashes) lives
-- beside the entry; levels 1 and up in audit_hashes.
CREATE TABLE audit_entries (
    idx        INTEGER PRIMARY KEY CHECK (idx >= 0),
    entry      BLOB    NOT NULL CHECK (length(entry) BETWEEN 2 AND 65536),
    leaf_hash  BLOB    NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE TABLE audit_hashes (
    level      INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx        INTEGER NOT NULL CHECK (idx >= 0),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
-- Signed checkpoints: one root per size, ever.
CREATE TABLE audit_checkpoints (
    size       INTEGER PRIMARY KEY CHECK (size >= 0),
    root       BLOB    NOT NULL CHECK (length(root) = 32),
    note       TEXT    NOT NULL,
    signed_at  INTEGER NOT NULL
);
-- The random pseudonym that stands for a subject in entries. Deleting the
-- row (erasure) leaves the entries, and so every proof, untouched.
CREATE TABLE audit_pseudonyms (
    subject_id TEXT PRIMARY KEY,
    pseudonym  TEXT NOT NULL UNIQUE
) WITHOUT ROWID;
-- The opening (salt and details) of an entry's commitment, encrypted under
-- the subject's data key; unreadable once that key is destroyed.
CREATE TABLE audit_openings (
    idx        INTEGER PRIMARY KEY REFERENCES audit_entries (idx),
    subject_id TEXT    NOT NULL,
    sealed     BLOB    NOT NULL
);
CREATE INDEX audit_openings_subject ON audit_openings (subject_id);
-- Settings fixed when the store is created (the log's origin, …).
CREATE TABLE meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL
) WITHOUT ROWID;
