/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the policy loader (src/core/policy.c): the shipped example
 * policy/policy.json loads, with the parsed facts (purposes, channels,
 * topics, bases, holdouts, GPC) and a public view that is valid JSON with
 * the defaults filled in; then one test per way a policy can be wrong. Each
 * starts from the example's text and changes one thing by string
 * replacement, so the rest stays valid, and checks CM_INVALID and that the
 * error reads "policy/policy.json:LINE: FIELD: message" with the line
 * computed from the changed text (the line of the bad token, or of the
 * enclosing object for a missing field) and the field path. Also
 * cm_policy_load on a directory, a file, a missing path and an oversized
 * file, and cm_policy_purpose_index / cm_policy_channel_index.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "consentd/policy.h"
#include "consentd/util.h"

#define EXAMPLE		"policy/policy.json"

static char	*example;	/* the text of policy/policy.json */
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

/* ---- text helpers -------------------------------------------------------- */

static size_t
count_of(const char *text, const char *needle)
{
	const char *p = text;
	size_t n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* The 1-based line of offset OFF of TEXT. */
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

/* Offset of NEEDLE, which must occur exactly once in TEXT. */
static size_t
unique_off(const char *text, const char *needle)
{
	size_t n = count_of(text, needle);

	if (n != 1)
		fail_msg("\"%s\" occurs %zu times in the text, want once", needle, n);
	return (size_t)(strstr(text, needle) - text);
}

static int
line_of(const char *text, const char *needle)
{
	return line_at(text, unique_off(text, needle));
}

/* Line of the '{' of the object in which NEEDLE (unique) appears first. */
static int
enclosing_line(const char *text, const char *needle)
{
	size_t off = unique_off(text, needle);

	while (off > 0 && text[off] != '{')
		off--;
	assert_int_equal(text[off], '{');
	return line_at(text, off);
}

/*
 * A copy of the example in which the first OLD after ANCHOR (which occurs
 * once; NULL: the start) is replaced with REPL. *LINE, when not NULL, is
 * the line where REPL starts.
 */
static char *
edit_text(const char *text, const char *anchor, const char *old, const char *repl,
    int *line)
{
	size_t from = 0, at, olen = strlen(old), rlen = strlen(repl), len = strlen(text);
	const char *p;
	char *out;

	if (anchor != NULL)
		from = unique_off(text, anchor);
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

/* edit_text() on the example. */
static char *
edit(const char *anchor, const char *old, const char *repl, int *line)
{
	return edit_text(example, anchor, old, repl, line);
}

/* A copy of the example without the whole line that holds ANCHOR. */
static char *
drop_line(const char *anchor)
{
	size_t off = unique_off(example, anchor), start, end;
	char *out;

	start = off;
	while (start > 0 && example[start - 1] != '\n')
		start--;
	end = off;
	while (example[end] != '\0' && example[end] != '\n')
		end++;
	if (example[end] == '\n')
		end++;
	out = malloc(example_len - (end - start) + 1);
	assert_non_null(out);
	memcpy(out, example, start);
	memcpy(out + start, example + end, example_len - end + 1);
	return out;
}

/*
 * A copy of the example in which the span from FROM (which occurs once)
 * through the end of the first TO after it is replaced with REPL. *LINE,
 * when not NULL, is the line where REPL starts.
 */
static char *
replace_span(const char *from, const char *to, const char *repl, int *line)
{
	size_t at = unique_off(example, from), end, rlen = strlen(repl);
	const char *p;
	char *out;

	if ((p = strstr(example + at + strlen(from), to)) == NULL)
		fail_msg("\"%s\" not found after \"%s\"", to, from);
	end = (size_t)(p - example) + strlen(to);
	out = malloc(example_len - (end - at) + rlen + 1);
	assert_non_null(out);
	memcpy(out, example, at);
	memcpy(out + at, repl, rlen);
	memcpy(out + at + rlen, example + end, example_len - end + 1);
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
	assert_non_null(p);
	return p;
}

/*
 * Expects TEXT to be refused with "policy/policy.json:LINE: FIELD: …MSG…".
 * Frees TEXT.
 */
static void
expect_invalid(char *text, int line, const char *field, const char *msg)
{
	struct cm_policy *p = (struct cm_policy *)&p;
	char err[1024] = "", prefix[512], src[128] = "";
	const char *l = text;
	cm_result rc;
	int i;

	/* The text of line LINE, for the failure message. */
	for (i = 1; i < line && (l = strchr(l, '\n')) != NULL; i++)
		l++;
	if (l != NULL)
		snprintf(src, sizeof(src), "%.*s", (int)strcspn(l, "\n"), l);
	rc = cm_policy_parse(EXAMPLE, text, strlen(text), &p, err, sizeof(err));
	free(text);
	if (rc == CM_OK)
		cm_policy_free(p);
	if (rc != CM_INVALID)
		fail_msg("result %s, want invalid at line %d (%s), %s (%s)",
		    cm_result_str(rc), line, src, field, err);
	assert_null(p);
	snprintf(prefix, sizeof(prefix), "%s:%d: %s: ", EXAMPLE, line, field);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\", want it to start \"%s\"", err, prefix);
	if (msg != NULL && strstr(err + strlen(prefix), msg) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, msg);
}

/* ---- the example --------------------------------------------------------- */

static void
test_example_facts(void **state)
{
	struct cm_policy *p;
	int i;

	(void)state;
	p = parse_ok(example);
	assert_string_equal(p->pol_file, EXAMPLE);
	assert_int_equal(p->pol_jurisdiction, CM_JUR_UK_GDPR);
	assert_string_equal(p->pol_gpc_last_update, "2026-11-01");
	assert_string_equal(p->pol_phone_region, "GB");

	assert_int_equal(p->pol_nchannels, 6);
	assert_string_equal(p->pol_channels[0].ch_id, "email");
	assert_string_equal(p->pol_channels[0].ch_title, "Email");
	assert_string_equal(p->pol_channels[5].ch_id, "ads");

	assert_int_equal(p->pol_npurposes, 10);
	assert_string_equal(p->pol_purposes[0].pu_id, "newsletter");
	assert_string_equal(p->pol_purposes[0].pu_title, "Style newsletter");
	assert_int_equal(p->pol_purposes[0].pu_version, 2);
	assert_int_equal(p->pol_purposes[0].pu_min_valid_version, 1);
	assert_true(p->pol_purposes[0].pu_marketing);
	assert_false(p->pol_purposes[0].pu_gpc);
	assert_int_equal(p->pol_purposes[0].pu_holdout_percent, 0);
	assert_int_equal(p->pol_purposes[0].pu_channels, UINT64_C(1) << 0);

	i = cm_policy_purpose_index(p, "recommendations");
	assert_int_equal(i, 3);
	assert_int_equal(p->pol_purposes[i].pu_holdout_percent, 10);
	assert_int_equal(p->pol_purposes[i].pu_basis, CM_BASIS_CONSENT);
	assert_int_equal(p->pol_purposes[i].pu_channels,
	    (UINT64_C(1) << 0) | (UINT64_C(1) << 2));	/* email, push */

	i = cm_policy_purpose_index(p, "ad_audiences");
	assert_int_equal(i, 4);
	assert_true(p->pol_purposes[i].pu_gpc);
	assert_int_equal(p->pol_purposes[i].pu_channels, UINT64_C(1) << 5);

	i = cm_policy_purpose_index(p, "order_updates");
	assert_int_equal(i, 8);
	assert_int_equal(p->pol_purposes[i].pu_basis, CM_BASIS_CONTRACT);
	assert_false(p->pol_purposes[i].pu_marketing);
	assert_int_equal(p->pol_purposes[i].pu_channels, UINT64_C(0xf));

	i = cm_policy_purpose_index(p, "basket_reminders");
	assert_int_equal(p->pol_purposes[i].pu_basis, CM_BASIS_SOFT_OPT_IN);
	i = cm_policy_purpose_index(p, "review_requests");
	assert_int_equal(p->pol_purposes[i].pu_basis, CM_BASIS_LEGITIMATE_INTEREST);
	assert_int_equal(cm_policy_topic_index(p, "new_arrivals"), 0);
	assert_true(cm_policy_topic_index(p, "sale_offers") > 0);
	assert_int_equal(cm_policy_topic_index(p, "no_such_topic"), -1);
	assert_true(cm_policy_frequency_index(p, "monthly") >= 0);
	assert_int_equal(cm_policy_frequency_index(p, "hourly"), -1);
	i = cm_policy_purpose_index(p, "fraud_prevention");
	assert_int_equal(i, 9);
	assert_int_equal(p->pol_purposes[i].pu_channels, 0);
	assert_int_equal(p->pol_purposes[i].pu_basis, CM_BASIS_LEGITIMATE_INTEREST);
	/* Only ad_audiences has GPC, only recommendations a holdout. */
	for (i = 0; i < 10; i++) {
		assert_int_equal(p->pol_purposes[i].pu_gpc, i == 4);
		assert_int_equal(p->pol_purposes[i].pu_holdout_percent, i == 3 ? 10 : 0);
	}

	assert_int_equal(p->pol_ntopics, 5);
	assert_string_equal(p->pol_topics[0].tp_id, "new_arrivals");
	assert_int_equal(p->pol_topics[0].tp_purpose, 0);
	assert_string_equal(p->pol_topics[1].tp_id, "sale_offers");
	assert_int_equal(p->pol_topics[1].tp_purpose, 1);
	assert_int_equal(p->pol_topics[2].tp_purpose, 2);
	assert_string_equal(p->pol_topics[3].tp_id, "picked_for_you");
	assert_int_equal(p->pol_topics[3].tp_purpose, 3);
	assert_string_equal(p->pol_topics[4].tp_id, "rewards");
	assert_string_equal(p->pol_topics[4].tp_title, "Northwind Rewards");
	assert_int_equal(p->pol_topics[4].tp_purpose, 7);	/* loyalty_messages */

	assert_int_equal(p->pol_nfrequencies, 3);
	assert_string_equal(p->pol_frequencies[0], "daily");
	assert_string_equal(p->pol_frequencies[2], "monthly");
	assert_int_equal(p->pol_nid_types, 1);
	assert_string_equal(p->pol_id_types[0], "giftcard");
	assert_int_equal(p->pol_closed_requests_days, 1095);
	assert_int_equal(p->pol_service_records_days, 2190);
	cm_policy_free(p);
	cm_policy_free(NULL);
}

static void
test_example_public_view(void **state)
{
	struct cm_policy *p;
	json_error_t je;
	json_t *doc, *pu;
	size_t i;

	(void)state;
	p = parse_ok(example);
	assert_non_null(p->pol_public);
	assert_int_equal(p->pol_public_len, strlen(p->pol_public));
	doc = json_loadb(p->pol_public, p->pol_public_len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		fail_msg("public view is not JSON: %s", je.text);
	/* Sorted keys, compact. */
	assert_int_equal(strncmp(p->pol_public, "{\"branding\":{", 13), 0);
	assert_null(strchr(p->pol_public, '\n'));
	assert_string_equal(json_string_value(json_object_get(doc, "gpc_last_update")),
	    "2026-11-01");
	assert_int_equal(json_array_size(json_object_get(doc, "purposes")), 10);
	json_array_foreach(json_object_get(doc, "purposes"), i, pu) {
		json_t *gpc = json_object_get(pu, "gpc");
		json_t *ho = json_object_get(pu, "holdout_percent");

		assert_true(json_is_boolean(gpc));
		assert_int_equal(json_is_true(gpc), i == 4);
		assert_true(json_is_integer(ho));
		assert_int_equal(json_integer_value(ho), i == 3 ? 10 : 0);
		assert_true(json_is_string(json_object_get(pu, "automated_decision_making")));
	}
	pu = json_array_get(json_object_get(doc, "purposes"), 0);
	assert_string_equal(json_string_value(json_object_get(pu,
	    "automated_decision_making")), "none");
	pu = json_array_get(json_object_get(doc, "purposes"), 3);
	assert_int_equal(strncmp(json_string_value(json_object_get(pu,
	    "automated_decision_making")), "Profiling", 9), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc,
	    "controller"), "name")), "Northwind Threads Ltd");
	json_decref(doc);
	cm_policy_free(p);
}

