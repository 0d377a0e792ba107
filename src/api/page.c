/* SPDX-License-Identifier: ISC */
/*
 * The preference centre page, rendered on the server (SPEC §10) so that
 * it shows the person's current state and works with plain HTML forms
 * when no JavaScript runs; static/prefs.js only enhances it. The shell
 * is DIR/preferences.html with {{lang}}, {{title}} and {{main}} slots;
 * the page text is DIR/i18n/<lang>.json, chosen by Accept-Language (en
 * when nothing better matches); the retailer's name and the meaning of
 * every switch come from the policy. Everything that is not our own
 * markup goes through cm_buf_append_html, whatever its source, so a
 * policy or a language file cannot inject markup either. The forms post
 * to src/api/page_form.c, which answers 303 back here (?done=… says what
 * happened, for the notice at the top).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/consent.h"
#include "consentd/dsr.h"
#include "consentd/outbox.h"
#include "consentd/policy.h"
#include "consentd/shopper.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "page_int.h"

/* What the page shows, read in one snapshot. */
struct page_data {
	json_t	*pd_prefs;	/* cm_prefs_get */
	json_t	*pd_history;	/* cm_consent_list with history */
	json_t	*pd_requests;	/* cm_dsr_list */
	json_t	*pd_systems;	/* cm_outbox_consent_status */
};

static void
page_data_free(struct page_data *d)
{
	json_decref(d->pd_prefs);
	json_decref(d->pd_history);
	json_decref(d->pd_requests);
	json_decref(d->pd_systems);
	memset(d, 0, sizeof(*d));
}

static cm_result
page_read(const struct cm_ctx *cx, const char *subject, struct page_data *d, struct cm_why *w)
{
	struct cm_dsr_filter f;
	cm_result rc;

	memset(&f, 0, sizeof(f));
	f.df_status = f.df_type = -1;
	f.df_subject = subject;
	f.df_limit = 50;
	if ((rc = cm_prefs_get(cx, subject, &d->pd_prefs, w)) != CM_OK ||
	    (rc = cm_consent_list(cx, subject, true, false, &d->pd_history, w)) != CM_OK ||
	    (rc = cm_dsr_list(cx, &f, &d->pd_requests, w)) != CM_OK)
		return rc;
	return cm_outbox_consent_status(cx, subject, &d->pd_systems);
}

/* The title of policy item ID in LIST ("purposes", "channels", "topics"), or ID. */
static const char *
policy_text(const struct cm_policy *pol, const char *list, const char *id, const char *field)
{
	json_t *a = json_object_get((json_t *)pol->pol_doc, list), *it;
	const char *v;
	size_t i;

	json_array_foreach(a, i, it)
		if ((v = json_string_value(json_object_get(it, "id"))) != NULL &&
		    strcmp(v, id) == 0)
			return json_string_value(json_object_get(it, field));
	return NULL;
}

bool
page_topic_switchable(const struct cm_policy *pol, size_t t)
{
	enum cm_lawful_basis b = pol->pol_purposes[pol->pol_topics[t].tp_purpose].pu_basis;

	/* As src/core/prefs.c: a contract or a legal obligation is no one's choice. */
	return b == CM_BASIS_CONSENT || b == CM_BASIS_SOFT_OPT_IN ||
	    b == CM_BASIS_LEGITIMATE_INTEREST;
}

/* Whether the policy's channel C carries a topic a person can switch. */
static bool
channel_switchable(const struct cm_policy *pol, size_t c)
{
	size_t t;

	for (t = 0; t < pol->pol_ntopics; t++)
		if (page_topic_switchable(pol, t) &&
		    (pol->pol_purposes[pol->pol_topics[t].tp_purpose].pu_channels &
		    (UINT64_C(1) << c)))
			return true;
	return false;
}

bool
page_channel_shown(const struct cm_policy *pol, const char *id)
{
	int c = cm_policy_channel_index(pol, id);

	return c >= 0 && channel_switchable(pol, (size_t)c);
}

