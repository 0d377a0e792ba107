/* SPDX-License-Identifier: ISC */
/*
 * Rate limits, checked when a request's head has been routed and before
 * anything else is done for it: no credential is looked up, no body read,
 * nothing written. Each budget is a token bucket (enum cm_rate_budget),
 * kept as GCRA does: one time per key, when its bucket will be full again.
 * A request is let through when that time is at most the burst ahead of
 * now, and moves it one interval on.
 *
 * Keys are a keyed BLAKE2b-128 of the budget, its kind and the value (a
 * link's token, a bearer token, a request id, a client address) under a
 * key drawn at start-up and never stored: neither a token nor an address
 * is kept, and no one outside can aim keys at one slot of the table. The
 * table is fixed (RL_SETS sets of RL_WAYS slots): a key not in its set
 * takes the slot whose bucket is fullest, so memory stays bounded and
 * what is forgotten first is what had least to remember. Each set is
 * guarded by one of RL_LOCKS mutexes.
 *
 * Failed authentications are counted per address when a request brings a
 * credential that does not hold (a 401); a request that brings none is
 * not an attempt. While that budget is spent, every route that takes
 * credentials answers 429 to the address, good token or not.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "consentd/console.h"
#include "consentd/crypto.h"
#include "http_int.h"

#define RL_WAYS		8
#define RL_SETS		8192		/* 65,536 slots, 1.5 MiB */
#define RL_LOCKS	64
#define RL_KEY		16

struct rl_slot {
	uint8_t		rs_key[RL_KEY];
	int64_t		rs_full;	/* µs (monotonic) its bucket is full; 0: free */
};

/* The routes with budgets of their own, by method and pattern. */
enum rl_class { RL_NONE, RL_LINK, RL_UNSUB, RL_VERIFY };

static const struct {
	const char	*rc_method, *rc_pattern;
	enum rl_class	 rc_class;
} rl_routes[] = {
	{ "GET", "/p/{token}", RL_LINK },
	{ "GET", "/u/{token}", RL_UNSUB },
	{ "POST", "/u/{token}", RL_UNSUB },
	{ "POST", "/v1/dsr/{id}/verify", RL_VERIFY },
};

struct ratelimit {
	uint8_t			*rl_secret;	/* CM_KEY_LEN bytes, secure memory */
	struct rl_slot		*rl_slots;	/* RL_SETS * RL_WAYS */
	pthread_mutex_t		 rl_lock[RL_LOCKS];
	struct cm_rate		 rl_rate[CM_RATE_NBUDGETS];
	enum rl_class		*rl_class;	/* by route index */
	atomic_uint_fast64_t	 rl_limited[CM_RATE_NBUDGETS];
};

static const char *const rl_names[CM_RATE_NBUDGETS] = {
	[CM_RATE_TOKEN] = "token",
	[CM_RATE_LINK] = "link",
	[CM_RATE_LINK_ADDR] = "link-address",
	[CM_RATE_UNSUB] = "unsubscribe",
	[CM_RATE_UNSUB_ADDR] = "unsubscribe-address",
	[CM_RATE_VERIFY] = "verify",
	[CM_RATE_VERIFY_ADDR] = "verify-address",
	[CM_RATE_AUTH_FAIL] = "auth-failures",
};

const char *
cm_rate_name(enum cm_rate_budget b)
{
	return (unsigned)b < CM_RATE_NBUDGETS ? rl_names[b] : NULL;
}

int
cm_rate_parse(const char *s, struct cm_rate *out)
{
	const char *slash;
	char count[16];
	int64_t c, sec;

	if (strcmp(s, "0") == 0 || strcmp(s, "off") == 0) {
		out->rt_count = 0;
		out->rt_seconds = 1;
		return 0;
	}
	if ((slash = strchr(s, '/')) == NULL || (size_t)(slash - s) >= sizeof(count))
		return -1;
	memcpy(count, s, (size_t)(slash - s));
	count[slash - s] = '\0';
	if (cm_parse_i64(count, 0, 1000000, &c) != 0 ||
	    cm_parse_i64(slash + 1, 1, 86400, &sec) != 0)
		return -1;
	out->rt_count = (unsigned)c;
	out->rt_seconds = (unsigned)sec;
	return 0;
}

void
rate_defaults(struct cm_rate *r)
{
	/*
	 * None per API token (a sender checks at its own pace), tight ones
	 * where a guess or a flood could do harm (docs/operations.md).
	 */
	r[CM_RATE_TOKEN] = (struct cm_rate){ 0, 1 };
	r[CM_RATE_LINK] = (struct cm_rate){ 10, 60 };
	r[CM_RATE_LINK_ADDR] = (struct cm_rate){ 60, 60 };
	r[CM_RATE_UNSUB] = (struct cm_rate){ 10, 60 };
	r[CM_RATE_UNSUB_ADDR] = (struct cm_rate){ 60, 60 };
	r[CM_RATE_VERIFY] = (struct cm_rate){ 10, 600 };
	r[CM_RATE_VERIFY_ADDR] = (struct cm_rate){ 60, 600 };
	r[CM_RATE_AUTH_FAIL] = (struct cm_rate){ 20, 300 };
}

