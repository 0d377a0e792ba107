/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for cm_req_log_field (src/http/request.c), which adds fields
 * to a request's access-log line: a key must be 1-32 of a-z, 0-9 and _, not
 * one the line has already (its own members, or one added before); a value
 * is JSON-escaped, cut at 64 bytes without splitting a UTF-8 sequence, or
 * null; and a full line refuses more fields whole, leaving valid JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../src/http/http_int.h"

/* The fields as the access line carries them, parsed back as JSON. */
static json_t *
fields(struct cm_request *rq)
{
	char buf[600];
	json_t *o;

	snprintf(buf, sizeof(buf), "{\"x\":0%s}", rq->rq_logf);
	o = json_loads(buf, 0, NULL);
	assert_non_null(o);
	return o;
}

static void
test_keys(void **state)
{
	struct cm_request rq;

	(void)state;
	memset(&rq, 0, sizeof(rq));
	assert_true(cm_req_log_field(&rq, "purpose", "newsletter"));
	assert_false(cm_req_log_field(&rq, "purpose", "again"));
	assert_false(cm_req_log_field(&rq, "", "x"));
	assert_false(cm_req_log_field(&rq, "Purpose", "x"));
	assert_false(cm_req_log_field(&rq, "a-b", "x"));
	assert_false(cm_req_log_field(&rq, "a\"b", "x"));
	assert_false(cm_req_log_field(&rq, "abcdefghijklmnopqrstuvwxyz0123456", "x"));
	assert_true(cm_req_log_field(&rq, "abcdefghijklmnopqrstuvwxyz012345", "x"));
	assert_false(cm_req_log_field(&rq, "status", "200"));
	assert_false(cm_req_log_field(&rq, "route", "/"));
	assert_false(cm_req_log_field(&rq, "client", "x"));
	assert_false(cm_req_log_field(&rq, "event", "x"));
	assert_string_equal(rq.rq_logf, ",\"purpose\":\"newsletter\","
	    "\"abcdefghijklmnopqrstuvwxyz012345\":\"x\"");
}

static void
test_values(void **state)
{
	struct cm_request rq;
	char cut[80];
	json_t *o;

	(void)state;
	memset(&rq, 0, sizeof(rq));
	assert_true(cm_req_log_field(&rq, "quote", "a\"b\\c\n,\"status\":1"));
	assert_true(cm_req_log_field(&rq, "none", NULL));
	/* 63 bytes, then a two-byte sequence that would straddle the cut. */
	memset(cut, 'a', 63);
	strcpy(cut + 63, "\xc3\xa9zz");
	assert_true(cm_req_log_field(&rq, "cut", cut));
	o = fields(&rq);
	assert_string_equal(json_string_value(json_object_get(o, "quote")), "a\"b\\c\n,\"status\":1");
	assert_true(json_is_null(json_object_get(o, "none")));
	assert_int_equal(strlen(json_string_value(json_object_get(o, "cut"))), 63);
	assert_null(json_object_get(o, "status"));
	json_decref(o);
}

static void
test_full(void **state)
{
	struct cm_request rq;
	char key[8], val[65];
	int i, added = 0;
	json_t *o;

	(void)state;
	memset(&rq, 0, sizeof(rq));
	memset(val, '"', 64);
	val[64] = '\0';
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		added += cm_req_log_field(&rq, key, val);
	}
	assert_true(added > 0 && added < 20);
	assert_true(rq.rq_logf_len < sizeof(rq.rq_logf));
	o = fields(&rq);
	assert_int_equal(json_object_size(o), (size_t)added + 1);
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests_name("request", tests, NULL, NULL);
}
