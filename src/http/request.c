/* SPDX-License-Identifier: ISC */
/*
 * Request and response helpers for handlers: parameters, the decoded
 * query, the JSON body, and replies in JSON with the error envelope of the
 * API. Every reply carries no-store and nosniff headers: API answers hold
 * personal data and must not be cached or reinterpreted.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consentd/crypto.h"
#include "http_int.h"

struct cm_app *
cm_req_app(struct cm_request *rq)
{
	return rq->rq_srv->sv_app;
}

bool
cm_req_ndjson(struct cm_request *rq)
{
	return rq->rq_ndjson;
}

void
cm_req_set_state(struct cm_request *rq, void *state, void (*free_fn)(void *))
{
	rq->rq_state = state;
	rq->rq_state_free = free_fn;
}

void *
cm_req_state(struct cm_request *rq)
{
	return rq->rq_state;
}

bool
cm_req_log_field(struct cm_request *rq, const char *key, const char *value)
{
	static const char *const taken[] = { "ts", "level", "event", "method", "route",
	    "status", "us", "client", "aborted", "answered_by", "request_id", NULL };
	char val[64 + 1], esc[6 * 64 + 1], probe[40];
	size_t klen = strlen(key), vlen, cut, i;
	int n;

	if (klen == 0 || klen > 32 || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != klen)
		return false;
	for (i = 0; taken[i] != NULL; i++)
		if (strcmp(key, taken[i]) == 0)
			return false;
	snprintf(probe, sizeof(probe), ",\"%s\":", key);
	if (rq->rq_logf_len > 0 && strstr(rq->rq_logf, probe) != NULL)
		return false;
	if (value != NULL) {
		/* Cut at 64 bytes, never inside a UTF-8 sequence. */
		vlen = strlen(value);
		cut = vlen < sizeof(val) - 1 ? vlen : sizeof(val) - 1;
		while (cut > 0 && cut < vlen && ((unsigned char)value[cut] & 0xc0) == 0x80)
			cut--;
		memcpy(val, value, cut);
		val[cut] = '\0';
		n = snprintf(rq->rq_logf + rq->rq_logf_len, sizeof(rq->rq_logf) - rq->rq_logf_len,
		    "%s\"%s\"", probe, cm_json_escape(esc, sizeof(esc), val));
	} else {
		n = snprintf(rq->rq_logf + rq->rq_logf_len, sizeof(rq->rq_logf) - rq->rq_logf_len,
		    "%snull", probe);
	}
	if (n < 0 || (size_t)n >= sizeof(rq->rq_logf) - rq->rq_logf_len) {
		rq->rq_logf[rq->rq_logf_len] = '\0';
		return false;
	}
	rq->rq_logf_len += (size_t)n;
	return true;
}

struct cm_server *
cm_req_server(struct cm_request *rq)
{
	return rq->rq_srv;
}

bool
cm_request_id_valid(const char *s, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.:+=/";
	size_t i;

	if (len == 0 || len > CM_REQUEST_ID_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || strchr(ok, s[i]) == NULL)
			return false;
	return true;
}

void
req_id_assign(struct cm_request *rq)
{
	struct cm_server *sv = rq->rq_srv;
	const char *h;
	uint64_t n;

	if (rq->rq_reqid[0] != '\0')
		return;
	h = MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND, "X-Request-Id");
	if (h != NULL && cm_request_id_valid(h, strlen(h))) {
		memcpy(rq->rq_reqid, h, strlen(h) + 1);
		return;
	}
	/*
	 * Ours: the server's random prefix and a counter, unique without a
	 * system call or a lock on the path of every request.
	 */
	n = atomic_fetch_add_explicit(&sv->sv_reqid_next, 1, memory_order_relaxed);
	snprintf(rq->rq_reqid, sizeof(rq->rq_reqid), "%s%016llx", sv->sv_reqid_prefix,
	    (unsigned long long)n);
}

