/*
 * Consent routes: record a decision, check one or many (JSON up to
 * 10,000; NDJSON streamed line by line for lists of any length), list
 * current consents or the history, preferences, unsubscribe, the
 * suppression list and the aggregate reports. A check that cannot be
 * answered answers 503, never allow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/identifier.h"
#include "consentd/par.h"
#include "consentd/policy.h"
#include "consentd/reports.h"
#include "consentd/scope.h"
#include "consentd/util.h"

#define BATCH_MAX		10000
#define EVIDENCE_FIELD_MAX	2048

/* ---- parsing ------------------------------------------------------------- */

/* Parses RFC 3339 ("2026-11-22T10:00:00Z", fractions and offsets allowed). */
static int
parse_time(const char *s, int64_t *us)
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
parse_identifier(struct cm_request *rq, const char *text, size_t len, const char *field,
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
		snprintf(f, sizeof(f), "evidence.%.30s", k);
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

void
cm_api_consents_record(struct cm_request *rq)
{
	static const char *const fields[] = { "identifier", "subject_id", "purpose", "channel",
	    "state", "method", "notice_version", "collected_at", "evidence", "request_id", NULL };
	const char *ident_s = NULL, *subject = NULL, *purpose = NULL, *channel = NULL;
	const char *state = NULL, *method = NULL, *collected = NULL, *request_id = NULL;
	json_t *body = cm_req_json(rq);
	struct cm_consent_input in;
	struct cm_identifier ident;
	struct record_job *job;
	int64_t notice = 0, collected_us = 0;
	bool gpc;

	memset(&in, 0, sizeof(in));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "identifier", false, CM_ID_TEXT_MAX, &ident_s) ||
	    !cm_json_get_string(rq, body, "subject_id", false, 64, &subject) ||
	    !cm_json_get_string(rq, body, "purpose", false, 64, &purpose) ||
	    (!json_is_null(json_object_get(body, "channel")) &&
	    !cm_json_get_string(rq, body, "channel", false, 64, &channel)) ||
	    !cm_json_get_string(rq, body, "state", false, 16, &state) ||
	    !cm_json_get_string(rq, body, "method", true, 32, &method) ||
	    !cm_json_get_int(rq, body, "notice_version", false, 1, INT32_MAX, &notice) ||
	    !cm_json_get_string(rq, body, "collected_at", false, 64, &collected) ||
	    !cm_json_get_string(rq, body, "request_id", false, 256, &request_id))
		return;
	if ((ident_s == NULL) == (subject == NULL)) {
		cm_reply_error(rq, 400, ident_s ? "invalid_field" : "missing_field",
		    ident_s ? "subject_id" : "identifier",
		    "give exactly one of identifier and subject_id");
		return;
	}
	if (!cm_consent_method_valid(method, NULL)) {
		cm_reply_error(rq, 400, "invalid_field", "method", "unknown method");
		return;
	}
	gpc = strcmp(method, "gpc") == 0;
	in.ci_state = CM_CONSENT_WITHDRAWN;
	if (state == NULL && !gpc) {
		cm_reply_error(rq, 400, "missing_field", "state", "required field is missing");
		return;
	}
	if (state != NULL && cm_consent_state_parse(state, &in.ci_state) != 0) {
		cm_reply_error(rq, 400, "invalid_field", "state",
		    "one of granted, withdrawn, refused");
		return;
	}
	if (gpc && in.ci_state != CM_CONSENT_WITHDRAWN) {
		cm_reply_error(rq, 400, "invalid_field", "state",
		    "a Global Privacy Control signal only withdraws");
		return;
	}
	if (purpose == NULL && !gpc) {
		cm_reply_error(rq, 400, "missing_field", "purpose", "required field is missing");
		return;
	}
	in.ci_channel = -1;
	if (purpose != NULL) {
		if ((in.ci_purpose = get_purpose(rq, purpose, "purpose")) == NULL)
			return;
		if (gpc && !in.ci_purpose->pu_gpc) {
			cm_reply_error(rq, 422, "not_gpc_purpose", "purpose",
			    "the policy does not tie this purpose to the GPC signal");
			return;
		}
		if (notice > in.ci_purpose->pu_version) {
			cm_reply_error(rq, 400, "invalid_field", "notice_version",
			    "purpose %s is at version %lld", in.ci_purpose->pu_id,
			    (long long)in.ci_purpose->pu_version);
			return;
		}
	}
	if (channel != NULL) {
		if (gpc) {
			cm_reply_error(rq, 400, "invalid_field", "channel",
			    "a GPC signal covers all channels");
			return;
		}
		if ((in.ci_channel = get_channel(rq, in.ci_purpose, channel, "channel")) < 0)
			return;
	}
	if (collected != NULL) {
		if (parse_time(collected, &collected_us) != 0) {
			cm_reply_error(rq, 400, "invalid_field", "collected_at",
			    "an RFC 3339 time such as 2026-11-22T10:00:00Z");
			return;
		}
		if (collected_us > cm_time_now_us() + CM_COLLECTED_SKEW_US) {
			cm_reply_error(rq, 400, "invalid_field", "collected_at",
			    "must not be in the future");
			return;
		}
		if (collected_us < 0) {
			cm_reply_error(rq, 400, "invalid_field", "collected_at",
			    "must not be before 1970");
			return;
		}
	}
	if (json_object_get(body, "evidence") != NULL &&
	    !check_evidence(rq, json_object_get(body, "evidence")))
		return;
	if (in.ci_purpose != NULL && in.ci_purpose->pu_basis == CM_BASIS_SOFT_OPT_IN &&
	    in.ci_state == CM_CONSENT_GRANTED && (!json_is_string(json_object_get(
	    json_object_get(body, "evidence"), "sale_reference")) ||
	    json_string_length(json_object_get(json_object_get(body, "evidence"),
	    "sale_reference")) == 0)) {
		cm_reply_error(rq, 400, "missing_field", "evidence.sale_reference",
		    "a soft opt-in rests on a sale: name the order or quote in whose course "
		    "the details were collected");
		return;
	}
	if (request_id != NULL && !valid_request_id(request_id)) {
		cm_reply_error(rq, 400, "invalid_field", "request_id",
		    "1-128 of A-Z a-z 0-9 . _ : -");
		return;
	}
	if (ident_s != NULL) {
		if (!parse_identifier(rq, ident_s, strlen(ident_s), "identifier", &ident))
			return;
		in.ci_ident = &ident;
	} else if (!cm_subject_id_valid(subject)) {
		cm_reply_error(rq, 404, "not_found", "subject_id", "no such subject");
		return;
	}
	in.ci_subject = subject;
	in.ci_method = method;
	in.ci_notice_version = notice;
	in.ci_collected_us = collected_us;
	in.ci_evidence = json_object_get(body, "evidence");
	in.ci_request_id = request_id;
	in.ci_client = cm_req_client(rq);
	job = cm_calloc(1, sizeof(*job));
	job->in = in;
	job->gpc = gpc;
	if (ident_s != NULL) {
		job->ident = ident;
		job->in.ci_ident = &job->ident;
	}
	cm_wipe(&ident, sizeof(ident));
	/* Durable before it is acknowledged, sharing its fsync with others. */
	cm_req_defer(rq, record_run, job, record_free);
}

