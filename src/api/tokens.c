/* SPDX-License-Identifier: ISC */
/*
 * Token routes: the calling token's own name and scopes, and for admins
 * the list of every token's name, scopes and state. Tokens themselves are
 * never stored, so never shown.
 */
#include <string.h>

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

/* A page of the token list: newest first, after the cursor's id. */
struct token_page {
	json_t		*list;
	int64_t		 before;	/* ids below this one (0: from the newest) */
	int		 limit;		/* 0: every token */
	int		 n;
	int64_t		 last;
	bool		 more;
};

#define TOKEN_CURSOR	"t"

static int
tokens_list_row(void *arg, const struct cm_token_row *row)
{
	struct token_page *tp = arg;
	char created[32], revoked[32];

	if (tp->before > 0 && row->t_id >= tp->before)
		return 0;
	if (tp->limit > 0 && tp->n == tp->limit) {
		tp->more = true;
		return 1;
	}
	tp->n++;
	tp->last = row->t_id;
	cm_time_format(created, row->t_created_us);
	if (row->t_revoked_us)
		cm_time_format(revoked, row->t_revoked_us);
	json_array_append_new(tp->list, json_pack("{s:s, s:o, s:s, s:s?}",
	    "name", row->t_name, "scopes", cm_scope_json(row->t_scopes),
	    "created_at", created, "revoked_at", row->t_revoked_us ? revoked : NULL));
	return 0;
}

void
cm_api_tokens_list(struct cm_request *rq)
{
	struct token_page tp;
	struct cm_db *db;
	const char *cursor;
	char next[32];
	cm_result rc;

	memset(&tp, 0, sizeof(tp));
	if (!cm_req_query_check(rq, (const char *const[]){ "cursor", "limit", NULL }) ||
	    !cm_api_paging(rq, "cursor", 0, 1000, &tp.limit, &cursor))
		return;
	if (cursor != NULL && (cm_cursor_parse(cursor, TOKEN_CURSOR, &tp.before) != 0 ||
	    tp.before == 0)) {
		cm_reply_error(rq, 400, "invalid_parameter", "cursor",
		    "not a cursor this service gave");
		return;
	}
	if ((db = cm_store_db(cm_req_app(rq)->app_store)) == NULL) {
		cm_reply_store_error(rq, CM_IOERR);
		return;
	}
	tp.list = json_array();
	if ((rc = cm_store_token_list(db, tokens_list_row, &tp)) != CM_OK) {
		json_decref(tp.list);
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_cursor_format(next, sizeof(next), TOKEN_CURSOR, tp.last);
	cm_reply_json(rq, 200, json_pack("{s:o, s:s?}", "tokens", tp.list, "next_cursor",
	    tp.more ? next : NULL));
}
