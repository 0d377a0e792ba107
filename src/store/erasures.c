/* SPDX-License-Identifier: ISC */
/*
 * The erasure ledger: DIR/erasures.ledger, beside the database and never
 * inside it, so that a restore of an older copy of the database can learn
 * which people were erased after that copy was made and erase them again.
 * One line per erased subject, holding no personal data:
 *
 *	e1 SUBJECT_ID ERASED_AT_US MAC
 *
 * MAC is the hex HMAC-SHA256, under a key derived from the master key, of
 * the previous line's MAC (32 zero bytes for the first line) followed by
 * "SUBJECT_ID ERASED_AT_US": a line cannot be forged, edited, reordered or
 * removed from the middle without the master key, and reading the ledger
 * finds any such change.
 *
 * When a line is written. A line for an erasure that did not commit would
 * erase, on the next restore, a person who is still a customer; so the
 * line is written only after COMMIT succeeded, and synced, before the
 * writer lets the next transaction of this process begin. Every erasure
 * goes through cm_store_subject_erase(), which notes the subject on its
 * connection; cm_db_commit() writes the notes (a rollback drops them). A
 * crash between the commit and the line leaves an erased subject the
 * ledger lacks: cm_store_erasures_sync() adds every erased subject of the
 * database missing from the ledger, and runs at the server's start, before
 * every backup and before every restore. A torn last line (a crash during
 * the write) is cut off by the next append and recovered by that sync.
 * Lines may repeat a subject: applying an erasure twice changes nothing.
 */
#define _GNU_SOURCE	/* memrchr */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "store_int.h"

#define LEDGER_LINE_MAX	160
#define LEDGER_TAIL	4096

struct store_erased {
	char	 se_id[CM_SUBJECT_ID_LEN + 1];
	int64_t	 se_at;
};

void
store_ledger_key(const struct cm_keys *keys, uint8_t out[32])
{
	static const char *const parts[] = { "consentd erasure ledger v1" };

	cm_keyed_hash(out, 32, keys->k_tag, parts, 1);
}

static void
ledger_mac(const uint8_t key[32], const uint8_t prev[32], const char *id, int64_t at,
    uint8_t out[32])
{
	char text[64];
	int n;

	n = snprintf(text, sizeof(text), "%s %" PRId64, id, at);
	cm_hmac_sha256(out, key, 32, prev, 32, text, n > 0 ? (size_t)n : 0);
}

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Parses one line (without its newline) into ID, *AT and MAC: 0, or -1
 * when it is not a ledger line.
 */
