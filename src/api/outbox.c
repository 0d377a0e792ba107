/* SPDX-License-Identifier: ISC */
/*
 * The outbox and downstream systems over HTTP: the operator's view of
 * the outbox and its retry (admin), registering systems (admin), and the
 * systems' callbacks on requests, which carry no token: each is signed
 * with the system's own secret (X-Consentd-Signature, as its webhooks
 * are), checked before anything else is read, and refused with 401 and
 * nothing written when the system is unknown or the signature is bad or
 * stale.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/outbox.h"
#include "consentd/util.h"

#define DETAIL_MAX	500

static const char *const statuses[] = { "pending", "sent", "dead", NULL };

void
cm_api_outbox_list(struct cm_request *rq)
{
	const char *status = cm_req_query(rq, "status"), *cursor;
	struct cm_why w;
	struct cm_ctx cx;
	int limit;
	json_t *out;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (status != NULL && cm_strv_index(statuses, status) < 0) {
		cm_reply_error(rq, 400, "invalid_parameter", "status",
		    "pending, sent or dead");
		return;
	}
	if (!cm_api_paging(rq, "cursor", 100, 1000, &limit, &cursor) ||
	    !cm_api_ctx(rq, &cx))
		return;
	rc = cm_outbox_page(&cx, status, cursor, limit, &out, &w);
	if (rc == CM_INVALID && w.w_field[0] != '\0') {
		cm_reply_error(rq, 400, "invalid_parameter", w.w_field, "%s", w.w_msg);
		return;
	}
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, out);
}

void
cm_api_outbox_retry(struct cm_request *rq)
{
	const char *id = cm_req_param(rq, 0);
	json_t *out = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (strlen(id) != CM_OUTBOX_ID_LEN || strncmp(id, "obx_", 4) != 0) {
		cm_reply_error(rq, 404, "not_found", "id", "no such outbox row");
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_outbox_retry(&cx, id, &out, &w));
	if (rc != CM_OK) {
		json_decref(out);
		cm_api_fail(rq, rc, &w, "id");
		return;
	}
	cm_reply_json(rq, 200, out);
}

/* Wipes SECRET (a string of RQ's parsed body) and the body's raw bytes. */
static void
secret_wipe(struct cm_request *rq, const char *secret)
{
	size_t len;
	char *raw = (char *)(uintptr_t)cm_req_body(rq, &len);

	cm_wipe((void *)(uintptr_t)secret, strlen(secret));
	if (len > 0)
		cm_wipe(raw, len);
}

void
cm_api_systems_add(struct cm_request *rq)
{
	static const char *const fields[] = { "name", "url", "events", "secret", NULL };
	json_t *body = cm_req_json(rq), *events, *out = NULL;
	const char *name = NULL, *url = NULL, *secret = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	bool insecure;
	char esc[160];
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "name", true, CM_SYSTEM_NAME_MAX, &name) ||
	    !cm_json_get_string(rq, body, "url", true, CM_SYSTEM_URL_MAX, &url) ||
	    !cm_json_get_string(rq, body, "secret", true, CM_SYSTEM_SECRET_MAX, &secret))
		return;
	if ((events = json_object_get(body, "events")) == NULL) {
		cm_reply_error(rq, 400, "missing_field", "events", "events is required");
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_system_add(&cx, name, url, events, secret, &insecure, &out,
	    &w));
	/* The secret is kept sealed only: its copies in the request go now. */
	secret_wipe(rq, secret);
	if (rc != CM_OK) {
		json_decref(out);
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	if (insecure)
		cm_log(CM_LOG_WARN, "system_url_insecure", ",\"system\":\"%s\",\"msg\":"
		    "\"webhooks to this system go over plain http\"",
		    cm_json_escape(esc, sizeof(esc), name));
	cm_reply_json(rq, 201, out);
}

/* A systems cursor: the name of the last system of the page. */
#define SYSTEM_CURSOR	"sys."

/*
 * Cuts OUT's "systems" (sorted by name, names unique) to the LIMIT after
 * the name AFTER (LIMIT 0: all), and adds "next_cursor".
 */
static void
systems_page(json_t *out, const char *after, int limit)
{
	json_t *all = json_object_get(out, "systems"), *page = json_array();
	const char *name, *last = NULL;
	char next[CM_SYSTEM_NAME_MAX + 8];
	bool more = false;
	size_t i;

	for (i = 0; i < json_array_size(all); i++) {
		name = json_string_value(json_object_get(json_array_get(all, i), "name"));
		if (name == NULL || (after != NULL && strcmp(name, after) <= 0))
			continue;
		if (limit > 0 && json_array_size(page) == (size_t)limit) {
			more = true;
			break;
		}
		json_array_append(page, json_array_get(all, i));
		last = name;
	}
	if (more)
		snprintf(next, sizeof(next), SYSTEM_CURSOR "%s", last);
	json_object_set_new(out, "next_cursor", more ? json_string(next) : json_null());
	json_object_set_new(out, "systems", page);
}

