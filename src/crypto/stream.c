/* SPDX-License-Identifier: ISC */
/*
 * What a document too large to hold in memory needs: SHA-256 fed piece by
 * piece, Ed25519 signatures of short texts (a manifest), and sealed files
 * written and read a chunk at a time with libsodium's secretstream, so a
 * package of any size is encrypted at rest with a bounded buffer.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "consentd/crypto.h"

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((struct cm_sha256_ctx *)0)->sc_state),
    "cm_sha256_ctx too small for libsodium's state");

#define SS_ABYTES	crypto_secretstream_xchacha20poly1305_ABYTES
#define SS_HEADER	crypto_secretstream_xchacha20poly1305_HEADERBYTES

void
cm_sha256_init(struct cm_sha256_ctx *c)
{
	crypto_hash_sha256_init((crypto_hash_sha256_state *)(void *)c->sc_state);
}

void
cm_sha256_update(struct cm_sha256_ctx *c, const void *p, size_t len)
{
	crypto_hash_sha256_update((crypto_hash_sha256_state *)(void *)c->sc_state, p, len);
}

void
cm_sha256_final(struct cm_sha256_ctx *c, uint8_t out[32])
{
	crypto_hash_sha256_final((crypto_hash_sha256_state *)(void *)c->sc_state, out);
}

void
cm_ed25519_sign(uint8_t sig[64], const void *msg, size_t len, const uint8_t sk[64])
{
	crypto_sign_detached(sig, NULL, msg, len, sk);
}

int
cm_ed25519_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pk[32])
{
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : -1;
}

/* ---- sealed files ------------------------------------------------------- */

struct cm_sealed_writer {
	int		 sw_fd;
	char		*sw_path;
	uint64_t	 sw_size;
	size_t		 sw_used;		/* plaintext bytes in sw_pt */
	crypto_secretstream_xchacha20poly1305_state *sw_st;	/* secure memory */
	uint8_t		 sw_pt[CM_SEALED_CHUNK];
	uint8_t		 sw_ct[CM_SEALED_CHUNK + SS_ABYTES];
};

