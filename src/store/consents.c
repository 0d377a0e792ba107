/* SPDX-License-Identifier: ISC */
/*
 * The consent ledger's tables: append-only events, the current-state
 * projection, preferences, merge conflicts and the unsubscribe-reason
 * counts (the suppression list is in suppressions.c). Writes run inside the caller's transaction.
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
event_head_read(const struct store_query *s, struct cm_event_row *e)
{
	memset(e, 0, sizeof(*e));
	e->e_seq = store_col_int64(s, 0);
	store_column_text(e->e_event_id, sizeof(e->e_event_id), s, 1);
	store_column_text(e->e_subject, sizeof(e->e_subject), s, 2);
	store_column_text(e->e_purpose, sizeof(e->e_purpose), s, 3);
	store_column_text(e->e_channel, sizeof(e->e_channel), s, 4);
	store_column_text(e->e_state, sizeof(e->e_state), s, 5);
	e->e_notice_version = store_col_int64(s, 6);
	store_column_text(e->e_method, sizeof(e->e_method), s, 7);
}

static void
event_read(const struct store_query *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_collected_us = store_col_int64(s, 8);
	e->e_recorded_us = store_col_int64(s, 9);
	e->e_evidence = store_col_blob(s, 10);
	e->e_evidence_len = store_col_bytes(s, 10);
	store_column_text(e->e_client, sizeof(e->e_client), s, 11);
	store_column_text(e->e_request_id, sizeof(e->e_request_id), s, 12);
	e->e_audit_index = store_col_int64(s, 13);
	e->e_sale_ref = store_col_int(s, 14) != 0;
	e->e_superseded = store_col_int(s, 15) != 0;
	e->e_has_request_hash = store_column_blob(e->e_request_hash, 32, s, 16);
}

/* Calls FN with every row of Q, read by READ, until FN returns non-zero; ends Q. */
static cm_result
event_rows(struct store_query *q, void (*read)(const struct store_query *, struct cm_event_row *),
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	struct cm_event_row e;

	while (store_next(q)) {
		read(q, &e);
		if (fn(arg, &e) != 0)
			break;
	}
	return store_done(q);
}

cm_result
cm_store_event_insert(struct cm_db *d, struct cm_event_row *e)
{
	static const char sql[] = "INSERT INTO consent_events (event_id, subject_id, "
	    "purpose, channel, state, notice_version, method, collected_at, recorded_at, "
	    "evidence, client, request_id, audit_index, sale_ref, superseded, request_hash) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	cm_result rc;

	rc = store_exec(d, sql, "tttttitiiBttiiib", e->e_event_id, e->e_subject, e->e_purpose,
	    e->e_channel, e->e_state, e->e_notice_version, e->e_method, e->e_collected_us,
	    e->e_recorded_us, e->e_evidence, e->e_evidence_len, e->e_client,
	    e->e_request_id[0] != '\0' ? e->e_request_id : NULL, e->e_audit_index,
	    (int64_t)e->e_sale_ref, (int64_t)e->e_superseded,
	    e->e_has_request_hash ? e->e_request_hash : NULL);
	if (rc == CM_OK) {
		e->e_seq = store_last_rowid(d);
		store_optouts_note_event(d, e);
	}
	return rc;
}

cm_result
cm_store_event_by_request(struct cm_db *d, const char *client, const char *request_id,
    struct cm_event_row *e)
{
	static const char sql[] = "SELECT " EVENT_COLS " FROM consent_events "
	    "WHERE client = ? AND request_id = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "tt", client, request_id)) == CM_OK) {
		event_read(&q, e);
		e->e_evidence = NULL;
		e->e_evidence_len = 0;
	}
	store_done(&q);
	return rc;
}

cm_result
cm_store_event_get(struct cm_db *d, const char *event_id, struct cm_event_row *e)
{
	static const char sql[] = "SELECT " EVENT_COLS " FROM consent_events "
	    "WHERE event_id = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "t", event_id)) == CM_OK) {
		event_read(&q, e);
		e->e_evidence = NULL;
		e->e_evidence_len = 0;
	}
	store_done(&q);
	return rc;
}

