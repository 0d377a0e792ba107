/*
 * The state against the log (SPEC §9): with the data directory's keys,
 * `audit verify` replays what the entries say happened and compares every
 * row of the state tables with it, so a row edited, added or deleted
 * behind the service's back is found and named by its table and its event
 * or subject.
 *
 * The replay, fed entry by entry in index order by verify.c: subjects by
 * pseudonym (created, restricted, merged into another), their preference
 * settings and objection, every consent event (kept as a digest of the
 * fields its entry states, with the entry's index), suppression entries
 * and the subjects bound to them by their audit tags (keyed hashes of the
 * blind index), and the tags of erased subjects. The comparison then reads
 * each table once: every consent event row must match the digest of the
 * entry its audit_index names, and every entry must have its row; the
 * current-state projection must be exactly what the events make of it
 * (checked in the store, from the rows just verified); subject states,
 * preferences, suppression entries and bindings must be what the replay
 * ends with. Entries written before the log carried a field (collected_at
 * on consent events, audit tags on suppressions) are compared on what they
 * carry, and the report says what could not be checked.
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

#define NONE		CM_INTERN_NONE
#define MAX_REPORTS	10

/* Which optional fields a consent.recorded entry carried. */
#define EV_COLLECTED	0x1
#define EV_SALE		0x2
#define EV_SUPERSEDED	0x4

struct vs_event {
	uint64_t	idx;
	uint8_t		digest[16];
	uint32_t	psn;
	uint8_t		mask;
	bool		matched;
};

struct vs_subject {
	char		 state;		/* 0 unknown, 'a'ctive, 'r'estricted */
	uint32_t	 merged_into;	/* pseudonym id, or NONE */
	bool		 prefs;		/* a preferences row is expected */
	bool		 prefs_legacy;	/* an entry from before settings were logged */
	uint32_t	 frequency;	/* interned, or NONE: none chosen */
	int64_t		 paused_until;
	int64_t		 objected_at;	/* -1: objected, time not logged */
};

struct vs_supp {
	bool	 present;
	char	 reason[16];
	int64_t	 since;			/* -1: not logged */
};

struct cm_state_replay {
	const struct cm_keys	*keys;
	struct cm_intern	 psn;		/* pseudonyms */
	struct vs_subject	*subj;		/* by pseudonym id */
	size_t			 subj_cap;
	struct vs_event		*ev;
	size_t			 nev, ev_cap;
	struct cm_intern	 tags;		/* suppression tags */
	struct vs_supp		*supp;		/* by tag id */
	size_t			 supp_cap;
	struct cm_intern	 erased;	/* tags of erased subject ids */
	struct cm_intern	 bound;		/* "pseudonym tag" bindings */
	struct cm_intern	 freqs;
	uint64_t		 created;	/* subject.created entries */
	uint64_t		 legacy_supp;	/* suppression entries without a tag */
	uint64_t		 legacy_erase;	/* erasures without a subject tag */
};

struct cm_state_replay *
cm_state_replay_new(const struct cm_keys *keys)
{
	struct cm_state_replay *r = cm_calloc(1, sizeof(*r));

	r->keys = keys;
	return r;
}

void
cm_state_replay_free(struct cm_state_replay *r)
{
	if (r == NULL)
		return;
	cm_intern_free(&r->psn);
	cm_intern_free(&r->tags);
	cm_intern_free(&r->erased);
	cm_intern_free(&r->bound);
	cm_intern_free(&r->freqs);
	free(r->subj);
	free(r->ev);
	free(r->supp);
	free(r);
}

/* The subject of pseudonym S, made on first sight. */
static struct vs_subject *
subject_of(struct cm_state_replay *r, const char *s, uint32_t *id)
{
	uint32_t i = cm_intern(&r->psn, s, true);
	size_t k;

	if (i >= r->subj_cap) {
		k = r->subj_cap;
		r->subj_cap = r->subj_cap ? r->subj_cap * 2 : 1024;
		while (i >= r->subj_cap)
			r->subj_cap *= 2;
		r->subj = cm_reallocarray(r->subj, r->subj_cap, sizeof(*r->subj));
		for (; k < r->subj_cap; k++) {
			memset(&r->subj[k], 0, sizeof(r->subj[k]));
			r->subj[k].merged_into = NONE;
			r->subj[k].frequency = NONE;
		}
	}
	if (id != NULL)
		*id = i;
	return &r->subj[i];
}

