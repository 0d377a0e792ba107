/* SPDX-License-Identifier: ISC */
/*
 * The consent decision (SPEC §6): may we contact this person, on this
 * channel, for this purpose? Pure domain logic: the caller gathers the
 * facts from the store and this module applies the rules in order. The
 * first rule that decides wins, and the reason names it. Anything the
 * caller could not establish is a failure, never an allow.
 */
#ifndef CONSENTD_DECISION_H
#define CONSENTD_DECISION_H

#include <stdbool.h>
#include <stdint.h>

#include "consentd/policy.h"
#include "consentd/store.h"

enum cm_consent_state { CM_CONSENT_GRANTED, CM_CONSENT_WITHDRAWN, CM_CONSENT_REFUSED };

/* The latest consent event for one (purpose, channel or all channels). */
struct cm_consent_row {
	bool			 cr_present;
	enum cm_consent_state	 cr_state;
	int64_t			 cr_notice_version;
	int64_t			 cr_seq;		/* order of recording */
	char			 cr_event_id[32];
	int64_t			 cr_collected_us;	/* when the person decided */
	int64_t			 cr_recorded_us;
	char			 cr_method[24];
	bool			 cr_sale_ref;	/* a grant made in the course of a sale */
};

/*
 * One suppression entry that binds the person checked (on the identifier
 * checked or on any other the subject holds or held), as rule 1 reads it.
 */
struct cm_supp_fact {
	const char	*sf_reason;	/* unsubscribed, bounced, complained, manual, erased */
	bool		 sf_channel_hit;	/* the checked channel reaches people through
					   the entry's identifier type (a bounce stops it) */
};

struct cm_decision_facts {
	const struct cm_purpose	*df_purpose;
	const struct cm_supp_fact *df_supp;	/* entries binding the person */
	size_t			 df_nsupp;
	bool			 df_known;	/* a subject has the identifier */
	enum cm_subject_state	 df_state;	/* when df_known */
	bool			 df_objected;	/* Art. 21 direct-marketing objection */
	int64_t			 df_paused_until;	/* microseconds, 0: none */
	int64_t			 df_now;
	struct cm_consent_row	 df_channel;	/* (purpose, channel) */
	struct cm_consent_row	 df_all;	/* (purpose, all channels) */
	bool			 df_in_holdout;	/* subject in the control group */
};

struct cm_decision {
	bool				 d_allow;
	const char			*d_reason;	/* consent, no_consent, … */
	const struct cm_consent_row	*d_event;	/* the event decided on, or NULL */
};

/* Applies the rules of SPEC §6 to FACTS. */
void	cm_decide(const struct cm_decision_facts *, struct cm_decision *);

/*
 * The event that stands for (purpose, channel): of the channel's own and
 * the all-channels one, the one collected later (ties: recorded later),
 * so "withdraw everywhere" is never outranked by an older grant for one
 * channel. NULL when neither.
 */
const struct cm_consent_row *cm_decision_latest(const struct cm_consent_row *channel,
	    const struct cm_consent_row *all);

/*
 * Whether an event collected at COLLECTED_A and recorded as SEQ_A comes
 * after one collected at COLLECTED_B and recorded as SEQ_B: the order of
 * SPEC §6, latest collected_at first, ties to the later recorded.
 */
bool	cm_consent_after(int64_t collected_a, int64_t seq_a, int64_t collected_b,
	    int64_t seq_b);

/* Whether REASON is one of the suppression reasons (erased included). */
bool	cm_suppression_reason_known(const char *reason);

/* Names and parsing of states and methods. */
const char *cm_consent_state_name(enum cm_consent_state);
int	cm_consent_state_parse(const char *, enum cm_consent_state *);
/* Whether METHOD is one of SPEC §6's methods; FIRST_PARTY: a fresh grant
 * by the person through the retailer itself (lifts a suppression). */
bool	cm_consent_method_valid(const char *method, bool *first_party);

/* Whether SUBJECT_ID falls in PURPOSE's measurement holdout, by a keyed hash. */
struct cm_keys;
bool	cm_holdout_member(const struct cm_keys *, const char *subject_id,
	    const struct cm_purpose *);

#endif
