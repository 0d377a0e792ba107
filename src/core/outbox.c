/* SPDX-License-Identifier: ISC */
/*
 * The outbox's domain side: queueing a message or webhook in the caller's
 * transaction, rendering messages from the templates of web/templates/,
 * opening a queued body for its sender, recording each attempt with its
 * backoff, and what the operator sees and retries.
 *
 * A body is sealed with AD "outbox:ID:body": under its subject's key (so
 * an erasure, destroying that key, destroys it) or under a random key of
 * its own, wrapped like a subject key with AD = the row's id, when it
 * must outlive the subject key or there is no subject. A delivered row
 * keeps no body and no key; a dead one keeps no key of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/outbox.h"
#include "consentd/policy.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "record.h"

static const struct cm_template *
template_find(const char *name)
{
	size_t i;

	for (i = 0; i < cm_templates_builtin_count; i++)
		if (cm_templates_builtin[i].t_name != NULL &&
		    strcmp(cm_templates_builtin[i].t_name, name) == 0)
			return &cm_templates_builtin[i];
	return NULL;
}

/* The policy's string at PATH ("controller", "name"), or "". */
static const char *
policy_str(const struct cm_policy *p, const char *obj, const char *key)
{
	const char *s;

	if (p == NULL)
		return "";
	s = json_string_value(json_object_get(json_object_get(p->pol_doc, obj), key));
	return s != NULL ? s : "";
}

/* The value of placeholder NAME (LEN bytes): VARS first, then the policy's. */
static const char *
var_value(const struct cm_policy *p, json_t *vars, const char *name, size_t len)
{
	static const struct { const char *v, *obj, *key; } pol[] = {
		{ "controller_name", "controller", "name" },
		{ "controller_email", "controller", "email" },
		{ "authority_name", "supervisory_authority", "name" },
		{ "authority_url", "supervisory_authority", "url" },
	};
	char key[64];
	size_t i;

	if (len == 0 || len >= sizeof(key))
		return NULL;
	memcpy(key, name, len);
	key[len] = '\0';
	if (json_is_string(json_object_get(vars, key)))
		return json_string_value(json_object_get(vars, key));
	for (i = 0; i < CM_NELEM(pol); i++)
		if (strcmp(pol[i].v, key) == 0)
			return policy_str(p, pol[i].obj, pol[i].key);
	return NULL;
}

cm_result
cm_outbox_render(const struct cm_policy *p, const char *template, json_t *vars,
    char **subject, char **text)
{
	const struct cm_template *t;
	struct cm_buf b;
	const char *s, *end, *open, *close, *v, *nl;
	cm_result rc = CM_OK;

	*subject = *text = NULL;
	if ((t = template_find(template)) == NULL)
		return CM_NOTFOUND;
	memset(&b, 0, sizeof(b));
	s = t->t_text;
	end = s + t->t_len;
	while (s < end) {
		if ((open = strstr(s, "{{")) == NULL || open >= end) {
			cm_buf_append(&b, s, (size_t)(end - s));
			break;
		}
		cm_buf_append(&b, s, (size_t)(open - s));
		if ((close = strstr(open + 2, "}}")) == NULL ||
		    (v = var_value(p, vars, open + 2, (size_t)(close - open - 2))) == NULL) {
			rc = CM_INVALID;
			break;
		}
		cm_buf_append(&b, v, strlen(v));
		s = close + 2;
	}
	cm_buf_append(&b, "", 1);
	if (rc != CM_OK || strncmp(b.b_data, "Subject: ", 9) != 0 ||
	    (nl = strstr(b.b_data, "\n\n")) == NULL) {
		cm_wipe(b.b_data, b.b_len);
		cm_buf_free(&b);
		return CM_INVALID;
	}
	*subject = cm_malloc((size_t)(nl - b.b_data) - 9 + 1);
	memcpy(*subject, b.b_data + 9, (size_t)(nl - b.b_data) - 9);
	(*subject)[nl - b.b_data - 9] = '\0';
	*text = cm_strdup(nl + 2);
	cm_wipe(b.b_data, b.b_len);
	cm_buf_free(&b);
	return CM_OK;
}

/* ---- messages ------------------------------------------------------------ */

