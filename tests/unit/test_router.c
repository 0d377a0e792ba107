/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the HTTP router (src/http/router.c) over a small route
 * table of dummy handlers: literal segments beat {param} segments whatever
 * the table order (and leftmost literals win), 405 with the Allow list of
 * the matched pattern, 404 for unknown paths, trailing slashes and empty
 * segments, HEAD served by GET routes, parameters percent-decoded per
 * segment (an encoded "/" stays inside its parameter), malformed escapes
 * and %00 answered with CM_MATCH_BAD_PATH (without leaking the parameters
 * already decoded), rejection of duplicate and malformed patterns by
 * cm_router_new, and cm_percent_decode on its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consentd/http.h"
#include "consentd/scope.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static void
h_a(struct cm_request *rq)
{
	(void)rq;
}

static void
h_b(struct cm_request *rq)
{
	(void)rq;
}

/*
 * The parameter route comes before the literal one on purpose: specificity
 * must not depend on the order of the table.
 */
static const struct cm_route routes[] = {
	{ "GET", "/v1/subjects/{id}", CM_AUTH_BEARER, CM_SCOPE_CONSENT_READ, 0, h_a, "get", NULL, NULL },	/* 0 */
	{ "DELETE", "/v1/subjects/{id}", CM_AUTH_BEARER, CM_SCOPE_DSR_ADMIN, 0, h_b, "delete", NULL, NULL },	/* 1 */
	{ "GET", "/v1/subjects/resolve", CM_AUTH_BEARER, CM_SCOPE_CONSENT_READ, 0, h_b, "resolve", NULL, NULL },	/* 2 */
	{ "POST", "/v1/subjects", CM_AUTH_BEARER, CM_SCOPE_SUBJECTS_WRITE, CM_ROUTE_JSON_BODY, h_a, "create", NULL, NULL },	/* 3 */
	{ "GET", "/v1/subjects/{id}/consents/{purpose}", CM_AUTH_BEARER, CM_SCOPE_CONSENT_READ, 0, h_a, "c", NULL, NULL },	/* 4 */
	{ "PUT", "/v1/subjects/{id}/consents/{purpose}", CM_AUTH_BEARER, CM_SCOPE_CONSENT_WRITE, 0, h_b, "c", NULL, NULL },	/* 5 */
	{ "GET", "/a/{x}/c", CM_AUTH_NONE, CM_SCOPE_NONE, 0, h_a, "x", NULL, NULL },	/* 6 */
	{ "GET", "/a/b/{y}", CM_AUTH_NONE, CM_SCOPE_NONE, 0, h_b, "y", NULL, NULL },	/* 7 */
	{ "GET", "/healthz", CM_AUTH_NONE, CM_SCOPE_NONE, 0, h_a, "health", NULL, NULL },	/* 8 */
	{ "POST", "/v1/subjects/{id}/erase", CM_AUTH_BEARER, CM_SCOPE_DSR_ADMIN, 0, h_a, "erase", NULL, NULL },	/* 9 */
};

struct match {
	enum cm_match		 m;
	const struct cm_route	*route;
	size_t			 index;
	char			*params[CM_ROUTE_MAX_PARAMS];
	size_t			 nparams;
	char			 allow[128];
};

static void
do_match(const struct cm_router *r, const char *method, const char *path,
    struct match *out)
{
	memset(out, 0, sizeof(*out));
	out->index = 999;
	out->m = cm_router_match(r, method, path, &out->route, &out->index,
	    out->params, &out->nparams, out->allow, sizeof(out->allow));
}

static void
match_free(struct match *mt)
{
	size_t i;

	for (i = 0; i < mt->nparams; i++)
		free(mt->params[i]);
	mt->nparams = 0;
}

