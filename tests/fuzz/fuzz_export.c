/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes the consentd-export/1 verifier (src/core/export_verify.c), which
 * reads documents from outside (`consentd dsr verify-package`), and the
 * writer it checks. The first byte picks how the rest is used:
 *   even: a document, verified with a fixed log key; it must not crash,
 *         and if it verifies it is laid out as the format says;
 *   odd:  text the harness writes into a document of its own (each piece
 *         between NULs a list item), signs and verifies: it must verify,
 *         and must stop verifying once any one byte is changed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/export.h"
#include "consentd/util.h"
#include "fuzz.h"

#define LOG_NAME	"shop.example/consentd"

static uint8_t log_sk[64], log_pk[32];
static char log_vkey[256];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32];

	(void)argc;
	(void)argv;
	if (cm_crypto_init() != 0)
		abort();
	memset(seed, 0x11, sizeof(seed));
	if (cm_ed25519_from_seed(log_pk, log_sk, seed) != 0)
		abort();
	cm_note_vkey(log_vkey, sizeof(log_vkey), LOG_NAME, CM_NOTE_ED25519, log_pk);
	return 0;
}

static int
verify(const char *doc, size_t len)
{
	struct cm_export_check ec;
	FILE *f;
	int rc;

	if (len == 0)
		return -1;
	if ((f = fmemopen((void *)(uintptr_t)doc, len, "r")) == NULL)
		abort();
	rc = cm_export_verify(f, log_vkey, &ec);
	fclose(f);
	return rc;
}

static int
sink(void *arg, const void *p, size_t len)
{
	cm_buf_append(arg, p, len);
	return 0;
}

static void
written(const uint8_t *data, size_t size)
{
	struct cm_buf doc = { 0 };
	struct cm_export x;
	size_t i, start = 0, at;
	char *piece;

	cm_export_begin(&x, sink, &doc);
	cm_export_list_begin(&x, "items");
	for (i = 0; i <= size; i++) {
		if (i < size && data[i] != '\0')
			continue;
		piece = cm_strndup((const char *)data + start, i - start);
		cm_export_list_item(&x, json_stringn(piece, strlen(piece)));
		free(piece);
		start = i + 1;
	}
	cm_export_list_end(&x);
	if (cm_export_finish(&x, LOG_NAME, log_sk, log_pk) != 0) {
		/* Only text that is not UTF-8 makes no JSON string. */
		cm_buf_free(&doc);
		return;
	}
	FUZZ_CHECK(verify(doc.b_data, doc.b_len) == 0);
	at = (size * 7919u) % doc.b_len;
	doc.b_data[at] ^= (char)(1u << (size % 8));
	FUZZ_CHECK(verify(doc.b_data, doc.b_len) != 0);
	cm_buf_free(&doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1) {
		written(data + 1, size - 1);
	} else if (verify((const char *)data + 1, size - 1) == 0) {
		FUZZ_CHECK(size > 3 && memcmp(data + 1, "{\n", 2) == 0 &&
		    memcmp(data + size - 3, "\n}\n", 3) == 0);
	}
	return 0;
}
