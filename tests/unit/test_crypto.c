/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the key files and crypto wrappers (src/crypto/keys.c):
 * cm_keys_create writes two 32-byte mode-0600 key files and never replaces
 * one (O_EXCL, cleaning up after a half-done create); cm_keys_load refuses
 * unsafe modes, wrong sizes and missing files; every derived key is
 * distinct, deterministic for one master key, equal to the documented
 * libsodium KDF derivation (so a change of context is caught), and
 * different under another master key; the SQLCipher raw-key literal's
 * shape; API tokens (generate/parse round trip, malformed tokens, keyed
 * hash); and cm_memeq, cm_sha256, cm_random, cm_wipe.
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
#include <sodium.h>

#include "consentd/crypto.h"
#include "consentd/util.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */

static char *
make_tmpdir(void)
{
	char tmpl[] = "/tmp/consentd-test-crypto-XXXXXX";
	char *d;

	d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void
path_in(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < outlen);
}

/* Removes DIR's key files (if any) and DIR itself. */
static void
remove_dir(char *dir)
{
	char p[4200];

	path_in(p, sizeof(p), dir, CM_MASTER_KEY_FILE);
	unlink(p);
	path_in(p, sizeof(p), dir, CM_AUDIT_KEY_FILE);
	unlink(p);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
read_key_file(const char *dir, const char *name, uint8_t out[CM_KEY_LEN])
{
	char p[4200], *data;
	size_t len;

	path_in(p, sizeof(p), dir, name);
	data = cm_file_read(p, 1024, &len);
	assert_non_null(data);
	assert_int_equal(len, CM_KEY_LEN);
	memcpy(out, data, CM_KEY_LEN);
	free(data);
}

/* A fresh data directory with keys. */
static char *
keyed_dir(void)
{
	char err[512], *dir;

	dir = make_tmpdir();
	if (cm_keys_create(dir, err, sizeof(err)) != CM_OK)
		fail_msg("cm_keys_create: %s", err);
	return dir;
}

static struct cm_keys *
load_ok(const char *dir)
{
	struct cm_keys *k;
	char err[512];

	if (cm_keys_load(dir, &k, err, sizeof(err)) != CM_OK)
		fail_msg("cm_keys_load: %s", err);
	assert_non_null(k);
	return k;
}

static void
expect_load_fail(const char *dir, cm_result want, const char *errpart)
{
	struct cm_keys dummy, *k = &dummy;	/* must be reset to NULL */
	char err[512] = "";
	cm_result rc;

	rc = cm_keys_load(dir, &k, err, sizeof(err));
	if (rc != want)
		fail_msg("cm_keys_load gave %s, want %s (%s)", cm_result_str(rc),
		    cm_result_str(want), err);
	assert_null(k);
	if (strstr(err, errpart) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, errpart);
}

#define NSUBKEYS	8

/* The symmetric keys of K, in declaration order. */
static const uint8_t *
subkey(const struct cm_keys *k, size_t i)
{
	const uint8_t *keys[] = { k->k_store, k->k_blind, k->k_token, k->k_kek,
	    k->k_holdout, k->k_link, k->k_tag, k->k_request };

	assert_true(i < NELEM(keys));
	return keys[i];
}

static int
group_setup(void **state)
{
	(void)state;
	return cm_crypto_init() == 0 ? 0 : -1;
}

/* ---- cm_keys_create ---------------------------------------------------- */

static void
test_create_files(void **state)
{
	static const char *const names[] = { CM_MASTER_KEY_FILE, CM_AUDIT_KEY_FILE };
	uint8_t a[CM_KEY_LEN], b[CM_KEY_LEN], zero[CM_KEY_LEN] = { 0 };
	struct stat st;
	char p[4200], *dir;
	size_t i;

	(void)state;
	dir = keyed_dir();
	for (i = 0; i < NELEM(names); i++) {
		path_in(p, sizeof(p), dir, names[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0600);
		assert_int_equal(st.st_size, CM_KEY_LEN);
	}
	read_key_file(dir, CM_MASTER_KEY_FILE, a);
	read_key_file(dir, CM_AUDIT_KEY_FILE, b);
	assert_memory_not_equal(a, b, CM_KEY_LEN);
	assert_memory_not_equal(a, zero, CM_KEY_LEN);
	assert_memory_not_equal(b, zero, CM_KEY_LEN);
	remove_dir(dir);
}

static void
test_create_never_overwrites(void **state)
{
	uint8_t m1[CM_KEY_LEN], a1[CM_KEY_LEN], m2[CM_KEY_LEN], a2[CM_KEY_LEN];
	char err[512] = "", *dir;

	(void)state;
	dir = keyed_dir();
	read_key_file(dir, CM_MASTER_KEY_FILE, m1);
	read_key_file(dir, CM_AUDIT_KEY_FILE, a1);
	assert_int_not_equal(cm_keys_create(dir, err, sizeof(err)), CM_OK);
	assert_non_null(strstr(err, CM_MASTER_KEY_FILE));
	assert_non_null(strstr(err, "File exists"));
	read_key_file(dir, CM_MASTER_KEY_FILE, m2);
	read_key_file(dir, CM_AUDIT_KEY_FILE, a2);
	assert_memory_equal(m1, m2, CM_KEY_LEN);
	assert_memory_equal(a1, a2, CM_KEY_LEN);
	remove_dir(dir);
}

/* With audit.key present but no master.key, create fails and leaves no master.key. */
static void
test_create_cleans_up(void **state)
{
	uint8_t a1[CM_KEY_LEN], a2[CM_KEY_LEN];
	char err[512] = "", p[4200], *dir;

	(void)state;
	dir = keyed_dir();
	path_in(p, sizeof(p), dir, CM_MASTER_KEY_FILE);
	assert_int_equal(unlink(p), 0);
	read_key_file(dir, CM_AUDIT_KEY_FILE, a1);
	assert_int_not_equal(cm_keys_create(dir, err, sizeof(err)), CM_OK);
	assert_non_null(strstr(err, CM_AUDIT_KEY_FILE));
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	read_key_file(dir, CM_AUDIT_KEY_FILE, a2);
	assert_memory_equal(a1, a2, CM_KEY_LEN);
	remove_dir(dir);
}

static void
test_create_missing_dir(void **state)
{
	char err[512] = "";

	(void)state;
	assert_int_equal(cm_keys_create("/tmp/consentd-test-no/such/dir", err,
	    sizeof(err)), CM_IOERR);
	assert_non_null(strstr(err, "/tmp/consentd-test-no/such/dir/master.key"));
}

/* ---- cm_keys_load ------------------------------------------------------- */

static void
test_load_refuses_mode_0644(void **state)
{
	char p[4200], *dir;

	(void)state;
	dir = keyed_dir();
	path_in(p, sizeof(p), dir, CM_MASTER_KEY_FILE);
	assert_int_equal(chmod(p, 0644), 0);
	expect_load_fail(dir, CM_INVALID, "chmod 600");
	assert_int_equal(chmod(p, 0640), 0);
	expect_load_fail(dir, CM_INVALID, "chmod 600");
	assert_int_equal(chmod(p, 0600), 0);
	path_in(p, sizeof(p), dir, CM_AUDIT_KEY_FILE);
	assert_int_equal(chmod(p, 0604), 0);
	expect_load_fail(dir, CM_INVALID, CM_AUDIT_KEY_FILE);
	assert_int_equal(chmod(p, 0400), 0);	/* stricter is fine */
	cm_keys_free(load_ok(dir));
	remove_dir(dir);
}

static void
test_load_refuses_wrong_size(void **state)
{
	uint8_t buf[CM_KEY_LEN + 1];
	char p[4200], *dir;

	(void)state;
	memset(buf, 0x5a, sizeof(buf));
	dir = keyed_dir();
	path_in(p, sizeof(p), dir, CM_MASTER_KEY_FILE);
	write_file(p, buf, CM_KEY_LEN - 1, 0600);
	expect_load_fail(dir, CM_INVALID, "exactly 32 bytes");
	write_file(p, buf, CM_KEY_LEN + 1, 0600);
	expect_load_fail(dir, CM_INVALID, "it holds 33");
	write_file(p, buf, 0, 0600);
	expect_load_fail(dir, CM_INVALID, "it holds 0");
	write_file(p, buf, CM_KEY_LEN, 0600);
	cm_keys_free(load_ok(dir));
	path_in(p, sizeof(p), dir, CM_AUDIT_KEY_FILE);
	write_file(p, buf, 16, 0600);
	expect_load_fail(dir, CM_INVALID, CM_AUDIT_KEY_FILE);
	remove_dir(dir);
}

static void
test_load_missing(void **state)
{
	char p[4200], *dir;

	(void)state;
	dir = make_tmpdir();
	expect_load_fail(dir, CM_NOTFOUND, CM_MASTER_KEY_FILE);
	remove_dir(dir);

	dir = keyed_dir();
	path_in(p, sizeof(p), dir, CM_AUDIT_KEY_FILE);
	assert_int_equal(unlink(p), 0);
	expect_load_fail(dir, CM_NOTFOUND, CM_AUDIT_KEY_FILE);
	remove_dir(dir);

	expect_load_fail("/tmp/consentd-test-no/such/dir", CM_NOTFOUND, "master.key");
}

static void
test_load_refuses_non_regular(void **state)
{
	char p[4200], *dir;

	(void)state;
	dir = keyed_dir();
	path_in(p, sizeof(p), dir, CM_MASTER_KEY_FILE);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	expect_load_fail(dir, CM_INVALID, "regular file");
	assert_int_equal(rmdir(p), 0);
	remove_dir(dir);
}

/* ---- derived keys ------------------------------------------------------- */

static void
test_derived_keys_distinct(void **state)
{
	uint8_t master[CM_KEY_LEN], zero[CM_KEY_LEN] = { 0 };
	struct cm_keys *k;
	size_t i, j;
	char *dir;

	(void)state;
	dir = keyed_dir();
	read_key_file(dir, CM_MASTER_KEY_FILE, master);
	k = load_ok(dir);
	for (i = 0; i < NSUBKEYS; i++) {
		assert_memory_not_equal(subkey(k, i), zero, CM_KEY_LEN);
		assert_memory_not_equal(subkey(k, i), master, CM_KEY_LEN);
		for (j = i + 1; j < NSUBKEYS; j++)
			assert_memory_not_equal(subkey(k, i), subkey(k, j), CM_KEY_LEN);
		assert_memory_not_equal(subkey(k, i), k->k_audit_pk, CM_KEY_LEN);
		assert_memory_not_equal(subkey(k, i), k->k_audit_sk, CM_KEY_LEN);
	}
	cm_keys_free(k);
	cm_keys_free(NULL);
	remove_dir(dir);
}

static void
test_derived_keys_deterministic(void **state)
{
	struct cm_keys *k1, *k2;
	char *dir;

	(void)state;
	dir = keyed_dir();
	k1 = load_ok(dir);
	k2 = load_ok(dir);
	assert_ptr_not_equal(k1, k2);
	assert_memory_equal(k1, k2, sizeof(*k1));
	cm_keys_free(k1);
	cm_keys_free(k2);
	remove_dir(dir);
}

/*
 * The derivation is part of the on-disk format: each key is
 * crypto_kdf_derive_from_key(32, 1, CONTEXT, master) and the audit key pair
 * comes from the audit.key seed. A changed context would lose every
 * database keyed with the old one.
 */
static void
test_derived_keys_known_derivation(void **state)
{
	static const char *const ctx[] = { "CDstore1", "CDblind1", "CDtoken1",
	    "CDwrapk1", "CDholdo1", "CDlinks1", "CDatags1", "CDreqst1" };
	uint8_t master[CM_KEY_LEN], seed[CM_KEY_LEN], want[CM_KEY_LEN];
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	struct cm_keys *k;
	size_t i;
	char *dir;

	(void)state;
	dir = keyed_dir();
	read_key_file(dir, CM_MASTER_KEY_FILE, master);
	read_key_file(dir, CM_AUDIT_KEY_FILE, seed);
	k = load_ok(dir);
	for (i = 0; i < NELEM(ctx); i++) {
		assert_int_equal(crypto_kdf_derive_from_key(want, sizeof(want), 1,
		    ctx[i], master), 0);
		assert_memory_equal(subkey(k, i), want, CM_KEY_LEN);
	}
	assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
	assert_memory_equal(k->k_audit_pk, pk, sizeof(pk));
	assert_memory_equal(k->k_audit_sk, sk, sizeof(sk));
	cm_keys_free(k);
	remove_dir(dir);
}

static void
test_derived_keys_differ_by_master(void **state)
{
	uint8_t master[CM_KEY_LEN];
	struct cm_keys *k1, *k2, *k3;
	char p[4200], *d1, *d2;
	size_t i, j;

	(void)state;
	d1 = keyed_dir();
	d2 = keyed_dir();
	k1 = load_ok(d1);
	k2 = load_ok(d2);
	for (i = 0; i < NSUBKEYS; i++)
		for (j = 0; j < NSUBKEYS; j++)
			assert_memory_not_equal(subkey(k1, i), subkey(k2, j), CM_KEY_LEN);
	assert_memory_not_equal(k1->k_audit_pk, k2->k_audit_pk, 32);

	/* Same master key, other audit key: same symmetric keys, other signer. */
	read_key_file(d1, CM_MASTER_KEY_FILE, master);
	path_in(p, sizeof(p), d2, CM_MASTER_KEY_FILE);
	write_file(p, master, sizeof(master), 0600);
	k3 = load_ok(d2);
	for (i = 0; i < NSUBKEYS; i++)
		assert_memory_equal(subkey(k1, i), subkey(k3, i), CM_KEY_LEN);
	assert_memory_equal(k2->k_audit_pk, k3->k_audit_pk, 32);
	assert_memory_not_equal(k1->k_audit_pk, k3->k_audit_pk, 32);
	cm_keys_free(k1);
	cm_keys_free(k2);
	cm_keys_free(k3);
	remove_dir(d1);
	remove_dir(d2);
}

static void
test_sqlcipher_literal(void **state)
{
	struct cm_keys *k;
	char *lit, hex[2 * CM_KEY_LEN + 1], *dir;
	size_t i;

	(void)state;
	dir = keyed_dir();
	k = load_ok(dir);
	lit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	memset(lit, 'Z', CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(k, lit);
	assert_int_equal(strlen(lit), 3 + 2 * CM_KEY_LEN);
	assert_true(strlen(lit) < CM_SQLCIPHER_KEY_LEN);
	assert_int_equal(lit[0], 'x');
	assert_int_equal(lit[1], '\'');
	assert_int_equal(lit[2 + 2 * CM_KEY_LEN], '\'');
	for (i = 2; i < 2 + 2 * CM_KEY_LEN; i++)
		if (!((lit[i] >= '0' && lit[i] <= '9') || (lit[i] >= 'a' && lit[i] <= 'f')))
			fail_msg("literal character %zu is '%c'", i, lit[i]);
	/* It is the store key, not the master key. */
	cm_hex_encode(hex, k->k_store, CM_KEY_LEN);
	assert_memory_equal(lit + 2, hex, 2 * CM_KEY_LEN);
	cm_wipe(lit, CM_SQLCIPHER_KEY_LEN);
	for (i = 0; i < CM_SQLCIPHER_KEY_LEN; i++)
		assert_int_equal(lit[i], 0);
	cm_secure_free(lit);
	cm_keys_free(k);
	remove_dir(dir);
}

/* ---- tokens -------------------------------------------------------------- */

static void
test_token_generate_parse(void **state)
{
	char tok[CM_TOKEN_MAX], sel[CM_TOKEN_SELECTOR_LEN + 1], sel2[CM_TOKEN_SELECTOR_LEN + 1];
	char seen[50][CM_TOKEN_SELECTOR_LEN + 1];
	size_t i, j;

	(void)state;
	for (i = 0; i < NELEM(seen); i++) {
		memset(tok, 'Z', sizeof(tok));
		cm_token_generate(tok, sel);
		assert_int_equal(strlen(tok), 4 + CM_TOKEN_SELECTOR_LEN + 1 + 43);
		assert_memory_equal(tok, "cmt_", 4);
		assert_int_equal(strlen(sel), CM_TOKEN_SELECTOR_LEN);
		assert_memory_equal(tok + 4, sel, CM_TOKEN_SELECTOR_LEN);
		memset(sel2, 'Z', sizeof(sel2));
		assert_int_equal(cm_token_parse(tok, sel2), 0);
		assert_string_equal(sel2, sel);
		for (j = 0; j < i; j++)
			assert_string_not_equal(seen[j], sel);
		strcpy(seen[i], sel);
	}
}

static void
expect_token_bad(const char *tok)
{
	char sel[CM_TOKEN_SELECTOR_LEN + 1];

	if (cm_token_parse(tok, sel) != -1)
		fail_msg("token \"%s\" was accepted", tok);
}

static void
test_token_parse_malformed(void **state)
{
	static const char good[] =
	    "cmt_0123456789abcdef_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq";
	char sel[CM_TOKEN_SELECTOR_LEN + 1], t[200];

	(void)state;
	assert_int_equal(strlen(good), 64);
	assert_int_equal(cm_token_parse(good, sel), 0);
	assert_string_equal(sel, "0123456789abcdef");
	/* '-' and '_' are base64url. */
	strcpy(t, good);
	t[30] = '-';
	t[31] = '_';
	assert_int_equal(cm_token_parse(t, sel), 0);

	expect_token_bad("");
	expect_token_bad("cmt_");
	expect_token_bad("Bearer cmt_0123456789abcdef_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq");
	/* Wrong prefix. */
	strcpy(t, good);
	t[2] = 'x';
	expect_token_bad(t);
	strcpy(t, good);
	t[0] = 'C';
	expect_token_bad(t);
	/* Short and long. */
	strcpy(t, good);
	t[63] = '\0';
	expect_token_bad(t);
	strcpy(t, good);
	strcat(t, "r");
	expect_token_bad(t);
	memset(t, 'a', 150);
	memcpy(t, good, 64);
	t[150] = '\0';
	expect_token_bad(t);
	/* Selector one shorter / longer (total length kept). */
	{
		static const char s15[] =
		    "cmt_0123456789abcde_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr";
		static const char s17[] =
		    "cmt_0123456789abcdef0_BCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq";

		assert_int_equal(strlen(s15), 64);
		assert_int_equal(strlen(s17), 64);
		expect_token_bad(s15);
		expect_token_bad(s17);
	}
	/* Upper-case or non-hex selector. */
	strcpy(t, good);
	t[10] = 'A';
	expect_token_bad(t);
	strcpy(t, good);
	t[4] = 'g';
	expect_token_bad(t);
	strcpy(t, good);
	t[19] = '_';
	expect_token_bad(t);
	/* Separator. */
	strcpy(t, good);
	t[20] = '-';
	expect_token_bad(t);
	/* Characters outside base64url in the secret. */
	strcpy(t, good);
	t[40] = '+';
	expect_token_bad(t);
	strcpy(t, good);
	t[40] = '/';
	expect_token_bad(t);
	strcpy(t, good);
	t[63] = '=';
	expect_token_bad(t);
	strcpy(t, good);
	t[50] = ' ';
	expect_token_bad(t);
	strcpy(t, good);
	t[50] = '\xc3';
	expect_token_bad(t);
}

static void
test_token_hash(void **state)
{
	char tok[CM_TOKEN_MAX], t2[CM_TOKEN_MAX], sel[CM_TOKEN_SELECTOR_LEN + 1];
	uint8_t h1[32], h2[32], h3[32];
	struct cm_keys *k1, *k2;
	char *d1, *d2;
	size_t i, len;

	(void)state;
	d1 = keyed_dir();
	d2 = keyed_dir();
	k1 = load_ok(d1);
	k2 = load_ok(d2);
	cm_token_generate(tok, sel);
	cm_token_hash(k1, tok, h1);
	cm_token_hash(k1, tok, h2);
	assert_memory_equal(h1, h2, 32);
	/* Keyed: another key, another hash. */
	cm_token_hash(k2, tok, h3);
	assert_memory_not_equal(h1, h3, 32);
	/* It is BLAKE2b keyed with the token key. */
	assert_int_equal(crypto_generichash(h3, 32, (const uint8_t *)tok, strlen(tok),
	    k1->k_token, CM_KEY_LEN), 0);
	assert_memory_equal(h1, h3, 32);
	/* Every one-character change changes the hash. */
	len = strlen(tok);
	for (i = 0; i < len; i++) {
		strcpy(t2, tok);
		t2[i] = t2[i] == 'a' ? 'b' : 'a';
		cm_token_hash(k1, t2, h2);
		assert_memory_not_equal(h1, h2, 32);
	}
	/* And so does a truncation. */
	strcpy(t2, tok);
	t2[len - 1] = '\0';
	cm_token_hash(k1, t2, h2);
	assert_memory_not_equal(h1, h2, 32);
	cm_keys_free(k1);
	cm_keys_free(k2);
	remove_dir(d1);
	remove_dir(d2);
}

/* ---- small primitives ------------------------------------------------- */

static void
test_memeq(void **state)
{
	uint8_t a[64], b[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)i;
	assert_int_equal(cm_memeq(a, b, sizeof(a)), 0);
	assert_int_equal(cm_memeq(a, b, 0), 0);
	for (i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x01;
		assert_int_not_equal(cm_memeq(a, b, sizeof(a)), 0);
		/* Only the first I bytes compared: still equal. */
		assert_int_equal(cm_memeq(a, b, i), 0);
		b[i] ^= 0x01;
	}
	b[63] = 0x80;
	assert_int_not_equal(cm_memeq(a, b, sizeof(a)), 0);
}

static void
test_sha256(void **state)
{
	uint8_t h[32];
	char hex[65];

	(void)state;
	cm_sha256(h, "abc", 3);
	cm_hex_encode(hex, h, sizeof(h));
	assert_string_equal(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	cm_sha256(h, "", 0);
	cm_hex_encode(hex, h, sizeof(h));
	assert_string_equal(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_random_and_wipe(void **state)
{
	uint8_t a[32], b[32], zero[32] = { 0 };

	(void)state;
	cm_random(a, sizeof(a));
	cm_random(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	cm_wipe(a, sizeof(a));
	assert_memory_equal(a, zero, sizeof(a));
	cm_random(a, 0);	/* no-op */
	assert_memory_equal(a, zero, sizeof(a));
}

/* Ids keep their shape; later ones sort later; the tail stays random. */
static void
test_time_id(void **state)
{
	char a[31], b[31], c[31], d[31], small[10];
	const int64_t t = INT64_C(1795359723427129);
	size_t i;

	(void)state;
	cm_time_id(a, sizeof(a), "sub_", t);
	cm_time_id(b, sizeof(b), "sub_", t);
	cm_time_id(c, sizeof(c), "sub_", t + 1000);
	cm_time_id(d, sizeof(d), "sub_", t + INT64_C(86400000000) * 365 * 20);
	assert_int_equal(strlen(a), 30);
	assert_memory_equal(a, "sub_", 4);
	for (i = 4; i < 30; i++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", a[i]));
	/* Same millisecond: same 10-character time part, different tails. */
	assert_memory_equal(a + 4, b + 4, 10);
	assert_string_not_equal(a + 14, b + 14);
	/* One millisecond and twenty years later both sort after. */
	assert_true(memcmp(a + 4, c + 4, 10) < 0);
	assert_true(memcmp(c + 4, d + 4, 10) < 0);
	/* Across a carry from one character to the next ('z' to '2'). */
	cm_time_id(a, sizeof(a), "evt_", INT64_C(31) * 1000);
	cm_time_id(b, sizeof(b), "evt_", INT64_C(32) * 1000);
	assert_memory_equal(a + 4, "222222222z", 10);
	assert_memory_equal(b + 4, "2222222232", 10);
	assert_true(memcmp(a + 4, b + 4, 10) < 0);
	/* Too small a buffer: an empty string, as cm_random_id. */
	cm_time_id(small, sizeof(small), "sub_", t);
	assert_string_equal(small, "");
}

/* Streamed SHA-256 equals the one-shot hash; signatures verify only as made. */
static void
test_sha256_stream_and_sign(void **state)
{
	struct cm_sha256_ctx c;
	uint8_t a[32], b[32], seed[32] = { 7 }, pk[32], sk[64], sig[64];

	(void)state;
	cm_sha256_init(&c);
	cm_sha256_update(&c, "ab", 2);
	cm_sha256_update(&c, "c", 1);
	cm_sha256_final(&c, a);
	cm_sha256(b, "abc", 3);
	assert_memory_equal(a, b, 32);
	assert_int_equal(cm_ed25519_from_seed(pk, sk, seed), 0);
	cm_ed25519_sign(sig, "manifest", 8, sk);
	assert_int_equal(cm_ed25519_verify(sig, "manifest", 8, pk), 0);
	assert_int_equal(cm_ed25519_verify(sig, "manifesT", 8, pk), -1);
	sig[5] ^= 1;
	assert_int_equal(cm_ed25519_verify(sig, "manifest", 8, pk), -1);
}

/* Writes LEN bytes (a counting pattern) sealed under KEY into PATH. */
static void
sealed_write(const char *path, const uint8_t *key, size_t len)
{
	struct cm_sealed_writer *w;
	uint64_t size;
	uint8_t b[1000];
	size_t i, n;

	assert_non_null(w = cm_sealed_create(path, key));
	for (i = 0; i < len; i += n) {
		n = len - i < sizeof(b) ? len - i : sizeof(b);
		for (size_t k = 0; k < n; k++)
			b[k] = (uint8_t)((i + k) * 7);
		assert_int_equal(cm_sealed_write(w, b, n), 0);
	}
	assert_int_equal(cm_sealed_finish(w, &size), 0);
	assert_int_equal(size, len);
}

/* Reads PATH back: 0 when it opens whole and holds the pattern, -1 otherwise. */
static int
sealed_check(const char *path, const uint8_t *key, size_t len)
{
	struct cm_sealed_reader *r;
	uint8_t b[777];
	size_t got = 0;
	long n;

	if ((r = cm_sealed_open(path, key)) == NULL)
		return -1;
	while ((n = cm_sealed_read(r, b, sizeof(b))) > 0) {
		for (long k = 0; k < n; k++)
			if (b[k] != (uint8_t)((got + (size_t)k) * 7))
				n = -1;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	cm_sealed_close(r);
	return n == 0 && got == len ? 0 : -1;
}

/* Sealed files: any length round-trips; a cut, a flip, extra bytes or another key fail. */
static void
test_sealed_file(void **state)
{
	static const size_t lens[] = { 0, 1, CM_SEALED_CHUNK - 1, CM_SEALED_CHUNK,
	    CM_SEALED_CHUNK + 1, 3 * CM_SEALED_CHUNK + 17 };
	uint8_t key[CM_KEY_LEN], other[CM_KEY_LEN], byte;
	char *dir, path[4200];
	size_t i;
	struct stat sb;
	int fd;

	(void)state;
	dir = make_tmpdir();
	path_in(path, sizeof(path), dir, "pkg");
	cm_random(key, sizeof(key));
	cm_random(other, sizeof(other));
	for (i = 0; i < NELEM(lens); i++) {
		sealed_write(path, key, lens[i]);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		assert_int_equal(sealed_check(path, key, lens[i]), 0);
		assert_int_equal(sealed_check(path, other, lens[i]), -1);
		/* A file is never replaced. */
		assert_null(cm_sealed_create(path, key));
		/* Cut short by one byte, or by a whole last chunk. */
		assert_int_equal(truncate(path, sb.st_size - 1), 0);
		assert_int_equal(sealed_check(path, key, lens[i]), -1);
		/*
		 * Only where that is a cut: at exactly one full chunk the file is
		 * 24 + CHUNK + 17 bytes, and "truncating" the file already one
		 * byte short to that length would put back its last byte as a
		 * zero, restoring the file whenever that byte was zero.
		 */
		if (sb.st_size - 1 > 24 + CM_SEALED_CHUNK + 17) {
			assert_int_equal(truncate(path, 24 + CM_SEALED_CHUNK + 17), 0);
			assert_int_equal(sealed_check(path, key, lens[i]), -1);
		}
		unlink(path);
		/* One flipped byte, anywhere. */
		sealed_write(path, key, lens[i]);
		assert_true((fd = open(path, O_RDWR)) >= 0);
		assert_int_equal(pread(fd, &byte, 1, sb.st_size / 2), 1);
		byte ^= 0x10;
		assert_int_equal(pwrite(fd, &byte, 1, sb.st_size / 2), 1);
		assert_int_equal(sealed_check(path, key, lens[i]), -1);
		/* Bytes after the final chunk. */
		byte ^= 0x10;
		assert_int_equal(pwrite(fd, &byte, 1, sb.st_size / 2), 1);
		assert_int_equal(sealed_check(path, key, lens[i]), 0);
		assert_int_equal(pwrite(fd, "x", 1, sb.st_size), 1);
		assert_int_equal(sealed_check(path, key, lens[i]), -1);
		close(fd);
		unlink(path);
	}
	/* An aborted file is gone. */
	cm_sealed_abort(cm_sealed_create(path, key));
	assert_int_equal(access(path, F_OK), -1);
	rmdir(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_files),
		cmocka_unit_test(test_create_never_overwrites),
		cmocka_unit_test(test_create_cleans_up),
		cmocka_unit_test(test_create_missing_dir),
		cmocka_unit_test(test_load_refuses_mode_0644),
		cmocka_unit_test(test_load_refuses_wrong_size),
		cmocka_unit_test(test_load_missing),
		cmocka_unit_test(test_load_refuses_non_regular),
		cmocka_unit_test(test_derived_keys_distinct),
		cmocka_unit_test(test_derived_keys_deterministic),
		cmocka_unit_test(test_derived_keys_known_derivation),
		cmocka_unit_test(test_derived_keys_differ_by_master),
		cmocka_unit_test(test_sqlcipher_literal),
		cmocka_unit_test(test_token_generate_parse),
		cmocka_unit_test(test_token_parse_malformed),
		cmocka_unit_test(test_token_hash),
		cmocka_unit_test(test_memeq),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_random_and_wipe),
		cmocka_unit_test(test_time_id),
		cmocka_unit_test(test_sha256_stream_and_sign),
		cmocka_unit_test(test_sealed_file),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
