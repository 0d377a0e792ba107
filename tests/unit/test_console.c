/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the DPO console's sessions (src/core/console.c) on a real
 * SQLCipher store with real keys: a session started by a token acts with
 * that token's scopes, is stored only as a keyed hash, ends when the DPO
 * signs out, when it expires and when its token is revoked, and is never
 * found by an id of the wrong shape or a shopper's label. Nothing is mocked.
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

#include "consentd/console.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/scope.h"
#include "consentd/shopper.h"
#include "consentd/store.h"
#include "consentd/token.h"
#include "consentd/util.h"

#define MINUTE	(INT64_C(60) * 1000000)

struct fx {
	char		 dir[64];
	struct cm_keys	*keys;
	struct cm_store	*store;
	struct cm_ctx	 cx;
	struct cm_token_grant g;	/* the DPO's token, verified */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cm_migration_set set;
	char err[512], tok[CM_TOKEN_MAX];
	struct cm_db *db;

	assert_non_null(f);
	assert_int_equal(cm_crypto_init(), 0);
	cm_log_set_level(CM_LOG_WARN);
	strcpy(f->dir, "build/console-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(cm_keys_create(f->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(f->dir, &f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(f->dir, f->keys, &set, NULL, &f->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	assert_non_null(db = cm_store_db(f->store));
	cm_ctx_init(&f->cx, db, f->keys, NULL, "test:console");
	f->cx.cx_now = cm_time_now_us();
	assert_int_equal(cm_db_begin(db), CM_OK);
	assert_int_equal(cm_token_create(&f->cx, "dpo", CM_SCOPE_DSR_ADMIN | CM_SCOPE_AUDIT_READ,
	    false, tok), CM_OK);
	assert_int_equal(cm_db_commit(db), CM_OK);
	assert_int_equal(cm_token_verify(f->store, f->keys, tok, CM_SCOPE_DSR_ADMIN, &f->g), CM_OK);
	assert_true(f->g.tg_allowed);
	assert_true(f->g.tg_id > 0);
	cm_wipe(tok, sizeof(tok));
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
start(struct fx *f, char *sid)
{
	int64_t exp = 0;

	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_console_start(&f->cx, &f->g, sid, &exp), CM_OK);
	assert_int_equal(cm_db_commit(f->cx.cx_db), CM_OK);
	assert_int_equal(exp, f->cx.cx_now + CM_CONSOLE_TTL_US);
}

/* A session acts with its token's scopes; its CSRF token is neither its id nor a shopper's. */
static void
test_start_verify(void **state)
{
	struct fx *f = *state;
	char sid[CM_CONSOLE_ID_LEN + 1], csrf[CM_CONSOLE_ID_LEN + 1], again[CM_CONSOLE_ID_LEN + 1];
	char shop[CM_SESSION_ID_LEN + 1];
	struct cm_console_grant g;

	start(f, sid);
	assert_int_equal(strlen(sid), CM_CONSOLE_ID_LEN);
	assert_int_equal(cm_console_verify(f->store, f->keys, sid, &g), CM_OK);
	assert_string_equal(g.cg_token, "dpo");
	assert_int_equal(g.cg_scopes, CM_SCOPE_DSR_ADMIN | CM_SCOPE_AUDIT_READ);
	cm_console_csrf(f->keys, sid, csrf);
	cm_console_csrf(f->keys, sid, again);
	assert_string_equal(csrf, again);
	assert_string_not_equal(csrf, sid);
	cm_session_csrf(f->keys, sid, shop);
	assert_string_not_equal(csrf, shop);
	/* The id is nowhere in the store: only its keyed hash is. */
	assert_int_equal(cm_console_verify(f->store, f->keys, csrf, &g), CM_NOTFOUND);
}

/* Ids of the wrong shape, unknown ids and a shopper's verification find nothing. */
static void
test_unknown(void **state)
{
	struct fx *f = *state;
	char sid[CM_CONSOLE_ID_LEN + 1], upper[CM_CONSOLE_ID_LEN + 1];
	struct cm_console_grant g;
	struct cm_session_grant sg;
	size_t i;

	start(f, sid);
	for (i = 0; i < CM_CONSOLE_ID_LEN; i++)
		upper[i] = (char)(sid[i] >= 'a' ? sid[i] - 32 : sid[i]);
	upper[CM_CONSOLE_ID_LEN] = '\0';
	assert_int_equal(cm_console_verify(f->store, f->keys, "", &g), CM_NOTFOUND);
	assert_int_equal(cm_console_verify(f->store, f->keys, upper, &g), CM_NOTFOUND);
	assert_int_equal(cm_console_verify(f->store, f->keys,
	    "00000000000000000000000000000000000000000000000000000000000000000", &g),
	    CM_NOTFOUND);
	assert_int_equal(cm_console_verify(f->store, f->keys,
	    "0000000000000000000000000000000000000000000000000000000000000000", &g),
	    CM_NOTFOUND);
	assert_int_equal(cm_session_verify(f->store, f->keys, sid, &sg), CM_NOTFOUND);
}

/* Sign-out ends it, once. */
static void
test_end(void **state)
{
	struct fx *f = *state;
	char sid[CM_CONSOLE_ID_LEN + 1];
	struct cm_console_grant g;

	start(f, sid);
	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_console_end(&f->cx, sid, "dpo"), CM_OK);
	assert_int_equal(cm_db_commit(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_console_verify(f->store, f->keys, sid, &g), CM_NOTFOUND);
	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_console_end(&f->cx, sid, "dpo"), CM_NOTFOUND);
	cm_db_rollback(f->cx.cx_db);
}

/* A session started 31 minutes ago is over; revoking the token ends a live one. */
static void
test_expiry_and_revocation(void **state)
{
	struct fx *f = *state;
	char old[CM_CONSOLE_ID_LEN + 1], live[CM_CONSOLE_ID_LEN + 1];
	struct cm_console_grant g;
	int64_t now = f->cx.cx_now;

	f->cx.cx_now = now - 31 * MINUTE;
	start(f, old);
	f->cx.cx_now = now;
	start(f, live);
	assert_int_equal(cm_console_verify(f->store, f->keys, old, &g), CM_NOTFOUND);
	assert_int_equal(cm_console_verify(f->store, f->keys, live, &g), CM_OK);
	assert_int_equal(cm_db_begin(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_token_revoke(&f->cx, "dpo"), CM_OK);
	assert_int_equal(cm_db_commit(f->cx.cx_db), CM_OK);
	assert_int_equal(cm_console_verify(f->store, f->keys, live, &g), CM_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_and_revocation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
