/* SPDX-License-Identifier: ISC */
/*
 * Building the package of an access or portability request (SPEC §8,
 * GDPR Art. 15 and 20) while it is processed: the consentd-export/1
 * document (src/core/export.c, docs/export-format.md) and, for
 * portability, its CSV. Each is written straight into a sealed file
 * (package.c) as the store's rows are read, one row at a time: memory
 * does not grow with the subject's history. The package is recorded in
 * the request's timeline ("package_ready", with its formats and expiry,
 * nothing of the person), and the request then completes as any other.
 *
 * The document's sections, in order: format, generated_at, request,
 * subject, identifiers, profile, consents (current), consent_history
 * (every event with its evidence), preferences, requests, processing
 * (the Art. 15(1) information from the policy), systems; then the
 * manifest and the signature by the audit log's key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consentd/audit.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/outbox.h"
#include "consentd/export.h"
#include "consentd/policy.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "dsr_int.h"
#include "ledger.h"
#include "package_int.h"

/* Rows read between two returns of the store's spare page cache. */
#define RELEASE_EVERY	1024

/* One section from a call that makes JSON: OUT's member MEMBER (or OUT). */
static cm_result
section_from(struct cm_export *x, const char *name, cm_result rc, json_t *out,
    const char *member)
{
	json_t *v;

	if (rc != CM_OK) {
		json_decref(out);
		return rc;
	}
	v = member != NULL ? json_incref(json_object_get(out, member)) : json_incref(out);
	json_decref(out);
	if (v == NULL)
		return CM_IOERR;
	cm_export_value(x, name, v);
	return CM_OK;
}

/* ---- the consent history, streamed -------------------------------------- */

struct history {
	struct cm_export	*x;
	const struct cm_ctx	*cx;
	const uint8_t		*key;
	size_t			 n;
	bool			 failed;
};

static int
history_event(void *arg, const struct cm_event_row *e)
{
	struct history *h = arg;
	char rec[32], col[32], *ev;
	json_t *o, *evj = json_null();

	if (e->e_evidence != NULL) {
		if ((ev = ledger_evidence_open(h->key, e->e_subject, e->e_event_id,
		    e->e_evidence, e->e_evidence_len)) == NULL) {
			h->failed = true;
			return 1;
		}
		evj = json_loads(ev, 0, NULL);
		cm_wipe(ev, strlen(ev));
		free(ev);
		if (evj == NULL) {
			h->failed = true;
			return 1;
		}
	}
	cm_time_format(rec, e->e_recorded_us);
	cm_time_format(col, e->e_collected_us);
	o = json_pack("{s:s, s:s, s:s?, s:s, s:I, s:s, s:s, s:s, s:I, s:b, s:o}",
	    "event_id", e->e_event_id, "purpose", e->e_purpose, "channel",
	    strcmp(e->e_channel, CM_ALL_CHANNELS) ? e->e_channel : NULL, "state", e->e_state,
	    "notice_version", (json_int_t)e->e_notice_version, "method", e->e_method,
	    "collected_at", col, "recorded_at", rec, "audit_index",
	    (json_int_t)e->e_audit_index, "superseded", (int)e->e_superseded,
	    "evidence", evj);
	cm_export_list_item(h->x, o);
	if (++h->n % RELEASE_EVERY == 0)
		cm_db_release_memory(h->cx->cx_db);
	return h->x->ex_failed ? 1 : 0;
}

/* ---- the subject's requests --------------------------------------------- */

static int
request_item(void *arg, const struct cm_dsr_row *r)
{
	struct cm_export *x = arg;
	char rec[32], due[32], closed[32];

	cm_time_format(rec, r->r_received_us);
	cm_time_format(due, r->r_due_us);
	if (r->r_closed_us != 0)
		cm_time_format(closed, r->r_closed_us);
	cm_export_list_item(x, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s?}", "id",
	    r->r_id, "type", r->r_type, "status", r->r_status, "jurisdiction",
	    r->r_jurisdiction, "received_at", rec, "due_at", due, "extended",
	    (int)r->r_extended, "closed_at", r->r_closed_us != 0 ? closed : NULL));
	return x->ex_failed ? 1 : 0;
}

/* ---- the Art. 15(1) information from the policy ------------------------- */

