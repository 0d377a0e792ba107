/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes cm_policy_parse (src/core/policy.c) on arbitrary bytes: the
 * jansson parse, every check of the policy document and the locator that
 * finds the line of a field in the text for the error message. Checks
 * that a refusal is CM_INVALID with "policy.json:LINE: FIELD: problem",
 * LINE within the text; that an accepted policy's public form is JSON;
 * and that cm_policy_line answers a line within the text for the fields
 * errors name.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/policy.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int
lines(const uint8_t *data, size_t size)
{
	int n = 1;
	size_t i;

	for (i = 0; i < size; i++)
		if (data[i] == '\n')
			n++;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = { "controller.name", "purposes[0].lawful_basis",
	    "purposes[1].channels[0]", "channels[2].identifier_types[0]", "retention",
	    "recipients[0].transfer_safeguards", "topics[0]", "[3]", "a.b.c.d.e.f.g.h.i.j",
	    "purposes[99999999999999999999]", "", NULL };
	struct cm_policy *p = NULL;
	char err[512], *end;
	json_t *pub;
	long line;
	size_t i;
	cm_result rc;
	int n;

	err[0] = '\0';
	rc = cm_policy_parse("policy.json", (const char *)data, size, &p, err, sizeof(err));
	n = lines(data, size);
	if (rc != CM_OK) {
		FUZZ_CHECK(rc == CM_INVALID && p == NULL);
		FUZZ_CHECK(strncmp(err, "policy.json:", 12) == 0);
		line = strtol(err + 12, &end, 10);
		FUZZ_CHECK(end != err + 12 && end[0] == ':' && end[1] == ' ');
		/* jansson counts a line more at the end of a truncated text. */
		FUZZ_CHECK(line >= 0 && line <= n + 1);
		return 0;
	}
	FUZZ_CHECK(p != NULL && p->pol_public != NULL);
	pub = json_loadb(p->pol_public, p->pol_public_len, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_object(pub));
	json_decref(pub);
	for (i = 0; fields[i] != NULL; i++) {
		line = cm_policy_line(p, fields[i]);
		FUZZ_CHECK(line >= 1 && line <= n);
	}
	cm_policy_free(p);
	return 0;
}
