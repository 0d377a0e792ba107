/* SPDX-License-Identifier: ISC */
/*
 * Random and time-ordered identifiers, and base64: the text forms of
 * random bytes, drawn from libsodium's generator.
 */
#include <string.h>

#include <sodium.h>

#include "consentd/crypto.h"

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
