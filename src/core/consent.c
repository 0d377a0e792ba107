/*
 * The consent ledger's domain rules. Recording: one event per decision
 * (GPC: one per purpose marked gpc), its audit entry first (the event
 * keeps the entry's index), then the event, the current-state row and the
 * closing of any merge conflict the person has now decided. Evidence is
 * sealed under the subject's key with AD "evidence:SUBJECT:EVENT".
 * Checking reads the facts with point lookups and hands them to
 * cm_decide(); it never writes and never caches.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consentd/audit.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/util.h"

static const char *const suppression_reasons[] = {
	"unsubscribed", "bounced", "complained", "manual"
};

static const char *const unsubscribe_reasons[] = {
	"too_frequent", "not_relevant", "never_signed_up", "privacy", "other"
};

bool
cm_suppression_reason_valid(const char *r)
{
	size_t i;

	for (i = 0; i < CM_NELEM(suppression_reasons); i++)
		if (strcmp(r, suppression_reasons[i]) == 0)
			return true;
	return false;
}

bool
cm_unsubscribe_reason_valid(const char *r)
{
	size_t i;

	for (i = 0; i < CM_NELEM(unsubscribe_reasons); i++)
		if (strcmp(r, unsubscribe_reasons[i]) == 0)
			return true;
	return false;
}

static cm_result
audit(const struct cm_ctx *cx, const char *type, const char *subject, const uint8_t *key,
    json_t *details, json_t *private_, uint64_t *idx)
{
	struct cm_audit_event ev = { type, cx->cx_actor, details, subject, key, private_ };
	cm_result rc;

	rc = cm_audit_append(cx->cx_db, &ev, idx);
	json_decref(details);
	json_decref(private_);
	return rc;
}

static void
seal_evidence(const uint8_t *key, const char *subject, const char *event_id,
    const char *json, uint8_t **out, size_t *len)
{
	char ad[96];
	int n;

	n = snprintf(ad, sizeof(ad), "evidence:%s:%s", subject, event_id);
	*len = strlen(json) + CM_AEAD_OVERHEAD;
	*out = cm_malloc(*len);
	cm_aead_seal(*out, key, ad, (size_t)n, json, strlen(json));
}

static char *
open_evidence(const uint8_t *key, const char *subject, const char *event_id,
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

/*
 * Writes one event for SUBJECT (key KEY) and keeps the projection in
 * step; DECIDED when it is the person's own decision (it settles open
 * merge conflicts), not one a merge carried over. EV carries purpose, channel, state, notice, method, times,
 * client and request id; this fills the id, audit index and sequence.
 */
static cm_result
event_write(const struct cm_ctx *cx, const uint8_t *key, struct cm_event_row *ev,
    json_t *evidence, json_t *extra_private, bool decided)
{
	uint8_t *sealed = NULL;
	size_t len = 0;
	uint64_t idx;
	char *ejson = NULL;
	json_t *priv;
	cm_result rc;

	cm_time_id(ev->e_event_id, sizeof(ev->e_event_id), "evt_", cx->cx_now);
	priv = json_object();
	if (evidence != NULL)
		json_object_set(priv, "evidence", evidence);
	if (extra_private != NULL)
		json_object_update(priv, extra_private);
	rc = audit(cx, "consent.recorded", ev->e_subject, key,
	    json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I}", "event_id", ev->e_event_id,
	    "purpose", ev->e_purpose, "channel", strcmp(ev->e_channel, CM_ALL_CHANNELS) ?
	    ev->e_channel : NULL, "state", ev->e_state, "method", ev->e_method,
	    "notice_version", (json_int_t)ev->e_notice_version), priv, &idx);
	if (rc != CM_OK)
		return rc;
	ev->e_audit_index = (int64_t)idx;
	if (evidence != NULL) {
		ejson = json_dumps(evidence, JSON_COMPACT | JSON_SORT_KEYS);
		if (ejson == NULL)
			return CM_INVALID;
		seal_evidence(key, ev->e_subject, ev->e_event_id, ejson, &sealed, &len);
		cm_wipe(ejson, strlen(ejson));
		free(ejson);
	}
	ev->e_evidence = sealed;
	ev->e_evidence_len = len;
	rc = cm_store_event_insert(cx->cx_db, ev);
	free(sealed);
	ev->e_evidence = NULL;
	ev->e_evidence_len = 0;
	if (rc != CM_OK)
		return rc;
	if ((rc = cm_store_current_put(cx->cx_db, ev)) != CM_OK || !decided)
		return rc;
	/* The person has decided again: an open merge conflict is settled. */
	return cm_store_conflicts_resolve(cx->cx_db, ev->e_subject, ev->e_purpose,
	    ev->e_channel, cx->cx_now);
}

