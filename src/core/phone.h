/* SPDX-License-Identifier: ISC */
/*
 * The one door to libphonenumber, a C++ library: a C-callable function,
 * defined in phone.cc, that turns a phone number already reduced to an
 * optional '+' and digits into E.164. Only the identifier module uses it;
 * the character rules, the "(0)" trunk prefix and the length limits stay
 * in identifier.c, which checks them before calling in.
 */
#ifndef CONSENTD_CORE_PHONE_H
#define CONSENTD_CORE_PHONE_H

#include <stddef.h>

#include "consentd/common.h"

#ifdef __cplusplus
#define CM_PHONE_NOTHROW	noexcept
extern "C" {
#else
#define CM_PHONE_NOTHROW
#endif

/*
 * Formats NUMBER (NUL-terminated: '+' and digits, or digits alone for a
 * national number) as E.164 into OUT (OUTLEN bytes, NUL-terminated).
 * REGION is the ISO 3166-1 alpha-2 code a national number is read in, or
 * NULL (then NUMBER must start with '+'). Returns CM_OK; CM_NOTFOUND when
 * the country calling code does not exist, or REGION is not a region
 * libphonenumber knows; CM_INVALID when libphonenumber cannot read NUMBER
 * or its E.164 form does not fit OUT; CM_NOMEM when memory ran out;
 * CM_IOERR on any other failure inside the library. Never throws. On
 * failure OUT is the empty string. Thread-safe: the library's instance is
 * created on first use and lives for the rest of the process.
 */
cm_result cm_phone_e164(const char *number, const char *region, char *out,
	    size_t outlen) CM_PHONE_NOTHROW CM_WUR;

/*
 * Whether REGION (ISO 3166-1 alpha-2, either case) is a region
 * libphonenumber can read national numbers in: 1 or 0. For checking a
 * policy's default phone region when it is loaded.
 */
int	cm_phone_region_known(const char *region) CM_PHONE_NOTHROW;

#ifdef __cplusplus
}
#endif

#endif
