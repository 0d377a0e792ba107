/*
 * Subjects, their identifiers (by blind index, values sealed) and profile
 * attributes (values sealed). Every function runs inside the caller's
 * transaction except the reads, which also work outside one.
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

cm_result
cm_store_subject_insert(struct cm_db *d, const char *id, const uint8_t wrapped[CM_WRAPPED_LEN],
    int64_t now)
{
	static const char sql[] = "INSERT INTO subjects (id, state, wrapped_key, "
	    "created_at, updated_at) VALUES (?, 'active', ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, wrapped, CM_WRAPPED_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, now);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_subject_get(struct cm_db *d, const char *id, struct cm_subject_row *row)
{
	static const char sql[] = "SELECT id, state, wrapped_key, merged_into, created_at, "
	    "updated_at FROM subjects WHERE id = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if ((rc = store_step_row(d, s, __func__)) == CM_OK) {
		memset(row, 0, sizeof(*row));
		store_column_text(row->s_id, sizeof(row->s_id), s, 0);
		store_column_text(row->s_state, sizeof(row->s_state), s, 1);
		if (sqlite3_column_bytes(s, 2) == CM_WRAPPED_LEN) {
			memcpy(row->s_wrapped, sqlite3_column_blob(s, 2), CM_WRAPPED_LEN);
			row->s_has_key = true;
		}
		store_column_text(row->s_merged_into, sizeof(row->s_merged_into), s, 3);
		row->s_created_us = sqlite3_column_int64(s, 4);
		row->s_updated_us = sqlite3_column_int64(s, 5);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_subject_merge_away(struct cm_db *d, const char *id, const char *into, int64_t now)
{
	static const char sql[] = "UPDATE subjects SET merged_into = ?, wrapped_key = NULL, "
	    "updated_at = ? WHERE id = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, into, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_subject_touch(struct cm_db *d, const char *id, int64_t now)
{
	static const char sql[] = "UPDATE subjects SET updated_at = ? WHERE id = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_identifier_owner(struct cm_db *d, const char *type, const uint8_t blind[32],
    char subject[CM_SUBJECT_ID_LEN + 1])
{
	static const char sql[] = "SELECT subject_id FROM identifiers "
	    "WHERE type = ? AND blind = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, blind, 32, SQLITE_STATIC);
	if ((rc = store_step_row(d, s, __func__)) == CM_OK) {
		store_column_text(subject, CM_SUBJECT_ID_LEN + 1, s, 0);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_identifier_insert(struct cm_db *d, const char *subject,
    const struct cm_ident_row *row, int64_t now)
{
	static const char sql[] = "INSERT INTO identifiers (type, blind, subject_id, sealed, "
	    "source, verified, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, row->i_type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, row->i_blind, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, subject, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, row->i_sealed, (int)row->i_sealed_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, row->i_source, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, row->i_verified);
	sqlite3_bind_int64(s, 7, now);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_identifier_delete(struct cm_db *d, const char *subject, const char *type,
    const uint8_t blind[32])
{
	static const char sql[] = "DELETE FROM identifiers WHERE type = ? AND blind = ? "
	    "AND subject_id = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, blind, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, subject, -1, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) != CM_OK)
		return rc;
	return sqlite3_changes(d->db_conn) == 0 ? CM_NOTFOUND : CM_OK;
}

cm_result
cm_store_identifier_move(struct cm_db *d, const char *type, const uint8_t blind[32],
    const char *subject, const uint8_t *sealed, size_t len)
{
	static const char sql[] = "UPDATE identifiers SET subject_id = ?, sealed = ? "
	    "WHERE type = ? AND blind = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, sealed, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, blind, 32, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

struct ident_each {
	int	(*fn)(void *, const struct cm_ident_row *);
	void	*arg;
};

static int
ident_row(void *arg, sqlite3_stmt *s)
{
	struct ident_each *e = arg;
	struct cm_ident_row row;

	memset(&row, 0, sizeof(row));
	store_column_text(row.i_type, sizeof(row.i_type), s, 0);
	if (sqlite3_column_bytes(s, 1) == 32)
		memcpy(row.i_blind, sqlite3_column_blob(s, 1), 32);
	row.i_sealed = sqlite3_column_blob(s, 2);
	row.i_sealed_len = (size_t)sqlite3_column_bytes(s, 2);
	store_column_text(row.i_source, sizeof(row.i_source), s, 3);
	row.i_verified = sqlite3_column_int(s, 4) != 0;
	row.i_created_us = sqlite3_column_int64(s, 5);
	return e->fn(e->arg, &row);
}

cm_result
cm_store_identifier_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_ident_row *), void *arg)
{
	struct ident_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT type, blind, sealed, source, verified, "
	    "created_at FROM identifiers WHERE subject_id = ? ORDER BY created_at, type",
	    subject, ident_row, &e);
}

struct attr_each {
	int	(*fn)(void *, const char *, const uint8_t *, size_t);
	void	*arg;
};

static int
attr_row(void *arg, sqlite3_stmt *s)
{
	struct attr_each *e = arg;

	return e->fn(e->arg, (const char *)sqlite3_column_text(s, 0), sqlite3_column_blob(s, 1),
	    (size_t)sqlite3_column_bytes(s, 1));
}

cm_result
cm_store_profile_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const char *, const uint8_t *, size_t), void *arg)
{
	struct attr_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT name, sealed FROM profile_attributes "
	    "WHERE subject_id = ? ORDER BY name", subject, attr_row, &e);
}

cm_result
cm_store_profile_put(struct cm_db *d, const char *subject, const char *name,
    const uint8_t *sealed, size_t len, int64_t now)
{
	static const char sql[] = "INSERT OR REPLACE INTO profile_attributes (subject_id, "
	    "name, sealed, updated_at) VALUES (?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, sealed, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_profile_delete(struct cm_db *d, const char *subject, const char *name)
{
	static const char sql[] = "DELETE FROM profile_attributes WHERE subject_id = ? "
	    "AND name = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_profile_count(struct cm_db *d, const char *subject, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM profile_attributes WHERE subject_id = ?";
	sqlite3_stmt *s;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return r == SQLITE_ROW ? CM_OK : store_rc(r);
}

struct opening {
	uint64_t	 idx;
	uint8_t		*sealed;
	size_t		 len;
};

cm_result
cm_store_audit_openings_rehome(struct cm_db *d, const char *from, const char *to,
    int (*fn)(void *, uint64_t, const uint8_t *, size_t, struct cm_buf *), void *arg)
{
	sqlite3_stmt *s = NULL, *u = NULL;
	struct opening *list = NULL;
	struct cm_buf out = { 0 };
	size_t n = 0, i;
	cm_result rc = CM_OK;
	int r;

	/* Read them all first: rows are not updated under a running scan. */
	r = sqlite3_prepare_v2(d->db_conn, "SELECT idx, sealed FROM audit_openings "
	    "WHERE subject_id = ? ORDER BY idx", -1, &s, NULL);
	if (r != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_text(s, 1, from, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		list = cm_reallocarray(list, n + 1, sizeof(*list));
		list[n].idx = (uint64_t)sqlite3_column_int64(s, 0);
		list[n].len = (size_t)sqlite3_column_bytes(s, 1);
		list[n].sealed = cm_malloc(list[n].len);
		memcpy(list[n].sealed, sqlite3_column_blob(s, 1), list[n].len);
		n++;
	}
	if (r != SQLITE_DONE)
		goto sqlfail;
	r = sqlite3_prepare_v2(d->db_conn, "UPDATE audit_openings SET subject_id = ?, "
	    "sealed = ? WHERE idx = ?", -1, &u, NULL);
	if (r != SQLITE_OK)
		goto sqlfail;
	for (i = 0; i < n; i++) {
		cm_buf_reset(&out);
		if (fn(arg, list[i].idx, list[i].sealed, list[i].len, &out) != 0) {
			rc = CM_IOERR;
			goto out;
		}
		sqlite3_bind_text(u, 1, to, -1, SQLITE_STATIC);
		sqlite3_bind_blob(u, 2, out.b_data, (int)out.b_len, SQLITE_STATIC);
		sqlite3_bind_int64(u, 3, (sqlite3_int64)list[i].idx);
		if ((rc = store_step_done(d, u, __func__)) != CM_OK)
			goto out;
	}
	goto out;
sqlfail:
	store_log_error(d, __func__, r);
	rc = store_rc(r);
out:
	for (i = 0; i < n; i++)
		free(list[i].sealed);
	free(list);
	cm_buf_free(&out);
	sqlite3_finalize(s);
	sqlite3_finalize(u);
	return rc;
}
