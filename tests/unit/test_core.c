/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the domain rules in src/core/ that change what the check
 * answers for a person: merging two subjects (merge.c), the Art. 17, 18
 * and 21 rights (rights.c), preference saves (prefs.c) and the
 * suppression list (suppression.c). Each test calls the public functions
 * on a fresh SQLCipher store with real keys and the shipped policy, and
 * judges the outcome by what cm_consent_check answers, since that is what
 * senders act on. Nothing is mocked.
 *
 * Time is the context's clock, never the wall clock: every test starts at
 * the same fixed instant and moves it on explicitly, so collected_at
 * orders, pauses and ties come out the same on every run.
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
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

#define SECOND		INT64_C(1000000)
#define DAY		(86400 * SECOND)
/* 2026-01-01T00:00:00Z: where every test's clock starts. */
#define T0		(INT64_C(1767225600) * SECOND)

#define ANA		"email:ana@example.com"
#define ANA_WORK	"email:ana.work@example.com"
#define ANA_PHONE	"phone:+447700900123"
#define BEN		"email:ben@example.com"
#define BEN_PHONE	"phone:+447700900456"

#define SID		(CM_SUBJECT_ID_LEN + 1)	/* a subject id and its NUL */

/* The shipped policy, read once for the whole file. */
static struct cm_policy *policy;

struct fx {
	char		 dir[64];
	struct cm_keys	*keys;
	struct cm_store	*store;
	struct cm_ctx	 cx;
	struct cm_why	 w;		/* why the last call failed */
};

/* ---- fixture ------------------------------------------------------------ */

