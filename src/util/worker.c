/* SPDX-License-Identifier: ISC */
/*
 * A background thread that sleeps on a condition variable (on the
 * monotonic clock, so a change of the wall clock neither wakes nor
 * starves it) until it is woken, its interval passes or it is stopped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "consentd/util.h"
#include "consentd/worker.h"

struct cm_worker {
	pthread_mutex_t	 w_lock;
	pthread_cond_t	 w_cond;
	pthread_t	 w_thread;
	void		(*w_fn)(void *, bool);
	void		*w_arg;
	unsigned	 w_interval_ms;
	bool		 w_woken;	/* a wake not yet served */
	bool		 w_stop;
};

static void
deadline(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *
worker_main(void *arg)
{
	struct cm_worker *w = arg;
	struct timespec ts;
	bool stop;

	for (;;) {
		pthread_mutex_lock(&w->w_lock);
		if (w->w_interval_ms > 0)
			deadline(&ts, w->w_interval_ms);
		while (!w->w_woken && !w->w_stop) {
			if (w->w_interval_ms == 0)
				pthread_cond_wait(&w->w_cond, &w->w_lock);
			else if (pthread_cond_timedwait(&w->w_cond, &w->w_lock, &ts) == ETIMEDOUT)
				break;
		}
		w->w_woken = false;
		stop = w->w_stop;
		pthread_mutex_unlock(&w->w_lock);
		w->w_fn(w->w_arg, stop);
		if (stop)
			return NULL;
	}
}

struct cm_worker *
cm_worker_start(void (*fn)(void *, bool), void *arg, unsigned interval_ms)
{
	struct cm_worker *w;
	pthread_condattr_t ca;

	w = cm_calloc(1, sizeof(*w));
	w->w_fn = fn;
	w->w_arg = arg;
	w->w_interval_ms = interval_ms;
	pthread_mutex_init(&w->w_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->w_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->w_thread, NULL, worker_main, w) != 0) {
		pthread_cond_destroy(&w->w_cond);
		pthread_mutex_destroy(&w->w_lock);
		free(w);
		return NULL;
	}
	return w;
}

void
cm_worker_wake(struct cm_worker *w)
{
	pthread_mutex_lock(&w->w_lock);
	w->w_woken = true;
	pthread_cond_signal(&w->w_cond);
	pthread_mutex_unlock(&w->w_lock);
}

void
cm_worker_stop(struct cm_worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->w_lock);
	w->w_stop = true;
	pthread_cond_signal(&w->w_cond);
	pthread_mutex_unlock(&w->w_lock);
	pthread_join(w->w_thread, NULL);
	pthread_cond_destroy(&w->w_cond);
	pthread_mutex_destroy(&w->w_lock);
	free(w);
}
