/* SPDX-License-Identifier: ISC */
/*
 * The HTTP layer: a libmicrohttpd server, a router from (method, path
 * pattern) to handler that knows nothing of the handlers' domain,
 * authentication of the kind each route declares (bearer tokens by scope
 * today), and request/response helpers built on jansson that give every
 * error the envelope {"error":{"code","message","field"}}. src/http/ is
 * the only code that includes <microhttpd.h>; it reaches the store only
 * through core (tokens) and the app (snapshots, group commit), and
 * includes no store header.
 */
#ifndef CONSENTD_HTTP_H
#define CONSENTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/common.h"

struct cm_app;
struct cm_request;

typedef void (*cm_handler_fn)(struct cm_request *);

/* Route flags. */
#define CM_ROUTE_JSON_BODY	0x01	/* body must be a JSON object */
#define CM_ROUTE_NDJSON		0x04	/* also takes application/x-ndjson, streamed
					   through r_chunk with no size limit */
#define CM_ROUTE_RAW_BODY	0x08	/* any body, kept as sent for the handler
					   (cm_req_body), which checks its type */

/*
 * How a route's caller proves who it is (src/http/auth.c). A new kind is a
 * value here and one function in the table of auth.c, which establishes
 * the caller (name, scopes, actor) from the request or refuses it.
 */
enum cm_auth_kind {
	CM_AUTH_NONE,		/* public: nothing is asked */
	CM_AUTH_BEARER,		/* Authorization: Bearer <API token>, with r_scope
				   (CM_SCOPE_NONE: any valid token) */
	CM_AUTH_SESSION,	/* a shopper's session cookie (CM_SESSION_COOKIE);
				   a method other than GET also needs the
				   session's CSRF token in X-CSRF-Token */
	CM_AUTH_TOKEN,		/* Authorization: Bearer <API token> only, never a
				   console session (signing in to the console) */
	CM_AUTH_CONSOLE,	/* a DPO console session cookie only
				   (CM_CONSOLE_COOKIE), CSRF token as a session's */
	CM_AUTH_NKINDS
};

/* The cookie that carries a shopper's session id. */
#define CM_SESSION_COOKIE	"consentd_session"

struct cm_route {
	const char	*r_method;	/* "GET", "POST", … */
	const char	*r_pattern;	/* "/v1/subjects/{id}" */
	enum cm_auth_kind r_auth;	/* how the caller authenticates */
	uint32_t	 r_scope;	/* CM_SCOPE_* it needs (CM_AUTH_NONE: none) */
	unsigned	 r_flags;	/* CM_ROUTE_* */
	cm_handler_fn	 r_fn;
	const char	*r_summary;	/* one line, for 'consentd routes' */
	/* CM_ROUTE_NDJSON: called with each piece of an NDJSON body as it
	 * arrives (after authentication); r_fn is called at the end. */
	void		(*r_chunk)(struct cm_request *, const char *, size_t);
	/*
	 * The query parameters the route takes, NULL-terminated; NULL: none.
	 * The server answers any other (400 unknown_parameter), and a repeated
	 * or badly escaped one (400 invalid_parameter), after authentication
	 * and before the handler or the first r_chunk call.
	 */
	const char *const *r_query;
};

#define CM_ROUTE_MAX_PARAMS	4

/* ---- router (src/http/router.c) ---------------------------------------- */

struct cm_router;

/*
 * Builds a router over ROUTES (N of them, borrowed for the router's
 * life). Returns NULL and writes ERR for a malformed or duplicate pattern.
 */
struct cm_router *cm_router_new(const struct cm_route *routes, size_t n,
	    char *err, size_t errlen);
void	cm_router_free(struct cm_router *);

enum cm_match { CM_MATCH_OK, CM_MATCH_NO_PATH, CM_MATCH_NO_METHOD, CM_MATCH_BAD_PATH };

/*
 * Matches METHOD and the raw (still percent-encoded) PATH. On CM_MATCH_OK
 * *ROUTE is set and PARAMS[0..*NPARAMS) hold the decoded {param} values,
 * which the caller frees. On CM_MATCH_NO_METHOD, ALLOW (size ALLOWLEN)
 * lists the methods the path has. CM_MATCH_BAD_PATH: undecodable escape.
 */
