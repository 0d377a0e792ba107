/* SPDX-License-Identifier: ISC */
/*
 * The steps of a data-subject request (SPEC §8) and their effects:
 *
 *   identity_unverified --verify--> verified --process--> in_progress
 *     --> awaiting_systems (systems registered for the event were called)
 *     --> completed (when they have all reported, or the DPO completes it)
 *   any open status --deny/cancel (reason required)--> denied / canceled
 *
 * A step the status does not allow is refused before anything is read or
 * written beyond the request itself. Extending is allowed once, before
 * the due date; the subject is told (Art. 12(3)), as they are told of a
 * completion or a denial with their right to complain (Art. 12(4)).
 * Erasure runs in the caller's one transaction: the record (rights.c),
 * the person's pending messages and packages, then the calls to the
 * systems that hold copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "dsr_int.h"

/* Loads ID and checks its status is one of ALLOWED (a bit per status). */
static cm_result
load_for(const struct cm_ctx *cx, const char *id, unsigned allowed, const char *step,
    struct dsr_req *r, struct cm_why *w)
{
	cm_result rc;

	if ((rc = dsr_req_load(cx, id, r, w)) != CM_OK)
		return rc;
	if (!(allowed & (1u << r->status)))
		return dsr_refuse(r, step, w);
	return CM_OK;
}

/*
 * Whether TEXT, the reason (or note, FIELD) a step requires, holds more
 * than white space; W is missing_field otherwise. The API checks it too;
 * this keeps every caller (the CLI as well) to the rule.
 */
static bool
text_given(const char *text, const char *field, struct cm_why *w)
{
	if (text != NULL && text[strspn(text, " \t\r\n")] != '\0')
		return true;
	cm_why_set(w, "missing_field", "a %s is required", field);
	snprintf(w->w_field, sizeof(w->w_field), "%s", field);
	return false;
}

#define OPEN_STATUSES	((1u << CM_DSR_IDENTITY_UNVERIFIED) | (1u << CM_DSR_VERIFIED) | \
	(1u << CM_DSR_IN_PROGRESS) | (1u << CM_DSR_AWAITING_SYSTEMS))

static cm_result
finish(const struct cm_ctx *cx, cm_result rc, const char *id, json_t **out, struct cm_why *w)
{
	if (rc == CM_OK && out != NULL)
		rc = cm_dsr_get(cx, id, out, w);
	return rc;
}

/* ---- identity ----------------------------------------------------------- */

cm_result
cm_dsr_verify(const struct cm_ctx *cx, const char *id, const char *code, bool *accepted,
    json_t **out, struct cm_why *w)
{
	struct dsr_req r;
	uint8_t want[32], got[32];
	int64_t expires, attempts;
	cm_result rc;

	*accepted = false;
	if (out != NULL)
		*out = NULL;
	if ((rc = load_for(cx, id, 1u << CM_DSR_IDENTITY_UNVERIFIED, "verified", &r, w)) != CM_OK)
		goto out;
	rc = cm_store_dsr_code_get(cx->cx_db, id, want, &expires, &attempts);
	if (rc == CM_NOTFOUND || (rc == CM_OK && (attempts >= CM_DSR_CODE_ATTEMPTS ||
	    cx->cx_now > expires))) {
		cm_why_set(w, "code_expired", "this code can no longer be used; ask for a new "
		    "one (POST /v1/dsr/%s/resend)", id);
		snprintf(w->w_field, sizeof(w->w_field), "code");
		rc = CM_CONFLICT;
		goto out;
	}
	if (rc != CM_OK)
		goto out;
	dsr_code_hash(cx, id, code, got);
	if (sodium_memcmp(want, got, sizeof(want)) != 0) {
		/* Kept even though the answer is an error: attempts must count. */
		if ((rc = cm_store_dsr_code_attempt(cx->cx_db, id)) != CM_OK ||
		    (rc = dsr_record(cx, &r, "verify_failed", r.status, NULL,
		    json_pack("{s:I}", "attempts_left",
		    (json_int_t)(CM_DSR_CODE_ATTEMPTS - attempts - 1)))) != CM_OK)
			goto out;
		cm_why_set(w, "invalid_code", "wrong code; %lld attempt%s left",
		    (long long)(CM_DSR_CODE_ATTEMPTS - attempts - 1),
		    CM_DSR_CODE_ATTEMPTS - attempts - 1 == 1 ? "" : "s");
		snprintf(w->w_field, sizeof(w->w_field), "code");
		goto out;
	}
	*accepted = true;
	if ((rc = cm_store_dsr_code_delete(cx->cx_db, id)) != CM_OK ||
	    (rc = dsr_record(cx, &r, "verified", CM_DSR_VERIFIED, NULL,
	    json_pack("{s:s}", "by", "code"))) != CM_OK)
		goto out;
	rc = finish(cx, rc, id, out, w);
out:
	sodium_memzero(want, sizeof(want));
	sodium_memzero(got, sizeof(got));
	dsr_req_free(&r);
	return rc;
}

