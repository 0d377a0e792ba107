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
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "consentd/app.h"
#include "consentd/scope.h"
#include "consentd/token.h"
#include "http_int.h"

enum auth_result {
	AUTH_OK,
	AUTH_NO_CREDENTIALS,	/* none, or none that hold: 401 */
	AUTH_NO_SCOPE,		/* the caller is known but may not: 403 */
	AUTH_STORE		/* the store cannot say: 503 */
};

static enum auth_result	auth_none(struct cm_request *, cm_result *);
static enum auth_result	auth_bearer(struct cm_request *, cm_result *);

/* The kinds of authentication, indexed by enum cm_auth_kind. */
static const struct auth_kind {
	const char	*ak_name;	/* for 'consentd routes' */
	const char	*ak_challenge;	/* WWW-Authenticate of its 401, or NULL */
	/* Fills the caller into RQ; on AUTH_STORE sets *RC. Never replies. */
	enum auth_result (*ak_check)(struct cm_request *rq, cm_result *rc);
} auth_kinds[CM_AUTH_NKINDS] = {
	[CM_AUTH_NONE] = { "public", NULL, auth_none },
	[CM_AUTH_BEARER] = { "token", "Bearer realm=\"consentd\"", auth_bearer },
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
auth_bearer(struct cm_request *rq, cm_result *rc)
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
	snprintf(rq->rq_actor, sizeof(rq->rq_actor), "token:%s", g.tg_name);
	res = g.tg_allowed ? AUTH_OK : AUTH_NO_SCOPE;
out:
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
	static const char body[] = "{\"error\":{\"code\":\"unauthorized\","
	    "\"message\":\"a valid bearer token is required\",\"field\":null}}";
	const char *challenge = auth_kinds[rq->rq_route->r_auth].ak_challenge;
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
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
	case AUTH_NO_CREDENTIALS:
		auth_reply_401(rq);
		break;
	}
	return ok;
}