struct ratelimit *
rate_new(const struct cm_server_opts *o, const struct cm_route *routes, size_t n)
{
	struct ratelimit *rl;
	size_t i, j;

	rl = cm_calloc(1, sizeof(*rl));
	if ((rl->rl_secret = cm_secure_alloc(CM_KEY_LEN)) == NULL) {
		free(rl);
		return NULL;
	}
	cm_random(rl->rl_secret, CM_KEY_LEN);
	rl->rl_slots = cm_calloc((size_t)RL_SETS * RL_WAYS, sizeof(*rl->rl_slots));
	for (i = 0; i < RL_LOCKS; i++)
		pthread_mutex_init(&rl->rl_lock[i], NULL);
	memcpy(rl->rl_rate, o->so_rate, sizeof(rl->rl_rate));
	rl->rl_class = cm_calloc(n + 1, sizeof(*rl->rl_class));
	for (i = 0; i < n; i++)
		for (j = 0; j < CM_NELEM(rl_routes); j++)
			if (strcmp(routes[i].r_method, rl_routes[j].rc_method) == 0 &&
			    strcmp(routes[i].r_pattern, rl_routes[j].rc_pattern) == 0)
				rl->rl_class[i] = rl_routes[j].rc_class;
	return rl;
}

void
rate_free(struct ratelimit *rl)
{
	size_t i;

	if (rl == NULL)
		return;
	for (i = 0; i < RL_LOCKS; i++)
		pthread_mutex_destroy(&rl->rl_lock[i]);
	cm_secure_free(rl->rl_secret);
	free(rl->rl_slots);
	free(rl->rl_class);
	free(rl);
}

/*
 * One request against budget B for VALUE (KIND "t" a token or id, "a" an
 * address). PEEK: only whether one would be let through, spending nothing.
 * Returns 0 when let through, else the seconds until one would be.
 */
static unsigned
rl_take(struct ratelimit *rl, enum cm_rate_budget b, const char *kind,
    const char *value, bool peek)
{
	const struct cm_rate *r = &rl->rl_rate[b];
	const char *parts[3] = { rl_names[b], kind, value };
	struct rl_slot *set, *s = NULL;
	uint8_t key[RL_KEY];
	uint32_t h;
	int64_t now, step, burst, full;
	unsigned wait = 0;
	size_t i, si;

	if (r->rt_count == 0)
		return 0;
	step = (int64_t)r->rt_seconds * 1000000 / r->rt_count;
	if (step < 1)
		step = 1;
	burst = (int64_t)r->rt_seconds * 1000000 - step;
	cm_keyed_hash(key, sizeof(key), rl->rl_secret, parts, 3);
	memcpy(&h, key, sizeof(h));
	si = h % RL_SETS;
	set = &rl->rl_slots[si * RL_WAYS];
	now = cm_time_mono_us() + 1;
	pthread_mutex_lock(&rl->rl_lock[si % RL_LOCKS]);
	for (i = 0; i < RL_WAYS && s == NULL; i++)
		if (set[i].rs_full != 0 && memcmp(set[i].rs_key, key, RL_KEY) == 0)
			s = &set[i];
	if (s == NULL && !peek) {
		/* The fullest bucket (free slots are 0) makes room. */
		s = &set[0];
		for (i = 1; i < RL_WAYS; i++)
			if (set[i].rs_full < s->rs_full)
				s = &set[i];
		memcpy(s->rs_key, key, RL_KEY);
		s->rs_full = now;
	}
	if (s != NULL) {
		full = s->rs_full > now ? s->rs_full : now;
		if (full - now > burst)
			wait = (unsigned)((full - now - burst + 999999) / 1000000);
		else if (!peek)
			s->rs_full = full + step;
	}
	pthread_mutex_unlock(&rl->rl_lock[si % RL_LOCKS]);
	cm_wipe(key, sizeof(key));
	return wait;
}

/*
 * The client's address as text into OUT: an IPv4 address (also when
 * mapped into IPv6), or the /64 an IPv6 address is in, since one host
 * commonly holds a whole /64.
 */
static void
rl_address(struct cm_request *rq, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	struct in6_addr a6;

	snprintf(out, outlen, "?");
	ci = MHD_get_connection_info(rq->rq_conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    out, (socklen_t)outlen);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(&a6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    sizeof(a6));
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			inet_ntop(AF_INET, &a6.s6_addr[12], out, (socklen_t)outlen);
			return;
		}
		memset(&a6.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen);
	}
}

