/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes cm_percent_decode (src/http/router.c), which decodes route
 * parameters and query values, over any bytes (NULs included) against a
 * reference written from its contract: "%" and two hex digits decode to
 * that byte, anything else is copied; a "%" without two hex digits after
 * it, a NUL byte in the input, or an escape that decodes to NUL gives
 * NULL. Also checks that escaping every byte of a result and decoding
 * that gives the result back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/http.h"
#include "consentd/util.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int
hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The reference: decodes S into OUT (LEN + 1 bytes); false when malformed. */
static bool
reference(const unsigned char *s, size_t len, char *out, size_t *outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			return false;
		if (s[i] != '%') {
			out[o++] = (char)s[i];
			continue;
		}
		if (len - i < 3 || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0)
			return false;
		out[o] = (char)(hex(s[i + 1]) << 4 | hex(s[i + 2]));
		if (out[o++] == '\0')
			return false;
		i += 2;
	}
	out[o] = '\0';
	*outlen = o;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	char *got, *ref, *again, *esc;
	size_t reflen = 0, i;
	bool ok;

	ref = cm_malloc(size + 1);
	ok = reference(data, size, ref, &reflen);
	got = cm_percent_decode((const char *)data, size);
	FUZZ_CHECK((got != NULL) == ok);
	if (got != NULL) {
		FUZZ_CHECK(strlen(got) == reflen && memcmp(got, ref, reflen + 1) == 0);
		esc = cm_malloc(3 * reflen + 1);
		for (i = 0; i < reflen; i++) {
			esc[3 * i] = '%';
			esc[3 * i + 1] = digits[(unsigned char)got[i] >> 4];
			esc[3 * i + 2] = digits[(unsigned char)got[i] & 15];
		}
		again = cm_percent_decode(esc, 3 * reflen);
		FUZZ_CHECK(again != NULL && strcmp(again, got) == 0);
		free(again);
		free(esc);
	}
	free(got);
	free(ref);
	return 0;
}
