/* SPDX-License-Identifier: ISC */
/*
 * Whether an audit entry's bytes are the canonical JSON of what they
 * parse to (compact, keys sorted, jansson's escapes), which SPEC §9 asks
 * of every entry so that any verifier hashes the same bytes. A one-pass
 * scan settles almost every entry; what it cannot settle (escapes it does
 * not judge, numbers, deep nesting) is compared with jansson's own dump.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/audit.h"
#include "entry_fields.h"

/* Objects and arrays nested deeper than this are left to the dump. */
#define CANON_DEPTH	32

enum canon {
	CANON_NO,
	CANON_YES,
	CANON_DUMP	/* not settled by the scan: compare with the dump */
};

/*
 * Whether the 4 characters after "\u" are an escape jansson writes: it
 * escapes as \u00XX (upper-case hex) only the control characters that
 * have no short form. \u0000 never parses.
 */
static bool
canon_u_escape(const uint8_t *h)
{
	unsigned c;

	if (h[0] != '0' || h[1] != '0' || (h[2] != '0' && h[2] != '1'))
		return false;
	if (h[3] >= '0' && h[3] <= '9')
		c = (unsigned)(h[3] - '0');
	else if (h[3] >= 'A' && h[3] <= 'F')
		c = (unsigned)(h[3] - 'A' + 10);
	else
		return false;
	c += h[2] == '1' ? 16 : 0;
	return c != 0 && c != '\b' && c != '\t' && c != '\n' && c != '\f' &&
	    c != '\r';
}

/* jansson's key order: bytes as unsigned, a prefix before what extends it. */
static int
canon_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c;

	c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/*
 * One pass over bytes jansson has parsed (so they are valid JSON, with no
 * duplicate key) that settles, in nearly every case, whether they are what
 * jansson's compact, sorted dump of them would be. Given valid JSON they
 * are exactly when: there is no white space between tokens; each object's
 * keys are in strictly increasing order; strings escape only '"', '\\'
 * and control characters, with the short form when there is one and
 * \u00XX otherwise, and hold everything else as is (the parser has
 * checked the UTF-8); integers are as printf prints them, which valid JSON
 * ensures but for "-0". Reals (jansson prints doubles its own way), keys
 * holding an escape (sorted by their decoded bytes) and deep nesting are
 * rare enough to be left to the dump.
 */
static enum canon
canon_scan(const uint8_t *p, size_t len)
{
	struct {
		const uint8_t	*key;	/* the object's previous key, or NULL */
		size_t		 keylen;
		bool		 object;
	} st[CANON_DEPTH];
	const uint8_t *end = p + len, *s;
	bool want_key = false, escaped;
	int depth = -1;

	if (len == 0 || (*p != '{' && *p != '['))
		return CANON_DUMP;
	while (p < end) {
		switch (*p) {
		case '{':
		case '[':
			if (++depth >= CANON_DEPTH)
				return CANON_DUMP;
			st[depth].object = *p == '{';
			st[depth].key = NULL;
			want_key = st[depth].object;
			p++;
			break;
		case '}':
		case ']':
			want_key = false;
			p++;
			if (--depth < 0)
				return p == end ? CANON_YES : CANON_DUMP;
			break;
		case ',':
			want_key = depth >= 0 && st[depth].object;
			p++;
			break;
		case ':':
			p++;
			break;
		case '"':
			s = ++p;
			escaped = false;
			while (p < end && *p != '"') {
				if (*p != '\\') {
					p++;
					continue;
				}
				escaped = true;
				if (end - p < 2)
					return CANON_DUMP;
				switch (p[1]) {
				case '"': case '\\': case 'b': case 'f':
				case 'n': case 'r': case 't':
					p += 2;
					break;
				case 'u':
					if (end - p < 6)
						return CANON_DUMP;
					if (!canon_u_escape(p + 2))
						return CANON_NO;
					p += 6;
					break;
				default:
					/* "\/", which jansson writes as '/'. */
					return CANON_NO;
				}
			}
			if (p == end || depth < 0)
				return CANON_DUMP;
			if (want_key) {
				if (escaped)
					return CANON_DUMP;
				if (st[depth].key != NULL && canon_key_cmp(st[depth].key,
				    st[depth].keylen, s, (size_t)(p - s)) >= 0)
					return CANON_NO;
				st[depth].key = s;
				st[depth].keylen = (size_t)(p - s);
				want_key = false;
			}
			p++;
			break;
		case '-':
		case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
			s = p;
			if (*p == '-')
				p++;
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
				return CANON_DUMP;
			if (p - s == 2 && s[0] == '-' && s[1] == '0')
				return CANON_NO;
			break;
		case 't':
		case 'n':
			if (end - p < 4 || (memcmp(p, "true", 4) != 0 &&
			    memcmp(p, "null", 4) != 0))
				return CANON_DUMP;
			p += 4;
			break;
		case 'f':
			if (end - p < 5 || memcmp(p, "false", 5) != 0)
				return CANON_DUMP;
			p += 5;
			break;
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			return CANON_NO;
		default:
			return CANON_DUMP;
		}
	}
	return CANON_DUMP;
}

bool
cm_audit_canon_scan_settles(const void *p, size_t len)
{
	return canon_scan(p, len) == CANON_YES;
}

bool
cm_audit_entry_canonical(const void *entry, size_t len, const json_t *j)
{
	char *canon;
	bool ok;

	if (j == NULL)
		return false;
	switch (canon_scan(entry, len)) {
	case CANON_YES:
		return true;
	case CANON_NO:
		return false;
	case CANON_DUMP:
		break;
	}
	canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	ok = canon != NULL && strlen(canon) == len && memcmp(canon, entry, len) == 0;
	free(canon);
	return ok;
}