static void
event_base(const struct cm_ctx *cx, struct cm_event_row *ev, const char *subject,
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
	ev->e_collected_us = collected > 0 ? collected : cx->cx_now;
	snprintf(ev->e_client, sizeof(ev->e_client), "%s", client ? client : "");
}

cm_result
cm_consent_record(const struct cm_ctx *cx, const struct cm_consent_input *in,
    struct cm_consent_result *res, struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_subject_row row;
	char subject[CM_SUBJECT_ID_LEN + 1], supp[16];
	uint8_t blind[32], *key;
	int64_t since;
	bool first_party = false, suppressed = false;
	size_t i;
	cm_result rc;

	memset(res, 0, sizeof(*res));
	res->cr_event_ids = json_array();
	key = cm_key_acquire();
	(void)cm_consent_method_valid(in->ci_method, &first_party);
	/* A repeated request id answers with the first result, writing nothing. */
	if (in->ci_request_id != NULL) {
		rc = cm_store_event_by_request(cx->cx_db, in->ci_client, in->ci_request_id,
		    &res->cr_event);
		if (rc == CM_OK) {
			res->cr_replayed = true;
			json_array_append_new(res->cr_event_ids,
			    json_string(res->cr_event.e_event_id));
			goto out;
		}
		if (rc != CM_NOTFOUND)
			goto out;
	}
	if (in->ci_ident != NULL) {
		cm_blind_index(cx->cx_keys, in->ci_ident->id_type, in->ci_ident->id_value, blind);
		rc = cm_store_suppression_get(cx->cx_db, in->ci_ident->id_type, blind, supp, &since);
		if (rc == CM_OK)
			suppressed = true;
		else if (rc != CM_NOTFOUND)
			goto out;
		if (suppressed && in->ci_state == CM_CONSENT_GRANTED &&
		    (strcmp(in->ci_method, "import") == 0 || strcmp(in->ci_method, "api") == 0)) {
			cm_why_set(w, "suppressed", "this identifier is on the suppression list; only a "
			    "fresh first-party grant lifts it");
			rc = CM_CONFLICT;
			goto out;
		}
		rc = cm_store_identifier_owner(cx->cx_db, in->ci_ident->id_type, blind, subject);
		if (rc == CM_NOTFOUND) {
			struct cm_new_ident ni;

			memset(&ni, 0, sizeof(ni));
			ni.ni_id = *in->ci_ident;
			ni.ni_source = in->ci_method;
			if ((rc = cm_subject_create(cx, &ni, 1, NULL, subject, w)) != CM_OK)
				goto out;
			res->cr_subject_created = true;
		} else if (rc != CM_OK) {
			goto out;
		}
	} else {
		snprintf(subject, sizeof(subject), "%s", in->ci_subject);
	}
	if ((rc = cm_subject_open(cx, subject, &row, key, w)) != CM_OK)
		goto out;
	if (in->ci_ident == NULL && in->ci_state == CM_CONSENT_GRANTED &&
	    (strcmp(in->ci_method, "import") == 0 || strcmp(in->ci_method, "api") == 0)) {
		/* By subject id: refused as well when any identifier is suppressed. */
		rc = cm_store_subject_suppressed(cx->cx_db, row.s_id);
		if (rc != CM_OK && rc != CM_NOTFOUND)
			goto out;
		if (rc == CM_OK) {
			cm_why_set(w, "suppressed", "an identifier of this subject is on the "
			    "suppression list; only a fresh first-party grant lifts it");
			rc = CM_CONFLICT;
			goto out;
		}
	}
	if (suppressed && first_party && in->ci_state == CM_CONSENT_GRANTED) {
		/* The person has just asked again, first hand: lift it, say so. */
		if ((rc = cm_store_suppression_delete(cx->cx_db, in->ci_ident->id_type,
		    blind)) != CM_OK ||
		    (rc = audit(cx, "suppression.lifted", row.s_id, key,
		    json_pack("{s:s, s:s, s:s}", "type", in->ci_ident->id_type, "reason", supp,
		    "by", in->ci_method), json_pack("{s:s}", "identifier", in->ci_ident->id_text),
		    NULL)) != CM_OK)
			goto out;
	}
	for (i = 0; i < pol->pol_npurposes; i++) {
		const struct cm_purpose *p = &pol->pol_purposes[i];
		struct cm_event_row ev;
		json_t *extra = NULL;

		if (strcmp(in->ci_method, "gpc") == 0 ? !p->pu_gpc : p != in->ci_purpose)
			continue;
		event_base(cx, &ev, row.s_id, p, in->ci_channel >= 0 ?
		    pol->pol_channels[in->ci_channel].ch_id : CM_ALL_CHANNELS, in->ci_state,
		    in->ci_notice_version, in->ci_method, in->ci_collected_us, in->ci_client);
		if (in->ci_request_id != NULL && json_array_size(res->cr_event_ids) == 0)
			snprintf(ev.e_request_id, sizeof(ev.e_request_id), "%s", in->ci_request_id);
		if (in->ci_ident != NULL)
			extra = json_pack("{s:s}", "identifier", in->ci_ident->id_text);
		rc = event_write(cx, key, &ev, in->ci_evidence, extra, true);
		json_decref(extra);
		if (rc != CM_OK)
			goto out;
		if (json_array_size(res->cr_event_ids) == 0)
			res->cr_event = ev;
		json_array_append_new(res->cr_event_ids, json_string(ev.e_event_id));
	}
	rc = json_array_size(res->cr_event_ids) > 0 ? CM_OK : CM_INVALID;
out:
	cm_key_release(key);
	return rc;
}