/*
 * For a list item (batch or NDJSON line), which cannot be answered with
 * its own reply: an {"error":…} object when ITEM is not an object or has a
 * member not in FIELDS (NULL-terminated), else NULL.
 */
static json_t *
item_shape_error(json_t *item, const char *const *fields, const char *what)
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

/* ---- checks ------------------------------------------------------------------ */

/*
 * Runs one check described by IDENT_S, PURPOSE, CHANNEL (CHANNEL may be
 * NULL). Returns the result object, or an {"error":…} object for bad
 * input; NULL (with *RC) when the store failed.
 */
static json_t *
check_one(struct cm_request *rq, const struct cm_ctx *cx, const char *ident_s,
    size_t ident_len, const char *purpose, const char *channel, cm_result *rc)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_check_result r;
	struct cm_identifier ident;
	const struct cm_purpose *p;
	char why[160], ts[32];
	json_t *o;
	int pi, ci;

	(void)rq;
	*rc = CM_OK;
#define ERR(code, field, ...) do { \
	char m_[200]; snprintf(m_, sizeof(m_), __VA_ARGS__); \
	return json_pack("{s:{s:s, s:s, s:s?}}", "error", "code", code, "message", m_, \
	    "field", field); } while (0)
	if (ident_s == NULL)
		ERR("missing_field", "identifier", "required field is missing");
	if (purpose == NULL)
		ERR("missing_field", "purpose", "required field is missing");
	if (cm_identifier_parse(ident_s, ident_len, pol, &ident, why, sizeof(why)) != CM_OK)
		ERR("invalid_identifier", "identifier", "%s", why);
	if ((pi = cm_policy_purpose_index(pol, purpose)) < 0)
		ERR("unknown_purpose", "purpose", "the policy has no such purpose");
	p = &pol->pol_purposes[pi];
	if (channel != NULL) {
		if ((ci = cm_policy_channel_index(pol, channel)) < 0)
			ERR("unknown_channel", "channel", "the policy has no such channel");
		if (!(p->pu_channels & (UINT64_C(1) << ci)))
			ERR("channel_not_used", "channel", "purpose %s does not use this channel",
			    p->pu_id);
	} else if (p->pu_channels != 0) {
		ERR("missing_field", "channel", "purpose %s is sent on channels: name one",
		    p->pu_id);
	}
