/* SPDX-License-Identifier: ISC */
/*
 * Key files, key derivation and small libsodium wrappers. The master key
 * never leaves this file: every other key is derived from it with
 * crypto_kdf_derive_from_key(), one context per use, and the master copy is
 * wiped as soon as the derivation is done.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "consentd/crypto.h"
#include "consentd/util.h"

/*
 * KDF contexts: fixed forever, since changing one loses the data it keys.
 * A master-key rotation replaces the keys marked ROTATES (what is
 * encrypted at rest: the database and the wrapped subject keys). The
 * others key what cannot be made again without the secrets they were
 * applied to (token hashes, links in sent e-mails, blind indexes and
 * audit tags the log already names): they stay, sealed under the new
 * master key in sealed.keys.
 */
static const struct {
	const char	*ctx;
	size_t		 off;
	bool		 rotates;
} kdf_uses[] = {
	{ "CDstore1", offsetof(struct cm_keys, k_store), true },
	{ "CDblind1", offsetof(struct cm_keys, k_blind), false },
	{ "CDtoken1", offsetof(struct cm_keys, k_token), false },
	{ "CDwrapk1", offsetof(struct cm_keys, k_kek), true },
	{ "CDholdo1", offsetof(struct cm_keys, k_holdout), false },
	{ "CDlinks1", offsetof(struct cm_keys, k_link), false },
	{ "CDatags1", offsetof(struct cm_keys, k_tag), false },
	{ "CDreqst1", offsetof(struct cm_keys, k_request), false },
	{ "CDcodes1", offsetof(struct cm_keys, k_code), false },
	{ "CDsecrt1", offsetof(struct cm_keys, k_secret), false },
	{ "CDsessn1", offsetof(struct cm_keys, k_session), false },
};

#define SEALED_AD	"consentd sealed.keys v1"
#define SEALED_KEYS	9	/* entries of kdf_uses that do not rotate */
#define SEALED_LEN	(CM_AEAD_OVERHEAD + SEALED_KEYS * CM_KEY_LEN)

int
cm_crypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

cm_result
cm_keys_create(const char *dir, char *err, size_t errlen)
{
	char mpath[4096], apath[4096];
	uint8_t *key;
	cm_result rc = CM_IOERR;
	int n;

	n = snprintf(mpath, sizeof(mpath), "%s/%s", dir, CM_MASTER_KEY_FILE);
	if (n < 0 || (size_t)n >= sizeof(mpath))
		goto toolong;
	n = snprintf(apath, sizeof(apath), "%s/%s", dir, CM_AUDIT_KEY_FILE);
	if (n < 0 || (size_t)n >= sizeof(apath))
		goto toolong;
	if ((key = sodium_malloc(CM_KEY_LEN)) == NULL) {
		snprintf(err, errlen, "cannot allocate secure memory");
		return CM_IOERR;
	}
	randombytes_buf(key, CM_KEY_LEN);
	if (cm_file_write_new(mpath, key, CM_KEY_LEN) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", mpath, strerror(errno));
		goto out;
	}
	randombytes_buf(key, CM_KEY_LEN);
	if (cm_file_write_new(apath, key, CM_KEY_LEN) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", apath, strerror(errno));
		unlink(mpath);
		goto out;
	}
	rc = CM_OK;
out:
	sodium_free(key);
	return rc;
toolong:
	snprintf(err, errlen, "data directory path is too long");
	return CM_INVALID;
}

