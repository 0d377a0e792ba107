/* SPDX-License-Identifier: ISC */
/*
 * Subject routes: create, resolve, read, link and unlink identifiers,
 * patch the profile, merge. Writes need subjects:write and run in one
 * transaction with their audit entry; reading the record needs
 * subjects:read, resolving an identifier to its subject consent:read. Errors
 * never echo an identifier or profile value.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/outbox.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/identifier.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

#define MAX_IDENTS	32
#define REASON_MAX	500

/* Parses the identifier string in V into OUT; replies 400 naming FIELD. */
static bool
parse_ident(struct cm_request *rq, json_t *v, const char *field, struct cm_identifier *out)
{
	char why[160];

	if (!json_is_string(v)) {
		cm_reply_error(rq, 400, "invalid_identifier", field,
		    "an identifier is a string type:value");
		return false;
	}
	if (cm_identifier_parse(json_string_value(v), json_string_length(v),
	    cm_req_app(rq)->app_policy, out, why, sizeof(why)) != CM_OK) {
		cm_reply_error(rq, 400, "invalid_identifier", field, "%s", why);
		return false;
	}
	return true;
}

/* Reads {"identifier","verified","source"} (or a plain string) into NI. */
static bool
parse_new_ident(struct cm_request *rq, json_t *v, const char *field,
    struct cm_new_ident *ni)
{
	static const char *const fields[] = { "identifier", "verified", "source", NULL };
	char f[96];

	memset(ni, 0, sizeof(*ni));
	ni->ni_source = "api";
	if (json_is_string(v))
		return parse_ident(rq, v, field, &ni->ni_id);
	if (!json_is_object(v)) {
		cm_reply_error(rq, 400, "invalid_identifier", field,
		    "an identifier is a string type:value or an object");
		return false;
	}
	if (!cm_json_check_fields(rq, v, fields))
		return false;
	snprintf(f, sizeof(f), "%s%sidentifier", field, *field ? "." : "");
	if (json_object_get(v, "identifier") == NULL) {
		cm_reply_error(rq, 400, "missing_field", f, "required field is missing");
		return false;
	}
	if (!parse_ident(rq, json_object_get(v, "identifier"), f, &ni->ni_id))
		return false;
	if (!cm_json_get_bool(rq, v, "verified", false, &ni->ni_verified) ||
	    !cm_json_get_string(rq, v, "source", false, CM_SOURCE_MAX, &ni->ni_source))
		return false;
	if (!cm_source_valid(ni->ni_source)) {
		snprintf(f, sizeof(f), "%s%ssource", field, *field ? "." : "");
		cm_reply_error(rq, 400, "invalid_field", f, "a source is 1-64 of a-z 0-9 _ . -");
		return false;
	}
	return true;
}

void
cm_api_subjects_create(struct cm_request *rq)
{
	static const char *const fields[] = { "identifiers", "profile", NULL };
	struct cm_new_ident ids[MAX_IDENTS];
	struct cm_why w;
	struct cm_ctx cx;
	json_t *body = cm_req_json(rq), *list, *profile, *v, *texts;
	char id[CM_SUBJECT_ID_LEN + 1], field[48];
	size_t i, k, n = 0;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_json_check_fields(rq, body, fields))
		return;
	list = json_object_get(body, "identifiers");
	if (list != NULL && !json_is_array(list)) {
		cm_reply_error(rq, 400, "invalid_field", "identifiers", "must be an array");
		return;
	}
	if (json_array_size(list) > MAX_IDENTS) {
		cm_reply_error(rq, 400, "invalid_field", "identifiers",
		    "at most %d identifiers", MAX_IDENTS);
		return;
	}
	profile = json_object_get(body, "profile");
	if (profile != NULL && !json_is_object(profile)) {
		cm_reply_error(rq, 400, "invalid_field", "profile", "must be an object");
		return;
	}
	json_array_foreach(list, i, v) {
		snprintf(field, sizeof(field), "identifiers[%zu]", i);
		if (!parse_new_ident(rq, v, field, &ids[n]))
			return;
		for (k = 0; k < n; k++)
			if (strcmp(ids[k].ni_id.id_text, ids[n].ni_id.id_text) == 0)
				break;
		if (k == n)
			n++;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_subject_create(&cx, ids, n, profile, id, &w));
	if (rc != CM_OK) {
		if (w.w_code != NULL && strcmp(w.w_code, "invalid_attribute") != 0) {
			/* Name the request item, counting duplicates that were dropped. */
			snprintf(field, sizeof(field), "identifiers[%zu]", w.w_index);
			json_array_foreach(list, i, v) {
				struct cm_new_ident tmp;
				char why[8];

				if (json_is_string(v) && cm_identifier_parse(json_string_value(v),
				    json_string_length(v), cx.cx_policy, &tmp.ni_id, why,
				    sizeof(why)) == CM_OK && strcmp(tmp.ni_id.id_text,
				    ids[w.w_index].ni_id.id_text) == 0)
					break;
				if (json_is_object(v) && cm_identifier_parse(json_string_value(
				    json_object_get(v, "identifier")), json_string_length(
				    json_object_get(v, "identifier")), cx.cx_policy, &tmp.ni_id,
				    why, sizeof(why)) == CM_OK && strcmp(tmp.ni_id.id_text,
				    ids[w.w_index].ni_id.id_text) == 0)
					break;
			}
			snprintf(field, sizeof(field), "identifiers[%zu]", i);
			cm_api_fail(rq, rc, &w, field);
		} else {
			cm_api_fail(rq, rc, &w, NULL);
		}
		return;
	}
	texts = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(texts, json_string(ids[i].ni_id.id_text));
	cm_reply_json(rq, 201, json_pack("{s:s, s:o}", "subject_id", id, "identifiers", texts));
}

