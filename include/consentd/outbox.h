/* SPDX-License-Identifier: ISC */
/*
 * The durable outbox (SPEC §7 "Outbox", §8): messages to data subjects
 * (identity codes, extensions, denials, completions, …) and signed
 * webhooks to downstream systems are queued as rows in the transaction
 * of the step that causes them, and delivered afterwards, at least once,
 * with exponential backoff and jitter, by the delivery thread of
 * 'consentd serve' or by 'consentd outbox run'.
 *
 * core (src/core/outbox.c, systems.c): queueing, message templates,
 * opening a queued body, recording an attempt, downstream systems and
 * the webhook signature. Delivery (src/outbox/): the senders, the only
 * code that includes <curl/curl.h>.
 */
#ifndef CONSENTD_OUTBOX_H
#define CONSENTD_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/core.h"

struct cm_policy;
struct cm_store;
struct cm_keys;

/* One message template, web/templates/NAME.txt, carried by the binary. */
struct cm_template {
	const char	*t_name;
	const char	*t_text;	/* "Subject: …\n\nbody", {{var}} placeholders */
	size_t		 t_len;
};
extern const struct cm_template	cm_templates_builtin[];
extern const size_t		cm_templates_builtin_count;

/* A pending row due at this time is held until released (see cm_outbox_release). */
#define CM_OUTBOX_HELD		INT64_MAX
/* How far a callback's signature time may be from ours, in seconds. */
#define CM_SIGNATURE_TOLERANCE_S	300
#define CM_SIGNATURE_MAX	96

/* ---- queueing (src/core/outbox.c) ---------------------------------------- */

/* A row to queue. */
struct cm_outbox_item {
	const char	*oi_kind;	/* "message" or "webhook" */
	const char	*oi_request;	/* the request it belongs to, or NULL */
	const char	*oi_subject;	/* sealed under this subject's key, or NULL:
					   under a key of its own */
	const uint8_t	*oi_key;	/* that subject's key (with oi_subject) */
	const char	*oi_name;	/* template or event */
	const char	*oi_channel;	/* "email", "phone", "webhook" */
	const char	*oi_system;	/* webhooks: the system's name */
	json_t		*oi_body;	/* borrowed; sealed as compact JSON */
	int64_t		 oi_due_us;	/* 0: now; CM_OUTBOX_HELD: held */
};

/* Queues IT in the caller's transaction; its id into ID (may be NULL). */
cm_result cm_outbox_queue(const struct cm_ctx *, const struct cm_outbox_item *it,
	    char id[31]) CM_WUR;

/*
 * Renders TEMPLATE with VARS (borrowed; string members) and the policy's
 * controller and supervisory authority into *SUBJECT and *TEXT (caller
 * wipes and frees both). CM_NOTFOUND for an unknown template, CM_INVALID
 * for a placeholder nobody filled.
 */
cm_result cm_outbox_render(const struct cm_policy *, const char *template, json_t *vars,
	    char **subject, char **text) CM_WUR;

/*
 * Renders TEMPLATE for RECIPIENT (an identifier text, "email:…" or
 * "phone:…") and queues it as IT says (its kind, channel and body are
 * filled here). CM_INVALID when RECIPIENT cannot be written to.
 */
cm_result cm_outbox_message(const struct cm_ctx *, struct cm_outbox_item *it,
	    const char *recipient, json_t *vars) CM_WUR;

/* Releases REQUEST's held rows called NAME: due now. */
cm_result cm_outbox_release(const struct cm_ctx *, const char *request, const char *name,
	    int64_t due_us) CM_WUR;

/*
 * Opens the sealed body of ROW into *BODY (the caller wipes it with
 * cm_outbox_body_free). CM_NOTFOUND when it is gone (delivered, erased),
 * CM_INVALID when no key opens it.
 */
cm_result cm_outbox_open(const struct cm_ctx *, const struct cm_outbox_row *row,
	    json_t **body) CM_WUR;
void	cm_outbox_body_free(json_t *);

/*
 * Inside a merge: FROM's rows become INTO's, the bodies sealed under
 * FROM's key (KFROM, about to be destroyed) sealed anew under INTO's
 * (KINTO), so what waits to go out still can.
 */
cm_result cm_outbox_rehome(const struct cm_ctx *, const char *from, const char *into,
	    const uint8_t *kfrom, const uint8_t *kinto) CM_WUR;

/*
 * Records an attempt at row ID: delivered (OK), or failed with ERROR (no
 * personal data), retried after BASE_MS * 2^(attempts-1) with jitter
 * (between half and all of it), dead after MAX_ATTEMPTS. *DEAD says it
 * just died.
 */
cm_result cm_outbox_result(const struct cm_ctx *, const struct cm_outbox_row *row, bool ok,
	    const char *error, int64_t base_ms, int max_attempts, bool *dead) CM_WUR;

/* The rows in STATUS (NULL: any), newest first: {"items":[…]}. */
cm_result cm_outbox_list(const struct cm_ctx *, const char *status, int limit,
	    json_t **out) CM_WUR;
/*
 * A page of LIMIT rows in STATUS (NULL: any), newest first, after CURSOR
 * (NULL: from the newest): {"items":[…],"next_cursor"} (null on the last
 * page). CM_INVALID with w_field "cursor" for a cursor it did not make.
 */
