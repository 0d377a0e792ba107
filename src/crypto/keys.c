/* SPDX-License-Identifier: ISC */
/*
 * Key files, key derivation and small libsodium wrappers. The master key
 * never leaves this file: every other key is derived from it with
 * crypto_kdf_derive_from_key(), one context per use, and the master copy is
 * wiped as soon as the derivation is done.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "consentd/crypto.h"

/* KDF contexts: fixed forever, since changing one loses the data it keys. */
static const struct {
	const char	*ctx;
	size_t		 off;
} kdf_uses[] = {
	{ "CDstore1", offsetof(struct cm_keys, k_store) },
	{ "CDblind1", offsetof(struct cm_keys, k_blind) },
	{ "CDtoken1", offsetof(struct cm_keys, k_token) },
	{ "CDwrapk1", offsetof(struct cm_keys, k_kek) },
	{ "CDholdo1", offsetof(struct cm_keys, k_holdout) },
	{ "CDlinks1", offsetof(struct cm_keys, k_link) },
	{ "CDatags1", offsetof(struct cm_keys, k_tag) },
	{ "CDreqst1", offsetof(struct cm_keys, k_request) },
	{ "CDcodes1", offsetof(struct cm_keys, k_code) },
	{ "CDsecrt1", offsetof(struct cm_keys, k_secret) },
	{ "CDsessn1", offsetof(struct cm_keys, k_session) },
};

int
cm_crypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

static int
keys_write_file(const char *path, const uint8_t *key, size_t len)
{
	size_t off = 0;
	ssize_t w;
	int fd, rc = -1;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		return -1;
	if (fchmod(fd, 0600) == -1)
		goto out;
	while (off < len) {
		w = write(fd, key + off, len - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	if (fsync(fd) == -1)
		goto out;
	rc = 0;
out:
	close(fd);
	if (rc == -1)
		unlink(path);
	return rc;
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
	if (keys_write_file(mpath, key, CM_KEY_LEN) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", mpath, strerror(errno));
		goto out;
	}
	randombytes_buf(key, CM_KEY_LEN);
	if (keys_write_file(apath, key, CM_KEY_LEN) == -1) {
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

cm_result
cm_keys_load(const char *dir, struct cm_keys **out, char *err, size_t errlen)
{
	struct cm_keys *k;
	uint8_t *master = NULL, *seed = NULL;
	cm_result rc;
	size_t i;

	*out = NULL;
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
	for (i = 0; i < CM_NELEM(kdf_uses); i++) {
		if (crypto_kdf_derive_from_key((uint8_t *)k + kdf_uses[i].off,
		    CM_KEY_LEN, 1, kdf_uses[i].ctx, master) != 0) {
			snprintf(err, errlen, "key derivation failed");
			rc = CM_IOERR;
			goto out;
		}
	}
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
