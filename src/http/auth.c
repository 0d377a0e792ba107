/* SPDX-License-Identifier: ISC */
/*
 * Authentication of a request, by the kind its route declares (r_auth):
 * one function per kind, in one table, establishes who calls (a name,
 * scopes and the actor the audit log records) or says why not. Bearer
 * tokens are verified by core (src/core/token.c) against the app's store,
 * on this thread's connection, so a GET reads its token inside the
 * snapshot its answer is read in. A missing or bad credential is a 401
 * before anything else is looked at; a token without the route's scope is
 * a 403 naming the scope; a store that cannot say is a 503.
 *
 * The DPO console (SPEC §10) signs in once with a token (CM_AUTH_TOKEN)
 * and then calls the same token routes with its session cookie instead:
 * a CM_AUTH_BEARER route without an Authorization header takes a console
 * session, with the scopes of the token that started it, and like a
 * shopper's session any write must carry the session's CSRF token. The
 * two kinds of session live under different cookies, hash labels and
 * tables, so a shopper's session never reaches a token route and a
 * console session never reaches a shopper's route.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "consentd/app.h"
#include "consentd/console.h"
#include "consentd/crypto.h"
#include "consentd/scope.h"
#include "consentd/shopper.h"
#include "consentd/token.h"
#include "http_int.h"

enum auth_result {
	AUTH_OK,
	AUTH_NO_CREDENTIALS,	/* none, or none that hold: 401 */
	AUTH_NO_SCOPE,		/* the caller is known but may not: 403 */
	AUTH_STORE,		/* the store cannot say: 503 */
	AUTH_CSRF,		/* a session's write without its CSRF token: 403 */
	AUTH_CONSOLE_CSRF	/* the same, from a console session */
};

static enum auth_result	auth_none(struct cm_request *, cm_result *);
static enum auth_result	auth_bearer(struct cm_request *, cm_result *);
static enum auth_result	auth_session(struct cm_request *, cm_result *);
static enum auth_result	auth_token(struct cm_request *, cm_result *);
static enum auth_result	auth_console(struct cm_request *, cm_result *);

/* The kinds of authentication, indexed by enum cm_auth_kind. */
static const struct auth_kind {
	const char	*ak_name;	/* for 'consentd routes' */
	const char	*ak_challenge;	/* WWW-Authenticate of its 401, or NULL */
	const char	*ak_401;	/* the message of its 401 */
	/* Fills the caller into RQ; on AUTH_STORE sets *RC. Never replies. */
	enum auth_result (*ak_check)(struct cm_request *rq, cm_result *rc);
} auth_kinds[CM_AUTH_NKINDS] = {
	[CM_AUTH_NONE] = { "public", NULL, NULL, auth_none },
	[CM_AUTH_BEARER] = { "token", "Bearer realm=\"consentd\"",
	    "a valid bearer token is required", auth_bearer },
	[CM_AUTH_SESSION] = { "session", NULL, "a valid session is required: open "
	    "your preference-centre link again", auth_session },
	[CM_AUTH_TOKEN] = { "bearer", "Bearer realm=\"consentd\"",
	    "a valid bearer token is required", auth_token },
	[CM_AUTH_CONSOLE] = { "console", NULL, "a valid console session is required: "
	    "sign in again", auth_console },
};

const char *
cm_auth_name(enum cm_auth_kind kind)
{
	return (unsigned)kind < CM_AUTH_NKINDS ? auth_kinds[kind].ak_name : NULL;
}

int
auth_routes_check(const struct cm_route *routes, size_t n, char *err, size_t errlen)
{
	const struct cm_route *rt;
	size_t i;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		rt = &routes[i];
		if ((unsigned)rt->r_auth >= CM_AUTH_NKINDS) {
			snprintf(err, errlen, "route %s %s: unknown kind of authentication",
			    rt->r_method, rt->r_pattern);
			rc = -1;
		} else if (rt->r_auth == CM_AUTH_NONE && rt->r_scope != CM_SCOPE_NONE) {
			snprintf(err, errlen, "route %s %s: needs a scope but asks for no "
			    "credentials", rt->r_method, rt->r_pattern);
			rc = -1;
		}
	}
	return rc;
}