/* One switch: a checkbox with role switch, its label and what it means. */
static void
render_switch(struct page *pg, const char *kind, const char *id, const char *title,
    const char *desc, const char *extra, bool on)
{
	struct cm_buf *b = &pg->pg_out;

	cm_buf_appendf(b, "<div class=\"switch\"><input type=\"checkbox\" role=\"switch\" "
	    "id=\"%s-", kind);
	cm_buf_append_html(b, id);
	cm_buf_appendf(b, "\" name=\"%s.", kind);
	cm_buf_append_html(b, id);
	cm_buf_appendf(b, "\" value=\"on\" data-kind=\"%s\" data-id=\"", kind);
	cm_buf_append_html(b, id);
	cm_buf_appendf(b, "\" aria-describedby=\"%s-", kind);
	cm_buf_append_html(b, id);
	cm_buf_appendf(b, "-desc\"%s><label for=\"%s-", on ? " checked" : "", kind);
	cm_buf_append_html(b, id);
	PAGE_PUT(b, "\">");
	cm_buf_append_html(b, title ? title : id);
	cm_buf_appendf(b, "</label><p class=\"desc\" id=\"%s-", kind);
	cm_buf_append_html(b, id);
	PAGE_PUT(b, "-desc\">");
	cm_buf_append_html(b, desc ? desc : "");
	if (extra != NULL && *extra != '\0') {
		PAGE_PUT(b, " ");
		cm_buf_append_html(b, extra);
	}
	PAGE_PUT(b, "</p></div>\n");
}

/* A topic that is part of the service: what it is, and that it is not a choice. */
static void
render_fixed(struct page *pg, const char *title, const char *desc, const char *extra)
{
	struct cm_buf *b = &pg->pg_out;

	PAGE_PUT(b, "<div class=\"fixed\"><p class=\"fixed-title\">");
	cm_buf_append_html(b, title ? title : "");
	PAGE_PUT(b, " <span class=\"tag\">");
	page_text(pg, "part_of_service");
	PAGE_PUT(b, "</span></p><p class=\"desc\">");
	cm_buf_append_html(b, desc ? desc : "");
	PAGE_PUT(b, " ");
	cm_buf_append_html(b, extra ? extra : "");
	PAGE_PUT(b, "</p></div>\n");
}

/* The channels topic T's purpose uses, as "Sent by: Email, Text message". */
static void
topic_channels(struct page *pg, size_t t, struct cm_buf *out)
{
	const struct cm_policy *pol = pg->pg_pol;
	const struct cm_purpose *p = &pol->pol_purposes[pol->pol_topics[t].tp_purpose];
	size_t c, n = 0;

	cm_buf_appendf(out, "%s ", page_t(pg, "sent_by"));
	for (c = 0; c < pol->pol_nchannels; c++)
		if (p->pu_channels & (UINT64_C(1) << c))
			cm_buf_appendf(out, "%s%s", n++ ? ", " : "", pol->pol_channels[c].ch_title);
	PAGE_PUT(out, ".");
}

/* The save form: topics, channels, frequency and pause. */
static void
render_prefs(struct page *pg, json_t *prefs)
{
	const struct cm_policy *pol = pg->pg_pol;
	struct cm_buf *b = &pg->pg_out, sent = { NULL, 0, 0 };
	json_t *topics = json_object_get(prefs, "topics");
	json_t *chans = json_object_get(prefs, "channels");
	const char *freq = json_string_value(json_object_get(prefs, "frequency"));
	const char *paused = json_string_value(json_object_get(prefs, "paused_until"));
	size_t i;

	page_open_form(pg, "/preferences", "prefs-form");
	page_fieldset(pg, "topics_legend", "topics_help");
	for (i = 0; i < pol->pol_ntopics; i++) {
		const char *id = pol->pol_topics[i].tp_id;

		cm_buf_reset(&sent);
		topic_channels(pg, i, &sent);
		if (page_topic_switchable(pol, i))
			render_switch(pg, "topic", id, pol->pol_topics[i].tp_title,
			    policy_text(pol, "topics", id, "description"), sent.b_data,
			    json_is_true(json_object_get(topics, id)));
		else
			render_fixed(pg, pol->pol_topics[i].tp_title,
			    policy_text(pol, "topics", id, "description"), sent.b_data);
	}
	cm_buf_free(&sent);
	PAGE_PUT(b, "</fieldset>\n");
	page_fieldset(pg, "channels_legend", "channels_help");
	for (i = 0; i < pol->pol_nchannels; i++) {
		const char *id = pol->pol_channels[i].ch_id;

		if (!channel_switchable(pol, i))
			continue;
		render_switch(pg, "channel", id, pol->pol_channels[i].ch_title,
		    policy_text(pol, "channels", id, "description"), NULL,
		    json_is_true(json_object_get(chans, id)));
	}
	PAGE_PUT(b, "</fieldset>\n<fieldset><legend>");
	page_text(pg, "when_legend");
	PAGE_PUT(b, "</legend><p><label for=\"frequency\">");
	page_text(pg, "frequency_label");
	PAGE_PUT(b, "</label><select id=\"frequency\" name=\"frequency\">");
	for (i = 0; i < pol->pol_nfrequencies; i++) {
		char key[80];

		PAGE_PUT(b, "<option value=\"");
		cm_buf_append_html(b, pol->pol_frequencies[i]);
		cm_buf_appendf(b, "\"%s>", freq && strcmp(freq, pol->pol_frequencies[i]) == 0 ?
		    " selected" : "");
		snprintf(key, sizeof(key), "freq_%s", pol->pol_frequencies[i]);
		cm_buf_append_html(b, page_t_or(pg, key, pol->pol_frequencies[i]));
		PAGE_PUT(b, "</option>");
	}
	PAGE_PUT(b, "</select></p><p><label for=\"paused_until\">");
	page_text(pg, "pause_label");
	PAGE_PUT(b, "</label><input type=\"date\" id=\"paused_until\" name=\"paused_until\" "
	    "aria-describedby=\"pause-help\" value=\"");
	if (paused != NULL && strlen(paused) >= 10) {
		char day[11];

		snprintf(day, sizeof(day), "%.10s", paused);
		cm_buf_append_html(b, day);
	}
	PAGE_PUT(b, "\"></p><p class=\"desc\" id=\"pause-help\">");
	page_text(pg, "pause_help");
	PAGE_PUT(b, "</p></fieldset>\n<p><button type=\"submit\">");
	page_text(pg, "save");
	PAGE_PUT(b, "</button> <span id=\"save-status\" role=\"status\" data-saving=\"");
	page_text(pg, "saving");
	PAGE_PUT(b, "\" data-saved=\"");
	page_text(pg, "saved_now");
	PAGE_PUT(b, "\" data-failed=\"");
	page_text(pg, "save_failed");
	PAGE_PUT(b, "\"></span></p></form>\n");
}

