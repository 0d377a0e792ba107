/* SPDX-License-Identifier: ISC */
/*
 * Data-subject requests over HTTP (dsr:admin): receiving, listing,
 * reading, and each step of the workflow. Every write is one
 * transaction; a step that fails writes nothing, except a wrong identity
 * code, whose attempt is kept (and answered 400).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/util.h"

#define SOURCE_MAX	32

static bool
source_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= SOURCE_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

void
cm_api_dsr_create(struct cm_request *rq)
{
	static const char *const fields[] = { "type", "identifier", "jurisdiction", "source",
	    "details", "verified", NULL };
	const char *type = NULL, *ident = NULL, *jur = NULL, *source = "api";
	json_t *body = cm_req_json(rq), *out = NULL;
	struct cm_dsr_input in;
	struct cm_identifier id;
	struct cm_why w;
	struct cm_ctx cx;
	bool verified = false, existing;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	memset(&in, 0, sizeof(in));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "type", true, 32, &type) ||
	    !cm_json_get_string(rq, body, "identifier", true, CM_ID_TEXT_MAX, &ident) ||
	    !cm_json_get_string(rq, body, "jurisdiction", false, 16, &jur) ||
	    !cm_json_get_string(rq, body, "source", false, SOURCE_MAX, &source) ||
	    !cm_json_get_bool(rq, body, "verified", false, &verified))
		return;
	if (cm_dsr_type_parse(type, &in.di_type) != 0) {
		cm_reply_error(rq, 422, "unknown_type", "type", "types are access, portability, "
		    "erasure, rectification, restriction and objection");
		return;
	}
	in.di_jurisdiction = cm_req_app(rq)->app_policy->pol_jurisdiction;
	if (jur != NULL && cm_jurisdiction_parse(jur, &in.di_jurisdiction) != 0) {
		cm_reply_error(rq, 400, "invalid_field", "jurisdiction",
		    "jurisdictions are gdpr, uk_gdpr and ccpa");
		return;
	}
	if (!source_valid(source)) {
		cm_reply_error(rq, 400, "invalid_field", "source",
		    "1 to 32 of a-z, 0-9, _ and -");
		return;
	}
	in.di_details = json_object_get(body, "details");
	if (in.di_details != NULL && !json_is_object(in.di_details)) {
		cm_reply_error(rq, 400, "invalid_field", "details", "must be an object");
		return;
	}
	if (!cm_api_parse_identifier(rq, ident, strlen(ident), "identifier", &id))
		return;
	in.di_ident = &id;
	in.di_source = source;
	in.di_verified = verified;
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		goto out;
	rc = cm_api_tx_end(&cx, cm_dsr_create(&cx, &in, &out, &existing, &w));
	if (rc != CM_OK) {
		json_decref(out);
		cm_api_fail(rq, rc, &w, NULL);
		goto out;
	}
	cm_reply_json(rq, existing ? 200 : 201, out);
out:
	cm_wipe(&id, sizeof(id));
}

void
cm_api_dsr_list(struct cm_request *rq)
{
	struct cm_dsr_filter f;
	enum cm_dsr_status st;
	enum cm_dsr_type t;
	const char *v;
	json_t *out;
	struct cm_why w;
	struct cm_ctx cx;
	int64_t n;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	memset(&f, 0, sizeof(f));
	f.df_status = f.df_type = -1;
	f.df_limit = 50;
	if ((v = cm_req_query(rq, "status")) != NULL) {
		if (cm_dsr_status_parse(v, &st) != 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "status", "not a status");
			return;
		}
		f.df_status = (int)st;
	}
	if ((v = cm_req_query(rq, "type")) != NULL) {
		if (cm_dsr_type_parse(v, &t) != 0) {
			cm_reply_error(rq, 422, "unknown_type", "type", "not a request type");
			return;
		}
		f.df_type = (int)t;
	}
	if ((v = cm_req_query(rq, "subject")) != NULL) {
		if (strlen(v) != CM_SUBJECT_ID_LEN || strncmp(v, "sub_", 4) != 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "subject", "not a subject id");
			return;
		}
		f.df_subject = v;
	}
	if ((v = cm_req_query(rq, "overdue")) != NULL) {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "overdue", "true or false");
			return;
		}
		f.df_overdue = strcmp(v, "true") == 0;
	}
	if ((v = cm_req_query(rq, "limit")) != NULL) {
		if (cm_parse_i64(v, 1, 500, &n) != 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "limit", "1 to 500");
			return;
		}
		f.df_limit = (int)n;
	}
	f.df_cursor = cm_req_query(rq, "cursor");
	if (!cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_dsr_list(&cx, &f, &out, &w)) != CM_OK) {
		if (w.w_code != NULL && strcmp(w.w_code, "invalid_field") == 0)
			cm_reply_error(rq, 400, "invalid_parameter", "cursor", "%s", w.w_msg);
		else
			cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, out);
}

/* The {id} of the path, or a 404 naming it (a malformed id names no request). */
static const char *
dsr_id(struct cm_request *rq)
{
	const char *id = cm_req_param(rq, 0);

	if (strlen(id) != CM_DSR_ID_LEN || strncmp(id, "dsr_", 4) != 0 ||
	    strspn(id + 4, "abcdefghijklmnopqrstuvwxyz234567") != CM_DSR_ID_LEN - 4) {
		cm_reply_error(rq, 404, "not_found", "id", "no such request");
		return NULL;
	}
	return id;
}

