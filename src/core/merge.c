/* SPDX-License-Identifier: ISC */
/*
 * Merging two subjects found to be one person. cm_subject_merge moves
 * FROM's identifiers to INTO re-sealed under INTO's key, fills INTO's
 * profile gaps from FROM's, re-homes FROM's audit openings, merges the
 * consent ledgers and leaves FROM as a pointer to INTO.
 *
 * The consent ledgers (cm_consent_merge): FROM's events move to INTO with their
 * evidence re-sealed, and INTO's projection is rebuilt from all of them
 * by the one rule (latest collected_at). Where the two people's current
 * states disagreed before the merge, the more restrictive stands until the
 * person decides again: if the rebuilt state would now allow, an event
 * restating the withdrawal or refusal is written, dated just after the
 * grant that would decide (so it outranks that grant and nothing the
 * person decided later on a scope both agreed on), and the
 * disagreement is recorded as a conflict either way. Suppression entries
 * the merged-away subject was bound to bind the survivor; an objection or
 * a pause of either side stands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/changes.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/outbox.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "ledger.h"
#include "record.h"

struct cmerge {
	const char		*into, *from;
	const uint8_t		*kinto, *kfrom;
	struct cm_event_row	*rows;
	uint8_t			**sealed;
	size_t			 n;
	bool			 failed;
};

static int
cmerge_collect(void *arg, const struct cm_event_row *e)
{
	struct cmerge *m = arg;
	char *pt = NULL;

	if (e->e_evidence != NULL && e->e_evidence_len > 0 &&
	    (pt = ledger_evidence_open(m->kfrom, m->from, e->e_event_id, e->e_evidence,
	    e->e_evidence_len)) == NULL) {
		m->failed = true;
		return 1;
	}
	m->rows = cm_reallocarray(m->rows, m->n + 1, sizeof(*m->rows));
	m->sealed = cm_reallocarray(m->sealed, m->n + 1, sizeof(*m->sealed));
	m->rows[m->n] = *e;
	m->rows[m->n].e_evidence = NULL;
	m->rows[m->n].e_evidence_len = 0;
	m->sealed[m->n] = NULL;
	if (pt != NULL) {
		size_t len;

		ledger_evidence_seal(m->kinto, m->into, e->e_event_id, pt, &m->sealed[m->n], &len);
		m->rows[m->n].e_evidence_len = len;
		cm_wipe(pt, strlen(pt));
		free(pt);
	}
	m->n++;
	return 0;
}

/* The event that decides (PURPOSE, CHANNEL) for SUBJECT into *OUT (e_seq 0: none). */
static cm_result
effective_row(const struct cm_ctx *cx, const char *subject, const char *purpose,
    const char *channel, struct cm_event_row *out)
{
	struct cm_event_row ch, all;
	cm_result rc;

	if ((rc = cm_store_current_pair(cx->cx_db, subject, purpose, channel, &ch,
	    &all)) != CM_OK)
		return rc;
	if (strcmp(channel, CM_ALL_CHANNELS) == 0 || ch.e_seq == 0)
		*out = all;
	else if (all.e_seq == 0)
		*out = ch;
	else
		*out = cm_consent_after(all.e_collected_us, all.e_seq, ch.e_collected_us,
		    ch.e_seq) ? all : ch;
	return CM_OK;
}

static bool
row_granted(const struct cm_event_row *r)
{
	return strcmp(r->e_state, "granted") == 0;
}

/*
 * The scopes two subjects could disagree on: for every purpose either has
 * a current row for, all channels and each channel either has a row for
 * (a channel with no row of its own is decided by the all-channels row).
 * What each decided there before the merge. Read from the rows alone, so
 * a merge needs no policy (the data upgrade merges too).
 */
struct scope {
	char			 sc_purpose[65];
	char			 sc_channel[65];
	struct cm_event_row	 sc_in, sc_from;	/* e_seq 0: no decision */
};

struct before {
	struct scope	*s;
	size_t		 n;
	struct cm_event_row *rows;	/* every current row of both */
	size_t		 nrows;
};

