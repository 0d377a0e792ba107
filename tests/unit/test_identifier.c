/*
 * Unit tests for identifier parsing and normalisation (src/core/identifier.c).
 * A table of "type:value" inputs, each run as its own cmocka test, checks
 * what cm_identifier_parse accepts and the exact normalised value and text it
 * produces: email trimmed and lower-cased (ASCII only), with one '@', a local
 * part of at most 64 bytes, a dotted domain and at most 254 bytes; phone
 * numbers stripped of spaces, dots, dashes, brackets and a "(0)" trunk
 * prefix after the country code, then "+" and 8-15 digits not starting with
 * 0; device, loyalty, customer and policy-added types kept exactly (1-128
 * bytes, no surrounding white space); every value well-formed UTF-8 without
 * control characters or NUL. Every refusal must be CM_INVALID with a
 * non-empty reason that does not repeat the refused value. It also checks
 * cm_identifier_type_known with and without a policy, and that a short
 * reason buffer is never overrun.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consentd/common.h"
#include "consentd/identifier.h"
#include "consentd/policy.h"

/* ---- the table ----------------------------------------------------------- */

/*
 * One case. The input is IN (INLEN bytes, NULs included), then NFILL copies
 * of FILL, then POST. TYPE NULL means the input must be refused; otherwise
 * the expected value is WANT, then NFILL copies of FILL, then WPOST. POL
 * means parse with the test policy (which adds "giftcard") instead of NULL.
 */
struct id_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	char		 fill;
	size_t		 nfill;
	const char	*post;
	bool		 pol;
	const char	*type;
	const char	*want;
	const char	*wpost;
};

/* Literals: sizeof keeps embedded NULs in the length. */
#define OK(n, in, t, w)		{ n, in, sizeof(in) - 1, 0, 0, "", false, t, w, "" }
#define OKPOL(n, in, t, w)	{ n, in, sizeof(in) - 1, 0, 0, "", true, t, w, "" }
#define BAD(n, in)		{ n, in, sizeof(in) - 1, 0, 0, "", false, NULL, NULL, NULL }
/* Long inputs: PRE, K copies of C, POST. */
#define OKFILL(n, pre, c, k, post, t, wpre, wpost) \
	{ n, pre, sizeof(pre) - 1, c, k, post, false, t, wpre, wpost }
#define BADFILL(n, pre, c, k, post) \
	{ n, pre, sizeof(pre) - 1, c, k, post, false, NULL, NULL, NULL }

static struct id_case cases[] = {
	/* ---- email: accepted ---- */
	OK("email plain", "email:ana@example.com", "email", "ana@example.com"),
	OK("email mixed case lower-cased", "email:Ana.Silva@Example.COM",
	    "email", "ana.silva@example.com"),
	OK("email all upper case", "email:BOB@MAIL.EXAMPLE.ORG",
	    "email", "bob@mail.example.org"),
	OK("email plus tag and subdomains", "email:a.b+news@sub.example.co.uk",
	    "email", "a.b+news@sub.example.co.uk"),
	OK("email leading/trailing spaces trimmed", "email:  ana@example.com   ",
	    "email", "ana@example.com"),
	OK("email leading/trailing tabs trimmed", "email:\tana@example.com\t",
	    "email", "ana@example.com"),
	OK("email mixed spaces and tabs trimmed", "email: \tAna@Example.com\t ",
	    "email", "ana@example.com"),
	OK("email non-ASCII local part kept", "email:J\xc3\xbcrgen@Example.de",
	    "email", "j\xc3\xbcrgen@example.de"),
	OK("email lower-casing leaves non-ASCII upper case alone",
	    "email:\xc3\x81NA@EXAMPLE.COM", "email", "\xc3\x81na@example.com"),
	OK("email shortest", "email:a@b.c", "email", "a@b.c"),
	OKFILL("email local part exactly 64 bytes", "email:", 'a', 64,
	    "@example.com", "email", "", "@example.com"),
	OKFILL("email exactly 254 bytes", "email:x@", 'b', 248, ".com",
	    "email", "x@", ".com"),