/* Reads exactly LEN bytes of key from DIR/NAME into KEY. */
static cm_result
keys_read_file(const char *dir, const char *name, uint8_t *key, size_t len,
    char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	ssize_t r;
	size_t off = 0;
	cm_result rc = CM_IOERR;
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "data directory path is too long");
		return CM_INVALID;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s%s", path, strerror(errno),
		    errno == ENOENT ? " (run 'consentd init --data DIR' first)" : "");
		return errno == ENOENT ? CM_NOTFOUND : CM_IOERR;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s must be a regular file readable only by "
		    "its owner (chmod 600 %s)", path, path);
		rc = CM_INVALID;
		goto out;
	}
	if ((size_t)st.st_size != len) {
		snprintf(err, errlen, "%s must hold exactly %zu bytes, it holds %lld",
		    path, len, (long long)st.st_size);
		rc = CM_INVALID;
		goto out;
	}
	while (off < len) {
		r = read(fd, key + off, len - off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "cannot read %s", path);
			goto out;
		}
		off += (size_t)r;
	}
	rc = CM_OK;
out:
	close(fd);
	return rc;
}

/*
 * Derives from MASTER the keys marked ROTATES (or all with ALL), the key
 * id, and when SEAL is not NULL the key that seals sealed.keys.
 */
static int
keys_derive(struct cm_keys *k, const uint8_t *master, bool all, uint8_t *seal)
{
	uint8_t id[16];
	size_t i;

	for (i = 0; i < CM_NELEM(kdf_uses); i++) {
		if (!all && !kdf_uses[i].rotates)
			continue;
		if (crypto_kdf_derive_from_key((uint8_t *)k + kdf_uses[i].off,
		    CM_KEY_LEN, 1, kdf_uses[i].ctx, master) != 0)
			return -1;
	}
	/* A name for logs and the audit log: one-way, in its own context. */
	if (crypto_kdf_derive_from_key(id, sizeof(id), 1, "CDkeyid1", master) != 0)
		return -1;
	sodium_bin2hex(k->k_master_id, sizeof(k->k_master_id), id, CM_KEY_ID_LEN / 2);
	if (seal != NULL &&
	    crypto_kdf_derive_from_key(seal, CM_KEY_LEN, 1, "CDseals1", master) != 0)
		return -1;
	return 0;
}

/* Copies the keys that do not rotate from K into BUF, or back with TO_K. */
static void
keys_stable_copy(struct cm_keys *k, uint8_t *buf, bool to_k)
{
	size_t i, n = 0;

	for (i = 0; i < CM_NELEM(kdf_uses); i++) {
		if (kdf_uses[i].rotates)
			continue;
		if (to_k)
			memcpy((uint8_t *)k + kdf_uses[i].off, buf + n * CM_KEY_LEN, CM_KEY_LEN);
		else
			memcpy(buf + n * CM_KEY_LEN, (uint8_t *)k + kdf_uses[i].off, CM_KEY_LEN);
		n++;
	}
}

/* Reads DIR/sealed.keys, when there is one, into K: the keys that stay. */
static cm_result
keys_unseal(const char *dir, const uint8_t *master, struct cm_keys *k,
    char *err, size_t errlen)
{
	uint8_t *seal, *sealed, *plain;
	cm_result rc;

	seal = cm_secure_alloc(CM_KEY_LEN);
	sealed = cm_secure_alloc(SEALED_LEN);
	plain = cm_secure_alloc(SEALED_KEYS * CM_KEY_LEN);
	rc = keys_read_file(dir, CM_SEALED_KEYS_FILE, sealed, SEALED_LEN, err, errlen);
	if (rc == CM_NOTFOUND) {
		/* Never rotated: every key comes from the master key. */
		rc = CM_OK;
		goto out;
	}
	if (rc != CM_OK)
		goto out;
	if (keys_derive(k, master, false, seal) != 0) {
		snprintf(err, errlen, "key derivation failed");
		rc = CM_IOERR;
		goto out;
	}
	if (cm_aead_open(plain, seal, SEALED_AD, strlen(SEALED_AD), sealed,
	    SEALED_LEN) != 0) {
		snprintf(err, errlen, "%s/%s does not open with %s/%s: the two files "
		    "must come from the same rotation", dir, CM_SEALED_KEYS_FILE, dir,
		    CM_MASTER_KEY_FILE);
		rc = CM_INVALID;
		goto out;
	}
	keys_stable_copy(k, plain, true);
	rc = CM_OK;
out:
	sodium_free(seal);
	sodium_free(sealed);
	sodium_free(plain);
	return rc;
}

