/* SPDX-License-Identifier: ISC */
/*
 * NDJSON request bodies of any length and their answers. A body arrives in
 * pieces; each piece is split into its complete lines (numbered, blank
 * ones skipped and not counted, one longer than CM_NDJSON_LINE_MAX marked
 * as such), and what follows its last newline is carried to the next. The
 * answers, one line each, are spooled to a file in the app's spool
 * directory that no other process can open, so a long answer never sits in
 * memory, and are sent when the body ends, or replaced by one 503 if
 * anything failed on the way: a partial answer is never sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consentd/app.h"
#include "consentd/http.h"
#include "consentd/util.h"

/* Answers are written to the spool file in blocks of about this size. */
#define NDJSON_FLUSH	(64 * 1024)

struct cm_ndjson {
	struct cm_buf		 nj_line;	/* the partial line carried over */
	bool			 nj_too_long;	/* … which passed the limit */
	struct cm_buf		 nj_first;	/* a piece's first line, when carried */
	struct cm_ndjson_line	*nj_lines;	/* the piece's complete lines */
	size_t			 nj_nlines, nj_lines_cap;
	uint64_t		 nj_lineno;	/* lines seen so far */
	struct cm_buf		 nj_out;	/* answers not yet in the spool file */
	int			 nj_fd;		/* the spool file, or -1 */
	size_t			 nj_out_len;	/* bytes of answers in all */
	bool			 nj_failed;	/* answer 503 at the end */
	cm_result		 nj_rc;		/* … with this */
	void			*nj_data;	/* the handler's own state */
};

struct cm_ndjson *
cm_ndjson_new(int fd)
{
	struct cm_ndjson *s = cm_calloc(1, sizeof(*s));

	/* Without a spool file nothing can be answered: the end is a 503. */
	if ((s->nj_fd = fd) < 0)
		s->nj_failed = true;
	return s;
}

void
cm_ndjson_free(struct cm_ndjson *s)
{
	if (s == NULL)
		return;
	cm_buf_free(&s->nj_line);
	cm_buf_free(&s->nj_first);
	free(s->nj_lines);
	cm_buf_free(&s->nj_out);
	if (s->nj_fd >= 0)
		close(s->nj_fd);
	free(s->nj_data);
	free(s);
}

static void
ndjson_state_free(void *p)
{
	cm_ndjson_free(p);
}

struct cm_ndjson *
cm_ndjson_get(struct cm_request *rq)
{
	struct cm_ndjson *s = cm_req_state(rq);

	if (s != NULL)
		goto out;
	s = cm_ndjson_new(cm_app_spool_open(cm_req_app(rq)));
	cm_req_set_state(rq, s, ndjson_state_free);
out:
	return s;
}

void *
cm_ndjson_data(struct cm_ndjson *s, size_t size)
{
	if (s->nj_data == NULL)
		s->nj_data = cm_calloc(1, size);
	return s->nj_data;
}

bool
cm_ndjson_failed(const struct cm_ndjson *s)
{
	return s->nj_failed;
}

void
cm_ndjson_fail(struct cm_ndjson *s, cm_result rc)
{
	if (s->nj_failed)
		return;
	s->nj_failed = true;
	s->nj_rc = rc;
}

static void
ndjson_line_add(struct cm_ndjson *s, const char *text, size_t len, bool too_long)
{
	struct cm_ndjson_line *l;

	if (s->nj_nlines == s->nj_lines_cap) {
		s->nj_lines_cap = s->nj_lines_cap ? s->nj_lines_cap * 2 : 256;
		s->nj_lines = cm_reallocarray(s->nj_lines, s->nj_lines_cap, sizeof(*s->nj_lines));
	}
	l = &s->nj_lines[s->nj_nlines++];
	l->nl_text = too_long ? NULL : text;
	l->nl_len = too_long ? 0 : len;
	l->nl_lineno = ++s->nj_lineno;
	l->nl_too_long = too_long;
}

/* Whether the line of N bytes at P is blank: empty, or a lone "\r". */
static bool
ndjson_blank(const char *p, size_t n)
{
	return n == 0 || (n == 1 && p[0] == '\r');
}

/*
 * The end of the body: the line carried over, if any, is complete. A lone
 * "\r" there is a blank line, skipped as blank lines are everywhere else.
 */
static void
ndjson_lines_end(struct cm_ndjson *s)
{
	if (!ndjson_blank(s->nj_line.b_data, s->nj_line.b_len) || s->nj_too_long) {
		cm_buf_append(&s->nj_first, s->nj_line.b_data, s->nj_line.b_len);
		ndjson_line_add(s, s->nj_first.b_data, s->nj_first.b_len, s->nj_too_long);
	}
	cm_buf_reset(&s->nj_line);
	s->nj_too_long = false;
}

/* The first line of a piece that completes the one carried over. */
static void
ndjson_lines_join(struct cm_ndjson *s, const char *data, size_t n)
{
	if (!s->nj_too_long && s->nj_line.b_len + n <= CM_NDJSON_LINE_MAX) {
		cm_buf_append(&s->nj_first, s->nj_line.b_data, s->nj_line.b_len);
		cm_buf_append(&s->nj_first, data, n);
		if (!ndjson_blank(s->nj_first.b_data, s->nj_first.b_len))
			ndjson_line_add(s, s->nj_first.b_data, s->nj_first.b_len, false);
	} else {
		ndjson_line_add(s, NULL, 0, true);
	}
	cm_buf_reset(&s->nj_line);
	s->nj_too_long = false;
}

