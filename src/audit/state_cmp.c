/* SPDX-License-Identifier: ISC */
/*
 * The comparison half of the state check (see state.c): each state table
 * is read once and every row held against what the replay ends with;
 * failures name the table and the event or subject, a few per table.
 *
 * The two largest tables need little of the replay, so they are read by
 * cm_state_collect() while the replay still runs, on a second connection
 * that sees the same state (cm_db_read_begin_twin()): consent_current is
 * checked there in full against what the consent_events rows make of it,
 * and each event row is kept as a small record (its entry's index, a
 * digest of its fields, its subject), matched with the replay's events
 * once the replay is done. Everything else follows in cm_state_compare().
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "state.h"

/* The event that should be the current row of one key. */
struct vs_current {
	uint64_t key;		/* subject, purpose and channel ids (cur_key()) */
	int64_t	 collected;
	int64_t	 seq;
	uint8_t	 digest[16];	/* what the row must repeat of it */
	bool	 seen;
};

/*
 * The current rows by key: open addressing over the keys, which pack a
 * subject's id in sids with the ids of a purpose and a channel, so a row
 * costs one lookup of its subject id (needed anyway) and one probe here.
 * Each slot holds its key beside the index, so a probe reads one slot and
 * not also the row it points to (a cache miss each, at a million rows).
 */
struct vs_curslot {
	uint64_t	 key;
	uint32_t	 idx;		/* index into cur + 1, 0: empty */
};

struct vs_curmap {
	struct vs_curslot *slot;
	uint32_t	 nslots;	/* a power of two, at most half full */
};

/* One consent_events row, read by the collector, matched after the replay. */
struct vs_row {
	int64_t		 audit_index;
	int64_t		 seq;
	int64_t		 collected;
	uint8_t		 digest[16];	/* vs_event_digest() of its fields */
	uint32_t	 sid;		/* its subject's id in sids */
	bool		 sale_ref;
	bool		 superseded;
};

/* One subjects row: its id and merged_into at offsets into subj_ids. */
struct vs_subjrow {
	size_t			 id, into;
	enum cm_subject_state	 state;
	bool			 has_key;
};

struct vs_cmp {
	struct cm_state_replay	*r;
	const struct cm_keys	*keys;
	struct cm_intern	 sids;		/* subject ids; the first nmapped have a mapping */
	uint32_t		 nmapped;
	/*
	 * Subject id → pseudonym id in the replay; the collector, which may
	 * not touch the replay, leaves ids in psn_strs here, and the
	 * comparison turns them into the replay's.
	 */
	uint32_t		*sid_psn;
	size_t			 sid_cap;
	struct cm_intern	 psn_strs;
	/* What the collector found, and what it wrote of consent_current. */
	bool			 collected;
	struct vs_row		*ev;
	size_t			 nev, ev_cap;
	char			*cur_report;
	size_t			 cur_report_len;
	struct cm_verify_report	 cur_rep;
	unsigned		 bad;		/* failures of the table being checked */
	unsigned		 shown;
	const char		*table;
	FILE			*out;
	struct cm_verify_report	*rep;
	uint64_t		 rows;
	uint64_t		 unchecked;	/* rows legacy entries leave open */
	bool			*seen;		/* bindings met, by id */
	uint32_t		 nseen;
	bool			*sid_row;	/* subject id → a subjects row was met */
	bool			*psn_prefs;	/* pseudonym → a preferences row was met */
	struct cm_db		*db;
	/* What the verified events make of consent_current, by key. */
	struct cm_intern	 purposes, channels;
	struct vs_curmap	 curmap;
	struct vs_current	*cur;
	uint32_t		 ncur;
	size_t			 cur_cap;
	/*
	 * The subjects table as the collector read it, for the comparison
	 * after the log: what it compares of each row, the ids back to back.
	 */
	struct vs_subjrow	*subj;
	size_t			 nsubj, subj_cap;
	char			*subj_ids;
	size_t			 subj_used, subj_ids_cap;
};

static void CM_PRINTF(2, 3)
fail(struct vs_cmp *c, const char *fmt, ...)
{
	va_list ap;

	c->bad++;
	if (c->shown++ >= MAX_REPORTS)
		return;
	fprintf(c->out, "FAIL state: %s: ", c->table);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
}

