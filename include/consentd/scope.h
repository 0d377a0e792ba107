/* SPDX-License-Identifier: ISC */
/*
 * API token scopes. A token carries a set of scopes; each route names the
 * one it needs. Scopes do not imply one another, with one exception:
 * `consent:read` includes `consent:check` (the check routes). `admin` is
 * for administrative routes only, so a token gets exactly what it is given.
 * The bits are stored with each token: a bit never changes its meaning,
 * and new scopes take new bits.
 */
#ifndef CONSENTD_SCOPE_H
#define CONSENTD_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/common.h"

#define CM_SCOPE_NONE		0u		/* route needs no token */
#define CM_SCOPE_CONSENT_READ	(1u << 0)
#define CM_SCOPE_CONSENT_WRITE	(1u << 1)
#define CM_SCOPE_SUBJECTS_WRITE	(1u << 2)
#define CM_SCOPE_DSR_ADMIN	(1u << 3)
#define CM_SCOPE_AUDIT_READ	(1u << 4)
#define CM_SCOPE_ADMIN		(1u << 5)
#define CM_SCOPE_CONSENT_CHECK	(1u << 6)	/* the check routes only */
#define CM_SCOPE_SUBJECTS_READ	(1u << 7)	/* the customer record, evidence */
#define CM_SCOPE_ALL		((1u << 8) - 1)

/*
 * Parses a comma-separated scope list ("consent:read,audit:read") into
 * *OUT. On an unknown or empty item writes it into BAD (size BADLEN) and
 * returns -1.
 */
int	cm_scope_parse(const char *list, uint32_t *out, char *bad, size_t badlen) CM_WUR;

/* Writes the scopes of MASK, comma-separated, into OUT. */
void	cm_scope_format(uint32_t mask, char *out, size_t outlen);

/*
 * Whether a token holding the scopes HAVE may call a route that needs the
 * scope NEED (a single bit): it holds NEED, or a scope that includes it.
 */
bool	cm_scope_allows(uint32_t have, uint32_t need);

/* The name of a single scope bit, or NULL. */
const char *cm_scope_name(uint32_t bit);

/* MASK as a new JSON array of scope names, in the order of cm_scope_format. */
json_t	*cm_scope_json(uint32_t mask);

#endif
