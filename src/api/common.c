/* SPDX-License-Identifier: ISC */
/*
 * What the API handlers share: the domain context of a request, the
 * mapping of domain failures to error replies, transactions, and the
 * parsing of what several resources take (times, identifiers, the items
 * of a list).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/core.h"
#include "consentd/identifier.h"
#include "consentd/store.h"
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
 * get. The reply's field is, in order: the field core names (w_field),
 * fr_field, or the caller's. fr_extra names the member of the error object
 * that carries w_subject. A reason not listed here is the store's
 * failure: 503.
 */
static const struct fail_row {
	const char	*fr_why;	/* w_code */
	unsigned	 fr_status;
	const char	*fr_code;	/* the reply's code; NULL: fr_why */
	const char	*fr_field;	/* the field, unless core names one */
	const char	*fr_extra;	/* member holding w_subject, or NULL */
} fail_rows[] = {
	{ "not_found",		   404, NULL, NULL, NULL },
	{ "merged",		   404, NULL, NULL, "merged_into" },
	{ "identifier_not_linked", 404, NULL, NULL, NULL },
	{ "identifier_taken",	   409, NULL, NULL, "subject_id" },
	{ "subject_erased",	   409, NULL, NULL, NULL },
	{ "suppressed",		   409, NULL, NULL, NULL },
	{ "request_id_reused",	   409, NULL, "request_id", NULL },
	{ "sale_reference",	   400, "missing_field", "evidence.sale_reference", NULL },
	{ "same_subject",	   400, NULL, NULL, NULL },
	{ "invalid_attribute",	   400, NULL, "attributes", NULL },
	{ "too_many_attributes",   400, NULL, "attributes", NULL },
	{ "topic_not_optional",	   422, NULL, NULL, NULL },
	{ "not_gpc_purpose",	   422, NULL, "method", NULL },
	{ "invalid_field",	   400, NULL, NULL, NULL },
	{ "no_identifier",	   409, NULL, NULL, NULL },
	{ "missing_field",	   400, NULL, NULL, NULL },
	{ "invalid_transition",	   409, NULL, "status", "status" },
	{ "code_expired",	   409, NULL, "code", NULL },
	{ "notice_pending",	   409, NULL, "status", NULL },
	{ "package_not_ready",	   409, NULL, "status", NULL },
	{ "package_expired",	   409, NULL, "expires_at", NULL },
	{ "invalid_request_type",  409, NULL, "type", NULL },
	{ "system_exists",	   409, NULL, "name", NULL },
	{ "not_dead",		   409, NULL, "status", NULL },
	{ "body_gone",		   409, NULL, "id", NULL },
};

/* Replies for a failed domain call. */
void
cm_api_fail(struct cm_request *rq, cm_result rc, const struct cm_why *w, const char *field)
{
	const struct fail_row *fr = NULL;
	size_t i;

	for (i = 0; w->w_code != NULL && i < CM_NELEM(fail_rows) && fr == NULL; i++)
		if (strcmp(w->w_code, fail_rows[i].fr_why) == 0)
			fr = &fail_rows[i];
	if (fr == NULL) {
		cm_reply_store_error(rq, rc == CM_OK ? CM_IOERR : rc);
		goto out;
	}
	if (w->w_field[0] != '\0') {
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

int
cm_api_parse_time(const char *s, int64_t *us)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0, frac_us = 0, digits = 0, off = 0;
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T')
		return -1;
	p = s + 19;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 6)
				frac_us = frac_us * 10 + (*p - '0');
		if (digits == 0)
			return -1;
		for (; digits < 6; digits++)
			frac_us *= 10;
	}
	if (*p == 'Z' && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int oh, om;

		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59)
			return -1;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
	} else {
		return -1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (tm.tm_mday != d)
		return -1;
	*us = ((int64_t)t - off) * 1000000 + frac_us;
	return 0;
}

bool
cm_api_parse_identifier(struct cm_request *rq, const char *text, size_t len, const char *field,
    struct cm_identifier *out)
{
	char why[160];

	if (cm_identifier_parse(text, len, cm_req_app(rq)->app_policy, out, why,
	    sizeof(why)) != CM_OK) {
		cm_reply_error(rq, 400, "invalid_identifier", field, "%s", why);
		return false;
	}
	return true;
}

json_t *
cm_api_item_error(json_t *item, const char *const *fields, const char *what)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(item))
		return json_pack("{s:{s:s, s:s, s:n}}", "error", "code", "invalid_json",
		    "message", what, "field");
	json_object_foreach(item, k, v) {
		(void)v;
		for (i = 0; fields[i] != NULL && strcmp(fields[i], k) != 0; i++)
			;
		if (fields[i] == NULL)
			return json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "unknown_field",
			    "message", "unknown field", "field", k);
	}
	return NULL;
}