cm_result
cm_dsr_resend(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	struct dsr_req r;
	char code[7] = "";
	cm_result rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = load_for(cx, id, 1u << CM_DSR_IDENTITY_UNVERIFIED, "sent a new code", &r,
	    w)) == CM_OK &&
	    (rc = dsr_issue_code(cx, &r, code)) == CM_OK)
		rc = dsr_record(cx, &r, "code_sent", r.status, NULL, NULL);
	sodium_memzero(code, sizeof(code));
	rc = finish(cx, rc, id, out, w);
	dsr_req_free(&r);
	return rc;
}

/* ---- deadline, denial, cancellation, completion -------------------------- */

cm_result
cm_dsr_extend(const struct cm_ctx *cx, const char *id, const char *reason, json_t **out,
    struct cm_why *w)
{
	struct dsr_req r;
	char due[32];
	cm_result rc;

	if (out != NULL)
		*out = NULL;
	if (!text_given(reason, "reason", w))
		return CM_INVALID;
	if ((rc = load_for(cx, id, OPEN_STATUSES, "extended", &r, w)) != CM_OK)
		goto out;
	if (r.row.r_extended || cm_dsr_overdue(r.row.r_due_us, cx->cx_now)) {
		cm_why_set(w, "invalid_transition", r.row.r_extended ? "a request is extended "
		    "once at most" : "an extension must be made before the due date");
		snprintf(w->w_field, sizeof(w->w_field), r.row.r_extended ? "extended" :
		    "due_at");
		snprintf(w->w_subject, sizeof(w->w_subject), "%s", cm_dsr_status_name(r.status));
		rc = CM_CONFLICT;
		goto out;
	}
	r.row.r_extended = true;
	r.row.r_due_us = cm_dsr_extended_due(r.jur, r.row.r_received_us);
	cm_time_format(due, r.row.r_due_us);
	if ((rc = dsr_record(cx, &r, "extended", r.status, reason,
	    json_pack("{s:s}", "due_at", due))) != CM_OK ||
	    (rc = dsr_notify(cx, &r, "extension", json_pack("{s:s, s:s}", "due_at", due,
	    "reason", reason))) != CM_OK)
		goto out;
	rc = finish(cx, rc, id, out, w);
out:
	dsr_req_free(&r);
	return rc;
}

/*
 * The steps that end a request with the DPO's words: which statuses allow
 * it, the step and status it records, the field its text is required in,
 * and the notice the subject gets (NULL: none).
 */
struct closing {
	unsigned		 c_allowed;	/* a bit per status */
	const char		*c_needs;	/* what the refusal names */
	const char		*c_step;
	enum cm_dsr_status	 c_status;
	const char		*c_field;	/* "reason" or "note" */
	const char		*c_notice;	/* template, or NULL */
	bool			 c_by_dpo;	/* details {"by":"dpo"} */
};