/* identifier_types is optional and defaults to [] in the public view. */
static void
test_optional_identifier_types(void **state)
{
	struct cm_policy *p;
	json_t *doc;
	char *text;

	(void)state;
	text = edit(NULL, "\"identifier_types\": [\n    { \"id\": \"giftcard\", "
	    "\"title\": \"Gift card number\" }\n  ],\n", "", NULL);
	p = parse_ok(text);
	free(text);
	assert_int_equal(p->pol_nid_types, 0);
	doc = json_loads(p->pol_public, 0, NULL);
	assert_non_null(doc);
	assert_true(json_is_array(json_object_get(doc, "identifier_types")));
	assert_int_equal(json_array_size(json_object_get(doc, "identifier_types")), 0);
	json_decref(doc);
	cm_policy_free(p);
}

static void
test_indexes(void **state)
{
	struct cm_policy *p;

	(void)state;
	p = parse_ok(example);
	assert_int_equal(cm_policy_purpose_index(p, "newsletter"), 0);
	assert_int_equal(cm_policy_purpose_index(p, "order_updates"), 8);
	assert_int_equal(cm_policy_purpose_index(p, "fraud_prevention"), 9);
	assert_int_equal(cm_policy_purpose_index(p, "nope"), -1);
	assert_int_equal(cm_policy_purpose_index(p, ""), -1);
	assert_int_equal(cm_policy_purpose_index(p, "Newsletter"), -1);
	assert_int_equal(cm_policy_purpose_index(p, "email"), -1);	/* a channel */
	assert_int_equal(cm_policy_channel_index(p, "email"), 0);
	assert_int_equal(cm_policy_channel_index(p, "sms"), 1);
	assert_int_equal(cm_policy_channel_index(p, "post"), 4);
	assert_int_equal(cm_policy_channel_index(p, "ads"), 5);
	assert_int_equal(cm_policy_channel_index(p, "fax"), -1);
	assert_int_equal(cm_policy_channel_index(p, "newsletter"), -1);
	cm_policy_free(p);
}

