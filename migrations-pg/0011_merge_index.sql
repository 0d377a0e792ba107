-- consentd schema for PostgreSQL, migration 11: an erasure follows a
-- person's merges through this index (see migrations/0011_merge_index.sql).
CREATE INDEX subjects_merged_into ON subjects (merged_into) WHERE merged_into IS NOT NULL;
