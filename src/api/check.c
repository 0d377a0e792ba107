/* SPDX-License-Identifier: ISC */
/*
 * The consent check: may we contact this identifier for this purpose on
 * this channel? One by query (GET /v1/consent/check), or many (POST): a
 * JSON list of up to 10,000, judged in one snapshot, or an NDJSON body of
 * any length, judged piece by piece as it arrives, each piece's lines
 * split across the helper threads, the answers streamed back in order at
 * the end (src/http/ndjson.c). A check that cannot be answered answers
 * 503, never allow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/identifier.h"
#include "consentd/par.h"
#include "consentd/policy.h"
#include "consentd/util.h"

#define BATCH_MAX		10000

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
	cm_api_metrics_check(r.ck_decision.d_allow, r.ck_decision.d_reason);
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
	if ((err = cm_api_item_error(item, fields, "each check is an object")) != NULL)
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
