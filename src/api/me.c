/* SPDX-License-Identifier: ISC */
/*
 * The preference centre's own API (SPEC §7 "Shopper"): what a shopper's
 * session may read and change about the one person it was started for,
 * /v1/me and below. The session cookie names the person; every write also
 * carries the session's CSRF token (checked before any handler here runs,
 * src/http/auth.c). Changes are recorded with the actor "shopper" and the
 * method preference_center. A request carrying Sec-GPC: 1 is honoured
 * before the change it asks for (consentd/shopper.h), so an explicit
 * choice in the same request wins over the signal.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/identifier.h"
#include "consentd/outbox.h"
#include "consentd/policy.h"
#include "consentd/shopper.h"
#include "consentd/subject.h"
#include "consentd/util.h"

#define ME_SOURCE	"preference_center"

/* Whether the request carries the Global Privacy Control signal. */
static bool
gpc_signal(struct cm_request *rq)
{
	const char *v = cm_req_header(rq, "Sec-GPC");

	return v != NULL && strcmp(v, "1") == 0;
}

/* The session's context: its subject's actor, or a 503 reply and false. */
static bool
me_ctx(struct cm_request *rq, struct cm_ctx *cx)
{
	if (!cm_api_ctx(rq, cx))
		return false;
	snprintf(cx->cx_actor, sizeof(cx->cx_actor), "shopper");
	return true;
}

/* Bytes of the first UTF-8 character of S. */
static size_t
first_char(const char *s)
{
	size_t n = 1;

	while (s[n] != '\0' && ((unsigned char)s[n] & 0xc0) == 0x80)
		n++;
	return n;
}

/*
 * VALUE of an identifier of TYPE, masked for the page: an email keeps the
 * first character and the domain, any other value its last two
 * characters (a phone also its "+" and country code); enough for the
 * person to recognise it, not enough to read it off a screen.
 */
static json_t *
mask_identifier(const char *type, const char *value)
{
	struct cm_buf b = { NULL, 0, 0 };
	const char *at = strchr(value, '@');
	size_t n = strlen(value), keep_head = 0, keep_tail = 2, i;
	json_t *out;

	if (strcmp(type, "email") == 0 && at != NULL && at > value) {
		cm_buf_appendf(&b, "%s:%.*s***%s", type, (int)first_char(value), value, at);
	} else {
		if (strcmp(type, "phone") == 0 && n > 8)
			keep_head = 3;
		if (n <= keep_head + keep_tail + 2)
			keep_head = keep_tail = 0;
		cm_buf_appendf(&b, "%s:%.*s", type, (int)keep_head, value);
		for (i = keep_head; i < n - keep_tail; i++)
			if (((unsigned char)value[i] & 0xc0) != 0x80)
				cm_buf_append(&b, "*", 1);
		cm_buf_appendf(&b, "%s", value + n - keep_tail);
	}
	out = json_string(b.b_data);
	cm_wipe(b.b_data, b.b_len);
	cm_buf_free(&b);
	return out;
}

/* The subject's identifiers, masked. */
static cm_result
me_identifiers(const struct cm_ctx *cx, const char *subject, json_t **out, struct cm_why *w)
{
	json_t *ids = NULL, *it;
	const char *text, *colon;
	char type[65];
	size_t i;
	cm_result rc;

	*out = json_array();
	if ((rc = cm_subject_identifiers(cx, subject, &ids, w)) != CM_OK)
		return rc;
	json_array_foreach(ids, i, it) {
		text = json_string_value(json_object_get(it, "identifier"));
		if (text == NULL || (colon = strchr(text, ':')) == NULL ||
		    (size_t)(colon - text) >= sizeof(type))
			continue;
		snprintf(type, sizeof(type), "%.*s", (int)(colon - text), text);
		json_array_append_new(*out, json_pack("{s:s, s:o, s:b}", "type", type,
		    "masked", mask_identifier(type, colon + 1), "verified",
		    json_is_true(json_object_get(it, "verified"))));
		cm_wipe((char *)(uintptr_t)text, strlen(text));
	}
	json_decref(ids);
	return CM_OK;
}

/* The purposes a GPC signal withdraws, for the page to name. */
static json_t *
gpc_purposes(const struct cm_policy *pol)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < pol->pol_npurposes; i++)
		if (pol->pol_purposes[i].pu_gpc)
			json_array_append_new(a, json_string(pol->pol_purposes[i].pu_id));
	return a;
}

/* What GET /v1/me shows, read in the caller's snapshot. */
static cm_result
me_read(struct cm_request *rq, const struct cm_ctx *cx, const char *subject,
    struct cm_subject_row *row, json_t **ids, json_t **prefs, json_t **cons,
    json_t **systems, struct cm_session_grant *g, struct cm_why *w)
{
	struct cm_app *app = cm_req_app(rq);
	cm_result rc;

	if ((rc = cm_subject_load(cx, subject, row, w)) != CM_OK ||
	    (rc = me_identifiers(cx, subject, ids, w)) != CM_OK ||
	    (rc = cm_prefs_get(cx, subject, prefs, w)) != CM_OK ||
	    (rc = cm_consent_list(cx, subject, false, false, cons, w)) != CM_OK ||
	    (rc = cm_outbox_consent_status(cx, subject, systems)) != CM_OK)
		return rc;
	return cm_session_verify(app->app_store, app->app_keys, cm_req_session(rq), g);
}

