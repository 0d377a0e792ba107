/* SPDX-License-Identifier: ISC */
/*
 * The suppression list, the "do not contact" identifiers whatever their
 * subject: add one (JSON) or a long list (NDJSON, committed line by line,
 * answered with counts and the first 1,000 errors by line), check one,
 * and lift one (admin; never one set by erasure). Only blind indexes are
 * stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/consent.h"
#include "consentd/identifier.h"
#include "consentd/store.h"
#include "consentd/util.h"

/* Adds one suppression; returns the reply object or an {"error"} object. */
static json_t *
suppress_one(struct cm_request *rq, const struct cm_ctx *cx, json_t *item, int *status,
    cm_result *rc)
{
	static const char *const fields[] = { "identifier", "reason", NULL };
	struct cm_identifier ident;
	json_t *id, *re, *err;
	char why[160], reason[16], ts[32];
	int64_t since;
	bool existed;

	(void)rq;
	*rc = CM_OK;
	*status = 400;
	if ((err = cm_api_item_error(item, fields, "an object {identifier, reason}")) != NULL)
		return err;
	id = json_object_get(item, "identifier");
	re = json_object_get(item, "reason");
	if (!json_is_string(id))
		return json_pack("{s:{s:s, s:s, s:s}}", "error", "code", id ? "invalid_identifier" :
		    "missing_field", "message", "an identifier type:value", "field", "identifier");
	if (!json_is_string(re) || !cm_suppression_reason_valid(json_string_value(re)))
		return json_pack("{s:{s:s, s:s, s:s}}", "error", "code", re ? "invalid_field" :
		    "missing_field", "message", "one of unsubscribed, bounced, complained, manual",
		    "field", "reason");
	if (cm_identifier_parse(json_string_value(id), json_string_length(id),
	    cx->cx_policy, &ident, why, sizeof(why)) != CM_OK)
		return json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_identifier",
		    "message", why, "field", "identifier");
	if ((*rc = cm_suppression_add(cx, &ident, json_string_value(re), &existed, reason,
	    &since)) != CM_OK)
		return NULL;
	cm_time_format(ts, since);
	*status = existed ? 200 : 201;
	return json_pack("{s:s, s:b, s:s, s:s, s:b}", "identifier", ident.id_text, "suppressed", 1,
	    "reason", reason, "since", ts, "added", !existed);
}

