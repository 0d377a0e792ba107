/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes cm_receipt_verify, which `consentd receipt verify` runs on a file
 * from anywhere. The first byte picks how the rest is used:
 *   even: a whole receipt, checked with the log key of the golden files
 *         and with the key it names itself;
 *   odd:  pairs (position, mask) applied to the golden receipt
 *         (tests/golden/receipt.exp), whose result is checked with the key.
 * Whatever parses, verification must accept it exactly when it is the
 * golden receipt as JSON (key order and white space aside): nobody but the
 * key's holder can make another, and any change to that one must fail.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/receipt.h"
#include "consentd/util.h"
#include "fuzz.h"

#define LOG_NAME	"shop.example/consentd"

static char	 log_vkey[256];
static char	*golden;
static size_t	 golden_len;
static json_t	*golden_json;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cm_receipt_report rr;
	uint8_t seed[32], sk[64], pk[32];
	const char *path;
	size_t i;

	(void)argc;
	(void)argv;
	if (cm_crypto_init() != 0)
		abort();
	/* The golden files' log key: seed 01 02 … 20. */
	for (i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(1 + i);
	if (cm_ed25519_from_seed(pk, sk, seed) != 0)
		abort();
	cm_note_vkey(log_vkey, sizeof(log_vkey), LOG_NAME, CM_NOTE_ED25519, pk);
	if ((path = getenv("CONSENTD_FUZZ_RECEIPT")) == NULL)
		path = "tests/golden/receipt.exp";
	if ((golden = cm_file_read(path, CM_RECEIPT_MAX_BYTES, &golden_len)) == NULL ||
	    (golden_json = json_loadb(golden, golden_len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL || cm_receipt_verify(golden_json, log_vkey, &rr) != 0) {
		fprintf(stderr, "fuzz: %s is not a receipt that verifies\n", path);
		abort();
	}
	return 0;
}

/* TEXT (LEN bytes) verifies exactly when it is the golden receipt. */
static void
check(const char *text, size_t len, bool own_key_too)
{
	struct cm_receipt_report rr;
	json_t *j;

	if ((j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return;
	FUZZ_CHECK((cm_receipt_verify(j, log_vkey, &rr) == 0) == json_equal(j, golden_json));
	if (own_key_too && cm_receipt_verify(j, NULL, &rr) == 0)
		FUZZ_CHECK(json_equal(j, golden_json));
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	size_t i;

	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		check((const char *)data + 1, size - 1, true);
		return 0;
	}
	text = cm_malloc(golden_len);
	memcpy(text, golden, golden_len);
	for (i = 1; i + 2 < size; i += 3)
		text[((size_t)data[i] << 8 | data[i + 1]) % golden_len] ^= (char)data[i + 2];
	check(text, golden_len, false);
	free(text);
	return 0;
}
