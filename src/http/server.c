/* SPDX-License-Identifier: ISC */
/*
 * The libmicrohttpd server: an internal thread pool over epoll, one
 * listening socket we bind ourselves (so port 0 works and the bound port is
 * known), limits on connections, per-IP connections, header memory, body
 * size and idle time, deadlines for slow clients (watch.c), and the request
 * life cycle: check the head's framing and size, match the route, read the
 * body, authenticate (auth.c), check the query against the route's
 * parameters and the content type, parse JSON strictly, call the handler
 * (a GET that needs credentials inside one read snapshot), log one access
 * line. The response is queued on a call after the first, which keeps
 * keep-alive connections open (MHD 0.9.75 closes a connection whose
 * response is queued on the first call).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consentd/app.h"
#include "consentd/par.h"
#include "http_int.h"

void
cm_server_opts_default(struct cm_server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->so_host = NULL;
	o->so_port = 8080;
	o->so_threads = 0;
	o->so_max_body = 4 * 1024 * 1024;
	o->so_max_header = 32 * 1024;
	o->so_max_uri = 8 * 1024;
	o->so_max_conns = 1024;
	o->so_max_conns_per_ip = 256;
	o->so_idle_timeout = 30;
	o->so_header_timeout = 10;
	o->so_request_timeout = 60;
	o->so_min_rate = 1024;
	o->so_drain_timeout = 30;
	o->so_access_log = true;
	rate_defaults(o->so_rate);
}

static void CM_PRINTF(2, 0)
server_mhd_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512], esc[600];

	(void)arg;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	cm_log(CM_LOG_WARN, "http_server", ",\"msg\":\"%s\"",
	    cm_json_escape(esc, sizeof(esc), msg));
}

/*
 * Keeps the path and query exactly as sent: the router decodes each path
 * segment itself, so that an escaped "/" stays inside a parameter, and
 * query values are decoded on lookup.
 */
static size_t
server_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* True when the Content-Type is application/json, optionally with charset=utf-8. */
static bool
content_type_json(const char *ct)
{
	const char *p;

	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0)
		return false;
	p = ct + 16;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return true;
	if (*p++ != ';')
		return false;
	while (*p == ' ')
		p++;
	return strncasecmp(p, "charset=utf-8", 13) == 0 && p[13 + strspn(p + 13, " ")] == '\0';
}

static bool
content_type_ndjson(const char *ct)
{
	return ct != NULL && strncasecmp(ct, "application/x-ndjson", 20) == 0 &&
	    (ct[20] == '\0' || ct[20] == ';' || ct[20] == ' ');
}

/*
 * For a streamed body, before the first piece is handed on: whether the
 * credentials and the query do. Never replies; the last call does, having
 * read and dropped the body.
 */
static bool
server_stream_allowed(struct cm_request *rq)
{
	return auth_quiet(rq) && req_query_valid(rq, rq->rq_route->r_query);
}

static void server_dispatch_in(struct cm_request *);

/*
 * The last call for a request: everything has been read. A GET that needs a
 * token reads the token and whatever the handler reads in one snapshot:
 * one read transaction (one set of file locks) per request, not one for
 * the token and another for the answer. GET handlers never write.
 */
static void
server_dispatch(struct cm_request *rq)
{
	const struct cm_route *rt = rq->rq_route;
	struct cm_app *app = rq->rq_srv->sv_app;
	bool snapshot = false;

	/*
	 * Without a snapshot (the store failing) the request goes on as any
	 * other: the credentials are checked first, so a bad token is still a
	 * 401, and the handler's own read answers 503.
	 */
	if (!rq->rq_ndjson && strcmp(rt->r_method, "GET") == 0 && rt->r_auth != CM_AUTH_NONE)
		snapshot = cm_app_read_begin(app) == CM_OK;
	server_dispatch_in(rq);
	if (snapshot)
		cm_app_read_end(app);
}