cm_result
cm_outbox_message(const struct cm_ctx *cx, struct cm_outbox_item *it, const char *recipient,
    json_t *vars)
{
	char *subject = NULL, *text = NULL;
	json_t *body;
	cm_result rc;

	if (strncmp(recipient, "email:", 6) == 0)
		it->oi_channel = "email";
	else if (strncmp(recipient, "phone:", 6) == 0)
		it->oi_channel = "phone";
	else
		return CM_INVALID;
	if ((rc = cm_outbox_render(cx->cx_policy, it->oi_name, vars, &subject, &text)) != CM_OK)
		return rc;
	it->oi_kind = "message";
	body = json_pack("{s:s, s:s, s:s}", "to", recipient + 6, "subject", subject,
	    "text", text);
	it->oi_body = body;
	rc = body != NULL ? cm_outbox_queue(cx, it, NULL) : CM_NOMEM;
	cm_outbox_body_free(body);
	cm_wipe(subject, strlen(subject));
	cm_wipe(text, strlen(text));
	free(subject);
	free(text);
	return rc;
}

cm_result
cm_outbox_release(const struct cm_ctx *cx, const char *request, const char *name,
    int64_t due_us)
{
	return cm_store_outbox_schedule(cx->cx_db, request, name, due_us);
}

/* ---- opening, attempts --------------------------------------------------- */

cm_result
cm_outbox_open(const struct cm_ctx *cx, const struct cm_outbox_row *row, json_t **body)
{
	struct cm_subject_row srow;
	struct cm_why w;
	json_error_t je;
	uint8_t *key;
	char *pt = NULL;
	cm_result rc = CM_OK;

	*body = NULL;
	if (row->o_body == NULL)
		return CM_NOTFOUND;
	key = cm_key_acquire();
	memset(&w, 0, sizeof(w));
	if (row->o_has_wrapped) {
		if (cm_subject_key_unwrap(cx->cx_keys, row->o_id, row->o_wrapped,
		    sizeof(row->o_wrapped), key) != 0)
			rc = CM_INVALID;
	} else if (row->o_subject[0] != '\0') {
		rc = cm_subject_open(cx, row->o_subject, &srow, key, &w);
		if (rc == CM_CONFLICT || rc == CM_NOTFOUND)
			rc = CM_NOTFOUND;	/* erased: the body went with the key */
	} else {
		rc = CM_INVALID;
	}
	/* A body no key opens (its subject merged away, say) will never go out. */
	if (rc == CM_OK && (pt = record_unseal(key, "outbox", row->o_id, "body", row->o_body,
	    row->o_body_len)) == NULL)
		rc = CM_INVALID;
	if (rc == CM_OK && (*body = json_loads(pt, 0, &je)) == NULL)
		rc = CM_INVALID;
	record_unseal_free(pt);
	cm_key_release(key);
	return rc;
}

struct rehome_walk {
	const struct cm_ctx	*cx;
	const char		*into;
	const uint8_t		*kfrom, *kinto;
	char			(*ids)[CM_OUTBOX_ID_LEN + 1];
	uint8_t			**bodies;
	size_t			*lens;
	size_t			 n;
	bool			 failed;
};

static int
rehome_collect(void *arg, const struct cm_outbox_row *row)
{
	struct rehome_walk *h = arg;
	char *pt = NULL;
	size_t len = 0;
	uint8_t *sealed = NULL;

	/* A body under a key of its own, or none, moves as it is. */
	if (row->o_body != NULL && !row->o_has_wrapped) {
		if ((pt = record_unseal(h->kfrom, "outbox", row->o_id, "body", row->o_body,
		    row->o_body_len)) == NULL) {
			h->failed = true;
			return 1;
		}
		record_seal(h->kinto, "outbox", row->o_id, "body", pt, strlen(pt), &sealed, &len);
		record_unseal_free(pt);
	}
	h->ids = cm_reallocarray(h->ids, h->n + 1, sizeof(*h->ids));
	h->bodies = cm_reallocarray(h->bodies, h->n + 1, sizeof(*h->bodies));
	h->lens = cm_reallocarray(h->lens, h->n + 1, sizeof(*h->lens));
	memcpy(h->ids[h->n], row->o_id, sizeof(h->ids[h->n]));
	h->bodies[h->n] = sealed;
	h->lens[h->n] = len;
	h->n++;
	return 0;
}

