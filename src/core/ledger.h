/* SPDX-License-Identifier: ISC */
/*
 * Internals of the consent ledger shared by src/core/ (consent.c, prefs.c,
 * merge.c, rights.c, suppression.c): writing one event with its audit
 * entry and keeping the current-state projection in step, sealed
 * evidence, and reading the facts a decision needs for one subject. Only
 * files in src/core/ include this header.
 */
#ifndef CONSENTD_CORE_LEDGER_H
#define CONSENTD_CORE_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/consent.h"
#include "consentd/decision.h"
#include "consentd/policy.h"
#include "consentd/store.h"

/*
 * Fills EV for one event of SUBJECT: purpose P, CHANNEL ("*": all), STATE,
 * NOTICE (0: the purpose's version), METHOD, COLLECTED (0: now; a time
 * after now, allowed for clock skew, is taken as now so it cannot outrank
 * a decision recorded right after it) and the writing client.
 */
void	ledger_event_base(const struct cm_ctx *, struct cm_event_row *ev, const char *subject,
	    const struct cm_purpose *p, const char *channel, enum cm_consent_state state,
	    int64_t notice, const char *method, int64_t collected, const char *client);

/*
 * Writes event EV of SUBJECT (key KEY) with its consent.recorded entry:
 * fills the id, audit index, sequence and e_superseded (collected before
 * the state it joins, so it decides nothing), and moves the current row of
 * its exact (purpose, channel) when it comes after it. EVIDENCE (object or
 * NULL) is sealed under KEY; EXTRA_PRIVATE joins the entry's commitment.
 * DECIDED: the person's own decision, which settles an open merge
 * conflict unless superseded; a merge's carried-over states are not.
 */
cm_result ledger_event_write(const struct cm_ctx *, const uint8_t *key,
	    struct cm_event_row *ev, json_t *evidence, json_t *extra_private,
	    bool decided) CM_WUR;

/* A current-state row as the decision reads it (absent when e_seq is 0). */
void	ledger_row(struct cm_consent_row *, const struct cm_event_row *);

/* Seals JSON text under KEY with AD "evidence:SUBJECT:EVENT"; caller frees *OUT. */
void	ledger_evidence_seal(const uint8_t *key, const char *subject, const char *event_id,
	    const char *json, uint8_t **out, size_t *len);
/* Opens sealed evidence into a new string (wipe and free it); NULL if forged. */
char	*ledger_evidence_open(const uint8_t *key, const char *subject,
	    const char *event_id, const uint8_t *ct, size_t len);

/*
 * What rule 1 to 3 of a decision need about one subject, read once: its
 * state, objection, pause, and every suppression entry that binds it.
 */
struct ledger_subject {
	enum cm_subject_state	 ls_state;
	int64_t			 ls_objected_at;
	int64_t			 ls_paused_until;
	struct cm_supp_row	 ls_supp[CM_SUPP_FACTS_MAX];
	size_t			 ls_nsupp;
	bool			 ls_supp_overflow;	/* more entries than fit */
};

/*
 * Adds suppression row R to LS (a struct ledger_subject) unless it is
 * there already; past CM_SUPP_FACTS_MAX sets ls_supp_overflow. A callback
 * for cm_store_subject_suppressions; returns 0.
 */
int	ledger_supp_add(void *ls, const struct cm_supp_row *r);

/*
 * Reads LS for SUBJECT (which exists); the subject's row into ROW unless
 * ROW is NULL.
 */
cm_result ledger_subject_read(const struct cm_ctx *, const char *subject,
	    struct ledger_subject *ls, struct cm_subject_row *row) CM_WUR;

/*
 * The index in LS's entries of the one of (TYPE, BLIND), or -1 when it is
 * not among them (nor, on overflow, necessarily absent from the store).
 */
int	ledger_supp_index(const struct ledger_subject *ls, const char *type,
	    const uint8_t blind[32]);

/*
 * Fills F (and FACTS, the storage its df_supp points into) for purpose P
 * on channel index CHANNEL (-1: none) from LS and the current rows CH and
 * ALL. Pause and holdout are left out; the caller adds them.
 */
void	ledger_facts(const struct cm_ctx *, const struct ledger_subject *ls,
	    const struct cm_purpose *p, int channel, const struct cm_event_row *ch,
	    const struct cm_event_row *all, struct cm_decision_facts *f,
	    struct cm_supp_fact facts[CM_SUPP_FACTS_MAX + 1]);

/*
 * Whether a suppression entry binding LS would deny purpose P on channel
 * index CHANNEL (-1: any channel of P). Used to refuse grants that could
 * only have come from a list the person is on.
 */
bool	ledger_suppressed_for(const struct cm_ctx *, const struct ledger_subject *ls,
	    const struct cm_purpose *p, int channel);

/* The audit tag of identifier (TYPE, BLIND): what entries name it by. */
void	ledger_supp_tag(const struct cm_ctx *, const char *type, const uint8_t blind[32],
	    char tag[33]);

/* The topic of purpose index PI, or NULL. */
const struct cm_topic *ledger_topic_of(const struct cm_policy *, size_t pi);

#endif