/* "Unsubscribe from all marketing": one button, an optional reason. */
static void
render_unsubscribe(struct page *pg)
{
	static const char *const reasons[] = { "too_frequent", "not_relevant",
	    "never_signed_up", "privacy", "other" };
	struct cm_buf *b = &pg->pg_out;
	char key[48];
	size_t i;

	page_section(pg, "unsub", "unsub_heading");
	PAGE_PUT(b, "<p>");
	page_text(pg, "unsub_text");
	PAGE_PUT(b, "</p>");
	page_open_form(pg, "/preferences/unsubscribe", "unsub-form");
	PAGE_PUT(b, "<p><label for=\"reason\">");
	page_text(pg, "reason_label");
	PAGE_PUT(b, "</label><select id=\"reason\" name=\"reason\"><option value=\"\">");
	page_text(pg, "reason_none");
	PAGE_PUT(b, "</option>");
	for (i = 0; i < CM_NELEM(reasons); i++) {
		snprintf(key, sizeof(key), "reason_%s", reasons[i]);
		cm_buf_appendf(b, "<option value=\"%s\">", reasons[i]);
		page_text(pg, key);
		PAGE_PUT(b, "</option>");
	}
	PAGE_PUT(b, "</select></p><p><button type=\"submit\" class=\"danger\">");
	page_text(pg, "unsub_button");
	PAGE_PUT(b, "</button></p></form></section>\n");
}

/* Whether each downstream system applied the last change. */
static void
render_systems(struct page *pg, json_t *systems)
{
	struct cm_buf *b = &pg->pg_out;
	json_t *s;
	char key[48];
	size_t i;

	page_section(pg, "systems", "systems_heading");
	if (json_array_size(systems) == 0) {
		PAGE_PUT(b, "<p>");
		page_text(pg, "systems_none");
		PAGE_PUT(b, "</p></section>\n");
		return;
	}
	PAGE_PUT(b, "<ul class=\"systems\">");
	json_array_foreach(systems, i, s) {
		const char *st = json_string_value(json_object_get(s, "status"));
		const char *at = json_string_value(json_object_get(s, "at"));

		snprintf(key, sizeof(key), "system_%s", st ? st : "none");
		PAGE_PUT(b, "<li><span class=\"sys\">");
		cm_buf_append_html(b, json_string_value(json_object_get(s, "name")) ?: "?");
		PAGE_PUT(b, "</span>: ");
		cm_buf_append_html(b, page_t_or(pg, key, st ? st : "none"));
		if (at != NULL) {
			PAGE_PUT(b, " <time>");
			cm_buf_append_html(b, at);
			PAGE_PUT(b, "</time>");
		}
		PAGE_PUT(b, "</li>");
	}
	PAGE_PUT(b, "</ul></section>\n");
}

