/* SPDX-License-Identifier: ISC */
/*
 * What comes back to a data-subject request from outside: each downstream
 * system's report on the event it was called for (and the completion of
 * the request once all have applied it), and each delivery of the
 * outbox, recorded in the request's timeline.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/dsr.h"
#include "consentd/outbox.h"
#include "consentd/util.h"
#include "dsr_int.h"

struct pending_walk {
	size_t	 open;		/* still pending, or failed */
};

static int
count_open(void *arg, const char *system, const char *status, const char *detail,
    int64_t updated)
{
	struct pending_walk *pw = arg;

	(void)system;
	(void)detail;
	(void)updated;
	if (strcmp(status, "completed") != 0 && strcmp(status, "no_data") != 0)
		pw->open++;
	return 0;
}

cm_result
cm_dsr_system_report(const struct cm_ctx *cx, const char *id, const char *system,
    const char *status, const char *detail, json_t **out, struct cm_why *w)
{
	struct pending_walk pw = { 0 };
	struct dsr_req r;
	char was[16];
	cm_result rc;

	*out = NULL;
	if ((rc = dsr_req_load(cx, id, &r, w)) != CM_OK)
		goto out;
	if ((rc = cm_store_dsr_system_get(cx->cx_db, id, system, was)) == CM_NOTFOUND) {
		cm_why_set(w, "not_found", "this system was not called for this request");
		snprintf(w->w_field, sizeof(w->w_field), "name");
	}
	if (rc != CM_OK)
		goto out;
	if ((rc = cm_store_dsr_system_put(cx->cx_db, id, system, status, detail,
	    cx->cx_now)) != CM_OK ||
	    (rc = dsr_record(cx, &r, "system_reported", r.status, NULL,
	    json_pack("{s:s, s:s, s:b}", "system", system, "result", status, "detail_given",
	    detail != NULL))) != CM_OK ||
	    (rc = cm_store_dsr_systems(cx->cx_db, id, count_open, &pw)) != CM_OK)
		goto out;
	if (r.status == CM_DSR_AWAITING_SYSTEMS && pw.open == 0 &&
	    (rc = dsr_record(cx, &r, "completed", CM_DSR_COMPLETED, NULL,
	    json_pack("{s:s}", "by", "systems"))) == CM_OK)
		rc = dsr_notify(cx, &r, "completion", NULL);
	if (rc == CM_OK)
		rc = cm_dsr_get(cx, id, out, w);
out:
	dsr_req_free(&r);
	return rc;
}

cm_result
cm_dsr_delivered(const struct cm_ctx *cx, const char *id, const char *name,
    const char *system, bool sent, int64_t attempts)
{
	struct dsr_req r;
	struct cm_why w;
	json_t *d;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((rc = dsr_req_load(cx, id, &r, &w)) != CM_OK)
		goto out;
	d = json_pack("{s:s, s:I}", system ? "event" : "message", name, "attempts",
	    (json_int_t)attempts);
	if (system != NULL)
		json_object_set_new(d, "system", json_string(system));
	rc = dsr_record(cx, &r, system != NULL ? (sent ? "system_notified" :
	    "system_unreachable") : (sent ? "message_sent" : "message_failed"), r.status,
	    NULL, d);
out:
	dsr_req_free(&r);
	return rc;
}