void
cm_api_me_get(struct cm_request *rq)
{
	const char *subject = cm_req_subject(rq);
	struct cm_app *app = cm_req_app(rq);
	struct cm_subject_row row;
	char csrf[CM_SESSION_ID_LEN + 1], exp[32];
	json_t *ids = NULL, *prefs = NULL, *cons = NULL, *systems = NULL, *out;
	struct cm_session_grant g;
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!me_ctx(rq, &cx))
		return;
	/* One snapshot for the whole page (nested in the server's, if it has one). */
	if ((rc = cm_db_read_begin(cx.cx_db)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	rc = me_read(rq, &cx, subject, &row, &ids, &prefs, &cons, &systems, &g, &w);
	cm_db_read_end(cx.cx_db);
	if (rc != CM_OK) {
		json_decref(ids);
		json_decref(prefs);
		json_decref(cons);
		json_decref(systems);
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	json_object_del(prefs, "subject_id");
	cm_session_csrf(app->app_keys, cm_req_session(rq), csrf);
	cm_time_format(exp, g.sg_expires_us);
	out = json_pack("{s:s, s:o, s:o, s:O, s:s, s:s, s:{s:b, s:b, s:o}}",
	    "state", cm_subject_state_name(row.s_state), "identifiers", ids,
	    "preferences", prefs, "consents", json_object_get(cons, "consents"),
	    "csrf_token", csrf, "session_expires_at", exp,
	    "gpc", "signal", gpc_signal(rq), "honoured", 1, "purposes",
	    gpc_purposes(app->app_policy));
	/* Whether each downstream system applied the person's last change. */
	json_object_set_new(out, "systems", systems);
	json_decref(cons);
	cm_wipe(csrf, sizeof(csrf));
	cm_reply_json(rq, 200, out);
}

/* Begins the write of a session request, honouring its GPC signal first. */
static bool
me_write_begin(struct cm_request *rq, struct cm_ctx *cx)
{
	struct cm_why w;
	bool applied;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!me_ctx(rq, cx) || !cm_api_tx_begin(rq, cx))
		return false;
	if (gpc_signal(rq) &&
	    (rc = cm_shopper_gpc(cx, cm_req_subject(rq), &applied, &w)) != CM_OK) {
		cm_db_rollback(cx->cx_db);
		cm_api_fail(rq, rc, &w, NULL);
		return false;
	}
	return true;
}

void
cm_api_me_prefs_put(struct cm_request *rq)
{
	const char *subject = cm_req_subject(rq);
	struct cm_why w;
	struct cm_ctx cx;
	json_t *in, *out;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((in = cm_api_prefs_validate(rq, cm_req_json(rq))) == NULL)
		return;
	if (!me_write_begin(rq, &cx)) {
		json_decref(in);
		return;
	}
	rc = cm_api_tx_end(&cx, cm_prefs_put(&cx, subject, in, ME_SOURCE, &w));
	json_decref(in);
	if (rc == CM_OK)
		rc = cm_prefs_get(&cx, subject, &out, &w);
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	json_object_del(out, "subject_id");
	cm_reply_json(rq, 200, out);
}

void
cm_api_me_unsubscribe(struct cm_request *rq)
{
	const char *reason = NULL, *comment = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	int n = 0;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_unsubscribe_body(rq, &reason, &comment))
		return;
	if (!me_write_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_unsubscribe(&cx, cm_req_subject(rq),
	    reason ? reason : "not_given", comment, ME_SOURCE, &n, &w));
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:i, s:s}", "purposes_withdrawn", n, "reason",
	    reason ? reason : "not_given"));
}

/* A request as the shopper sees it: no subject, source or timeline actors. */
static json_t *
me_request_json(json_t *r)
{
	static const char *const keep[] = { "id", "type", "status", "received_at", "due_at",
	    "closed_at", NULL };
	json_t *o = json_object(), *v;
	size_t i;

	for (i = 0; keep[i] != NULL; i++)
		if ((v = json_object_get(r, keep[i])) != NULL)
			json_object_set(o, keep[i], v);
	return o;
}

/*
 * The identifier a request made through the session is filed under: the
 * first verified email, else the first email, else the first identifier.
 * Parsed into ID; CM_NOTFOUND when the record has none.
 */
static cm_result
me_request_identifier(const struct cm_ctx *cx, const char *subject, struct cm_identifier *id,
    struct cm_why *w)
{
	json_t *ids = NULL, *it, *best = NULL;
	const char *t;
	char why[160];
	size_t i;
	int score, best_score = -1;
	cm_result rc;