struct cm_sealed_reader {
	int		 sr_fd;
	bool		 sr_final;		/* the final chunk was read */
	size_t		 sr_len;		/* plaintext bytes in sr_pt */
	size_t		 sr_off;		/* of them, already returned */
	crypto_secretstream_xchacha20poly1305_state *sr_st;
	uint8_t		 sr_pt[CM_SEALED_CHUNK];
	uint8_t		 sr_ct[CM_SEALED_CHUNK + SS_ABYTES];
};

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly LEN bytes, or fewer at the end of the file: the count, or -1. */
static ssize_t
read_full(int fd, uint8_t *p, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if ((n = read(fd, p + got, len - got)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

struct cm_sealed_writer *
cm_sealed_create(const char *path, const uint8_t key[CM_KEY_LEN])
{
	struct cm_sealed_writer *w;
	uint8_t header[SS_HEADER];
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return NULL;
	w = cm_calloc(1, sizeof(*w));
	w->sw_fd = fd;
	w->sw_path = cm_strdup(path);
	w->sw_st = cm_secure_alloc(sizeof(*w->sw_st));
	crypto_secretstream_xchacha20poly1305_init_push(w->sw_st, header, key);
	if (write_all(fd, header, sizeof(header)) != 0) {
		cm_sealed_abort(w);
		return NULL;
	}
	return w;
}

static int
writer_flush(struct cm_sealed_writer *w, uint8_t tag)
{
	unsigned long long clen;

	crypto_secretstream_xchacha20poly1305_push(w->sw_st, w->sw_ct, &clen, w->sw_pt,
	    w->sw_used, NULL, 0, tag);
	sodium_memzero(w->sw_pt, w->sw_used);
	w->sw_used = 0;
	return write_all(w->sw_fd, w->sw_ct, (size_t)clen);
}

int
cm_sealed_write(struct cm_sealed_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t n;

	while (len > 0) {
		if (w->sw_used == CM_SEALED_CHUNK && writer_flush(w, 0) != 0)
			return -1;
		n = CM_SEALED_CHUNK - w->sw_used;
		if (n > len)
			n = len;
		memcpy(w->sw_pt + w->sw_used, p, n);
		w->sw_used += n;
		w->sw_size += n;
		p += n;
		len -= n;
	}
	return 0;
}

static void
writer_free(struct cm_sealed_writer *w)
{
	sodium_memzero(w->sw_pt, sizeof(w->sw_pt));
	cm_secure_free(w->sw_st);
	free(w->sw_path);
	free(w);
}

int
cm_sealed_finish(struct cm_sealed_writer *w, uint64_t *size)
{
	if (writer_flush(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL) != 0 ||
	    fsync(w->sw_fd) != 0) {
		cm_sealed_abort(w);
		return -1;
	}
	if (close(w->sw_fd) != 0) {
		w->sw_fd = -1;
		cm_sealed_abort(w);
		return -1;
	}
	if (size != NULL)
		*size = w->sw_size;
	writer_free(w);
	return 0;
}

void
cm_sealed_abort(struct cm_sealed_writer *w)
{
	if (w == NULL)
		return;
	if (w->sw_fd >= 0)
		close(w->sw_fd);
	unlink(w->sw_path);
	writer_free(w);
}

struct cm_sealed_reader *
cm_sealed_open(const char *path, const uint8_t key[CM_KEY_LEN])
{
	struct cm_sealed_reader *r;
	uint8_t header[SS_HEADER];
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	r = cm_calloc(1, sizeof(*r));
	r->sr_fd = fd;
	r->sr_st = cm_secure_alloc(sizeof(*r->sr_st));
	if (read_full(fd, header, sizeof(header)) != (ssize_t)sizeof(header) ||
	    crypto_secretstream_xchacha20poly1305_init_pull(r->sr_st, header, key) != 0) {
		cm_sealed_close(r);
		errno = EBADMSG;
		return NULL;
	}
	return r;
}

/* Reads and opens the next chunk into sr_pt. 0, or -1 when forged or cut. */
static int
reader_fill(struct cm_sealed_reader *r)
{
	unsigned long long plen;
	ssize_t n;
	uint8_t tag;

	if ((n = read_full(r->sr_fd, r->sr_ct, sizeof(r->sr_ct))) < (ssize_t)SS_ABYTES)
		return -1;
	if (crypto_secretstream_xchacha20poly1305_pull(r->sr_st, r->sr_pt, &plen, &tag,
	    r->sr_ct, (unsigned long long)n, NULL, 0) != 0)
		return -1;
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		/* Nothing may follow the final chunk. */
		if (read_full(r->sr_fd, r->sr_ct, 1) != 0)
			return -1;
		r->sr_final = true;
	} else if (tag != 0 || (size_t)n != sizeof(r->sr_ct)) {
		return -1;
	}
	r->sr_len = (size_t)plen;
	r->sr_off = 0;
	return 0;
}

long
cm_sealed_read(struct cm_sealed_reader *r, void *buf, size_t len)
{
	size_t n;

	while (r->sr_off == r->sr_len) {
		if (r->sr_final)
			return 0;
		if (reader_fill(r) != 0)
			return -1;
	}
	n = r->sr_len - r->sr_off;
	if (n > len)
		n = len;
	memcpy(buf, r->sr_pt + r->sr_off, n);
	r->sr_off += n;
	return (long)n;
}

void
cm_sealed_close(struct cm_sealed_reader *r)
{
	if (r == NULL)
		return;
	close(r->sr_fd);
	sodium_memzero(r->sr_pt, sizeof(r->sr_pt));
	cm_secure_free(r->sr_st);
	free(r);
}
