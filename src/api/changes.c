/* SPDX-License-Identifier: ISC */
/*
 * The change feed route (GET /v1/changes) and the paging parameters every
 * list route shares: "limit" and a cursor from the previous page's
 * "next_cursor". What a change shows follows the caller's scope:
 * consent:read sees subject ids and states, subjects:read also the
 * identifiers (src/core/changes.c).
 */
#include <string.h>

#include "consentd/api.h"
#include "consentd/changes.h"
#include "consentd/scope.h"
#include "consentd/util.h"

bool
cm_api_paging(struct cm_request *rq, const char *cursor_name, int def, int max,
    int *limit, const char **cursor)
{
	const char *v;
	int64_t n;

	*limit = def;
	if ((v = cm_req_query(rq, "limit")) != NULL) {
		if (cm_parse_i64(v, 1, max, &n) != 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "limit", "1 to %d", max);
			return false;
		}
		*limit = (int)n;
	}
	*cursor = cm_req_query(rq, cursor_name);
	if (*cursor != NULL && (**cursor == '\0' || strlen(*cursor) > 128)) {
		cm_reply_error(rq, 400, "invalid_parameter", cursor_name,
		    "not a cursor this service gave");
		return false;
	}
	return true;
}

void
cm_api_changes(struct cm_request *rq)
{
	const char *after;
	struct cm_ctx cx;
	struct cm_why w;
	json_t *out;
	int limit;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_paging(rq, "after", CM_CHANGES_LIMIT_DEFAULT, CM_CHANGES_LIMIT_MAX,
	    &limit, &after) || !cm_api_ctx(rq, &cx))
		return;
	/* Identifiers are personal data: subjects:read only. */
	rc = cm_changes_list(&cx, after, limit,
	    (cm_req_scopes(rq) & CM_SCOPE_SUBJECTS_READ) != 0, &out, &w);
	if (rc == CM_INVALID && w.w_field[0] != '\0') {
		cm_reply_error(rq, 400, "invalid_parameter", w.w_field, "%s", w.w_msg);
		return;
	}
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, out);
}
