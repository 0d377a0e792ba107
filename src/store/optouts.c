/* SPDX-License-Identifier: ISC */
/*
 * The opt-out ledger: DIR/optouts.ledger, beside the erasure ledger and,
 * like it, outside the database, so that a restore of an older copy of the
 * database can learn every "no" said after that copy was made and record
 * it again: a person's "no" must outlive a restore. One line per "no",
 * holding no personal data (subject ids, blind indexes, policy ids, times
 * in microseconds):
 *
 *	n1 c SUBJECT PURPOSE CHANNEL STATE METHOD NOTICE COLLECTED RECORDED MAC
 *	n1 s TYPE BLIND REASON SINCE MAC
 *	n1 o SUBJECT SCOPE AT MAC
 *	n1 r SUBJECT AT MAC
 *
 * c: a withdrawn or refused consent event (CHANNEL "*": all channels;
 * unsubscribe, a preference switched off, GPC and imports all write such
 * events); s: an entry added to the suppression list (BLIND the hex of the
 * blind index, never the identifier); o: an Art. 21 objection (SCOPE
 * direct_marketing); r: an Art. 18 restriction. A field is written as it
 * is when it is printable ASCII without space or '%', else with those
 * bytes as %XX; an empty field is "%00". The ids all are plain today.
 *
 * MAC is the hex HMAC-SHA256, under a key derived from the erasure
 * ledger's (itself derived from the master key), of the previous line's
 * MAC (32 zero bytes for the first line) followed by the text between
 * "n1 " and " MAC": the chain of the erasure ledger, with the same
 * guarantees (no line forged, edited, reordered or removed from the middle
 * without the master key).
 *
 * When a line is written: as for erasures, only once the transaction that
 * wrote the "no" committed, and synced before this process's next writer
 * may begin. The store notes each "no" where it is written (the event
 * insert, the suppression insert, the objection in the preferences row,
 * the restriction in the subject's state); cm_db_commit() appends the
 * notes; a rollback drops them. A crash between the commit and the line
 * loses the line: cm_store_optouts_sync() adds what the database holds and
 * the ledger lacks (see there for its reach). A torn last line is cut off
 * by the next append. Lines may repeat: applying a "no" twice changes
 * nothing. The file's reading, tail and appends are chain.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "store_int.h"

#define OPTOUT_FIELDS	9	/* the most a line has, kind included */

static const char *const kind_names[] = { "consent", "suppression", "objection",
    "restriction" };
static const char kind_tags[] = "csor";

/* The ledger's MAC key, from the erasure ledger's key EKEY, into OUT. */
static void
optout_key(const uint8_t ekey[32], uint8_t out[32])
{
	static const char *const parts[] = { "consentd opt-out ledger v1" };

	cm_keyed_hash(out, 32, ekey, parts, 1);
}

/* Appends one field S to B, after a space. */
static void
field_put(struct cm_buf *b, const char *s)
{
	const unsigned char *p;

	cm_buf_append(b, " ", 1);
	if (*s == '\0') {
		cm_buf_append(b, "%00", 3);
		return;
	}
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '%')
			cm_buf_append(b, p, 1);
		else
			cm_buf_appendf(b, "%%%02X", *p);
	}
}

/* O as the text of a line (without "n1 " and the MAC): a new string. */
static char *
optout_text(const struct cm_optout *o)
{
	struct cm_buf b;
	char hex[65];

	memset(&b, 0, sizeof(b));
	cm_buf_append(&b, &kind_tags[o->o_kind], 1);
	switch (o->o_kind) {
	case CM_OPTOUT_CONSENT:
		field_put(&b, o->o_subject);
		field_put(&b, o->o_purpose);
		field_put(&b, o->o_channel);
		field_put(&b, o->o_state);
		field_put(&b, o->o_method);
		cm_buf_appendf(&b, " %" PRId64 " %" PRId64 " %" PRId64, o->o_notice, o->o_at,
		    o->o_recorded);
		break;
	case CM_OPTOUT_SUPPRESSION:
		cm_hex_encode(hex, o->o_blind, 32);
		field_put(&b, o->o_type);
		cm_buf_appendf(&b, " %s", hex);
		field_put(&b, o->o_reason);
		cm_buf_appendf(&b, " %" PRId64, o->o_at);
		break;
	case CM_OPTOUT_OBJECTION:
		field_put(&b, o->o_subject);
		cm_buf_appendf(&b, " direct_marketing %" PRId64, o->o_at);
		break;
	case CM_OPTOUT_RESTRICTION:
		field_put(&b, o->o_subject);
		cm_buf_appendf(&b, " %" PRId64, o->o_at);
		break;
	}
	return b.b_data;
}

