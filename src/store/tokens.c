/*
 * The API token table. Only a token's public selector and the keyed hash
 * of the whole token are stored; the token itself is shown once by
 * 'consentd token create' and never kept. Writes run inside the caller's
 * transaction, which also carries the change's audit entry.
 */
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

static void
token_row_read(sqlite3_stmt *s, struct cm_token_row *row)
{
	const void *h;
	const char *name;

	memset(row, 0, sizeof(*row));
	row->t_id = sqlite3_column_int64(s, 0);
	name = (const char *)sqlite3_column_text(s, 1);
	if (name != NULL)
		strncpy(row->t_name, name, CM_TOKEN_NAME_MAX);
	h = sqlite3_column_blob(s, 2);
	if (h != NULL && sqlite3_column_bytes(s, 2) == 32)
		memcpy(row->t_hash, h, 32);
	row->t_scopes = (uint32_t)sqlite3_column_int64(s, 3);
	row->t_created_us = sqlite3_column_int64(s, 4);
	row->t_revoked_us = sqlite3_column_int64(s, 5);
}

cm_result
cm_store_token_create(struct cm_db *d, const char *name, const char *selector,
    const uint8_t hash[32], uint32_t scopes, bool replace, int64_t now_us)
{
	static const char sql_revoke[] = "UPDATE tokens SET revoked_at = ? "
	    "WHERE name = ? AND revoked_at IS NULL";
	static const char sql_insert[] = "INSERT INTO tokens (name, selector, "
	    "hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)";
	sqlite3_stmt *s;
	cm_result rc;
	int r;

	if (replace) {
		if ((s = store_stmt(d, sql_revoke)) == NULL)
			return CM_IOERR;
		sqlite3_bind_int64(s, 1, now_us);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		r = sqlite3_step(s);
		sqlite3_reset(s);
		if (r != SQLITE_DONE) {
			store_log_error(d, __func__, r);
			return store_rc(r);
		}
	}
	if ((s = store_stmt(d, sql_insert)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, selector, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, scopes);
	sqlite3_bind_int64(s, 5, now_us);
	r = sqlite3_step(s);
	sqlite3_reset(s);
	if (r == SQLITE_DONE)
		return CM_OK;
	rc = store_rc(r);
	if (rc != CM_CONFLICT)
		store_log_error(d, __func__, r);
	return rc;
}

cm_result
cm_store_token_find(struct cm_db *d, const char *selector, struct cm_token_row *row)
{
	static const char sql[] = "SELECT id, name, hash, scopes, created_at, "
	    "coalesce(revoked_at, 0) FROM tokens WHERE selector = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, selector, -1, SQLITE_STATIC);
	if ((rc = store_step_row(d, s, __func__)) == CM_OK) {
		token_row_read(s, row);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_token_revoke(struct cm_db *d, const char *name, int64_t now_us)
{
	static const char sql[] = "UPDATE tokens SET revoked_at = ? "
	    "WHERE name = ? AND revoked_at IS NULL";
	sqlite3_stmt *s;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int64(s, 1, now_us);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	sqlite3_reset(s);
	if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		return store_rc(r);
	}
	return sqlite3_changes(d->db_conn) == 0 ? CM_NOTFOUND : CM_OK;
}

cm_result
cm_store_token_list(struct cm_db *d, int (*fn)(void *, const struct cm_token_row *),
    void *arg)
{
	static const char sql[] = "SELECT id, name, hash, scopes, created_at, "
	    "coalesce(revoked_at, 0) FROM tokens ORDER BY id DESC";
	struct cm_token_row row;
	sqlite3_stmt *s;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		token_row_read(s, &row);
		if (fn(arg, &row) != 0) {
			r = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		return store_rc(r);
	}
	return CM_OK;
}