static int
group_setup(void **state)
{
	char err[512];

	(void)state;
	if (cm_crypto_init() != 0)
		return -1;
	cm_log_set_level(CM_LOG_WARN);	/* no "migration_applied" lines per store */
	/* The tests run from the top of the tree, as `make unit` runs them. */
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

/* A store of its own for every test, so no test sees another's people. */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cm_migration_set set;
	struct cm_db *db;
	char err[512];

	assert_non_null(f);
	/* Under build/, which the tests run beside and git ignores. */
	strcpy(f->dir, "build/core-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(cm_keys_create(f->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(f->dir, &f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(f->dir, f->keys, &set, NULL, &f->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	assert_non_null(db = cm_store_db(f->store));
	/* A throw-away store: no fsync per commit (durability is not under test). */
	assert_int_equal(cm_db_bulk_load(db), CM_OK);
	cm_ctx_init(&f->cx, db, f->keys, policy, "test:core");
	f->cx.cx_now = T0;
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

/* ---- helpers ------------------------------------------------------------ */

static struct cm_identifier
ident(const char *text)
{
	struct cm_identifier id;
	char why[160];

	if (cm_identifier_parse(text, strlen(text), policy, &id, why, sizeof(why)) != CM_OK)
		fail_msg("identifier %s: %s", text, why);
	return id;
}

static const struct cm_purpose *
purpose(const char *name)
{
	int i = cm_policy_purpose_index(policy, name);

	if (i < 0)
		fail_msg("the shipped policy has no purpose %s", name);
	return &policy->pol_purposes[i];
}

/*
 * Moves the clock on one second: every write happens at its own instant,
 * so no two decisions tie on collected_at by accident.
 */
static void
tick(struct fx *f)
{
	f->cx.cx_now += SECOND;
}

static void
tx_begin(struct fx *f)
{
	tick(f);
	memset(&f->w, 0, sizeof(f->w));
	if (cm_db_begin(f->cx.cx_db) != CM_OK)
		fail_msg("begin");
}

/* Commits when RC is CM_OK, rolls back otherwise; returns RC. */
static cm_result
tx_end(struct fx *f, cm_result rc)
{
	if (rc != CM_OK) {
		cm_db_rollback(f->cx.cx_db);
		return rc;
	}
	if (cm_db_commit(f->cx.cx_db) != CM_OK)
		fail_msg("commit");
	return rc;
}

/* Runs CALL, a domain write, in a transaction of its own. */
#define TX(f, call)	(tx_begin(f), tx_end((f), (call)))

#define assert_why(f, code) do {					\
	if ((f)->w.w_code == NULL || strcmp((f)->w.w_code, (code)) != 0)	\
		fail_msg("w_code: want %s, got %s", (code),		\
		    (f)->w.w_code ? (f)->w.w_code : "(none)");		\
} while (0)

/*
 * Creates a subject holding the identifiers that follow PROFILE (JSON text
 * or NULL), up to a NULL, into ID.
 */
static void
subject_new(struct fx *f, char id[SID], const char *profile, ...)
{
	struct cm_new_ident ni[4];
	const char *text;
	json_t *prof = NULL;
	va_list ap;
	size_t n = 0;

	memset(ni, 0, sizeof(ni));
	va_start(ap, profile);
	while ((text = va_arg(ap, const char *)) != NULL) {
		assert_true(n < CM_NELEM(ni));
		ni[n].ni_id = ident(text);
		ni[n].ni_source = "test";
		n++;
	}
	va_end(ap);
	if (profile != NULL)
		assert_non_null(prof = json_loads(profile, 0, NULL));
	if (TX(f, cm_subject_create(&f->cx, ni, n, prof, id, &f->w)) != CM_OK)
		fail_msg("subject_create: %s", f->w.w_code ? f->w.w_code : "?");
	json_decref(prof);
}

/*
 * Records STATE for purpose PNAME on CHANNEL (NULL: all channels) by
 * METHOD, about WHO (an identifier, or a subject id), collected AGO
 * microseconds before now (0: now). EVIDENCE is JSON text or NULL.
 */
static cm_result
record_ev(struct fx *f, const char *who, const char *pname, const char *channel,
    enum cm_consent_state state, const char *method, int64_t ago, const char *evidence)
{
	struct cm_consent_input in;
	struct cm_consent_result res;
	struct cm_identifier id;
	json_t *ev = NULL;
	cm_result rc;

	memset(&in, 0, sizeof(in));
	if (strncmp(who, "sub_", 4) == 0) {
		in.ci_subject = who;
	} else {
		id = ident(who);
		in.ci_ident = &id;
	}
	in.ci_purpose = purpose(pname);
	in.ci_channel = channel ? cm_policy_channel_index(policy, channel) : -1;
	assert_true(channel == NULL || in.ci_channel >= 0);
	in.ci_state = state;
	in.ci_method = method;
	in.ci_client = "test";
	if (evidence != NULL)
		assert_non_null(ev = in.ci_evidence = json_loads(evidence, 0, NULL));
	tx_begin(f);
	in.ci_collected_us = ago > 0 ? f->cx.cx_now - ago : 0;
	rc = tx_end(f, cm_consent_record(&f->cx, &in, &res, &f->w));
	json_decref(res.cr_event_ids);
	json_decref(ev);
	return rc;
}

static cm_result
record(struct fx *f, const char *who, const char *pname, const char *channel,
    enum cm_consent_state state, const char *method, int64_t ago)
{
	return record_ev(f, who, pname, channel, state, method, ago, NULL);
}

/* A grant the person made on our own web form: the usual way in. */
static void
grant(struct fx *f, const char *who, const char *pname, const char *channel, int64_t ago)
{
	if (record(f, who, pname, channel, CM_CONSENT_GRANTED, "web_form", ago) != CM_OK)
		fail_msg("grant %s %s: %s", who, pname, f->w.w_code ? f->w.w_code : "?");
}

/* Runs the check; the caller releases out->ck_conflicts. */
static void
check(struct fx *f, const char *who, const char *pname, const char *channel,
    struct cm_check_result *out)
{
	struct cm_identifier id = ident(who);

	if (cm_consent_check(&f->cx, &id, purpose(pname), channel, out) != CM_OK)
		fail_msg("check %s %s %s failed", who, pname, channel ? channel : "*");
}

/* Fails (at LINE) unless the check says ALLOW for REASON. */
static void
check_is(struct fx *f, const char *who, const char *pname, const char *channel, bool allow,
    const char *reason, int line)
{
	struct cm_check_result r;

	check(f, who, pname, channel, &r);
	json_decref(r.ck_conflicts);
	if (r.ck_decision.d_allow != allow || strcmp(r.ck_decision.d_reason, reason) != 0)
		fail_msg("line %d: check %s %s %s: want %s %s, got %s %s", line, who, pname,
		    channel ? channel : "*", allow ? "allow" : "deny", reason,
		    r.ck_decision.d_allow ? "allow" : "deny", r.ck_decision.d_reason);
}

#define expect_allow(f, who, p, ch, reason)	check_is(f, who, p, ch, true, reason, __LINE__)
#define expect_deny(f, who, p, ch, reason)	check_is(f, who, p, ch, false, reason, __LINE__)

static cm_result
merge(struct fx *f, const char *into, const char *from, json_t **conflicts)
{
	return TX(f, cm_subject_merge(&f->cx, into, from, "test", conflicts, &f->w));
}

static cm_result
suppress(struct fx *f, const char *who, const char *reason)
{
	struct cm_identifier id = ident(who);
	char out[16];
	bool existed;
	int64_t since;

	return TX(f, cm_suppression_add(&f->cx, &id, reason, &existed, out, &since));
}

static cm_result
lift(struct fx *f, const char *who)
{
	struct cm_identifier id = ident(who);

	return TX(f, cm_suppression_lift(&f->cx, &id));
}

/* Saves the preferences document BODY (JSON text) for ID by METHOD. */
static cm_result
prefs_put(struct fx *f, const char *id, const char *body, const char *method)
{
	json_t *in;
	cm_result rc;

	assert_non_null(in = json_loads(body, 0, NULL));
	rc = TX(f, cm_prefs_put(&f->cx, id, in, method, &f->w));
	json_decref(in);
	return rc;
}

/* Whether IDENT resolves to subject ID. */
static bool
resolves_to(struct fx *f, const char *who, const char *id)
{
	struct cm_identifier x = ident(who);
	char owner[SID];

	return cm_subject_resolve(&f->cx, &x, owner) == CM_OK && strcmp(owner, id) == 0;
}

static int
count_row(void *arg, const struct cm_ident_row *r)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

/* ---- merge.c ------------------------------------------------------------ */

static void
test_merge_moves_identifiers_to_survivor(void **state)
{
	struct fx *f = *state;
	char a[SID], b[SID];
	json_t *conflicts, *ids, *o;
	const char *want[] = { ANA, ANA_WORK, ANA_PHONE };
	size_t i, j;
	int n = 0;

	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, ANA_PHONE, NULL);
	assert_true(resolves_to(f, ANA_WORK, b));
	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	json_decref(conflicts);
	for (i = 0; i < CM_NELEM(want); i++)
		if (!resolves_to(f, want[i], a))
			fail_msg("%s does not resolve to the survivor", want[i]);
	/* Readable under the survivor's key, not only indexed to it. */
	assert_int_equal(cm_subject_identifiers(&f->cx, a, &ids, &f->w), CM_OK);
	assert_int_equal(json_array_size(ids), CM_NELEM(want));
	for (i = 0; i < CM_NELEM(want); i++) {
		bool found = false;

		json_array_foreach(ids, j, o)
			if (strcmp(json_string_value(json_object_get(o, "identifier")),
			    want[i]) == 0)
				found = true;
		if (!found)
			fail_msg("the survivor's identifiers lack %s", want[i]);
	}
	json_decref(ids);
	assert_int_equal(cm_store_identifier_list(f->cx.cx_db, b, count_row, &n), CM_OK);
	assert_int_equal(n, 0);
}

