/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the import (src/core/import.c, import_map.c): the
 * providers' times, mappings checked against the shipped policy, and runs
 * on a fresh SQLCipher store with real keys, judged by what the check
 * answers afterwards: a row of several records is all or nothing, a record
 * split over lines and fed a byte at a time keeps its line numbers, and a
 * dry run leaves the store as it was. Nothing is mocked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "consentd/consent.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/identifier.h"
#include "consentd/import.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

static struct cm_policy *policy;

struct fx {
	char		 dir[64];
	struct cm_keys	*keys;
	struct cm_store	*store;
	struct cm_ctx	 cx;
	uint64_t	 lines[16];	/* the rejects' line numbers */
	char		 reasons[16][CM_IMPORT_REASON_MAX];
	size_t		 nrej;
};

static int
group_setup(void **state)
{
	char err[512];

	(void)state;
	if (cm_crypto_init() != 0)
		return -1;
	cm_log_set_level(CM_LOG_WARN);
	if (cm_policy_load("policy", &policy, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "policy: %s\n", err);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	cm_policy_free(policy);
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cm_migration_set set;
	char err[512];

	assert_non_null(f);
	strcpy(f->dir, "build/import-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(cm_keys_create(f->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(f->dir, &f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(f->dir, f->keys, &set, NULL, &f->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	assert_non_null(cm_store_db(f->store));
	assert_int_equal(cm_db_bulk_load(cm_store_db(f->store)), CM_OK);
	cm_ctx_init(&f->cx, cm_store_db(f->store), f->keys, policy, "test:import");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	cm_store_close(f->store);
	cm_keys_free(f->keys);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f);
	return 0;
}

static void
on_reject(void *arg, uint64_t line, const char *reason, const char *raw, size_t len)
{
	struct fx *f = arg;

	(void)raw;
	(void)len;
	if (f->nrej < 16) {
		f->lines[f->nrej] = line;
		snprintf(f->reasons[f->nrej], sizeof(f->reasons[0]), "%s", reason);
	}
	f->nrej++;
}

/* Imports TEXT under the built-in mapping NAME, PIECE bytes at a time. */
static struct cm_import_stats
run(struct fx *f, const char *name, enum cm_import_format fmt, const char *text, size_t piece,
    bool dry)
{
	struct cm_import_opts o;
	struct cm_import_stats st;
	struct cm_import_map *m;
	struct cm_import *im;
	struct cm_why w;
	char why[256];
	json_t *doc;
	size_t off, n, len = strlen(text);

	memset(&o, 0, sizeof(o));
	memset(&w, 0, sizeof(w));
	assert_non_null(doc = cm_import_map_builtin(name));
	m = cm_import_map_new(doc, policy, why, sizeof(why));
	json_decref(doc);
	if (m == NULL)
		fail_msg("mapping %s: %s", name, why);
	o.io_format = fmt;
	o.io_map = m;
	o.io_dry_run = dry;
	o.io_reject = on_reject;
	o.io_arg = f;
	im = cm_import_new(&f->cx, &o);
	for (off = 0; off < len; off += n) {
		n = len - off < piece ? len - off : piece;
		assert_int_equal(cm_import_feed(im, text + off, n, &w), CM_OK);
	}
	assert_int_equal(cm_import_finish(im, &st, &w), CM_OK);
	cm_import_free(im);
	cm_import_map_free(m);
	return st;
}

static const char *
decide(struct fx *f, const char *text, const char *purpose, const char *channel)
{
	static char out[32];
	struct cm_check_result r;
	struct cm_identifier id;
	char why[160];
	int pi = cm_policy_purpose_index(policy, purpose);

	assert_true(pi >= 0);
	assert_int_equal(cm_identifier_parse(text, strlen(text), policy, &id, why,
	    sizeof(why)), CM_OK);
	assert_int_equal(cm_consent_check(&f->cx, &id, &policy->pol_purposes[pi], channel, &r),
	    CM_OK);
	snprintf(out, sizeof(out), "%s", r.ck_decision.d_reason);
	json_decref(r.ck_conflicts);
	return out;
}

/* ---- tests -------------------------------------------------------------- */

static void
test_parse_time(void **state)
{
	int64_t us;

	(void)state;
	assert_int_equal(cm_import_parse_time("2023-01-02 10:05:00", &us), 0);
	assert_int_equal(us, INT64_C(1672653900) * 1000000);
	assert_int_equal(cm_import_parse_time("2023-01-02T10:05:00Z", &us), 0);
	assert_int_equal(us, INT64_C(1672653900) * 1000000);
	assert_int_equal(cm_import_parse_time("2023-01-02T12:05:00+02:00", &us), 0);
	assert_int_equal(us, INT64_C(1672653900) * 1000000);
	assert_int_equal(cm_import_parse_time("2023-01-02T10:05:00.250Z", &us), 0);
	assert_int_equal(us, INT64_C(1672653900) * 1000000 + 250000);
	assert_int_equal(cm_import_parse_time("2023-01-02", &us), 0);
	assert_int_equal(us, INT64_C(1672617600) * 1000000);
	assert_int_equal(cm_import_parse_time("2023-13-02 10:00:00", &us), -1);
	assert_int_equal(cm_import_parse_time("02/01/2023", &us), -1);
	assert_int_equal(cm_import_parse_time("2023-01-02 10:05:00 CET", &us), -1);
	assert_int_equal(cm_import_parse_time("", &us), -1);
}

/* A mapping that cannot work is refused whole, naming the field. */
static void
test_map_checked_against_policy(void **state)
{
	static const struct {
		const char	*json;
		const char	*why;
	} bad[] = {
		{ "{\"name\":\"x\",\"records\":[{\"kind\":\"consent\",\"identifier\":\"E\","
		  "\"purpose\":\"nope\",\"state\":\"granted\",\"time\":[\"T\"]}]}",
		  "records[0].purpose: the policy has no such purpose" },
		{ "{\"name\":\"x\",\"records\":[{\"kind\":\"consent\",\"identifier\":\"E\","
		  "\"purpose\":\"newsletter\",\"state\":\"granted\"}]}",
		  "records[0].time: required (the provider's time is kept as collected_at)" },
		{ "{\"name\":\"x\",\"records\":[{\"kind\":\"consent\",\"identifier\":\"E\","
		  "\"purpose\":\"newsletter\",\"channel\":\"sms\",\"state\":\"granted\","
		  "\"time\":[\"T\"]}]}", "records[0].channel: not used by the purpose" },
		{ "{\"name\":\"x\",\"records\":[{\"kind\":\"suppression\",\"identifier\":\"E\","
		  "\"reason\":\"erased\"}]}",
		  "records[0].reason: unsubscribed, bounced, complained or manual" },
		{ "{\"name\":\"x\",\"records\":[{\"kind\":\"consent\",\"colour\":\"red\"}]}",
		  "records[0].colour: unknown or malformed" },
		{ "{\"name\":\"x\",\"records\":[]}", "records: a list of 1-16 records" },
	};
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < CM_NELEM(bad); i++) {
		json_t *doc = json_loads(bad[i].json, 0, NULL);

		assert_non_null(doc);
		assert_null(cm_import_map_new(doc, policy, why, sizeof(why)));
		assert_string_equal(why, bad[i].why);
		json_decref(doc);
	}
}

