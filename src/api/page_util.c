/* SPDX-License-Identifier: ISC */
/*
 * The frame of the server-rendered preference centre (src/api/page.c):
 * the language chosen from Accept-Language among the files in DIR/i18n/
 * (en when none fits), the session read from its cookie (the /preferences
 * routes are public, so that a person without a session gets a page that
 * says what to do rather than a 401 in JSON), the shell template, the
 * request list, and the accent colour stylesheet. The colour reaches CSS
 * only after the policy checked it is #rrggbb (src/core/policy_schema.c),
 * and is checked again here.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/policy.h"
#include "consentd/shopper.h"
#include "consentd/util.h"
#include "page_int.h"

static const char *const page_langs[] = { "en", "de" };

/* Notices a form's redirect may ask for (?done=KEY). */
static const char *const page_done[] = { "saved", "unsubscribed", "requested",
    "erasure_requested", "signed_out" };

/*
 * The language of RQ: the supported one Accept-Language ranks highest
 * (q values honoured, a region ignored: de-AT is de), else en.
 */
static const char *
page_lang(struct cm_request *rq)
{
	const char *al = cm_req_header(rq, "Accept-Language"), *p, *end, *q;
	const char *best = page_langs[0];
	double bq = 0, v;
	size_t i, n;

	for (p = al; p != NULL && *p != '\0'; p = *end ? end + 1 : end) {
		while (*p == ' ')
			p++;
		end = p + strcspn(p, ",");
		n = strcspn(p, "-;, ");
		v = 1;
		if ((q = memchr(p, ';', (size_t)(end - p))) != NULL &&
		    strncmp(q, ";q=", 3) == 0)
			v = strtod(q + 3, NULL);
		for (i = 0; i < CM_NELEM(page_langs); i++)
			if (n == 2 && strncasecmp(p, page_langs[i], 2) == 0 && v > bq) {
				best = page_langs[i];
				bq = v;
			}
	}
	return best;
}

/* DIR/i18n/LANG.json, or NULL. */
static json_t *
page_load_text(const char *dir, const char *lang)
{
	struct cm_buf b = { NULL, 0, 0 };
	char name[16];
	json_t *t = NULL;

	snprintf(name, sizeof(name), "%s.json", lang);
	if (cm_api_web_read(dir, "i18n", name, &b) == 0)
		t = json_loadb(b.b_data ? b.b_data : "", b.b_len, 0, NULL);
	cm_buf_free(&b);
	if (t != NULL && !json_is_object(t)) {
		json_decref(t);
		t = NULL;
	}
	return t;
}

bool
page_begin(struct cm_request *rq, struct page *pg)
{
	struct cm_app *app = cm_req_app(rq);

	memset(pg, 0, sizeof(*pg));
	pg->pg_rq = rq;
	pg->pg_pol = app->app_policy;
	snprintf(pg->pg_lang, sizeof(pg->pg_lang), "%s", page_lang(rq));
	if ((pg->pg_text = page_load_text(app->app_web, pg->pg_lang)) == NULL &&
	    strcmp(pg->pg_lang, "en") != 0) {
		snprintf(pg->pg_lang, sizeof(pg->pg_lang), "en");
		pg->pg_text = page_load_text(app->app_web, "en");
	}
	return true;
}

void
page_end(struct page *pg)
{
	json_decref(pg->pg_text);
	pg->pg_text = NULL;
	cm_buf_free(&pg->pg_out);
	cm_wipe(pg->pg_sid, sizeof(pg->pg_sid));
	cm_wipe(pg->pg_csrf, sizeof(pg->pg_csrf));
}

/* The value of cookie NAME in the Cookie header of RQ into OUT (OUTLEN). */
static bool
page_cookie(struct cm_request *rq, const char *name, char *out, size_t outlen)
{
	const char *h = cm_req_header(rq, "Cookie"), *p;
	size_t nl = strlen(name), vl;

	for (p = h; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == ';')
			p++;
		vl = strcspn(p, ";");
		if (vl > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			vl -= nl + 1;
			if (vl >= outlen)
				return false;
			memcpy(out, p + nl + 1, vl);
			out[vl] = '\0';
			return true;
		}
		p += vl;
	}
	return false;
}

