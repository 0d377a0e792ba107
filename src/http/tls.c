/* SPDX-License-Identifier: ISC */
/*
 * TLS credentials for the server (libmicrohttpd over GnuTLS). Instead of
 * handing libmicrohttpd one certificate and key at start, which it keeps
 * for the daemon's life, the daemon asks tls_retrieve() at each handshake
 * (MHD_OPTION_HTTPS_CERT_CALLBACK), and that serves whichever pair was
 * loaded last. A reload (SIGHUP) reads both files, checks the key is the
 * certificate's, and only then makes the new pair the one served: new
 * connections get it, connections already open keep theirs, the listener
 * is never closed. A bad pair leaves the old one served.
 *
 * Pairs are never freed while the server runs: a handshake may have been
 * handed one just before a reload, and GnuTLS gives no word of when it is
 * done with it. A reload costs the few KiB of a pair, freed at exit.
 *
 * The key file is read into secure memory (sodium_malloc) and wiped as soon
 * as GnuTLS has parsed it. The callback has no argument of its own, so the
 * pair served is one per process: there is one server.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "consentd/crypto.h"
#include "http_int.h"

#define TLS_MAX_CHAIN	16
#define TLS_MAX_CERT	(1024 * 1024)	/* bytes of the certificate file */
#define TLS_MAX_KEY	(64 * 1024)	/* bytes of the key file */

struct tls_pair {
	gnutls_pcert_st		 tp_pcert[TLS_MAX_CHAIN];
	unsigned		 tp_n;
	gnutls_privkey_t	 tp_key;
	char			 tp_fpr[65];	/* SHA-256 of the leaf, hex */
	struct tls_pair		*tp_older;
};

struct cm_tls {
	const char		*t_cert, *t_key;
	pthread_mutex_t		 t_lock;	/* one reload at a time */
	struct tls_pair		*t_pairs;	/* newest first; guarded by t_lock */
};

/* The pair handshakes are given now. */
static _Atomic(struct tls_pair *) tls_served;

bool
cm_tls_supported(void)
{
	return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES &&
	    MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) == MHD_YES;
}

/*
 * Reads PATH (at most MAX bytes) into new memory, secure memory when SECURE,
 * NUL-terminated. NULL with the reason in ERR.
 */
static char *
tls_read(const char *flag, const char *path, size_t max, bool secure, size_t *len,
    char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s %s: cannot open: %s", flag, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (size_t)st.st_size > max) {
		snprintf(err, errlen, "%s %s: not a regular file of 1 to %zu bytes",
		    flag, path, max);
		goto fail;
	}
	buf = secure ? cm_secure_alloc((size_t)st.st_size + 1) :
	    malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s %s: out of memory", flag, path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s %s: cannot read: %s", flag, path,
			    n == 0 ? "the file shrank" : strerror(errno));
			goto fail;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	close(fd);
	return buf;
fail:
	if (buf != NULL && secure)
		cm_secure_free(buf);
	else
		free(buf);
	close(fd);
	return NULL;
}

static void
tls_pair_free(struct tls_pair *p)
{
	unsigned i;

	for (i = 0; i < p->tp_n; i++)
		gnutls_pcert_deinit(&p->tp_pcert[i]);
	if (p->tp_key != NULL)
		gnutls_privkey_deinit(p->tp_key);
	free(p);
}

/* Whether KEY is the private key of CERT's public key. */
static bool
tls_key_matches(gnutls_privkey_t key, gnutls_pubkey_t cert)
{
	gnutls_pubkey_t pk;
	unsigned char a[64], b[64];
	size_t alen = sizeof(a), blen = sizeof(b);
	bool ok;

	if (gnutls_pubkey_init(&pk) < 0)
		return false;
	ok = gnutls_pubkey_import_privkey(pk, key, 0, 0) >= 0 &&
	    gnutls_pubkey_get_key_id(pk, GNUTLS_KEYID_USE_SHA256, a, &alen) >= 0 &&
	    gnutls_pubkey_get_key_id(cert, GNUTLS_KEYID_USE_SHA256, b, &blen) >= 0 &&
	    alen == blen && memcmp(a, b, alen) == 0;
	gnutls_pubkey_deinit(pk);
	return ok;
}