static void
test_lawful_basis_names(void **state)
{
	(void)state;
	assert_string_equal(cm_lawful_basis_name(CM_BASIS_CONSENT), "consent");
	assert_string_equal(cm_lawful_basis_name(CM_BASIS_LEGITIMATE_INTEREST),
	    "legitimate_interest");
	assert_string_equal(cm_lawful_basis_name(CM_BASIS_SOFT_OPT_IN), "soft_opt_in");
	assert_string_equal(cm_lawful_basis_name(CM_BASIS_CONTRACT), "contract");
	assert_string_equal(cm_lawful_basis_name(CM_BASIS_LEGAL_OBLIGATION),
	    "legal_obligation");
	assert_string_equal(cm_lawful_basis_name((enum cm_lawful_basis)42), "unknown");
}

/* ---- cm_policy_load ------------------------------------------------------ */

static void
test_load_directory_and_file(void **state)
{
	struct cm_policy *p = NULL;
	char err[1024] = "";

	(void)state;
	assert_int_equal(cm_policy_load("policy", &p, err, sizeof(err)), CM_OK);
	assert_non_null(p);
	assert_string_equal(p->pol_file, "policy/policy.json");
	assert_int_equal(p->pol_npurposes, 10);
	cm_policy_free(p);
	assert_int_equal(cm_policy_load("policy/", &p, err, sizeof(err)), CM_OK);
	cm_policy_free(p);
	assert_int_equal(cm_policy_load(EXAMPLE, &p, err, sizeof(err)), CM_OK);
	assert_string_equal(p->pol_file, EXAMPLE);
	cm_policy_free(p);
}

static void
test_load_missing(void **state)
{
	struct cm_policy *p = (struct cm_policy *)&p;
	char err[1024] = "", tmpl[] = "/tmp/consentd-test-policy-XXXXXX", *dir;

	(void)state;
	assert_int_equal(cm_policy_load("/nonexistent/consentd/policy", &p, err,
	    sizeof(err)), CM_NOTFOUND);
	assert_null(p);
	assert_non_null(strstr(err, "/nonexistent/consentd/policy"));
	assert_non_null(strstr(err, "No such file"));

	/* A directory without policy.json. */
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	p = (struct cm_policy *)&p;
	assert_int_equal(cm_policy_load(dir, &p, err, sizeof(err)), CM_NOTFOUND);
	assert_null(p);
	assert_non_null(strstr(err, "/policy.json"));
	assert_int_equal(rmdir(dir), 0);
}

/* A file elsewhere: errors name that file. */
static void
test_load_names_the_file(void **state)
{
	struct cm_policy *p = (struct cm_policy *)&p;
	char tmpl[] = "/tmp/consentd-test-policy-XXXXXX", path[4200], want[4300];
	char err[1024] = "", *dir, *text;
	int fd, line;

	(void)state;
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, CM_POLICY_FILE);
	text = edit(NULL, "\"jurisdiction\": \"uk_gdpr\"", "\"jurisdiction\": \"mars\"", &line);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	free(text);
	assert_int_equal(cm_policy_load(dir, &p, err, sizeof(err)), CM_INVALID);
	assert_null(p);
	snprintf(want, sizeof(want), "%s:%d: jurisdiction: ", path, line);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	/* The same through the file's own path. */
	assert_int_equal(cm_policy_load(path, &p, err, sizeof(err)), CM_INVALID);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_load_too_large(void **state)
{
	struct cm_policy *p = (struct cm_policy *)&p;
	char tmpl[] = "/tmp/consentd-test-policy-XXXXXX", path[4200];
	char err[1024] = "", *dir;
	int fd;

	(void)state;
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/big.json", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, CM_POLICY_MAX_BYTES + 1), 0);
	close(fd);
	assert_int_equal(cm_policy_load(path, &p, err, sizeof(err)), CM_IOERR);
	assert_null(p);
	assert_non_null(strstr(err, "larger than 1 MiB"));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- invalid documents -------------------------------------------------- */

static void
test_bad_json_syntax(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"newsletter\"", "\"version\": 2,", "\"version\": 2x,", &line);
	expect_invalid(t, line, "(document)", NULL);
}

/* A missing comma: the error is on the line of the next token. */
static void
test_bad_json_missing_comma(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"language\": \"en-GB\",", "\"language\": \"en-GB\"", NULL);
	line = line_of(t, "\"privacy_notice_url\"");
	expect_invalid(t, line, "(document)", NULL);
}

static void
test_bad_json_truncated(void **state)
{
	char *t;

	(void)state;
	t = strdup(example);
	assert_non_null(t);
	/* Cut inside the topics array. */
	t[unique_off(t, "\"id\": \"rewards\"")] = '\0';
	expect_invalid(t, line_of(example, "\"id\": \"rewards\""), "(document)", NULL);
}

static void
test_unknown_key_top_level(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"language\": \"en-GB\",",
	    "\"language\": \"en-GB\", \"colour\": \"red\",", &line);
	expect_invalid(t, line, "colour", "unknown field");
}

static void
test_unknown_key_in_purpose(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"id\": \"sms_offers\",",
	    "\"id\": \"sms_offers\", \"colour\": \"blue\",", &line);
	expect_invalid(t, line, "purposes[2].colour", "unknown field");
}