cm_result
page_session(struct cm_request *rq, struct page *pg)
{
	struct cm_app *app = cm_req_app(rq);
	struct cm_session_grant g;
	cm_result rc;

	if (!page_cookie(rq, CM_SESSION_COOKIE, pg->pg_sid, sizeof(pg->pg_sid)) ||
	    strlen(pg->pg_sid) != CM_SESSION_ID_LEN)
		return CM_NOTFOUND;
	if ((rc = cm_session_verify(app->app_store, app->app_keys, pg->pg_sid, &g)) != CM_OK)
		return rc;
	snprintf(pg->pg_subject, sizeof(pg->pg_subject), "%s", g.sg_subject);
	cm_session_csrf(app->app_keys, pg->pg_sid, pg->pg_csrf);
	pg->pg_signed_in = true;
	return CM_OK;
}

const char *
page_t_or(struct page *pg, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(pg->pg_text, key));

	return v != NULL ? v : def;
}

const char *
page_t(struct page *pg, const char *key)
{
	return page_t_or(pg, key, key);
}

void
page_text(struct page *pg, const char *key)
{
	cm_buf_append_html(&pg->pg_out, page_t(pg, key));
}

void
page_open_form(struct page *pg, const char *action, const char *id)
{
	/* ACTION and ID are our own constants; the token is hex. */
	cm_buf_appendf(&pg->pg_out, "<form method=\"post\" action=\"%s\" id=\"%s\">"
	    "<input type=\"hidden\" name=\"csrf_token\" value=\"%s\">\n", action, id,
	    pg->pg_csrf);
}

void
page_section(struct page *pg, const char *id, const char *key)
{
	cm_buf_appendf(&pg->pg_out, "<section aria-labelledby=\"%s-h\"><h2 id=\"%s-h\">", id, id);
	page_text(pg, key);
	PAGE_PUT(&pg->pg_out, "</h2>\n");
}

void
page_fieldset(struct page *pg, const char *legend, const char *help)
{
	PAGE_PUT(&pg->pg_out, "<fieldset><legend>");
	page_text(pg, legend);
	PAGE_PUT(&pg->pg_out, "</legend><p class=\"desc\">");
	page_text(pg, help);
	PAGE_PUT(&pg->pg_out, "</p>\n");
}

void
page_th(struct page *pg, const char *key)
{
	PAGE_PUT(&pg->pg_out, "<th scope=\"col\">");
	page_text(pg, key);
	PAGE_PUT(&pg->pg_out, "</th>");
}

void
page_notices(struct page *pg)
{
	const char *done = cm_req_query(pg->pg_rq, "done"), *gpc;
	char key[40];
	size_t i;

	for (i = 0; done != NULL && i < CM_NELEM(page_done); i++)
		if (strcmp(done, page_done[i]) == 0) {
			snprintf(key, sizeof(key), "done_%s", done);
			PAGE_PUT(&pg->pg_out, "<p class=\"notice\" role=\"status\">");
			page_text(pg, key);
			PAGE_PUT(&pg->pg_out, "</p>\n");
		}
	gpc = cm_req_header(pg->pg_rq, "Sec-GPC");
	if (gpc != NULL && strcmp(gpc, "1") == 0) {
		PAGE_PUT(&pg->pg_out, "<p class=\"notice\" id=\"gpc\">");
		page_text(pg, "gpc_notice");
		PAGE_PUT(&pg->pg_out, "</p>\n");
	}
}

/* One request as a table row, with its package link when there is one. */
static void
request_row(struct page *pg, json_t *r)
{
	struct cm_buf *b = &pg->pg_out;
	const char *id = json_string_value(json_object_get(r, "id"));
	const char *type = json_string_value(json_object_get(r, "type"));
	const char *st = json_string_value(json_object_get(r, "status"));
	const char *rec = json_string_value(json_object_get(r, "received_at"));
	char key[48];

	if (id == NULL || type == NULL || st == NULL)
		return;
	PAGE_PUT(b, "<tr><td>");
	snprintf(key, sizeof(key), "type_%s", type);
	cm_buf_append_html(b, page_t_or(pg, key, type));
	PAGE_PUT(b, "</td><td>");
	snprintf(key, sizeof(key), "status_%s", st);
	cm_buf_append_html(b, page_t_or(pg, key, st));
	PAGE_PUT(b, "</td><td>");
	cm_buf_append_html(b, rec ? rec : "");
	PAGE_PUT(b, "</td><td>");
	if ((strcmp(type, "access") == 0 || strcmp(type, "portability") == 0) &&
	    (strcmp(st, "completed") == 0 || strcmp(st, "awaiting_systems") == 0)) {
		PAGE_PUT(b, "<a href=\"/v1/me/requests/");
		cm_buf_append_html(b, id);
		PAGE_PUT(b, "/package\" download=\"my-data.json\">");
		page_text(pg, "download_link");
		PAGE_PUT(b, "</a>");
	}
	PAGE_PUT(b, "</td></tr>");
}