/* The consent history, newest first. */
static void
render_history(struct page *pg, json_t *history)
{
	const struct cm_policy *pol = pg->pg_pol;
	struct cm_buf *b = &pg->pg_out;
	json_t *ev = json_object_get(history, "events");
	json_t *e;
	char key[48];
	size_t i, n;

	if (ev == NULL)
		ev = json_object_get(history, "consents");
	page_section(pg, "history", "history_heading");
	if ((n = json_array_size(ev)) == 0) {
		PAGE_PUT(b, "<p>");
		page_text(pg, "history_none");
		PAGE_PUT(b, "</p></section>\n");
		return;
	}
	PAGE_PUT(b, "<div class=\"scroll\" tabindex=\"0\" role=\"region\" "
	    "aria-labelledby=\"history-h\"><table><thead><tr>");
	page_th(pg, "col_when");
	page_th(pg, "col_what");
	page_th(pg, "col_channel");
	page_th(pg, "col_choice");
	page_th(pg, "col_how");
	PAGE_PUT(b, "</tr></thead><tbody>");
	for (i = n; i-- > 0;) {
		const char *pu, *ch, *st, *m, *at, *title;

		e = json_array_get(ev, i);
		pu = json_string_value(json_object_get(e, "purpose"));
		ch = json_string_value(json_object_get(e, "channel"));
		st = json_string_value(json_object_get(e, "state"));
		m = json_string_value(json_object_get(e, "method"));
		at = json_string_value(json_object_get(e, "collected_at"));
		title = pu ? policy_text(pol, "purposes", pu, "title") : NULL;
		PAGE_PUT(b, "<tr><td>");
		cm_buf_append_html(b, at ? at : "");
		PAGE_PUT(b, "</td><td>");
		cm_buf_append_html(b, title ? title : pu ? pu : "");
		PAGE_PUT(b, "</td><td>");
		title = ch ? policy_text(pol, "channels", ch, "title") : NULL;
		cm_buf_append_html(b, title ? title : ch ? ch : page_t(pg, "all_channels"));
		PAGE_PUT(b, "</td><td>");
		snprintf(key, sizeof(key), "state_%s", st ? st : "");
		cm_buf_append_html(b, page_t_or(pg, key, st ? st : ""));
		PAGE_PUT(b, "</td><td>");
		snprintf(key, sizeof(key), "method_%s", m ? m : "");
		cm_buf_append_html(b, page_t_or(pg, key, m ? m : ""));
		PAGE_PUT(b, "</td></tr>");
	}
	PAGE_PUT(b, "</tbody></table></div></section>\n");
}

/* The page for a signed-in person. */
static void
render_person(struct page *pg, const struct page_data *d)
{
	struct cm_buf *b = &pg->pg_out;

	page_notices(pg);
	page_section(pg, "prefs", "prefs_heading");
	render_prefs(pg, d->pd_prefs);
	PAGE_PUT(b, "</section>\n");
	render_unsubscribe(pg);
	page_render_requests(pg, d->pd_requests);
	render_systems(pg, d->pd_systems);
	render_history(pg, d->pd_history);
	page_open_form(pg, "/preferences/logout", "logout-form");
	PAGE_PUT(b, "<p><button type=\"submit\">");
	page_text(pg, "signout");
	PAGE_PUT(b, "</button></p></form>\n");
}

void
cm_api_page_preferences(struct cm_request *rq)
{
	struct page_data d;
	struct page pg;
	struct cm_why w;
	struct cm_ctx cx;
	cm_result rc;

	memset(&d, 0, sizeof(d));
	memset(&w, 0, sizeof(w));
	if (!page_begin(rq, &pg))
		return;
	if ((rc = page_session(rq, &pg)) == CM_NOTFOUND) {
		page_notices(&pg);
		PAGE_PUT(&pg.pg_out, "<p>");
		page_text(&pg, "no_session");
		PAGE_PUT(&pg.pg_out, "</p>");
		page_finish(&pg, 200);
		return;
	}
	if (rc != CM_OK || !cm_api_ctx(rq, &cx)) {
		if (rc != CM_OK)
			cm_reply_store_error(rq, rc);
		page_end(&pg);
		return;
	}
	if ((rc = cm_db_read_begin(cx.cx_db)) == CM_OK) {
		rc = page_read(&cx, pg.pg_subject, &d, &w);
		cm_db_read_end(cx.cx_db);
	}
	if (rc != CM_OK) {
		page_data_free(&d);
		page_end(&pg);
		cm_api_fail(rq, rc, &w, NULL);
		return;
	}
	render_person(&pg, &d);
	page_data_free(&d);
	page_finish(&pg, 200);
}
