/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for what the outbox computes without a store: HMAC-SHA256
 * against RFC 4231's vectors, the webhook signature (its exact form, a
 * change of body, secret or time refused, the 300-second window, malformed
 * headers), and message templates (every shipped one renders with the
 * policy's controller and authority; a placeholder nobody fills, or an
 * unknown template, is refused; denial and completion name the right to
 * complain).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consentd/crypto.h"
#include "consentd/outbox.h"
#include "consentd/policy.h"
#include "consentd/util.h"

static struct cm_policy *policy;

static int
group_setup(void **state)
{
	char err[512];

	(void)state;
	if (cm_crypto_init() != 0)
		return -1;
	if (cm_policy_load("policy", &policy, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "policy: %s\n", err);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	cm_policy_free(policy);
	return 0;
}

static void
test_hmac_rfc4231(void **state)
{
	/* RFC 4231 test cases 1 and 2. */
	static const uint8_t key1[20] = { 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
	    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b };
	uint8_t mac[32];
	char hex[65];

	(void)state;
	cm_hmac_sha256(mac, key1, sizeof(key1), "Hi There", 8, NULL, 0);
	cm_hex_encode(hex, mac, sizeof(mac));
	assert_string_equal(hex,
	    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	/* The same message given in two parts. */
	cm_hmac_sha256(mac, (const uint8_t *)"Jefe", 4, "what do ya want ", 16,
	    "for nothing?", 12);
	cm_hex_encode(hex, mac, sizeof(mac));
	assert_string_equal(hex,
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void
test_signature(void **state)
{
	static const uint8_t secret[] = "a-shared-secret-of-some-length";
	static const char body[] = "{\"event\":\"erasure\"}";
	char sig[CM_SIGNATURE_MAX], bad[CM_SIGNATURE_MAX], want[65];
	uint8_t mac[32];
	int64_t t = 1765000000;
	size_t slen = sizeof(secret) - 1;

	(void)state;
	cm_signature_make(sig, secret, slen, t, body, strlen(body));
	cm_hmac_sha256(mac, secret, slen, "1765000000.", 11, body, strlen(body));
	cm_hex_encode(want, mac, sizeof(mac));
	snprintf(bad, sizeof(bad), "t=1765000000,v1=%s", want);
	assert_string_equal(sig, bad);
	assert_int_equal(cm_signature_check(sig, secret, slen, body, strlen(body), t), 0);
	assert_int_equal(cm_signature_check(sig, secret, slen, body, strlen(body), t + 300), 0);
	assert_int_equal(cm_signature_check(sig, secret, slen, body, strlen(body), t - 300), 0);
	assert_int_equal(cm_signature_check(sig, secret, slen, body, strlen(body), t + 301), -1);
	assert_int_equal(cm_signature_check(sig, secret, slen, body, strlen(body), t - 301), -1);
	assert_int_equal(cm_signature_check(sig, secret, slen, "{}", 2, t), -1);
	assert_int_equal(cm_signature_check(sig, secret, slen - 1, body, strlen(body), t), -1);
	/* Another time in the header, same MAC: refused. */
	snprintf(bad, sizeof(bad), "t=1765000001,v1=%s", want);
	assert_int_equal(cm_signature_check(bad, secret, slen, body, strlen(body), t), -1);
	const char *malformed[] = { "", "t=,v1=00", "v1=abc", "t=1765000000",
	    "t=1765000000,v2=00", "t=-5,v1=00", NULL };
	for (size_t i = 0; malformed[i] != NULL; i++)
		assert_int_equal(cm_signature_check(malformed[i], secret, slen, body,
		    strlen(body), t), -1);
	assert_int_equal(cm_signature_check(NULL, secret, slen, body, strlen(body), t), -1);
}

static void
test_templates_render(void **state)
{
	static const char *const names[] = { "code", "extension", "denial", "completion",
	    "no_data", "restriction_lift", NULL };
	json_t *vars = json_pack("{s:s, s:s, s:s, s:s, s:s}", "request_id", "dsr_x", "type",
	    "access", "code", "123456", "due_at", "2027-01-01T00:00:00Z", "reason", "why");
	char *subject, *text;
	size_t i;

	(void)state;
	for (i = 0; names[i] != NULL; i++) {
		assert_int_equal(cm_outbox_render(policy, names[i], vars, &subject, &text), CM_OK);
		assert_non_null(strstr(text, "Northwind Threads Ltd"));
		assert_null(strstr(text, "{{"));
		assert_null(strchr(subject, '\n'));
		if (strcmp(names[i], "denial") == 0 || strcmp(names[i], "completion") == 0) {
			assert_non_null(strstr(text, "supervisory authority"));
			assert_non_null(strstr(text, "Information Commissioner's Office"));
		}
		if (strcmp(names[i], "code") == 0)
			assert_non_null(strstr(text, "123456"));
		free(subject);
		free(text);
	}
	/* The code template without a code: refused, not sent with a hole. */
	json_object_del(vars, "code");
	assert_int_equal(cm_outbox_render(policy, "code", vars, &subject, &text), CM_INVALID);
	assert_null(subject);
	assert_int_equal(cm_outbox_render(policy, "no_such", vars, &subject, &text), CM_NOTFOUND);
	json_decref(vars);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_templates_render),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
