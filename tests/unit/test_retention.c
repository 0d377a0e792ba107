/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for retention (src/core/retention*.c): IP address truncation
 * (IPv4 to /24, IPv6 to /48, IPv4-mapped IPv6 as IPv4; anything that is
 * not an address refused, so the caller drops it; truncating twice changes
 * nothing), and the policy's retention periods: their defaults, explicit
 * values, and the values start-up refuses, each error naming the file, the
 * line and the field. The sweep itself runs against a real server and
 * store in tests/http/retention.test.mjs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consentd/policy.h"
#include "consentd/retention.h"
#include "consentd/util.h"

#define EXAMPLE	"policy/policy.json"

static char	*example;
static size_t	 example_len;

static int
group_setup(void **state)
{
	(void)state;
	example = cm_file_read(EXAMPLE, CM_POLICY_MAX_BYTES, &example_len);
	if (example == NULL) {
		print_error("cannot read %s (run from the repository root): %s\n",
		    EXAMPLE, strerror(errno));
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	free(example);
	return 0;
}

static void
expect_cut(const char *in, const char *want)
{
	char out[64], again[64];

	if (cm_retention_ip_truncate(in, out, sizeof(out)) != 0)
		fail_msg("%s: refused", in);
	assert_string_equal(out, want);
	/* What is cut stays as it is. */
	assert_int_equal(cm_retention_ip_truncate(out, again, sizeof(again)), 0);
	assert_string_equal(again, out);
}

static void
test_ipv4(void **state)
{
	(void)state;
	expect_cut("203.0.113.77", "203.0.113.0");
	expect_cut("198.51.100.0", "198.51.100.0");
	expect_cut("255.255.255.255", "255.255.255.0");
	expect_cut("0.0.0.1", "0.0.0.0");
}

static void
test_ipv6(void **state)
{
	(void)state;
	expect_cut("2001:db8:1234:5678:9abc:def0:1234:5678", "2001:db8:1234::");
	expect_cut("2001:0DB8:0001:0002::1", "2001:db8:1::");
	expect_cut("2001:db8:1234::", "2001:db8:1234::");
	expect_cut("::1", "::");
	expect_cut("fe80::1:2:3:4", "fe80::");
	/* IPv4-mapped: the IPv4 rule, so a dual-stack listener cuts as much. */
	expect_cut("::ffff:198.51.100.23", "::ffff:198.51.100.0");
}

static void
test_not_an_address(void **state)
{
	static const char *const bad[] = {
		"", "203.0.113", "203.0.113.77.1", "203.0.113.256", "203.0.113.77:443",
		" 203.0.113.77", "203.0.113.77 ", "fe80::1%eth0", "[2001:db8::1]",
		"2001:db8::1::2", "example.com", "unknown",
		"2001:0db8:0000:0000:0000:0000:0000:0001:ffff", NULL
	};
	char out[64], lon[200];
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++)
		if (cm_retention_ip_truncate(bad[i], out, sizeof(out)) != -1)
			fail_msg("\"%s\" was taken for an address", bad[i]);
	memset(lon, '1', sizeof(lon) - 1);
	lon[sizeof(lon) - 1] = '\0';
	assert_int_equal(cm_retention_ip_truncate(lon, out, sizeof(out)), -1);
	/* No room for the answer: refused, never cut short. */
	assert_int_equal(cm_retention_ip_truncate("203.0.113.77", out, 8), -1);
}

/* ---- the policy's periods ------------------------------------------------ */

/* SRC with TEXT inserted after the top-level retention section's brace. */
static char *
with_retention(const char *src, const char *text)
{
	const char *anchor = "\"retention\": {", *at = NULL, *p;
	struct cm_buf b = { 0 };

	/* The last one: purposes have a retention object of their own. */
	for (p = src; (p = strstr(p, anchor)) != NULL; p++)
		at = p;
	assert_non_null(at);
	at += strlen(anchor);
	cm_buf_append(&b, src, (size_t)(at - src));
	cm_buf_append(&b, text, strlen(text));
	cm_buf_append(&b, at, strlen(at));
	return b.b_data;
}

/* SRC without the line holding NEEDLE. */
static char *
without_line(const char *src, const char *needle)
{
	const char *at = strstr(src, needle), *start, *end;
	struct cm_buf b = { 0 };

	assert_non_null(at);
	for (start = at; start > src && start[-1] != '\n'; start--)
		;
	end = strchr(at, '\n');
	assert_non_null(end);
	cm_buf_append(&b, src, (size_t)(start - src));
	cm_buf_append(&b, end + 1, strlen(end + 1));
	return b.b_data;
}

