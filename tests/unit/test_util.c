/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the dependency-free helpers (src/util/util.c, src/util/mem.c),
 * the background worker and helper threads (src/util/worker.c, par.c),
 * and token scopes (src/core/scope.c): strict integer parsing with
 * cm_parse_i64 (junk, signs, leading zeros and whitespace, overflow and
 * bounds), JSON string escaping including every truncation length, RFC 3339
 * time formatting of known instants, the growable buffer, whole-file reads
 * with a size limit, hex encoding, JSON-lines logging (valid JSON, level
 * filter, truncation), result names, and the scope list parser and
 * formatter (round trip, rejection of unknown and empty items), the scope
 * bits (stable, as tokens store them) and the one inclusion between scopes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "consentd/common.h"
#include "consentd/metrics.h"
#include "consentd/par.h"
#include "consentd/scope.h"
#include "consentd/util.h"
#include "consentd/worker.h"

/* ---- helpers ------------------------------------------------------------ */

static char *
make_tmpdir(void)
{
	char tmpl[] = "/tmp/consentd-test-util-XXXXXX";
	char *d;

	d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* ---- cm_parse_i64 -------------------------------------------------------- */

/* Expects S to be rejected, and *OUT left alone. */
static void
expect_parse_fail(const char *s, int64_t min, int64_t max)
{
	int64_t v = 12345;

	if (cm_parse_i64(s, min, max, &v) != -1)
		fail_msg("cm_parse_i64(\"%s\") was accepted (value %lld)",
		    s ? s : "(null)", (long long)v);
	assert_int_equal(v, 12345);
}

static void
expect_parse_ok(const char *s, int64_t min, int64_t max, int64_t want)
{
	int64_t v = 12345;

	if (cm_parse_i64(s, min, max, &v) != 0)
		fail_msg("cm_parse_i64(\"%s\") was refused", s);
	assert_int_equal(v, want);
}

static void
test_parse_i64_valid(void **state)
{
	(void)state;
	expect_parse_ok("0", INT64_MIN, INT64_MAX, 0);
	expect_parse_ok("42", INT64_MIN, INT64_MAX, 42);
	expect_parse_ok("-42", INT64_MIN, INT64_MAX, -42);
	expect_parse_ok("1000000", 0, 1000000, 1000000);
	expect_parse_ok("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
	expect_parse_ok("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
}

static void
test_parse_i64_junk(void **state)
{
	(void)state;
	expect_parse_fail(NULL, INT64_MIN, INT64_MAX);
	expect_parse_fail("", INT64_MIN, INT64_MAX);
	expect_parse_fail("abc", INT64_MIN, INT64_MAX);
	expect_parse_fail("12x", INT64_MIN, INT64_MAX);
	expect_parse_fail("x12", INT64_MIN, INT64_MAX);
	expect_parse_fail("1 2", INT64_MIN, INT64_MAX);
	expect_parse_fail("12 ", INT64_MIN, INT64_MAX);
	expect_parse_fail(" 12", INT64_MIN, INT64_MAX);
	expect_parse_fail("-", INT64_MIN, INT64_MAX);
	expect_parse_fail("--1", INT64_MIN, INT64_MAX);
	expect_parse_fail("0x10", INT64_MIN, INT64_MAX);
	expect_parse_fail("1e3", INT64_MIN, INT64_MAX);
	expect_parse_fail("1.0", INT64_MIN, INT64_MAX);
}

static void
test_parse_i64_plus_and_leading_zeros(void **state)
{
	(void)state;
	expect_parse_fail("+1", INT64_MIN, INT64_MAX);
	expect_parse_fail("+0", INT64_MIN, INT64_MAX);
	expect_parse_fail("01", INT64_MIN, INT64_MAX);
	expect_parse_fail("00", INT64_MIN, INT64_MAX);
	expect_parse_fail("007", INT64_MIN, INT64_MAX);
}

/* A list cursor reads back only with its own prefix, and never junk. */
static void
test_cursor_round_trip(void **state)
{
	char c[32];
	int64_t v = 7;

	(void)state;
	cm_cursor_format(c, sizeof(c), "t", 42);
	assert_int_equal(cm_cursor_parse(c, "t", &v), 0);
	assert_int_equal(v, 42);
	cm_cursor_format(c, sizeof(c), "h", 0);
	assert_int_equal(cm_cursor_parse(c, "h", &v), 0);
	assert_int_equal(v, 0);
	v = 7;
	assert_int_equal(cm_cursor_parse("t42", "h", &v), -1);
	assert_int_equal(cm_cursor_parse("t", "t", &v), -1);
	assert_int_equal(cm_cursor_parse("t-1", "t", &v), -1);
	assert_int_equal(cm_cursor_parse("t042", "t", &v), -1);
	assert_int_equal(cm_cursor_parse("t42x", "t", &v), -1);
	assert_int_equal(cm_cursor_parse("t9223372036854775808", "t", &v), -1);
	assert_int_equal(cm_cursor_parse(NULL, "t", &v), -1);
	assert_int_equal(v, 7);
}

/*
 * The parser refuses " 12", so it must refuse other leading white space
 * too: strtoll() skips every isspace() character, not just ' '.
 */
static void
test_parse_i64_other_leading_whitespace(void **state)
{
	(void)state;
	expect_parse_fail("\t12", INT64_MIN, INT64_MAX);
	expect_parse_fail("\n12", INT64_MIN, INT64_MAX);
	expect_parse_fail("\r\n12", INT64_MIN, INT64_MAX);
	expect_parse_fail("\v12", INT64_MIN, INT64_MAX);
	expect_parse_fail("\f12", INT64_MIN, INT64_MAX);
}

/* The parser refuses "012", so it must refuse "-012" too. */
static void
test_parse_i64_negative_leading_zeros(void **state)
{
	(void)state;
	expect_parse_fail("-012", INT64_MIN, INT64_MAX);
	expect_parse_fail("-00", INT64_MIN, INT64_MAX);
}

static void
test_parse_i64_range(void **state)
{
	(void)state;
	expect_parse_fail("9223372036854775808", INT64_MIN, INT64_MAX);
	expect_parse_fail("-9223372036854775809", INT64_MIN, INT64_MAX);
	expect_parse_fail("99999999999999999999999", INT64_MIN, INT64_MAX);
	expect_parse_ok("1", 1, 10, 1);
	expect_parse_ok("10", 1, 10, 10);
	expect_parse_fail("0", 1, 10);
	expect_parse_fail("11", 1, 10);
	expect_parse_fail("-1", 0, 65535);
	expect_parse_ok("65535", 0, 65535, 65535);
	expect_parse_fail("65536", 0, 65535);
	expect_parse_ok("-5", -5, -1, -5);
	expect_parse_fail("-6", -5, -1);
	expect_parse_fail("0", -5, -1);
}

/* ---- cm_json_escape ----------------------------------------------------- */

static void
test_json_escape_basic(void **state)
{
	char out[256];

	(void)state;
	assert_string_equal(cm_json_escape(out, sizeof(out), ""), "");
	assert_string_equal(cm_json_escape(out, sizeof(out), "plain text"), "plain text");
	assert_string_equal(cm_json_escape(out, sizeof(out), "a\"b\\c"), "a\\\"b\\\\c");
	assert_string_equal(cm_json_escape(out, sizeof(out), "\n\t\r\x01\x1f\x7f"),
	    "\\u000a\\u0009\\u000d\\u0001\\u001f\\u007f");
	/* UTF-8 passes through untouched; '/' needs no escape. */
	assert_string_equal(cm_json_escape(out, sizeof(out), "caf\xc3\xa9 a/b"),
	    "caf\xc3\xa9 a/b");
	/* The return value is DST. */
	assert_ptr_equal(cm_json_escape(out, sizeof(out), "x"), out);
}

static void
test_json_escape_result_is_valid_json(void **state)
{
	char src[128], esc[1024], doc[1100];
	json_error_t je;
	json_t *j;
	int i;

	(void)state;
	/* Every byte value from 1 to 127. */
	for (i = 1; i < 128; i++)
		src[i - 1] = (char)i;
	src[127] = '\0';
	cm_json_escape(esc, sizeof(esc), src);
	snprintf(doc, sizeof(doc), "\"%s\"", esc);
	j = json_loads(doc, JSON_DECODE_ANY, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(j), src);
	json_decref(j);
}

/*
 * For every buffer size the output must be the escape of some prefix of the
 * input (so no escape is ever split), NUL-terminated inside the buffer, and
 * the longest such prefix that fits.
 */
static void
test_json_escape_truncation(void **state)
{
	static const char src[] = "ab\"c\\d\x01" "e\x7f" "fgh\n";
	char out[80];
	size_t n, k, dstlen, best;
	bool found;

	(void)state;
	n = strlen(src);
	assert_true(n < 64);
	{
		/* Escapes of every prefix. */
		char (*pre)[80] = calloc(n + 1, sizeof(*pre));
		char tmp[64];

		assert_non_null(pre);
		for (k = 0; k <= n; k++) {
			memcpy(tmp, src, k);
			tmp[k] = '\0';
			cm_json_escape(pre[k], sizeof(pre[k]), tmp);
		}
		for (dstlen = 1; dstlen < sizeof(out); dstlen++) {
			memset(out, 'Z', sizeof(out));
			cm_json_escape(out, dstlen, src);
			assert_non_null(memchr(out, '\0', dstlen));
			/* Nothing written past DSTLEN. */
			for (k = dstlen; k < sizeof(out); k++)
				assert_int_equal(out[k], 'Z');
			found = false;
			best = 0;
			for (k = 0; k <= n; k++) {
				if (strlen(pre[k]) < dstlen)
					best = k;
				if (strcmp(out, pre[k]) == 0)
					found = true;
			}
			if (!found)
				fail_msg("dstlen %zu: \"%s\" splits an escape", dstlen, out);
			assert_string_equal(out, pre[best]);
		}
		free(pre);
	}
	/* DSTLEN 0: nothing is written at all. */
	out[0] = 'Q';
	cm_json_escape(out, 0, src);
	assert_int_equal(out[0], 'Q');
	/* DSTLEN 1: just the terminator. */
	out[0] = 'Q';
	cm_json_escape(out, 1, src);
	assert_int_equal(out[0], '\0');
}

/*
 * The output is meant for a JSON document, which must be UTF-8: cutting
 * the input short must not cut a multi-byte character in two.
 */
static void
test_json_escape_truncation_keeps_utf8(void **state)
{
	/* 2-, 3- and 4-byte characters: n-tilde, e-acute, euro sign, emoji. */
	static const char src[] = "a\xc3\xb1\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
	char out[32], doc[40];
	json_error_t je;
	size_t dstlen;
	json_t *j;

	(void)state;
	for (dstlen = 1; dstlen <= sizeof(src); dstlen++) {
		cm_json_escape(out, dstlen, src);
		snprintf(doc, sizeof(doc), "\"%s\"", out);
		if ((j = json_loads(doc, JSON_DECODE_ANY, &je)) == NULL)
			fail_msg("dstlen %zu: output is not valid UTF-8 JSON: %s", dstlen,
			    je.text);
		/* What is kept is a prefix of the input. */
		assert_int_equal(strncmp(json_string_value(j), src, strlen(out)), 0);
		json_decref(j);
	}
}

/* ---- time ---------------------------------------------------------------- */

static void
test_time_format(void **state)
{
	char out[32];

	(void)state;
	cm_time_format(out, 0);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	cm_time_format(out, 999999);		/* sub-second part dropped */
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	cm_time_format(out, INT64_C(1000000));
	assert_string_equal(out, "1970-01-01T00:00:01Z");
	cm_time_format(out, INT64_C(951782400) * 1000000);
	assert_string_equal(out, "2000-02-29T00:00:00Z");
	cm_time_format(out, INT64_C(1700000000) * 1000000 + 123456);
	assert_string_equal(out, "2023-11-14T22:13:20Z");
	cm_time_format(out, INT64_C(1795354951) * 1000000);
	assert_string_equal(out, "2026-11-22T13:42:31Z");
	cm_time_format(out, INT64_C(2147483648) * 1000000);	/* past 2038 */
	assert_string_equal(out, "2038-01-19T03:14:08Z");
	cm_time_format(out, INT64_C(253402300799) * 1000000);
	assert_string_equal(out, "9999-12-31T23:59:59Z");
	cm_time_format(out, INT64_C(-1000000));
	assert_string_equal(out, "1969-12-31T23:59:59Z");
}

static void
test_time_now(void **state)
{
	int64_t a, b, m1, m2;

	(void)state;
	a = cm_time_now_us();
	/* Somewhere after 2024-01-01 and before 2100-01-01. */
	assert_true(a > INT64_C(1704067200) * 1000000);
	assert_true(a < INT64_C(4102444800) * 1000000);
	m1 = cm_time_mono_us();
	m2 = cm_time_mono_us();
	assert_true(m2 >= m1);
	b = cm_time_now_us();
	assert_true(b >= a);
}

/* ---- cm_buf -------------------------------------------------------------- */

static void
test_buf(void **state)
{
	struct cm_buf b;
	char big[1000];
	size_t cap;
	int i;

	(void)state;
	memset(&b, 0, sizeof(b));
	cm_buf_append(&b, "", 0);
	assert_non_null(b.b_data);
	assert_int_equal(b.b_len, 0);
	assert_string_equal(b.b_data, "");

	cm_buf_append(&b, "hello", 5);
	cm_buf_appendf(&b, ", %s %d%c", "world", 42, '!');
	assert_int_equal(b.b_len, strlen("hello, world 42!"));
	assert_string_equal(b.b_data, "hello, world 42!");

	/* Binary data with an embedded NUL: the length counts it. */
	cm_buf_append(&b, "a\0b", 3);
	assert_int_equal(b.b_len, 19);
	assert_memory_equal(b.b_data + 16, "a\0b", 4);

	/* Growth well past the first allocation, by both functions. */
	memset(big, 'x', sizeof(big));
	for (i = 0; i < 10; i++)
		cm_buf_append(&b, big, sizeof(big));
	cm_buf_appendf(&b, "%0500d", 7);
	assert_int_equal(b.b_len, 19 + 10 * sizeof(big) + 500);
	assert_true(b.b_cap > b.b_len);
	assert_int_equal(b.b_data[b.b_len], '\0');
	assert_int_equal(b.b_data[b.b_len - 1], '7');
	assert_int_equal(b.b_data[b.b_len - 2], '0');
	assert_int_equal(b.b_data[19], 'x');

	/* Reset keeps the storage. */
	cap = b.b_cap;
	cm_buf_reset(&b);
	assert_int_equal(b.b_len, 0);
	assert_int_equal(b.b_cap, cap);
	assert_string_equal(b.b_data, "");
	cm_buf_appendf(&b, "%s", "");
	assert_int_equal(b.b_len, 0);
	assert_string_equal(b.b_data, "");
	cm_buf_appendf(&b, "%d", -3);
	assert_string_equal(b.b_data, "-3");

	cm_buf_free(&b);
	assert_null(b.b_data);
	assert_int_equal(b.b_len, 0);
	assert_int_equal(b.b_cap, 0);
	cm_buf_free(&b);	/* twice is harmless */
	cm_buf_free(NULL);

	/* appendf on a fresh buffer. */
	cm_buf_appendf(&b, "%s-%s", "a", "b");
	assert_string_equal(b.b_data, "a-b");
	assert_int_equal(b.b_len, 3);
	cm_buf_free(&b);

	/* reset on a never-used buffer. */
	cm_buf_reset(&b);
	assert_null(b.b_data);
}

/* ---- cm_file_read -------------------------------------------------------- */

static void
test_file_read(void **state)
{
	char *dir, path[4200], *p;
	size_t len;

	(void)state;
	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/f", dir);
	write_file(path, "0123456789", 10);

	len = 99;
	p = cm_file_read(path, 10, &len);
	assert_non_null(p);
	assert_int_equal(len, 10);
	assert_string_equal(p, "0123456789");
	free(p);

	p = cm_file_read(path, 1024, NULL);	/* LENP may be NULL */
	assert_non_null(p);
	assert_string_equal(p, "0123456789");
	free(p);

	errno = 0;
	len = 99;
	assert_null(cm_file_read(path, 9, &len));
	assert_int_equal(errno, EFBIG);
	assert_int_equal(len, 99);

	/* Binary contents with a NUL. */
	write_file(path, "a\0b", 3);
	p = cm_file_read(path, 3, &len);
	assert_non_null(p);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "a\0b", 4);
	free(p);

	/* An empty file gives an empty string. */
	write_file(path, "", 0);
	p = cm_file_read(path, 0, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	assert_string_equal(p, "");
	free(p);
	assert_int_equal(unlink(path), 0);

	errno = 0;
	assert_null(cm_file_read(path, 1024, &len));
	assert_int_equal(errno, ENOENT);

	/* A directory is not a file. */
	errno = 0;
	assert_null(cm_file_read(dir, 1 << 20, &len));
	assert_int_equal(errno, EINVAL);

	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* ---- cm_hex_encode ------------------------------------------------------- */

static void
test_hex_encode(void **state)
{
	static const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
	char out[2 * sizeof(in) + 2];

	(void)state;
	memset(out, 'Z', sizeof(out));
	cm_hex_encode(out, in, sizeof(in));
	assert_string_equal(out, "00017f80abcdefff");
	assert_int_equal(out[sizeof(out) - 1], 'Z');
	cm_hex_encode(out, in, 0);
	assert_string_equal(out, "");
	cm_hex_encode(out, in + 4, 1);
	assert_string_equal(out, "ab");
}

/* ---- cm_log ---------------------------------------------------------------- */

/* Runs cm_log(LVL, EVENT, "%s", FIELD) with stderr sent to a file; returns what it wrote. */
static char *
capture_log(enum cm_log_level lvl, const char *event, const char *fields)
{
	char tmpl[] = "/tmp/consentd-test-log-XXXXXX", *p;
	int fd, saved;
	size_t len;

	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	if (fields != NULL)
		cm_log(lvl, event, "%s", fields);
	else
		cm_log(lvl, event, NULL);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fd);
	p = cm_file_read(tmpl, 1 << 20, &len);
	assert_non_null(p);
	unlink(tmpl);
	return p;
}

static void
test_log(void **state)
{
	json_error_t je;
	json_t *j;
	char *out, big[4000];
	size_t i;

	(void)state;
	cm_log_set_level(CM_LOG_INFO);
	out = capture_log(CM_LOG_WARN, "test_event", ",\"status\":200");
	assert_int_equal(out[strlen(out) - 1], '\n');
	/* Exactly one line. */
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(j, "event")), "test_event");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "ts"))), 20);
	json_decref(j);
	free(out);

	out = capture_log(CM_LOG_ERROR, "no_fields", NULL);
	j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 3);
	json_decref(j);
	free(out);

	/* Below the level: nothing at all. */
	out = capture_log(CM_LOG_DEBUG, "quiet", ",\"x\":1");
	assert_string_equal(out, "");
	free(out);
	cm_log_set_level(CM_LOG_DEBUG);
	out = capture_log(CM_LOG_DEBUG, "loud", ",\"x\":1");
	assert_non_null(strstr(out, "\"loud\""));
	free(out);
	cm_log_set_level(CM_LOG_ERROR);
	out = capture_log(CM_LOG_WARN, "quiet", NULL);
	assert_string_equal(out, "");
	free(out);
	cm_log_set_level(CM_LOG_INFO);

	/* Members too long for one line are dropped, the line stays JSON. */
	big[0] = ',';
	big[1] = '"';
	big[2] = 'k';
	big[3] = '"';
	big[4] = ':';
	big[5] = '"';
	for (i = 6; i < sizeof(big) - 2; i++)
		big[i] = 'v';
	big[sizeof(big) - 2] = '"';
	big[sizeof(big) - 1] = '\0';
	out = capture_log(CM_LOG_INFO, "long", big);
	j = json_loads(out, 0, &je);
	if (j == NULL)
		fail_msg("not JSON: %s", je.text);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	assert_null(json_object_get(j, "k"));
	json_decref(j);
	free(out);
}