struct conflicts_ctx {
	json_t		*list;
	const char	*channel;
};

static int
conflict_row(void *arg, const char *purpose, const char *channel, const char *kept,
    const char *other)
{
	struct conflicts_ctx *c = arg;

	if (c->channel != NULL && strcmp(channel, c->channel) != 0 &&
	    strcmp(channel, CM_ALL_CHANNELS) != 0)
		return 0;
	json_array_append_new(c->list, json_pack("{s:s, s:s?, s:s, s:s}", "purpose", purpose,
	    "channel", strcmp(channel, CM_ALL_CHANNELS) ? channel : NULL, "kept", kept,
	    "other", other));
	return 0;
}

static void
row_from_event(struct cm_consent_row *r, const struct cm_event_row *e)
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
	r->cr_recorded_us = e->e_recorded_us;
}

static cm_result	consent_check(const struct cm_ctx *, const struct cm_identifier *,
		    const struct cm_purpose *, const char *, struct cm_check_result *);

cm_result
cm_consent_check(const struct cm_ctx *cx, const struct cm_identifier *ident,
    const struct cm_purpose *p, const char *channel, struct cm_check_result *out)
{
	cm_result rc;

	/* One snapshot for every lookup of this check, taken fresh each time. */
	if ((rc = cm_db_read_begin(cx->cx_db)) != CM_OK)
		return rc;
	rc = consent_check(cx, ident, p, channel, out);
	cm_db_read_end(cx->cx_db);
	return rc;
}

static cm_result
consent_check(const struct cm_ctx *cx, const struct cm_identifier *ident,
    const struct cm_purpose *p, const char *channel, struct cm_check_result *out)
{
	struct cm_decision_facts f;
	struct cm_check_row k;
	struct conflicts_ctx cc;
	char supp[16];
	uint8_t blind[32];
	int64_t since;
	cm_result rc;

	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));
	f.df_purpose = p;
	f.df_now = cx->cx_now;
	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, supp, &since);
	if (rc == CM_OK)
		f.df_suppressed = supp;
	else if (rc != CM_NOTFOUND)
		return rc;
	rc = cm_store_check_facts(cx->cx_db, ident->id_type, blind, p->pu_id,
	    channel ? channel : CM_ALL_CHANNELS, &k);
	if (rc == CM_OK) {
		memcpy(out->ck_subject, k.k_subject, sizeof(out->ck_subject));
		f.df_known = true;
		f.df_state = k.k_state;
		f.df_objected = k.k_objected_at != 0;
		f.df_paused_until = k.k_paused_until;
		row_from_event(&f.df_channel, &k.k_channel);
		row_from_event(&f.df_all, &k.k_all);
		f.df_in_holdout = cm_holdout_member(cx->cx_keys, out->ck_subject, p);
	} else if (rc != CM_NOTFOUND) {
		return rc;
	}
	cm_decide(&f, &out->ck_decision);
	if (out->ck_decision.d_event != NULL) {
		out->ck_event = *out->ck_decision.d_event;
		out->ck_has_event = true;
		out->ck_decision.d_event = &out->ck_event;
	}
	out->ck_conflicts = json_array();
	if (f.df_known && k.k_conflicts) {
		cc.list = out->ck_conflicts;
		cc.channel = channel;
		if ((rc = cm_store_conflicts_open(cx->cx_db, out->ck_subject, p->pu_id,
		    conflict_row, &cc)) != CM_OK) {
			json_decref(out->ck_conflicts);
			out->ck_conflicts = NULL;
			return rc;
		}
	}
	return CM_OK;
}

struct list_ctx {
	json_t		*list;
	const uint8_t	*key;
	bool		 history;
	bool		 failed;
};

