/* SPDX-License-Identifier: ISC */
/*
 * A few helper threads, one per core beyond the first, that one request
 * can hand part of its work to: an NDJSON batch check splits each piece
 * of its body across them. Parts run at the same time on different
 * threads, so each part must use only its own state (for the store: the
 * thread's own connection).
 */
#ifndef CONSENTD_PAR_H
#define CONSENTD_PAR_H

#include <stdbool.h>

#define CM_PAR_MAX	8	/* parts at most, the caller's included */

struct cm_par;

/*
 * The cores this process may run on (its CPU affinity, which container
 * limits set), at least 1.
 */
unsigned cm_cpu_count(void);

/*
 * Starts HELPERS threads (at most CM_PAR_MAX - 1; with 0, every run is
 * done by its caller alone). NULL when a thread cannot be started.
 */
struct cm_par	*cm_par_start(unsigned helpers);

/* Stops and joins the threads, after any run under way; accepts NULL. */
void	 cm_par_stop(struct cm_par *);

/* Parts a run is split into: the helpers plus the caller (1 for NULL). */
unsigned cm_par_width(const struct cm_par *);

/*
 * Runs FN(ARG, k, n) for every part k of n, part 0 on the calling thread,
 * and returns when all have returned. When another request holds the
 * helpers, or PAR is NULL, n is 1 and the caller runs it all.
 */
void	 cm_par_run(struct cm_par *, void (*fn)(void *, unsigned, unsigned), void *arg);

#endif
