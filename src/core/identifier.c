/* SPDX-License-Identifier: ISC */
/*
 * Identifier parsing and normalisation (SPEC §5), so that one person's
 * identifier has one form however it was typed: the blind index is
 * computed over that form. Values are checked to be valid UTF-8 without
 * control characters.
 *
 * Email: surrounding white space trimmed, one '@', a local part of at most
 * 64 bytes and a dotted domain, at most 254 bytes, no spaces, quotes,
 * commas or angle brackets. An all-ASCII address without an "xn--" domain
 * label is only lower-cased (the common case, and the form stores already
 * hold). Otherwise a non-ASCII local part becomes the NFC of its full,
 * language-independent Unicode case folding (libunistring), and a domain
 * with a non-ASCII character or an "xn--" label goes through IDNA
 * (libidn2: UTS #46 non-transitional, which also lower-cases) to its
 * A-label and back to the Unicode U-label, the form people read in
 * exports. The limits apply to the result.
 *
 * Phone: only '+', digits, spaces, dots, dashes and brackets, checked here;
 * separators and a "(0)" trunk prefix after the country code removed; then
 * libphonenumber (through phone.cc) refuses a country calling code that
 * does not exist, reads a national number in the policy's default phone
 * region (none: refused), and writes E.164, which must be '+' and 8-15
 * digits. Other types are kept exactly, and refused when they start or end
 * with white space, which is nearly always a copy-and-paste slip that
 * would otherwise split one person in two.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "consentd/identifier.h"
#include "consentd/policy.h"
#include "phone.h"

static const char *const builtin_types[] = {
	"email", "phone", "device", "loyalty", "customer"
};

int
cm_identifier_type_known(const char *type, const struct cm_policy *p)
{
	size_t i;

	for (i = 0; i < CM_NELEM(builtin_types); i++)
		if (strcmp(type, builtin_types[i]) == 0)
			return 1;
	if (p != NULL)
		for (i = 0; i < p->pol_nid_types; i++)
			if (strcmp(type, p->pol_id_types[i]) == 0)
				return 1;
	return 0;
}

/* True when S (LEN bytes) is well-formed UTF-8 without control characters. */
static bool
utf8_clean(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	unsigned cp;

	while (i < len) {
		if (s[i] < 0x80) {
			if (s[i] < 0x20 || s[i] == 0x7f)
				return false;
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			n = 3;
			cp = s[i] & 0x07;
		} else {
			return false;
		}
		for (k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
			return false;
		i += n + 1;
	}
	return true;
}

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* ---- email ---------------------------------------------------------------- */

#define EMAIL_LOCAL_MAX	64
/*
 * A value longer than this is refused before any Unicode work. NFD, A-label
 * and compatibility spellings can be longer than their canonical form (the
 * limits apply to that), but not four times longer.
 */
#define EMAIL_RAW_MAX	(4 * CM_ID_VALUE_MAX)

static const char email_err_chars[] =
    "an email address has no spaces, quotes, commas or angle brackets";
static const char email_err_parts[] =
    "an email address needs a local part (at most 64 bytes) and a domain";
static const char email_err_domain[] =
    "the domain of an email address is a dotted name";

static inline bool
email_bad_char(char c)
{
	return is_space(c) || c == '<' || c == '>' || c == ',' || c == ';' || c == '"';
}

static bool
ascii_only(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* Copies S (LEN bytes of ASCII) into OUT lower-cased. */
static void
ascii_lower(char *out, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
}

/*
 * Whether the domain D (LEN bytes) is plain ASCII with no "xn--" label, so
 * that lower-casing is all IDNA would do to a name it accepts.
 */
static bool
email_domain_plain(const char *d, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)d[i] >= 0x80)
			return false;
		if ((i == 0 || d[i - 1] == '.') && i + 4 <= len && (d[i] | 0x20) == 'x' &&
		    (d[i + 1] | 0x20) == 'n' && d[i + 2] == '-' && d[i + 3] == '-')
			return false;
	}
	return true;
}