static bool
keys_file_exists(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	return n > 0 && (size_t)n < sizeof(path) && lstat(path, &st) == 0;
}

static cm_result
keys_load(const char *dir, bool pending_ok, struct cm_keys **out, char *err,
    size_t errlen)
{
	struct cm_keys *k;
	uint8_t *master = NULL, *seed = NULL;
	cm_result rc;

	*out = NULL;
	/* An interrupted master-key rotation is finished or undone first. */
	if ((rc = cm_keys_recover(dir, NULL, err, errlen)) != CM_OK)
		return rc;
	if (!pending_ok && keys_file_exists(dir, CM_AUDIT_NEW_FILE)) {
		snprintf(err, errlen, "an audit key rotation was interrupted: run "
		    "'consentd keys rotate-audit --data %s' to finish it (nothing was "
		    "changed)", dir);
		return CM_CONFLICT;
	}
	if ((k = sodium_malloc(sizeof(*k))) == NULL ||
	    (master = sodium_malloc(CM_KEY_LEN)) == NULL ||
	    (seed = sodium_malloc(crypto_sign_SEEDBYTES)) == NULL) {
		snprintf(err, errlen, "cannot allocate secure memory");
		rc = CM_IOERR;
		goto out;
	}
	sodium_memzero(k, sizeof(*k));
	if ((rc = keys_read_file(dir, CM_MASTER_KEY_FILE, master, CM_KEY_LEN,
	    err, errlen)) != CM_OK)
		goto out;
	if ((rc = keys_read_file(dir, CM_AUDIT_KEY_FILE, seed,
	    crypto_sign_SEEDBYTES, err, errlen)) != CM_OK)
		goto out;
	if (keys_derive(k, master, true, NULL) != 0) {
		snprintf(err, errlen, "key derivation failed");
		rc = CM_IOERR;
		goto out;
	}
	if ((rc = keys_unseal(dir, master, k, err, errlen)) != CM_OK)
		goto out;
	if (crypto_sign_seed_keypair(k->k_audit_pk, k->k_audit_sk, seed) != 0) {
		snprintf(err, errlen, "cannot derive the audit signing key");
		rc = CM_IOERR;
		goto out;
	}
	sodium_mprotect_readonly(k);
	*out = k;
	k = NULL;
	rc = CM_OK;
out:
	sodium_free(master);
	sodium_free(seed);
	sodium_free(k);
	return rc;
}

cm_result
cm_keys_load(const char *dir, struct cm_keys **out, char *err, size_t errlen)
{
	return keys_load(dir, false, out, err, errlen);
}

cm_result
cm_keys_load_pending(const char *dir, struct cm_keys **out, char *err, size_t errlen)
{
	return keys_load(dir, true, out, err, errlen);
}

/* Writes DIR/NAME (O_EXCL, 0600, synced); a reason into ERR on failure. */
static cm_result
keys_write_named(const char *dir, const char *name, const uint8_t *data, size_t len,
    char *err, size_t errlen)
{
	char path[4096];
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "data directory path is too long");
		return CM_INVALID;
	}
	if (cm_file_write_new(path, data, len) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return CM_IOERR;
	}
	return CM_OK;
}

cm_result
cm_keys_rotate_prepare(const char *dir, const struct cm_keys *old,
    struct cm_keys **newk, char *err, size_t errlen)
{
	struct cm_keys *k;
	uint8_t *master, *seal, *plain, *sealed;
	cm_result rc = CM_IOERR;