static void
test_unknown_key_deeper(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"recommendations\"", "\"retention\": { \"days\": 395,",
	    "\"retention\": { \"days\": 395, \"weeks\": 56,", &line);
	expect_invalid(t, line, "purposes[3].retention.weeks", "unknown field");
	t = edit(NULL, "\"locality\": \"Manchester\",",
	    "\"locality\": \"Manchester\", \"planet\": \"Earth\",", &line);
	expect_invalid(t, line, "controller.address.planet", "unknown field");
	t = edit("\"id\": \"ad_audiences\"", "\"role\": \"controller\",",
	    "\"role\": \"controller\", \"why\": \"ads\",", &line);
	expect_invalid(t, line, "purposes[4].recipients[1].why", "unknown field");
}

static void
test_unknown_lawful_basis(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"recommendations\"", "\"lawful_basis\": \"consent\"",
	    "\"lawful_basis\": \"vibes\"", &line);
	expect_invalid(t, line, "purposes[3].lawful_basis",
	    "unknown lawful basis \"vibes\"");
}

static void
test_topic_missing_purpose(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"flash_sales\"", "\"purpose\": \"sms_offers\"",
	    "\"purpose\": \"sms_offer\"", &line);
	expect_invalid(t, line, "topics[2].purpose", "no purpose has the id \"sms_offer\"");
}

/* A topic's purpose must reach the subject on some channel. */
static void
test_topic_purpose_without_channels(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"rewards\"", "\"purpose\": \"loyalty_messages\"",
	    "\"purpose\": \"fraud_prevention\"", &line);
	expect_invalid(t, line, "topics[4].purpose", "uses no channel");
}

static void
test_duplicate_purpose_id(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"id\": \"email_offers\"", "\"id\": \"newsletter\"", &line);
	expect_invalid(t, line, "purposes[1].id", "duplicate id \"newsletter\"");
}

static void
test_duplicate_topic_id(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"id\": \"flash_sales\"", "\"id\": \"new_arrivals\"", &line);
	expect_invalid(t, line, "topics[2].id", "duplicate id \"new_arrivals\"");
}

static void
test_duplicate_channel_id(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "{ \"id\": \"push\"", "{ \"id\": \"sms\"", &line);
	expect_invalid(t, line, "channels[2].id", "duplicate id \"sms\"");
}

static void
test_duplicate_identifier_type(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "{ \"id\": \"giftcard\", \"title\": \"Gift card number\" }",
	    "{ \"id\": \"giftcard\", \"title\": \"Gift card number\" },\n"
	    "    { \"id\": \"giftcard\", \"title\": \"Again\" }", NULL);
	line = line_of(t, "\"Again\"");
	expect_invalid(t, line, "identifier_types[1].id", "duplicate id");
	t = edit(NULL, "{ \"id\": \"giftcard\"", "{ \"id\": \"email\"", &line);
	expect_invalid(t, line, "identifier_types[0].id", "built-in");
}

static void
test_min_valid_version_above_version(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"newsletter\"", "\"min_valid_version\": 1",
	    "\"min_valid_version\": 3", &line);
	expect_invalid(t, line, "purposes[0].min_valid_version",
	    "3 is greater than version 2");
}

static void
test_version_out_of_range(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"email_offers\"", "\"version\": 1,", "\"version\": 0,", &line);
	expect_invalid(t, line, "purposes[1].version", "between 1 and");
}

/* A missing field is reported at the line of the object that lacks it. */
static void
test_missing_required_field(void **state)
{
	char *t;

	(void)state;
	t = drop_line("\"title\": \"Flash sales by text message\"");
	expect_invalid(t, enclosing_line(example, "\"id\": \"sms_offers\""),
	    "purposes[2].title", "required field is missing");

	t = drop_line("\"language\": \"en-GB\"");
	expect_invalid(t, 1, "language", "required field is missing");

	t = drop_line("\"postal_code\": \"M1 4BT\"");
	expect_invalid(t, enclosing_line(example, "\"street_address\""),
	    "controller.address.postal_code", "required field is missing");

	t = drop_line("\"service_records_days\": 2190");
	/* The comma before it must go too. */
	{
		char *u = strdup(t);
		char *c = strstr(u, "\"closed_requests_days\": 1095,");

		free(t);
		assert_non_null(c);
		c[strlen("\"closed_requests_days\": 1095")] = ' ';
		expect_invalid(u, enclosing_line(example, "\"closed_requests_days\""),
		    "retention.service_records_days", "required field is missing");
	}
}

static void
test_wrong_type(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"newsletter\"", "\"version\": 2,", "\"version\": \"2\",", &line);
	expect_invalid(t, line, "purposes[0].version", "must be an integer");
	t = edit("\"id\": \"review_requests\"", "\"marketing\": false",
	    "\"marketing\": \"no\"", &line);
	expect_invalid(t, line, "purposes[6].marketing", "must be true or false");
	t = edit(NULL, "\"frequencies\": [\"daily\", \"weekly\", \"monthly\"]",
	    "\"frequencies\": \"weekly\"", &line);
	expect_invalid(t, line, "frequencies", "must be an array");
	t = edit(NULL, "\"policy_version\": \"2026-11-01\"", "\"policy_version\": 20261101",
	    &line);
	expect_invalid(t, line, "policy_version", "must be a string");
	t = edit(NULL, "\"frequencies\": [\"daily\", \"weekly\", \"monthly\"]",
	    "\"frequencies\": [\"daily\", 7, \"monthly\"]", &line);
	expect_invalid(t, line, "frequencies[1]", "non-empty string");
}

static void
test_required_channel_missing(void **state)
{
	char *t;

	(void)state;
	t = drop_line("{ \"id\": \"post\"");
	expect_invalid(t, line_of(example, "\"channels\": [\n"), "channels",
	    "the channel \"post\" is required");
}

static void
test_purpose_unknown_channel(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"sms_offers\"", "\"channels\": [\"sms\"]",
	    "\"channels\": [\"sms\", \"fax\"]", &line);
	expect_invalid(t, line, "purposes[2].channels[1]", "unknown channel \"fax\"");
	t = edit("\"id\": \"review_requests\"", "\"channels\": [\"email\", \"sms\"]",
	    "\"channels\": [\"email\", \"email\"]", &line);
	expect_invalid(t, line, "purposes[6].channels[1]", "listed twice");
}

static void
test_holdout_51(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"holdout_percent\": 10", "\"holdout_percent\": 51", &line);
	expect_invalid(t, line, "purposes[3].holdout_percent", "between 0 and 50");
	/* 50 is the limit and is fine. */
	t = edit(NULL, "\"holdout_percent\": 10", "\"holdout_percent\": 50", NULL);
	cm_policy_free(parse_ok(t));
	free(t);
}

static void
test_holdout_on_contract_purpose(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"order_updates\"", "\"min_valid_version\": 1",
	    "\"min_valid_version\": 1, \"holdout_percent\": 5", &line);
	expect_invalid(t, line, "purposes[8].holdout_percent", "contract");
}

