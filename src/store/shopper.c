/* SPDX-License-Identifier: ISC */
/*
 * The rows behind the shopper's preference centre: each subject's link
 * generation (links themselves are MACs and stored nowhere) and the
 * sessions a good link starts, kept only as the keyed hash of their id.
 * Writes run inside the caller's transaction.
 */
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

cm_result
cm_store_link_generation(struct cm_db *d, const char *subject, int64_t *gen)
{
	static const char sql[] = "SELECT generation FROM link_generations "
	    "WHERE subject_id = ?";
	struct store_query q;
	cm_result rc;

	*gen = 0;
	if ((rc = store_row(&q, d, sql, "t", subject)) == CM_OK)
		*gen = store_col_int64(&q, 0);
	store_done(&q);
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

cm_result
cm_store_link_revoke(struct cm_db *d, const char *subject, int64_t now_us, int64_t *gen)
{
	static const char sql_upd[] = "UPDATE link_generations SET generation = ?2, "
	    "revoked_at = ?3 WHERE subject_id = ?1";
	static const char sql_ins[] = "INSERT INTO link_generations (subject_id, generation, "
	    "revoked_at) VALUES (?1, ?2, ?3)";
	cm_result rc;

	if ((rc = cm_store_link_generation(d, subject, gen)) != CM_OK)
		return rc;
	(*gen)++;
	return store_upsert(d, sql_upd, sql_ins, "tii", subject, *gen, now_us);
}

cm_result
cm_store_session_insert(struct cm_db *d, const uint8_t hash[32], const char *kind,
    const char *subject, int64_t now_us, int64_t expires_us)
{
	static const char sql[] = "INSERT INTO sessions (hash, kind, subject_id, "
	    "created_at, expires_at) VALUES (?, ?, ?, ?, ?)";

	return store_exec(d, sql, "bttii", hash, kind, subject, now_us, expires_us);
}

cm_result
cm_store_session_find(struct cm_db *d, const uint8_t hash[32], struct cm_session_row *row)
{
	static const char sql[] = "SELECT kind, subject_id, created_at, expires_at "
	    "FROM sessions WHERE hash = ?";
	struct store_query q;
	cm_result rc;

	memset(row, 0, sizeof(*row));
	if ((rc = store_row(&q, d, sql, "b", hash)) == CM_OK) {
		store_column_text(row->ss_kind, sizeof(row->ss_kind), &q, 0);
		store_column_text(row->ss_subject, sizeof(row->ss_subject), &q, 1);
		row->ss_created_us = store_col_int64(&q, 2);
		row->ss_expires_us = store_col_int64(&q, 3);
	}
	store_done(&q);
	return rc;
}

cm_result
cm_store_session_delete(struct cm_db *d, const uint8_t hash[32])
{
	static const char sql[] = "DELETE FROM sessions WHERE hash = ?";
	int64_t n = 0;
	cm_result rc;

	if ((rc = store_exec_changes(d, &n, sql, "b", hash)) != CM_OK)
		return rc;
	return n == 0 ? CM_NOTFOUND : CM_OK;
}

cm_result
cm_store_sessions_end_subject(struct cm_db *d, const char *subject, int64_t *n)
{
	static const char sql[] = "DELETE FROM sessions WHERE subject_id = ?";
	int64_t changed = 0;
	cm_result rc;

	rc = store_exec_changes(d, &changed, sql, "t", subject);
	if (n != NULL)
		*n = changed;
	return rc;
}

cm_result
cm_store_sessions_purge(struct cm_db *d, int64_t now_us)
{
	static const char sql[] = "DELETE FROM sessions WHERE expires_at < ?";

	return store_exec(d, sql, "i", now_us);
}