#undef ERR
	if ((*rc = cm_consent_check(cx, &ident, p, channel, &r)) != CM_OK)
		return NULL;
	o = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s, s:o}", "decision",
	    r.ck_decision.d_allow ? "allow" : "deny", "reason", r.ck_decision.d_reason,
	    "subject_id", r.ck_subject[0] ? r.ck_subject : NULL, "purpose", p->pu_id,
	    "channel", channel, "lawful_basis", cm_lawful_basis_name(p->pu_basis),
	    "conflicts", r.ck_conflicts);
	if (r.ck_has_event) {
		cm_time_format(ts, r.ck_event.cr_recorded_us);
		json_object_set_new(o, "notice_version", json_integer(r.ck_event.cr_notice_version));
		json_object_set_new(o, "event_id", json_string(r.ck_event.cr_event_id));
		json_object_set_new(o, "recorded_at", json_string(ts));
	} else {
		json_object_set_new(o, "notice_version", json_null());
		json_object_set_new(o, "event_id", json_null());
		json_object_set_new(o, "recorded_at", json_null());
	}
	if (r.ck_decision.d_allow && p->pu_holdout_percent > 0)
		json_object_set_new(o, "holdout_group", json_string("treatment"));
	return o;
}

/* Turns an {"error":…} object from check_one into the status to reply with. */
static unsigned
check_error_status(json_t *o)
{
	const char *code = json_string_value(json_object_get(json_object_get(o, "error"), "code"));

	return code && (strcmp(code, "unknown_purpose") == 0 || strcmp(code, "unknown_channel") == 0 ||
	    strcmp(code, "channel_not_used") == 0) ? 422 : 400;
}

void
cm_api_check_one(struct cm_request *rq)
{
	static const char *const params[] = { "identifier", "purpose", "channel", NULL };
	const char *ident;
	struct cm_ctx cx;
	json_t *o;
	cm_result rc;

	if (!cm_req_query_check(rq, params) || !cm_api_ctx(rq, &cx))
		return;
	ident = cm_req_query(rq, "identifier");
	o = check_one(rq, &cx, ident, ident ? strlen(ident) : 0, cm_req_query(rq, "purpose"),
	    cm_req_query(rq, "channel"), &rc);
	if (o == NULL) {
		cm_reply_store_error(rq, rc);
		return;
	}
	if (json_object_get(o, "error") != NULL) {
		cm_reply_json(rq, check_error_status(o), o);
		return;
	}
	/* The policy's own names and our verdict: never the identifier. */
	cm_req_log_field(rq, "purpose", json_string_value(json_object_get(o, "purpose")));
	cm_req_log_field(rq, "channel", json_string_value(json_object_get(o, "channel")));
	cm_req_log_field(rq, "decision", json_string_value(json_object_get(o, "decision")));
	cm_req_log_field(rq, "reason", json_string_value(json_object_get(o, "reason")));
	cm_reply_json(rq, 200, o);
}

