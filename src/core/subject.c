/* SPDX-License-Identifier: ISC */
/*
 * The unified customer record. A subject's data key is unwrapped only for
 * the call that needs it, into secure memory, and wiped at the end.
 * Identifier values are sealed with AD "ident:SUBJECT:TYPE" and profile
 * values with AD "attr:SUBJECT:NAME", so a sealed value cannot be moved
 * to another subject or field without its key; merging re-seals them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "ledger.h"
#include "record.h"

#define MERGE_CHAIN_MAX	32

bool
cm_subject_id_valid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != CM_SUBJECT_ID_LEN || strncmp(s, "sub_", 4) != 0)
		return false;
	for (i = 4; i < CM_SUBJECT_ID_LEN; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
			return false;
	return true;
}

bool
cm_source_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CM_SOURCE_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static bool
attr_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 && s[0] >= 'a' && s[0] <= 'z' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* Seals PT under KEY with AD "KIND:SUBJECT:NAME"; caller frees *OUT. */
void
record_seal(const uint8_t *key, const char *kind, const char *subject, const char *name,
    const void *pt, size_t len, uint8_t **out, size_t *outlen)
{
	char ad[160];
	int n;

	n = snprintf(ad, sizeof(ad), "%s:%s:%s", kind, subject, name);
	*outlen = len + CM_AEAD_OVERHEAD;
	*out = cm_malloc(*outlen);
	cm_aead_seal(*out, key, ad, (size_t)(n > 0 ? n : 0), pt, len);
}

/* Opens a sealed value into a new NUL-terminated string; NULL if forged. */
char *
record_unseal(const uint8_t *key, const char *kind, const char *subject, const char *name,
    const uint8_t *ct, size_t len)
{
	char ad[160], *pt;
	int n;

	if (len < CM_AEAD_OVERHEAD)
		return NULL;
	n = snprintf(ad, sizeof(ad), "%s:%s:%s", kind, subject, name);
	pt = cm_malloc(len - CM_AEAD_OVERHEAD + 1);
	if (cm_aead_open((uint8_t *)pt, key, ad, (size_t)(n > 0 ? n : 0), ct, len) != 0) {
		free(pt);
		return NULL;
	}
	pt[len - CM_AEAD_OVERHEAD] = '\0';
	return pt;
}

void
record_unseal_free(char *p)
{
	if (p != NULL) {
		cm_wipe(p, strlen(p));
		free(p);
	}
}

cm_result
cm_subject_load(const struct cm_ctx *cx, const char *id, struct cm_subject_row *row,
    struct cm_why *w)
{
	char cur[CM_SUBJECT_ID_LEN + 1];
	cm_result rc;
	int hops;

	if (!cm_subject_id_valid(id)) {
		cm_why_set(w, "not_found", "no such subject");
		return CM_NOTFOUND;
	}
	if ((rc = cm_store_subject_get(cx->cx_db, id, row)) != CM_OK) {
		if (rc == CM_NOTFOUND)
			cm_why_set(w, "not_found", "no such subject");
		return rc;
	}
	if (row->s_merged_into[0] == '\0')
		return CM_OK;
	/* Follow the chain to the subject that survives today. */
	snprintf(cur, sizeof(cur), "%s", row->s_merged_into);
	for (hops = 0; hops < MERGE_CHAIN_MAX; hops++) {
		struct cm_subject_row next;

		if ((rc = cm_store_subject_get(cx->cx_db, cur, &next)) != CM_OK)
			return rc == CM_NOTFOUND ? CM_IOERR : rc;
		if (next.s_merged_into[0] == '\0')
			break;
		snprintf(cur, sizeof(cur), "%s", next.s_merged_into);
	}
	cm_why_set(w, "merged", "this subject was merged into another");
	if (w != NULL)
		snprintf(w->w_subject, sizeof(w->w_subject), "%s", cur);
	return CM_NOTFOUND;
}

