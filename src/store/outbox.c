/* SPDX-License-Identifier: ISC */
/*
 * The tables of the outbox (messages and webhooks waiting to go out, and
 * what became of them), of downstream systems, and of what each system
 * reported for each request. Writes run inside the caller's transaction.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

#define OUTBOX_COLS "id, kind, coalesce(request_id, ''), coalesce(subject_id, ''), name, " \
	"channel, coalesce(system, ''), status, attempts, next_at, coalesce(last_error, ''), " \
	"created_at, coalesce(sent_at, 0), wrapped_key, body"

/* Reads the OUTBOX_COLS of S into R; o_body points into S. */
static void
outbox_read(const struct store_query *s, struct cm_outbox_row *r)
{
	memset(r, 0, sizeof(*r));
	store_column_text(r->o_id, sizeof(r->o_id), s, 0);
	store_column_text(r->o_kind, sizeof(r->o_kind), s, 1);
	store_column_text(r->o_request, sizeof(r->o_request), s, 2);
	store_column_text(r->o_subject, sizeof(r->o_subject), s, 3);
	store_column_text(r->o_name, sizeof(r->o_name), s, 4);
	store_column_text(r->o_channel, sizeof(r->o_channel), s, 5);
	store_column_text(r->o_system, sizeof(r->o_system), s, 6);
	store_column_text(r->o_status, sizeof(r->o_status), s, 7);
	r->o_attempts = store_col_int64(s, 8);
	r->o_next_us = store_col_int64(s, 9);
	store_column_text(r->o_error, sizeof(r->o_error), s, 10);
	r->o_created_us = store_col_int64(s, 11);
	r->o_sent_us = store_col_int64(s, 12);
	r->o_has_wrapped = store_column_blob(r->o_wrapped, sizeof(r->o_wrapped), s, 13);
	r->o_body = store_col_blob(s, 14);
	r->o_body_len = r->o_body != NULL ? store_col_bytes(s, 14) : 0;
}

cm_result
cm_store_outbox_insert(struct cm_db *d, const struct cm_outbox_row *r)
{
	static const char sql[] = "INSERT INTO outbox (id, kind, request_id, subject_id, "
	    "name, channel, system, status, attempts, next_at, last_error, created_at, "
	    "sent_at, wrapped_key, body) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, NULL, "
	    "?, NULL, ?, ?)";

	return store_exec(d, sql, "ttttttt" "ii" "BB", r->o_id, r->o_kind,
	    r->o_request[0] ? r->o_request : NULL, r->o_subject[0] ? r->o_subject : NULL,
	    r->o_name, r->o_channel, r->o_system[0] ? r->o_system : NULL, r->o_next_us,
	    r->o_created_us, r->o_has_wrapped ? r->o_wrapped : NULL, (size_t)CM_WRAPPED_LEN,
	    r->o_body, r->o_body_len);
}