/* Field TOK decoded into DST (size N): 0, or -1 when malformed or too long. */
static int
field_get(const char *tok, char *dst, size_t n)
{
	size_t k = 0;
	uint8_t c;

	for (; *tok != '\0'; tok++) {
		if (*tok == '%') {
			char h[3];

			if (tok[1] == '\0' || tok[2] == '\0')
				return -1;
			h[0] = tok[1];
			h[1] = tok[2];
			h[2] = '\0';
			if (cm_hex_decode(&c, h, 1) != 0)
				return -1;
			tok += 2;
		} else
			c = (uint8_t)*tok;
		if (k + 1 >= n)
			return -1;
		dst[k++] = (char)c;
	}
	dst[k] = '\0';
	return 0;
}

static int
field_time(const char *tok, int64_t *out)
{
	return cm_parse_i64(tok, 0, INT64_MAX, out);
}

/* The text of a line, already verified, into O: 0, or -1. */
static int
optout_parse(const char *text, struct cm_optout *o)
{
	static const size_t want[] = { 9, 5, 4, 3 };
	char *copy, *tok[OPTOUT_FIELDS + 1], *save = NULL, *t;
	const char *k;
	size_t n = 0;
	int bad = -1;

	memset(o, 0, sizeof(*o));
	copy = cm_strdup(text);
	for (t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save))
		if (n <= OPTOUT_FIELDS)
			tok[n++] = t;
	if (n == 0 || strlen(tok[0]) != 1 || (k = strchr(kind_tags, tok[0][0])) == NULL ||
	    n != want[k - kind_tags])
		goto out;
	o->o_kind = (enum cm_optout_kind)(k - kind_tags);
	switch (o->o_kind) {
	case CM_OPTOUT_CONSENT:
		bad = field_get(tok[1], o->o_subject, sizeof(o->o_subject)) |
		    field_get(tok[2], o->o_purpose, sizeof(o->o_purpose)) |
		    field_get(tok[3], o->o_channel, sizeof(o->o_channel)) |
		    field_get(tok[4], o->o_state, sizeof(o->o_state)) |
		    field_get(tok[5], o->o_method, sizeof(o->o_method)) |
		    field_time(tok[6], &o->o_notice) | field_time(tok[7], &o->o_at) |
		    field_time(tok[8], &o->o_recorded);
		break;
	case CM_OPTOUT_SUPPRESSION:
		bad = field_get(tok[1], o->o_type, sizeof(o->o_type)) |
		    cm_hex_decode(o->o_blind, tok[2], 32) |
		    field_get(tok[3], o->o_reason, sizeof(o->o_reason)) |
		    field_time(tok[4], &o->o_at);
		break;
	case CM_OPTOUT_OBJECTION:
		bad = field_get(tok[1], o->o_subject, sizeof(o->o_subject)) |
		    (strcmp(tok[2], "direct_marketing") != 0 ? -1 : 0) |
		    field_time(tok[3], &o->o_at);
		break;
	case CM_OPTOUT_RESTRICTION:
		bad = field_get(tok[1], o->o_subject, sizeof(o->o_subject)) |
		    field_time(tok[2], &o->o_at);
		break;
	}
out:
	free(copy);
	return bad != 0 ? -1 : 0;
}

static const struct store_chain optout_chain = { CM_OPTOUT_LEDGER, "n1" };

struct optout_read {
	int	(*fn)(void *, const struct cm_optout *);
	void	*arg;
};

static int
optout_line(void *arg, const char *text)
{
	struct optout_read *r = arg;
	struct cm_optout o;

	/* Signed, yet not understood: a "no" this build cannot apply. */
	if (optout_parse(text, &o) != 0)
		return -1;
	return r->fn != NULL && r->fn(r->arg, &o) != 0 ? 1 : 0;
}

/* cm_store_optouts_read() with the ledger key KEY. */
static cm_result
optout_read(const char *dir, const uint8_t key[32],
    int (*fn)(void *, const struct cm_optout *), void *arg, char *err, size_t errlen)
{
	struct optout_read r = { fn, arg };

	return store_chain_read(dir, &optout_chain, key, optout_line, &r, err, errlen);
}