cm_result
cm_subject_open(const struct cm_ctx *cx, const char *id, struct cm_subject_row *row,
    uint8_t *key, struct cm_why *w)
{
	cm_result rc;

	if ((rc = cm_subject_load(cx, id, row, w)) != CM_OK)
		return rc;
	return cm_subject_unlock(cx, row, key, w);
}

cm_result
cm_subject_unlock(const struct cm_ctx *cx, struct cm_subject_row *row, uint8_t *key,
    struct cm_why *w)
{
	char id[CM_SUBJECT_ID_LEN + 1];

	if (row->s_merged_into[0] != '\0') {
		snprintf(id, sizeof(id), "%s", row->s_id);
		return cm_subject_open(cx, id, row, key, w);
	}
	if (row->s_state == CM_SUBJECT_ERASED || !row->s_has_key) {
		cm_why_set(w, "subject_erased", "this subject was erased");
		return CM_CONFLICT;
	}
	if (cm_subject_key_unwrap(cx->cx_keys, row->s_id, row->s_wrapped, CM_WRAPPED_LEN,
	    key) != 0) {
		cm_log(CM_LOG_ERROR, "subject_key_unwrap_failed", NULL);
		return CM_IOERR;
	}
	return CM_OK;
}

static cm_result
ident_insert(const struct cm_ctx *cx, const char *subject, const uint8_t *key,
    const struct cm_new_ident *ni, struct cm_why *w)
{
	struct cm_ident_row row;
	uint8_t *sealed;
	size_t len;
	cm_result rc;

	memset(&row, 0, sizeof(row));
	snprintf(row.i_type, sizeof(row.i_type), "%s", ni->ni_id.id_type);
	cm_blind_index(cx->cx_keys, ni->ni_id.id_type, ni->ni_id.id_value, row.i_blind);
	rc = cm_store_identifier_owner(cx->cx_db, row.i_type, row.i_blind, w->w_subject);
	if (rc == CM_OK) {
		cm_why_set(w, "identifier_taken", "this identifier belongs to another subject");
		return CM_CONFLICT;
	}
	if (rc != CM_NOTFOUND)
		return rc;
	record_seal(key, "ident", subject, row.i_type, ni->ni_id.id_value,
	    strlen(ni->ni_id.id_value), &sealed, &len);
	row.i_sealed = sealed;
	row.i_sealed_len = len;
	snprintf(row.i_source, sizeof(row.i_source), "%s", ni->ni_source);
	row.i_verified = ni->ni_verified;
	rc = cm_store_identifier_insert(cx->cx_db, subject, &row, cx->cx_now);
	free(sealed);
	return rc;
}

/* Checks PATCH (an object of name → value or null). */
/* Names attribute NAME (at most 64 bytes, or cut at a character) as W's field. */
static void
attr_field(struct cm_why *w, const char *name)
{
	if (w != NULL)
		snprintf(w->w_field, sizeof(w->w_field), "attributes.%.*s",
		    cm_utf8_prefix(name, 64), name);
}

static cm_result
profile_check(json_t *patch, bool allow_null, struct cm_why *w)
{
	const char *name;
	json_t *v;
	char *enc;
	size_t len;

	if (!json_is_object(patch)) {
		cm_why_set(w, "invalid_attribute", "must be an object");
		return CM_INVALID;
	}
	json_object_foreach(patch, name, v) {
		if (!attr_name_valid(name)) {
			cm_why_set(w, "invalid_attribute", "attribute names are a-z first, then "
			    "a-z, 0-9 or _, at most 64");
			attr_field(w, name);
			return CM_INVALID;
		}
		if (json_is_null(v)) {
			if (allow_null)
				continue;
			cm_why_set(w, "invalid_attribute", "null is only for removing an attribute");
			attr_field(w, name);
			return CM_INVALID;
		}
		enc = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		len = enc ? strlen(enc) : SIZE_MAX;
		free(enc);
		if (len > CM_PROFILE_MAX_VALUE) {
			cm_why_set(w, "invalid_attribute", "a value is at most %d bytes of JSON",
			    CM_PROFILE_MAX_VALUE);
			attr_field(w, name);
			return CM_INVALID;
		}
	}
	return CM_OK;
}

