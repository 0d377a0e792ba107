/* SPDX-License-Identifier: ISC */
/*
 * Data-subject requests (SPEC §7, §8): the six types of GDPR right a
 * person can ask for, the status machine a request moves through, its
 * deadline, the identity code that verifies the requester, and the
 * timeline that records every step with who took it. Every step runs in
 * the caller's transaction and appends its audit entry there; a step the
 * status does not allow changes nothing (CM_CONFLICT, w_code
 * "invalid_transition", w_field "status").
 */
#ifndef CONSENTD_DSR_H
#define CONSENTD_DSR_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/core.h"
#include "consentd/identifier.h"
#include "consentd/policy.h"

enum cm_dsr_type {
	CM_DSR_ACCESS, CM_DSR_PORTABILITY, CM_DSR_ERASURE, CM_DSR_RECTIFICATION,
	CM_DSR_RESTRICTION, CM_DSR_OBJECTION
};

enum cm_dsr_status {
	CM_DSR_IDENTITY_UNVERIFIED, CM_DSR_VERIFIED, CM_DSR_IN_PROGRESS,
	CM_DSR_AWAITING_SYSTEMS, CM_DSR_COMPLETED, CM_DSR_DENIED, CM_DSR_CANCELED
};

/* Names as the API spells them; parse returns 0, or -1 for any other text. */
const char *cm_dsr_type_name(enum cm_dsr_type);
int	cm_dsr_type_parse(const char *, enum cm_dsr_type *);
const char *cm_dsr_status_name(enum cm_dsr_status);
int	cm_dsr_status_parse(const char *, enum cm_dsr_status *);
/* Whether a request in STATUS is still open (not completed, denied, canceled). */
bool	cm_dsr_status_open(enum cm_dsr_status);
const char *cm_jurisdiction_name(enum cm_jurisdiction);
int	cm_jurisdiction_parse(const char *, enum cm_jurisdiction *);

/* ---- deadlines (src/core/deadline.c): pure functions of UTC times ------ */

#define CM_DAY_US	(86400LL * 1000000)

/*
 * T (microseconds since the epoch, UTC) plus MONTHS calendar months, the
 * time of day kept; a day the target month lacks clamps to its last day
 * (31 January + 1 month = 28 or 29 February).
 */
int64_t	cm_add_months(int64_t t, int months);
/* When a request received at RECEIVED is due: GDPR one month, CCPA 45 days. */
int64_t	cm_dsr_due(enum cm_jurisdiction, int64_t received);
/*
 * The latest due date one extension may set: GDPR received + 3 months
 * (Art. 12(3)), CCPA the 45 days and 45 more.
 */
int64_t	cm_dsr_extended_due(enum cm_jurisdiction, int64_t received);
/* Whether a request due at DUE is overdue at NOW, and its whole days left
 * (negative once overdue: -1 on the day after). Never stored: computed. */
bool	cm_dsr_overdue(int64_t due, int64_t now);
int64_t	cm_dsr_days_left(int64_t due, int64_t now);

/* ---- requests (src/core/dsr.c) ----------------------------------------- */

#define CM_DSR_ID_LEN		30	/* "dsr_" + 26 base32 */
#define CM_DSR_CODE_TTL_US	(10LL * 60 * 1000000)
#define CM_DSR_CODE_ATTEMPTS	5
#define CM_DSR_REASON_MAX	500

/* A new request, as POST /v1/dsr takes it. */
struct cm_dsr_input {
	enum cm_dsr_type		 di_type;
	const struct cm_identifier	*di_ident;
	enum cm_jurisdiction		 di_jurisdiction;
	const char			*di_source;	/* "api", "email", "phone", … */
	json_t				*di_details;	/* object or NULL; borrowed */
	bool				 di_verified;	/* the caller attests the identity */
};

/*
 * Validates a request's DETAILS for TYPE: an object of at most a few
 * members; for rectification, {"changes": {"profile": {…}, "add": […],
 * "remove": […]}} checked as the subject API checks them. Fills W (field
 * "details…") and returns false when it is not acceptable.
 */