	if ((rc = cm_subject_identifiers(cx, subject, &ids, w)) != CM_OK)
		return rc;
	json_array_foreach(ids, i, it) {
		t = json_string_value(json_object_get(it, "identifier"));
		score = t == NULL ? -1 : strncmp(t, "email:", 6) != 0 ? 0 :
		    json_is_true(json_object_get(it, "verified")) ? 2 : 1;
		if (score > best_score) {
			best_score = score;
			best = it;
		}
	}
	rc = CM_NOTFOUND;
	if (best != NULL) {
		t = json_string_value(json_object_get(best, "identifier"));
		rc = cm_identifier_parse(t, strlen(t), cx->cx_policy, id, why, sizeof(why));
		rc = rc == CM_OK ? CM_OK : CM_IOERR;
	}
	json_array_foreach(ids, i, it)
		if ((t = json_string_value(json_object_get(it, "identifier"))) != NULL)
			cm_wipe((char *)(uintptr_t)t, strlen(t));
	json_decref(ids);
	if (rc == CM_NOTFOUND)
		cm_why_set(w, "no_identifier", "there is no address on your record to file "
		    "the request under; please contact us");
	return rc;
}

cm_result
cm_api_me_file_request(struct cm_request *rq, const struct cm_ctx *cx, const char *subject,
    const char *type, json_t **out, bool *existing, struct cm_why *w)
{
	struct cm_dsr_input in;
	struct cm_identifier id;
	json_t *done = NULL;
	cm_result rc;

	*out = NULL;
	*existing = false;
	memset(&in, 0, sizeof(in));
	memset(&id, 0, sizeof(id));
	if (cm_dsr_type_parse(type, &in.di_type) != 0 ||
	    (in.di_type != CM_DSR_ACCESS && in.di_type != CM_DSR_ERASURE)) {
		cm_why_set(w, "unknown_type", "the preference centre takes access and "
		    "erasure requests");
		return CM_INVALID;
	}
	in.di_jurisdiction = cm_req_app(rq)->app_policy->pol_jurisdiction;
	in.di_source = ME_SOURCE;
	/* The session is the proof of identity (SPEC §8). */
	in.di_verified = true;
	in.di_ident = &id;
	if ((rc = me_request_identifier(cx, subject, &id, w)) == CM_OK)
		rc = cm_dsr_create(cx, &in, out, existing, w);
	cm_wipe(&id, sizeof(id));
	/*
	 * An access request needs no judgement a session could not make: the
	 * session proved who asks, and the package holds only what the person
	 * may see. It is processed at once so the package is there to
	 * download. An erasure cannot be undone, so it waits for the DPO.
	 */
	if (rc == CM_OK && !*existing && in.di_type == CM_DSR_ACCESS) {
		rc = cm_dsr_process(cx, json_string_value(json_object_get(*out, "id")),
		    &done, w);
		if (rc == CM_OK) {
			json_decref(*out);
			*out = done;
		}
	}
	return rc;
}

void
cm_api_me_request_create(struct cm_request *rq)
{
	static const char *const fields[] = { "type", NULL };
	const char *type = NULL;
	json_t *body = cm_req_json(rq), *out = NULL;
	enum cm_dsr_type t;
	struct cm_why w;
	struct cm_ctx cx;
	bool existing = false;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "type", true, 32, &type))
		return;
	if (cm_dsr_type_parse(type, &t) != 0 || (t != CM_DSR_ACCESS && t != CM_DSR_ERASURE)) {
		cm_reply_error(rq, 422, "unknown_type", "type", "the preference centre takes "
		    "access and erasure requests");
		return;
	}
	if (!me_write_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_api_me_file_request(rq, &cx, cm_req_subject(rq), type,
	    &out, &existing, &w));
	if (rc != CM_OK) {
		json_decref(out);
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, existing ? 200 : 201, me_request_json(out));
	json_decref(out);
}

void
cm_api_me_requests(struct cm_request *rq)
{
	struct cm_dsr_filter f;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *all = NULL, *list, *r;
	size_t i;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	memset(&f, 0, sizeof(f));
	f.df_status = f.df_type = -1;
	f.df_subject = cm_req_subject(rq);
	f.df_limit = 500;
	if (!me_ctx(rq, &cx))
		return;
	if ((rc = cm_dsr_list(&cx, &f, &all, &w)) != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	list = json_array();
	json_array_foreach(json_object_get(all, "requests"), i, r)
		json_array_append_new(list, me_request_json(r));
	json_decref(all);
	cm_reply_json(rq, 200, json_pack("{s:o}", "requests", list));
}

void
cm_api_me_logout(struct cm_request *rq)
{
	static const char cookie[] = CM_SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
	    "SameSite=Strict";
	const char *const hdrs[] = { "Set-Cookie", cookie, NULL };
	struct cm_ctx cx;
	cm_result rc;

	if (!me_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_session_end(&cx, cm_req_session(rq)));
	if (rc != CM_OK && rc != CM_NOTFOUND) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_page(rq, 200, "application/json; charset=utf-8", "{\"ended\":true}",
	    strlen("{\"ended\":true}"), NULL, hdrs);
}