cm_result
cm_store_optouts_read(const char *dir, const struct cm_keys *keys,
    int (*fn)(void *, const struct cm_optout *), void *arg, char *err, size_t errlen)
{
	uint8_t *ekey = cm_secure_alloc(32), *key = cm_secure_alloc(32);
	cm_result rc;

	store_ledger_key(keys, ekey);
	optout_key(ekey, key);
	rc = optout_read(dir, key, fn, arg, err, errlen);
	cm_secure_free(key);
	cm_secure_free(ekey);
	return rc;
}

/* Appends the N texts of LINES to DIR's ledger (erasure key EKEY), synced. */
static cm_result
optout_append(const char *dir, const uint8_t ekey[32], char *const *lines, size_t n)
{
	uint8_t *key;
	cm_result rc;

	if (n == 0)
		return CM_OK;
	key = cm_secure_alloc(32);
	optout_key(ekey, key);
	rc = store_chain_append(dir, &optout_chain, key, lines, n);
	cm_secure_free(key);
	return rc;
}

void
store_optouts_note(struct cm_db *d, const struct cm_optout *o)
{
	char *s;

	if ((s = optout_text(o)) == NULL) {
		cm_log(CM_LOG_ERROR, "optout_ledger_error", ",\"func\":\"%s\",\"msg\":\"cannot "
		    "encode a ledger line\"", __func__);
		return;
	}
	if (d->db_noptouts == d->db_capoptouts) {
		d->db_capoptouts = d->db_capoptouts ? d->db_capoptouts * 2 : 8;
		d->db_optouts = cm_reallocarray(d->db_optouts, d->db_capoptouts,
		    sizeof(*d->db_optouts));
	}
	d->db_optouts[d->db_noptouts++] = s;
	/* Outside a transaction the statement has already committed. */
	if (!store_in_tx(d))
		store_optouts_committed(d);
}

void
store_optouts_committed(struct cm_db *d)
{
	char dir[4096];
	cm_result rc = CM_IOERR;

	if (d->db_noptouts == 0)
		return;
	if (cm_store_dir(d, dir, sizeof(dir)) == 0)
		rc = optout_append(dir, store_ledger_key_of(d->db_store), d->db_optouts,
		    d->db_noptouts);
	if (rc != CM_OK)
		cm_log(CM_LOG_ERROR, "optout_ledger_error", ",\"func\":\"%s\",\"count\":%zu,"
		    "\"msg\":\"the opt-outs committed; their ledger lines are added at the "
		    "next start or backup\"", __func__, d->db_noptouts);
	store_optouts_discard(d, 0);
}

void
store_optouts_discard(struct cm_db *d, size_t keep)
{
	while (d->db_noptouts > keep)
		free(d->db_optouts[--d->db_noptouts]);
}

void
store_optouts_free(struct cm_db *d)
{
	store_optouts_discard(d, 0);
	free(d->db_optouts);
	d->db_optouts = NULL;
	d->db_noptouts = d->db_capoptouts = 0;
}

/* ---- lines a crash kept out ----------------------------------------------- */

/*
 * How far before the newest consent line of the ledger the sync looks for
 * consent events the ledger lacks: lines are appended in commit order, so
 * a line a crash kept out belongs to the last commits before it; an hour
 * covers a writer's clock read before its turn to commit, and a second
 * process (an import) committing beside the server.
 */
#define SYNC_WINDOW_US	(INT64_C(3600) * 1000000)

/* What makes two lines the same "no", as a 16-byte digest. */
struct sync_set {
	uint8_t	(*d)[16];
	size_t	 n, cap;
	int64_t	 newest;	/* the newest consent line's recorded_at */
	const uint8_t *key;
};

static void
optout_identity(const uint8_t *key, const struct cm_optout *o, uint8_t out[16])
{
	char blind[65], at[24];
	const char *parts[6] = { kind_names[o->o_kind], "", "", "", "", "" };

	switch (o->o_kind) {
	case CM_OPTOUT_CONSENT:
		snprintf(at, sizeof(at), "%" PRId64, o->o_at);
		parts[1] = o->o_subject;
		parts[2] = o->o_purpose;
		parts[3] = o->o_channel;
		parts[4] = o->o_state;
		parts[5] = at;
		break;
	case CM_OPTOUT_SUPPRESSION:
		cm_hex_encode(blind, o->o_blind, 32);
		parts[1] = o->o_type;
		parts[2] = blind;
		break;
	default:
		parts[1] = o->o_subject;
		break;
	}
	cm_keyed_hash(out, 16, key, parts, CM_NELEM(parts));
}

