/* SPDX-License-Identifier: ISC */
/*
 * DPO console sessions (consentd/console.h): the rule joining the session
 * key of src/crypto/ to the rows of src/store/console.c. The hash labels
 * differ from a shopper session's, so an id of one kind never finds a
 * row of the other even if it were put in the other's cookie.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/console.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/util.h"

_Static_assert(sizeof(((struct cm_console_grant *)0)->cg_token) ==
    sizeof(((struct cm_console_row *)0)->cs_token), "a grant holds any token name");

/* The keyed hash a console session id is stored as (PURPOSE "session") or its CSRF token. */
static void
console_hash(const struct cm_keys *keys, const char *purpose, const char *sid,
    uint8_t out[32])
{
	const char *parts[] = { "consentd-console-1", purpose, sid };

	cm_keyed_hash(out, 32, keys->k_session, parts, CM_NELEM(parts));
}

/* Whether SID has the shape of a session id: 64 lower-case hex digits. */
static bool
console_sid_valid(const char *sid)
{
	return strlen(sid) == CM_CONSOLE_ID_LEN &&
	    strspn(sid, "0123456789abcdef") == CM_CONSOLE_ID_LEN;
}

cm_result
cm_console_start(const struct cm_ctx *cx, const struct cm_token_grant *g, char *sid,
    int64_t *expires_us)
{
	uint8_t raw[32], hash[32];
	cm_result rc;

	cm_random(raw, sizeof(raw));
	cm_hex_encode(sid, raw, sizeof(raw));
	cm_wipe(raw, sizeof(raw));
	console_hash(cx->cx_keys, "session", sid, hash);
	*expires_us = cx->cx_now + CM_CONSOLE_TTL_US;
	if ((rc = cm_store_console_purge(cx->cx_db, cx->cx_now)) == CM_OK &&
	    (rc = cm_store_console_insert(cx->cx_db, hash, g->tg_id, cx->cx_now,
	    *expires_us)) == CM_OK)
		rc = cm_ctx_audit(cx, "console.signin", NULL, NULL, json_pack("{s:s}",
		    "token", g->tg_name), NULL, NULL);
	cm_wipe(hash, sizeof(hash));
	if (rc != CM_OK)
		cm_wipe(sid, CM_CONSOLE_ID_LEN + 1);
	return rc;
}

cm_result
cm_console_verify(struct cm_store *store, const struct cm_keys *keys, const char *sid,
    struct cm_console_grant *g)
{
	struct cm_console_row row;
	struct cm_db *db;
	uint8_t hash[32];
	cm_result rc;

	memset(g, 0, sizeof(*g));
	if (!console_sid_valid(sid))
		return CM_NOTFOUND;
	if ((db = cm_store_db(store)) == NULL)
		return CM_IOERR;
	console_hash(keys, "session", sid, hash);
	rc = cm_store_console_find(db, hash, &row);
	cm_wipe(hash, sizeof(hash));
	if (rc != CM_OK)
		return rc;
	if (row.cs_expires_us <= cm_time_now_us())
		return CM_NOTFOUND;
	memcpy(g->cg_token, row.cs_token, sizeof(g->cg_token));
	g->cg_scopes = row.cs_scopes;
	g->cg_expires_us = row.cs_expires_us;
	return CM_OK;
}

void
cm_console_csrf(const struct cm_keys *keys, const char *sid, char *out)
{
	uint8_t h[32];

	console_hash(keys, "csrf", sid, h);
	cm_hex_encode(out, h, sizeof(h));
	cm_wipe(h, sizeof(h));
}

cm_result
cm_console_end(const struct cm_ctx *cx, const char *sid, const char *token)
{
	uint8_t hash[32];
	cm_result rc;

	if (!console_sid_valid(sid))
		return CM_NOTFOUND;
	console_hash(cx->cx_keys, "session", sid, hash);
	rc = cm_store_console_delete(cx->cx_db, hash);
	cm_wipe(hash, sizeof(hash));
	if (rc != CM_OK)
		return rc;
	return cm_ctx_audit(cx, "console.signout", NULL, NULL, json_pack("{s:s}", "token",
	    token), NULL, NULL);
}