static void
test_soft_opt_in_not_marketing(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"basket_reminders\"", "\"marketing\": true",
	    "\"marketing\": false", &line);
	expect_invalid(t, line, "purposes[5].marketing", "soft opt-in");
}

static void
test_unknown_jurisdiction(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"jurisdiction\": \"uk_gdpr\"", "\"jurisdiction\": \"GDPR\"", &line);
	expect_invalid(t, line, "jurisdiction", "unknown jurisdiction \"GDPR\"");
	t = edit(NULL, "\"jurisdiction\": \"uk_gdpr\"", "\"jurisdiction\": \"uk-gdpr\"",
	    &line);
	expect_invalid(t, line, "jurisdiction", "expected gdpr, uk_gdpr or ccpa");
	/* ccpa is the other accepted value. */
	t = edit(NULL, "\"jurisdiction\": \"uk_gdpr\"", "\"jurisdiction\": \"ccpa\"", NULL);
	{
		struct cm_policy *p = parse_ok(t);

		assert_int_equal(p->pol_jurisdiction, CM_JUR_CCPA);
		cm_policy_free(p);
	}
	free(t);
}

static void
expect_bad_gpc_date(const char *date)
{
	char repl[64], *t;
	int line;

	snprintf(repl, sizeof(repl), "\"gpc_last_update\": \"%s\"", date);
	t = edit(NULL, "\"gpc_last_update\": \"2026-11-01\"", repl, &line);
	expect_invalid(t, line, "gpc_last_update", "YYYY-MM-DD");
}

static void
test_bad_gpc_last_update(void **state)
{
	char *t;

	(void)state;
	expect_bad_gpc_date("2026-02-30");
	expect_bad_gpc_date("2027-02-29");	/* not a leap year */
	expect_bad_gpc_date("2100-02-29");	/* nor is 2100 */
	expect_bad_gpc_date("2026-13-01");
	expect_bad_gpc_date("2026-04-31");
	expect_bad_gpc_date("2026-00-10");
	expect_bad_gpc_date("2026-1-01");
	expect_bad_gpc_date("2026/11/01");
	expect_bad_gpc_date("26-11-01");
	expect_bad_gpc_date("2026-11-01T00:00:00Z");
	/* Leap days that exist are fine. */
	t = edit(NULL, "\"gpc_last_update\": \"2026-11-01\"",
	    "\"gpc_last_update\": \"2028-02-29\"", NULL);
	cm_policy_free(parse_ok(t));
	free(t);
	t = edit(NULL, "\"gpc_last_update\": \"2026-11-01\"",
	    "\"gpc_last_update\": \"2000-02-29\"", NULL);
	cm_policy_free(parse_ok(t));
	free(t);
}

/*
 * sscanf("%2d") accepts a sign and skips leading white space, so dates
 * with "+1" or " 1" in a two-digit field must still be refused.
 */
static void
test_gpc_last_update_non_digits(void **state)
{
	(void)state;
	expect_bad_gpc_date("2026-+1-01");
	expect_bad_gpc_date("2026-11-+1");
	expect_bad_gpc_date("2026- 1-01");
	expect_bad_gpc_date("2026-11- 1");
}

static void
test_legitimate_interest_missing(void **state)
{
	char *t;

	(void)state;
	t = drop_line("\"legitimate_interest\": \"Improving our products");
	expect_invalid(t, enclosing_line(example, "\"id\": \"review_requests\""),
	    "purposes[6].legitimate_interest", "required for a purpose whose lawful "
	    "basis is legitimate_interest");
	/* Soft opt-in needs it too. */
	t = drop_line("\"legitimate_interest\": \"Marketing our own");
	expect_invalid(t, enclosing_line(example, "\"id\": \"basket_reminders\""),
	    "purposes[5].legitimate_interest", "soft_opt_in");
}

static void
test_non_object_root(void **state)
{
	size_t len;
	char *t;

	(void)state;
	len = strlen(example);
	t = malloc(len + 3);
	assert_non_null(t);
	t[0] = '[';
	memcpy(t + 1, example, len);
	t[len + 1] = ']';
	t[len + 2] = '\0';
	expect_invalid(t, 1, "(document)", "must be a JSON object");
}

/* The root value starts on line 3: that is the line to report. */
static void
test_non_object_root_line(void **state)
{
	(void)state;
	expect_invalid(strdup("\n\n[1, 2, 3]\n"), 3, "(document)",
	    "must be a JSON object");
}

static void
test_duplicate_json_key(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"newsletter\"", "\"version\": 2,",
	    "\"version\": 2, \"version\": 3,", &line);
	expect_invalid(t, line, "(document)", "duplicate");
	t = edit(NULL, "\"default_frequency\": \"weekly\",",
	    "\"default_frequency\": \"weekly\",\n  \"default_frequency\": \"daily\",", NULL);
	line = line_of(t, "\"daily\",\n");
	expect_invalid(t, line, "(document)", "duplicate");
}

static void
test_default_frequency_unknown(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"default_frequency\": \"weekly\"", "\"default_frequency\": \"hourly\"",
	    &line);
	expect_invalid(t, line, "default_frequency",
	    "\"hourly\" is not one of the frequencies");
}

static void
test_bad_ids(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "\"id\": \"email_offers\"", "\"id\": \"Email_offers\"", &line);
	expect_invalid(t, line, "purposes[1].id", "not a valid id");
	t = edit(NULL, "\"frequencies\": [\"daily\",", "\"frequencies\": [\"every-day\",",
	    &line);
	expect_invalid(t, line, "frequencies[0]", "not a valid id");
	t = edit(NULL, "\"id\": \"new_arrivals\"", "\"id\": \"\"", &line);
	expect_invalid(t, line, "topics[0].id", "non-empty");
}

static void
test_bad_recipient(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit("\"id\": \"sms_offers\"", "\"role\": \"processor\"",
	    "\"role\": \"friend\"", &line);
	expect_invalid(t, line, "purposes[2].recipients[0].role", "unknown role");
	t = edit("\"id\": \"order_updates\"", "\"country\": \"NL\"", "\"country\": \"nl\"",
	    &line);
	expect_invalid(t, line, "purposes[8].recipients[1].country", "alpha-2");
}

/* ---- Art. 30: the record of processing ---------------------------------- */

