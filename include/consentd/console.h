/* SPDX-License-Identifier: ISC */
/*
 * The DPO console's sessions (SPEC §10). An API token holding dsr:admin is
 * exchanged once for a session: the page never keeps the token, only the
 * browser's HttpOnly cookie holds the session id. A session acts with the
 * scopes of the token that started it, for CM_CONSOLE_TTL_US at most, and
 * ends at once when that token is revoked or the DPO signs out.
 *
 * A session id is 32 random bytes (hex), stored only as its keyed hash
 * under the session key, in a table of its own: a shopper's session id is
 * hashed under another label and looked up elsewhere, so neither kind can
 * stand for the other. Its CSRF token is a third keyed hash of the id.
 */
#ifndef CONSENTD_CONSOLE_H
#define CONSENTD_CONSOLE_H

#include <stdint.h>

#include "consentd/common.h"
#include "consentd/token.h"

struct cm_ctx;
struct cm_keys;
struct cm_store;

/* The cookie that carries a console session id. */
#define CM_CONSOLE_COOKIE	"consentd_console"
/* A console session lasts 30 minutes from sign-in, whatever happens. */
#define CM_CONSOLE_TTL_US	(30LL * 60 * 1000000)
#define CM_CONSOLE_ID_LEN	64	/* hex characters */

/*
 * Starts a session for the token G verified (it holds dsr:admin: the
 * caller checked), with the audit entry "console.signin" naming the token.
 * Its id into SID (CM_CONSOLE_ID_LEN + 1 bytes, for the cookie only) and
 * when it ends into *EXPIRES_US. Sessions already over are deleted on the
 * way. Inside the caller's transaction; on failure SID is wiped.
 */
cm_result cm_console_start(const struct cm_ctx *, const struct cm_token_grant *g,
	    char *sid, int64_t *expires_us) CM_WUR;

struct cm_console_grant {
	char		 cg_token[CM_TOKEN_NAME_LEN + 1];	/* the token's name */
	uint32_t	 cg_scopes;	/* the token's scopes */
	int64_t		 cg_expires_us;
};

/*
 * The session SID names, on the thread's connection to STORE: CM_OK with
 * G filled; CM_NOTFOUND when it is no session, is over, or its token is
 * revoked; anything else is the store's.
 */
cm_result cm_console_verify(struct cm_store *, const struct cm_keys *, const char *sid,
	    struct cm_console_grant *g) CM_WUR;

/* The CSRF token of console session SID into OUT (CM_CONSOLE_ID_LEN + 1 bytes). */
void	cm_console_csrf(const struct cm_keys *, const char *sid, char *out);

/*
 * Ends console session SID with the audit entry "console.signout";
 * CM_NOTFOUND when there was none. Inside the caller's transaction.
 */
cm_result cm_console_end(const struct cm_ctx *, const char *sid, const char *token) CM_WUR;

#endif
