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