static int
rows_collect(void *arg, const struct cm_event_row *e)
{
	struct before *b = arg;

	b->rows = cm_reallocarray(b->rows, b->nrows + 1, sizeof(*b->rows));
	b->rows[b->nrows++] = *e;
	return 0;
}

static void
scope_add(struct before *b, const char *purpose, const char *channel)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->s[i].sc_purpose, purpose) == 0 &&
		    strcmp(b->s[i].sc_channel, channel) == 0)
			return;
	b->s = cm_reallocarray(b->s, b->n + 1, sizeof(*b->s));
	memset(&b->s[b->n], 0, sizeof(b->s[b->n]));
	snprintf(b->s[b->n].sc_purpose, sizeof(b->s[b->n].sc_purpose), "%s", purpose);
	snprintf(b->s[b->n].sc_channel, sizeof(b->s[b->n].sc_channel), "%s", channel);
	b->n++;
}

static cm_result
before_read(const struct cm_ctx *cx, const char *into, const char *from, struct before *b)
{
	size_t i;
	cm_result rc;

	if ((rc = cm_store_current_list(cx->cx_db, into, rows_collect, b)) != CM_OK ||
	    (rc = cm_store_current_list(cx->cx_db, from, rows_collect, b)) != CM_OK)
		return rc;
	for (i = 0; i < b->nrows; i++) {
		scope_add(b, b->rows[i].e_purpose, CM_ALL_CHANNELS);
		scope_add(b, b->rows[i].e_purpose, b->rows[i].e_channel);
	}
	for (i = 0; i < b->n; i++) {
		struct scope *sc = &b->s[i];

		if ((rc = effective_row(cx, into, sc->sc_purpose, sc->sc_channel,
		    &sc->sc_in)) != CM_OK ||
		    (rc = effective_row(cx, from, sc->sc_purpose, sc->sc_channel,
		    &sc->sc_from)) != CM_OK)
			return rc;
	}
	return CM_OK;
}

/*
 * After the move and the rebuild: wherever INTO and FROM disagreed, the
 * restrictive state stands and a conflict is recorded.
 */
static cm_result
merge_conflicts(const struct cm_ctx *cx, const char *into, const char *from,
    const uint8_t *kinto, const struct before *b, json_t *conflicts)
{
	struct cm_event_row now, ev;
	const struct cm_event_row *no;
	enum cm_consent_state st;
	struct cm_purpose p;
	size_t i;
	cm_result rc;

	for (i = 0; i < b->n; i++) {
		const struct scope *sc = &b->s[i];

		if (sc->sc_in.e_seq == 0 || sc->sc_from.e_seq == 0 ||
		    row_granted(&sc->sc_in) == row_granted(&sc->sc_from))
			continue;
		no = row_granted(&sc->sc_in) ? &sc->sc_from : &sc->sc_in;
		if ((rc = cm_store_conflict_add(cx->cx_db, into, from, sc->sc_purpose,
		    sc->sc_channel, no->e_state, "granted", cx->cx_now)) != CM_OK)
			return rc;
		json_array_append_new(conflicts, json_pack("{s:s, s:s?, s:s, s:s}", "purpose",
		    sc->sc_purpose, "channel", strcmp(sc->sc_channel, CM_ALL_CHANNELS) ?
		    sc->sc_channel : NULL, "kept", no->e_state, "other", "granted"));
		if ((rc = effective_row(cx, into, sc->sc_purpose, sc->sc_channel, &now)) != CM_OK)
			return rc;
		if (now.e_seq != 0 && !row_granted(&now))
			continue;
		if (cm_consent_state_parse(no->e_state, &st) != 0)
			st = CM_CONSENT_WITHDRAWN;
		memset(&p, 0, sizeof(p));
		p.pu_id = sc->sc_purpose;
		p.pu_version = no->e_notice_version;
		/*
		 * Dated just after the grant it outranks, not at the merge: a
		 * later decision on a narrower scope, which both sides agreed
		 * on, still comes after it and still decides there.
		 */
		ledger_event_base(cx, &ev, into, &p, sc->sc_channel, st, no->e_notice_version,
		    no->e_method, now.e_collected_us + 1, cx->cx_actor);
		if ((rc = ledger_event_write(cx, kinto, &ev, NULL, NULL, false)) != CM_OK)
			return rc;
	}
	return CM_OK;
}

