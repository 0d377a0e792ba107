/* SPDX-License-Identifier: ISC */
/*
 * Allocation wrappers that abort cleanly on out-of-memory and check
 * multiplication overflow (in the manner of kore_calloc), and the names of
 * the program's result codes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "consentd/common.h"

static void
mem_fatal(size_t n)
{
	fprintf(stderr, "{\"level\":\"error\",\"event\":\"out_of_memory\",\"bytes\":%zu}\n", n);
	exit(70);
}

void *
cm_malloc(size_t n)
{
	void *p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		mem_fatal(n);
	return p;
}

void *
cm_calloc(size_t n, size_t sz)
{
	void *p;

	if (n != 0 && sz > SIZE_MAX / n)
		mem_fatal(SIZE_MAX);
	if ((p = calloc(n == 0 ? 1 : n, sz == 0 ? 1 : sz)) == NULL)
		mem_fatal(n * sz);
	return p;
}

void *
cm_realloc(void *old, size_t n)
{
	void *p;

	if ((p = realloc(old, n == 0 ? 1 : n)) == NULL)
		mem_fatal(n);
	return p;
}

void *
cm_reallocarray(void *old, size_t n, size_t sz)
{
	if (n != 0 && sz > SIZE_MAX / n)
		mem_fatal(SIZE_MAX);
	return cm_realloc(old, n * sz);
}

#define LARGE_FROM	((size_t)4 << 20)
#define HUGE_PAGE	((uintptr_t)2 << 20)

/*
 * Advises the whole 2 MiB pages inside P..P+N. Only advice: a kernel
 * without transparent huge pages, or one that declines, leaves 4 KiB
 * pages and nothing else changes.
 */
static void
advise_large(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	uintptr_t hi = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1);

	if (n >= LARGE_FROM && hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
	(void)p;
	(void)n;
#endif
}

void *
cm_calloc_large(size_t n, size_t sz)
{
	void *p = cm_calloc(n, sz);

	advise_large(p, n * sz);
	return p;
}

void *
cm_reallocarray_large(void *old, size_t n, size_t sz)
{
	void *p = cm_reallocarray(old, n, sz);

	advise_large(p, n * sz);
	return p;
}

char *
cm_strdup(const char *s)
{
	return cm_strndup(s, strlen(s));
}

char *
cm_strndup(const char *s, size_t n)
{
	char *p;
	size_t len;

	len = strnlen(s, n);
	p = cm_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

const char *
cm_result_str(cm_result r)
{
	switch (r) {
	case CM_OK:		return "ok";
	case CM_NOTFOUND:	return "not found";
	case CM_CONFLICT:	return "conflict";
	case CM_INVALID:	return "invalid";
	case CM_BUSY:		return "busy";
	case CM_IOERR:		return "I/O error";
	case CM_AUTH:		return "wrong key";
	case CM_NOMEM:		return "out of memory";
	case CM_UNKNOWN:	return "outcome unknown";
	}
	return "unknown";
}
