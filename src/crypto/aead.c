/* SPDX-License-Identifier: ISC */
/*
 * Authenticated encryption with XChaCha20-Poly1305 (random 192-bit nonces,
 * safe to draw at random), per-subject data keys wrapped under the
 * key-encryption key, keyed hashes (blind indexes, audit tags, request
 * hashes) and Ed25519 keys from seeds. Identifiers and base64 are in
 * encode.c.
 */
#include <string.h>

#include <sodium.h>

#include "consentd/crypto.h"

void
cm_aead_seal(uint8_t *out, const uint8_t key[CM_KEY_LEN], const void *ad,
    size_t adlen, const void *pt, size_t ptlen)
{
	unsigned long long clen;

	randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, pt, ptlen,
	    ad, adlen, NULL, out, key);
}

int
cm_aead_open(uint8_t *out, const uint8_t key[CM_KEY_LEN], const void *ad,
    size_t adlen, const uint8_t *ct, size_t ctlen)
{
	unsigned long long plen;

	if (ctlen < CM_AEAD_OVERHEAD)
		return -1;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL,
	    ct + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    ctlen - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad, adlen, ct, key);
}

int
cm_ed25519_from_seed(uint8_t pk[32], uint8_t sk[64], const uint8_t seed[32])
{
	return crypto_sign_seed_keypair(pk, sk, seed) == 0 ? 0 : -1;
}

void
cm_keyed_hash(uint8_t *out, size_t outlen, const uint8_t key[CM_KEY_LEN],
    const char *const *parts, size_t nparts)
{
	crypto_generichash_state st;
	uint8_t sep = 0;
	size_t i;

	crypto_generichash_init(&st, key, CM_KEY_LEN, outlen);
	for (i = 0; i < nparts; i++) {
		if (i > 0)
			crypto_generichash_update(&st, &sep, 1);
		crypto_generichash_update(&st, (const uint8_t *)parts[i], strlen(parts[i]));
	}
	crypto_generichash_final(&st, out, outlen);
	sodium_memzero(&st, sizeof(st));
}

void
cm_blind_index(const struct cm_keys *k, const char *type, const char *value,
    uint8_t out[32])
{
	const char *parts[2] = { type, value };

	cm_keyed_hash(out, 32, k->k_blind, parts, 2);
}

void
cm_audit_tag(const struct cm_keys *k, const void *data, size_t len, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t h[16];
	size_t i;

	crypto_generichash(h, sizeof(h), data, len, k->k_tag, CM_KEY_LEN);
	for (i = 0; i < sizeof(h); i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[32] = '\0';
}

void
cm_audit_tag_blind(const struct cm_keys *k, const char *type, const uint8_t blind[32],
    char out[33])
{
	uint8_t buf[64 + 1 + 32];
	size_t n = strlen(type);

	if (n > 64)
		n = 64;
	memcpy(buf, type, n);
	buf[n] = 0;
	memcpy(buf + n + 1, blind, 32);
	cm_audit_tag(k, buf, n + 1 + 32, out);
}

void
cm_request_hash(const struct cm_keys *k, const void *data, size_t len, uint8_t out[32])
{
	crypto_generichash(out, 32, data, len, k->k_request, CM_KEY_LEN);
}

void
cm_subject_key_new(const struct cm_keys *k, const char *subject_id, uint8_t *key,
    uint8_t wrapped[CM_WRAPPED_KEY_LEN])
{
	randombytes_buf(key, CM_KEY_LEN);
	cm_aead_seal(wrapped, k->k_kek, subject_id, strlen(subject_id), key, CM_KEY_LEN);
}

int
cm_subject_key_unwrap(const struct cm_keys *k, const char *subject_id,
    const uint8_t *wrapped, size_t len, uint8_t *key)
{
	if (len != CM_WRAPPED_KEY_LEN)
		return -1;
	return cm_aead_open(key, k->k_kek, subject_id, strlen(subject_id), wrapped, len);
}

void
cm_hmac_sha256(uint8_t out[32], const uint8_t *key, size_t keylen, const void *a,
    size_t alen, const void *b, size_t blen)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, a, alen);
	if (blen > 0)
		crypto_auth_hmacsha256_update(&st, b, blen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}