static struct vs_supp *
supp_of(struct cm_state_replay *r, const char *tag)
{
	uint32_t i = cm_intern(&r->tags, tag, true);
	size_t k;

	if (i >= r->supp_cap) {
		k = r->supp_cap;
		r->supp_cap = r->supp_cap ? r->supp_cap * 2 : 1024;
		while (i >= r->supp_cap)
			r->supp_cap *= 2;
		r->supp = cm_reallocarray(r->supp, r->supp_cap, sizeof(*r->supp));
		memset(&r->supp[k], 0, (r->supp_cap - k) * sizeof(*r->supp));
	}
	return &r->supp[i];
}

/* The pseudonym a subject ends as, following merges. */
static uint32_t
final_psn(const struct cm_state_replay *r, uint32_t p)
{
	int hops;

	for (hops = 0; hops < 64 && p != NONE && r->subj[p].merged_into != NONE; hops++)
		p = r->subj[p].merged_into;
	return p;
}

/* The digest of what an event's entry (or row) says, as MASK selects. */
static void
event_digest(uint8_t out[16], const char *event_id, const char *purpose,
    const char *channel, const char *state, const char *method, int64_t notice,
    int64_t collected, bool sale_ref, bool superseded, uint8_t mask)
{
	crypto_generichash_state st;
	char num[64];
	int n;

	crypto_generichash_init(&st, NULL, 0, 16);
#define PART(s) crypto_generichash_update(&st, (const uint8_t *)(s), strlen(s) + 1)
	PART(event_id);
	PART(purpose);
	PART(channel);
	PART(state);
	PART(method);
	n = snprintf(num, sizeof(num), "%" PRId64, notice);
	crypto_generichash_update(&st, (const uint8_t *)num, (size_t)n + 1);
	if (mask & EV_COLLECTED) {
		n = snprintf(num, sizeof(num), "%" PRId64, collected);
		crypto_generichash_update(&st, (const uint8_t *)num, (size_t)n + 1);
	}
	if (mask & EV_SALE)
		PART(sale_ref ? "sale" : "-");
	if (mask & EV_SUPERSEDED)
		PART(superseded ? "superseded" : "-");
#undef PART
	crypto_generichash_final(&st, out, 16);
}

static const char *
str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

static void
apply_consent(struct cm_state_replay *r, uint64_t idx, const struct cm_state_fact *f)
{
	struct vs_event *e;

	if (r->nev == r->ev_cap) {
		r->ev_cap = r->ev_cap ? r->ev_cap * 2 : 4096;
		r->ev = cm_reallocarray(r->ev, r->ev_cap, sizeof(*r->ev));
	}
	e = &r->ev[r->nev++];
	memset(e, 0, sizeof(*e));
	e->idx = idx;
	(void)subject_of(r, f->sf_psn, &e->psn);
	e->mask = f->sf_mask;
	memcpy(e->digest, f->sf_digest, sizeof(e->digest));
}

/* An objection or a pause of either side stands on the survivor. */
static void
apply_merge(struct cm_state_replay *r, const char *into, const char *from)
{
	struct vs_subject *f, *t;
	uint32_t fi, ti;

	(void)subject_of(r, from, &fi);
	(void)subject_of(r, into, &ti);
	f = &r->subj[fi];
	t = &r->subj[ti];
	f->merged_into = ti;
	if (!f->prefs)
		return;
	t->prefs = true;
	t->prefs_legacy |= f->prefs_legacy;
	if (t->objected_at == 0)
		t->objected_at = f->objected_at;
	if (f->paused_until > t->paused_until)
		t->paused_until = f->paused_until;
	if (t->frequency == NONE)
		t->frequency = f->frequency;
}

static void
bind(struct cm_state_replay *r, uint32_t psn, const char *tag)
{
	char key[128];

	snprintf(key, sizeof(key), "%s %s", cm_intern_str(&r->psn, psn), tag);
	(void)cm_intern(&r->bound, key, true);
}

