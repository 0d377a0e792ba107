/* SPDX-License-Identifier: ISC */
/*
 * Consent decisions: POST /v1/consents records one (validated here, then
 * written by the group commit, so it is durable before it is
 * acknowledged), and GET /v1/subjects/{id}/consents lists a subject's
 * current consents or, with ?history=true, every event (evidence only for
 * subjects:read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/identifier.h"
#include "consentd/policy.h"
#include "consentd/scope.h"
#include "consentd/util.h"

#define EVIDENCE_FIELD_MAX	2048

static const struct cm_purpose *
get_purpose(struct cm_request *rq, const char *id, const char *field)
{
	const struct cm_policy *pol = cm_req_app(rq)->app_policy;
	int i;

	if ((i = cm_policy_purpose_index(pol, id)) < 0) {
		cm_reply_error(rq, 422, "unknown_purpose", field, "the policy has no such purpose");
		return NULL;
	}
	return &pol->pol_purposes[i];
}

/* The channel index of ID for P; -1 with a 422 reply. */
static int
get_channel(struct cm_request *rq, const struct cm_purpose *p, const char *id,
    const char *field)
{
	const struct cm_policy *pol = cm_req_app(rq)->app_policy;
	int c;

	if ((c = cm_policy_channel_index(pol, id)) < 0) {
		cm_reply_error(rq, 422, "unknown_channel", field, "the policy has no such channel");
		return -1;
	}
	if (p != NULL && !(p->pu_channels & (UINT64_C(1) << c))) {
		cm_reply_error(rq, 422, "channel_not_used", field,
		    "purpose %s does not use this channel", p->pu_id);
		return -1;
	}
	return c;
}

static bool
valid_request_id(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CM_REQUEST_ID_MAX && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

static bool
check_evidence(struct cm_request *rq, json_t *ev)
{
	static const char *const fields[] = { "url", "ip", "user_agent", "notice_sha256",
	    "form_id", "sale_reference", NULL };
	const char *k;
	json_t *v;
	char f[48];

	if (!json_is_object(ev)) {
		cm_reply_error(rq, 400, "invalid_field", "evidence", "must be an object");
		return false;
	}
	json_object_foreach(ev, k, v) {
		size_t i;

		for (i = 0; fields[i] != NULL && strcmp(fields[i], k) != 0; i++)
			;
		snprintf(f, sizeof(f), "evidence.%.*s", cm_utf8_prefix(k, 30), k);
		if (fields[i] == NULL) {
			cm_reply_error(rq, 400, "unknown_field", f, "unknown field");
			return false;
		}
		if (!json_is_string(v) || json_string_length(v) > EVIDENCE_FIELD_MAX ||
		    json_string_length(v) != strlen(json_string_value(v))) {
			cm_reply_error(rq, 400, "invalid_field", f, "must be a string of at most %d "
			    "bytes", EVIDENCE_FIELD_MAX);
			return false;
		}
		if (strcmp(k, "notice_sha256") == 0 && (json_string_length(v) != 64 ||
		    strspn(json_string_value(v), "0123456789abcdef") != 64)) {
			cm_reply_error(rq, 400, "invalid_field", f, "64 lower-case hex digits");
			return false;
		}
	}
	return true;
}

static json_t *
event_json(const struct cm_event_row *e, bool created)
{
	char ts[32], col[32];

	cm_time_format(ts, e->e_recorded_us);
	cm_time_format(col, e->e_collected_us);
	return json_pack("{s:s, s:s, s:b, s:s, s:s?, s:s, s:I, s:s, s:s, s:s, s:I, s:b}",
	    "event_id", e->e_event_id, "subject_id", e->e_subject, "subject_created", created,
	    "purpose", e->e_purpose, "channel", strcmp(e->e_channel, CM_ALL_CHANNELS) ?
	    e->e_channel : NULL, "state", e->e_state, "notice_version",
	    (json_int_t)e->e_notice_version, "method", e->e_method, "collected_at", col,
	    "recorded_at", ts, "audit_index", (json_int_t)e->e_audit_index, "superseded",
	    e->e_superseded);
}

/* ---- POST /v1/consents ----------------------------------------------------- */

/* A validated consent write, run by the writer thread (group commit). */
struct record_job {
	struct cm_consent_input	 in;
	struct cm_identifier	 ident;
	bool			 gpc;
};

static void
record_free(void *arg)
{
	struct record_job *j = arg;

	cm_wipe(&j->ident, sizeof(j->ident));
	free(j);
}

static cm_result
record_run(struct cm_request *rq, void *arg)
{
	struct record_job *j = arg;
	struct cm_consent_result res;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *out;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_ctx(rq, &cx))
		return CM_IOERR;
	if ((rc = cm_consent_record(&cx, &j->in, &res, &w)) != CM_OK) {
		json_decref(res.cr_event_ids);
		/* The input that named the person; the table knows the rest. */
		cm_api_fail(rq, rc, &w, j->in.ci_subject ? "subject_id" : w.w_code &&
		    strcmp(w.w_code, "suppressed") == 0 ? "identifier" : NULL);
		return rc;
	}
	if (res.cr_replayed) {
		struct cm_subject_row row;

		/* Same transaction time means that request created the subject. */
		res.cr_subject_created = j->in.ci_ident != NULL &&
		    cm_store_subject_get(cx.cx_db, res.cr_event.e_subject, &row) == CM_OK &&
		    row.s_created_us == res.cr_event.e_recorded_us;
	}
	out = event_json(&res.cr_event, res.cr_subject_created);
	if (j->gpc)
		json_object_set(out, "events", res.cr_event_ids);
	json_decref(res.cr_event_ids);
	cm_reply_json(rq, 201, out);
	return CM_OK;
}

