/* SPDX-License-Identifier: ISC */
/*
 * Group commit. Requests that write hand their work to one writer thread
 * and their connection is suspended. The writer takes every job waiting,
 * runs them in one transaction, commits once (one fsync for all of them),
 * and only then resumes the connections, whose kept replies are sent. A
 * write is acknowledged only after its commit is durable, and many
 * requests share each fsync.
 *
 * A failing job must be undone alone. The jobs run first without
 * savepoints, because a savepoint makes SQLCipher encrypt every page it
 * journals (a third of the writer's time): the domain refuses before it
 * writes, and that is checked, not assumed. If a job fails after writing
 * anything, or the store drops the transaction, the batch is rolled back
 * and run again from its first job, each in a savepoint of its own. A job
 * runs again whole, with its reply replaced; nothing of the first run is
 * kept.
 *
 * A batch that fails as a whole follows the one retry rule,
 * cm_retry_again(): a busy store runs it again after a pause; a commit
 * whose answer was lost runs again only the jobs that carry their request
 * id, which then find themselves done or do themselves now, and answers
 * the others "outcome_unknown".
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/app.h"
#include "consentd/util.h"
#include "consentd/worker.h"
#include "http_int.h"

#define WRITER_BATCH_MAX	512

void
cm_req_defer(struct cm_request *rq, cm_result (*fn)(struct cm_request *, void *),
    void *arg, void (*arg_free)(void *), bool replayable)
{
	struct writer *w = &rq->rq_srv->sv_writer;
	struct write_job *j;

	pthread_mutex_lock(&w->wr_lock);
	if (w->wr_stop || !w->wr_running) {
		/* Shutting down: the writer takes no more work. */
		pthread_mutex_unlock(&w->wr_lock);
		if (arg_free != NULL)
			arg_free(arg);
		cm_reply_error(rq, 503, "draining", NULL, "the server is shutting down");
		return;
	}
	j = cm_calloc(1, sizeof(*j));
	j->wj_rq = rq;
	j->wj_fn = fn;
	j->wj_arg = arg;
	j->wj_arg_free = arg_free;
	j->wj_replay = replayable;
	atomic_store(&rq->rq_deferred, true);
	MHD_suspend_connection(rq->rq_conn);
	if (w->wr_tail != NULL)
		w->wr_tail->wj_next = j;
	else
		w->wr_head = j;
	w->wr_tail = j;
	pthread_mutex_unlock(&w->wr_lock);
	cm_worker_wake(w->wr_worker);
}

/*
 * Runs JOBS in the open transaction (RC: how it opened), each in a
 * savepoint when SP; the result of the batch so far in *RC. Without SP,
 * false as soon as a job failed after writing or the transaction was
 * dropped: the caller rolls back and runs them all again with savepoints.
 */
static bool
writer_jobs(struct cm_app *app, struct write_job *jobs, bool sp, cm_result *rc)
{
	struct write_job *j;
	int64_t before = 0;

	for (j = jobs; j != NULL; j = j->wj_next) {
		if (j->wj_over)
			continue;
		j->wj_rq->rq_in_writer = true;
		if (*rc != CM_OK) {
			cm_reply_store_error(j->wj_rq, *rc);
			j->wj_rc = *rc;
			continue;
		}
		if (sp && (j->wj_rc = cm_app_job_begin(app)) != CM_OK) {
			*rc = j->wj_rc;
			cm_reply_store_error(j->wj_rq, *rc);
			continue;
		}
		if (!sp)
			before = cm_app_job_writes(app);
		j->wj_rc = j->wj_fn(j->wj_rq, j->wj_arg);
		if (!sp) {
			if (!cm_app_in_write(app) ||
			    (j->wj_rc != CM_OK && cm_app_job_writes(app) != before))
				return false;
			continue;
		}
		/*
		 * A job that could not be kept or undone alone, or a transaction
		 * the store dropped, means the batch can no longer be trusted:
		 * nothing of it is committed and every request of it answers 503.
		 */
		if (cm_app_job_end(app, j->wj_rc == CM_OK) != CM_OK)
			*rc = CM_IOERR;
	}
	return true;
}