	*newk = NULL;
	k = cm_secure_alloc(sizeof(*k));
	master = cm_secure_alloc(CM_KEY_LEN);
	seal = cm_secure_alloc(CM_KEY_LEN);
	plain = cm_secure_alloc(SEALED_KEYS * CM_KEY_LEN);
	sealed = cm_secure_alloc(SEALED_LEN);
	memcpy(k, old, sizeof(*k));
	randombytes_buf(master, CM_KEY_LEN);
	if (keys_derive(k, master, false, seal) != 0) {
		snprintf(err, errlen, "key derivation failed");
		goto out;
	}
	keys_stable_copy(k, plain, false);
	cm_aead_seal(sealed, seal, SEALED_AD, strlen(SEALED_AD), plain,
	    SEALED_KEYS * CM_KEY_LEN);
	/* sealed.keys.new first: a master.key.new alone is never usable. */
	if ((rc = keys_write_named(dir, CM_SEALED_NEW_FILE, sealed, SEALED_LEN,
	    err, errlen)) != CM_OK ||
	    (rc = keys_write_named(dir, CM_MASTER_NEW_FILE, master, CM_KEY_LEN,
	    err, errlen)) != CM_OK)
		goto out;
	sodium_mprotect_readonly(k);
	*newk = k;
	k = NULL;
	rc = CM_OK;
out:
	sodium_free(k);
	sodium_free(master);
	sodium_free(seal);
	sodium_free(plain);
	sodium_free(sealed);
	return rc;
}

cm_result
cm_keys_audit_new(const char *dir, uint8_t pk[32], char *err, size_t errlen)
{
	uint8_t *seed, *sk;
	cm_result rc = CM_IOERR;

	seed = cm_secure_alloc(crypto_sign_SEEDBYTES);
	sk = cm_secure_alloc(crypto_sign_SECRETKEYBYTES);
	randombytes_buf(seed, crypto_sign_SEEDBYTES);
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
		snprintf(err, errlen, "cannot derive the audit signing key");
		goto out;
	}
	rc = keys_write_named(dir, CM_AUDIT_NEW_FILE, seed, crypto_sign_SEEDBYTES,
	    err, errlen);
out:
	sodium_free(seed);
	sodium_free(sk);
	return rc;
}

cm_result
cm_keys_audit_pending(const char *dir, uint8_t pk[32], char *err, size_t errlen)
{
	uint8_t *seed, *sk;
	cm_result rc;

	seed = cm_secure_alloc(crypto_sign_SEEDBYTES);
	sk = cm_secure_alloc(crypto_sign_SECRETKEYBYTES);
	if ((rc = keys_read_file(dir, CM_AUDIT_NEW_FILE, seed, crypto_sign_SEEDBYTES,
	    err, errlen)) == CM_OK && crypto_sign_seed_keypair(pk, sk, seed) != 0) {
		snprintf(err, errlen, "cannot derive the audit signing key");
		rc = CM_IOERR;
	}
	sodium_free(seed);
	sodium_free(sk);
	return rc;
}

void
cm_keys_free(struct cm_keys *k)
{
	if (k == NULL)
		return;
	sodium_mprotect_readwrite(k);
	sodium_free(k);
}

void
cm_keys_sqlcipher_literal(const struct cm_keys *k, char *out)
{
	out[0] = 'x';
	out[1] = '\'';
	sodium_bin2hex(out + 2, 2 * CM_KEY_LEN + 1, k->k_store, CM_KEY_LEN);
	out[2 + 2 * CM_KEY_LEN] = '\'';
	out[3 + 2 * CM_KEY_LEN] = '\0';
}

void *
cm_secure_alloc(size_t n)
{
	void *p;

	if ((p = sodium_malloc(n)) == NULL) {
		fprintf(stderr, "{\"level\":\"error\",\"event\":\"out_of_secure_memory\"}\n");
		_exit(70);
	}
	return p;
}

void
cm_secure_free(void *p)
{
	sodium_free(p);
}

#define KEY_POOL_SLOTS	8

struct key_pool {
	uint8_t		slot[KEY_POOL_SLOTS][CM_KEY_LEN];
	unsigned	used;		/* bit i: slot i is taken */
};