static json_t *
check_item(struct cm_request *rq, const struct cm_ctx *cx, json_t *item, cm_result *rc)
{
	static const char *const fields[] = { "identifier", "purpose", "channel", NULL };
	json_t *id, *pu, *ch, *err;

	*rc = CM_OK;
	if ((err = item_shape_error(item, fields, "each check is an object")) != NULL)
		return err;
	id = json_object_get(item, "identifier");
	pu = json_object_get(item, "purpose");
	ch = json_object_get(item, "channel");
	if ((id && !json_is_string(id)) || (pu && !json_is_string(pu)) ||
	    (ch && !json_is_string(ch) && !json_is_null(ch)))
		return json_pack("{s:{s:s, s:s, s:n}}", "error", "code", "invalid_field",
		    "message", "identifier, purpose and channel are strings", "field");
	return check_one(rq, cx, json_string_value(id), id ? json_string_length(id) : 0,
	    json_string_value(pu), json_is_string(ch) ? json_string_value(ch) : NULL, rc);
}

void
cm_api_check_batch(struct cm_request *rq)
{
	static const char *const fields[] = { "checks", NULL };
	json_t *body, *checks, *item, *results, *o;
	struct cm_ctx cx;
	size_t i;
	cm_result rc;

	if (cm_req_ndjson(rq)) {
		/* The streamed form: flush the last line and send the results. */
		cm_api_check_chunk(rq, NULL, 0);
		return;
	}
	body = cm_req_json(rq);
	if (!cm_json_check_fields(rq, body, fields))
		return;
	if (!json_is_array(checks = json_object_get(body, "checks"))) {
		cm_reply_error(rq, 400, checks ? "invalid_field" : "missing_field", "checks",
		    "an array of {identifier, purpose, channel}");
		return;
	}
	if (json_array_size(checks) > BATCH_MAX) {
		cm_reply_error(rq, 400, "invalid_field", "checks", "at most %d checks; send "
		    "longer lists as application/x-ndjson", BATCH_MAX);
		return;
	}
	if (!cm_api_ctx(rq, &cx))
		return;
	/* One snapshot for the whole list: a campaign is judged at one moment. */
	if ((rc = cm_db_read_begin(cx.cx_db)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	results = json_array();
	json_array_foreach(checks, i, item) {
		if ((o = check_item(rq, &cx, item, &rc)) == NULL) {
			cm_db_read_end(cx.cx_db);
			json_decref(results);
			cm_reply_store_error(rq, rc);
			return;
		}
		json_array_append_new(results, o);
	}
	cm_db_read_end(cx.cx_db);
	cm_reply_json(rq, 200, json_pack("{s:o}", "results", results));
}

/* The answer to one line of a check body; NULL when the store failed. */
static json_t *
check_line(const struct cm_ctx *cx, const struct cm_ndjson_line *l, cm_result *rc)
{
	json_t *item, *o;

	*rc = CM_OK;
	if ((item = cm_ndjson_parse(l, &o)) == NULL)
		return o;
	o = check_item(NULL, cx, item, rc);
	json_decref(item);
	if (o != NULL && json_object_get(o, "error") != NULL)
		json_object_set_new(o, "line", json_integer((json_int_t)l->nl_lineno));
	return o;
}

/* A piece's lines split among the helper threads, answers kept per part. */
struct check_split {
	struct cm_app			*app;
	const char			*actor;
	int64_t				 now;
	const struct cm_ndjson_line	*lines;
	size_t				 nlines;
	struct cm_buf			 out[CM_PAR_MAX];
	cm_result			 rc[CM_PAR_MAX];
};

/*
 * Part K of N of the piece's lines, on its own thread with that thread's
 * own connection and snapshot (part 0 runs inside the caller's).
 */
static void
check_part(void *arg, unsigned k, unsigned n)
{
	struct check_split *sp = arg;
	size_t lo = sp->nlines * k / n, hi = sp->nlines * (k + 1) / n, i;
	struct cm_ctx cx;
	char line[2048], *t;
	size_t n_out;
	json_t *o;

	cm_ctx_init(&cx, cm_store_db(sp->app->app_store), sp->app->app_keys,
	    sp->app->app_policy, sp->actor);
	cx.cx_now = sp->now;
	if (cx.cx_db == NULL) {
		sp->rc[k] = CM_IOERR;
		return;
	}
	if ((sp->rc[k] = cm_db_read_begin(cx.cx_db)) != CM_OK)
		return;
	for (i = lo; i < hi; i++) {
		if ((o = check_line(&cx, &sp->lines[i], &sp->rc[k])) == NULL)
			break;
		/* Into a buffer on the stack: json_dumps grows its own by doubling. */
		if ((n_out = json_dumpb(o, line, sizeof(line), JSON_COMPACT)) > 0 &&
		    n_out <= sizeof(line)) {
			cm_buf_append(&sp->out[k], line, n_out);
		} else if ((t = json_dumps(o, JSON_COMPACT)) != NULL) {
			cm_buf_append(&sp->out[k], t, strlen(t));
			free(t);
		} else {
			json_decref(o);
			sp->rc[k] = CM_IOERR;
			break;
		}
		json_decref(o);
		cm_buf_append(&sp->out[k], "\n", 1);
	}
	cm_db_read_end(cx.cx_db);
}

/* Lines in a piece below which splitting it costs more than it saves. */
#define CHECK_SPLIT_MIN	64

void
cm_api_check_chunk(struct cm_request *rq, const char *data, size_t len)
{
	struct cm_ndjson *s = cm_ndjson_get(rq);
	struct cm_app *app = cm_req_app(rq);
	struct check_split sp;
	unsigned k;
	cm_result rc;
	bool snapshot = false;

	/*
	 * One snapshot per piece of the body as it arrives (never held between
	 * pieces, when this thread serves other connections); when the piece
	 * is split across cores, one per part, taken together.
	 */
	if (!cm_ndjson_failed(s)) {
		if ((rc = cm_app_read_begin(app)) != CM_OK)
			cm_ndjson_fail(s, rc);
		else
			snapshot = true;
	}
	if (!cm_ndjson_failed(s)) {
		memset(&sp, 0, sizeof(sp));
		sp.nlines = cm_ndjson_lines(s, data, len, &sp.lines);
		sp.app = app;
		sp.actor = cm_req_actor(rq);
		sp.now = cm_time_now_us();
		if (sp.nlines >= CHECK_SPLIT_MIN)
			cm_par_run(app->app_par, check_part, &sp);
		else if (sp.nlines > 0)
			check_part(&sp, 0, 1);
		for (k = 0; k < CM_PAR_MAX; k++) {
			if (sp.rc[k] != CM_OK)
				cm_ndjson_fail(s, sp.rc[k]);
			if (!cm_ndjson_failed(s) && sp.out[k].b_len > 0)
				cm_ndjson_write(s, sp.out[k].b_data, sp.out[k].b_len);
			cm_buf_free(&sp.out[k]);
		}
	}
	if (snapshot)
		cm_app_read_end(app);
	/* At the end, a check that could not be answered fails the whole list. */
	if (data == NULL)
		cm_ndjson_reply(rq, s);
}

/* ---- lists, preferences, unsubscribe ----------------------------------------- */

void
cm_api_consents_list(struct cm_request *rq)
{
	static const char *const params[] = { "history", NULL };
	const char *h;
	struct cm_why w;
	struct cm_ctx cx;
	json_t *out;
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
	if (!cm_api_ctx(rq, &cx))
		return;
	/* Evidence (IP address, user agent) is personal data: subjects:read. */
	if ((rc = cm_consent_list(&cx, cm_req_param(rq, 0), history,
	    (cm_req_scopes(rq) & CM_SCOPE_SUBJECTS_READ) != 0, &out, &w)) != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, out);
}

void
cm_api_prefs_get(struct cm_request *rq)
{
	struct cm_why w;
	struct cm_ctx cx;
	json_t *out;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    !cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_prefs_get(&cx, cm_req_param(rq, 0), &out, &w)) != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, out);
}