cm_result cm_outbox_page(const struct cm_ctx *, const char *status, const char *cursor,
	    int limit, json_t **out, struct cm_why *) CM_WUR;
/* A row as the API shows it (never its body). */
json_t	*cm_outbox_row_json(const struct cm_outbox_row *);

/*
 * Makes dead row ID pending again, due now. CM_NOTFOUND "not_found";
 * CM_CONFLICT "not_dead", or "body_gone" when its body was destroyed.
 */
cm_result cm_outbox_retry(const struct cm_ctx *, const char *id, json_t **out,
	    struct cm_why *) CM_WUR;

/* ---- consent.changed (src/core/outbox_queue.c) ---------------------------- */

/*
 * Queues a consent.changed webhook about event EV (its subject's current
 * consent for a purpose and channel moved) to every system registered for
 * it, in the caller's transaction; nothing when none is.
 */
cm_result cm_outbox_consent_changed(const struct cm_ctx *, const struct cm_event_row *ev) CM_WUR;
/*
 * For each system registered for consent.changed, whether it applied
 * SUBJECT's last change: [{"name","status":"applied"|"pending"|"failed"|
 * "none","at"}] into *OUT.
 */
cm_result cm_outbox_consent_status(const struct cm_ctx *, const char *subject,
	    json_t **out) CM_WUR;

/* ---- downstream systems (src/core/systems.c) ----------------------------- */

/* The events a system can be registered for. */
extern const char *const cm_system_events[];

/*
 * Registers a system: NAME (1-64 of a-z 0-9 . _ -), URL (http or https),
 * EVENTS (a non-empty array of cm_system_events), SECRET (16-256 bytes),
 * sealed under the secret key. CM_INVALID "invalid_field" naming the
 * field; CM_CONFLICT "system_exists". *INSECURE true for an http URL.
 */
cm_result cm_system_add(const struct cm_ctx *, const char *name, const char *url,
	    json_t *events, const char *secret, bool *insecure, json_t **out,
	    struct cm_why *) CM_WUR;
/* CM_NOTFOUND "not_found". */
cm_result cm_system_remove(const struct cm_ctx *, const char *name, struct cm_why *) CM_WUR;
/* {"systems":[{"name","url","events","created_at"}]}: never the secret. */
cm_result cm_systems_list(const struct cm_ctx *, json_t **out) CM_WUR;
/* A system as the API shows it. */
json_t	*cm_system_json(const struct cm_system_row *);
/* Whether system ROW is registered for EVENT. */
bool	cm_system_has_event(const struct cm_system_row *, const char *event);

/*
 * System NAME's row and its secret, opened into SECRET (secure memory of
 * CM_SYSTEM_SECRET_MAX bytes) with its length in *LEN. CM_NOTFOUND.
 */
cm_result cm_system_secret(const struct cm_ctx *, const char *name, struct cm_system_row *,
	    uint8_t *secret, size_t *len) CM_WUR;

/*
 * The signature header value for BODY at unix time T under SECRET:
 * "t=<T>,v1=<hex HMAC-SHA256 of "T.BODY">", into OUT (CM_SIGNATURE_MAX).
 */
void	cm_signature_make(char *out, const uint8_t *secret, size_t len, int64_t t,
	    const void *body, size_t blen);
/*
 * Checks HEADER against BODY and SECRET (constant time) and that its time
 * is within CM_SIGNATURE_TOLERANCE_S of NOW_S. 0, or -1.
 */
int	cm_signature_check(const char *header, const uint8_t *secret, size_t len,
	    const void *body, size_t blen, int64_t now_s) CM_WUR;

/* ---- delivery (src/outbox/deliver.c) -------------------------------------- */

struct cm_outbox_opts {
	char		 oo_sender[8];		/* "file" or "smtp" */
	char		 oo_dir[1024];		/* the file sender's directory */
	int64_t		 oo_base_ms;		/* first retry after about this */
	int		 oo_max_attempts;	/* then dead */
	long		 oo_timeout_ms;		/* of one attempt */
};

/*
 * The delivery settings from the environment (CONSENTD_OUTBOX_SENDER,
 * _DIR, _BASE_MS, _MAX_ATTEMPTS, _TIMEOUT_MS; docs/operations.md), the
 * file sender's directory defaulting to DATA/outbox. 0, or -1 with a
 * reason in ERR.
 */
int	cm_outbox_opts_env(struct cm_outbox_opts *, const char *data, char *err,
	    size_t errlen) CM_WUR;

/*
 * One pass: every pending row due now is attempted once. *SENT and
 * *FAILED (may be NULL) count the outcomes.
 */
cm_result cm_outbox_run(struct cm_store *, const struct cm_keys *, const struct cm_policy *,
	    const struct cm_outbox_opts *, size_t *sent, size_t *failed) CM_WUR;

/* The delivery thread of 'consentd serve'. */
struct cm_outbox_worker;
struct cm_outbox_worker *cm_outbox_start(struct cm_store *, const struct cm_keys *,
	    const struct cm_policy *, const struct cm_outbox_opts *);
void	cm_outbox_stop(struct cm_outbox_worker *);

#endif