void
cm_api_suppressions_add(struct cm_request *rq)
{
	struct cm_ctx cx;
	json_t *o;
	int status;
	cm_result rc;

	if (cm_req_ndjson(rq)) {
		cm_api_suppressions_chunk(rq, NULL, 0);
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	o = suppress_one(rq, &cx, cm_req_json(rq), &status, &rc);
	if (o == NULL || json_object_get(o, "error") != NULL) {
		cm_db_rollback(cx.cx_db);
		if (o == NULL)
			cm_reply_store_error(rq, rc);
		else
			cm_reply_json(rq, status, o);
		return;
	}
	if ((rc = cm_api_tx_end(&cx, CM_OK)) != CM_OK) {
		json_decref(o);
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, (unsigned)status, o);
}

/* What a suppression list counts as it goes. */
struct suppress_counts {
	uint64_t	added, existing, errors;
};

static void
suppress_line(struct cm_request *rq, struct cm_ndjson *s, const struct cm_ndjson_line *l)
{
	struct suppress_counts *n = cm_ndjson_data(s, sizeof(*n));
	struct cm_ctx cx;
	json_t *item, *o;
	int status;
	cm_result rc;

	/* A line too long is answered, but not counted among the rejected. */
	if (l->nl_too_long) {
		cm_ndjson_write_json(s, cm_ndjson_too_long(l->nl_lineno));
		return;
	}
	if (!cm_api_ctx(rq, &cx)) {
		cm_ndjson_fail(s, CM_IOERR);
		return;
	}
	if ((item = cm_ndjson_parse(l, &o)) != NULL) {
		if (cm_db_begin(cx.cx_db) != CM_OK) {
			json_decref(item);
			cm_ndjson_fail(s, CM_BUSY);
			return;
		}
		o = suppress_one(rq, &cx, item, &status, &rc);
		json_decref(item);
		if (o == NULL || json_object_get(o, "error") != NULL ||
		    (rc = cm_db_commit(cx.cx_db)) != CM_OK) {
			cm_db_rollback(cx.cx_db);
			if (o == NULL || json_object_get(o, "error") == NULL) {
				json_decref(o);
				cm_ndjson_fail(s, rc);
				return;
			}
		}
	}
	if (json_object_get(o, "error") != NULL) {
		json_object_set_new(o, "line", json_integer((json_int_t)l->nl_lineno));
		n->errors++;
		if (n->errors <= 1000)
			cm_ndjson_write_json(s, o);
		else
			json_decref(o);
		return;
	}
	if (json_is_true(json_object_get(o, "added")))
		n->added++;
	else
		n->existing++;
	json_decref(o);
}

void
cm_api_suppressions_chunk(struct cm_request *rq, const char *data, size_t len)
{
	struct cm_ndjson *s = cm_ndjson_get(rq);
	struct suppress_counts *n = cm_ndjson_data(s, sizeof(*n));
	const struct cm_ndjson_line *lines;
	size_t nlines, i;

	if (!cm_ndjson_failed(s)) {
		nlines = cm_ndjson_lines(s, data, len, &lines);
		for (i = 0; i < nlines && !cm_ndjson_failed(s); i++)
			suppress_line(rq, s, &lines[i]);
	}
	if (data != NULL || !cm_ndjson_end(rq, s))
		return;
	/* The summary, with the first 1,000 errors by line. */
	cm_reply_json(rq, 200, json_pack("{s:I, s:I, s:I, s:o}", "added", (json_int_t)n->added,
	    "existing", (json_int_t)n->existing, "rejected", (json_int_t)n->errors,
	    "errors", cm_ndjson_answers(s)));
}

void
cm_api_suppressions_check(struct cm_request *rq)
{
	static const char *const params[] = { "identifier", NULL };
	struct cm_identifier ident;
	struct cm_ctx cx;
	const char *q;
	char reason[16], ts[32];
	int64_t since;
	cm_result rc;

	if (!cm_req_query_check(rq, params))
		return;
	if ((q = cm_req_query(rq, "identifier")) == NULL) {
		cm_reply_error(rq, 400, "missing_parameter", "identifier",
		    "required query parameter is missing");
		return;
	}
	if (!cm_api_parse_identifier(rq, q, strlen(q), "identifier", &ident) ||
	    !cm_api_ctx(rq, &cx))
		return;
	rc = cm_suppression_check(&cx, &ident, reason, &since);
	if (rc == CM_NOTFOUND) {
		cm_reply_json(rq, 200, json_pack("{s:b, s:n, s:n}", "suppressed", 0, "reason",
		    "since"));
		return;
	}
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_time_format(ts, since);
	cm_reply_json(rq, 200, json_pack("{s:b, s:s, s:s}", "suppressed", 1, "reason", reason,
	    "since", ts));
}

void
cm_api_suppressions_lift(struct cm_request *rq)
{
	struct cm_identifier ident;
	struct cm_ctx cx;
	const char *raw = cm_req_param(rq, 0);
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    !cm_api_parse_identifier(rq, raw, strlen(raw), "identifier", &ident) ||
	    !cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_suppression_lift(&cx, &ident));
	if (rc == CM_NOTFOUND) {
		cm_reply_error(rq, 404, "not_suppressed", "identifier",
		    "this identifier is not on the suppression list");
		return;
	}
	if (rc == CM_CONFLICT) {
		cm_reply_error(rq, 409, "erased", "identifier", "a suppression set by erasure "
		    "is lifted only by a fresh first-party grant from the person");
		return;
	}
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s, s:b}", "identifier", ident.id_text,
	    "suppressed", 0));
}
