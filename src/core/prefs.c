/* SPDX-License-Identifier: ISC */
/*
 * Preferences and unsubscribe (SPEC §6). The channel and topic switches
 * are a view of the consent state, never a second copy of it: each is
 * read from the decision the person's own choices make (ignoring a pause,
 * which is its own setting, and the measurement holdout, which is the
 * retailer's). A save writes consent events only for the switches present
 * in its body whose value differs from that view, so a withdrawal by any
 * path turns a switch off and no later save turns it back on unless the
 * person switches it on. Frequency and pause are settings, kept in the
 * preferences row with the Art. 21 objection.
 *
 * What a switch writes: a topic switched off withdraws its purpose on all
 * channels; a topic switched on grants its purpose on each of its channels
 * that is on after the save (all of them not switched off in the same
 * body, when none is on); a channel switched off withdraws every marketing
 * purpose on that channel that is on there; a channel switched on grants
 * there the purposes whose topic is on after the save (and marketing
 * purposes on legitimate interest without a topic). A channel switch alone
 * never gives consent nobody asked for, and no switch can grant a soft
 * opt-in, which rests on a sale.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consentd/changes.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "ledger.h"

static const char *const unsubscribe_reasons[] = {
	"too_frequent", "not_relevant", "never_signed_up", "privacy", "other"
};

bool
cm_unsubscribe_reason_valid(const char *r)
{
	size_t i;

	for (i = 0; i < CM_NELEM(unsubscribe_reasons); i++)
		if (strcmp(r, unsubscribe_reasons[i]) == 0)
			return true;
	return false;
}

/* Whether a person's switch can change the decision for purpose P. */
static bool
switchable(const struct cm_purpose *p)
{
	return p->pu_basis == CM_BASIS_CONSENT || p->pu_basis == CM_BASIS_SOFT_OPT_IN ||
	    p->pu_basis == CM_BASIS_LEGITIMATE_INTEREST;
}

/* The view: what each purpose's decision is on each of its channels. */
struct pview {
	bool		 on[CM_POLICY_MAX_ITEMS][CM_POLICY_MAX_CHANNELS];
	bool		 channels[CM_POLICY_MAX_CHANNELS];
	bool		 topics[CM_POLICY_MAX_ITEMS];
	struct ledger_subject ls;
};

static cm_result
view_read(const struct cm_ctx *cx, const char *subject, struct pview *v)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_supp_fact facts[CM_SUPP_FACTS_MAX + 1];
	struct cm_decision_facts f;
	struct cm_decision d;
	struct cm_event_row ch, all;
	size_t pi, c, t;
	cm_result rc;

	memset(v, 0, sizeof(*v));
	if ((rc = ledger_subject_read(cx, subject, &v->ls, NULL)) != CM_OK)
		return rc;
	for (pi = 0; pi < pol->pol_npurposes; pi++) {
		const struct cm_purpose *p = &pol->pol_purposes[pi];

		for (c = 0; c < pol->pol_nchannels; c++) {
			if (!(p->pu_channels & (UINT64_C(1) << c)))
				continue;
			if ((rc = cm_store_current_pair(cx->cx_db, subject, p->pu_id,
			    pol->pol_channels[c].ch_id, &ch, &all)) != CM_OK)
				return rc;
			ledger_facts(cx, &v->ls, p, (int)c, &ch, &all, &f, facts);
			cm_decide(&f, &d);
			v->on[pi][c] = d.d_allow;
			if (p->pu_marketing && switchable(p) && d.d_allow)
				v->channels[c] = true;
		}
	}
	for (t = 0; t < pol->pol_ntopics; t++) {
		pi = pol->pol_topics[t].tp_purpose;
		for (c = 0; c < pol->pol_nchannels; c++)
			if (v->on[pi][c])
				v->topics[t] = true;
	}
	return CM_OK;
}

