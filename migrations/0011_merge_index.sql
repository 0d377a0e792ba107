-- consentd schema, migration 11: an index of merged-away subjects by the
-- subject they were merged into. An erasure follows the person's merges to
-- make their whole past in the audit log unlinkable; without the index
-- that lookup read the whole subjects table (about a second at 1,000,000
-- subjects). Partial: only merged-away subjects have merged_into set.
CREATE INDEX subjects_merged_into ON subjects (merged_into) WHERE merged_into IS NOT NULL;