/* Klaviyo: the SMS consent of a suppressed phone makes the row fail whole. */
static void
test_row_all_or_nothing(void **state)
{
	struct fx *f = *state;
	struct cm_import_stats st;
	struct cm_identifier ph;
	char why[160], r[16];
	bool existed;
	int64_t since;

	assert_int_equal(cm_identifier_parse("phone:+447700900123", 19, policy, &ph, why,
	    sizeof(why)), CM_OK);
	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_suppression_add(&f->cx, &ph, "complained", &existed, r, &since),
	    CM_OK);
	assert_int_equal(cm_db_commit(f->cx.cx_db), CM_OK);
	st = run(f, "klaviyo", CM_IMPORT_CSV,
	    "Email,Phone Number,Email Marketing Consent,Email Marketing Consent Timestamp,"
	    "SMS Marketing Consent,SMS Marketing Consent Timestamp\n"
	    "ana@example.com,+447700900123,SUBSCRIBED,2023-01-01 00:00:00,SUBSCRIBED,"
	    "2023-01-01 00:00:00\n"
	    "ben@example.com,,SUBSCRIBED,2023-01-01 00:00:00,,\n", 4096, false);
	assert_int_equal(st.is_rows, 2);
	assert_int_equal(st.is_rejected, 1);
	assert_int_equal(st.is_imported, 1);
	assert_int_equal(f->lines[0], 2);
	assert_string_equal(f->reasons[0],
	    "suppressed: the person is on the suppression list (409 suppressed)");
	/* Ana's email grant went with the refused SMS grant. */
	assert_string_equal(decide(f, "email:ana@example.com", "newsletter", "email"),
	    "unknown_subject");
	assert_string_equal(decide(f, "email:ben@example.com", "newsletter", "email"), "consent");
}

