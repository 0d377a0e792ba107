/* SPDX-License-Identifier: ISC */
/*
 * A subject's preferences (GET and PUT /v1/subjects/{id}/preferences: the
 * channel and topic switches, recorded as consent events, the frequency
 * and a pause) and the one-call unsubscribe from every marketing purpose
 * (POST /v1/subjects/{id}/unsubscribe), whose reason is kept for the
 * report.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/policy.h"
#include "consentd/util.h"

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
		snprintf(f, sizeof(f), "%s.%.*s", name, cm_utf8_prefix(k, 64), k);
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
json_t *
cm_api_prefs_validate(struct cm_request *rq, json_t *body)
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
		    cm_api_parse_time(json_string_value(v), &us) != 0)) {
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
	if ((in = cm_api_prefs_validate(rq, cm_req_json(rq))) == NULL)
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

/*
 * The body of an unsubscribe (POST /v1/subjects/{id}/unsubscribe and the
 * shopper's POST /v1/me/unsubscribe): an optional reason of the report's
 * list and an optional comment. Replies 400 and returns false otherwise.
 */
bool
cm_api_unsubscribe_body(struct cm_request *rq, const char **reason, const char **comment)
{
	static const char *const fields[] = { "reason", "comment", NULL };
	json_t *body = cm_req_json(rq);

	*reason = *comment = NULL;
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "reason", false, 32, reason) ||
	    !cm_json_get_string(rq, body, "comment", false, 1000, comment))
		return false;
	if (*reason != NULL && !cm_unsubscribe_reason_valid(*reason)) {
		cm_reply_error(rq, 400, "invalid_field", "reason", "one of too_frequent, "
		    "not_relevant, never_signed_up, privacy, other");
		return false;
	}
	return true;
}

void
cm_api_unsubscribe(struct cm_request *rq)
{
	const char *reason = NULL, *comment = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	int n = 0;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_api_unsubscribe_body(rq, &reason, &comment))
		return;
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