static cm_result
close_with(const struct cm_ctx *cx, const struct closing *c, const char *id,
    const char *text, json_t **out, struct cm_why *w)
{
	struct dsr_req r;
	cm_result rc;

	if (out != NULL)
		*out = NULL;
	if (!text_given(text, c->c_field, w))
		return CM_INVALID;
	if ((rc = load_for(cx, id, c->c_allowed, c->c_needs, &r, w)) == CM_OK &&
	    (rc = dsr_record(cx, &r, c->c_step, c->c_status, text, c->c_by_dpo ?
	    json_pack("{s:s}", "by", "dpo") : NULL)) == CM_OK && c->c_notice != NULL)
		/* A denial tells its reason, with the right to complain. */
		rc = dsr_notify(cx, &r, c->c_notice, c->c_status == CM_DSR_DENIED ?
		    json_pack("{s:s}", "reason", text) : NULL);
	rc = finish(cx, rc, id, out, w);
	dsr_req_free(&r);
	return rc;
}

cm_result
cm_dsr_deny(const struct cm_ctx *cx, const char *id, const char *reason, json_t **out,
    struct cm_why *w)
{
	static const struct closing c = { OPEN_STATUSES, "denied", "denied", CM_DSR_DENIED,
	    "reason", "denial", false };

	return close_with(cx, &c, id, reason, out, w);
}

cm_result
cm_dsr_cancel(const struct cm_ctx *cx, const char *id, const char *reason, json_t **out,
    struct cm_why *w)
{
	static const struct closing c = { OPEN_STATUSES, "canceled", "canceled",
	    CM_DSR_CANCELED, "reason", NULL, false };

	return close_with(cx, &c, id, reason, out, w);
}

cm_result
cm_dsr_complete(const struct cm_ctx *cx, const char *id, const char *note, json_t **out,
    struct cm_why *w)
{
	static const struct closing c = { 1u << CM_DSR_AWAITING_SYSTEMS,
	    "completed by the DPO", "completed", CM_DSR_COMPLETED, "note", "completion", true };

	return close_with(cx, &c, id, note, out, w);
}

/* ---- processing --------------------------------------------------------- */

/* Applies a rectification's changes to the subject's record. */
static cm_result
rectify(const struct cm_ctx *cx, struct dsr_req *r, struct cm_why *w)
{
	json_t *changes, *v, *a;
	struct cm_new_ident ni;
	struct cm_identifier id;
	char why[160];
	bool existed;
	size_t i;
	cm_result rc;

	changes = json_object_get(json_object_get(r->sealed, "details"), "changes");
	if ((v = json_object_get(changes, "profile")) != NULL &&
	    (rc = cm_subject_patch_profile(cx, r->row.r_subject, v, w)) != CM_OK)
		return rc;
	a = json_object_get(changes, "add");
	json_array_foreach(a, i, v) {
		memset(&ni, 0, sizeof(ni));
		if (cm_identifier_parse(json_string_value(v), json_string_length(v),
		    cx->cx_policy, &ni.ni_id, why, sizeof(why)) != CM_OK)
			return CM_INVALID;
		ni.ni_source = "rectification";
		ni.ni_verified = false;
		if ((rc = cm_subject_link(cx, r->row.r_subject, &ni, &existed, w)) != CM_OK)
			return rc;
	}
	a = json_object_get(changes, "remove");
	json_array_foreach(a, i, v) {
		if (cm_identifier_parse(json_string_value(v), json_string_length(v),
		    cx->cx_policy, &id, why, sizeof(why)) != CM_OK)
			return CM_INVALID;
		if ((rc = cm_subject_unlink(cx, r->row.r_subject, &id, w)) != CM_OK)
			return rc;
	}
	return CM_OK;
}

/*
 * What the request asks, done on the subject's record. *EVENT is the
 * systems' event it raises (NULL: none); *PAYLOAD what they are told.
 */
static cm_result
apply(const struct cm_ctx *cx, struct dsr_req *r, const char **event, json_t *payload,
    struct cm_why *w)
{
	json_t *counts = NULL, *ids = NULL;
	cm_result rc;