const char *
cm_req_id(struct cm_request *rq)
{
	return rq->rq_reqid;
}

const char *
cm_req_param(struct cm_request *rq, size_t i)
{
	return i < rq->rq_nparams ? rq->rq_params[i] : NULL;
}

json_t *
cm_req_json(struct cm_request *rq)
{
	return rq->rq_json;
}

const char *
cm_req_client(struct cm_request *rq)
{
	return rq->rq_client[0] ? rq->rq_client : NULL;
}

uint32_t
cm_req_scopes(struct cm_request *rq)
{
	return rq->rq_scopes;
}

const char *
cm_req_actor(struct cm_request *rq)
{
	return rq->rq_actor;
}

bool
cm_req_replied(struct cm_request *rq)
{
	return rq->rq_replied || (rq->rq_in_writer && rq->rq_kept_body != NULL);
}

const char *
cm_req_header(struct cm_request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND, name);
}

const char *
cm_req_body(struct cm_request *rq, size_t *len)
{
	*len = rq->rq_body.b_len;
	return rq->rq_body.b_data ? rq->rq_body.b_data : "";
}

const char *
cm_req_subject(struct cm_request *rq)
{
	return rq->rq_subject[0] ? rq->rq_subject : NULL;
}

const char *
cm_req_session(struct cm_request *rq)
{
	return rq->rq_session[0] ? rq->rq_session : NULL;
}

int64_t
cm_req_token_id(struct cm_request *rq)
{
	return rq->rq_token_id;
}

bool
cm_req_console(struct cm_request *rq)
{
	return rq->rq_console;
}

const char *
cm_req_query(struct cm_request *rq, const char *name)
{
	const char *raw;
	char *dec;
	size_t i;

	for (i = 0; i < rq->rq_nqcache; i++)
		if (strcmp(rq->rq_qcache_name[i], name) == 0)
			return rq->rq_qcache_val[i];
	raw = MHD_lookup_connection_value(rq->rq_conn, MHD_GET_ARGUMENT_KIND, name);
	if (raw == NULL)
		return NULL;
	if ((dec = cm_percent_decode(raw, strlen(raw))) == NULL)
		return NULL;
	if (rq->rq_nqcache == CM_NELEM(rq->rq_qcache_name)) {
		free(dec);
		return NULL;
	}
	rq->rq_qcache_name[rq->rq_nqcache] = cm_strdup(name);
	rq->rq_qcache_val[rq->rq_nqcache] = dec;
	rq->rq_nqcache++;
	return dec;
}

bool
cm_req_query_int(struct cm_request *rq, const char *name, bool required,
    int64_t min, int64_t max, int64_t def, int64_t *out)
{
	const char *v;

	if ((v = cm_req_query(rq, name)) == NULL) {
		if (required) {
			cm_reply_error(rq, 400, "missing_parameter", name,
			    "required query parameter is missing");
			return false;
		}
		*out = def;
		return true;
	}
	if (cm_parse_i64(v, min, max, out) != 0) {
		cm_reply_error(rq, 400, "invalid_parameter", name,
		    "must be an integer from %lld to %lld", (long long)min, (long long)max);
		return false;
	}
	return true;
}

struct qcheck {
	const char *const	*allowed;
	const char		*bad;		/* first offending name */
	const char		*code;
	char			 seen[16];	/* count per allowed name */
};

static enum MHD_Result
query_visit(void *arg, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct qcheck *q = arg;
	char *dec;
	int i;

	(void)kind;
	if ((i = cm_strv_index(q->allowed, key)) < 0 || (size_t)i >= sizeof(q->seen)) {
		q->bad = key;
		q->code = "unknown_parameter";
		return MHD_NO;
	}
	if (q->seen[i]++ > 0) {
		q->bad = key;
		q->code = "invalid_parameter";
		return MHD_NO;
	}
	if (value != NULL) {
		if ((dec = cm_percent_decode(value, strlen(value))) == NULL) {
			q->bad = key;
			q->code = "invalid_parameter";
			return MHD_NO;
		}
		free(dec);
	}
	return MHD_YES;
}

