/*
 * Authenticated encryption with XChaCha20-Poly1305 (random 192-bit nonces,
 * safe to draw at random), per-subject data keys wrapped under the
 * key-encryption key, blind indexes, random identifiers, and base64.
 */
#include <string.h>

#include <sodium.h>

#include "consentd/crypto.h"
#include "consentd/decision.h"

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

void
cm_random_id(char *out, size_t outlen, const char *prefix)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint8_t r[16];
	size_t plen, i, bit;
	unsigned v;

	plen = strlen(prefix);
	if (outlen < plen + 27) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	randombytes_buf(r, sizeof(r));
	memcpy(out, prefix, plen);
	/* 26 groups of 5 bits cover the 128 bits (the last group is padded). */
	for (i = 0; i < 26; i++) {
		bit = i * 5;
		v = (unsigned)r[bit / 8] << 8;
		if (bit / 8 + 1 < sizeof(r))
			v |= r[bit / 8 + 1];
		v = (v >> (11 - bit % 8)) & 31;
		out[plen + i] = alphabet[v];
	}
	out[plen + 26] = '\0';
}

void
cm_time_id(char *out, size_t outlen, const char *prefix, int64_t now_us)
{
	static const char sorted[] = "234567abcdefghijklmnopqrstuvwxyz";
	uint64_t ms = now_us > 0 ? (uint64_t)now_us / 1000 : 0;
	size_t plen, i;

	cm_random_id(out, outlen, prefix);
	plen = strlen(prefix);
	if (outlen < plen + 27)
		return;
	/* 50 bits of milliseconds, most significant first: until year 37648. */
	for (i = 0; i < 10; i++)
		out[plen + i] = sorted[(ms >> (45 - 5 * i)) & 31];
}

void
cm_base64(char *out, size_t outlen, const uint8_t *in, size_t len)
{
	if (outlen < sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL)) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	sodium_bin2base64(out, outlen, in, len, sodium_base64_VARIANT_ORIGINAL);
}

long
cm_base64_decode(uint8_t *out, size_t outlen, const char *s, size_t slen)
{
	const char *end;
	size_t n, i;

	/*
	 * libsodium 1.0.18 decodes every byte from 0x80 up as '/' (its lookup
	 * takes the char signed), so "ab\xffd" would pass for "ab/d": refuse
	 * them first, or one value has many encodings.
	 */
	for (i = 0; i < slen; i++)
		if ((unsigned char)s[i] >= 0x80)
			return -1;
	if (sodium_base642bin(out, outlen, s, slen, NULL, &n, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != s + slen)
		return -1;
	return (long)n;
}

int
cm_ed25519_from_seed(uint8_t pk[32], uint8_t sk[64], const uint8_t seed[32])
{
	return crypto_sign_seed_keypair(pk, sk, seed) == 0 ? 0 : -1;
}

void
cm_blind_index(const struct cm_keys *k, const char *type, const char *value,
    uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t sep = 0;

	crypto_generichash_init(&st, k->k_blind, CM_KEY_LEN, 32);
	crypto_generichash_update(&st, (const uint8_t *)type, strlen(type));
	crypto_generichash_update(&st, &sep, 1);
	crypto_generichash_update(&st, (const uint8_t *)value, strlen(value));
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
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

bool
cm_holdout_member(const struct cm_keys *k, const char *subject_id,
    const struct cm_purpose *p)
{
	crypto_generichash_state st;
	uint8_t h[8], sep = 0;
	uint64_t v = 0;
	size_t i;

	if (p->pu_holdout_percent <= 0)
		return false;
	crypto_generichash_init(&st, k->k_holdout, CM_KEY_LEN, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)subject_id, strlen(subject_id));
	crypto_generichash_update(&st, &sep, 1);
	crypto_generichash_update(&st, (const uint8_t *)p->pu_id, strlen(p->pu_id));
	crypto_generichash_final(&st, h, sizeof(h));
	for (i = 0; i < sizeof(h); i++)
		v = v << 8 | h[i];
	/* Basis points, so the share is exact to 0.01%. */
	return v % 10000 < (uint64_t)p->pu_holdout_percent * 100;
}