static void
test_merge_from_answers_merged(void **state)
{
	struct fx *f = *state;
	struct cm_subject_row row;
	char a[SID], b[SID], c[SID];
	json_t *conflicts;

	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, NULL);
	subject_new(f, c, NULL, ANA_PHONE, NULL);
	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	json_decref(conflicts);
	memset(&f->w, 0, sizeof(f->w));
	assert_int_equal(cm_subject_load(&f->cx, b, &row, &f->w), CM_NOTFOUND);
	assert_why(f, "merged");
	assert_string_equal(f->w.w_subject, a);
	/* A write to the merged-away subject is refused the same way. */
	assert_int_equal(record(f, b, "newsletter", "email", CM_CONSENT_GRANTED, "web_form",
	    0), CM_NOTFOUND);
	assert_why(f, "merged");
	/* After a second merge, w_subject follows the chain to today's survivor. */
	assert_int_equal(merge(f, c, a, &conflicts), CM_OK);
	json_decref(conflicts);
	memset(&f->w, 0, sizeof(f->w));
	assert_int_equal(cm_subject_load(&f->cx, b, &row, &f->w), CM_NOTFOUND);
	assert_why(f, "merged");
	assert_string_equal(f->w.w_subject, c);
	assert_int_equal(cm_subject_load(&f->cx, c, &row, &f->w), CM_OK);
}

static void
test_merge_fills_profile_gaps_keeps_into_values(void **state)
{
	struct fx *f = *state;
	char a[SID], b[SID];
	json_t *conflicts, *view, *prof;
	int64_t n;

	subject_new(f, a, "{\"first_name\":\"Ana\",\"city\":\"Lisboa\"}", ANA, NULL);
	subject_new(f, b, "{\"first_name\":\"Anna\",\"city\":\"Porto\",\"last_name\":\"Silva\"}",
	    ANA_WORK, NULL);
	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	json_decref(conflicts);
	assert_int_equal(cm_subject_view(&f->cx, a, &view, &f->w), CM_OK);
	prof = json_object_get(view, "profile");
	assert_int_equal(json_object_size(prof), 3);
	assert_string_equal(json_string_value(json_object_get(prof, "first_name")), "Ana");
	assert_string_equal(json_string_value(json_object_get(prof, "city")), "Lisboa");
	assert_string_equal(json_string_value(json_object_get(prof, "last_name")), "Silva");
	json_decref(view);
	/* No row of FROM's stays behind, sealed under its destroyed key. */
	assert_int_equal(cm_store_profile_count(f->cx.cx_db, b, &n), CM_OK);
	assert_int_equal(n, 0);
}

static void
test_merge_restriction_on_from_stands(void **state)
{
	struct fx *f = *state;
	struct cm_subject_row row;
	char a[SID], b[SID];
	json_t *conflicts;

	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	assert_int_equal(TX(f, cm_subject_restrict(&f->cx, b, true, &f->w)), CM_OK);
	expect_allow(f, ANA, "newsletter", "email", "consent");
	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	json_decref(conflicts);
	assert_int_equal(cm_subject_load(&f->cx, a, &row, &f->w), CM_OK);
	assert_int_equal(row.s_state, CM_SUBJECT_RESTRICTED);
	/* Through either side's identifier, for every purpose. */
	expect_deny(f, ANA, "newsletter", "email", "restricted");
	expect_deny(f, ANA_WORK, "order_updates", "email", "restricted");
}

static void
test_merge_into_itself_is_invalid(void **state)
{
	struct fx *f = *state;
	struct cm_subject_row row;
	char a[SID];
	json_t *conflicts = NULL;

	subject_new(f, a, NULL, ANA, NULL);
	assert_int_equal(merge(f, a, a, &conflicts), CM_INVALID);
	assert_why(f, "same_subject");
	json_decref(conflicts);
	/* Nothing happened to it. */
	assert_int_equal(cm_subject_load(&f->cx, a, &row, &f->w), CM_OK);
	assert_string_equal(row.s_merged_into, "");
	assert_true(resolves_to(f, ANA, a));
}

/* Whether CONFLICTS holds {purpose, channel (NULL: all), kept, other}. */
static bool
has_conflict(json_t *conflicts, const char *pname, const char *channel, const char *kept)
{
	json_t *c;
	size_t i;

	json_array_foreach(conflicts, i, c) {
		json_t *ch = json_object_get(c, "channel");

		if (strcmp(json_string_value(json_object_get(c, "purpose")), pname) == 0 &&
		    (channel ? json_is_string(ch) && strcmp(json_string_value(ch), channel) == 0 :
		    ch == NULL || json_is_null(ch)) &&
		    strcmp(json_string_value(json_object_get(c, "kept")), kept) == 0 &&
		    strcmp(json_string_value(json_object_get(c, "other")), "granted") == 0)
			return true;
	}
	return false;
}

/*
 * The first rule: a "no" sticks. INTO's grant is the newer decision, so
 * rebuilding by latest collected_at alone would let it win; the merge must
 * keep FROM's older withdrawal standing and report the disagreement.
 */