/* Moves every binding of pseudonym FROM to INTO (a merge). */
static void
rebind(struct cm_state_replay *r, const char *from, const char *into)
{
	size_t n = strlen(from);
	uint32_t i, count = r->bound.in_n;
	char key[128];

	for (i = 0; i < count; i++) {
		const char *k = cm_intern_str(&r->bound, i);

		if (k[0] == '\0' || strncmp(k, from, n) != 0 || k[n] != ' ')
			continue;
		snprintf(key, sizeof(key), "%s %s", into, k + n + 1);
		(void)cm_intern(&r->bound, key, true);
		r->bound.in_arena[r->bound.in_off[i]] = '\0';	/* dropped */
	}
}

/* Drops every binding to TAG (the entry was lifted, or moved). */
static void
unbind(struct cm_state_replay *r, const char *tag, const char *moved_to)
{
	uint32_t i, count = r->bound.in_n;
	size_t tl = strlen(tag);
	char key[128];

	for (i = 0; i < count; i++) {
		char *k = r->bound.in_arena + r->bound.in_off[i];
		size_t kl = strlen(k);

		if (kl <= tl || strcmp(k + kl - tl, tag) != 0 || k[kl - tl - 1] != ' ')
			continue;
		if (moved_to != NULL) {
			snprintf(key, sizeof(key), "%.*s%s", (int)(kl - tl), k, moved_to);
			(void)cm_intern(&r->bound, key, true);
			k = r->bound.in_arena + r->bound.in_off[i];
		}
		k[0] = '\0';
	}
}

static void
apply_rekeys(struct cm_state_replay *r, const json_t *list)
{
	const json_t *pair;
	struct vs_supp *o, *n;
	size_t i;

	json_array_foreach(list, i, pair) {
		const char *from = json_string_value(json_array_get(pair, 0));
		const char *to = json_string_value(json_array_get(pair, 1));

		if (from == NULL || to == NULL)
			continue;
		o = supp_of(r, from);
		if (!o->present)
			continue;
		n = supp_of(r, to);
		/* supp_of may have moved the array. */
		o = supp_of(r, from);
		if (!n->present || (strcmp(o->reason, "erased") == 0 &&
		    strcmp(n->reason, "erased") != 0))
			*n = *o;
		o->present = false;
		unbind(r, from, to);
	}
}

static const struct {
	const char		*name;
	enum cm_state_kind	 kind;
} kinds[] = {
	{ "consent.recorded", SF_CONSENT }, { "subject.created", SF_CREATED },
	{ "subject.restricted", SF_RESTRICTED }, { "subject.unrestricted", SF_UNRESTRICTED },
	{ "subject.merged", SF_MERGED }, { "subject.objected", SF_OBJECTED },
	{ "preferences.updated", SF_PREFS }, { "suppression.added", SF_SUPP_ADDED },
	{ "suppression.lifted", SF_SUPP_LIFTED }, { "identifier.unlinked", SF_UNLINKED },
	{ "erasure.completed", SF_JSON }, { "store.upgraded", SF_JSON },
};