static void
server_dispatch_in(struct cm_request *rq)
{
	const struct cm_route *rt = rq->rq_route;
	json_error_t je;

	if (rq->rq_ndjson) {
		/* Streamed: checked before the first piece was handed on. */
		if (!rq->rq_stream_ok && (!auth_request(rq) ||
		    !cm_req_query_check(rq, rt->r_query)))
			return;
		rt->r_fn(rq);
		if (!rq->rq_replied)
			cm_reply_error(rq, 500, "internal", NULL, "internal error");
		return;
	}
	if (!auth_request(rq))
		return;
	if (rq->rq_too_large) {
		cm_reply_error(rq, 413, "body_too_large", NULL,
		    "the request body is larger than %zu bytes", rq->rq_srv->sv_opts.so_max_body);
		return;
	}
	if (!cm_req_query_check(rq, rt->r_query))
		return;
	if (rt->r_flags & CM_ROUTE_JSON_BODY) {
		if (!content_type_json(MHD_lookup_connection_value(rq->rq_conn,
		    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
			cm_reply_error(rq, 415, "unsupported_media_type", NULL,
			    "send the body as application/json");
			return;
		}
		rq->rq_json = json_loadb(rq->rq_body.b_data ? rq->rq_body.b_data : "",
		    rq->rq_body.b_len, JSON_REJECT_DUPLICATES, &je);
		if (rq->rq_json == NULL) {
			/* jansson's text never quotes the input beyond a token. */
			cm_reply_error(rq, 400, "invalid_json", NULL,
			    "the body is not valid JSON (line %d, column %d)",
			    je.line, je.column);
			return;
		}
		if (!json_is_object(rq->rq_json)) {
			cm_reply_error(rq, 400, "invalid_json", NULL,
			    "the body must be a JSON object");
			return;
		}
	} else if (rq->rq_body.b_len > 0 && !(rt->r_flags & CM_ROUTE_RAW_BODY)) {
		cm_reply_error(rq, 400, "unexpected_body", NULL,
		    "this request takes no body");
		return;
	}
	rt->r_fn(rq);
	if (!atomic_load(&rq->rq_deferred) && !rq->rq_replied) {
		cm_log(CM_LOG_ERROR, "handler_no_reply", ",\"route\":\"%s\"", rt->r_pattern);
		cm_reply_error(rq, 500, "internal", NULL, "internal error");
	}
}

/* What the head's fields say about the message's framing. */
struct head_scan {
	unsigned	hs_content_length;	/* Content-Length fields */
	unsigned	hs_transfer_encoding;	/* Transfer-Encoding fields */
	unsigned	hs_host;		/* Host fields */
	bool		hs_chunked;		/* the one Transfer-Encoding is "chunked" */
	bool		hs_bad_name;		/* a name that is not an RFC 9110 token */
};

/* True when C may appear in a field name (RFC 9110 §5.1: a token). */
static bool
head_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static enum MHD_Result
head_visit(void *arg, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct head_scan *hs = arg;
	const unsigned char *p;

	(void)kind;
	if (*key == '\0')
		hs->hs_bad_name = true;
	for (p = (const unsigned char *)key; *p != '\0'; p++)
		if (!head_tchar(*p))
			hs->hs_bad_name = true;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		hs->hs_content_length++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		hs->hs_host++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		hs->hs_transfer_encoding++;
		hs->hs_chunked = value != NULL && strcasecmp(value, "chunked") == 0;
	}
	return MHD_YES;
}

/*
 * The first call, before routing: refuses a head whose message length is
 * ambiguous (RFC 9112 §6.1, §6.3), an HTTP version other than 1.0 and 1.1,
 * a missing or repeated Host, and a request-target or head over the
 * configured limits. Each refusal closes the connection: whatever follows
 * the head is never read, so nothing hidden in a body can run as a request
 * of its own. Returns false when it replied.
 */
static bool
server_check_head(struct cm_request *rq, const char *version)
{
	const struct cm_server_opts *o = &rq->rq_srv->sv_opts;
	const union MHD_ConnectionInfo *ci;
	struct head_scan hs;
	bool http10;

	rq->rq_close = true;
	if (strcmp(version, MHD_HTTP_VERSION_1_1) != 0 &&
	    strcmp(version, MHD_HTTP_VERSION_1_0) != 0) {
		cm_reply_error(rq, 505, "http_version_not_supported", NULL,
		    "only HTTP/1.0 and HTTP/1.1 are served");
		return false;
	}
	http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
	memset(&hs, 0, sizeof(hs));
	MHD_get_connection_values(rq->rq_conn, MHD_HEADER_KIND, head_visit, &hs);
	if (hs.hs_bad_name) {
		cm_reply_error(rq, 400, "invalid_header", NULL, "a header name holds white "
		    "space or another character a name may not have");
		return false;
	}
	if (hs.hs_content_length > 1 || hs.hs_transfer_encoding > 1 ||
	    (hs.hs_content_length > 0 && hs.hs_transfer_encoding > 0) ||
	    (http10 && hs.hs_transfer_encoding > 0)) {
		cm_reply_error(rq, 400, "ambiguous_length", NULL, "the message length is "
		    "ambiguous: send one Content-Length, or Transfer-Encoding: chunked "
		    "on HTTP/1.1, never both");
		return false;
	}
	if (hs.hs_transfer_encoding > 0 && !hs.hs_chunked) {
		cm_reply_error(rq, 501, "unsupported_transfer_encoding", NULL,
		    "the only transfer coding taken is chunked");
		return false;
	}
	if (hs.hs_host > 1) {
		cm_reply_error(rq, 400, "invalid_header", "host", "send one Host header");
		return false;
	}
	if (hs.hs_host == 0 && !http10) {
		cm_reply_error(rq, 400, "missing_header", "host",
		    "an HTTP/1.1 request needs a Host header");
		return false;
	}
	if (rq->rq_target_len > o->so_max_uri) {
		cm_reply_error(rq, 414, "uri_too_long", NULL,
		    "the request-target is longer than %zu bytes", o->so_max_uri);
		return false;
	}
	ci = MHD_get_connection_info(rq->rq_conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (ci != NULL && ci->header_size > o->so_max_header) {
		cm_reply_error(rq, 431, "headers_too_large", NULL,
		    "the request line and headers are larger than %zu bytes", o->so_max_header);
		return false;
	}
	rq->rq_close = false;
	return true;
}

static void
server_reply_match_error(struct cm_request *rq, enum cm_match m, const char *allow)
{
	struct MHD_Response *r;
	char *body;

	if (m == CM_MATCH_NO_METHOD) {
		body = cm_strdup("{\"error\":{\"code\":\"method_not_allowed\",\"message\":"
		    "\"this path does not take that method\",\"field\":null}}");
		r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
		if (r == NULL) {
			free(body);
			rq->rq_status = 500;
			return;
		}
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
		req_send(rq, 405, r, "application/json; charset=utf-8");
	} else if (m == CM_MATCH_BAD_PATH) {
		cm_reply_error(rq, 400, "invalid_path", NULL, "the path has a malformed %%-escape");
	} else {
		cm_reply_error(rq, 404, "not_found", NULL, "no such resource");
	}
}

/* A new request: its state lives from the request line to server_completed. */
static struct cm_request *
server_request_new(struct cm_server *sv, struct MHD_Connection *conn, const char *target)
{
	struct cm_request *rq;

	rq = cm_calloc(1, sizeof(*rq));
	rq->rq_conn = conn;
	rq->rq_srv = sv;
	rq->rq_start_us = cm_time_mono_us();
	rq->rq_route_index = sv->sv_nroutes;
	rq->rq_target_len = strlen(target);
	rq->rq_watch = watch_of(conn);
	atomic_fetch_add(&sv->sv_inflight, 1);
	return rq;
}

/*
 * Called once the request line is read, before the headers: the whole
 * request-target (path and query) is seen here, and only here.
 */
static void *
server_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	return server_request_new(cls, conn, uri);
}

/*
 * The first call for a request, with its head: check the head, match the
 * route, and decide how the body is read (streamed, bounded, or refused
 * at once when too large).
 */
static enum MHD_Result
server_begin(struct cm_request *rq, const char *url, const char *method,
    const char *version)
{
	struct cm_server *sv = rq->rq_srv;
	const char *cl;
	char allow[64];
	int64_t len;
	enum cm_match m;

	rq->rq_started = true;
	rq->rq_method = method;
	req_id_assign(rq);
	/* Answered at once; MHD discards the body and closes. */
	if (!server_check_head(rq, version)) {
		(void)watch_enter(rq->rq_watch, WATCH_ANSWER);
		return rq->rq_replied ? MHD_YES : MHD_NO;
	}
	m = cm_router_match(sv->sv_router, method, url, &rq->rq_route,
	    &rq->rq_route_index, rq->rq_params, &rq->rq_nparams, allow, sizeof(allow));
	if (m != CM_MATCH_OK) {
		rq->rq_route = NULL;
		rq->rq_route_index = sv->sv_nroutes;
		/* Answer at once; the body (if any) is not wanted. */
		server_reply_match_error(rq, m, allow);
		(void)watch_enter(rq->rq_watch, WATCH_ANSWER);
		return rq->rq_replied ? MHD_YES : MHD_NO;
	}
	/* Over a budget: 429 before any credential, body or store is touched. */
	if (!rate_admit(rq)) {
		(void)watch_enter(rq->rq_watch, WATCH_ANSWER);
		return rq->rq_replied ? MHD_YES : MHD_NO;
	}
	if ((rq->rq_route->r_flags & CM_ROUTE_NDJSON) &&
	    content_type_ndjson(MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE))) {
		rq->rq_ndjson = true;
		/* Any length: held to a rate, not to a deadline. */
		return watch_stream_start(rq->rq_watch) ? MHD_YES : MHD_NO;
	}
	cl = MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && (cm_parse_i64(cl, 0, INT64_MAX, &len) != 0 ||
	    (uint64_t)len > sv->sv_opts.so_max_body)) {
		/*
		 * Refuse before reading a byte of it; MHD closes the
		 * connection, so the body is never drained.
		 */
		rq->rq_too_large = true;
		cm_reply_error(rq, 413, "body_too_large", NULL,
		    "the request body is larger than %zu bytes", sv->sv_opts.so_max_body);
		(void)watch_enter(rq->rq_watch, WATCH_ANSWER);
		return MHD_YES;
	}
	/* Bounded: the whole request is due so_request_timeout from its start. */
	return watch_enter(rq->rq_watch, WATCH_BODY) ? MHD_YES : MHD_NO;
}