/* The members of a POST /v1/consents body, as sent. */
struct record_body {
	const char	*rb_ident;	/* identifier, or NULL */
	const char	*rb_subject;	/* subject_id, or NULL */
	const char	*rb_purpose;
	const char	*rb_channel;
	const char	*rb_state;
	const char	*rb_method;
	const char	*rb_collected;
	const char	*rb_request_id;
	int64_t		 rb_notice;
};

/* Reads BODY's members into *B, each of its type; replies 400 when one is not. */
static bool
record_read(struct cm_request *rq, json_t *body, struct record_body *b)
{
	static const char *const fields[] = { "identifier", "subject_id", "purpose", "channel",
	    "state", "method", "notice_version", "collected_at", "evidence", "request_id", NULL };

	memset(b, 0, sizeof(*b));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "identifier", false, CM_ID_TEXT_MAX, &b->rb_ident) ||
	    !cm_json_get_string(rq, body, "subject_id", false, 64, &b->rb_subject) ||
	    !cm_json_get_string(rq, body, "purpose", false, 64, &b->rb_purpose) ||
	    (!json_is_null(json_object_get(body, "channel")) &&
	    !cm_json_get_string(rq, body, "channel", false, 64, &b->rb_channel)) ||
	    !cm_json_get_string(rq, body, "state", false, 16, &b->rb_state) ||
	    !cm_json_get_string(rq, body, "method", true, 32, &b->rb_method) ||
	    !cm_json_get_int(rq, body, "notice_version", false, 1, INT32_MAX, &b->rb_notice) ||
	    !cm_json_get_string(rq, body, "collected_at", false, 64, &b->rb_collected) ||
	    !cm_json_get_string(rq, body, "request_id", false, 256, &b->rb_request_id))
		return false;
	if ((b->rb_ident == NULL) == (b->rb_subject == NULL)) {
		cm_reply_error(rq, 400, b->rb_ident ? "invalid_field" : "missing_field",
		    b->rb_ident ? "subject_id" : "identifier",
		    "give exactly one of identifier and subject_id");
		return false;
	}
	return true;
}