static enum auth_result
auth_none(struct cm_request *rq, cm_result *rc)
{
	(void)rq;
	(void)rc;
	return AUTH_OK;
}

/* Authorization: Bearer <token>, verified by core with the route's scope. */
static enum auth_result
bearer_token(struct cm_request *rq, cm_result *rc)
{
	struct cm_app *app = rq->rq_srv->sv_app;
	struct cm_token_grant g;
	enum auth_result res = AUTH_NO_CREDENTIALS;
	const char *h, *tok;
	cm_result vr;

	memset(&g, 0, sizeof(g));
	h = MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		goto out;
	for (tok = h + 7; *tok == ' '; tok++)
		;
	vr = cm_token_verify(app->app_store, app->app_keys, tok, rq->rq_route->r_scope, &g);
	if (vr == CM_NOTFOUND)
		goto out;
	if (vr != CM_OK) {
		*rc = vr;
		res = AUTH_STORE;
		goto out;
	}
	/* Known from here on, refused or not: the access log names it. */
	memcpy(rq->rq_client, g.tg_name, sizeof(rq->rq_client) - 1);
	rq->rq_scopes = g.tg_scopes;
	rq->rq_token_id = g.tg_id;
	snprintf(rq->rq_actor, sizeof(rq->rq_actor), "token:%s", g.tg_name);
	res = g.tg_allowed ? AUTH_OK : AUTH_NO_SCOPE;
out:
	return res;
}

/* Whether RQ, of a session, may go on: a GET, or a write with the CSRF token CSRF. */
static bool
csrf_ok(struct cm_request *rq, const char *csrf)
{
	const char *sent;

	if (strcmp(rq->rq_route->r_method, "GET") == 0)
		return true;
	sent = MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND, "X-CSRF-Token");
	return sent != NULL && strlen(sent) == strlen(csrf) &&
	    cm_memeq(sent, csrf, strlen(csrf)) == 0;
}

/*
 * The console session cookie, verified by core, and the route's scope
 * against its token's. Known from here on, like a token, but a write
 * without the session's CSRF token goes no further.
 */
static enum auth_result
console_cookie(struct cm_request *rq, cm_result *rc)
{
	struct cm_app *app = rq->rq_srv->sv_app;
	struct cm_console_grant g;
	char csrf[CM_CONSOLE_ID_LEN + 1];
	const char *sid;
	enum auth_result res;
	uint32_t need = rq->rq_route->r_scope;
	cm_result vr;

	sid = MHD_lookup_connection_value(rq->rq_conn, MHD_COOKIE_KIND, CM_CONSOLE_COOKIE);
	if (sid == NULL)
		return AUTH_NO_CREDENTIALS;
	vr = cm_console_verify(app->app_store, app->app_keys, sid, &g);
	if (vr == CM_NOTFOUND)
		return AUTH_NO_CREDENTIALS;
	if (vr != CM_OK) {
		*rc = vr;
		return AUTH_STORE;
	}
	memcpy(rq->rq_client, g.cg_token, sizeof(rq->rq_client) - 1);
	rq->rq_scopes = g.cg_scopes;
	rq->rq_console = true;
	snprintf(rq->rq_session, sizeof(rq->rq_session), "%s", sid);
	snprintf(rq->rq_actor, sizeof(rq->rq_actor), "console:%s", g.cg_token);
	cm_console_csrf(app->app_keys, sid, csrf);
	if (!csrf_ok(rq, csrf))
		res = AUTH_CONSOLE_CSRF;
	else if (need != CM_SCOPE_NONE && !cm_scope_allows(g.cg_scopes, need))
		res = AUTH_NO_SCOPE;
	else
		res = AUTH_OK;
	cm_wipe(csrf, sizeof(csrf));
	return res;
}

/* A bearer token, or when no Authorization header is sent a console session. */
static enum auth_result
auth_bearer(struct cm_request *rq, cm_result *rc)
{
	if (MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION) == NULL &&
	    MHD_lookup_connection_value(rq->rq_conn, MHD_COOKIE_KIND,
	    CM_CONSOLE_COOKIE) != NULL)
		return console_cookie(rq, rc);
	return bearer_token(rq, rc);
}

/* A bearer token only: a session never starts another. */
static enum auth_result
auth_token(struct cm_request *rq, cm_result *rc)
{
	return bearer_token(rq, rc);
}