static void
table_begin(struct vs_cmp *c, const char *table)
{
	c->table = table;
	c->bad = c->shown = 0;
	c->rows = c->unchecked = 0;
}

static void
table_end(struct vs_cmp *c, const char *what)
{
	if (c->shown > MAX_REPORTS)
		fprintf(c->out, "… %u more in %s\n", c->shown - MAX_REPORTS, c->table);
	if (c->bad == 0) {
		fprintf(c->out, "ok   state: %s: %" PRIu64 " %s match the log", c->table,
		    c->rows, what);
		if (c->unchecked > 0)
			fprintf(c->out, " (%" PRIu64 " from before the log recorded "
			    "them could not be checked)", c->unchecked);
		fputc('\n', c->out);
		c->rep->vr_passed++;
	} else {
		c->rep->vr_failed++;
	}
}

static int
map_psn(void *arg, const char *subject, const char *psn)
{
	struct vs_cmp *c = arg;
	uint32_t i = cm_intern(&c->sids, subject, true), p;

	if (i >= c->sid_cap) {
		c->sid_cap = c->sid_cap ? c->sid_cap * 2 : 1024;
		while (i >= c->sid_cap)
			c->sid_cap *= 2;
		c->sid_psn = cm_reallocarray_large(c->sid_psn, c->sid_cap, sizeof(*c->sid_psn));
	}
	p = cm_intern(&c->psn_strs, psn, true);
	c->sid_psn[i] = p;
	return 0;
}

/* The pseudonym id of SUBJECT, NONE when its mapping was erased. */
static uint32_t
psn_of(struct vs_cmp *c, const char *subject, bool *mapped)
{
	uint32_t i = cm_intern(&c->sids, subject, false);

	*mapped = i < c->nmapped;
	return *mapped ? c->sid_psn[i] : NONE;
}

/* The subject pseudonym P stands for, or NULL when its mapping was erased. */
static const char *
psn_subject(const struct vs_cmp *c, uint32_t p)
{
	uint32_t i;

	for (i = 0; i < c->nmapped; i++)
		if (c->sid_psn[i] == p)
			return cm_intern_str(&c->sids, i);
	return NULL;
}

static int
read_event_id(void *arg, uint64_t idx, const void *entry, size_t len, const uint8_t leaf[32])
{
	char *out = arg;
	json_t *j;

	(void)idx;
	(void)leaf;
	if ((j = json_loadb(entry, len, 0, NULL)) != NULL)
		snprintf(out, 64, "%s", vs_str(json_object_get(j, "d"), "event_id"));
	json_decref(j);
	return 1;
}

/* The event id entry IDX names, for a report ("?" when unreadable). */
static void
entry_event_id(struct cm_db *db, uint64_t idx, char *out, size_t outlen)
{
	snprintf(out, outlen, "?");
	if (outlen >= 64 && cm_store_audit_scan(db, idx, idx + 1, read_event_id, out) != CM_OK)
		snprintf(out, outlen, "?");
}