void
page_render_requests(struct page *pg, json_t *requests)
{
	struct cm_buf *b = &pg->pg_out;
	json_t *list = json_object_get(requests, "requests"), *r;
	size_t i;

	page_section(pg, "data", "data_heading");
	PAGE_PUT(b, "<p>");
	page_text(pg, "data_text");
	PAGE_PUT(b, "</p><div class=\"actions\">");
	page_open_form(pg, "/preferences/requests", "access-form");
	PAGE_PUT(b, "<input type=\"hidden\" name=\"type\" value=\"access\">"
	    "<button type=\"submit\">");
	page_text(pg, "download_button");
	PAGE_PUT(b, "</button></form>");
	page_open_form(pg, "/preferences/requests", "erasure-form");
	PAGE_PUT(b, "<input type=\"hidden\" name=\"type\" value=\"erasure\">"
	    "<button type=\"submit\" class=\"danger\">");
	page_text(pg, "delete_button");
	PAGE_PUT(b, "</button></form></div>\n");
	if (json_array_size(list) > 0) {
		PAGE_PUT(b, "<h3 id=\"requests-h\">");
		page_text(pg, "requests_heading");
		PAGE_PUT(b, "</h3><div class=\"scroll\" tabindex=\"0\" role=\"region\" "
		    "aria-labelledby=\"requests-h\"><table><thead><tr>");
		page_th(pg, "col_request");
		page_th(pg, "col_status");
		page_th(pg, "col_received");
		page_th(pg, "col_package");
		PAGE_PUT(b, "</tr></thead><tbody>");
		json_array_foreach(list, i, r)
			request_row(pg, r);
		PAGE_PUT(b, "</tbody></table></div>");
	}
	PAGE_PUT(b, "</section>\n");
}

/* The retailer's name: the policy's branding name, else the controller's. */
static const char *
page_name(const struct cm_policy *pol)
{
	json_t *doc = pol->pol_doc;
	const char *n = json_string_value(json_object_get(json_object_get(doc, "branding"),
	    "name"));

	if (n == NULL)
		n = json_string_value(json_object_get(json_object_get(doc, "controller"),
		    "name"));
	return n != NULL ? n : "";
}

/* Appends TPL with each {{slot}} replaced (text escaped, main as markup). */
static void
page_fill(struct page *pg, const char *tpl, struct cm_buf *out)
{
	const char *p = tpl, *open, *close;
	size_t n;

	while ((open = strstr(p, "{{")) != NULL && (close = strstr(open, "}}")) != NULL) {
		cm_buf_append(out, p, (size_t)(open - p));
		n = (size_t)(close - open - 2);
		if (n == 4 && strncmp(open + 2, "main", 4) == 0)
			cm_buf_append(out, pg->pg_out.b_data ? pg->pg_out.b_data : "",
			    pg->pg_out.b_len);
		else if (n == 4 && strncmp(open + 2, "lang", 4) == 0)
			cm_buf_append_html(out, pg->pg_lang);
		else if (n == 4 && strncmp(open + 2, "name", 4) == 0)
			cm_buf_append_html(out, page_name(pg->pg_pol));
		else if (n == 5 && strncmp(open + 2, "title", 5) == 0)
			cm_buf_append_html(out, pg->pg_title == NULL ? page_t(pg, "title") :
			    page_t_or(pg, pg->pg_title, pg->pg_title_en));
		else if (n == 4 && strncmp(open + 2, "skip", 4) == 0)
			cm_buf_append_html(out, page_t(pg, "skip"));
		else if (n == 6 && strncmp(open + 2, "script", 6) == 0 && pg->pg_signed_in)
			/* Only the person's own page has anything to enhance. */
			PAGE_PUT(out, "<script src=\"/static/prefs.js\" defer></script>");
		p = close + 2;
	}
	cm_buf_append(out, p, strlen(p));
}