cm_result
cm_outbox_rehome(const struct cm_ctx *cx, const char *from, const char *into,
    const uint8_t *kfrom, const uint8_t *kinto)
{
	struct rehome_walk h;
	size_t i;
	cm_result rc;

	memset(&h, 0, sizeof(h));
	h.cx = cx;
	h.into = into;
	h.kfrom = kfrom;
	h.kinto = kinto;
	if ((rc = cm_store_outbox_of_subject(cx->cx_db, from, rehome_collect, &h)) == CM_OK &&
	    h.failed)
		rc = CM_IOERR;
	/* A NULL body leaves the row's own as it is. */
	for (i = 0; rc == CM_OK && i < h.n; i++)
		rc = cm_store_outbox_rehome(cx->cx_db, h.ids[i], into, h.bodies[i], h.lens[i]);
	for (i = 0; i < h.n; i++)
		free(h.bodies[i]);
	free(h.bodies);
	free(h.lens);
	free(h.ids);
	return rc;
}

/* Wipes the strings of J (a body) before freeing it. */
static void
body_wipe(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_string(j)) {
		cm_wipe((void *)(uintptr_t)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			body_wipe(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			body_wipe(v);
	}
}

void
cm_outbox_body_free(json_t *j)
{
	if (j == NULL)
		return;
	if (j->refcount == 1)
		body_wipe(j);
	json_decref(j);
}

cm_result
cm_outbox_result(const struct cm_ctx *cx, const struct cm_outbox_row *row, bool ok,
    const char *error, int64_t base_ms, int max_attempts, bool *dead)
{
	int64_t attempts = row->o_attempts + 1, delay_ms, jitter;
	uint32_t r;

	*dead = false;
	if (ok)
		return cm_store_outbox_sent(cx->cx_db, row->o_id, cx->cx_now);
	*dead = attempts >= max_attempts;
	/* base * 2^(n-1), capped at a day, then a random point in its second half. */
	delay_ms = base_ms;
	while (delay_ms < 86400000 && --attempts > 0)
		delay_ms *= 2;
	attempts = row->o_attempts + 1;
	cm_random(&r, sizeof(r));
	jitter = delay_ms / 2 > 0 ? (int64_t)(r % (uint32_t)(delay_ms / 2 + 1)) : 0;
	delay_ms = delay_ms - delay_ms / 2 + jitter;
	return cm_store_outbox_failed(cx->cx_db, row->o_id, attempts,
	    cx->cx_now + delay_ms * 1000, error, *dead, *dead && row->o_has_wrapped);
}

/* ---- what the operator sees ---------------------------------------------- */

static json_t *
time_json(int64_t us)
{
	char t[32];

	if (us == 0 || us == CM_OUTBOX_HELD)
		return json_null();
	cm_time_format(t, us);
	return json_string(t);
}

json_t *
cm_outbox_row_json(const struct cm_outbox_row *r)
{
	return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:I, s:o, s:b, s:s?, s:o, "
	    "s:o, s:b}", "id", r->o_id, "kind", r->o_kind,
	    "request_id", r->o_request[0] ? r->o_request : NULL, "name", r->o_name,
	    "channel", r->o_channel, "system", r->o_system[0] ? r->o_system : NULL,
	    "status", r->o_status, "attempts", (json_int_t)r->o_attempts,
	    "next_attempt_at", strcmp(r->o_status, "pending") == 0 ?
	    time_json(r->o_next_us) : json_null(),
	    "held", strcmp(r->o_status, "pending") == 0 && r->o_next_us == CM_OUTBOX_HELD,
	    "last_error", r->o_error[0] ? r->o_error : NULL,
	    "created_at", time_json(r->o_created_us), "sent_at", time_json(r->o_sent_us),
	    "body_kept", r->o_body != NULL);
}

static int
list_row(void *arg, const struct cm_outbox_row *r)
{
	json_array_append_new(arg, cm_outbox_row_json(r));
	return 0;
}

cm_result
cm_outbox_list(const struct cm_ctx *cx, const char *status, int limit, json_t **out)
{
	json_t *items = json_array();
	cm_result rc;

	*out = NULL;
	if ((rc = cm_db_read_begin(cx->cx_db)) == CM_OK) {
		rc = cm_store_outbox_list(cx->cx_db, status, NULL, limit, list_row, items);
		cm_db_read_end(cx->cx_db);
	}
	if (rc != CM_OK) {
		json_decref(items);
		return rc;
	}
	*out = json_pack("{s:o}", "items", items);
	return CM_OK;
}

/* A page of the outbox list: LIMIT rows, then whether one more is there. */
struct outbox_page {
	json_t		*items;
	int		 limit;
	int64_t		 last_us;
	char		 last_id[CM_OUTBOX_ID_LEN + 1];
	bool		 more;
};