void
cm_state_extract(json_t *entry, struct cm_state_fact *f)
{
	const char *type = str(entry, "type");
	const json_t *d = json_object_get(entry, "d"), *v;
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < CM_NELEM(kinds) && strcmp(type, kinds[i].name) != 0; i++)
		;
	if (i == CM_NELEM(kinds))
		return;
	f->sf_kind = kinds[i].kind;
	snprintf(f->sf_psn, sizeof(f->sf_psn), "%s", str(entry, "s"));
	switch (f->sf_kind) {
	case SF_CONSENT:
		if (json_is_integer(json_object_get(d, "collected_at")))
			f->sf_mask |= EV_COLLECTED;
		if (json_is_boolean(json_object_get(d, "sale_ref")))
			f->sf_mask |= EV_SALE;
		if (json_is_boolean(json_object_get(d, "superseded")))
			f->sf_mask |= EV_SUPERSEDED;
		v = json_object_get(d, "channel");
		event_digest(f->sf_digest, str(d, "event_id"), str(d, "purpose"),
		    json_is_string(v) ? json_string_value(v) : CM_ALL_CHANNELS,
		    str(d, "state"), str(d, "method"),
		    json_integer_value(json_object_get(d, "notice_version")),
		    json_integer_value(json_object_get(d, "collected_at")),
		    json_is_true(json_object_get(d, "sale_ref")),
		    json_is_true(json_object_get(d, "superseded")), f->sf_mask);
		break;
	case SF_MERGED:
		snprintf(f->sf_other, sizeof(f->sf_other), "%s", str(d, "merged"));
		break;
	case SF_OBJECTED:
		v = json_object_get(d, "objected_at");
		f->sf_num = json_is_integer(v) ? json_integer_value(v) : -1;
		break;
	case SF_PREFS:
		/* Each entry states the settings after it; older ones did not. */
		if (!json_is_string(v = json_object_get(d, "frequency"))) {
			f->sf_legacy = true;
			break;
		}
		snprintf(f->sf_other, sizeof(f->sf_other), "%s", json_string_value(v));
		f->sf_num = json_integer_value(json_object_get(d, "paused_until"));
		break;
	case SF_SUPP_ADDED:
	case SF_SUPP_LIFTED:
		if (!json_is_string(v = json_object_get(d, "tag"))) {
			f->sf_legacy = true;
			break;
		}
		snprintf(f->sf_other, sizeof(f->sf_other), "%s", json_string_value(v));
		snprintf(f->sf_reason, sizeof(f->sf_reason), "%s", str(d, "reason"));
		v = json_object_get(d, "since");
		f->sf_num = json_is_integer(v) ? json_integer_value(v) : -1;
		break;
	case SF_UNLINKED:
		if (json_is_string(v = json_object_get(d, "kept_suppression")))
			snprintf(f->sf_other, sizeof(f->sf_other), "%s", json_string_value(v));
		break;
	case SF_JSON:
		/* Rare and of any length: kept whole. */
		f->sf_json = json_incref(entry);
		break;
	default:
		break;
	}
}

void
cm_state_fact_clear(struct cm_state_fact *f)
{
	json_decref(f->sf_json);
	f->sf_json = NULL;
	f->sf_kind = SF_NONE;
}

static void
apply_json(struct cm_state_replay *r, const json_t *entry)
{
	const json_t *d = json_object_get(entry, "d"), *v, *since;
	struct vs_supp *sp;
	size_t i;

	if (strcmp(str(entry, "type"), "store.upgraded") == 0) {
		apply_rekeys(r, json_object_get(d, "rekeyed"));
		return;
	}
	/* erasure.completed */
	if ((v = json_object_get(d, "subject_tag")) == NULL) {
		r->legacy_erase++;
		return;
	}
	(void)cm_intern(&r->erased, json_string_value(v), true);
	since = json_object_get(d, "since");
	json_array_foreach(json_object_get(d, "suppressed_tags"), i, v) {
		if (!json_is_string(v))
			continue;
		sp = supp_of(r, json_string_value(v));
		sp->present = true;
		snprintf(sp->reason, sizeof(sp->reason), "erased");
		sp->since = json_is_integer(since) ? json_integer_value(since) : -1;
	}
}

void
cm_state_apply(struct cm_state_replay *r, uint64_t idx, const struct cm_state_fact *f)
{
	struct vs_subject *sub;
	struct vs_supp *sp;
	uint32_t p;

	switch (f->sf_kind) {
	case SF_NONE:
		break;
	case SF_CONSENT:
		apply_consent(r, idx, f);
		break;
	case SF_CREATED:
		subject_of(r, f->sf_psn, NULL)->state = 'a';
		r->created++;
		break;
	case SF_RESTRICTED:
		subject_of(r, f->sf_psn, NULL)->state = 'r';
		break;
	case SF_UNRESTRICTED:
		subject_of(r, f->sf_psn, NULL)->state = 'a';
		break;
	case SF_MERGED:
		apply_merge(r, f->sf_psn, f->sf_other);
		rebind(r, f->sf_other, f->sf_psn);
		break;
	case SF_OBJECTED:
		sub = subject_of(r, f->sf_psn, NULL);
		sub->prefs = true;
		if (sub->objected_at == 0)
			sub->objected_at = f->sf_num;
		break;
	case SF_PREFS:
		sub = subject_of(r, f->sf_psn, NULL);
		sub->prefs = true;
		if (f->sf_legacy) {
			sub->prefs_legacy = true;
			break;
		}
		sub->frequency = f->sf_other[0] ? cm_intern(&r->freqs, f->sf_other, true) : NONE;
		sub->paused_until = f->sf_num;
		break;
	case SF_SUPP_ADDED:
		if (f->sf_legacy) {
			r->legacy_supp++;
			break;
		}
		sp = supp_of(r, f->sf_other);
		sp->present = true;
		snprintf(sp->reason, sizeof(sp->reason), "%s", f->sf_reason);
		sp->since = f->sf_num;
		break;
	case SF_SUPP_LIFTED:
		if (f->sf_legacy) {
			r->legacy_supp++;
			break;
		}
		supp_of(r, f->sf_other)->present = false;
		unbind(r, f->sf_other, NULL);
		break;
	case SF_UNLINKED:
		if (f->sf_other[0] != '\0') {
			(void)subject_of(r, f->sf_psn, &p);
			bind(r, p, f->sf_other);
		}
		break;
	case SF_JSON:
		if (f->sf_json != NULL)
			apply_json(r, f->sf_json);
		break;
	}
}

