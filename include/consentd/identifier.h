/* SPDX-License-Identifier: ISC */
/*
 * Identifiers of a person, written "type:value": email, phone, device,
 * loyalty, customer, and the types the policy adds. Parsing checks and
 * normalises the value so one person's identifier always has one form,
 * which is what the blind index is computed over: email trimmed, an ASCII
 * address lower-cased, a non-ASCII local part case-folded (Unicode full
 * folding, NFC) and a non-ASCII or "xn--" domain through IDNA to its
 * lower-case U-label; phone to E.164 through libphonenumber; others kept
 * exactly.
 */
#ifndef CONSENTD_IDENTIFIER_H
#define CONSENTD_IDENTIFIER_H

#include <stddef.h>

#include "consentd/common.h"

struct cm_policy;

#define CM_ID_TYPE_MAX		64
#define CM_ID_VALUE_MAX		254	/* RFC 5321 path limit for email */
#define CM_ID_TEXT_MAX		(CM_ID_TYPE_MAX + 1 + CM_ID_VALUE_MAX + 1)

struct cm_identifier {
	char	id_type[CM_ID_TYPE_MAX + 1];	/* "email" */
	char	id_value[CM_ID_VALUE_MAX + 1];	/* normalised value */
	char	id_text[CM_ID_TEXT_MAX];	/* "email:ana@example.com" */
};

/*
 * Parses and normalises TEXT (LEN bytes, which may hold a NUL that is then
 * refused) against the built-in types and those POLICY adds (POLICY may be
 * NULL: built-ins only, and no national phone numbers, which are read in
 * POLICY's pol_phone_region). Normalising a normalised value returns it
 * unchanged, so stored values can be normalised again. On failure returns
 * CM_INVALID, or CM_NOMEM when memory ran out or CM_IOERR when a library
 * failed inside, and writes into WHY a reason that never repeats the
 * value. Thread-safe.
 */
cm_result cm_identifier_parse(const char *text, size_t len, const struct cm_policy *,
	    struct cm_identifier *out, char *why, size_t whylen) CM_WUR;

/* Whether TYPE is known (built in or added by POLICY). */
int	cm_identifier_type_known(const char *type, const struct cm_policy *);

#endif
