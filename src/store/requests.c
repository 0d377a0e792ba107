/* SPDX-License-Identifier: ISC */
/*
 * The tables of data-subject requests: the requests, their timelines and
 * their identity codes. Writes run inside the caller's transaction.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

#define DSR_COLS "id, type, coalesce(subject_id, ''), ident_type, ident_blind, wrapped_key, " \
	"sealed, jurisdiction, source, status, received_at, due_at, extended, " \
	"coalesce(closed_at, 0), updated_at"

/* Reads the DSR_COLS of S into ROW; r_sealed points into S. */
static void
dsr_read(const struct store_query *s, struct cm_dsr_row *r)
{
	memset(r, 0, sizeof(*r));
	store_column_text(r->r_id, sizeof(r->r_id), s, 0);
	store_column_text(r->r_type, sizeof(r->r_type), s, 1);
	store_column_text(r->r_subject, sizeof(r->r_subject), s, 2);
	store_column_text(r->r_ident_type, sizeof(r->r_ident_type), s, 3);
	store_column_blob(r->r_ident_blind, sizeof(r->r_ident_blind), s, 4);
	r->r_has_wrapped = store_column_blob(r->r_wrapped, sizeof(r->r_wrapped), s, 5);
	r->r_sealed = store_col_blob(s, 6);
	r->r_sealed_len = store_col_bytes(s, 6);
	store_column_text(r->r_jurisdiction, sizeof(r->r_jurisdiction), s, 7);
	store_column_text(r->r_source, sizeof(r->r_source), s, 8);
	store_column_text(r->r_status, sizeof(r->r_status), s, 9);
	r->r_received_us = store_col_int64(s, 10);
	r->r_due_us = store_col_int64(s, 11);
	r->r_extended = store_col_int(s, 12) != 0;
	r->r_closed_us = store_col_int64(s, 13);
	r->r_updated_us = store_col_int64(s, 14);
}

cm_result
cm_store_dsr_insert(struct cm_db *d, const struct cm_dsr_row *r)
{
	static const char sql[] = "INSERT INTO dsr_requests (id, type, subject_id, "
	    "ident_type, ident_blind, wrapped_key, sealed, jurisdiction, source, status, "
	    "received_at, due_at, extended, closed_at, updated_at) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

	return store_exec(d, sql, "tttt" "bBB" "ttt" "iiiIi", r->r_id, r->r_type,
	    r->r_subject[0] ? r->r_subject : NULL, r->r_ident_type, r->r_ident_blind,
	    r->r_has_wrapped ? r->r_wrapped : NULL, (size_t)CM_WRAPPED_LEN,
	    r->r_sealed, r->r_sealed_len, r->r_jurisdiction, r->r_source, r->r_status,
	    r->r_received_us, r->r_due_us, (int64_t)r->r_extended, r->r_closed_us,
	    r->r_updated_us);
}

cm_result
cm_store_dsr_get(struct cm_db *d, const char *id, struct cm_dsr_row *r)
{
	static const char sql[] = "SELECT " DSR_COLS " FROM dsr_requests WHERE id = ?";
	struct store_query q;
	cm_result rc;
	uint8_t *copy;

	memset(r, 0, sizeof(*r));
	if ((rc = store_row(&q, d, sql, "t", id)) == CM_OK) {
		dsr_read(&q, r);
		copy = cm_malloc(r->r_sealed_len + 1);
		if (r->r_sealed_len > 0)
			memcpy(copy, r->r_sealed, r->r_sealed_len);
		r->r_sealed = copy;
	}
	store_done(&q);
	return rc;
}

void
cm_dsr_row_clear(struct cm_dsr_row *r)
{
	free((void *)(uintptr_t)r->r_sealed);
	r->r_sealed = NULL;
	r->r_sealed_len = 0;
}