static void
test_security_measures(void **state)
{
	char *t;
	int line;

	(void)state;
	t = replace_span("  \"security_measures\": [", "  ],\n", "", NULL);
	expect_invalid(t, 1, "security_measures", "required field is missing");
	t = replace_span("\"security_measures\": [", "\n  ]", "\"security_measures\": []",
	    &line);
	expect_invalid(t, line, "security_measures", "must not be empty");
	t = replace_span("\"security_measures\": [", "\n  ]", "\"security_measures\": [7]",
	    &line);
	expect_invalid(t, line, "security_measures[0]", "non-empty string");
}

/* Each purpose names whose data it is, itself or through the default. */
static void
test_data_subject_categories(void **state)
{
	struct cm_policy *p;
	json_t *doc, *pu, *def;
	char *t;
	int line;

	(void)state;
	p = parse_ok(example);
	doc = json_loads(p->pol_public, 0, NULL);
	assert_non_null(doc);
	def = json_object_get(doc, "default_data_subject_categories");
	assert_int_equal(json_array_size(def), 1);
	/* basket_reminders has none of its own: the public view shows the default. */
	pu = json_array_get(json_object_get(doc, "purposes"), 5);
	assert_string_equal(json_string_value(json_object_get(pu, "id")), "basket_reminders");
	assert_true(json_equal(json_object_get(pu, "data_subject_categories"), def));
	pu = json_array_get(json_object_get(doc, "purposes"), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(pu,
	    "data_subject_categories"), 0)),
	    "Newsletter subscribers, whether or not they are customers");
	json_decref(doc);
	cm_policy_free(p);

	/* Without the default, the first purpose without its own is refused. */
	t = replace_span("  \"default_data_subject_categories\"", "\n", "", NULL);
	expect_invalid(t, enclosing_line(example, "\"id\": \"basket_reminders\"") - 1,
	    "purposes[5].data_subject_categories", "Art. 30(1)(c)");
	t = edit("\"id\": \"newsletter\"", "\"data_subject_categories\": [\"Newsletter "
	    "subscribers, whether or not they are customers\"]",
	    "\"data_subject_categories\": []", &line);
	expect_invalid(t, line, "purposes[0].data_subject_categories", "must not be empty");
	t = replace_span("\"default_data_subject_categories\": [", "],",
	    "\"default_data_subject_categories\": [],", &line);
	expect_invalid(t, line, "default_data_subject_categories", "must not be empty");
}

/* Outside the home area, a recipient names the safeguard of the transfer. */
static void
test_transfer_safeguards_uk_gdpr(void **state)
{
	char *t;
	int line;

	(void)state;
	t = replace_span(", \"transfer_safeguards\": \"UK Extension", "\" }", " }", NULL);
	line = line_of(t, "\"Search advertising platform\"");
	expect_invalid(t, line, "purposes[4].recipients[1].transfer_safeguards",
	    "required for a recipient in US, outside the UK and the EEA");
	/* Switzerland is not in the EEA. */
	t = edit("\"id\": \"sms_offers\"", "\"country\": \"DE\"", "\"country\": \"CH\"", &line);
	expect_invalid(t, line, "purposes[2].recipients[0].transfer_safeguards",
	    "in CH, outside the UK and the EEA");
	/* The UK is home under the UK GDPR: the shipped GB recipients need none. */
	cm_policy_free(parse_ok(example));
}

static void
test_transfer_safeguards_gdpr(void **state)
{
	static const char *const eea[] = { "AT", "BE", "BG", "CY", "CZ", "DE", "DK",
	    "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV",
	    "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO" };
	static const char *const third[] = { "GB", "CH", "US", "EL", "JE", "TR" };
	struct cm_policy *p;
	char *gdpr, *t, *s, repl[32], msg[64];
	size_t i;
	int line;

	(void)state;
	/* Under the EU GDPR the UK is a third country: its adequacy is the safeguard. */
	gdpr = edit(NULL, "\"jurisdiction\": \"uk_gdpr\"", "\"jurisdiction\": \"gdpr\"", NULL);
	expect_invalid(strdup(gdpr), line_of(gdpr, "\"Parcel carriers\""),
	    "purposes[8].recipients[0].transfer_safeguards",
	    "required for a recipient in GB, outside the EEA");
	/* The same policy with its UK recipients moved to Ireland is valid. */
	while ((s = strstr(gdpr, "\"country\": \"GB\"")) != NULL)
		memcpy(s + 12, "IE", 2);
	p = parse_ok(gdpr);
	assert_int_equal(p->pol_jurisdiction, CM_JUR_GDPR);
	cm_policy_free(p);
	/* Every EEA state is home; Greece is GR, not the EU's own "EL". */
	for (i = 0; i < CM_NELEM(eea); i++) {
		snprintf(repl, sizeof(repl), "\"country\": \"%s\"", eea[i]);
		t = edit_text(gdpr, "\"id\": \"sms_offers\"", "\"country\": \"DE\"", repl, NULL);
		cm_policy_free(parse_ok(t));
		free(t);
	}
	for (i = 0; i < CM_NELEM(third); i++) {
		snprintf(repl, sizeof(repl), "\"country\": \"%s\"", third[i]);
		snprintf(msg, sizeof(msg), "in %s, outside the EEA", third[i]);
		t = edit_text(gdpr, "\"id\": \"sms_offers\"", "\"country\": \"DE\"", repl, &line);
		expect_invalid(t, line, "purposes[2].recipients[0].transfer_safeguards", msg);
	}
	free(gdpr);
}

/* The CCPA has no transfer rule. */
static void
test_transfer_safeguards_ccpa(void **state)
{
	struct cm_policy *p;
	char *t, *s;

	(void)state;
	t = replace_span(", \"transfer_safeguards\": \"UK Extension", "\" }", " }", NULL);
	s = strstr(t, "\"jurisdiction\": \"uk_gdpr\"");
	assert_non_null(s);
	memcpy(s, "\"jurisdiction\":    \"ccpa\"", 25);
	p = parse_ok(t);
	assert_int_equal(p->pol_jurisdiction, CM_JUR_CCPA);
	cm_policy_free(p);
	free(t);
}

/* ---- phone region and the identifier types of channels ------------------- */