/* ---- the comparison ----------------------------------------------------- */

/* The event that should be the current row of one key. */
struct vs_current {
	int64_t	 collected;
	int64_t	 seq;
	uint8_t	 digest[16];	/* what the row must repeat of it */
	bool	 seen;
};

struct vs_cmp {
	struct cm_state_replay	*r;
	const struct cm_keys	*keys;
	struct cm_intern	 sids;		/* subject ids with a mapping */
	uint32_t		*sid_psn;	/* subject id → pseudonym id */
	size_t			 sid_cap;
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
	struct cm_intern	 cur_keys;	/* "subject purpose channel" */
	struct vs_current	*cur;
	size_t			 cur_cap;
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
		c->sid_psn = cm_reallocarray(c->sid_psn, c->sid_cap, sizeof(*c->sid_psn));
	}
	p = cm_intern(&c->r->psn, psn, false);
	c->sid_psn[i] = p;
	return 0;
}

/* The pseudonym id of SUBJECT, NONE when its mapping was erased. */
static uint32_t
psn_of(struct vs_cmp *c, const char *subject, bool *mapped)
{
	uint32_t i = cm_intern(&c->sids, subject, false);

	*mapped = i != NONE;
	return i == NONE ? NONE : c->sid_psn[i];
}

/* The subject pseudonym P stands for, or NULL when its mapping was erased. */
static const char *
psn_subject(const struct vs_cmp *c, uint32_t p)
{
	uint32_t i;

	for (i = 0; i < c->sids.in_n; i++)
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
		snprintf(out, 64, "%s", str(json_object_get(j, "d"), "event_id"));
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
	char buf[512];
	int n;

	n = snprintf(buf, sizeof(buf), "%" PRId64 "|%s|%s|%" PRId64 "|%s|%" PRId64 "|%" PRId64
	    "|%d", e->e_seq, e->e_event_id, e->e_state, e->e_notice_version, e->e_method,
	    e->e_recorded_us, e->e_collected_us, e->e_sale_ref);
	crypto_generichash(out, 16, (const uint8_t *)buf, (size_t)(n > 0 ? n : 0), NULL, 0);
}

static uint32_t
current_key(struct vs_cmp *c, const struct cm_event_row *e, bool add)
{
	char key[CM_SUBJECT_ID_LEN + 140];

	snprintf(key, sizeof(key), "%s %s %s", e->e_subject, e->e_purpose, e->e_channel);
	return cm_intern(&c->cur_keys, key, add);
}

/* Keeps E as the expected current row of its key when it is the latest. */
static void
current_expect(struct vs_cmp *c, const struct cm_event_row *e)
{
	uint32_t k = current_key(c, e, true);
	struct vs_current *v;

	if (k >= c->cur_cap) {
		size_t old = c->cur_cap;

		c->cur_cap = c->cur_cap ? c->cur_cap * 2 : 4096;
		while (k >= c->cur_cap)
			c->cur_cap *= 2;
		c->cur = cm_reallocarray(c->cur, c->cur_cap, sizeof(*c->cur));
		memset(&c->cur[old], 0, (c->cur_cap - old) * sizeof(*c->cur));
	}
	v = &c->cur[k];
	/* SPEC §6: the latest collected_at decides, ties to the later recorded. */
	if (v->seq != 0 && (e->e_collected_us != v->collected ?
	    e->e_collected_us < v->collected : e->e_seq < v->seq))
		return;
	v->collected = e->e_collected_us;
	v->seq = e->e_seq;
	current_digest(v->digest, e);
}

