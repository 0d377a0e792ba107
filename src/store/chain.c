/* SPDX-License-Identifier: ISC */
/*
 * The file both ledgers outside the database are (erasures.c, optouts.c):
 * DIR/NAME, one line per record,
 *
 *	TAG TEXT MAC
 *
 * where MAC is the hex HMAC-SHA256, under the ledger's key, of the previous
 * line's MAC (32 zero bytes for the first line) followed by TEXT. A line
 * cannot be forged, edited, reordered or removed from the middle without
 * the key, and reading the file finds any such change. A last line without
 * its newline was torn by a crash: reading stops before it and the next
 * append cuts it off. Appends take an exclusive flock (another process may
 * append too), are synced, and a new file's name is synced with it. A read
 * takes the file as it stood when it began (its length under a shared
 * flock) and holds no lock while it reads: a ledger of millions of lines
 * takes seconds to read, and a server's start-up sync must not make every
 * write that appends wait for it meanwhile.
 */
#define _GNU_SOURCE	/* memrchr */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "store_int.h"

/* Bytes read back from the end to find the last line: longer than any line. */
#define CHAIN_TAIL	8192

static void
chain_mac(const uint8_t key[32], const uint8_t prev[32], const char *text, size_t len,
    uint8_t out[32])
{
	cm_hmac_sha256(out, key, 32, prev, 32, text, len);
}

static int
chain_path(const char *dir, const struct store_chain *c, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", dir, c->sc_name);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/*
 * Splits LINE (LEN bytes, no newline) into its text (*TEXT, *TLEN, within
 * LINE) and MAC: 0, or -1 when it is not a line of C.
 */
static int
chain_split(const struct store_chain *c, const char *line, size_t len, const char **text,
    size_t *tlen, uint8_t mac[32])
{
	size_t tag = strlen(c->sc_tag);
	char hex[65];

	if (len < tag + 2 + 65 || memcmp(line, c->sc_tag, tag) != 0 || line[tag] != ' ' ||
	    line[len - 65] != ' ')
		return -1;
	memcpy(hex, line + len - 64, 64);
	hex[64] = '\0';
	if (cm_hex_decode(mac, hex, 32) != 0)
		return -1;
	*text = line + tag + 1;
	*tlen = len - tag - 1 - 65;
	return 0;
}

/* Checks one LINE (N bytes with its newline) against PREV, calling FN. */
static cm_result
chain_line(const struct store_chain *c, const uint8_t key[32], uint8_t prev[32],
    const char *line, size_t n, char **text, store_chain_fn fn, void *arg, int *stop)
{
	uint8_t mac[32], want[32];
	const char *body;
	size_t blen;
	int r;

	if (chain_split(c, line, n - 1, &body, &blen, mac) != 0)
		return CM_INVALID;
	chain_mac(key, prev, body, blen, want);
	if (cm_memeq(want, mac, 32) != 0)
		return CM_AUTH;
	memcpy(prev, mac, 32);
	free(*text);
	*text = cm_malloc(blen + 1);
	memcpy(*text, body, blen);
	(*text)[blen] = '\0';
	if (fn != NULL && (r = fn(arg, *text)) != 0) {
		if (r < 0)
			return CM_CONFLICT;
		*stop = 1;
	}
	return CM_OK;
}

/*
 * Reads the end of the SIZE bytes of the file open on FD (its last
 * CHAIN_TAIL bytes at most, from *FROM) into BUF, CHAIN_TAIL + 1 bytes,
 * NUL-terminated; *N is how many (-1 when the read fell short). The last
 * newline there, or NULL.
 */
static char *
chain_tail_read(int fd, off_t size, char *buf, off_t *from, ssize_t *n)
{
	*from = size > CHAIN_TAIL ? size - CHAIN_TAIL : 0;
	if ((*n = pread(fd, buf, (size_t)(size - *from), *from)) != size - *from) {
		*n = -1;
		return NULL;
	}
	buf[*n] = '\0';
	return memrchr(buf, '\n', (size_t)*n);
}

/*
 * Where the last whole line of the file open on FD ends (0: none), in
 * *END; a tail with no newline in its last CHAIN_TAIL bytes is no torn
 * line (those are shorter), and is left for the reader to refuse.
 */
static cm_result
chain_whole_end(int fd, off_t *end)
{
	struct stat sb;
	off_t from;
	char *buf, *nl;
	ssize_t n;

	if (fstat(fd, &sb) != 0)
		return CM_IOERR;
	*end = sb.st_size;
	if (sb.st_size == 0)
		return CM_OK;
	buf = cm_malloc(CHAIN_TAIL + 1);
	nl = chain_tail_read(fd, sb.st_size, buf, &from, &n);
	if (nl != NULL)
		*end = from + (nl - buf) + 1;
	else if (n >= 0 && from == 0)
		*end = 0;
	free(buf);
	return n < 0 ? CM_IOERR : CM_OK;
}

cm_result
store_chain_read(const char *dir, const struct store_chain *c, const uint8_t key[32],
    store_chain_fn fn, void *arg, char *err, size_t errlen)
{
	char path[4096], *line = NULL, *text = NULL;
	uint8_t prev[32];
	size_t cap = 0, lineno = 0;
	off_t end, at = 0;
	ssize_t n;
	int stop = 0;
	FILE *f;
	cm_result rc = CM_OK;

	if (chain_path(dir, c, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "the data directory's path is too long");
		return CM_INVALID;
	}
	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return CM_OK;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return CM_IOERR;
	}
	/*
	 * END is just past the last whole line when the read began. What lies
	 * beyond it is not read: lines appended since, or a torn tail, which
	 * the next append cuts off and writes over (read past END, its first
	 * bytes could join a new line's last ones). Before END nothing is ever
	 * cut or rewritten, so the read needs no lock.
	 */
	(void)flock(fileno(f), LOCK_SH);
	rc = chain_whole_end(fileno(f), &end);
	(void)flock(fileno(f), LOCK_UN);
	if (rc != CM_OK) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		fclose(f);
		return rc;
	}
	memset(prev, 0, sizeof(prev));
	while (!stop && (n = getline(&line, &cap, f)) > 0) {
		lineno++;
		/* A last line without its newline was torn by a crash: never written. */
		if (line[n - 1] != '\n' || n > end - at)
			break;
		at += n;
		rc = chain_line(c, key, prev, line, (size_t)n, &text, fn, arg, &stop);
		if (rc == CM_OK)
			continue;
		if (rc == CM_INVALID)
			snprintf(err, errlen, "%s:%zu: not a ledger line", path, lineno);
		else if (rc == CM_AUTH)
			snprintf(err, errlen, "%s:%zu: the line's MAC does not verify (the "
			    "ledger was edited, or lines were removed before it)", path, lineno);
		else
			snprintf(err, errlen, "%s:%zu: a line this version cannot read", path,
			    lineno);
		/* Signed yet not understood counts as untrusted, as an edit does. */
		rc = CM_AUTH;
		break;
	}
	if (rc == CM_OK && ferror(f)) {
		snprintf(err, errlen, "cannot read %s", path);
		rc = CM_IOERR;
	}
	free(text);
	free(line);
	fclose(f);
	return rc;
}

