/* SPDX-License-Identifier: ISC */
/*
 * One background thread: started with the work it does, woken when there
 * is work or every INTERVAL_MS, and stopped by joining it. The
 * checkpointer, the group-commit writer, the slow-client watchdog and the
 * helpers of cm_par are each one of these, so a thread is started, woken
 * and stopped one way.
 */
#ifndef CONSENTD_WORKER_H
#define CONSENTD_WORKER_H

#include <stdbool.h>

struct cm_worker;

/*
 * Runs FN(ARG, LAST) on a new thread each time the worker is woken by
 * cm_worker_wake, and every INTERVAL_MS when that is not 0; wakes that
 * arrive while FN runs make it run once more, none is lost. LAST is true
 * on the one call made after cm_worker_stop, so FN can finish its work
 * (or return at once). NULL when the thread cannot be started.
 */
struct cm_worker *cm_worker_start(void (*fn)(void *arg, bool last), void *arg,
	    unsigned interval_ms);

/* Makes the worker run FN soon; cheap, callable from any thread. */
void	cm_worker_wake(struct cm_worker *);

/*
 * Asks the worker to stop, waits for FN's last call (LAST true) and joins
 * the thread; accepts NULL.
 */
void	cm_worker_stop(struct cm_worker *);

#endif
