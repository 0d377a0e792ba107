/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes cm_router_match (src/http/router.c) against the real route table,
 * cm_api_routes: the input is "METHOD PATH" (no space: GET and the whole
 * input as the path), cut at its first NUL as libmicrohttpd hands the
 * router C strings. Checks what the router promises: a match names a
 * route of that method (or GET for HEAD) whose pattern has as many
 * {params} as were decoded; the path rebuilt from the pattern with every
 * byte of each parameter %-escaped matches the same route with the same
 * parameters; the Allow list of a 405 names whole methods of the table
 * only, also when cut short by a small buffer.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/http.h"
#include "consentd/util.h"
#include "fuzz.h"

static struct cm_router *router;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	if ((router = cm_router_new(cm_api_routes, cm_api_nroutes, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	return 0;
}

static size_t
pattern_params(const char *pattern)
{
	size_t n = 0;

	for (; *pattern != '\0'; pattern++)
		if (*pattern == '{')
			n++;
	return n;
}

static bool
method_known(const char *m, size_t len)
{
	size_t i;

	for (i = 0; i < cm_api_nroutes; i++)
		if (strlen(cm_api_routes[i].r_method) == len &&
		    memcmp(cm_api_routes[i].r_method, m, len) == 0)
			return true;
	return false;
}

/* ALLOW is "" or "M, M, …" of methods the table has, none of them METHOD. */
static void
check_allow(const char *allow, const char *method)
{
	const char *p = allow, *end;
	size_t len;

	while (*p != '\0') {
		end = strstr(p, ", ");
		len = end ? (size_t)(end - p) : strlen(p);
		FUZZ_CHECK(len > 0 && method_known(p, len));
		FUZZ_CHECK(strlen(method) != len || memcmp(method, p, len) != 0);
		p += len;
		if (end != NULL)
			p += 2;
	}
}

/* The path of ROUTE's pattern with PARAMS fully %-escaped, into OUT. */
static void
rebuild(struct cm_buf *out, const struct cm_route *route, char **params)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *p = route->r_pattern;
	size_t k = 0;
	const unsigned char *v;

	while (*p != '\0') {
		if (*p != '{') {
			cm_buf_append(out, p++, 1);
			continue;
		}
		for (v = (const unsigned char *)params[k++]; *v != '\0'; v++) {
			char esc[3] = { '%', hex[*v >> 4], hex[*v & 15] };

			cm_buf_append(out, esc, 3);
		}
		p = strchr(p, '}') + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char get[] = "GET", *in, *method, *path, *params[CM_ROUTE_MAX_PARAMS], *params2[CM_ROUTE_MAX_PARAMS];
	char allow[256], small[12];
	const struct cm_route *route = NULL, *route2 = NULL;
	size_t index = 0, index2 = 0, n = 0, n2 = 0, i;
	struct cm_buf again = { 0 };
	enum cm_match m, m2;

	in = cm_strndup((const char *)data, size);
	if ((path = strchr(in, ' ')) != NULL) {
		*path++ = '\0';
		method = in;
	} else {
		method = get;
		path = in;
	}
	m = cm_router_match(router, method, path, &route, &index, params, &n, allow,
	    sizeof(allow));
	FUZZ_CHECK(memchr(allow, '\0', sizeof(allow)) != NULL);
	switch (m) {
	case CM_MATCH_OK:
		FUZZ_CHECK(index < cm_api_nroutes && route == &cm_api_routes[index]);
		FUZZ_CHECK(strcmp(route->r_method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(route->r_method, "GET") == 0));
		FUZZ_CHECK(n == pattern_params(route->r_pattern));
		rebuild(&again, route, params);
		m2 = cm_router_match(router, method, again.b_data, &route2, &index2, params2,
		    &n2, allow, sizeof(allow));
		FUZZ_CHECK(m2 == CM_MATCH_OK && index2 == index && n2 == n);
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(strcmp(params[i], params2[i]) == 0);
			free(params[i]);
			free(params2[i]);
		}
		break;
	case CM_MATCH_NO_METHOD:
		FUZZ_CHECK(n == 0 && allow[0] != '\0');
		check_allow(allow, method);
		m2 = cm_router_match(router, method, path, &route2, &index2, params2, &n2,
		    small, sizeof(small));
		FUZZ_CHECK(m2 == CM_MATCH_NO_METHOD);
		FUZZ_CHECK(strncmp(small, allow, strlen(small)) == 0);
		check_allow(small, method);
		break;
	case CM_MATCH_NO_PATH:
	case CM_MATCH_BAD_PATH:
		FUZZ_CHECK(n == 0);
		break;
	default:
		FUZZ_CHECK(!"an unknown match result");
	}
	cm_buf_free(&again);
	free(in);
	return 0;
}
