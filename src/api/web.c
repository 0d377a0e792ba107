/* SPDX-License-Identifier: ISC */
/*
 * The preference centre's pages and assets, served from --web DIR
 * (SPEC §10): /preferences is rendered from DIR/preferences.html
 * (src/api/page.c), /static/NAME is DIR/static/NAME. A NAME is one path segment of letters, digits, '.',
 * '-' and '_', not starting with '.', with a known extension: nothing
 * outside DIR/static can be named, whatever is escaped in the path, and
 * symbolic links are not followed. Every page goes out with a strict
 * Content-Security-Policy (no inline script or style, nothing from
 * another origin, no framing), an ETag, and the nosniff and no-referrer
 * headers every reply carries; the same holds for the pages the link
 * routes answer with (cm_api_page).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/crypto.h"
#include "consentd/util.h"

#define WEB_FILE_MAX	(2 * 1024 * 1024)
#define WEB_NAME_MAX	100

const char cm_api_csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

static const struct {
	const char	*ext;
	const char	*ctype;
} web_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".json", "application/json; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".woff2", "font/woff2" },
	{ ".txt", "text/plain; charset=utf-8" },
};

/* The content type of NAME by its extension, or NULL when not one served. */
static const char *
web_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot != NULL && i < CM_NELEM(web_types); i++)
		if (strcmp(dot, web_types[i].ext) == 0)
			return web_types[i].ctype;
	return NULL;
}

/* Whether NAME may be served: one plain segment, see the top of the file. */
static bool
web_name_valid(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= WEB_NAME_MAX && name[0] != '.' &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") == n && strstr(name, "..") == NULL && web_type(name) != NULL;
}

/*
 * Reads DIR/SUB/NAME (SUB may be NULL) into OUT: a regular file of at
 * most WEB_FILE_MAX bytes, reached without following a symbolic link at
 * its last step. 0, or -1.
 */
int
cm_api_web_read(const char *dir, const char *sub, const char *name, struct cm_buf *out)
{
	char path[1024], buf[8192];
	struct stat st;
	ssize_t r;
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s%s%s", dir, sub ? sub : "", sub ? "/" : "",
	    name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > WEB_FILE_MAX) {
		close(fd);
		return -1;
	}
	while ((r = read(fd, buf, sizeof(buf))) > 0 || (r == -1 && errno == EINTR)) {
		if (r > 0)
			cm_buf_append(out, buf, (size_t)r);
		if (out->b_len > WEB_FILE_MAX) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return r == 0 ? 0 : -1;
}

/* Whether If-None-Match names ETAG (or is "*"). */
static bool
etag_matches(struct cm_request *rq, const char *etag)
{
	const char *inm = cm_req_header(rq, "If-None-Match");

	return inm != NULL && (strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL);
}

void
cm_api_web_reply(struct cm_request *rq, const char *ctype, const struct cm_buf *body)
{
	uint8_t h[32];
	char hex[65], etag[40];

	cm_sha256(h, body->b_data ? body->b_data : "", body->b_len);
	cm_hex_encode(hex, h, sizeof(h));
	snprintf(etag, sizeof(etag), "\"%.32s\"", hex);
	{
		const char *const hdrs[] = { "ETag", etag, "Content-Security-Policy",
		    cm_api_csp, "X-Frame-Options", "DENY", NULL };

		if (etag_matches(rq, etag))
			cm_reply_page(rq, 304, ctype, "", 0, "no-cache", hdrs);
		else
			cm_reply_page(rq, 200, ctype, body->b_data ? body->b_data : "",
			    body->b_len, "no-cache", hdrs);
	}
}

void
cm_api_web_static(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	const char *name = cm_req_param(rq, 0);
	struct cm_buf b = { NULL, 0, 0 };

	if (!web_name_valid(name) || cm_api_web_read(app->app_web, "static", name, &b) != 0) {
		cm_buf_free(&b);
		cm_reply_error(rq, 404, "not_found", NULL, "no such resource");
		return;
	}
	cm_api_web_reply(rq, web_type(name), &b);
	cm_buf_free(&b);
}

void
cm_api_web_preferences(struct cm_request *rq)
{
	cm_api_page_preferences(rq);
}

void
cm_api_web_admin(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	struct cm_buf b = { NULL, 0, 0 };

	if (cm_api_web_read(app->app_web, NULL, "admin.html", &b) != 0) {
		cm_buf_free(&b);
		cm_api_page(rq, 404, "Page not found", "<h1>Page not found</h1>"
		    "<p>The DPO console is not installed on this server.</p>");
		return;
	}
	cm_api_web_reply(rq, "text/html; charset=utf-8", &b);
	cm_buf_free(&b);
}

void
cm_api_page(struct cm_request *rq, unsigned status, const char *title, const char *body)
{
	const char *const hdrs[] = { "Content-Security-Policy", cm_api_csp,
	    "X-Frame-Options", "DENY", NULL };
	struct cm_buf b = { NULL, 0, 0 };

	cm_buf_appendf(&b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<meta name=\"robots\" content=\"noindex\">"
	    "<title>%s</title><link rel=\"stylesheet\" href=\"/static/prefs.css\">"
	    "</head>\n<body><main>%s</main></body></html>\n", title, body);
	cm_reply_page(rq, status, "text/html; charset=utf-8", b.b_data, b.b_len, NULL, hdrs);
	cm_buf_free(&b);
}

void
cm_api_public_url(struct cm_request *rq, char *out, size_t outlen)
{
	struct cm_app *app = cm_req_app(rq);

	if (app->app_public_url[0] != '\0')
		snprintf(out, outlen, "%s", app->app_public_url);
	else
		/* No --public-url: app_https then says the server itself serves TLS. */
		snprintf(out, outlen, "%s://127.0.0.1:%d", app->app_https ? "https" : "http",
		    atomic_load(&app->app_port));
}

char *
cm_api_html_escape(char *dst, size_t dstlen, const char *src)
{
	size_t o = 0, n;
	const char *rep;
	char one[2] = { 0, 0 };

	for (; *src != '\0'; src++) {
		switch (*src) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: one[0] = *src; rep = one; break;
		}
		n = strlen(rep);
		if (o + n >= dstlen)
			break;
		memcpy(dst + o, rep, n);
		o += n;
	}
	dst[o] = '\0';
	return dst;
}
