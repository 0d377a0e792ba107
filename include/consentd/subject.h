/* SPDX-License-Identifier: ISC */
/*
 * The unified customer record: subjects (one person each), their
 * identifiers and profile, and merging two subjects found to be one
 * person. Functions that change anything run inside the transaction the
 * caller holds and append their audit entry to it; personal values are
 * sealed under the subject's own key and reach the audit log only as
 * commitments.
 */
#ifndef CONSENTD_SUBJECT_H
#define CONSENTD_SUBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/common.h"
#include "consentd/core.h"
#include "consentd/identifier.h"
#include "consentd/store.h"

struct cm_keys;
struct cm_policy;

#define CM_PROFILE_MAX_ATTRS	64
#define CM_PROFILE_MAX_VALUE	4096
#define CM_SOURCE_MAX		64

struct cm_new_ident {
	struct cm_identifier	 ni_id;
	bool			 ni_verified;
	const char		*ni_source;	/* [a-z0-9_.-]{1,64} */
};

/* Whether S is a well-formed subject id ("sub_" + 26 base32). */
bool	cm_subject_id_valid(const char *s);
/* Whether S is a usable identifier source. */
bool	cm_source_valid(const char *s);

/*
 * Creates a subject with IDS (N of them) and PROFILE (an object, or NULL).
 * CM_CONFLICT with w_code "identifier_taken", w_subject the owner and
 * w_index the item when an identifier belongs to someone else;
 * CM_INVALID with "invalid_attribute" for a bad profile.
 */
cm_result cm_subject_create(const struct cm_ctx *, const struct cm_new_ident *ids,
	    size_t n, json_t *profile, char id[CM_SUBJECT_ID_LEN + 1],
	    struct cm_why *) CM_WUR;

/* The subject holding IDENT into ID; CM_NOTFOUND. Read-only, no lock. */
cm_result cm_subject_resolve(const struct cm_ctx *, const struct cm_identifier *,
	    char id[CM_SUBJECT_ID_LEN + 1]) CM_WUR;

/*
 * Loads subject ID. CM_NOTFOUND with w_code "not_found", or "merged" and
 * w_subject the surviving subject.
 */
cm_result cm_subject_load(const struct cm_ctx *, const char *id,
	    struct cm_subject_row *, struct cm_why *) CM_WUR;

/*
 * Loads ID (as cm_subject_load) and unwraps its data key into KEY (secure
 * memory of CM_KEY_LEN bytes). CM_CONFLICT "subject_erased" once erased.
 */
cm_result cm_subject_open(const struct cm_ctx *, const char *id,
	    struct cm_subject_row *, uint8_t *key, struct cm_why *) CM_WUR;

/*
 * As cm_subject_open, for ROW already read in this transaction: unwraps
 * its data key into KEY; CM_CONFLICT "subject_erased" once erased. A row
 * merged into another is loaded again, so the answer is cm_subject_open's.
 */
cm_result cm_subject_unlock(const struct cm_ctx *, struct cm_subject_row *row,
	    uint8_t *key, struct cm_why *) CM_WUR;

/* The subject as JSON: id, state, identifiers, profile, times. */
cm_result cm_subject_view(const struct cm_ctx *, const char *id, json_t **out,
	    struct cm_why *) CM_WUR;

/*
 * The identifiers of ID, unsealed, as a new array of {"identifier",
 * "verified","source"} into *OUT (personal data: wipe what you copy).
 */
cm_result cm_subject_identifiers(const struct cm_ctx *, const char *id, json_t **out,
	    struct cm_why *) CM_WUR;

/* Links IDENT to ID. *EXISTED when ID already had it (nothing changes). */
cm_result cm_subject_link(const struct cm_ctx *, const char *id,
	    const struct cm_new_ident *, bool *existed, struct cm_why *) CM_WUR;
/* Unlinks IDENT from ID; CM_NOTFOUND "identifier_not_linked". */
cm_result cm_subject_unlink(const struct cm_ctx *, const char *id,
	    const struct cm_identifier *, struct cm_why *) CM_WUR;

/*
 * Whether PATCH is a profile change PATCH /v1/subjects/{id}/profile would
 * take (names, sizes; null removes); fills W (invalid_attribute) if not.
 */
bool	cm_subject_profile_valid(json_t *patch, struct cm_why *);

/* Applies ATTRS (null deletes) to the profile of ID. */
cm_result cm_subject_patch_profile(const struct cm_ctx *, const char *id,
	    json_t *attrs, struct cm_why *) CM_WUR;

/*
 * Merges FROM into INTO: identifiers and audit openings move (re-sealed
 * under INTO's key), the profile keeps INTO's values and takes FROM's
 * where INTO has none, FROM's key is destroyed and FROM answers "merged"
 * from now on. *CONFLICTS receives the list of disagreements (new
 * reference). CM_INVALID "same_subject"; CM_NOTFOUND; CM_CONFLICT
 * "subject_erased".
 */
cm_result cm_subject_merge(const struct cm_ctx *, const char *into, const char *from,
	    const char *reason, json_t **conflicts, struct cm_why *) CM_WUR;

#endif
