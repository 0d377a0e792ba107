/* SPDX-License-Identifier: ISC */
/*
 * The shopper's links (SPEC §7): POST /v1/subjects/{id}/preference-link
 * makes a signed, expiring preference-centre link and the RFC 8058 header
 * values for one-click unsubscribe; DELETE …/preference-links revokes
 * every link of a subject; /u/{token} is the one-click unsubscribe (GET
 * only shows a confirmation page, link scanners follow GETs; POST with
 * List-Unsubscribe=One-Click withdraws every marketing purpose, with no
 * session, no CSRF token and no redirect); /p/{token} starts a
 * preference-centre session and sends the browser to /preferences. A link
 * that does not hold (tampered, expired, revoked, its subject erased) is
 * a 4xx with a plain answer and writes nothing.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/shopper.h"
#include "consentd/util.h"

#define UNSUB_POST	CM_LIST_UNSUBSCRIBE_POST

void
cm_api_link_create(struct cm_request *rq)
{
	static const char *const fields[] = { "ttl_seconds", NULL };
	const struct cm_policy *pol = cm_req_app(rq)->app_policy;
	char ptok[CM_LINK_TOKEN_MAX], utok[CM_LINK_TOKEN_MAX], base[256], exp[32];
	json_t *body = cm_req_json(rq);
	struct cm_buf lu = { NULL, 0, 0 };
	struct cm_why w;
	struct cm_ctx cx;
	int64_t ttl = CM_LINK_TTL_DEFAULT, expires;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_int(rq, body, "ttl_seconds", false, CM_LINK_TTL_MIN, CM_LINK_TTL_MAX,
	    &ttl) || !cm_api_ctx(rq, &cx))
		return;
	expires = cx.cx_now / 1000000 + ttl;
	/* Both links from one snapshot: one generation. */
	if ((rc = cm_db_read_begin(cx.cx_db)) == CM_OK) {
		if ((rc = cm_link_make(&cx, cm_req_param(rq, 0), CM_LINK_KIND_PREFS, expires,
		    ptok, &w)) == CM_OK)
			rc = cm_link_make(&cx, cm_req_param(rq, 0), CM_LINK_KIND_UNSUB, expires,
			    utok, &w);
		cm_db_read_end(cx.cx_db);
	}
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_api_public_url(rq, base, sizeof(base));
	cm_time_format(exp, expires * 1000000);
	cm_link_list_unsubscribe(pol, base, utok, &lu);
	cm_reply_json(rq, 201, json_pack("{s:s, s:s++, s:s++, s:s, s:s, s:s}",
	    "subject_id", cm_req_param(rq, 0), "url", base, "/p/", ptok,
	    "unsubscribe_url", base, "/u/", utok, "expires_at", exp,
	    "list_unsubscribe", lu.b_data, "list_unsubscribe_post", CM_LIST_UNSUBSCRIBE_POST));
	cm_buf_free(&lu);
}

void
cm_api_links_revoke(struct cm_request *rq)
{
	struct cm_why w;
	struct cm_ctx cx;
	int64_t gen = 0;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_link_revoke(&cx, cm_req_param(rq, 0), &gen, &w));
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s, s:I}", "subject_id", cm_req_param(rq, 0),
	    "generation", (json_int_t)gen));
}

/* What a link that does not hold is told: the status, and a line of plain words. */
static unsigned
link_refusal(enum cm_link_status st, const char **msg)
{
	switch (st) {
	case CM_LINK_EXPIRED:
		*msg = "This link has expired. Please use the link in a more recent email.";
		return 410;
	case CM_LINK_REVOKED:
		*msg = "This link is no longer valid. Please use the link in a more "
		    "recent email.";
		return 410;
	case CM_LINK_GONE:
		*msg = "There is nothing to manage for this link any more.";
		return 410;
	default:
		*msg = "This link is not valid. Please check that you copied the whole "
		    "link from the email.";
		return 404;
	}
}

/* The friendly page for a link that does not hold, in the person's language. */
static void
link_page(struct cm_request *rq, enum cm_link_status st)
{
	struct cm_page_note n = { "link_bad_title", "This link cannot be used", NULL, NULL,
	    NULL, NULL, NULL, NULL, NULL };
	unsigned status = link_refusal(st, &n.pn_text_en);

	n.pn_text = st == CM_LINK_EXPIRED ? "link_expired" : st == CM_LINK_REVOKED ?
	    "link_revoked" : st == CM_LINK_GONE ? "link_gone" : "link_invalid";
	cm_api_page_note(rq, status, &n);
}

