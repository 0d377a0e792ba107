/* SPDX-License-Identifier: ISC */
/*
 * What the state check reads of one audit entry, as plain C values that
 * either parser can fill: jansson (state.c, for any entry) or simdjson
 * (entry_fast.cc, the fast path for canonical entries). The state
 * extraction then works from these alone, so both paths give the same
 * facts. Strings are NUL-terminated and live as long as the parse they
 * came from. Only files in src/audit/ include this header.
 */
#ifndef CONSENTD_AUDIT_ENTRY_FIELDS_H
#define CONSENTD_AUDIT_ENTRY_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define CM_EF_NOTHROW	noexcept
extern "C" {
#else
#define CM_EF_NOTHROW
#endif

/* How a member was found: jansson's json_is_* kinds, as far as used. */
enum cm_ef_kind {
	EF_ABSENT, EF_STRING, EF_INT, EF_TRUE, EF_FALSE, EF_NULL, EF_OTHER
};

struct cm_ef_value {
	enum cm_ef_kind	 kind;
	const char	*str;	/* EF_STRING */
	int64_t		 num;	/* EF_INT */
};

/* The members of "d" the state check reads, in the order of their names. */
enum cm_ef_member {
	EFD_CHANNEL, EFD_COLLECTED_AT, EFD_EVENT_ID, EFD_FREQUENCY,
	EFD_KEPT_SUPPRESSION, EFD_MERGED, EFD_METHOD, EFD_NOTICE_VERSION,
	EFD_OBJECTED_AT, EFD_PAUSED_UNTIL, EFD_PURPOSE, EFD_REASON, EFD_SALE_REF,
	EFD_SINCE, EFD_STATE, EFD_SUPERSEDED, EFD_TAG, EFD_COUNT
};

struct cm_entry_fields {
	struct cm_ef_value	i;	/* the entry's index */
	struct cm_ef_value	type;
	struct cm_ef_value	s;	/* the subject pseudonym */
	struct cm_ef_value	d[EFD_COUNT];
};

/* The member names, indexed by enum cm_ef_member. */
extern const char *const cm_ef_names[EFD_COUNT];

/*
 * Bytes readable after an entry passed to cm_entry_fast(): simdjson reads
 * ahead in blocks and needs them there (their contents do not matter).
 */
#define CM_ENTRY_PADDING	64

/*
 * Whether the one-pass canonical-form scan of canon.c alone finds LEN
 * bytes at P canonical, given that they are valid JSON.
 */
bool	cm_audit_canon_scan_settles(const void *p, size_t len) CM_EF_NOTHROW;

/*
 * The fast path for an entry of LEN bytes at P, with CM_ENTRY_PADDING more
 * bytes readable after it. Returns true when it settles the entry: the
 * bytes are valid JSON, an object, canonical (which also rules out a
 * repeated key), and every number in it fits jansson's integers, so
 * jansson would parse it to the same values; F is then filled, valid
 * until the calling thread's next call. Returns false for anything else,
 * which the caller settles with jansson. Safe on any thread.
 */
bool	cm_entry_fast(const uint8_t *p, size_t len, struct cm_entry_fields *f) CM_EF_NOTHROW;

#ifdef __cplusplus
}
#endif

#endif
