/* SPDX-License-Identifier: ISC */
/*
 * Small helpers with no third-party dependency: JSON-lines logging on
 * stderr, time formatting, bounded number parsing, a growable byte buffer,
 * string interning and hex encoding.
 */
#ifndef CONSENTD_UTIL_H
#define CONSENTD_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "consentd/common.h"

/* ---- logging ---------------------------------------------------------- */

enum cm_log_level { CM_LOG_DEBUG, CM_LOG_INFO, CM_LOG_WARN, CM_LOG_ERROR };

/* Sets the lowest level written; the default is CM_LOG_INFO. */
void	cm_log_set_level(enum cm_log_level);

/*
 * Writes one JSON line to stderr: {"ts":…,"level":…,"event":EVENT, …}.
 * FIELDS_FMT, when not NULL, is a printf format producing the remaining
 * members, already JSON-encoded and comma-led (e.g. ",\"status\":%d").
 * Callers pass only values they control or escape with cm_json_escape();
 * never PII or secrets.
 */
void	cm_log(enum cm_log_level, const char *event, const char *fields_fmt, ...)
	    CM_PRINTF(3, 4);

/*
 * Writes SRC into DST (size DSTLEN) as the inside of a JSON string,
 * truncating safely. Returns DST.
 */
char	*cm_json_escape(char *dst, size_t dstlen, const char *src);

/*
 * The length of the longest prefix of S, at most MAX bytes, that does not
 * end inside a UTF-8 sequence: for "%.*s" when a name is cut short for a
 * message that must stay valid UTF-8 (jansson refuses anything else).
 */
int	cm_utf8_prefix(const char *s, size_t max);

/* The index of S in the NULL-terminated list V, or -1. */
int	cm_strv_index(const char *const *v, const char *s);

/* ---- time -------------------------------------------------------------- */

/* Microseconds since the Unix epoch, from CLOCK_REALTIME. */
int64_t	cm_time_now_us(void);
/* Monotonic microseconds, for durations. */
int64_t	cm_time_mono_us(void);

/*
 * The one retry rule for a write transaction that failed with RC, kept
 * in R (cm_retry_begin() before the first try). CM_BUSY: true after a
 * short pause that grows with each try (10, 20, 40 ms and up to half
 * again), so the whole transaction runs again, but only within
 * CM_RETRY_BUSY_MS of the first try's start: a busy store that already
 * waited its busy timeout is not waited on again. CM_UNKNOWN: true at once
 * when REPLAYABLE (the write carries its request id, and running it again
 * answers its first result), false otherwise. Any other result is final.
 * Never true after CM_RETRY_TRIES tries in all.
 */
#define CM_RETRY_TRIES		4
#define CM_RETRY_BUSY_MS	1000
struct cm_retry {
	int	r_tries;	/* tries made so far, counting the first */
	int64_t	r_start_us;	/* cm_time_mono_us() at the first try */
};
void	cm_retry_begin(struct cm_retry *r);
bool	cm_retry_again(struct cm_retry *r, cm_result rc, bool replayable);
/* Formats US as RFC 3339 UTC with seconds ("2026-11-22T13:42:31Z"). */
void	cm_time_format(char out[32], int64_t us);

/* ---- numbers ----------------------------------------------------------- */

/*
 * Parses the whole of S as a base-10 integer within [MIN, MAX], like
 * OpenBSD strtonum(). Returns 0 and sets *OUT, or -1 on any junk, sign
 * error or range error.
 */
int	cm_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) CM_WUR;

/*
 * A list's cursor: PREFIX and V (>= 0) in decimal, into OUT. A cursor is
 * opaque to clients; the prefix only keeps one list's cursor from being
 * taken for another's.
 */
void	cm_cursor_format(char *out, size_t outlen, const char *prefix, int64_t v);
/* 0 and *V for a cursor cm_cursor_format() made with PREFIX, or -1. */
int	cm_cursor_parse(const char *s, const char *prefix, int64_t *v) CM_WUR;

/* ---- buffer ------------------------------------------------------------ */

/* A growable byte buffer; zero-initialise, free with cm_buf_free(). */
struct cm_buf {
	char	*b_data;	/* always NUL-terminated when non-NULL */
	size_t	 b_len;		/* bytes used, excluding the terminator */
	size_t	 b_cap;		/* bytes allocated */
};

void	cm_buf_append(struct cm_buf *, const void *, size_t);
void	cm_buf_appendf(struct cm_buf *, const char *, ...) CM_PRINTF(2, 3);
void	cm_buf_reset(struct cm_buf *);
/*
 * Appends S escaped for HTML text and for a quoted attribute value: & < >
 * " ' become entities, a NUL-free string otherwise as it is. Any text that
 * did not come from our own templates goes into a page through this.
 */
void	cm_buf_append_html(struct cm_buf *, const char *s);
/* Frees the storage; accepts NULL. */
void	cm_buf_free(struct cm_buf *);

/* ---- files ------------------------------------------------------------- */

/*
 * Reads the whole file PATH (at most MAX bytes) into a NUL-terminated
 * buffer the caller frees. Returns NULL with errno set on failure
 * (EFBIG when larger than MAX).
 */
char	*cm_file_read(const char *path, size_t max, size_t *lenp);

/*
 * Writes LEN bytes of DATA to PATH, a new file (mode 0600, never one that
 * exists), and syncs it: 0, or -1 with errno set and no file left.
 */
int	cm_file_write_new(const char *path, const void *data, size_t len);

/* ---- string interning --------------------------------------------------- */

/*
 * A set of strings, each given a small dense id in the order first seen:
 * open addressing over one arena, for verifications that meet the same
 * pseudonyms and tags many times. Zero-initialise; free with
 * cm_intern_free(). A lookup writes (it remembers its hit): one thread at a
 * time.
 */
struct cm_intern {
	char		*in_arena;	/* the strings, NUL-terminated, back to back */
	size_t		 in_used, in_cap;
	size_t		*in_off;	/* id → offset in the arena */
	uint32_t	 in_n, in_ncap;
	uint64_t	*in_slot;	/* hash slot → hash << 32 | id + 1, 0: empty */
	uint32_t	 in_nslots;	/* a power of two */
	uint32_t	 in_last;	/* the id last found or added + 1, 0: none */
};

#define CM_INTERN_NONE	UINT32_MAX

/* The id of S; with ADD, a new one when S is not in T yet (else CM_INTERN_NONE). */
uint32_t	cm_intern(struct cm_intern *t, const char *s, bool add);
/* The string of ID (borrowed until the next add). */
const char	*cm_intern_str(const struct cm_intern *t, uint32_t id);
void		 cm_intern_free(struct cm_intern *t);

/* ---- hex --------------------------------------------------------------- */

/* Lower-case hex of LEN bytes into OUT (2*LEN+1 bytes). */
void	cm_hex_encode(char *out, const uint8_t *in, size_t len);
/* The N bytes HEX (exactly 2N hex digits, either case) spells into OUT: 0, or -1. */
int	cm_hex_decode(uint8_t *out, const char *hex, size_t n);

#endif