static int
ledger_parse(const char *line, size_t len, char id[CM_SUBJECT_ID_LEN + 1], int64_t *at,
    uint8_t mac[32])
{
	const char *p = line, *end = line + len, *sp;
	char num[24];
	size_t i;

	if (len < 3 || memcmp(p, "e1 ", 3) != 0)
		return -1;
	p += 3;
	if ((size_t)(end - p) < CM_SUBJECT_ID_LEN + 1 || memcmp(p, "sub_", 4) != 0 ||
	    p[CM_SUBJECT_ID_LEN] != ' ')
		return -1;
	memcpy(id, p, CM_SUBJECT_ID_LEN);
	id[CM_SUBJECT_ID_LEN] = '\0';
	for (i = 0; i < CM_SUBJECT_ID_LEN; i++)
		if (id[i] == ' ' || (unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
			return -1;
	p += CM_SUBJECT_ID_LEN + 1;
	if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL || sp == p ||
	    (size_t)(sp - p) >= sizeof(num))
		return -1;
	memcpy(num, p, (size_t)(sp - p));
	num[sp - p] = '\0';
	if (cm_parse_i64(num, 0, INT64_MAX, at) != 0)
		return -1;
	p = sp + 1;
	if (end - p != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		int hi = hex_nibble(p[2 * i]), lo = hex_nibble(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int
ledger_path(const char *dir, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", dir, CM_ERASURE_LEDGER);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* cm_store_erasures_read() with the ledger key KEY. */
static cm_result
ledger_read(const char *dir, const uint8_t key[32],
    int (*fn)(void *, const char *, int64_t), void *arg, char *err, size_t errlen)
{
	char path[4096], id[CM_SUBJECT_ID_LEN + 1], *line = NULL;
	uint8_t prev[32], mac[32], want[32];
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int64_t at;
	FILE *f;
	cm_result rc = CM_OK;

	if (ledger_path(dir, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "the data directory's path is too long");
		return CM_INVALID;
	}
	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return CM_OK;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return CM_IOERR;
	}
	(void)flock(fileno(f), LOCK_SH);
	memset(prev, 0, sizeof(prev));
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		/* A last line without its newline was torn by a crash: never written. */
		if (line[n - 1] != '\n')
			break;
		if (ledger_parse(line, (size_t)n - 1, id, &at, mac) != 0) {
			snprintf(err, errlen, "%s:%zu: not a ledger line", path, lineno);
			rc = CM_AUTH;
			break;
		}
		ledger_mac(key, prev, id, at, want);
		if (cm_memeq(want, mac, 32) != 0) {
			snprintf(err, errlen, "%s:%zu: the line's MAC does not verify (the "
			    "ledger was edited, or lines were removed before it)", path, lineno);
			rc = CM_AUTH;
			break;
		}
		memcpy(prev, mac, 32);
		if (fn != NULL && fn(arg, id, at) != 0)
			break;
	}
	if (rc == CM_OK && ferror(f)) {
		snprintf(err, errlen, "cannot read %s", path);
		rc = CM_IOERR;
	}
	free(line);
	fclose(f);
	return rc;
}

cm_result
cm_store_erasures_read(const char *dir, const struct cm_keys *keys,
    int (*fn)(void *, const char *, int64_t), void *arg, char *err, size_t errlen)
{
	uint8_t *key = cm_secure_alloc(32);
	cm_result rc;

	store_ledger_key(keys, key);
	rc = ledger_read(dir, key, fn, arg, err, errlen);
	cm_secure_free(key);
	return rc;
}

/*
 * The MAC of the last whole line of the ledger open on FD (SIZE bytes)
 * into PREV (zeros when there is none), cutting off a torn last line.
 */
static int
ledger_tail(int fd, off_t size, uint8_t prev[32])
{
	char buf[LEDGER_TAIL + 1], id[CM_SUBJECT_ID_LEN + 1];
	off_t from = size > LEDGER_TAIL ? size - LEDGER_TAIL : 0, keep;
	ssize_t n;
	char *nl, *start;
	int64_t at;

	memset(prev, 0, 32);
	if (size == 0)
		return 0;
	if ((n = pread(fd, buf, (size_t)(size - from), from)) != size - from)
		return -1;
	buf[n] = '\0';
	if ((nl = memrchr(buf, '\n', (size_t)n)) == NULL)
		return from == 0 ? ftruncate(fd, 0) : -1;
	keep = from + (nl - buf) + 1;
	if (keep != size && ftruncate(fd, keep) != 0)
		return -1;
	*nl = '\0';
	start = memrchr(buf, '\n', (size_t)(nl - buf));
	start = start != NULL ? start + 1 : buf;
	if (start == buf && from != 0)
		return -1;
	return ledger_parse(start, (size_t)(nl - start), id, &at, prev);
}

/* Appends the N erasures of E to DIR's ledger, synced. */
static cm_result
ledger_append(const char *dir, const uint8_t key[32], const struct store_erased *e,
    size_t n)
{
	char path[4096];
	struct cm_buf b;
	struct stat sb;
	uint8_t prev[32], mac[32];
	char hex[65];
	size_t i;
	bool created;
	int fd, dfd;
	cm_result rc = CM_IOERR;

	if (n == 0)
		return CM_OK;
	if (ledger_path(dir, path, sizeof(path)) != 0)
		return CM_INVALID;
	created = stat(path, &sb) != 0;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return CM_IOERR;
	memset(&b, 0, sizeof(b));
	if (flock(fd, LOCK_EX) != 0 || fstat(fd, &sb) != 0 ||
	    ledger_tail(fd, sb.st_size, prev) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		ledger_mac(key, prev, e[i].se_id, e[i].se_at, mac);
		cm_hex_encode(hex, mac, 32);
		cm_buf_appendf(&b, "e1 %s %" PRId64 " %s\n", e[i].se_id, e[i].se_at, hex);
		memcpy(prev, mac, 32);
	}
	if (fstat(fd, &sb) != 0 || pwrite(fd, b.b_data, b.b_len, sb.st_size) !=
	    (ssize_t)b.b_len || fsync(fd) != 0)
		goto out;
	/* A new ledger's name must survive a crash as its lines do. */
	if (created && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	rc = CM_OK;
out:
	cm_buf_free(&b);
	close(fd);
	return rc;
}

void
store_erasures_note(struct cm_db *d, const char *subject, int64_t at)
{
	struct store_erased *e;

	if (d->db_nerased == d->db_caperased) {
		d->db_caperased = d->db_caperased ? d->db_caperased * 2 : 4;
		d->db_erased = cm_reallocarray(d->db_erased, d->db_caperased,
		    sizeof(*d->db_erased));
	}
	e = &d->db_erased[d->db_nerased++];
	snprintf(e->se_id, sizeof(e->se_id), "%s", subject);
	e->se_at = at;
	/* Outside a transaction the statement has already committed. */
	if (sqlite3_get_autocommit(d->db_conn))
		store_erasures_committed(d);
}

void
store_erasures_committed(struct cm_db *d)
{
	char dir[4096];
	cm_result rc = CM_IOERR;

	if (d->db_nerased == 0)
		return;
	if (cm_store_dir(d, dir, sizeof(dir)) == 0)
		rc = ledger_append(dir, store_ledger_key_of(d->db_store), d->db_erased,
		    d->db_nerased);
	if (rc != CM_OK)
		cm_log(CM_LOG_ERROR, "erasure_ledger_error", ",\"func\":\"%s\",\"count\":%zu,"
		    "\"msg\":\"the erasure committed; the ledger line is added at the "
		    "next start or backup\"", __func__, d->db_nerased);
	d->db_nerased = 0;
}

void
store_erasures_discard(struct cm_db *d, size_t keep)
{
	if (keep < d->db_nerased)
		d->db_nerased = keep;
}

void
store_erasures_free(struct cm_db *d)
{
	free(d->db_erased);
	d->db_erased = NULL;
	d->db_nerased = d->db_caperased = 0;
}

struct id_set {
	char	(*ids)[CM_SUBJECT_ID_LEN + 1];
	size_t	 n, cap;
};

static int
id_set_add(void *arg, const char *id, int64_t at)
{
	struct id_set *s = arg;

	(void)at;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->ids = cm_reallocarray(s->ids, s->cap, sizeof(*s->ids));
	}
	memcpy(s->ids[s->n++], id, CM_SUBJECT_ID_LEN + 1);
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

cm_result
cm_store_erasures_sync(struct cm_db *d, size_t *added, char *err, size_t errlen)
{
	static const char sql[] = "SELECT id, updated_at FROM subjects "
	    "WHERE state = 'erased' ORDER BY updated_at, id";
	struct id_set have = { NULL, 0, 0 };
	struct store_erased *miss = NULL;
	struct store_query q;
	size_t nmiss = 0, cap = 0;
	char dir[4096], id[CM_SUBJECT_ID_LEN + 1];
	cm_result rc;

	*added = 0;
	if (cm_store_dir(d, dir, sizeof(dir)) != 0) {
		snprintf(err, errlen, "the data directory's path is too long");
		return CM_INVALID;
	}
	if ((rc = ledger_read(dir, store_ledger_key_of(d->db_store), id_set_add, &have, err,
	    errlen)) != CM_OK)
		goto out;
	if (have.n > 0)
		qsort(have.ids, have.n, sizeof(*have.ids), id_cmp);
	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		store_column_text(id, sizeof(id), q.q_stmt, 0);
		if (have.n > 0 && bsearch(id, have.ids, have.n, sizeof(*have.ids), id_cmp) != NULL)
			continue;
		if (nmiss == cap) {
			cap = cap ? cap * 2 : 16;
			miss = cm_reallocarray(miss, cap, sizeof(*miss));
		}
		memcpy(miss[nmiss].se_id, id, sizeof(id));
		miss[nmiss++].se_at = sqlite3_column_int64(q.q_stmt, 1);
	}
	if ((rc = store_done(&q)) != CM_OK) {
		snprintf(err, errlen, "cannot read the erased subjects: %s", cm_result_str(rc));
		goto out;
	}
	if ((rc = ledger_append(dir, store_ledger_key_of(d->db_store), miss, nmiss)) != CM_OK) {
		snprintf(err, errlen, "cannot append to %s/%s", dir, CM_ERASURE_LEDGER);
		goto out;
	}
	*added = nmiss;
out:
	free(have.ids);
	free(miss);
	return rc;
}
