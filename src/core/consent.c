/* SPDX-License-Identifier: ISC */
/*
 * Recording and checking consent. Recording: one event per decision (GPC:
 * one per purpose marked gpc), written through the ledger (ledger.c) so
 * the projection follows collected_at and a back-filled event decides
 * nothing. A repeated request id is compared with a keyed hash of the
 * first request: the same request replays its result, another one is
 * refused. Import and api grants are refused while a suppression entry
 * binding the person would deny them; a fresh first-party grant lifts the
 * entry on its own identifier. Checking reads the facts with point
 * lookups in one snapshot and hands them to cm_decide(); it never writes
 * and never caches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/changes.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/util.h"
#include "ledger.h"

/*
 * The keyed hash of everything a consent write says, in canonical JSON:
 * what a repeated request id is compared with.
 */
static void
request_hash(const struct cm_ctx *cx, const struct cm_consent_input *in, uint8_t out[32])
{
	const struct cm_policy *pol = cx->cx_policy;
	json_t *o;
	char *t;

	o = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:I, s:I, s:O?}", "identifier",
	    in->ci_ident ? in->ci_ident->id_text : NULL, "subject_id", in->ci_subject,
	    "purpose", in->ci_purpose ? in->ci_purpose->pu_id : NULL, "channel",
	    in->ci_channel >= 0 ? pol->pol_channels[in->ci_channel].ch_id : NULL,
	    "state", cm_consent_state_name(in->ci_state), "method", in->ci_method,
	    "notice_version", (json_int_t)in->ci_notice_version, "collected_at",
	    (json_int_t)in->ci_collected_us, "evidence", in->ci_evidence);
	t = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (t == NULL) {
		memset(out, 0, 32);
		return;
	}
	cm_request_hash(cx->cx_keys, t, strlen(t), out);
	cm_wipe(t, strlen(t));
	free(t);
}

/*
 * Whether the earlier event E answered the same request as IN. Events
 * written before requests were hashed are compared field by field.
 */
static bool
same_request(const struct cm_ctx *cx, const struct cm_consent_input *in,
    const struct cm_event_row *e, const uint8_t hash[32])
{
	const struct cm_policy *pol = cx->cx_policy;
	const char *ch;

	if (e->e_has_request_hash)
		return cm_memeq(hash, e->e_request_hash, 32) == 0;
	ch = in->ci_channel >= 0 ? pol->pol_channels[in->ci_channel].ch_id : CM_ALL_CHANNELS;
	return strcmp(e->e_state, cm_consent_state_name(in->ci_state)) == 0 &&
	    strcmp(e->e_method, in->ci_method) == 0 && strcmp(e->e_channel, ch) == 0 &&
	    (in->ci_purpose == NULL || strcmp(e->e_purpose, in->ci_purpose->pu_id) == 0) &&
	    (in->ci_notice_version == 0 || in->ci_notice_version == e->e_notice_version) &&
	    (in->ci_collected_us == 0 || in->ci_collected_us == e->e_collected_us);
}

/* Whether EVIDENCE names the sale a soft opt-in rests on. */
static bool
has_sale_ref(json_t *evidence)
{
	json_t *v = json_object_get(evidence, "sale_reference");

	return json_is_string(v) && json_string_length(v) > 0;
}

/*
 * The own suppression entry of identifier IN (TYPE, BLIND) into LS when
 * the identifier has no owner (the owner's entries come with its subject).
 */
static cm_result
own_entry(const struct cm_ctx *cx, const struct cm_identifier *ident, const uint8_t blind[32],
    struct ledger_subject *ls, bool *found)
{
	struct cm_supp_row r;
	cm_result rc;

	*found = false;
	memset(&r, 0, sizeof(r));
	rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, r.sr_reason,
	    &r.sr_since);
	if (rc == CM_NOTFOUND)
		return CM_OK;
	if (rc != CM_OK)
		return rc;
	*found = true;
	snprintf(r.sr_type, sizeof(r.sr_type), "%s", ident->id_type);
	memcpy(r.sr_blind, blind, 32);
	if (ls->ls_nsupp < CM_SUPP_FACTS_MAX)
		ls->ls_supp[ls->ls_nsupp++] = r;
	else
		ls->ls_supp_overflow = true;
	return CM_OK;
}

