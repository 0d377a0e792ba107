/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for identifier parsing and normalisation (src/core/identifier.c).
 * A table of "type:value" inputs, each run as its own cmocka test, checks
 * what cm_identifier_parse accepts and the exact normalised value and text it
 * produces: email trimmed, with one '@', a local part of at most 64 bytes, a
 * dotted domain and at most 254 bytes; an ASCII local part lower-cased and a
 * non-ASCII one NFC of its full (language-independent) case folding; a plain
 * ASCII domain lower-cased and any other through IDNA (UTS #46
 * non-transitional) to its lower-case U-label; phone numbers of '+', digits,
 * spaces, dots, dashes and brackets only, a "(0)" trunk prefix after the
 * country code dropped, a country calling code that exists, a national
 * number only with the policy's default phone region, and E.164 out ("+"
 * and 8-15 digits not starting with 0); device, loyalty, customer and
 * policy-added types kept exactly (1-128 bytes, no surrounding white
 * space); every value well-formed UTF-8 without control characters or NUL.
 * Every refusal must be CM_INVALID with a non-empty reason that does not
 * repeat the refused value.
 *
 * Other tests: a table of ASCII inputs and the values the parser gave them
 * before Unicode normalisation existed (stores hold blind indexes of those,
 * so they must not move); one person's spellings giving one blind index;
 * every accepted value parsing to itself again (idempotence, which
 * re-normalising a store relies on); the reasons given for phone and
 * email refusals; cm_identifier_type_known with and without a policy; and
 * that a short reason buffer is never overrun.
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
#include "consentd/crypto.h"
#include "consentd/identifier.h"
#include "consentd/policy.h"

/* ---- the table ----------------------------------------------------------- */

/* Which policy a case is parsed with. */
enum id_pol {
	POL_NONE,	/* NULL */
	POL_TYPES,	/* adds "giftcard"; no default phone region */
	POL_GB,		/* the same, default phone region "GB" */
	POL_XX		/* the same, default phone region "XX" (no such region) */
};

/*
 * One case. The input is IN (INLEN bytes, NULs included), then NFILL copies
 * of FILL, then POST. TYPE NULL means the input must be refused; otherwise
 * the expected value is WANT, then NFILL copies of WFILL (FILL when NULL),
 * then WPOST. POL names the policy it is parsed with.
 */
struct id_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	const char	*fill;
	size_t		 nfill;
	const char	*post;
	enum id_pol	 pol;
	const char	*type;
	const char	*want;
	const char	*wfill;
	const char	*wpost;
};

/* Literals: sizeof keeps embedded NULs in the length. */
#define OKP(n, pol, in, t, w)	{ n, in, sizeof(in) - 1, "", 0, "", pol, t, w, NULL, "" }
#define BADP(n, pol, in)	{ n, in, sizeof(in) - 1, "", 0, "", pol, NULL, NULL, NULL, NULL }
#define OK(n, in, t, w)		OKP(n, POL_NONE, in, t, w)
#define OKPOL(n, in, t, w)	OKP(n, POL_TYPES, in, t, w)
#define BAD(n, in)		BADP(n, POL_NONE, in)
/* Long inputs: PRE, K copies of FILL, POST; the value WPRE, K copies of WFILL, WPOST. */
#define OKFILL(n, pre, fill, k, post, t, wpre, wpost) \
	{ n, pre, sizeof(pre) - 1, fill, k, post, POL_NONE, t, wpre, NULL, wpost }
#define OKFILL2(n, pre, fill, k, post, t, wpre, wfill, wpost) \
	{ n, pre, sizeof(pre) - 1, fill, k, post, POL_NONE, t, wpre, wfill, wpost }
#define BADFILL(n, pre, fill, k, post) \
	{ n, pre, sizeof(pre) - 1, fill, k, post, POL_NONE, NULL, NULL, NULL, NULL }