/*
 * A piece of a streamed body: check the credentials and the query once,
 * then hand each piece on (or drop it, when they do not do).
 */
static enum MHD_Result
server_stream_piece(struct cm_request *rq, const char *data, size_t len)
{
	int64_t t0;

	if (!rq->rq_stream_checked) {
		rq->rq_stream_checked = true;
		rq->rq_stream_ok = server_stream_allowed(rq);
	}
	if (!rq->rq_stream_ok) {
		watch_stream_piece(rq->rq_watch, len, 0);
		return MHD_YES;
	}
	/* Our own time on a piece never counts against the client. */
	if (!watch_enter(rq->rq_watch, WATCH_STREAM_BUSY))
		return MHD_NO;
	t0 = cm_time_mono_us();
	rq->rq_route->r_chunk(rq, data, len);
	watch_stream_piece(rq->rq_watch, len, cm_time_mono_us() - t0);
	(void)watch_enter(rq->rq_watch, WATCH_STREAM);
	return MHD_YES;
}

static enum MHD_Result
server_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct cm_server *sv = cls;
	struct cm_request *rq = *con_cls;
	enum MHD_Result res;

	if (rq == NULL)
		*con_cls = rq = server_request_new(sv, conn, url);
	if (!rq->rq_started)
		return server_begin(rq, url, method, version);
	if (atomic_load(&rq->rq_deferred)) {
		/* Resumed after group commit: the reply is durable, send it. */
		*upload_data_size = 0;
		if (!rq->rq_replied)
			req_send_kept(rq);
		return MHD_YES;
	}
	if (rq->rq_replied) {
		/* Already answered (routing error): discard any body. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0 && rq->rq_ndjson) {
		res = server_stream_piece(rq, upload_data, *upload_data_size);
		if (res == MHD_YES)
			*upload_data_size = 0;
		return res;
	}
	if (*upload_data_size > 0) {
		if (!rq->rq_too_large &&
		    rq->rq_body.b_len + *upload_data_size > sv->sv_opts.so_max_body) {
			rq->rq_too_large = true;
			cm_buf_free(&rq->rq_body);
		}
		if (!rq->rq_too_large)
			cm_buf_append(&rq->rq_body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* The request is whole: from here on it is never cut. */
	if (!watch_enter(rq->rq_watch, WATCH_ANSWER))
		return MHD_NO;
	server_dispatch(rq);
	if (atomic_load(&rq->rq_deferred))
		return MHD_YES;
	return rq->rq_replied ? MHD_YES : MHD_NO;
}