static void
test_default_phone_region(void **state)
{
	struct cm_policy *p;
	json_t *doc;
	char *t;
	int line;

	(void)state;
	/* Optional: without it there is no region, and the public view says null. */
	t = edit(NULL, "  \"default_phone_region\": \"GB\",\n", "", NULL);
	p = parse_ok(t);
	free(t);
	assert_null(p->pol_phone_region);
	doc = json_loads(p->pol_public, 0, NULL);
	assert_non_null(doc);
	assert_true(json_is_null(json_object_get(doc, "default_phone_region")));
	json_decref(doc);
	cm_policy_free(p);

	t = edit(NULL, "\"default_phone_region\": \"GB\"", "\"default_phone_region\": \"IE\"",
	    NULL);
	p = parse_ok(t);
	free(t);
	assert_string_equal(p->pol_phone_region, "IE");
	cm_policy_free(p);

	t = edit(NULL, "\"default_phone_region\": \"GB\"", "\"default_phone_region\": \"gb\"",
	    &line);
	expect_invalid(t, line, "default_phone_region", "ISO 3166-1 alpha-2");
	t = edit(NULL, "\"default_phone_region\": \"GB\"", "\"default_phone_region\": \"GBR\"",
	    &line);
	expect_invalid(t, line, "default_phone_region", "ISO 3166-1 alpha-2");
	t = edit(NULL, "\"default_phone_region\": \"GB\"", "\"default_phone_region\": 44",
	    &line);
	expect_invalid(t, line, "default_phone_region", "must be a string");
}

/* Without identifier_types on a channel, the defaults apply. */
static void
test_channel_identifier_types_default(void **state)
{
	struct cm_policy *p;
	json_t *doc, *ch;
	int email, sms, push, phone, post, ads;

	(void)state;
	p = parse_ok(example);
	email = cm_policy_channel_index(p, "email");
	sms = cm_policy_channel_index(p, "sms");
	push = cm_policy_channel_index(p, "push");
	phone = cm_policy_channel_index(p, "phone");
	post = cm_policy_channel_index(p, "post");
	ads = cm_policy_channel_index(p, "ads");
	assert_true(cm_policy_channel_uses_type(p, (size_t)email, "email"));
	assert_false(cm_policy_channel_uses_type(p, (size_t)email, "phone"));
	assert_true(cm_policy_channel_uses_type(p, (size_t)sms, "phone"));
	assert_false(cm_policy_channel_uses_type(p, (size_t)sms, "email"));
	assert_true(cm_policy_channel_uses_type(p, (size_t)phone, "phone"));
	assert_true(cm_policy_channel_uses_type(p, (size_t)push, "device"));
	assert_false(cm_policy_channel_uses_type(p, (size_t)push, "email"));
	assert_false(cm_policy_channel_uses_type(p, (size_t)post, "email"));
	assert_false(cm_policy_channel_uses_type(p, (size_t)post, "customer"));
	assert_false(cm_policy_channel_uses_type(p, (size_t)ads, "email"));
	assert_false(cm_policy_channel_uses_type(p, (size_t)ads, "device"));
	assert_false(cm_policy_channel_uses_type(p, 99, "email"));
	/* The public view states each channel's list. */
	doc = json_loads(p->pol_public, 0, NULL);
	assert_non_null(doc);
	ch = json_array_get(json_object_get(doc, "channels"), (size_t)sms);
	assert_int_equal(json_array_size(json_object_get(ch, "identifier_types")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(ch,
	    "identifier_types"), 0)), "phone");
	ch = json_array_get(json_object_get(doc, "channels"), (size_t)post);
	assert_true(json_is_array(json_object_get(ch, "identifier_types")));
	assert_int_equal(json_array_size(json_object_get(ch, "identifier_types")), 0);
	json_decref(doc);
	cm_policy_free(p);
}

/* A channel's own list replaces the defaults, and may name the policy's types. */
static void
test_channel_identifier_types_explicit(void **state)
{
	struct cm_policy *p;
	json_t *doc, *ch;
	char *t, *u, *v;

	(void)state;
	t = edit(NULL, "{ \"id\": \"ads\",", "{ \"id\": \"ads\", \"identifier_types\": "
	    "[\"device\", \"email\"],", NULL);
	u = edit_text(t, NULL, "{ \"id\": \"sms\",", "{ \"id\": \"sms\", "
	    "\"identifier_types\": [],", NULL);
	free(t);
	v = edit_text(u, NULL, "{ \"id\": \"post\",", "{ \"id\": \"post\", "
	    "\"identifier_types\": [\"customer\", \"giftcard\"],", NULL);
	free(u);
	p = parse_ok(v);
	free(v);
	assert_true(cm_policy_channel_uses_type(p, 5, "device"));	/* ads */
	assert_true(cm_policy_channel_uses_type(p, 5, "email"));
	assert_false(cm_policy_channel_uses_type(p, 5, "phone"));
	assert_false(cm_policy_channel_uses_type(p, 1, "phone"));	/* sms: none */
	assert_true(cm_policy_channel_uses_type(p, 4, "giftcard"));	/* post */
	assert_true(cm_policy_channel_uses_type(p, 4, "customer"));
	assert_true(cm_policy_channel_uses_type(p, 0, "email"));	/* email: default */
	assert_true(cm_policy_channel_uses_type(p, 3, "phone"));	/* phone: default */
	doc = json_loads(p->pol_public, 0, NULL);
	assert_non_null(doc);
	ch = json_array_get(json_object_get(doc, "channels"), 5);
	assert_string_equal(json_string_value(json_array_get(json_object_get(ch,
	    "identifier_types"), 1)), "email");
	json_decref(doc);
	cm_policy_free(p);
}

static void
test_channel_identifier_types_invalid(void **state)
{
	char *t;
	int line;

	(void)state;
	t = edit(NULL, "{ \"id\": \"email\",", "{ \"id\": \"email\", \"identifier_types\": "
	    "[\"email\", \"fax\"],", &line);
	expect_invalid(t, line, "channels[0].identifier_types[1]",
	    "unknown identifier type \"fax\"");
	t = edit(NULL, "{ \"id\": \"sms\",", "{ \"id\": \"sms\", \"identifier_types\": "
	    "[\"phone\", \"phone\"],", &line);
	expect_invalid(t, line, "channels[1].identifier_types[1]", "listed twice");
	t = edit(NULL, "{ \"id\": \"sms\",", "{ \"id\": \"sms\", \"identifier_types\": "
	    "\"phone\",", &line);
	expect_invalid(t, line, "channels[1].identifier_types", "must be an array");
	t = edit(NULL, "{ \"id\": \"push\",", "{ \"id\": \"push\", \"identifier_types\": "
	    "[7],", &line);
	expect_invalid(t, line, "channels[2].identifier_types[0]",
	    "must be an identifier type id");
}