/* Expects PATH to reach route INDEX with the given parameters (NULL-terminated). */
static void
expect_ok(const struct cm_router *r, const char *method, const char *path,
    size_t index, ...)
{
	struct match mt;
	const char *want;
	va_list ap;
	size_t i = 0;

	do_match(r, method, path, &mt);
	if (mt.m != CM_MATCH_OK)
		fail_msg("%s %s: match %d, want CM_MATCH_OK", method, path, (int)mt.m);
	assert_int_equal(mt.index, index);
	assert_ptr_equal(mt.route, &routes[index]);
	va_start(ap, index);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (i >= mt.nparams)
			fail_msg("%s %s: only %zu params", method, path, mt.nparams);
		assert_string_equal(mt.params[i], want);
		i++;
	}
	va_end(ap);
	assert_int_equal(mt.nparams, i);
	match_free(&mt);
}

static void
expect_status(const struct cm_router *r, const char *method, const char *path,
    enum cm_match want)
{
	struct match mt;

	do_match(r, method, path, &mt);
	if (mt.m != want)
		fail_msg("%s %s: match %d, want %d", method, path, (int)mt.m, (int)want);
	assert_int_equal(mt.nparams, 0);
	match_free(&mt);
}

static int
setup(void **state)
{
	char err[256] = "";
	struct cm_router *r;

	r = cm_router_new(routes, NELEM(routes), err, sizeof(err));
	if (r == NULL) {
		print_error("cm_router_new: %s\n", err);
		return -1;
	}
	*state = r;
	return 0;
}

static int
teardown(void **state)
{
	cm_router_free(*state);
	return 0;
}

/* ---- matching ---------------------------------------------------------- */

static void
test_literal_beats_param(void **state)
{
	const struct cm_router *r = *state;

	expect_ok(r, "GET", "/v1/subjects/resolve", 2, NULL);
	expect_ok(r, "GET", "/v1/subjects/resolvex", 0, "resolvex", NULL);
	expect_ok(r, "GET", "/v1/subjects/resolv", 0, "resolv", NULL);
	expect_ok(r, "GET", "/v1/subjects/abc", 0, "abc", NULL);
	expect_ok(r, "DELETE", "/v1/subjects/abc", 1, "abc", NULL);
	expect_ok(r, "POST", "/v1/subjects", 3, NULL);
	expect_ok(r, "GET", "/healthz", 8, NULL);
}

/* The same table in the opposite order gives the same answers. */
static void
test_literal_beats_param_any_order(void **state)
{
	const struct cm_route rev[] = { routes[2], routes[0] };
	char err[128];
	struct cm_router *r;
	struct match mt;

	(void)state;
	r = cm_router_new(rev, NELEM(rev), err, sizeof(err));
	assert_non_null(r);
	do_match(r, "GET", "/v1/subjects/resolve", &mt);
	assert_int_equal(mt.m, CM_MATCH_OK);
	assert_int_equal(mt.index, 0);
	assert_ptr_equal(mt.route->r_fn, h_b);
	assert_int_equal(mt.nparams, 0);
	do_match(r, "GET", "/v1/subjects/other", &mt);
	assert_int_equal(mt.m, CM_MATCH_OK);
	assert_int_equal(mt.index, 1);
	assert_ptr_equal(mt.route->r_fn, h_a);
	assert_int_equal(mt.nparams, 1);
	assert_string_equal(mt.params[0], "other");
	match_free(&mt);
	cm_router_free(r);
}

/* Both /a/{x}/c and /a/b/{y} match /a/b/c: the leftmost literal wins. */
static void
test_leftmost_literal_wins(void **state)
{
	const struct cm_router *r = *state;

	expect_ok(r, "GET", "/a/b/c", 7, "c", NULL);
	expect_ok(r, "GET", "/a/z/c", 6, "z", NULL);
	expect_ok(r, "GET", "/a/b/z", 7, "z", NULL);
	expect_status(r, "GET", "/a/z/z", CM_MATCH_NO_PATH);
}