/* The event of sequence number SEQ into *E (evidence not read); CM_NOTFOUND. */
cm_result
cm_store_event_by_seq(struct cm_db *d, int64_t seq, struct cm_event_row *e)
{
	static const char sql[] = "SELECT " EVENT_COLS " FROM consent_events "
	    "WHERE seq = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "i", seq)) == CM_OK) {
		event_read(&q, e);
		e->e_evidence = NULL;
		e->e_evidence_len = 0;
	}
	store_done(&q);
	return rc;
}

cm_result
cm_store_events_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	static const char sql[] = "SELECT " EVENT_COLS " FROM consent_events "
	    "WHERE subject_id = ? ORDER BY seq";
	struct store_query q;

	store_query(&q, d, sql, "t", subject);
	return event_rows(&q, event_read, fn, arg);
}

cm_result
cm_store_event_move(struct cm_db *d, int64_t seq, const char *subject,
    const uint8_t *evidence, size_t len)
{
	static const char sql[] = "UPDATE consent_events SET subject_id = ?, evidence = ? "
	    "WHERE seq = ?";

	return store_exec(d, sql, "tBi", subject, evidence, len, seq);
}

cm_result
cm_store_current_put(struct cm_db *d, const struct cm_event_row *e)
{
	/*
	 * An update, else an insert (store_upsert()), both OR FAIL: neither
	 * keeps a statement journal, which SQLCipher would encrypt page by
	 * page (a tenth of an import's time went there).
	 */
	static const char sql_upd[] = "UPDATE OR FAIL consent_current SET seq = ?4, "
	    "state = ?5, notice_version = ?6, method = ?7, event_id = ?8, recorded_at = ?9, "
	    "collected_at = ?10, sale_ref = ?11 WHERE subject_id = ?1 AND purpose = ?2 AND "
	    "channel = ?3";
	static const char sql_ins[] = "INSERT OR FAIL INTO consent_current (subject_id, "
	    "purpose, channel, seq, state, notice_version, method, event_id, recorded_at, "
	    "collected_at, sale_ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

	return store_upsert(d, sql_upd, sql_ins, "tttitittiii", e->e_subject, e->e_purpose,
	    e->e_channel, e->e_seq, e->e_state, e->e_notice_version, e->e_method,
	    e->e_event_id, e->e_recorded_us, e->e_collected_us, (int64_t)e->e_sale_ref);
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
	cm_result rc;

	if ((rc = store_exec(d, sql_del, "t", subject)) != CM_OK)
		return rc;
	return store_exec(d, sql_ins, "t", subject);
}

#define CURRENT_COLS "seq, event_id, subject_id, purpose, channel, state, notice_version, " \
	"method, recorded_at, collected_at, sale_ref"

static void
current_read(const struct store_query *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_recorded_us = store_col_int64(s, 8);
	e->e_collected_us = store_col_int64(s, 9);
	e->e_sale_ref = store_col_int(s, 10) != 0;
}

cm_result
cm_store_current_pair(struct cm_db *d, const char *subject, const char *purpose,
    const char *channel, struct cm_event_row *ch, struct cm_event_row *all)
{
	static const char sql[] = "SELECT " CURRENT_COLS " FROM consent_current "
	    "WHERE subject_id = ?1 AND purpose = ?2 AND channel IN (?3, '*')";
	struct cm_event_row e;
	struct store_query q;

	memset(ch, 0, sizeof(*ch));
	memset(all, 0, sizeof(*all));
	store_query(&q, d, sql, "ttt", subject, purpose, channel);
	while (store_next(&q)) {
		current_read(&q, &e);
		if (strcmp(e.e_channel, CM_ALL_CHANNELS) == 0)
			*all = e;
		else
			*ch = e;
	}
	return store_done(&q);
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
	struct store_query q;
	const struct store_query *s;
	cm_result rc, found = CM_NOTFOUND;

	if ((rc = store_decision_read(d, type, blind, purpose, channel, k)) != CM_NOTFOUND) {
		d->db_checks_row += rc == CM_OK;
		return rc;
	}
	d->db_checks_tables++;
	memset(k, 0, sizeof(*k));
	store_query(&q, d, sql, "tbtt", type, blind, purpose, channel);
	while (store_next(&q)) {
		s = &q;
		found = CM_OK;
		store_column_text(k->k_subject, sizeof(k->k_subject), s, 0);
		(void)cm_subject_state_parse(store_col_text(s, 1),
		    &k->k_state);
		k->k_objected_at = store_col_int64(s, 2);
		k->k_paused_until = store_col_int64(s, 3);
		k->k_conflicts = store_col_int(s, 11) != 0;
		if (store_col_null(s, 4))
			continue;
		e = strcmp(store_col_text(s, 6), CM_ALL_CHANNELS) == 0 ?
		    &k->k_all : &k->k_channel;
		e->e_seq = store_col_int64(s, 4);
		store_column_text(e->e_event_id, sizeof(e->e_event_id), s, 5);
		store_column_text(e->e_channel, sizeof(e->e_channel), s, 6);
		store_column_text(e->e_state, sizeof(e->e_state), s, 7);
		e->e_notice_version = store_col_int64(s, 8);
		store_column_text(e->e_method, sizeof(e->e_method), s, 9);
		e->e_recorded_us = store_col_int64(s, 10);
		e->e_collected_us = store_col_int64(s, 12);
		e->e_sale_ref = store_col_int(s, 13) != 0;
	}
	return (rc = store_done(&q)) != CM_OK ? rc : found;
}