enum cm_match cm_router_match(const struct cm_router *, const char *method,
	    const char *path, const struct cm_route **route, size_t *index,
	    char **params, size_t *nparams, char *allow, size_t allowlen);

/* Decodes %XX escapes of S (LEN bytes) into a new string; NULL when an
 * escape is malformed or decodes to NUL. The caller frees. */
char	*cm_percent_decode(const char *s, size_t len);

/* ---- authentication (src/http/auth.c) ------------------------------------ */

/*
 * What a route of KIND asks, for 'consentd routes' when it names no scope:
 * "public", "token", …
 */
const char *cm_auth_name(enum cm_auth_kind);

/* ---- server (src/http/server.c) ---------------------------------------- */

/*
 * The rate-limit budgets (src/http/ratelimit.c), each a token bucket of
 * rt_count requests refilled over rt_seconds (so rt_count at once, then one
 * every rt_seconds / rt_count); rt_count 0: no limit.
 */
enum cm_rate_budget {
	CM_RATE_TOKEN,		/* per bearer token, every token route */
	CM_RATE_LINK,		/* per link, GET /p/{token} */
	CM_RATE_LINK_ADDR,	/* per client address, GET /p/{token} */
	CM_RATE_UNSUB,		/* per link, GET and POST /u/{token} */
	CM_RATE_UNSUB_ADDR,	/* per client address, /u/{token} */
	CM_RATE_VERIFY,		/* per request, POST /v1/dsr/{id}/verify */
	CM_RATE_VERIFY_ADDR,	/* per client address, the same route */
	CM_RATE_AUTH_FAIL,	/* failed authentications (401) per address */
	CM_RATE_NBUDGETS
};

struct cm_rate {
	unsigned	rt_count;
	unsigned	rt_seconds;
};

/* The budget's name: its flag without "--rate-", and its metrics label. */
const char *cm_rate_name(enum cm_rate_budget);
/* Parses "COUNT/SECONDS" (or "0": off) into *OUT; 0, or -1 when malformed. */
int	cm_rate_parse(const char *, struct cm_rate *out);

/*
 * TLS credentials (src/http/tls.c): a certificate chain and its private
 * key, read from PEM files, reloadable while the server runs.
 */
struct cm_tls;

/* Whether the libmicrohttpd this runs on can serve TLS. */
bool	cm_tls_supported(void);
/*
 * Reads CERT and KEY (paths, borrowed for the credentials' life). NULL
 * with the reason in ERR when a file cannot be read, is not PEM, or the
 * key is not the certificate's.
 */
struct cm_tls *cm_tls_load(const char *cert, const char *key, char *err, size_t errlen);
/*
 * Reads the files again and, when they hold a good pair, serves it to new
 * connections; connections already open keep theirs. -1 with the reason
 * in ERR, the pair served before kept.
 */
int	cm_tls_reload(struct cm_tls *, char *err, size_t errlen);
/* The SHA-256 fingerprint of the certificate served now (hex, 64 + 1 bytes). */
void	cm_tls_fingerprint(struct cm_tls *, char out[65]);
void	cm_tls_free(struct cm_tls *);

struct cm_server_opts {
	char		*so_host;		/* listen address */
	int		 so_port;		/* 0: ephemeral */
	unsigned	 so_threads;		/* worker threads; 0: one per core */
	size_t		 so_max_body;		/* bytes; larger bodies get 413 */
	size_t		 so_max_header;		/* bytes of request line + headers */
	size_t		 so_max_uri;		/* bytes of the request-target */
	unsigned	 so_max_conns;		/* total connections */
	unsigned	 so_max_conns_per_ip;
	unsigned	 so_idle_timeout;	/* seconds */
	unsigned	 so_header_timeout;	/* seconds to a complete request head */
	unsigned	 so_request_timeout;	/* seconds to the end of a bounded body */
	unsigned	 so_min_rate;		/* bytes/s of a streamed body */
	unsigned	 so_drain_timeout;	/* seconds to finish in-flight work */
	bool		 so_access_log;
	struct cm_rate	 so_rate[CM_RATE_NBUDGETS];	/* rate limits */
	struct cm_tls	*so_tls;		/* NULL: plain HTTP; borrowed */
};

void	cm_server_opts_default(struct cm_server_opts *);

struct cm_server;

/*
 * Binds and starts serving ROUTES for APP (both borrowed). Writes the bound
 * port into *PORT. Returns NULL and fills ERR on failure, among them a
 * route whose r_auth is unknown or that names a scope without asking for
 * credentials.
 */