cm_result
cm_store_dsr_find_open(struct cm_db *d, const char *subject, const char *ident_type,
    const uint8_t blind[32], const char *type, char id[31])
{
	static const char sql_subject[] = "SELECT id FROM dsr_requests WHERE subject_id = ? "
	    "AND type = ? AND status NOT IN ('completed', 'denied', 'canceled') "
	    "ORDER BY received_at LIMIT 1";
	static const char sql_ident[] = "SELECT id FROM dsr_requests WHERE subject_id IS NULL "
	    "AND ident_type = ? AND ident_blind = ? AND type = ? "
	    "AND status NOT IN ('completed', 'denied', 'canceled') "
	    "ORDER BY received_at LIMIT 1";
	struct store_query q;
	cm_result rc;

	if (subject != NULL)
		rc = store_row(&q, d, sql_subject, "tt", subject, type);
	else
		rc = store_row(&q, d, sql_ident, "tbt", ident_type, blind, type);
	if (rc == CM_OK)
		store_column_text(id, 31, &q, 0);
	store_done(&q);
	return rc;
}

cm_result
cm_store_dsr_update(struct cm_db *d, const char *id, const char *status, int64_t due_us,
    bool extended, int64_t closed_us, int64_t now_us)
{
	static const char sql[] = "UPDATE dsr_requests SET status = ?, due_at = ?, "
	    "extended = ?, closed_at = ?, updated_at = ? WHERE id = ?";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "tiiIit", status, due_us, (int64_t)extended,
	    closed_us, now_us, id);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_dsr_rehome(struct cm_db *d, const char *id, const char *subject,
    const uint8_t *sealed, size_t len)
{
	static const char sql[] = "UPDATE dsr_requests SET subject_id = ?, sealed = ?, "
	    "wrapped_key = NULL WHERE id = ?";

	return store_exec(d, sql, "tBt", subject, sealed, len, id);
}