static struct vs_event *
event_at(struct cm_state_replay *r, uint64_t idx)
{
	size_t lo = 0, hi = r->nev;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->ev[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->nev && r->ev[lo].idx == idx ? &r->ev[lo] : NULL;
}

/* What a current row repeats of its event. */
static void
current_digest(uint8_t out[16], const struct cm_event_row *e)
{
	const char *strs[] = { e->e_event_id, e->e_state, e->e_method };
	int64_t nums[] = { e->e_seq, e->e_notice_version, e->e_recorded_us,
	    e->e_collected_us, e->e_sale_ref };

	vs_digest(out, strs, CM_NELEM(strs), nums, CM_NELEM(nums));
}

/*
 * The subject's part is mixed and the purpose and channel added, so one
 * subject's rows sit in neighbouring slots: both tables are read subject
 * by subject as often as not, and then their probes share a cache line or
 * two instead of taking a miss each.
 */
static uint32_t
curmap_hash(uint64_t key)
{
	uint64_t sid = (key >> 32) * 0x9e3779b97f4a7c15u;

	/*
	 * Purpose and channel ids are small: added, they keep one subject's
	 * rows within a few slots (a cache line holds four). Keys that meet
	 * there are placed by the probe, a step or two on, still close.
	 */
	return (uint32_t)(sid >> 32) + (uint32_t)(key >> 16 & 0xffff) + (uint32_t)(key & 0xffff);
}

/* The slot of KEY: where it is, or the empty one where it would go. */
static struct vs_curslot *
curmap_slot(struct vs_cmp *c, uint64_t key)
{
	struct vs_curmap *m = &c->curmap;
	uint32_t j = curmap_hash(key) & (m->nslots - 1);

	while (m->slot[j].idx != 0 && m->slot[j].key != key)
		j = (j + 1) & (m->nslots - 1);
	return &m->slot[j];
}

static void
curmap_grow(struct vs_cmp *c)
{
	struct vs_curmap *m = &c->curmap;
	struct vs_curslot *sl;
	uint32_t i;

	free(m->slot);
	m->nslots = m->nslots ? m->nslots * 2 : 4096;
	m->slot = cm_calloc_large(m->nslots, sizeof(*m->slot));
	for (i = 0; i < c->ncur; i++) {
		sl = curmap_slot(c, c->cur[i].key);
		sl->key = c->cur[i].key;
		sl->idx = i + 1;
	}
}

/*
 * The key of E's subject, purpose and channel: the subject's id in sids
 * (added when its mapping was erased), and small ids for the purpose and
 * channel, which the policy keeps to a few. NONE_KEY when one overflows.
 */
#define NONE_KEY	UINT64_MAX
static uint64_t
current_key(struct vs_cmp *c, const struct cm_event_row *e, uint32_t sid, bool add)
{
	uint32_t pid, chid;

	pid = cm_intern(&c->purposes, e->e_purpose, add);
	chid = cm_intern(&c->channels, e->e_channel, add);
	if (sid == NONE || pid == NONE || chid == NONE || pid > 0xffff || chid > 0xffff)
		return NONE_KEY;
	return (uint64_t)sid << 32 | (uint64_t)pid << 16 | chid;
}

/* The expected current row of KEY, or NULL; with ADD, made when missing. */
static struct vs_current *
current_of(struct vs_cmp *c, uint64_t key, bool add)
{
	struct vs_curslot *slot;

	if (key == NONE_KEY || (c->curmap.nslots == 0 && !add))
		return NULL;
	if (c->curmap.nslots == 0)
		curmap_grow(c);
	slot = curmap_slot(c, key);
	if (slot->idx != 0)
		return &c->cur[slot->idx - 1];
	if (!add)
		return NULL;
	if (c->ncur == c->cur_cap) {
		c->cur_cap = c->cur_cap ? c->cur_cap * 2 : 4096;
		c->cur = cm_reallocarray_large(c->cur, c->cur_cap, sizeof(*c->cur));
	}
	memset(&c->cur[c->ncur], 0, sizeof(c->cur[c->ncur]));
	c->cur[c->ncur].key = key;
	slot->key = key;
	slot->idx = ++c->ncur;
	if (c->ncur * 2 > c->curmap.nslots)
		curmap_grow(c);
	return &c->cur[c->ncur - 1];
}

/* Keeps E as the expected current row of its key when it is the latest. */
static void
current_expect(struct vs_cmp *c, const struct cm_event_row *e, uint32_t sid)
{
	struct vs_current *v = current_of(c, current_key(c, e, sid, true), true);

	/* A purpose or channel beyond 65,535 distinct ones: reported below. */
	if (v == NULL)
		return;
	/* SPEC §6: the latest collected_at decides, ties to the later recorded. */
	if (v->seq != 0 && (e->e_collected_us != v->collected ?
	    e->e_collected_us < v->collected : e->e_seq < v->seq))
		return;
	v->collected = e->e_collected_us;
	v->seq = e->e_seq;
	current_digest(v->digest, e);
}

static int
collect_event(void *arg, const struct cm_event_row *e)
{
	struct vs_cmp *c = arg;
	struct vs_row *w;
	uint32_t sid = cm_intern(&c->sids, e->e_subject, true);

	current_expect(c, e, sid);
	if (c->nev == c->ev_cap) {
		c->ev_cap = c->ev_cap ? c->ev_cap * 2 : 4096;
		c->ev = cm_reallocarray_large(c->ev, c->ev_cap, sizeof(*c->ev));
	}
	w = &c->ev[c->nev++];
	w->audit_index = e->e_audit_index;
	w->seq = e->e_seq;
	w->collected = e->e_collected_us;
	w->sid = sid;
	w->sale_ref = e->e_sale_ref;
	w->superseded = e->e_superseded;
	vs_event_digest(w->digest, e->e_event_id, e->e_purpose, e->e_channel, e->e_state,
	    e->e_method, e->e_notice_version);
	return 0;
}

/* Whether row W says what entry VE does, of the fields VE carried. */
static bool
event_matches(const struct vs_event *ve, const struct vs_row *w)
{
	return memcmp(ve->digest, w->digest, 16) == 0 &&
	    (!(ve->mask & EV_COLLECTED) || ve->collected == w->collected) &&
	    (!(ve->mask & EV_SALE) || ve->sale_ref == w->sale_ref) &&
	    (!(ve->mask & EV_SUPERSEDED) || ve->superseded == w->superseded);
}

/* The event id of row W for a report, read again only when it is shown. */
static const char *
row_event_id(struct vs_cmp *c, const struct vs_row *w, struct cm_event_row *buf)
{
	if (c->shown >= MAX_REPORTS)
		return "";
	if (cm_store_event_by_seq(c->db, w->seq, buf) != CM_OK)
		snprintf(buf->e_event_id, sizeof(buf->e_event_id), "of sequence %" PRId64,
		    w->seq);
	return buf->e_event_id;
}

static void
cmp_event(struct vs_cmp *c, const struct vs_row *w)
{
	struct cm_event_row buf;
	struct vs_event *ve;

	ve = w->audit_index >= 0 ? event_at(c->r, (uint64_t)w->audit_index) : NULL;
	if (ve == NULL || ve->matched) {
		fail(c, "event %s has no consent.recorded entry of its own (row added)",
		    row_event_id(c, w, &buf));
		return;
	}
	ve->matched = true;
	if (!event_matches(ve, w)) {
		fail(c, "event %s differs from its entry %" PRIu64 " (row edited)",
		    row_event_id(c, w, &buf), ve->idx);
		return;
	}
	if (w->sid < c->nmapped && c->sid_psn[w->sid] != vs_final_psn(c->r, ve->psn))
		fail(c, "event %s belongs to subject %s, but its entry says another "
		    "subject (row moved)", row_event_id(c, w, &buf),
		    cm_intern_str(&c->sids, w->sid));
}

static int
cmp_current(void *arg, const struct cm_event_row *e)
{
	struct vs_cmp *c = arg;
	struct vs_current *v;
	uint8_t dg[16];

	c->rows++;
	v = current_of(c, current_key(c, e, cm_intern(&c->sids, e->e_subject, false), false),
	    false);
	if (v == NULL) {
		fail(c, "the row of subject %s, %s, %s names event %s, but the subject has "
		    "no event there (row added)", e->e_subject, e->e_purpose,
		    strcmp(e->e_channel, CM_ALL_CHANNELS) ? e->e_channel : "all channels",
		    e->e_event_id);
		return 0;
	}
	v->seen = true;
	current_digest(dg, e);
	if (v->seq != e->e_seq || memcmp(dg, v->digest, 16) != 0)
		fail(c, "the row of subject %s, %s, %s is not the event collected last, or "
		    "does not repeat it (row edited)", e->e_subject, e->e_purpose,
		    strcmp(e->e_channel, CM_ALL_CHANNELS) ? e->e_channel : "all channels");
	return 0;
}

static int
cmp_subject(void *arg, const struct cm_subject_row *s)
{
	struct vs_cmp *c = arg;
	struct cm_state_replay *r = c->r;
	char tag[33];
	uint32_t p;
	bool mapped;
	enum cm_subject_state want;

	c->rows++;
	p = psn_of(c, s->s_id, &mapped);
	if (mapped)
		c->sid_row[cm_intern(&c->sids, s->s_id, false)] = true;
	if (s->s_state == CM_SUBJECT_ERASED) {
		cm_audit_tag(c->keys, s->s_id, strlen(s->s_id), tag);
		if (cm_intern(&r->erased, tag, false) == NONE) {
			if (r->legacy_erase > 0) {
				r->legacy_erase--;
				c->unchecked++;
			} else {
				fail(c, "subject %s is erased, but no erasure of it is in the "
				    "log", s->s_id);
			}
		}
		if (s->s_has_key)
			fail(c, "subject %s is erased but still has its key", s->s_id);
		return 0;
	}
	if (!mapped || p == NONE) {
		/* Merged into a subject later erased: its mapping went too. */
		if (!mapped && s->s_merged_into[0] != '\0' && !s->s_has_key)
			return 0;
		fail(c, "subject %s is not in the log (row added)", s->s_id);
		return 0;
	}
	if (s->s_merged_into[0] != '\0') {
		uint32_t into;
		bool m2;

		into = psn_of(c, s->s_merged_into, &m2);
		if (r->subj[p].merged_into == NONE || (m2 && into != r->subj[p].merged_into))
			fail(c, "subject %s is marked merged into %s, which the log does not "
			    "say", s->s_id, s->s_merged_into);
		if (s->s_has_key)
			fail(c, "subject %s was merged away but still has its key", s->s_id);
		return 0;
	}
	if (r->subj[p].merged_into != NONE) {
		fail(c, "subject %s was merged away in the log, but its row says not", s->s_id);
		return 0;
	}
	want = r->subj[p].state;
	if (want == CM_SUBJECT_INVALID || !s->s_has_key || s->s_state != want)
		fail(c, "subject %s is %s%s, the log says %s", s->s_id,
		    cm_subject_state_name(s->s_state), s->s_has_key ? "" : " without a key",
		    want == CM_SUBJECT_INVALID ? "nothing of it" : cm_subject_state_name(want));
	return 0;
}

static int
cmp_prefs(void *arg, const char *subject, const struct cm_prefs_row *pr)
{
	struct vs_cmp *c = arg;
	struct vs_subject *s;
	const char *freq;
	uint32_t p;
	bool mapped;

	c->rows++;
	p = psn_of(c, subject, &mapped);
	if (!mapped || p == NONE) {
		if (pr->p_frequency[0] || pr->p_paused_until || pr->p_objected_at)
			fail(c, "subject %s has settings, but is not in the log", subject);
		return 0;
	}
	c->psn_prefs[p] = true;
	s = &c->r->subj[p];
	if (s->prefs_legacy) {
		c->unchecked++;
		if ((pr->p_objected_at != 0) != (s->objected_at != 0))
			fail(c, "subject %s %s objected, the log says otherwise", subject,
			    pr->p_objected_at ? "has" : "has not");
		return 0;
	}
	freq = s->frequency == NONE ? "" : cm_intern_str(&c->r->freqs, s->frequency);
	if (strcmp(pr->p_frequency, freq) != 0 || pr->p_paused_until != s->paused_until ||
	    (s->objected_at >= 0 ? pr->p_objected_at != s->objected_at :
	    pr->p_objected_at == 0))
		fail(c, "subject %s has settings the log does not say (frequency, pause "
		    "or objection edited)", subject);
	return 0;
}

static int
cmp_supp(void *arg, const struct cm_supp_row *row)
{
	struct vs_cmp *c = arg;
	struct cm_state_replay *r = c->r;
	struct vs_supp *sp;
	char tag[33];
	uint32_t t;

	c->rows++;
	cm_audit_tag_blind(c->keys, row->sr_type, row->sr_blind, tag);
	t = cm_intern(&r->tags, tag, false);
	sp = t == NONE ? NULL : &r->supp[t];
	if (sp == NULL || !sp->present) {
		if (r->legacy_supp > 0 || r->legacy_erase > 0) {
			c->unchecked++;
			return 0;
		}
		fail(c, "entry %s (%s, %s) is not in the log (row added)", tag, row->sr_type,
		    row->sr_reason);
		return 0;
	}
	sp->present = false;	/* seen: what stays present was deleted */
	if (strcmp(sp->reason, row->sr_reason) != 0 ||
	    (sp->since >= 0 && sp->since != row->sr_since))
		fail(c, "entry %s says %s, the log says %s (row edited)", tag, row->sr_reason,
		    sp->reason);
	return 0;
}

static int
cmp_binding(void *arg, const char *subject, const char *type, const uint8_t blind[32])
{
	struct vs_cmp *c = arg;
	char tag[33], key[128];
	uint32_t p, b;
	bool mapped;

	c->rows++;
	p = psn_of(c, subject, &mapped);
	if (!mapped || p == NONE)
		return 0;	/* an erased subject: rule 2 decides for it */
	cm_audit_tag_blind(c->keys, type, blind, tag);
	snprintf(key, sizeof(key), "%s %s", cm_intern_str(&c->r->psn, vs_final_psn(c->r, p)),
	    tag);
	if ((b = cm_intern(&c->r->bound, key, false)) == NONE) {
		fail(c, "subject %s is bound to entry %s, which the log does not say "
		    "(row added)", subject, tag);
		return 0;
	}
	if (b < c->nseen)
		c->seen[b] = true;
	return 0;
}

static void
cmp_table_events(struct vs_cmp *c)
{
	struct cm_state_replay *r = c->r;
	size_t i;

	table_begin(c, "consent_events");
	c->rows = c->nev;
	for (i = 0; i < c->nev; i++)
		cmp_event(c, &c->ev[i]);
	for (i = 0; i < r->nev; i++)
		if (!r->ev[i].matched) {
			char id[64];

			entry_event_id(c->db, r->ev[i].idx, id, sizeof(id));
			fail(c, "event %s of entry %" PRIu64 " has no row (row deleted)", id,
			    r->ev[i].idx);
		}
	table_end(c, "events");
}

static cm_result
cmp_table_current(struct vs_cmp *c)
{
	struct cm_db *db = c->db;
	uint32_t t;
	cm_result rc;

	table_begin(c, "consent_current");
	if ((rc = cm_store_current_scan(db, cmp_current, c)) != CM_OK)
		return rc;
	for (t = 0; t < c->ncur; t++)
		if (!c->cur[t].seen) {
			uint64_t k = c->cur[t].key;
			const char *ch = cm_intern_str(&c->channels, (uint32_t)(k & 0xffff));

			fail(c, "subject %s has events for %s %s but no row (row deleted)",
			    cm_intern_str(&c->sids, (uint32_t)(k >> 32)),
			    cm_intern_str(&c->purposes, (uint32_t)(k >> 16 & 0xffff)),
			    strcmp(ch, CM_ALL_CHANNELS) ? ch : "all channels");
		}
	table_end(c, "current states");
	return CM_OK;
}

/* Keeps subjects row S for cmp_table_subjects (the collector's part). */
static int
keep_subject(void *arg, const struct cm_subject_row *s)
{
	struct vs_cmp *c = arg;
	struct vs_subjrow *w;
	size_t idlen = strlen(s->s_id) + 1, intolen = strlen(s->s_merged_into) + 1;

	if (c->nsubj == c->subj_cap) {
		c->subj_cap = c->subj_cap ? c->subj_cap * 2 : 4096;
		c->subj = cm_reallocarray_large(c->subj, c->subj_cap, sizeof(*c->subj));
	}
	while (c->subj_used + idlen + intolen > c->subj_ids_cap) {
		c->subj_ids_cap = c->subj_ids_cap ? c->subj_ids_cap * 2 : 65536;
		c->subj_ids = cm_reallocarray_large(c->subj_ids, c->subj_ids_cap, 1);
	}
	w = &c->subj[c->nsubj++];
	w->id = c->subj_used;
	memcpy(c->subj_ids + c->subj_used, s->s_id, idlen);
	c->subj_used += idlen;
	w->into = c->subj_used;
	memcpy(c->subj_ids + c->subj_used, s->s_merged_into, intolen);
	c->subj_used += intolen;
	w->state = s->s_state;
	w->has_key = s->s_has_key;
	return 0;
}

static cm_result
cmp_table_subjects(struct vs_cmp *c)
{
	struct cm_state_replay *r = c->r;
	struct cm_subject_row row;
	size_t i;
	uint32_t t;

	table_begin(c, "subjects");
	memset(&row, 0, sizeof(row));
	for (i = 0; i < c->nsubj; i++) {
		const struct vs_subjrow *w = &c->subj[i];

		snprintf(row.s_id, sizeof(row.s_id), "%s", c->subj_ids + w->id);
		snprintf(row.s_merged_into, sizeof(row.s_merged_into), "%s",
		    c->subj_ids + w->into);
		row.s_state = w->state;
		row.s_has_key = w->has_key;
		cmp_subject(c, &row);
	}
	for (t = 0; t < c->nmapped; t++)
		if (!c->sid_row[t])
			fail(c, "subject %s is in the log but has no row (row deleted)",
			    cm_intern_str(&c->sids, t));
	if (c->bad == 0 && c->rows < r->created)
		fail(c, "%" PRIu64 " subjects were created in the log, %" PRIu64 " rows "
		    "remain (rows deleted)", r->created, c->rows);
	table_end(c, "subjects");
	return CM_OK;
}

static cm_result
cmp_table_prefs(struct vs_cmp *c)
{
	struct cm_state_replay *r = c->r;
	struct cm_db *db = c->db;
	uint32_t t;
	cm_result rc;

	table_begin(c, "preferences");
	c->psn_prefs = cm_calloc_large(r->psn.in_n + 1, sizeof(*c->psn_prefs));
	if ((rc = cm_store_prefs_all(db, cmp_prefs, c)) != CM_OK)
		return rc;
	for (t = 0; t < c->nmapped; t++) {
		const struct vs_subject *sv;
		uint32_t p = c->sid_psn[t];

		if (p == NONE || c->psn_prefs[p])
			continue;
		sv = &r->subj[p];
		/* No row reads as no settings: only settings the log gave are missed. */
		if (sv->prefs && !sv->prefs_legacy && sv->merged_into == NONE &&
		    (sv->frequency != NONE || sv->paused_until != 0 || sv->objected_at != 0))
			fail(c, "subject %s has settings in the log but no row (row deleted)",
			    cm_intern_str(&c->sids, t));
	}
	table_end(c, "settings");
	return CM_OK;
}

static cm_result
cmp_table_supp(struct vs_cmp *c)
{
	struct cm_state_replay *r = c->r;
	struct cm_db *db = c->db;
	uint32_t t;
	cm_result rc;

	table_begin(c, "suppressions");
	if ((rc = cm_store_suppressions_scan(db, cmp_supp, c)) != CM_OK)
		return rc;
	for (t = 0; t < r->tags.in_n; t++)
		if (r->supp[t].present)
			fail(c, "entry %s of the log has no row (row deleted)",
			    cm_intern_str(&r->tags, t));
	table_end(c, "entries");
	return CM_OK;
}

static cm_result
cmp_table_bindings(struct vs_cmp *c)
{
	struct cm_state_replay *r = c->r;
	struct cm_db *db = c->db;
	uint32_t t;
	cm_result rc;

	table_begin(c, "suppression_subjects");
	c->nseen = r->bound.in_n;
	c->seen = cm_calloc_large(c->nseen + 1, sizeof(*c->seen));
	if ((rc = cm_store_suppression_bindings(db, NULL, cmp_binding, c)) != CM_OK)
		return rc;
	for (t = 0; t < c->nseen; t++) {
		const char *k = cm_intern_str(&r->bound, t), *sp;
		char psn[48];
		uint32_t p;

		if (k[0] == '\0' || c->seen[t] || (sp = strchr(k, ' ')) == NULL ||
		    (size_t)(sp - k) >= sizeof(psn))
			continue;
		memcpy(psn, k, (size_t)(sp - k));
		psn[sp - k] = '\0';
		/* Only a subject still mapped keeps its bindings' rows. */
		if ((p = cm_intern(&r->psn, psn, false)) != NONE && psn_subject(c, p) != NULL)
			fail(c, "subject %s is bound to entry %s in the log, but the row is "
			    "gone (row deleted)", psn_subject(c, p), sp + 1);
	}
	table_end(c, "bindings");
	return CM_OK;
}

struct vs_cmp *
cm_state_cmp_new(struct cm_state_replay *r)
{
	struct vs_cmp *c = cm_calloc(1, sizeof(*c));

	c->r = r;
	c->keys = r->keys;
	return c;
}

#define EXPECT_MAX	((uint64_t)1 << 21)
void
cm_state_cmp_expect(struct vs_cmp *c, uint64_t entries)
{
	struct vs_curmap *m = &c->curmap;

	/*
	 * ENTRIES comes from the stored log, which a tamperer can lengthen;
	 * and a map probed at random is touched across its whole size. So at
	 * most 2^21 rows are expected (a 32 MiB map): past that the tables
	 * grow by doubling as before.
	 */
	if (entries > EXPECT_MAX)
		entries = EXPECT_MAX;
	if (entries == 0 || c->ncur > 0 || c->nev > 0)
		return;
	c->ev_cap = c->cur_cap = (size_t)entries;
	c->ev = cm_reallocarray_large(c->ev, c->ev_cap, sizeof(*c->ev));
	cm_state_replay_expect(c->r, entries);
	c->cur = cm_reallocarray_large(c->cur, c->cur_cap, sizeof(*c->cur));
	free(m->slot);
	m->nslots = 4096;
	while (m->nslots < 2 * entries)
		m->nslots *= 2;
	m->slot = cm_calloc_large(m->nslots, sizeof(*m->slot));
}

void
cm_state_cmp_free(struct vs_cmp *c)
{
	if (c == NULL)
		return;
	cm_intern_free(&c->sids);
	cm_intern_free(&c->psn_strs);
	cm_intern_free(&c->purposes);
	cm_intern_free(&c->channels);
	free(c->curmap.slot);
	free(c->cur);
	free(c->ev);
	free(c->cur_report);
	free(c->sid_psn);
	free(c->seen);
	free(c->sid_row);
	free(c->psn_prefs);
	free(c->subj);
	free(c->subj_ids);
	free(c);
}

/*
 * What needs nothing of the replay: the pseudonym mappings, the event rows,
 * the whole check of consent_current, whose report is kept for its place
 * after consent_events', and the subjects rows, kept for their comparison
 * (which then reads nothing). Touches only C and DB, never the replay.
 */
cm_result
cm_state_collect(struct vs_cmp *c, struct cm_db *db)
{
	FILE *out;
	cm_result rc;

	c->collected = true;
	if ((out = open_memstream(&c->cur_report, &c->cur_report_len)) == NULL)
		return CM_NOMEM;
	c->out = out;
	c->rep = &c->cur_rep;
	c->db = db;
	if ((rc = cm_store_audit_pseudonyms_all(db, map_psn, c)) == CM_OK) {
		c->nmapped = c->sids.in_n;
		if ((rc = cm_store_events_scan(db, collect_event, c)) == CM_OK &&
		    (rc = cmp_table_current(c)) == CM_OK)
			rc = cm_store_subjects_all(db, keep_subject, c);
	}
	c->out = NULL;
	if (fclose(out) != 0 && rc == CM_OK)
		rc = CM_NOMEM;
	return rc;
}

cm_result
cm_state_compare(struct vs_cmp *c, struct cm_db *db, FILE *out,
    struct cm_verify_report *rep)
{
	static cm_result (*const tables[])(struct vs_cmp *) = { cmp_table_subjects,
	    cmp_table_prefs, cmp_table_supp, cmp_table_bindings };
	size_t i;
	cm_result rc;
	uint32_t t;

	if (!c->collected && (rc = cm_state_collect(c, db)) != CM_OK)
		return rc;
	c->out = out;
	c->rep = rep;
	c->db = db;
	for (t = 0; t < c->nmapped; t++)
		c->sid_psn[t] = cm_intern(&c->r->psn, cm_intern_str(&c->psn_strs, c->sid_psn[t]),
		    false);
	c->sid_row = cm_calloc_large(c->sids.in_n + 1, sizeof(*c->sid_row));
	cmp_table_events(c);
	if (c->cur_report_len > 0)
		fwrite(c->cur_report, 1, c->cur_report_len, out);
	rep->vr_passed += c->cur_rep.vr_passed;
	rep->vr_failed += c->cur_rep.vr_failed;
	for (i = 0; i < CM_NELEM(tables); i++)
		if ((rc = tables[i](c)) != CM_OK)
			return rc;
	return CM_OK;
}