static void
query_scan(struct cm_request *rq, const char *const *allowed, struct qcheck *q)
{
	static const char *const none[] = { NULL };

	memset(q, 0, sizeof(*q));
	q->allowed = allowed != NULL ? allowed : none;
	MHD_get_connection_values(rq->rq_conn, MHD_GET_ARGUMENT_KIND, query_visit, q);
}

bool
req_query_valid(struct cm_request *rq, const char *const *allowed)
{
	struct qcheck q;

	query_scan(rq, allowed, &q);
	return q.bad == NULL;
}

/*
 * A parameter's name is sent back in "field" only when it looks like a
 * parameter name: any other could be personal data (an identifier sent as
 * a name), which an error never echoes.
 */
static const char *
query_field(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
		return NULL;
	return name;
}

bool
cm_req_query_check(struct cm_request *rq, const char *const *allowed)
{
	struct qcheck q;

	query_scan(rq, allowed, &q);
	if (q.bad == NULL)
		return true;
	if (strcmp(q.code, "unknown_parameter") == 0)
		cm_reply_error(rq, 400, q.code, query_field(q.bad), "unknown query parameter");
	else
		cm_reply_error(rq, 400, q.code, query_field(q.bad), "query parameter is "
		    "repeated or has a malformed %%-escape");
	return false;
}

void
req_common_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

void
req_send(struct cm_request *rq, unsigned status, struct MHD_Response *r, const char *ctype)
{
	req_send_cache(rq, status, r, ctype, NULL);
}

void
req_send_cache(struct cm_request *rq, unsigned status, struct MHD_Response *r,
    const char *ctype, const char *cache)
{
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache ? cache : "no-store");
	req_common_headers(r);
	/* Served over TLS: browsers are to come back over TLS only. */
	if (rq->rq_srv->sv_tls)
		MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
	if (rq->rq_reqid[0] != '\0')
		MHD_add_response_header(r, "X-Request-Id", rq->rq_reqid);
	if (rq->rq_close)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	req_queue(rq, status, r);
	MHD_destroy_response(r);
}

void
req_queue(struct cm_request *rq, unsigned status, struct MHD_Response *r)
{
	if (rq->rq_replied)
		return;
	rq->rq_replied = true;
	rq->rq_status = status;
	if (MHD_queue_response(rq->rq_conn, status, r) != MHD_YES)
		rq->rq_status = 500;
}

/* On the writer thread a reply is kept, to be queued once it is durable. */
static bool
req_keep(struct cm_request *rq, unsigned status, const char *ctype, const char *body,
    size_t len)
{
	if (!rq->rq_in_writer)
		return false;
	free(rq->rq_kept_body);
	rq->rq_kept_body = cm_malloc(len + 1);
	memcpy(rq->rq_kept_body, body, len);
	rq->rq_kept_len = len;
	rq->rq_kept_status = status;
	rq->rq_kept_ctype = ctype;
	return true;
}

void
req_send_kept(struct cm_request *rq)
{
	char *body = rq->rq_kept_body;

	rq->rq_kept_body = NULL;
	if (body == NULL) {
		cm_reply_error(rq, 500, "internal", NULL, "internal error");
		return;
	}
	cm_reply_bytes(rq, rq->rq_kept_status, rq->rq_kept_ctype, body, rq->rq_kept_len);
	free(body);
}

void
cm_reply_bytes(struct cm_request *rq, unsigned status, const char *ctype,
    const char *body, size_t len)
{
	struct MHD_Response *r;

	if (rq->rq_replied || req_keep(rq, status, ctype, body, len))
		return;
	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL) {
		rq->rq_status = 500;
		return;
	}
	req_send(rq, status, r, ctype);
}

