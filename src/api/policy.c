/* SPDX-License-Identifier: ISC */
/*
 * The policy routes. GET /v1/policy: the retailer's policy as loaded and
 * validated at start-up, with defaults filled in. GET /v1/policy/notices
 * and /v1/policy/notices/{purpose}/{version}: the notice text of every
 * purpose version the service has served, as stored at start-up, so what a
 * person was told when they decided can be shown and checked against its
 * SHA-256, also for versions and purposes the policy no longer has. All of
 * it is information the controller must give data subjects (GDPR Arts. 13
 * and 14), so it needs no token.
 */
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/notice.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

void
cm_api_policy_get(struct cm_request *rq)
{
	const struct cm_policy *p = cm_req_app(rq)->app_policy;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }))
		return;
	cm_reply_bytes(rq, 200, "application/json; charset=utf-8", p->pol_public,
	    p->pol_public_len);
}

struct notices_walk {
	json_t	*nw_list;
	bool	 nw_bad;	/* a stored text is not JSON */
};

static int
notices_add(void *arg, const struct cm_notice_row *row)
{
	struct notices_walk *w = arg;
	json_t *n;

	if ((n = cm_notice_json(row)) == NULL) {
		w->nw_bad = true;
		return 1;
	}
	json_array_append_new(w->nw_list, n);
	return 0;
}

void
cm_api_policy_notices(struct cm_request *rq)
{
	static const char *const params[] = { "purpose", NULL };
	const struct cm_policy *p = cm_req_app(rq)->app_policy;
	struct notices_walk w = { NULL, false };
	const char *purpose;
	struct cm_db *db;
	cm_result rc;

	if (!cm_req_query_check(rq, params))
		goto out;
	purpose = cm_req_query(rq, "purpose");
	if ((db = cm_store_db(cm_req_app(rq)->app_store)) == NULL) {
		cm_reply_store_error(rq, CM_IOERR);
		goto out;
	}
	w.nw_list = json_array();
	if ((rc = cm_store_notice_list(db, purpose, notices_add, &w)) != CM_OK ||
	    w.nw_bad) {
		cm_reply_store_error(rq, rc != CM_OK ? rc : CM_IOERR);
		goto out;
	}
	/* A purpose neither in the policy nor in its history is unknown. */
	if (purpose != NULL && json_array_size(w.nw_list) == 0 &&
	    cm_policy_purpose_index(p, purpose) < 0) {
		cm_reply_error(rq, 422, "unknown_purpose", "purpose", "neither the policy "
		    "nor its history has this purpose");
		goto out;
	}
	cm_reply_json(rq, 200, json_pack("{s:O}", "notices", w.nw_list));
out:
	json_decref(w.nw_list);
}

static int
notice_one(void *arg, const struct cm_notice_row *row)
{
	*(json_t **)arg = cm_notice_json(row);
	return 0;
}

void
cm_api_policy_notice_get(struct cm_request *rq)
{
	const char *purpose = cm_req_param(rq, 0), *vs = cm_req_param(rq, 1);
	struct cm_db *db;
	json_t *notice = NULL;
	int64_t version;
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }))
		goto out;
	if (cm_parse_i64(vs, 1, INT32_MAX, &version) != 0) {
		cm_reply_error(rq, 400, "invalid_parameter", "version", "a version is an "
		    "integer from 1");
		goto out;
	}
	if ((db = cm_store_db(cm_req_app(rq)->app_store)) == NULL) {
		cm_reply_store_error(rq, CM_IOERR);
		goto out;
	}
	rc = cm_store_notice_get(db, purpose, version, notice_one, &notice);
	if (rc == CM_NOTFOUND) {
		cm_reply_error(rq, 404, "not_found", NULL, "version %lld of purpose %s "
		    "was never served", (long long)version, purpose);
		goto out;
	}
	if (rc != CM_OK || notice == NULL) {
		cm_reply_store_error(rq, rc != CM_OK ? rc : CM_IOERR);
		goto out;
	}
	cm_reply_json(rq, 200, notice);
	notice = NULL;
out:
	json_decref(notice);
}