size_t
cm_ndjson_lines(struct cm_ndjson *s, const char *data, size_t len,
    const struct cm_ndjson_line **lines)
{
	const char *nl;
	size_t n;
	bool first = true;

	s->nj_nlines = 0;
	cm_buf_reset(&s->nj_first);
	if (data == NULL) {
		ndjson_lines_end(s);
		goto out;
	}
	while (len > 0) {
		nl = memchr(data, '\n', len);
		n = nl ? (size_t)(nl - data) : len;
		if (nl == NULL) {
			/* The partial last line: carried to the next piece. */
			if (!s->nj_too_long && s->nj_line.b_len + n > CM_NDJSON_LINE_MAX) {
				s->nj_too_long = true;
				cm_buf_reset(&s->nj_line);
			} else if (!s->nj_too_long) {
				cm_buf_append(&s->nj_line, data, n);
			}
			break;
		}
		if (first && (s->nj_line.b_len > 0 || s->nj_too_long))
			ndjson_lines_join(s, data, n);
		else if (n > CM_NDJSON_LINE_MAX)
			ndjson_line_add(s, NULL, 0, true);
		else if (!ndjson_blank(data, n))
			ndjson_line_add(s, data, n, false);
		first = false;
		data += n + 1;
		len -= n + 1;
	}
out:
	*lines = s->nj_lines;
	return s->nj_nlines;
}

json_t *
cm_ndjson_too_long(uint64_t lineno)
{
	return json_pack("{s:I, s:{s:s, s:s, s:n}}", "line", (json_int_t)lineno, "error",
	    "code", "line_too_long", "message", "a line is at most 4096 bytes", "field");
}

json_t *
cm_ndjson_parse(const struct cm_ndjson_line *l, json_t **err)
{
	json_error_t je;
	json_t *item = NULL;

	*err = NULL;
	if (l->nl_too_long) {
		*err = cm_ndjson_too_long(l->nl_lineno);
		goto out;
	}
	if ((item = json_loadb(l->nl_text, l->nl_len, JSON_REJECT_DUPLICATES, &je)) == NULL) {
		*err = json_pack("{s:{s:s, s:s, s:n}}", "error", "code", "invalid_json",
		    "message", "this line is not valid JSON", "field");
		json_object_set_new(*err, "line", json_integer((json_int_t)l->nl_lineno));
	}
out:
	return item;
}

/* Writes what is buffered to the spool file. */
static void
ndjson_flush(struct cm_ndjson *s)
{
	ssize_t w;
	size_t off = 0;

	while (off < s->nj_out.b_len && !s->nj_failed) {
		w = write(s->nj_fd, s->nj_out.b_data + off, s->nj_out.b_len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cm_ndjson_fail(s, CM_IOERR);
			break;
		}
		off += (size_t)w;
	}
	cm_buf_reset(&s->nj_out);
}

void
cm_ndjson_write(struct cm_ndjson *s, const char *data, size_t len)
{
	cm_buf_append(&s->nj_out, data, len);
	s->nj_out_len += len;
	if (s->nj_out.b_len >= NDJSON_FLUSH)
		ndjson_flush(s);
}

void
cm_ndjson_write_json(struct cm_ndjson *s, json_t *o)
{
	char *t = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (t == NULL) {
		cm_ndjson_fail(s, CM_IOERR);
		goto out;
	}
	cm_ndjson_write(s, t, strlen(t));
	cm_ndjson_write(s, "\n", 1);
out:
	free(t);
}

bool
cm_ndjson_end(struct cm_request *rq, struct cm_ndjson *s)
{
	ndjson_flush(s);
	if (s->nj_failed) {
		cm_reply_store_error(rq, s->nj_rc ? s->nj_rc : CM_IOERR);
		return false;
	}
	return true;
}

void
cm_ndjson_reply(struct cm_request *rq, struct cm_ndjson *s)
{
	if (!cm_ndjson_end(rq, s))
		return;
	if (lseek(s->nj_fd, 0, SEEK_SET) != 0) {
		cm_reply_store_error(rq, CM_IOERR);
		return;
	}
	cm_reply_fd(rq, 200, "application/x-ndjson", s->nj_fd, s->nj_out_len);
	s->nj_fd = -1;
}

json_t *
cm_ndjson_answers(struct cm_ndjson *s)
{
	json_t *list = json_array();
	char *buf, *line, *nl;
	size_t got = 0;
	ssize_t r;

	buf = cm_malloc(s->nj_out_len + 1);
	if (lseek(s->nj_fd, 0, SEEK_SET) != 0)
		goto out;
	while (got < s->nj_out_len) {
		r = read(s->nj_fd, buf + got, s->nj_out_len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		json_array_append_new(list, json_loads(line, 0, NULL));
	}
out:
	free(buf);
	return list;
}