static int
cmp_event(void *arg, const struct cm_event_row *e)
{
	struct vs_cmp *c = arg;
	struct vs_event *ve;
	uint8_t dg[16];
	uint32_t p;
	bool mapped;

	c->rows++;
	current_expect(c, e);
	ve = e->e_audit_index >= 0 ? event_at(c->r, (uint64_t)e->e_audit_index) : NULL;
	if (ve == NULL || ve->matched) {
		fail(c, "event %s has no consent.recorded entry of its own (row added)",
		    e->e_event_id);
		return 0;
	}
	ve->matched = true;
	event_digest(dg, e->e_event_id, e->e_purpose, e->e_channel, e->e_state, e->e_method,
	    e->e_notice_version, e->e_collected_us, e->e_sale_ref, e->e_superseded, ve->mask);
	if (memcmp(dg, ve->digest, 16) != 0) {
		fail(c, "event %s differs from its entry %" PRIu64 " (row edited)",
		    e->e_event_id, ve->idx);
		return 0;
	}
	p = psn_of(c, e->e_subject, &mapped);
	if (mapped && p != final_psn(c->r, ve->psn))
		fail(c, "event %s belongs to subject %s, but its entry says another "
		    "subject (row moved)", e->e_event_id, e->e_subject);
	return 0;
}

static int
cmp_current(void *arg, const struct cm_event_row *e)
{
	struct vs_cmp *c = arg;
	uint8_t dg[16];
	uint32_t k;

	c->rows++;
	if ((k = current_key(c, e, false)) == NONE) {
		fail(c, "the row of subject %s, %s, %s names event %s, but the subject has "
		    "no event there (row added)", e->e_subject, e->e_purpose,
		    strcmp(e->e_channel, CM_ALL_CHANNELS) ? e->e_channel : "all channels",
		    e->e_event_id);
		return 0;
	}
	c->cur[k].seen = true;
	current_digest(dg, e);
	if (c->cur[k].seq != e->e_seq || memcmp(dg, c->cur[k].digest, 16) != 0)
		fail(c, "the row of subject %s, %s, %s is not the event collected last, or "
		    "does not repeat it (row edited)", e->e_subject, e->e_purpose,
		    strcmp(e->e_channel, CM_ALL_CHANNELS) ? e->e_channel : "all channels");
	return 0;
}

struct subj_cmp {
	struct vs_cmp	*c;
	uint64_t	 rows;
};