void
page_finish(struct page *pg, unsigned status)
{
	struct cm_app *app = cm_req_app(pg->pg_rq);
	const char *const hdrs[] = { "Content-Security-Policy", cm_api_csp,
	    "X-Frame-Options", "DENY", "Vary", "Accept-Language, Cookie, Sec-GPC", NULL };
	struct cm_buf tpl = { NULL, 0, 0 }, out = { NULL, 0, 0 };

	if (cm_api_web_read(app->app_web, NULL, "preferences.html", &tpl) != 0) {
		cm_buf_free(&tpl);
		/* Without the shell a link's own page still answers, plainly. */
		if (pg->pg_title != NULL) {
			char esc[512];

			cm_api_html_escape(esc, sizeof(esc), page_t_or(pg, pg->pg_title,
			    pg->pg_title_en));
			cm_buf_appendf(&tpl, "<h1>%s</h1>", esc);
			cm_buf_append(&tpl, pg->pg_out.b_data ? pg->pg_out.b_data : "",
			    pg->pg_out.b_len);
			cm_api_page(pg->pg_rq, status, esc, tpl.b_data);
		} else
			cm_api_page(pg->pg_rq, 404, "Page not found", "<h1>Page not found</h1>"
			    "<p>The preference centre is not installed on this server.</p>");
		cm_buf_free(&tpl);
		page_end(pg);
		return;
	}
	page_fill(pg, tpl.b_data ? tpl.b_data : "", &out);
	/* A person's page is theirs alone: never stored by a cache. */
	if (status == 200 && !pg->pg_signed_in)
		cm_api_web_reply(pg->pg_rq, "text/html; charset=utf-8", &out);
	else
		cm_reply_page(pg->pg_rq, status, "text/html; charset=utf-8", out.b_data,
		    out.b_len, NULL, hdrs);
	cm_buf_free(&tpl);
	cm_wipe(out.b_data, out.b_len);
	cm_buf_free(&out);
	page_end(pg);
}

/* Whether S is a colour #rrggbb. */
static bool
page_colour_valid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 7 || s[0] != '#')
		return false;
	for (i = 1; i < 7; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

void
cm_api_page_theme(struct cm_request *rq)
{
	const struct cm_policy *pol = cm_req_app(rq)->app_policy;
	const char *c = json_string_value(json_object_get(json_object_get(pol->pol_doc,
	    "branding"), "accent_color"));
	struct cm_buf b = { NULL, 0, 0 };

	if (!page_colour_valid(c))
		c = "#1d4ed8";
	cm_buf_appendf(&b, ":root{--accent:%s}\n", c);
	cm_api_web_reply(rq, "text/css; charset=utf-8", &b);
	cm_buf_free(&b);
}

/* Appends TEXT escaped, with each "{name}" the retailer's name. */
static void
page_named(struct page *pg, const char *text)
{
	const char *p = text, *at;
	char *run;

	while ((at = strstr(p, "{name}")) != NULL) {
		run = cm_calloc(1, (size_t)(at - p) + 1);
		memcpy(run, p, (size_t)(at - p));
		cm_buf_append_html(&pg->pg_out, run);
		free(run);
		cm_buf_append_html(&pg->pg_out, page_name(pg->pg_pol));
		p = at + 6;
	}
	cm_buf_append_html(&pg->pg_out, p);
}

void
cm_api_page_note(struct cm_request *rq, unsigned status, const struct cm_page_note *n)
{
	struct page pg;

	page_begin(rq, &pg);
	pg.pg_title = n->pn_heading;
	pg.pg_title_en = n->pn_heading_en;
	PAGE_PUT(&pg.pg_out, "<p>");
	page_named(&pg, page_t_or(&pg, n->pn_text, n->pn_text_en));
	PAGE_PUT(&pg.pg_out, "</p>\n");
	if (n->pn_action != NULL) {
		/* No session here: the link itself is the credential. */
		PAGE_PUT(&pg.pg_out, "<form method=\"post\" action=\"");
		cm_buf_append_html(&pg.pg_out, n->pn_action);
		PAGE_PUT(&pg.pg_out, "\"><input type=\"hidden\" name=\"");
		cm_buf_append_html(&pg.pg_out, n->pn_field);
		PAGE_PUT(&pg.pg_out, "\" value=\"");
		cm_buf_append_html(&pg.pg_out, n->pn_value);
		PAGE_PUT(&pg.pg_out, "\"><p><button type=\"submit\">");
		cm_buf_append_html(&pg.pg_out, page_t_or(&pg, n->pn_button, n->pn_button_en));
		PAGE_PUT(&pg.pg_out, "</button></p></form>\n");
	}
	page_finish(&pg, status);
}