bool
cm_subject_profile_valid(json_t *patch, struct cm_why *w)
{
	return profile_check(patch, true, w) == CM_OK;
}

cm_result
record_profile_apply(const struct cm_ctx *cx, const char *subject, const uint8_t *key,
    json_t *patch, json_t *set, json_t *deleted, struct cm_why *w)
{
	const char *name;
	json_t *v;
	uint8_t *sealed;
	char *enc;
	size_t len;
	int64_t count;
	cm_result rc;

	json_object_foreach(patch, name, v) {
		if (json_is_null(v)) {
			if ((rc = cm_store_profile_delete(cx->cx_db, subject, name)) != CM_OK)
				return rc;
			json_array_append_new(deleted, json_string(name));
			continue;
		}
		enc = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		record_seal(key, "attr", subject, name, enc, strlen(enc), &sealed, &len);
		cm_wipe(enc, strlen(enc));
		free(enc);
		rc = cm_store_profile_put(cx->cx_db, subject, name, sealed, len, cx->cx_now);
		free(sealed);
		if (rc != CM_OK)
			return rc;
		json_array_append_new(set, json_string(name));
	}
	if ((rc = cm_store_profile_count(cx->cx_db, subject, &count)) != CM_OK)
		return rc;
	if (count > CM_PROFILE_MAX_ATTRS) {
		cm_why_set(w, "too_many_attributes", "a profile holds at most %d attributes",
		    CM_PROFILE_MAX_ATTRS);
		return CM_INVALID;
	}
	return CM_OK;
}

