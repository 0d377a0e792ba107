/*
 * Unit tests for token scopes (src/core/scope.c): the bit of every scope
 * that existed before consent:check and subjects:read is unchanged (tokens
 * store the bits, so a stored token keeps its meaning) and the new scopes
 * take new bits; names parse and format both ways, an unknown name is
 * refused and named; and the one inclusion, consent:read granting
 * consent:check, holds while nothing else implies anything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "consentd/scope.h"

static void
test_bits_are_stable(void **state)
{
	(void)state;
	assert_int_equal(CM_SCOPE_CONSENT_READ, 1u << 0);
	assert_int_equal(CM_SCOPE_CONSENT_WRITE, 1u << 1);
	assert_int_equal(CM_SCOPE_SUBJECTS_WRITE, 1u << 2);
	assert_int_equal(CM_SCOPE_DSR_ADMIN, 1u << 3);
	assert_int_equal(CM_SCOPE_AUDIT_READ, 1u << 4);
	assert_int_equal(CM_SCOPE_ADMIN, 1u << 5);
	assert_int_equal(CM_SCOPE_CONSENT_CHECK, 1u << 6);
	assert_int_equal(CM_SCOPE_SUBJECTS_READ, 1u << 7);
	assert_int_equal(CM_SCOPE_ALL, 0xffu);
}

static void
test_parse_and_format(void **state)
{
	char out[200], bad[80];
	uint32_t m;

	(void)state;
	assert_int_equal(cm_scope_parse("subjects:read,consent:check", &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_SUBJECTS_READ | CM_SCOPE_CONSENT_CHECK);
	cm_scope_format(m, out, sizeof(out));
	assert_string_equal(out, "consent:check,subjects:read");
	cm_scope_format(CM_SCOPE_ALL, out, sizeof(out));
	assert_string_equal(out, "consent:check,consent:read,consent:write,subjects:read,"
	    "subjects:write,dsr:admin,audit:read,admin");
	assert_int_equal(cm_scope_parse(out, &m, bad, sizeof(bad)), 0);
	assert_int_equal(m, CM_SCOPE_ALL);
	assert_int_equal(cm_scope_parse("consent:read,subjects:readx", &m, bad, sizeof(bad)), -1);
	assert_string_equal(bad, "subjects:readx");
	assert_string_equal(cm_scope_name(CM_SCOPE_CONSENT_CHECK), "consent:check");
	assert_string_equal(cm_scope_name(CM_SCOPE_SUBJECTS_READ), "subjects:read");
}

static void
test_allows(void **state)
{
	uint32_t bit, need;

	(void)state;
	assert_true(cm_scope_allows(CM_SCOPE_CONSENT_READ, CM_SCOPE_CONSENT_CHECK));
	assert_true(cm_scope_allows(CM_SCOPE_CONSENT_CHECK, CM_SCOPE_CONSENT_CHECK));
	assert_false(cm_scope_allows(CM_SCOPE_CONSENT_CHECK, CM_SCOPE_CONSENT_READ));
	assert_false(cm_scope_allows(CM_SCOPE_CONSENT_READ, CM_SCOPE_SUBJECTS_READ));
	assert_false(cm_scope_allows(CM_SCOPE_SUBJECTS_WRITE, CM_SCOPE_SUBJECTS_READ));
	assert_false(cm_scope_allows(CM_SCOPE_ADMIN, CM_SCOPE_SUBJECTS_READ));
	/* Apart from that one inclusion, a scope grants exactly itself. */
	for (bit = 1; bit & CM_SCOPE_ALL; bit <<= 1)
		for (need = 1; need & CM_SCOPE_ALL; need <<= 1)
			assert_int_equal(cm_scope_allows(bit, need), bit == need ||
			    (bit == CM_SCOPE_CONSENT_READ && need == CM_SCOPE_CONSENT_CHECK));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits_are_stable),
		cmocka_unit_test(test_parse_and_format),
		cmocka_unit_test(test_allows),
	};

	return cmocka_run_group_tests_name("scope", tests, NULL, NULL);
}
