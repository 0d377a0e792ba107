/* SPDX-License-Identifier: ISC */
/*
 * Internals of src/http/: the per-request state and the server structure.
 * Only files in src/http/ include this header (and so <microhttpd.h>).
 */
#ifndef CONSENTD_HTTP_INT_H
#define CONSENTD_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <microhttpd.h>

#include "consentd/http.h"
#include "consentd/metrics.h"
#include "consentd/util.h"

struct route_stats {
	atomic_uint_fast64_t	rs_count[6];	/* by status class 0xx..5xx */
	atomic_uint_fast64_t	rs_us;		/* total handling time */
	struct cm_hist		rs_latency;	/* handling time, microseconds */
};

struct write_job {
	struct cm_request	*wj_rq;
	cm_result		(*wj_fn)(struct cm_request *, void *);
	void			*wj_arg;
	void			(*wj_arg_free)(void *);
	cm_result		 wj_rc;
	bool			 wj_replay;	/* carries its request id: see cm_retry_again() */
	bool			 wj_over;	/* answered for good; runs no more */
	struct write_job	*wj_next;
};

/* The writer thread of group commit. */
struct writer {
	struct cm_worker	*wr_worker;
	pthread_mutex_t		 wr_lock;
	struct write_job	*wr_head, *wr_tail;	/* guarded by wr_lock */
	bool			 wr_stop;		/* guarded by wr_lock */
	bool			 wr_running;
};

/* What a connection is doing, for its deadline (src/http/watch.c). */
enum watch_phase {
	WATCH_HEAD,		/* waiting for a request head */
	WATCH_BODY,		/* reading a body of bounded size */
	WATCH_STREAM,		/* reading an NDJSON body of any length */
	WATCH_STREAM_BUSY,	/* … and our handler is on a piece of it */
	WATCH_ANSWER,		/* the request is whole: no deadline */
	WATCH_CUT		/* past its deadline: being shut down */
};

struct conn_watch;

/* The connections and the thread that cuts those past their deadline. */
struct watchdog {
	struct cm_worker	*wd_worker;	/* NULL when not running */
	pthread_mutex_t		 wd_lock;
	struct conn_watch	*wd_head;	/* guarded by wd_lock */
	atomic_uint_fast64_t	 wd_cut;	/* connections cut, for metrics */
};

struct cm_server {
	struct MHD_Daemon	*sv_daemon;
	struct cm_router	*sv_router;
	const struct cm_route	*sv_routes;
	size_t			 sv_nroutes;
	struct route_stats	*sv_stats;	/* one per route, + 1 unmatched */
	struct cm_app		*sv_app;
	struct cm_server_opts	 sv_opts;
	int			 sv_listen_fd;
	atomic_int		 sv_inflight;
	struct MHD_Response	*sv_resp_413;	/* built once, shared */
	struct writer		 sv_writer;
	struct watchdog		 sv_watch;
	struct ratelimit	*sv_rate;	/* rate limits (ratelimit.c) */
	bool			 sv_tls;	/* serving TLS: HSTS on every reply */
	struct cm_hist		 sv_batch_jobs;	/* jobs in each group commit */
	struct cm_hist		 sv_batch_us;	/* each group commit's time */
	atomic_uint_fast64_t	 sv_batch_reruns;	/* … run again with savepoints */
	atomic_uint_fast64_t	 sv_batch_retries[2];	/* … run again: busy, outcome unknown */
	char			 sv_reqid_prefix[17];	/* of the ids we make */
	atomic_uint_fast64_t	 sv_reqid_next;	/* … and their counter */
};

struct cm_request {
	struct MHD_Connection	*rq_conn;
	struct cm_server	*rq_srv;
	struct conn_watch	*rq_watch;	/* the connection's deadline */
	const struct cm_route	*rq_route;
	size_t			 rq_route_index;
	const char		*rq_method;
	char			*rq_params[CM_ROUTE_MAX_PARAMS];
	size_t			 rq_nparams;
	struct cm_buf		 rq_body;
	json_t			*rq_json;
	char			 rq_client[65];	/* token name */
	uint32_t		 rq_scopes;
	char			 rq_actor[80];	/* for the audit log: "token:NAME" */
	char			 rq_subject[32];	/* a session's subject, or "" */
	char			 rq_session[72];	/* a session's id (secret), or "" */
	int64_t			 rq_token_id;	/* CM_AUTH_TOKEN: the token's row */
	bool			 rq_console;	/* rq_session is a console session */
	unsigned		 rq_status;
	/* X-Request-Id: the client's when acceptable, else one we made */
	char			 rq_reqid[CM_REQUEST_ID_MAX + 1];
	int64_t			 rq_start_us;
	size_t			 rq_target_len;	/* bytes of the request-target */
	bool			 rq_too_large;
	bool			 rq_started;	/* first call seen */
	bool			 rq_close;	/* reply with Connection: close */
	bool			 rq_replied;
	bool			 rq_ndjson;	/* body streamed to r_chunk */
	bool			 rq_stream_checked;	/* token and query checked */
	bool			 rq_stream_ok;	/* … and both do: pieces go on */
	/*
	 * Waiting for group commit. Set by the request's thread before the job
	 * is queued; from then until the writer resumes the connection the
	 * writer thread owns the rest of the request, so the request's thread
	 * tests this first and reads nothing else of it.
	 */
	atomic_bool		 rq_deferred;
	bool			 rq_in_writer;	/* replies are kept, not queued */
	unsigned		 rq_kept_status;	/* the kept reply */
	char			*rq_kept_body;
	size_t			 rq_kept_len;
	const char		*rq_kept_ctype;
	void			*rq_state;
	void			(*rq_state_free)(void *);
	/* Fields for the access-log line: ,"key":"value"… (cm_req_log_field). */
	char			 rq_logf[512];
	size_t			 rq_logf_len;
	/* Decoded query values, cached on first lookup. */
	char			*rq_qcache_name[8];
	char			*rq_qcache_val[8];
	size_t			 rq_nqcache;
};

