/* SPDX-License-Identifier: ISC */
/*
 * The API token table. Only a token's public selector and the keyed hash
 * of the whole token are stored; the token itself is shown once by
 * 'consentd token create' and never kept. Writes run inside the caller's
 * transaction, which also carries the change's audit entry.
 */
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

/* Revokes the active token of a name: ?1 the time, ?2 the name. */
static const char token_revoke_sql[] = "UPDATE tokens SET revoked_at = ? "
    "WHERE name = ? AND revoked_at IS NULL";

static void
token_row_read(sqlite3_stmt *s, struct cm_token_row *row)
{
	memset(row, 0, sizeof(*row));
	row->t_id = sqlite3_column_int64(s, 0);
	store_column_text(row->t_name, sizeof(row->t_name), s, 1);
	store_column_blob(row->t_hash, sizeof(row->t_hash), s, 2);
	row->t_scopes = (uint32_t)sqlite3_column_int64(s, 3);
	row->t_created_us = sqlite3_column_int64(s, 4);
	row->t_revoked_us = sqlite3_column_int64(s, 5);
}

cm_result
cm_store_token_create(struct cm_db *d, const char *name, const char *selector,
    const uint8_t hash[32], uint32_t scopes, bool replace, int64_t now_us)
{
	static const char sql_insert[] = "INSERT INTO tokens (name, selector, "
	    "hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)";
	cm_result rc;

	if (replace && (rc = store_exec(d, token_revoke_sql, "it", now_us, name)) != CM_OK)
		return rc;
	return store_exec(d, sql_insert, "ttbii", name, selector, hash, (int64_t)scopes,
	    now_us);
}

cm_result
cm_store_token_find(struct cm_db *d, const char *selector, struct cm_token_row *row)
{
	static const char sql[] = "SELECT id, name, hash, scopes, created_at, "
	    "coalesce(revoked_at, 0) FROM tokens WHERE selector = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "t", selector)) == CM_OK)
		token_row_read(q.q_stmt, row);
	store_done(&q);
	return rc;
}

cm_result
cm_store_token_revoke(struct cm_db *d, const char *name, int64_t now_us)
{
	int64_t n;
	cm_result rc;

	if ((rc = store_exec_changes(d, &n, token_revoke_sql, "it", now_us, name)) != CM_OK)
		return rc;
	return n == 0 ? CM_NOTFOUND : CM_OK;
}

cm_result
cm_store_token_list(struct cm_db *d, int (*fn)(void *, const struct cm_token_row *),
    void *arg)
{
	static const char sql[] = "SELECT id, name, hash, scopes, created_at, "
	    "coalesce(revoked_at, 0) FROM tokens ORDER BY id DESC";
	struct cm_token_row row;
	struct store_query q;

	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		token_row_read(q.q_stmt, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}