/* Reads T's two files into a new pair; NULL with the reason in ERR. */
static struct tls_pair *
tls_pair_load(const struct cm_tls *t, char *err, size_t errlen)
{
	struct tls_pair *p;
	gnutls_datum_t d;
	uint8_t sum[32];
	char *cert, *key;
	size_t len, i;
	int rc;

	if ((cert = tls_read("--tls-cert", t->t_cert, TLS_MAX_CERT, false, &len,
	    err, errlen)) == NULL)
		return NULL;
	p = cm_calloc(1, sizeof(*p));
	p->tp_n = TLS_MAX_CHAIN;
	d.data = (unsigned char *)cert;
	d.size = (unsigned)len;
	rc = gnutls_pcert_list_import_x509_raw(p->tp_pcert, &p->tp_n, &d,
	    GNUTLS_X509_FMT_PEM, 0);
	free(cert);
	if (rc < 0 || p->tp_n == 0) {
		p->tp_n = 0;
		snprintf(err, errlen, "--tls-cert %s: not a PEM certificate chain (%s)",
		    t->t_cert, rc < 0 ? gnutls_strerror(rc) : "no certificate");
		goto fail;
	}
	if ((key = tls_read("--tls-key", t->t_key, TLS_MAX_KEY, true, &len,
	    err, errlen)) == NULL)
		goto fail;
	d.data = (unsigned char *)key;
	d.size = (unsigned)len;
	if ((rc = gnutls_privkey_init(&p->tp_key)) >= 0)
		rc = gnutls_privkey_import_x509_raw(p->tp_key, &d, GNUTLS_X509_FMT_PEM,
		    NULL, 0);
	cm_secure_free(key);
	if (rc < 0) {
		snprintf(err, errlen, "--tls-key %s: not an unencrypted PEM private key "
		    "(%s)", t->t_key, gnutls_strerror(rc));
		goto fail;
	}
	if (!tls_key_matches(p->tp_key, p->tp_pcert[0].pubkey)) {
		snprintf(err, errlen, "--tls-key %s: not the key of the certificate in %s",
		    t->t_key, t->t_cert);
		goto fail;
	}
	cm_sha256(sum, p->tp_pcert[0].cert.data, p->tp_pcert[0].cert.size);
	for (i = 0; i < sizeof(sum); i++)
		snprintf(p->tp_fpr + 2 * i, 3, "%02x", sum[i]);
	return p;
fail:
	tls_pair_free(p);
	return NULL;
}

/* gnutls_certificate_retrieve_function2: the pair served now. */
static int
tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
    unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	struct tls_pair *p = atomic_load(&tls_served);

	(void)session;
	(void)req_ca_rdn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (p == NULL)
		return -1;
	*pcert = p->tp_pcert;
	*pcert_length = p->tp_n;
	*pkey = p->tp_key;
	return 0;
}

int
tls_options(const struct cm_server_opts *o, struct MHD_OptionItem items[2],
    unsigned *flags, char *err, size_t errlen)
{
	gnutls_certificate_retrieve_function2 *fn = tls_retrieve;

	memset(items, 0, 2 * sizeof(*items));
	items[0].option = items[1].option = MHD_OPTION_END;
	if (o->so_tls == NULL)
		return 0;
	if (!cm_tls_supported()) {
		snprintf(err, errlen, "--tls-cert: this libmicrohttpd was built without TLS");
		return -1;
	}
	/*
	 * The certificate is asked of tls_retrieve() at each handshake, so
	 * that a reload reaches new connections without touching the listener.
	 */
	items[0].option = MHD_OPTION_HTTPS_CERT_CALLBACK;
	items[0].ptr_value = (void *)fn;
	*flags |= MHD_USE_TLS;
	return 0;
}

struct cm_tls *
cm_tls_load(const char *cert, const char *key, char *err, size_t errlen)
{
	struct cm_tls *t;

	t = cm_calloc(1, sizeof(*t));
	t->t_cert = cert;
	t->t_key = key;
	pthread_mutex_init(&t->t_lock, NULL);
	if ((t->t_pairs = tls_pair_load(t, err, errlen)) == NULL) {
		pthread_mutex_destroy(&t->t_lock);
		free(t);
		return NULL;
	}
	atomic_store(&tls_served, t->t_pairs);
	return t;
}

int
cm_tls_reload(struct cm_tls *t, char *err, size_t errlen)
{
	struct tls_pair *p;

	pthread_mutex_lock(&t->t_lock);
	if ((p = tls_pair_load(t, err, errlen)) != NULL) {
		p->tp_older = t->t_pairs;
		t->t_pairs = p;
		atomic_store(&tls_served, p);
	}
	pthread_mutex_unlock(&t->t_lock);
	return p != NULL ? 0 : -1;
}

void
cm_tls_fingerprint(struct cm_tls *t, char out[65])
{
	pthread_mutex_lock(&t->t_lock);
	memcpy(out, t->t_pairs->tp_fpr, 65);
	pthread_mutex_unlock(&t->t_lock);
}

void
cm_tls_free(struct cm_tls *t)
{
	struct tls_pair *p, *older;

	if (t == NULL)
		return;
	if (atomic_load(&tls_served) == t->t_pairs)
		atomic_store(&tls_served, NULL);
	for (p = t->t_pairs; p != NULL; p = older) {
		older = p->tp_older;
		tls_pair_free(p);
	}
	pthread_mutex_destroy(&t->t_lock);
	free(t);
}