static void
test_merge_withdrawn_vs_granted_denies(void **state)
{
	struct fx *f = *state;
	struct cm_check_result r;
	char a[SID], b[SID];
	json_t *conflicts;

	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, NULL);
	grant(f, ANA, "newsletter", "email", 1 * DAY);
	assert_int_equal(record(f, ANA_WORK, "newsletter", "email", CM_CONSENT_WITHDRAWN,
	    "email_link", 2 * DAY), CM_OK);
	expect_allow(f, ANA, "newsletter", "email", "consent");
	expect_deny(f, ANA_WORK, "newsletter", "email", "withdrawn");

	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	assert_int_equal(json_array_size(conflicts), 1);
	assert_true(has_conflict(conflicts, "newsletter", "email", "withdrawn"));
	json_decref(conflicts);
	expect_deny(f, ANA, "newsletter", "email", "withdrawn");
	expect_deny(f, ANA_WORK, "newsletter", "email", "withdrawn");
	/* The check shows the open conflict too. */
	check(f, ANA, "newsletter", "email", &r);
	assert_true(has_conflict(r.ck_conflicts, "newsletter", "email", "withdrawn"));
	json_decref(r.ck_conflicts);

	/* Until the person decides again, first hand: then that decides. */
	grant(f, ANA, "newsletter", "email", 0);
	check(f, ANA, "newsletter", "email", &r);
	assert_true(r.ck_decision.d_allow);
	assert_int_equal(json_array_size(r.ck_conflicts), 0);
	json_decref(r.ck_conflicts);
}

/*
 * The other direction and scope: INTO refused on all channels, FROM
 * granted one channel later. What both granted stays allowed: the rule
 * restricts only where they disagreed.
 */
static void
test_merge_refused_vs_granted_denies(void **state)
{
	struct fx *f = *state;
	char a[SID], b[SID];
	json_t *conflicts;

	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, NULL);
	assert_int_equal(record(f, ANA, "newsletter", NULL, CM_CONSENT_REFUSED, "web_form",
	    3 * DAY), CM_OK);
	grant(f, ANA_WORK, "newsletter", "email", 1 * DAY);
	grant(f, ANA, "email_offers", "email", 2 * DAY);
	grant(f, ANA_WORK, "email_offers", "email", 2 * DAY);
	expect_allow(f, ANA_WORK, "newsletter", "email", "consent");

	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	assert_true(has_conflict(conflicts, "newsletter", "email", "refused"));
	assert_int_equal(json_array_size(conflicts), 1);
	json_decref(conflicts);
	expect_deny(f, ANA, "newsletter", "email", "withdrawn");
	expect_deny(f, ANA_WORK, "newsletter", "email", "withdrawn");
	expect_allow(f, ANA_WORK, "email_offers", "email", "consent");
}

/*
 * The restated "no" outranks the grant it overrides, not the person's own
 * later decision on a narrower scope both sides agreed on: INTO withdrew
 * review requests everywhere, then granted them on email; FROM granted
 * them everywhere in between. Both allowed email before the merge, so
 * email stays allowed; sms, where INTO said no, is denied.
 */
static void
test_merge_keeps_later_agreed_channel(void **state)
{
	struct fx *f = *state;
	char a[SID], b[SID];
	json_t *conflicts;

	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, NULL);
	assert_int_equal(record(f, ANA, "review_requests", NULL, CM_CONSENT_WITHDRAWN,
	    "web_form", 3 * DAY), CM_OK);
	grant(f, ANA_WORK, "review_requests", NULL, 2 * DAY);
	grant(f, ANA, "review_requests", "email", 1 * DAY);
	expect_allow(f, ANA, "review_requests", "email", "legitimate_interest");
	expect_deny(f, ANA, "review_requests", "sms", "withdrawn");
	expect_allow(f, ANA_WORK, "review_requests", "email", "legitimate_interest");
	expect_allow(f, ANA_WORK, "review_requests", "sms", "legitimate_interest");

	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	assert_true(has_conflict(conflicts, "review_requests", NULL, "withdrawn"));
	json_decref(conflicts);
	expect_allow(f, ANA, "review_requests", "email", "legitimate_interest");
	expect_deny(f, ANA, "review_requests", "sms", "withdrawn");
	expect_deny(f, ANA_WORK, "review_requests", "sms", "withdrawn");
}

static void
test_merge_objection_and_pause_stand(void **state)
{
	struct fx *f = *state;
	char a[SID], b[SID], c[SID], d[SID], e[SID], g[SID];
	json_t *conflicts;
	char body[96];

	/* The objection on FROM's side. */
	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	assert_int_equal(TX(f, cm_subject_object(&f->cx, b, &f->w)), CM_OK);
	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	json_decref(conflicts);
	expect_deny(f, ANA, "newsletter", "email", "objected");
	expect_allow(f, ANA, "order_updates", "email", "contract");

	/* On INTO's side, with the grant coming from FROM. */
	subject_new(f, c, NULL, BEN, NULL);
	subject_new(f, d, NULL, BEN_PHONE, NULL);
	grant(f, BEN_PHONE, "sms_offers", "sms", 0);
	assert_int_equal(TX(f, cm_subject_object(&f->cx, c, &f->w)), CM_OK);
	assert_int_equal(merge(f, c, d, &conflicts), CM_OK);
	json_decref(conflicts);
	expect_deny(f, BEN_PHONE, "sms_offers", "sms", "objected");

	/* A pause on FROM's side, ten days from now. */
	subject_new(f, e, NULL, "email:cleo@example.com", NULL);
	subject_new(f, g, NULL, "email:cleo.home@example.com", NULL);
	grant(f, "email:cleo@example.com", "newsletter", "email", 0);
	snprintf(body, sizeof(body), "{\"paused_until\":%lld}",
	    (long long)(f->cx.cx_now + 10 * DAY));
	assert_int_equal(prefs_put(f, g, body, "preference_center"), CM_OK);
	assert_int_equal(merge(f, e, g, &conflicts), CM_OK);
	json_decref(conflicts);
	expect_deny(f, "email:cleo@example.com", "newsletter", "email", "paused");
}

