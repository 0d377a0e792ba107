/* SPDX-License-Identifier: ISC */
/*
 * GET /v1/dsr/{id}/package (dsr:admin): the access or portability package
 * a processed request holds, decrypted while it is sent (the body is
 * streamed a block at a time, never whole in memory). ?format=json (the
 * default, the signed consentd-export/1 document) or ?format=csv
 * (portability only). 409 with package_not_ready, package_expired or
 * subject_erased when there is none to give; an expired one is destroyed
 * on the spot.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/dsr.h"
#include "consentd/util.h"

static long
package_read(void *arg, void *buf, size_t len)
{
	long n = cm_dsr_package_read(arg, buf, len);

	if (n < 0)
		cm_log(CM_LOG_ERROR, "package_stream_failed", NULL);
	return n;
}

static void
package_free(void *arg)
{
	cm_dsr_package_close(arg);
}

/* Destroys expired packages in a transaction of its own (best effort). */
static void
sweep(struct cm_request *rq)
{
	struct cm_ctx cx;

	if (!cm_api_ctx(rq, &cx) || cm_db_begin(cx.cx_db) != CM_OK)
		return;
	(void)cm_api_tx_end(&cx, cm_dsr_packages_sweep(&cx));
}

void
cm_api_dsr_package(struct cm_request *rq)
{
	struct cm_package_reader *r = NULL;
	enum cm_package_format fmt = CM_PACKAGE_JSON;
	const char *id = cm_req_param(rq, 0), *v;
	struct cm_why w;
	struct cm_ctx cx;
	uint64_t size;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((v = cm_req_query(rq, "format")) != NULL) {
		if (strcmp(v, "csv") == 0) {
			fmt = CM_PACKAGE_CSV;
		} else if (strcmp(v, "json") != 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "format", "json or csv");
			return;
		}
	}
	if (strlen(id) != CM_DSR_ID_LEN || strncmp(id, "dsr_", 4) != 0) {
		cm_reply_error(rq, 404, "not_found", "id", "no such request");
		return;
	}
	if (!cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_dsr_package_open(&cx, id, fmt, &r, &size, &w)) != CM_OK) {
		if (w.w_code != NULL && strcmp(w.w_code, "invalid_parameter") == 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "format", "%s", w.w_msg);
			return;
		}
		cm_api_fail(rq, rc, &w, "id");
		if (w.w_code != NULL && strcmp(w.w_code, "package_expired") == 0)
			sweep(rq);
		return;
	}
	cm_reply_stream(rq, 200, fmt == CM_PACKAGE_CSV ? "text/csv; charset=utf-8" :
	    "application/json; charset=utf-8", size, package_read, package_free, r);
}

/*
 * GET /v1/me/requests/{id}/package (session): the same stream, for the
 * session's own person only and only for an access or portability
 * request. Anyone else's request, or one of another type, is a 404, so
 * a session cannot learn which request ids exist.
 */
void
cm_api_me_package(struct cm_request *rq)
{
	struct cm_package_reader *r = NULL;
	const char *id = cm_req_param(rq, 0), *owner, *type;
	json_t *req = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	uint64_t size;
	cm_result rc;
	bool mine;

	memset(&w, 0, sizeof(w));
	if (strlen(id) != CM_DSR_ID_LEN || strncmp(id, "dsr_", 4) != 0 ||
	    !cm_api_ctx(rq, &cx)) {
		if (!cm_req_replied(rq))
			cm_reply_error(rq, 404, "not_found", "id", "no such request");
		return;
	}
	if ((rc = cm_dsr_get(&cx, id, &req, &w)) != CM_OK && rc != CM_NOTFOUND) {
		cm_api_fail(rq, rc, &w, "id");
		return;
	}
	owner = json_string_value(json_object_get(req, "subject_id"));
	type = json_string_value(json_object_get(req, "type"));
	mine = rc == CM_OK && owner != NULL && type != NULL &&
	    strcmp(owner, cm_req_subject(rq)) == 0 &&
	    (strcmp(type, "access") == 0 || strcmp(type, "portability") == 0);
	json_decref(req);
	if (!mine) {
		cm_reply_error(rq, 404, "not_found", "id", "no such request");
		return;
	}
	memset(&w, 0, sizeof(w));
	if ((rc = cm_dsr_package_open(&cx, id, CM_PACKAGE_JSON, &r, &size, &w)) != CM_OK) {
		cm_api_fail(rq, rc, &w, "id");
		if (w.w_code != NULL && strcmp(w.w_code, "package_expired") == 0)
			sweep(rq);
		return;
	}
	cm_reply_stream(rq, 200, "application/json; charset=utf-8", size, package_read,
	    package_free, r);
}