cm_result
cm_subject_create(const struct cm_ctx *cx, const struct cm_new_ident *ids, size_t n,
    json_t *profile, char id[CM_SUBJECT_ID_LEN + 1], struct cm_why *w)
{
	uint8_t *key, wrapped[CM_WRAPPED_KEY_LEN];
	json_t *types, *texts, *set, *deleted;
	cm_result rc;
	size_t i;

	if (profile != NULL && (rc = profile_check(profile, false, w)) != CM_OK)
		return rc;
	key = cm_key_acquire();
	cm_time_id(id, CM_SUBJECT_ID_LEN + 1, "sub_", cx->cx_now);
	cm_subject_key_new(cx->cx_keys, id, key, wrapped);
	types = json_array();
	texts = json_array();
	set = json_array();
	deleted = json_array();
	if ((rc = cm_store_subject_insert(cx->cx_db, id, wrapped, cx->cx_now)) != CM_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if ((rc = ident_insert(cx, id, key, &ids[i], w)) != CM_OK) {
			w->w_index = i;
			goto out;
		}
		json_array_append_new(types, json_string(ids[i].ni_id.id_type));
		json_array_append_new(texts, json_string(ids[i].ni_id.id_text));
	}
	if (profile != NULL &&
	    (rc = record_profile_apply(cx, id, key, profile, set, deleted, w)) != CM_OK)
		goto out;
	rc = cm_ctx_audit(cx, "subject.created", id, key,
	    json_pack("{s:O, s:O}", "identifier_types", types, "profile_attributes", set),
	    json_pack("{s:O, s:o}", "identifiers", texts, "profile",
	    profile ? json_incref(profile) : json_object()), NULL);
out:
	json_decref(types);
	json_decref(texts);
	json_decref(set);
	json_decref(deleted);
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_resolve(const struct cm_ctx *cx, const struct cm_identifier *ident,
    char id[CM_SUBJECT_ID_LEN + 1])
{
	uint8_t blind[32];

	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	return cm_store_identifier_owner(cx->cx_db, ident->id_type, blind, id);
}

struct view {
	const uint8_t	*key;
	const char	*subject;
	json_t		*list;
	bool		 failed;
};

static int
view_ident(void *arg, const struct cm_ident_row *r)
{
	struct view *v = arg;
	char ts[32], text[CM_ID_TEXT_MAX], *value;

	value = record_unseal(v->key, "ident", v->subject, r->i_type, r->i_sealed, r->i_sealed_len);
	if (value == NULL) {
		v->failed = true;
		return 1;
	}
	snprintf(text, sizeof(text), "%s:%s", r->i_type, value);
	record_unseal_free(value);
	cm_time_format(ts, r->i_created_us);
	json_array_append_new(v->list, json_pack("{s:s, s:s, s:b, s:s, s:s}", "identifier",
	    text, "type", r->i_type, "verified", r->i_verified, "source", r->i_source,
	    "linked_at", ts));
	cm_wipe(text, sizeof(text));
	return 0;
}

static int
view_attr(void *arg, const char *name, const uint8_t *sealed, size_t len)
{
	struct view *v = arg;
	json_error_t je;
	json_t *val;
	char *enc;

	if ((enc = record_unseal(v->key, "attr", v->subject, name, sealed, len)) == NULL) {
		v->failed = true;
		return 1;
	}
	val = json_loads(enc, JSON_DECODE_ANY, &je);
	record_unseal_free(enc);
	if (val == NULL) {
		v->failed = true;
		return 1;
	}
	json_object_set_new(v->list, name, val);
	return 0;
}

cm_result
cm_subject_view(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	struct cm_subject_row row;
	struct view v;
	uint8_t *key;
	char created[32], updated[32];
	json_t *ids = json_array(), *profile = json_object();
	cm_result rc;

	*out = NULL;
	key = cm_key_acquire();
	rc = cm_subject_open(cx, id, &row, key, w);
	if (rc == CM_CONFLICT) {
		/* Erased: the record says so and holds nothing else. */
		cm_time_format(created, row.s_created_us);
		*out = json_pack("{s:s, s:s, s:s, s:[], s:{}}", "subject_id", row.s_id,
		    "state", cm_subject_state_name(row.s_state), "created_at", created, "identifiers", "profile");
		rc = CM_OK;
		goto out;
	}
	if (rc != CM_OK)
		goto out;
	v.key = key;
	v.subject = row.s_id;
	v.failed = false;
	v.list = ids;
	if ((rc = cm_store_identifier_list(cx->cx_db, row.s_id, view_ident, &v)) != CM_OK)
		goto out;
	v.list = profile;
	if ((rc = cm_store_profile_list(cx->cx_db, row.s_id, view_attr, &v)) != CM_OK)
		goto out;
	if (v.failed) {
		cm_log(CM_LOG_ERROR, "subject_unseal_failed", NULL);
		rc = CM_IOERR;
		goto out;
	}
	cm_time_format(created, row.s_created_us);
	cm_time_format(updated, row.s_updated_us);
	*out = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "subject_id", row.s_id, "state",
	    cm_subject_state_name(row.s_state), "created_at", created, "updated_at", updated, "identifiers", ids,
	    "profile", profile);
	rc = *out ? CM_OK : CM_IOERR;
out:
	json_decref(ids);
	json_decref(profile);
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_identifiers(const struct cm_ctx *cx, const char *id, json_t **out,
    struct cm_why *w)
{
	struct cm_subject_row row;
	struct view v;
	uint8_t *key;
	json_t *ids = json_array();
	size_t i;
	cm_result rc;

	*out = NULL;
	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	v.key = key;
	v.subject = row.s_id;
	v.failed = false;
	v.list = ids;
	if ((rc = cm_store_identifier_list(cx->cx_db, row.s_id, view_ident, &v)) != CM_OK)
		goto out;
	if (v.failed) {
		rc = CM_IOERR;
		goto out;
	}
	for (i = 0; i < json_array_size(ids); i++) {
		json_object_del(json_array_get(ids, i), "type");
		json_object_del(json_array_get(ids, i), "linked_at");
	}
	*out = json_incref(ids);
out:
	json_decref(ids);
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_link(const struct cm_ctx *cx, const char *id, const struct cm_new_ident *ni,
    bool *existed, struct cm_why *w)
{
	struct cm_subject_row row;
	char owner[CM_SUBJECT_ID_LEN + 1];
	uint8_t *key, blind[32];
	cm_result rc;

	*existed = false;
	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	cm_blind_index(cx->cx_keys, ni->ni_id.id_type, ni->ni_id.id_value, blind);
	rc = cm_store_identifier_owner(cx->cx_db, ni->ni_id.id_type, blind, owner);
	if (rc == CM_OK && strcmp(owner, row.s_id) == 0) {
		*existed = true;
		goto out;
	}
	if (rc != CM_OK && rc != CM_NOTFOUND)
		goto out;
	if ((rc = ident_insert(cx, row.s_id, key, ni, w)) != CM_OK ||
	    (rc = cm_store_subject_touch(cx->cx_db, row.s_id, cx->cx_now)) != CM_OK)
		goto out;
	rc = cm_ctx_audit(cx, "identifier.linked", row.s_id, key,
	    json_pack("{s:s, s:b, s:s}", "type", ni->ni_id.id_type, "verified",
	    ni->ni_verified, "source", ni->ni_source),
	    json_pack("{s:s}", "identifier", ni->ni_id.id_text), NULL);
out:
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_unlink(const struct cm_ctx *cx, const char *id, const struct cm_identifier *ident,
    struct cm_why *w)
{
	struct cm_subject_row row;
	uint8_t *key, blind[32];
	char reason[16], tag[33];
	int64_t since;
	json_t *details;
	cm_result rc;

	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	cm_blind_index(cx->cx_keys, ident->id_type, ident->id_value, blind);
	rc = cm_store_identifier_delete(cx->cx_db, row.s_id, ident->id_type, blind);
	if (rc == CM_NOTFOUND) {
		cm_why_set(w, "identifier_not_linked", "this subject has no such identifier");
		goto out;
	}
	if (rc != CM_OK || (rc = cm_store_subject_touch(cx->cx_db, row.s_id, cx->cx_now)) != CM_OK)
		goto out;
	details = json_pack("{s:s}", "type", ident->id_type);
	/* A suppression on it keeps binding the person it was listed for. */
	rc = cm_store_suppression_get(cx->cx_db, ident->id_type, blind, reason, &since);
	if (rc == CM_OK) {
		ledger_supp_tag(cx, ident->id_type, blind, tag);
		json_object_set_new(details, "kept_suppression", json_string(tag));
		rc = cm_store_suppression_bind(cx->cx_db, row.s_id, ident->id_type, blind);
	} else if (rc == CM_NOTFOUND) {
		rc = CM_OK;
	}
	if (rc != CM_OK) {
		json_decref(details);
		goto out;
	}
	rc = cm_ctx_audit(cx, "identifier.unlinked", row.s_id, key, details,
	    json_pack("{s:s}", "identifier", ident->id_text), NULL);
out:
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_patch_profile(const struct cm_ctx *cx, const char *id, json_t *attrs,
    struct cm_why *w)
{
	struct cm_subject_row row;
	json_t *set = json_array(), *deleted = json_array();
	uint8_t *key;
	cm_result rc;

	key = cm_key_acquire();
	if ((rc = profile_check(attrs, true, w)) != CM_OK ||
	    (rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK ||
	    (rc = record_profile_apply(cx, row.s_id, key, attrs, set, deleted, w)) != CM_OK ||
	    (rc = cm_store_subject_touch(cx->cx_db, row.s_id, cx->cx_now)) != CM_OK)
		goto out;
	rc = cm_ctx_audit(cx, "profile.updated", row.s_id, key,
	    json_pack("{s:O, s:O}", "set", set, "deleted", deleted),
	    json_pack("{s:O}", "changes", attrs), NULL);
out:
	json_decref(set);
	json_decref(deleted);
	cm_key_release(key);
	return rc;
}