/* Drops LS's entry for (TYPE, BLIND): it was just lifted. */
static void
forget_entry(struct ledger_subject *ls, const char *type, const uint8_t blind[32])
{
	int i;

	if ((i = ledger_supp_index(ls, type, blind)) >= 0)
		ls->ls_supp[i] = ls->ls_supp[--ls->ls_nsupp];
}

static cm_result
record_events(const struct cm_ctx *cx, const struct cm_consent_input *in, const char *subject,
    const uint8_t *key, struct cm_consent_result *res, struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	uint8_t hash[32];
	size_t i;
	cm_result rc;

	if (in->ci_request_id != NULL)
		request_hash(cx, in, hash);
	for (i = 0; i < pol->pol_npurposes; i++) {
		const struct cm_purpose *p = &pol->pol_purposes[i];
		struct cm_event_row ev;
		json_t *extra = NULL;

		if (strcmp(in->ci_method, "gpc") == 0 ? !p->pu_gpc : p != in->ci_purpose)
			continue;
		ledger_event_base(cx, &ev, subject, p, in->ci_channel >= 0 ?
		    pol->pol_channels[in->ci_channel].ch_id : CM_ALL_CHANNELS, in->ci_state,
		    in->ci_notice_version, in->ci_method, in->ci_collected_us, in->ci_client);
		ev.e_sale_ref = in->ci_state == CM_CONSENT_GRANTED && has_sale_ref(in->ci_evidence);
		if (in->ci_request_id != NULL && json_array_size(res->cr_event_ids) == 0) {
			snprintf(ev.e_request_id, sizeof(ev.e_request_id), "%s", in->ci_request_id);
			memcpy(ev.e_request_hash, hash, 32);
			ev.e_has_request_hash = true;
		}
		if (in->ci_ident != NULL)
			extra = json_pack("{s:s}", "identifier", in->ci_ident->id_text);
		rc = ledger_event_write(cx, key, &ev, in->ci_evidence, extra, true);
		json_decref(extra);
		if (rc != CM_OK)
			return rc;
		if (json_array_size(res->cr_event_ids) == 0)
			res->cr_event = ev;
		json_array_append_new(res->cr_event_ids, json_string(ev.e_event_id));
	}
	if (json_array_size(res->cr_event_ids) > 0)
		return CM_OK;
	/*
	 * A GPC signal where the policy ties no purpose to it. The person may
	 * have been created for it: the caller's transaction undoes that.
	 */
	cm_why_set(w, "not_gpc_purpose", "the policy ties no purpose to the Global Privacy "
	    "Control signal");
	return CM_INVALID;
}

/* Whether an import or api grant must be refused because LS is suppressed. */
static bool
grant_refused(const struct cm_ctx *cx, const struct cm_consent_input *in,
    const struct ledger_subject *ls)
{
	if (in->ci_state != CM_CONSENT_GRANTED || in->ci_purpose == NULL ||
	    (strcmp(in->ci_method, "import") != 0 && strcmp(in->ci_method, "api") != 0))
		return false;
	return ledger_suppressed_for(cx, ls, in->ci_purpose, in->ci_channel);
}

/* Who a record is about, and what binds them, found before writing. */
struct target {
	char			 subject[CM_SUBJECT_ID_LEN + 1];
	uint8_t			 blind[32];	/* of the identifier, if one was given */
	struct ledger_subject	 ls;
	struct cm_subject_row	 row;		/* the subject's, when owned */
	bool			 owned;		/* the subject exists */
	bool			 own;		/* the identifier has its own entry */
};

/*
 * A repeated request id answers with the first result, writing nothing:
 * CM_OK with cr_replayed set, CM_NOTFOUND when the id is new (or none was
 * given), CM_CONFLICT when it was used for a different request.
 */
static cm_result
request_replay(const struct cm_ctx *cx, const struct cm_consent_input *in,
    struct cm_consent_result *res, struct cm_why *w)
{
	uint8_t hash[32];
	cm_result rc;

