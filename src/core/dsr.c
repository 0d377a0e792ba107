/* SPDX-License-Identifier: ISC */
/*
 * Data-subject requests: receiving one, reading it with its timeline,
 * listing them by due date, and what every step shares (loading a request
 * with its sealed part open, recording a step, refusing one the status
 * does not allow, issuing an identity code). The steps are in
 * dsr_steps.c.
 *
 * What a request holds of the person (the identifier asked about, the
 * details) is sealed with AD "dsr:ID:request": under the subject's key, so
 * an erasure leaves it unreadable with the rest of the record, or under
 * the request's own key, wrapped like a subject key, when nobody holds the
 * identifier. A request for an identifier nobody holds is received like
 * any other and answered "no data held" (Art. 15(1) asks for a
 * confirmation either way).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "dsr_int.h"
#include "record.h"

static const char *const type_names[] = { "access", "portability", "erasure",
    "rectification", "restriction", "objection", NULL };
static const char *const status_names[] = { "identity_unverified", "verified",
    "in_progress", "awaiting_systems", "completed", "denied", "canceled", NULL };
static const char *const jur_names[] = { "gdpr", "uk_gdpr", "ccpa", NULL };

#define NAME(v, i)	((size_t)(i) < CM_NELEM(v) - 1 ? (v)[i] : "invalid")

const char *
cm_dsr_type_name(enum cm_dsr_type t)
{
	return NAME(type_names, t);
}

int
cm_dsr_type_parse(const char *s, enum cm_dsr_type *out)
{
	int i = cm_strv_index(type_names, s);

	if (i >= 0)
		*out = (enum cm_dsr_type)i;
	return i >= 0 ? 0 : -1;
}

const char *
cm_dsr_status_name(enum cm_dsr_status st)
{
	return NAME(status_names, st);
}

int
cm_dsr_status_parse(const char *s, enum cm_dsr_status *out)
{
	int i = cm_strv_index(status_names, s);

	if (i >= 0)
		*out = (enum cm_dsr_status)i;
	return i >= 0 ? 0 : -1;
}

bool
cm_dsr_status_open(enum cm_dsr_status st)
{
	return st != CM_DSR_COMPLETED && st != CM_DSR_DENIED && st != CM_DSR_CANCELED;
}

const char *
cm_jurisdiction_name(enum cm_jurisdiction j)
{
	return NAME(jur_names, j);
}

int
cm_jurisdiction_parse(const char *s, enum cm_jurisdiction *out)
{
	int i = cm_strv_index(jur_names, s);

	if (i >= 0)
		*out = (enum cm_jurisdiction)i;
	return i >= 0 ? 0 : -1;
}

/* ---- details ------------------------------------------------------------ */

/* Each of ARR (an array of identifier texts, or absent) parses. */
static bool
idents_valid(const struct cm_ctx *cx, json_t *arr, const char *field, struct cm_why *w)
{
	struct cm_identifier id;
	char why[160];
	json_t *v;
	size_t i;

	if (arr == NULL)
		return true;
	if (!json_is_array(arr) || json_array_size(arr) > 32) {
		cm_why_set(w, "invalid_field", "a list of at most 32 identifiers");
		snprintf(w->w_field, sizeof(w->w_field), "details.changes.%s", field);
		return false;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || cm_identifier_parse(json_string_value(v),
		    json_string_length(v), cx->cx_policy, &id, why, sizeof(why)) != CM_OK) {
			cm_why_set(w, "invalid_field", "%s", json_is_string(v) ? why :
			    "an identifier is a string TYPE:VALUE");
			snprintf(w->w_field, sizeof(w->w_field), "details.changes.%s[%zu]",
			    field, i);
			return false;
		}
	}
	return true;
}

bool
cm_dsr_details_valid(const struct cm_ctx *cx, enum cm_dsr_type t, json_t *details,
    struct cm_why *w)
{
	static const char *const change_keys[] = { "profile", "add", "remove", NULL };
	json_t *changes, *v;
	const char *k;
	char *enc;
	size_t len;