void
cm_api_subjects_resolve(struct cm_request *rq)
{
	static const char *const params[] = { "identifier", NULL };
	struct cm_identifier ident;
	struct cm_ctx cx;
	const char *q;
	char id[CM_SUBJECT_ID_LEN + 1], why[160];
	cm_result rc;

	if (!cm_req_query_check(rq, params))
		return;
	if ((q = cm_req_query(rq, "identifier")) == NULL) {
		cm_reply_error(rq, 400, "missing_parameter", "identifier",
		    "required query parameter is missing");
		return;
	}
	if (cm_identifier_parse(q, strlen(q), cm_req_app(rq)->app_policy, &ident, why,
	    sizeof(why)) != CM_OK) {
		cm_reply_error(rq, 400, "invalid_identifier", "identifier", "%s", why);
		return;
	}
	if (!cm_api_ctx(rq, &cx))
		return;
	rc = cm_subject_resolve(&cx, &ident, id);
	cm_wipe(&ident, sizeof(ident));
	if (rc == CM_NOTFOUND) {
		cm_reply_error(rq, 404, "not_found", "identifier", "no subject has this identifier");
		return;
	}
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s}", "subject_id", id));
}

void
cm_api_subjects_get(struct cm_request *rq)
{
	struct cm_why w;
	struct cm_ctx cx;
	json_t *out;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    !cm_api_ctx(rq, &cx))
		return;
	if ((rc = cm_subject_view(&cx, cm_req_param(rq, 0), &out, &w)) != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	if (strcmp(json_string_value(json_object_get(out, "state")), "erased") != 0) {
		json_t *consents = NULL, *prefs = NULL, *systems = NULL;

		if ((rc = cm_consent_list(&cx, cm_req_param(rq, 0), false, false, &consents, &w)) != CM_OK ||
		    (rc = cm_prefs_get(&cx, cm_req_param(rq, 0), &prefs, &w)) != CM_OK) {
			json_decref(consents);
			json_decref(out);
			cm_api_fail(rq, rc, &w, NULL);
			return;
		}
		json_object_set(out, "consents", json_object_get(consents, "consents"));
		json_object_del(prefs, "subject_id");
		json_object_set(out, "preferences", prefs);
		json_decref(consents);
		json_decref(prefs);
		/* Whether each system registered for consent.changed applied the last one. */
		if ((rc = cm_outbox_consent_status(&cx, cm_req_param(rq, 0), &systems)) != CM_OK) {
			json_decref(out);
			cm_api_fail(rq, rc, &w, NULL);
			return;
		}
		json_object_set_new(out, "systems", systems);
	}
	cm_reply_json(rq, 200, out);
}