/* "é" ten times (20 bytes), and a 50-letter label of it (100 bytes). */
#define E10	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
#define E50	E10 E10 E10 E10 E10

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
	OK("email non-ASCII upper case folded too",
	    "email:\xc3\x81NA@EXAMPLE.COM", "email", "\xc3\xa1na@example.com"),
	OK("email shortest", "email:a@b.c", "email", "a@b.c"),
	OKFILL("email local part exactly 64 bytes", "email:", "a", 64,
	    "@example.com", "email", "", "@example.com"),
	OKFILL("email exactly 254 bytes", "email:x@", "b", 248, ".com",
	    "email", "x@", ".com"),

	/* ---- email: Unicode local parts (NFC of full case folding) ---- */
	OK("email NFD local part composed to NFC", "email:jose\xcc\x81@example.com",
	    "email", "jos\xc3\xa9@example.com"),
	OK("email NFC local part kept", "email:jos\xc3\xa9@example.com",
	    "email", "jos\xc3\xa9@example.com"),
	OK("email upper-case accented local part folded", "email:JOS\xc3\x89@example.com",
	    "email", "jos\xc3\xa9@example.com"),
	OK("email sharp s folds to ss", "email:Stra\xc3\x9f" "e@example.de",
	    "email", "strasse@example.de"),
	OK("email capital sharp s folds to ss", "email:STRA\xe1\xba\x9e" "E@example.de",
	    "email", "strasse@example.de"),
	OK("email Turkish dotted capital I folds to i + U+0307",
	    "email:\xc4\xb0pek@example.com", "email", "i\xcc\x87pek@example.com"),
	OK("email Turkish dotless i kept (no Turkic folding)",
	    "email:\xc4\xb1rmak@example.com", "email", "\xc4\xb1rmak@example.com"),
	OK("email ASCII I folds to i, not to dotless i", "email:IRMAK@example.com",
	    "email", "irmak@example.com"),
	OK("email Kelvin sign folds to ASCII k", "email:\xe2\x84\xaa" "ate@Example.com",
	    "email", "kate@example.com"),
	OK("email Greek final sigma folds to sigma", "email:\xce\xa3\xce\x91\xcf\x82@example.gr",
	    "email", "\xcf\x83\xce\xb1\xcf\x83@example.gr"),
	OK("email non-ASCII local part with a plain domain: no IDNA",
	    "email:J\xc3\xbcrgen@AB--CD.example", "email", "j\xc3\xbcrgen@ab--cd.example"),
	OKFILL("email non-ASCII local part exactly 64 bytes", "email:", "\xc3\xa9", 32,
	    "@example.com", "email", "", "@example.com"),
	BADFILL("email non-ASCII local part 66 bytes", "email:", "\xc3\xa9", 33,
	    "@example.com"),
	OKFILL2("email NFD local part of 96 bytes is 64 once composed", "email:",
	    "e\xcc\x81", 32, "@example.com", "email", "", "\xc3\xa9", "@example.com"),
	OKFILL2("email capital sharp s: 90 bytes typed, 60 folded", "email:",
	    "\xe1\xba\x9e", 30, "@example.de", "email", "", "ss", "@example.de"),
	BADFILL("email folding makes the local part 66 bytes", "email:", "\xc3\x9f", 33,
	    "@example.de"),
	BADFILL("email non-ASCII over 1016 bytes refused before folding", "email:",
	    "\xc3\xa9", 600, "@example.com"),

	/* ---- email: domains through IDNA, to the U-label ---- */
	OK("email U-label domain kept", "email:ana@b\xc3\xbc" "cher.example",
	    "email", "ana@b\xc3\xbc" "cher.example"),
	OK("email A-label domain becomes its U-label", "email:ana@xn--bcher-kva.example",
	    "email", "ana@b\xc3\xbc" "cher.example"),
	OK("email upper-case A-label", "email:ANA@XN--BCHER-KVA.EXAMPLE",
	    "email", "ana@b\xc3\xbc" "cher.example"),
	OK("email upper-case U-label lower-cased by IDNA", "email:ana@B\xc3\x9c" "CHER.Example",
	    "email", "ana@b\xc3\xbc" "cher.example"),
	OK("email NFD domain composed", "email:ana@bu\xcc\x88" "cher.example",
	    "email", "ana@b\xc3\xbc" "cher.example"),
	OK("email ideographic full stop is a dot", "email:ana@b\xc3\xbc" "cher\xe3\x80\x82" "example",
	    "email", "ana@b\xc3\xbc" "cher.example"),
	OK("email IDNA can give a plain ASCII domain", "email:Ana@Example\xe3\x80\x82" "COM",
	    "email", "ana@example.com"),
	OK("email non-transitional: sharp s kept in a domain", "email:ana@Stra\xc3\x9f" "e.de",
	    "email", "ana@stra\xc3\x9f" "e.de"),
	OK("email non-transitional A-label of sharp s", "email:ana@xn--strae-oqa.de",
	    "email", "ana@stra\xc3\x9f" "e.de"),
	OK("email two A-labels", "email:ana@xn--bcher-kva.xn--bcher-kva.de",
	    "email", "ana@b\xc3\xbc" "cher.b\xc3\xbc" "cher.de"),
	OKFILL("email U-label domain of 209 bytes", "email:a@", E50 ".", 2, "example",
	    "email", "a@", "example"),
	BADFILL("email U-label form over 254 bytes", "email:a@", E50 ".", 3, "example"),

	/* ---- email: refused by IDNA or by the rules on the result ---- */
	BAD("email domain with a disallowed code point (snowman)",
	    "email:ana@\xe2\x98\x83.example"),
	BAD("email A-label of a disallowed code point", "email:ana@xn--n3h.example"),
	BAD("email A-label that is not Punycode", "email:ana@xn--zzzz.example"),
	BAD("email A-label that is not NFC-valid", "email:ana@xn--a.example"),
	BAD("email A-label whose U-label does not read back", "email:ser@xn--hrk-vea.x"),
	BAD("email IDNA label starting with a hyphen", "email:ana@-b\xc3\xbc" "cher.example"),
	BAD("email IDNA zero-width joiner out of context", "email:ana@a\xe2\x80\x8d" "b\xc3\xbc.example"),
	BAD("email IDNA domain with an underscore", "email:ana@b\xc3\xbc" "cher_x.example"),
	BAD("email IDNA mapping to a non-host-name character",
	    "email:ana@b\xc3\xbc" "cher\xc2\xa0x.example"),
	BAD("email non-ASCII domain without a dot", "email:ana@b\xc3\xbc" "cher"),
	BAD("email non-ASCII domain with trailing dot", "email:ana@b\xc3\xbc" "cher.example."),
	BAD("email non-ASCII domain with leading dot", "email:ana@.b\xc3\xbc" "cher.example"),
	BAD("email non-ASCII domain with empty label", "email:ana@b\xc3\xbc" "cher..example"),
	BAD("email Greek question mark is ';' once NFC", "email:ana\xcd\xbe@example.com"),
	BAD("email no-break space in the local part", "email:ana\xc2\xa0silva@example.com"),
	BAD("email ideographic space in the local part", "email:ana\xe3\x80\x80@example.com"),
	BAD("email non-ASCII with two '@'", "email:jos\xc3\xa9@a@example.com"),
	BAD("email non-ASCII without '@'", "email:jos\xc3\xa9.example.com"),
	BAD("email non-ASCII empty local part", "email:@b\xc3\xbc" "cher.example"),
	BAD("email non-ASCII empty domain", "email:jos\xc3\xa9@"),
	BAD("email non-ASCII with a space", "email:jos\xc3\xa9 x@example.com"),
	BAD("email non-ASCII with angle brackets", "email:<jos\xc3\xa9@example.com>"),
	BAD("email non-ASCII with '..' in the local part", "email:jos\xc3\xa9..x@example.com"),

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
	BADFILL("email local part 65 bytes", "email:", "a", 65, "@example.com"),
	BADFILL("email 255 bytes", "email:x@", "b", 249, ".com"),
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
	OK("phone national prefix after the country code dropped",
	    "phone:+44 020 7946 0958", "phone", "+442079460958"),
	OK("phone NANP '1' after the country code dropped", "phone:+1 1 415 555 0132",
	    "phone", "+14155550132"),
	OK("phone own digits kept where libphonenumber's reading drifts (+1 1 1)",
	    "phone:+1 1 1 445 773 0753", "phone", "+1114457730753"),
	OK("phone own digits kept where libphonenumber's reading drifts (+20 0 0)",
	    "phone:+20 00 9795 9075", "phone", "+200097959075"),
	OK("phone Italian leading zero kept", "phone:+39 06 1234 5678",
	    "phone", "+390612345678"),
	OK("phone test range +44 7700 900xxx accepted", "phone:+44 7700 900123",
	    "phone", "+447700900123"),
	OKFILL2("phone 64 characters with spaces", "phone:+44", " ", 51, "2079460958",
	    "phone", "+442079460958", "", ""),
	OKP("phone national number in the default region", POL_GB, "phone:07700 900123",
	    "phone", "+447700900123"),
	OKP("phone national London number in the default region", POL_GB,
	    "phone:(020) 7946-0958", "phone", "+442079460958"),
	OKP("phone national number: international prefix 00", POL_GB,
	    "phone:00 33 1 23 45 67 89", "phone", "+33123456789"),
	OKP("phone '+' number ignores the default region", POL_GB,
	    "phone:+33 1 23 45 67 89", "phone", "+33123456789"),
	OKP("phone national and '+44 0' spellings agree", POL_GB,
	    "phone:+44 07700 900123", "phone", "+447700900123"),

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
	BAD("phone country calling code +999 does not exist", "phone:+999 1234 5678"),
	BAD("phone country calling code +969 does not exist", "phone:+969 1234 5678"),
	BAD("phone national number without a policy", "phone:07700 900123"),
	BADP("phone national number without a default region", POL_TYPES,
	    "phone:07700 900123"),
	BADP("phone national number in a region that does not exist", POL_XX,
	    "phone:07700 900123"),
	BADP("phone national number too short", POL_GB, "phone:123"),
	BADP("phone national number too long", POL_GB, "phone:0770090012345678901"),
	BADP("phone national number: prefix 00 to a code that does not exist", POL_GB,
	    "phone:00 999 1234 5678"),
	BADP("phone national number with letters", POL_GB, "phone:0800 FLOWERS"),
	BAD("phone extension 'ext'", "phone:+44 20 7946 0958 ext 12"),
	BAD("phone extension 'x'", "phone:+44 20 7946 0958 x12"),
	BAD("phone extension ';ext='", "phone:+442079460958;ext=12"),
	BAD("phone extension '#'", "phone:+442079460958#12"),
	BAD("phone extension after a comma", "phone:+442079460958,12"),
	BAD("phone full-width digits", "phone:+\xef\xbc\x94\xef\xbc\x94 20 7946 0958"),
	BAD("phone Arabic-Indic digits", "phone:+\xd9\xa4\xd9\xa4 20 7946 0958"),
	BAD("phone slash", "phone:+44/20/7946/0958"),
	BADFILL("phone 65 characters", "phone:+44", " ", 52, "2079460958"),
	BADFILL("phone 40 digits", "phone:+44", "1", 37, ""),
	BADFILL("phone 250 characters", "phone:+44", "0", 247, ""),

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
	OKFILL("device exactly 128 bytes", "device:", "d", 128, "", "device", "", ""),

	/* ---- device / loyalty / customer: refused ---- */
	BAD("device empty value", "device:"),
	BAD("device leading space", "device: abc123"),
	BAD("device trailing space", "device:abc123 "),
	BAD("device leading tab", "device:\tabc123"),
	BAD("device trailing tab", "device:abc123\t"),
	BAD("loyalty trailing space", "loyalty:LC0042 "),
	BAD("customer leading space", "customer: C17"),
	BADFILL("device 129 bytes", "device:", "d", 129, ""),
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
	BADFILL("type longer than 64 bytes", "", "t", 65, ":value"),
	BAD("policy type without policy", "giftcard:ABC"),
	OKPOL("policy-added type", "giftcard:ABC", "giftcard", "ABC"),
	OKPOL("policy-added type kept exactly", "giftcard:Gc 00-7x",
	    "giftcard", "Gc 00-7x"),
	OKPOL("built-in type still works with a policy",
	    "email:Ana@Example.com", "email", "ana@example.com"),
	BADP("policy-added type leading space refused", POL_TYPES, "giftcard: ABC"),
	BADP("unknown type refused with a policy", POL_TYPES, "voucher:ABC"),
};