	*event = NULL;
	switch (r->type) {
	case CM_DSR_ACCESS:
	case CM_DSR_PORTABILITY:
		return dsr_package(cx, r, w);
	case CM_DSR_ERASURE:
		/* Who to tell is read first: after this, nothing of them is left. */
		if ((rc = dsr_identifiers(cx, r, &ids)) != CM_OK)
			return rc;
		json_object_set_new(payload, "identifiers", ids);
		if ((rc = dsr_notify_after_erasure(cx, r)) != CM_OK ||
		    (rc = dsr_forget(cx, r->row.r_subject)) != CM_OK ||
		    (rc = cm_subject_erase(cx, r->row.r_subject, &counts, w)) != CM_OK)
			return rc;
		/* From here on, entries about the request are about no one. */
		r->key_ok = false;
		*event = "erasure";
		return dsr_record(cx, r, "erased", r->status, NULL, counts);
	case CM_DSR_RECTIFICATION:
		*event = "rectification";
		rc = rectify(cx, r, w);
		break;
	case CM_DSR_RESTRICTION:
		*event = "restriction";
		rc = cm_subject_restrict(cx, r->row.r_subject, true, w);
		break;
	case CM_DSR_OBJECTION:
		*event = "objection";
		rc = cm_subject_object(cx, r->row.r_subject, w);
		break;
	default:
		return CM_INVALID;
	}
	if (rc == CM_OK && (rc = dsr_identifiers(cx, r, &ids)) == CM_OK) {
		json_object_set_new(payload, "identifiers", ids);
		/* "rectified", "restricted", "objected": what was done, in the timeline. */
		rc = dsr_record(cx, r, r->type == CM_DSR_RECTIFICATION ? "rectified" :
		    r->type == CM_DSR_RESTRICTION ? "restricted" : "objected", r->status,
		    NULL, NULL);
	}
	return rc;
}

cm_result
cm_dsr_process(const struct cm_ctx *cx, const char *id, json_t **out, struct cm_why *w)
{
	struct dsr_req r;
	const char *event = NULL;
	json_t *payload = NULL;
	size_t nsystems = 0;
	cm_result rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = load_for(cx, id, 1u << CM_DSR_VERIFIED, "processed", &r, w)) != CM_OK ||
	    (rc = dsr_record(cx, &r, "in_progress", CM_DSR_IN_PROGRESS, NULL, NULL)) != CM_OK)
		goto out;
	if (r.row.r_subject[0] == '\0') {
		/* Nobody holds the identifier: that is the answer (Art. 15(1)). */
		if ((rc = dsr_record(cx, &r, "no_data_held", CM_DSR_COMPLETED, NULL,
		    NULL)) == CM_OK)
			rc = dsr_notify(cx, &r, "no_data", NULL);
		goto done;
	}
	payload = json_pack("{s:s, s:s, s:s}", "request_id", r.row.r_id, "type",
	    r.row.r_type, "subject_id", r.row.r_subject);
	if ((rc = apply(cx, &r, &event, payload, w)) != CM_OK)
		goto out;
	if (event != NULL &&
	    (rc = dsr_call_systems(cx, &r, event, payload, &nsystems)) != CM_OK)
		goto out;
	if (nsystems > 0)
		rc = dsr_record(cx, &r, "awaiting_systems", CM_DSR_AWAITING_SYSTEMS, NULL,
		    json_pack("{s:I}", "systems", (json_int_t)nsystems));
	else if ((rc = dsr_record(cx, &r, "completed", CM_DSR_COMPLETED, NULL,
	    NULL)) == CM_OK && r.type != CM_DSR_ERASURE)
		rc = dsr_notify(cx, &r, "completion", NULL);
done:
	rc = finish(cx, rc, id, out, w);
out:
	json_decref(payload);
	dsr_req_free(&r);
	return rc;
}

/* ---- lifting a restriction ---------------------------------------------- */

struct lift_scan {
	bool	notified;	/* a lift notice was queued */
	bool	lifted;
};

static int
lift_step(void *arg, const struct cm_dsr_step_row *st)
{
	struct lift_scan *ls = arg;

	if (strcmp(st->st_step, "lift_notice") == 0)
		ls->notified = true;
	else if (strcmp(st->st_step, "lifted") == 0)
		ls->lifted = true;
	return 0;
}

