/* SPDX-License-Identifier: ISC */
/*
 * The store's side of retention (src/core/retention.c): finding closed
 * requests, expired packages and delivered outbox rows past their period
 * and deleting them, a batch at a time, and reading and replacing sealed
 * consent evidence for its minimisation. Every list is bounded and resumes
 * after a key, so a sweep holds the write lock for one short batch at a
 * time. Writes run inside the caller's transaction.
 */
#include <stdint.h>
#include <string.h>

#include "store_int.h"

#define PKG_COLS "id, request_id, subject_id, format, wrapped_key, size, created_at, expires_at"

/*
 * A closed request of table alias r past the period (closed before
 * parameter P). One with a message still to go keeps it company until it
 * has gone.
 */
#define CLOSED_WHERE(p) \
	"r.status IN ('completed', 'denied', 'canceled') AND r.closed_at IS NOT NULL AND " \
	"r.closed_at < " #p " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE " \
	"o.request_id = r.id AND o.status = 'pending')"

cm_result
cm_store_retention_requests(struct cm_db *d, const char *after, int64_t before_us, int limit,
    int (*fn)(void *, const char *), void *arg)
{
	static const char sql[] = "SELECT id FROM dsr_requests r WHERE id > ? AND "
	    CLOSED_WHERE(?) " ORDER BY id LIMIT ?";
	struct store_query q;

	store_query(&q, d, sql, "tii", after, before_us, (int64_t)limit);
	while (store_next(&q))
		if (fn(arg, store_col_text(&q, 0)) != 0)
			break;
	return store_done(&q);
}

static void
package_row(const struct store_query *s, struct cm_package_row *p)
{
	memset(p, 0, sizeof(*p));
	store_column_text(p->pk_id, sizeof(p->pk_id), s, 0);
	store_column_text(p->pk_request, sizeof(p->pk_request), s, 1);
	store_column_text(p->pk_subject, sizeof(p->pk_subject), s, 2);
	store_column_text(p->pk_format, sizeof(p->pk_format), s, 3);
	(void)store_column_blob(p->pk_wrapped, sizeof(p->pk_wrapped), s, 4);
	p->pk_size = store_col_int64(s, 5);
	p->pk_created_us = store_col_int64(s, 6);
	p->pk_expires_us = store_col_int64(s, 7);
}