/* A quoted field over two lines, fed a byte at a time: lines stay right. */
static void
test_multiline_record_byte_by_byte(void **state)
{
	struct fx *f = *state;
	struct cm_import_stats st;

	st = run(f, "mailchimp", CM_IMPORT_CSV,
	    "\xef\xbb\xbf" "Email Address,NOTES,OPTIN_TIME\r\n"
	    "ana@example.com,\"two\r\nlines\",2023-01-01 00:00:00\r\n"
	    "bad,x,2023-01-01 00:00:00\r\n"
	    "\r\n"
	    "ben@example.com,\"a \"\"quote\"\"\",2023-01-01 00:00:00\r\n"
	    "cy@example.com,\"open,2023-01-01 00:00:00", 1, false);
	assert_int_equal(st.is_rows, 4);
	assert_int_equal(st.is_imported, 2);
	assert_int_equal(st.is_rejected, 2);
	assert_int_equal(f->lines[0], 4);
	assert_string_equal(f->reasons[0], "invalid identifier: an email address has exactly "
	    "one '@'");
	assert_int_equal(f->lines[1], 7);
	assert_string_equal(f->reasons[1], "malformed CSV: a quoted field never ends");
	assert_string_equal(decide(f, "email:ben@example.com", "newsletter", "email"), "consent");
}

/* A dry run counts what a real run would write, and writes none of it. */
static void
test_dry_run_keeps_nothing(void **state)
{
	struct fx *f = *state;
	struct cm_import_stats st;
	static const char nd[] =
	    "{\"email\":\"ana@example.com\",\"email_subscribe\":\"opted_in\","
	    "\"email_opted_in_at\":\"2022-02-02T02:02:02.000Z\"}\n"
	    "[1,2]\n"
	    "{\"email\":\"ben@example.com\",\"email_subscribe\":\"subscribed\"}\n";

	st = run(f, "braze", CM_IMPORT_NDJSON, nd, 7, true);
	assert_int_equal(st.is_rows, 3);
	assert_int_equal(st.is_imported, 1);
	assert_int_equal(st.is_skipped, 1);
	assert_int_equal(st.is_rejected, 1);
	assert_int_equal(f->lines[0], 2);
	assert_string_equal(decide(f, "email:ana@example.com", "newsletter", "email"),
	    "unknown_subject");
	f->nrej = 0;
	st = run(f, "braze", CM_IMPORT_NDJSON, nd, 4096, false);
	assert_int_equal(st.is_imported, 1);
	assert_string_equal(decide(f, "email:ana@example.com", "newsletter", "email"), "consent");
	st = run(f, "braze", CM_IMPORT_NDJSON, nd, 4096, false);
	assert_int_equal(st.is_imported, 0);
	assert_int_equal(st.is_unchanged, 1);
}

/* Preferences: a topic switch becomes a consent event on its purpose. */
static void
test_preferences_by_topic(void **state)
{
	static const char *const cols[] = { "email=Mail", "topic=Topic", "state=On",
	    "time=When", NULL };
	static const char csv[] = "Mail,Topic,On,When\n"
	    "ana@example.com,new_arrivals,yes,2024-01-01 00:00:00\n"
	    "ana@example.com,sale_offers,yes,2024-01-01 00:00:00\n"
	    "ana@example.com,sale_offers,no,2024-02-01 00:00:00\n"
	    "ben@example.com,no_such_topic,yes,2024-01-01 00:00:00\n";
	struct fx *f = *state;
	struct cm_import_opts o;
	struct cm_import_stats st;
	struct cm_import_map *m;
	struct cm_import *im;
	struct cm_why w;
	char why[256];
	json_t *doc;

	assert_non_null(doc = cm_import_map_adhoc("preference", cols, why, sizeof(why)));
	cm_import_map_defaults(doc, NULL, "email");
	assert_non_null(m = cm_import_map_new(doc, policy, why, sizeof(why)));
	json_decref(doc);
	memset(&o, 0, sizeof(o));
	memset(&w, 0, sizeof(w));
	o.io_map = m;
	o.io_reject = on_reject;
	o.io_arg = f;
	im = cm_import_new(&f->cx, &o);
	assert_int_equal(cm_import_feed(im, csv, sizeof(csv) - 1, &w), CM_OK);
	assert_int_equal(cm_import_finish(im, &st, &w), CM_OK);
	cm_import_free(im);
	cm_import_map_free(m);
	assert_int_equal(st.is_imported, 3);
	assert_int_equal(st.is_rejected, 1);
	assert_int_equal(f->lines[0], 5);
	assert_string_equal(f->reasons[0], "unknown topic");
	assert_string_equal(decide(f, "email:ana@example.com", "newsletter", "email"), "consent");
	assert_string_equal(decide(f, "email:ana@example.com", "email_offers", "email"),
	    "withdrawn");
}