void
cm_reply_page(struct cm_request *rq, unsigned status, const char *ctype, const char *body,
    size_t len, const char *cache, const char *const *headers)
{
	struct MHD_Response *r;
	size_t i;

	if (rq->rq_replied)
		return;
	if (rq->rq_in_writer) {
		/* A kept reply carries no headers of its own: never from there. */
		cm_reply_error(rq, 500, "internal", NULL, "internal error");
		return;
	}
	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL) {
		rq->rq_status = 500;
		return;
	}
	for (i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
		MHD_add_response_header(r, headers[i], headers[i + 1]);
	req_send_cache(rq, status, r, ctype, cache);
}

void
cm_reply_fd(struct cm_request *rq, unsigned status, const char *ctype, int fd, size_t len)
{
	struct MHD_Response *r;

	if (rq->rq_replied) {
		close(fd);
		return;
	}
	if ((r = MHD_create_response_from_fd(len, fd)) == NULL) {
		close(fd);
		rq->rq_status = 500;
		return;
	}
	req_send(rq, status, r, ctype);
}

/* A streamed body: the reader and its argument, for libmicrohttpd's callback. */
struct reply_stream {
	long	(*rs_read)(void *, void *, size_t);
	void	(*rs_free)(void *);
	void	 *rs_arg;
};

static ssize_t
reply_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct reply_stream *rs = cls;
	long n;

	(void)pos;
	if ((n = rs->rs_read(rs->rs_arg, buf, max)) < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void
reply_stream_free(void *cls)
{
	struct reply_stream *rs = cls;

	if (rs->rs_free != NULL)
		rs->rs_free(rs->rs_arg);
	free(rs);
}

void
cm_reply_stream(struct cm_request *rq, unsigned status, const char *ctype, uint64_t size,
    long (*read_fn)(void *, void *, size_t), void (*free_fn)(void *), void *arg)
{
	struct MHD_Response *r;
	struct reply_stream *rs;

	if (rq->rq_replied) {
		if (free_fn != NULL)
			free_fn(arg);
		return;
	}
	rs = cm_malloc(sizeof(*rs));
	rs->rs_read = read_fn;
	rs->rs_free = free_fn;
	rs->rs_arg = arg;
	if ((r = MHD_create_response_from_callback(size, CM_STREAM_BLOCK, reply_stream_read,
	    rs, reply_stream_free)) == NULL) {
		reply_stream_free(rs);
		rq->rq_status = 500;
		return;
	}
	req_send(rq, status, r, ctype);
}

void
cm_reply_json(struct cm_request *rq, unsigned status, json_t *obj)
{
	struct MHD_Response *r;
	char *body;

	if (rq->rq_replied) {
		json_decref(obj);
		return;
	}
	body = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (body != NULL && req_keep(rq, status, "application/json; charset=utf-8", body,
	    strlen(body))) {
		free(body);
		return;
	}
	if (body == NULL) {
		cm_reply_bytes(rq, 500, "application/json; charset=utf-8",
		    "{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the "
		    "response\",\"field\":null}}", 77);
		return;
	}
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		rq->rq_status = 500;
		return;
	}
	req_send(rq, status, r, "application/json; charset=utf-8");
}

void
cm_reply_error(struct cm_request *rq, unsigned status, const char *code,
    const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *err;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err = json_pack("{s:{s:s, s:s, s:s?}}", "error", "code", code, "message", msg,
	    "field", field);
	if (err == NULL)
		err = json_pack("{s:{s:s, s:s, s:n}}", "error", "code", "internal",
		    "message", "cannot encode the error", "field");
	cm_reply_json(rq, status, err);
}

void
cm_reply_error_with(struct cm_request *rq, unsigned status, const char *code,
    const char *field, json_t *extra, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *err;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err = json_pack("{s:s, s:s, s:s?}", "code", code, "message", msg, "field", field);
	if (err == NULL) {
		json_decref(extra);
		cm_reply_error(rq, 500, "internal", NULL, "cannot encode the error");
		return;
	}
	if (extra != NULL)
		json_object_update_missing(err, extra);
	json_decref(extra);
	cm_reply_json(rq, status, json_pack("{s:o}", "error", err));
}

