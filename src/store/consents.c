/*
 * The consent ledger's tables: append-only events, the current-state
 * projection, the suppression list, preferences, merge conflicts and the
 * unsubscribe-reason counts. Writes run inside the caller's transaction.
 * The check path reads through cached statements on the thread's own
 * connection: point lookups only, no write lock.
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

#define EVENT_COLS "seq, event_id, subject_id, purpose, channel, state, notice_version, " \
	"method, collected_at, recorded_at, evidence, client, coalesce(request_id, ''), " \
	"audit_index, sale_ref, superseded, request_hash"

/*
 * The first eight columns, which EVENT_COLS and CURRENT_COLS share: seq,
 * event_id, subject_id, purpose, channel, state, notice_version, method.
 */
static void
event_head_read(sqlite3_stmt *s, struct cm_event_row *e)
{
	memset(e, 0, sizeof(*e));
	e->e_seq = sqlite3_column_int64(s, 0);
	store_column_text(e->e_event_id, sizeof(e->e_event_id), s, 1);
	store_column_text(e->e_subject, sizeof(e->e_subject), s, 2);
	store_column_text(e->e_purpose, sizeof(e->e_purpose), s, 3);
	store_column_text(e->e_channel, sizeof(e->e_channel), s, 4);
	store_column_text(e->e_state, sizeof(e->e_state), s, 5);
	e->e_notice_version = sqlite3_column_int64(s, 6);
	store_column_text(e->e_method, sizeof(e->e_method), s, 7);
}

static void
event_read(sqlite3_stmt *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_collected_us = sqlite3_column_int64(s, 8);
	e->e_recorded_us = sqlite3_column_int64(s, 9);
	e->e_evidence = sqlite3_column_blob(s, 10);
	e->e_evidence_len = (size_t)sqlite3_column_bytes(s, 10);
	store_column_text(e->e_client, sizeof(e->e_client), s, 11);
	store_column_text(e->e_request_id, sizeof(e->e_request_id), s, 12);
	e->e_audit_index = sqlite3_column_int64(s, 13);
	e->e_sale_ref = sqlite3_column_int(s, 14) != 0;
	e->e_superseded = sqlite3_column_int(s, 15) != 0;
	if (sqlite3_column_bytes(s, 16) == 32) {
		memcpy(e->e_request_hash, sqlite3_column_blob(s, 16), 32);
		e->e_has_request_hash = true;
	}
}

cm_result
cm_store_event_insert(struct cm_db *d, struct cm_event_row *e)
{
	static const char sql[] = "INSERT INTO consent_events (event_id, subject_id, "
	    "purpose, channel, state, notice_version, method, collected_at, recorded_at, "
	    "evidence, client, request_id, audit_index, sale_ref, superseded, request_hash) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, e->e_event_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, e->e_subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, e->e_purpose, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, e->e_channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, e->e_state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, e->e_notice_version);
	sqlite3_bind_text(s, 7, e->e_method, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, e->e_collected_us);
	sqlite3_bind_int64(s, 9, e->e_recorded_us);
	if (e->e_evidence != NULL)
		sqlite3_bind_blob(s, 10, e->e_evidence, (int)e->e_evidence_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 11, e->e_client, -1, SQLITE_STATIC);
	if (e->e_request_id[0] != '\0')
		sqlite3_bind_text(s, 12, e->e_request_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 13, e->e_audit_index);
	sqlite3_bind_int(s, 14, e->e_sale_ref);
	sqlite3_bind_int(s, 15, e->e_superseded);
	if (e->e_has_request_hash)
		sqlite3_bind_blob(s, 16, e->e_request_hash, 32, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) == CM_OK)
		e->e_seq = sqlite3_last_insert_rowid(d->db_conn);
	return rc;
}

