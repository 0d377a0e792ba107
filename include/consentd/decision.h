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

enum cm_consent_state { CM_CONSENT_GRANTED, CM_CONSENT_WITHDRAWN, CM_CONSENT_REFUSED };

/* The latest consent event for one (purpose, channel or all channels). */
struct cm_consent_row {
	bool			 cr_present;
	enum cm_consent_state	 cr_state;
	int64_t			 cr_notice_version;
	int64_t			 cr_seq;		/* order of recording */
	char			 cr_event_id[32];
	int64_t			 cr_recorded_us;
	char			 cr_method[24];
};

struct cm_decision_facts {
	const struct cm_purpose	*df_purpose;
	const char		*df_suppressed;	/* reason, or NULL */
	bool			 df_known;	/* a subject has the identifier */
	const char		*df_state;	/* active, restricted, erased */
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
 * The event that stands for (purpose, channel): the more recent of the
 * channel's own and the all-channels one, so "withdraw everywhere" is
 * never outranked by an older grant for one channel. NULL when neither.
 */
const struct cm_consent_row *cm_decision_latest(const struct cm_consent_row *channel,
	    const struct cm_consent_row *all);

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