static int
sync_collect(void *arg, const struct cm_optout *o)
{
	struct sync_set *s = arg;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->d = cm_reallocarray(s->d, s->cap, sizeof(*s->d));
	}
	optout_identity(s->key, o, s->d[s->n++]);
	if (o->o_kind == CM_OPTOUT_CONSENT && o->o_recorded > s->newest)
		s->newest = o->o_recorded;
	return 0;
}

static int
digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Notes O on D unless the ledger has it; counts it in *ADDED. */
static void
sync_one(struct cm_db *d, const struct sync_set *s, const struct cm_optout *o, size_t *added)
{
	uint8_t id[16];

	optout_identity(s->key, o, id);
	if (s->n > 0 && bsearch(id, s->d, s->n, sizeof(*s->d), digest_cmp) != NULL)
		return;
	if (d->db_noptouts == d->db_capoptouts) {
		d->db_capoptouts = d->db_capoptouts ? d->db_capoptouts * 2 : 8;
		d->db_optouts = cm_reallocarray(d->db_optouts, d->db_capoptouts,
		    sizeof(*d->db_optouts));
	}
	if ((d->db_optouts[d->db_noptouts] = optout_text(o)) != NULL) {
		d->db_noptouts++;
		(*added)++;
	}
}

/* The "no"s D holds, each noted on D unless the ledger S has it. */
static cm_result
sync_scan(struct cm_db *d, const struct sync_set *s, size_t *added)
{
	static const char sql_ev[] = "SELECT subject_id, purpose, channel, state, method, "
	    "notice_version, collected_at, recorded_at FROM consent_events "
	    "WHERE state <> 'granted' AND recorded_at >= ? ORDER BY seq";
	static const char sql_supp[] = "SELECT type, blind, reason, since FROM suppressions "
	    "ORDER BY since, type, blind";
	static const char sql_obj[] = "SELECT subject_id, objected_at FROM preferences "
	    "WHERE coalesce(objected_at, 0) > 0 ORDER BY objected_at, subject_id";
	static const char sql_res[] = "SELECT id, updated_at FROM subjects "
	    "WHERE state = 'restricted' ORDER BY updated_at, id";
	struct store_query q;
	struct cm_optout o;
	cm_result rc;

	store_query(&q, d, sql_ev, "i", s->newest > SYNC_WINDOW_US ?
	    s->newest - SYNC_WINDOW_US : (int64_t)0);
	while (store_next(&q)) {
		memset(&o, 0, sizeof(o));
		o.o_kind = CM_OPTOUT_CONSENT;
		store_column_text(o.o_subject, sizeof(o.o_subject), &q, 0);
		store_column_text(o.o_purpose, sizeof(o.o_purpose), &q, 1);
		store_column_text(o.o_channel, sizeof(o.o_channel), &q, 2);
		store_column_text(o.o_state, sizeof(o.o_state), &q, 3);
		store_column_text(o.o_method, sizeof(o.o_method), &q, 4);
		o.o_notice = store_col_int64(&q, 5);
		o.o_at = store_col_int64(&q, 6);
		o.o_recorded = store_col_int64(&q, 7);
		sync_one(d, s, &o, added);
	}
	if ((rc = store_done(&q)) != CM_OK)
		return rc;
	store_query(&q, d, sql_supp, "");
	while (store_next(&q)) {
		memset(&o, 0, sizeof(o));
		o.o_kind = CM_OPTOUT_SUPPRESSION;
		store_column_text(o.o_type, sizeof(o.o_type), &q, 0);
		store_column_blob(o.o_blind, 32, &q, 1);
		store_column_text(o.o_reason, sizeof(o.o_reason), &q, 2);
		o.o_at = store_col_int64(&q, 3);
		sync_one(d, s, &o, added);
	}
	if ((rc = store_done(&q)) != CM_OK)
		return rc;
	store_query(&q, d, sql_obj, "");
	while (store_next(&q)) {
		memset(&o, 0, sizeof(o));
		o.o_kind = CM_OPTOUT_OBJECTION;
		store_column_text(o.o_subject, sizeof(o.o_subject), &q, 0);
		o.o_at = store_col_int64(&q, 1);
		sync_one(d, s, &o, added);
	}
	if ((rc = store_done(&q)) != CM_OK)
		return rc;
	store_query(&q, d, sql_res, "");
	while (store_next(&q)) {
		memset(&o, 0, sizeof(o));
		o.o_kind = CM_OPTOUT_RESTRICTION;
		store_column_text(o.o_subject, sizeof(o.o_subject), &q, 0);
		o.o_at = store_col_int64(&q, 1);
		sync_one(d, s, &o, added);
	}
	return store_done(&q);
}