	if (in->ci_request_id == NULL)
		return CM_NOTFOUND;
	rc = cm_store_event_by_request(cx->cx_db, in->ci_client, in->ci_request_id,
	    &res->cr_event);
	if (rc != CM_OK)
		return rc;
	request_hash(cx, in, hash);
	if (!same_request(cx, in, &res->cr_event, hash)) {
		cm_why_set(w, "request_id_reused", "this request_id was used for "
		    "a different request; use a new one");
		return CM_CONFLICT;
	}
	res->cr_replayed = true;
	json_array_append_new(res->cr_event_ids, json_string(res->cr_event.e_event_id));
	return CM_OK;
}

/* Finds the subject of an identifier (perhaps nobody yet) or of a subject id. */
static cm_result
find_target(const struct cm_ctx *cx, const struct cm_consent_input *in, struct target *t,
    struct cm_why *w)
{
	const struct cm_identifier *id = in->ci_ident;
	struct cm_subject_row row;
	struct cm_supp_row r;
	cm_result rc;

	if (id == NULL) {
		t->owned = true;
		if ((rc = cm_subject_load(cx, in->ci_subject, &row, w)) != CM_OK)
			return rc;
		snprintf(t->subject, sizeof(t->subject), "%s", row.s_id);
		return ledger_subject_read(cx, t->subject, &t->ls, &t->row);
	}
	cm_blind_index(cx->cx_keys, id->id_type, id->id_value, t->blind);
	rc = cm_store_identifier_owner(cx->cx_db, id->id_type, t->blind, t->subject);
	if (rc == CM_NOTFOUND)
		return own_entry(cx, id, t->blind, &t->ls, &t->own);
	if (rc != CM_OK)
		return rc;
	t->owned = true;
	if ((rc = ledger_subject_read(cx, t->subject, &t->ls, &t->row)) != CM_OK)
		return rc;
	/*
	 * The subject's entries include those on each of its identifiers, this
	 * one among them (it is theirs in this transaction): asked for only
	 * when more entries bind them than were kept.
	 */
	if (!t->ls.ls_supp_overflow) {
		t->own = ledger_supp_index(&t->ls, id->id_type, t->blind) >= 0;
		return CM_OK;
	}
	rc = cm_store_suppression_get(cx->cx_db, id->id_type, t->blind, r.sr_reason,
	    &r.sr_since);
	if (rc != CM_OK && rc != CM_NOTFOUND)
		return rc;
	t->own = rc == CM_OK;
	return CM_OK;
}

/* The person has just asked again, first hand: lift their entry, say so. */
static cm_result
lift_own_entry(const struct cm_ctx *cx, const struct cm_consent_input *in, struct target *t)
{
	const struct cm_identifier *id = in->ci_ident;
	char reason[16], tag[33];
	int64_t since;
	uint64_t idx;
	cm_result rc;

	if ((rc = cm_store_suppression_get(cx->cx_db, id->id_type, t->blind, reason,
	    &since)) != CM_OK ||
	    (rc = cm_store_suppression_delete(cx->cx_db, id->id_type, t->blind)) != CM_OK ||
	    (rc = cm_store_suppression_unbind(cx->cx_db, id->id_type, t->blind)) != CM_OK)
		return rc;
	ledger_supp_tag(cx, id->id_type, t->blind, tag);
	if ((rc = cm_ctx_audit(cx, "suppression.lifted", NULL, NULL,
	    json_pack("{s:s, s:s, s:s, s:s}", "type", id->id_type, "reason", reason, "by",
	    in->ci_method, "tag", tag), NULL, &idx)) != CM_OK ||
	    (rc = cm_suppression_change(cx, id->id_type, t->blind, "lifted", reason,
	    in->ci_method, idx)) != CM_OK)
		return rc;
	forget_entry(&t->ls, id->id_type, t->blind);
	return CM_OK;
}

cm_result
cm_consent_record(const struct cm_ctx *cx, const struct cm_consent_input *in,
    struct cm_consent_result *res, struct cm_why *w)
{
	struct cm_subject_row row;
	struct target t;
	uint8_t *key;
	bool first_party = false;
	cm_result rc;