/*
 * The method, the state, the purpose with its notice version, and the
 * channel, into IN; a Global Privacy Control signal (*GPC) only withdraws,
 * on all channels, the purposes the policy ties to it.
 */
static bool
record_what(struct cm_request *rq, const struct record_body *b,
    struct cm_consent_input *in, bool *gpc)
{
	if (!cm_consent_method_valid(b->rb_method, NULL)) {
		cm_reply_error(rq, 400, "invalid_field", "method", "unknown method");
		return false;
	}
	*gpc = strcmp(b->rb_method, "gpc") == 0;
	in->ci_state = CM_CONSENT_WITHDRAWN;
	if (b->rb_state == NULL && !*gpc) {
		cm_reply_error(rq, 400, "missing_field", "state", "required field is missing");
		return false;
	}
	if (b->rb_state != NULL && cm_consent_state_parse(b->rb_state, &in->ci_state) != 0) {
		cm_reply_error(rq, 400, "invalid_field", "state",
		    "one of granted, withdrawn, refused");
		return false;
	}
	if (*gpc && in->ci_state != CM_CONSENT_WITHDRAWN) {
		cm_reply_error(rq, 400, "invalid_field", "state",
		    "a Global Privacy Control signal only withdraws");
		return false;
	}
	if (b->rb_purpose == NULL && !*gpc) {
		cm_reply_error(rq, 400, "missing_field", "purpose", "required field is missing");
		return false;
	}
	in->ci_channel = -1;
	if (b->rb_purpose != NULL) {
		if ((in->ci_purpose = get_purpose(rq, b->rb_purpose, "purpose")) == NULL)
			return false;
		if (*gpc && !in->ci_purpose->pu_gpc) {
			cm_reply_error(rq, 422, "not_gpc_purpose", "purpose",
			    "the policy does not tie this purpose to the GPC signal");
			return false;
		}
		if (b->rb_notice > in->ci_purpose->pu_version) {
			cm_reply_error(rq, 400, "invalid_field", "notice_version",
			    "purpose %s is at version %lld", in->ci_purpose->pu_id,
			    (long long)in->ci_purpose->pu_version);
			return false;
		}
	}
	if (b->rb_channel != NULL) {
		if (*gpc) {
			cm_reply_error(rq, 400, "invalid_field", "channel",
			    "a GPC signal covers all channels");
			return false;
		}
		if ((in->ci_channel = get_channel(rq, in->ci_purpose, b->rb_channel,
		    "channel")) < 0)
			return false;
	}
	return true;
}

/* collected_at, if given, into *US: an RFC 3339 time from 1970 to now. */
static bool
record_when(struct cm_request *rq, const char *collected, int64_t *us)
{
	if (collected == NULL)
		return true;
	if (cm_api_parse_time(collected, us) != 0) {
		cm_reply_error(rq, 400, "invalid_field", "collected_at",
		    "an RFC 3339 time such as 2026-11-22T10:00:00Z");
		return false;
	}
	if (*us > cm_time_now_us() + CM_COLLECTED_SKEW_US) {
		cm_reply_error(rq, 400, "invalid_field", "collected_at",
		    "must not be in the future");
		return false;
	}
	if (*us < 0) {
		cm_reply_error(rq, 400, "invalid_field", "collected_at",
		    "must not be before 1970");
		return false;
	}
	return true;
}

/* The evidence, if any; a soft opt-in grant must name the sale it rests on. */
static bool
record_evidence(struct cm_request *rq, json_t *body, const struct cm_consent_input *in)
{
	json_t *ev = json_object_get(body, "evidence"), *sale;

	if (ev != NULL && !check_evidence(rq, ev))
		return false;
	sale = json_object_get(ev, "sale_reference");
	if (in->ci_purpose != NULL && in->ci_purpose->pu_basis == CM_BASIS_SOFT_OPT_IN &&
	    in->ci_state == CM_CONSENT_GRANTED && (!json_is_string(sale) ||
	    json_string_length(sale) == 0)) {
		cm_reply_error(rq, 400, "missing_field", "evidence.sale_reference",
		    "a soft opt-in rests on a sale: name the order or quote in whose course "
		    "the details were collected");
		return false;
	}
	return true;
}