	if (details == NULL)
		details = json_object();
	else
		json_incref(details);
	enc = json_dumps(details, JSON_COMPACT);
	len = enc != NULL ? strlen(enc) : SIZE_MAX;
	free(enc);
	if (!json_is_object(details) || len > 16384) {
		cm_why_set(w, "invalid_field", "an object of at most 16 KiB of JSON");
		snprintf(w->w_field, sizeof(w->w_field), "details");
		goto bad;
	}
	changes = json_object_get(details, "changes");
	if (t != CM_DSR_RECTIFICATION) {
		json_decref(details);
		return true;
	}
	if (!json_is_object(changes) || json_object_size(changes) == 0) {
		cm_why_set(w, "invalid_field", "a rectification names its changes: "
		    "{\"profile\": {…}, \"add\": […], \"remove\": […]}");
		snprintf(w->w_field, sizeof(w->w_field), "details.changes");
		goto bad;
	}
	json_object_foreach(changes, k, v) {
		(void)v;
		if (cm_strv_index(change_keys, k) < 0) {
			cm_why_set(w, "invalid_field", "unknown change");
			snprintf(w->w_field, sizeof(w->w_field), "details.changes.%.*s",
			    cm_utf8_prefix(k, 64), k);
			goto bad;
		}
	}
	if ((v = json_object_get(changes, "profile")) != NULL &&
	    !cm_subject_profile_valid(v, w)) {
		char inner[sizeof(w->w_field)];

		snprintf(inner, sizeof(inner), "%s", w->w_field[0] ? w->w_field : "attributes");
		w->w_code = "invalid_field";
		snprintf(w->w_field, sizeof(w->w_field), "details.changes.profile%.70s",
		    inner + strlen("attributes"));
		goto bad;
	}
	if (!idents_valid(cx, json_object_get(changes, "add"), "add", w) ||
	    !idents_valid(cx, json_object_get(changes, "remove"), "remove", w))
		goto bad;
	json_decref(details);
	return true;
bad:
	json_decref(details);
	return false;
}

/* ---- loading, recording ------------------------------------------------- */

static void
seal_request(const uint8_t *key, const char *id, json_t *sealed, uint8_t **out, size_t *len)
{
	char *enc = json_dumps(sealed, JSON_COMPACT);

	record_seal(key, "dsr", id, "request", enc, strlen(enc), out, len);
	cm_wipe(enc, strlen(enc));
	free(enc);
}

static json_t *
unseal_request(const uint8_t *key, const struct cm_dsr_row *row)
{
	json_error_t je;
	json_t *j;
	char *pt;

	pt = record_unseal(key, "dsr", row->r_id, "request", row->r_sealed, row->r_sealed_len);
	if (pt == NULL)
		return NULL;
	j = json_loads(pt, 0, &je);
	record_unseal_free(pt);
	return j;
}

cm_result
dsr_req_load(const struct cm_ctx *cx, const char *id, struct dsr_req *r, struct cm_why *w)
{
	struct cm_subject_row srow;
	struct cm_why ignored;
	cm_result rc;

	memset(r, 0, sizeof(*r));
	r->key = cm_key_acquire();
	if ((rc = cm_store_dsr_get(cx->cx_db, id, &r->row)) == CM_NOTFOUND) {
		cm_why_set(w, "not_found", "no such request");
		snprintf(w->w_field, sizeof(w->w_field), "id");
	}
	if (rc != CM_OK)
		return rc;
	if (cm_dsr_type_parse(r->row.r_type, &r->type) != 0 ||
	    cm_dsr_status_parse(r->row.r_status, &r->status) != 0 ||
	    cm_jurisdiction_parse(r->row.r_jurisdiction, &r->jur) != 0)
		return CM_IOERR;
	memset(&ignored, 0, sizeof(ignored));
	if (r->row.r_subject[0] != '\0')
		r->key_ok = cm_subject_open(cx, r->row.r_subject, &srow, r->key,
		    &ignored) == CM_OK;
	else
		r->key_ok = r->row.r_has_wrapped && cm_subject_key_unwrap(cx->cx_keys,
		    r->row.r_id, r->row.r_wrapped, sizeof(r->row.r_wrapped), r->key) == 0;
	if (r->key_ok && (r->sealed = unseal_request(r->key, &r->row)) == NULL)
		return CM_IOERR;
	return CM_OK;
}