static void
test_two_params(void **state)
{
	const struct cm_router *r = *state;

	expect_ok(r, "GET", "/v1/subjects/s1/consents/newsletter", 4, "s1",
	    "newsletter", NULL);
	expect_ok(r, "PUT", "/v1/subjects/x%20y/consents/a%2Fb", 5, "x y", "a/b", NULL);
	/* A parameter segment may hold a literal's text. */
	expect_ok(r, "GET", "/v1/subjects/resolve/consents/resolve", 4, "resolve",
	    "resolve", NULL);
	expect_ok(r, "POST", "/v1/subjects/resolve/erase", 9, "resolve", NULL);
}

static void
test_method_not_allowed(void **state)
{
	const struct cm_router *r = *state;
	struct match mt;

	do_match(r, "POST", "/v1/subjects/abc", &mt);
	assert_int_equal(mt.m, CM_MATCH_NO_METHOD);
	assert_string_equal(mt.allow, "GET, DELETE");
	assert_int_equal(mt.nparams, 0);

	do_match(r, "PATCH", "/v1/subjects/a/consents/b", &mt);
	assert_int_equal(mt.m, CM_MATCH_NO_METHOD);
	assert_string_equal(mt.allow, "GET, PUT");

	do_match(r, "GET", "/v1/subjects", &mt);
	assert_int_equal(mt.m, CM_MATCH_NO_METHOD);
	assert_string_equal(mt.allow, "POST");

	/* The literal pattern wins, so only its methods are allowed. */
	do_match(r, "DELETE", "/v1/subjects/resolve", &mt);
	assert_int_equal(mt.m, CM_MATCH_NO_METHOD);
	assert_string_equal(mt.allow, "GET");

	/* Methods are case-sensitive. */
	do_match(r, "get", "/healthz", &mt);
	assert_int_equal(mt.m, CM_MATCH_NO_METHOD);
	assert_string_equal(mt.allow, "GET");
}

/* A short Allow buffer is never overrun and never ends in a partial entry. */
static void
test_allow_truncation(void **state)
{
	const struct cm_router *r = *state;
	const struct cm_route *route = NULL;
	char allow[16], *params[CM_ROUTE_MAX_PARAMS];
	const char *want;
	size_t index, n, len;

	for (len = 1; len <= 12; len++) {
		memset(allow, 'Z', sizeof(allow));
		assert_int_equal(cm_router_match(r, "POST", "/v1/subjects/abc", &route,
		    &index, params, &n, allow, len), CM_MATCH_NO_METHOD);
		assert_non_null(memchr(allow, '\0', len));
		assert_int_equal(allow[len], 'Z');
		want = len >= 12 ? "GET, DELETE" : len >= 4 ? "GET" : "";
		if (strcmp(allow, want) != 0)
			fail_msg("allowlen %zu: Allow \"%s\", want \"%s\" (no partial "
			    "method names)", len, allow, want);
	}
	/* ALLOWLEN 0: nothing written. */
	allow[0] = 'Q';
	assert_int_equal(cm_router_match(r, "POST", "/v1/subjects/abc", &route,
	    &index, params, &n, allow, 0), CM_MATCH_NO_METHOD);
	assert_int_equal(allow[0], 'Q');
}

static void
test_head_matches_get(void **state)
{
	const struct cm_router *r = *state;
	struct match mt;

	expect_ok(r, "HEAD", "/healthz", 8, NULL);
	expect_ok(r, "HEAD", "/v1/subjects/abc", 0, "abc", NULL);
	expect_ok(r, "HEAD", "/v1/subjects/resolve", 2, NULL);
	/* No GET route: no HEAD either. */
	do_match(r, "HEAD", "/v1/subjects", &mt);
	assert_int_equal(mt.m, CM_MATCH_NO_METHOD);
	assert_string_equal(mt.allow, "POST");
}