struct cm_server *cm_server_start(const struct cm_server_opts *, struct cm_app *,
	    const struct cm_route *routes, size_t nroutes, int *port,
	    char *err, size_t errlen);

/*
 * Stops accepting connections, waits up to so_drain_timeout for requests
 * in flight to finish, then stops the worker threads and frees the server.
 */
void	cm_server_stop(struct cm_server *);

/* Writes Prometheus text for the server's counters into OUT. */
struct cm_buf;
void	cm_server_metrics(struct cm_server *, struct cm_buf *out);

/* ---- requests (src/http/request.c) ------------------------------------- */

struct cm_app	*cm_req_app(struct cm_request *);
const char	*cm_req_param(struct cm_request *, size_t i);
/* The parsed JSON body of a CM_ROUTE_JSON_BODY route (borrowed). */
json_t		*cm_req_json(struct cm_request *);
/*
 * The body's bytes exactly as received (LEN of them; borrowed for the
 * request's life): for a signature over them, or the body of a
 * CM_ROUTE_RAW_BODY route. Not for NDJSON routes.
 */
const char	*cm_req_body(struct cm_request *, size_t *len);
/*
 * The value of request header NAME (case-insensitive), or NULL. Borrowed
 * for the request's life.
 */
const char	*cm_req_header(struct cm_request *, const char *name);
/* The calling token's name, or NULL on a public route. */
const char	*cm_req_client(struct cm_request *);
uint32_t	 cm_req_scopes(struct cm_request *);
/*
 * Who acts, for the audit log: "token:NAME" for a bearer token; "" on a
 * public route. Borrowed for the request's life.
 */
const char	*cm_req_actor(struct cm_request *);
/*
 * The decoded value of query parameter NAME, or NULL when absent. A
 * malformed escape counts as a bad request: cm_req_query_check() reports it.
 */
const char	*cm_req_query(struct cm_request *, const char *name);
/*
 * Replies 400 unknown_parameter naming the first query parameter not in
 * ALLOWED (NULL-terminated), or 400 invalid_parameter for a malformed or
 * repeated one. Returns true when the query is acceptable. The server
 * already does this with the route's r_query before calling a handler.
 */
bool		 cm_req_query_check(struct cm_request *, const char *const *allowed);
/*
 * Reads query parameter NAME as an integer in [MIN, MAX] into *OUT. Absent:
 * *OUT = DEF, or when REQUIRED a 400 missing_parameter reply. Malformed:
 * 400 invalid_parameter. Returns true when *OUT is set.
 */
bool		 cm_req_query_int(struct cm_request *, const char *name, bool required,
		    int64_t min, int64_t max, int64_t def, int64_t *out);
/*
 * Adds "KEY":"VALUE" (or "KEY":null when VALUE is NULL) to the request's
 * line in the access log. KEY is 1-32 of a-z, 0-9 and _, and not a name the
 * line has already (method, route, status, …, or one added before); VALUE
 * is JSON-escaped and cut at 64 bytes. The caller vouches that VALUE is
 * never personal data: a policy's purpose or channel, a decision, a reason,
 * never anything only the client sent. Returns false, adding nothing, for a
 * bad or repeated KEY or when the line's 512 bytes of fields are full.
 */
bool		 cm_req_log_field(struct cm_request *, const char *key, const char *value);
/*
 * On a CM_AUTH_SESSION route: the subject the session acts for, and the
 * session's id (secret: for ending the session and its CSRF token only).
 * NULL elsewhere.
 */
const char	*cm_req_subject(struct cm_request *);
const char	*cm_req_session(struct cm_request *);
/*
 * The row id of the bearer token a CM_AUTH_TOKEN route was called with
 * (for starting a console session), or 0. On a route a console session
 * called (CM_AUTH_CONSOLE, or CM_AUTH_BEARER without a token),
 * cm_req_session() is that session's id and cm_req_console() is true.
 */
int64_t		 cm_req_token_id(struct cm_request *);
bool		 cm_req_console(struct cm_request *);
/* Whether the body is NDJSON (being or having been streamed to r_chunk). */
bool		 cm_req_ndjson(struct cm_request *);
/* Per-request state for a streaming handler; FREE_FN runs at the end. */
void		 cm_req_set_state(struct cm_request *, void *state, void (*free_fn)(void *));
void		*cm_req_state(struct cm_request *);
/* The server, for the metrics handler. */
struct cm_server *cm_req_server(struct cm_request *);