void
dsr_req_free(struct dsr_req *r)
{
	cm_dsr_row_clear(&r->row);
	json_decref(r->sealed);
	r->sealed = NULL;
	cm_key_release(r->key);
	r->key = NULL;
}

cm_result
dsr_record(const struct cm_ctx *cx, struct dsr_req *r, const char *step,
    enum cm_dsr_status new_status, const char *reason, json_t *details)
{
	const char *subject = r->row.r_subject[0] ? r->row.r_subject : NULL;
	char type[48];
	uint64_t idx;
	int64_t closed;
	cm_result rc;

	if (details == NULL)
		details = json_object();
	json_object_set_new(details, "id", json_string(r->row.r_id));
	json_object_set_new(details, "type", json_string(r->row.r_type));
	json_object_set_new(details, "status", json_string(cm_dsr_status_name(new_status)));
	if (reason != NULL)
		json_object_set_new(details, "reason_given", json_true());
	snprintf(type, sizeof(type), "dsr.%s", step);
	/* Closed when it reached a final status; a later step keeps that time. */
	closed = cm_dsr_status_open(new_status) ? 0 :
	    r->row.r_closed_us != 0 ? r->row.r_closed_us : cx->cx_now;
	/* An erased subject's entries are about no one: its key is gone. */
	if ((rc = cm_ctx_audit(cx, type, r->key_ok ? subject : NULL, r->key_ok ? r->key : NULL,
	    details, NULL, &idx)) != CM_OK ||
	    (rc = cm_store_dsr_update(cx->cx_db, r->row.r_id, cm_dsr_status_name(new_status),
	    r->row.r_due_us, r->row.r_extended, closed, cx->cx_now)) != CM_OK ||
	    (rc = cm_store_dsr_step(cx->cx_db, r->row.r_id, step,
	    cm_dsr_status_name(new_status), cx->cx_actor, cx->cx_now, reason,
	    (int64_t)idx)) != CM_OK)
		return rc;
	r->status = new_status;
	r->row.r_closed_us = closed;
	return CM_OK;
}

cm_result
dsr_refuse(const struct dsr_req *r, const char *step, struct cm_why *w)
{
	cm_why_set(w, "invalid_transition", "a request that is %s cannot be %s",
	    cm_dsr_status_name(r->status), step);
	snprintf(w->w_field, sizeof(w->w_field), "status");
	snprintf(w->w_subject, sizeof(w->w_subject), "%s", cm_dsr_status_name(r->status));
	return CM_CONFLICT;
}

void
dsr_code_hash(const struct cm_ctx *cx, const char *id, const char *code, uint8_t out[32])
{
	const char *parts[2] = { id, code };

	cm_keyed_hash(out, 32, cx->cx_keys->k_code, parts, 2);
}

cm_result
dsr_issue_code(const struct cm_ctx *cx, struct dsr_req *r, char code[7])
{
	uint8_t hash[32];
	cm_result rc;

	snprintf(code, 7, "%06u", (unsigned)randombytes_uniform(1000000));
	dsr_code_hash(cx, r->row.r_id, code, hash);
	rc = cm_store_dsr_code_put(cx->cx_db, r->row.r_id, hash,
	    cx->cx_now + CM_DSR_CODE_TTL_US);
	sodium_memzero(hash, sizeof(hash));
	if (rc != CM_OK)
		return rc;
	return dsr_send_code(cx, r, code);
}

/* ---- receiving ---------------------------------------------------------- */