cm_result
cm_store_event_by_request(struct cm_db *d, const char *client, const char *request_id,
    struct cm_event_row *e)
{
	static const char sql[] = "SELECT " EVENT_COLS " FROM consent_events "
	    "WHERE client = ? AND request_id = ?";
	sqlite3_stmt *s;
	cm_result rc;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, client, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, request_id, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		event_read(s, e);
		e->e_evidence = NULL;
		e->e_evidence_len = 0;
		rc = CM_OK;
	} else {
		rc = r == SQLITE_DONE ? CM_NOTFOUND : store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

struct event_each {
	int	(*fn)(void *, const struct cm_event_row *);
	void	*arg;
	void	(*read)(sqlite3_stmt *, struct cm_event_row *);
};

static int
event_each_row(void *arg, sqlite3_stmt *s)
{
	struct event_each *e = arg;
	struct cm_event_row row;

	e->read(s, &row);
	return e->fn(e->arg, &row);
}

cm_result
cm_store_events_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	struct event_each e = { fn, arg, event_read };

	return store_each_row(d, __func__, "SELECT " EVENT_COLS " FROM consent_events "
	    "WHERE subject_id = ? ORDER BY seq", subject, event_each_row, &e);
}

cm_result
cm_store_event_move(struct cm_db *d, int64_t seq, const char *subject,
    const uint8_t *evidence, size_t len)
{
	static const char sql[] = "UPDATE consent_events SET subject_id = ?, evidence = ? "
	    "WHERE seq = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	if (evidence != NULL)
		sqlite3_bind_blob(s, 2, evidence, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, seq);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_current_put(struct cm_db *d, const struct cm_event_row *e)
{
	static const char sql[] = "INSERT OR REPLACE INTO consent_current (subject_id, "
	    "purpose, channel, seq, state, notice_version, method, event_id, recorded_at, "
	    "collected_at, sale_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, e->e_subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, e->e_purpose, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, e->e_channel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, e->e_seq);
	sqlite3_bind_text(s, 5, e->e_state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, e->e_notice_version);
	sqlite3_bind_text(s, 7, e->e_method, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, e->e_event_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 9, e->e_recorded_us);
	sqlite3_bind_int64(s, 10, e->e_collected_us);
	sqlite3_bind_int(s, 11, e->e_sale_ref);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_current_rebuild(struct cm_db *d, const char *subject)
{
	static const char sql_del[] = "DELETE FROM consent_current WHERE subject_id = ?";
	static const char sql_ins[] = "INSERT INTO consent_current (subject_id, purpose, "
	    "channel, seq, state, notice_version, method, event_id, recorded_at, "
	    "collected_at, sale_ref) SELECT e.subject_id, e.purpose, e.channel, e.seq, "
	    "e.state, e.notice_version, e.method, e.event_id, e.recorded_at, "
	    "e.collected_at, e.sale_ref FROM consent_events e WHERE e.subject_id = ?1 "
	    "AND e.seq = (SELECT e2.seq FROM consent_events e2 WHERE e2.subject_id = ?1 "
	    "AND e2.purpose = e.purpose AND e2.channel = e.channel "
	    "ORDER BY e2.collected_at DESC, e2.seq DESC LIMIT 1)";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql_del)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) != CM_OK)
		return rc;
	if ((s = store_stmt(d, sql_ins)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

#define CURRENT_COLS "seq, event_id, subject_id, purpose, channel, state, notice_version, " \
	"method, recorded_at, collected_at, sale_ref"

static void
current_read(sqlite3_stmt *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_recorded_us = sqlite3_column_int64(s, 8);
	e->e_collected_us = sqlite3_column_int64(s, 9);
	e->e_sale_ref = sqlite3_column_int(s, 10) != 0;
}

cm_result
cm_store_current_pair(struct cm_db *d, const char *subject, const char *purpose,
    const char *channel, struct cm_event_row *ch, struct cm_event_row *all)
{
	static const char sql[] = "SELECT " CURRENT_COLS " FROM consent_current "
	    "WHERE subject_id = ?1 AND purpose = ?2 AND channel IN (?3, '*')";
	sqlite3_stmt *s;
	struct cm_event_row e;
	cm_result rc = CM_OK;
	int r;

	memset(ch, 0, sizeof(*ch));
	memset(all, 0, sizeof(*all));
	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, channel, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		current_read(s, &e);
		if (strcmp(e.e_channel, CM_ALL_CHANNELS) == 0)
			*all = e;
		else
			*ch = e;
	}
	if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		rc = store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_check_facts(struct cm_db *d, const char *type, const uint8_t blind[32],
    const char *purpose, const char *channel, struct cm_check_row *k)
{
	/* One statement for the hot path: owner, state, flags, both current rows. */
	static const char sql[] = "SELECT i.subject_id, s.state, "
	    "coalesce(p.objected_at, 0), coalesce(p.paused_until, 0), "
	    "c.seq, c.event_id, c.channel, c.state, c.notice_version, c.method, "
	    "c.recorded_at, EXISTS (SELECT 1 FROM merge_conflicts m WHERE "
	    "m.subject_id = i.subject_id AND m.purpose = ?3 AND m.resolved_at IS NULL), "
	    "c.collected_at, c.sale_ref "
	    "FROM identifiers i JOIN subjects s ON s.id = i.subject_id "
	    "LEFT JOIN preferences p ON p.subject_id = i.subject_id "
	    "LEFT JOIN consent_current c ON c.subject_id = i.subject_id "
	    "AND c.purpose = ?3 AND c.channel IN (?4, '*') "
	    "WHERE i.type = ?1 AND i.blind = ?2";
	struct cm_event_row *e;
	sqlite3_stmt *s;
	cm_result rc = CM_NOTFOUND;
	int r;

	memset(k, 0, sizeof(*k));
	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, blind, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, channel, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		rc = CM_OK;
		store_column_text(k->k_subject, sizeof(k->k_subject), s, 0);
		store_column_text(k->k_state, sizeof(k->k_state), s, 1);
		k->k_objected_at = sqlite3_column_int64(s, 2);
		k->k_paused_until = sqlite3_column_int64(s, 3);
		k->k_conflicts = sqlite3_column_int(s, 11) != 0;
		if (sqlite3_column_type(s, 4) == SQLITE_NULL)
			continue;
		e = strcmp((const char *)sqlite3_column_text(s, 6), CM_ALL_CHANNELS) == 0 ?
		    &k->k_all : &k->k_channel;
		e->e_seq = sqlite3_column_int64(s, 4);
		store_column_text(e->e_event_id, sizeof(e->e_event_id), s, 5);
		store_column_text(e->e_channel, sizeof(e->e_channel), s, 6);
		store_column_text(e->e_state, sizeof(e->e_state), s, 7);
		e->e_notice_version = sqlite3_column_int64(s, 8);
		store_column_text(e->e_method, sizeof(e->e_method), s, 9);
		e->e_recorded_us = sqlite3_column_int64(s, 10);
		e->e_collected_us = sqlite3_column_int64(s, 12);
		e->e_sale_ref = sqlite3_column_int(s, 13) != 0;
	}
	if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		rc = store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_current_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	struct event_each e = { fn, arg, current_read };

	return store_each_row(d, __func__, "SELECT " CURRENT_COLS " FROM consent_current "
	    "WHERE subject_id = ? ORDER BY purpose, channel", subject, event_each_row, &e);
}

cm_result
cm_store_current_clear(struct cm_db *d, const char *subject)
{
	static const char sql[] = "DELETE FROM consent_current WHERE subject_id = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_suppression_get(struct cm_db *d, const char *type, const uint8_t blind[32],
    char reason[16], int64_t *since)
{
	static const char sql[] = "SELECT reason, since FROM suppressions "
	    "WHERE type = ? AND blind = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, blind, 32, SQLITE_STATIC);
	if ((rc = store_step_row(d, s, __func__)) == CM_OK) {
		store_column_text(reason, 16, s, 0);
		*since = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc;
}

static void
supp_read(sqlite3_stmt *s, struct cm_supp_row *r)
{
	memset(r, 0, sizeof(*r));
	store_column_text(r->sr_type, sizeof(r->sr_type), s, 0);
	if (sqlite3_column_bytes(s, 1) == 32)
		memcpy(r->sr_blind, sqlite3_column_blob(s, 1), 32);
	store_column_text(r->sr_reason, sizeof(r->sr_reason), s, 2);
	r->sr_since = sqlite3_column_int64(s, 3);
}

struct supp_each {
	int	(*fn)(void *, const struct cm_supp_row *);
	void	*arg;
};

static int
supp_each_row(void *arg, sqlite3_stmt *s)
{
	struct supp_each *e = arg;
	struct cm_supp_row r;

	supp_read(s, &r);
	return e->fn(e->arg, &r);
}

cm_result
cm_store_subject_suppressions(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_supp_row *), void *arg)
{
	struct supp_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT s.type, s.blind, s.reason, s.since "
	    "FROM identifiers i JOIN suppressions s ON s.type = i.type AND s.blind = i.blind "
	    "WHERE i.subject_id = ?1 UNION ALL SELECT s.type, s.blind, s.reason, s.since "
	    "FROM suppression_subjects b JOIN suppressions s ON s.type = b.type AND "
	    "s.blind = b.blind WHERE b.subject_id = ?1", subject, supp_each_row, &e);
}