void
cm_api_consents_record(struct cm_request *rq)
{
	json_t *body = cm_req_json(rq);
	struct record_body b;
	struct cm_consent_input in;
	struct cm_identifier ident;
	struct record_job *job;
	int64_t collected_us = 0;
	bool gpc;

	memset(&in, 0, sizeof(in));
	memset(&ident, 0, sizeof(ident));
	if (!record_read(rq, body, &b) || !record_what(rq, &b, &in, &gpc) ||
	    !record_when(rq, b.rb_collected, &collected_us) ||
	    !record_evidence(rq, body, &in))
		goto out;
	if (b.rb_request_id != NULL && !valid_request_id(b.rb_request_id)) {
		cm_reply_error(rq, 400, "invalid_field", "request_id",
		    "1-128 of A-Z a-z 0-9 . _ : -");
		goto out;
	}
	if (b.rb_ident != NULL) {
		if (!cm_api_parse_identifier(rq, b.rb_ident, strlen(b.rb_ident), "identifier",
		    &ident))
			goto out;
	} else if (!cm_subject_id_valid(b.rb_subject)) {
		cm_reply_error(rq, 404, "not_found", "subject_id", "no such subject");
		goto out;
	}
	in.ci_subject = b.rb_subject;
	in.ci_method = b.rb_method;
	in.ci_notice_version = b.rb_notice;
	in.ci_collected_us = collected_us;
	in.ci_evidence = json_object_get(body, "evidence");
	in.ci_request_id = b.rb_request_id;
	in.ci_client = cm_req_client(rq);
	job = cm_calloc(1, sizeof(*job));
	job->in = in;
	job->gpc = gpc;
	if (b.rb_ident != NULL) {
		job->ident = ident;
		job->in.ci_ident = &job->ident;
	}
	/*
	 * Durable before it is acknowledged, sharing its fsync with others.
	 * With its request id it may run again when a commit's answer is lost.
	 */
	cm_req_defer(rq, record_run, job, record_free, b.rb_request_id != NULL);
out:
	cm_wipe(&ident, sizeof(ident));
}

/* ---- GET /v1/subjects/{id}/consents ----------------------------------------- */

void
cm_api_consents_list(struct cm_request *rq)
{
	static const char *const params[] = { "history", "cursor", "limit", NULL };
	const char *h, *cursor;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *out;
	int limit;
	cm_result rc;
	bool history = false;

	memset(&w, 0, sizeof(w));
	if (!cm_req_query_check(rq, params))
		return;
	if ((h = cm_req_query(rq, "history")) != NULL) {
		if (strcmp(h, "true") != 0 && strcmp(h, "false") != 0) {
			cm_reply_error(rq, 400, "invalid_parameter", "history", "true or false");
			return;
		}
		history = strcmp(h, "true") == 0;
	}
	/* Without a limit, the whole history as before; pages only for history. */
	if (!cm_api_paging(rq, "cursor", 0, 1000, &limit, &cursor))
		return;
	if (!history && (limit > 0 || cursor != NULL)) {
		cm_reply_error(rq, 400, "invalid_parameter", limit > 0 ? "limit" : "cursor",
		    "pages are for history=true; the current state is one page");
		return;
	}
	if (!cm_api_ctx(rq, &cx))
		return;
	/* Evidence (IP address, user agent) is personal data: subjects:read. */
	rc = cm_consent_history(&cx, cm_req_param(rq, 0), history,
	    (cm_req_scopes(rq) & CM_SCOPE_SUBJECTS_READ) != 0, cursor, limit, &out, &w);
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
