/*
 * Fuzzes the NDJSON line splitting of src/api/consents.c: check_collect
 * (the lines of a streamed POST /v1/consent/check body, collected per
 * piece for the helper threads) and stream_lines (POST /v1/suppressions).
 * Both are file-static, so this target includes consents.c itself; when
 * they move to a module of their own, it should call that instead. (The
 * handlers around them, cm_api_check_chunk and cm_api_suppressions_chunk,
 * need a live store and reply on a connection, so they are not driven.)
 *
 * The first two bytes seed how the rest, the body, is cut into pieces as
 * they would arrive. Both splitters must give, whatever the cuts, what the
 * contract says of the whole body: its lines, numbered from 1, without
 * blank ones (empty, or a lone "\r") which are not counted, a line longer
 * than NDJSON_LINE_MAX bytes reported as too long under its number, and
 * the text after the last newline taken as a last line.
 */
#include "../../src/api/consents.c"

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
		if (n > NDJSON_LINE_MAX)
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

/* check_collect, piece by piece, then the end of the body. */
static void
fz_collect(const char *body, size_t len, struct fz_cuts cuts, struct fz_list *out)
{
	struct stream *s = cm_calloc(1, sizeof(*s));
	size_t off = 0, n, i;
	bool end = false;

	s->fd = -1;
	while (!end) {
		if (off < len) {
			n = fz_next_cut(&cuts);
			if (n > len - off)
				n = len - off;
			check_collect(s, body + off, n);
			off += n;
		} else {
			check_collect(s, NULL, 0);
			end = true;
		}
		for (i = 0; i < s->ntasks; i++) {
			FUZZ_CHECK(s->tasks[i].lt_too_long ||
			    s->tasks[i].lt_len <= NDJSON_LINE_MAX);
			fz_add(out, s->tasks[i].lt_lineno, s->tasks[i].lt_too_long,
			    s->tasks[i].lt_text, s->tasks[i].lt_len, true);
		}
	}
	stream_free(s);
}

/* The records stream_lines wrote for too-long lines, in order. */
static struct fz_list *fz_lines_out;

static void
fz_drain(struct stream *s)
{
	const char *p = s->out.b_data, *nl;
	json_t *o;

	while (p != NULL && (nl = strchr(p, '\n')) != NULL) {
		o = json_loadb(p, (size_t)(nl - p), 0, NULL);
		FUZZ_CHECK(o != NULL && json_is_integer(json_object_get(o, "line")));
		FUZZ_CHECK(strcmp(json_string_value(json_object_get(json_object_get(o, "error"),
		    "code")), "line_too_long") == 0);
		fz_add(fz_lines_out, (uint64_t)json_integer_value(json_object_get(o, "line")),
		    true, NULL, 0, false);
		json_decref(o);
		p = nl + 1;
	}
	cm_buf_reset(&s->out);
}

static void
fz_line(struct cm_request *rq, struct stream *s, const char *line, size_t len)
{
	(void)rq;
	fz_drain(s);
	FUZZ_CHECK(len <= NDJSON_LINE_MAX);
	fz_add(fz_lines_out, s->lineno, false, line, len, true);
}

/* stream_lines, piece by piece, then the end of the body. */
static void
fz_lines(const char *body, size_t len, struct fz_cuts cuts, struct fz_list *out)
{
	struct stream *s = cm_calloc(1, sizeof(*s));
	size_t off = 0, n;

	s->fd = -1;
	fz_lines_out = out;
	while (off < len) {
		n = fz_next_cut(&cuts);
		if (n > len - off)
			n = len - off;
		stream_lines(NULL, s, body + off, n, fz_line);
		fz_drain(s);
		off += n;
	}
	stream_lines(NULL, s, NULL, 0, fz_line);
	fz_drain(s);
	FUZZ_CHECK(!s->failed);
	stream_free(s);
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
	struct fz_list ref = { 0 }, a = { 0 }, b = { 0 };
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
	fz_collect(body, len, cuts, &a);
	fz_same(&a, &ref);
	fz_lines(body, len, cuts, &b);
	fz_same(&b, &ref);
	fz_free(&ref);
	fz_free(&a);
	fz_free(&b);
	return 0;
}
