/* SPDX-License-Identifier: ISC */
/*
 * The DPO console's sign-in (SPEC §10): POST /admin/session exchanges the
 * bearer token the DPO types once for a session cookie, so the page keeps
 * no token; GET /admin/session tells the page who it is and the CSRF
 * token its writes carry; DELETE /admin/session signs out. The console
 * then calls the ordinary /v1 routes with the cookie (src/http/auth.c).
 * The page itself is /admin (web.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/console.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/scope.h"
#include "consentd/util.h"

/* The session's description, as both the sign-in and GET answer it. */
static json_t *
console_json(struct cm_request *rq, const char *sid, int64_t expires_us)
{
	char csrf[CM_CONSOLE_ID_LEN + 1], exp[32];
	json_t *j;

	cm_console_csrf(cm_req_app(rq)->app_keys, sid, csrf);
	cm_time_format(exp, expires_us);
	j = json_pack("{s:s, s:o, s:s, s:s}", "token", cm_req_client(rq), "scopes",
	    cm_scope_json(cm_req_scopes(rq)), "expires_at", exp, "csrf_token", csrf);
	cm_wipe(csrf, sizeof(csrf));
	return j;
}

/* Replies STATUS with J (taken) and the Set-Cookie header COOKIE. */
static void
console_reply(struct cm_request *rq, unsigned status, json_t *j, const char *cookie)
{
	const char *const hdrs[] = { "Set-Cookie", cookie, NULL };
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (s == NULL) {
		cm_reply_error(rq, 500, "internal", NULL, "cannot encode the answer");
		return;
	}
	cm_reply_page(rq, status, "application/json; charset=utf-8", s, strlen(s), NULL, hdrs);
	cm_wipe(s, strlen(s));
	free(s);
}

void
cm_api_console_signin(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	struct cm_token_grant g;
	char sid[CM_CONSOLE_ID_LEN + 1], cookie[256];
	struct cm_ctx cx;
	int64_t expires = 0;
	cm_result rc;

	memset(&g, 0, sizeof(g));
	snprintf(g.tg_name, sizeof(g.tg_name), "%s", cm_req_client(rq));
	g.tg_scopes = cm_req_scopes(rq);
	g.tg_id = cm_req_token_id(rq);
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	if ((rc = cm_api_tx_end(&cx, cm_console_start(&cx, &g, sid, &expires))) != CM_OK) {
		cm_wipe(sid, sizeof(sid));
		cm_reply_store_error(rq, rc);
		return;
	}
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; "
	    "SameSite=Strict%s", CM_CONSOLE_COOKIE, sid,
	    (long long)(CM_CONSOLE_TTL_US / 1000000), app->app_https ? "; Secure" : "");
	console_reply(rq, 201, console_json(rq, sid, expires), cookie);
	cm_wipe(sid, sizeof(sid));
	cm_wipe(cookie, sizeof(cookie));
}

void
cm_api_console_get(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	struct cm_console_grant g;
	cm_result rc;

	rc = cm_console_verify(app->app_store, app->app_keys, cm_req_session(rq), &g);
	if (rc == CM_NOTFOUND) {
		/* It ended between the check of its cookie and now. */
		cm_reply_error(rq, 401, "unauthorized", NULL, "a valid console session is "
		    "required: sign in again");
		return;
	}
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, console_json(rq, cm_req_session(rq), g.cg_expires_us));
}

void
cm_api_console_signout(struct cm_request *rq)
{
	static const char cookie[] = CM_CONSOLE_COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
	    "SameSite=Strict";
	struct cm_ctx cx;
	cm_result rc;

	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_console_end(&cx, cm_req_session(rq), cm_req_client(rq)));
	if (rc != CM_OK && rc != CM_NOTFOUND) {
		cm_reply_store_error(rq, rc);
		return;
	}
	console_reply(rq, 200, json_pack("{s:b}", "ended", 1), cookie);
}
