/* SPDX-License-Identifier: ISC */
/*
 * Internals of the request workflow shared by src/core/dsr.c (receiving,
 * reading, listing, the timeline) and dsr_steps.c (the steps and their
 * effects). Only these include it.
 */
#ifndef CONSENTD_CORE_DSR_INT_H
#define CONSENTD_CORE_DSR_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/dsr.h"
#include "consentd/store.h"

/* A request loaded for a step: its row, and what its sealed part says. */
struct dsr_req {
	struct cm_dsr_row	 row;
	enum cm_dsr_type	 type;
	enum cm_dsr_status	 status;
	enum cm_jurisdiction	 jur;
	uint8_t			*key;		/* the key its sealed part is under */
	bool			 key_ok;	/* the key is there (not erased) */
	json_t			*sealed;	/* {"identifier", "details"}, or NULL */
};

/*
 * Loads request ID into R and opens its sealed part when the key is still
 * there (an erased subject's requests keep only their plain columns).
 * CM_NOTFOUND with w_code "not_found". Release with dsr_req_free().
 */
cm_result dsr_req_load(const struct cm_ctx *, const char *id, struct dsr_req *r,
	    struct cm_why *) CM_WUR;
void	dsr_req_free(struct dsr_req *);

/*
 * Records step STEP of R: the status it leaves (NEW_STATUS), the due date
 * and whether it was extended, closed when the status is final; the
 * timeline row with CX's actor and REASON (may be NULL); and the audit
 * entry "dsr.STEP" about R's subject with DETAILS (taken; may be NULL),
 * which never holds the reason's text, only whether one was given.
 */
cm_result dsr_record(const struct cm_ctx *, struct dsr_req *r, const char *step,
	    enum cm_dsr_status new_status, const char *reason, json_t *details) CM_WUR;

/* Sets W to invalid_transition naming R's status and what STEP needs. */
cm_result dsr_refuse(const struct dsr_req *r, const char *step, struct cm_why *);

/*
 * Issues a new identity code for R: a keyed hash of it is stored, valid
 * CM_DSR_CODE_TTL_US, and the code is sent to an identifier on file (the
 * one asked about when nobody holds it). The code is written into CODE
 * (7 bytes) for the caller to forget.
 */
cm_result dsr_issue_code(const struct cm_ctx *, struct dsr_req *r, char code[7]) CM_WUR;

/*
 * Sends identity code CODE of R to an identifier on file, through the
 * outbox (src/core/dsr_links.c).
 */
cm_result dsr_send_code(const struct cm_ctx *, struct dsr_req *r, const char *code) CM_WUR;

/* Adds "systems": the downstream systems' status for request ID, to J. */
cm_result dsr_systems_json(const struct cm_ctx *, const char *id, json_t *j) CM_WUR;

/*
 * Queues message TEMPLATE to R's subject (an identifier on file: email
 * first, then phone), or to the identifier asked about when nobody holds
 * it, with VARS (taken; may be NULL). A subject whose record is erased has
 * no one to write to: nothing is queued.
 */
cm_result dsr_notify(const struct cm_ctx *, struct dsr_req *r, const char *template,
	    json_t *vars) CM_WUR;
/*
 * Queues the completion notice of an erasure before it runs, sealed under
 * a key of its own, so it survives the erasure until it is delivered.
 */
cm_result dsr_notify_after_erasure(const struct cm_ctx *, struct dsr_req *r) CM_WUR;
/*
 * Whether message TEMPLATE of R has gone out: *SENT true when it was
 * delivered, or when none was queued (no one to write to).
 */
cm_result dsr_notice_sent(const struct cm_ctx *, struct dsr_req *r, const char *template,
	    bool *sent) CM_WUR;
/* The identifiers on R's subject's record, as texts, into *OUT. */
cm_result dsr_identifiers(const struct cm_ctx *, struct dsr_req *r, json_t **out) CM_WUR;
/* Destroys SUBJECT's pending messages and packages (inside an erasure). */
cm_result dsr_forget(const struct cm_ctx *, const char *subject) CM_WUR;
/* Builds R's access or portability package and records it in the timeline. */
cm_result dsr_package(const struct cm_ctx *, struct dsr_req *r, struct cm_why *) CM_WUR;
/* Destroys SUBJECT's packages (inside an erasure; src/core/dsr_package.c). */
cm_result dsr_package_forget(const struct cm_ctx *, const char *subject) CM_WUR;
/*
 * Calls every system registered for EVENT with PAYLOAD (borrowed) and
 * marks each pending on the request; *N is how many.
 */
cm_result dsr_call_systems(const struct cm_ctx *, struct dsr_req *r, const char *event,
	    json_t *payload, size_t *n) CM_WUR;

/* The keyed hash an identity code is stored as (bound to the request id). */
void	dsr_code_hash(const struct cm_ctx *, const char *id, const char *code,
	    uint8_t out[32]);

#endif