void
cm_api_subjects_link(struct cm_request *rq)
{
	struct cm_new_ident ni;
	struct cm_why w;
	struct cm_ctx cx;
	bool existed;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!parse_new_ident(rq, cm_req_json(rq), "", &ni) ||
	    !cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_subject_link(&cx, cm_req_param(rq, 0), &ni, &existed, &w));
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, w.w_code && strcmp(w.w_code, "identifier_taken") == 0 ?
		    "identifier" : NULL);
		return;
	}
	cm_reply_json(rq, existed ? 200 : 201, json_pack("{s:s, s:s, s:b}", "subject_id",
	    cm_req_param(rq, 0), "identifier", ni.ni_id.id_text, "linked", !existed));
}

void
cm_api_subjects_unlink(struct cm_request *rq)
{
	struct cm_identifier ident;
	struct cm_why w;
	struct cm_ctx cx;
	const char *raw = cm_req_param(rq, 1);
	char why[160];
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_req_query_check(rq, (const char *const[]){ NULL }))
		return;
	if (cm_identifier_parse(raw, strlen(raw), cm_req_app(rq)->app_policy, &ident, why,
	    sizeof(why)) != CM_OK) {
		cm_reply_error(rq, 400, "invalid_identifier", "identifier", "%s", why);
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_subject_unlink(&cx, cm_req_param(rq, 0), &ident, &w));
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s, s:s, s:b}", "subject_id", cm_req_param(rq, 0),
	    "identifier", ident.id_text, "unlinked", 1));
}

void
cm_api_subjects_profile(struct cm_request *rq)
{
	static const char *const fields[] = { "attributes", NULL };
	struct cm_why w;
	struct cm_ctx cx;
	json_t *attrs, *view, *profile;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_json_check_fields(rq, cm_req_json(rq), fields))
		return;
	if ((attrs = json_object_get(cm_req_json(rq), "attributes")) == NULL) {
		cm_reply_error(rq, 400, "missing_field", "attributes", "required field is missing");
		return;
	}
	if (!json_is_object(attrs)) {
		cm_reply_error(rq, 400, "invalid_field", "attributes", "must be an object");
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_subject_patch_profile(&cx, cm_req_param(rq, 0), attrs, &w));
	if (rc == CM_OK)
		rc = cm_subject_view(&cx, cm_req_param(rq, 0), &view, &w);
	if (rc != CM_OK) {
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	profile = json_incref(json_object_get(view, "profile"));
	json_decref(view);
	cm_reply_json(rq, 200, json_pack("{s:s, s:o}", "subject_id", cm_req_param(rq, 0),
	    "profile", profile));
}

void
cm_api_subjects_merge(struct cm_request *rq)
{
	static const char *const fields[] = { "into", "from", "reason", NULL };
	const char *into = NULL, *from = NULL, *reason = "";
	json_t *body = cm_req_json(rq), *conflicts = NULL;
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (!cm_json_check_fields(rq, body, fields) ||
	    !cm_json_get_string(rq, body, "into", true, 64, &into) ||
	    !cm_json_get_string(rq, body, "from", true, 64, &from) ||
	    !cm_json_get_string(rq, body, "reason", false, REASON_MAX, &reason))
		return;
	if (!cm_subject_id_valid(into) || !cm_subject_id_valid(from)) {
		cm_reply_error(rq, 400, "invalid_field", cm_subject_id_valid(into) ? "from" : "into",
		    "a subject id is sub_ followed by 26 base32 characters");
		return;
	}
	if (!cm_api_ctx(rq, &cx) || !cm_api_tx_begin(rq, &cx))
		return;
	rc = cm_api_tx_end(&cx, cm_subject_merge(&cx, into, from, reason, &conflicts, &w));
	if (rc != CM_OK) {
		json_decref(conflicts);
		/* Which side failed: load both again to say (read-only). */
		if (w.w_code != NULL && (strcmp(w.w_code, "not_found") == 0 ||
		    strcmp(w.w_code, "merged") == 0 || strcmp(w.w_code, "subject_erased") == 0)) {
			struct cm_subject_row row;
			struct cm_why w2;

			memset(&w2, 0, sizeof(w2));
			cm_api_fail(rq, rc, &w, cm_subject_load(&cx, into, &row, &w2) == CM_OK &&
			    row.s_state != CM_SUBJECT_ERASED ? "from" : "into");
		} else {
			cm_api_fail(rq, rc, &w, NULL);
		}
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:s, s:s, s:o}", "subject_id", into, "merged",
	    from, "conflicts", conflicts));
}
