/* SPDX-License-Identifier: ISC */
/*
 * The history of the policy's notices. A purpose's notice text is the part
 * of the policy a person is shown about it (title, description, lawful
 * basis, channels, data categories, recipients), taken as written and put
 * in canonical JSON, so the same policy always gives the same bytes and
 * the same SHA-256. At start-up every purpose is compared with what the
 * store has served: the version may only go up, and under one version the
 * text may not change. Only when every purpose passes are the new versions
 * stored, each with its "policy.version" audit entry, in one transaction;
 * a refusal leaves the store as it was.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/notice.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

/* The fields of a purpose that make its notice, in the order changes are named. */
static const char *const notice_fields[] = {
	"lawful_basis", "title", "description", "channels", "data_categories",
	"recipients"
};

/* Strings at most this long are quoted in a refusal ("consent → …"). */
#define NOTICE_QUOTE_MAX	60

static json_t *
notice_purpose_doc(const struct cm_policy *p, size_t purpose)
{
	return json_array_get(json_object_get(p->pol_doc, "purposes"), purpose);
}

cm_result
cm_notice_text(const struct cm_policy *p, size_t purpose, char **text,
    uint8_t sha256[32])
{
	json_t *pu, *notice = NULL, *v;
	cm_result rc = CM_INVALID;
	size_t i;

	*text = NULL;
	if (purpose >= p->pol_npurposes || (pu = notice_purpose_doc(p, purpose)) == NULL)
		goto out;
	notice = json_object();
	for (i = 0; i < CM_NELEM(notice_fields); i++) {
		if ((v = json_object_get(pu, notice_fields[i])) == NULL)
			goto out;
		json_object_set(notice, notice_fields[i], v);
	}
	if ((*text = json_dumps(notice, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		rc = CM_NOMEM;
		goto out;
	}
	cm_sha256(sha256, *text, strlen(*text));
	rc = CM_OK;
out:
	json_decref(notice);
	return rc;
}

/* "(OLD → NEW)", "(added NEW)" or "(removed OLD)" for short strings, else "". */
static void
notice_describe(json_t *old, json_t *new_, char *out, size_t outlen)
{
	const char *o = json_is_string(old) ? json_string_value(old) : NULL;
	const char *n = json_is_string(new_) ? json_string_value(new_) : NULL;

	out[0] = '\0';
	if (o != NULL && strlen(o) > NOTICE_QUOTE_MAX)
		o = NULL;
	if (n != NULL && strlen(n) > NOTICE_QUOTE_MAX)
		n = NULL;
	if (old != NULL && new_ != NULL && o != NULL && n != NULL)
		snprintf(out, outlen, " (%s → %s)", o, n);
	else if (old == NULL && n != NULL)
		snprintf(out, outlen, " (added \"%s\")", n);
	else if (new_ == NULL && o != NULL)
		snprintf(out, outlen, " (removed \"%s\")", o);
}

/* The first member whose value differs between objects OLD and NEW, or NULL. */
static const char *
notice_diff_key(json_t *old, json_t *new_)
{
	const char *key, *found = NULL;
	json_t *v;

	json_object_foreach(old, key, v)
		if (found == NULL && !json_equal(v, json_object_get(new_, key)))
			found = key;
	json_object_foreach(new_, key, v)
		if (found == NULL && json_object_get(old, key) == NULL)
			found = key;
	return found;
}

/*
 * OLD and NEW differ: appends to FIELD (FIELDLEN bytes, already naming
 * where they are) the path of their first difference, and describes it
 * into DETAIL. An added or removed item or member is named by its path;
 * an item removed from the end of a list by the list.
 */
static void
notice_diff(json_t *old, json_t *new_, char *field, size_t fieldlen, char *detail,
    size_t detaillen)
{
	size_t k = 0, no, nn, used = strlen(field);
	const char *key;
	json_t *a, *b;

	if (json_is_array(old) && json_is_array(new_)) {
		no = json_array_size(old);
		nn = json_array_size(new_);
		while (k < no && k < nn &&
		    json_equal(json_array_get(old, k), json_array_get(new_, k)))
			k++;
		if (k < nn)
			snprintf(field + used, fieldlen - used, "[%zu]", k);
		a = json_array_get(old, k);
		b = json_array_get(new_, k);
	} else if (json_is_object(old) && json_is_object(new_) &&
	    (key = notice_diff_key(old, new_)) != NULL) {
		snprintf(field + used, fieldlen - used, ".%s", key);
		a = json_object_get(old, key);
		b = json_object_get(new_, key);
	} else {
		notice_describe(old, new_, detail, detaillen);
		return;
	}
	if (a != NULL && b != NULL)
		notice_diff(a, b, field, fieldlen, detail, detaillen);
	else
		notice_describe(a, b, detail, detaillen);
}

cm_result
cm_notice_compare(const struct cm_policy *p, size_t purpose, const char *text,
    const struct cm_notice_row *same, int64_t max_version, bool *is_new,
    char *err, size_t errlen)
{
	const struct cm_purpose *pu = &p->pol_purposes[purpose];
	json_t *old = NULL, *cur = NULL;
	char field[160], rel[128], detail[2 * NOTICE_QUOTE_MAX + 64];
	cm_result rc = CM_CONFLICT;
	size_t i;

	*is_new = false;
	if (pu->pu_version < max_version) {
		snprintf(field, sizeof(field), "purposes[%zu].version", purpose);
		snprintf(err, errlen, "%s:%d: %s: purpose %s lowered its version to %" PRId64
		    " below %" PRId64 ", the highest already served: a version only goes up",
		    p->pol_file, cm_policy_line(p, field), field, pu->pu_id, pu->pu_version,
		    max_version);
		goto out;
	}
	if (same == NULL) {
		*is_new = true;
		rc = CM_OK;
		goto out;
	}
	if (strlen(text) == same->nr_text_len &&
	    memcmp(text, same->nr_text, same->nr_text_len) == 0) {
		rc = CM_OK;
		goto out;
	}
	/* Name the first field that changed; the text alone if none is found. */
	old = json_loadb(same->nr_text, same->nr_text_len, 0, NULL);
	cur = json_loads(text, 0, NULL);
	snprintf(rel, sizeof(rel), "notice");
	detail[0] = '\0';
	for (i = 0; i < CM_NELEM(notice_fields); i++) {
		json_t *a = json_object_get(old, notice_fields[i]);
		json_t *b = json_object_get(cur, notice_fields[i]);

		if (json_equal(a, b))
			continue;
		snprintf(rel, sizeof(rel), "%s", notice_fields[i]);
		if (a != NULL && b != NULL)
			notice_diff(a, b, rel, sizeof(rel), detail, sizeof(detail));
		break;
	}
	snprintf(field, sizeof(field), "purposes[%zu].%s", purpose, rel);
	snprintf(err, errlen, "%s:%d: %s: purpose %s changed its %s%s without raising "
	    "version %" PRId64 ": raise version to record the new text (and "
	    "min_valid_version if consents given on the old text must no longer count)",
	    p->pol_file, cm_policy_line(p, field), field, pu->pu_id, rel, detail,
	    pu->pu_version);
out:
	json_decref(old);
	json_decref(cur);
	return rc;
}

/* The stored history, copied out of the store for the comparison. */
struct notice_hist {
	struct cm_notice_row	*nh_rows;	/* nr_text points into nh_texts */
	char			**nh_texts;
	size_t			 nh_n;
};

static int
notice_hist_add(void *arg, const struct cm_notice_row *row)
{
	struct notice_hist *h = arg;

	h->nh_rows = cm_reallocarray(h->nh_rows, h->nh_n + 1, sizeof(*h->nh_rows));
	h->nh_texts = cm_reallocarray(h->nh_texts, h->nh_n + 1, sizeof(*h->nh_texts));
	h->nh_texts[h->nh_n] = cm_strndup(row->nr_text, row->nr_text_len);
	h->nh_rows[h->nh_n] = *row;
	h->nh_rows[h->nh_n].nr_text = h->nh_texts[h->nh_n];
	h->nh_n++;
	return 0;
}

static void
notice_hist_free(struct notice_hist *h)
{
	size_t i;

	for (i = 0; i < h->nh_n; i++)
		free(h->nh_texts[i]);
	free(h->nh_texts);
	free(h->nh_rows);
	memset(h, 0, sizeof(*h));
}

/* PURPOSE's row of VERSION (NULL when none) and its highest version. */
static const struct cm_notice_row *
notice_hist_find(const struct notice_hist *h, const char *purpose, int64_t version,
    int64_t *max_version)
{
	const struct cm_notice_row *same = NULL;
	size_t i;

	*max_version = 0;
	for (i = 0; i < h->nh_n; i++) {
		if (strcmp(h->nh_rows[i].nr_purpose, purpose) != 0)
			continue;
		if (h->nh_rows[i].nr_version > *max_version)
			*max_version = h->nh_rows[i].nr_version;
		if (h->nh_rows[i].nr_version == version)
			same = &h->nh_rows[i];
	}
	return same;
}

/* Appends the "policy.version" entry of ROW and stores ROW, in DB's transaction. */
static cm_result
notice_record(struct cm_db *db, struct cm_notice_row *row)
{
	struct cm_audit_event ev;
	char hex[65];
	json_t *details;
	uint64_t idx;
	cm_result rc;

	cm_hex_encode(hex, row->nr_sha256, sizeof(row->nr_sha256));
	details = json_pack("{s:s, s:I, s:s, s:s}", "purpose", row->nr_purpose,
	    "version", (json_int_t)row->nr_version, "sha256", hex,
	    "lawful_basis", row->nr_basis);
	memset(&ev, 0, sizeof(ev));
	ev.ae_type = "policy.version";
	ev.ae_actor = "system";
	ev.ae_details = details;
	if (details == NULL)
		rc = CM_NOMEM;
	else if ((rc = cm_audit_append(db, &ev, &idx)) == CM_OK) {
		row->nr_audit_index = (int64_t)idx;
		rc = cm_store_notice_insert(db, row);
	}
	json_decref(details);
	return rc;
}

cm_result
cm_notice_sync(struct cm_db *db, const struct cm_policy *p, size_t *recorded,
    char *err, size_t errlen)
{
	struct notice_hist hist = { 0 };
	const struct cm_notice_row *same;
	struct cm_notice_row row;
	char **texts = NULL;
	uint8_t (*sums)[32] = NULL;
	int64_t max_version, now = cm_time_now_us();
	bool is_new, began = false;
	cm_result rc;
	size_t i;

	*recorded = 0;
	texts = cm_calloc(p->pol_npurposes + 1, sizeof(*texts));
	sums = cm_calloc(p->pol_npurposes + 1, sizeof(*sums));
	/* One write transaction: nothing can be recorded between check and write. */
	if ((rc = cm_db_begin(db)) != CM_OK) {
		snprintf(err, errlen, "cannot begin a transaction (%s)", cm_result_str(rc));
		goto out;
	}
	began = true;
	if ((rc = cm_store_notice_list(db, NULL, notice_hist_add, &hist)) != CM_OK) {
		snprintf(err, errlen, "cannot read the notice history (%s)",
		    cm_result_str(rc));
		goto out;
	}
	/* Every purpose is checked before anything is written. */
	for (i = 0; i < p->pol_npurposes; i++) {
		if ((rc = cm_notice_text(p, i, &texts[i], sums[i])) != CM_OK) {
			snprintf(err, errlen, "%s: cannot make the notice text of purpose %s",
			    p->pol_file, p->pol_purposes[i].pu_id);
			goto out;
		}
		same = notice_hist_find(&hist, p->pol_purposes[i].pu_id,
		    p->pol_purposes[i].pu_version, &max_version);
		if ((rc = cm_notice_compare(p, i, texts[i], same, max_version, &is_new, err,
		    errlen)) != CM_OK)
			goto out;
		if (!is_new) {
			free(texts[i]);
			texts[i] = NULL;
		}
	}
	for (i = 0; i < p->pol_npurposes; i++) {
		if (texts[i] == NULL)
			continue;
		memset(&row, 0, sizeof(row));
		snprintf(row.nr_purpose, sizeof(row.nr_purpose), "%s",
		    p->pol_purposes[i].pu_id);
		row.nr_version = p->pol_purposes[i].pu_version;
		memcpy(row.nr_sha256, sums[i], sizeof(row.nr_sha256));
		snprintf(row.nr_basis, sizeof(row.nr_basis), "%s",
		    cm_lawful_basis_name(p->pol_purposes[i].pu_basis));
		row.nr_text = texts[i];
		row.nr_text_len = strlen(texts[i]);
		row.nr_first_served_us = now;
		if ((rc = notice_record(db, &row)) != CM_OK) {
			snprintf(err, errlen, "cannot record version %" PRId64 " of purpose "
			    "%s (%s)", row.nr_version, row.nr_purpose, cm_result_str(rc));
			goto out;
		}
		(*recorded)++;
	}
	rc = cm_db_commit(db);
	began = false;
	if (rc != CM_OK) {
		snprintf(err, errlen, "cannot commit the notice history (%s)",
		    cm_result_str(rc));
		*recorded = 0;
	}
out:
	if (began)
		cm_db_rollback(db);
	if (rc != CM_OK)
		*recorded = 0;
	for (i = 0; texts != NULL && i < p->pol_npurposes; i++)
		free(texts[i]);
	free(texts);
	free(sums);
	notice_hist_free(&hist);
	return rc;
}

json_t *
cm_notice_json(const struct cm_notice_row *row)
{
	char hex[65], served[32];
	json_t *notice;

	notice = json_loadb(row->nr_text, row->nr_text_len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(notice)) {
		json_decref(notice);
		return NULL;
	}
	cm_hex_encode(hex, row->nr_sha256, sizeof(row->nr_sha256));
	cm_time_format(served, row->nr_first_served_us);
	return json_pack("{s:s, s:I, s:s, s:o, s:s, s:I}", "purpose", row->nr_purpose,
	    "version", (json_int_t)row->nr_version, "sha256", hex, "notice", notice,
	    "first_served_at", served, "audit_index", (json_int_t)row->nr_audit_index);
}