/* Fills ROW for a new request of IN about SUBJECT ("": nobody); ROW's id is made. */
static void
new_row(const struct cm_ctx *cx, const struct cm_dsr_input *in, const char *subject,
    const uint8_t blind[32], struct cm_dsr_row *row)
{
	cm_time_id(row->r_id, sizeof(row->r_id), "dsr_", cx->cx_now);
	snprintf(row->r_type, sizeof(row->r_type), "%s", cm_dsr_type_name(in->di_type));
	snprintf(row->r_subject, sizeof(row->r_subject), "%s", subject);
	snprintf(row->r_ident_type, sizeof(row->r_ident_type), "%s", in->di_ident->id_type);
	memcpy(row->r_ident_blind, blind, 32);
	snprintf(row->r_jurisdiction, sizeof(row->r_jurisdiction), "%s",
	    cm_jurisdiction_name(in->di_jurisdiction));
	snprintf(row->r_source, sizeof(row->r_source), "%s", in->di_source);
	snprintf(row->r_status, sizeof(row->r_status), "%s",
	    cm_dsr_status_name(CM_DSR_IDENTITY_UNVERIFIED));
	row->r_received_us = row->r_updated_us = cx->cx_now;
	row->r_due_us = cm_dsr_due(in->di_jurisdiction, cx->cx_now);
}

cm_result
cm_dsr_create(const struct cm_ctx *cx, const struct cm_dsr_input *in, json_t **out,
    bool *existing, struct cm_why *w)
{
	struct cm_subject_row srow;
	struct cm_dsr_row row;
	struct dsr_req r;
	char subject[CM_SUBJECT_ID_LEN + 1] = "", id[31], code[7] = "";
	uint8_t blind[32], *key, *sealed = NULL;
	json_t *j;
	cm_result rc;

	*out = NULL;
	*existing = false;
	memset(&row, 0, sizeof(row));
	memset(&r, 0, sizeof(r));
	key = cm_key_acquire();
	if (!cm_dsr_details_valid(cx, in->di_type, in->di_details, w)) {
		rc = CM_INVALID;
		goto out;
	}
	cm_blind_index(cx->cx_keys, in->di_ident->id_type, in->di_ident->id_value, blind);
	rc = cm_store_identifier_owner(cx->cx_db, in->di_ident->id_type, blind, subject);
	if (rc != CM_OK && rc != CM_NOTFOUND)
		goto out;
	rc = cm_store_dsr_find_open(cx->cx_db, subject[0] ? subject : NULL,
	    in->di_ident->id_type, blind, cm_dsr_type_name(in->di_type), id);
	if (rc == CM_OK) {
		*existing = true;
		rc = cm_dsr_get(cx, id, out, w);
		goto out;
	}
	if (rc != CM_NOTFOUND)
		goto out;
	new_row(cx, in, subject, blind, &row);
	if (subject[0] == '\0') {
		cm_subject_key_new(cx->cx_keys, row.r_id, key, row.r_wrapped);
		row.r_has_wrapped = true;
	} else if ((rc = cm_subject_open(cx, subject, &srow, key, w)) != CM_OK) {
		goto out;
	}
	j = json_pack("{s:s, s:O?}", "identifier", in->di_ident->id_text, "details",
	    in->di_details);
	seal_request(key, row.r_id, j, &sealed, &row.r_sealed_len);
	row.r_sealed = sealed;
	json_decref(j);
	if ((rc = cm_store_dsr_insert(cx->cx_db, &row)) != CM_OK ||
	    (rc = dsr_req_load(cx, row.r_id, &r, w)) != CM_OK ||
	    (rc = dsr_record(cx, &r, "received", CM_DSR_IDENTITY_UNVERIFIED, NULL,
	    json_pack("{s:s, s:s, s:b}", "jurisdiction", row.r_jurisdiction, "source",
	    row.r_source, "subject_known", subject[0] != '\0'))) != CM_OK)
		goto out;
	if (in->di_verified)
		rc = dsr_record(cx, &r, "verified", CM_DSR_VERIFIED,
		    "identity attested by the caller", json_pack("{s:s}", "by", "attestation"));
	else
		rc = dsr_issue_code(cx, &r, code);
	sodium_memzero(code, sizeof(code));
	if (rc == CM_OK)
		rc = cm_dsr_get(cx, row.r_id, out, w);
out:
	dsr_req_free(&r);
	free(sealed);
	cm_key_release(key);
	return rc;
}

/* ---- reading ------------------------------------------------------------ */