static pthread_key_t	key_pool_tls;
static pthread_once_t	key_pool_once = PTHREAD_ONCE_INIT;

static void
key_pool_free(void *p)
{
	sodium_free(p);
}

static void
key_pool_init(void)
{
	if (pthread_key_create(&key_pool_tls, key_pool_free) != 0)
		abort();
}

uint8_t *
cm_key_acquire(void)
{
	struct key_pool *kp;
	unsigned i;

	pthread_once(&key_pool_once, key_pool_init);
	if ((kp = pthread_getspecific(key_pool_tls)) == NULL) {
		if ((kp = sodium_malloc(sizeof(*kp))) == NULL)
			return cm_secure_alloc(CM_KEY_LEN);
		sodium_memzero(kp, sizeof(*kp));
		pthread_setspecific(key_pool_tls, kp);
	}
	for (i = 0; i < KEY_POOL_SLOTS; i++)
		if (!(kp->used & (1u << i))) {
			kp->used |= 1u << i;
			return kp->slot[i];
		}
	return cm_secure_alloc(CM_KEY_LEN);
}

void
cm_key_release(uint8_t *k)
{
	struct key_pool *kp = pthread_getspecific(key_pool_tls);

	if (k == NULL)
		return;
	if (kp != NULL && k >= kp->slot[0] && k < kp->slot[0] + sizeof(kp->slot)) {
		sodium_memzero(k, CM_KEY_LEN);
		kp->used &= ~(1u << ((size_t)(k - kp->slot[0]) / CM_KEY_LEN));
		return;
	}
	sodium_free(k);
}

void
cm_wipe(void *p, size_t n)
{
	sodium_memzero(p, n);
}

void
cm_random(void *p, size_t n)
{
	randombytes_buf(p, n);
}

int
cm_memeq(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n);
}

void
cm_sha256(uint8_t out[32], const void *p, size_t n)
{
	crypto_hash_sha256(out, p, n);
}

void
cm_token_generate(char *token, char *selector)
{
	uint8_t sel[CM_TOKEN_SELECTOR_LEN / 2], secret[32];

	randombytes_buf(sel, sizeof(sel));
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2hex(selector, CM_TOKEN_SELECTOR_LEN + 1, sel, sizeof(sel));
	memcpy(token, "cmt_", 4);
	memcpy(token + 4, selector, CM_TOKEN_SELECTOR_LEN);
	token[4 + CM_TOKEN_SELECTOR_LEN] = '_';
	sodium_bin2base64(token + 5 + CM_TOKEN_SELECTOR_LEN,
	    CM_TOKEN_MAX - 5 - CM_TOKEN_SELECTOR_LEN, secret, sizeof(secret),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(secret, sizeof(secret));
}

int
cm_token_parse(const char *token, char *selector)
{
	size_t len, i;

	len = strnlen(token, CM_TOKEN_MAX);
	/* "cmt_" + selector + "_" + 43 base64url characters. */
	if (len != 4 + CM_TOKEN_SELECTOR_LEN + 1 + 43 ||
	    memcmp(token, "cmt_", 4) != 0 || token[4 + CM_TOKEN_SELECTOR_LEN] != '_')
		return -1;
	for (i = 4; i < 4 + CM_TOKEN_SELECTOR_LEN; i++)
		if (!((token[i] >= '0' && token[i] <= '9') ||
		    (token[i] >= 'a' && token[i] <= 'f')))
			return -1;
	for (i = 5 + CM_TOKEN_SELECTOR_LEN; i < len; i++) {
		char c = token[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return -1;
	}
	memcpy(selector, token + 4, CM_TOKEN_SELECTOR_LEN);
	selector[CM_TOKEN_SELECTOR_LEN] = '\0';
	return 0;
}

void
cm_token_hash(const struct cm_keys *k, const char *token, uint8_t out[32])
{
	crypto_generichash(out, 32, (const uint8_t *)token, strlen(token),
	    k->k_token, CM_KEY_LEN);
}