/*
 * Checks the map NAME of BODY, if there: an object whose keys the policy
 * knows (INDEX finds them; 422 CODE, "no such NOUN", when not) and whose
 * values are booleans.
 */
static bool
prefs_map_check(struct cm_request *rq, const json_t *body, const char *name,
    int (*index)(const struct cm_policy *, const char *), const char *code,
    const char *noun)
{
	const struct cm_policy *pol = cm_req_app(rq)->app_policy;
	const char *k;
	json_t *m, *v;
	char f[96];

	if ((m = json_object_get(body, name)) == NULL)
		return true;
	if (!json_is_object(m)) {
		cm_reply_error(rq, 400, "invalid_field", name, "must be an object");
		return false;
	}
	json_object_foreach(m, k, v) {
		snprintf(f, sizeof(f), "%s.%.64s", name, k);
		if (index(pol, k) < 0) {
			cm_reply_error(rq, 422, code, f, "no such %s", noun);
			return false;
		}
		if (!json_is_boolean(v)) {
			cm_reply_error(rq, 400, "invalid_field", f, "true or false");
			return false;
		}
	}
	return true;
}

/* Checks a preferences document; returns a copy with paused_until in µs. */
static json_t *
prefs_validate(struct cm_request *rq, json_t *body)
{
	static const char *const fields[] = { "channels", "topics", "frequency",
	    "paused_until", NULL };
	const struct cm_policy *pol = cm_req_app(rq)->app_policy;
	const char *freq = NULL;
	json_t *v, *out;

	if (!cm_json_check_fields(rq, body, fields) ||
	    !prefs_map_check(rq, body, "channels", cm_policy_channel_index,
	    "unknown_channel", "channel") ||
	    !prefs_map_check(rq, body, "topics", cm_policy_topic_index,
	    "unknown_topic", "topic"))
		return NULL;
	if (!cm_json_get_string(rq, body, "frequency", false, 64, &freq))
		return NULL;
	if (freq != NULL && cm_policy_frequency_index(pol, freq) < 0) {
		cm_reply_error(rq, 422, "unknown_frequency", "frequency",
		    "not one of the policy's frequencies");
		return NULL;
	}
	out = json_deep_copy(body);
	if ((v = json_object_get(body, "paused_until")) != NULL) {
		int64_t us = 0;

		if (!json_is_null(v) && (!json_is_string(v) ||
		    parse_time(json_string_value(v), &us) != 0)) {
			json_decref(out);
			cm_reply_error(rq, 400, "invalid_field", "paused_until",
			    "null or an RFC 3339 time");
			return NULL;
		}
		json_object_set_new(out, "paused_until", json_integer(us));
	}
	return out;
}

