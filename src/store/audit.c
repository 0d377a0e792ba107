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
	struct cm_db	*hc_db;
	sqlite3_stmt	*hc_stmt;
};

cm_result
cm_store_meta_get(struct cm_db *d, const char *key, char *out, size_t outlen)
{
	static const char sql[] = "SELECT value FROM meta WHERE key = ?";
	sqlite3_stmt *s;
	const char *v;
	cm_result rc;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		v = (const char *)sqlite3_column_text(s, 0);
		if (v == NULL || strlen(v) >= outlen) {
			rc = CM_IOERR;
		} else {
			memcpy(out, v, strlen(v) + 1);
			rc = CM_OK;
		}
	} else {
		rc = r == SQLITE_DONE ? CM_NOTFOUND : store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_meta_put(struct cm_db *d, const char *key, const char *value)
{
	static const char sql[] = "INSERT INTO meta (key, value) VALUES (?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_audit_size(struct cm_db *d, uint64_t *size)
{
	static const char sql[] = "SELECT coalesce(max(idx) + 1, 0) FROM audit_entries";
	sqlite3_stmt *s;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		*size = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (r != SQLITE_ROW) {
		store_log_error(d, __func__, r);
		return store_rc(r);
	}
	return CM_OK;
}

cm_result
cm_store_audit_put_entry(struct cm_db *d, uint64_t idx, const void *entry, size_t len,
    const uint8_t leaf[32])
{
	static const char sql[] = "INSERT INTO audit_entries (idx, entry, leaf_hash) "
	    "VALUES (?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)idx);
	sqlite3_bind_blob(s, 2, entry, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, leaf, 32, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_audit_put_hash(struct cm_db *d, unsigned level, uint64_t idx,
    const uint8_t hash[32])
{
	static const char sql[] = "INSERT INTO audit_hashes (level, idx, hash) "
	    "VALUES (?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int(s, 1, (int)level);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)idx);
	sqlite3_bind_blob(s, 3, hash, 32, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_audit_get_hash(struct cm_db *d, unsigned level, uint64_t idx, uint8_t out[32])
{
	static const char sql_leaf[] = "SELECT leaf_hash FROM audit_entries WHERE idx = ?";
	static const char sql_node[] = "SELECT hash FROM audit_hashes "
	    "WHERE level = ? AND idx = ?";
	sqlite3_stmt *s;
	cm_result rc;
	int r;

	if ((s = store_stmt(d, level == 0 ? sql_leaf : sql_node)) == NULL)
		return CM_IOERR;
	if (level == 0) {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)idx);
	} else {
		sqlite3_bind_int(s, 1, (int)level);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)idx);
	}
	r = sqlite3_step(s);
	if (r == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32) {
		memcpy(out, sqlite3_column_blob(s, 0), 32);
		rc = CM_OK;
	} else if (r == SQLITE_ROW || r == SQLITE_DONE) {
		rc = CM_NOTFOUND;
	} else {
		store_log_error(d, __func__, r);
		rc = store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_audit_scan(struct cm_db *d, uint64_t from, uint64_t to,
    int (*fn)(void *, uint64_t, const void *, size_t, const uint8_t *), void *arg)
{
	sqlite3_stmt *s = NULL;
	const void *leaf;
	cm_result rc = CM_OK;
	int r;

	/* A statement of its own: callers may run other queries meanwhile. */
	r = sqlite3_prepare_v2(d->db_conn, "SELECT idx, entry, leaf_hash FROM "
	    "audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx", -1, &s, NULL);
	if (r != SQLITE_OK) {
		store_log_error(d, __func__, r);
		return store_rc(r);
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(s, 2, to > INT64_MAX ? INT64_MAX : (sqlite3_int64)to);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		static const uint8_t zero[32];

		leaf = sqlite3_column_bytes(s, 2) == 32 ? sqlite3_column_blob(s, 2) : zero;
		if (fn(arg, (uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
		    (size_t)sqlite3_column_bytes(s, 1), leaf) != 0)
			break;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		rc = store_rc(r);
	}
	sqlite3_finalize(s);
	return rc;
}

struct cm_hash_cursor *
cm_store_audit_hash_cursor(struct cm_db *d, unsigned level)
{
	struct cm_hash_cursor *c;
	int r;

	c = cm_calloc(1, sizeof(*c));
	c->hc_db = d;
	r = sqlite3_prepare_v2(d->db_conn, "SELECT idx, hash FROM audit_hashes "
	    "WHERE level = ? ORDER BY idx", -1, &c->hc_stmt, NULL);
	if (r != SQLITE_OK) {
		store_log_error(d, __func__, r);
		free(c);
		return NULL;
	}
	sqlite3_bind_int(c->hc_stmt, 1, (int)level);
	return c;
}

cm_result
cm_store_audit_hash_next(struct cm_hash_cursor *c, uint64_t *idx, uint8_t hash[32])
{
	int r;

	r = sqlite3_step(c->hc_stmt);
	if (r == SQLITE_DONE)
		return CM_NOTFOUND;
	if (r != SQLITE_ROW) {
		store_log_error(c->hc_db, __func__, r);
		return store_rc(r);
	}
	*idx = (uint64_t)sqlite3_column_int64(c->hc_stmt, 0);
	if (sqlite3_column_bytes(c->hc_stmt, 1) == 32)
		memcpy(hash, sqlite3_column_blob(c->hc_stmt, 1), 32);
	else
		memset(hash, 0, 32);
	return CM_OK;
}

void
cm_store_audit_hash_cursor_free(struct cm_hash_cursor *c)
{
	if (c == NULL)
		return;
	sqlite3_finalize(c->hc_stmt);
	free(c);
}

static void
checkpoint_read(sqlite3_stmt *s, struct cm_checkpoint_row *row)
{
	const char *note;

	row->cp_size = (uint64_t)sqlite3_column_int64(s, 0);
	if (sqlite3_column_bytes(s, 1) == 32)
		memcpy(row->cp_root, sqlite3_column_blob(s, 1), 32);
	else
		memset(row->cp_root, 0, 32);
	note = (const char *)sqlite3_column_text(s, 2);
	row->cp_note = cm_strdup(note ? note : "");
	row->cp_signed_us = sqlite3_column_int64(s, 3);
}

static cm_result
checkpoint_one(struct cm_db *d, const char *sql, bool bind, uint64_t size,
    struct cm_checkpoint_row *row)
{
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	if (bind)
		sqlite3_bind_int64(s, 1, (sqlite3_int64)size);
	if ((rc = store_step_row(d, s, __func__)) == CM_OK) {
		checkpoint_read(s, row);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_audit_checkpoint_latest(struct cm_db *d, struct cm_checkpoint_row *row)
{
	static const char sql[] = "SELECT size, root, note, signed_at FROM "
	    "audit_checkpoints ORDER BY size DESC LIMIT 1";

	return checkpoint_one(d, sql, false, 0, row);
}

cm_result
cm_store_audit_checkpoint_get(struct cm_db *d, uint64_t size, struct cm_checkpoint_row *row)
{
	static const char sql[] = "SELECT size, root, note, signed_at FROM "
	    "audit_checkpoints WHERE size = ?";

	return checkpoint_one(d, sql, true, size, row);
}

cm_result
cm_store_audit_checkpoint_put(struct cm_db *d, uint64_t size, const uint8_t root[32],
    const char *note, int64_t signed_us)
{
	static const char sql[] = "INSERT INTO audit_checkpoints (size, root, note, "
	    "signed_at) VALUES (?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)size);
	sqlite3_bind_blob(s, 2, root, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, note, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, signed_us);
	return store_step_done(d, s, __func__);
}

struct checkpoint_each {
	int	(*fn)(void *, const struct cm_checkpoint_row *);
	void	*arg;
};

static int
checkpoint_each_row(void *arg, sqlite3_stmt *s)
{
	struct checkpoint_each *e = arg;
	struct cm_checkpoint_row row;
	int stop;

	checkpoint_read(s, &row);
	stop = e->fn(e->arg, &row);
	free(row.cp_note);
	return stop;
}

cm_result
cm_store_audit_checkpoints(struct cm_db *d,
    int (*fn)(void *, const struct cm_checkpoint_row *), void *arg)
{
	struct checkpoint_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT size, root, note, signed_at FROM "
	    "audit_checkpoints ORDER BY size", NULL, checkpoint_each_row, &e);
}

cm_result
cm_store_audit_pseudonym(struct cm_db *d, const char *subject_id, bool create,
    const char *candidate, char *out, size_t outlen)
{
	static const char sql_get[] = "SELECT pseudonym FROM audit_pseudonyms "
	    "WHERE subject_id = ?";
	static const char sql_put[] = "INSERT INTO audit_pseudonyms (subject_id, "
	    "pseudonym) VALUES (?, ?)";
	sqlite3_stmt *s;
	const char *p;
	cm_result rc;
	int r;

	if ((s = store_stmt(d, sql_get)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject_id, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		p = (const char *)sqlite3_column_text(s, 0);
		rc = p != NULL && strlen(p) < outlen ? CM_OK : CM_IOERR;
		if (rc == CM_OK)
			memcpy(out, p, strlen(p) + 1);
		sqlite3_reset(s);
		return rc;
	}
	sqlite3_reset(s);
	if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		return store_rc(r);
	}
	if (!create)
		return CM_NOTFOUND;
	if (strlen(candidate) >= outlen || (s = store_stmt(d, sql_put)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, candidate, -1, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) == CM_OK)
		memcpy(out, candidate, strlen(candidate) + 1);
	return rc;
}

cm_result
cm_store_audit_opening_put(struct cm_db *d, uint64_t idx, const char *subject_id,
    const void *sealed, size_t len)
{
	static const char sql[] = "INSERT INTO audit_openings (idx, subject_id, sealed) "
	    "VALUES (?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)idx);
	sqlite3_bind_text(s, 2, subject_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, sealed, (int)len, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_audit_opening_get(struct cm_db *d, uint64_t idx, struct cm_buf *out,
    char *subject_id, size_t subject_len)
{
	static const char sql[] = "SELECT subject_id, sealed FROM audit_openings "
	    "WHERE idx = ?";
	sqlite3_stmt *s;
	const char *sub;
	cm_result rc;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)idx);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		sub = (const char *)sqlite3_column_text(s, 0);
		if (sub == NULL || strlen(sub) >= subject_len) {
			rc = CM_IOERR;
		} else {
			memcpy(subject_id, sub, strlen(sub) + 1);
			cm_buf_append(out, sqlite3_column_blob(s, 1),
			    (size_t)sqlite3_column_bytes(s, 1));
			rc = CM_OK;
		}
	} else {
		rc = r == SQLITE_DONE ? CM_NOTFOUND : store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_audit_forget_subject(struct cm_db *d, const char *subject_id)
{
	static const char sql_p[] = "DELETE FROM audit_pseudonyms WHERE subject_id = ?";
	static const char sql_o[] = "DELETE FROM audit_openings WHERE subject_id = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql_p)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject_id, -1, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) != CM_OK)
		return rc;
	if ((s = store_stmt(d, sql_o)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject_id, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}