void
cm_api_systems_list(struct cm_request *rq)
{
	const char *cursor;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *out;
	int limit;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_paging(rq, "cursor", 0, 1000, &limit, &cursor))
		return;
	if (cursor != NULL && (strncmp(cursor, SYSTEM_CURSOR, strlen(SYSTEM_CURSOR)) != 0 ||
	    cursor[strlen(SYSTEM_CURSOR)] == '\0')) {
		cm_reply_error(rq, 400, "invalid_parameter", "cursor",
		    "not a cursor this service gave");
		return;
	}
	if (!cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_systems_list(&cx, &out)) != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	systems_page(out, cursor ? cursor + strlen(SYSTEM_CURSOR) : NULL, limit);
	cm_reply_json(rq, 200, out);
}

void
cm_api_systems_remove(struct cm_request *rq)
{
	const char *name = cm_req_param(rq, 0);
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_system_remove(&cx, name, &w));
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, "name");
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s, s:b}", "name", name, "removed", 1));
}

/*
 * Whether RQ is signed by system NAME: its secret, over the body as
 * received. Replies 401 (or 503) and returns false otherwise.
 */
static bool
callback_signed(struct cm_request *rq, struct cm_ctx *cx, const char *name)
{
	struct cm_system_row sys;
	const char *sig = cm_req_header(rq, "X-Consentd-Signature"), *body;
	uint8_t *secret = cm_secure_alloc(CM_SYSTEM_SECRET_MAX);
	size_t slen = 0, blen;
	cm_result rc;
	bool ok = false;

	body = cm_req_body(rq, &blen);
	if ((rc = cm_db_read_begin(cx->cx_db)) == CM_OK) {
		rc = cm_system_secret(cx, name, &sys, secret, &slen);
		cm_db_read_end(cx->cx_db);
	}
	if (rc == CM_NOTFOUND)
		cm_reply_error(rq, 401, "unknown_system", "name", "no system of that name "
		    "is registered");
	else if (rc != CM_OK)
		cm_reply_store_error(rq, rc);
	else if (sig == NULL)
		cm_reply_error(rq, 401, "missing_signature", "X-Consentd-Signature",
		    "sign the body: t=<unix time>,v1=<hex HMAC-SHA256 of \"t.body\">");
	else if (cm_signature_check(sig, secret, slen, body, blen, cx->cx_now / 1000000) != 0)
		cm_reply_error(rq, 401, "bad_signature", "X-Consentd-Signature",
		    "the signature does not match the body and this system's secret, or its "
		    "time is more than %d seconds away", CM_SIGNATURE_TOLERANCE_S);
	else
		ok = true;
	cm_wipe(&sys, sizeof(sys));
	cm_secure_free(secret);
	return ok;
}

void
cm_api_dsr_system_report(struct cm_request *rq)
{
	static const char *const fields[] = { "status", "detail", NULL };
	static const char *const results[] = { "completed", "failed", "no_data", NULL };
	const char *id = cm_req_param(rq, 0), *name = cm_req_param(rq, 1);
	const char *status = NULL, *detail = NULL;
	json_t *body = cm_req_json(rq), *out = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_ctx(rq, &cx) || !callback_signed(rq, &cx, name))
		return;
	snprintf(cx.cx_actor, sizeof(cx.cx_actor), "system:%s", name);
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "status", true, 16, &status) ||
	    !cm_json_get_string(rq, body, "detail", false, DETAIL_MAX, &detail))
		return;
	if (cm_strv_index(results, status) < 0) {
		cm_reply_error(rq, 400, "invalid_field", "status",
		    "completed, failed or no_data");
		return;
	}
	if (strlen(id) != CM_DSR_ID_LEN || strncmp(id, "dsr_", 4) != 0) {
		cm_reply_error(rq, 404, "not_found", "id", "no such request");
		return;
	}
	if (!cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_dsr_system_report(&cx, id, name, status, detail, &out, &w));
	if (rc != CM_OK) {
		json_decref(out);
		cm_api_fail(rq, rc, &w, "id");
		return;
	}
	/* The system learns what it reported and where the request stands, no more. */
	cm_reply_json(rq, 200, json_pack("{s:s, s:s, s:s, s:O}", "request_id", id, "system",
	    name, "status", status, "request_status", json_object_get(out, "status")));
	json_decref(out);
}
