/* SPDX-License-Identifier: ISC */
/*
 * Token routes: the calling token's own name and scopes, and for admins
 * the list of every token's name, scopes and state. Tokens themselves are
 * never stored, so never shown.
 */
#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/scope.h"
#include "consentd/store.h"
#include "consentd/util.h"

void
cm_api_token_self(struct cm_request *rq)
{
	cm_reply_json(rq, 200, json_pack("{s:s, s:o}", "name", cm_req_client(rq),
	    "scopes", cm_scope_json(cm_req_scopes(rq))));
}

static int
tokens_list_row(void *arg, const struct cm_token_row *row)
{
	json_t *list = arg;
	char created[32], revoked[32];

	cm_time_format(created, row->t_created_us);
	if (row->t_revoked_us)
		cm_time_format(revoked, row->t_revoked_us);
	json_array_append_new(list, json_pack("{s:s, s:o, s:s, s:s?}",
	    "name", row->t_name, "scopes", cm_scope_json(row->t_scopes),
	    "created_at", created, "revoked_at", row->t_revoked_us ? revoked : NULL));
	return 0;
}

void
cm_api_tokens_list(struct cm_request *rq)
{
	struct cm_db *db;
	json_t *list;
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }))
		return;
	if ((db = cm_store_db(cm_req_app(rq)->app_store)) == NULL) {
		cm_reply_store_error(rq, CM_IOERR);
		return;
	}
	list = json_array();
	if ((rc = cm_store_token_list(db, tokens_list_row, list)) != CM_OK) {
		json_decref(list);
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:o}", "tokens", list));
}
