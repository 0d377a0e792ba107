/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the policy's notice history (src/core/notice.c). First the
 * notice text: the six fields of a purpose in canonical JSON, the same bytes
 * however the file is laid out and whatever else about the purpose changes,
 * with the SHA-256 of those bytes. Then the comparison with a stored
 * version, on policies made from policy/policy.json by string replacement:
 * a new version is recorded, the same text is not, and a changed lawful
 * basis, title, description, channel or recipient under the same version,
 * or a version below the highest served, is refused with "FILE:LINE:
 * FIELD: purpose ID …" naming the field. Last, cm_notice_sync against a real
 * store: every new version stored with its "policy.version" audit entry in
 * one transaction, nothing added by a second start, nothing written at all
 * when any purpose is refused, and history kept for a purpose that leaves.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/notice.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

#define EXAMPLE		"policy/policy.json"

static char	*example;
static size_t	 example_len;

/* ---- policies made from the example ------------------------------------ */

static int
line_at(const char *text, size_t off)
{
	int line = 1;
	size_t i;

	for (i = 0; i < off; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

/*
 * A copy of TEXT with the first OLD after ANCHOR (which must occur; NULL:
 * the start) replaced by REPL; *LINE, when not NULL, is where REPL starts.
 */
static char *
edit_text(const char *text, const char *anchor, const char *old, const char *repl,
    int *line)
{
	size_t from = 0, at, len = strlen(text), olen = strlen(old), rlen = strlen(repl);
	const char *p;
	char *out;

	if (anchor != NULL) {
		if ((p = strstr(text, anchor)) == NULL)
			fail_msg("\"%s\" not found", anchor);
		from = (size_t)(p - text);
	}
	if ((p = strstr(text + from, old)) == NULL)
		fail_msg("\"%s\" not found after \"%s\"", old, anchor ? anchor : "");
	at = (size_t)(p - text);
	out = malloc(len - olen + rlen + 1);
	assert_non_null(out);
	memcpy(out, text, at);
	memcpy(out + at, repl, rlen);
	memcpy(out + at + rlen, text + at + olen, len - at - olen + 1);
	if (line != NULL)
		*line = line_at(out, at);
	return out;
}

static struct cm_policy *
parse_ok(const char *text)
{
	struct cm_policy *p = NULL;
	char err[1024] = "";

	if (cm_policy_parse(EXAMPLE, text, strlen(text), &p, err, sizeof(err)) != CM_OK)
		fail_msg("parse failed: %s", err);
	return p;
}

/* Parses TEXT (and frees it). */
static struct cm_policy *
parse_owned(char *text)
{
	struct cm_policy *p = parse_ok(text);

	free(text);
	return p;
}

/* The example with newsletter's lawful basis swapped to legitimate interest. */
static char *
basis_swapped(int *line)
{
	return edit_text(example, "\"id\": \"newsletter\"", "\"lawful_basis\": \"consent\",",
	    "\"lawful_basis\": \"legitimate_interest\", \"legitimate_interest\": "
	    "\"Telling customers about our collections.\",", line);
}

static int
group_setup(void **state)
{
	(void)state;
	if (cm_crypto_init() != 0)
		return -1;
	cm_log_set_level(CM_LOG_WARN);
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

/* A stored row for purpose I of P as recorded at start-up; frees nothing. */
static void
row_of(const struct cm_policy *p, size_t i, char **text, struct cm_notice_row *row)
{
	memset(row, 0, sizeof(*row));
	assert_int_equal(cm_notice_text(p, i, text, row->nr_sha256), CM_OK);
	snprintf(row->nr_purpose, sizeof(row->nr_purpose), "%s", p->pol_purposes[i].pu_id);
	row->nr_version = p->pol_purposes[i].pu_version;
	snprintf(row->nr_basis, sizeof(row->nr_basis), "%s",
	    cm_lawful_basis_name(p->pol_purposes[i].pu_basis));
	row->nr_text = *text;
	row->nr_text_len = strlen(*text);
}

/*
 * Compares purpose I of NEW with the row of purpose I of OLD as stored
 * (version MAX_VERSION the highest): returns the result, fills ERR.
 */
static cm_result
compare(const struct cm_policy *old, const struct cm_policy *new_, size_t i,
    bool same_version, int64_t max_version, bool *is_new, char *err, size_t errlen)
{
	struct cm_notice_row row;
	char *stored, *text;
	uint8_t sum[32];
	cm_result rc;

	row_of(old, i, &stored, &row);
	assert_int_equal(cm_notice_text(new_, i, &text, sum), CM_OK);
	err[0] = '\0';
	rc = cm_notice_compare(new_, i, text, same_version ? &row : NULL, max_version,
	    is_new, err, errlen);
	free(text);
	free(stored);
	return rc;
}

/* Expects a refusal reading "policy/policy.json:LINE: FIELD: …MSG…". */
static void
expect_refused(cm_result rc, const char *err, int line, const char *field,
    const char *msg)
{
	char prefix[256];

	if (rc != CM_CONFLICT)
		fail_msg("result %s, want a refusal of %s (%s)", cm_result_str(rc), field, err);
	snprintf(prefix, sizeof(prefix), "%s:%d: %s: ", EXAMPLE, line, field);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\", want it to start \"%s\"", err, prefix);
	if (strstr(err, msg) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, msg);
}

/* ---- the notice text ---------------------------------------------------- */

static void
test_text_is_canonical_six_fields(void **state)
{
	struct cm_policy *p;
	uint8_t sum[32], want[32];
	json_t *j;
	char *text, *re;

	(void)state;
	p = parse_ok(example);
	assert_int_equal(cm_notice_text(p, 0, &text, sum), CM_OK);
	assert_string_equal(text, "{\"channels\":[\"email\"],\"data_categories\":"
	    "[\"contact details\",\"preference settings\"],\"description\":\"Our editorial "
	    "newsletter: new arrivals, trend reports and styling ideas.\",\"lawful_basis\":"
	    "\"consent\",\"recipients\":[{\"country\":\"IE\",\"name\":\"Email delivery "
	    "provider\",\"role\":\"processor\"}],\"title\":\"Style newsletter\"}");
	cm_sha256(want, text, strlen(text));
	assert_memory_equal(sum, want, 32);
	free(text);

	/* A recipient's safeguard is part of what a person is told. */
	assert_int_equal(cm_notice_text(p, 4, &text, sum), CM_OK);
	j = json_loads(text, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 6);
	assert_non_null(strstr(text, "\"transfer_safeguards\":\"UK Extension"));
	re = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(re, text);
	free(re);
	json_decref(j);
	free(text);
	assert_int_equal(cm_notice_text(p, p->pol_npurposes, &text, sum), CM_INVALID);
	assert_null(text);
	cm_policy_free(p);
}

/* Layout and the fields outside the notice do not change the text. */
static void
test_text_ignores_layout_and_other_fields(void **state)
{
	struct cm_policy *a, *b;
	uint8_t sa[32], sb[32];
	char *ta, *tb, *t, *u;

	(void)state;
	a = parse_ok(example);
	t = edit_text(example, "\"id\": \"newsletter\"", "\"title\": \"Style newsletter\",",
	    "\"title\":\n\t\"Style newsletter\"   ,", NULL);
	u = edit_text(t, "\"id\": \"newsletter\"", "\"min_valid_version\": 1",
	    "\"min_valid_version\": 2, \"gpc\": true, \"holdout_percent\": 5", NULL);
	free(t);
	t = edit_text(u, "\"id\": \"newsletter\"", "\"days\": 730", "\"days\": 365", NULL);
	free(u);
	u = edit_text(t, "\"id\": \"newsletter\"", "\"source\": \"You, when you sign up.\"",
	    "\"source\": \"You.\"", NULL);
	free(t);
	b = parse_owned(u);
	assert_int_equal(cm_notice_text(a, 0, &ta, sa), CM_OK);
	assert_int_equal(cm_notice_text(b, 0, &tb, sb), CM_OK);
	assert_string_equal(ta, tb);
	assert_memory_equal(sa, sb, 32);
	free(ta);
	free(tb);
	cm_policy_free(a);
	cm_policy_free(b);
}

/* ---- the comparison ----------------------------------------------------- */

static void
test_compare_new_and_same(void **state)
{
	struct cm_policy *p, *bumped;
	char err[1024], *t;
	bool is_new;

	(void)state;
	p = parse_ok(example);
	/* Never served: new. */
	assert_int_equal(compare(p, p, 0, false, 0, &is_new, err, sizeof(err)), CM_OK);
	assert_true(is_new);
	/* Served with this very text: nothing to record. */
	assert_int_equal(compare(p, p, 0, true, 2, &is_new, err, sizeof(err)), CM_OK);
	assert_false(is_new);
	/* A changed text under a raised version is a new version. */
	t = basis_swapped(NULL);
	bumped = parse_owned(edit_text(t, "\"id\": \"newsletter\"", "\"version\": 2,",
	    "\"version\": 3,", NULL));
	free(t);
	assert_int_equal(compare(p, bumped, 0, false, 2, &is_new, err, sizeof(err)), CM_OK);
	assert_true(is_new);
	cm_policy_free(bumped);
	cm_policy_free(p);
}

/* consent → legitimate_interest under the same version is refused. */
static void
test_compare_lawful_basis_swapped(void **state)
{
	struct cm_policy *p, *q;
	char err[1024], *t;
	bool is_new = true;
	int line;

	(void)state;
	p = parse_ok(example);
	t = basis_swapped(&line);
	q = parse_owned(t);
	expect_refused(compare(p, q, 0, true, 2, &is_new, err, sizeof(err)), err, line,
	    "purposes[0].lawful_basis", "purpose newsletter changed its lawful_basis "
	    "(consent → legitimate_interest) without raising version 2");
	assert_false(is_new);
	cm_policy_free(q);
	cm_policy_free(p);
}

static void
test_compare_text_changed(void **state)
{
	struct cm_policy *p, *q;
	char err[1024];
	bool is_new;
	int line;

	(void)state;
	p = parse_ok(example);
	q = parse_owned(edit_text(example, "\"id\": \"newsletter\"", "\"title\": \"Style "
	    "newsletter\"", "\"title\": \"The style newsletter\"", &line));
	expect_refused(compare(p, q, 0, true, 2, &is_new, err, sizeof(err)), err, line,
	    "purposes[0].title", "changed its title (Style newsletter → The style "
	    "newsletter) without raising version 2");
	cm_policy_free(q);
	/* A long text is named, not quoted. */
	q = parse_owned(edit_text(example, "\"id\": \"newsletter\"", "styling ideas.",
	    "styling ideas, and competitions.", &line));
	expect_refused(compare(p, q, 0, true, 2, &is_new, err, sizeof(err)), err, line,
	    "purposes[0].description", "changed its description without raising version 2");
	assert_null(strstr(err, "competitions"));
	cm_policy_free(q);
	/* One data category more. */
	q = parse_owned(edit_text(example, "\"id\": \"newsletter\"", "\"preference settings\"]",
	    "\"preference settings\", \"sizes\"]", &line));
	expect_refused(compare(p, q, 0, true, 2, &is_new, err, sizeof(err)), err, line,
	    "purposes[0].data_categories[2]", "changed its data_categories[2] (added "
	    "\"sizes\")");
	cm_policy_free(q);
	cm_policy_free(p);
}

static void
test_compare_channels_and_recipients(void **state)
{
	struct cm_policy *p, *q;
	char err[1024];
	bool is_new;
	int line;

	(void)state;
	p = parse_ok(example);
	/* recommendations stops using push: named at the list. */
	q = parse_owned(edit_text(example, "\"id\": \"recommendations\"",
	    "\"channels\": [\"email\", \"push\"]", "\"channels\": [\"email\"]", &line));
	expect_refused(compare(p, q, 3, true, 1, &is_new, err, sizeof(err)), err, line,
	    "purposes[3].channels", "purpose recommendations changed its channels (removed "
	    "\"push\") without raising version 1");
	cm_policy_free(q);
	/* The search platform moves to Canada. */
	q = parse_owned(edit_text(example, "\"Search advertising platform\"",
	    "\"country\": \"US\"", "\"country\": \"CA\"", &line));
	expect_refused(compare(p, q, 4, true, 1, &is_new, err, sizeof(err)), err, line,
	    "purposes[4].recipients[1].country", "changed its recipients[1].country "
	    "(US → CA)");
	cm_policy_free(q);
	/* A new recipient. */
	q = parse_owned(edit_text(example, "\"id\": \"newsletter\"",
	    "\"role\": \"processor\", \"country\": \"IE\" }",
	    "\"role\": \"processor\", \"country\": \"IE\" },\n        "
	    "{ \"name\": \"Survey tool\", \"role\": \"processor\", \"country\": \"NL\" }",
	    NULL));
	line = 0;
	{
		const char *s = strstr(q->pol_text, "\"Survey tool\"");

		assert_non_null(s);
		line = line_at(q->pol_text, (size_t)(s - q->pol_text));
	}
	expect_refused(compare(p, q, 0, true, 2, &is_new, err, sizeof(err)), err, line,
	    "purposes[0].recipients[1]", "changed its recipients[1]");
	cm_policy_free(q);
	cm_policy_free(p);
}

/* A version below the highest served is refused, whatever the text. */
static void
test_compare_version_lowered(void **state)
{
	struct cm_policy *p, *q;
	char err[1024];
	bool is_new = true;
	int line;

	(void)state;
	p = parse_ok(example);
	q = parse_owned(edit_text(example, "\"id\": \"newsletter\"", "\"version\": 2,",
	    "\"version\": 1,", &line));
	/* v1 was served with exactly this text, but v2 came after it. */
	expect_refused(compare(q, q, 0, true, 2, &is_new, err, sizeof(err)), err, line,
	    "purposes[0].version", "purpose newsletter lowered its version to 1 below 2");
	assert_false(is_new);
	expect_refused(compare(p, q, 0, false, 2, &is_new, err, sizeof(err)), err, line,
	    "purposes[0].version", "the highest already served");
	cm_policy_free(q);
	cm_policy_free(p);
}

/* ---- start-up against a real store -------------------------------------- */

struct fx {
	char		 dir[64];
	struct cm_keys	*keys;
	struct cm_store	*store;
	struct cm_db	*db;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cm_migration_set set;
	char err[512];

	assert_non_null(f);
	/* Under build/, which the tests run beside and git ignores. */
	strcpy(f->dir, "build/notice-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(cm_keys_create(f->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(f->dir, &f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(f->dir, f->keys, &set, NULL, &f->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	f->db = cm_store_db(f->store);
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
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static uint64_t
audit_size(struct fx *f)
{
	uint64_t n;

	assert_int_equal(cm_store_audit_size(f->db, &n), CM_OK);
	return n;
}

static int
count_row(void *arg, const struct cm_notice_row *row)
{
	(void)row;
	(*(size_t *)arg)++;
	return 0;
}

static size_t
stored_count(struct fx *f, const char *purpose)
{
	size_t n = 0;

	assert_int_equal(cm_store_notice_list(f->db, purpose, count_row, &n), CM_OK);
	return n;
}

struct got {
	struct cm_notice_row	 row;
	char			*text;
};

static int
got_row(void *arg, const struct cm_notice_row *row)
{
	struct got *g = arg;

	g->row = *row;
	g->text = cm_strndup(row->nr_text, row->nr_text_len);
	g->row.nr_text = g->text;
	return 0;
}

static int
grab_entry(void *arg, uint64_t idx, const void *e, size_t len, const uint8_t *leaf)
{
	(void)idx;
	(void)leaf;
	*(char **)arg = cm_strndup(e, len);
	return 1;
}

static void
test_sync_records_each_version_once(void **state)
{
	struct fx *f = *state;
	struct cm_policy *p;
	struct got g = { 0 };
	char err[1024] = "", *entry = NULL, *text, hex[65];
	uint8_t sum[32];
	size_t n;
	json_t *e, *want;

	p = parse_ok(example);
	assert_int_equal(audit_size(f), 0);
	assert_int_equal(cm_notice_sync(f->db, p, &n, err, sizeof(err)), CM_OK);
	assert_int_equal(n, 10);
	assert_int_equal(stored_count(f, NULL), 10);
	assert_int_equal(audit_size(f), 10);

	/* What is stored is the text and hash, and the entry says so. */
	assert_int_equal(cm_store_notice_get(f->db, "ad_audiences", 1, got_row, &g), CM_OK);
	assert_int_equal(cm_notice_text(p, 4, &text, sum), CM_OK);
	assert_string_equal(g.text, text);
	assert_memory_equal(g.row.nr_sha256, sum, 32);
	assert_string_equal(g.row.nr_basis, "consent");
	assert_true(g.row.nr_first_served_us > 0);
	assert_int_equal(cm_store_audit_scan(f->db, (uint64_t)g.row.nr_audit_index,
	    (uint64_t)g.row.nr_audit_index + 1, grab_entry, &entry), CM_OK);
	e = json_loads(entry, 0, NULL);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "type")), "policy.version");
	assert_string_equal(json_string_value(json_object_get(e, "actor")), "system");
	cm_hex_encode(hex, sum, 32);
	want = json_pack("{s:s, s:i, s:s, s:s}", "purpose", "ad_audiences", "version", 1,
	    "sha256", hex, "lawful_basis", "consent");
	assert_true(json_equal(json_object_get(e, "d"), want));
	assert_null(json_object_get(e, "s"));
	json_decref(want);
	json_decref(e);
	free(entry);
	free(text);
	free(g.text);
	assert_int_equal(cm_store_notice_get(f->db, "ad_audiences", 2, got_row, &g),
	    CM_NOTFOUND);

	/* A second start with the same policy adds nothing. */
	assert_int_equal(cm_notice_sync(f->db, p, &n, err, sizeof(err)), CM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(stored_count(f, NULL), 10);
	assert_int_equal(audit_size(f), 10);
	cm_policy_free(p);
}

static void
test_sync_refusal_writes_nothing(void **state)
{
	struct fx *f = *state;
	struct cm_policy *p, *q;
	char err[1024] = "", *t, *u;
	size_t n = 99;
	int line;

	p = parse_ok(example);
	assert_int_equal(cm_notice_sync(f->db, p, &n, err, sizeof(err)), CM_OK);
	/*
	 * email_offers moves to version 2 (fine), newsletter swaps its basis
	 * under version 2 (refused): neither is recorded.
	 */
	t = basis_swapped(&line);
	u = edit_text(t, "\"id\": \"email_offers\"", "\"version\": 1,", "\"version\": 2,",
	    NULL);
	free(t);
	q = parse_owned(u);
	assert_int_equal(cm_notice_sync(f->db, q, &n, err, sizeof(err)), CM_CONFLICT);
	assert_int_equal(n, 0);
	expect_refused(CM_CONFLICT, err, line, "purposes[0].lawful_basis",
	    "consent → legitimate_interest");
	assert_int_equal(stored_count(f, NULL), 10);
	assert_int_equal(stored_count(f, "email_offers"), 1);
	assert_int_equal(audit_size(f), 10);
	assert_false(cm_db_in_write(f->db));
	cm_policy_free(q);
	cm_policy_free(p);
}

static void
test_sync_bump_and_purpose_gone(void **state)
{
	struct fx *f = *state;
	struct cm_policy *p, *q, *r;
	char err[1024] = "", *t, *s;
	size_t n;

	p = parse_ok(example);
	assert_int_equal(cm_notice_sync(f->db, p, &n, err, sizeof(err)), CM_OK);
	s = basis_swapped(NULL);
	t = edit_text(s, "\"id\": \"newsletter\"", "\"version\": 2,", "\"version\": 3,",
	    NULL);
	free(s);
	q = parse_ok(t);
	assert_int_equal(cm_notice_sync(f->db, q, &n, err, sizeof(err)), CM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(stored_count(f, "newsletter"), 2);
	assert_int_equal(audit_size(f), 11);

	/* fraud_prevention leaves the policy: its history stays. */
	{
		char *start = strstr(t, "    {\n      \"id\": \"fraud_prevention\"");
		char *end = strstr(t, "\n  ],\n  \"topics\"");
		char *u;

		assert_non_null(start);
		assert_non_null(end);
		/* Drop ",\n" before it and the object itself. */
		u = malloc(strlen(t) + 1);
		assert_non_null(u);
		memcpy(u, t, (size_t)(start - t) - 2);
		strcpy(u + (start - t) - 2, end);
		r = parse_owned(u);
	}
	assert_int_equal(r->pol_npurposes, 9);
	assert_int_equal(cm_notice_sync(f->db, r, &n, err, sizeof(err)), CM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(stored_count(f, "fraud_prevention"), 1);
	/* And going back to version 2 of newsletter is a lowered version. */
	assert_int_equal(cm_notice_sync(f->db, p, &n, err, sizeof(err)), CM_CONFLICT);
	assert_non_null(strstr(err, "purposes[0].version: purpose newsletter lowered its "
	    "version to 2 below 3"));
	free(t);
	cm_policy_free(r);
	cm_policy_free(q);
	cm_policy_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_is_canonical_six_fields),
		cmocka_unit_test(test_text_ignores_layout_and_other_fields),
		cmocka_unit_test(test_compare_new_and_same),
		cmocka_unit_test(test_compare_lawful_basis_swapped),
		cmocka_unit_test(test_compare_text_changed),
		cmocka_unit_test(test_compare_channels_and_recipients),
		cmocka_unit_test(test_compare_version_lowered),
		cmocka_unit_test_setup_teardown(test_sync_records_each_version_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_refusal_writes_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_bump_and_purpose_gone, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