/*
 * The longest X-Request-Id taken from a client; a longer one, an empty
 * one, or one with a character outside A-Z a-z 0-9 and - _ . : + = / is
 * replaced by one the server makes (32 hex digits). '@' and spaces are
 * refused so that an e-mail address or a name never becomes an id, which
 * is echoed on the response and written to the access log.
 */
#define CM_REQUEST_ID_MAX	128
/* Whether S (LEN bytes) is an X-Request-Id the server takes as sent. */
bool		 cm_request_id_valid(const char *s, size_t len);
/* The request's id, as the X-Request-Id response header carries it. */
const char	*cm_req_id(struct cm_request *);

/* Whether a reply has been made (or kept, on the writer thread). */
bool	cm_req_replied(struct cm_request *);
/* Replies STATUS with OBJ as the body; steals the reference to OBJ. */
void	cm_reply_json(struct cm_request *, unsigned status, json_t *obj);
/* Replies with the error envelope; FIELD may be NULL. */
void	cm_reply_error(struct cm_request *, unsigned status, const char *code,
	    const char *field, const char *fmt, ...) CM_PRINTF(5, 6);
/*
 * Like cm_reply_error, with the members of EXTRA (an object, stolen, may
 * be NULL) added to the error object, e.g. {"subject_id": …}.
 */
void	cm_reply_error_with(struct cm_request *, unsigned status, const char *code,
	    const char *field, json_t *extra, const char *fmt, ...) CM_PRINTF(6, 7);
/* Replies with a copy of BODY (LEN bytes) as CONTENT_TYPE. */
void	cm_reply_bytes(struct cm_request *, unsigned status, const char *content_type,
	    const char *body, size_t len);
/*
 * Group commit: runs FN(RQ, ARG) on the server's writer thread, inside one
 * transaction shared with the writes of other requests (each in a
 * savepoint of its own), and sends FN's reply only once that transaction
 * is durable. FN replies as usual and returns CM_OK to keep its changes or
 * anything else to undo them; if the commit fails every reply becomes 503.
 * The connection is suspended meanwhile. ARG_FREE(ARG) runs afterwards.
 * FN may run more than once, each run's reply replacing the last: always
 * when the store was busy, and when a commit's answer was lost only if
 * REPLAYABLE (the write carries its request id, so a second run answers
 * the first's result); see cm_retry_again().
 */
void	cm_req_defer(struct cm_request *, cm_result (*fn)(struct cm_request *, void *),
	    void *arg, void (*arg_free)(void *), bool replayable);

/*
 * Replies with a copy of BODY (LEN bytes) as CONTENT_TYPE, with
 * Cache-Control CACHE (NULL: no-store) and the extra HEADERS: name, value,
 * name, value, …, NULL (may be NULL). For pages and redirects; never on
 * the writer thread of group commit.
 */
void	cm_reply_page(struct cm_request *, unsigned status, const char *content_type,
	    const char *body, size_t len, const char *cache, const char *const *headers);

/* Replies with LEN bytes read from FD (which the server then closes). */
void	cm_reply_fd(struct cm_request *, unsigned status, const char *content_type,
	    int fd, size_t len);
/* Bytes asked of a streamed body's reader at a time. */
#define CM_STREAM_BLOCK		(64 * 1024)
/*
 * Replies with a body of SIZE bytes (MHD_SIZE_UNKNOWN: until the end) that
 * READ_FN(ARG, BUF, MAX) produces as the client takes it: a count, 0 at
 * the end, or -1 to cut the connection short (the client sees a body
 * shorter than announced). FREE_FN(ARG) runs once the response is done,
 * whether it was sent or not.
 */
void	cm_reply_stream(struct cm_request *, unsigned status, const char *content_type,
	    uint64_t size, long (*read_fn)(void *, void *, size_t), void (*free_fn)(void *),
	    void *arg);
/*
 * Replies 503 for a store result: "outcome_unknown" for CM_UNKNOWN, else
 * "unavailable".
 */
void	cm_reply_store_error(struct cm_request *, cm_result);

/* ---- NDJSON bodies and answers (src/http/ndjson.c) -------------------------- */