cm_result
cm_consent_merge(const struct cm_ctx *cx, const char *into, const char *from,
    const uint8_t *kinto, const uint8_t *kfrom, json_t *conflicts)
{
	struct cmerge m;
	struct before b;
	struct cm_prefs_row pin, pfrom;
	size_t i;
	cm_result rc;

	memset(&m, 0, sizeof(m));
	memset(&b, 0, sizeof(b));
	memset(&pin, 0, sizeof(pin));
	memset(&pfrom, 0, sizeof(pfrom));
	m.into = into;
	m.from = from;
	m.kinto = kinto;
	m.kfrom = kfrom;
	if ((rc = before_read(cx, into, from, &b)) != CM_OK)
		goto out;
	/* Events move, evidence re-sealed under INTO's key. */
	if ((rc = cm_store_events_list(cx->cx_db, from, cmerge_collect, &m)) != CM_OK)
		goto out;
	if (m.failed) {
		rc = CM_IOERR;
		goto out;
	}
	for (i = 0; i < m.n; i++)
		if ((rc = cm_store_event_move(cx->cx_db, m.rows[i].e_seq, into, m.sealed[i],
		    m.rows[i].e_evidence_len)) != CM_OK)
			goto out;
	if ((rc = cm_store_current_clear(cx->cx_db, from)) != CM_OK ||
	    (rc = cm_store_current_rebuild(cx->cx_db, into)) != CM_OK ||
	    (rc = cm_store_conflicts_move(cx->cx_db, from, into)) != CM_OK ||
	    (rc = cm_store_suppression_bindings_move(cx->cx_db, from, into)) != CM_OK)
		goto out;
	if ((rc = merge_conflicts(cx, into, from, kinto, &b, conflicts)) != CM_OK)
		goto out;
	/* An objection or a pause from either side stands. */
	if ((rc = cm_store_prefs_get(cx->cx_db, into, &pin)) != CM_OK ||
	    (rc = cm_store_prefs_get(cx->cx_db, from, &pfrom)) != CM_OK)
		goto out;
	if (pfrom.p_present) {
		if (pin.p_objected_at == 0)
			pin.p_objected_at = pfrom.p_objected_at;
		if (pfrom.p_paused_until > pin.p_paused_until)
			pin.p_paused_until = pfrom.p_paused_until;
		if (pin.p_frequency[0] == '\0')
			memcpy(pin.p_frequency, pfrom.p_frequency, sizeof(pin.p_frequency));
		rc = cm_store_prefs_put(cx->cx_db, into, &pin, cx->cx_now);
	}
out:
	if (m.sealed != NULL)
		for (i = 0; i < m.n; i++)
			free(m.sealed[i]);
	free(m.sealed);
	free(m.rows);
	free(b.s);
	free(b.rows);
	cm_prefs_row_clear(&pin);
	cm_prefs_row_clear(&pfrom);
	return rc;
}

/* ---- subjects ----------------------------------------------------------- */

struct smerge {
	const struct cm_ctx	*cx;
	const char		*into, *from;
	const uint8_t		*kinto, *kfrom;
	struct cm_ident_row	*ids;
	char			**values;
	size_t			 nids;
	json_t			*fill;		/* attributes INTO lacks */
	json_t			*have;		/* INTO's attribute names */
	json_t			*drop;		/* every attribute name of FROM */
	bool			 failed;
};

static int
merge_collect_ident(void *arg, const struct cm_ident_row *r)
{
	struct smerge *m = arg;
	char *value;

	value = record_unseal(m->kfrom, "ident", m->from, r->i_type, r->i_sealed, r->i_sealed_len);
	if (value == NULL) {
		m->failed = true;
		return 1;
	}
	m->ids = cm_reallocarray(m->ids, m->nids + 1, sizeof(*m->ids));
	m->values = cm_reallocarray(m->values, m->nids + 1, sizeof(*m->values));
	m->ids[m->nids] = *r;
	m->ids[m->nids].i_sealed = NULL;
	m->values[m->nids] = value;
	m->nids++;
	return 0;
}

