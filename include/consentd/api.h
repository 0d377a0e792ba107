/* SPDX-License-Identifier: ISC */
/*
 * The HTTP API's route table and its handlers, one file per resource under
 * src/api/. Handlers validate input, call the domain and store layers, and
 * reply through the helpers of consentd/http.h.
 */
#ifndef CONSENTD_API_H
#define CONSENTD_API_H

#include <stddef.h>
#include <stdint.h>

#include "consentd/http.h"

/* Every route the server answers, in one table. */
extern const struct cm_route	cm_api_routes[];
extern const size_t		cm_api_nroutes;

/* src/api/health.c */
void	cm_api_healthz(struct cm_request *);
void	cm_api_readyz(struct cm_request *);
void	cm_api_gpc(struct cm_request *);
void	cm_api_metrics(struct cm_request *);

/* src/api/metrics.c: the handler of GET /metrics is there. */
/*
 * Counts one consent check's answer, by decision (ALLOW) and REASON (one
 * of the reasons cm_decision gives; any other counts as "other").
 * Lock-free: relaxed atomic additions, for the check's hot path.
 */
void	cm_api_metrics_check(bool allow, const char *reason);

/* src/api/policy.c */
void	cm_api_policy_get(struct cm_request *);
void	cm_api_policy_notices(struct cm_request *);
void	cm_api_policy_notice_get(struct cm_request *);

/* src/api/tokens.c */
void	cm_api_token_self(struct cm_request *);
void	cm_api_tokens_list(struct cm_request *);

/* src/api/audit.c */
void	cm_api_audit_checkpoint(struct cm_request *);
void	cm_api_audit_vkey(struct cm_request *);
void	cm_api_audit_vkeys(struct cm_request *);
void	cm_api_audit_entries(struct cm_request *);
void	cm_api_audit_proof(struct cm_request *);
void	cm_api_audit_consistency(struct cm_request *);

/* src/api/subjects.c */
void	cm_api_subjects_create(struct cm_request *);
void	cm_api_subjects_resolve(struct cm_request *);
void	cm_api_subjects_get(struct cm_request *);
void	cm_api_subjects_link(struct cm_request *);
void	cm_api_subjects_unlink(struct cm_request *);
void	cm_api_subjects_profile(struct cm_request *);
void	cm_api_subjects_merge(struct cm_request *);

/* src/api/consents.c */
void	cm_api_consents_record(struct cm_request *);
void	cm_api_consents_list(struct cm_request *);

/* src/api/changes.c */
void	cm_api_changes(struct cm_request *);
/*
 * Reads a list route's paging parameters: "limit" (1 to MAX, DEF when
 * absent) into *LIMIT and the cursor parameter CURSOR_NAME (NULL when
 * absent) into *CURSOR. Replies 400 naming the parameter and returns false
 * when one is malformed.
 */
bool	cm_api_paging(struct cm_request *, const char *cursor_name, int def, int max,
	    int *limit, const char **cursor);

/* src/api/receipts.c */
void	cm_api_consents_receipt(struct cm_request *);

/* src/api/check.c */
void	cm_api_check_one(struct cm_request *);
void	cm_api_check_batch(struct cm_request *);
void	cm_api_check_chunk(struct cm_request *, const char *, size_t);

/* src/api/preferences.c */
void	cm_api_prefs_get(struct cm_request *);
void	cm_api_prefs_put(struct cm_request *);
void	cm_api_unsubscribe(struct cm_request *);

/* src/api/suppressions.c */
void	cm_api_suppressions_add(struct cm_request *);
void	cm_api_suppressions_chunk(struct cm_request *, const char *, size_t);
void	cm_api_suppressions_check(struct cm_request *);
void	cm_api_suppressions_lift(struct cm_request *);

/* src/api/imports.c */
void	cm_api_imports_start(struct cm_request *);
void	cm_api_imports_get(struct cm_request *);
/* Stops a running import (its committed rows stay) and forgets them all. */
void	cm_api_imports_stop(void);

/* src/api/reports.c */
void	cm_api_report_unsubscribe(struct cm_request *);
void	cm_api_report_holdout(struct cm_request *);

