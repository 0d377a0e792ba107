/* SPDX-License-Identifier: ISC */
/*
 * Internals of the unified customer record shared by src/core/ (subject.c,
 * merge.c): sealing identifier and profile values under a subject's key
 * and applying a profile patch. Only files in src/core/ include this
 * header.
 */
#ifndef CONSENTD_CORE_RECORD_H
#define CONSENTD_CORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/core.h"

/* Seals PT under KEY with AD "KIND:SUBJECT:NAME"; caller frees *OUT. */
void	record_seal(const uint8_t *key, const char *kind, const char *subject,
	    const char *name, const void *pt, size_t len, uint8_t **out, size_t *outlen);

/* Opens a sealed value into a new NUL-terminated string; NULL if forged. */
char	*record_unseal(const uint8_t *key, const char *kind, const char *subject,
	    const char *name, const uint8_t *ct, size_t len);

/* Wipes and frees a string from record_unseal (NULL is fine). */
void	record_unseal_free(char *);

/*
 * Applies PATCH (name → value, null deletes) to SUBJECT's profile sealed
 * under KEY, appending the names set to SET and deleted to DELETED; fails
 * with too_many_attributes past CM_PROFILE_MAX_ATTRS.
 */
cm_result record_profile_apply(const struct cm_ctx *, const char *subject, const uint8_t *key,
	    json_t *patch, json_t *set, json_t *deleted, struct cm_why *) CM_WUR;

#endif