/*
 * Checks the shape of S (LEN bytes and a NUL), an address already in
 * canonical form: at most 254 bytes, exactly one '@', a local part of 1-64
 * bytes, no white space (ASCII, or Unicode in the local part), quotes,
 * commas, semicolons or angle brackets, no "..", and a dotted domain that
 * neither starts nor ends with a dot.
 */
static cm_result
email_shape(const char *s, size_t len, char *why, size_t whylen)
{
	const char *at;
	size_t i, local, dots = 0;
	ucs4_t uc;
	int n;

	if (len > CM_ID_VALUE_MAX) {
		snprintf(why, whylen, "an email address is at most %d bytes", CM_ID_VALUE_MAX);
		return CM_INVALID;
	}
	if ((at = memchr(s, '@', len)) == NULL || memchr(at + 1, '@', len - (size_t)(at - s) - 1)) {
		snprintf(why, whylen, "an email address has exactly one '@'");
		return CM_INVALID;
	}
	local = (size_t)(at - s);
	if (local == 0 || local > EMAIL_LOCAL_MAX || local + 1 == len) {
		snprintf(why, whylen, "%s", email_err_parts);
		return CM_INVALID;
	}
	for (i = 0; i < len; i++) {
		if (email_bad_char(s[i])) {
			snprintf(why, whylen, "%s", email_err_chars);
			return CM_INVALID;
		}
		if (i > local && s[i] == '.')
			dots++;
	}
	/* Unicode white space; only a non-ASCII local part has such bytes. */
	for (i = 0; i < local; i += (size_t)n) {
		n = 1;
		if ((unsigned char)s[i] < 0x80)
			continue;
		n = u8_mbtouc(&uc, (const uint8_t *)s + i, local - i);
		if (uc_is_property_white_space(uc)) {
			snprintf(why, whylen, "%s", email_err_chars);
			return CM_INVALID;
		}
	}
	if (dots == 0 || s[local + 1] == '.' || s[len - 1] == '.' || strstr(s, "..") != NULL) {
		snprintf(why, whylen, "%s", email_err_domain);
		return CM_INVALID;
	}
	return CM_OK;
}

/*
 * The canonical local part of a non-ASCII address: NFC of the full,
 * language-independent case folding (so ß is "ss", İ is "i" + U+0307 and
 * dotless ı stays itself), written into OUT (OUTLEN bytes). Sets *LEN.
 */
static cm_result
email_local_fold(const char *s, size_t slen, char *out, size_t outlen, size_t *len,
    char *why, size_t whylen)
{
	uint8_t *r;
	size_t n = outlen;
	cm_result rc = CM_OK;

	r = u8_casefold((const uint8_t *)s, slen, NULL, UNINORM_NFC, (uint8_t *)out, &n);
	if (r == NULL) {
		snprintf(why, whylen, "out of memory while reading an email address");
		rc = CM_NOMEM;
		goto out;
	}
	if (r != (uint8_t *)out || n > EMAIL_LOCAL_MAX) {
		snprintf(why, whylen, "%s", email_err_parts);
		rc = CM_INVALID;
		goto out;
	}
	*len = n;
out:
	if (r != NULL && r != (uint8_t *)out)
		free(r);
	return rc;
}

/*
 * The canonical domain of an address whose domain is not plain ASCII (or
 * has an "xn--" label): UTS #46 non-transitional processing by libidn2 to
 * the A-label form, which must be letters, digits, hyphens and dots (a
 * host name; libidn2's own STD3 flag deletes such characters instead of
 * refusing them), then that A-label back to its lower-case Unicode
 * U-label form, written into OUT (OUTLEN bytes). Sets *LEN.
 */
