/* SPDX-License-Identifier: ISC */
/*
 * The helper threads of cm_par_run. One run at a time: a second request
 * that asks while the helpers are busy runs its work alone rather than
 * queue behind another request's batch.
 */
#define _GNU_SOURCE	/* sched_getaffinity, CPU_COUNT */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "consentd/par.h"
#include "consentd/util.h"
#include "consentd/worker.h"

struct cm_par;

/* One helper thread and the part of each run it takes. */
struct helper {
	struct cm_par		*h_par;
	struct cm_worker	*h_worker;
	unsigned		 h_part;
};

struct cm_par {
	pthread_mutex_t	 p_run;		/* held by the request using the helpers */
	pthread_mutex_t	 p_lock;	/* guards what follows */
	pthread_cond_t	 p_done;	/* a helper finished its part */
	void		(*p_fn)(void *, unsigned, unsigned);
	void		*p_arg;
	unsigned	 p_parts;	/* of the current run */
	unsigned	 p_pending;	/* helper parts not yet done */
	unsigned	 p_nthreads;
	struct helper	 p_helpers[CM_PAR_MAX - 1];
};

/* A helper woken for a run does its part of it. */
static void
helper_run(void *arg, bool last)
{
	struct helper *h = arg;
	struct cm_par *p = h->h_par;
	void (*fn)(void *, unsigned, unsigned);
	void *fa;
	unsigned n;

	if (last)
		return;
	pthread_mutex_lock(&p->p_lock);
	fn = p->p_fn;
	fa = p->p_arg;
	n = p->p_parts;
	pthread_mutex_unlock(&p->p_lock);
	if (fn == NULL || h->h_part >= n)
		return;
	fn(fa, h->h_part, n);
	pthread_mutex_lock(&p->p_lock);
	if (--p->p_pending == 0)
		pthread_cond_signal(&p->p_done);
	pthread_mutex_unlock(&p->p_lock);
}

unsigned
cm_cpu_count(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}

struct cm_par *
cm_par_start(unsigned helpers)
{
	struct cm_par *p;
	struct helper *h;

	if (helpers > CM_PAR_MAX - 1)
		helpers = CM_PAR_MAX - 1;
	p = cm_calloc(1, sizeof(*p));
	pthread_mutex_init(&p->p_run, NULL);
	pthread_mutex_init(&p->p_lock, NULL);
	pthread_cond_init(&p->p_done, NULL);
	for (; p->p_nthreads < helpers; p->p_nthreads++) {
		h = &p->p_helpers[p->p_nthreads];
		h->h_par = p;
		h->h_part = p->p_nthreads + 1;
		if ((h->h_worker = cm_worker_start(helper_run, h, 0)) == NULL) {
			cm_par_stop(p);
			return NULL;
		}
	}
	return p;
}

void
cm_par_stop(struct cm_par *p)
{
	unsigned i;

	if (p == NULL)
		return;
	for (i = 0; i < p->p_nthreads; i++)
		cm_worker_stop(p->p_helpers[i].h_worker);
	pthread_cond_destroy(&p->p_done);
	pthread_mutex_destroy(&p->p_lock);
	pthread_mutex_destroy(&p->p_run);
	free(p);
}

unsigned
cm_par_width(const struct cm_par *p)
{
	return p == NULL ? 1 : p->p_nthreads + 1;
}

void
cm_par_run(struct cm_par *p, void (*fn)(void *, unsigned, unsigned), void *arg)
{
	unsigned i, n;

	if (p == NULL || p->p_nthreads == 0 || pthread_mutex_trylock(&p->p_run) != 0) {
		fn(arg, 0, 1);
		return;
	}
	n = p->p_nthreads + 1;
	pthread_mutex_lock(&p->p_lock);
	p->p_fn = fn;
	p->p_arg = arg;
	p->p_parts = n;
	p->p_pending = n - 1;
	pthread_mutex_unlock(&p->p_lock);
	for (i = 0; i < p->p_nthreads; i++)
		cm_worker_wake(p->p_helpers[i].h_worker);
	fn(arg, 0, n);
	pthread_mutex_lock(&p->p_lock);
	while (p->p_pending > 0)
		pthread_cond_wait(&p->p_done, &p->p_lock);
	p->p_fn = NULL;
	pthread_mutex_unlock(&p->p_lock);
	pthread_mutex_unlock(&p->p_run);
}
