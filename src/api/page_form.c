/* SPDX-License-Identifier: ISC */
/*
 * The forms of the server-rendered preference centre (src/api/page.c),
 * for browsers without JavaScript: application/x-www-form-urlencoded
 * posts that carry the session's CSRF token as the hidden field
 * csrf_token (the cookie alone, which the browser adds to any request,
 * never writes) and answer 303 back to /preferences (POST-redirect-GET).
 * They make the same changes as the JSON routes of /v1/me (src/api/me.c),
 * with the actor "shopper" and the method preference_center, and honour
 * Sec-GPC: 1 first in the same way. A form that is not one of ours (an
 * unknown field, a value not offered, a repeated field) is a 400 page and
 * writes nothing.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/shopper.h"
#include "consentd/util.h"
#include "page_int.h"

#define FORM_FIELDS_MAX	64
#define FORM_VALUE_MAX	1000
#define FORM_METHOD	"preference_center"

json_t *
cm_api_form_parse(const char *body, size_t len)
{
	json_t *o = json_object();
	const char *p = body, *end = body + len, *amp, *eq;
	char *raw, *k, *v, *s;
	size_t n, count = 0;

	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		n = amp ? (size_t)(amp - p) : (size_t)(end - p);
		if (n > 0) {
			raw = cm_calloc(1, n + 1);
			memcpy(raw, p, n);
			for (s = raw; *s != '\0'; s++)
				if (*s == '+')
					*s = ' ';
			eq = strchr(raw, '=');
			k = cm_percent_decode(raw, eq ? (size_t)(eq - raw) : strlen(raw));
			v = cm_percent_decode(eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0);
			free(raw);
			if (k == NULL || v == NULL || *k == '\0' || json_object_get(o, k) != NULL ||
			    strlen(v) > FORM_VALUE_MAX || ++count > FORM_FIELDS_MAX ||
			    json_object_set_new(o, k, json_string(v)) != 0) {
				free(k);
				free(v);
				json_decref(o);
				return NULL;
			}
			free(k);
			free(v);
		}
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	return o;
}

/* Replies STATUS with a page saying KEY's text, and a way back. */
static void
form_fail(struct page *pg, unsigned status, const char *key)
{
	PAGE_PUT(&pg->pg_out, "<p class=\"error\" role=\"alert\">");
	page_text(pg, key);
	PAGE_PUT(&pg->pg_out, "</p><p><a href=\"/preferences\">");
	page_text(pg, "back");
	PAGE_PUT(&pg->pg_out, "</a></p>");
	page_finish(pg, status);
}

/* 303 to /preferences?done=DONE. */
static void
form_done(struct page *pg, const char *done, const char *cookie)
{
	char loc[64];
	const char *const hdrs[] = { "Location", loc, cookie ? "Set-Cookie" : NULL, cookie,
	    NULL };

	snprintf(loc, sizeof(loc), "/preferences?done=%s", done);
	cm_reply_page(pg->pg_rq, 303, "text/plain; charset=utf-8", "see /preferences\n",
	    17, NULL, hdrs);
	page_end(pg);
}

/*
 * The common start of every form: its type, its fields, the session and
 * its CSRF token. On false a reply went out and PG is ended.
 */
static bool
form_begin(struct cm_request *rq, struct page *pg, json_t **form)
{
	const char *ct = cm_req_header(rq, "Content-Type"), *body, *tok;
	size_t len = 0;
	cm_result rc;

	*form = NULL;
	page_begin(rq, pg);
	if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    (ct[33] != '\0' && ct[33] != ';')) {
		form_fail(pg, 415, "error_form");
		return false;
	}
	body = cm_req_body(rq, &len);
	if ((*form = cm_api_form_parse(body ? body : "", len)) == NULL) {
		form_fail(pg, 400, "error_form");
		return false;
	}
	if ((rc = page_session(rq, pg)) != CM_OK) {
		json_decref(*form);
		*form = NULL;
		if (rc == CM_NOTFOUND) {
			form_fail(pg, 401, "no_session");
		} else {
			page_end(pg);
			cm_reply_store_error(rq, rc);
		}
		return false;
	}
	tok = json_string_value(json_object_get(*form, "csrf_token"));
	if (tok == NULL || strlen(tok) != CM_SESSION_ID_LEN ||
	    cm_memeq(tok, pg->pg_csrf, CM_SESSION_ID_LEN) != 0) {
		json_decref(*form);
		*form = NULL;
		form_fail(pg, 403, "error_csrf");
		return false;
	}
	json_object_del(*form, "csrf_token");
	return true;
}

