/* SPDX-License-Identifier: ISC */
/*
 * API tokens, in one place: creating one (for 'consentd token create') and
 * verifying one presented on a request (for the HTTP layer's bearer
 * authentication). A token is cmt_<selector>_<secret>; the selector finds
 * its row and only a keyed hash of the whole token is ever stored. This
 * header needs no store header, so the HTTP layer can include it.
 */
#ifndef CONSENTD_TOKEN_H
#define CONSENTD_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include "consentd/common.h"

struct cm_ctx;
struct cm_keys;
struct cm_store;

/* The longest token name (the store's CM_TOKEN_NAME_MAX). */
#define CM_TOKEN_NAME_LEN	64

/* What a verified token is and may do. */
struct cm_token_grant {
	char		tg_name[CM_TOKEN_NAME_LEN + 1];	/* the token's name */
	uint32_t	tg_scopes;	/* its CM_SCOPE_* bits */
	bool		tg_allowed;	/* they allow the scope asked for */
	int64_t		tg_id;		/* its row, for a console session */
};

/* Whether NAME may name a token: 1-64 of A-Z a-z 0-9 . _ - */
bool	cm_token_name_valid(const char *name);

/*
 * Makes a new token called NAME with SCOPES and stores its selector and
 * keyed hash, with its "token.created" audit entry by CX's actor, inside
 * the caller's transaction on cx_db. With REPLACE an active token of the
 * same name is revoked first; otherwise one gives CM_CONFLICT. On CM_OK
 * TOKEN (CM_TOKEN_MAX bytes) holds the token, the only time it exists: the
 * caller shows it once and wipes it with cm_wipe(). On failure TOKEN is
 * wiped here.
 */
cm_result cm_token_create(const struct cm_ctx *cx, const char *name, uint32_t scopes,
	    bool replace, char *token) CM_WUR;

/*
 * Revokes the active token called NAME, with its "token.revoked" audit
 * entry by CX's actor, inside the caller's transaction. CM_NOTFOUND when
 * no active token has that name.
 */
cm_result cm_token_revoke(const struct cm_ctx *cx, const char *name) CM_WUR;

/*
 * Verifies TOKEN, as presented, against the tokens of STORE: its shape,
 * the row of its selector, a constant-time comparison of its keyed hash
 * under KEYS, and that it is not revoked. The row is read on the calling
 * thread's connection, inside the read snapshot the thread holds, if any.
 * Returns CM_OK for a valid token, with *GRANT filled and tg_allowed
 * saying whether its scopes allow NEED (a single CM_SCOPE_* bit; with
 * CM_SCOPE_NONE any valid token is allowed); CM_NOTFOUND for anything
 * that is not a valid token (malformed, unknown, forged or revoked), found
 * without the store when the shape is wrong; CM_BUSY or CM_IOERR when the
 * store cannot say.
 */
cm_result cm_token_verify(struct cm_store *store, const struct cm_keys *keys,
	    const char *token, uint32_t need, struct cm_token_grant *grant) CM_WUR;

#endif
