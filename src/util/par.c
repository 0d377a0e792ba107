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

struct cm_par {
	pthread_mutex_t	 p_run;		/* held by the request using the helpers */
	pthread_mutex_t	 p_lock;	/* guards what follows */
	pthread_cond_t	 p_go;		/* a run for the helpers, or stop */
	pthread_cond_t	 p_done;	/* a helper finished its part */
	void		(*p_fn)(void *, unsigned, unsigned);
	void		*p_arg;
	unsigned	 p_parts;	/* of the current run */
	unsigned long	 p_gen;		/* runs started */
	unsigned	 p_pending;	/* helper parts not yet done */
	bool		 p_stop;
	unsigned	 p_nthreads;
	pthread_t	 p_threads[CM_PAR_MAX - 1];
};

struct helper_arg {
	struct cm_par	*par;
	unsigned	 part;
};

static void *
par_main(void *arg)
{
	struct helper_arg *h = arg;
	struct cm_par *p = h->par;
	unsigned part = h->part;
	unsigned long seen = 0;

	free(h);
	pthread_mutex_lock(&p->p_lock);
	for (;;) {
		while (!p->p_stop && p->p_gen == seen)
			pthread_cond_wait(&p->p_go, &p->p_lock);
		if (p->p_stop)
			break;
		seen = p->p_gen;
		if (part < p->p_parts) {
			void (*fn)(void *, unsigned, unsigned) = p->p_fn;
			void *fa = p->p_arg;
			unsigned n = p->p_parts;

			pthread_mutex_unlock(&p->p_lock);
			fn(fa, part, n);
			pthread_mutex_lock(&p->p_lock);
			if (--p->p_pending == 0)
				pthread_cond_signal(&p->p_done);
		}
	}
	pthread_mutex_unlock(&p->p_lock);
	return NULL;
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
	struct helper_arg *h;

	if (helpers > CM_PAR_MAX - 1)
		helpers = CM_PAR_MAX - 1;
	p = cm_calloc(1, sizeof(*p));
	pthread_mutex_init(&p->p_run, NULL);
	pthread_mutex_init(&p->p_lock, NULL);
	pthread_cond_init(&p->p_go, NULL);
	pthread_cond_init(&p->p_done, NULL);
	for (; p->p_nthreads < helpers; p->p_nthreads++) {
		h = cm_malloc(sizeof(*h));
		h->par = p;
		h->part = p->p_nthreads + 1;
		if (pthread_create(&p->p_threads[p->p_nthreads], NULL, par_main, h) != 0) {
			free(h);
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
	pthread_mutex_lock(&p->p_lock);
	p->p_stop = true;
	pthread_cond_broadcast(&p->p_go);
	pthread_mutex_unlock(&p->p_lock);
	for (i = 0; i < p->p_nthreads; i++)
		pthread_join(p->p_threads[i], NULL);
	pthread_cond_destroy(&p->p_done);
	pthread_cond_destroy(&p->p_go);
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
	unsigned n;

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
	p->p_gen++;
	pthread_cond_broadcast(&p->p_go);
	pthread_mutex_unlock(&p->p_lock);
	fn(arg, 0, n);
	pthread_mutex_lock(&p->p_lock);
	while (p->p_pending > 0)
		pthread_cond_wait(&p->p_done, &p->p_lock);
	pthread_mutex_unlock(&p->p_lock);
	pthread_mutex_unlock(&p->p_run);
}
