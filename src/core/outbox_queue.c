/* SPDX-License-Identifier: ISC */
/*
 * Queueing a row in the outbox, and the consent.changed webhooks: when a
 * subject's current consent for a purpose and channel moves, every system
 * registered for consent.changed is told, in the same transaction. This
 * file depends on the store, crypto and systems.c only, so the consent
 * ledger may call it without a cycle in src/core/ (the ledger is below
 * the customer record, which outbox.c opens bodies with). With no system
 * registered for the event, a consent write pays one indexed read of a
 * small table; the check never comes here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/outbox.h"
#include "consentd/util.h"

/* Seals PT under KEY with AD "outbox:ID:body", as record_seal would. */
static uint8_t *
seal(const uint8_t *key, const char *id, const char *pt, size_t len, size_t *outlen)
{
	char ad[64];
	uint8_t *out;
	int n;

	n = snprintf(ad, sizeof(ad), "outbox:%s:body", id);
	*outlen = len + CM_AEAD_OVERHEAD;
	out = cm_malloc(*outlen);
	cm_aead_seal(out, key, ad, (size_t)(n > 0 ? n : 0), pt, len);
	return out;
}

cm_result
cm_outbox_queue(const struct cm_ctx *cx, const struct cm_outbox_item *it, char id[31])
{
	struct cm_outbox_row row;
	uint8_t *key = NULL, *sealed = NULL;
	const uint8_t *k;
	char *enc;
	cm_result rc;

	memset(&row, 0, sizeof(row));
	cm_time_id(row.o_id, sizeof(row.o_id), "obx_", cx->cx_now);
	snprintf(row.o_kind, sizeof(row.o_kind), "%s", it->oi_kind);
	snprintf(row.o_request, sizeof(row.o_request), "%s", it->oi_request ? it->oi_request : "");
	snprintf(row.o_name, sizeof(row.o_name), "%s", it->oi_name);
	snprintf(row.o_channel, sizeof(row.o_channel), "%s", it->oi_channel);
	snprintf(row.o_system, sizeof(row.o_system), "%s", it->oi_system ? it->oi_system : "");
	row.o_next_us = it->oi_due_us != 0 ? it->oi_due_us : cx->cx_now;
	row.o_created_us = cx->cx_now;
	if (it->oi_subject != NULL)
		snprintf(row.o_subject, sizeof(row.o_subject), "%s", it->oi_subject);
	if (it->oi_key != NULL) {
		k = it->oi_key;
	} else {
		/* A key of its own; the row may still name its subject, to be found. */
		key = cm_key_acquire();
		cm_subject_key_new(cx->cx_keys, row.o_id, key, row.o_wrapped);
		row.o_has_wrapped = true;
		k = key;
	}
	if ((enc = json_dumps(it->oi_body, JSON_COMPACT)) == NULL) {
		rc = CM_NOMEM;
		goto out;
	}
	sealed = seal(k, row.o_id, enc, strlen(enc), &row.o_body_len);
	cm_wipe(enc, strlen(enc));
	free(enc);
	row.o_body = sealed;
	if ((rc = cm_store_outbox_insert(cx->cx_db, &row)) == CM_OK && id != NULL)
		memcpy(id, row.o_id, sizeof(row.o_id));
out:
	free(sealed);
	cm_key_release(key);
	return rc;
}

/* ---- consent.changed ------------------------------------------------------ */

struct changed_walk {
	const struct cm_ctx		*cx;
	const struct cm_event_row	*ev;
	cm_result			 rc;
};

static int
changed_one(void *arg, const struct cm_system_row *sys)
{
	struct changed_walk *cw = arg;
	const struct cm_event_row *ev = cw->ev;
	struct cm_outbox_item it;
	char at[32];
	json_t *body;

	if (!cm_system_has_event(sys, "consent.changed"))
		return 0;
	cm_time_format(at, ev->e_collected_us != 0 ? ev->e_collected_us : cw->cx->cx_now);
	/* What changed, about whom (by subject id): no identifier, no evidence. */
	body = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s, s:s}", "event", "consent.changed",
	    "subject_id", ev->e_subject, "purpose", ev->e_purpose, "channel",
	    strcmp(ev->e_channel, CM_ALL_CHANNELS) ? ev->e_channel : NULL, "state", ev->e_state,
	    "event_id", ev->e_event_id, "collected_at", at, "system", sys->s_name);
	memset(&it, 0, sizeof(it));
	it.oi_kind = "webhook";
	it.oi_subject = ev->e_subject;
	it.oi_name = "consent.changed";
	it.oi_channel = "webhook";
	it.oi_system = sys->s_name;
	it.oi_body = body;
	cw->rc = body != NULL ? cm_outbox_queue(cw->cx, &it, NULL) : CM_NOMEM;
	json_decref(body);
	return cw->rc != CM_OK;
}

cm_result
cm_outbox_consent_changed(const struct cm_ctx *cx, const struct cm_event_row *ev)
{
	struct changed_walk cw = { cx, ev, CM_OK };
	bool any;
	cm_result rc;

	if ((rc = cm_store_systems_any(cx->cx_db, "\"consent.changed\"", &any)) != CM_OK ||
	    !any)
		return rc;
	if ((rc = cm_store_systems_list(cx->cx_db, changed_one, &cw)) != CM_OK)
		return rc;
	return cw.rc;
}

struct status_walk {
	const struct cm_ctx	*cx;
	const char		*subject;
	json_t			*out;
	cm_result		 rc;
};

static int
status_one(void *arg, const struct cm_system_row *sys)
{
	struct status_walk *sw = arg;
	char status[8], t[32];
	int64_t at;
	cm_result rc;

	if (!cm_system_has_event(sys, "consent.changed"))
		return 0;
	rc = cm_store_outbox_last(sw->cx->cx_db, sw->subject, "consent.changed", sys->s_name,
	    status, &at);
	if (rc == CM_NOTFOUND) {
		json_array_append_new(sw->out, json_pack("{s:s, s:s, s:n}", "name", sys->s_name,
		    "status", "none", "at"));
		return 0;
	}
	if ((sw->rc = rc) != CM_OK)
		return 1;
	cm_time_format(t, at);
	json_array_append_new(sw->out, json_pack("{s:s, s:s, s:s}", "name", sys->s_name,
	    "status", strcmp(status, "sent") == 0 ? "applied" : strcmp(status, "dead") == 0 ?
	    "failed" : "pending", "at", t));
	return 0;
}

cm_result
cm_outbox_consent_status(const struct cm_ctx *cx, const char *subject, json_t **out)
{
	struct status_walk sw = { cx, subject, json_array(), CM_OK };
	cm_result rc;

	*out = NULL;
	if ((rc = cm_store_systems_list(cx->cx_db, status_one, &sw)) == CM_OK)
		rc = sw.rc;
	if (rc != CM_OK) {
		json_decref(sw.out);
		return rc;
	}
	*out = sw.out;
	return CM_OK;
}