static int
merge_have_attr(void *arg, const char *name, const uint8_t *sealed, size_t len)
{
	struct smerge *m = arg;

	(void)sealed;
	(void)len;
	json_object_set_new(m->have, name, json_true());
	return 0;
}

static int
merge_collect_attr(void *arg, const char *name, const uint8_t *sealed, size_t len)
{
	struct smerge *m = arg;
	json_error_t je;
	json_t *val;
	char *enc;

	json_array_append_new(m->drop, json_string(name));
	if (json_object_get(m->have, name) != NULL)
		return 0;
	if ((enc = record_unseal(m->kfrom, "attr", m->from, name, sealed, len)) == NULL) {
		m->failed = true;
		return 1;
	}
	val = json_loads(enc, JSON_DECODE_ANY, &je);
	record_unseal_free(enc);
	if (val == NULL) {
		m->failed = true;
		return 1;
	}
	json_object_set_new(m->fill, name, val);
	return 0;
}

/* Re-seals one audit opening of FROM under INTO's key. */
static int
merge_rehome_opening(void *arg, uint64_t idx, const uint8_t *ct, size_t len,
    struct cm_buf *out)
{
	struct smerge *m = arg;
	char ad[96];
	uint8_t *pt;
	int n, rc = -1;

	if (len < CM_AEAD_OVERHEAD)
		return -1;
	pt = cm_malloc(len - CM_AEAD_OVERHEAD + 1);
	n = snprintf(ad, sizeof(ad), "%s:%llu", m->from, (unsigned long long)idx);
	if (cm_aead_open(pt, m->kfrom, ad, (size_t)n, ct, len) == 0) {
		uint8_t *resealed = cm_malloc(len);

		n = snprintf(ad, sizeof(ad), "%s:%llu", m->into, (unsigned long long)idx);
		cm_aead_seal(resealed, m->kinto, ad, (size_t)n, pt, len - CM_AEAD_OVERHEAD);
		cm_buf_append(out, resealed, len);
		free(resealed);
		rc = 0;
	}
	cm_wipe(pt, len - CM_AEAD_OVERHEAD);
	free(pt);
	return rc;
}

/*
 * Profile: INTO keeps its values; FROM's fill the gaps. None of FROM's
 * rows stays behind, sealed under a key about to be destroyed.
 */
static cm_result
merge_profile(struct smerge *m, json_t *set, json_t *deleted, struct cm_why *w)
{
	const struct cm_ctx *cx = m->cx;
	json_t *v;
	size_t i;
	cm_result rc;

	if ((rc = cm_store_profile_list(cx->cx_db, m->into, merge_have_attr, m)) != CM_OK ||
	    (rc = cm_store_profile_list(cx->cx_db, m->from, merge_collect_attr, m)) != CM_OK)
		return rc;
	if (m->failed)
		return CM_IOERR;
	if ((rc = record_profile_apply(cx, m->into, m->kinto, m->fill, set, deleted,
	    w)) != CM_OK)
		return rc;
	json_array_foreach(m->drop, i, v)
		if ((rc = cm_store_profile_delete(cx->cx_db, m->from,
		    json_string_value(v))) != CM_OK)
			return rc;
	return CM_OK;
}