	memset(res, 0, sizeof(*res));
	memset(&t, 0, sizeof(t));
	res->cr_event_ids = json_array();
	key = cm_key_acquire();
	(void)cm_consent_method_valid(in->ci_method, &first_party);
	if (in->ci_purpose != NULL && in->ci_purpose->pu_basis == CM_BASIS_SOFT_OPT_IN &&
	    in->ci_state == CM_CONSENT_GRANTED && !has_sale_ref(in->ci_evidence)) {
		cm_why_set(w, "sale_reference", "a soft opt-in rests on a sale: name it in "
		    "evidence.sale_reference");
		rc = CM_INVALID;
		goto out;
	}
	if ((rc = request_replay(cx, in, res, w)) != CM_NOTFOUND ||
	    (rc = find_target(cx, in, &t, w)) != CM_OK)
		goto out;
	if (t.own && first_party && in->ci_state == CM_CONSENT_GRANTED &&
	    (rc = lift_own_entry(cx, in, &t)) != CM_OK)
		goto out;
	if (grant_refused(cx, in, &t.ls)) {
		cm_why_set(w, "suppressed", "this person is on the suppression list; only a "
		    "fresh first-party grant lifts it");
		rc = CM_CONFLICT;
		goto out;
	}
	if (!t.owned) {
		struct cm_new_ident ni;

		memset(&ni, 0, sizeof(ni));
		ni.ni_id = *in->ci_ident;
		ni.ni_source = in->ci_method;
		if ((rc = cm_subject_create(cx, &ni, 1, NULL, t.subject, w)) != CM_OK)
			goto out;
		res->cr_subject_created = true;
	}
	/* An existing subject's row was read by find_target, in this transaction. */
	if ((rc = t.owned ? cm_subject_unlock(cx, &t.row, key, w) :
	    cm_subject_open(cx, t.subject, &row, key, w)) != CM_OK)
		goto out;
	rc = record_events(cx, in, t.owned ? t.row.s_id : row.s_id, key, res, w);
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
	struct cm_supp_fact facts[CM_SUPP_FACTS_MAX + 1];
	struct cm_decision_facts f;
	struct ledger_subject ls;
	struct cm_check_row k;
	struct conflicts_ctx cc;
	uint8_t blind[32];
	bool found;
	int ci = -1;
	cm_result rc;

