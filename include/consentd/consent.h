/* SPDX-License-Identifier: ISC */
/*
 * The consent ledger: recording consent events (append-only, with their
 * current-state projection and audit entry in one transaction), the
 * check, the suppression list, preferences, unsubscribe and the
 * measurement holdout. Decisions themselves are in consentd/decision.h.
 */
#ifndef CONSENTD_CONSENT_H
#define CONSENTD_CONSENT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/decision.h"
#include "consentd/store.h"
#include "consentd/subject.h"

#define CM_COLLECTED_SKEW_US	(5 * 60 * INT64_C(1000000))	/* 5 minutes */

struct cm_consent_input {
	const struct cm_identifier	*ci_ident;	/* or NULL, with ci_subject */
	const char			*ci_subject;
	const struct cm_purpose		*ci_purpose;	/* NULL only for method gpc */
	int				 ci_channel;	/* channel index, -1: all */
	enum cm_consent_state		 ci_state;
	const char			*ci_method;
	int64_t				 ci_notice_version;	/* 0: the purpose's */
	int64_t				 ci_collected_us;	/* 0: now */
	json_t				*ci_evidence;	/* object or NULL */
	const char			*ci_request_id;	/* or NULL */
	const char			*ci_client;	/* who wrote it */
};

struct cm_consent_result {
	struct cm_event_row	 cr_event;	/* the (first) event written */
	bool			 cr_subject_created;
	bool			 cr_replayed;	/* request_id seen before */
	json_t			*cr_event_ids;	/* every event written (gpc: several) */
};

/*
 * Records a consent decision inside the caller's transaction. A repeated
 * request id with the same input answers with the first result, writing
 * nothing; with another input it is CM_CONFLICT "request_id_reused".
 * CM_CONFLICT "suppressed" (an import or api grant while a suppression
 * entry binding the person would deny it) / "subject_erased";
 * CM_NOTFOUND "not_found" / "merged"; CM_INVALID "sale_reference" (a soft
 * opt-in grant whose evidence names no sale). cr_event.e_superseded says
 * the event was collected before the state it joined and decides nothing.
 * The caller releases cr_event_ids.
 */
cm_result cm_consent_record(const struct cm_ctx *, const struct cm_consent_input *,
	    struct cm_consent_result *, struct cm_why *) CM_WUR;

struct cm_check_result {
	struct cm_decision	 ck_decision;
	char			 ck_subject[CM_SUBJECT_ID_LEN + 1];	/* "" if unknown */
	struct cm_consent_row	 ck_event;	/* the event decided on */
	bool			 ck_has_event;
	json_t			*ck_conflicts;	/* array; caller releases */
};

/*
 * May we contact IDENT for PURPOSE on CHANNEL (NULL: none/all)? Reads
 * only, through the thread's connection; no lock, no cache. Anything but
 * CM_OK means the answer is unknown: the caller must not allow.
 */
cm_result cm_consent_check(const struct cm_ctx *, const struct cm_identifier *,
	    const struct cm_purpose *, const char *channel, struct cm_check_result *) CM_WUR;

/*
 * The current consents of ID, or with HISTORY every event (marked
 * superseded where it decided nothing); EVIDENCE adds each event's
 * evidence, which is personal data (subjects:read).
 */
cm_result cm_consent_list(const struct cm_ctx *, const char *id, bool history,
	    bool evidence, json_t **out, struct cm_why *) CM_WUR;
/*
 * As cm_consent_list; with HISTORY, LIMIT (> 0) events a page after
 * CURSOR (NULL: from the first), and "next_cursor" (null on the last
 * page). CM_INVALID with w_field "cursor" for a cursor it did not make.
 */
cm_result cm_consent_history(const struct cm_ctx *, const char *id, bool history,
	    bool evidence, const char *cursor, int limit, json_t **out,
	    struct cm_why *) CM_WUR;

/* Suppression list. REASON one of unsubscribed, bounced, complained, manual. */
cm_result cm_suppression_add(const struct cm_ctx *, const struct cm_identifier *,
	    const char *reason, bool *existed, char reason_out[16], int64_t *since) CM_WUR;
cm_result cm_suppression_check(const struct cm_ctx *, const struct cm_identifier *,
	    char reason[16], int64_t *since) CM_WUR;
