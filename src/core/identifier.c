/*
 * Identifier parsing and normalisation (SPEC §5). Values are checked to
 * be valid UTF-8 without control characters. Email: surrounding white
 * space trimmed, lower-cased, one '@' with a non-empty local part and a
 * dotted domain. Phone: spaces, dots, dashes and brackets removed (and a
 * "(0)" trunk prefix after the country code dropped), then "+" and 8-15
 * digits (E.164). Other types are kept exactly, and refused
 * when they start or end with white space, which is nearly always a
 * copy-and-paste slip that would otherwise split one person in two.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "consentd/identifier.h"
#include "consentd/policy.h"

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

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static cm_result
norm_email(const char *v, size_t len, char *out, char *why, size_t whylen)
{
	const char *at;
	size_t i, o = 0, local, dots = 0;

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
	if (len > CM_ID_VALUE_MAX) {
		snprintf(why, whylen, "an email address is at most %d bytes", CM_ID_VALUE_MAX);
		return CM_INVALID;
	}
	if ((at = memchr(v, '@', len)) == NULL || memchr(at + 1, '@', len - (size_t)(at - v) - 1)) {
		snprintf(why, whylen, "an email address has exactly one '@'");
		return CM_INVALID;
	}
	local = (size_t)(at - v);
	if (local == 0 || local > 64 || local + 1 == len) {
		snprintf(why, whylen, "an email address needs a local part (at most 64 "
		    "bytes) and a domain");
		return CM_INVALID;
	}
	for (i = 0; i < len; i++) {
		char c = v[i];

		if (is_space(c) || c == '<' || c == '>' || c == ',' || c == ';' || c == '"') {
			snprintf(why, whylen, "an email address has no spaces, quotes, "
			    "commas or angle brackets");
			return CM_INVALID;
		}
		if (i > local && c == '.')
			dots++;
		out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[o] = '\0';
	if (dots == 0 || v[local + 1] == '.' || v[len - 1] == '.' || strstr(out, "..")) {
		snprintf(why, whylen, "the domain of an email address is a dotted name");
		return CM_INVALID;
	}
	return CM_OK;
}

static cm_result
norm_phone(const char *v, size_t len, char *out, char *why, size_t whylen)
{
	size_t i, o = 0, digits = 0;
	bool plus = false;

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
			out[o++] = c;
			continue;
		}
		if (c < '0' || c > '9') {
			snprintf(why, whylen, "a phone number holds only '+', digits, "
			    "spaces, dots, dashes and brackets");
			return CM_INVALID;
		}
		if (++digits > 15)
			break;
		out[o++] = c;
	}
	out[o] = '\0';
	if (!plus || digits < 8 || digits > 15 || out[1] == '0') {
		snprintf(why, whylen, "a phone number is '+' and 8-15 digits with the "
		    "country code (E.164)");
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
		if (vlen > 64) {
			snprintf(why, whylen, "a phone number is at most 64 characters");
			return CM_INVALID;
		}
		rc = norm_phone(v, vlen, out->id_value, why, whylen);
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
