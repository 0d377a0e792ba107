/* SPDX-License-Identifier: ISC */
/*
 * Aggregate reports, which name no one: unsubscribe reasons counted by
 * month, and the measurement holdout's group sizes per purpose (counted
 * by core, src/core/reports.c).
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/consent.h"
#include "consentd/policy.h"
#include "consentd/reports.h"
#include "consentd/util.h"

static int
report_row(void *arg, const char *month, const char *reason, int64_t n)
{
	json_array_append_new(arg, json_pack("{s:s, s:s, s:I}", "month", month, "reason", reason,
	    "count", (json_int_t)n));
	return 0;
}

void
cm_api_report_unsubscribe(struct cm_request *rq)
{
	struct cm_ctx cx;
	json_t *list;
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    !cm_api_ctx(rq, &cx))
		return;
	list = json_array();
	if ((rc = cm_store_unsubscribe_report(cx.cx_db, report_row, list)) != CM_OK) {
		json_decref(list);
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:o}", "reasons", list));
}

void
cm_api_report_holdout(struct cm_request *rq)
{
	struct cm_holdout_report hr;
	const struct cm_holdout_group *g;
	struct cm_ctx cx;
	json_t *list;
	size_t i;
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    !cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_holdout_report(&cx, &hr)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	list = json_array();
	for (i = 0; i < hr.hr_ngroups; i++) {
		g = &hr.hr_groups[i];
		json_array_append_new(list, json_pack("{s:s, s:i, s:I, s:I}", "purpose",
		    g->hg_purpose->pu_id, "holdout_percent", g->hg_purpose->pu_holdout_percent,
		    "control", (json_int_t)g->hg_control, "treatment",
		    (json_int_t)g->hg_treatment));
	}
	cm_reply_json(rq, 200, json_pack("{s:I, s:o}", "active_subjects",
	    (json_int_t)hr.hr_active, "purposes", list));
	cm_holdout_report_free(&hr);
}
