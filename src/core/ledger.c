/* SPDX-License-Identifier: ISC */
/*
 * The consent ledger's shared machinery. An event is written with its
 * audit entry first (the event keeps the entry's index), then the event
 * row, then the projection: the current row of an exact (purpose,
 * channel) is the event collected last, ties to the later recorded, so a
 * back-filled event collected before the current state joins the history
 * without deciding anything (it is marked superseded). Evidence is sealed
 * under the subject's key with AD "evidence:SUBJECT:EVENT". The facts of
 * rules 1 to 3 (suppression entries binding the person, state, objection)
 * are read here for every caller that decides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/changes.h"
#include "consentd/crypto.h"
#include "consentd/outbox.h"
#include "consentd/util.h"
#include "ledger.h"

void
ledger_evidence_seal(const uint8_t *key, const char *subject, const char *event_id,
    const char *json, uint8_t **out, size_t *len)
{
	char ad[96];
	int n;

	n = snprintf(ad, sizeof(ad), "evidence:%s:%s", subject, event_id);
	*len = strlen(json) + CM_AEAD_OVERHEAD;
	*out = cm_malloc(*len);
	cm_aead_seal(*out, key, ad, (size_t)n, json, strlen(json));
}

char *
ledger_evidence_open(const uint8_t *key, const char *subject, const char *event_id,
    const uint8_t *ct, size_t len)
{
	char ad[96], *pt;
	int n;

	if (ct == NULL || len < CM_AEAD_OVERHEAD)
		return NULL;
	n = snprintf(ad, sizeof(ad), "evidence:%s:%s", subject, event_id);
	pt = cm_malloc(len - CM_AEAD_OVERHEAD + 1);
	if (cm_aead_open((uint8_t *)pt, key, ad, (size_t)n, ct, len) != 0) {
		free(pt);
		return NULL;
	}
	pt[len - CM_AEAD_OVERHEAD] = '\0';
	return pt;
}

void
ledger_event_base(const struct cm_ctx *cx, struct cm_event_row *ev, const char *subject,
    const struct cm_purpose *p, const char *channel, enum cm_consent_state state,
    int64_t notice, const char *method, int64_t collected, const char *client)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->e_subject, sizeof(ev->e_subject), "%s", subject);
	snprintf(ev->e_purpose, sizeof(ev->e_purpose), "%s", p->pu_id);
	snprintf(ev->e_channel, sizeof(ev->e_channel), "%s", channel);
	snprintf(ev->e_state, sizeof(ev->e_state), "%s", cm_consent_state_name(state));
	ev->e_notice_version = notice > 0 ? notice : p->pu_version;
	snprintf(ev->e_method, sizeof(ev->e_method), "%s", method);
	ev->e_recorded_us = cx->cx_now;
	ev->e_collected_us = collected > 0 && collected < cx->cx_now ? collected : cx->cx_now;
	snprintf(ev->e_client, sizeof(ev->e_client), "%s", client ? client : "");
}

void
ledger_row(struct cm_consent_row *r, const struct cm_event_row *e)
{
	memset(r, 0, sizeof(*r));
	if (e->e_seq == 0)
		return;
	r->cr_present = true;
	if (cm_consent_state_parse(e->e_state, &r->cr_state) != 0)
		r->cr_state = CM_CONSENT_WITHDRAWN;	/* unknown: the restrictive reading */
	r->cr_notice_version = e->e_notice_version;
	r->cr_seq = e->e_seq;
	snprintf(r->cr_event_id, sizeof(r->cr_event_id), "%s", e->e_event_id);
	snprintf(r->cr_method, sizeof(r->cr_method), "%s", e->e_method);
	r->cr_collected_us = e->e_collected_us;
	r->cr_recorded_us = e->e_recorded_us;
	r->cr_sale_ref = e->e_sale_ref;
}

/* Whether a new event collected at COLLECTED comes after current row R. */
static bool
after_row(int64_t collected, const struct cm_event_row *r)
{
	/* Recorded now, so later than every row on a tie. */
	return r->e_seq == 0 || collected >= r->e_collected_us;
}

/*
 * Whether EV, not yet written, would decide nothing: for a channel event,
 * the channel's row or the all-channels row comes after it; for an
 * all-channels event, the all-channels row does, or every channel of the
 * purpose has a row of its own that does. *EXACT_AFTER: whether it comes
 * after the row of its own exact (purpose, channel).
 */
