/* SPDX-License-Identifier: ISC */
/*
 * What a data-subject request sends out, through the outbox (outbox.c,
 * systems.c): identity codes and notices to the person, webhooks to the
 * downstream systems registered for the request's event, and what those
 * systems have reported. Every row is queued in the transaction of the
 * step that causes it.
 *
 * A message goes to an identifier on file, email first, then phone (to
 * the identifier asked about when nobody holds it), sealed under the
 * subject's key while it waits. The completion notice of an erasure and
 * the erasure's webhooks must outlive that key: they are sealed under
 * keys of their own. That notice is held while systems are still to
 * report, and released when the request completes.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/outbox.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "dsr_int.h"

/* The identifier to write to about R into TO (size LEN): false when none. */
static cm_result
recipient(const struct cm_ctx *cx, struct dsr_req *r, char *to, size_t len, bool *found)
{
	static const char *const prefer[] = { "email:", "phone:" };
	json_t *ids = NULL, *v;
	const char *s;
	size_t i, p;
	cm_result rc;

	*found = false;
	if (!r->key_ok)
		return CM_OK;
	if (r->row.r_subject[0] == '\0') {
		s = json_string_value(json_object_get(r->sealed, "identifier"));
		ids = json_pack("[s?]", s);
	} else if ((rc = dsr_identifiers(cx, r, &ids)) != CM_OK) {
		return rc;
	}
	for (p = 0; p < CM_NELEM(prefer) && !*found; p++)
		json_array_foreach(ids, i, v) {
			s = json_string_value(v);
			if (s != NULL && strncmp(s, prefer[p], 6) == 0 && strlen(s) < len) {
				snprintf(to, len, "%s", s);
				*found = true;
				break;
			}
		}
	cm_outbox_body_free(ids);
	return CM_OK;
}

/* Queues TEMPLATE about R to TO, under R's subject key or (OWN_KEY) a key of its own. */
static cm_result
queue_message(const struct cm_ctx *cx, struct dsr_req *r, const char *template,
    const char *to, json_t *vars, bool own_key)
{
	struct cm_outbox_item it;
	bool subject = r->row.r_subject[0] != '\0' && !own_key;

	memset(&it, 0, sizeof(it));
	it.oi_request = r->row.r_id;
	it.oi_subject = subject ? r->row.r_subject : NULL;
	it.oi_key = subject ? r->key : NULL;
	it.oi_name = template;
	json_object_set_new(vars, "request_id", json_string(r->row.r_id));
	json_object_set_new(vars, "type", json_string(r->row.r_type));
	return cm_outbox_message(cx, &it, to, vars);
}

cm_result
dsr_notify(const struct cm_ctx *cx, struct dsr_req *r, const char *template, json_t *vars)
{
	char to[CM_ID_TEXT_MAX + 16];
	bool found;
	cm_result rc;

	if (vars == NULL)
		vars = json_object();
	if (!r->key_ok) {
		/* An erased subject's completion notice was queued before the erasure. */
		rc = strcmp(template, "completion") == 0 ?
		    cm_outbox_release(cx, r->row.r_id, "completion", cx->cx_now) : CM_OK;
		json_decref(vars);
		return rc;
	}
	if ((rc = recipient(cx, r, to, sizeof(to), &found)) == CM_OK && found)
		rc = queue_message(cx, r, template, to, vars, false);
	cm_wipe(to, sizeof(to));
	cm_outbox_body_free(vars);
	return rc;
}

cm_result
dsr_send_code(const struct cm_ctx *cx, struct dsr_req *r, const char *code)
{
	return dsr_notify(cx, r, "code", json_pack("{s:s}", "code", code));
}

cm_result
dsr_notify_after_erasure(const struct cm_ctx *cx, struct dsr_req *r)
{
	char to[CM_ID_TEXT_MAX + 16];
	json_t *vars = json_object();
	bool found;
	cm_result rc;

	if ((rc = recipient(cx, r, to, sizeof(to), &found)) == CM_OK && found)
		rc = queue_message(cx, r, "completion", to, vars, true);
	cm_wipe(to, sizeof(to));
	json_decref(vars);
	return rc;
}