cm_result
cm_subject_merge(const struct cm_ctx *cx, const char *into, const char *from,
    const char *reason, json_t **conflicts, struct cm_why *w)
{
	struct cm_subject_row rin, rfrom;
	struct smerge m;
	uint8_t *kin, *kfrom, *sealed;
	json_t *set = json_array(), *deleted = json_array();
	char pseudo[40], cand[40];
	uint64_t ridx;
	size_t len, i;
	cm_result rc;

	*conflicts = json_array();
	memset(&m, 0, sizeof(m));
	kin = cm_key_acquire();
	kfrom = cm_key_acquire();
	m.fill = json_object();
	m.have = json_object();
	m.drop = json_array();
	if (strcmp(into, from) == 0) {
		cm_why_set(w, "same_subject", "a subject cannot be merged into itself");
		rc = CM_INVALID;
		goto out;
	}
	if ((rc = cm_subject_open(cx, into, &rin, kin, w)) != CM_OK ||
	    (rc = cm_subject_open(cx, from, &rfrom, kfrom, w)) != CM_OK)
		goto out;
	if (strcmp(rin.s_id, rfrom.s_id) == 0) {
		cm_why_set(w, "same_subject", "a subject cannot be merged into itself");
		rc = CM_INVALID;
		goto out;
	}
	m.cx = cx;
	m.into = rin.s_id;
	m.from = rfrom.s_id;
	/* A restriction (Art. 18) on either side stands on the survivor. */
	if (rfrom.s_state == CM_SUBJECT_RESTRICTED && rin.s_state != CM_SUBJECT_RESTRICTED &&
	    ((rc = cm_store_subject_set_state(cx->cx_db, m.into, CM_SUBJECT_RESTRICTED,
	    cx->cx_now)) != CM_OK ||
	    (rc = cm_ctx_audit(cx, "subject.restricted", m.into, kin,
	    json_pack("{s:s}", "by", "merge"), NULL, &ridx)) != CM_OK ||
	    (rc = cm_restriction_change(cx, m.into, true, ridx)) != CM_OK))
		goto out;
	m.kinto = kin;
	m.kfrom = kfrom;
	/* Identifiers: collect first, then move, re-sealed under INTO. */
	if ((rc = cm_store_identifier_list(cx->cx_db, m.from, merge_collect_ident, &m)) != CM_OK)
		goto out;
	for (i = 0; i < m.nids && !m.failed; i++) {
		record_seal(kin, "ident", m.into, m.ids[i].i_type, m.values[i], strlen(m.values[i]),
		    &sealed, &len);
		rc = cm_store_identifier_move(cx->cx_db, m.ids[i].i_type, m.ids[i].i_blind,
		    m.into, sealed, len);
		free(sealed);
		if (rc != CM_OK)
			goto out;
	}
	if ((rc = merge_profile(&m, set, deleted, w)) != CM_OK)
		goto out;
	if ((rc = cm_store_audit_openings_rehome(cx->cx_db, m.from, m.into,
	    merge_rehome_opening, &m)) != CM_OK)
		goto out;
	if ((rc = cm_consent_merge(cx, m.into, m.from, kin, kfrom, *conflicts)) != CM_OK ||
	    (rc = cm_dsr_rehome(cx, m.from, m.into, kfrom, kin)) != CM_OK ||
	    (rc = cm_outbox_rehome(cx, m.from, m.into, kfrom, kin)) != CM_OK)
		goto out;
	cm_random_id(cand, sizeof(cand), "psn_");
	if ((rc = cm_store_audit_pseudonym(cx->cx_db, m.from, true, cand, pseudo,
	    sizeof(pseudo))) != CM_OK)
		goto out;
	if ((rc = cm_store_subject_merge_away(cx->cx_db, m.from, m.into, cx->cx_now)) != CM_OK ||
	    (rc = cm_store_subject_touch(cx->cx_db, m.into, cx->cx_now)) != CM_OK)
		goto out;
	rc = cm_ctx_audit(cx, "subject.merged", m.into, kin,
	    json_pack("{s:s, s:I, s:I, s:I}", "merged", pseudo, "identifiers_moved",
	    (json_int_t)m.nids, "attributes_filled", (json_int_t)json_array_size(set),
	    "conflicts", (json_int_t)json_array_size(*conflicts)),
	    json_pack("{s:s}", "reason", reason ? reason : ""), NULL);
out:
	for (i = 0; i < m.nids; i++)
		record_unseal_free(m.values[i]);
	free(m.values);
	free(m.ids);
	json_decref(m.fill);
	json_decref(m.have);
	json_decref(m.drop);
	json_decref(set);
	json_decref(deleted);
	cm_key_release(kin);
	cm_key_release(kfrom);
	return rc;
}