static void
server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct cm_server *sv = cls;
	struct cm_request *rq = *con_cls;
	const union MHD_ConnectionInfo *ci;
	struct route_stats *st;
	const char *route, *method;
	int64_t us;

	watch_next_request(watch_of(conn));
	if (rq == NULL)
		return;
	if (!rq->rq_replied) {
		/*
		 * Refused by libmicrohttpd itself: before our first call (a
		 * Content-Length it cannot parse, a head over its memory), or
		 * while reading a body (malformed chunked coding).
		 */
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
		rq->rq_status = ci != NULL ? ci->http_status : 0;
	}
	/* Refused before our first call: an id for its log line. */
	req_id_assign(rq);
	us = cm_time_mono_us() - rq->rq_start_us;
	st = &sv->sv_stats[rq->rq_route_index];
	atomic_fetch_add(&st->rs_count[rq->rq_status / 100 < 6 ? rq->rq_status / 100 : 0], 1);
	atomic_fetch_add(&st->rs_us, (uint64_t)us);
	cm_hist_observe(&st->rs_latency, us);
	if (sv->sv_opts.so_access_log) {
		route = rq->rq_route ? rq->rq_route->r_pattern : "(unmatched)";
		method = rq->rq_route ? rq->rq_route->r_method : "(other)";
		if (rq->rq_route == NULL && rq->rq_method != NULL && strlen(rq->rq_method) <= 7 &&
		    strspn(rq->rq_method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(rq->rq_method))
			method = rq->rq_method;
		cm_log(CM_LOG_INFO, "http", ",\"method\":\"%s\",\"route\":\"%s\",\"status\":%u,"
		    "\"us\":%lld,\"client\":\"%s\",\"request_id\":\"%s\"%s%s%s", method, route,
		    rq->rq_status, (long long)us, rq->rq_client, rq->rq_reqid,
		    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true",
		    rq->rq_replied || rq->rq_status == 0 ? "" :
		    ",\"answered_by\":\"libmicrohttpd\"", rq->rq_logf);
	}
	req_free(rq);
	*con_cls = NULL;
	atomic_fetch_sub(&sv->sv_inflight, 1);
}