cm_result
cm_prefs_get(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	struct pview *v;
	json_t *chans, *topics, *freq;
	char paused[32];
	size_t i;
	cm_result rc;

	*out = NULL;
	memset(&pr, 0, sizeof(pr));
	if ((rc = cm_subject_load(cx, id, &row, w)) != CM_OK)
		return rc;
	v = cm_calloc(1, sizeof(*v));
	if ((rc = view_read(cx, row.s_id, v)) != CM_OK ||
	    (rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		goto out;
	chans = json_object();
	topics = json_object();
	for (i = 0; i < pol->pol_nchannels; i++)
		json_object_set_new(chans, pol->pol_channels[i].ch_id,
		    json_boolean(v->channels[i]));
	for (i = 0; i < pol->pol_ntopics; i++)
		json_object_set_new(topics, pol->pol_topics[i].tp_id, json_boolean(v->topics[i]));
	/* The policy's default frequency, when the person chose none. */
	freq = pr.p_frequency[0] ? json_string(pr.p_frequency) :
	    json_incref(json_object_get((json_t *)pol->pol_doc, "default_frequency"));
	if (pr.p_paused_until)
		cm_time_format(paused, pr.p_paused_until);
	*out = json_pack("{s:s, s:o, s:o, s:o, s:s?}", "subject_id", row.s_id, "channels",
	    chans, "topics", topics, "frequency", freq, "paused_until",
	    pr.p_paused_until ? paused : NULL);
	rc = *out ? CM_OK : CM_IOERR;
out:
	cm_prefs_row_clear(&pr);
	free(v);
	return rc;
}

/* One event a save writes. */
struct pwrite {
	size_t			 pw_purpose;
	int			 pw_channel;	/* -1: all channels */
	enum cm_consent_state	 pw_state;
};

struct pplan {
	struct pwrite	*w;
	size_t		 n;
};

static void
plan_add(struct pplan *pl, size_t pi, int c, enum cm_consent_state st)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		if (pl->w[i].pw_purpose == pi && pl->w[i].pw_channel == c)
			return;
	pl->w = cm_reallocarray(pl->w, pl->n + 1, sizeof(*pl->w));
	pl->w[pl->n].pw_purpose = pi;
	pl->w[pl->n].pw_channel = c;
	pl->w[pl->n].pw_state = st;
	pl->n++;
}

/* BODY's value for KEY in map NAME: 1 on, 0 off, -1 not in the body. */
static int
body_switch(json_t *body, const char *name, const char *key)
{
	json_t *v = json_object_get(json_object_get(body, name), key);

	return v == NULL ? -1 : json_is_true(v) ? 1 : 0;
}

/*
 * Works out the events a save of BODY writes against view V (see the
 * comment at the top of the file). CM_INVALID with W set for a switch
 * that cannot be changed.
 */
static cm_result
plan_save(const struct cm_ctx *cx, json_t *body, const struct pview *v, struct pplan *pl,
    struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	bool chan_after[CM_POLICY_MAX_CHANNELS], topic_after[CM_POLICY_MAX_ITEMS];
	size_t t, c, pi;
	int b;

	for (c = 0; c < pol->pol_nchannels; c++) {
		b = body_switch(body, "channels", pol->pol_channels[c].ch_id);
		chan_after[c] = b < 0 ? v->channels[c] : b == 1;
	}
	for (t = 0; t < pol->pol_ntopics; t++) {
		const struct cm_purpose *p = &pol->pol_purposes[pol->pol_topics[t].tp_purpose];

		b = body_switch(body, "topics", pol->pol_topics[t].tp_id);
		topic_after[t] = b < 0 ? v->topics[t] : b == 1;
		if (b >= 0 && (b == 1) != v->topics[t] && !switchable(p)) {
			cm_why_set(w, "topic_not_optional", "these messages are part of the "
			    "service (lawful basis %s) and cannot be switched here",
			    cm_lawful_basis_name(p->pu_basis));
			snprintf(w->w_field, sizeof(w->w_field), "topics.%s",
			    pol->pol_topics[t].tp_id);
			return CM_INVALID;
		}
	}
	/* Topics: off withdraws everywhere; on grants on the channels that are on. */
	for (t = 0; t < pol->pol_ntopics; t++) {
		const struct cm_purpose *p;
		bool any = false;

		pi = pol->pol_topics[t].tp_purpose;
		p = &pol->pol_purposes[pi];
		if (body_switch(body, "topics", pol->pol_topics[t].tp_id) < 0 ||
		    topic_after[t] == v->topics[t] || !switchable(p))
			continue;
		if (!topic_after[t]) {
			plan_add(pl, pi, -1, CM_CONSENT_WITHDRAWN);
			continue;
		}
		if (p->pu_basis == CM_BASIS_SOFT_OPT_IN)
			continue;
		for (c = 0; c < pol->pol_nchannels; c++)
			if ((p->pu_channels & (UINT64_C(1) << c)) && chan_after[c])
				any = true;
		for (c = 0; c < pol->pol_nchannels; c++) {
			if (!(p->pu_channels & (UINT64_C(1) << c)))
				continue;
			if (any ? chan_after[c] :
			    body_switch(body, "channels", pol->pol_channels[c].ch_id) != 0)
				plan_add(pl, pi, (int)c, CM_CONSENT_GRANTED);
		}
	}
	/* Channels: off withdraws what is on there; on grants the topics that are on. */
	for (c = 0; c < pol->pol_nchannels; c++) {
		if (body_switch(body, "channels", pol->pol_channels[c].ch_id) < 0 ||
		    chan_after[c] == v->channels[c])
			continue;
		for (pi = 0; pi < pol->pol_npurposes; pi++) {
			const struct cm_purpose *p = &pol->pol_purposes[pi];
			const struct cm_topic *tp = ledger_topic_of(pol, pi);

			if (!p->pu_marketing || !switchable(p) ||
			    !(p->pu_channels & (UINT64_C(1) << c)))
				continue;
			if (!chan_after[c]) {
				if (v->on[pi][c])
					plan_add(pl, pi, (int)c, CM_CONSENT_WITHDRAWN);
				continue;
			}
			if (v->on[pi][c] || p->pu_basis == CM_BASIS_SOFT_OPT_IN)
				continue;
			if (tp != NULL ? topic_after[tp - pol->pol_topics] :
			    p->pu_basis == CM_BASIS_LEGITIMATE_INTEREST)
				plan_add(pl, pi, (int)c, CM_CONSENT_GRANTED);
		}
	}
	return CM_OK;
}

static bool
method_first_party(const char *method)
{
	bool fp = false;

	return cm_consent_method_valid(method, &fp) && fp;
}

/* The change feed's row for a save: the settings after it, no switches (events). */
static cm_result
prefs_change(const struct cm_ctx *cx, const char *subject, const struct cm_prefs_row *pr,
    const char *method, size_t events, uint64_t idx)
{
	char until[32];

	if (pr->p_paused_until > 0)
		cm_time_format(until, pr->p_paused_until);
	return cm_change_record(cx, "preferences", subject, NULL, NULL,
	    json_pack("{s:s?, s:s?, s:s, s:I, s:I}", "frequency",
	    pr->p_frequency[0] ? pr->p_frequency : NULL, "paused_until",
	    pr->p_paused_until > 0 ? until : NULL, "method", method, "consent_events",
	    (json_int_t)events, "audit_index", (json_int_t)idx));
}

cm_result
cm_prefs_put(const struct cm_ctx *cx, const char *id, json_t *in, const char *method,
    struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	struct pplan pl = { NULL, 0 };
	struct pview *v;
	json_t *val, *details;
	uint8_t *key;
	uint64_t idx;
	size_t i;
	cm_result rc;

	memset(&pr, 0, sizeof(pr));
	key = cm_key_acquire();
	v = cm_calloc(1, sizeof(*v));
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK ||
	    (rc = view_read(cx, row.s_id, v)) != CM_OK ||
	    (rc = plan_save(cx, in, v, &pl, w)) != CM_OK)
		goto out;
	for (i = 0; i < pl.n; i++) {
		const struct cm_purpose *p = &pol->pol_purposes[pl.w[i].pw_purpose];

		if (pl.w[i].pw_state == CM_CONSENT_GRANTED && !method_first_party(method) &&
		    ledger_suppressed_for(cx, &v->ls, p, pl.w[i].pw_channel)) {
			cm_why_set(w, "suppressed", "this person is on the suppression list; "
			    "only a fresh first-party grant lifts it");
			rc = CM_CONFLICT;
			goto out;
		}
	}
	for (i = 0; i < pl.n; i++) {
		const struct cm_purpose *p = &pol->pol_purposes[pl.w[i].pw_purpose];
		struct cm_event_row ev;

		ledger_event_base(cx, &ev, row.s_id, p, pl.w[i].pw_channel < 0 ?
		    CM_ALL_CHANNELS : pol->pol_channels[pl.w[i].pw_channel].ch_id,
		    pl.w[i].pw_state, 0, method, 0, cx->cx_actor);
		if ((rc = ledger_event_write(cx, key, &ev, NULL, NULL, true)) != CM_OK)
			goto out;
	}
	if ((rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		goto out;
	if ((val = json_object_get(in, "frequency")) != NULL)
		snprintf(pr.p_frequency, sizeof(pr.p_frequency), "%s", json_string_value(val));
	if ((val = json_object_get(in, "paused_until")) != NULL)
		pr.p_paused_until = json_is_integer(val) ? json_integer_value(val) : 0;
	/* The settings after this save, so the log alone says what they are. */
	details = json_pack("{s:I, s:s, s:s, s:I}", "consent_events", (json_int_t)pl.n,
	    "method", method, "frequency", pr.p_frequency, "paused_until",
	    (json_int_t)pr.p_paused_until);
	if ((rc = cm_store_prefs_put(cx->cx_db, row.s_id, &pr, cx->cx_now)) != CM_OK) {
		json_decref(details);
		goto out;
	}
	if ((rc = cm_ctx_audit(cx, "preferences.updated", row.s_id, key, details,
	    json_pack("{s:O}", "preferences", in), &idx)) != CM_OK)
		goto out;
	rc = prefs_change(cx, row.s_id, &pr, method, pl.n, idx);
out:
	free(pl.w);
	free(v);
	cm_prefs_row_clear(&pr);
	cm_key_release(key);
	return rc;
}

cm_result
cm_unsubscribe(const struct cm_ctx *cx, const char *id, const char *reason,
    const char *comment, const char *method, int *withdrawn, struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_subject_row row;
	uint8_t *key;
	char month[8];
	time_t t;
	struct tm tm;
	size_t i;
	cm_result rc;

	*withdrawn = 0;
	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	/* One all-channels withdrawal per marketing purpose: newer than any grant. */
	for (i = 0; i < pol->pol_npurposes; i++) {
		const struct cm_purpose *p = &pol->pol_purposes[i];
		struct cm_event_row ev;

		if (!p->pu_marketing)
			continue;
		ledger_event_base(cx, &ev, row.s_id, p, CM_ALL_CHANNELS, CM_CONSENT_WITHDRAWN, 0,
		    method, 0, cx->cx_actor);
		if ((rc = ledger_event_write(cx, key, &ev, NULL, NULL, true)) != CM_OK)
			goto out;
		(*withdrawn)++;
	}
	t = (time_t)(cx->cx_now / 1000000);
	gmtime_r(&t, &tm);
	strftime(month, sizeof(month), "%Y-%m", &tm);
	if ((rc = cm_store_unsubscribe_count(cx->cx_db, month, reason)) != CM_OK)
		goto out;
	rc = cm_ctx_audit(cx, "subject.unsubscribed", row.s_id, key, json_pack("{s:s, s:i, s:s}",
	    "reason", reason, "purposes", *withdrawn, "method", method),
	    json_pack("{s:s}", "comment", comment ? comment : ""), NULL);
out:
	cm_key_release(key);
	return rc;
}