/* cm_policy_line finds a field named as errors name it, for later checks. */
static void
test_policy_line(void **state)
{
	struct cm_policy *p;

	(void)state;
	p = parse_ok(example);
	assert_int_equal(cm_policy_line(p, "jurisdiction"), line_of(example,
	    "\"jurisdiction\""));
	assert_int_equal(cm_policy_line(p, "security_measures"), line_of(example,
	    "\"security_measures\""));
	assert_int_equal(cm_policy_line(p, "purposes[0].lawful_basis"),
	    line_of(example, "\"lawful_basis\": \"consent\",\n      \"marketing\": true,\n"
	    "      \"channels\": [\"email\"],\n      \"data_categories\": [\"contact details\", "
	    "\"preference settings\"]"));
	assert_int_equal(cm_policy_line(p, "purposes[4].recipients[1].country"),
	    line_of(example, "\"Search advertising platform\""));
	assert_int_equal(cm_policy_line(p, "purposes[3].channels[1]"),
	    line_of(example, "\"channels\": [\"email\", \"push\"],\n      \"data_categories\": "
	    "[\"purchase history\""));
	/* A missing field: the object that lacks it. */
	assert_int_equal(cm_policy_line(p, "purposes[5].data_subject_categories"),
	    enclosing_line(example, "\"id\": \"basket_reminders\""));
	assert_int_equal(cm_policy_line(p, "nothing.here"), 1);
	assert_int_equal(cm_policy_line(p, ""), 1);
	assert_int_equal(cm_policy_line(p, "purposes[x]"), line_of(example,
	    "\"purposes\": ["));
	cm_policy_free(p);
}

/* retention.packages_days: optional, 30 by default, 1 to 365. */
static void
test_packages_days(void **state)
{
	struct cm_policy *p;
	char *t;
	int line;

	(void)state;
	p = parse_ok(example);
	assert_int_equal(p->pol_packages_days, 30);
	cm_policy_free(p);
	t = edit("\"service_records_days\"", "2190", "2190, \"packages_days\": 7", NULL);
	p = parse_ok(t);
	assert_int_equal(p->pol_packages_days, 7);
	cm_policy_free(p);
	free(t);
	t = edit("\"service_records_days\"", "2190", "2190, \"packages_days\": 0", &line);
	expect_invalid(t, line, "retention.packages_days", "between 1 and 365");
	t = edit("\"service_records_days\"", "2190", "2190, \"packages_days\": \"7\"", &line);
	expect_invalid(t, line, "retention.packages_days", NULL);
}

/*
 * The preference centre's branding is optional; its accent colour must be
 * #rrggbb (it reaches CSS) and dark enough for white text (4.5:1).
 */
static void
test_branding(void **state)
{
	struct cm_policy *p;
	int line;
	char *t;

	(void)state;
	p = parse_ok(example);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    (json_t *)p->pol_doc, "branding"), "accent_color")), "#1f4e79");
	cm_policy_free(p);
	t = replace_span("\"accent_color\"", "\"#1f4e79\"", "\"accent_color\": "
	    "\"red;}body{display:none\"", &line);
	expect_invalid(t, line, "branding.accent_color", "#rrggbb");
	t = replace_span("\"accent_color\"", "\"#1f4e79\"", "\"accent_color\": "
	    "\"#12345g\"", &line);
	expect_invalid(t, line, "branding.accent_color", "#rrggbb");
	t = replace_span("\"accent_color\"", "\"#1f4e79\"", "\"accent_color\": "
	    "\"#ffd700\"", &line);
	expect_invalid(t, line, "branding.accent_color", "4.5:1");
	t = replace_span("\"accent_color\"", "\"#1f4e79\"", "\"accent_color\": "
	    "\"#767676\"", &line);
	p = parse_ok(t);
	cm_policy_free(p);
	free(t);
	t = replace_span("\"accent_color\"", "\"#1f4e79\"", "\"accent_color\": "
	    "\"#777777\"", &line);
	expect_invalid(t, line, "branding.accent_color", "4.5:1");
	t = replace_span("\"branding\": {", "\"name\"", "\"branding\": {\n    \"nom\"", &line);
	line++;
	expect_invalid(t, line, "branding.nom", "unknown field");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_branding),
		cmocka_unit_test(test_example_facts),
		cmocka_unit_test(test_packages_days),
		cmocka_unit_test(test_example_public_view),
		cmocka_unit_test(test_optional_identifier_types),
		cmocka_unit_test(test_indexes),
		cmocka_unit_test(test_lawful_basis_names),
		cmocka_unit_test(test_load_directory_and_file),
		cmocka_unit_test(test_load_missing),
		cmocka_unit_test(test_load_names_the_file),
		cmocka_unit_test(test_load_too_large),
		cmocka_unit_test(test_bad_json_syntax),
		cmocka_unit_test(test_bad_json_missing_comma),
		cmocka_unit_test(test_bad_json_truncated),
		cmocka_unit_test(test_unknown_key_top_level),
		cmocka_unit_test(test_unknown_key_in_purpose),
		cmocka_unit_test(test_unknown_key_deeper),
		cmocka_unit_test(test_unknown_lawful_basis),
		cmocka_unit_test(test_topic_missing_purpose),
		cmocka_unit_test(test_topic_purpose_without_channels),
		cmocka_unit_test(test_duplicate_purpose_id),
		cmocka_unit_test(test_duplicate_topic_id),
		cmocka_unit_test(test_duplicate_channel_id),
		cmocka_unit_test(test_duplicate_identifier_type),
		cmocka_unit_test(test_min_valid_version_above_version),
		cmocka_unit_test(test_version_out_of_range),
		cmocka_unit_test(test_missing_required_field),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_required_channel_missing),
		cmocka_unit_test(test_purpose_unknown_channel),
		cmocka_unit_test(test_holdout_51),
		cmocka_unit_test(test_holdout_on_contract_purpose),
		cmocka_unit_test(test_soft_opt_in_not_marketing),
		cmocka_unit_test(test_unknown_jurisdiction),
		cmocka_unit_test(test_bad_gpc_last_update),
		cmocka_unit_test(test_gpc_last_update_non_digits),
		cmocka_unit_test(test_legitimate_interest_missing),
		cmocka_unit_test(test_non_object_root),
		cmocka_unit_test(test_non_object_root_line),
		cmocka_unit_test(test_duplicate_json_key),
		cmocka_unit_test(test_default_frequency_unknown),
		cmocka_unit_test(test_bad_ids),
		cmocka_unit_test(test_bad_recipient),
		cmocka_unit_test(test_security_measures),
		cmocka_unit_test(test_data_subject_categories),
		cmocka_unit_test(test_transfer_safeguards_uk_gdpr),
		cmocka_unit_test(test_transfer_safeguards_gdpr),
		cmocka_unit_test(test_transfer_safeguards_ccpa),
		cmocka_unit_test(test_default_phone_region),
		cmocka_unit_test(test_channel_identifier_types_default),
		cmocka_unit_test(test_channel_identifier_types_explicit),
		cmocka_unit_test(test_channel_identifier_types_invalid),
		cmocka_unit_test(test_policy_line),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