	/* ---- email: refused ---- */
	BAD("email empty value", "email:"),
	BAD("email only spaces", "email:    "),
	BAD("email without '@'", "email:ana.example.com"),
	BAD("email with two '@'", "email:ana@bob@example.com"),
	BAD("email empty local part", "email:@example.com"),
	BAD("email empty domain", "email:ana@"),
	BAD("email domain without dot", "email:ana@localhost"),
	BAD("email domain with leading dot", "email:ana@.example.com"),
	BAD("email domain with trailing dot", "email:ana@example.com."),
	BAD("email domain with '..'", "email:ana@example..com"),
	BAD("email inner space", "email:ana silva@example.com"),
	BAD("email quotes", "email:\"ana\"@example.com"),
	BAD("email comma", "email:ana,bob@example.com"),
	BAD("email angle brackets", "email:<ana@example.com>"),
	BADFILL("email local part 65 bytes", "email:", 'a', 65, "@example.com"),
	BADFILL("email 255 bytes", "email:x@", 'b', 249, ".com"),
	BAD("email lone continuation byte 0x80", "email:an\x80@example.com"),
	BAD("email overlong 0xC0 0xAF", "email:an\xc0\xaf@example.com"),
	BAD("email surrogate 0xED 0xA0 0x80", "email:an\xed\xa0\x80@example.com"),
	BAD("email truncated sequence at end", "email:ana@example.com\xc3"),
	BAD("email embedded NUL", "email:ana@exa\0mple.com"),
	BAD("email C0 control char", "email:ana\x01@example.com"),
	BAD("email DEL", "email:ana\x7f@example.com"),

	/* ---- phone: accepted ---- */
	OK("phone E.164 as is", "phone:+442079460958", "phone", "+442079460958"),
	OK("phone with spaces", "phone:+44 20 7946 0958", "phone", "+442079460958"),
	OK("phone with brackets, space and dash", "phone:+1 (415) 555-0132",
	    "phone", "+14155550132"),
	OK("phone with dots", "phone:+49.30.1234567", "phone", "+49301234567"),
	OK("phone with dashes", "phone:+33-1-23-45-67-89", "phone", "+33123456789"),
	OK("phone exactly 8 digits", "phone:+12345678", "phone", "+12345678"),
	OK("phone exactly 15 digits", "phone:+123456789012345",
	    "phone", "+123456789012345"),
	OK("phone UK trunk prefix (0) dropped", "phone:+44 (0)20 7946 0958",
	    "phone", "+442079460958"),
	OK("phone FR trunk prefix (0) dropped", "phone:+33 (0)1 23 45 67 89",
	    "phone", "+33123456789"),

	/* ---- phone: refused ---- */
	BAD("phone empty value", "phone:"),
	BAD("phone only '+'", "phone:+"),
	BAD("phone with letters", "phone:+1-800-FLOWERS"),
	BAD("phone with a letter among digits", "phone:+44207946O958"),
	BAD("phone 7 digits", "phone:+1234567"),
	BAD("phone 16 digits", "phone:+1234567890123456"),
	BAD("phone without '+'", "phone:442079460958"),
	BAD("phone '+0' country code", "phone:+0442079460958"),
	BAD("phone '+' not first", "phone:44+2079460958"),
	BAD("phone two '+'", "phone:++442079460958"),
	BAD("phone lone 0x80", "phone:+44\x80" "2079460958"),
	BAD("phone embedded NUL", "phone:+4420\0" "79460958"),

	/* ---- device / loyalty / customer: accepted exactly ---- */
	OK("device case preserved", "device:AbC-123-xYz", "device", "AbC-123-xYz"),
	OK("device inner spaces kept", "device:My Phone  7", "device", "My Phone  7"),
	OK("device with colons", "device:aa:bb:cc:dd:ee:ff", "device", "aa:bb:cc:dd:ee:ff"),
	OK("device non-ASCII UTF-8 kept", "device:Ger\xc3\xa4t-\xc3\x84" "1",
	    "device", "Ger\xc3\xa4t-\xc3\x84" "1"),
	OK("device one byte", "device:x", "device", "x"),
	OK("loyalty case and inner space kept", "loyalty:LC 0042 Gold",
	    "loyalty", "LC 0042 Gold"),
	OK("customer kept exactly", "customer:Cust-00017", "customer", "Cust-00017"),
	OK("customer with '@' and upper case not email-normalised",
	    "customer:Ana@Example.COM", "customer", "Ana@Example.COM"),
	OKFILL("device exactly 128 bytes", "device:", 'd', 128, "", "device", "", ""),