cm_result
dsr_notice_sent(const struct cm_ctx *cx, struct dsr_req *r, const char *template, bool *sent)
{
	char status[8];
	cm_result rc;

	*sent = false;
	rc = cm_store_outbox_status_of(cx->cx_db, r->row.r_id, template, status);
	if (rc == CM_NOTFOUND) {
		*sent = true;		/* none was queued: no one to write to */
		return CM_OK;
	}
	if (rc == CM_OK)
		*sent = strcmp(status, "sent") == 0;
	return rc;
}

cm_result
dsr_identifiers(const struct cm_ctx *cx, struct dsr_req *r, json_t **out)
{
	json_t *ids, *v, *list = json_array();
	size_t i;
	cm_result rc;

	*out = NULL;
	if ((rc = cm_subject_identifiers(cx, r->row.r_subject, &ids, NULL)) != CM_OK) {
		json_decref(list);
		return rc;
	}
	json_array_foreach(ids, i, v)
		json_array_append(list, json_object_get(v, "identifier"));
	json_decref(ids);
	*out = list;
	return CM_OK;
}

cm_result
dsr_forget(const struct cm_ctx *cx, const char *subject)
{
	int64_t n;
	cm_result rc;

	/* What waits under the subject's key would be unreadable in a moment: gone now. */
	if ((rc = cm_store_outbox_forget(cx->cx_db, subject, &n)) != CM_OK)
		return rc;
	return dsr_package_forget(cx, subject);
}

/* ---- downstream systems -------------------------------------------------- */

struct call_walk {
	const struct cm_ctx	*cx;
	struct dsr_req		*r;
	const char		*event;
	json_t			*payload;
	size_t			 n;
	cm_result		 rc;
};

static int
call_one(void *arg, const struct cm_system_row *sys)
{
	struct call_walk *cw = arg;
	struct cm_outbox_item it;
	bool own = strcmp(cw->event, "erasure") == 0 || cw->r->row.r_subject[0] == '\0';
	json_t *body;

	if (!cm_system_has_event(sys, cw->event))
		return 0;
	memset(&it, 0, sizeof(it));
	it.oi_kind = "webhook";
	it.oi_request = cw->r->row.r_id;
	/* An erasure's webhooks outlive the subject's key. */
	it.oi_subject = own ? NULL : cw->r->row.r_subject;
	it.oi_key = own ? NULL : cw->r->key;
	it.oi_name = cw->event;
	it.oi_channel = "webhook";
	it.oi_system = sys->s_name;
	body = json_deep_copy(cw->payload);
	json_object_set_new(body, "event", json_string(cw->event));
	json_object_set_new(body, "system", json_string(sys->s_name));
	it.oi_body = body;
	if ((cw->rc = cm_outbox_queue(cw->cx, &it, NULL)) == CM_OK)
		cw->rc = cm_store_dsr_system_put(cw->cx->cx_db, cw->r->row.r_id, sys->s_name,
		    "pending", NULL, cw->cx->cx_now);
	cm_outbox_body_free(body);
	if (cw->rc != CM_OK)
		return 1;
	cw->n++;
	return 0;
}

cm_result
dsr_call_systems(const struct cm_ctx *cx, struct dsr_req *r, const char *event,
    json_t *payload, size_t *n)
{
	struct call_walk cw = { cx, r, event, payload, 0, CM_OK };
	cm_result rc;

	*n = 0;
	if ((rc = cm_store_systems_list(cx->cx_db, call_one, &cw)) == CM_OK)
		rc = cw.rc;
	if (rc != CM_OK)
		return rc;
	*n = cw.n;
	/* The person is told it is done when it is: once the systems have reported. */
	if (cw.n > 0 && strcmp(event, "erasure") == 0)
		rc = cm_outbox_release(cx, r->row.r_id, "completion", CM_OUTBOX_HELD);
	return rc;
}

static json_t *
time_json(int64_t us)
{
	char t[32];

	cm_time_format(t, us);
	return json_string(t);
}

static int
system_row(void *arg, const char *system, const char *status, const char *detail,
    int64_t updated)
{
	json_array_append_new(arg, json_pack("{s:s, s:s, s:s?, s:o}", "name", system,
	    "status", status, "detail", detail, "updated_at", time_json(updated)));
	return 0;
}

cm_result
dsr_systems_json(const struct cm_ctx *cx, const char *id, json_t *j)
{
	json_t *a = json_array();
	cm_result rc;

	if ((rc = cm_store_dsr_systems(cx->cx_db, id, system_row, a)) != CM_OK) {
		json_decref(a);
		return rc;
	}
	json_object_set_new(j, "systems", a);
	return CM_OK;
}