/* The plain answer for a one-click POST that does not hold. */
static void
link_plain(struct cm_request *rq, enum cm_link_status st)
{
	const char *msg;
	unsigned status = link_refusal(st, &msg);
	char body[256];
	int n;

	n = snprintf(body, sizeof(body), "%s\n", msg);
	cm_reply_bytes(rq, status, "text/plain; charset=utf-8", body, (size_t)n);
}

/* Checks the link of RQ (kind KIND) on CX; replies 503 when the store cannot say. */
static bool
link_check(struct cm_request *rq, struct cm_ctx *cx, char kind, enum cm_link_status *st,
    char *subject)
{
	cm_result rc;

	if ((rc = cm_link_check(cx, cm_req_param(rq, 0), kind, st, subject)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return false;
	}
	return true;
}

void
cm_api_unsub_page(struct cm_request *rq)
{
	char subject[CM_SUBJECT_ID_LEN + 1];
	enum cm_link_status st = CM_LINK_INVALID;
	struct cm_buf b = { NULL, 0, 0 };
	struct cm_ctx cx;
	cm_result rc;
	bool ok;

	if (!cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_db_read_begin(cx.cx_db)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	ok = link_check(rq, &cx, CM_LINK_KIND_UNSUB, &st, subject);
	cm_db_read_end(cx.cx_db);
	if (!ok)
		return;
	if (st != CM_LINK_OK) {
		link_page(rq, st);
		return;
	}
	/* The token is a checked link: letters, digits and dots only. */
	cm_buf_appendf(&b, "/u/%s", cm_req_param(rq, 0));
	{
		struct cm_page_note n = { "unsub_heading", "Unsubscribe", "unsub_confirm",
		    "Stop all marketing messages from {name}? Messages about your orders "
		    "still reach you.", b.b_data, "List-Unsubscribe", "One-Click",
		    "unsub_button", "Unsubscribe from all marketing" };

		cm_api_page_note(rq, 200, &n);
	}
	cm_buf_free(&b);
}

/* Whether the urlencoded BODY (LEN bytes) holds the pair List-Unsubscribe=One-Click. */
static bool
form_has_one_click(const char *body, size_t len)
{
	const char *p = body, *end = body + len, *amp;
	size_t n;

	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		n = amp ? (size_t)(amp - p) : (size_t)(end - p);
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
			n--;
		if (n == strlen(UNSUB_POST) && memcmp(p, UNSUB_POST, n) == 0)
			return true;
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	return false;
}

/* Finds NEEDLE (NLEN bytes) in HAY (HLEN bytes). */
static const char *
mem_find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	size_t i;

	for (i = 0; nlen <= hlen && i <= hlen - nlen; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return hay + i;
	return NULL;
}

/*
 * Whether the multipart/form-data BODY holds a part named List-Unsubscribe
 * whose value is One-Click, as some mailbox providers send it.
 */
static bool
multipart_has_one_click(const char *body, size_t len)
{
	static const char name[] = "name=\"List-Unsubscribe\"";
	const char *p = body, *end = body + len, *v;

	while ((p = mem_find(p, (size_t)(end - p), name, sizeof(name) - 1)) != NULL) {
		p += sizeof(name) - 1;
		if ((v = mem_find(p, (size_t)(end - p), "\r\n\r\n", 4)) == NULL)
			return false;
		v += 4;
		if ((size_t)(end - v) >= 11 && memcmp(v, "One-Click", 9) == 0 &&
		    v[9] == '\r' && v[10] == '\n')
			return true;
	}
	return false;
}

/*
 * Checks the one-click body: the form field List-Unsubscribe=One-Click,
 * urlencoded or multipart. Replies (plain text) and returns false when not.
 */
static bool
one_click_body(struct cm_request *rq)
{
	static const char type_msg[] = "send the form List-Unsubscribe=One-Click as "
	    "application/x-www-form-urlencoded or multipart/form-data\n";
	static const char body_msg[] = "the body must be List-Unsubscribe=One-Click\n";
	const char *ct = cm_req_header(rq, "Content-Type");
	const char *body;
	size_t len;
	bool ok;

	body = cm_req_body(rq, &len);
	if (ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
		ok = form_has_one_click(body, len);
	else if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0)
		ok = multipart_has_one_click(body, len);
	else {
		cm_reply_bytes(rq, 415, "text/plain; charset=utf-8", type_msg,
		    sizeof(type_msg) - 1);
		return false;
	}
	if (!ok)
		cm_reply_bytes(rq, 400, "text/plain; charset=utf-8", body_msg,
		    sizeof(body_msg) - 1);
	return ok;
}

/* Whether the client would rather read HTML (a browser) than plain text. */
static bool
wants_html(struct cm_request *rq)
{
	const char *a = cm_req_header(rq, "Accept");

	return a != NULL && strstr(a, "text/html") != NULL;
}

void
cm_api_unsub_post(struct cm_request *rq)
{
	char subject[CM_SUBJECT_ID_LEN + 1];
	enum cm_link_status st = CM_LINK_INVALID;
	struct cm_why w;
	struct cm_ctx cx;
	int n = 0;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_ctx(rq, &cx))
		return;
	snprintf(cx.cx_actor, sizeof(cx.cx_actor), "shopper");
	if (!cm_api_tx_begin(rq, &cx))
		return;
	if (!link_check(rq, &cx, CM_LINK_KIND_UNSUB, &st, subject) || st != CM_LINK_OK ||
	    !one_click_body(rq)) {
		cm_db_rollback(cx.cx_db);
		if (st != CM_LINK_OK && !cm_req_replied(rq))
			link_plain(rq, st);
		return;
	}
	rc = cm_api_tx_end(&cx, cm_unsubscribe(&cx, subject, "not_given", NULL, "email_link",
	    &n, &w));
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_req_log_field(rq, "outcome", "unsubscribed");
	if (wants_html(rq)) {
		struct cm_page_note note = { "unsub_done_title", "You are unsubscribed",
		    "unsub_done_text", "You will receive no more marketing messages from "
		    "us. Messages about your orders still reach you.", NULL, NULL, NULL,
		    NULL, NULL };

		cm_api_page_note(rq, 200, &note);
	} else
		cm_reply_bytes(rq, 200, "text/plain; charset=utf-8", "unsubscribed\n",
		    strlen("unsubscribed\n"));
}

void
cm_api_pref_open(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	char subject[CM_SUBJECT_ID_LEN + 1], sid[CM_SESSION_ID_LEN + 1], cookie[256];
	const char *gpc = cm_req_header(rq, "Sec-GPC");
	enum cm_link_status st = CM_LINK_INVALID;
	struct cm_why w;
	struct cm_ctx cx;
	int64_t expires = 0;
	bool applied = false;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_ctx(rq, &cx))
		return;
	snprintf(cx.cx_actor, sizeof(cx.cx_actor), "shopper");
	if (!cm_api_tx_begin(rq, &cx))
		return;
	if (!link_check(rq, &cx, CM_LINK_KIND_PREFS, &st, subject) || st != CM_LINK_OK) {
		cm_db_rollback(cx.cx_db);
		if (!cm_req_replied(rq))
			link_page(rq, st);
		return;
	}
	rc = cm_session_start(&cx, subject, sid, &expires);
	if (rc == CM_OK && gpc != NULL && strcmp(gpc, "1") == 0)
		rc = cm_shopper_gpc(&cx, subject, &applied, &w);
	if ((rc = cm_api_tx_end(&cx, rc)) != CM_OK) {
		cm_wipe(sid, sizeof(sid));
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; "
	    "SameSite=Strict%s", CM_SESSION_COOKIE, sid,
	    (long long)(CM_SESSION_TTL_US / 1000000), app->app_https ? "; Secure" : "");
	cm_wipe(sid, sizeof(sid));
	{
		const char *const hdrs[] = { "Location", "/preferences", "Set-Cookie", cookie,
		    "Content-Security-Policy", cm_api_csp, NULL };

		cm_reply_page(rq, 303, "text/plain; charset=utf-8", "see /preferences\n",
		    strlen("see /preferences\n"), NULL, hdrs);
	}
	cm_wipe(cookie, sizeof(cookie));
}