cm_result
cm_store_packages_of_request(struct cm_db *d, const char *id,
    int (*fn)(void *, const struct cm_package_row *), void *arg)
{
	static const char sql[] = "SELECT " PKG_COLS " FROM dsr_packages "
	    "WHERE request_id = ? ORDER BY id";
	struct cm_package_row p;
	struct store_query q;

	store_query(&q, d, sql, "t", id);
	while (store_next(&q)) {
		package_row(&q, &p);
		if (fn(arg, &p) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_request_delete(struct cm_db *d, const char *id)
{
	static const char sql_t[] = "DELETE FROM dsr_timeline WHERE request_id = ?";
	static const char sql_c[] = "DELETE FROM dsr_codes WHERE request_id = ?";
	static const char sql_s[] = "DELETE FROM dsr_systems WHERE request_id = ?";
	static const char sql_p[] = "DELETE FROM dsr_packages WHERE request_id = ?";
	static const char sql_o[] = "DELETE FROM outbox WHERE request_id = ? AND "
	    "status <> 'pending'";
	static const char sql_r[] = "DELETE FROM dsr_requests WHERE id = ?";
	cm_result rc;

	if ((rc = store_exec(d, sql_t, "t", id)) != CM_OK ||
	    (rc = store_exec(d, sql_c, "t", id)) != CM_OK ||
	    (rc = store_exec(d, sql_s, "t", id)) != CM_OK ||
	    (rc = store_exec(d, sql_p, "t", id)) != CM_OK ||
	    (rc = store_exec(d, sql_o, "t", id)) != CM_OK)
		return rc;
	return store_exec(d, sql_r, "t", id);
}

cm_result
cm_store_packages_expired(struct cm_db *d, const char *after, int64_t before_us,
    int64_t closed_before_us, int limit,
    int (*fn)(void *, const struct cm_package_row *), void *arg)
{
	static const char sql[] = "SELECT " PKG_COLS " FROM dsr_packages "
	    "WHERE id > ?1 AND expires_at < ?2 AND request_id NOT IN (SELECT r.id FROM "
	    "dsr_requests r WHERE " CLOSED_WHERE(?3) ") ORDER BY id LIMIT ?4";
	struct cm_package_row p;
	struct store_query q;

	store_query(&q, d, sql, "tiii", after, before_us, closed_before_us, (int64_t)limit);
	while (store_next(&q)) {
		package_row(&q, &p);
		if (fn(arg, &p) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_package_delete(struct cm_db *d, const char *id)
{
	static const char sql[] = "DELETE FROM dsr_packages WHERE id = ?";

	return store_exec(d, sql, "t", id);
}

/*
 * The delivered rows past the period (sent before ?1). A row is sent only
 * once due, so its next_at is at most its sent_at: the range on outbox_due
 * (status, next_at) finds them without reading every delivered row. The
 * latest consent.changed row of a subject and system is kept: it is what
 * the customer record and the preference centre show as applied. The rows
 * of a request past its own period (closed before ?2) go with it.
 */
#define DELIVERED_WHERE \
	"status = 'sent' AND next_at < ?1 AND sent_at < ?1 AND (request_id IS NULL OR " \
	"request_id NOT IN (SELECT r.id FROM dsr_requests r WHERE " CLOSED_WHERE(?2) \
	")) AND NOT (name = " \
	"'consent.changed' AND subject_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " \
	"outbox o2 WHERE o2.subject_id = outbox.subject_id AND o2.name = outbox.name " \
	"AND (o2.system = outbox.system OR (o2.system IS NULL AND outbox.system IS NULL)) " \
	"AND (o2.created_at > outbox.created_at OR " \
	"(o2.created_at = outbox.created_at AND o2.id > outbox.id))))"

cm_result
cm_store_outbox_delivered_count(struct cm_db *d, int64_t before_us,
    int64_t closed_before_us, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM outbox WHERE " DELIVERED_WHERE;
	struct store_query q;
	cm_result rc;

	*n = 0;
	if ((rc = store_row(&q, d, sql, "ii", before_us, closed_before_us)) == CM_OK)
		*n = store_col_int64(&q, 0);
	store_done(&q);
	return rc;
}

cm_result
cm_store_outbox_delivered_delete(struct cm_db *d, int64_t before_us,
    int64_t closed_before_us, int limit, int64_t *n)
{
	static const char sql[] = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
	    "WHERE " DELIVERED_WHERE " LIMIT ?3)";

	*n = 0;
	return store_exec_changes(d, n, sql, "iii", before_us, closed_before_us,
	    (int64_t)limit);
}

cm_result
cm_store_evidence_scan(struct cm_db *d, int64_t after, int limit,
    int (*fn)(void *, const struct cm_evidence_row *), void *arg)
{
	static const char sql[] = "SELECT seq, event_id, subject_id, recorded_at, "
	    "audit_index, evidence FROM consent_events WHERE seq > ? ORDER BY seq LIMIT ?";
	struct cm_evidence_row r;
	struct store_query q;

	store_query(&q, d, sql, "ii", after, (int64_t)limit);
	while (store_next(&q)) {
		memset(&r, 0, sizeof(r));
		r.ev_seq = store_col_int64(&q, 0);
		store_column_text(r.ev_event_id, sizeof(r.ev_event_id), &q, 1);
		store_column_text(r.ev_subject, sizeof(r.ev_subject), &q, 2);
		r.ev_recorded_us = store_col_int64(&q, 3);
		r.ev_audit_index = store_col_int64(&q, 4);
		if (store_col_is_blob(&q, 5)) {
			r.ev_evidence = store_col_blob(&q, 5);
			r.ev_evidence_len = store_col_bytes(&q, 5);
		}
		if (fn(arg, &r) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_evidence_put(struct cm_db *d, int64_t seq, const void *sealed, size_t len)
{
	static const char sql[] = "UPDATE consent_events SET evidence = ? WHERE seq = ?";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "Bi", sealed, len, seq);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_audit_opening_replace(struct cm_db *d, uint64_t idx, const void *sealed,
    size_t len)
{
	static const char sql[] = "UPDATE audit_openings SET sealed = ? WHERE idx = ?";
	int64_t n;
	cm_result rc;

	rc = store_exec_changes(d, &n, sql, "Bi", sealed, len, (int64_t)idx);
	return rc == CM_OK && n == 0 ? CM_NOTFOUND : rc;
}

cm_result
cm_store_meta_set(struct cm_db *d, const char *key, const char *value)
{
	static const char sql_upd[] = "UPDATE meta SET value = ?2 WHERE key = ?1";
	static const char sql_ins[] = "INSERT INTO meta (key, value) VALUES (?1, ?2)";
	static const char sql_del[] = "DELETE FROM meta WHERE key = ?";

	if (value == NULL)
		return store_exec(d, sql_del, "t", key);
	return store_upsert(d, sql_upd, sql_ins, "tt", key, value);
}