/* ---- helpers ------------------------------------------------------------- */

static const char *giftcard_types[] = { "giftcard" };

/*
 * Fills POL (a caller's stack variable) for WHICH: the added types, and the
 * default phone region, set directly as loading a policy would set it.
 * Returns POL, or NULL for POL_NONE.
 */
static const struct cm_policy *
init_policy(struct cm_policy *pol, enum id_pol which)
{
	memset(pol, 0, sizeof(*pol));
	pol->pol_id_types = giftcard_types;
	pol->pol_nid_types = CM_NELEM(giftcard_types);
	if (which == POL_GB)
		pol->pol_phone_region = "GB";
	else if (which == POL_XX)
		pol->pol_phone_region = "XX";
	return which == POL_NONE ? NULL : pol;
}

/* Writes PRE (PRELEN bytes), K copies of FILL and POST into BUF; the length. */
static size_t
build(char *buf, size_t buflen, const char *pre, size_t prelen, const char *fill, size_t k,
    const char *post)
{
	size_t i, n, flen = strlen(fill), plen = strlen(post);

	assert_true(prelen + k * flen + plen < buflen);
	memcpy(buf, pre, prelen);
	n = prelen;
	for (i = 0; i < k; i++, n += flen)
		memcpy(buf + n, fill, flen);
	memcpy(buf + n, post, plen);
	n += plen;
	buf[n] = '\0';
	return n;
}