	/* ---- device / loyalty / customer: refused ---- */
	BAD("device empty value", "device:"),
	BAD("device leading space", "device: abc123"),
	BAD("device trailing space", "device:abc123 "),
	BAD("device leading tab", "device:\tabc123"),
	BAD("device trailing tab", "device:abc123\t"),
	BAD("loyalty trailing space", "loyalty:LC0042 "),
	BAD("customer leading space", "customer: C17"),
	BADFILL("device 129 bytes", "device:", 'd', 129, ""),
	BAD("device C0 control char", "device:ab\x01" "cd"),
	BAD("device newline", "device:abc\ndef"),
	BAD("device DEL", "device:abc\x7f" "def"),
	BAD("device C1 control U+0085", "device:abc\xc2\x85" "def"),
	BAD("device lone 0x80", "device:abc\x80" "def"),
	BAD("device overlong 0xC0 0xAF", "device:abc\xc0\xaf" "def"),
	BAD("device 3-byte overlong 0xE0 0x80 0xAF", "device:abc\xe0\x80\xaf" "def"),
	BAD("device surrogate 0xED 0xA0 0x80", "device:abc\xed\xa0\x80" "def"),
	BAD("device beyond U+10FFFF", "device:abc\xf4\x90\x80\x80" "def"),
	BAD("device byte 0xFF", "device:abc\xff" "def"),
	BAD("device truncated 2-byte sequence at end", "device:abcdef\xc3"),
	BAD("device truncated 3-byte sequence at end", "device:abcdef\xe2\x82"),
	BAD("device embedded NUL", "device:abc\0def"),
	BAD("device trailing NUL counted in length", "device:abcdef\0"),

	/* ---- type ---- */
	BAD("empty input", ""),
	BAD("missing type ':x'", ":x"),
	BAD("missing type ':abcdef'", ":abcdef"),
	BAD("no colon 'x'", "x"),
	BAD("no colon, looks like an email", "ana@example.com"),
	BAD("unknown type", "fax:+442079460958"),
	BAD("type with trailing space", "email :ana@example.com"),
	BAD("type is case-sensitive", "EMAIL:ana@example.com"),
	BAD("NUL inside the type", "ema\0il:ana@example.com"),
	BADFILL("type longer than 64 bytes", "", 't', 65, ":value"),
	BAD("policy type without policy", "giftcard:ABC"),
	OKPOL("policy-added type", "giftcard:ABC", "giftcard", "ABC"),
	OKPOL("policy-added type kept exactly", "giftcard:Gc 00-7x",
	    "giftcard", "Gc 00-7x"),
	OKPOL("built-in type still works with a policy",
	    "email:Ana@Example.com", "email", "ana@example.com"),
	{ "policy-added type leading space refused", "giftcard: ABC", 13, 0, 0, "",
	    true, NULL, NULL, NULL },
	{ "unknown type refused with a policy", "voucher:ABC", 11, 0, 0, "",
	    true, NULL, NULL, NULL },
};

/* ---- helpers ------------------------------------------------------------- */

static const char *giftcard_types[] = { "giftcard" };

/* Fills POL (a caller's stack variable): only the added types are set. */
static void
init_policy(struct cm_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->pol_id_types = giftcard_types;
	pol->pol_nid_types = CM_NELEM(giftcard_types);
}

/* Writes C's input into BUF and returns its length (NULs included). */
static size_t
build_input(const struct id_case *c, char *buf, size_t buflen)
{
	size_t n, plen = strlen(c->post);

	assert_true(c->inlen + c->nfill + plen < buflen);
	memcpy(buf, c->in, c->inlen);
	n = c->inlen;
	memset(buf + n, c->fill, c->nfill);
	n += c->nfill;
	memcpy(buf + n, c->post, plen);
	n += plen;
	buf[n] = '\0';
	return n;
}

/* Writes C's expected value into BUF. */
static void
build_want(const struct id_case *c, char *buf, size_t buflen)
{
	size_t n = strlen(c->want), plen = strlen(c->wpost);

	assert_true(n + c->nfill + plen < buflen);
	memcpy(buf, c->want, n);
	memset(buf + n, c->fill, c->nfill);
	n += c->nfill;
	memcpy(buf + n, c->wpost, plen + 1);
}

/* ---- the table test ------------------------------------------------------ */