static void
test_policy_defaults(void **state)
{
	struct cm_policy *p;
	char err[512], *t, *u;

	(void)state;
	assert_int_equal(cm_policy_parse(EXAMPLE, example, example_len, &p, err,
	    sizeof(err)), CM_OK);
	assert_int_equal(p->pol_outbox_delivered_days, 90);
	assert_int_equal(p->pol_evidence_ip_days, 180);
	assert_int_equal(p->pol_closed_requests_days, 1095);
	cm_policy_free(p);

	u = without_line(example, "\"outbox_delivered_days\"");
	t = without_line(u, "\"evidence_ip_truncate_days\"");
	free(u);
	assert_int_equal(cm_policy_parse(EXAMPLE, t, strlen(t), &p, err, sizeof(err)), CM_OK);
	assert_int_equal(p->pol_outbox_delivered_days, CM_RETENTION_OUTBOX_DAYS);
	assert_int_equal(p->pol_evidence_ip_days, CM_RETENTION_EVIDENCE_DAYS);
	/* The public policy states the defaults it applies. */
	assert_non_null(strstr(p->pol_public, "\"evidence_ip_truncate_days\":180"));
	assert_non_null(strstr(p->pol_public, "\"outbox_delivered_days\":90"));
	cm_policy_free(p);
	free(t);
}

static void
test_policy_values(void **state)
{
	struct cm_policy *p;
	char err[512], *t;

	(void)state;
	t = with_retention(example, " \"packages_days\": 2,");
	assert_int_equal(cm_policy_parse(EXAMPLE, t, strlen(t), &p, err, sizeof(err)), CM_OK);
	assert_int_equal(p->pol_packages_days, 2);
	cm_policy_free(p);
	free(t);
}

/* Each refused with FILE:LINE: FIELD naming the field. */
static void
test_policy_refused(void **state)
{
	static const struct {
		const char	*insert;
		const char	*field;
		const char	*msg;
	} bad[] = {
		{ " \"bogus_days\": 1,", "retention.bogus_days", "unknown field" },
		{ " \"outbox_delivered_days\": 0,", "retention.outbox_delivered_days",
		  "between 1 and 3650" },
		{ " \"outbox_delivered_days\": -5,", "retention.outbox_delivered_days",
		  "between 1 and 3650" },
		{ " \"outbox_delivered_days\": 3651,", "retention.outbox_delivered_days",
		  "between 1 and 3650" },
		{ " \"outbox_delivered_days\": \"90\",", "retention.outbox_delivered_days",
		  "an integer" },
		{ " \"outbox_delivered_days\": 1.5,", "retention.outbox_delivered_days",
		  "an integer" },
		{ " \"packages_days\": -1,", "retention.packages_days", "between 1 and 365" },
		{ " \"closed_requests_days\": -1,", "retention.closed_requests_days",
		  "between 1" },
	};
	struct cm_policy *p;
	char err[512], *t, want[128], *s;
	size_t i;

	(void)state;
	for (i = 0; i < CM_NELEM(bad); i++) {
		/* Replacing a field the example has, or adding one it lacks. */
		if (strstr(bad[i].insert, "outbox_delivered_days") != NULL)
			s = without_line(example, "\"outbox_delivered_days\"");
		else if (strstr(bad[i].insert, "closed_requests_days") != NULL)
			s = without_line(example, "\"closed_requests_days\"");
		else
			s = strdup(example);
		t = with_retention(s, bad[i].insert);
		free(s);
		p = NULL;
		if (cm_policy_parse(EXAMPLE, t, strlen(t), &p, err, sizeof(err)) != CM_INVALID)
			fail_msg("%s: accepted", bad[i].insert);
		snprintf(want, sizeof(want), ": %s: ", bad[i].field);
		if (strncmp(err, EXAMPLE ":", strlen(EXAMPLE ":")) != 0 ||
		    strstr(err, want) == NULL || strstr(err, bad[i].msg) == NULL)
			fail_msg("%s: %s", bad[i].insert, err);
		assert_null(p);
		free(t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_not_an_address),
		cmocka_unit_test(test_policy_defaults),
		cmocka_unit_test(test_policy_values),
		cmocka_unit_test(test_policy_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
