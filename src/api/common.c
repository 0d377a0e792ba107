/*
 * What the API handlers share: the domain context of a request, the
 * mapping of domain failures to error replies, and transactions.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

/*
 * Fills CX for RQ (the actor is the caller's, "token:NAME"); replies 503
 * and returns false when the store is away.
 */
bool
cm_api_ctx(struct cm_request *rq, struct cm_ctx *cx)
{
	struct cm_app *app = cm_req_app(rq);

	cm_ctx_init(cx, cm_store_db(app->app_store), app->app_keys, app->app_policy,
	    cm_req_actor(rq));
	if (cx->cx_db == NULL) {
		cm_reply_store_error(rq, CM_IOERR);
		return false;
	}
	return true;
}

/* Replies for a failed domain call. */
void
cm_api_fail(struct cm_request *rq, cm_result rc, const struct cm_why *w, const char *field)
{
	const char *code = w->w_code ? w->w_code : "";

	if (w->w_field[0] != '\0')
		field = w->w_field;
	if (strcmp(code, "merged") == 0) {
		cm_reply_error_with(rq, 404, "merged", field,
		    json_pack("{s:s}", "merged_into", w->w_subject), "%s", w->w_msg);
	} else if (strcmp(code, "not_found") == 0) {
		cm_reply_error(rq, 404, "not_found", field, "%s", w->w_msg);
	} else if (strcmp(code, "identifier_taken") == 0) {
		cm_reply_error_with(rq, 409, "identifier_taken", field,
		    json_pack("{s:s}", "subject_id", w->w_subject), "%s", w->w_msg);
	} else if (strcmp(code, "subject_erased") == 0) {
		cm_reply_error(rq, 409, "subject_erased", field, "%s", w->w_msg);
	} else if (strcmp(code, "identifier_not_linked") == 0) {
		cm_reply_error(rq, 404, "identifier_not_linked", field, "%s", w->w_msg);
	} else if (strcmp(code, "suppressed") == 0) {
		cm_reply_error(rq, 409, "suppressed", field, "%s", w->w_msg);
	} else if (strcmp(code, "request_id_reused") == 0) {
		cm_reply_error(rq, 409, "request_id_reused", field, "%s", w->w_msg);
	} else if (strcmp(code, "sale_reference") == 0) {
		cm_reply_error(rq, 400, "missing_field", field, "%s", w->w_msg);
	} else if (strcmp(code, "topic_not_optional") == 0) {
		cm_reply_error(rq, 422, "topic_not_optional", field, "%s", w->w_msg);
	} else if (strcmp(code, "same_subject") == 0) {
		cm_reply_error(rq, 400, "same_subject", field, "%s", w->w_msg);
	} else if (strcmp(code, "invalid_attribute") == 0 ||
	    strcmp(code, "too_many_attributes") == 0) {
		char f[96];

		snprintf(f, sizeof(f), "attributes%s%s", w->w_subject[0] ? "." : "",
		    w->w_subject);
		cm_reply_error(rq, 400, code, f, "%s", w->w_msg);
	} else {
		cm_reply_store_error(rq, rc == CM_OK ? CM_IOERR : rc);
	}
}

bool
cm_api_tx_begin(struct cm_request *rq, struct cm_ctx *cx)
{
	cm_result rc;

	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return false;
	}
	return true;
}

/* Commits when RC is CM_OK, else rolls back. Returns the final result. */
cm_result
cm_api_tx_end(struct cm_ctx *cx, cm_result rc)
{
	if (rc != CM_OK) {
		cm_db_rollback(cx->cx_db);
		return rc;
	}
	return cm_db_commit(cx->cx_db);
}

