/* SPDX-License-Identifier: ISC */
/*
 * The senders of the outbox: the file sender (each email an RFC 5322
 * .eml file, each phone message a plain .txt file, in one directory, for
 * development, tests and a pickup by another mail system), SMTP through
 * libcurl with STARTTLS required, and the HTTP POST of a signed webhook.
 * This is the only code that includes <curl/curl.h>. Errors are told as
 * classes and status codes, never with an address, a URL's query or a
 * body.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "senders.h"

/* A header value: itself when printable ASCII, else RFC 2047 base64. */
static void
header_value(struct cm_buf *b, const char *s)
{
	size_t i, n = strlen(s);
	char *enc;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			break;
	if (i == n) {
		cm_buf_append(b, s, n);
		return;
	}
	enc = cm_malloc(n * 4 / 3 + 8);
	cm_base64(enc, n * 4 / 3 + 8, (const uint8_t *)s, n);
	cm_buf_appendf(b, "=?utf-8?b?%s?=", enc);
	free(enc);
}

void
sender_eml(struct cm_buf *b, const struct sender_msg *m, int64_t now_us)
{
	char date[64];
	time_t t = (time_t)(now_us / 1000000);
	struct tm tm;
	const char *p;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	cm_buf_appendf(b, "From: ");
	header_value(b, m->sm_from_name);
	cm_buf_appendf(b, " <%s>\r\nTo: <%s>\r\nSubject: ", m->sm_from, m->sm_to);
	header_value(b, m->sm_subject);
	cm_buf_appendf(b, "\r\nDate: %s\r\nMessage-ID: <%s@consentd>\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n",
	    date, m->sm_id);
	/* Lines end in CRLF, as RFC 5322 has them. */
	for (p = m->sm_text; *p != '\0'; p++) {
		if (*p == '\n' && (p == m->sm_text || p[-1] != '\r'))
			cm_buf_append(b, "\r", 1);
		cm_buf_append(b, p, 1);
	}
}

/* Writes B into DIR/ID.EXT, whole or not at all. */
static int
write_file(const char *dir, const char *id, const char *ext, const struct cm_buf *b,
    char *err, size_t errlen)
{
	char tmp[1200], path[1200];
	ssize_t w;
	size_t off = 0;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s.%s", dir, id, ext) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, id) >= sizeof(tmp)) {
		snprintf(err, errlen, "file sender: directory name too long");
		return -1;
	}
	(void)mkdir(dir, 0700);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		snprintf(err, errlen, "file sender: cannot create a file (%s)", strerror(errno));
		return -1;
	}
	while (off < b->b_len) {
		if ((w = write(fd, b->b_data + off, b->b_len - off)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	if (off != b->b_len || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "file sender: cannot write a file (%s)", strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

int
sender_file(const char *dir, const struct sender_msg *m, int64_t now_us, char *err,
    size_t errlen)
{
	struct cm_buf b;
	int rc;

	memset(&b, 0, sizeof(b));
	if (m->sm_phone)
		cm_buf_appendf(&b, "To: %s\nSubject: %s\n\n%s", m->sm_to, m->sm_subject,
		    m->sm_text);
	else
		sender_eml(&b, m, now_us);
	rc = write_file(dir, m->sm_id, m->sm_phone ? "txt" : "eml", &b, err, errlen);
	cm_wipe(b.b_data, b.b_len);
	cm_buf_free(&b);
	return rc;
}

/* ---- libcurl -------------------------------------------------------------- */

void
sender_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct upload {
	const char	*u_data;
	size_t		 u_len, u_off;
};

static size_t
upload_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (n > u->u_len - u->u_off)
		n = u->u_len - u->u_off;
	memcpy(buf, u->u_data + u->u_off, n);
	u->u_off += n;
	return n;
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int
sender_smtp(const struct sender_msg *m, long timeout_ms, int64_t now_us, char *err,
    size_t errlen)
{
	const char *url = getenv("CONSENTD_SMTP_URL"), *user = getenv("CONSENTD_SMTP_USER"),
	    *pass = getenv("CONSENTD_SMTP_PASSWORD"), *ca = getenv("CONSENTD_SMTP_CA");
	struct curl_slist *rcpt = NULL;
	struct upload u;
	struct cm_buf b;
	char to[600], from[600];
	CURLcode cc;
	CURL *c;

	if (m->sm_phone) {
		snprintf(err, errlen, "smtp sender: no sender for phone messages");
		return -1;
	}
	if (url == NULL || *url == '\0') {
		snprintf(err, errlen, "smtp sender: CONSENTD_SMTP_URL is not set");
		return -1;
	}
	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "smtp sender: cannot start libcurl");
		return -1;
	}
	memset(&b, 0, sizeof(b));
	sender_eml(&b, m, now_us);
	u.u_data = b.b_data;
	u.u_len = b.b_len;
	u.u_off = 0;
	snprintf(to, sizeof(to), "<%s>", m->sm_to);
	snprintf(from, sizeof(from), "<%s>", m->sm_from);
	rcpt = curl_slist_append(rcpt, to);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	/*
	 * A private CA is trusted by naming its PEM file; the peer's
	 * certificate and host name are checked all the same (libcurl's
	 * defaults, set here so that no other setting turns them off).
	 */
	if (ca != NULL && *ca != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (user != NULL)
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
	if (pass != NULL)
		curl_easy_setopt(c, CURLOPT_PASSWORD, pass);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK)
		snprintf(err, errlen, "smtp sender: %s", curl_easy_strerror(cc));
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	cm_wipe(to, sizeof(to));
	cm_wipe(b.b_data, b.b_len);
	cm_buf_free(&b);
	return cc == CURLE_OK ? 0 : -1;
}

int
sender_webhook(const char *url, const char *event, const char *delivery,
    const char *signature, const char *body, size_t len, long timeout_ms, char *err,
    size_t errlen)
{
	struct curl_slist *h = NULL;
	char line[160];
	long status = 0;
	CURLcode cc;
	CURL *c;

	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "webhook: cannot start libcurl");
		return -1;
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	snprintf(line, sizeof(line), "X-Consentd-Signature: %s", signature);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "X-Consentd-Event: %s", event);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "X-Consentd-Delivery: %s", delivery);
	h = curl_slist_append(h, line);
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "consentd-webhook/1");
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "webhook: %s", curl_easy_strerror(cc));
		return -1;
	}
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "webhook: HTTP %ld", status);
		return -1;
	}
	return 0;
}