static json_t *
time_json(int64_t us)
{
	char t[32];

	if (us == 0)
		return json_null();
	cm_time_format(t, us);
	return json_string(t);
}

/* The request's plain columns as JSON (what a list shows). */
static json_t *
row_json(const struct cm_dsr_row *row, int64_t now)
{
	enum cm_dsr_status st = CM_DSR_COMPLETED;
	bool open;

	(void)cm_dsr_status_parse(row->r_status, &st);
	open = cm_dsr_status_open(st);
	return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:o, s:o, s:b, s:b, s:o, s:o}",
	    "id", row->r_id, "type", row->r_type, "status", row->r_status,
	    "subject_id", row->r_subject[0] ? row->r_subject : NULL,
	    "jurisdiction", row->r_jurisdiction, "source", row->r_source,
	    "received_at", time_json(row->r_received_us), "due_at", time_json(row->r_due_us),
	    "extended", row->r_extended, "overdue", open && cm_dsr_overdue(row->r_due_us, now),
	    "days_left", open ? json_integer(cm_dsr_days_left(row->r_due_us, now)) :
	    json_null(), "closed_at", time_json(row->r_closed_us));
}

static int
step_json(void *arg, const struct cm_dsr_step_row *st)
{
	json_t *a = arg;

	json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o, s:s?, s:I}",
	    "step", st->st_step, "status", st->st_status, "actor", st->st_actor,
	    "at", time_json(st->st_at_us), "reason", st->st_reason,
	    "audit_index", (json_int_t)st->st_audit_index));
	return 0;
}

static cm_result	dsr_get(const struct cm_ctx *, const char *, json_t **, struct cm_why *);

/* The request and its timeline are read in one snapshot. */
cm_result
cm_dsr_get(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	cm_result rc;

	*out = NULL;
	if ((rc = cm_db_read_begin(cx->cx_db)) != CM_OK)
		return rc;
	rc = dsr_get(cx, id, out, w);
	cm_db_read_end(cx->cx_db);
	return rc;
}

static cm_result
dsr_get(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	struct dsr_req r;
	json_t *j, *timeline = json_array();
	cm_result rc;

	if ((rc = dsr_req_load(cx, id, &r, w)) != CM_OK ||
	    (rc = cm_store_dsr_steps(cx->cx_db, id, step_json, timeline)) != CM_OK)
		goto out;
	j = row_json(&r.row, cx->cx_now);
	/* What the person asked is gone with their key once erased. */
	json_object_set(j, "identifier", r.sealed ? json_object_get(r.sealed, "identifier") :
	    json_null());
	json_object_set(j, "details", r.sealed && json_object_get(r.sealed, "details") ?
	    json_object_get(r.sealed, "details") : json_null());
	json_object_set(j, "timeline", timeline);
	if ((rc = dsr_systems_json(cx, id, j)) != CM_OK) {
		json_decref(j);
		goto out;
	}
	*out = j;
out:
	json_decref(timeline);
	dsr_req_free(&r);
	return rc;
}

/* ---- listing ------------------------------------------------------------ */

struct list_walk {
	json_t		*items;
	int64_t		 now;
	char		 last_id[31];
	int64_t		 last_due;
	int		 n;
};

static int
list_row(void *arg, const struct cm_dsr_row *row)
{
	struct list_walk *lw = arg;

	json_array_append_new(lw->items, row_json(row, lw->now));
	snprintf(lw->last_id, sizeof(lw->last_id), "%s", row->r_id);
	lw->last_due = row->r_due_us;
	lw->n++;
	return 0;
}

/* A cursor is "DUE.ID": the due date (microseconds) and id of a page's last row. */
static bool
cursor_parse(const char *s, int64_t *due, char id[31])
{
	const char *dot = strchr(s, '.');
	char num[24];

	if (dot == NULL || (size_t)(dot - s) >= sizeof(num) || strlen(dot + 1) != CM_DSR_ID_LEN ||
	    strncmp(dot + 1, "dsr_", 4) != 0 ||
	    strspn(dot + 5, "abcdefghijklmnopqrstuvwxyz234567") != CM_DSR_ID_LEN - 4)
		return false;
	memcpy(num, s, (size_t)(dot - s));
	num[dot - s] = '\0';
	if (cm_parse_i64(num, 0, INT64_MAX, due) != 0)
		return false;
	memcpy(id, dot + 1, CM_DSR_ID_LEN + 1);
	return true;
}

