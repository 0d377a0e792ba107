/* SPDX-License-Identifier: ISC */
/*
 * Storage of the audit log: entries with their leaf hashes, the hashes of
 * perfect subtrees, signed checkpoints, subject pseudonyms and the sealed
 * openings of entry commitments; and the fixed settings in `meta`. Writes
 * here run inside the caller's transaction; this file never begins or
 * commits one.
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

struct cm_hash_cursor {
	struct store_query hc_q;
};

/* Copies text column COL of S into OUT: CM_IOERR when NULL or OUTLEN is too small. */
static cm_result
text_copy(char *out, size_t outlen, const struct store_query *s, int col)
{
	const char *v = store_col_text(s, col);

	if (v == NULL || strlen(v) >= outlen)
		return CM_IOERR;
	memcpy(out, v, strlen(v) + 1);
	return CM_OK;
}

cm_result
cm_store_meta_get(struct cm_db *d, const char *key, char *out, size_t outlen)
{
	static const char sql[] = "SELECT value FROM meta WHERE key = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "t", key)) == CM_OK)
		rc = text_copy(out, outlen, &q, 0);
	store_done(&q);
	return rc;
}

cm_result
cm_store_meta_put(struct cm_db *d, const char *key, const char *value)
{
	static const char sql[] = "INSERT INTO meta (key, value) VALUES (?, ?)";

	return store_exec(d, sql, "tt", key, value);
}

cm_result
cm_store_audit_size(struct cm_db *d, uint64_t *size)
{
	static const char sql[] = "SELECT coalesce(max(idx) + 1, 0) FROM audit_entries";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "")) == CM_OK)
		*size = (uint64_t)store_col_int64(&q, 0);
	store_done(&q);
	return rc;
}

cm_result
cm_store_audit_put_entry(struct cm_db *d, uint64_t idx, const void *entry, size_t len,
    const uint8_t leaf[32])
{
	static const char sql[] = "INSERT INTO audit_entries (idx, entry, leaf_hash) "
	    "VALUES (?, ?, ?)";

	return store_exec(d, sql, "iBb", (int64_t)idx, entry, len, leaf);
}

cm_result
cm_store_audit_put_hash(struct cm_db *d, unsigned level, uint64_t idx,
    const uint8_t hash[32])
{
	static const char sql[] = "INSERT INTO audit_hashes (level, idx, hash) "
	    "VALUES (?, ?, ?)";

	return store_exec(d, sql, "iib", (int64_t)level, (int64_t)idx, hash);
}

cm_result
cm_store_audit_get_hash(struct cm_db *d, unsigned level, uint64_t idx, uint8_t out[32])
{
	static const char sql_leaf[] = "SELECT leaf_hash FROM audit_entries WHERE idx = ?";
	static const char sql_node[] = "SELECT hash FROM audit_hashes "
	    "WHERE level = ? AND idx = ?";
	struct store_query q;
	cm_result rc;

	if (level == 0)
		rc = store_row(&q, d, sql_leaf, "i", (int64_t)idx);
	else
		rc = store_row(&q, d, sql_node, "ii", (int64_t)level, (int64_t)idx);
	if (rc == CM_OK && !store_column_blob(out, 32, &q, 0))
		rc = CM_NOTFOUND;
	store_done(&q);
	return rc;
}

cm_result
cm_store_audit_scan(struct cm_db *d, uint64_t from, uint64_t to,
    int (*fn)(void *, uint64_t, const void *, size_t, const uint8_t *), void *arg)
{
	static const char sql[] = "SELECT idx, entry, leaf_hash FROM audit_entries "
	    "WHERE idx >= ? AND idx < ? ORDER BY idx";
	static const uint8_t zero[32];
	struct store_query q;
	const void *leaf;
	const struct store_query *s;

	/* Callers may run other queries meanwhile, this one too. */
	store_query(&q, d, sql, "ii", (int64_t)from, to > INT64_MAX ? INT64_MAX : (int64_t)to);
	while (store_next(&q)) {
		s = &q;
		leaf = store_col_bytes(s, 2) == 32 ? store_col_blob(s, 2) : zero;
		if (fn(arg, (uint64_t)store_col_int64(s, 0), store_col_blob(s, 1),
		    store_col_bytes(s, 1), leaf) != 0)
			break;
	}
	return store_done(&q);
}

/*
 * The cursor's statement outlives this call, interleaved with the
 * caller's other reads, so it is a private one rather than the helper's
 * cached statement.
 */
struct cm_hash_cursor *
cm_store_audit_hash_cursor(struct cm_db *d, unsigned level)
{
	static const char sql[] = "SELECT idx, hash FROM audit_hashes WHERE level = ? "
	    "ORDER BY idx";
	struct cm_hash_cursor *c;

	c = cm_calloc(1, sizeof(*c));
	store_query_own(&c->hc_q, d, sql, "i", (int64_t)level);
	if (c->hc_q.q_rc != CM_OK) {
		store_done(&c->hc_q);
		free(c);
		return NULL;
	}
	return c;
}

cm_result
cm_store_audit_hash_next(struct cm_hash_cursor *c, uint64_t *idx, uint8_t hash[32])
{
	if (!store_next(&c->hc_q))
		return c->hc_q.q_rc != CM_OK ? c->hc_q.q_rc : CM_NOTFOUND;
	*idx = (uint64_t)store_col_int64(&c->hc_q, 0);
	if (!store_column_blob(hash, 32, &c->hc_q, 1))
		memset(hash, 0, 32);
	return CM_OK;
}

