/* SPDX-License-Identifier: ISC */
/*
 * Decision rows (migrations 15 and 16): for each identifier a subject
 * holds, one row keyed by its blind index with everything a check needs
 * about the subject, so a check is one probe instead of a walk through
 * identifiers, subjects, preferences, consent_current, merge_conflicts and
 * the suppression list.
 *
 * The rows are derived, never trusted beyond their facts: the schema's
 * triggers delete a subject's rows in the same transaction as any change
 * to one of those facts, by whatever writer, and append the subject to
 * decisions_stale (a subject may be noted twice); a check that finds no
 * row (or one it cannot read) reads the facts themselves. Just before a
 * commit the store rebuilds the rows of the subjects noted, from the
 * tables as the transaction leaves them, so a committed row always agrees
 * with the committed facts.
 *
 * The body (version 1), integers little-endian, strings as a length byte
 * and the bytes:
 *   u8 1, str state, i64 objected_at, i64 paused_until,
 *   u8 overflow, u8 n, n × (str type, str reason, 32 blind, i64 since),
 *   u16 n, n × str purpose with an open merge conflict,
 *   u16 n, n × (str purpose, str channel, i64 seq, str event_id, str state,
 *               i64 notice_version, str method, i64 recorded_at,
 *               i64 collected_at, u8 sale_ref).
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

#define BODY_VERSION	1

/* ---- writing a body ------------------------------------------------------ */

static void
put_u8(struct cm_buf *b, unsigned v)
{
	uint8_t c = (uint8_t)v;

	cm_buf_append(b, &c, 1);
}

