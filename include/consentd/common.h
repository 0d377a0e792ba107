/* SPDX-License-Identifier: ISC */
/*
 * Definitions shared by every module: the one result-code family of the
 * program, attribute shorthands and the allocation wrappers.
 */
#ifndef CONSENTD_COMMON_H
#define CONSENTD_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* One result enum for the whole program, as SQLite has one result family. */
typedef enum cm_result {
	CM_OK = 0,
	CM_NOTFOUND,		/* the thing asked for does not exist */
	CM_CONFLICT,		/* a uniqueness or state rule refused the change */
	CM_INVALID,		/* malformed input */
	CM_BUSY,		/* the store is locked or overloaded; retry later */
	CM_IOERR,		/* I/O or other internal failure */
	CM_AUTH,		/* wrong key or not a consentd database */
	CM_NOMEM,		/* out of memory (only where aborting is wrong) */
	CM_UNKNOWN		/* a commit's answer was lost: it may or may not
				   have been made; replay it with its request id */
} cm_result;

#define CM_WUR		__attribute__((warn_unused_result))
#define CM_PRINTF(a, b)	__attribute__((format(printf, a, b)))
#define CM_UNUSED	__attribute__((unused))
#define CM_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* Returns a static, human-readable name for a result code. */
const char	*cm_result_str(cm_result);

/*
 * Allocation wrappers: they never return NULL; on out-of-memory or a size
 * overflow they print a message and exit, as nothing sensible can follow.
 * Free what they return with free().
 */
void	*cm_malloc(size_t);
void	*cm_calloc(size_t, size_t);
void	*cm_realloc(void *, size_t);
void	*cm_reallocarray(void *, size_t, size_t);
char	*cm_strdup(const char *);
char	*cm_strndup(const char *, size_t);
/*
 * The same for large tables probed at random (a million rows or more):
 * from 4 MiB on, the memory is offered to the kernel for 2 MiB pages, one
 * fault and one TLB entry where 512 would be. Free with free().
 */
void	*cm_calloc_large(size_t, size_t);
void	*cm_reallocarray_large(void *, size_t, size_t);

#endif