static cm_result
dsr_rows(struct store_query *q, int (*fn)(void *, const struct cm_dsr_row *), void *arg)
{
	struct cm_dsr_row row;

	while (store_next(q)) {
		dsr_read(q, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(q);
}

cm_result
cm_store_dsr_of_subject(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_dsr_row *), void *arg)
{
	static const char sql[] = "SELECT " DSR_COLS " FROM dsr_requests "
	    "WHERE subject_id = ? ORDER BY received_at, id";
	struct store_query q;

	store_query(&q, d, sql, "t", subject);
	return dsr_rows(&q, fn, arg);
}

cm_result
cm_store_dsr_list(struct cm_db *d, const struct cm_dsr_query *dq,
    int (*fn)(void *, const struct cm_dsr_row *), void *arg)
{
	/*
	 * One statement for every filter: a NULL parameter selects all. The
	 * cursor is the (due_at, id) of the last row of the previous page.
	 * Each parameter is first compared with its column, which gives it
	 * its type in engines that infer one.
	 */
	static const char sql[] = "SELECT " DSR_COLS " FROM dsr_requests WHERE "
	    "(status = ?1 OR ?1 IS NULL) AND (type = ?2 OR ?2 IS NULL) AND "
	    "(subject_id = ?3 OR ?3 IS NULL) AND "
	    "((due_at < ?4 AND status NOT IN ('completed', 'denied', 'canceled')) OR "
	    "?4 IS NULL) AND "
	    "(due_at > ?5 OR (due_at = ?5 AND id > ?6) OR ?6 IS NULL) "
	    "ORDER BY due_at, id LIMIT ?7";
	struct store_query q;

	store_query(&q, d, sql, "tttIiti", dq->dq_status, dq->dq_type, dq->dq_subject,
	    dq->dq_overdue_at, dq->dq_after_due, dq->dq_after_id, (int64_t)dq->dq_limit);
	return dsr_rows(&q, fn, arg);
}

cm_result
cm_store_dsr_step(struct cm_db *d, const char *id, const char *step, const char *status,
    const char *actor, int64_t at_us, const char *reason, int64_t audit_index)
{
	static const char sql[] = "INSERT INTO dsr_timeline (request_id, seq, step, status, "
	    "actor, at, reason, audit_index) SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, "
	    "?4, ?5, ?6, ?7 FROM dsr_timeline WHERE request_id = ?1";

	return store_exec(d, sql, "ttttiti", id, step, status, actor, at_us, reason,
	    audit_index);
}

cm_result
cm_store_dsr_steps(struct cm_db *d, const char *id,
    int (*fn)(void *, const struct cm_dsr_step_row *), void *arg)
{
	static const char sql[] = "SELECT seq, step, status, actor, at, reason, audit_index "
	    "FROM dsr_timeline WHERE request_id = ? ORDER BY seq";
	struct cm_dsr_step_row st;
	struct store_query q;
	const struct store_query *s;

	store_query(&q, d, sql, "t", id);
	while (store_next(&q)) {
		s = &q;
		st.st_seq = store_col_int64(s, 0);
		st.st_step = store_col_text(s, 1);
		st.st_status = store_col_text(s, 2);
		st.st_actor = store_col_text(s, 3);
		st.st_at_us = store_col_int64(s, 4);
		st.st_reason = store_col_text(s, 5);
		st.st_audit_index = store_col_int64(s, 6);
		if (fn(arg, &st) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_dsr_code_put(struct cm_db *d, const char *id, const uint8_t hash[32],
    int64_t expires_us)
{
	static const char sql_upd[] = "UPDATE dsr_codes SET hash = ?2, expires_at = ?3, "
	    "attempts = 0 WHERE request_id = ?1";
	static const char sql_ins[] = "INSERT INTO dsr_codes (request_id, hash, expires_at, "
	    "attempts) VALUES (?1, ?2, ?3, 0)";

	return store_upsert(d, sql_upd, sql_ins, "tbi", id, hash, expires_us);
}

cm_result
cm_store_dsr_code_get(struct cm_db *d, const char *id, uint8_t hash[32], int64_t *expires_us,
    int64_t *attempts)
{
	static const char sql[] = "SELECT hash, expires_at, attempts FROM dsr_codes "
	    "WHERE request_id = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "t", id)) == CM_OK) {
		if (!store_column_blob(hash, 32, &q, 0))
			rc = CM_IOERR;
		*expires_us = store_col_int64(&q, 1);
		*attempts = store_col_int64(&q, 2);
	}
	store_done(&q);
	return rc;
}

cm_result
cm_store_dsr_code_attempt(struct cm_db *d, const char *id)
{
	static const char sql[] = "UPDATE dsr_codes SET attempts = attempts + 1 "
	    "WHERE request_id = ?";

	return store_exec(d, sql, "t", id);
}

cm_result
cm_store_dsr_code_delete(struct cm_db *d, const char *id)
{
	static const char sql[] = "DELETE FROM dsr_codes WHERE request_id = ?";

	return store_exec(d, sql, "t", id);
}

cm_result
cm_store_dsr_deadlines(struct cm_db *d, int64_t now_us, int64_t soon_us, int64_t *open,
    int64_t *due_soon, int64_t *overdue)
{
	static const char sql[] = "SELECT count(*), "
	    "coalesce(sum(CASE WHEN due_at < ?1 THEN 1 ELSE 0 END), 0), "
	    "coalesce(sum(CASE WHEN due_at >= ?1 AND due_at < ?2 THEN 1 ELSE 0 END), 0) "
	    "FROM dsr_requests WHERE status NOT IN ('completed', 'denied', 'canceled')";
	struct store_query q;
	cm_result rc;

	*open = *due_soon = *overdue = 0;
	if ((rc = store_row(&q, d, sql, "ii", now_us, soon_us)) == CM_OK) {
		*open = store_col_int64(&q, 0);
		*overdue = store_col_int64(&q, 1);
		*due_soon = store_col_int64(&q, 2);
	}
	store_done(&q);
	return rc;
}