/* src/api/dsr.c */
void	cm_api_dsr_create(struct cm_request *);
void	cm_api_dsr_list(struct cm_request *);
void	cm_api_dsr_get(struct cm_request *);
void	cm_api_dsr_verify(struct cm_request *);
void	cm_api_dsr_resend(struct cm_request *);
void	cm_api_dsr_extend(struct cm_request *);
void	cm_api_dsr_deny(struct cm_request *);
void	cm_api_dsr_cancel(struct cm_request *);
void	cm_api_dsr_process(struct cm_request *);
void	cm_api_dsr_complete(struct cm_request *);
void	cm_api_dsr_lift(struct cm_request *);
/* src/api/dsr_package.c */
void	cm_api_dsr_package(struct cm_request *);

/* src/api/outbox.c */
void	cm_api_dsr_system_report(struct cm_request *);
void	cm_api_outbox_list(struct cm_request *);
void	cm_api_outbox_retry(struct cm_request *);
void	cm_api_systems_add(struct cm_request *);
void	cm_api_systems_list(struct cm_request *);
void	cm_api_systems_remove(struct cm_request *);

/* src/api/shopper.c */
void	cm_api_link_create(struct cm_request *);
void	cm_api_links_revoke(struct cm_request *);
void	cm_api_unsub_page(struct cm_request *);
void	cm_api_unsub_post(struct cm_request *);
void	cm_api_pref_open(struct cm_request *);

/* src/api/me.c */
void	cm_api_me_get(struct cm_request *);
void	cm_api_me_prefs_put(struct cm_request *);
void	cm_api_me_unsubscribe(struct cm_request *);
void	cm_api_me_request_create(struct cm_request *);
void	cm_api_me_requests(struct cm_request *);
void	cm_api_me_logout(struct cm_request *);

/* src/api/web.c */
void	cm_api_web_static(struct cm_request *);
void	cm_api_web_preferences(struct cm_request *);
/* The DPO console (src/api/console.c, web.c, audit.c). */
void	cm_api_console_signin(struct cm_request *);
void	cm_api_console_get(struct cm_request *);
void	cm_api_console_signout(struct cm_request *);
void	cm_api_web_admin(struct cm_request *);
void	cm_api_audit_verify(struct cm_request *);
/* The Content-Security-Policy of every page. */
extern const char cm_api_csp[];
/*
 * Replies STATUS with an HTML page titled TITLE around BODY (both HTML,
 * already escaped), with the page headers.
 */
void	cm_api_page(struct cm_request *, unsigned status, const char *title,
	    const char *body);
/* The base of the links the API makes: --public-url, or http://127.0.0.1:PORT. */
void	cm_api_public_url(struct cm_request *, char *out, size_t outlen);
/* SRC with & < > " ' escaped for HTML, into DST (cut to DSTLEN); returns DST. */
char	*cm_api_html_escape(char *dst, size_t dstlen, const char *src);

/* ---- shared by src/api/ (src/api/common.c) ---- */
struct cm_ctx;
struct cm_why;
struct cm_identifier;

/*
 * Fills CX for RQ (the actor is the caller's, "token:NAME"); replies 503
 * and returns false when the store is away.
 */
bool	cm_api_ctx(struct cm_request *, struct cm_ctx *);
/*
 * Replies for a domain call that failed with RC and why W; FIELD names the
 * input at fault when neither W nor the reason's own says (may be NULL).
 */
void	cm_api_fail(struct cm_request *, cm_result, const struct cm_why *, const char *field);
/* Begins a write transaction on CX; replies 503 and returns false when it cannot. */
bool	cm_api_tx_begin(struct cm_request *, struct cm_ctx *);
/* Commits when RC is CM_OK, else rolls back. Returns the final result. */
cm_result cm_api_tx_end(struct cm_ctx *, cm_result);
/*
 * Parses the RFC 3339 time S ("2026-11-22T10:00:00Z"; fractions and
 * offsets allowed) into *US, microseconds since the epoch. 0, or -1.
 */