static json_t *
processing_json(const struct cm_policy *pol)
{
	static const char *const purpose_keys[] = { "id", "title", "description",
	    "lawful_basis", "legitimate_interest", "data_categories",
	    "data_subject_categories", "recipients", "retention", "source",
	    "automated_decision_making", NULL };
	static const char *const top_keys[] = { "policy_version", "privacy_notice_url",
	    "controller", "supervisory_authority", NULL };
	json_t *doc, *out, *list, *pu, *o, *v;
	size_t i, k;

	if (pol == NULL || (doc = json_loadb(pol->pol_public, pol->pol_public_len, 0,
	    NULL)) == NULL)
		return NULL;
	out = json_object();
	for (k = 0; top_keys[k] != NULL; k++)
		if ((v = json_object_get(doc, top_keys[k])) != NULL)
			json_object_set(out, top_keys[k], v);
	list = json_array();
	json_array_foreach(json_object_get(doc, "purposes"), i, pu) {
		o = json_object();
		for (k = 0; purpose_keys[k] != NULL; k++)
			if ((v = json_object_get(pu, purpose_keys[k])) != NULL)
				json_object_set(o, purpose_keys[k], v);
		json_array_append_new(list, o);
	}
	json_object_set_new(out, "purposes", list);
	json_object_set_new(out, "rights", json_pack("[s, s, s, s, s, s, s]",
	    "access (Art. 15)", "rectification (Art. 16)", "erasure (Art. 17)",
	    "restriction of processing (Art. 18)", "data portability (Art. 20)",
	    "objection to processing (Art. 21)",
	    "withdrawal of consent at any time (Art. 7(3))"));
	json_decref(doc);
	return out;
}

/*
 * The downstream systems that receive the subject's data (Art. 15(1)(c),
 * the recipients): each registered system's name and the events it is
 * sent, and, for those sent consent.changed, whether it applied the
 * subject's last change. Never a system's URL or secret.
 */
static cm_result
systems_section(const struct cm_ctx *cx, const char *subject, struct cm_export *x)
{
	json_t *sys = NULL, *st = NULL, *v, *s, *item;
	const char *name;
	size_t i, j;
	cm_result rc;

	if ((rc = cm_systems_list(cx, &sys)) != CM_OK ||
	    (rc = cm_outbox_consent_status(cx, subject, &st)) != CM_OK) {
		json_decref(sys);
		return rc;
	}
	cm_export_list_begin(x, "systems");
	json_array_foreach(json_object_get(sys, "systems"), i, v) {
		name = json_string_value(json_object_get(v, "name"));
		item = json_pack("{s:s, s:O}", "name", name, "events",
		    json_object_get(v, "events"));
		json_array_foreach(st, j, s) {
			if (name == NULL || !json_equal(json_object_get(s, "name"),
			    json_object_get(v, "name")))
				continue;
			json_object_set_new(item, "last_consent_change", json_pack("{s:O, s:O}",
			    "status", json_object_get(s, "status"), "at",
			    json_object_get(s, "at")));
		}
		cm_export_list_item(x, item);
	}
	cm_export_list_end(x);
	json_decref(sys);
	json_decref(st);
	return CM_OK;
}

/* ---- the document ------------------------------------------------------- */

static cm_result
sections_record(const struct cm_ctx *cx, struct dsr_req *r, struct cm_export *x)
{
	const char *sub = r->row.r_subject;
	char t[32], due[32];
	json_t *out, *v;
	size_t i;
	cm_result rc;

	cm_time_format(t, cx->cx_now);
	cm_export_value(x, "generated_at", json_string(t));
	cm_time_format(t, r->row.r_received_us);
	cm_time_format(due, r->row.r_due_us);
	cm_export_value(x, "request", json_pack("{s:s, s:s, s:s, s:s, s:s}", "id",
	    r->row.r_id, "type", r->row.r_type, "jurisdiction", r->row.r_jurisdiction,
	    "received_at", t, "due_at", due));
	if ((rc = cm_subject_view(cx, sub, &out, NULL)) != CM_OK)
		return rc;
	cm_export_value(x, "subject", json_pack("{s:O, s:O, s:O}", "subject_id",
	    json_object_get(out, "subject_id"), "state", json_object_get(out, "state"),
	    "created_at", json_object_get(out, "created_at")));
	cm_export_list_begin(x, "identifiers");
	json_array_foreach(json_object_get(out, "identifiers"), i, v)
		cm_export_list_item(x, json_incref(v));
	cm_export_list_end(x);
	rc = section_from(x, "profile", CM_OK, out, "profile");
	if (rc != CM_OK)
		return rc;
	if ((rc = cm_consent_list(cx, sub, false, false, &out, NULL)) != CM_OK)
		return rc;
	cm_export_list_begin(x, "consents");
	json_array_foreach(json_object_get(out, "consents"), i, v)
		cm_export_list_item(x, json_incref(v));
	cm_export_list_end(x);
	json_decref(out);
	return CM_OK;
}

static cm_result
write_document(const struct cm_ctx *cx, struct dsr_req *r, const uint8_t *key,
    struct cm_export *x)
{
	struct history h = { x, cx, key, 0, false };
	json_t *out = NULL;
	char origin[CM_AUDIT_ORIGIN_MAX + 1];
	cm_result rc;