void
cm_store_audit_hash_cursor_free(struct cm_hash_cursor *c)
{
	if (c == NULL)
		return;
	store_done(&c->hc_q);
	free(c);
}

static void
checkpoint_read(const struct store_query *s, struct cm_checkpoint_row *row)
{
	const char *note;

	row->cp_size = (uint64_t)store_col_int64(s, 0);
	if (!store_column_blob(row->cp_root, 32, s, 1))
		memset(row->cp_root, 0, 32);
	note = store_col_text(s, 2);
	row->cp_note = cm_strdup(note ? note : "");
	row->cp_signed_us = store_col_int64(s, 3);
}

cm_result
cm_store_audit_checkpoint_latest(struct cm_db *d, struct cm_checkpoint_row *row)
{
	static const char sql[] = "SELECT size, root, note, signed_at FROM "
	    "audit_checkpoints ORDER BY size DESC LIMIT 1";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "")) == CM_OK)
		checkpoint_read(&q, row);
	store_done(&q);
	return rc;
}

cm_result
cm_store_audit_checkpoint_get(struct cm_db *d, uint64_t size, struct cm_checkpoint_row *row)
{
	static const char sql[] = "SELECT size, root, note, signed_at FROM "
	    "audit_checkpoints WHERE size = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "i", (int64_t)size)) == CM_OK)
		checkpoint_read(&q, row);
	store_done(&q);
	return rc;
}

/*
 * The first checkpoint that covers entry INDEX (the smallest size above
 * it): the one a receipt is proven against, so a receipt stays the same
 * however far the log grows.
 */
cm_result
cm_store_audit_checkpoint_covering(struct cm_db *d, uint64_t index,
    struct cm_checkpoint_row *row)
{
	static const char sql[] = "SELECT size, root, note, signed_at FROM "
	    "audit_checkpoints WHERE size > ? ORDER BY size LIMIT 1";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "i", (int64_t)index)) == CM_OK)
		checkpoint_read(&q, row);
	store_done(&q);
	return rc;
}

cm_result
cm_store_audit_checkpoint_put(struct cm_db *d, uint64_t size, const uint8_t root[32],
    const char *note, int64_t signed_us)
{
	static const char sql[] = "INSERT INTO audit_checkpoints (size, root, note, "
	    "signed_at) VALUES (?, ?, ?, ?)";

	return store_exec(d, sql, "ibti", (int64_t)size, root, note, signed_us);
}

cm_result
cm_store_audit_checkpoints(struct cm_db *d,
    int (*fn)(void *, const struct cm_checkpoint_row *), void *arg)
{
	static const char sql[] = "SELECT size, root, note, signed_at FROM "
	    "audit_checkpoints ORDER BY size";
	struct cm_checkpoint_row row;
	struct store_query q;
	int stop;

	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		checkpoint_read(&q, &row);
		stop = fn(arg, &row);
		free(row.cp_note);
		if (stop != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_audit_pseudonym(struct cm_db *d, const char *subject_id, bool create,
    const char *candidate, char *out, size_t outlen)
{
	static const char sql_get[] = "SELECT pseudonym FROM audit_pseudonyms "
	    "WHERE subject_id = ?";
	static const char sql_put[] = "INSERT INTO audit_pseudonyms (subject_id, "
	    "pseudonym) VALUES (?, ?)";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql_get, "t", subject_id)) == CM_OK)
		rc = text_copy(out, outlen, &q, 0);
	store_done(&q);
	if (rc != CM_NOTFOUND || !create)
		return rc;
	if (strlen(candidate) >= outlen)
		return CM_IOERR;
	if ((rc = store_exec(d, sql_put, "tt", subject_id, candidate)) == CM_OK)
		memcpy(out, candidate, strlen(candidate) + 1);
	return rc;
}

cm_result
cm_store_audit_opening_put(struct cm_db *d, uint64_t idx, const char *subject_id,
    const void *sealed, size_t len)
{
	static const char sql[] = "INSERT INTO audit_openings (idx, subject_id, sealed) "
	    "VALUES (?, ?, ?)";

	return store_exec(d, sql, "itB", (int64_t)idx, subject_id, sealed, len);
}

cm_result
cm_store_audit_opening_get(struct cm_db *d, uint64_t idx, struct cm_buf *out,
    char *subject_id, size_t subject_len)
{
	static const char sql[] = "SELECT subject_id, sealed FROM audit_openings "
	    "WHERE idx = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "i", (int64_t)idx)) == CM_OK &&
	    (rc = text_copy(subject_id, subject_len, &q, 0)) == CM_OK)
		cm_buf_append(out, store_col_blob(&q, 1),
		    store_col_bytes(&q, 1));
	store_done(&q);
	return rc;
}

cm_result
cm_store_audit_forget_subject(struct cm_db *d, const char *subject_id)
{
	static const char sql_p[] = "DELETE FROM audit_pseudonyms WHERE subject_id = ?";
	static const char sql_o[] = "DELETE FROM audit_openings WHERE subject_id = ?";
	cm_result rc;

	if ((rc = store_exec(d, sql_p, "t", subject_id)) != CM_OK)
		return rc;
	return store_exec(d, sql_o, "t", subject_id);
}