/* An entry FROM was bound to (on an identifier it unlinked) binds the survivor. */
static void
test_merge_suppression_binding_moves(void **state)
{
	struct fx *f = *state;
	struct cm_identifier id = ident(ANA_WORK);
	char a[SID], b[SID];
	json_t *conflicts;

	subject_new(f, a, NULL, ANA, NULL);
	subject_new(f, b, NULL, ANA_WORK, ANA_PHONE, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	assert_int_equal(suppress(f, ANA_WORK, "unsubscribed"), CM_OK);
	assert_int_equal(TX(f, cm_subject_unlink(&f->cx, b, &id, &f->w)), CM_OK);
	assert_int_equal(merge(f, a, b, &conflicts), CM_OK);
	json_decref(conflicts);
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	assert_int_equal(lift(f, ANA_WORK), CM_OK);
	expect_allow(f, ANA, "newsletter", "email", "consent");
}

/* ---- rights.c ----------------------------------------------------------- */

static cm_result
erase(struct fx *f, const char *id, json_t **counts)
{
	return TX(f, cm_subject_erase(&f->cx, id, counts, &f->w));
}

static void
test_restrict_denies_then_lifting_allows(void **state)
{
	struct fx *f = *state;
	char a[SID];

	subject_new(f, a, NULL, ANA, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	expect_allow(f, ANA, "newsletter", "email", "consent");
	assert_int_equal(TX(f, cm_subject_restrict(&f->cx, a, true, &f->w)), CM_OK);
	expect_deny(f, ANA, "newsletter", "email", "restricted");
	/* Art. 18 stops all processing, contract messages included. */
	expect_deny(f, ANA, "order_updates", "email", "restricted");
	assert_int_equal(TX(f, cm_subject_restrict(&f->cx, a, false, &f->w)), CM_OK);
	expect_allow(f, ANA, "newsletter", "email", "consent");
	expect_allow(f, ANA, "order_updates", "email", "contract");
}

static void
test_object_denies_marketing_only(void **state)
{
	struct fx *f = *state;
	struct cm_prefs_row pr;
	char a[SID];
	int64_t first;

	subject_new(f, a, NULL, ANA, ANA_PHONE, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	grant(f, ANA_PHONE, "sms_offers", "sms", 0);
	expect_allow(f, ANA_PHONE, "sms_offers", "sms", "consent");
	assert_int_equal(TX(f, cm_subject_object(&f->cx, a, &f->w)), CM_OK);
	expect_deny(f, ANA, "newsletter", "email", "objected");
	expect_deny(f, ANA_PHONE, "sms_offers", "sms", "objected");
	expect_deny(f, ANA, "basket_reminders", "email", "objected");
	/* Not direct marketing: the objection leaves these alone. */
	expect_allow(f, ANA, "order_updates", "email", "contract");
	expect_allow(f, ANA_PHONE, "review_requests", "sms", "legitimate_interest");
	/* Objecting again keeps the date of the first objection. */
	assert_int_equal(cm_store_prefs_get(f->cx.cx_db, a, &pr), CM_OK);
	first = pr.p_objected_at;
	cm_prefs_row_clear(&pr);
	assert_true(first > 0);
	assert_int_equal(TX(f, cm_subject_object(&f->cx, a, &f->w)), CM_OK);
	assert_int_equal(cm_store_prefs_get(f->cx.cx_db, a, &pr), CM_OK);
	assert_true(pr.p_objected_at == first);
	cm_prefs_row_clear(&pr);
}

static void
test_erase_removes_identifiers_profile_key(void **state)
{
	struct fx *f = *state;
	struct cm_subject_row row;
	char a[SID];
	json_t *counts, *view;
	int64_t nattrs = -1;
	uint8_t *key;
	cm_result rc;
	int n = 0;

	subject_new(f, a, "{\"first_name\":\"Ana\",\"city\":\"Lisboa\"}", ANA, ANA_PHONE, NULL);
	assert_int_equal(record_ev(f, ANA, "newsletter", "email", CM_CONSENT_GRANTED,
	    "web_form", 0, "{\"ip\":\"203.0.113.7\"}"), CM_OK);
	assert_int_equal(erase(f, a, &counts), CM_OK);
	assert_int_equal(json_integer_value(json_object_get(counts, "identifiers")), 2);
	assert_int_equal(json_integer_value(json_object_get(counts, "suppressed")), 2);
	assert_int_equal(json_integer_value(json_object_get(counts, "profile_attributes")), 2);
	assert_int_equal(json_integer_value(json_object_get(counts, "evidence")), 1);
	json_decref(counts);

	assert_false(resolves_to(f, ANA, a));
	assert_false(resolves_to(f, ANA_PHONE, a));
	assert_int_equal(cm_store_identifier_list(f->cx.cx_db, a, count_row, &n), CM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(cm_store_profile_count(f->cx.cx_db, a, &nattrs), CM_OK);
	assert_int_equal(nattrs, 0);
	assert_int_equal(cm_store_subject_get(f->cx.cx_db, a, &row), CM_OK);
	assert_false(row.s_has_key);
	assert_int_equal(row.s_state, CM_SUBJECT_ERASED);
	assert_int_equal(cm_subject_view(&f->cx, a, &view, &f->w), CM_OK);
	assert_string_equal(json_string_value(json_object_get(view, "state")), "erased");
	assert_int_equal(json_array_size(json_object_get(view, "identifiers")), 0);
	assert_int_equal(json_object_size(json_object_get(view, "profile")), 0);
	json_decref(view);
	/* Nothing can be opened under the destroyed key, and it happens once. */
	memset(&f->w, 0, sizeof(f->w));
	key = cm_key_acquire();
	rc = cm_subject_open(&f->cx, a, &row, key, &f->w);
	cm_key_release(key);
	assert_int_equal(rc, CM_CONFLICT);
	assert_why(f, "subject_erased");
	assert_int_equal(erase(f, a, &counts), CM_CONFLICT);
	assert_why(f, "subject_erased");
	assert_null(counts);
}

static void
test_erase_old_identifier_denies(void **state)
{
	struct fx *f = *state;
	struct cm_identifier id = ident(ANA);
	char a[SID];
	json_t *counts;
	char reason[16];
	int64_t since;

	subject_new(f, a, NULL, ANA, ANA_PHONE, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	assert_int_equal(erase(f, a, &counts), CM_OK);
	json_decref(counts);
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	expect_deny(f, ANA, "order_updates", "email", "suppressed");
	expect_deny(f, ANA_PHONE, "order_updates", "sms", "suppressed");
	assert_int_equal(cm_suppression_check(&f->cx, &id, reason, &since), CM_OK);
	assert_string_equal(reason, "erased");
}

static void
test_erase_refuses_later_api_grant(void **state)
{
	struct fx *f = *state;
	char a[SID];
	json_t *counts;

	subject_new(f, a, NULL, ANA, NULL);
	assert_int_equal(erase(f, a, &counts), CM_OK);
	json_decref(counts);
	assert_int_equal(record(f, ANA, "newsletter", "email", CM_CONSENT_GRANTED, "api", 0),
	    CM_CONFLICT);
	assert_why(f, "suppressed");
	assert_int_equal(record(f, ANA, "order_updates", NULL, CM_CONSENT_GRANTED, "import",
	    0), CM_CONFLICT);
	assert_why(f, "suppressed");
	/* No new subject took the address, and the check still denies. */
	assert_false(resolves_to(f, ANA, a));
	{
		struct cm_identifier id = ident(ANA);
		char owner[SID];

		assert_int_equal(cm_subject_resolve(&f->cx, &id, owner), CM_NOTFOUND);
	}
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	/* Nor through the erased subject's id. */
	assert_int_equal(record(f, a, "newsletter", "email", CM_CONSENT_GRANTED, "web_form",
	    0), CM_CONFLICT);
	assert_why(f, "subject_erased");
}

/* ---- prefs.c ------------------------------------------------------------ */

/* The preference view's switch NAME in MAP ("channels" or "topics") of ID. */
static bool
prefs_switch(struct fx *f, const char *id, const char *map, const char *name)
{
	json_t *out, *v;
	bool on;

	assert_int_equal(cm_prefs_get(&f->cx, id, &out, &f->w), CM_OK);
	v = json_object_get(json_object_get(out, map), name);
	if (!json_is_boolean(v))
		fail_msg("preferences have no %s.%s", map, name);
	on = json_is_true(v);
	json_decref(out);
	return on;
}

static void
test_prefs_topic_off_withdraws(void **state)
{
	struct fx *f = *state;
	struct cm_check_result r;
	char a[SID];

	subject_new(f, a, NULL, ANA, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	grant(f, ANA, "email_offers", "email", 0);
	assert_true(prefs_switch(f, a, "topics", "new_arrivals"));
	assert_int_equal(prefs_put(f, a, "{\"topics\":{\"new_arrivals\":false}}",
	    "preference_center"), CM_OK);
	check(f, ANA, "newsletter", "email", &r);
	json_decref(r.ck_conflicts);
	assert_false(r.ck_decision.d_allow);
	assert_string_equal(r.ck_decision.d_reason, "withdrawn");
	assert_true(r.ck_has_event);
	assert_string_equal(r.ck_event.cr_method, "preference_center");
	assert_false(prefs_switch(f, a, "topics", "new_arrivals"));
	/* Only that topic. */
	expect_allow(f, ANA, "email_offers", "email", "consent");
	assert_true(prefs_switch(f, a, "topics", "sale_offers"));
	assert_true(prefs_switch(f, a, "channels", "email"));
}

/*
 * A withdrawal made elsewhere (an email link) turns the topic off in the
 * view; switching the channel off and on again, even with another topic
 * switched on, must not bring it back (docs/operations.md, preferences).
 */
static void
test_prefs_channel_on_keeps_other_withdrawal(void **state)
{
	struct fx *f = *state;
	char a[SID];

	subject_new(f, a, NULL, ANA, NULL);
	grant(f, ANA, "newsletter", "email", 2 * DAY);
	grant(f, ANA, "email_offers", "email", 2 * DAY);
	assert_int_equal(record(f, ANA, "newsletter", NULL, CM_CONSENT_WITHDRAWN,
	    "email_link", 0), CM_OK);
	assert_false(prefs_switch(f, a, "topics", "new_arrivals"));
	assert_true(prefs_switch(f, a, "channels", "email"));

	assert_int_equal(prefs_put(f, a, "{\"channels\":{\"email\":false}}",
	    "preference_center"), CM_OK);
	expect_deny(f, ANA, "email_offers", "email", "withdrawn");
	/* A channel switch alone grants nothing nobody asked for. */
	assert_int_equal(prefs_put(f, a, "{\"channels\":{\"email\":true}}",
	    "preference_center"), CM_OK);
	expect_deny(f, ANA, "newsletter", "email", "withdrawn");
	expect_deny(f, ANA, "email_offers", "email", "withdrawn");
	/* The channel with one topic switched on grants that topic only. */
	assert_int_equal(prefs_put(f, a, "{\"channels\":{\"email\":true},"
	    "\"topics\":{\"sale_offers\":true}}", "preference_center"), CM_OK);
	expect_allow(f, ANA, "email_offers", "email", "consent");
	expect_deny(f, ANA, "newsletter", "email", "withdrawn");
	assert_false(prefs_switch(f, a, "topics", "new_arrivals"));
	/* And a save of the view as it reads changes nothing. */
	assert_int_equal(prefs_put(f, a, "{\"channels\":{\"email\":true},"
	    "\"topics\":{\"new_arrivals\":false,\"sale_offers\":true}}", "preference_center"),
	    CM_OK);
	expect_deny(f, ANA, "newsletter", "email", "withdrawn");
}

static void
test_prefs_suppressed_never_allows(void **state)
{
	struct fx *f = *state;
	char a[SID];

	subject_new(f, a, NULL, ANA, NULL);
	grant(f, ANA, "newsletter", "email", 1 * DAY);
	assert_int_equal(suppress(f, ANA, "unsubscribed"), CM_OK);
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	assert_false(prefs_switch(f, a, "channels", "email"));
	assert_false(prefs_switch(f, a, "topics", "new_arrivals"));

	/* A grant by a method that is not the person's own is refused... */
	assert_int_equal(prefs_put(f, a, "{\"topics\":{\"new_arrivals\":true}}", "api"),
	    CM_CONFLICT);
	assert_why(f, "suppressed");
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	/* ...and a first-party one is recorded but does not lift the entry. */
	assert_int_equal(prefs_put(f, a, "{\"channels\":{\"email\":true},"
	    "\"topics\":{\"new_arrivals\":true,\"sale_offers\":true}}", "preference_center"),
	    CM_OK);
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	expect_deny(f, ANA, "email_offers", "email", "suppressed");
	assert_false(prefs_switch(f, a, "channels", "email"));
}

/* ---- suppression.c ------------------------------------------------------ */

static void
test_suppression_denies_marketing_on_every_channel(void **state)
{
	struct fx *f = *state;
	struct cm_identifier id = ident(ANA);
	char a[SID];
	char reason[16];
	bool existed;
	int64_t since;

	subject_new(f, a, NULL, ANA, ANA_PHONE, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	grant(f, ANA_PHONE, "sms_offers", "sms", 0);
	grant(f, ANA, "ad_audiences", "ads", 0);
	tx_begin(f);
	assert_int_equal(tx_end(f, cm_suppression_add(&f->cx, &id, "manual", &existed, reason,
	    &since)), CM_OK);
	assert_false(existed);
	assert_string_equal(reason, "manual");
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	expect_deny(f, ANA, "sms_offers", "sms", "suppressed");
	expect_deny(f, ANA, "ad_audiences", "ads", "suppressed");
	/* Service messages are not marketing: a "do not market" leaves them. */
	expect_allow(f, ANA, "order_updates", "email", "contract");
	expect_allow(f, ANA, "review_requests", "email", "legitimate_interest");
	/* A second entry keeps the first reason. */
	tx_begin(f);
	assert_int_equal(tx_end(f, cm_suppression_add(&f->cx, &id, "bounced", &existed,
	    reason, &since)), CM_OK);
	assert_true(existed);
	assert_string_equal(reason, "manual");

	/* An identifier nobody holds is judged by its own entry. */
	expect_deny(f, BEN, "order_updates", "email", "unknown_subject");
	assert_int_equal(suppress(f, BEN, "complained"), CM_OK);
	expect_deny(f, BEN, "newsletter", "email", "suppressed");
}

static void
test_suppression_bounce_stops_only_its_channels(void **state)
{
	struct fx *f = *state;
	char a[SID], b[SID];

	subject_new(f, a, NULL, ANA, ANA_PHONE, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	grant(f, ANA_PHONE, "sms_offers", "sms", 0);
	assert_int_equal(suppress(f, ANA, "bounced"), CM_OK);
	/* Every purpose on email, service messages too: they cannot arrive. */
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	expect_deny(f, ANA, "order_updates", "email", "suppressed");
	/* Not the person's "no": the other channels carry on. */
	expect_allow(f, ANA, "sms_offers", "sms", "consent");
	expect_allow(f, ANA_PHONE, "order_updates", "sms", "contract");
	expect_allow(f, ANA, "order_updates", "push", "contract");

	subject_new(f, b, NULL, BEN, BEN_PHONE, NULL);
	grant(f, BEN, "newsletter", "email", 0);
	grant(f, BEN_PHONE, "sms_offers", "sms", 0);
	assert_int_equal(suppress(f, BEN_PHONE, "bounced"), CM_OK);
	expect_deny(f, BEN_PHONE, "sms_offers", "sms", "suppressed");
	expect_deny(f, BEN, "order_updates", "sms", "suppressed");
	expect_deny(f, BEN, "order_updates", "phone", "suppressed");
	expect_allow(f, BEN_PHONE, "newsletter", "email", "consent");
	expect_allow(f, BEN, "order_updates", "email", "contract");
}

static void
test_suppression_lift_conditions(void **state)
{
	struct fx *f = *state;
	struct cm_identifier id = ident(ANA);
	char a[SID], b[SID];
	json_t *counts;
	char reason[16];
	int64_t since;

	/* Nothing to lift. */
	assert_int_equal(lift(f, ANA), CM_NOTFOUND);

	subject_new(f, a, NULL, ANA, NULL);
	grant(f, ANA, "newsletter", "email", 0);
	assert_int_equal(suppress(f, ANA, "manual"), CM_OK);
	expect_deny(f, ANA, "newsletter", "email", "suppressed");
	assert_int_equal(lift(f, ANA), CM_OK);
	assert_int_equal(cm_suppression_check(&f->cx, &id, reason, &since), CM_NOTFOUND);
	expect_allow(f, ANA, "newsletter", "email", "consent");
	assert_int_equal(lift(f, ANA), CM_NOTFOUND);

	/* An entry set by erasure is not lifted: the person asked to be forgotten. */
	subject_new(f, b, NULL, BEN, NULL);
	assert_int_equal(erase(f, b, &counts), CM_OK);
	json_decref(counts);
	assert_int_equal(lift(f, BEN), CM_CONFLICT);
	id = ident(BEN);
	assert_int_equal(cm_suppression_check(&f->cx, &id, reason, &since), CM_OK);
	assert_string_equal(reason, "erased");
	expect_deny(f, BEN, "order_updates", "email", "suppressed");
}

/*
 * An entry binds the person, not the address: checked through another of
 * the subject's identifiers, and still after the listed one is unlinked,
 * until it is lifted.
 */
static void
test_suppression_binds_person(void **state)
{
	struct fx *f = *state;
	struct cm_identifier id = ident(ANA);
	char a[SID], b[SID];

	subject_new(f, a, NULL, ANA, ANA_PHONE, NULL);
	grant(f, ANA_PHONE, "sms_offers", "sms", 0);
	expect_allow(f, ANA_PHONE, "sms_offers", "sms", "consent");
	assert_int_equal(suppress(f, ANA, "unsubscribed"), CM_OK);
	expect_deny(f, ANA_PHONE, "sms_offers", "sms", "suppressed");
	assert_int_equal(TX(f, cm_subject_unlink(&f->cx, a, &id, &f->w)), CM_OK);
	assert_false(resolves_to(f, ANA, a));
	expect_deny(f, ANA_PHONE, "sms_offers", "sms", "suppressed");
	assert_int_equal(lift(f, ANA), CM_OK);
	expect_allow(f, ANA_PHONE, "sms_offers", "sms", "consent");
	/*
	 * Lifting dropped the binding too: a new entry on the address, which
	 * the person no longer holds, is about whoever holds it now.
	 */
	assert_int_equal(suppress(f, ANA, "unsubscribed"), CM_OK);
	expect_allow(f, ANA_PHONE, "sms_offers", "sms", "consent");

	/* A bounce binds the person too, but only on its own channels. */
	subject_new(f, b, NULL, BEN, BEN_PHONE, NULL);
	grant(f, BEN, "newsletter", "email", 0);
	grant(f, BEN_PHONE, "sms_offers", "sms", 0);
	assert_int_equal(suppress(f, BEN, "bounced"), CM_OK);
	expect_deny(f, BEN_PHONE, "newsletter", "email", "suppressed");
	expect_allow(f, BEN_PHONE, "sms_offers", "sms", "consent");
}

/*
 * Erasure lists the address as erased; whoever holds it next is bound by
 * that entry on every identifier and for every purpose.
 */
static void
test_suppression_erased_entry_binds_new_holder(void **state)
{
	struct fx *f = *state;
	char a[SID], b[SID];
	json_t *counts;

	subject_new(f, a, NULL, ANA, NULL);
	assert_int_equal(erase(f, a, &counts), CM_OK);
	json_decref(counts);
	subject_new(f, b, NULL, ANA, ANA_PHONE, NULL);
	grant(f, ANA_PHONE, "sms_offers", "sms", 0);
	expect_deny(f, ANA_PHONE, "sms_offers", "sms", "suppressed");
	expect_deny(f, ANA_PHONE, "order_updates", "sms", "suppressed");
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_merge_moves_identifiers_to_survivor),
		T(test_merge_from_answers_merged),
		T(test_merge_fills_profile_gaps_keeps_into_values),
		T(test_merge_restriction_on_from_stands),
		T(test_merge_into_itself_is_invalid),
		T(test_merge_withdrawn_vs_granted_denies),
		T(test_merge_refused_vs_granted_denies),
		T(test_merge_keeps_later_agreed_channel),
		T(test_merge_objection_and_pause_stand),
		T(test_merge_suppression_binding_moves),
		T(test_restrict_denies_then_lifting_allows),
		T(test_object_denies_marketing_only),
		T(test_erase_removes_identifiers_profile_key),
		T(test_erase_old_identifier_denies),
		T(test_erase_refuses_later_api_grant),
		T(test_prefs_topic_off_withdraws),
		T(test_prefs_channel_on_keeps_other_withdrawal),
		T(test_prefs_suppressed_never_allows),
		T(test_suppression_denies_marketing_on_every_channel),
		T(test_suppression_bounce_stops_only_its_channels),
		T(test_suppression_lift_conditions),
		T(test_suppression_binds_person),
		T(test_suppression_erased_entry_binds_new_holder),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
