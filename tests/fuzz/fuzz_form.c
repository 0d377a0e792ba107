/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes cm_api_form_parse (src/api/page_form.c), which reads the
 * preference centre's form posts, over any bytes: it gives NULL or an
 * object of strings with non-empty names, at most 64 of them, no value
 * over 1000 bytes; and writing that object out again, every byte
 * percent-escaped, parses back to the same object.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/util.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* Appends S with every byte escaped. */
static void
escape(struct cm_buf *b, const char *s)
{
	static const char digits[] = "0123456789ABCDEF";
	char e[3];

	for (; *s != '\0'; s++) {
		e[0] = '%';
		e[1] = digits[(unsigned char)*s >> 4];
		e[2] = digits[(unsigned char)*s & 15];
		cm_buf_append(b, e, 3);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_buf b = { NULL, 0, 0 };
	json_t *o, *again, *v;
	const char *k;
	size_t n = 0;

	if ((o = cm_api_form_parse((const char *)data, size)) == NULL)
		return 0;
	FUZZ_CHECK(json_is_object(o) && json_object_size(o) <= 64);
	json_object_foreach(o, k, v) {
		FUZZ_CHECK(*k != '\0' && json_is_string(v));
		FUZZ_CHECK(strlen(json_string_value(v)) <= 1000);
		if (n++ > 0)
			cm_buf_append(&b, "&", 1);
		escape(&b, k);
		cm_buf_append(&b, "=", 1);
		escape(&b, json_string_value(v));
	}
	again = cm_api_form_parse(b.b_data ? b.b_data : "", b.b_len);
	FUZZ_CHECK(again != NULL && json_equal(o, again));
	json_decref(again);
	json_decref(o);
	cm_buf_free(&b);
	return 0;
}
