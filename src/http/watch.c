/* SPDX-License-Identifier: ISC */
/*
 * Deadlines for slow clients. libmicrohttpd's only timeout is an idle one,
 * which every byte resets, so a client trickling a byte every few seconds
 * holds its connection for ever. Here each connection is followed from
 * libmicrohttpd's STARTED notification to its CLOSED one, through the phases
 * of its current request (set by the access handler and the completion
 * callback with atomics), and a watchdog thread shuts down the socket of a
 * connection that misses its deadline:
 *
 *   head    from the connection's start, or the end of its previous
 *           request, to a complete request head: so_header_timeout;
 *   body    from the same start to the end of a body of bounded size:
 *           so_request_timeout;
 *   stream  an NDJSON body, of any length, must bring so_min_rate bytes a
 *           second over each so_header_timeout seconds of it, not counting
 *           the time our own handler spends on its pieces;
 *   answer  the request is whole: no deadline of ours (a write waiting for
 *           group commit must never be cut; sending is left to the idle
 *           timeout).
 *
 * libmicrohttpd calls CLOSED before it closes the socket, and the watchdog
 * and that callback hold one mutex, so the watchdog never shuts down a
 * descriptor that has been closed or reused. A phase change and a cut are
 * one compare-and-swap each: when the watchdog cuts a connection, the
 * request's thread sees it and goes no further (no handler runs).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "consentd/worker.h"
#include "http_int.h"

#define WATCH_TICK_MS	250

struct conn_watch {
	struct conn_watch	*cw_prev, *cw_next;	/* guarded by wd_lock */
	int			 cw_fd;
	atomic_int		 cw_phase;	/* enum watch_phase */
	atomic_int_fast64_t	 cw_since_us;	/* the current request's start */
	atomic_int_fast64_t	 cw_body_us;	/* a stream's start */
	atomic_uint_fast64_t	 cw_bytes;	/* bytes of the stream so far */
	atomic_int_fast64_t	 cw_busy_us;	/* time our handler spent on it */
	/* The current window of a stream; the watchdog's alone (wd_lock). */
	int64_t			 cw_win_us;
	uint64_t		 cw_win_bytes;
	int64_t			 cw_win_busy_us;
};

void
watch_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct cm_server *sv = cls;
	struct watchdog *wd = &sv->sv_watch;
	struct conn_watch *cw = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL)
			return;
		cw = cm_calloc(1, sizeof(*cw));
		cw->cw_fd = ci->connect_fd;
		atomic_store(&cw->cw_since_us, cm_time_mono_us());
		atomic_store(&cw->cw_phase, WATCH_HEAD);
		pthread_mutex_lock(&wd->wd_lock);
		cw->cw_next = wd->wd_head;
		if (wd->wd_head != NULL)
			wd->wd_head->cw_prev = cw;
		wd->wd_head = cw;
		pthread_mutex_unlock(&wd->wd_lock);
		*socket_context = cw;
		return;
	}
	if (cw == NULL)
		return;
	pthread_mutex_lock(&wd->wd_lock);
	if (cw->cw_prev != NULL)
		cw->cw_prev->cw_next = cw->cw_next;
	else
		wd->wd_head = cw->cw_next;
	if (cw->cw_next != NULL)
		cw->cw_next->cw_prev = cw->cw_prev;
	pthread_mutex_unlock(&wd->wd_lock);
	*socket_context = NULL;
	free(cw);
}

struct conn_watch *
watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

bool
watch_enter(struct conn_watch *cw, enum watch_phase phase)
{
	int old;

	if (cw == NULL)
		return true;
	old = atomic_load(&cw->cw_phase);
	do {
		if (old == WATCH_CUT)
			return false;
	} while (!atomic_compare_exchange_weak(&cw->cw_phase, &old, (int)phase));
	return true;
}

bool
watch_stream_start(struct conn_watch *cw)
{
	if (cw == NULL)
		return true;
	atomic_store(&cw->cw_body_us, cm_time_mono_us());
	atomic_store(&cw->cw_bytes, 0);
	atomic_store(&cw->cw_busy_us, 0);
	return watch_enter(cw, WATCH_STREAM);
}