/* Begins the write, honouring Sec-GPC: 1 first (as src/api/me.c does). */
static cm_result
form_tx_begin(struct page *pg, struct cm_ctx *cx, struct cm_why *w)
{
	const char *gpc = cm_req_header(pg->pg_rq, "Sec-GPC");
	bool applied;
	cm_result rc;

	if (!cm_api_ctx(pg->pg_rq, cx)) {
		pg->pg_replied = true;
		return CM_IOERR;
	}
	snprintf(cx->cx_actor, sizeof(cx->cx_actor), "shopper");
	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK)
		return rc;
	if (gpc != NULL && strcmp(gpc, "1") == 0 &&
	    (rc = cm_shopper_gpc(cx, pg->pg_subject, &applied, w)) != CM_OK)
		cm_db_rollback(cx->cx_db);
	return rc;
}

/* The page for a failed domain call. */
static void
form_result_fail(struct page *pg, cm_result rc)
{
	if (pg->pg_replied) {
		page_end(pg);
		return;
	}
	switch (rc) {
	case CM_INVALID:
		form_fail(pg, 400, "error_form");
		break;
	case CM_NOTFOUND:
	case CM_CONFLICT:
		form_fail(pg, 409, "error_state");
		break;
	default:
		form_fail(pg, 503, "error_busy");
		break;
	}
}

/*
 * Turns the save form into a preferences document holding only what
 * differs from CUR (the switches are all in the form, on or absent):
 * src/core/prefs.c then writes an event exactly for each switch the
 * person moved. NULL when a field is not one the page offers.
 */
static json_t *
form_prefs(const struct cm_policy *pol, json_t *form, json_t *cur)
{
	json_t *out = json_object(), *topics = json_object(), *chans = json_object(), *v;
	const char *k, *s, *cp;
	char day[32], key[96];
	int64_t us;
	bool on;
	int t;

	json_object_foreach(form, k, v) {
		s = json_string_value(v);
		if (strncmp(k, "topic.", 6) == 0 && (t = cm_policy_topic_index(pol, k + 6)) >= 0 &&
		    page_topic_switchable(pol, (size_t)t) && strcmp(s, "on") == 0)
			continue;
		if (strncmp(k, "channel.", 8) == 0 && page_channel_shown(pol, k + 8) &&
		    strcmp(s, "on") == 0)
			continue;
		if (strcmp(k, "frequency") == 0 && cm_policy_frequency_index(pol, s) >= 0) {
			cp = json_string_value(json_object_get(cur, "frequency"));
			if (cp == NULL || strcmp(cp, s) != 0)
				json_object_set_new(out, "frequency", json_string(s));
			continue;
		}
		if (strcmp(k, "paused_until") == 0) {
			cp = json_string_value(json_object_get(cur, "paused_until"));
			if (*s == '\0') {
				if (cp != NULL)
					json_object_set_new(out, "paused_until", json_null());
				continue;
			}
			snprintf(day, sizeof(day), "%.10sT00:00:00Z", s);
			if (strlen(s) == 10 && cm_api_parse_time(day, &us) == 0) {
				if (cp == NULL || strncmp(cp, s, 10) != 0)
					json_object_set_new(out, "paused_until",
					    json_integer(us));
				continue;
			}
		}
		goto bad;
	}
	json_object_foreach(json_object_get(cur, "topics"), k, v) {
		t = cm_policy_topic_index(pol, k);
		if (t < 0 || !page_topic_switchable(pol, (size_t)t))
			continue;
		/* Policy ids are at most 64 characters: the name always fits. */
		snprintf(key, sizeof(key), "topic.%s", k);
		on = json_object_get(form, key) != NULL;
		if (on != json_is_true(v))
			json_object_set_new(topics, k, json_boolean(on));
	}
	json_object_foreach(json_object_get(cur, "channels"), k, v) {
		if (!page_channel_shown(pol, k))
			continue;
		snprintf(key, sizeof(key), "channel.%s", k);
		on = json_object_get(form, key) != NULL;
		if (on != json_is_true(v))
			json_object_set_new(chans, k, json_boolean(on));
	}
	json_object_set_new(out, "topics", topics);
	json_object_set_new(out, "channels", chans);
	return out;
bad:
	json_decref(topics);
	json_decref(chans);
	json_decref(out);
	return NULL;
}

void
cm_api_form_save(struct cm_request *rq)
{
	struct page pg;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *form, *cur = NULL, *in = NULL;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!form_begin(rq, &pg, &form))
		return;
	if ((rc = form_tx_begin(&pg, &cx, &w)) != CM_OK) {
		json_decref(form);
		form_result_fail(&pg, rc);
		return;
	}
	if ((rc = cm_prefs_get(&cx, pg.pg_subject, &cur, &w)) == CM_OK) {
		if ((in = form_prefs(pg.pg_pol, form, cur)) == NULL)
			rc = CM_INVALID;
		else
			rc = cm_prefs_put(&cx, pg.pg_subject, in, FORM_METHOD, &w);
	}
	rc = cm_api_tx_end(&cx, rc);
	json_decref(form);
	json_decref(cur);
	json_decref(in);
	if (rc != CM_OK) {
		form_result_fail(&pg, rc);
		return;
	}
	form_done(&pg, "saved", NULL);
}

