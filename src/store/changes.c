/* SPDX-License-Identifier: ISC */
/*
 * The change feed's table: one row per consent, preference or suppression
 * change and per erasure, in commit order (seq). Writes run inside the
 * caller's transaction, which also carries the change's audit entry, so a
 * change is in the feed exactly when it is committed.
 */
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

cm_result
cm_store_change_insert(struct cm_db *d, const char *kind, int64_t at_us,
    const char *subject, const char *type, const uint8_t *blind, const char *body)
{
	static const char sql[] = "INSERT INTO changes (kind, at, subject_id, type, "
	    "blind, body) VALUES (?, ?, ?, ?, ?, ?)";

	return store_exec(d, sql, "tittbt", kind, at_us, subject, type, blind, body);
}

cm_result
cm_store_changes_after(struct cm_db *d, int64_t after, int limit,
    int (*fn)(void *, const struct cm_change_row *), void *arg)
{
	static const char sql[] = "SELECT seq, kind, at, subject_id, type, blind, body "
	    "FROM changes WHERE seq > ? ORDER BY seq LIMIT ?";
	struct cm_change_row r;
	struct store_query q;

	store_query(&q, d, sql, "ii", after, (int64_t)limit);
	while (store_next(&q)) {
		memset(&r, 0, sizeof(r));
		r.ch_seq = store_col_int64(&q, 0);
		store_column_text(r.ch_kind, sizeof(r.ch_kind), &q, 1);
		r.ch_at_us = store_col_int64(&q, 2);
		store_column_text(r.ch_subject, sizeof(r.ch_subject), &q, 3);
		store_column_text(r.ch_type, sizeof(r.ch_type), &q, 4);
		r.ch_has_blind = store_column_blob(r.ch_blind, sizeof(r.ch_blind),
		    &q, 5);
		r.ch_body = store_col_text(&q, 6);
		if (r.ch_body == NULL)
			r.ch_body = "{}";
		if (fn(arg, &r) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_changes_last(struct cm_db *d, int64_t *seq)
{
	/*
	 * The largest seq ever given, even when its row was deleted since:
	 * kept by the engine (AUTOINCREMENT's table in SQLite, the identity
	 * column's sequence in PostgreSQL), not in the table.
	 */
	static const char sqlite_seq[] = "SELECT seq FROM sqlite_sequence WHERE name = 'changes'";
	static const char pg_seq[] = "SELECT last_value FROM changes_seq_seq WHERE is_called";
	struct store_query q;
	cm_result rc;

	*seq = 0;
	rc = store_row(&q, d, d->db_pg != NULL ? pg_seq : sqlite_seq, "");
	if (rc == CM_OK)
		*seq = store_col_int64(&q, 0);
	store_done(&q);
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

cm_result
cm_store_changes_forget(struct cm_db *d, const char *subject)
{
	static const char sql[] = "DELETE FROM changes WHERE subject_id = ?";

	return store_exec(d, sql, "t", subject);
}