bool	cm_dsr_details_valid(const struct cm_ctx *, enum cm_dsr_type, json_t *details,
	    struct cm_why *);

/*
 * Receives a request. When the subject holding the identifier (or, when
 * nobody holds it, the identifier) already has an open request of the
 * type, that one is answered instead and *EXISTING is true. Otherwise the
 * request starts identity_unverified with a code sent to an identifier
 * on file, or verified when DI_VERIFIED (the timeline names who attested).
 * *OUT: the request as GET /v1/dsr/{id} shows it.
 */
cm_result cm_dsr_create(const struct cm_ctx *, const struct cm_dsr_input *, json_t **out,
	    bool *existing, struct cm_why *) CM_WUR;

/* The request ID with its timeline and systems, or CM_NOTFOUND ("not_found"). */
cm_result cm_dsr_get(const struct cm_ctx *, const char *id, json_t **out,
	    struct cm_why *) CM_WUR;

/* Which requests GET /v1/dsr lists. */
struct cm_dsr_filter {
	int			 df_status;	/* enum cm_dsr_status, or -1: any */
	int			 df_type;	/* enum cm_dsr_type, or -1: any */
	const char		*df_subject;	/* or NULL */
	bool			 df_overdue;	/* only open requests past due */
	const char		*df_cursor;	/* from the previous page, or NULL */
	int			 df_limit;	/* 1 to 500 */
};

/*
 * The requests F selects, sorted by due date (then id), one page: *OUT is
 * {"requests":[…], "next_cursor": "…" or null}. CM_INVALID ("invalid_field",
 * "cursor") for a cursor this function did not make.
 */
cm_result cm_dsr_list(const struct cm_ctx *, const struct cm_dsr_filter *f, json_t **out,
	    struct cm_why *) CM_WUR;

/*
 * The steps. Each loads the request, checks its status allows the step,
 * does it, records it in the timeline with the actor and REASON, and
 * appends its audit entry; *OUT (may be NULL) is the request afterwards.
 *
 * verify: the identity code, compared in constant time. A wrong one
 * counts an attempt, which must be kept: CM_OK with *ACCEPTED false (and
 * W set to "invalid_code", field "code", for the reply), so the caller
 * commits it. After the last attempt or the code's expiry, CM_CONFLICT
 * "code_expired" (nothing written) until resend issues a new code.
 */
cm_result cm_dsr_verify(const struct cm_ctx *, const char *id, const char *code,
	    bool *accepted, json_t **out, struct cm_why *) CM_WUR;
cm_result cm_dsr_resend(const struct cm_ctx *, const char *id, json_t **out,
	    struct cm_why *) CM_WUR;
/* One extension, before the due date, with a reason; the subject is told. */
cm_result cm_dsr_extend(const struct cm_ctx *, const char *id, const char *reason,
	    json_t **out, struct cm_why *) CM_WUR;
/* Deny (the subject is told, with the right to complain) or cancel; reason required. */
cm_result cm_dsr_deny(const struct cm_ctx *, const char *id, const char *reason,
	    json_t **out, struct cm_why *) CM_WUR;
cm_result cm_dsr_cancel(const struct cm_ctx *, const char *id, const char *reason,
	    json_t **out, struct cm_why *) CM_WUR;
/*
 * Carries a verified request out: access and portability build the
 * package, erasure erases (SPEC §8, one transaction), restriction,
 * objection and rectification apply; systems registered for the event are
 * called, and the request waits for them (awaiting_systems) or completes.
 */
cm_result cm_dsr_process(const struct cm_ctx *, const char *id, json_t **out,
	    struct cm_why *) CM_WUR;
/*
 * After a restore: erases again subject ID, whose erasure at ERASED_AT_US
 * the erasure ledger records but the restored store predates. The same
 * erasure a processed erasure request makes (its queued messages and
 * packages dropped, identifiers suppressed as erased, data deleted, key
 * destroyed, "erasure.completed" recorded), inside the caller's
 * transaction, and an "erasure.replayed" entry with the ledger's time.
 * *DONE is false, and nothing written, when the store holds no record of
 * ID to erase: unknown, already erased, or merged away (its survivor's
 * line erases what it left).
 */