	if ((rc = sections_record(cx, r, x)) != CM_OK)
		return rc;
	cm_export_list_begin(x, "consent_history");
	if ((rc = cm_store_events_list(cx->cx_db, r->row.r_subject, history_event,
	    &h)) != CM_OK)
		return rc;
	if (h.failed) {
		cm_log(CM_LOG_ERROR, "package_evidence_unreadable", NULL);
		return CM_IOERR;
	}
	cm_export_list_end(x);
	rc = cm_prefs_get(cx, r->row.r_subject, &out, NULL);
	if ((rc = section_from(x, "preferences", rc, out, NULL)) != CM_OK)
		return rc;
	cm_export_list_begin(x, "requests");
	if ((rc = cm_store_dsr_of_subject(cx->cx_db, r->row.r_subject, request_item,
	    x)) != CM_OK)
		return rc;
	cm_export_list_end(x);
	cm_export_value(x, "processing", processing_json(cx->cx_policy));
	if ((rc = systems_section(cx, r->row.r_subject, x)) != CM_OK)
		return rc;
	if ((rc = cm_audit_origin(cx->cx_db, origin, sizeof(origin))) != CM_OK)
		return rc;
	return cm_export_finish(x, origin, cx->cx_keys->k_audit_sk,
	    cx->cx_keys->k_audit_pk) == 0 ? CM_OK : CM_IOERR;
}

static int
sink_sealed(void *arg, const void *p, size_t len)
{
	return cm_sealed_write(arg, p, len);
}

/* ---- building and holding ----------------------------------------------- */

/*
 * Builds one package of R in FORMAT into a new sealed file and records
 * its row, to expire at EXPIRES. KEY is the subject's data key.
 */
static cm_result
build(const struct cm_ctx *cx, struct dsr_req *r, const char *format, const uint8_t *key,
    int64_t expires, char *path, size_t pathlen)
{
	struct cm_package_row p;
	struct cm_sealed_writer *sw;
	struct cm_export x;
	uint8_t *pkey;
	uint64_t size;
	cm_result rc;

	memset(&p, 0, sizeof(p));
	memset(&x, 0, sizeof(x));
	cm_random_id(p.pk_id, sizeof(p.pk_id), "pkg_");
	if (package_path(cx->cx_db, p.pk_id, true, path, pathlen) != 0) {
		path[0] = '\0';
		return CM_IOERR;
	}
	pkey = cm_key_acquire();
	cm_subject_key_new(cx->cx_keys, p.pk_id, pkey, p.pk_wrapped);
	sw = cm_sealed_create(path, pkey);
	cm_key_release(pkey);
	if (sw == NULL) {
		cm_log(CM_LOG_ERROR, "package_create_failed", NULL);
		path[0] = '\0';
		return CM_IOERR;
	}
	if (strcmp(format, "csv") == 0) {
		rc = package_csv(cx, r->row.r_subject, key, sink_sealed, sw);
	} else {
		cm_export_begin(&x, sink_sealed, sw);
		rc = write_document(cx, r, key, &x);
		cm_export_abort(&x);
	}
	if (rc != CM_OK) {
		cm_sealed_abort(sw);
		path[0] = '\0';
		return rc;
	}
	if (cm_sealed_finish(sw, &size) != 0) {
		path[0] = '\0';
		return CM_IOERR;
	}
	snprintf(p.pk_request, sizeof(p.pk_request), "%s", r->row.r_id);
	snprintf(p.pk_subject, sizeof(p.pk_subject), "%s", r->row.r_subject);
	snprintf(p.pk_format, sizeof(p.pk_format), "%s", format);
	p.pk_size = (int64_t)size;
	p.pk_created_us = cx->cx_now;
	p.pk_expires_us = expires;
	return cm_store_package_insert(cx->cx_db, &p);
}

/*
 * Builds R's package (and, for portability, its CSV) and records it. A
 * file written before a failure is removed here; one whose transaction
 * fails later to commit is removed by the next build's sweep, its key
 * never having been stored.
 */
cm_result
dsr_package(const struct cm_ctx *cx, struct dsr_req *r, struct cm_why *w)
{
	struct cm_subject_row row;
	int64_t days = PACKAGE_DEFAULT_DAYS, expires;
	bool portable = r->type == CM_DSR_PORTABILITY;
	char exp[32], json_path[4200] = "", csv_path[4200] = "";
	uint8_t *key;
	cm_result rc;

	if (cx->cx_policy != NULL && cx->cx_policy->pol_packages_days > 0)
		days = cx->cx_policy->pol_packages_days;
	expires = cx->cx_now + days * CM_DAY_US;
	key = cm_key_acquire();
	/* Builds run one at a time (the write lock): the expired and orphaned go first. */
	if ((rc = cm_dsr_packages_sweep(cx)) != CM_OK ||
	    (rc = cm_subject_open(cx, r->row.r_subject, &row, key, w)) != CM_OK ||
	    (rc = build(cx, r, "json", key, expires, json_path, sizeof(json_path))) != CM_OK ||
	    (portable && (rc = build(cx, r, "csv", key, expires, csv_path,
	    sizeof(csv_path))) != CM_OK))
		goto out;
	cm_time_format(exp, expires);
	rc = dsr_record(cx, r, "package_ready", r->status, NULL, json_pack("{s:[s, s*], s:s}",
	    "formats", "json", portable ? "csv" : NULL, "expires_at", exp));
out:
	if (rc != CM_OK) {
		if (json_path[0] != '\0')
			unlink(json_path);
		if (csv_path[0] != '\0')
			unlink(csv_path);
	}
	cm_key_release(key);
	return rc;
}