static void
put_u16(struct cm_buf *b, unsigned v)
{
	uint8_t c[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	cm_buf_append(b, c, sizeof(c));
}

static void
put_i64(struct cm_buf *b, int64_t v)
{
	uint64_t u = (uint64_t)v;
	uint8_t c[8];
	int i;

	for (i = 0; i < 8; i++)
		c[i] = (uint8_t)(u >> (8 * i));
	cm_buf_append(b, c, sizeof(c));
}

static void
put_str(struct cm_buf *b, const char *s)
{
	size_t n = strlen(s);

	/* Every string stored here is a bounded identifier of at most 64 bytes. */
	if (n > 255)
		n = 255;
	put_u8(b, (unsigned)n);
	cm_buf_append(b, s, n);
}

/* ---- reading one ------------------------------------------------------- */

struct reader {
	const uint8_t	*r_p;
	size_t		 r_n;
	size_t		 r_off;
	bool		 r_bad;
};

static const uint8_t *
take(struct reader *r, size_t n)
{
	const uint8_t *p;

	if (r->r_bad || r->r_n - r->r_off < n) {
		r->r_bad = true;
		return NULL;
	}
	p = r->r_p + r->r_off;
	r->r_off += n;
	return p;
}

static unsigned
get_u8(struct reader *r)
{
	const uint8_t *p = take(r, 1);

	return p != NULL ? p[0] : 0;
}

static unsigned
get_u16(struct reader *r)
{
	const uint8_t *p = take(r, 2);

	return p != NULL ? (unsigned)p[0] | (unsigned)p[1] << 8 : 0;
}

static int64_t
get_i64(struct reader *r)
{
	const uint8_t *p = take(r, 8);
	uint64_t u = 0;
	int i;

	if (p == NULL)
		return 0;
	for (i = 7; i >= 0; i--)
		u = u << 8 | p[i];
	return (int64_t)u;
}

/* A string into DST (size N); one that does not fit makes the body unreadable. */
static void
get_str(struct reader *r, char *dst, size_t n)
{
	unsigned len = get_u8(r);
	const uint8_t *p = take(r, len);

	if (p == NULL || len >= n || memchr(p, '\0', len) != NULL) {
		r->r_bad = true;
		if (n > 0)
			dst[0] = '\0';
		return;
	}
	memcpy(dst, p, len);
	dst[len] = '\0';
}

/* Steps over a string. */
static void
skip_str(struct reader *r)
{
	(void)take(r, get_u8(r));
}

/* Whether the next string equals S; consumes it. */
static bool
get_str_is(struct reader *r, const char *s)
{
	unsigned len = get_u8(r);
	const uint8_t *p = take(r, len);

	return p != NULL && strlen(s) == len && memcmp(p, s, len) == 0;
}

/*
 * Reads body P (N bytes) into K for PURPOSE and CHANNEL: -1 when it is not
 * a body this version wrote, and then K says nothing.
 */
static int
body_read(const uint8_t *p, size_t n, const char *purpose, const char *channel,
    struct cm_check_row *k)
{
	struct reader r = { p, n, 0, false };
	struct cm_event_row *e;
	struct cm_supp_row *s;
	char state[16], pu[65], ch[65];
	unsigned i, count;

	if (get_u8(&r) != BODY_VERSION)
		return -1;
	get_str(&r, state, sizeof(state));
	if (r.r_bad || cm_subject_state_parse(state, &k->k_state) != 0)
		return -1;
	k->k_objected_at = get_i64(&r);
	k->k_paused_until = get_i64(&r);
	k->k_supp_overflow = get_u8(&r) != 0;
	count = get_u8(&r);
	if (count > CM_SUPP_FACTS_MAX)
		return -1;
	for (i = 0; i < count && !r.r_bad; i++) {
		s = &k->k_supp[i];
		get_str(&r, s->sr_type, sizeof(s->sr_type));
		get_str(&r, s->sr_reason, sizeof(s->sr_reason));
		const uint8_t *b = take(&r, sizeof(s->sr_blind));
		if (b != NULL)
			memcpy(s->sr_blind, b, sizeof(s->sr_blind));
		s->sr_since = get_i64(&r);
	}
	k->k_nsupp = count;
	count = get_u16(&r);
	for (i = 0; i < count && !r.r_bad; i++)
		if (get_str_is(&r, purpose))
			k->k_conflicts = true;
	count = get_u16(&r);
	for (i = 0; i < count && !r.r_bad; i++) {
		get_str(&r, pu, sizeof(pu));
		get_str(&r, ch, sizeof(ch));
		if (strcmp(pu, purpose) != 0)
			e = NULL;
		else if (strcmp(ch, CM_ALL_CHANNELS) == 0)
			e = &k->k_all;
		else if (strcmp(ch, channel) == 0)
			e = &k->k_channel;
		else
			e = NULL;
		if (e == NULL) {
			/* Another purpose or channel: stepped over, not copied. */
			(void)get_i64(&r);
			skip_str(&r);
			skip_str(&r);
			(void)get_i64(&r);
			skip_str(&r);
			(void)take(&r, 8 + 8 + 1);
			continue;
		}
		memcpy(e->e_purpose, pu, sizeof(pu));
		memcpy(e->e_channel, ch, sizeof(ch));
		memcpy(e->e_subject, k->k_subject, sizeof(e->e_subject));
		e->e_seq = get_i64(&r);
		get_str(&r, e->e_event_id, sizeof(e->e_event_id));
		get_str(&r, e->e_state, sizeof(e->e_state));
		e->e_notice_version = get_i64(&r);
		get_str(&r, e->e_method, sizeof(e->e_method));
		e->e_recorded_us = get_i64(&r);
		e->e_collected_us = get_i64(&r);
		e->e_sale_ref = get_u8(&r) != 0;
		if (e->e_seq <= 0)
			r.r_bad = true;
	}
	if (r.r_bad || r.r_off != r.r_n)
		return -1;
	return 0;
}

void
cm_db_decision_rows(struct cm_db *d, bool use)
{
	d->db_no_decisions = !use;
}

cm_result
store_decision_read(struct cm_db *d, const char *type, const uint8_t blind[32],
    const char *purpose, const char *channel, struct cm_check_row *k)
{
	static const char sql[] = "SELECT subject_id, body FROM decisions "
	    "WHERE type = ? AND blind = ?";
	struct store_query q;
	cm_result rc;

	if (d->db_no_decisions)
		return CM_NOTFOUND;
	if ((rc = store_row(&q, d, sql, "tb", type, blind)) == CM_OK) {
		memset(k, 0, sizeof(*k));
		store_column_text(k->k_subject, sizeof(k->k_subject), &q, 0);
		if (k->k_subject[0] == '\0' || body_read(store_col_blob(&q, 1),
		    store_col_bytes(&q, 1), purpose, channel, k) != 0) {
			/* Not one this store wrote: the tables answer instead. */
			memset(k, 0, sizeof(*k));
			rc = CM_NOTFOUND;
		} else {
			k->k_from_row = true;
		}
	}
	store_done(&q);
	return rc;
}

/* ---- keeping them in step with identifiers -------------------------------- */

void
store_decisions_forget_ident(struct cm_db *d, const char *type, const uint8_t blind[32],
    cm_result *rc)
{
	static const char sql[] = "DELETE FROM decisions WHERE blind = ? AND type = ?";

	if (*rc == CM_OK)
		*rc = store_exec(d, sql, "bt", blind, type);
}

void
store_decisions_forget_subject(struct cm_db *d, const char *subject, cm_result *rc)
{
	static const char sql_del[] = "DELETE FROM decisions WHERE blind IN "
	    "(SELECT blind FROM identifiers WHERE subject_id = ?)";
	static const char sql_note[] = "INSERT INTO decisions_stale (subject_id) VALUES (?)";

	if (*rc == CM_OK)
		*rc = store_exec(d, sql_del, "t", subject);
	if (*rc == CM_OK)
		*rc = store_exec(d, sql_note, "t", subject);
}

/* ---- rebuilding ---------------------------------------------------------- */

struct body_supp {
	struct cm_supp_row	 bs_rows[CM_SUPP_FACTS_MAX];
	size_t			 bs_n;
	bool			 bs_overflow;
};

static int
supp_keep(void *arg, const struct cm_supp_row *r)
{
	struct body_supp *bs = arg;
	size_t i;

	for (i = 0; i < bs->bs_n; i++)
		if (strcmp(bs->bs_rows[i].sr_type, r->sr_type) == 0 &&
		    memcmp(bs->bs_rows[i].sr_blind, r->sr_blind, 32) == 0)
			return 0;
	if (bs->bs_n == CM_SUPP_FACTS_MAX)
		bs->bs_overflow = true;
	else
		bs->bs_rows[bs->bs_n++] = *r;
	return 0;
}

/*
 * Builds SUBJECT's body into B from the tables; CM_NOTFOUND when there is
 * no such subject.
 */
static cm_result
body_build(struct cm_db *d, const char *subject, struct cm_buf *b)
{
	static const char sql_subj[] = "SELECT s.state, coalesce(p.objected_at, 0), "
	    "coalesce(p.paused_until, 0) FROM subjects s LEFT JOIN preferences p ON "
	    "p.subject_id = s.id WHERE s.id = ?";
	static const char sql_conf[] = "SELECT DISTINCT purpose FROM merge_conflicts "
	    "WHERE subject_id = ? AND resolved_at IS NULL";
	static const char sql_cur[] = "SELECT purpose, channel, seq, event_id, state, "
	    "notice_version, method, recorded_at, collected_at, sale_ref FROM consent_current "
	    "WHERE subject_id = ?";
	struct body_supp bs;
	struct store_query q;
	const struct store_query *s;
	char text[65];
	size_t i, at;
	unsigned n;
	cm_result rc;

	put_u8(b, BODY_VERSION);
	if ((rc = store_row(&q, d, sql_subj, "t", subject)) == CM_OK) {
		store_column_text(text, sizeof(text), &q, 0);
		put_str(b, text);
		put_i64(b, store_col_int64(&q, 1));
		put_i64(b, store_col_int64(&q, 2));
	}
	store_done(&q);
	if (rc != CM_OK)
		return rc;
	memset(&bs, 0, sizeof(bs));
	if ((rc = cm_store_subject_suppressions(d, subject, supp_keep, &bs)) != CM_OK)
		return rc;
	put_u8(b, bs.bs_overflow);
	put_u8(b, (unsigned)bs.bs_n);
	for (i = 0; i < bs.bs_n; i++) {
		put_str(b, bs.bs_rows[i].sr_type);
		put_str(b, bs.bs_rows[i].sr_reason);
		cm_buf_append(b, bs.bs_rows[i].sr_blind, 32);
		put_i64(b, bs.bs_rows[i].sr_since);
	}
	/* Counts go in front of their lists: written as 0, set once known. */
	at = b->b_len;
	put_u16(b, 0);
	n = 0;
	store_query(&q, d, sql_conf, "t", subject);
	while (store_next(&q)) {
		store_column_text(text, sizeof(text), &q, 0);
		put_str(b, text);
		n++;
	}
	if ((rc = store_done(&q)) != CM_OK)
		return rc;
	b->b_data[at] = (char)(n & 0xff);
	b->b_data[at + 1] = (char)(n >> 8);
	at = b->b_len;
	put_u16(b, 0);
	n = 0;
	store_query(&q, d, sql_cur, "t", subject);
	while (store_next(&q)) {
		s = &q;
		store_column_text(text, sizeof(text), s, 0);
		put_str(b, text);
		store_column_text(text, sizeof(text), s, 1);
		put_str(b, text);
		put_i64(b, store_col_int64(s, 2));
		store_column_text(text, sizeof(text), s, 3);
		put_str(b, text);
		store_column_text(text, sizeof(text), s, 4);
		put_str(b, text);
		put_i64(b, store_col_int64(s, 5));
		store_column_text(text, sizeof(text), s, 6);
		put_str(b, text);
		put_i64(b, store_col_int64(s, 7));
		put_i64(b, store_col_int64(s, 8));
		put_u8(b, store_col_int(s, 9) != 0);
		n++;
	}
	if ((rc = store_done(&q)) != CM_OK)
		return rc;
	if (n > 0xffff)
		return CM_INVALID;	/* never: purposes × channels of one policy */
	b->b_data[at] = (char)(n & 0xff);
	b->b_data[at + 1] = (char)(n >> 8);
	return CM_OK;
}

/* Writes SUBJECT's rows, one per identifier it holds. */
static cm_result
subject_rebuild(struct cm_db *d, const char *subject, struct cm_buf *b)
{
	static const char sql_ids[] = "SELECT type, blind FROM identifiers WHERE subject_id = ?";
	static const char sql_put[] = "UPDATE OR FAIL decisions SET subject_id = ?, body = ? "
	    "WHERE blind = ? AND type = ?";
	static const char sql_add[] = "INSERT OR FAIL INTO decisions (type, blind, "
	    "subject_id, body) VALUES (?, ?, ?, ?)";
	struct {
		char	 type[65];
		uint8_t	 blind[32];
	} ids[16];
	struct store_query q;
	size_t n = 0, i;
	bool more = false;
	cm_result rc;

	cm_buf_reset(b);
	rc = body_build(d, subject, b);
	if (rc == CM_NOTFOUND)
		return CM_OK;	/* erased or merged away: nothing to build */
	if (rc != CM_OK)
		return rc;
	/* Read first, then write: the identifiers are not changed under the reader. */
	store_query(&q, d, sql_ids, "t", subject);
	while (store_next(&q)) {
		if (n == CM_NELEM(ids)) {
			more = true;
			break;
		}
		store_column_text(ids[n].type, sizeof(ids[n].type), &q, 0);
		if (!store_column_blob(ids[n].blind, 32, &q, 1))
			continue;
		n++;
	}
	if ((rc = store_done(&q)) != CM_OK)
		return rc;
	/*
	 * A person with more identifiers than that is left to the tables (no
	 * row is fine; a row on some identifiers only would be too).
	 */
	/*
	 * Usually the trigger that noted the subject deleted its rows: insert
	 * first, and update only the row that is still there. Neither keeps
	 * a statement journal, as OR REPLACE would (SQLCipher encrypts each
	 * page written to one).
	 */
	for (i = 0; !more && i < n; i++) {
		rc = store_exec(d, sql_add, "tbtB", ids[i].type, ids[i].blind, subject,
		    b->b_data, b->b_len);
		if (rc == CM_CONFLICT)
			rc = store_exec(d, sql_put, "tBbt", subject, b->b_data, b->b_len,
			    ids[i].blind, ids[i].type);
		if (rc != CM_OK)
			return rc;
	}
	return CM_OK;
}

typedef char subject_id_t[CM_SUBJECT_ID_LEN + 1];

static int
subject_id_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);	/* a subject_id_t each */
}