static void
test_parse_case(void **state)
{
	const struct id_case *c = *state;
	struct cm_policy pol;
	struct cm_identifier id;
	char in[512], want[512], text[600], why[256];
	const char *colon, *value;
	size_t len;
	cm_result rc;

	init_policy(&pol);
	len = build_input(c, in, sizeof(in));
	memset(&id, 0x5a, sizeof(id));
	memset(why, 0, sizeof(why));
	rc = cm_identifier_parse(in, len, c->pol ? &pol : NULL, &id, why, sizeof(why));

	if (c->type != NULL) {
		if (rc != CM_OK)
			fail_msg("%s: refused (%s): %s", c->name, cm_result_str(rc), why);
		build_want(c, want, sizeof(want));
		assert_string_equal(id.id_type, c->type);
		assert_string_equal(id.id_value, want);
		snprintf(text, sizeof(text), "%s:%s", c->type, want);
		assert_string_equal(id.id_text, text);
		return;
	}

	if (rc != CM_INVALID)
		fail_msg("%s: expected CM_INVALID, got %s (value \"%s\")", c->name,
		    cm_result_str(rc), rc == CM_OK ? id.id_value : "");
	if (why[0] == '\0')
		fail_msg("%s: refused without a reason", c->name);
	assert_non_null(memchr(why, '\0', sizeof(why)));

	/* The reason must not repeat the value (up to any NUL in it). */
	colon = memchr(in, ':', len);
	value = colon != NULL ? colon + 1 : in;
	if (strlen(value) >= 3 && strstr(why, value) != NULL)
		fail_msg("%s: the reason repeats the value: %s", c->name, why);
	if (len >= 3 && strstr(why, in) != NULL)
		fail_msg("%s: the reason repeats the input: %s", c->name, why);
}

/* ---- other tests --------------------------------------------------------- */

static void
test_type_known(void **state)
{
	struct cm_policy pol, empty;

	(void)state;
	init_policy(&pol);
	memset(&empty, 0, sizeof(empty));

	assert_true(cm_identifier_type_known("email", NULL));
	assert_true(cm_identifier_type_known("phone", NULL));
	assert_true(cm_identifier_type_known("device", NULL));
	assert_true(cm_identifier_type_known("loyalty", NULL));
	assert_true(cm_identifier_type_known("customer", NULL));
	assert_false(cm_identifier_type_known("", NULL));
	assert_false(cm_identifier_type_known("fax", NULL));
	assert_false(cm_identifier_type_known("mail", NULL));
	assert_false(cm_identifier_type_known("emails", NULL));
	assert_false(cm_identifier_type_known("email ", NULL));
	assert_false(cm_identifier_type_known("giftcard", NULL));
	assert_false(cm_identifier_type_known("giftcard", &empty));

	assert_true(cm_identifier_type_known("giftcard", &pol));
	assert_true(cm_identifier_type_known("email", &pol));
	assert_true(cm_identifier_type_known("customer", &pol));
	assert_false(cm_identifier_type_known("gift", &pol));
	assert_false(cm_identifier_type_known("giftcards", &pol));
	assert_false(cm_identifier_type_known("voucher", &pol));
}

/* A tiny reason buffer is filled, terminated and not overrun. */
static void
test_short_why(void **state)
{
	struct cm_identifier id;
	char why[8];
	size_t i;

	(void)state;
	memset(why, 'Z', sizeof(why));
	assert_int_equal(cm_identifier_parse("email:nope", 10, NULL, &id, why, 4),
	    CM_INVALID);
	assert_true(strlen(why) <= 3);
	assert_true(why[0] != '\0');
	for (i = 4; i < sizeof(why); i++)
		assert_int_equal(why[i], 'Z');
}

/* The same person typed two ways gets one identifier text. */
static void
test_same_person_one_form(void **state)
{
	struct cm_identifier a, b;
	char why[256];
	static const char e1[] = "email:  Ana.Silva@Example.COM ";
	static const char e2[] = "email:ana.silva@example.com";
	static const char p1[] = "phone:+44 (20) 7946-0958";
	static const char p2[] = "phone:+44.20.7946.0958";

	(void)state;
	assert_int_equal(cm_identifier_parse(e1, sizeof(e1) - 1, NULL, &a, why,
	    sizeof(why)), CM_OK);
	assert_int_equal(cm_identifier_parse(e2, sizeof(e2) - 1, NULL, &b, why,
	    sizeof(why)), CM_OK);
	assert_string_equal(a.id_text, b.id_text);
	assert_int_equal(cm_identifier_parse(p1, sizeof(p1) - 1, NULL, &a, why,
	    sizeof(why)), CM_OK);
	assert_int_equal(cm_identifier_parse(p2, sizeof(p2) - 1, NULL, &b, why,
	    sizeof(why)), CM_OK);
	assert_string_equal(a.id_text, b.id_text);
	assert_string_equal(a.id_text, "phone:+442079460958");
}

int
main(void)
{
	enum { NCASES = CM_NELEM(cases) };
	struct CMUnitTest tests[NCASES + 3];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		tests[i].name = cases[i].name;
		tests[i].test_func = test_parse_case;
		tests[i].setup_func = NULL;
		tests[i].teardown_func = NULL;
		tests[i].initial_state = &cases[i];
	}
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(test_type_known);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(test_short_why);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(test_same_person_one_form);
	return _cmocka_run_group_tests("identifier", tests, i, NULL, NULL);
}