/*
 * An entry brought from a provider's export (consentd import): as
 * cm_suppression_add(), but listed SINCE the provider's time (0: now). An
 * entry already there is left as it is (*EXISTED), whatever its reason.
 */
cm_result cm_suppression_import(const struct cm_ctx *, const struct cm_identifier *,
	    const char *reason, int64_t since, bool *existed) CM_WUR;
/* CM_NOTFOUND; CM_CONFLICT when the reason is erased (only erasure sets it). */
cm_result cm_suppression_lift(const struct cm_ctx *, const struct cm_identifier *) CM_WUR;
bool	cm_suppression_reason_valid(const char *reason);
/*
 * Puts (TYPE, BLIND) back on the suppression list with REASON and SINCE, as
 * the opt-out ledger recorded it (restore); *DONE false when it is listed.
 */
cm_result cm_suppression_replay(const struct cm_ctx *, const char *type,
	    const uint8_t blind[32], const char *reason, int64_t since, bool *done) CM_WUR;

/*
 * Preferences: {"channels","topics","frequency","paused_until"}. The
 * switches are a view of the consent state, not a copy of it: a channel
 * reads on when some marketing purpose on it is allowed by the person's
 * choices, a topic when its purpose is on some channel (a topic whose
 * purpose rests on a contract or legal obligation reads as the check
 * allows it and cannot be switched).
 */
cm_result cm_prefs_get(const struct cm_ctx *, const char *id, json_t **out,
	    struct cm_why *) CM_WUR;
/*
 * Applies a validated preferences document: only the switches present in
 * it whose value differs from the view become consent events (method
 * METHOD); frequency and paused_until are settings and write no consent
 * event. CM_INVALID "topic_not_optional" (w_field the topic) for a
 * switch that cannot be changed; CM_CONFLICT "suppressed" for a grant a
 * suppression entry would deny, by a method other than a first-party one.
 */
cm_result cm_prefs_put(const struct cm_ctx *, const char *id, json_t *prefs,
	    const char *method, struct cm_why *) CM_WUR;
/* Withdraws every marketing purpose on every channel; counts REASON. */
cm_result cm_unsubscribe(const struct cm_ctx *, const char *id, const char *reason,
	    const char *comment, const char *method, int *withdrawn, struct cm_why *) CM_WUR;
bool	cm_unsubscribe_reason_valid(const char *reason);

/*
 * Records again, after a restore, one line of the opt-out ledger O that the
 * database lacks, through the same writes as the route that first recorded
 * it (audit entry, current state, change feed): a consent event keeps its
 * collected_at, a suppression its since, an objection its time. A line the
 * database holds already, of a subject it lacks, erased, or of a purpose
 * or channel the policy no longer has, writes nothing (*DONE false).
 */
cm_result cm_optout_replay(const struct cm_ctx *, const struct cm_optout *o, bool *done,
	    struct cm_why *) CM_WUR;

/* Records an Art. 21 objection to direct marketing, or an Art. 18 restriction. */
cm_result cm_subject_object(const struct cm_ctx *, const char *id, struct cm_why *) CM_WUR;
/* The objection as said at WHEN (0: now; kept when there is one already). */
cm_result cm_subject_object_at(const struct cm_ctx *, const char *id, int64_t when,
	    struct cm_why *) CM_WUR;
cm_result cm_subject_restrict(const struct cm_ctx *, const char *id, bool on,
	    struct cm_why *) CM_WUR;

/*
 * Erases subject ID (GDPR Art. 17) inside the caller's transaction: every
 * identifier's blind index goes on the suppression list (reason erased) so
 * senders still get deny; identifiers, profile, preferences and consent
 * evidence are deleted, the audit pseudonym mapping and sealed openings
 * dropped and the subject key destroyed; the subject becomes erased; an
 * erasure.completed entry records counts, not data. CM_CONFLICT
 * "subject_erased" when already erased.
 */
cm_result cm_subject_erase(const struct cm_ctx *, const char *id, json_t **counts,
	    struct cm_why *) CM_WUR;

/*
 * Merges FROM's consents into INTO (inside cm_subject_merge): events move
 * with their evidence re-sealed; where both have a current state and they
 * disagree, the more restrictive one stays and a conflict is recorded and
 * appended to CONFLICTS.
 */
cm_result cm_consent_merge(const struct cm_ctx *, const char *into, const char *from,
	    const uint8_t *kinto, const uint8_t *kfrom, json_t *conflicts) CM_WUR;

#endif
