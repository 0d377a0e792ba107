/* SPDX-License-Identifier: ISC */
/*
 * What every domain call works with: the context of one call (the store
 * connection, keys, policy, who acts and when) and why a call failed, for
 * the API's error reply. Domain functions that change anything run inside
 * the transaction the caller holds on cx_db and append their audit entry
 * to it through cm_ctx_audit().
 */
#ifndef CONSENTD_CORE_H
#define CONSENTD_CORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/common.h"
#include "consentd/store.h"

struct cm_keys;
struct cm_policy;

#define CM_ACTOR_MAX	80

/* The context of one domain call; its pointers are borrowed for the call. */
struct cm_ctx {
	struct cm_db		*cx_db;
	const struct cm_keys	*cx_keys;
	const struct cm_policy	*cx_policy;	/* may be NULL (data upgrades) */
	char			 cx_actor[CM_ACTOR_MAX];	/* "token:NAME", "system:…", "cli" */
	int64_t			 cx_now;	/* microseconds */
};

/* Fills CX for one call on DB by ACTOR at the current time. */
void	cm_ctx_init(struct cm_ctx *cx, struct cm_db *db, const struct cm_keys *keys,
	    const struct cm_policy *policy, const char *actor);

/* Why a call failed, for the API's error reply. */
struct cm_why {
	const char	*w_code;	/* "not_found", "merged", "identifier_taken", … */
	char		 w_subject[CM_SUBJECT_ID_LEN + 1];	/* owner or survivor */
	size_t		 w_index;	/* which item of a list */
	char		 w_field[96];	/* the input field at fault, or "" */
	char		 w_msg[160];
};

/* Fills W (which may be NULL) with CODE and a message. */
void	cm_why_set(struct cm_why *w, const char *code, const char *fmt, ...) CM_PRINTF(3, 4);

/*
 * Appends an audit entry of TYPE by CX's actor, about SUBJECT (or none),
 * inside the caller's transaction; takes ownership of DETAILS and
 * PRIVATE_ (either may be NULL). KEY is the subject's data key when
 * PRIVATE_ is set. *IDX (may be NULL) receives the entry's index.
 */
cm_result cm_ctx_audit(const struct cm_ctx *, const char *type, const char *subject,
	    const uint8_t *key, json_t *details, json_t *private_, uint64_t *idx) CM_WUR;

#endif