	memset(out, 0, sizeof(*out));
	memset(&ls, 0, sizeof(ls));
	if (channel != NULL)
		ci = cm_policy_channel_index(cx->cx_policy, channel);
	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	rc = cm_store_check_facts(cx->cx_db, ident->id_type, blind, p->pu_id,
	    channel ? channel : CM_ALL_CHANNELS, &k);
	if (rc == CM_NOTFOUND) {
		/* Nobody has it: judged by its own entry, then unknown_subject. */
		if ((rc = own_entry(cx, ident, blind, &ls, &found)) != CM_OK)
			return rc;
		memset(&k, 0, sizeof(k));
		ledger_facts(cx, &ls, p, ci, &k.k_channel, &k.k_all, &f, facts);
		f.df_known = false;
	} else if (rc == CM_OK) {
		memcpy(out->ck_subject, k.k_subject, sizeof(out->ck_subject));
		ls.ls_state = k.k_state;
		ls.ls_objected_at = k.k_objected_at;
		/* Every entry binding the person, on whichever identifier. */
		if (k.k_from_row) {
			memcpy(ls.ls_supp, k.k_supp, k.k_nsupp * sizeof(k.k_supp[0]));
			ls.ls_nsupp = k.k_nsupp;
			ls.ls_supp_overflow = k.k_supp_overflow;
		} else if ((rc = cm_store_subject_suppressions(cx->cx_db, k.k_subject,
		    ledger_supp_add, &ls)) != CM_OK) {
			return rc;
		}
		ledger_facts(cx, &ls, p, ci, &k.k_channel, &k.k_all, &f, facts);
		f.df_paused_until = k.k_paused_until;
		f.df_in_holdout = cm_holdout_member(cx->cx_keys, out->ck_subject, p);
	} else {
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
	bool		 evidence;
	bool		 failed;
	int64_t		 after;		/* history: events after this seq only */
	int		 limit;		/* 0: every one */
	int		 n;
	int64_t		 last;		/* seq of the last event listed */
	bool		 more;		/* one more was there */
};

static int
list_event(void *arg, const struct cm_event_row *e)
{
	struct list_ctx *l = arg;
	char rec[32], col[32], *ev;
	json_t *o, *evj = NULL;

	if (l->history && e->e_seq <= l->after)
		return 0;
	if (l->limit > 0 && l->n == l->limit) {
		l->more = true;
		return 1;
	}
	l->n++;
	l->last = e->e_seq;

	cm_time_format(rec, e->e_recorded_us);
	cm_time_format(col, e->e_collected_us);
	if (l->evidence && e->e_evidence != NULL) {
		if ((ev = ledger_evidence_open(l->key, e->e_subject, e->e_event_id,
		    e->e_evidence, e->e_evidence_len)) == NULL) {
			l->failed = true;
			return 1;
		}
		evj = json_loads(ev, 0, NULL);
		cm_wipe(ev, strlen(ev));
		free(ev);
	}
	o = json_pack("{s:s, s:s, s:s?, s:s, s:I, s:s, s:s, s:s}", "event_id", e->e_event_id,
	    "purpose", e->e_purpose, "channel", strcmp(e->e_channel, CM_ALL_CHANNELS) ?
	    e->e_channel : NULL, "state", e->e_state, "notice_version",
	    (json_int_t)e->e_notice_version, "method", e->e_method, "recorded_at", rec,
	    "collected_at", col);
	if (l->history) {
		json_object_set_new(o, "audit_index", json_integer(e->e_audit_index));
		json_object_set_new(o, "superseded", json_boolean(e->e_superseded));
		if (l->evidence)
			json_object_set_new(o, "evidence", evj ? evj : json_null());
	}
	json_array_append_new(l->list, o);
	return 0;
}

cm_result
cm_consent_list(const struct cm_ctx *cx, const char *id, bool history, bool evidence,
    json_t **out, struct cm_why *w)
{
	return cm_consent_history(cx, id, history, evidence, NULL, 0, out, w);
}

/* A history cursor: the seq of the last event of the page. */
#define HISTORY_CURSOR	"h"

cm_result
cm_consent_history(const struct cm_ctx *cx, const char *id, bool history, bool evidence,
    const char *cursor, int limit, json_t **out, struct cm_why *w)
{
	struct cm_subject_row row;
	struct list_ctx l;
	uint8_t *key;
	char next[32];
	cm_result rc;

	*out = NULL;
	key = cm_key_acquire();
	memset(&l, 0, sizeof(l));
	l.list = json_array();
	l.key = key;
	l.history = history;
	l.evidence = history && evidence;
	l.limit = limit;
	if (cursor != NULL && cm_cursor_parse(cursor, HISTORY_CURSOR, &l.after) != 0) {
		cm_why_set(w, "invalid_parameter", "not a cursor this service gave");
		if (w != NULL)
			snprintf(w->w_field, sizeof(w->w_field), "cursor");
		rc = CM_INVALID;
		goto out;
	}
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	rc = history ? cm_store_events_list(cx->cx_db, row.s_id, list_event, &l) :
	    cm_store_current_list(cx->cx_db, row.s_id, list_event, &l);
	if (rc == CM_OK && l.failed)
		rc = CM_IOERR;
	cm_cursor_format(next, sizeof(next), HISTORY_CURSOR, l.last);
	if (rc == CM_OK && history)
		*out = json_pack("{s:s, s:O, s:s?}", "subject_id", row.s_id, "events", l.list,
		    "next_cursor", l.more ? next : NULL);
	else if (rc == CM_OK)
		*out = json_pack("{s:s, s:O}", "subject_id", row.s_id, "consents", l.list);
out:
	json_decref(l.list);
	cm_key_release(key);
	return rc;
}
