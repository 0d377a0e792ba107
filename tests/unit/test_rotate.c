/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the files of a master-key rotation (src/crypto/rotate.c
 * and the rotation half of src/crypto/keys.c): a prepared rotation keeps
 * every derived key but the database key and the key-encryption key;
 * without the commit record recovery removes what the rotation made and
 * the old keys load unchanged; with it recovery puts the new files in
 * place (also when a crash left it half done) and the new keys load; a
 * sealed.keys that does not belong to master.key is refused; an audit key
 * waiting in audit.key.new stops cm_keys_load but not
 * cm_keys_load_pending.
 */
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

#include "consentd/crypto.h"

static void
path_in(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < outlen);
}

static bool
exists(const char *dir, const char *name)
{
	char p[4200];
	struct stat st;

	path_in(p, sizeof(p), dir, name);
	return lstat(p, &st) == 0;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char p[4200];
	int fd;

	path_in(p, sizeof(p), dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
read_file(const char *dir, const char *name, char *out, size_t outlen)
{
	char p[4200];
	ssize_t n;
	int fd;

	path_in(p, sizeof(p), dir, name);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, out, outlen - 1);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
}

static int
setup(void **state)
{
	char tmpl[] = "/tmp/consentd-test-rotate-XXXXXX", err[512];
	char *d;

	assert_int_equal(cm_crypto_init(), 0);
	assert_non_null(d = mkdtemp(tmpl));
	d = strdup(d);
	assert_int_equal(cm_keys_create(d, err, sizeof(err)), CM_OK);
	write_file(d, CM_DB_FILE, "old database");
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	static const char *const names[] = { CM_MASTER_KEY_FILE, CM_AUDIT_KEY_FILE,
		CM_DB_FILE, CM_SEALED_KEYS_FILE, CM_MASTER_NEW_FILE, CM_SEALED_NEW_FILE,
		CM_DB_ROTATING_FILE, CM_ROTATE_COMMIT_FILE, CM_AUDIT_NEW_FILE };
	char *d = *state, p[4200];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in(p, sizeof(p), d, names[i]);
		unlink(p);
	}
	rmdir(d);
	free(d);
	return 0;
}

/* The keys that stay equal in A and B, the two that rotate differ. */
static void
assert_rotated(const struct cm_keys *a, const struct cm_keys *b)
{
	assert_memory_not_equal(a->k_store, b->k_store, CM_KEY_LEN);
	assert_memory_not_equal(a->k_kek, b->k_kek, CM_KEY_LEN);
	assert_string_not_equal(a->k_master_id, b->k_master_id);
	assert_memory_equal(a->k_blind, b->k_blind, CM_KEY_LEN);
	assert_memory_equal(a->k_token, b->k_token, CM_KEY_LEN);
	assert_memory_equal(a->k_holdout, b->k_holdout, CM_KEY_LEN);
	assert_memory_equal(a->k_link, b->k_link, CM_KEY_LEN);
	assert_memory_equal(a->k_tag, b->k_tag, CM_KEY_LEN);
	assert_memory_equal(a->k_request, b->k_request, CM_KEY_LEN);
	assert_memory_equal(a->k_code, b->k_code, CM_KEY_LEN);
	assert_memory_equal(a->k_secret, b->k_secret, CM_KEY_LEN);
	assert_memory_equal(a->k_session, b->k_session, CM_KEY_LEN);
	assert_memory_equal(a->k_audit_pk, b->k_audit_pk, 32);
}

static void
test_prepare_then_roll_back(void **state)
{
	const char *d = *state;
	struct cm_keys *old, *newk, *again;
	char err[512], text[64];
	int what;

	assert_int_equal(cm_keys_load(d, &old, err, sizeof(err)), CM_OK);
	assert_int_equal(strlen(old->k_master_id), CM_KEY_ID_LEN);
	assert_int_equal(cm_keys_rotate_prepare(d, old, &newk, err, sizeof(err)), CM_OK);
	assert_rotated(old, newk);
	assert_true(exists(d, CM_MASTER_NEW_FILE) && exists(d, CM_SEALED_NEW_FILE));
	write_file(d, CM_DB_ROTATING_FILE, "new database");
	/* No commit record: everything the rotation made goes. */
	assert_int_equal(cm_keys_recover(d, &what, err, sizeof(err)), CM_OK);
	assert_int_equal(what, -1);
	assert_false(exists(d, CM_MASTER_NEW_FILE) || exists(d, CM_SEALED_NEW_FILE) ||
	    exists(d, CM_DB_ROTATING_FILE) || exists(d, CM_SEALED_KEYS_FILE));
	read_file(d, CM_DB_FILE, text, sizeof(text));
	assert_string_equal(text, "old database");
	assert_int_equal(cm_keys_load(d, &again, err, sizeof(err)), CM_OK);
	assert_memory_equal(again, old, sizeof(*old));
	assert_int_equal(cm_keys_recover(d, &what, err, sizeof(err)), CM_OK);
	assert_int_equal(what, 0);
	cm_keys_free(old);
	cm_keys_free(newk);
	cm_keys_free(again);
}