static int
page_row(void *arg, const struct cm_outbox_row *r)
{
	struct outbox_page *op = arg;

	if (json_array_size(op->items) == (size_t)op->limit) {
		op->more = true;
		return 1;
	}
	op->last_us = r->o_created_us;
	snprintf(op->last_id, sizeof(op->last_id), "%s", r->o_id);
	json_array_append_new(op->items, cm_outbox_row_json(r));
	return 0;
}

/* An outbox cursor is "o.CREATED.ID": the time and id of the page's last row. */
static bool
outbox_cursor_parse(const char *s, int64_t *us, char id[CM_OUTBOX_ID_LEN + 1])
{
	const char *dot;
	char num[24];

	if (strncmp(s, "o.", 2) != 0 || (dot = strchr(s + 2, '.')) == NULL ||
	    (size_t)(dot - s - 2) >= sizeof(num) || strlen(dot + 1) != CM_OUTBOX_ID_LEN ||
	    strncmp(dot + 1, "obx_", 4) != 0)
		return false;
	memcpy(num, s + 2, (size_t)(dot - s - 2));
	num[dot - s - 2] = '\0';
	if (cm_parse_i64(num, 0, INT64_MAX, us) != 0)
		return false;
	memcpy(id, dot + 1, CM_OUTBOX_ID_LEN + 1);
	return true;
}

cm_result
cm_outbox_page(const struct cm_ctx *cx, const char *status, const char *cursor, int limit,
    json_t **out, struct cm_why *w)
{
	struct outbox_page op;
	char before[CM_OUTBOX_ID_LEN + 1], next[80];
	int64_t before_us = 0;
	cm_result rc;

	*out = NULL;
	memset(&op, 0, sizeof(op));
	if (cursor != NULL && !outbox_cursor_parse(cursor, &before_us, before)) {
		cm_why_set(w, "invalid_parameter", "not a cursor this service gave");
		if (w != NULL)
			snprintf(w->w_field, sizeof(w->w_field), "cursor");
		return CM_INVALID;
	}
	op.items = json_array();
	op.limit = limit;
	if ((rc = cm_db_read_begin(cx->cx_db)) == CM_OK) {
		rc = cm_store_outbox_page(cx->cx_db, status, before_us, cursor ? before : NULL,
		    limit + 1, page_row, &op);
		cm_db_read_end(cx->cx_db);
	}
	if (rc != CM_OK) {
		json_decref(op.items);
		return rc;
	}
	snprintf(next, sizeof(next), "o.%lld.%s", (long long)op.last_us, op.last_id);
	*out = json_pack("{s:o, s:s?}", "items", op.items, "next_cursor", op.more ? next : NULL);
	return CM_OK;
}

cm_result
cm_outbox_retry(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	struct cm_outbox_row row;
	cm_result rc;

	*out = NULL;
	if ((rc = cm_store_outbox_get(cx->cx_db, id, &row)) == CM_NOTFOUND) {
		cm_why_set(w, "not_found", "no such outbox row");
		snprintf(w->w_field, sizeof(w->w_field), "id");
	}
	if (rc != CM_OK)
		goto out;
	if (strcmp(row.o_status, "dead") != 0) {
		cm_why_set(w, "not_dead", "only a dead row is retried; this one is %s",
		    row.o_status);
		snprintf(w->w_field, sizeof(w->w_field), "status");
		rc = CM_CONFLICT;
		goto out;
	}
	if (row.o_body == NULL) {
		cm_why_set(w, "body_gone", "its content was destroyed when it died (it was "
		    "sealed under a key of its own, or its subject was erased)");
		snprintf(w->w_field, sizeof(w->w_field), "id");
		rc = CM_CONFLICT;
		goto out;
	}
	if ((rc = cm_store_outbox_retry(cx->cx_db, id, cx->cx_now)) != CM_OK ||
	    (rc = cm_ctx_audit(cx, "outbox.retried", NULL, NULL, json_pack("{s:s, s:s, s:s}",
	    "id", id, "kind", row.o_kind, "name", row.o_name), NULL, NULL)) != CM_OK)
		goto out;
	cm_outbox_row_clear(&row);
	if ((rc = cm_store_outbox_get(cx->cx_db, id, &row)) == CM_OK)
		*out = cm_outbox_row_json(&row);
out:
	cm_outbox_row_clear(&row);
	return rc;
}