cm_result
cm_store_suppressions_scan(struct cm_db *d, int (*fn)(void *, const struct cm_supp_row *),
    void *arg)
{
	struct supp_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT type, blind, reason, since FROM "
	    "suppressions ORDER BY type, blind", NULL, supp_each_row, &e);
}

cm_result
cm_store_suppression_bind(struct cm_db *d, const char *subject, const char *type,
    const uint8_t blind[32])
{
	static const char sql[] = "INSERT OR IGNORE INTO suppression_subjects "
	    "(subject_id, type, blind) VALUES (?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, blind, 32, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_suppression_unbind(struct cm_db *d, const char *type, const uint8_t blind[32])
{
	static const char sql[] = "DELETE FROM suppression_subjects WHERE type = ? AND blind = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, blind, 32, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_suppression_bindings_move(struct cm_db *d, const char *from, const char *to)
{
	static const char sql_mv[] = "UPDATE OR IGNORE suppression_subjects SET subject_id = ? "
	    "WHERE subject_id = ?";
	static const char sql_rm[] = "DELETE FROM suppression_subjects WHERE subject_id = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql_mv)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) != CM_OK)
		return rc;
	/* What INTO had already stays; FROM's duplicates go. */
	if ((s = store_stmt(d, sql_rm)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, from, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

struct bind_each {
	int	(*fn)(void *, const char *, const char *, const uint8_t *);
	void	*arg;
};

static int
bind_each_row(void *arg, sqlite3_stmt *s)
{
	struct bind_each *e = arg;
	uint8_t blind[32];

	memset(blind, 0, sizeof(blind));
	if (sqlite3_column_bytes(s, 2) == 32)
		memcpy(blind, sqlite3_column_blob(s, 2), 32);
	return e->fn(e->arg, (const char *)sqlite3_column_text(s, 0),
	    (const char *)sqlite3_column_text(s, 1), blind);
}

cm_result
cm_store_suppression_bindings(struct cm_db *d, const char *subject,
    int (*fn)(void *, const char *, const char *, const uint8_t *), void *arg)
{
	struct bind_each e = { fn, arg };

	if (subject == NULL)
		return store_each_row(d, __func__, "SELECT subject_id, type, blind FROM "
		    "suppression_subjects ORDER BY subject_id, type, blind", NULL,
		    bind_each_row, &e);
	return store_each_row(d, __func__, "SELECT subject_id, type, blind FROM "
	    "suppression_subjects WHERE subject_id = ? ORDER BY type, blind", subject,
	    bind_each_row, &e);
}

cm_result
cm_store_suppression_put(struct cm_db *d, const char *type, const uint8_t blind[32],
    const char *reason, int64_t since)
{
	static const char sql[] = "INSERT INTO suppressions (type, blind, reason, since) "
	    "VALUES (?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, blind, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, since);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_suppression_delete(struct cm_db *d, const char *type, const uint8_t blind[32])
{
	static const char sql[] = "DELETE FROM suppressions WHERE type = ? AND blind = ?";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, blind, 32, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) != CM_OK)
		return rc;
	return sqlite3_changes(d->db_conn) ? CM_OK : CM_NOTFOUND;
}

void
cm_prefs_row_clear(struct cm_prefs_row *p)
{
	free(p->p_channels);
	free(p->p_topics);
	memset(p, 0, sizeof(*p));
}

cm_result
cm_store_prefs_get(struct cm_db *d, const char *subject, struct cm_prefs_row *p)
{
	static const char sql[] = "SELECT channels, topics, coalesce(frequency, ''), "
	    "coalesce(paused_until, 0), coalesce(objected_at, 0) FROM preferences "
	    "WHERE subject_id = ?";
	sqlite3_stmt *s;
	cm_result rc = CM_OK;
	int r;

	memset(p, 0, sizeof(*p));
	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		p->p_present = true;
		if (sqlite3_column_text(s, 0) != NULL)
			p->p_channels = cm_strdup((const char *)sqlite3_column_text(s, 0));
		if (sqlite3_column_text(s, 1) != NULL)
			p->p_topics = cm_strdup((const char *)sqlite3_column_text(s, 1));
		store_column_text(p->p_frequency, sizeof(p->p_frequency), s, 2);
		p->p_paused_until = sqlite3_column_int64(s, 3);
		p->p_objected_at = sqlite3_column_int64(s, 4);
	} else if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		rc = store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_prefs_put(struct cm_db *d, const char *subject, const struct cm_prefs_row *p,
    int64_t now)
{
	static const char sql[] = "INSERT OR REPLACE INTO preferences (subject_id, channels, "
	    "topics, frequency, paused_until, objected_at, updated_at) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	if (p->p_channels != NULL)
		sqlite3_bind_text(s, 2, p->p_channels, -1, SQLITE_STATIC);
	if (p->p_topics != NULL)
		sqlite3_bind_text(s, 3, p->p_topics, -1, SQLITE_STATIC);
	if (p->p_frequency[0] != '\0')
		sqlite3_bind_text(s, 4, p->p_frequency, -1, SQLITE_STATIC);
	if (p->p_paused_until != 0)
		sqlite3_bind_int64(s, 5, p->p_paused_until);
	if (p->p_objected_at != 0)
		sqlite3_bind_int64(s, 6, p->p_objected_at);
	sqlite3_bind_int64(s, 7, now);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_conflict_add(struct cm_db *d, const char *subject, const char *from,
    const char *purpose, const char *channel, const char *kept, const char *other,
    int64_t now)
{
	static const char sql[] = "INSERT INTO merge_conflicts (subject_id, merged_from, "
	    "purpose, channel, kept_state, other_state, created_at) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, kept, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, other, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, now);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_conflicts_open(struct cm_db *d, const char *subject, const char *purpose,
    int (*fn)(void *, const char *, const char *, const char *, const char *), void *arg)
{
	static const char sql_p[] = "SELECT purpose, channel, kept_state, other_state FROM "
	    "merge_conflicts WHERE subject_id = ? AND purpose = ? AND resolved_at IS NULL "
	    "ORDER BY id";
	static const char sql_all[] = "SELECT purpose, channel, kept_state, other_state FROM "
	    "merge_conflicts WHERE subject_id = ? AND resolved_at IS NULL ORDER BY id";
	sqlite3_stmt *s;
	cm_result rc = CM_OK;
	int r;

	if ((s = store_stmt(d, purpose ? sql_p : sql_all)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	if (purpose != NULL)
		sqlite3_bind_text(s, 2, purpose, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (fn(arg, (const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1), (const char *)sqlite3_column_text(s, 2),
		    (const char *)sqlite3_column_text(s, 3)) != 0) {
			r = SQLITE_DONE;
			break;
		}
	}
	if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		rc = store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

cm_result
cm_store_conflicts_resolve(struct cm_db *d, const char *subject, const char *purpose,
    const char *channel, int64_t now)
{
	static const char sql_one[] = "UPDATE merge_conflicts SET resolved_at = ? WHERE "
	    "subject_id = ? AND purpose = ? AND channel = ? AND resolved_at IS NULL";
	static const char sql_all[] = "UPDATE merge_conflicts SET resolved_at = ? WHERE "
	    "subject_id = ? AND purpose = ? AND resolved_at IS NULL";
	bool all = strcmp(channel, CM_ALL_CHANNELS) == 0;
	sqlite3_stmt *s;

	if ((s = store_stmt(d, all ? sql_all : sql_one)) == NULL)
		return CM_IOERR;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_text(s, 2, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, purpose, -1, SQLITE_STATIC);
	if (!all)
		sqlite3_bind_text(s, 4, channel, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_conflicts_move(struct cm_db *d, const char *from, const char *to)
{
	static const char sql[] = "UPDATE merge_conflicts SET subject_id = ? "
	    "WHERE subject_id = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_unsubscribe_count(struct cm_db *d, const char *month, const char *reason)
{
	static const char sql_up[] = "UPDATE unsubscribe_reasons SET count = count + 1 "
	    "WHERE month = ? AND reason = ?";
	static const char sql_in[] = "INSERT INTO unsubscribe_reasons (month, reason, count) "
	    "VALUES (?, ?, 1)";
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql_up)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, month, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) != CM_OK || sqlite3_changes(d->db_conn) > 0)
		return rc;
	if ((s = store_stmt(d, sql_in)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, month, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_unsubscribe_report(struct cm_db *d,
    int (*fn)(void *, const char *, const char *, int64_t), void *arg)
{
	static const char sql[] = "SELECT month, reason, count FROM unsubscribe_reasons "
	    "ORDER BY month, reason";
	sqlite3_stmt *s;
	cm_result rc = CM_OK;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	while ((r = sqlite3_step(s)) == SQLITE_ROW)
		if (fn(arg, (const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1), sqlite3_column_int64(s, 2)) != 0) {
			r = SQLITE_DONE;
			break;
		}
	if (r != SQLITE_DONE) {
		store_log_error(d, __func__, r);
		rc = store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

struct subject_each {
	int	(*fn)(void *, const char *, const char *);
	void	*arg;
};

static int
subject_each_row(void *arg, sqlite3_stmt *s)
{
	struct subject_each *e = arg;

	return e->fn(e->arg, (const char *)sqlite3_column_text(s, 0),
	    (const char *)sqlite3_column_text(s, 1));
}

cm_result
cm_store_subjects_scan(struct cm_db *d, int (*fn)(void *, const char *, const char *),
    void *arg)
{
	struct subject_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT id, state FROM subjects WHERE "
	    "merged_into IS NULL", NULL, subject_each_row, &e);
}

struct merged_each {
	int	(*fn)(void *, const char *);
	void	*arg;
};

static int
merged_each_row(void *arg, sqlite3_stmt *s)
{
	struct merged_each *e = arg;

	return e->fn(e->arg, (const char *)sqlite3_column_text(s, 0));
}

cm_result
cm_store_subjects_merged_into(struct cm_db *d, const char *id,
    int (*fn)(void *, const char *), void *arg)
{
	struct merged_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT id FROM subjects WHERE merged_into = ?",
	    id, merged_each_row, &e);
}

cm_result
cm_store_subject_set_state(struct cm_db *d, const char *id, const char *state, int64_t now)
{
	static const char sql[] = "UPDATE subjects SET state = ?, updated_at = ? WHERE id = ?";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	return store_step_done(d, s, __func__);
}

static cm_result
erase_step(struct cm_db *d, const char *sql, const char *subject, int64_t *n)
{
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) == CM_OK && n != NULL)
		*n = sqlite3_changes(d->db_conn);
	return rc;
}

cm_result
cm_store_subject_erase(struct cm_db *d, const char *subject, int64_t *nids,
    int64_t *nattrs, int64_t *nevidence, int64_t now)
{
	static const char sql_ids[] = "DELETE FROM identifiers WHERE subject_id = ?";
	static const char sql_attrs[] = "DELETE FROM profile_attributes WHERE subject_id = ?";
	static const char sql_prefs[] = "DELETE FROM preferences WHERE subject_id = ?";
	static const char sql_ev[] = "UPDATE consent_events SET evidence = NULL "
	    "WHERE subject_id = ? AND evidence IS NOT NULL";
	static const char sql_subj[] = "UPDATE subjects SET state = 'erased', "
	    "wrapped_key = NULL, updated_at = ?2 WHERE id = ?1";
	sqlite3_stmt *s;
	cm_result rc;

	if ((rc = erase_step(d, sql_ids, subject, nids)) != CM_OK ||
	    (rc = erase_step(d, sql_attrs, subject, nattrs)) != CM_OK ||
	    (rc = erase_step(d, sql_prefs, subject, NULL)) != CM_OK ||
	    (rc = erase_step(d, sql_ev, subject, nevidence)) != CM_OK)
		return rc;
	if ((s = store_stmt(d, sql_subj)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	return store_step_done(d, s, __func__);
}

cm_result
cm_store_upgrade_v1_pending(struct cm_db *d, bool *pending)
{
	static const char sql[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
	    "name = 'consent_current_v1'";
	sqlite3_stmt *s;
	cm_result rc;

	*pending = false;
	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	rc = store_step_row(d, s, __func__);
	sqlite3_reset(s);
	if (rc == CM_OK)
		*pending = true;
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

struct pair_each {
	int	(*fn)(void *, const char *, const char *);
	void	*arg;
};

static int
pair_each_row(void *arg, sqlite3_stmt *s)
{
	struct pair_each *e = arg;

	return e->fn(e->arg, (const char *)sqlite3_column_text(s, 0),
	    (const char *)sqlite3_column_text(s, 1));
}

cm_result
cm_store_upgrade_v1_pairs(struct cm_db *d, int (*fn)(void *, const char *, const char *),
    void *arg)
{
	struct pair_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT subject_id, purpose FROM "
	    "consent_current_v1 UNION SELECT subject_id, purpose FROM consent_current "
	    "ORDER BY 1, 2", NULL, pair_each_row, &e);
}

/* (SUBJECT, PURPOSE) rows of a projection table, read by READ. */
static cm_result
purpose_rows(struct cm_db *d, const char *sql, const char *subject, const char *purpose,
    void (*read)(sqlite3_stmt *, struct cm_event_row *),
    int (*fn)(void *, const struct cm_event_row *), void *arg, const char *func)
{
	struct cm_event_row e;
	sqlite3_stmt *s;
	cm_result rc = CM_OK;
	int r;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, purpose, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		read(s, &e);
		if (fn(arg, &e) != 0) {
			r = SQLITE_DONE;
			break;
		}
	}
	if (r != SQLITE_DONE) {
		store_log_error(d, func, r);
		rc = store_rc(r);
	}
	sqlite3_reset(s);
	return rc;
}

static void
current_v1_read(sqlite3_stmt *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_recorded_us = sqlite3_column_int64(s, 8);
	e->e_collected_us = e->e_recorded_us;
}

cm_result
cm_store_upgrade_v1_rows(struct cm_db *d, const char *subject, const char *purpose,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	static const char sql[] = "SELECT seq, event_id, subject_id, purpose, channel, state, "
	    "notice_version, method, recorded_at FROM consent_current_v1 WHERE "
	    "subject_id = ? AND purpose = ?";

	return purpose_rows(d, sql, subject, purpose, current_v1_read, fn, arg, __func__);
}

cm_result
cm_store_current_purpose(struct cm_db *d, const char *subject, const char *purpose,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	static const char sql[] = "SELECT " CURRENT_COLS " FROM consent_current WHERE "
	    "subject_id = ? AND purpose = ?";

	return purpose_rows(d, sql, subject, purpose, current_read, fn, arg, __func__);
}

cm_result
cm_store_upgrade_v1_done(struct cm_db *d)
{
	int r;

	/* DDL: not a cached statement, it would outlive the table. */
	if ((r = sqlite3_exec(d->db_conn, "DROP TABLE consent_current_v1", NULL, NULL,
	    NULL)) != SQLITE_OK) {
		store_log_error(d, __func__, r);
		return store_rc(r);
	}
	return CM_OK;
}

cm_result
cm_store_subjects_with_identifiers(struct cm_db *d, int (*fn)(void *, const char *),
    void *arg)
{
	struct merged_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT DISTINCT subject_id FROM identifiers "
	    "ORDER BY subject_id", NULL, merged_each_row, &e);
}

cm_result
cm_store_suppression_rekey(struct cm_db *d, const char *type, const uint8_t old[32],
    const uint8_t new_[32])
{
	static const char sql_bind[] = "UPDATE OR IGNORE suppression_subjects SET blind = ? "
	    "WHERE type = ? AND blind = ?";
	char reason[16], nreason[16];
	int64_t since, nsince;
	sqlite3_stmt *s;
	cm_result rc;

	if ((rc = cm_store_suppression_get(d, type, old, reason, &since)) != CM_OK)
		return rc;
	rc = cm_store_suppression_get(d, type, new_, nreason, &nsince);
	if (rc == CM_OK && strcmp(reason, "erased") == 0 && strcmp(nreason, "erased") != 0) {
		if ((rc = cm_store_suppression_delete(d, type, new_)) != CM_OK)
			return rc;
		rc = CM_NOTFOUND;
	}
	if (rc == CM_NOTFOUND)
		rc = cm_store_suppression_put(d, type, new_, reason, since);
	if (rc != CM_OK || (rc = cm_store_suppression_delete(d, type, old)) != CM_OK)
		return rc;
	if ((s = store_stmt(d, sql_bind)) == NULL)
		return CM_IOERR;
	sqlite3_bind_blob(s, 1, new_, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, old, 32, SQLITE_STATIC);
	if ((rc = store_step_done(d, s, __func__)) != CM_OK)
		return rc;
	return cm_store_suppression_unbind(d, type, old);
}

static void
event_nobody_read(sqlite3_stmt *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_collected_us = sqlite3_column_int64(s, 8);
	e->e_recorded_us = sqlite3_column_int64(s, 9);
	e->e_audit_index = sqlite3_column_int64(s, 10);
	e->e_sale_ref = sqlite3_column_int(s, 11) != 0;
	e->e_superseded = sqlite3_column_int(s, 12) != 0;
}

cm_result
cm_store_events_scan(struct cm_db *d, int (*fn)(void *, const struct cm_event_row *),
    void *arg)
{
	struct event_each e = { fn, arg, event_nobody_read };

	return store_each_row(d, __func__, "SELECT seq, event_id, subject_id, purpose, "
	    "channel, state, notice_version, method, collected_at, recorded_at, audit_index, "
	    "sale_ref, superseded FROM consent_events ORDER BY seq", NULL, event_each_row, &e);
}

cm_result
cm_store_current_scan(struct cm_db *d, int (*fn)(void *, const struct cm_event_row *),
    void *arg)
{
	struct event_each e = { fn, arg, current_read };

	return store_each_row(d, __func__, "SELECT " CURRENT_COLS " FROM consent_current",
	    NULL, event_each_row, &e);
}

struct subject_all_each {
	int	(*fn)(void *, const struct cm_subject_row *);
	void	*arg;
};

static int
subject_all_row(void *arg, sqlite3_stmt *s)
{
	struct subject_all_each *e = arg;
	struct cm_subject_row r;

	memset(&r, 0, sizeof(r));
	store_column_text(r.s_id, sizeof(r.s_id), s, 0);
	store_column_text(r.s_state, sizeof(r.s_state), s, 1);
	r.s_has_key = sqlite3_column_type(s, 2) != SQLITE_NULL;
	store_column_text(r.s_merged_into, sizeof(r.s_merged_into), s, 3);
	r.s_created_us = sqlite3_column_int64(s, 4);
	r.s_updated_us = sqlite3_column_int64(s, 5);
	return e->fn(e->arg, &r);
}

cm_result
cm_store_subjects_all(struct cm_db *d, int (*fn)(void *, const struct cm_subject_row *),
    void *arg)
{
	struct subject_all_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT id, state, wrapped_key, "
	    "coalesce(merged_into, ''), created_at, updated_at FROM subjects ORDER BY id",
	    NULL, subject_all_row, &e);
}

struct prefs_all_each {
	int	(*fn)(void *, const char *, const struct cm_prefs_row *);
	void	*arg;
};

static int
prefs_all_row(void *arg, sqlite3_stmt *s)
{
	struct prefs_all_each *e = arg;
	struct cm_prefs_row p;

	memset(&p, 0, sizeof(p));
	p.p_present = true;
	store_column_text(p.p_frequency, sizeof(p.p_frequency), s, 1);
	p.p_paused_until = sqlite3_column_int64(s, 2);
	p.p_objected_at = sqlite3_column_int64(s, 3);
	return e->fn(e->arg, (const char *)sqlite3_column_text(s, 0), &p);
}

cm_result
cm_store_prefs_all(struct cm_db *d, int (*fn)(void *, const char *,
    const struct cm_prefs_row *), void *arg)
{
	struct prefs_all_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT subject_id, coalesce(frequency, ''), "
	    "coalesce(paused_until, 0), coalesce(objected_at, 0) FROM preferences "
	    "ORDER BY subject_id", NULL, prefs_all_row, &e);
}

cm_result
cm_store_audit_pseudonyms_all(struct cm_db *d, int (*fn)(void *, const char *,
    const char *), void *arg)
{
	struct pair_each e = { fn, arg };

	return store_each_row(d, __func__, "SELECT subject_id, pseudonym FROM "
	    "audit_pseudonyms ORDER BY subject_id", NULL, pair_each_row, &e);
}