static void
test_not_found(void **state)
{
	const struct cm_router *r = *state;

	expect_status(r, "GET", "/v2/subjects/abc", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/v1/subjects/a/b", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/v1", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "healthz", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/healthz2", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/health", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/HEALTHZ", CM_MATCH_NO_PATH);
	/* Literal segments are compared raw, not decoded. */
	expect_status(r, "GET", "/%68ealthz", CM_MATCH_NO_PATH);
	/* More segments than any pattern can have. */
	expect_status(r, "GET", "/a/b/c/d/e/f/g/h/i/j", CM_MATCH_NO_PATH);
}

static void
test_trailing_slash_and_empty_segments(void **state)
{
	const struct cm_router *r = *state;

	expect_status(r, "GET", "/healthz/", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/v1/subjects/abc/", CM_MATCH_NO_PATH);
	expect_status(r, "POST", "/v1/subjects/", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "//healthz", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/v1//subjects", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/v1/subjects//consents/x", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/v1/subjects/a/consents/", CM_MATCH_NO_PATH);
	expect_status(r, "GET", "/v1/subjects/", CM_MATCH_NO_PATH);
}

static void
test_params_decoded_per_segment(void **state)
{
	const struct cm_router *r = *state;

	expect_ok(r, "GET", "/v1/subjects/a%2Fb", 0, "a/b", NULL);
	expect_ok(r, "GET", "/v1/subjects/a%2fb%2F..%2F", 0, "a/b/../", NULL);
	expect_ok(r, "GET", "/v1/subjects/%41%42c", 0, "ABc", NULL);
	expect_ok(r, "GET", "/v1/subjects/caf%C3%A9", 0, "caf\xc3\xa9", NULL);
	expect_ok(r, "GET", "/v1/subjects/a+b", 0, "a+b", NULL);
	expect_ok(r, "GET", "/v1/subjects/%25", 0, "%", NULL);
	expect_ok(r, "GET", "/v1/subjects/%2541", 0, "%41", NULL);
	expect_ok(r, "GET", "/v1/subjects/..", 0, "..", NULL);
	/* An encoded "resolve" is a parameter, not the literal. */
	expect_ok(r, "GET", "/v1/subjects/%72esolve", 0, "resolve", NULL);
}

static void
test_bad_escapes(void **state)
{
	const struct cm_router *r = *state;

	expect_status(r, "GET", "/v1/subjects/a%2", CM_MATCH_BAD_PATH);
	expect_status(r, "GET", "/v1/subjects/%", CM_MATCH_BAD_PATH);
	expect_status(r, "GET", "/v1/subjects/%zz", CM_MATCH_BAD_PATH);
	expect_status(r, "GET", "/v1/subjects/%g1", CM_MATCH_BAD_PATH);
	expect_status(r, "GET", "/v1/subjects/%1g", CM_MATCH_BAD_PATH);
	expect_status(r, "GET", "/v1/subjects/%%41", CM_MATCH_BAD_PATH);
	expect_status(r, "GET", "/v1/subjects/a%00b", CM_MATCH_BAD_PATH);
	expect_status(r, "GET", "/v1/subjects/%00", CM_MATCH_BAD_PATH);
	/* A bad second parameter after a good first one: nothing leaks. */
	expect_status(r, "GET", "/v1/subjects/good/consents/%0", CM_MATCH_BAD_PATH);
	expect_status(r, "PUT", "/v1/subjects/%41/consents/%00", CM_MATCH_BAD_PATH);
	/* A bad escape in a path no route has is just unknown. */
	expect_status(r, "GET", "/v2/%zz", CM_MATCH_NO_PATH);
	/* The method check comes first: a 405 path is not decoded. */
	expect_status(r, "PATCH", "/v1/subjects/%zz", CM_MATCH_NO_METHOD);
}

/* ---- building ------------------------------------------------------------ */

static void
test_duplicate_route_rejected(void **state)
{
	const struct cm_route dup[] = {
		{ "GET", "/v1/x/{id}", CM_AUTH_NONE, 0, 0, h_a, "", NULL, NULL },
		{ "POST", "/v1/x/{id}", CM_AUTH_NONE, 0, 0, h_a, "", NULL, NULL },
		{ "GET", "/v1/x/{id}", CM_AUTH_NONE, 0, 0, h_b, "", NULL, NULL },
	};
	char err[128] = "";

	(void)state;
	assert_null(cm_router_new(dup, NELEM(dup), err, sizeof(err)));
	assert_string_equal(err, "duplicate route GET /v1/x/{id}");
	/* Without the third, the same pattern with two methods is fine. */
	{
		struct cm_router *r = cm_router_new(dup, 2, err, sizeof(err));

		assert_non_null(r);
		cm_router_free(r);
	}
	cm_router_free(NULL);
}

static void
expect_bad_pattern(const char *pattern)
{
	const struct cm_route rt[] = {
		{ "GET", "/ok", CM_AUTH_NONE, 0, 0, h_a, "", NULL, NULL },
		{ "GET", pattern, CM_AUTH_NONE, 0, 0, h_a, "", NULL, NULL },
	};
	char err[256] = "", want[256];
	struct cm_router *r;

	r = cm_router_new(rt, NELEM(rt), err, sizeof(err));
	if (r != NULL) {
		cm_router_free(r);
		fail_msg("pattern \"%s\" was accepted", pattern);
	}
	snprintf(want, sizeof(want), "bad route pattern %s", pattern);
	assert_string_equal(err, want);
}

static void
test_bad_pattern_rejected(void **state)
{
	(void)state;
	expect_bad_pattern("");
	expect_bad_pattern("/");
	expect_bad_pattern("v1/x");
	expect_bad_pattern("/v1//x");
	expect_bad_pattern("//v1");
	expect_bad_pattern("/v1/x/");
	expect_bad_pattern("/v1/{}");
	expect_bad_pattern("/v1/{id");
	expect_bad_pattern("/v1/id}");
	expect_bad_pattern("/v1/x{id}");
	expect_bad_pattern("/v1/{id}x");
	expect_bad_pattern("/a/b/c/d/e/f/g/h/i");	/* 9 segments */
}

/*
 * rp_params can hold CM_ROUTE_MAX_PARAMS values, so a pattern with more
 * parameters can never be served in full and must be refused when the
 * router is built (today the fifth value is silently dropped).
 */
static void
test_too_many_params_rejected(void **state)
{
	const struct cm_route rt[] = {
		{ "GET", "/{a}/{b}/{c}/{d}/{e}", CM_AUTH_NONE, 0, 0, h_a, "", NULL, NULL },
	};
	char err[256] = "";
	struct cm_router *r;
	struct match mt;

	(void)state;
	r = cm_router_new(rt, NELEM(rt), err, sizeof(err));
	if (r != NULL) {
		size_t n;

		do_match(r, "GET", "/1/2/3/4/5", &mt);
		n = mt.nparams;
		match_free(&mt);
		cm_router_free(r);
		fail_msg("a pattern with %d parameters was accepted; matching it "
		    "returned %zu of them", CM_ROUTE_MAX_PARAMS + 1, n);
	}
	assert_non_null(strstr(err, "/{a}/{b}/{c}/{d}/{e}"));
}

/*
 * /items/{id} and /items/{item} match exactly the same paths, so they are
 * one pattern: DELETE /items/7 must reach the DELETE route instead of a 405
 * naming only GET, and a second GET under another parameter name is a
 * duplicate.
 */
static void
test_param_names_do_not_split_a_pattern(void **state)
{
	const struct cm_route rt[] = {
		{ "GET", "/items/{id}", CM_AUTH_NONE, 0, 0, h_a, "", NULL, NULL },
		{ "DELETE", "/items/{item}", CM_AUTH_NONE, 0, 0, h_b, "", NULL, NULL },
	};
	const struct cm_route dup[] = {
		{ "GET", "/items/{id}", CM_AUTH_NONE, 0, 0, h_a, "", NULL, NULL },
		{ "GET", "/items/{item}", CM_AUTH_NONE, 0, 0, h_b, "", NULL, NULL },
	};
	char err[256] = "";
	struct cm_router *r;
	struct match mt;

	(void)state;
	r = cm_router_new(rt, NELEM(rt), err, sizeof(err));
	if (r != NULL) {
		do_match(r, "DELETE", "/items/7", &mt);
		match_free(&mt);
		cm_router_free(r);
		if (mt.m != CM_MATCH_OK)
			fail_msg("DELETE /items/7 gave %d (Allow: %s), want CM_MATCH_OK",
			    (int)mt.m, mt.allow);
		assert_int_equal(mt.index, 1);
	}
	r = cm_router_new(dup, NELEM(dup), err, sizeof(err));
	if (r != NULL) {
		cm_router_free(r);
		fail_msg("GET /items/{id} and GET /items/{item} were both accepted");
	}
}

static void
test_empty_router(void **state)
{
	char err[64];
	struct cm_router *r;

	(void)state;
	r = cm_router_new(routes, 0, err, sizeof(err));
	assert_non_null(r);
	expect_status(r, "GET", "/healthz", CM_MATCH_NO_PATH);
	cm_router_free(r);
}

/* ---- cm_percent_decode --------------------------------------------------- */

static void
expect_decode(const char *s, size_t len, const char *want)
{
	char *d = cm_percent_decode(s, len);

	if (want == NULL) {
		if (d != NULL)
			fail_msg("\"%.*s\" decoded to \"%s\"", (int)len, s, d);
		return;
	}
	if (d == NULL)
		fail_msg("\"%.*s\" was refused", (int)len, s);
	assert_string_equal(d, want);
	free(d);
}

static void
test_percent_decode(void **state)
{
	(void)state;
	expect_decode("", 0, "");
	expect_decode("abc", 3, "abc");
	expect_decode("abc", 2, "ab");		/* LEN bounds the input */
	expect_decode("%41", 3, "A");
	expect_decode("%4a%4A", 6, "JJ");
	expect_decode("%7e%7E", 6, "~~");
	expect_decode("a%20b", 5, "a b");
	expect_decode("a+b", 3, "a+b");		/* '+' is not a space in a path */
	expect_decode("%2541", 5, "%41");	/* decoded once only */
	expect_decode("%ff%80", 6, "\xff\x80");
	expect_decode("%C3%A9", 6, "\xc3\xa9");
	expect_decode("%41%42%43", 9, "ABC");

	expect_decode("%", 1, NULL);
	expect_decode("%4", 2, NULL);
	expect_decode("a%", 2, NULL);
	expect_decode("a%4", 3, NULL);
	expect_decode("%41", 2, NULL);		/* escape cut by LEN */
	expect_decode("%g0", 3, NULL);
	expect_decode("%0g", 3, NULL);
	expect_decode("% 41", 4, NULL);
	expect_decode("%-1", 3, NULL);
	expect_decode("%%", 2, NULL);
	expect_decode("%00", 3, NULL);
	expect_decode("ab%00cd", 7, NULL);
	expect_decode("a\0b", 3, NULL);		/* a raw NUL inside LEN */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_beats_param),
		cmocka_unit_test(test_literal_beats_param_any_order),
		cmocka_unit_test(test_leftmost_literal_wins),
		cmocka_unit_test(test_two_params),
		cmocka_unit_test(test_method_not_allowed),
		cmocka_unit_test(test_allow_truncation),
		cmocka_unit_test(test_head_matches_get),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_trailing_slash_and_empty_segments),
		cmocka_unit_test(test_params_decoded_per_segment),
		cmocka_unit_test(test_bad_escapes),
		cmocka_unit_test(test_duplicate_route_rejected),
		cmocka_unit_test(test_bad_pattern_rejected),
		cmocka_unit_test(test_too_many_params_rejected),
		cmocka_unit_test(test_param_names_do_not_split_a_pattern),
		cmocka_unit_test(test_empty_router),
		cmocka_unit_test(test_percent_decode),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