/* What the progress callback saw: each report, and whether it was committed. */
struct chunk_seen {
	struct fx	*f;
	uint64_t	 rows[16];
	size_t		 n;
	bool		 in_write;	/* a report came inside a transaction */
	bool		 unseen;	/* a reported row was not in the store */
};

static void
on_chunk(void *arg, const struct cm_import_stats *st)
{
	struct chunk_seen *c = arg;
	char text[64];
	uint64_t i;

	if (c->n < 16)
		c->rows[c->n++] = st->is_rows;
	if (cm_db_in_write(c->f->cx.cx_db))
		c->in_write = true;
	/* Row N of the file is person N (3 is refused): each one told is there. */
	for (i = 1; i <= st->is_rows; i++) {
		snprintf(text, sizeof(text), "email:p%llu@example.com", (unsigned long long)i);
		if (i != 3 && strcmp(decide(c->f, text, "newsletter", "email"), "consent") != 0)
			c->unseen = true;
	}
}

static void
on_chunk_reject(void *arg, uint64_t line, const char *reason, const char *raw, size_t len)
{
	struct chunk_seen *c = arg;

	on_reject(c->f, line, reason, raw, len);
}

/*
 * Rows go in chunks of io_batch: progress is told after each chunk
 * committed, never inside one, and a row the domain refuses (a grant
 * for a suppressed person, the third) leaves its chunk's other rows
 * written.
 */
static void
test_chunks_commit_before_progress(void **state)
{
	struct fx *f = *state;
	struct chunk_seen c;
	struct cm_import_opts o;
	struct cm_import_stats st;
	struct cm_import_map *m;
	struct cm_import *im;
	struct cm_why w;
	struct cm_buf csv = { 0 };
	struct cm_identifier id;
	char why[256], line[128], r[16];
	bool existed;
	int64_t since;
	json_t *doc;
	int i;

	/* Person 3 is on the suppression list: the domain refuses the grant. */
	assert_int_equal(cm_identifier_parse("email:p3@example.com", 20, policy, &id, why,
	    sizeof(why)), CM_OK);
	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_suppression_add(&f->cx, &id, "complained", &existed, r, &since),
	    CM_OK);
	assert_int_equal(cm_db_commit(f->cx.cx_db), CM_OK);
	cm_buf_appendf(&csv, "Email Address,OPTIN_TIME\n");
	for (i = 1; i <= 7; i++)
		cm_buf_appendf(&csv, "p%d@example.com,2023-01-0%d 00:00:00\n", i, i);
	memset(&c, 0, sizeof(c));
	c.f = f;
	assert_non_null(doc = cm_import_map_builtin("mailchimp"));
	assert_non_null(m = cm_import_map_new(doc, policy, why, sizeof(why)));
	json_decref(doc);
	memset(&o, 0, sizeof(o));
	memset(&w, 0, sizeof(w));
	o.io_map = m;
	o.io_batch = 3;
	o.io_batch_ms = 60000;
	o.io_reject = on_chunk_reject;
	o.io_progress = on_chunk;
	o.io_arg = &c;
	im = cm_import_new(&f->cx, &o);
	assert_int_equal(cm_import_feed(im, csv.b_data, csv.b_len, &w), CM_OK);
	assert_int_equal(cm_import_finish(im, &st, &w), CM_OK);
	cm_import_free(im);
	cm_import_map_free(m);
	cm_buf_free(&csv);
	assert_int_equal(st.is_imported, 6);
	assert_int_equal(st.is_rejected, 1);
	assert_int_equal(f->nrej, 1);
	assert_int_equal(f->lines[0], 4);
	assert_string_equal(f->reasons[0],
	    "suppressed: the person is on the suppression list (409 suppressed)");
	/* Three chunks: rows 1-3, 4-6, 7; each told once, after its commit. */
	assert_int_equal(c.n, 3);
	assert_int_equal(c.rows[0], 3);
	assert_int_equal(c.rows[1], 6);
	assert_int_equal(c.rows[2], 7);
	assert_false(c.in_write);
	assert_false(c.unseen);
	for (i = 1; i <= 7; i++) {
		snprintf(line, sizeof(line), "email:p%d@example.com", i);
		if (i == 3)
			assert_string_not_equal(decide(f, line, "newsletter", "email"), "consent");
		else
			assert_string_equal(decide(f, line, "newsletter", "email"), "consent");
	}
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_map_checked_against_policy),
		T(test_row_all_or_nothing),
		T(test_multiline_record_byte_by_byte),
		T(test_dry_run_keeps_nothing),
		T(test_preferences_by_topic),
		T(test_chunks_commit_before_progress),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
