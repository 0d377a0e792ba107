/* SPDX-License-Identifier: ISC */
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "entry_fields.h"
#include "state.h"

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
/* Room for ENTRIES consent events (the caller caps it), before any is applied. */
void
cm_state_replay_expect(struct cm_state_replay *r, uint64_t entries)
{
	if (r->nev > 0 || entries <= r->ev_cap)
		return;
	r->ev_cap = (size_t)entries;
	r->ev = cm_reallocarray_large(r->ev, r->ev_cap, sizeof(*r->ev));
}

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
		r->subj = cm_reallocarray_large(r->subj, r->subj_cap, sizeof(*r->subj));
		for (; k < r->subj_cap; k++) {
			memset(&r->subj[k], 0, sizeof(r->subj[k]));
			r->subj[k].state = CM_SUBJECT_INVALID;
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
		r->supp = cm_reallocarray_large(r->supp, r->supp_cap, sizeof(*r->supp));
		memset(&r->supp[k], 0, (r->supp_cap - k) * sizeof(*r->supp));
	}
	return &r->supp[i];
}

/* The pseudonym a subject ends as, following merges. */
uint32_t
vs_final_psn(const struct cm_state_replay *r, uint32_t p)
{
	int hops;

	for (hops = 0; hops < 64 && p != NONE && r->subj[p].merged_into != NONE; hops++)
		p = r->subj[p].merged_into;
	return p;
}

/*
 * The key of the digests below, drawn once per process: they are compared
 * only within one run, so any key will do as long as nobody who edits the
 * rows can know it; SipHash under it is a keyed hash many times cheaper
 * than BLAKE2b for such short inputs.
 */
static uint8_t digest_key[crypto_shorthash_siphashx24_KEYBYTES];
static pthread_once_t digest_once = PTHREAD_ONCE_INIT;

static void
digest_key_init(void)
{
	randombytes_buf(digest_key, sizeof(digest_key));
}

/* Strings, each with its NUL, then the numbers: a keyed 16-byte digest. */
void
vs_digest(uint8_t out[16], const char *const *strs, size_t nstrs, const int64_t *nums,
    size_t nnums)
{
	uint8_t buf[512];
	size_t i, len, used = 0;
	crypto_generichash_state st;

	(void)pthread_once(&digest_once, digest_key_init);
	for (i = 0; i < nstrs; i++) {
		len = strlen(strs[i]) + 1;
		if (len > sizeof(buf) - used)
			break;
		memcpy(buf + used, strs[i], len);
		used += len;
	}
	if (i == nstrs && nnums * sizeof(*nums) <= sizeof(buf) - used) {
		memcpy(buf + used, nums, nnums * sizeof(*nums));
		used += nnums * sizeof(*nums);
		crypto_shorthash_siphashx24(out, buf, used, digest_key);
		return;
	}
	/* Longer than any row the service writes: the same parts, hashed long. */
	crypto_generichash_init(&st, digest_key, sizeof(digest_key), 16);
	for (i = 0; i < nstrs; i++)
		crypto_generichash_update(&st, (const uint8_t *)strs[i], strlen(strs[i]) + 1);
	crypto_generichash_update(&st, (const uint8_t *)nums, nnums * sizeof(*nums));
	crypto_generichash_final(&st, out, 16);
}

/* The digest of the fields every consent.recorded entry (and row) states. */
void
vs_event_digest(uint8_t out[16], const char *event_id, const char *purpose,
    const char *channel, const char *state, const char *method, int64_t notice)
{
	const char *strs[] = { event_id, purpose, channel, state, method };

	vs_digest(out, strs, CM_NELEM(strs), &notice, 1);
}

const char *
vs_str(const json_t *o, const char *k)
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
		r->ev = cm_reallocarray_large(r->ev, r->ev_cap, sizeof(*r->ev));
	}
	e = &r->ev[r->nev++];
	memset(e, 0, sizeof(*e));
	e->idx = idx;
	(void)subject_of(r, f->sf_psn, &e->psn);
	e->mask = f->sf_mask;
	memcpy(e->digest, f->sf_digest, sizeof(e->digest));
	e->collected = f->sf_collected;
	e->sale_ref = f->sf_sale_ref;
	e->superseded = f->sf_superseded;
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

const char *const cm_ef_names[EFD_COUNT] = {
	"channel", "collected_at", "event_id", "frequency", "kept_suppression", "merged",
	"method", "notice_version", "objected_at", "paused_until", "purpose", "reason",
	"sale_ref", "since", "state", "superseded", "tag"
};

static void
ef_of(const json_t *v, struct cm_ef_value *out)
{
	memset(out, 0, sizeof(*out));
	if (v == NULL)
		out->kind = EF_ABSENT;
	else if (json_is_string(v)) {
		out->kind = EF_STRING;
		out->str = json_string_value(v);
	} else if (json_is_integer(v)) {
		out->kind = EF_INT;
		out->num = json_integer_value(v);
	} else if (json_is_true(v))
		out->kind = EF_TRUE;
	else if (json_is_false(v))
		out->kind = EF_FALSE;
	else if (json_is_null(v))
		out->kind = EF_NULL;
	else
		out->kind = EF_OTHER;
}

