/* SPDX-License-Identifier: ISC */
/*
 * GET /v1/consents/{event_id}/receipt (scope consent:read): the signed
 * consent receipt of one event (consentd/receipt.h), which its holder can
 * check offline with `consentd receipt verify`. It holds no identifier and
 * no evidence: what the person decided, on which notice, when and how,
 * under a pseudonym. A malformed id is 400 naming event_id; an unknown
 * event, or one of an erased subject, 404; an event no signed checkpoint
 * covers yet, 409 checkpoint_pending (the checkpointer signs within a
 * second).
 */
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/core.h"
#include "consentd/receipt.h"

void
cm_api_consents_receipt(struct cm_request *rq)
{
	const char *id = cm_req_param(rq, 0);
	struct cm_why w;
	struct cm_ctx cx;
	json_t *out;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_req_query_check(rq, (const char *const[]){ NULL }))
		return;
	if (!cm_event_id_valid(id)) {
		cm_reply_error(rq, 400, "invalid_field", "event_id",
		    "not an event id (evt_ and 26 base32 characters)");
		return;
	}
	if (!cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_receipt_issue(&cx, cm_req_app(rq)->app_origin, id, &out, &w)) != CM_OK) {
		if (rc == CM_CONFLICT && w.w_code != NULL &&
		    strcmp(w.w_code, "checkpoint_pending") == 0) {
			cm_reply_error(rq, 409, "checkpoint_pending", "event_id", "%s", w.w_msg);
			return;
		}
		cm_api_fail(rq, rc, &w, "event_id");
		return;
	}
	cm_reply_json(rq, 200, out);
}