/*
 * The first MAX notes, in arrival order: each subject among them is
 * rebuilt once, then those notes (seq up to the last one read) are
 * deleted. Nothing adds notes meanwhile: rebuilding writes only decisions,
 * which has no trigger.
 */
cm_result
cm_store_decisions_rebuild(struct cm_db *d, int max, bool *left)
{
	static const char sql[] = "SELECT seq, subject_id FROM decisions_stale "
	    "ORDER BY seq LIMIT ?";
	static const char sql_done[] = "DELETE FROM decisions_stale WHERE seq <= ?";
	struct store_query q;
	struct cm_buf b;
	subject_id_t *ids = NULL;
	size_t n = 0, cap = 0, i, u;
	int64_t last = 0;
	cm_result rc;

	*left = false;
	store_query(&q, d, sql, "i", (int64_t)max + 1);
	while (store_next(&q)) {
		if (n == (size_t)max) {
			*left = true;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = cm_reallocarray(ids, cap, sizeof(*ids));
		}
		last = store_col_int64(&q, 0);
		store_column_text(ids[n], sizeof(ids[n]), &q, 1);
		n++;
	}
	if ((rc = store_done(&q)) != CM_OK || n == 0) {
		free(ids);
		return rc;
	}
	/* Once each: a subject written twice in a commit was noted twice. */
	qsort(ids, n, sizeof(*ids), subject_id_cmp);
	for (i = u = 0; i < n; i++) {
		if (u > 0 && strcmp(ids[u - 1], ids[i]) == 0)
			continue;
		if (u != i)
			memcpy(ids[u], ids[i], sizeof(*ids));
		u++;
	}
	memset(&b, 0, sizeof(b));
	for (i = 0; i < u && rc == CM_OK; i++)
		rc = subject_rebuild(d, ids[i], &b);
	cm_buf_free(&b);
	free(ids);
	if (rc != CM_OK)
		return rc;
	return store_exec(d, sql_done, "i", last);
}

cm_result
cm_store_decisions_pending(struct cm_db *d, int64_t *n)
{
	static const char sql[] = "SELECT count(DISTINCT subject_id) FROM decisions_stale";
	struct store_query q;
	cm_result rc;

	*n = 0;
	if ((rc = store_row(&q, d, sql, "")) == CM_OK)
		*n = store_col_int64(&q, 0);
	store_done(&q);
	return rc;
}
