/* SPDX-License-Identifier: ISC */
/*
 * API tokens, created and verified here and nowhere else: the command line
 * creates and revokes them, the HTTP layer verifies the one a request
 * presents. The random bytes and the keyed hash come from src/crypto/, the
 * rows from src/store/; this file is the rule that joins them: only the
 * selector and the keyed hash are stored, the hash is compared in constant
 * time, a revoked token is no token, and the scopes decide the rest.
 */
#include <string.h>

#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/scope.h"
#include "consentd/store.h"
#include "consentd/token.h"

_Static_assert(CM_TOKEN_NAME_LEN == CM_TOKEN_NAME_MAX,
    "a grant holds any name the store holds");

bool
cm_token_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CM_TOKEN_NAME_LEN && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

cm_result
cm_token_create(const struct cm_ctx *cx, const char *name, uint32_t scopes, bool replace,
    char *token)
{
	char selector[CM_TOKEN_SELECTOR_LEN + 1];
	uint8_t hash[32];
	cm_result rc;

	cm_token_generate(token, selector);
	cm_token_hash(cx->cx_keys, token, hash);
	rc = cm_store_token_create(cx->cx_db, name, selector, hash, scopes, replace,
	    cx->cx_now);
	if (rc != CM_OK)
		goto out;
	rc = cm_ctx_audit(cx, "token.created", NULL, NULL, json_pack("{s:s, s:o, s:b}",
	    "name", name, "scopes", cm_scope_json(scopes), "replace", replace), NULL, NULL);
out:
	cm_wipe(hash, sizeof(hash));
	if (rc != CM_OK)
		cm_wipe(token, CM_TOKEN_MAX);
	return rc;
}

cm_result
cm_token_revoke(const struct cm_ctx *cx, const char *name)
{
	cm_result rc;

	if ((rc = cm_store_token_revoke(cx->cx_db, name, cx->cx_now)) != CM_OK)
		goto out;
	rc = cm_ctx_audit(cx, "token.revoked", NULL, NULL, json_pack("{s:s}", "name", name),
	    NULL, NULL);
out:
	return rc;
}

cm_result
cm_token_verify(struct cm_store *store, const struct cm_keys *keys, const char *token,
    uint32_t need, struct cm_token_grant *grant)
{
	struct cm_token_row row;
	struct cm_db *db;
	char selector[CM_TOKEN_SELECTOR_LEN + 1];
	uint8_t hash[32];
	cm_result rc;
	int differ;

	memset(grant, 0, sizeof(*grant));
	memset(&row, 0, sizeof(row));
	memset(hash, 0, sizeof(hash));
	/* The shape first: a token that cannot be one never reaches the store. */
	if (cm_token_parse(token, selector) != 0) {
		rc = CM_NOTFOUND;
		goto out;
	}
	if ((db = cm_store_db(store)) == NULL) {
		rc = CM_IOERR;
		goto out;
	}
	if ((rc = cm_store_token_find(db, selector, &row)) != CM_OK)
		goto out;
	cm_token_hash(keys, token, hash);
	differ = cm_memeq(hash, row.t_hash, sizeof(hash));
	if (differ != 0 || row.t_revoked_us != 0) {
		rc = CM_NOTFOUND;
		goto out;
	}
	memcpy(grant->tg_name, row.t_name, sizeof(grant->tg_name) - 1);
	grant->tg_scopes = row.t_scopes;
	grant->tg_id = row.t_id;
	grant->tg_allowed = need == CM_SCOPE_NONE || cm_scope_allows(row.t_scopes, need);
out:
	cm_wipe(hash, sizeof(hash));
	cm_wipe(&row, sizeof(row));
	return rc;
}