cm_result
cm_store_outbox_get(struct cm_db *d, const char *id, struct cm_outbox_row *r)
{
	static const char sql[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?";
	struct store_query q;
	uint8_t *copy = NULL;
	cm_result rc;

	memset(r, 0, sizeof(*r));
	if ((rc = store_row(&q, d, sql, "t", id)) == CM_OK) {
		outbox_read(&q, r);
		if (r->o_body != NULL) {
			copy = cm_malloc(r->o_body_len + 1);
			memcpy(copy, r->o_body, r->o_body_len);
		}
		r->o_body = copy;
	}
	store_done(&q);
	return rc;
}

void
cm_outbox_row_clear(struct cm_outbox_row *r)
{
	free((void *)(uintptr_t)r->o_body);
	r->o_body = NULL;
	r->o_body_len = 0;
}

cm_result
cm_store_outbox_list(struct cm_db *d, const char *status, const char *request, int limit,
    int (*fn)(void *, const struct cm_outbox_row *), void *arg)
{
	static const char sql[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE "
	    "(status = ?1 OR ?1 IS NULL) AND (request_id = ?2 OR ?2 IS NULL) "
	    "ORDER BY created_at DESC, id DESC LIMIT ?3";
	struct cm_outbox_row row;
	struct store_query q;

	store_query(&q, d, sql, "tti", status, request, (int64_t)limit);
	while (store_next(&q)) {
		outbox_read(&q, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_outbox_page(struct cm_db *d, const char *status, int64_t before_us,
    const char *before_id, int limit, int (*fn)(void *, const struct cm_outbox_row *),
    void *arg)
{
	static const char sql[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE "
	    "(status = ?1 OR ?1 IS NULL) AND (created_at < ?3 OR "
	    "(created_at = ?3 AND id < ?2) OR ?2 IS NULL) "
	    "ORDER BY created_at DESC, id DESC LIMIT ?4";
	struct cm_outbox_row row;
	struct store_query q;

	store_query(&q, d, sql, "ttii", status, before_id, before_us, (int64_t)limit);
	while (store_next(&q)) {
		outbox_read(&q, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_outbox_due(struct cm_db *d, int64_t now_us, int limit,
    int (*fn)(void *, const char *), void *arg)
{
	static const char sql[] = "SELECT id FROM outbox WHERE status = 'pending' AND "
	    "next_at <= ? ORDER BY next_at, id LIMIT ?";
	struct store_query q;

	store_query(&q, d, sql, "ii", now_us, (int64_t)limit);
	while (store_next(&q))
		if (fn(arg, store_col_text(&q, 0)) != 0)
			break;
	return store_done(&q);
}

cm_result
cm_store_outbox_claim(struct cm_db *d, const char *id, int64_t now_us, int64_t until_us)
{
	static const char sql[] = "UPDATE outbox SET next_at = ?3 WHERE id = ?1 AND "
	    "status = 'pending' AND next_at <= ?2";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "tii", id, now_us, until_us);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_outbox_sent(struct cm_db *d, const char *id, int64_t now_us)
{
	static const char sql[] = "UPDATE outbox SET status = 'sent', sent_at = ?, "
	    "attempts = attempts + 1, last_error = NULL, body = NULL, wrapped_key = NULL "
	    "WHERE id = ? AND status = 'pending'";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "it", now_us, id);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_outbox_failed(struct cm_db *d, const char *id, int64_t attempts, int64_t next_us,
    const char *error, bool dead, bool wipe)
{
	/*
	 * The flags are integers (0 or 1) and compared as such: PostgreSQL
	 * takes no integer for a truth value.
	 */
	static const char sql[] = "UPDATE outbox SET attempts = ?, next_at = ?, "
	    "last_error = ?, status = CASE WHEN ? <> 0 THEN 'dead' ELSE 'pending' END, "
	    "body = CASE WHEN ? <> 0 THEN NULL ELSE body END, "
	    "wrapped_key = CASE WHEN ? <> 0 THEN NULL ELSE wrapped_key END "
	    "WHERE id = ? AND status = 'pending'";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "iitiiit", attempts, next_us, error,
	    (int64_t)dead, (int64_t)wipe, (int64_t)wipe, id);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_outbox_retry(struct cm_db *d, const char *id, int64_t now_us)
{
	static const char sql[] = "UPDATE outbox SET status = 'pending', attempts = 0, "
	    "next_at = ? WHERE id = ? AND status = 'dead'";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "it", now_us, id);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_outbox_forget(struct cm_db *d, const char *subject, int64_t *n)
{
	static const char sql[] = "DELETE FROM outbox WHERE subject_id = ? AND "
	    "status <> 'sent'";

	return store_exec_changes(d, n, sql, "t", subject);
}

cm_result
cm_store_outbox_status_of(struct cm_db *d, const char *request, const char *name,
    char status[8])
{
	static const char sql[] = "SELECT status FROM outbox WHERE request_id = ? AND "
	    "name = ? ORDER BY created_at DESC, id DESC LIMIT 1";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "tt", request, name)) == CM_OK)
		store_column_text(status, 8, &q, 0);
	store_done(&q);
	return rc;
}

/* ---- systems ------------------------------------------------------------ */

static void
system_read(const struct store_query *s, struct cm_system_row *r)
{
	const void *p;
	size_t n;

	memset(r, 0, sizeof(*r));
	store_column_text(r->s_name, sizeof(r->s_name), s, 0);
	store_column_text(r->s_url, sizeof(r->s_url), s, 1);
	store_column_text(r->s_events, sizeof(r->s_events), s, 2);
	p = store_col_blob(s, 3);
	n = store_col_bytes(s, 3);
	if (p != NULL && n <= sizeof(r->s_secret)) {
		memcpy(r->s_secret, p, n);
		r->s_secret_len = n;
	}
	r->s_created_us = store_col_int64(s, 4);
}

cm_result
cm_store_system_insert(struct cm_db *d, const struct cm_system_row *r)
{
	static const char sql[] = "INSERT INTO systems (name, url, events, secret, "
	    "created_at) VALUES (?, ?, ?, ?, ?)";

	return store_exec(d, sql, "tttBi", r->s_name, r->s_url, r->s_events, r->s_secret,
	    r->s_secret_len, r->s_created_us);
}

cm_result
cm_store_system_get(struct cm_db *d, const char *name, struct cm_system_row *r)
{
	static const char sql[] = "SELECT name, url, events, secret, created_at "
	    "FROM systems WHERE name = ?";
	struct store_query q;
	cm_result rc;

	memset(r, 0, sizeof(*r));
	if ((rc = store_row(&q, d, sql, "t", name)) == CM_OK)
		system_read(&q, r);
	store_done(&q);
	return rc;
}

cm_result
cm_store_system_delete(struct cm_db *d, const char *name)
{
	static const char sql[] = "DELETE FROM systems WHERE name = ?";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "t", name);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_systems_list(struct cm_db *d, int (*fn)(void *, const struct cm_system_row *),
    void *arg)
{
	static const char sql[] = "SELECT name, url, events, secret, created_at "
	    "FROM systems ORDER BY name";
	struct cm_system_row row;
	struct store_query q;

	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		system_read(&q, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}

/* ---- what systems reported ---------------------------------------------- */

cm_result
cm_store_dsr_system_put(struct cm_db *d, const char *request, const char *system,
    const char *status, const char *detail, int64_t now_us)
{
	static const char sql_upd[] = "UPDATE dsr_systems SET status = ?3, detail = ?4, "
	    "updated_at = ?5 WHERE request_id = ?1 AND system = ?2";
	static const char sql_ins[] = "INSERT INTO dsr_systems (request_id, system, status, "
	    "detail, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)";

	return store_upsert(d, sql_upd, sql_ins, "ttt" "ti", request, system, status, detail,
	    now_us);
}

cm_result
cm_store_dsr_system_get(struct cm_db *d, const char *request, const char *system,
    char status[16])
{
	static const char sql[] = "SELECT status FROM dsr_systems WHERE request_id = ? "
	    "AND system = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "tt", request, system)) == CM_OK)
		store_column_text(status, 16, &q, 0);
	store_done(&q);
	return rc;
}

cm_result
cm_store_dsr_systems(struct cm_db *d, const char *request,
    int (*fn)(void *, const char *, const char *, const char *, int64_t), void *arg)
{
	static const char sql[] = "SELECT system, status, detail, updated_at FROM dsr_systems "
	    "WHERE request_id = ? ORDER BY system";
	struct store_query q;
	const struct store_query *s;

	store_query(&q, d, sql, "t", request);
	while (store_next(&q)) {
		s = &q;
		if (fn(arg, store_col_text(s, 0),
		    store_col_text(s, 1),
		    store_col_text(s, 2), store_col_int64(s, 3)) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_outbox_schedule(struct cm_db *d, const char *request, const char *name,
    int64_t due_us)
{
	static const char sql[] = "UPDATE outbox SET next_at = ? WHERE request_id = ? AND "
	    "name = ? AND status = 'pending'";

	return store_exec(d, sql, "itt", due_us, request, name);
}

cm_result
cm_store_outbox_last(struct cm_db *d, const char *subject, const char *name,
    const char *system, char status[8], int64_t *at_us)
{
	static const char sql[] = "SELECT status, coalesce(sent_at, created_at) FROM outbox "
	    "WHERE subject_id = ? AND name = ? AND system = ? "
	    "ORDER BY created_at DESC, id DESC LIMIT 1";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "ttt", subject, name, system)) == CM_OK) {
		store_column_text(status, 8, &q, 0);
		*at_us = store_col_int64(&q, 1);
	}
	store_done(&q);
	return rc;
}

cm_result
cm_store_systems_any(struct cm_db *d, const char *quoted_event, bool *any)
{
	static const char sql[] = "SELECT 1 FROM systems WHERE instr(events, ?) > 0 LIMIT 1";
	struct store_query q;
	cm_result rc;

	*any = false;
	rc = store_row(&q, d, sql, "t", quoted_event);
	store_done(&q);
	if (rc == CM_NOTFOUND)
		return CM_OK;
	*any = rc == CM_OK;
	return rc;
}

cm_result
cm_store_outbox_of_subject(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_outbox_row *), void *arg)
{
	static const char sql[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE subject_id = ? "
	    "ORDER BY created_at, id";
	struct cm_outbox_row row;
	struct store_query q;

	store_query(&q, d, sql, "t", subject);
	while (store_next(&q)) {
		outbox_read(&q, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_outbox_rehome(struct cm_db *d, const char *id, const char *subject,
    const uint8_t *body, size_t len)
{
	static const char sql[] = "UPDATE outbox SET subject_id = ?, body = coalesce(?, body) "
	    "WHERE id = ?";

	return store_exec(d, sql, "tBt", subject, body, len, id);
}

cm_result
cm_store_outbox_depth(struct cm_db *d, int64_t *pending, int64_t *dead)
{
	/* Counted on the (status, next_at) index: delivered rows are never read. */
	static const char sql[] = "SELECT status, count(*) FROM outbox "
	    "WHERE status IN ('pending', 'dead') GROUP BY status";
	struct store_query q;
	const char *st;

	*pending = *dead = 0;
	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		st = store_col_text(&q, 0);
		if (st != NULL && strcmp(st, "pending") == 0)
			*pending = store_col_int64(&q, 1);
		else if (st != NULL && strcmp(st, "dead") == 0)
			*dead = store_col_int64(&q, 1);
	}
	return store_done(&q);
}