/*
 * The MAC of the last whole line of C's file open on FD (SIZE bytes) into
 * PREV (zeros when there is none), cutting off a torn last line.
 */
static int
chain_tail(const struct store_chain *c, int fd, off_t size, uint8_t prev[32])
{
	char *buf, *nl, *start;
	off_t from, keep;
	const char *body;
	size_t blen;
	ssize_t n;
	int rc = -1;

	memset(prev, 0, 32);
	if (size == 0)
		return 0;
	buf = cm_malloc(CHAIN_TAIL + 1);
	if ((nl = chain_tail_read(fd, size, buf, &from, &n)) == NULL) {
		rc = n >= 0 && from == 0 ? ftruncate(fd, 0) : -1;
		goto out;
	}
	keep = from + (nl - buf) + 1;
	if (keep != size && ftruncate(fd, keep) != 0)
		goto out;
	*nl = '\0';
	start = memrchr(buf, '\n', (size_t)(nl - buf));
	start = start != NULL ? start + 1 : buf;
	if (start == buf && from != 0)
		goto out;
	rc = chain_split(c, start, (size_t)(nl - start), &body, &blen, prev);
out:
	free(buf);
	return rc;
}

cm_result
store_chain_append(const char *dir, const struct store_chain *c, const uint8_t key[32],
    char *const *texts, size_t n)
{
	char path[4096], hex[65];
	struct cm_buf b;
	struct stat sb;
	uint8_t prev[32], mac[32];
	size_t i;
	bool created;
	int fd, dfd;
	cm_result rc = CM_IOERR;

	if (n == 0)
		return CM_OK;
	if (chain_path(dir, c, path, sizeof(path)) != 0)
		return CM_INVALID;
	created = stat(path, &sb) != 0;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return CM_IOERR;
	memset(&b, 0, sizeof(b));
	if (flock(fd, LOCK_EX) != 0 || fstat(fd, &sb) != 0 ||
	    chain_tail(c, fd, sb.st_size, prev) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		chain_mac(key, prev, texts[i], strlen(texts[i]), mac);
		cm_hex_encode(hex, mac, 32);
		cm_buf_appendf(&b, "%s %s %s\n", c->sc_tag, texts[i], hex);
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