void
cm_api_form_unsubscribe(struct cm_request *rq)
{
	const char *reason, *k;
	struct page pg;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *form, *v;
	int n = 0;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!form_begin(rq, &pg, &form))
		return;
	json_object_foreach(form, k, v)
		if (strcmp(k, "reason") != 0) {
			json_decref(form);
			form_fail(&pg, 400, "error_form");
			return;
		}
	reason = json_string_value(json_object_get(form, "reason"));
	if (reason == NULL || *reason == '\0')
		reason = "not_given";
	else if (!cm_unsubscribe_reason_valid(reason)) {
		json_decref(form);
		form_fail(&pg, 400, "error_form");
		return;
	}
	if ((rc = form_tx_begin(&pg, &cx, &w)) == CM_OK)
		rc = cm_api_tx_end(&cx, cm_unsubscribe(&cx, pg.pg_subject, reason, NULL,
		    FORM_METHOD, &n, &w));
	json_decref(form);
	if (rc != CM_OK) {
		form_result_fail(&pg, rc);
		return;
	}
	form_done(&pg, "unsubscribed", NULL);
}

/* The one confirmation step before an erasure request is filed. */
static void
form_confirm_erasure(struct page *pg)
{
	struct cm_buf *b = &pg->pg_out;

	page_section(pg, "confirm", "delete_confirm_heading");
	PAGE_PUT(b, "<p>");
	page_text(pg, "delete_confirm_text");
	PAGE_PUT(b, "</p>");
	page_open_form(pg, "/preferences/requests", "confirm-erasure-form");
	PAGE_PUT(b, "<input type=\"hidden\" name=\"type\" value=\"erasure\">"
	    "<input type=\"hidden\" name=\"confirm\" value=\"yes\"><p>"
	    "<button type=\"submit\" class=\"danger\">");
	page_text(pg, "delete_confirm_button");
	PAGE_PUT(b, "</button> <a href=\"/preferences\">");
	page_text(pg, "cancel");
	PAGE_PUT(b, "</a></p></form></section>\n");
	page_finish(pg, 200);
}

void
cm_api_form_request(struct cm_request *rq)
{
	const char *type, *confirm, *k;
	struct page pg;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *form, *v, *out = NULL;
	bool existing = false, erasure;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!form_begin(rq, &pg, &form))
		return;
	type = json_string_value(json_object_get(form, "type"));
	confirm = json_string_value(json_object_get(form, "confirm"));
	json_object_foreach(form, k, v)
		if (strcmp(k, "type") != 0 && strcmp(k, "confirm") != 0)
			type = NULL;
	if (type == NULL || (strcmp(type, "access") != 0 && strcmp(type, "erasure") != 0) ||
	    (confirm != NULL && strcmp(confirm, "yes") != 0)) {
		json_decref(form);
		form_fail(&pg, 400, "error_form");
		return;
	}
	erasure = strcmp(type, "erasure") == 0;
	if (erasure && confirm == NULL) {
		json_decref(form);
		form_confirm_erasure(&pg);
		return;
	}
	if ((rc = form_tx_begin(&pg, &cx, &w)) == CM_OK)
		rc = cm_api_tx_end(&cx, cm_api_me_file_request(rq, &cx, pg.pg_subject, type,
		    &out, &existing, &w));
	json_decref(form);
	json_decref(out);
	if (rc != CM_OK) {
		form_result_fail(&pg, rc);
		return;
	}
	form_done(&pg, erasure ? "erasure_requested" : "requested", NULL);
}

void
cm_api_form_logout(struct cm_request *rq)
{
	static const char cookie[] = CM_SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
	    "SameSite=Strict";
	struct page pg;
	struct cm_ctx cx;
	json_t *form;
	cm_result rc;

	if (!form_begin(rq, &pg, &form))
		return;
	rc = json_object_size(form) == 0 ? CM_OK : CM_INVALID;
	json_decref(form);
	if (rc == CM_OK && !cm_api_ctx(rq, &cx)) {
		page_end(&pg);
		return;
	}
	if (rc == CM_OK && (rc = cm_db_begin(cx.cx_db)) == CM_OK)
		rc = cm_api_tx_end(&cx, cm_session_end(&cx, pg.pg_sid));
	if (rc != CM_OK && rc != CM_NOTFOUND) {
		form_result_fail(&pg, rc);
		return;
	}
	form_done(&pg, "signed_out", cookie);
}