cm_result
cm_dsr_list(const struct cm_ctx *cx, const struct cm_dsr_filter *f, json_t **out,
    struct cm_why *w)
{
	struct cm_dsr_query q;
	struct list_walk lw;
	char after[31], cur[64];
	cm_result rc;

	*out = NULL;
	memset(&q, 0, sizeof(q));
	memset(&lw, 0, sizeof(lw));
	if (f->df_cursor != NULL) {
		if (!cursor_parse(f->df_cursor, &q.dq_after_due, after)) {
			cm_why_set(w, "invalid_field", "not a cursor this service gave");
			snprintf(w->w_field, sizeof(w->w_field), "cursor");
			return CM_INVALID;
		}
		q.dq_after_id = after;
	}
	q.dq_status = f->df_status >= 0 ? cm_dsr_status_name(f->df_status) : NULL;
	q.dq_type = f->df_type >= 0 ? cm_dsr_type_name(f->df_type) : NULL;
	q.dq_subject = f->df_subject;
	q.dq_overdue_at = f->df_overdue ? cx->cx_now : 0;
	q.dq_limit = f->df_limit;
	lw.items = json_array();
	lw.now = cx->cx_now;
	if ((rc = cm_db_read_begin(cx->cx_db)) == CM_OK) {
		rc = cm_store_dsr_list(cx->cx_db, &q, list_row, &lw);
		cm_db_read_end(cx->cx_db);
	}
	if (rc != CM_OK) {
		json_decref(lw.items);
		return rc;
	}
	snprintf(cur, sizeof(cur), "%lld.%s", (long long)lw.last_due, lw.last_id);
	*out = json_pack("{s:o, s:s?}", "requests", lw.items, "next_cursor",
	    lw.n == f->df_limit ? cur : NULL);
	return CM_OK;
}

/* ---- merges ------------------------------------------------------------- */

struct rehome {
	const struct cm_ctx	*cx;
	const uint8_t		*kfrom, *kinto;
	struct cm_dsr_row	*rows;
	uint8_t			**sealed;
	size_t			 n;
	bool			 failed;
};

static int
rehome_collect(void *arg, const struct cm_dsr_row *row)
{
	struct rehome *h = arg;
	json_t *j;
	size_t len;

	if ((j = unseal_request(h->kfrom, row)) == NULL) {
		h->failed = true;
		return 1;
	}
	h->rows = cm_reallocarray(h->rows, h->n + 1, sizeof(*h->rows));
	h->sealed = cm_reallocarray(h->sealed, h->n + 1, sizeof(*h->sealed));
	h->rows[h->n] = *row;
	h->rows[h->n].r_sealed = NULL;
	seal_request(h->kinto, row->r_id, j, &h->sealed[h->n], &len);
	h->rows[h->n].r_sealed_len = len;
	h->n++;
	json_decref(j);
	return 0;
}

cm_result
cm_dsr_rehome(const struct cm_ctx *cx, const char *from, const char *into,
    const uint8_t *kfrom, const uint8_t *kinto)
{
	struct rehome h;
	size_t i;
	cm_result rc;

	memset(&h, 0, sizeof(h));
	h.cx = cx;
	h.kfrom = kfrom;
	h.kinto = kinto;
	if ((rc = cm_store_dsr_of_subject(cx->cx_db, from, rehome_collect, &h)) == CM_OK &&
	    h.failed)
		rc = CM_IOERR;
	for (i = 0; rc == CM_OK && i < h.n; i++)
		rc = cm_store_dsr_rehome(cx->cx_db, h.rows[i].r_id, into, h.sealed[i],
		    h.rows[i].r_sealed_len);
	for (i = 0; i < h.n; i++)
		free(h.sealed[i]);
	free(h.sealed);
	free(h.rows);
	return rc;
}
