/* SPDX-License-Identifier: ISC */
/*
 * Logging as JSON lines on stderr, time helpers, bounded integer parsing,
 * a growable buffer, whole-file reads and hex encoding.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/util.h"

static enum cm_log_level log_min = CM_LOG_INFO;

static const char *const log_names[] = { "debug", "info", "warn", "error" };

void
cm_log_set_level(enum cm_log_level l)
{
	log_min = l;
}

void
cm_log(enum cm_log_level lvl, const char *event, const char *fmt, ...)
{
	char line[2048], ts[32];
	int n, m;
	va_list ap;

	if (lvl < log_min)
		return;
	cm_time_format(ts, cm_time_now_us());
	n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"",
	    ts, log_names[lvl], event);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		if (m < 0 || (size_t)m >= sizeof(line) - (size_t)n - 3) {
			/* Truncated: drop the extra members rather than emit bad JSON. */
			m = snprintf(line + n, sizeof(line) - (size_t)n, ",\"truncated\":true");
			if (m < 0)
				return;
		}
		n += m;
	}
	line[n++] = '}';
	line[n++] = '\n';
	/* One write(2) per line so concurrent threads never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

char *
cm_json_escape(char *dst, size_t dstlen, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	unsigned char c;

	if (dstlen == 0)
		return dst;
	for (; *src != '\0'; src++) {
		c = (unsigned char)*src;
		if (c == '"' || c == '\\') {
			if (o + 2 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			if (o + 6 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'u';
			dst[o++] = '0';
			dst[o++] = '0';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		} else {
			size_t seq = 1, k;

			/* Copy a UTF-8 sequence whole, or not at all. */
			if (c >= 0xf0)
				seq = 4;
			else if (c >= 0xe0)
				seq = 3;
			else if (c >= 0xc0)
				seq = 2;
			if (o + seq >= dstlen)
				break;
			for (k = 0; k < seq && src[k] != '\0'; k++)
				dst[o++] = src[k];
			src += k - 1;
		}
	}
	dst[o] = '\0';
	return dst;
}

int
cm_strv_index(const char *const *v, const char *s)
{
	int i;

	for (i = 0; v[i] != NULL; i++)
		if (strcmp(v[i], s) == 0)
			return i;
	return -1;
}

int
cm_utf8_prefix(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	/* Cut short inside a sequence: back off to where that sequence starts. */
	if (n == max && s[n] != '\0')
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	return n > INT_MAX ? INT_MAX : (int)n;
}

int64_t
cm_time_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
#ifdef CM_FAULT_INJECTION
	/*
	 * The test build only: CONSENTD_FAULT_CLOCK_SKEW seconds are added, so
	 * a test can see what happens once links and sessions have expired.
	 */
	{
		const char *v = getenv("CONSENTD_FAULT_CLOCK_SKEW");
		int64_t skew = 0;

		if (v != NULL && cm_parse_i64(v, -INT32_MAX, INT32_MAX, &skew) == 0)
			ts.tv_sec += (time_t)skew;
	}
#endif
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
cm_time_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
cm_retry_begin(struct cm_retry *r)
{
	r->r_tries = 0;
	r->r_start_us = cm_time_mono_us();
}

bool
cm_retry_again(struct cm_retry *r, cm_result rc, bool replayable)
{
	unsigned base, jitter;

	if (++r->r_tries >= CM_RETRY_TRIES)
		return false;
	if (rc == CM_UNKNOWN)
		return replayable;
	if (rc != CM_BUSY ||
	    cm_time_mono_us() - r->r_start_us >= (int64_t)CM_RETRY_BUSY_MS * 1000)
		return false;
	/* Writers that met should not meet again: the clock's low bits part them. */
	base = 10000u << (r->r_tries - 1);
	jitter = (unsigned)(cm_time_mono_us() * 2654435761u) % (base / 2);
	usleep(base + jitter);
	return true;
}