static cm_result
email_domain_idna(const char *d, size_t dlen, char *out, size_t outlen, size_t *len,
    char *why, size_t whylen)
{
	char in[EMAIL_RAW_MAX + 1], *alabel = NULL, *ulabel = NULL, *again = NULL;
	size_t i, n;
	int irc;
	cm_result rc = CM_INVALID;

	memcpy(in, d, dlen);
	in[dlen] = '\0';
	irc = idn2_lookup_u8((const uint8_t *)in, (uint8_t **)&alabel,
	    IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
	if (irc == IDN2_OK)
		irc = idn2_to_unicode_8z8z(alabel, &ulabel, 0);
	if (irc == IDN2_MALLOC) {
		snprintf(why, whylen, "out of memory while reading an email address");
		rc = CM_NOMEM;
		goto out;
	}
	if (irc != IDN2_OK) {
		snprintf(why, whylen, "the domain of an email address is not a valid "
		    "internationalised domain name (%s)", idn2_strerror(irc));
		goto out;
	}
	for (i = 0; alabel[i] != '\0'; i++) {
		char c = alabel[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
			snprintf(why, whylen, "the domain of an email address holds only "
			    "letters, digits, hyphens and dots");
			goto out;
		}
	}
	/*
	 * The U-label must lead back to the same A-label: an "xn--" label
	 * whose Punycode decodes to what IDNA2008 disallows (a spacing
	 * diaeresis, say) decodes without complaint, but is no domain, and
	 * its U-label would not read back as an address.
	 */
	irc = idn2_lookup_u8((const uint8_t *)ulabel, (uint8_t **)&again,
	    IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
	if (irc != IDN2_OK || strcmp(again, alabel) != 0) {
		snprintf(why, whylen, "the domain of an email address is not a valid "
		    "internationalised domain name (its A-label does not read back)");
		goto out;
	}
	if ((n = strlen(ulabel)) >= outlen) {
		snprintf(why, whylen, "an email address is at most %d bytes", CM_ID_VALUE_MAX);
		goto out;
	}
	memcpy(out, ulabel, n + 1);
	*len = n;
	rc = CM_OK;
out:
	idn2_free(alabel);
	idn2_free(ulabel);
	idn2_free(again);
	return rc;
}

/*
 * An address with a non-ASCII part or an "xn--" domain label, V (LEN
 * bytes, trimmed, valid UTF-8). Each part is canonicalised on its own
 * (an ASCII local part is lower-cased, a plain ASCII domain lower-cased, as
 * in an ASCII address), then the whole is checked by email_shape, since
 * normalisation can turn other characters into ASCII punctuation.
 */
static cm_result
email_unicode(const char *v, size_t len, char *out, char *why, size_t whylen)
{
	const char *at, *d;
	size_t i, local, dlen, n, o;
	cm_result rc;

	if (len > EMAIL_RAW_MAX) {
		snprintf(why, whylen, "an email address is at most %d bytes", CM_ID_VALUE_MAX);
		return CM_INVALID;
	}
	if ((at = memchr(v, '@', len)) == NULL || memchr(at + 1, '@', len - (size_t)(at - v) - 1)) {
		snprintf(why, whylen, "an email address has exactly one '@'");
		return CM_INVALID;
	}
	local = (size_t)(at - v);
	d = at + 1;
	dlen = len - local - 1;
	if (local == 0 || dlen == 0) {
		snprintf(why, whylen, "%s", email_err_parts);
		return CM_INVALID;
	}
	for (i = 0; i < len; i++)
		if (email_bad_char(v[i])) {
			snprintf(why, whylen, "%s", email_err_chars);
			return CM_INVALID;
		}

	if (ascii_only(v, local)) {
		if (local > EMAIL_LOCAL_MAX) {
			snprintf(why, whylen, "%s", email_err_parts);
			return CM_INVALID;
		}
		ascii_lower(out, v, local);
		o = local;
	} else if ((rc = email_local_fold(v, local, out, CM_ID_VALUE_MAX, &o, why,
	    whylen)) != CM_OK) {
		return rc;
	}
	out[o++] = '@';
	if (email_domain_plain(d, dlen)) {
		if (o + dlen > CM_ID_VALUE_MAX) {
			snprintf(why, whylen, "an email address is at most %d bytes",
			    CM_ID_VALUE_MAX);
			return CM_INVALID;
		}
		ascii_lower(out + o, d, dlen);
		n = dlen;
	} else if ((rc = email_domain_idna(d, dlen, out + o, CM_ID_VALUE_MAX + 1 - o, &n,
	    why, whylen)) != CM_OK) {
		return rc;
	}
	o += n;
	out[o] = '\0';
	return email_shape(out, o, why, whylen);
}

/*
 * Normalises the email address V (LEN bytes, valid UTF-8) into OUT
 * (CM_ID_VALUE_MAX + 1 bytes). An all-ASCII address without an "xn--"
 * domain label (nearly every address, on every check) is only
 * lower-cased, without calling a library: its form, and so its blind
 * index, is what it has always been.
 */
static cm_result
norm_email(const char *v, size_t len, char *out, char *why, size_t whylen)
{
	const char *at;

	while (len > 0 && is_space(*v)) {
		v++;
		len--;
	}
	while (len > 0 && is_space(v[len - 1]))
		len--;
	if (len == 0) {
		snprintf(why, whylen, "the email address is empty");
		return CM_INVALID;
	}
	if ((at = memchr(v, '@', len)) == NULL)
		at = v + len;
	if (!ascii_only(v, (size_t)(at - v)) ||
	    (at < v + len && !email_domain_plain(at + 1, len - (size_t)(at - v) - 1)))
		return email_unicode(v, len, out, why, whylen);
	if (len > CM_ID_VALUE_MAX) {
		snprintf(why, whylen, "an email address is at most %d bytes", CM_ID_VALUE_MAX);
		return CM_INVALID;
	}
	ascii_lower(out, v, len);
	out[len] = '\0';
	return email_shape(out, len, why, whylen);
}

/* ---- phone ---------------------------------------------------------------- */

#define PHONE_INPUT_MAX	64

static const char phone_err_e164[] =
    "a phone number is '+' and 8-15 digits with the country code (E.164)";

/*
 * Normalises the phone number V (LEN bytes) into OUT (CM_ID_VALUE_MAX + 1
 * bytes). The characters are checked here, before libphonenumber sees
 * anything: only '+', digits, spaces, dots, dashes and brackets. A number
 * with '+' must then have 8-15 digits; one without is a national number,
 * read in the policy's default phone region (refused when there is none).
 * libphonenumber checks the country calling code and writes E.164.
 */
static cm_result
norm_phone(const char *v, size_t len, const struct cm_policy *p, char *out, char *why,
    size_t whylen)
{
	char num[PHONE_INPUT_MAX + 1];
	const char *region = p != NULL ? p->pol_phone_region : NULL;
	size_t i, o = 0, digits = 0;
	bool plus = false;
	cm_result rc;

	if (len > PHONE_INPUT_MAX) {
		snprintf(why, whylen, "a phone number is at most %d characters", PHONE_INPUT_MAX);
		return CM_INVALID;
	}
	for (i = 0; i < len; i++) {
		char c = v[i];

		/*
		 * "+44 (0)20 …": the bracketed trunk prefix is dialled only at
		 * home and is not part of the E.164 number.
		 */
		if (c == '(' && i + 2 < len && v[i + 1] == '0' && v[i + 2] == ')' &&
		    plus && digits > 0) {
			i += 2;
			continue;
		}
		if (c == ' ' || c == '.' || c == '-' || c == '(' || c == ')')
			continue;
		if (c == '+' && o == 0 && !plus) {
			plus = true;
			num[o++] = c;
			continue;
		}
		if (c < '0' || c > '9') {
			snprintf(why, whylen, "a phone number holds only '+', digits, "
			    "spaces, dots, dashes and brackets");
			return CM_INVALID;
		}
		digits++;
		num[o++] = c;
	}
	num[o] = '\0';
	if (digits == 0 || (plus && (digits < 8 || digits > 15 || num[1] == '0'))) {
		snprintf(why, whylen, "%s", phone_err_e164);
		return CM_INVALID;
	}
	if (!plus && region == NULL) {
		snprintf(why, whylen, "%s; a national number needs the policy's "
		    "default_phone_region", phone_err_e164);
		return CM_INVALID;
	}
	switch ((rc = cm_phone_e164(num, plus ? NULL : region, out, CM_ID_VALUE_MAX + 1))) {
	case CM_OK:
		break;
	case CM_NOTFOUND:
		if (!plus && !cm_phone_region_known(region))
			snprintf(why, whylen, "the policy's default_phone_region is not a "
			    "region phone numbers can be read in");
		else
			snprintf(why, whylen, "the country calling code of the phone number "
			    "does not exist");
		return CM_INVALID;
	case CM_NOMEM:
		snprintf(why, whylen, "out of memory while reading a phone number");
		return rc;
	case CM_INVALID:
		snprintf(why, whylen, "%s", phone_err_e164);
		return rc;
	default:
		snprintf(why, whylen, "internal failure while reading a phone number");
		return CM_IOERR;
	}
	/* What libphonenumber wrote must still be E.164 by our rules. */
	for (i = 1; out[0] == '+' && out[i] >= '0' && out[i] <= '9'; i++)
		;
	if (out[0] != '+' || out[i] != '\0' || i - 1 < 8 || i - 1 > 15 || out[1] == '0') {
		out[0] = '\0';
		snprintf(why, whylen, "%s", phone_err_e164);
		return CM_INVALID;
	}
	return CM_OK;
}

cm_result
cm_identifier_parse(const char *text, size_t len, const struct cm_policy *p,
    struct cm_identifier *out, char *why, size_t whylen)
{
	const char *colon, *v;
	size_t tlen, vlen;
	cm_result rc;

	memset(out, 0, sizeof(*out));
	if (memchr(text, '\0', len) != NULL) {
		snprintf(why, whylen, "an identifier holds no NUL character");
		return CM_INVALID;
	}
	if ((colon = memchr(text, ':', len)) == NULL) {
		snprintf(why, whylen, "an identifier is written type:value (e.g. email:…)");
		return CM_INVALID;
	}
	tlen = (size_t)(colon - text);
	if (tlen == 0 || tlen > CM_ID_TYPE_MAX) {
		snprintf(why, whylen, "the identifier type is missing");
		return CM_INVALID;
	}
	memcpy(out->id_type, text, tlen);
	out->id_type[tlen] = '\0';
	if (!cm_identifier_type_known(out->id_type, p)) {
		snprintf(why, whylen, "unknown identifier type (known: email, phone, device, "
		    "loyalty, customer%s)", p != NULL && p->pol_nid_types ? " and the policy's" : "");
		return CM_INVALID;
	}
	v = colon + 1;
	vlen = len - tlen - 1;
	if (strcmp(out->id_type, "email") == 0) {
		/* Trimmed before the checks, so surrounding tabs are not "control". */
		while (vlen > 0 && is_space(*v)) {
			v++;
			vlen--;
		}
		while (vlen > 0 && is_space(v[vlen - 1]))
			vlen--;
	}
	if (!utf8_clean((const unsigned char *)v, vlen)) {
		snprintf(why, whylen, "the value must be UTF-8 text without control characters");
		return CM_INVALID;
	}
	if (strcmp(out->id_type, "email") == 0) {
		rc = norm_email(v, vlen, out->id_value, why, whylen);
	} else if (strcmp(out->id_type, "phone") == 0) {
		rc = norm_phone(v, vlen, p, out->id_value, why, whylen);
	} else {
		if (vlen == 0) {
			snprintf(why, whylen, "the identifier value is empty");
			return CM_INVALID;
		}
		if (vlen > 128) {
			snprintf(why, whylen, "a %s identifier is at most 128 bytes", out->id_type);
			return CM_INVALID;
		}
		if (is_space(v[0]) || is_space(v[vlen - 1])) {
			snprintf(why, whylen, "a %s identifier is kept exactly, so it may not "
			    "start or end with a space", out->id_type);
			return CM_INVALID;
		}
		memcpy(out->id_value, v, vlen);
		out->id_value[vlen] = '\0';
		rc = CM_OK;
	}
	if (rc != CM_OK)
		return rc;
	snprintf(out->id_text, sizeof(out->id_text), "%s:%s", out->id_type, out->id_value);
	return CM_OK;
}
