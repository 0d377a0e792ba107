/* SPDX-License-Identifier: ISC */
/*
 * Recording the change feed. Each consent event, preference save,
 * suppression added or lifted and erasure writes one row of the changes
 * table in its own transaction, so the feed holds a change exactly when it
 * is committed, a withdrawal included. The rows hold no personal data: a
 * subject id, and for a suppression the identifier's type and blind index.
 * Erasing a subject deletes its rows (cm_change_forget). Reading is in
 * feed.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/changes.h"
#include "consentd/util.h"

cm_result
cm_change_record(const struct cm_ctx *cx, const char *kind, const char *subject,
    const char *type, const uint8_t *blind, json_t *body)
{
	char *text;
	cm_result rc;

	if (body == NULL)
		return CM_INVALID;
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	if (text == NULL)
		return CM_INVALID;
	rc = cm_store_change_insert(cx->cx_db, kind, cx->cx_now, subject, type, blind, text);
	free(text);
	return rc;
}

cm_result
cm_change_forget(const struct cm_ctx *cx, const char *subject)
{
	return cm_store_changes_forget(cx->cx_db, subject);
}

/*
 * The change feed's row for an entry added or lifted (ACTION) on (TYPE,
 * BLIND): the subject holding the identifier now, if any, and the entry's
 * reason; never the identifier, which only a subjects:read reader gets,
 * and only while a subject holds it.
 */
cm_result
cm_suppression_change(const struct cm_ctx *cx, const char *type, const uint8_t blind[32],
    const char *action, const char *reason, const char *by, uint64_t idx)
{
	char owner[CM_SUBJECT_ID_LEN + 1], since[32];
	cm_result rc;

	rc = cm_store_identifier_owner(cx->cx_db, type, blind, owner);
	if (rc != CM_OK && rc != CM_NOTFOUND)
		return rc;
	cm_time_format(since, cx->cx_now);
	return cm_change_record(cx, "suppression", rc == CM_OK ? owner : NULL, type, blind,
	    json_pack("{s:s, s:s, s:s, s:s*, s:s*, s:I}", "action", action,
	    "identifier_type", type, "reason", reason, "since",
	    strcmp(action, "added") == 0 ? since : NULL, "by", by, "audit_index",
	    (json_int_t)idx));
}

cm_result
cm_restriction_change(const struct cm_ctx *cx, const char *subject, bool restricted,
    uint64_t idx)
{
	return cm_change_record(cx, "restriction", subject, NULL, NULL, json_pack("{s:b, s:I}",
	    "restricted", restricted, "audit_index", (json_int_t)idx));
}