/* What jansson parsed of ENTRY, as the fast path would give it. */
void
cm_entry_fields_json(const json_t *entry, struct cm_entry_fields *ef)
{
	const json_t *d = json_object_get(entry, "d");
	size_t k;

	ef_of(json_object_get(entry, "i"), &ef->i);
	ef_of(json_object_get(entry, "type"), &ef->type);
	ef_of(json_object_get(entry, "s"), &ef->s);
	for (k = 0; k < EFD_COUNT; k++)
		ef_of(json_object_get(d, cm_ef_names[k]), &ef->d[k]);
}

/* The string, or "" when it is not one: vs_str() on the fields. */
static const char *
ef_str(const struct cm_ef_value *v)
{
	return v->kind == EF_STRING ? v->str : "";
}

/* jansson's json_integer_value(): 0 when not an integer. */
static int64_t
ef_int(const struct cm_ef_value *v)
{
	return v->kind == EF_INT ? v->num : 0;
}

bool
cm_state_extract_fields(const struct cm_entry_fields *ef, struct cm_state_fact *f)
{
	const char *type = ef_str(&ef->type);
	const struct cm_ef_value *d = ef->d;
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < CM_NELEM(kinds) && strcmp(type, kinds[i].name) != 0; i++)
		;
	if (i == CM_NELEM(kinds))
		return true;
	/* Rare and of any length: kept whole, which only jansson can. */
	if (kinds[i].kind == SF_JSON)
		return false;
	f->sf_kind = kinds[i].kind;
	snprintf(f->sf_psn, sizeof(f->sf_psn), "%s", ef_str(&ef->s));
	switch (f->sf_kind) {
	case SF_CONSENT:
		if (d[EFD_COLLECTED_AT].kind == EF_INT)
			f->sf_mask |= EV_COLLECTED;
		if (d[EFD_SALE_REF].kind == EF_TRUE || d[EFD_SALE_REF].kind == EF_FALSE)
			f->sf_mask |= EV_SALE;
		if (d[EFD_SUPERSEDED].kind == EF_TRUE || d[EFD_SUPERSEDED].kind == EF_FALSE)
			f->sf_mask |= EV_SUPERSEDED;
		vs_event_digest(f->sf_digest, ef_str(&d[EFD_EVENT_ID]), ef_str(&d[EFD_PURPOSE]),
		    d[EFD_CHANNEL].kind == EF_STRING ? d[EFD_CHANNEL].str : CM_ALL_CHANNELS,
		    ef_str(&d[EFD_STATE]), ef_str(&d[EFD_METHOD]),
		    ef_int(&d[EFD_NOTICE_VERSION]));
		f->sf_collected = ef_int(&d[EFD_COLLECTED_AT]);
		f->sf_sale_ref = d[EFD_SALE_REF].kind == EF_TRUE;
		f->sf_superseded = d[EFD_SUPERSEDED].kind == EF_TRUE;
		break;
	case SF_MERGED:
		snprintf(f->sf_other, sizeof(f->sf_other), "%s", ef_str(&d[EFD_MERGED]));
		break;
	case SF_OBJECTED:
		f->sf_num = d[EFD_OBJECTED_AT].kind == EF_INT ? d[EFD_OBJECTED_AT].num : -1;
		break;
	case SF_PREFS:
		/* Each entry states the settings after it; older ones did not. */
		if (d[EFD_FREQUENCY].kind != EF_STRING) {
			f->sf_legacy = true;
			break;
		}
		snprintf(f->sf_other, sizeof(f->sf_other), "%s", d[EFD_FREQUENCY].str);
		f->sf_num = ef_int(&d[EFD_PAUSED_UNTIL]);
		break;
	case SF_SUPP_ADDED:
	case SF_SUPP_LIFTED:
		if (d[EFD_TAG].kind != EF_STRING) {
			f->sf_legacy = true;
			break;
		}
		snprintf(f->sf_other, sizeof(f->sf_other), "%s", d[EFD_TAG].str);
		snprintf(f->sf_reason, sizeof(f->sf_reason), "%s", ef_str(&d[EFD_REASON]));
		f->sf_num = d[EFD_SINCE].kind == EF_INT ? d[EFD_SINCE].num : -1;
		break;
	case SF_UNLINKED:
		if (d[EFD_KEPT_SUPPRESSION].kind == EF_STRING)
			snprintf(f->sf_other, sizeof(f->sf_other), "%s",
			    d[EFD_KEPT_SUPPRESSION].str);
		break;
	default:
		break;
	}
	return true;
}

void
cm_state_extract(json_t *entry, struct cm_state_fact *f)
{
	struct cm_entry_fields ef;

	cm_entry_fields_json(entry, &ef);
	if (!cm_state_extract_fields(&ef, f)) {
		f->sf_kind = SF_JSON;
		snprintf(f->sf_psn, sizeof(f->sf_psn), "%s", ef_str(&ef.s));
		f->sf_json = json_incref(entry);
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

	if (strcmp(vs_str(entry, "type"), "store.upgraded") == 0) {
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
		subject_of(r, f->sf_psn, NULL)->state = CM_SUBJECT_ACTIVE;
		r->created++;
		break;
	case SF_RESTRICTED:
		subject_of(r, f->sf_psn, NULL)->state = CM_SUBJECT_RESTRICTED;
		break;
	case SF_UNRESTRICTED:
		subject_of(r, f->sf_psn, NULL)->state = CM_SUBJECT_ACTIVE;
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