static void
test_commit_and_crash_after_commit(void **state)
{
	const char *d = *state;
	struct cm_keys *k1, *k2, *k3, *loaded;
	char err[512], text[64];
	int what;

	assert_int_equal(cm_keys_load(d, &k1, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_rotate_prepare(d, k1, &k2, err, sizeof(err)), CM_OK);
	write_file(d, CM_DB_ROTATING_FILE, "database 2");
	write_file(d, CM_DB_FILE "-wal", "");
	assert_int_equal(cm_keys_rotate_commit(d, err, sizeof(err)), CM_OK);
	assert_false(exists(d, CM_ROTATE_COMMIT_FILE) || exists(d, CM_MASTER_NEW_FILE) ||
	    exists(d, CM_DB_FILE "-wal"));
	read_file(d, CM_DB_FILE, text, sizeof(text));
	assert_string_equal(text, "database 2");
	assert_int_equal(cm_keys_load(d, &loaded, err, sizeof(err)), CM_OK);
	assert_memory_equal(loaded, k2, sizeof(*k2));
	cm_keys_free(loaded);

	/*
	 * A second rotation, killed just after its commit record and its
	 * first rename: loading the keys finishes it.
	 */
	assert_int_equal(cm_keys_rotate_prepare(d, k2, &k3, err, sizeof(err)), CM_OK);
	assert_rotated(k1, k3);
	write_file(d, CM_DB_ROTATING_FILE, "database 3");
	write_file(d, CM_ROTATE_COMMIT_FILE, "x");
	{
		char a[4200], b[4200];

		path_in(a, sizeof(a), d, CM_DB_ROTATING_FILE);
		path_in(b, sizeof(b), d, CM_DB_FILE);
		assert_int_equal(rename(a, b), 0);
	}
	assert_int_equal(cm_keys_load(d, &loaded, err, sizeof(err)), CM_OK);
	assert_memory_equal(loaded, k3, sizeof(*k3));
	read_file(d, CM_DB_FILE, text, sizeof(text));
	assert_string_equal(text, "database 3");
	assert_false(exists(d, CM_ROTATE_COMMIT_FILE) || exists(d, CM_SEALED_NEW_FILE));
	assert_int_equal(cm_keys_recover(d, &what, err, sizeof(err)), CM_OK);
	assert_int_equal(what, 0);
	cm_keys_free(loaded);
	cm_keys_free(k1);
	cm_keys_free(k2);
	cm_keys_free(k3);
}

static void
test_sealed_keys_must_match(void **state)
{
	const char *d = *state;
	struct cm_keys *k1, *k2, *loaded;
	char err[512], a[4200], b[4200];

	assert_int_equal(cm_keys_load(d, &k1, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_rotate_prepare(d, k1, &k2, err, sizeof(err)), CM_OK);
	write_file(d, CM_DB_ROTATING_FILE, "x");
	assert_int_equal(cm_keys_rotate_commit(d, err, sizeof(err)), CM_OK);
	/* Another master key beside this sealed.keys. */
	path_in(a, sizeof(a), d, CM_MASTER_KEY_FILE);
	unlink(a);
	write_file(d, CM_MASTER_KEY_FILE, "0123456789abcdef0123456789abcdef");
	assert_int_equal(cm_keys_load(d, &loaded, err, sizeof(err)), CM_INVALID);
	assert_null(loaded);
	assert_non_null(strstr(err, "sealed.keys does not open with"));
	path_in(b, sizeof(b), d, CM_SEALED_KEYS_FILE);
	unlink(b);
	assert_int_equal(cm_keys_load(d, &loaded, err, sizeof(err)), CM_OK);
	assert_memory_not_equal(loaded->k_blind, k1->k_blind, CM_KEY_LEN);
	cm_keys_free(loaded);
	cm_keys_free(k1);
	cm_keys_free(k2);
}

static void
test_audit_key_pending(void **state)
{
	const char *d = *state;
	struct cm_keys *k, *p;
	uint8_t pk[32], pk2[32];
	char err[512];

	assert_int_equal(cm_keys_load(d, &k, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_audit_pending(d, pk, err, sizeof(err)), CM_NOTFOUND);
	assert_int_equal(cm_keys_audit_new(d, pk, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_audit_pending(d, pk2, err, sizeof(err)), CM_OK);
	assert_memory_equal(pk, pk2, 32);
	assert_memory_not_equal(pk, k->k_audit_pk, 32);
	assert_int_equal(cm_keys_load(d, &p, err, sizeof(err)), CM_CONFLICT);
	assert_non_null(strstr(err, "rotate-audit"));
	assert_int_equal(cm_keys_load_pending(d, &p, err, sizeof(err)), CM_OK);
	assert_memory_equal(p->k_audit_pk, k->k_audit_pk, 32);
	cm_keys_free(p);
	assert_int_equal(cm_keys_audit_finish(d, true, err, sizeof(err)), CM_OK);
	assert_false(exists(d, CM_AUDIT_NEW_FILE));
	assert_int_equal(cm_keys_load(d, &p, err, sizeof(err)), CM_OK);
	assert_memory_equal(p->k_audit_pk, pk, 32);
	assert_memory_equal(p->k_store, k->k_store, CM_KEY_LEN);
	cm_keys_free(p);
	/* Undone: the key in place stays. */
	assert_int_equal(cm_keys_audit_new(d, pk2, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_audit_finish(d, false, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(d, &p, err, sizeof(err)), CM_OK);
	assert_memory_equal(p->k_audit_pk, pk, 32);
	cm_keys_free(p);
	cm_keys_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prepare_then_roll_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_and_crash_after_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sealed_keys_must_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_key_pending, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
