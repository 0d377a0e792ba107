/*
 * Merging the consent ledgers of two subjects found to be one person
 * (inside cm_subject_merge). FROM's events move to INTO with their
 * evidence re-sealed, and INTO's projection is rebuilt from all of them
 * by the one rule (latest collected_at). Where the two people's current
 * states disagreed before the merge, the more restrictive stands until the
 * person decides again: if the rebuilt state would now allow, a fresh
 * event restating the withdrawal or refusal is written, and the
 * disagreement is recorded as a conflict either way. Suppression entries
 * the merged-away subject was bound to bind the survivor; an objection or
 * a pause of either side stands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "ledger.h"

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

/* What INTO and FROM each decided for every (purpose, channel) before the merge. */
struct before {
	struct cm_event_row	*in, *from;
	size_t			 n;
};

/* The scopes of P: all channels first, then each of its channels. */
static size_t
scopes(const struct cm_policy *pol, const struct cm_purpose *p,
    const char *chan[CM_POLICY_MAX_CHANNELS + 1])
{
	size_t c, n = 0;

	chan[n++] = CM_ALL_CHANNELS;
	for (c = 0; c < pol->pol_nchannels; c++)
		if (p->pu_channels & (UINT64_C(1) << c))
			chan[n++] = pol->pol_channels[c].ch_id;
	return n;
}

static cm_result
before_read(const struct cm_ctx *cx, const char *into, const char *from, struct before *b)
{
	const struct cm_policy *pol = cx->cx_policy;
	const char *chan[CM_POLICY_MAX_CHANNELS + 1];
	size_t pi, c, n, k = 0;
	cm_result rc;

	b->n = pol->pol_npurposes * (pol->pol_nchannels + 1);
	b->in = cm_calloc(b->n, sizeof(*b->in));
	b->from = cm_calloc(b->n, sizeof(*b->from));
	for (pi = 0; pi < pol->pol_npurposes; pi++) {
		n = scopes(pol, &pol->pol_purposes[pi], chan);
		for (c = 0; c < n; c++, k++)
			if ((rc = effective_row(cx, into, pol->pol_purposes[pi].pu_id, chan[c],
			    &b->in[k])) != CM_OK ||
			    (rc = effective_row(cx, from, pol->pol_purposes[pi].pu_id, chan[c],
			    &b->from[k])) != CM_OK)
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
	const struct cm_policy *pol = cx->cx_policy;
	const char *chan[CM_POLICY_MAX_CHANNELS + 1];
	struct cm_event_row now, ev;
	const struct cm_event_row *no;
	enum cm_consent_state st;
	size_t pi, c, n, k = 0;
	cm_result rc;

	for (pi = 0; pi < pol->pol_npurposes; pi++) {
		const struct cm_purpose *p = &pol->pol_purposes[pi];

		n = scopes(pol, p, chan);
		for (c = 0; c < n; c++, k++) {
			if (b->in[k].e_seq == 0 || b->from[k].e_seq == 0 ||
			    row_granted(&b->in[k]) == row_granted(&b->from[k]))
				continue;
			no = row_granted(&b->in[k]) ? &b->from[k] : &b->in[k];
			if ((rc = cm_store_conflict_add(cx->cx_db, into, from, p->pu_id, chan[c],
			    no->e_state, "granted", cx->cx_now)) != CM_OK)
				return rc;
			json_array_append_new(conflicts, json_pack("{s:s, s:s?, s:s, s:s}",
			    "purpose", p->pu_id, "channel", strcmp(chan[c], CM_ALL_CHANNELS) ?
			    chan[c] : NULL, "kept", no->e_state, "other", "granted"));
			if ((rc = effective_row(cx, into, p->pu_id, chan[c], &now)) != CM_OK)
				return rc;
			if (now.e_seq != 0 && !row_granted(&now))
				continue;
			if (cm_consent_state_parse(no->e_state, &st) != 0)
				st = CM_CONSENT_WITHDRAWN;
			ledger_event_base(cx, &ev, into, p, chan[c], st, no->e_notice_version,
			    no->e_method, 0, cx->cx_actor);
			if ((rc = ledger_event_write(cx, kinto, &ev, NULL, NULL, false)) != CM_OK)
				return rc;
		}
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
	if (cx->cx_policy != NULL && (rc = before_read(cx, into, from, &b)) != CM_OK)
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
	if (cx->cx_policy != NULL &&
	    (rc = merge_conflicts(cx, into, from, kinto, &b, conflicts)) != CM_OK)
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
	free(b.in);
	free(b.from);
	cm_prefs_row_clear(&pin);
	cm_prefs_row_clear(&pfrom);
	return rc;
}