void
cm_time_format(char out[32], int64_t us)
{
	struct tm tm;
	time_t t;

	t = (time_t)(us / 1000000);
	gmtime_r(&t, &tm);
	if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

int
cm_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	const char *d;

	if (s == NULL)
		return -1;
	/* Digits only, after an optional '-'; no spaces, '+' or leading zeros. */
	d = s + (*s == '-');
	if (*d < '0' || *d > '9' || (*d == '0' && d[1] != '\0') ||
	    (*s == '-' && *d == '0'))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void
cm_cursor_format(char *out, size_t outlen, const char *prefix, int64_t v)
{
	snprintf(out, outlen, "%s%lld", prefix, (long long)v);
}

int
cm_cursor_parse(const char *s, const char *prefix, int64_t *v)
{
	size_t n = strlen(prefix);

	if (s == NULL || strncmp(s, prefix, n) != 0)
		return -1;
	return cm_parse_i64(s + n, 0, INT64_MAX, v);
}

static void
buf_grow(struct cm_buf *b, size_t need)
{
	size_t cap;

	if (need < b->b_cap)
		return;
	cap = b->b_cap ? b->b_cap : 256;
	while (cap <= need) {
		if (cap > SIZE_MAX / 2)
			cap = need + 1;
		else
			cap *= 2;
	}
	b->b_data = cm_realloc(b->b_data, cap);
	b->b_cap = cap;
}

void
cm_buf_append(struct cm_buf *b, const void *p, size_t n)
{
	if (n > SIZE_MAX - b->b_len - 1)
		n = 0;
	buf_grow(b, b->b_len + n);
	if (n > 0)
		memcpy(b->b_data + b->b_len, p, n);
	b->b_len += n;
	b->b_data[b->b_len] = '\0';
}

void
cm_buf_appendf(struct cm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_grow(b, b->b_len + (size_t)n);
	va_start(ap, fmt);
	n = vsnprintf(b->b_data + b->b_len, b->b_cap - b->b_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->b_len += (size_t)n;
}

void
cm_buf_append_html(struct cm_buf *b, const char *s)
{
	const char *run = s, *rep;

	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: continue;
		}
		cm_buf_append(b, run, (size_t)(s - run));
		cm_buf_append(b, rep, strlen(rep));
		run = s + 1;
	}
	cm_buf_append(b, run, (size_t)(s - run));
}

void
cm_buf_reset(struct cm_buf *b)
{
	b->b_len = 0;
	if (b->b_data != NULL)
		b->b_data[0] = '\0';
}

void
cm_buf_free(struct cm_buf *b)
{
	if (b == NULL)
		return;
	free(b->b_data);
	b->b_data = NULL;
	b->b_len = b->b_cap = 0;
}

int
cm_file_write_new(const char *path, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t off = 0;
	ssize_t w;
	int fd, rc = -1, saved;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		return -1;
	if (fchmod(fd, 0600) == -1)
		goto out;
	while (off < len) {
		w = write(fd, p + off, len - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	if (fsync(fd) == -1)
		goto out;
	rc = 0;
out:
	saved = errno;
	close(fd);
	if (rc == -1) {
		unlink(path);
		errno = saved;
	}
	return rc;
}

char *
cm_file_read(const char *path, size_t max, size_t *lenp)
{
	struct stat st;
	char *p = NULL;
	size_t off = 0;
	ssize_t r;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((uint64_t)st.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	p = cm_malloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		r = read(fd, p + off, (size_t)st.st_size - off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			goto fail;
		}
		off += (size_t)r;
	}
	p[off] = '\0';
	close(fd);
	if (lenp != NULL)
		*lenp = off;
	return p;
fail:
	saved = errno;
	free(p);
	close(fd);
	errno = saved;
	return NULL;
}

void
cm_hex_encode(char *out, const uint8_t *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
cm_hex_decode(uint8_t *out, const char *hex, size_t n)
{
	size_t i;

	if (strlen(hex) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