/* One try of the batch's jobs still to run, in one transaction: its commit's result. */
static cm_result
writer_try(struct cm_server *sv, struct write_job *jobs)
{
	struct cm_app *app = sv->sv_app;
	cm_result rc;

	rc = cm_app_batch_begin(app);
	if (!writer_jobs(app, jobs, false, &rc)) {
		/*
		 * A job wrote and failed: roll it all back (cm_app_batch_end()
		 * answers the CM_IOERR it is given), then one savepoint a job.
		 */
		atomic_fetch_add_explicit(&sv->sv_batch_reruns, 1, memory_order_relaxed);
		if ((rc = cm_app_batch_end(app, CM_IOERR)) == CM_IOERR)
			rc = cm_app_batch_begin(app);
		(void)writer_jobs(app, jobs, true, &rc);
	}
	return cm_app_batch_end(app, rc);
}

static void
writer_batch(struct cm_server *sv, struct write_job *jobs)
{
	struct write_job *j, *next;
	struct cm_retry retry;
	int64_t t0 = cm_time_mono_us(), njobs = 0;
	bool replay;
	cm_result rc;

	for (j = jobs; j != NULL; j = j->wj_next)
		njobs++;
	cm_retry_begin(&retry);
	while ((rc = writer_try(sv, jobs)) != CM_OK) {
		replay = false;
		for (j = jobs; j != NULL; j = j->wj_next)
			replay = replay || (!j->wj_over && j->wj_replay);
		if (!cm_retry_again(&retry, rc, replay))
			break;
		atomic_fetch_add_explicit(&sv->sv_batch_retries[rc == CM_UNKNOWN], 1,
		    memory_order_relaxed);
		/* Made or not, a write without its request id must not be made twice. */
		for (j = jobs; rc == CM_UNKNOWN && j != NULL; j = j->wj_next)
			if (!j->wj_over && !j->wj_replay) {
				cm_reply_store_error(j->wj_rq, rc);
				j->wj_over = true;
			}
	}
	if (rc != CM_OK) {
		/* Nothing of the batch is acknowledged: no request may say otherwise. */
		for (j = jobs; j != NULL; j = j->wj_next)
			if (!j->wj_over)
				cm_reply_store_error(j->wj_rq, rc);
	}
	/* The batch's size and its time to a durable commit, for /metrics. */
	cm_hist_observe(&sv->sv_batch_jobs, njobs);
	cm_hist_observe(&sv->sv_batch_us, cm_time_mono_us() - t0);
	for (j = jobs; j != NULL; j = next) {
		next = j->wj_next;
		j->wj_rq->rq_in_writer = false;
		if (j->wj_arg_free != NULL)
			j->wj_arg_free(j->wj_arg);
		MHD_resume_connection(j->wj_rq->rq_conn);
		free(j);
	}
}

/*
 * The writer's work when woken: batches of up to WRITER_BATCH_MAX jobs
 * until none wait. On its last call (the server stopping, no job coming
 * after wr_stop) it runs what is left the same way.
 */
static void
writer_run(void *arg, bool last)
{
	struct cm_server *sv = arg;
	struct writer *w = &sv->sv_writer;
	struct write_job *jobs, *tail;
	int n;

	(void)last;
	for (;;) {
		pthread_mutex_lock(&w->wr_lock);
		if ((jobs = w->wr_head) == NULL) {
			pthread_mutex_unlock(&w->wr_lock);
			return;
		}
		tail = jobs;
		for (n = 1; tail->wj_next != NULL && n < WRITER_BATCH_MAX; n++)
			tail = tail->wj_next;
		w->wr_head = tail->wj_next;
		if (w->wr_head == NULL)
			w->wr_tail = NULL;
		tail->wj_next = NULL;
		pthread_mutex_unlock(&w->wr_lock);
		writer_batch(sv, jobs);
	}
}

int
writer_start(struct cm_server *sv)
{
	struct writer *w = &sv->sv_writer;

	pthread_mutex_init(&w->wr_lock, NULL);
	if ((w->wr_worker = cm_worker_start(writer_run, sv, 0)) == NULL) {
		pthread_mutex_destroy(&w->wr_lock);
		return -1;
	}
	w->wr_running = true;
	return 0;
}

void
writer_stop(struct cm_server *sv)
{
	struct writer *w = &sv->sv_writer;

	if (!w->wr_running)
		return;
	pthread_mutex_lock(&w->wr_lock);
	w->wr_stop = true;
	pthread_mutex_unlock(&w->wr_lock);
	cm_worker_stop(w->wr_worker);
	pthread_mutex_destroy(&w->wr_lock);
	w->wr_running = false;
}
