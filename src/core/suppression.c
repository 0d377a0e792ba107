/* SPDX-License-Identifier: ISC */
/*
 * The suppression list ("do not contact"): blind indexes only, whether or
 * not a subject has them, for the lists retailers bring from their email
 * and SMS providers. An entry binds the person: the check applies every
 * entry on any identifier the subject holds, and on those it held when
 * they were unlinked. Audit entries name an entry by its audit tag (a
 * keyed hash of the blind index), never by the identifier.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/changes.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "ledger.h"

static const char *const suppression_reasons[] = {
	"unsubscribed", "bounced", "complained", "manual"
};

bool
cm_suppression_reason_valid(const char *r)
{
	size_t i;

	for (i = 0; i < CM_NELEM(suppression_reasons); i++)
		if (strcmp(r, suppression_reasons[i]) == 0)
			return true;
	return false;
}

cm_result
cm_suppression_add(const struct cm_ctx *cx, const struct cm_identifier *ident,
    const char *reason, bool *existed, char reason_out[16], int64_t *since)
{
	uint8_t blind[32];
	uint64_t idx;
	char tag[33];
	cm_result rc;

	*existed = false;
	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, reason_out, since);
	if (rc == CM_OK) {
		*existed = true;
		return CM_OK;
	}
	if (rc != CM_NOTFOUND)
		return rc;
	if ((rc = cm_store_suppression_put(cx->cx_db, ident->id_type, blind, reason,
	    cx->cx_now)) != CM_OK)
		return rc;
	snprintf(reason_out, 16, "%s", reason);
	*since = cx->cx_now;
	ledger_supp_tag(cx, ident->id_type, blind, tag);
	/* No subject key for an identifier nobody may have: type, reason, tag. */
	if ((rc = cm_ctx_audit(cx, "suppression.added", NULL, NULL, json_pack("{s:s, s:s, "
	    "s:s, s:I}", "type", ident->id_type, "reason", reason, "tag", tag, "since",
	    (json_int_t)cx->cx_now), NULL, &idx)) != CM_OK)
		return rc;
	return cm_suppression_change(cx, ident->id_type, blind, "added", reason, NULL, idx);
}

cm_result
cm_suppression_import(const struct cm_ctx *cx, const struct cm_identifier *ident,
    const char *reason, int64_t since, bool *existed)
{
	char old[16];
	int64_t at;
	uint8_t blind[32];
	char tag[33];
	cm_result rc;

	*existed = false;
	if (since <= 0 || since > cx->cx_now)
		since = cx->cx_now;
	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, old, &at);
	if (rc == CM_OK) {
		*existed = true;
		return CM_OK;
	}
	if (rc != CM_NOTFOUND)
		return rc;
	if ((rc = cm_store_suppression_put(cx->cx_db, ident->id_type, blind, reason,
	    since)) != CM_OK)
		return rc;
	ledger_supp_tag(cx, ident->id_type, blind, tag);
	return cm_ctx_audit(cx, "suppression.added", NULL, NULL, json_pack("{s:s, s:s, s:s, "
	    "s:I, s:s}", "type", ident->id_type, "reason", reason, "tag", tag, "since",
	    (json_int_t)since, "by", "import"), NULL, NULL);
}

cm_result
cm_suppression_replay(const struct cm_ctx *cx, const char *type, const uint8_t blind[32],
    const char *reason, int64_t since, bool *done)
{
	char old[16], tag[33];
	int64_t at;
	uint64_t idx;
	cm_result rc;

	*done = false;
	if (!cm_suppression_reason_known(reason))
		return CM_OK;
	rc = cm_store_suppression_get(cx->cx_db, type, blind, old, &at);
	if (rc != CM_NOTFOUND)
		return rc;
	if (since <= 0 || since > cx->cx_now)
		since = cx->cx_now;
	if ((rc = cm_store_suppression_put(cx->cx_db, type, blind, reason, since)) != CM_OK)
		return rc;
	ledger_supp_tag(cx, type, blind, tag);
	if ((rc = cm_ctx_audit(cx, "suppression.added", NULL, NULL, json_pack("{s:s, s:s, s:s, "
	    "s:I, s:s}", "type", type, "reason", reason, "tag", tag, "since",
	    (json_int_t)since, "by", "restore"), NULL, &idx)) != CM_OK)
		return rc;
	if ((rc = cm_suppression_change(cx, type, blind, "added", reason, NULL,
	    idx)) == CM_OK)
		*done = true;
	return rc;
}

cm_result
cm_suppression_check(const struct cm_ctx *cx, const struct cm_identifier *ident,
    char reason[16], int64_t *since)
{
	uint8_t blind[32];

	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	return cm_store_suppression_get(cx->cx_db, ident->id_type, blind, reason, since);
}

cm_result
cm_suppression_lift(const struct cm_ctx *cx, const struct cm_identifier *ident)
{
	uint8_t blind[32];
	char reason[16], tag[33];
	int64_t since;
	uint64_t idx;
	cm_result rc;

	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	if ((rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, reason,
	    &since)) != CM_OK)
		return rc;
	if (strcmp(reason, "erased") == 0)
		return CM_CONFLICT;
	if ((rc = cm_store_suppression_delete(cx->cx_db, ident->id_type, blind)) != CM_OK ||
	    (rc = cm_store_suppression_unbind(cx->cx_db, ident->id_type, blind)) != CM_OK)
		return rc;
	ledger_supp_tag(cx, ident->id_type, blind, tag);
	if ((rc = cm_ctx_audit(cx, "suppression.lifted", NULL, NULL, json_pack("{s:s, s:s, "
	    "s:s, s:s}", "type", ident->id_type, "reason", reason, "by", "admin", "tag", tag),
	    NULL, &idx)) != CM_OK)
		return rc;
	return cm_suppression_change(cx, ident->id_type, blind, "lifted", reason, "admin", idx);
}