/* A console session only. */
static enum auth_result
auth_console(struct cm_request *rq, cm_result *rc)
{
	return console_cookie(rq, rc);
}

/*
 * The session cookie, verified by core. A method other than GET (and the
 * HEAD the router takes for it) must also carry the session's CSRF token
 * in X-CSRF-Token: a cookie alone, which the browser adds to any request,
 * never writes.
 */
static enum auth_result
auth_session(struct cm_request *rq, cm_result *rc)
{
	struct cm_app *app = rq->rq_srv->sv_app;
	struct cm_session_grant g;
	const char *sid, *sent;
	char csrf[CM_SESSION_ID_LEN + 1];
	enum auth_result res;
	cm_result vr;

	sid = MHD_lookup_connection_value(rq->rq_conn, MHD_COOKIE_KIND, CM_SESSION_COOKIE);
	if (sid == NULL)
		return AUTH_NO_CREDENTIALS;
	vr = cm_session_verify(app->app_store, app->app_keys, sid, &g);
	if (vr == CM_NOTFOUND)
		return AUTH_NO_CREDENTIALS;
	if (vr != CM_OK) {
		*rc = vr;
		return AUTH_STORE;
	}
	snprintf(rq->rq_subject, sizeof(rq->rq_subject), "%s", g.sg_subject);
	snprintf(rq->rq_session, sizeof(rq->rq_session), "%s", sid);
	snprintf(rq->rq_actor, sizeof(rq->rq_actor), "shopper");
	if (strcmp(rq->rq_route->r_method, "GET") == 0)
		return AUTH_OK;
	cm_session_csrf(app->app_keys, sid, csrf);
	sent = MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND, "X-CSRF-Token");
	res = sent != NULL && strlen(sent) == CM_SESSION_ID_LEN &&
	    cm_memeq(sent, csrf, CM_SESSION_ID_LEN) == 0 ? AUTH_OK : AUTH_CSRF;
	cm_wipe(csrf, sizeof(csrf));
	return res;
}

static enum auth_result
auth_check(struct cm_request *rq, cm_result *rc)
{
	return auth_kinds[rq->rq_route->r_auth].ak_check(rq, rc);
}

bool
auth_quiet(struct cm_request *rq)
{
	cm_result rc;

	return auth_check(rq, &rc) == AUTH_OK;
}

/* The 401: the envelope, and the kind's challenge when it has one. */
static void
auth_reply_401(struct cm_request *rq)
{
	const struct auth_kind *ak = &auth_kinds[rq->rq_route->r_auth];
	const char *challenge = ak->ak_challenge;
	struct MHD_Response *r;
	char body[256];
	int n;

	n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"unauthorized\","
	    "\"message\":\"%s\",\"field\":null}}", ak->ak_401 ? ak->ak_401 :
	    "unauthorized");
	if (n < 0 || (size_t)n >= sizeof(body)) {
		rq->rq_status = 500;
		return;
	}
	r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL) {
		rq->rq_status = 500;
		return;
	}
	if (challenge != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
	req_send(rq, 401, r, "application/json; charset=utf-8");
}

bool
auth_request(struct cm_request *rq)
{
	cm_result rc = CM_IOERR;
	bool ok = false;

	switch (auth_check(rq, &rc)) {
	case AUTH_OK:
		ok = true;
		break;
	case AUTH_STORE:
		cm_reply_store_error(rq, rc);
		break;
	case AUTH_NO_SCOPE:
		cm_reply_error(rq, 403, "forbidden", NULL, "this token lacks the scope %s",
		    cm_scope_name(rq->rq_route->r_scope));
		break;
	case AUTH_CSRF:
		cm_reply_error(rq, 403, "csrf_token_invalid", "X-CSRF-Token", "send the "
		    "session's csrf_token (GET /v1/me) in the X-CSRF-Token header");
		break;
	case AUTH_CONSOLE_CSRF:
		cm_reply_error(rq, 403, "csrf_token_invalid", "X-CSRF-Token", "send the "
		    "console session's csrf_token (GET /admin/session) in the "
		    "X-CSRF-Token header");
		break;
	case AUTH_NO_CREDENTIALS:
		rate_auth_failed(rq);
		auth_reply_401(rq);
		break;
	}
	return ok;
}