static int
list_event(void *arg, const struct cm_event_row *e)
{
	struct list_ctx *l = arg;
	char rec[32], col[32], *ev;
	json_t *o, *evj = NULL;

	cm_time_format(rec, e->e_recorded_us);
	cm_time_format(col, e->e_collected_us);
	if (l->history && e->e_evidence != NULL) {
		if ((ev = open_evidence(l->key, e->e_subject, e->e_event_id, e->e_evidence,
		    e->e_evidence_len)) == NULL) {
			l->failed = true;
			return 1;
		}
		evj = json_loads(ev, 0, NULL);
		cm_wipe(ev, strlen(ev));
		free(ev);
	}
	o = json_pack("{s:s, s:s, s:s?, s:s, s:I, s:s, s:s}", "event_id", e->e_event_id,
	    "purpose", e->e_purpose, "channel", strcmp(e->e_channel, CM_ALL_CHANNELS) ?
	    e->e_channel : NULL, "state", e->e_state, "notice_version",
	    (json_int_t)e->e_notice_version, "method", e->e_method, "recorded_at", rec);
	if (l->history) {
		json_object_set_new(o, "collected_at", json_string(col));
		json_object_set_new(o, "audit_index", json_integer(e->e_audit_index));
		json_object_set_new(o, "evidence", evj ? evj : json_null());
	}
	json_array_append_new(l->list, o);
	return 0;
}

cm_result
cm_consent_list(const struct cm_ctx *cx, const char *id, bool history, json_t **out,
    struct cm_why *w)
{
	struct cm_subject_row row;
	struct list_ctx l;
	uint8_t *key;
	cm_result rc;

	*out = NULL;
	key = cm_key_acquire();
	memset(&l, 0, sizeof(l));
	l.list = json_array();
	l.key = key;
	l.history = history;
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	rc = history ? cm_store_events_list(cx->cx_db, row.s_id, list_event, &l) :
	    cm_store_current_list(cx->cx_db, row.s_id, list_event, &l);
	if (rc == CM_OK && l.failed)
		rc = CM_IOERR;
	if (rc == CM_OK)
		*out = json_pack("{s:s, s:O}", "subject_id", row.s_id,
		    history ? "events" : "consents", l.list);
out:
	json_decref(l.list);
	cm_key_release(key);
	return rc;
}

cm_result
cm_suppression_add(const struct cm_ctx *cx, const struct cm_identifier *ident,
    const char *reason, bool *existed, char reason_out[16], int64_t *since)
{
	uint8_t blind[32];
	cm_result rc;

	*existed = false;
	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, reason_out, since);
	if (rc == CM_OK) {
		*existed = true;
		return CM_OK;
	}
	if (rc != CM_NOTFOUND)
		return rc;
	if ((rc = cm_store_suppression_put(cx->cx_db, ident->id_type, blind, reason,
	    cx->cx_now)) != CM_OK)
		return rc;
	snprintf(reason_out, 16, "%s", reason);
	*since = cx->cx_now;
	/* No subject key for an identifier nobody may have: type and reason only. */
	return audit(cx, "suppression.added", NULL, NULL, json_pack("{s:s, s:s}", "type",
	    ident->id_type, "reason", reason), NULL, NULL);
}

cm_result
cm_suppression_check(const struct cm_ctx *cx, const struct cm_identifier *ident,
    char reason[16], int64_t *since)
{
	uint8_t blind[32];

	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	return cm_store_suppression_get(cx->cx_db, ident->id_type, blind, reason, since);
}

cm_result
cm_suppression_lift(const struct cm_ctx *cx, const struct cm_identifier *ident)
{
	uint8_t blind[32];
	char reason[16];
	int64_t since;
	cm_result rc;

	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	if ((rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, reason,
	    &since)) != CM_OK)
		return rc;
	if (strcmp(reason, "erased") == 0)
		return CM_CONFLICT;
	if ((rc = cm_store_suppression_delete(cx->cx_db, ident->id_type, blind)) != CM_OK)
		return rc;
	return audit(cx, "suppression.lifted", NULL, NULL, json_pack("{s:s, s:s, s:s}",
	    "type", ident->id_type, "reason", reason, "by", "admin"), NULL, NULL);
}

/* ---- preferences --------------------------------------------------------- */

/* The effective state of (P, CHANNEL) for SUBJECT: granted, or not. */
static cm_result
effective(const struct cm_ctx *cx, const char *subject, const struct cm_purpose *p,
    const char *channel, bool *granted, bool *any)
{
	struct cm_event_row ch, all;
	struct cm_consent_row a, b;
	const struct cm_consent_row *r;
	cm_result rc;

	if ((rc = cm_store_current_pair(cx->cx_db, subject, p->pu_id, channel, &ch,
	    &all)) != CM_OK)
		return rc;
	row_from_event(&a, &ch);
	row_from_event(&b, &all);
	r = cm_decision_latest(&a, &b);
	*any = r != NULL;
	*granted = r != NULL && r->cr_state == CM_CONSENT_GRANTED;
	return CM_OK;
}

/* The topic of purpose index PI, or NULL. */
static const struct cm_topic *
topic_of(const struct cm_policy *pol, size_t pi)
{
	size_t i;

	for (i = 0; i < pol->pol_ntopics; i++)
		if (pol->pol_topics[i].tp_purpose == pi)
			return &pol->pol_topics[i];
	return NULL;
}

