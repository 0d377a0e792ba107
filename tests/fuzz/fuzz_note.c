/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes the C2SP note code of src/audit/note.c that reads outside input:
 * cm_note_open (the split at the blank line, the signature lines, their
 * base64), cm_checkpoint_parse (the tlog-checkpoint body), cm_note_vkey_parse
 * and cm_note_check_cosignature. The first byte picks how the rest is
 * used:
 *   even: a whole note, opened with a fixed log key and checked for a
 *         fixed witness's cosignature; its text is also parsed as a
 *         checkpoint body and as a vkey;
 *   odd:  a note text the harness signs with the log key and cosigns with
 *         the witness key, as a log that signs whatever it likes would:
 *         opening it must give the text back, and the cosignature its time.
 * Whenever a body parses as a checkpoint it must be the canonical one:
 * cm_checkpoint_body() of what was parsed gives the same bytes back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "fuzz.h"

#define LOG_NAME	"shop.example/consentd"
#define WITNESS_NAME	"dpo.shop.example/witness"

static uint8_t log_sk[64], log_pk[32], wit_sk[64], wit_pk[32];
static char log_vkey[256], wit_vkey[256];

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
	memset(seed, 0x22, sizeof(seed));
	if (cm_ed25519_from_seed(wit_pk, wit_sk, seed) != 0)
		abort();
	cm_note_vkey(log_vkey, sizeof(log_vkey), LOG_NAME, CM_NOTE_ED25519, log_pk);
	cm_note_vkey(wit_vkey, sizeof(wit_vkey), WITNESS_NAME, CM_NOTE_COSIGNATURE, wit_pk);
	return 0;
}

/* Parses BODY (LEN bytes, no NUL) as a checkpoint; if it parses, it must be canonical. */
static void
checkpoint(const char *body, size_t len)
{
	char origin[CM_AUDIT_ORIGIN_MAX + 1], again[CM_AUDIT_ORIGIN_MAX + 128];
	uint8_t root[32];
	uint64_t size;

	if (cm_checkpoint_parse(body, len, origin, sizeof(origin), &size, root) != 0)
		return;
	FUZZ_CHECK(strlen(origin) > 0 && strlen(origin) <= CM_AUDIT_ORIGIN_MAX);
	FUZZ_CHECK(cm_checkpoint_body(again, sizeof(again), origin, size, root) == 0);
	FUZZ_CHECK(strlen(again) == len && memcmp(again, body, len) == 0);
}

static void
as_note(const char *text)
{
	char body[CM_NOTE_MAX], name[CM_AUDIT_ORIGIN_MAX + 1];
	uint8_t pk[32];
	uint64_t t;

	if (cm_note_open(text, log_vkey, body, sizeof(body)) == 0) {
		FUZZ_CHECK(strncmp(text, body, strlen(body)) == 0);
		checkpoint(body, strlen(body));
	}
	if (cm_note_check_cosignature(text, wit_vkey, &t) == 0)
		FUZZ_CHECK(strstr(text, "\n\n") != NULL);
	checkpoint(text, strlen(text));
	if (cm_note_vkey_parse(text, CM_NOTE_ED25519, name, sizeof(name), pk) == 0)
		FUZZ_CHECK(strchr(name, '+') == NULL && name[0] != '\0');
	if (cm_note_vkey_parse(text, CM_NOTE_COSIGNATURE, name, sizeof(name), pk) == 0)
		FUZZ_CHECK(strchr(name, '+') == NULL && name[0] != '\0');
}

static void
signed_by_log(const char *text)
{
	struct cm_buf note = { 0 };
	char body[CM_NOTE_MAX];
	size_t len = strlen(text);
	uint64_t t = 0, when;

	if (cm_note_sign(&note, text, LOG_NAME, log_sk, log_pk) != 0) {
		/* Only an empty text or one without a final newline is refused. */
		FUZZ_CHECK(len == 0 || text[len - 1] != '\n');
		return;
	}
	when = len * 7919u;
	FUZZ_CHECK(cm_note_cosign(&note, text, WITNESS_NAME, wit_sk, wit_pk, when) == 0);
	if (len < sizeof(body) && strstr(text, "\n\n") == NULL) {
		/* A text with no blank line of its own opens to itself. */
		FUZZ_CHECK(cm_note_open(note.b_data, log_vkey, body, sizeof(body)) == 0);
		FUZZ_CHECK(strcmp(body, text) == 0);
		FUZZ_CHECK(cm_note_check_cosignature(note.b_data, wit_vkey, &t) == 0 &&
		    t == when);
		checkpoint(body, len);
	} else if (cm_note_open(note.b_data, log_vkey, body, sizeof(body)) == 0) {
		FUZZ_CHECK(strncmp(note.b_data, body, strlen(body)) == 0);
	}
	cm_buf_free(&note);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	/* Notes are read as C strings (cm_file_read, the store): cut at a NUL. */
	text = cm_strndup((const char *)data + 1, size - 1);
	if (data[0] & 1)
		signed_by_log(text);
	else
		as_note(text);
	free(text);
	return 0;
}
