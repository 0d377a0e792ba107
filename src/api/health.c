/* SPDX-License-Identifier: ISC */
/*
 * Health and metadata routes that need no token: liveness, readiness (the
 * store answers a read and the server is not draining), the Global Privacy
 * Control support resource (the Prometheus metrics: src/api/metrics.c).
 */
#include <stdatomic.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

void
cm_api_healthz(struct cm_request *rq)
{
	cm_reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

void
cm_api_readyz(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	cm_result rc;

	if (atomic_load(&app->app_draining)) {
		cm_reply_error(rq, 503, "draining", NULL, "the server is shutting down");
		return;
	}
	if ((rc = cm_store_ping(cm_store_db(app->app_store))) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s}", "status", "ready"));
}

void
cm_api_gpc(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);

	/* GPC spec §4: {"gpc": true, "lastUpdate": "YYYY-MM-DD"}. */
	cm_reply_json(rq, 200, json_pack("{s:b, s:s}", "gpc", 1, "lastUpdate",
	    app->app_policy->pol_gpc_last_update));
}