cm_result
cm_store_optouts_sync(struct cm_db *d, size_t *added, char *err, size_t errlen)
{
	struct sync_set s;
	char dir[4096];
	uint8_t *key;
	size_t keep = d->db_noptouts;
	cm_result rc;

	*added = 0;
	memset(&s, 0, sizeof(s));
	if (cm_store_dir(d, dir, sizeof(dir)) != 0) {
		snprintf(err, errlen, "the data directory's path is too long");
		return CM_INVALID;
	}
	key = cm_secure_alloc(32);
	optout_key(store_ledger_key_of(d->db_store), key);
	s.key = key;
	if ((rc = optout_read(dir, key, sync_collect, &s, err, errlen)) != CM_OK)
		goto out;
	if (s.n > 0)
		qsort(s.d, s.n, sizeof(*s.d), digest_cmp);
	/*
	 * The scan reads every suppression and the recent "no"s once: with a
	 * small cache, so that the server does not start with its page cache
	 * full of pages no check asked for (50 MiB more resident at 100,000
	 * subjects).
	 */
	cm_db_scan_cache(d, true);
	rc = sync_scan(d, &s, added);
	cm_db_scan_cache(d, false);
	if (rc != CM_OK) {
		snprintf(err, errlen, "cannot read the opt-outs: %s", cm_result_str(rc));
		goto out;
	}
	if ((rc = optout_append(dir, store_ledger_key_of(d->db_store), d->db_optouts + keep,
	    d->db_noptouts - keep)) != CM_OK)
		snprintf(err, errlen, "cannot append to %s/%s", dir, CM_OPTOUT_LEDGER);
out:
	store_optouts_discard(d, keep);
	if (rc != CM_OK)
		*added = 0;
	cm_secure_free(key);
	free(s.d);
	return rc;
}

/* ---- what the writes of a "no" note ------------------------------------------ */

void
store_optouts_note_event(struct cm_db *d, const struct cm_event_row *e)
{
	struct cm_optout o;

	if (strcmp(e->e_state, "granted") == 0)
		return;
	memset(&o, 0, sizeof(o));
	o.o_kind = CM_OPTOUT_CONSENT;
	snprintf(o.o_subject, sizeof(o.o_subject), "%s", e->e_subject);
	snprintf(o.o_purpose, sizeof(o.o_purpose), "%s", e->e_purpose);
	snprintf(o.o_channel, sizeof(o.o_channel), "%s", e->e_channel);
	snprintf(o.o_state, sizeof(o.o_state), "%s", e->e_state);
	snprintf(o.o_method, sizeof(o.o_method), "%s", e->e_method);
	o.o_notice = e->e_notice_version;
	o.o_at = e->e_collected_us;
	o.o_recorded = e->e_recorded_us;
	store_optouts_note(d, &o);
}

void
store_optouts_note_subject(struct cm_db *d, enum cm_optout_kind kind, const char *subject,
    int64_t at)
{
	struct cm_optout o;

	memset(&o, 0, sizeof(o));
	o.o_kind = kind;
	snprintf(o.o_subject, sizeof(o.o_subject), "%s", subject);
	o.o_at = at;
	store_optouts_note(d, &o);
}

cm_result
cm_store_event_exists(struct cm_db *d, const char *subject, const char *purpose,
    const char *channel, const char *state, int64_t collected, bool *found)
{
	static const char sql[] = "SELECT 1 FROM consent_events WHERE subject_id = ? AND "
	    "purpose = ? AND channel = ? AND state = ? AND collected_at = ? LIMIT 1";
	struct store_query q;
	cm_result rc;

	rc = store_row(&q, d, sql, "tttti", subject, purpose, channel, state, collected);
	*found = rc == CM_OK;
	store_done(&q);
	return rc == CM_NOTFOUND ? CM_OK : rc;
}