static int
cmp_subject(void *arg, const struct cm_subject_row *s)
{
	struct vs_cmp *c = arg;
	struct cm_state_replay *r = c->r;
	char tag[33];
	uint32_t p;
	bool mapped;
	char want;

	c->rows++;
	p = psn_of(c, s->s_id, &mapped);
	if (mapped)
		c->sid_row[cm_intern(&c->sids, s->s_id, false)] = true;
	if (strcmp(s->s_state, "erased") == 0) {
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
	if (want == 0 || !s->s_has_key ||
	    strcmp(s->s_state, want == 'r' ? "restricted" : "active") != 0)
		fail(c, "subject %s is %s%s, the log says %s", s->s_id, s->s_state,
		    s->s_has_key ? "" : " without a key", want == 0 ? "nothing of it" :
		    want == 'r' ? "restricted" : "active");
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
	snprintf(key, sizeof(key), "%s %s", cm_intern_str(&c->r->psn, final_psn(c->r, p)),
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

cm_result
cm_state_compare(struct cm_state_replay *r, struct cm_db *db, FILE *out,
    struct cm_verify_report *rep)
{
	struct vs_cmp c;
	size_t i;
	uint32_t t;
	cm_result rc;

	memset(&c, 0, sizeof(c));
	c.r = r;
	c.keys = r->keys;
	c.out = out;
	c.rep = rep;
	c.db = db;
	if ((rc = cm_store_audit_pseudonyms_all(db, map_psn, &c)) != CM_OK)
		goto out;
	c.sid_row = cm_calloc(c.sids.in_n + 1, sizeof(*c.sid_row));

	table_begin(&c, "consent_events");
	if ((rc = cm_store_events_scan(db, cmp_event, &c)) != CM_OK)
		goto out;
	for (i = 0; i < r->nev; i++)
		if (!r->ev[i].matched) {
			char id[64];

			entry_event_id(db, r->ev[i].idx, id, sizeof(id));
			fail(&c, "event %s of entry %" PRIu64 " has no row (row deleted)", id,
			    r->ev[i].idx);
		}
	table_end(&c, "events");

	table_begin(&c, "consent_current");
	if ((rc = cm_store_current_scan(db, cmp_current, &c)) != CM_OK)
		goto out;
	for (t = 0; t < c.cur_keys.in_n; t++)
		if (!c.cur[t].seen) {
			char key[CM_SUBJECT_ID_LEN + 140], *sp;

			snprintf(key, sizeof(key), "%s", cm_intern_str(&c.cur_keys, t));
			if ((sp = strchr(key, ' ')) != NULL)
				*sp = '\0';
			fail(&c, "subject %s has events for %s but no row (row deleted)", key,
			    sp ? sp + 1 : "?");
		}
	table_end(&c, "current states");

	table_begin(&c, "subjects");
	if ((rc = cm_store_subjects_all(db, cmp_subject, &c)) != CM_OK)
		goto out;
	for (t = 0; t < c.sids.in_n; t++)
		if (!c.sid_row[t])
			fail(&c, "subject %s is in the log but has no row (row deleted)",
			    cm_intern_str(&c.sids, t));
	if (c.bad == 0 && c.rows < r->created)
		fail(&c, "%" PRIu64 " subjects were created in the log, %" PRIu64 " rows "
		    "remain (rows deleted)", r->created, c.rows);
	table_end(&c, "subjects");

	table_begin(&c, "preferences");
	c.psn_prefs = cm_calloc(r->psn.in_n + 1, sizeof(*c.psn_prefs));
	if ((rc = cm_store_prefs_all(db, cmp_prefs, &c)) != CM_OK)
		goto out;
	for (t = 0; t < c.sids.in_n; t++) {
		const struct vs_subject *sv;
		uint32_t p = c.sid_psn[t];

		if (p == NONE || c.psn_prefs[p])
			continue;
		sv = &r->subj[p];
		/* No row reads as no settings: only settings the log gave are missed. */
		if (sv->prefs && !sv->prefs_legacy && sv->merged_into == NONE &&
		    (sv->frequency != NONE || sv->paused_until != 0 || sv->objected_at != 0))
			fail(&c, "subject %s has settings in the log but no row (row deleted)",
			    cm_intern_str(&c.sids, t));
	}
	table_end(&c, "settings");

	table_begin(&c, "suppressions");
	if ((rc = cm_store_suppressions_scan(db, cmp_supp, &c)) != CM_OK)
		goto out;
	for (t = 0; t < r->tags.in_n; t++)
		if (r->supp[t].present)
			fail(&c, "entry %s of the log has no row (row deleted)",
			    cm_intern_str(&r->tags, t));
	table_end(&c, "entries");

	table_begin(&c, "suppression_subjects");
	c.nseen = r->bound.in_n;
	c.seen = cm_calloc(c.nseen + 1, sizeof(*c.seen));
	if ((rc = cm_store_suppression_bindings(db, NULL, cmp_binding, &c)) != CM_OK)
		goto out;
	for (t = 0; t < c.nseen; t++) {
		const char *k = cm_intern_str(&r->bound, t), *sp;
		char psn[48];
		uint32_t p;

		if (k[0] == '\0' || c.seen[t] || (sp = strchr(k, ' ')) == NULL ||
		    (size_t)(sp - k) >= sizeof(psn))
			continue;
		memcpy(psn, k, (size_t)(sp - k));
		psn[sp - k] = '\0';
		/* Only a subject still mapped keeps its bindings' rows. */
		if ((p = cm_intern(&r->psn, psn, false)) != NONE && psn_subject(&c, p) != NULL)
			fail(&c, "subject %s is bound to entry %s in the log, but the row is "
			    "gone (row deleted)", psn_subject(&c, p), sp + 1);
	}
	table_end(&c, "bindings");
out:
	cm_intern_free(&c.sids);
	cm_intern_free(&c.cur_keys);
	free(c.cur);
	free(c.sid_psn);
	free(c.seen);
	free(c.sid_row);
	free(c.psn_prefs);
	return rc;
}