/* Creates, binds and listens on HOST:PORT; returns the socket or -1. */
static int
server_listen(const char *host, int port, int *bound, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char portstr[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve listen address %s: %s",
		    host ? host : "*", gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 1024) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", host ? host : "*",
		    port, strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	if (ss.ss_family == AF_INET)
		*bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else
		*bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/*
 * libmicrohttpd's memory for one connection. It holds the request line and
 * the headers (each field and each query parameter also costs it a record
 * of 64 bytes) before our first call sees them, and answers 414 or 431
 * itself, in HTML, when they do not fit. So it gets room beyond our own
 * limits, so_max_uri and so_max_header, for a head over those to reach our
 * check and be answered in our envelope (docs/operations.md says how far).
 * It is zeroed between requests, so it is not made larger than that.
 */
static size_t
server_pool_size(const struct cm_server_opts *o)
{
	size_t head = o->so_max_header > o->so_max_uri ? o->so_max_header : o->so_max_uri;

	return 2 * head + 64 * 1024;
}

struct cm_server *
cm_server_start(const struct cm_server_opts *opts, struct cm_app *app,
    const struct cm_route *routes, size_t nroutes, int *port, char *err, size_t errlen)
{
	struct cm_server *sv;
	struct MHD_OptionItem tls[2];
	unsigned threads, flags;

	sv = cm_calloc(1, sizeof(*sv));
	sv->sv_opts = *opts;
	sv->sv_app = app;
	sv->sv_routes = routes;
	sv->sv_nroutes = nroutes;
	sv->sv_listen_fd = -1;
	sv->sv_stats = cm_calloc(nroutes + 1, sizeof(*sv->sv_stats));
	server_metrics_init(sv);
	if (auth_routes_check(routes, nroutes, err, errlen) != 0 ||
	    (sv->sv_router = cm_router_new(routes, nroutes, err, errlen)) == NULL)
		goto fail;
	if ((sv->sv_rate = rate_new(opts, routes, nroutes)) == NULL) {
		snprintf(err, errlen, "cannot allocate the rate-limit table");
		goto fail;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
	    MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
	if (tls_options(opts, tls, &flags, err, errlen) != 0)
		goto fail;
	sv->sv_tls = opts->so_tls != NULL;
	sv->sv_listen_fd = server_listen(opts->so_host, opts->so_port, port, err, errlen);
	if (sv->sv_listen_fd == -1)
		goto fail;
	threads = opts->so_threads;
	if (threads == 0)
		threads = cm_cpu_count() < 256 ? cm_cpu_count() : 256;
	/* The writer and the watchdog first: a request may arrive as soon as the daemon runs. */
	if (writer_start(sv) != 0) {
		snprintf(err, errlen, "cannot start the writer thread");
		goto fail;
	}
	if (watch_start(sv) != 0) {
		writer_stop(sv);
		snprintf(err, errlen, "cannot start the watchdog thread");
		goto fail;
	}
	sv->sv_daemon = MHD_start_daemon(flags, 0, NULL, NULL, server_access, sv,
	    MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, sv->sv_listen_fd,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, opts->so_max_conns,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->so_max_conns_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, opts->so_idle_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, server_pool_size(opts),
	    MHD_OPTION_URI_LOG_CALLBACK, server_uri_log, sv,
	    MHD_OPTION_NOTIFY_COMPLETED, server_completed, sv,
	    MHD_OPTION_NOTIFY_CONNECTION, watch_notify, sv,
	    MHD_OPTION_UNESCAPE_CALLBACK, server_unescape, NULL,
	    MHD_OPTION_ARRAY, tls,
	    MHD_OPTION_END);
	if (sv->sv_daemon == NULL) {
		watch_stop(sv);
		writer_stop(sv);
		snprintf(err, errlen, "cannot start the HTTP server (see the log above)");
		goto fail;
	}
	return sv;
fail:
	if (sv->sv_listen_fd != -1)
		close(sv->sv_listen_fd);
	cm_router_free(sv->sv_router);
	rate_free(sv->sv_rate);
	free(sv->sv_stats);
	free(sv);
	return NULL;
}

void
cm_server_stop(struct cm_server *sv)
{
	MHD_socket fd;
	int64_t deadline;

	if (sv == NULL)
		return;
	fd = MHD_quiesce_daemon(sv->sv_daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	deadline = cm_time_mono_us() + (int64_t)sv->sv_opts.so_drain_timeout * 1000000;
	while (atomic_load(&sv->sv_inflight) > 0 && cm_time_mono_us() < deadline)
		usleep(10000);
	if (atomic_load(&sv->sv_inflight) > 0)
		cm_log(CM_LOG_WARN, "drain_timeout", ",\"inflight\":%d",
		    atomic_load(&sv->sv_inflight));
	/* The writer finishes and resumes every suspended request first. */
	writer_stop(sv);
	MHD_stop_daemon(sv->sv_daemon);
	watch_stop(sv);
	cm_router_free(sv->sv_router);
	rate_free(sv->sv_rate);
	free(sv->sv_stats);
	free(sv);
}