void
cm_api_prefs_put(struct cm_request *rq)
{
	struct cm_why w;
	struct cm_ctx cx;
	json_t *in, *out;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((in = prefs_validate(rq, cm_req_json(rq))) == NULL)
		return;
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx)) {
		json_decref(in);
		return;
	}
	rc = cm_api_tx_end(&cx, cm_prefs_put(&cx, cm_req_param(rq, 0), in, "api", &w));
	json_decref(in);
	if (rc == CM_OK)
		rc = cm_prefs_get(&cx, cm_req_param(rq, 0), &out, &w);
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, out);
}

void
cm_api_unsubscribe(struct cm_request *rq)
{
	static const char *const fields[] = { "reason", "comment", NULL };
	const char *reason = NULL, *comment = NULL;
	json_t *body = cm_req_json(rq);
	struct cm_why w;
	struct cm_ctx cx;
	int n = 0;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "reason", false, 32, &reason) ||
	    !cm_json_get_string(rq, body, "comment", false, 1000, &comment))
		return;
	if (reason != NULL && !cm_unsubscribe_reason_valid(reason)) {
		cm_reply_error(rq, 400, "invalid_field", "reason", "one of too_frequent, "
		    "not_relevant, never_signed_up, privacy, other");
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_unsubscribe(&cx, cm_req_param(rq, 0),
	    reason ? reason : "not_given", comment, "api", &n, &w));
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s, s:i, s:s}", "subject_id", cm_req_param(rq, 0),
	    "purposes_withdrawn", n, "reason", reason ? reason : "not_given"));
}

/* ---- suppressions ------------------------------------------------------------- */

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
	if ((err = item_shape_error(item, fields, "an object {identifier, reason}")) != NULL)
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
	if (!parse_identifier(rq, q, strlen(q), "identifier", &ident) ||
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
	    !parse_identifier(rq, raw, strlen(raw), "identifier", &ident) ||
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

/* ---- reports ------------------------------------------------------------------- */

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