void
cm_reply_store_error(struct cm_request *rq, cm_result rc)
{
	if (rc == CM_BUSY)
		cm_reply_error(rq, 503, "unavailable", NULL, "the store is busy; retry shortly");
	else if (rc == CM_UNKNOWN)
		cm_reply_error(rq, 503, "outcome_unknown", NULL, "the store lost the answer to "
		    "this change, which may or may not have been made; send it again (with "
		    "its request_id, where it has one)");
	else
		cm_reply_error(rq, 503, "unavailable", NULL, "the store is not available");
}

bool
cm_json_check_fields(struct cm_request *rq, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		(void)v;
		if (cm_strv_index(allowed, key) < 0) {
			char name[80];

			/* jansson escapes it in the reply; cut whole characters only. */
			snprintf(name, sizeof(name), "%.*s", cm_utf8_prefix(key, 64), key);
			cm_reply_error(rq, 400, "unknown_field", name, "unknown field");
			return false;
		}
	}
	return true;
}

static json_t *
json_field(struct cm_request *rq, json_t *obj, const char *field, bool required,
    bool *ok)
{
	json_t *v;

	*ok = true;
	v = json_object_get(obj, field);
	if (v == NULL && required) {
		cm_reply_error(rq, 400, "missing_field", field, "required field is missing");
		*ok = false;
	}
	return v;
}

bool
cm_json_get_string(struct cm_request *rq, json_t *obj, const char *field,
    bool required, size_t maxlen, const char **out)
{
	json_t *v;
	bool ok;

	if ((v = json_field(rq, obj, field, required, &ok)) == NULL)
		return ok;
	if (!json_is_string(v)) {
		cm_reply_error(rq, 400, "invalid_field", field, "must be a string");
		return false;
	}
	if (json_string_length(v) != strlen(json_string_value(v))) {
		cm_reply_error(rq, 400, "invalid_field", field, "must not contain NUL");
		return false;
	}
	if (json_string_length(v) > maxlen) {
		cm_reply_error(rq, 400, "invalid_field", field,
		    "must be at most %zu bytes", maxlen);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool
cm_json_get_bool(struct cm_request *rq, json_t *obj, const char *field,
    bool required, bool *out)
{
	json_t *v;
	bool ok;

	if ((v = json_field(rq, obj, field, required, &ok)) == NULL)
		return ok;
	if (!json_is_boolean(v)) {
		cm_reply_error(rq, 400, "invalid_field", field, "must be true or false");
		return false;
	}
	*out = json_is_true(v);
	return true;
}

bool
cm_json_get_int(struct cm_request *rq, json_t *obj, const char *field,
    bool required, int64_t min, int64_t max, int64_t *out)
{
	json_t *v;
	bool ok;

	if ((v = json_field(rq, obj, field, required, &ok)) == NULL)
		return ok;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		cm_reply_error(rq, 400, "invalid_field", field,
		    "must be an integer from %lld to %lld", (long long)min, (long long)max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

void
req_free(struct cm_request *rq)
{
	size_t i;

	if (rq == NULL)
		return;
	for (i = 0; i < rq->rq_nparams; i++)
		free(rq->rq_params[i]);
	for (i = 0; i < rq->rq_nqcache; i++) {
		free(rq->rq_qcache_name[i]);
		free(rq->rq_qcache_val[i]);
	}
	cm_buf_free(&rq->rq_body);
	json_decref(rq->rq_json);
	if (rq->rq_state_free != NULL)
		rq->rq_state_free(rq->rq_state);
	free(rq->rq_kept_body);
	/* The session id is a credential: it leaves no copy behind. */
	cm_wipe(rq->rq_session, sizeof(rq->rq_session));
	free(rq);
}