cm_result
cm_prefs_get(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	json_t *chans = NULL, *topics = NULL, *stored_c = NULL, *stored_t = NULL;
	char paused[32];
	size_t i, c;
	cm_result rc;

	*out = NULL;
	memset(&pr, 0, sizeof(pr));
	if ((rc = cm_subject_load(cx, id, &row, w)) != CM_OK)
		return rc;
	if ((rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		return rc;
	stored_c = pr.p_channels ? json_loads(pr.p_channels, 0, NULL) : NULL;
	stored_t = pr.p_topics ? json_loads(pr.p_topics, 0, NULL) : NULL;
	chans = json_object();
	topics = json_object();
	for (c = 0; c < pol->pol_nchannels; c++) {
		json_t *v = stored_c ? json_object_get(stored_c, pol->pol_channels[c].ch_id) : NULL;

		json_object_set_new(chans, pol->pol_channels[c].ch_id,
		    json_boolean(v == NULL || json_is_true(v)));
	}
	for (i = 0; i < pol->pol_ntopics; i++) {
		const struct cm_topic *t = &pol->pol_topics[i];
		const struct cm_purpose *p = &pol->pol_purposes[t->tp_purpose];
		json_t *v = stored_t ? json_object_get(stored_t, t->tp_id) : NULL;
		bool on = false, g, any;

		if (v != NULL) {
			on = json_is_true(v);
		} else {
			/* Never set here: on when the purpose is granted on a channel. */
			for (c = 0; c < pol->pol_nchannels && !on; c++) {
				if (!(p->pu_channels & (UINT64_C(1) << c)))
					continue;
				if ((rc = effective(cx, row.s_id, p, pol->pol_channels[c].ch_id,
				    &g, &any)) != CM_OK)
					goto out;
				on = g;
			}
		}
		json_object_set_new(topics, t->tp_id, json_boolean(on));
	}
	if (pr.p_paused_until)
		cm_time_format(paused, pr.p_paused_until);
	*out = json_pack("{s:s, s:O, s:O, s:s, s:s?}", "subject_id", row.s_id, "channels",
	    chans, "topics", topics, "frequency", pr.p_frequency[0] ? pr.p_frequency :
	    pol->pol_frequencies[0], "paused_until", pr.p_paused_until ? paused : NULL);
	/* The policy's default frequency, when the person chose none. */
	if (pr.p_frequency[0] == '\0') {
		json_t *pd = json_object_get((json_t *)pol->pol_doc, "default_frequency");

		json_object_set(*out, "frequency", pd);
	}
	rc = CM_OK;
out:
	json_decref(chans);
	json_decref(topics);
	json_decref(stored_c);
	json_decref(stored_t);
	cm_prefs_row_clear(&pr);
	return rc;
}

cm_result
cm_prefs_put(const struct cm_ctx *cx, const char *id, json_t *in, const char *method,
    struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	json_t *cur = NULL, *chans, *topics, *v;
	uint8_t *key;
	size_t pi, c;
	int changed = 0;
	cm_result rc;

	memset(&pr, 0, sizeof(pr));
	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK ||
	    (rc = cm_prefs_get(cx, row.s_id, &cur, w)) != CM_OK)
		goto out;
	/* The new switches: the current ones, overridden by what was sent. */
	chans = json_object_get(cur, "channels");
	topics = json_object_get(cur, "topics");
	if ((v = json_object_get(in, "channels")) != NULL)
		json_object_update_existing(chans, v);
	if ((v = json_object_get(in, "topics")) != NULL)
		json_object_update_existing(topics, v);
	/*
	 * Every marketing purpose on every channel it uses is on when its
	 * channel is on and (for a topic's purpose) its topic is on. Write an
	 * event wherever that differs from what the ledger says now.
	 */
	for (pi = 0; pi < pol->pol_npurposes; pi++) {
		const struct cm_purpose *p = &pol->pol_purposes[pi];
		const struct cm_topic *t = topic_of(pol, pi);

		if (!p->pu_marketing)
			continue;
		for (c = 0; c < pol->pol_nchannels; c++) {
			const char *cid = pol->pol_channels[c].ch_id;
			bool want, g, any;
			struct cm_event_row ev;

			if (!(p->pu_channels & (UINT64_C(1) << c)))
				continue;
			want = json_is_true(json_object_get(chans, cid)) &&
			    (t == NULL || json_is_true(json_object_get(topics, t->tp_id)));
			if ((rc = effective(cx, row.s_id, p, cid, &g, &any)) != CM_OK)
				goto out;
			/* With no event, only consent-based purposes are off. */
			if (want == (any ? g : p->pu_basis != CM_BASIS_CONSENT))
				continue;
			/* A channel switch never gives consent nobody asked for. */
			if (want && t == NULL && p->pu_basis == CM_BASIS_CONSENT)
				continue;
			event_base(cx, &ev, row.s_id, p, cid, want ? CM_CONSENT_GRANTED :
			    CM_CONSENT_WITHDRAWN, 0, method, 0, cx->cx_actor);
			if ((rc = event_write(cx, key, &ev, NULL, NULL, true)) != CM_OK)
				goto out;
			changed++;
		}
	}
	if ((rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		goto out;
	free(pr.p_channels);
	free(pr.p_topics);
	pr.p_channels = json_dumps(chans, JSON_COMPACT | JSON_SORT_KEYS);
	pr.p_topics = json_dumps(topics, JSON_COMPACT | JSON_SORT_KEYS);
	if ((v = json_object_get(in, "frequency")) != NULL)
		snprintf(pr.p_frequency, sizeof(pr.p_frequency), "%s", json_string_value(v));
	if ((v = json_object_get(in, "paused_until")) != NULL) {
		int64_t t = 0;

		if (json_is_integer(v))
			t = json_integer_value(v);
		pr.p_paused_until = t;
	}
	if ((rc = cm_store_prefs_put(cx->cx_db, row.s_id, &pr, cx->cx_now)) != CM_OK)
		goto out;
	rc = audit(cx, "preferences.updated", row.s_id, key, json_pack("{s:i, s:s}",
	    "consent_events", changed, "method", method), json_pack("{s:O}", "preferences", in),
	    NULL);
out:
	json_decref(cur);
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
	struct cm_prefs_row pr;
	json_t *topics;
	uint8_t *key;
	char month[8];
	time_t t;
	struct tm tm;
	size_t i;
	cm_result rc;

	*withdrawn = 0;
	memset(&pr, 0, sizeof(pr));
	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	/* One all-channels withdrawal per marketing purpose: newer than any grant. */
	for (i = 0; i < pol->pol_npurposes; i++) {
		const struct cm_purpose *p = &pol->pol_purposes[i];
		struct cm_event_row ev;

		if (!p->pu_marketing)
			continue;
		event_base(cx, &ev, row.s_id, p, CM_ALL_CHANNELS, CM_CONSENT_WITHDRAWN, 0,
		    method, 0, cx->cx_actor);
		if ((rc = event_write(cx, key, &ev, NULL, NULL, true)) != CM_OK)
			goto out;
		(*withdrawn)++;
	}
	if ((rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		goto out;
	topics = json_object();
	for (i = 0; i < pol->pol_ntopics; i++)
		if (pol->pol_purposes[pol->pol_topics[i].tp_purpose].pu_marketing)
			json_object_set_new(topics, pol->pol_topics[i].tp_id, json_false());
	free(pr.p_topics);
	pr.p_topics = json_dumps(topics, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(topics);
	if ((rc = cm_store_prefs_put(cx->cx_db, row.s_id, &pr, cx->cx_now)) != CM_OK)
		goto out;
	t = (time_t)(cx->cx_now / 1000000);
	gmtime_r(&t, &tm);
	strftime(month, sizeof(month), "%Y-%m", &tm);
	if ((rc = cm_store_unsubscribe_count(cx->cx_db, month, reason)) != CM_OK)
		goto out;
	rc = audit(cx, "subject.unsubscribed", row.s_id, key, json_pack("{s:s, s:i, s:s}",
	    "reason", reason, "purposes", *withdrawn, "method", method),
	    json_pack("{s:s}", "comment", comment ? comment : ""), NULL);
out:
	cm_prefs_row_clear(&pr);
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_object(const struct cm_ctx *cx, const char *id, struct cm_why *w)
{
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	uint8_t *key;
	cm_result rc;

	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK ||
	    (rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		goto out;
	if (pr.p_objected_at == 0)
		pr.p_objected_at = cx->cx_now;
	rc = cm_store_prefs_put(cx->cx_db, row.s_id, &pr, cx->cx_now);
	cm_prefs_row_clear(&pr);
	if (rc == CM_OK)
		rc = audit(cx, "subject.objected", row.s_id, key,
		    json_pack("{s:s}", "scope", "direct_marketing"), NULL, NULL);
out:
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_restrict(const struct cm_ctx *cx, const char *id, bool on, struct cm_why *w)
{
	struct cm_subject_row row;
	uint8_t *key;
	cm_result rc;

	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) == CM_OK &&
	    (rc = cm_store_subject_set_state(cx->cx_db, row.s_id, on ? "restricted" : "active",
	    cx->cx_now)) == CM_OK)
		rc = audit(cx, on ? "subject.restricted" : "subject.unrestricted", row.s_id, key,
		    NULL, NULL, NULL);
	cm_key_release(key);
	return rc;
}

/* ---- erasure ---------------------------------------------------------------- */

struct erase_ids {
	const struct cm_ctx	*cx;
	int64_t			 suppressed;
	cm_result		 rc;
};

static int
erase_suppress(void *arg, const struct cm_ident_row *r)
{
	struct erase_ids *e = arg;
	char reason[16];
	int64_t since;
	cm_result rc;

	/* An existing suppression becomes "erased": the strongest reason. */
	rc = cm_store_suppression_get(e->cx->cx_db, r->i_type, r->i_blind, reason, &since);
	if (rc == CM_OK)
		rc = cm_store_suppression_delete(e->cx->cx_db, r->i_type, r->i_blind);
	else if (rc == CM_NOTFOUND)
		rc = CM_OK;
	if (rc == CM_OK)
		rc = cm_store_suppression_put(e->cx->cx_db, r->i_type, r->i_blind, "erased",
		    e->cx->cx_now);
	if (rc != CM_OK) {
		e->rc = rc;
		return 1;
	}
	e->suppressed++;
	return 0;
}

struct id_list {
	char	(*ids)[CM_SUBJECT_ID_LEN + 1];
	size_t	 n;
};

static int
collect_id(void *arg, const char *id)
{
	struct id_list *l = arg;

	l->ids = cm_reallocarray(l->ids, l->n + 1, sizeof(*l->ids));
	snprintf(l->ids[l->n++], CM_SUBJECT_ID_LEN + 1, "%s", id);
	return 0;
}

/*
 * Drops the audit pseudonym mapping and openings of ID and of every
 * subject merged into it (at any depth): the person's whole past in the
 * log becomes unlinkable.
 */
static cm_result
erase_pseudonyms(const struct cm_ctx *cx, const char *id, int depth)
{
	struct id_list l = { NULL, 0 };
	cm_result rc;
	size_t i;

	if (depth > 64)
		return CM_IOERR;
	if ((rc = cm_store_audit_forget_subject(cx->cx_db, id)) != CM_OK ||
	    (rc = cm_store_subjects_merged_into(cx->cx_db, id, collect_id, &l)) != CM_OK)
		goto out;
	for (i = 0; i < l.n && rc == CM_OK; i++)
		rc = erase_pseudonyms(cx, l.ids[i], depth + 1);
out:
	free(l.ids);
	return rc;
}

cm_result
cm_subject_erase(const struct cm_ctx *cx, const char *id, json_t **counts, struct cm_why *w)
{
	struct cm_subject_row row;
	struct erase_ids e;
	int64_t nids = 0, nattrs = 0, nev = 0;
	uint8_t *key;
	cm_result rc;

	*counts = NULL;
	key = cm_key_acquire();
	memset(&e, 0, sizeof(e));
	e.cx = cx;
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	if ((rc = cm_store_identifier_list(cx->cx_db, row.s_id, erase_suppress, &e)) != CM_OK ||
	    (rc = e.rc) != CM_OK)
		goto out;
	if ((rc = cm_store_subject_erase(cx->cx_db, row.s_id, &nids, &nattrs, &nev,
	    cx->cx_now)) != CM_OK ||
	    (rc = erase_pseudonyms(cx, row.s_id, 0)) != CM_OK)
		goto out;
	*counts = json_pack("{s:I, s:I, s:I, s:I}", "identifiers", (json_int_t)nids,
	    "suppressed", (json_int_t)e.suppressed, "profile_attributes", (json_int_t)nattrs,
	    "evidence", (json_int_t)nev);
	/* No subject on the entry: that would map a new pseudonym to it. */
	rc = audit(cx, "erasure.completed", NULL, NULL, json_incref(*counts), NULL, NULL);
out:
	if (rc != CM_OK) {
		json_decref(*counts);
		*counts = NULL;
	}
	cm_key_release(key);
	return rc;
}

/* ---- merge ---------------------------------------------------------------- */

struct cmerge {
	const struct cm_ctx	*cx;
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
	    (pt = open_evidence(m->kfrom, m->from, e->e_event_id, e->e_evidence,
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

		seal_evidence(m->kinto, m->into, e->e_event_id, pt, &m->sealed[m->n], &len);
		m->rows[m->n].e_evidence_len = len;
		cm_wipe(pt, strlen(pt));
		free(pt);
	}
	m->n++;
	return 0;
}

/* The effective row of (PURPOSE, CHANNEL) for SUBJECT into *OUT (e_seq 0: none). */
static cm_result
effective_row(const struct cm_ctx *cx, const char *subject, const char *purpose,
    const char *channel, struct cm_event_row *out)
{
	struct cm_event_row ch, all;
	cm_result rc;

	if ((rc = cm_store_current_pair(cx->cx_db, subject, purpose, channel, &ch,
	    &all)) != CM_OK)
		return rc;
	if (strcmp(channel, CM_ALL_CHANNELS) == 0)
		*out = all;
	else
		*out = ch.e_seq >= all.e_seq ? ch : all;
	return CM_OK;
}

static bool
row_granted(const struct cm_event_row *r)
{
	return strcmp(r->e_state, "granted") == 0;
}

static cm_result
merge_states(const struct cm_ctx *cx, const char *into, const char *from,
    const uint8_t *kinto, json_t *conflicts)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_event_row ein[CM_POLICY_MAX_CHANNELS + 1], efrom[CM_POLICY_MAX_CHANNELS + 1];
	struct cm_event_row target[CM_POLICY_MAX_CHANNELS + 1], now, ev;
	const char *chan[CM_POLICY_MAX_CHANNELS + 1];
	size_t pi, c, n;
	cm_result rc;

	for (pi = 0; pol != NULL && pi < pol->pol_npurposes; pi++) {
		const struct cm_purpose *p = &pol->pol_purposes[pi];

		/* All channels first, so channel events written after it win. */
		n = 0;
		chan[n++] = CM_ALL_CHANNELS;
		for (c = 0; c < pol->pol_nchannels; c++)
			if (p->pu_channels & (UINT64_C(1) << c))
				chan[n++] = pol->pol_channels[c].ch_id;
		for (c = 0; c < n; c++) {
			if ((rc = effective_row(cx, into, p->pu_id, chan[c], &ein[c])) != CM_OK ||
			    (rc = effective_row(cx, from, p->pu_id, chan[c], &efrom[c])) != CM_OK)
				return rc;
			memset(&target[c], 0, sizeof(target[c]));
			if (efrom[c].e_seq == 0)
				continue;
			if (ein[c].e_seq == 0) {
				target[c] = efrom[c];
				continue;
			}
			if (row_granted(&ein[c]) == row_granted(&efrom[c]))
				continue;
			target[c] = row_granted(&ein[c]) ? efrom[c] : ein[c];
			if ((rc = cm_store_conflict_add(cx->cx_db, into, from, p->pu_id, chan[c],
			    target[c].e_state, row_granted(&ein[c]) ? ein[c].e_state :
			    efrom[c].e_state, cx->cx_now)) != CM_OK)
				return rc;
			json_array_append_new(conflicts, json_pack("{s:s, s:s?, s:s, s:s}",
			    "purpose", p->pu_id, "channel", strcmp(chan[c], CM_ALL_CHANNELS) ?
			    chan[c] : NULL, "kept", target[c].e_state, "other", "granted"));
		}
		for (c = 0; c < n; c++) {
			enum cm_consent_state st;

			if (target[c].e_seq == 0)
				continue;
			if ((rc = effective_row(cx, into, p->pu_id, chan[c], &now)) != CM_OK)
				return rc;
			if (now.e_seq != 0 && row_granted(&now) == row_granted(&target[c]))
				continue;
			if (cm_consent_state_parse(target[c].e_state, &st) != 0)
				st = CM_CONSENT_WITHDRAWN;
			event_base(cx, &ev, into, p, chan[c], st, target[c].e_notice_version,
			    target[c].e_method, target[c].e_recorded_us, cx->cx_actor);
			if ((rc = event_write(cx, kinto, &ev, NULL, NULL, false)) != CM_OK)
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
	struct cm_prefs_row pin, pfrom;
	size_t i;
	cm_result rc;

	memset(&m, 0, sizeof(m));
	memset(&pin, 0, sizeof(pin));
	memset(&pfrom, 0, sizeof(pfrom));
	m.cx = cx;
	m.into = into;
	m.from = from;
	m.kinto = kinto;
	m.kfrom = kfrom;
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
	for (i = 0; i < m.n; i++)
		free(m.sealed[i]);
	free(m.sealed);
	m.sealed = NULL;
	m.n = 0;
	/*
	 * Current states, compared as the check sees them (the newer of a
	 * channel's own row and the all-channels row), for every channel of
	 * every purpose: where only FROM has a state it carries over; where they
	 * disagree the withdrawal or refusal wins and a conflict is recorded.
	 * Changes are written as fresh events, so no older row of either side
	 * can outrank them.
	 */
	if ((rc = merge_states(cx, into, from, kinto, conflicts)) != CM_OK)
		goto out;
	if ((rc = cm_store_current_clear(cx->cx_db, from)) != CM_OK ||
	    (rc = cm_store_conflicts_move(cx->cx_db, from, into)) != CM_OK)
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
		rc = cm_store_prefs_put(cx->cx_db, into, &pin, cx->cx_now);
	}
out:
	if (m.sealed != NULL)
		for (i = 0; i < m.n; i++)
			free(m.sealed[i]);
	free(m.sealed);
	free(m.rows);
	cm_prefs_row_clear(&pin);
	cm_prefs_row_clear(&pfrom);
	return rc;
}