/* The 429: the envelope, Retry-After, and the connection closed. */
static void
rl_reply(struct cm_request *rq, enum cm_rate_budget b, unsigned wait)
{
	struct MHD_Response *r;
	char body[256], after[16], esc[64];
	int n;

	atomic_fetch_add(&rq->rq_srv->sv_rate->rl_limited[b], 1);
	rq->rq_close = true;
	n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"rate_limited\","
	    "\"message\":\"too many requests: try again in %u second%s\","
	    "\"field\":null,\"budget\":\"%s\"}}", wait, wait == 1 ? "" : "s",
	    cm_json_escape(esc, sizeof(esc), rl_names[b]));
	if (n < 0 || (size_t)n >= sizeof(body) ||
	    (r = MHD_create_response_from_buffer((size_t)n, body,
	    MHD_RESPMEM_MUST_COPY)) == NULL) {
		rq->rq_status = 500;
		return;
	}
	snprintf(after, sizeof(after), "%u", wait);
	MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, after);
	req_send(rq, 429, r, "application/json; charset=utf-8");
	(void)cm_req_log_field(rq, "rate_limited", rl_names[b]);
}

/* The bearer token a request brings, or NULL. */
static const char *
rl_bearer(struct cm_request *rq)
{
	const char *h;

	h = MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	for (h += 7; *h == ' '; h++)
		;
	return h;
}

bool
rate_admit(struct cm_request *rq)
{
	struct ratelimit *rl = rq->rq_srv->sv_rate;
	const struct cm_route *rt = rq->rq_route;
	enum cm_rate_budget per_key = CM_RATE_NBUDGETS, per_addr = CM_RATE_NBUDGETS;
	enum cm_rate_budget b = CM_RATE_NBUDGETS;
	const char *tok;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned wait = 0;

	if (rl == NULL)
		return true;
	switch (rl->rl_class[rq->rq_route_index]) {
	case RL_LINK:
		per_key = CM_RATE_LINK, per_addr = CM_RATE_LINK_ADDR;
		break;
	case RL_UNSUB:
		per_key = CM_RATE_UNSUB, per_addr = CM_RATE_UNSUB_ADDR;
		break;
	case RL_VERIFY:
		per_key = CM_RATE_VERIFY, per_addr = CM_RATE_VERIFY_ADDR;
		break;
	case RL_NONE:
		break;
	}
	rl_address(rq, addr, sizeof(addr));
	/*
	 * Failed authentications are only looked at here (a 401 spends them);
	 * then the address's budget, the link's or request's, and the token's,
	 * each spent only when those before it let the request through.
	 */
	if (rt->r_auth != CM_AUTH_NONE &&
	    (wait = rl_take(rl, CM_RATE_AUTH_FAIL, "a", addr, true)) > 0)
		b = CM_RATE_AUTH_FAIL;
	else if (per_addr != CM_RATE_NBUDGETS &&
	    (wait = rl_take(rl, per_addr, "a", addr, false)) > 0)
		b = per_addr;
	else if (per_key != CM_RATE_NBUDGETS && rq->rq_nparams > 0 &&
	    (wait = rl_take(rl, per_key, "t", rq->rq_params[0], false)) > 0)
		b = per_key;
	else if (rt->r_auth != CM_AUTH_NONE && (tok = rl_bearer(rq)) != NULL &&
	    (wait = rl_take(rl, CM_RATE_TOKEN, "t", tok, false)) > 0)
		b = CM_RATE_TOKEN;
	cm_wipe(addr, sizeof(addr));
	if (wait == 0)
		return true;
	rl_reply(rq, b, wait);
	return false;
}

void
rate_auth_failed(struct cm_request *rq)
{
	struct ratelimit *rl = rq->rq_srv->sv_rate;
	char addr[INET6_ADDRSTRLEN + 1];

	if (rl == NULL)
		return;
	/* Only a credential that did not hold is an attempt. */
	if (MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION) == NULL &&
	    MHD_lookup_connection_value(rq->rq_conn, MHD_COOKIE_KIND,
	    CM_SESSION_COOKIE) == NULL &&
	    MHD_lookup_connection_value(rq->rq_conn, MHD_COOKIE_KIND,
	    CM_CONSOLE_COOKIE) == NULL)
		return;
	rl_address(rq, addr, sizeof(addr));
	(void)rl_take(rl, CM_RATE_AUTH_FAIL, "a", addr, false);
	cm_wipe(addr, sizeof(addr));
}

void
rate_metrics(struct ratelimit *rl, struct cm_buf *out)
{
	size_t b;

	if (rl == NULL)
		return;
	cm_buf_appendf(out, "# HELP consentd_http_rate_limited_total Requests answered "
	    "429, by the budget they had spent.\n"
	    "# TYPE consentd_http_rate_limited_total counter\n");
	for (b = 0; b < CM_RATE_NBUDGETS; b++)
		cm_buf_appendf(out, "consentd_http_rate_limited_total{budget=\"%s\"} %llu\n",
		    rl_names[b], (unsigned long long)atomic_load(&rl->rl_limited[b]));
}