static cm_result
event_superseded(const struct cm_ctx *cx, const struct cm_event_row *ev, bool *superseded,
    bool *exact_after)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_event_row ch, all;
	int pi;
	size_t c;
	bool any = false, beaten = true;
	cm_result rc;

	if ((rc = cm_store_current_pair(cx->cx_db, ev->e_subject, ev->e_purpose, ev->e_channel,
	    &ch, &all)) != CM_OK)
		return rc;
	if (strcmp(ev->e_channel, CM_ALL_CHANNELS) != 0) {
		*exact_after = after_row(ev->e_collected_us, &ch);
		*superseded = !*exact_after || !after_row(ev->e_collected_us, &all);
		return CM_OK;
	}
	*exact_after = after_row(ev->e_collected_us, &all);
	if (!*exact_after) {
		*superseded = true;
		return CM_OK;
	}
	pi = pol != NULL ? cm_policy_purpose_index(pol, ev->e_purpose) : -1;
	for (c = 0; pi >= 0 && c < pol->pol_nchannels; c++) {
		if (!(pol->pol_purposes[pi].pu_channels & (UINT64_C(1) << c)))
			continue;
		any = true;
		if ((rc = cm_store_current_pair(cx->cx_db, ev->e_subject, ev->e_purpose,
		    pol->pol_channels[c].ch_id, &ch, &all)) != CM_OK)
			return rc;
		if (after_row(ev->e_collected_us, &ch))
			beaten = false;
	}
	*superseded = any && beaten;
	return CM_OK;
}

/* The change feed's row for event EV: what any consent:read caller may see. */
static cm_result
ledger_change(const struct cm_ctx *cx, const struct cm_event_row *ev)
{
	char col[32];

	cm_time_format(col, ev->e_collected_us);
	return cm_change_record(cx, "consent", ev->e_subject, NULL, NULL,
	    json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I, s:s, s:b, s:I}", "event_id",
	    ev->e_event_id, "purpose", ev->e_purpose, "channel",
	    strcmp(ev->e_channel, CM_ALL_CHANNELS) ? ev->e_channel : NULL, "state",
	    ev->e_state, "method", ev->e_method, "notice_version",
	    (json_int_t)ev->e_notice_version, "collected_at", col, "superseded",
	    ev->e_superseded, "audit_index", (json_int_t)ev->e_audit_index));
}

cm_result
ledger_event_write(const struct cm_ctx *cx, const uint8_t *key, struct cm_event_row *ev,
    json_t *evidence, json_t *extra_private, bool decided)
{
	uint8_t *sealed = NULL;
	size_t len = 0;
	uint64_t idx;
	char *ejson = NULL;
	json_t *priv, *details;
	bool exact_after;
	cm_result rc;

	if ((rc = event_superseded(cx, ev, &ev->e_superseded, &exact_after)) != CM_OK)
		return rc;
	cm_time_id(ev->e_event_id, sizeof(ev->e_event_id), "evt_", cx->cx_now);
	priv = json_object();
	if (evidence != NULL)
		json_object_set(priv, "evidence", evidence);
	if (extra_private != NULL)
		json_object_update(priv, extra_private);
	details = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:b, s:b}", "event_id",
	    ev->e_event_id, "purpose", ev->e_purpose, "channel",
	    strcmp(ev->e_channel, CM_ALL_CHANNELS) ? ev->e_channel : NULL, "state", ev->e_state,
	    "method", ev->e_method, "notice_version", (json_int_t)ev->e_notice_version,
	    "collected_at", (json_int_t)ev->e_collected_us, "sale_ref", ev->e_sale_ref,
	    "superseded", ev->e_superseded);
	if (json_object_size(priv) == 0) {
		json_decref(priv);
		priv = NULL;
	}
	/* cm_ctx_audit takes both references. */
	if ((rc = cm_ctx_audit(cx, "consent.recorded", ev->e_subject, key, details, priv,
	    &idx)) != CM_OK)
		return rc;
	ev->e_audit_index = (int64_t)idx;
	if (evidence != NULL) {
		ejson = json_dumps(evidence, JSON_COMPACT | JSON_SORT_KEYS);
		if (ejson == NULL)
			return CM_INVALID;
		ledger_evidence_seal(key, ev->e_subject, ev->e_event_id, ejson, &sealed, &len);
		cm_wipe(ejson, strlen(ejson));
		free(ejson);
	}
	ev->e_evidence = sealed;
	ev->e_evidence_len = len;
	rc = cm_store_event_insert(cx->cx_db, ev);
	free(sealed);
	ev->e_evidence = NULL;
	ev->e_evidence_len = 0;
	if (rc != CM_OK || (rc = ledger_change(cx, ev)) != CM_OK)
		return rc;
	if (exact_after && (rc = cm_store_current_put(cx->cx_db, ev)) != CM_OK)
		return rc;
	/* The current state moved: systems registered for consent.changed learn of it. */
	if (exact_after && (rc = cm_outbox_consent_changed(cx, ev)) != CM_OK)
		return rc;
	if (!decided || ev->e_superseded)
		return CM_OK;
	/* The person has decided again: an open merge conflict is settled. */
	return cm_store_conflicts_resolve(cx->cx_db, ev->e_subject, ev->e_purpose,
	    ev->e_channel, cx->cx_now);
}

