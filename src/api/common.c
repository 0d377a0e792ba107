/*
 * What the API handlers share: the domain context of a request, the
 * mapping of domain failures to error replies, and transactions.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/store.h"
#include "consentd/core.h"
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

/*
 * The domain's reasons for failing (cm_why.w_code) and the replies they
 * get. The reply's field is, in order: the attribute at fault (fr_attr:
 * fr_field, then "." and the name core puts in w_subject), the field core
 * names (w_field), fr_field, or the caller's. fr_extra names the member of
 * the error object that carries w_subject. A reason not listed here is the
 * store's failure: 503.
 */
static const struct fail_row {
	const char	*fr_why;	/* w_code */
	unsigned	 fr_status;
	const char	*fr_code;	/* the reply's code; NULL: fr_why */
	const char	*fr_field;	/* the field, unless core names one */
	const char	*fr_extra;	/* member holding w_subject, or NULL */
	bool		 fr_attr;	/* the field is fr_field.<w_subject> */
} fail_rows[] = {
	{ "not_found",		   404, NULL, NULL, NULL, false },
	{ "merged",		   404, NULL, NULL, "merged_into", false },
	{ "identifier_not_linked", 404, NULL, NULL, NULL, false },
	{ "identifier_taken",	   409, NULL, NULL, "subject_id", false },
	{ "subject_erased",	   409, NULL, NULL, NULL, false },
	{ "suppressed",		   409, NULL, NULL, NULL, false },
	{ "request_id_reused",	   409, NULL, "request_id", NULL, false },
	{ "sale_reference",	   400, "missing_field", "evidence.sale_reference", NULL, false },
	{ "same_subject",	   400, NULL, NULL, NULL, false },
	{ "invalid_attribute",	   400, NULL, "attributes", NULL, true },
	{ "too_many_attributes",   400, NULL, "attributes", NULL, true },
	{ "topic_not_optional",	   422, NULL, NULL, NULL, false },
};

/* Replies for a failed domain call. */
void
cm_api_fail(struct cm_request *rq, cm_result rc, const struct cm_why *w, const char *field)
{
	const struct fail_row *fr = NULL;
	char attr[96];
	size_t i;

	for (i = 0; w->w_code != NULL && i < CM_NELEM(fail_rows) && fr == NULL; i++)
		if (strcmp(w->w_code, fail_rows[i].fr_why) == 0)
			fr = &fail_rows[i];
	if (fr == NULL) {
		cm_reply_store_error(rq, rc == CM_OK ? CM_IOERR : rc);
		goto out;
	}
	if (fr->fr_attr) {
		snprintf(attr, sizeof(attr), "%s%s%s", fr->fr_field, w->w_subject[0] ? "." : "",
		    w->w_subject);
		field = attr;
	} else if (w->w_field[0] != '\0') {
		field = w->w_field;
	} else if (fr->fr_field != NULL) {
		field = fr->fr_field;
	}
	if (fr->fr_extra != NULL)
		cm_reply_error_with(rq, fr->fr_status, fr->fr_code ? fr->fr_code : fr->fr_why,
		    field, json_pack("{s:s}", fr->fr_extra, w->w_subject), "%s", w->w_msg);
	else
		cm_reply_error(rq, fr->fr_status, fr->fr_code ? fr->fr_code : fr->fr_why, field,
		    "%s", w->w_msg);
out:
	return;
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

