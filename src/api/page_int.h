/* SPDX-License-Identifier: ISC */
/*
 * Shared by the server-rendered preference centre (src/api/page.c, the
 * page; page_util.c, its frame, language and session; page_form.c, the
 * forms it posts). Not part of the API's interface.
 */
#ifndef CONSENTD_API_PAGE_INT_H
#define CONSENTD_API_PAGE_INT_H

#include <stdbool.h>

#include <jansson.h>

#include "consentd/common.h"
#include "consentd/shopper.h"
#include "consentd/util.h"

struct cm_request;
struct cm_policy;

/* Appends the string literal S to buffer B (its length counted by the compiler). */
#define PAGE_PUT(b, s)	cm_buf_append((b), "" s, sizeof(s) - 1)

/* One page being rendered. */
struct page {
	struct cm_request	*pg_rq;
	const struct cm_policy	*pg_pol;
	json_t			*pg_text;	/* DIR/i18n/<lang>.json, or NULL */
	char			 pg_lang[3];	/* "en", "de" */
	struct cm_buf		 pg_out;	/* the {{main}} markup */
	bool			 pg_signed_in;
	bool			 pg_replied;	/* a reply already went out */
	const char		*pg_title;	/* key of the title; NULL: "title" */
	const char		*pg_title_en;	/* its text when no file has it */
	char			 pg_sid[CM_SESSION_ID_LEN + 1];
	char			 pg_csrf[CM_SESSION_ID_LEN + 1];
	char			 pg_subject[CM_SUBJECT_ID_LEN + 1];
};

/* Starts PG for RQ: language and text. False: a reply (503) went out. */
bool	page_begin(struct cm_request *, struct page *);
/* Frees PG's memory and wipes its session secrets. */
void	page_end(struct page *);
/*
 * The session of RQ's cookie into PG (sid, subject, CSRF token).
 * CM_NOTFOUND when there is none (or it expired or ended).
 */
cm_result page_session(struct cm_request *, struct page *);
/* Replies STATUS with the shell around pg_out, then page_end(). */
void	page_finish(struct page *, unsigned status);

/* The text of KEY in the page's language (en as fallback), or KEY. */
const char *page_t(struct page *, const char *key);
/* The same, or DEF when no language file has KEY. */
const char *page_t_or(struct page *, const char *key, const char *def);
/* Appends the text of KEY, escaped. */
void	page_text(struct page *, const char *key);
/* <form method=post action=ACTION id=ID> with the CSRF token field. */
void	page_open_form(struct page *, const char *action, const char *id);
/* <section aria-labelledby=ID-h><h2 id=ID-h>KEY's text</h2> */
void	page_section(struct page *, const char *id, const char *key);
/* <fieldset><legend>LEGEND</legend><p class=desc>HELP</p> */
void	page_fieldset(struct page *, const char *legend, const char *help);
/* <th scope=col>KEY's text</th> */
void	page_th(struct page *, const char *key);
/* The notices at the top: what the last form did (?done=), GPC honoured. */
void	page_notices(struct page *);
/* Whether topic T of the policy is a person's choice (has a switch). */
bool	page_topic_switchable(const struct cm_policy *, size_t t);
/* Whether the page shows a switch for the policy's channel ID. */
bool	page_channel_shown(const struct cm_policy *, const char *id);
/* The person's requests and the download / delete forms. */
void	page_render_requests(struct page *, json_t *requests);

#endif