int	cm_api_parse_time(const char *s, int64_t *us) CM_WUR;
/*
 * Parses identifier TEXT (LEN bytes) under the app's policy into *OUT.
 * Replies 400 invalid_identifier naming FIELD and returns false when it is
 * not one.
 */
bool	cm_api_parse_identifier(struct cm_request *, const char *text, size_t len,
	    const char *field, struct cm_identifier *out);
/*
 * For a list item (batch or NDJSON line), which cannot be answered with
 * its own reply: a new {"error":…} object when ITEM is not an object
 * (WHAT says what it should be) or has a member not in FIELDS
 * (NULL-terminated), else NULL.
 */
json_t	*cm_api_item_error(json_t *item, const char *const *fields, const char *what);
/*
 * Checks a preferences document as PUT …/preferences takes it (src/api/
 * preferences.c); replies and returns NULL when it is not one, else a new
 * copy with paused_until in microseconds.
 */
json_t	*cm_api_prefs_validate(struct cm_request *, json_t *body);
/* An unsubscribe's body: optional reason and comment, checked (400 otherwise). */
bool	cm_api_unsubscribe_body(struct cm_request *, const char **reason,
	    const char **comment);

/* ---- the preference centre page without JavaScript (src/api/page*.c) ---- */
struct cm_buf;
/* GET /preferences: the page rendered for the session, or a sign-in hint. */
void	cm_api_page_preferences(struct cm_request *);
/* GET /preferences/theme.css: the policy's accent colour as a stylesheet. */
void	cm_api_page_theme(struct cm_request *);
/* POST /preferences, /preferences/unsubscribe, /preferences/requests, /preferences/logout. */
void	cm_api_form_save(struct cm_request *);
void	cm_api_form_unsubscribe(struct cm_request *);
void	cm_api_form_request(struct cm_request *);
void	cm_api_form_logout(struct cm_request *);
/*
 * A short page in the person's language (src/api/page_util.c), for the
 * link routes: a heading and a text (keys of web/i18n/<lang>.json, with
 * the English to show when no language file has them; "{name}" in the
 * text is the retailer's name) and, when pn_action is set, a form that
 * posts pn_field=pn_value there with the button pn_button.
 */
struct cm_page_note {
	const char	*pn_heading, *pn_heading_en;
	const char	*pn_text, *pn_text_en;
	const char	*pn_action, *pn_field, *pn_value;
	const char	*pn_button, *pn_button_en;
};
void	cm_api_page_note(struct cm_request *, unsigned status, const struct cm_page_note *);
/*
 * Parses the application/x-www-form-urlencoded BODY (LEN bytes; "+" is a
 * space, %XX a byte) into a new object of UTF-8 strings. NULL for a
 * malformed escape, an escape of NUL, a repeated or empty name, text that
 * is not UTF-8, or more than 64 fields or a value over 1000 bytes. The
 * caller frees (src/api/page_form.c).
 */
json_t	*cm_api_form_parse(const char *body, size_t len);
/* GET /v1/me/requests/{id}/package (src/api/dsr_package.c). */
void	cm_api_me_package(struct cm_request *);
/*
 * Reads DIR/SUB/NAME (SUB may be NULL) into OUT, as /static/ does (no
 * symbolic link, size-limited). 0, or -1 (src/api/web.c).
 */
int	cm_api_web_read(const char *dir, const char *sub, const char *name,
	    struct cm_buf *out);
/* Replies 200 with BODY as CTYPE, its ETag (304 on a match) and the page headers. */
void	cm_api_web_reply(struct cm_request *, const char *ctype, const struct cm_buf *body);
/*
 * Files a request of TYPE (access or erasure) for SUBJECT as the session
 * does, in the caller's transaction: verified by the session; an access
 * request is also processed at once, so its package is ready (src/api/me.c).
 * *OUT as cm_dsr_create gives it (after processing, the processed request).
 */
cm_result cm_api_me_file_request(struct cm_request *, const struct cm_ctx *,
	    const char *subject, const char *type, json_t **out, bool *existing,
	    struct cm_why *);

#endif