void
cm_api_dsr_get(struct cm_request *rq)
{
	const char *id;
	json_t *out;
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((id = dsr_id(rq)) == NULL || !cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_dsr_get(&cx, id, &out, &w)) != CM_OK) {
		cm_api_fail(rq, rc, &w, "id");
		return;
	}
	cm_reply_json(rq, 200, out);
}

/* The steps that take a reason (or note), required, and those that take nothing. */
enum step { STEP_EXTEND, STEP_DENY, STEP_CANCEL, STEP_COMPLETE, STEP_LIFT,
	STEP_PROCESS, STEP_RESEND };

static cm_result
run_step(struct cm_ctx *cx, enum step s, const char *id, const char *text, json_t **out,
    struct cm_why *w)
{
	switch (s) {
	case STEP_EXTEND:
		return cm_dsr_extend(cx, id, text, out, w);
	case STEP_DENY:
		return cm_dsr_deny(cx, id, text, out, w);
	case STEP_CANCEL:
		return cm_dsr_cancel(cx, id, text, out, w);
	case STEP_COMPLETE:
		return cm_dsr_complete(cx, id, text, out, w);
	case STEP_LIFT:
		return cm_dsr_lift(cx, id, text, out, w);
	case STEP_PROCESS:
		return cm_dsr_process(cx, id, out, w);
	case STEP_RESEND:
		return cm_dsr_resend(cx, id, out, w);
	}
	return CM_INVALID;
}

static void
step(struct cm_request *rq, enum step s, const char *field)
{
	const char *fields[] = { field, NULL }, *id, *text = NULL;
	json_t *out = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((id = dsr_id(rq)) == NULL)
		return;
	if (field != NULL) {
		json_t *body = cm_req_json(rq);

		if (!cm_json_check_fields(rq, body, fields) ||
		    !cm_json_get_string(rq, body, field, true, CM_DSR_REASON_MAX, &text))
			return;
		if (text[strspn(text, " \t\r\n")] == '\0') {
			cm_reply_error(rq, 400, "missing_field", field, "a %s is required", field);
			return;
		}
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, run_step(&cx, s, id, text, &out, &w));
	if (rc != CM_OK) {
		json_decref(out);
		cm_api_fail(rq, rc, &w, "id");
		return;
	}
	cm_reply_json(rq, 200, out);
}

void
cm_api_dsr_extend(struct cm_request *rq)
{
	step(rq, STEP_EXTEND, "reason");
}

void
cm_api_dsr_deny(struct cm_request *rq)
{
	step(rq, STEP_DENY, "reason");
}

void
cm_api_dsr_cancel(struct cm_request *rq)
{
	step(rq, STEP_CANCEL, "reason");
}

void
cm_api_dsr_complete(struct cm_request *rq)
{
	step(rq, STEP_COMPLETE, "note");
}

void
cm_api_dsr_lift(struct cm_request *rq)
{
	step(rq, STEP_LIFT, "reason");
}

void
cm_api_dsr_process(struct cm_request *rq)
{
	step(rq, STEP_PROCESS, NULL);
}

void
cm_api_dsr_resend(struct cm_request *rq)
{
	step(rq, STEP_RESEND, NULL);
}

void
cm_api_dsr_verify(struct cm_request *rq)
{
	static const char *const fields[] = { "code", NULL };
	json_t *body = cm_req_json(rq), *out = NULL;
	const char *id, *code = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	bool accepted = false;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((id = dsr_id(rq)) == NULL || !cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "code", true, 16, &code))
		return;
	if (strlen(code) != 6 || strspn(code, "0123456789") != 6) {
		cm_reply_error(rq, 400, "invalid_field", "code", "the code is 6 digits");
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	/* A wrong code's attempt is committed: it must count. */
	rc = cm_api_tx_end(&cx, cm_dsr_verify(&cx, id, code, &accepted, &out, &w));
	if (rc != CM_OK) {
		json_decref(out);
		cm_api_fail(rq, rc, &w, "id");
		return;
	}
	if (!accepted) {
		cm_reply_error(rq, 400, "invalid_code", "code", "%s", w.w_msg);
		return;
	}
	cm_reply_json(rq, 200, out);
}