/* ---- mem.c ----------------------------------------------------------------- */

static void
test_result_str_and_mem(void **state)
{
	char *s;

	(void)state;
	assert_string_equal(cm_result_str(CM_OK), "ok");
	assert_string_equal(cm_result_str(CM_NOTFOUND), "not found");
	assert_string_equal(cm_result_str(CM_AUTH), "wrong key");
	assert_string_equal(cm_result_str((cm_result)99), "unknown");
	s = cm_strndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = cm_strndup("ab", 10);
	assert_string_equal(s, "ab");
	free(s);
	s = cm_strdup("");
	assert_string_equal(s, "");
	free(s);
	s = cm_calloc(16, 4);
	for (int i = 0; i < 64; i++)
		assert_int_equal(s[i], 0);
	s = cm_reallocarray(s, 32, 4);
	assert_int_equal(s[63], 0);
	free(s);
}

/* ---- scopes ------------------------------------------------------------ */

static void
test_scope_parse(void **state)
{
	char bad[80];
	uint32_t m;

	(void)state;
	assert_int_equal(cm_scope_parse("consent:read", &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_CONSENT_READ);
	assert_int_equal(cm_scope_parse("consent:read,audit:read", &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_CONSENT_READ | CM_SCOPE_AUDIT_READ);
	assert_int_equal(cm_scope_parse("admin,admin", &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_ADMIN);
	assert_int_equal(cm_scope_parse("consent:read,consent:write,subjects:write,"
	    "dsr:admin,audit:read,admin", &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_ALL & ~(CM_SCOPE_CONSENT_CHECK | CM_SCOPE_SUBJECTS_READ));
	assert_int_equal(cm_scope_parse("subjects:read,consent:check", &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_SUBJECTS_READ | CM_SCOPE_CONSENT_CHECK);
	assert_int_equal(cm_scope_parse("consent:check,consent:read,consent:write,subjects:read,"
	    "subjects:write,dsr:admin,audit:read,admin", &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_ALL);
}

/*
 * Tokens store their scopes as these bits: the bits of the scopes that
 * came first never change, so a stored token keeps its meaning, and
 * consent:check and subjects:read took new ones.
 */
static void
test_scope_bits_are_stable(void **state)
{
	(void)state;
	assert_int_equal(CM_SCOPE_CONSENT_READ, 1u << 0);
	assert_int_equal(CM_SCOPE_CONSENT_WRITE, 1u << 1);
	assert_int_equal(CM_SCOPE_SUBJECTS_WRITE, 1u << 2);
	assert_int_equal(CM_SCOPE_DSR_ADMIN, 1u << 3);
	assert_int_equal(CM_SCOPE_AUDIT_READ, 1u << 4);
	assert_int_equal(CM_SCOPE_ADMIN, 1u << 5);
	assert_int_equal(CM_SCOPE_CONSENT_CHECK, 1u << 6);
	assert_int_equal(CM_SCOPE_SUBJECTS_READ, 1u << 7);
	assert_int_equal(CM_SCOPE_ALL, 0xffu);
}

/* consent:read includes consent:check; otherwise a scope grants only itself. */
static void
test_scope_allows(void **state)
{
	uint32_t have, need;

	(void)state;
	assert_true(cm_scope_allows(CM_SCOPE_CONSENT_READ, CM_SCOPE_CONSENT_CHECK));
	assert_false(cm_scope_allows(CM_SCOPE_CONSENT_CHECK, CM_SCOPE_CONSENT_READ));
	assert_false(cm_scope_allows(CM_SCOPE_CONSENT_READ, CM_SCOPE_SUBJECTS_READ));
	assert_false(cm_scope_allows(CM_SCOPE_SUBJECTS_WRITE, CM_SCOPE_SUBJECTS_READ));
	assert_false(cm_scope_allows(CM_SCOPE_ADMIN, CM_SCOPE_SUBJECTS_READ));
	assert_true(cm_scope_allows(CM_SCOPE_ALL, CM_SCOPE_SUBJECTS_READ));
	for (have = 1; have & CM_SCOPE_ALL; have <<= 1)
		for (need = 1; need & CM_SCOPE_ALL; need <<= 1)
			assert_int_equal(cm_scope_allows(have, need), have == need ||
			    (have == CM_SCOPE_CONSENT_READ && need == CM_SCOPE_CONSENT_CHECK));
}

static void
expect_scope_fail(const char *list, const char *want_bad)
{
	char bad[80];
	uint32_t m = 7;

	strcpy(bad, "untouched");
	if (cm_scope_parse(list, &m, bad, sizeof(bad)) != -1)
		fail_msg("scope list \"%s\" was accepted", list ? list : "(null)");
	assert_string_equal(bad, want_bad);
}

static void
test_scope_reject(void **state)
{
	char bad[16], longitem[101];
	uint32_t m;

	(void)state;
	expect_scope_fail("", "(empty)");
	expect_scope_fail(NULL, "(empty)");
	expect_scope_fail("Admin", "Admin");
	expect_scope_fail("consent:read,,admin", "");
	expect_scope_fail("admin,", "");
	expect_scope_fail(",admin", "");
	expect_scope_fail(",", "");
	expect_scope_fail("consent:read,nope,admin", "nope");
	expect_scope_fail("consent:read ", "consent:read ");
	expect_scope_fail(" admin", " admin");
	expect_scope_fail("consent", "consent");
	expect_scope_fail("consent:readx", "consent:readx");
	expect_scope_fail("adminadmin", "adminadmin");
	/* A long unknown item is cut to 64 bytes in BAD, and to BADLEN. */
	memset(longitem, 'q', 100);
	longitem[100] = '\0';
	{
		char want[65];

		memset(want, 'q', 64);
		want[64] = '\0';
		expect_scope_fail(longitem, want);
	}
	assert_int_equal(cm_scope_parse(longitem, &m, bad, sizeof(bad)), -1);
	assert_int_equal(strlen(bad), sizeof(bad) - 1);
}

static void
test_scope_format_round_trip(void **state)
{
	char out[128], bad[80];
	uint32_t mask, m;

	(void)state;
	cm_scope_format(0, out, sizeof(out));
	assert_string_equal(out, "");
	cm_scope_format(CM_SCOPE_ALL, out, sizeof(out));
	assert_string_equal(out, "consent:check,consent:read,consent:write,subjects:read,"
	    "subjects:write,dsr:admin,audit:read,admin");
	cm_scope_format(CM_SCOPE_AUDIT_READ | CM_SCOPE_CONSENT_READ, out, sizeof(out));
	assert_string_equal(out, "consent:read,audit:read");
	/* Unknown bits are ignored. */
	cm_scope_format(CM_SCOPE_ADMIN | (1u << 20), out, sizeof(out));
	assert_string_equal(out, "admin");
	for (mask = 1; mask <= CM_SCOPE_ALL; mask++) {
		cm_scope_format(mask, out, sizeof(out));
		assert_int_equal(cm_scope_parse(out, &m, bad, sizeof(bad)), 0);
		assert_int_equal(m, mask);
	}
	/* A short buffer is always terminated inside it. */
	memset(out, 'Z', sizeof(out));
	cm_scope_format(CM_SCOPE_ALL, out, 10);
	assert_true(strlen(out) < 10);
	assert_int_equal(out[10], 'Z');
}

static void
test_scope_name(void **state)
{
	(void)state;
	assert_string_equal(cm_scope_name(CM_SCOPE_CONSENT_READ), "consent:read");
	assert_string_equal(cm_scope_name(CM_SCOPE_DSR_ADMIN), "dsr:admin");
	assert_string_equal(cm_scope_name(CM_SCOPE_ADMIN), "admin");
	assert_null(cm_scope_name(0));
	assert_null(cm_scope_name(CM_SCOPE_CONSENT_READ | CM_SCOPE_ADMIN));
	assert_string_equal(cm_scope_name(CM_SCOPE_CONSENT_CHECK), "consent:check");
	assert_string_equal(cm_scope_name(CM_SCOPE_SUBJECTS_READ), "subjects:read");
	assert_null(cm_scope_name(1u << 8));
}

/* ---- cm_worker and cm_par ---------------------------------------------- */

struct counter {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	unsigned	 calls, last_calls;
	bool		 last_was_final;	/* the final call came after the others */
};

static void
count_call(void *arg, bool last)
{
	struct counter *c = arg;

	pthread_mutex_lock(&c->lock);
	if (last) {
		c->last_calls++;
		c->last_was_final = true;
	} else {
		c->calls++;
		if (c->last_calls > 0)
			c->last_was_final = false;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void
counter_wait(struct counter *c, unsigned calls)
{
	pthread_mutex_lock(&c->lock);
	while (c->calls < calls)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static void
test_worker_wake_and_stop(void **state)
{
	struct counter c = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false };
	struct cm_worker *w;

	(void)state;
	/* No interval: it runs only when woken, and once more when stopped. */
	assert_non_null(w = cm_worker_start(count_call, &c, 0));
	cm_worker_wake(w);
	counter_wait(&c, 1);
	cm_worker_wake(w);
	counter_wait(&c, 2);
	cm_worker_stop(w);
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.last_calls, 1);
	assert_true(c.last_was_final);
	cm_worker_stop(NULL);
}

static void
test_worker_interval(void **state)
{
	struct counter c = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false };
	struct cm_worker *w;

	(void)state;
	/* Never woken, it still runs every interval; waits for 3 runs, however slow. */
	assert_non_null(w = cm_worker_start(count_call, &c, 5));
	counter_wait(&c, 3);
	cm_worker_stop(w);
	assert_int_equal(c.last_calls, 1);
	assert_true(c.last_was_final);
}

struct parts {
	unsigned	 seen[CM_PAR_MAX];	/* times part k of n ran */
	unsigned	 n;
	pthread_t	 thread[CM_PAR_MAX];
};

static void
part_run(void *arg, unsigned k, unsigned n)
{
	struct parts *p = arg;

	p->seen[k]++;
	p->n = n;
	p->thread[k] = pthread_self();
}

static void
test_par_runs_every_part_once(void **state)
{
	struct cm_par *par;
	struct parts p;
	unsigned run, k;

	(void)state;
	assert_int_equal(cm_par_width(NULL), 1);
	assert_non_null(par = cm_par_start(3));
	assert_int_equal(cm_par_width(par), 4);
	for (run = 0; run < 200; run++) {
		memset(&p, 0, sizeof(p));
		cm_par_run(par, part_run, &p);
		assert_int_equal(p.n, 4);
		for (k = 0; k < 4; k++)
			assert_int_equal(p.seen[k], 1);
		assert_true(pthread_equal(p.thread[0], pthread_self()));
		for (k = 1; k < 4; k++)
			assert_false(pthread_equal(p.thread[k], pthread_self()));
	}
	cm_par_stop(par);
	/* Without helpers the caller runs the whole as one part. */
	memset(&p, 0, sizeof(p));
	cm_par_run(NULL, part_run, &p);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.seen[0], 1);
	cm_par_stop(NULL);
}

/*
 * The HTML escape: each of the five characters that can end a text run or
 * a quoted attribute becomes its entity, everything else (UTF-8 included)
 * passes through, and an attribute-breaking payload comes out inert.
 */
static void
test_buf_append_html(void **state)
{
	struct cm_buf b = { NULL, 0, 0 };

	(void)state;
	cm_buf_append_html(&b, "");
	assert_int_equal(b.b_len, 0);
	cm_buf_append_html(&b, "plain text, caf\xc3\xa9");
	assert_string_equal(b.b_data, "plain text, caf\xc3\xa9");
	cm_buf_reset(&b);
	cm_buf_append_html(&b, "&<>\"'");
	assert_string_equal(b.b_data, "&amp;&lt;&gt;&quot;&#39;");
	cm_buf_reset(&b);
	cm_buf_append_html(&b, "\"><script>alert(1)</script><a href='x'>");
	assert_string_equal(b.b_data, "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
	    "&lt;a href=&#39;x&#39;&gt;");
	assert_null(strpbrk(b.b_data, "<>\"'"));
	cm_buf_reset(&b);
	cm_buf_append(&b, "<b>", 3);
	cm_buf_append_html(&b, "a&&b");
	assert_string_equal(b.b_data, "<b>a&amp;&amp;b");
	cm_buf_free(&b);
}

/*
 * A histogram: an observation equal to a bound falls in that bound's
 * bucket (Prometheus's le, "less or equal"), the series are cumulative,
 * +Inf equals _count, and the sum is scaled as the bounds are.
 */
static void
test_hist_buckets_and_text(void **state)
{
	static const int64_t bounds[] = { 10, 100, 1000 };
	struct cm_hist h;
	struct cm_buf b = { 0 };

	(void)state;
	cm_hist_init(&h, bounds, CM_NELEM(bounds));
	assert_int_equal(cm_hist_count(&h), 0);
	cm_hist_observe(&h, 10);
	cm_hist_observe(&h, 11);
	cm_hist_observe(&h, -5);
	cm_hist_observe(&h, 5000);
	assert_int_equal(cm_hist_count(&h), 4);
	cm_hist_write(&b, "x_seconds", "route=\"/a\"", &h, 1e3);
	assert_string_equal(b.b_data,
	    "x_seconds_bucket{route=\"/a\",le=\"0.01\"} 2\n"
	    "x_seconds_bucket{route=\"/a\",le=\"0.1\"} 3\n"
	    "x_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
	    "x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
	    "x_seconds_sum{route=\"/a\"} 5.021\n"
	    "x_seconds_count{route=\"/a\"} 4\n");
	cm_buf_reset(&b);
	cm_hist_write(&b, "n", "", &h, 1);
	assert_non_null(strstr(b.b_data, "n_bucket{le=\"10\"} 2\n"));
	assert_non_null(strstr(b.b_data, "n_sum 5021\nn_count 4\n"));
	cm_buf_free(&b);
}

/* The process's figures, each with its HELP and TYPE, and the build's version. */
static void
test_process_metrics(void **state)
{
	struct cm_buf b = { 0 };

	(void)state;
	cm_metrics_process_init("9.8.7");
	cm_metrics_process_write(&b);
	assert_non_null(strstr(b.b_data, "consentd_build_info{version=\"9.8.7\"} 1\n"));
	assert_non_null(strstr(b.b_data, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(b.b_data, "\nprocess_resident_memory_bytes "));
	assert_non_null(strstr(b.b_data, "\nprocess_open_fds "));
	assert_non_null(strstr(b.b_data, "\nprocess_start_time_seconds "));
	cm_buf_free(&b);
}

/*
 * Interning: dense ids in first-seen order, the same id on every later
 * lookup whether or not it was the last one found (the remembered hit),
 * no id for a string never added, and strings that share a prefix or
 * differ in length kept apart, through many table growths.
 */
/* Hex: what cm_hex_encode writes reads back; either case; wrong lengths and digits refused. */
static void
test_hex_decode(void **state)
{
	uint8_t in[4] = { 0x00, 0x9f, 0xa0, 0xff }, out[4];
	char hex[9];

	(void)state;
	cm_hex_encode(hex, in, sizeof(in));
	assert_string_equal(hex, "009fa0ff");
	assert_int_equal(cm_hex_decode(out, hex, sizeof(out)), 0);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(cm_hex_decode(out, "009FA0FF", sizeof(out)), 0);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(cm_hex_decode(out, "009fa0f", sizeof(out)), -1);
	assert_int_equal(cm_hex_decode(out, "009fa0ff0", sizeof(out)), -1);
	assert_int_equal(cm_hex_decode(out, "009fa0fg", sizeof(out)), -1);
	assert_int_equal(cm_hex_decode(out, "", 0), 0);
}

static void
test_intern_ids(void **state)
{
	struct cm_intern t;
	char s[32];
	uint32_t i;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(cm_intern(&t, "a", false), CM_INTERN_NONE);
	for (i = 0; i < 5000; i++) {
		snprintf(s, sizeof(s), "subject-%u", i);
		assert_int_equal(cm_intern(&t, s, true), i);
		/* The remembered hit, then a lookup right after another string. */
		assert_int_equal(cm_intern(&t, s, false), i);
		if (i > 0) {
			snprintf(s, sizeof(s), "subject-%u", i - 1);
			assert_int_equal(cm_intern(&t, s, false), i - 1);
		}
	}
	assert_int_equal(cm_intern(&t, "subject-1", true), 1);
	assert_int_equal(cm_intern(&t, "subject-", false), CM_INTERN_NONE);
	assert_int_equal(cm_intern(&t, "subject-10", false), 10);
	assert_int_equal(cm_intern(&t, "subject-100000", false), CM_INTERN_NONE);
	assert_int_equal(cm_intern(&t, "", true), 5000);
	assert_int_equal(cm_intern(&t, "", false), 5000);
	assert_string_equal(cm_intern_str(&t, 4999), "subject-4999");
	assert_null(cm_intern_str(&t, 5001));
	cm_intern_free(&t);
}

/* The large-table allocators: zeroed, contents kept across growth, any size. */
static void
test_alloc_large(void **state)
{
	size_t n = (size_t)6 << 20, i;
	uint32_t *a;
	uint8_t *b;

	(void)state;
	a = cm_calloc_large(n / sizeof(*a), sizeof(*a));
	for (i = 0; i < n / sizeof(*a); i += 4093)
		assert_int_equal(a[i], 0);
	for (i = 0; i < n / sizeof(*a); i++)
		a[i] = (uint32_t)i;
	a = cm_reallocarray_large(a, 2 * n / sizeof(*a), sizeof(*a));
	for (i = 0; i < n / sizeof(*a); i++)
		if (a[i] != (uint32_t)i)
			fail_msg("word %zu lost in the growth", i);
	a[2 * n / sizeof(*a) - 1] = 7;
	free(a);
	/* Below the threshold and empty: plain allocations. */
	b = cm_calloc_large(3, 5);
	assert_memory_equal(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
	b = cm_reallocarray_large(b, 0, 1);
	free(b);
}

/*
 * The one retry rule: a busy store runs the transaction again, pausing,
 * only within CM_RETRY_BUSY_MS of the first try; a lost commit answer
 * only a write with its request id, and at once; any other result never;
 * and never beyond CM_RETRY_TRIES tries in all.
 */
static void
test_retry_rule(void **state)
{
	static const cm_result final[] = { CM_OK, CM_NOTFOUND, CM_CONFLICT, CM_INVALID,
	    CM_IOERR, CM_AUTH, CM_NOMEM };
	struct cm_retry r;
	int64_t t0;
	size_t i;
	int n;

	(void)state;
	cm_retry_begin(&r);
	t0 = cm_time_mono_us();
	for (n = 1; cm_retry_again(&r, CM_BUSY, false); n++)
		;
	assert_int_equal(n, CM_RETRY_TRIES);
	/* 10 + 20 + 40 ms at least: the pauses grow. */
	assert_true(cm_time_mono_us() - t0 >= 70000);

	/* A busy store that already waited that long is not waited on again. */
	cm_retry_begin(&r);
	r.r_start_us -= (int64_t)CM_RETRY_BUSY_MS * 1000;
	assert_false(cm_retry_again(&r, CM_BUSY, true));
	/* A replay is not bound by it. */
	cm_retry_begin(&r);
	r.r_start_us -= (int64_t)CM_RETRY_BUSY_MS * 1000;
	assert_true(cm_retry_again(&r, CM_UNKNOWN, true));

	cm_retry_begin(&r);
	assert_false(cm_retry_again(&r, CM_UNKNOWN, false));
	cm_retry_begin(&r);
	for (n = 1; cm_retry_again(&r, CM_UNKNOWN, true); n++)
		;
	assert_int_equal(n, CM_RETRY_TRIES);
	/* A busy store after a replay counts against the same tries. */
	cm_retry_begin(&r);
	assert_true(cm_retry_again(&r, CM_UNKNOWN, true));
	assert_true(cm_retry_again(&r, CM_BUSY, true));
	assert_true(cm_retry_again(&r, CM_UNKNOWN, true));
	assert_false(cm_retry_again(&r, CM_BUSY, true));
	for (i = 0; i < CM_NELEM(final); i++) {
		cm_retry_begin(&r);
		assert_false(cm_retry_again(&r, final[i], true));
	}
	assert_string_equal(cm_result_str(CM_UNKNOWN), "outcome unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_rule),
		cmocka_unit_test(test_parse_i64_valid),
		cmocka_unit_test(test_hist_buckets_and_text),
		cmocka_unit_test(test_process_metrics),
		cmocka_unit_test(test_parse_i64_junk),
		cmocka_unit_test(test_parse_i64_plus_and_leading_zeros),
		cmocka_unit_test(test_parse_i64_other_leading_whitespace),
		cmocka_unit_test(test_parse_i64_negative_leading_zeros),
		cmocka_unit_test(test_parse_i64_range),
		cmocka_unit_test(test_json_escape_basic),
		cmocka_unit_test(test_json_escape_result_is_valid_json),
		cmocka_unit_test(test_json_escape_truncation),
		cmocka_unit_test(test_json_escape_truncation_keeps_utf8),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_now),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_cursor_round_trip),
		cmocka_unit_test(test_file_read),
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_result_str_and_mem),
		cmocka_unit_test(test_scope_parse),
		cmocka_unit_test(test_scope_reject),
		cmocka_unit_test(test_scope_format_round_trip),
		cmocka_unit_test(test_scope_name),
		cmocka_unit_test(test_scope_bits_are_stable),
		cmocka_unit_test(test_scope_allows),
		cmocka_unit_test(test_worker_wake_and_stop),
		cmocka_unit_test(test_worker_interval),
		cmocka_unit_test(test_par_runs_every_part_once),
		cmocka_unit_test(test_buf_append_html),
		cmocka_unit_test(test_intern_ids),
		cmocka_unit_test(test_alloc_large),
		cmocka_unit_test(test_hex_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