cm_result
cm_store_current_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	static const char sql[] = "SELECT " CURRENT_COLS " FROM consent_current "
	    "WHERE subject_id = ? ORDER BY purpose, channel";
	struct store_query q;

	store_query(&q, d, sql, "t", subject);
	return event_rows(&q, current_read, fn, arg);
}

cm_result
cm_store_current_clear(struct cm_db *d, const char *subject)
{
	static const char sql[] = "DELETE FROM consent_current WHERE subject_id = ?";

	return store_exec(d, sql, "t", subject);
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
	struct store_query q;
	const struct store_query *s;
	cm_result rc;

	memset(p, 0, sizeof(*p));
	if ((rc = store_row(&q, d, sql, "t", subject)) == CM_OK) {
		s = &q;
		p->p_present = true;
		if (store_col_text(s, 0) != NULL)
			p->p_channels = cm_strdup(store_col_text(s, 0));
		if (store_col_text(s, 1) != NULL)
			p->p_topics = cm_strdup(store_col_text(s, 1));
		store_column_text(p->p_frequency, sizeof(p->p_frequency), s, 2);
		p->p_paused_until = store_col_int64(s, 3);
		p->p_objected_at = store_col_int64(s, 4);
	}
	store_done(&q);
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

cm_result
cm_store_prefs_put(struct cm_db *d, const char *subject, const struct cm_prefs_row *p,
    int64_t now)
{
	static const char sql_upd[] = "UPDATE preferences SET channels = ?2, topics = ?3, "
	    "frequency = ?4, paused_until = ?5, objected_at = ?6, updated_at = ?7 "
	    "WHERE subject_id = ?1";
	static const char sql_ins[] = "INSERT INTO preferences (subject_id, channels, topics, "
	    "frequency, paused_until, objected_at, updated_at) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	struct cm_prefs_row was;
	int64_t objected = 0;
	cm_result rc;

	/* An objection new to this row goes to the opt-out ledger. */
	if (p->p_objected_at != 0) {
		if ((rc = cm_store_prefs_get(d, subject, &was)) != CM_OK)
			return rc;
		objected = was.p_objected_at;
		cm_prefs_row_clear(&was);
	}
	rc = store_upsert(d, sql_upd, sql_ins, "ttttIIi", subject, p->p_channels, p->p_topics,
	    p->p_frequency[0] != '\0' ? p->p_frequency : NULL, p->p_paused_until,
	    p->p_objected_at, now);
	if (rc == CM_OK && p->p_objected_at != 0 && objected != p->p_objected_at)
		store_optouts_note_subject(d, CM_OPTOUT_OBJECTION, subject, p->p_objected_at);
	return rc;
}

cm_result
cm_store_conflict_add(struct cm_db *d, const char *subject, const char *from,
    const char *purpose, const char *channel, const char *kept, const char *other,
    int64_t now)
{
	static const char sql[] = "INSERT INTO merge_conflicts (subject_id, merged_from, "
	    "purpose, channel, kept_state, other_state, created_at) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?)";

	return store_exec(d, sql, "tttttti", subject, from, purpose, channel, kept, other, now);
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
	struct store_query q;
	const struct store_query *s;

	if (purpose != NULL)
		store_query(&q, d, sql_p, "tt", subject, purpose);
	else
		store_query(&q, d, sql_all, "t", subject);
	while (store_next(&q)) {
		s = &q;
		if (fn(arg, store_col_text(s, 0),
		    store_col_text(s, 1), store_col_text(s, 2),
		    store_col_text(s, 3)) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_conflicts_resolve(struct cm_db *d, const char *subject, const char *purpose,
    const char *channel, int64_t now)
{
	static const char sql_one[] = "UPDATE merge_conflicts SET resolved_at = ? WHERE "
	    "subject_id = ? AND purpose = ? AND channel = ? AND resolved_at IS NULL";
	static const char sql_all[] = "UPDATE merge_conflicts SET resolved_at = ? WHERE "
	    "subject_id = ? AND purpose = ? AND resolved_at IS NULL";

	if (strcmp(channel, CM_ALL_CHANNELS) == 0)
		return store_exec(d, sql_all, "itt", now, subject, purpose);
	return store_exec(d, sql_one, "ittt", now, subject, purpose, channel);
}

cm_result
cm_store_conflicts_move(struct cm_db *d, const char *from, const char *to)
{
	static const char sql[] = "UPDATE merge_conflicts SET subject_id = ? "
	    "WHERE subject_id = ?";

	return store_exec(d, sql, "tt", to, from);
}

cm_result
cm_store_unsubscribe_count(struct cm_db *d, const char *month, const char *reason)
{
	static const char sql_up[] = "UPDATE unsubscribe_reasons SET count = count + 1 "
	    "WHERE month = ? AND reason = ?";
	static const char sql_in[] = "INSERT INTO unsubscribe_reasons (month, reason, count) "
	    "VALUES (?, ?, 1)";
	int64_t n;
	cm_result rc;

	if ((rc = store_exec_changes(d, &n, sql_up, "tt", month, reason)) != CM_OK || n > 0)
		return rc;
	return store_exec(d, sql_in, "tt", month, reason);
}

cm_result
cm_store_unsubscribe_report(struct cm_db *d,
    int (*fn)(void *, const char *, const char *, int64_t), void *arg)
{
	static const char sql[] = "SELECT month, reason, count FROM unsubscribe_reasons "
	    "ORDER BY month, reason";
	struct store_query q;

	store_query(&q, d, sql, "");
	while (store_next(&q))
		if (fn(arg, store_col_text(&q, 0),
		    store_col_text(&q, 1),
		    store_col_int64(&q, 2)) != 0)
			break;
	return store_done(&q);
}

/* Calls FN(ARG, column 0) for every row of Q until FN returns non-zero; ends Q. */
static cm_result
text_rows(struct store_query *q, int (*fn)(void *, const char *), void *arg)
{
	while (store_next(q))
		if (fn(arg, store_col_text(q, 0)) != 0)
			break;
	return store_done(q);
}

/* Calls FN(ARG, column 0, column 1) for every row of Q until FN returns non-zero; ends Q. */
static cm_result
pair_rows(struct store_query *q, int (*fn)(void *, const char *, const char *), void *arg)
{
	while (store_next(q))
		if (fn(arg, store_col_text(q, 0),
		    store_col_text(q, 1)) != 0)
			break;
	return store_done(q);
}

cm_result
cm_store_subjects_scan(struct cm_db *d,
    int (*fn)(void *, const char *, enum cm_subject_state), void *arg)
{
	static const char sql[] = "SELECT id, state FROM subjects WHERE "
	    "merged_into IS NULL";
	struct store_query q;
	enum cm_subject_state state;

	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		(void)cm_subject_state_parse(store_col_text(&q, 1),
		    &state);
		if (fn(arg, store_col_text(&q, 0), state) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_subjects_merged_into(struct cm_db *d, const char *id,
    int (*fn)(void *, const char *), void *arg)
{
	static const char sql[] = "SELECT id FROM subjects WHERE merged_into = ?";
	struct store_query q;

	store_query(&q, d, sql, "t", id);
	return text_rows(&q, fn, arg);
}

cm_result
cm_store_subject_set_state(struct cm_db *d, const char *id, enum cm_subject_state state,
    int64_t now)
{
	static const char sql[] = "UPDATE subjects SET state = ?, updated_at = ? WHERE id = ?";
	cm_result rc;

	if (state == CM_SUBJECT_INVALID)
		return CM_INVALID;
	rc = store_exec(d, sql, "tit", cm_subject_state_name(state), now, id);
	if (rc == CM_OK && state == CM_SUBJECT_RESTRICTED)
		store_optouts_note_subject(d, CM_OPTOUT_RESTRICTION, id, now);
	return rc;
}

/*
 * Notes SUBJECT and every subject merged into it (at any depth) for the
 * erasure ledger: a restore of a copy from before a merge must erase the
 * subject merged away too, whose record that copy still holds.
 */
static cm_result
erase_note_merged(struct cm_db *d, const char *subject, int64_t now)
{
	static const char sql[] = "WITH RECURSIVE m(id) AS (SELECT id FROM subjects "
	    "WHERE merged_into = ?1 UNION SELECT s.id FROM subjects s JOIN m "
	    "ON s.merged_into = m.id) SELECT id FROM m ORDER BY id";
	struct store_query q;
	char id[CM_SUBJECT_ID_LEN + 1];

	store_erasures_note(d, subject, now);
	store_query(&q, d, sql, "t", subject);
	while (store_next(&q)) {
		store_column_text(id, sizeof(id), &q, 0);
		store_erasures_note(d, id, now);
	}
	return store_done(&q);
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
	cm_result rc = CM_OK;

	/* The rows of its identifiers go while they are still its own. */
	store_decisions_forget_subject(d, subject, &rc);
	if (rc != CM_OK || (rc = store_exec_changes(d, nids, sql_ids, "t", subject)) != CM_OK ||
	    (rc = store_exec_changes(d, nattrs, sql_attrs, "t", subject)) != CM_OK ||
	    (rc = store_exec(d, sql_prefs, "t", subject)) != CM_OK ||
	    (rc = store_exec_changes(d, nevidence, sql_ev, "t", subject)) != CM_OK ||
	    (rc = store_exec(d, sql_subj, "ti", subject, now)) != CM_OK)
		return rc;
	return erase_note_merged(d, subject, now);
}

cm_result
cm_store_upgrade_v1_pending(struct cm_db *d, bool *pending)
{
	static const char sqlite_v1[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
	    "name = 'consent_current_v1'";
	struct store_query q;
	cm_result rc;

	/* The old projection was SQLite's alone: no PostgreSQL store had it. */
	if (d->db_pg != NULL) {
		*pending = false;
		return CM_OK;
	}
	rc = store_row(&q, d, sqlite_v1, "");
	store_done(&q);
	*pending = rc == CM_OK;
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

cm_result
cm_store_upgrade_v1_pairs(struct cm_db *d, int (*fn)(void *, const char *, const char *),
    void *arg)
{
	static const char sqlite_v1_pairs[] = "SELECT subject_id, purpose FROM "
	    "consent_current_v1 UNION SELECT subject_id, purpose FROM consent_current "
	    "ORDER BY 1, 2";
	struct store_query q;

	store_query(&q, d, sqlite_v1_pairs, "");
	return pair_rows(&q, fn, arg);
}

static void
current_v1_read(const struct store_query *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_recorded_us = store_col_int64(s, 8);
	e->e_collected_us = e->e_recorded_us;
}

cm_result
cm_store_upgrade_v1_rows(struct cm_db *d, const char *subject, const char *purpose,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	static const char sqlite_v1_rows[] = "SELECT seq, event_id, subject_id, purpose, channel, "
	    "state, notice_version, method, recorded_at FROM consent_current_v1 WHERE "
	    "subject_id = ? AND purpose = ?";
	struct store_query q;

	store_query(&q, d, sqlite_v1_rows, "tt", subject, purpose);
	return event_rows(&q, current_v1_read, fn, arg);
}

cm_result
cm_store_current_purpose(struct cm_db *d, const char *subject, const char *purpose,
    int (*fn)(void *, const struct cm_event_row *), void *arg)
{
	static const char sql[] = "SELECT " CURRENT_COLS " FROM consent_current WHERE "
	    "subject_id = ? AND purpose = ?";
	struct store_query q;

	store_query(&q, d, sql, "tt", subject, purpose);
	return event_rows(&q, current_read, fn, arg);
}

cm_result
cm_store_upgrade_v1_done(struct cm_db *d)
{
	/* DDL: not a cached statement, it would outlive the table. */
	return store_exec_once(d, "DROP TABLE consent_current_v1");
}

cm_result
cm_store_subjects_with_identifiers(struct cm_db *d, int (*fn)(void *, const char *),
    void *arg)
{
	static const char sql[] = "SELECT DISTINCT subject_id FROM identifiers "
	    "ORDER BY subject_id";
	struct store_query q;

	store_query(&q, d, sql, "");
	return text_rows(&q, fn, arg);
}

cm_result
cm_store_suppression_rekey(struct cm_db *d, const char *type, const uint8_t old[32],
    const uint8_t new_[32])
{
	/* A subject bound to both keeps one binding, to NEW_. */
	static const char sql_bind[] = "UPDATE suppression_subjects SET blind = ?1 "
	    "WHERE type = ?2 AND blind = ?3 AND NOT EXISTS (SELECT 1 FROM "
	    "suppression_subjects AS o WHERE o.subject_id = suppression_subjects.subject_id "
	    "AND o.type = ?2 AND o.blind = ?1)";
	char reason[16], nreason[16];
	int64_t since, nsince;
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
	if ((rc = store_exec(d, sql_bind, "btb", new_, type, old)) != CM_OK)
		return rc;
	return cm_store_suppression_unbind(d, type, old);
}

static void
event_nobody_read(const struct store_query *s, struct cm_event_row *e)
{
	event_head_read(s, e);
	e->e_collected_us = store_col_int64(s, 8);
	e->e_recorded_us = store_col_int64(s, 9);
	e->e_audit_index = store_col_int64(s, 10);
	e->e_sale_ref = store_col_int(s, 11) != 0;
	e->e_superseded = store_col_int(s, 12) != 0;
}

cm_result
cm_store_events_scan(struct cm_db *d, int (*fn)(void *, const struct cm_event_row *),
    void *arg)
{
	static const char sql[] = "SELECT seq, event_id, subject_id, purpose, "
	    "channel, state, notice_version, method, collected_at, recorded_at, audit_index, "
	    "sale_ref, superseded FROM consent_events ORDER BY seq";
	struct store_query q;

	store_query(&q, d, sql, "");
	return event_rows(&q, event_nobody_read, fn, arg);
}

cm_result
cm_store_current_scan(struct cm_db *d, int (*fn)(void *, const struct cm_event_row *),
    void *arg)
{
	static const char sql[] = "SELECT " CURRENT_COLS " FROM consent_current";
	struct store_query q;

	store_query(&q, d, sql, "");
	return event_rows(&q, current_read, fn, arg);
}

cm_result
cm_store_subjects_all(struct cm_db *d, int (*fn)(void *, const struct cm_subject_row *),
    void *arg)
{
	static const char sql[] = "SELECT id, state, wrapped_key, "
	    "coalesce(merged_into, ''), created_at, updated_at FROM subjects ORDER BY id";
	struct cm_subject_row r;
	struct store_query q;
	const struct store_query *s;

	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		s = &q;
		memset(&r, 0, sizeof(r));
		store_column_text(r.s_id, sizeof(r.s_id), s, 0);
		(void)cm_subject_state_parse(store_col_text(s, 1),
		    &r.s_state);
		r.s_has_key = !store_col_null(s, 2);
		store_column_text(r.s_merged_into, sizeof(r.s_merged_into), s, 3);
		r.s_created_us = store_col_int64(s, 4);
		r.s_updated_us = store_col_int64(s, 5);
		if (fn(arg, &r) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_prefs_all(struct cm_db *d, int (*fn)(void *, const char *,
    const struct cm_prefs_row *), void *arg)
{
	static const char sql[] = "SELECT subject_id, coalesce(frequency, ''), "
	    "coalesce(paused_until, 0), coalesce(objected_at, 0) FROM preferences "
	    "ORDER BY subject_id";
	struct cm_prefs_row p;
	struct store_query q;
	const struct store_query *s;

	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		s = &q;
		memset(&p, 0, sizeof(p));
		p.p_present = true;
		store_column_text(p.p_frequency, sizeof(p.p_frequency), s, 1);
		p.p_paused_until = store_col_int64(s, 2);
		p.p_objected_at = store_col_int64(s, 3);
		if (fn(arg, store_col_text(s, 0), &p) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_audit_pseudonyms_all(struct cm_db *d, int (*fn)(void *, const char *,
    const char *), void *arg)
{
	static const char sql[] = "SELECT subject_id, pseudonym FROM "
	    "audit_pseudonyms ORDER BY subject_id";
	struct store_query q;

	store_query(&q, d, sql, "");
	return pair_rows(&q, fn, arg);
}