int
ledger_supp_index(const struct ledger_subject *ls, const char *type, const uint8_t blind[32])
{
	size_t i;

	for (i = 0; i < ls->ls_nsupp; i++)
		if (strcmp(ls->ls_supp[i].sr_type, type) == 0 &&
		    memcmp(ls->ls_supp[i].sr_blind, blind, 32) == 0)
			return (int)i;
	return -1;
}

int
ledger_supp_add(void *arg, const struct cm_supp_row *r)
{
	struct ledger_subject *ls = arg;

	if (ledger_supp_index(ls, r->sr_type, r->sr_blind) >= 0)
		return 0;
	if (ls->ls_nsupp == CM_SUPP_FACTS_MAX) {
		ls->ls_supp_overflow = true;
		return 0;
	}
	ls->ls_supp[ls->ls_nsupp++] = *r;
	return 0;
}

cm_result
ledger_subject_read(const struct cm_ctx *cx, const char *subject, struct ledger_subject *ls,
    struct cm_subject_row *row_out)
{
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	cm_result rc;

	memset(ls, 0, sizeof(*ls));
	if ((rc = cm_store_subject_get(cx->cx_db, subject, &row)) != CM_OK)
		return rc;
	if (row_out != NULL)
		*row_out = row;
	ls->ls_state = row.s_state;
	if ((rc = cm_store_prefs_get(cx->cx_db, subject, &pr)) != CM_OK)
		return rc;
	ls->ls_objected_at = pr.p_objected_at;
	ls->ls_paused_until = pr.p_paused_until;
	cm_prefs_row_clear(&pr);
	return cm_store_subject_suppressions(cx->cx_db, subject, ledger_supp_add, ls);
}

/* Whether channel index CHANNEL (-1: any channel of P) is one TYPE reaches. */
static bool
channel_hit(const struct cm_policy *pol, const struct cm_purpose *p, int channel,
    const char *type)
{
	size_t c;

	if (channel >= 0)
		return cm_policy_channel_uses_type(pol, (size_t)channel, type);
	for (c = 0; c < pol->pol_nchannels; c++)
		if ((p->pu_channels & (UINT64_C(1) << c)) &&
		    cm_policy_channel_uses_type(pol, c, type))
			return true;
	return false;
}

void
ledger_facts(const struct cm_ctx *cx, const struct ledger_subject *ls,
    const struct cm_purpose *p, int channel, const struct cm_event_row *ch,
    const struct cm_event_row *all, struct cm_decision_facts *f,
    struct cm_supp_fact facts[CM_SUPP_FACTS_MAX + 1])
{
	size_t i, n = 0;

	memset(f, 0, sizeof(*f));
	f->df_purpose = p;
	f->df_now = cx->cx_now;
	for (i = 0; i < ls->ls_nsupp; i++) {
		facts[n].sf_reason = ls->ls_supp[i].sr_reason;
		facts[n].sf_channel_hit = channel_hit(cx->cx_policy, p, channel,
		    ls->ls_supp[i].sr_type);
		n++;
	}
	if (ls->ls_supp_overflow) {
		/* Entries beyond what fits are read as the strongest. */
		facts[n].sf_reason = "erased";
		facts[n].sf_channel_hit = true;
		n++;
	}
	f->df_supp = facts;
	f->df_nsupp = n;
	f->df_known = true;
	f->df_state = ls->ls_state;
	f->df_objected = ls->ls_objected_at != 0;
	ledger_row(&f->df_channel, ch);
	ledger_row(&f->df_all, all);
}

bool
ledger_suppressed_for(const struct cm_ctx *cx, const struct ledger_subject *ls,
    const struct cm_purpose *p, int channel)
{
	struct cm_supp_fact facts[CM_SUPP_FACTS_MAX + 1];
	struct cm_decision_facts f;
	struct cm_event_row none;
	struct cm_decision d;

	memset(&none, 0, sizeof(none));
	ledger_facts(cx, ls, p, channel, &none, &none, &f, facts);
	f.df_state = CM_SUBJECT_ACTIVE;
	f.df_objected = false;
	cm_decide(&f, &d);
	return !d.d_allow && strcmp(d.d_reason, "suppressed") == 0;
}

void
ledger_supp_tag(const struct cm_ctx *cx, const char *type, const uint8_t blind[32],
    char tag[33])
{
	cm_audit_tag_blind(cx->cx_keys, type, blind, tag);
}

const struct cm_topic *
ledger_topic_of(const struct cm_policy *pol, size_t pi)
{
	size_t i;

	for (i = 0; i < pol->pol_ntopics; i++)
		if (pol->pol_topics[i].tp_purpose == pi)
			return &pol->pol_topics[i];
	return NULL;
}
