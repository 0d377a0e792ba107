/* SPDX-License-Identifier: ISC */
/*
 * The DPO console's sessions: the keyed hash of each session id, the
 * token that started it, and when it ends. A session is found only
 * together with its token, and only while that token is not revoked, so
 * the scopes it acts with are always the token's own. Writes run inside
 * the caller's transaction.
 */
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

cm_result
cm_store_console_insert(struct cm_db *d, const uint8_t hash[32], int64_t token_id,
    int64_t now_us, int64_t expires_us)
{
	static const char sql[] = "INSERT INTO console_sessions (hash, token_id, "
	    "created_at, expires_at) VALUES (?, ?, ?, ?)";

	return store_exec(d, sql, "biii", hash, token_id, now_us, expires_us);
}

cm_result
cm_store_console_find(struct cm_db *d, const uint8_t hash[32], struct cm_console_row *row)
{
	static const char sql[] = "SELECT t.name, t.scopes, s.created_at, s.expires_at "
	    "FROM console_sessions s JOIN tokens t ON t.id = s.token_id "
	    "WHERE s.hash = ? AND t.revoked_at IS NULL";
	struct store_query q;
	cm_result rc;

	memset(row, 0, sizeof(*row));
	if ((rc = store_row(&q, d, sql, "b", hash)) == CM_OK) {
		store_column_text(row->cs_token, sizeof(row->cs_token), &q, 0);
		row->cs_scopes = (uint32_t)store_col_int64(&q, 1);
		row->cs_created_us = store_col_int64(&q, 2);
		row->cs_expires_us = store_col_int64(&q, 3);
	}
	store_done(&q);
	return rc;
}

cm_result
cm_store_console_delete(struct cm_db *d, const uint8_t hash[32])
{
	static const char sql[] = "DELETE FROM console_sessions WHERE hash = ?";
	int64_t n = 0;
	cm_result rc;

	if ((rc = store_exec_changes(d, &n, sql, "b", hash)) != CM_OK)
		return rc;
	return n == 0 ? CM_NOTFOUND : CM_OK;
}

cm_result
cm_store_console_purge(struct cm_db *d, int64_t now_us)
{
	static const char sql[] = "DELETE FROM console_sessions WHERE expires_at < ?";

	return store_exec(d, sql, "i", now_us);
}