cm_result cm_dsr_erasure_replay(const struct cm_ctx *, const char *id, int64_t erased_at_us,
	    bool *done, struct cm_why *) CM_WUR;
/* The DPO finalises a request whose systems have not all reported; a note is required. */
cm_result cm_dsr_complete(const struct cm_ctx *, const char *id, const char *note,
	    json_t **out, struct cm_why *) CM_WUR;
/*
 * Lifts the restriction a completed restriction request set (Art. 18(3)):
 * the subject is told first, so the first call queues the notice and the
 * restriction stays; a call once that notice has gone out lifts it.
 */
cm_result cm_dsr_lift(const struct cm_ctx *, const char *id, const char *reason,
	    json_t **out, struct cm_why *) CM_WUR;

/*
 * Inside a merge: FROM's requests become INTO's, what they seal re-sealed
 * from FROM's key (KFROM, about to be destroyed) to INTO's (KINTO).
 */
cm_result cm_dsr_rehome(const struct cm_ctx *, const char *from, const char *into,
	    const uint8_t *kfrom, const uint8_t *kinto) CM_WUR;

/* ---- access and portability packages (src/core/package.c) --------------- */

enum cm_package_format { CM_PACKAGE_JSON, CM_PACKAGE_CSV };

/* A held package being read (decrypted) from the start. */
struct cm_package_reader;

/*
 * Opens the package of request ID in FORMAT, as GET /v1/dsr/{id}/package
 * serves it; *SIZE its length. Reads only (one snapshot the caller may
 * hold). CM_NOTFOUND "not_found" (field id); CM_CONFLICT
 * "invalid_request_type" (field type: not access or portability),
 * "package_not_ready" (field status: not processed yet), "package_expired"
 * (field expires_at), "subject_erased" (destroyed with the record);
 * CM_INVALID "invalid_parameter" (field format: CSV is for portability).
 * Close with cm_dsr_package_close().
 */
cm_result cm_dsr_package_open(const struct cm_ctx *, const char *id, enum cm_package_format,
	    struct cm_package_reader **out, uint64_t *size, struct cm_why *) CM_WUR;
/* Up to LEN bytes into BUF: the count, 0 at the end, -1 when the file is damaged. */
long	cm_dsr_package_read(struct cm_package_reader *, void *buf, size_t len) CM_WUR;
/* Accepts NULL. */
void	cm_dsr_package_close(struct cm_package_reader *);
/*
 * Destroys every package past its expiry (key and file), inside the
 * caller's transaction; processing a request does it too.
 */
cm_result cm_dsr_packages_sweep(const struct cm_ctx *) CM_WUR;
/* ---- downstream systems' reports and deliveries (src/core/dsr_systems.c) -- */

/*
 * System SYSTEM reports STATUS ("completed", "failed", "no_data") with
 * DETAIL (may be NULL; the system's own words, at most 500 bytes) for
 * request ID. CM_NOTFOUND "not_found" (field "id") for no such request,
 * or (field "name") when the system was not called for it. When every
 * system called has reported completed or no_data, a request awaiting
 * systems completes and its subject is told; a failure leaves it waiting
 * (for another report, or the DPO's /complete).
 */
cm_result cm_dsr_system_report(const struct cm_ctx *, const char *id, const char *system,
	    const char *status, const char *detail, json_t **out, struct cm_why *) CM_WUR;

/*
 * Records in request ID's timeline that outbox row NAME (a template, or
 * an event sent to SYSTEM, NULL for a message) was delivered (SENT) or
 * given up on after ATTEMPTS.
 */
cm_result cm_dsr_delivered(const struct cm_ctx *, const char *id, const char *name,
	    const char *system, bool sent, int64_t attempts) CM_WUR;

#endif
