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

/* A page of the report: rows by (month, reason), after the cursor's. */
struct report_page {
	json_t		*list;
	const char	*after;		/* "MONTH/REASON" of the cursor, or NULL */
	int		 limit;		/* 0: every row */
	char		 last[64];
	bool		 more;
};

/* A report cursor: "r." and the last row's "MONTH/REASON". */
#define REPORT_CURSOR	"r."

static int
report_row(void *arg, const char *month, const char *reason, int64_t n)
{
	struct report_page *rp = arg;
	char key[64];

	/* Months are "YYYY-MM" and reasons [a-z_]: "/" sorts below both. */
	snprintf(key, sizeof(key), "%s/%s", month, reason);
	if (rp->after != NULL && strcmp(key, rp->after) <= 0)
		return 0;
	if (rp->limit > 0 && json_array_size(rp->list) == (size_t)rp->limit) {
		rp->more = true;
		return 1;
	}
	snprintf(rp->last, sizeof(rp->last), "%s", key);
	json_array_append_new(rp->list, json_pack("{s:s, s:s, s:I}", "month", month, "reason",
	    reason, "count", (json_int_t)n));
	return 0;
}

void
cm_api_report_unsubscribe(struct cm_request *rq)
{
	struct report_page rp;
	struct cm_ctx cx;
	const char *cursor;
	char next[80];
	cm_result rc;

	memset(&rp, 0, sizeof(rp));
	if (!cm_req_query_check(rq, (const char *const[]){ "cursor", "limit", NULL }) ||
	    !cm_api_paging(rq, "cursor", 0, 1000, &rp.limit, &cursor))
		return;
	if (cursor != NULL) {
		if (strncmp(cursor, REPORT_CURSOR, strlen(REPORT_CURSOR)) != 0 ||
		    strchr(cursor, '/') == NULL) {
			cm_reply_error(rq, 400, "invalid_parameter", "cursor",
			    "not a cursor this service gave");
			return;
		}
		rp.after = cursor + strlen(REPORT_CURSOR);
	}
	if (!cm_api_ctx(rq, &cx))
		return;
	rp.list = json_array();
	if ((rc = cm_store_unsubscribe_report(cx.cx_db, report_row, &rp)) != CM_OK) {
		json_decref(rp.list);
		cm_reply_store_error(rq, rc);
		return;
	}
	snprintf(next, sizeof(next), REPORT_CURSOR "%s", rp.last);
	cm_reply_json(rq, 200, json_pack("{s:o, s:s?}", "reasons", rp.list, "next_cursor",
	    rp.more ? next : NULL));
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