/*
 * Sets RQ's request id: the X-Request-Id the client sent when it is 1 to
 * CM_REQUEST_ID_MAX characters of the set cm_request_id_valid() takes,
 * else a new one (src/http/request.c).
 */
void	req_id_assign(struct cm_request *);

/*
 * Sets up the server's histograms and the prefix of the request ids it
 * makes (src/http/metrics.c).
 */
void	server_metrics_init(struct cm_server *);

/* Replies with a prepared, shared response. */
void	req_queue(struct cm_request *, unsigned status, struct MHD_Response *);
/* Adds the headers every response carries. */
void	req_common_headers(struct MHD_Response *);
/*
 * Queues R (a new response, destroyed here) with CTYPE, Cache-Control:
 * no-store and the common headers, and Connection: close when the request
 * is marked rq_close (libmicrohttpd then closes the connection after the
 * reply, discarding whatever of the request it has not read).
 */
void	req_send(struct cm_request *, unsigned status, struct MHD_Response *,
	    const char *ctype);
/* req_send() with Cache-Control CACHE (NULL: no-store). */
void	req_send_cache(struct cm_request *, unsigned status, struct MHD_Response *,
	    const char *ctype, const char *cache);
/* Starts and stops the writer thread (src/http/writer.c). */
int	writer_start(struct cm_server *);
void	writer_stop(struct cm_server *);
/* Queues the reply kept by a deferred request. */
void	req_send_kept(struct cm_request *);

/* Starts and stops the watchdog thread (src/http/watch.c). */
int	watch_start(struct cm_server *);
void	watch_stop(struct cm_server *);
/* MHD_OPTION_NOTIFY_CONNECTION: follows each connection from start to close. */
void	watch_notify(void *cls, struct MHD_Connection *, void **socket_context,
	    enum MHD_ConnectionNotificationCode);
/* The connection's watch (borrowed until it closes), or NULL. */
struct conn_watch *watch_of(struct MHD_Connection *);
/*
 * Moves the connection into PHASE. Returns false when the watchdog has cut
 * it: the caller then goes no further with the request. A NULL watch is
 * never cut.
 */
bool	watch_enter(struct conn_watch *, enum watch_phase);
/* Enters WATCH_STREAM with a new count of bytes and time; as watch_enter. */
bool	watch_stream_start(struct conn_watch *);
/* A piece of LEN bytes of the stream arrived; our handler took BUSY_US on it. */
void	watch_stream_piece(struct conn_watch *, size_t len, int64_t busy_us);
/* The request is over: the next head is due so_header_timeout from now. */
void	watch_next_request(struct conn_watch *);

/* ---- rate limits (src/http/ratelimit.c) ---- */

struct ratelimit;

/* The budgets of O, for ROUTES (N of them); NULL when memory is short. */
struct ratelimit *rate_new(const struct cm_server_opts *o, const struct cm_route *routes,
	    size_t n);
void	rate_free(struct ratelimit *);
/* The default budgets into RATES (CM_RATE_NBUDGETS of them). */
void	rate_defaults(struct cm_rate *rates);
/*
 * For a routed request, before anything else is done for it: true when
 * its budgets let it through (spending them), else replies 429 with
 * Retry-After and returns false.
 */
bool	rate_admit(struct cm_request *);
/* RQ brought a credential that did not hold: spends its address's budget. */
void	rate_auth_failed(struct cm_request *);
/* Writes the count of 429s by budget. */
void	rate_metrics(struct ratelimit *, struct cm_buf *out);

/* ---- TLS (src/http/tls.c) ---- */

/*
 * For a server of O: adds MHD_USE_TLS to *FLAGS and the certificate
 * callback to ITEMS (an MHD_OPTION_ARRAY of two, ended) when O serves TLS;
 * else leaves ITEMS empty. -1 with the reason in ERR when it cannot.
 */
int	tls_options(const struct cm_server_opts *o, struct MHD_OptionItem items[2],
	    unsigned *flags, char *err, size_t errlen);

/* ---- authentication (src/http/auth.c) ---- */

/*
 * Checks that every route of ROUTES (N of them) has a known r_auth and
 * asks for credentials when it names a scope. Returns 0, or -1 with the
 * first that does not in ERR.
 */
int	auth_routes_check(const struct cm_route *, size_t n, char *err, size_t errlen);
/*
 * Authenticates RQ as its route's kind says: fills the caller (rq_client,
 * rq_scopes, rq_actor) and returns true, or replies 401, 403 or 503 and
 * returns false.
 */
bool	auth_request(struct cm_request *);
/* auth_request() without the reply, for a streamed body before its first piece. */
bool	auth_quiet(struct cm_request *);

/* cm_req_query_check() without the reply: true when the query is acceptable. */
bool	req_query_valid(struct cm_request *, const char *const *allowed);

/* Frees a request's state. */
void	req_free(struct cm_request *);

#endif
