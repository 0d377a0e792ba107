/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for access packages (src/core/dsr_package.c, package.c) on a
 * real SQLCipher store with real keys and the shipped policy, the clock
 * set by the test: a processed access request holds a package that reads
 * back as a verifying consentd-export/1 document; it is refused once the
 * policy's days have passed and a later build destroys it (row and file),
 * along with files no row names; an erasure destroys it at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/consent.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/export.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

#define SECOND		INT64_C(1000000)
#define T0		(INT64_C(1767225600) * SECOND)	/* 2026-01-01T00:00:00Z */

static struct cm_policy *policy;

struct fx {
	char		 dir[64];
	struct cm_keys	*keys;
	struct cm_store	*store;
	struct cm_ctx	 cx;
	struct cm_why	 w;
};

static int
group_setup(void **state)
{
	char err[512];

	(void)state;
	if (cm_crypto_init() != 0)
		return -1;
	cm_log_set_level(CM_LOG_WARN);
	if (cm_policy_load("policy", &policy, err, sizeof(err)) != CM_OK)
		return -1;
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
	strcpy(f->dir, "build/package-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(cm_keys_create(f->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(f->dir, &f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(f->dir, f->keys, &set, NULL, &f->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	cm_ctx_init(&f->cx, cm_store_db(f->store), f->keys, policy, "test:package");
	assert_int_equal(cm_db_bulk_load(f->cx.cx_db), CM_OK);
	/* The log's name, as `consentd init` records it: the package is signed by it. */
	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_store_meta_put(f->cx.cx_db, "audit_origin", "shop.example/test"),
	    CM_OK);
	assert_int_equal(cm_db_commit(f->cx.cx_db), CM_OK);
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

static void
begin(struct fx *f)
{
	f->cx.cx_now += SECOND;
	memset(&f->w, 0, sizeof(f->w));
	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
}

static cm_result
end(struct fx *f, cm_result rc)
{
	if (rc != CM_OK)
		cm_db_rollback(f->cx.cx_db);
	else
		assert_int_equal(cm_db_commit(f->cx.cx_db), CM_OK);
	return rc;
}

/* A subject holding TEXT with one consent event, into SID. */
static void
subject_with_consent(struct fx *f, const char *text, char sid[CM_SUBJECT_ID_LEN + 1])
{
	struct cm_consent_input in;
	struct cm_consent_result res;
	struct cm_new_ident ni;
	char why[160];

	memset(&ni, 0, sizeof(ni));
	assert_int_equal(cm_identifier_parse(text, strlen(text), policy, &ni.ni_id, why,
	    sizeof(why)), CM_OK);
	ni.ni_source = "test";
	begin(f);
	assert_int_equal(end(f, cm_subject_create(&f->cx, &ni, 1, NULL, sid, &f->w)), CM_OK);
	memset(&in, 0, sizeof(in));
	in.ci_subject = sid;
	in.ci_purpose = &policy->pol_purposes[cm_policy_purpose_index(policy, "newsletter")];
	in.ci_channel = cm_policy_channel_index(policy, "email");
	in.ci_state = CM_CONSENT_GRANTED;
	in.ci_method = "web_form";
	in.ci_client = "test";
	begin(f);
	assert_int_equal(end(f, cm_consent_record(&f->cx, &in, &res, &f->w)), CM_OK);
	json_decref(res.cr_event_ids);
}

/* A processed request of TYPE for TEXT; its id into ID. */
static void
processed(struct fx *f, enum cm_dsr_type type, const char *text, char id[CM_DSR_ID_LEN + 1])
{
	struct cm_dsr_input in;
	struct cm_identifier ident;
	json_t *out = NULL;
	bool existing;
	char why[160];

	assert_int_equal(cm_identifier_parse(text, strlen(text), policy, &ident, why,
	    sizeof(why)), CM_OK);
	memset(&in, 0, sizeof(in));
	in.di_type = type;
	in.di_ident = &ident;
	in.di_source = "api";
	in.di_verified = true;
	begin(f);
	assert_int_equal(end(f, cm_dsr_create(&f->cx, &in, &out, &existing, &f->w)), CM_OK);
	snprintf(id, CM_DSR_ID_LEN + 1, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	begin(f);
	if (end(f, cm_dsr_process(&f->cx, id, &out, &f->w)) != CM_OK)
		fail_msg("process: %s", f->w.w_code ? f->w.w_code : "store");
	assert_string_equal(json_string_value(json_object_get(out, "status")), "completed");
	json_decref(out);
}

/* Opens the package of ID; CM_OK with the whole document in *DOC (caller frees). */
static cm_result
read_package(struct fx *f, const char *id, struct cm_buf *doc)
{
	struct cm_package_reader *r;
	uint64_t size;
	char buf[4096];
	long n;
	cm_result rc;

	memset(&f->w, 0, sizeof(f->w));
	if ((rc = cm_dsr_package_open(&f->cx, id, CM_PACKAGE_JSON, &r, &size, &f->w)) != CM_OK)
		return rc;
	while ((n = cm_dsr_package_read(r, buf, sizeof(buf))) > 0)
		cm_buf_append(doc, buf, (size_t)n);
	cm_dsr_package_close(r);
	assert_int_equal(n, 0);
	assert_int_equal(doc->b_len, size);
	return CM_OK;
}

static size_t
files_in(struct fx *f)
{
	char cmd[160], out[32] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls %s/packages 2>/dev/null | wc -l", f->dir);
	assert_non_null(p = popen(cmd, "r"));
	assert_non_null(fgets(out, sizeof(out), p));
	pclose(p);
	return (size_t)strtoul(out, NULL, 10);
}

static void
test_expiry_and_sweep(void **state)
{
	struct fx *f = *state;
	struct cm_export_check ec;
	struct cm_buf doc = { 0 };
	char sid[CM_SUBJECT_ID_LEN + 1], id[CM_DSR_ID_LEN + 1], other[CM_DSR_ID_LEN + 1];
	char origin[CM_AUDIT_ORIGIN_MAX + 1], vkey[256], stray[200];
	FILE *fp;

	subject_with_consent(f, "email:ada@example.com", sid);
	subject_with_consent(f, "email:bob@example.com", sid);
	processed(f, CM_DSR_ACCESS, "email:ada@example.com", id);
	assert_int_equal(files_in(f), 1);
	/* It reads back as a document the log's key verifies. */
	assert_int_equal(read_package(f, id, &doc), CM_OK);
	assert_int_equal(cm_audit_origin(f->cx.cx_db, origin, sizeof(origin)), CM_OK);
	cm_note_vkey(vkey, sizeof(vkey), origin, CM_NOTE_ED25519, f->keys->k_audit_pk);
	assert_non_null(fp = fmemopen(doc.b_data, doc.b_len, "r"));
	assert_int_equal(cm_export_verify(fp, vkey, &ec), 0);
	fclose(fp);
	assert_non_null(strstr(doc.b_data, "email:ada@example.com"));
	assert_null(strstr(doc.b_data, "bob@example.com"));
	cm_buf_free(&doc);
	/* 30 days (the default) later it is refused, though still held. */
	f->cx.cx_now += 30 * CM_DAY_US;
	assert_int_equal(read_package(f, id, &doc), CM_CONFLICT);
	assert_string_equal(f->w.w_code, "package_expired");
	assert_int_equal(files_in(f), 1);
	/* A stray file (a build whose transaction never committed) … */
	snprintf(stray, sizeof(stray), "%s/packages/pkg_aaaaaaaaaaaaaaaaaaaaaaaaaa", f->dir);
	assert_non_null(fp = fopen(stray, "w"));
	fclose(fp);
	assert_int_equal(files_in(f), 2);
	/* … and the expired package go when the next package is built. */
	processed(f, CM_DSR_ACCESS, "email:bob@example.com", other);
	assert_int_equal(files_in(f), 1);
	assert_int_equal(access(stray, F_OK), -1);
	assert_int_equal(read_package(f, id, &doc), CM_CONFLICT);
	assert_string_equal(f->w.w_code, "package_expired");
	assert_int_equal(read_package(f, other, &doc), CM_OK);
	cm_buf_free(&doc);
}

static void
test_erasure_destroys(void **state)
{
	struct fx *f = *state;
	struct cm_buf doc = { 0 };
	char sid[CM_SUBJECT_ID_LEN + 1], a[CM_DSR_ID_LEN + 1], p[CM_DSR_ID_LEN + 1];
	char e[CM_DSR_ID_LEN + 1];

	subject_with_consent(f, "email:cy@example.com", sid);
	processed(f, CM_DSR_ACCESS, "email:cy@example.com", a);
	processed(f, CM_DSR_PORTABILITY, "email:cy@example.com", p);
	assert_int_equal(files_in(f), 3);
	processed(f, CM_DSR_ERASURE, "email:cy@example.com", e);
	assert_int_equal(files_in(f), 0);
	assert_int_equal(read_package(f, a, &doc), CM_CONFLICT);
	assert_string_equal(f->w.w_code, "subject_erased");
	assert_int_equal(read_package(f, p, &doc), CM_CONFLICT);
	assert_string_equal(f->w.w_code, "subject_erased");
	assert_int_equal(read_package(f, e, &doc), CM_CONFLICT);
	assert_string_equal(f->w.w_code, "invalid_request_type");
	cm_buf_free(&doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expiry_and_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_erasure_destroys, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
