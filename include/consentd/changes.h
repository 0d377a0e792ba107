/* SPDX-License-Identifier: ISC */
/*
 * The change feed (GET /v1/changes): consent, preference and suppression
 * changes and erasures, recorded in the transaction that makes them and
 * read back in commit order from an opaque cursor, for senders that keep
 * a copy of the consent state instead of asking for each message. What a
 * change shows depends on the caller's scope: never evidence or profile,
 * and identifiers only for subjects:read.
 */
#ifndef CONSENTD_CHANGES_H
#define CONSENTD_CHANGES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/core.h"

#define CM_CHANGES_LIMIT_DEFAULT	100
#define CM_CHANGES_LIMIT_MAX		1000

/*
 * Records one change of KIND ("consent", "preferences", "suppression",
 * "restriction", "objection", "erasure") at CX's time inside the caller's transaction. SUBJECT, TYPE
 * and BLIND (an identifier's type and 32-byte blind index) may be NULL.
 * Takes ownership of BODY, the change's non-personal details (NULL, as a
 * failed json_pack gives, is CM_INVALID).
 */
cm_result cm_change_record(const struct cm_ctx *, const char *kind, const char *subject,
	    const char *type, const uint8_t *blind, json_t *body) CM_WUR;

/*
 * Records that the suppression entry of (TYPE, BLIND) was ACTION ("added"
 * or "lifted") with REASON, BY whom when lifted (NULL otherwise), by the
 * audit entry IDX: with the subject holding the identifier now, if any.
 */
cm_result cm_suppression_change(const struct cm_ctx *, const char *type,
	    const uint8_t blind[32], const char *action, const char *reason,
	    const char *by, uint64_t idx) CM_WUR;

/* Records that SUBJECT is now RESTRICTED (Art. 18) or no longer, by entry IDX. */
cm_result cm_restriction_change(const struct cm_ctx *, const char *subject,
	    bool restricted, uint64_t idx) CM_WUR;

/* Deletes every change of SUBJECT, inside the erasure's transaction. */
cm_result cm_change_forget(const struct cm_ctx *, const char *subject) CM_WUR;

/*
 * Up to LIMIT changes after the cursor AFTER (NULL: from the first) as
 * {"changes":[…],"next_cursor","has_more"} into *OUT. IDENTIFIERS (the
 * caller holds subjects:read) adds the identifiers of each change's
 * subject, and the identifier of a suppression when a subject holds it.
 * CM_INVALID with w_field "after" for a cursor this service did not give.
 */
cm_result cm_changes_list(const struct cm_ctx *, const char *after, int limit,
	    bool identifiers, json_t **out, struct cm_why *) CM_WUR;

#endif