cm_result
cm_dsr_lift(const struct cm_ctx *cx, const char *id, const char *reason, json_t **out,
    struct cm_why *w)
{
	struct lift_scan ls = { false, false };
	struct dsr_req r;
	bool sent;
	cm_result rc;

	if (out != NULL)
		*out = NULL;
	if (!text_given(reason, "reason", w))
		return CM_INVALID;
	if ((rc = load_for(cx, id, 1u << CM_DSR_COMPLETED, "lifted", &r, w)) != CM_OK)
		goto out;
	if ((rc = cm_store_dsr_steps(cx->cx_db, id, lift_step, &ls)) != CM_OK)
		goto out;
	if (r.type != CM_DSR_RESTRICTION || ls.lifted || !r.key_ok) {
		cm_why_set(w, "invalid_transition", "only a restriction in force is lifted");
		snprintf(w->w_field, sizeof(w->w_field), ls.lifted || !r.key_ok ? "status" :
		    "type");
		snprintf(w->w_subject, sizeof(w->w_subject), "%s", cm_dsr_status_name(r.status));
		rc = CM_CONFLICT;
		goto out;
	}
	if (!ls.notified) {
		/* Art. 18(3): told before it is lifted; the next call lifts it. */
		if ((rc = dsr_record(cx, &r, "lift_notice", r.status, reason, NULL)) == CM_OK)
			rc = dsr_notify(cx, &r, "restriction_lift", NULL);
		goto done;
	}
	if ((rc = dsr_notice_sent(cx, &r, "restriction_lift", &sent)) != CM_OK)
		goto out;
	if (!sent) {
		cm_why_set(w, "notice_pending", "the subject has not been told yet; lift once "
		    "the notice is delivered");
		snprintf(w->w_field, sizeof(w->w_field), "status");
		rc = CM_CONFLICT;
		goto out;
	}
	if ((rc = cm_subject_restrict(cx, r.row.r_subject, false, w)) == CM_OK)
		rc = dsr_record(cx, &r, "lifted", r.status, reason, NULL);
done:
	rc = finish(cx, rc, id, out, w);
out:
	dsr_req_free(&r);
	return rc;
}

/* ---- after a restore ---------------------------------------------------- */

cm_result
cm_dsr_erasure_replay(const struct cm_ctx *cx, const char *id, int64_t erased_at_us,
    bool *done, struct cm_why *w)
{
	static const struct closing c = { OPEN_STATUSES, "completed", "completed",
	    CM_DSR_COMPLETED, "note", NULL, false };
	struct cm_subject_row row;
	json_t *counts = NULL;
	char tag[33], req[31];
	cm_result rc;

	*done = false;
	if ((rc = cm_store_subject_get(cx->cx_db, id, &row)) == CM_NOTFOUND)
		return CM_OK;
	if (rc != CM_OK)
		return rc;
	if (row.s_state == CM_SUBJECT_ERASED || row.s_merged_into[0] != '\0')
		return CM_OK;
	/*
	 * The request the erasure answered may be in this store still open:
	 * it is completed first, while what it holds under the subject's key
	 * can still be read.
	 */
	rc = cm_store_dsr_find_open(cx->cx_db, id, NULL, NULL, "erasure", req);
	if (rc == CM_OK)
		rc = close_with(cx, &c, req, "the erasure was applied again when the store "
		    "was restored from a backup", NULL, w);
	if (rc != CM_OK && rc != CM_NOTFOUND)
		return rc;
	if ((rc = dsr_forget(cx, id)) != CM_OK ||
	    (rc = cm_subject_erase(cx, id, &counts, w)) != CM_OK)
		return rc;
	json_decref(counts);
	cm_audit_tag(cx->cx_keys, id, strlen(id), tag);
	if ((rc = cm_ctx_audit(cx, "erasure.replayed", NULL, NULL, json_pack("{s:s, s:I}",
	    "subject_tag", tag, "erased_at", (json_int_t)erased_at_us), NULL, NULL)) == CM_OK)
		*done = true;
	return rc;
}