#define CM_NDJSON_LINE_MAX	4096	/* bytes of a line, without its newline */

/* One complete line of an NDJSON body. */
struct cm_ndjson_line {
	const char	*nl_text;	/* its bytes, no newline; NULL when too long */
	size_t		 nl_len;
	uint64_t	 nl_lineno;	/* from 1; blank lines are not counted */
	bool		 nl_too_long;	/* over CM_NDJSON_LINE_MAX: not kept */
};

/*
 * The state of a streamed NDJSON request: the line carried from one piece
 * of the body to the next, and the answers spooled to a file in the app's
 * spool directory until the body ends.
 */
struct cm_ndjson;

/*
 * RQ's stream, made on the first call (a route's r_chunk calls it with
 * each piece, and r_fn at the end) and freed with the request. A stream
 * whose spool file cannot be made has failed from the start.
 */
struct cm_ndjson *cm_ndjson_get(struct cm_request *);
/*
 * A stream of its own, spooling answers to FD (which it closes; -1: none,
 * and the stream has failed). cm_ndjson_get makes them for requests.
 */
struct cm_ndjson *cm_ndjson_new(int fd);
void	cm_ndjson_free(struct cm_ndjson *);
/*
 * The handler's own state for the stream: SIZE zeroed bytes on the first
 * call, the same block after, freed with the stream.
 */
void	*cm_ndjson_data(struct cm_ndjson *, size_t size);

/*
 * Splits a piece of the body (DATA, LEN bytes; DATA NULL: the body has
 * ended) into its complete, non-blank lines (blank: empty or a lone CR),
 * numbered in order, and sets *LINES to them. A line begun in an earlier
 * piece is joined; what follows the last newline is carried, and at the
 * end taken as a last line unless blank. The lines point into DATA or
 * into the stream, valid until the next call. Returns how many there are.
 */
size_t	cm_ndjson_lines(struct cm_ndjson *, const char *data, size_t len,
	    const struct cm_ndjson_line **lines);
/*
 * Line L parsed as JSON (the caller frees it), or NULL with *ERR set to
 * the whole answer for the line, "line" number included: line_too_long,
 * or invalid_json.
 */
json_t	*cm_ndjson_parse(const struct cm_ndjson_line *l, json_t **err);
/* The answer for a line over CM_NDJSON_LINE_MAX: {"line":N,"error":{…}}. */
json_t	*cm_ndjson_too_long(uint64_t lineno);

/* Appends LEN bytes of answers, and O (stolen) as one compact line. */
void	cm_ndjson_write(struct cm_ndjson *, const char *data, size_t len);
void	cm_ndjson_write_json(struct cm_ndjson *, json_t *o);
/*
 * Marks the stream failed with RC (the first failure is kept): the end
 * replies 503 instead of any answer. Stop handling lines once it has.
 */
void	cm_ndjson_fail(struct cm_ndjson *, cm_result rc);
bool	cm_ndjson_failed(const struct cm_ndjson *);

/*
 * At the end of the body: writes out what is buffered, and for a failed
 * stream replies 503 and returns false.
 */
bool	cm_ndjson_end(struct cm_request *, struct cm_ndjson *);
/* cm_ndjson_end(), then replies 200 with the answers as application/x-ndjson. */
void	cm_ndjson_reply(struct cm_request *, struct cm_ndjson *);
/* After cm_ndjson_end(): the answers as a new JSON array, one item a line. */
json_t	*cm_ndjson_answers(struct cm_ndjson *);

/*
 * Replies 400 unknown_field naming the first member of OBJ not in ALLOWED
 * (NULL-terminated). Returns true when every member is allowed.
 */
bool	cm_json_check_fields(struct cm_request *, json_t *obj, const char *const *allowed);

/*
 * Typed getters: on a wrong type (or a missing REQUIRED field) they reply
 * 400 invalid_field / missing_field naming FIELD and return false. A
 * missing optional field leaves *OUT unchanged and returns true.
 */
bool	cm_json_get_string(struct cm_request *, json_t *obj, const char *field,
	    bool required, size_t maxlen, const char **out);
bool	cm_json_get_bool(struct cm_request *, json_t *obj, const char *field,
	    bool required, bool *out);
bool	cm_json_get_int(struct cm_request *, json_t *obj, const char *field,
	    bool required, int64_t min, int64_t max, int64_t *out);

#endif
