/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes the NDJSON line splitter of src/http/ndjson.c, cm_ndjson_lines,
 * which every streamed body uses (POST /v1/consent/check and POST
 * /v1/suppressions). (The handlers around it, cm_api_check_chunk and
 * cm_api_suppressions_chunk, need a live store and reply on a connection,
 * so they are not driven.)
 *
 * The first two bytes seed how the rest, the body, is cut into pieces as
 * they would arrive. Whatever the cuts, the splitter must give what the
 * contract says of the whole body: its lines, numbered from 1, without
 * blank ones (empty, or a lone "\r") which are not counted, a line longer
 * than CM_NDJSON_LINE_MAX bytes reported as too long under its number, and
 * the text after the last newline taken as a last line unless blank.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/http.h"
#include "consentd/util.h"
#include "fuzz.h"

struct fz_item {
	uint64_t	 lineno;
	bool		 too_long;
	const char	*text;		/* borrowed from the body, or a copy */
	size_t		 len;
	char		*copy;
};

struct fz_list {
	struct fz_item	*it;
	size_t		 n, cap;
};

static void
fz_add(struct fz_list *l, uint64_t lineno, bool too_long, const char *text, size_t len,
    bool copy)
{
	struct fz_item *i;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->it = cm_reallocarray(l->it, l->cap, sizeof(*l->it));
	}
	i = &l->it[l->n++];
	i->lineno = lineno;
	i->too_long = too_long;
	i->len = too_long ? 0 : len;
	i->copy = NULL;
	i->text = NULL;
	if (!too_long) {
		if (copy) {
			i->copy = cm_malloc(len + 1);
			memcpy(i->copy, text, len);
			i->text = i->copy;
		} else {
			i->text = text;
		}
	}
}

static void
fz_free(struct fz_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->it[i].copy);
	free(l->it);
}

/* The contract, over the whole body at once. */
static void
fz_reference(const char *body, size_t len, struct fz_list *out)
{
	const char *p = body, *end = body + len, *nl;
	uint64_t lineno = 0;
	size_t n;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > CM_NDJSON_LINE_MAX)
			fz_add(out, ++lineno, true, NULL, 0, false);
		else if (n > 0 && !(n == 1 && p[0] == '\r'))
			fz_add(out, ++lineno, false, p, n, false);
		p += n + (nl != NULL);
	}
}

static void
fz_same(const struct fz_list *a, const struct fz_list *ref)
{
	size_t i;

	FUZZ_CHECK(a->n == ref->n);
	for (i = 0; i < a->n; i++) {
		FUZZ_CHECK(a->it[i].lineno == ref->it[i].lineno);
		FUZZ_CHECK(a->it[i].too_long == ref->it[i].too_long);
		FUZZ_CHECK(a->it[i].len == ref->it[i].len);
		FUZZ_CHECK(a->it[i].len == 0 ||
		    memcmp(a->it[i].text, ref->it[i].text, a->it[i].len) == 0);
	}
}

/* Where the pieces end: a small generator seeded by the input. */
struct fz_cuts {
	uint32_t	state;
	size_t		max;
};

static size_t
fz_next_cut(struct fz_cuts *c)
{
	c->state = c->state * 1103515245u + 12345u;
	return 1 + (c->state >> 8) % c->max;
}

/* The splitter, piece by piece, then the end of the body. */
static void
fz_split(const char *body, size_t len, struct fz_cuts cuts, struct fz_list *out)
{
	struct cm_ndjson *s = cm_ndjson_new(-1);
	const struct cm_ndjson_line *l;
	size_t off = 0, n, i, k;
	bool end = false;

	while (!end) {
		if (off < len) {
			n = fz_next_cut(&cuts);
			if (n > len - off)
				n = len - off;
			k = cm_ndjson_lines(s, body + off, n, &l);
			off += n;
		} else {
			k = cm_ndjson_lines(s, NULL, 0, &l);
			end = true;
		}
		for (i = 0; i < k; i++) {
			FUZZ_CHECK(l[i].nl_too_long || l[i].nl_len <= CM_NDJSON_LINE_MAX);
			FUZZ_CHECK(l[i].nl_too_long == (l[i].nl_text == NULL));
			fz_add(out, l[i].nl_lineno, l[i].nl_too_long, l[i].nl_text,
			    l[i].nl_len, true);
		}
	}
	cm_ndjson_free(s);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_list ref = { 0 }, a = { 0 };
	struct fz_cuts cuts;
	const char *body;
	size_t len;

	if (size < 2)
		return 0;
	cuts.state = (uint32_t)data[0] << 8 | data[1];
	/* Pieces of 1 byte up to the whole body, as the seed says. */
	cuts.max = 1 + (size_t)(data[0] & 0x7f) * 97;
	body = (const char *)data + 2;
	len = size - 2;
	fz_reference(body, len, &ref);
	fz_split(body, len, cuts, &a);
	fz_same(&a, &ref);
	fz_free(&ref);
	fz_free(&a);
	return 0;
}