/* Writes C's input into BUF and returns its length (NULs included). */
static size_t
build_input(const struct id_case *c, char *buf, size_t buflen)
{
	return build(buf, buflen, c->in, c->inlen, c->fill, c->nfill, c->post);
}

/* Writes C's expected value into BUF. */
static void
build_want(const struct id_case *c, char *buf, size_t buflen)
{
	build(buf, buflen, c->want, strlen(c->want), c->wfill != NULL ? c->wfill : c->fill,
	    c->nfill, c->wpost);
}

/* ---- the table test ------------------------------------------------------ */

static void
test_parse_case(void **state)
{
	const struct id_case *c = *state;
	struct cm_policy pol;
	const struct cm_policy *pp = init_policy(&pol, c->pol);
	struct cm_identifier id;
	char in[2048], want[512], text[600], why[256];
	const char *colon, *value;
	size_t len;
	cm_result rc;

	len = build_input(c, in, sizeof(in));
	memset(&id, 0x5a, sizeof(id));
	memset(why, 0, sizeof(why));
	rc = cm_identifier_parse(in, len, pp, &id, why, sizeof(why));

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
	init_policy(&pol, POL_TYPES);
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

/* ---- ASCII values as they were ----------------------------------------- */

/*
 * Inputs and the values cm_identifier_parse gave them before Unicode
 * normalisation and libphonenumber (NULL: refused then and now). Stores
 * hold blind indexes of these values, so none may move. Among them are
 * domains IDNA would refuse or change ("ab--cd", "-example", "foo_bar"):
 * an ASCII address without an "xn--" label is only lower-cased, as before.
 */
static const struct {
	const char	*in;
	const char	*want;
} ascii_before[] = {
	{ "email:ana@example.com", "ana@example.com" },
	{ "email:Ana.Silva@Example.COM", "ana.silva@example.com" },
	{ "email:  BOB+News@Mail.Example.ORG\t", "bob+news@mail.example.org" },
	{ "email:O'Brien@Example.IE", "o'brien@example.ie" },
	{ "email:First.Last-1@Sub-Domain.Example.co.UK", "first.last-1@sub-domain.example.co.uk" },
	{ "email:user%relay@example.com", "user%relay@example.com" },
	{ "email:A_B@Foo_Bar.Example", "a_b@foo_bar.example" },
	{ "email:Info@AB--CD.example", "info@ab--cd.example" },
	{ "email:x@-example.com", "x@-example.com" },
	{ "email:x@example-.com", "x@example-.com" },
	{ "email:MiXeD@123.45.67.89", "mixed@123.45.67.89" },
	{ "email:a@b.c", "a@b.c" },
	{ "email:Tag+X@EXAMPLE.travel", "tag+x@example.travel" },
	{ "email:{x}|~!#$%^&*=?`@example.com", "{x}|~!#$%^&*=?`@example.com" },
	{ "email:XN--ab@example.com", "xn--ab@example.com" },
	{ "email:ana@xnn--ab.example", "ana@xnn--ab.example" },
	{ "email:ana@axn--b.example", "ana@axn--b.example" },
	{ "email:ana@sub.xn-example.com", "ana@sub.xn-example.com" },
	{ "email:ana@x-n--b.example", "ana@x-n--b.example" },
	{ "email:ana@(x).example", "ana@(x).example" },
	{ "email:.ana@example.com", ".ana@example.com" },
	{ "email:ana.@example.com", "ana.@example.com" },
	{ "email:a.b..c@example.com", NULL },
	{ "email:ana@localhost", NULL },
	{ "email:ana@@example.com", NULL },
	{ "email:ana@exa mple.com", NULL },
	{ "phone:+44 20 7946 0958", "+442079460958" },
	{ "phone:+1 (415) 555-0132", "+14155550132" },
	{ "phone:+49.30.1234567", "+49301234567" },
	{ "phone:+33 (0)1 23 45 67 89", "+33123456789" },
	{ "phone:+44 7700 900123", "+447700900123" },
	{ "phone:+447700900123", "+447700900123" },
	{ "phone:+353 1 234 5678", "+35312345678" },
	{ "phone:+61 2 9876 5432", "+61298765432" },
	{ "phone:+81 3-1234-5678", "+81312345678" },
	{ "phone:+86 10 1234 5678", "+861012345678" },
	{ "phone:+7 495 123-45-67", "+74951234567" },
	{ "phone:+55 11 91234 5678", "+5511912345678" },
	{ "phone:+39 06 1234 5678", "+390612345678" },
	{ "phone:+27 21 123 4567", "+27211234567" },
	{ "phone:+971 4 123 4567", "+97141234567" },
	{ "phone:+12345678", "+12345678" },
	{ "phone:+123456789012345", "+123456789012345" },
	{ "phone:(+44) 20 7946 0958", "+442079460958" },
	{ "phone:+1-800-555-0199", "+18005550199" },
	{ "phone:+800 1234 5678", "+80012345678" },
};

static void
test_ascii_as_before(void **state)
{
	struct cm_identifier id;
	char why[256];
	size_t i;
	cm_result rc;

	(void)state;
	for (i = 0; i < CM_NELEM(ascii_before); i++) {
		const char *in = ascii_before[i].in, *want = ascii_before[i].want;

		rc = cm_identifier_parse(in, strlen(in), NULL, &id, why, sizeof(why));
		if (want == NULL && rc == CM_OK)
			fail_msg("%s: now accepted as %s", in, id.id_value);
		if (want != NULL && rc != CM_OK)
			fail_msg("%s: now refused: %s", in, why);
		if (want != NULL && strcmp(id.id_value, want) != 0)
			fail_msg("%s: was %s, now %s", in, want, id.id_value);
	}
}

/* ---- one person, one blind index ---------------------------------------- */

/* Parses every one of IN (N inputs) with POL and checks they give WANT and one blind index. */
static void
check_one_person(const char *const *in, size_t n, const struct cm_policy *pol,
    const char *want, const char *other)
{
	struct cm_keys keys;
	struct cm_identifier id;
	uint8_t first[32], bi[32];
	char why[256];
	size_t i;

	memset(&keys, 0x42, sizeof(keys));
	for (i = 0; i < n; i++) {
		if (cm_identifier_parse(in[i], strlen(in[i]), pol, &id, why, sizeof(why)) != CM_OK)
			fail_msg("%s: refused: %s", in[i], why);
		if (strcmp(id.id_value, want) != 0)
			fail_msg("%s: %s, not %s", in[i], id.id_value, want);
		cm_blind_index(&keys, id.id_type, id.id_value, i == 0 ? first : bi);
		if (i > 0 && memcmp(first, bi, sizeof(bi)) != 0)
			fail_msg("%s: another blind index than %s", in[i], in[0]);
	}
	/* A different person is still told apart. */
	assert_int_equal(cm_identifier_parse(other, strlen(other), pol, &id, why,
	    sizeof(why)), CM_OK);
	cm_blind_index(&keys, id.id_type, id.id_value, bi);
	assert_memory_not_equal(first, bi, sizeof(bi));
}

static void
test_one_person_one_blind_index(void **state)
{
	static const char *const emails[] = {
		"email:JOS\xc3\x89@B\xc3\x9c" "CHER.EXAMPLE",
		"email:jos\xc3\xa9@b\xc3\xbc" "cher.example",
		"email:jos\xc3\xa9@xn--bcher-kva.example",
		"email:JOSE\xcc\x81@BU\xcc\x88" "CHER.EXAMPLE",
		"email:  Jos\xc3\xa9@XN--BCHER-KVA.example\t",
		"email:jos\xc3\xa9@b\xc3\xbc" "cher\xe3\x80\x82" "example",
	};
	static const char *const phones[] = {
		"phone:+44 7700 900123",
		"phone:+44 (0)7700 900123",
		"phone:+44 07700 900123",
		"phone:07700 900123",
		"phone:0044 7700 900123",
	};
	struct cm_policy pol;
	const struct cm_policy *gb = init_policy(&pol, POL_GB);

	(void)state;
	assert_int_equal(cm_crypto_init(), 0);
	check_one_person(emails, CM_NELEM(emails), NULL, "jos\xc3\xa9@b\xc3\xbc" "cher.example",
	    "email:jose@bucher.example");
	check_one_person(phones, CM_NELEM(phones), gb, "+447700900123", "phone:+447700900124");
}

/* ---- idempotence ---------------------------------------------------------- */

/* Parses IN with POL and checks that its normalised text parses to itself. */
static void
check_idempotent(const char *in, size_t len, const struct cm_policy *pol)
{
	struct cm_identifier a, b;
	char why[256];

	if (cm_identifier_parse(in, len, pol, &a, why, sizeof(why)) != CM_OK)
		return;
	if (cm_identifier_parse(a.id_text, strlen(a.id_text), pol, &b, why, sizeof(why)) != CM_OK)
		fail_msg("%s: its normalised form is refused: %s", a.id_text, why);
	if (strcmp(a.id_text, b.id_text) != 0)
		fail_msg("%s: normalised again it is %s", a.id_text, b.id_text);
}

static void
test_idempotent(void **state)
{
	struct cm_policy pol;
	char in[2048];
	size_t i, len;

	(void)state;
	for (i = 0; i < CM_NELEM(cases); i++) {
		len = build_input(&cases[i], in, sizeof(in));
		check_idempotent(in, len, init_policy(&pol, cases[i].pol));
	}
	for (i = 0; i < CM_NELEM(ascii_before); i++)
		check_idempotent(ascii_before[i].in, strlen(ascii_before[i].in), NULL);
}

/* ---- reasons -------------------------------------------------------------- */

/* Parses IN with POL, expecting a refusal whose reason contains NEEDLE. */
static void
check_reason(const char *in, const struct cm_policy *pol, const char *needle)
{
	struct cm_identifier id;
	char why[160];

	if (cm_identifier_parse(in, strlen(in), pol, &id, why, sizeof(why)) != CM_INVALID)
		fail_msg("%s: not refused", in);
	if (strstr(why, needle) == NULL)
		fail_msg("%s: the reason \"%s\" does not say \"%s\"", in, why, needle);
}

static void
test_reasons(void **state)
{
	struct cm_policy types, gb, xx;

	(void)state;
	init_policy(&types, POL_TYPES);
	init_policy(&gb, POL_GB);
	init_policy(&xx, POL_XX);
	check_reason("phone:+999 1234 5678", NULL, "country calling code");
	check_reason("phone:07700 900123", NULL, "default_phone_region");
	check_reason("phone:07700 900123", &types, "default_phone_region");
	check_reason("phone:07700 900123", &xx, "default_phone_region is not");
	check_reason("phone:+44 20 7946 0958 ext 12", &gb, "only '+', digits");
	check_reason("phone:0800 FLOWERS", &gb, "only '+', digits");
	check_reason("email:ana@\xe2\x98\x83.example", NULL, "internationalised domain name");
	check_reason("email:ana@b\xc3\xbc" "cher_x.example", NULL, "letters, digits, hyphens");
	check_reason("email:ana\xc2\xa0silva@example.com", NULL, "no spaces");
}

int
main(void)
{
	enum { NCASES = CM_NELEM(cases) };
	struct CMUnitTest tests[NCASES + 7];
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
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(test_ascii_as_before);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(test_one_person_one_blind_index);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(test_idempotent);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(test_reasons);
	return _cmocka_run_group_tests("identifier", tests, i, NULL, NULL);
}