void
watch_next_request(struct conn_watch *cw)
{
	if (cw == NULL)
		return;
	atomic_store(&cw->cw_since_us, cm_time_mono_us());
	(void)watch_enter(cw, WATCH_HEAD);
}

void
watch_stream_piece(struct conn_watch *cw, size_t len, int64_t busy_us)
{
	if (cw == NULL)
		return;
	atomic_fetch_add(&cw->cw_bytes, (uint64_t)len);
	atomic_fetch_add(&cw->cw_busy_us, busy_us);
}

/* Why CW (in PHASE) is past its deadline at NOW, or NULL while it is not. */
static const char *
watch_overdue(const struct cm_server_opts *o, struct conn_watch *cw, int phase, int64_t now)
{
	int64_t since = atomic_load(&cw->cw_since_us), busy, t;
	int64_t window = (int64_t)o->so_header_timeout * 1000000;
	uint64_t bytes;

	switch (phase) {
	case WATCH_HEAD:
		return now - since > window ? "head" : NULL;
	case WATCH_BODY:
		return now - since > (int64_t)o->so_request_timeout * 1000000 ? "body" : NULL;
	case WATCH_STREAM:
		if (cw->cw_win_us < atomic_load(&cw->cw_body_us)) {
			/* A new stream: its first window starts with it. */
			cw->cw_win_us = atomic_load(&cw->cw_body_us);
			cw->cw_win_bytes = 0;
			cw->cw_win_busy_us = 0;
		}
		busy = atomic_load(&cw->cw_busy_us);
		t = now - cw->cw_win_us - (busy - cw->cw_win_busy_us);
		if (t < window)
			return NULL;
		bytes = atomic_load(&cw->cw_bytes);
		if ((bytes - cw->cw_win_bytes) * 1000000 < (uint64_t)o->so_min_rate * (uint64_t)t)
			return "stream";
		cw->cw_win_us = now;
		cw->cw_win_bytes = bytes;
		cw->cw_win_busy_us = busy;
		return NULL;
	default:
		return NULL;
	}
}

static void
watch_sweep(struct cm_server *sv)
{
	struct watchdog *wd = &sv->sv_watch;
	struct conn_watch *cw;
	const char *why;
	int64_t now = cm_time_mono_us();
	int phase;

	for (cw = wd->wd_head; cw != NULL; cw = cw->cw_next) {
		phase = atomic_load(&cw->cw_phase);
		if ((why = watch_overdue(&sv->sv_opts, cw, phase, now)) == NULL)
			continue;
		/* Unless the request's thread moved on meanwhile, it is cut. */
		if (!atomic_compare_exchange_strong(&cw->cw_phase, &phase, WATCH_CUT))
			continue;
		shutdown(cw->cw_fd, SHUT_RDWR);
		atomic_fetch_add(&wd->wd_cut, 1);
		cm_log(CM_LOG_INFO, "slow_client", ",\"phase\":\"%s\"", why);
	}
}

/* Every WATCH_TICK_MS: cut what is overdue (nothing on the last call). */
static void
watch_tick(void *arg, bool last)
{
	struct cm_server *sv = arg;
	struct watchdog *wd = &sv->sv_watch;

	if (last)
		return;
	pthread_mutex_lock(&wd->wd_lock);
	watch_sweep(sv);
	pthread_mutex_unlock(&wd->wd_lock);
}

int
watch_start(struct cm_server *sv)
{
	struct watchdog *wd = &sv->sv_watch;

	pthread_mutex_init(&wd->wd_lock, NULL);
	if ((wd->wd_worker = cm_worker_start(watch_tick, sv, WATCH_TICK_MS)) == NULL) {
		pthread_mutex_destroy(&wd->wd_lock);
		return -1;
	}
	return 0;
}

void
watch_stop(struct cm_server *sv)
{
	struct watchdog *wd = &sv->sv_watch;

	if (wd->wd_worker == NULL)
		return;
	cm_worker_stop(wd->wd_worker);
	wd->wd_worker = NULL;
	pthread_mutex_destroy(&wd->wd_lock);
}
