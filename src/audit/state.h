/*
 * Internals of src/audit/: the replay of the log that `audit verify`
 * compares the state tables with (state.c). Only files in src/audit/
 * include this header.
 */
#ifndef CONSENTD_AUDIT_STATE_H
#define CONSENTD_AUDIT_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "consentd/audit.h"

struct cm_db;
struct cm_keys;
struct cm_state_replay;

/* A replay keyed by KEYS (the audit tags are keyed); free it with the below. */
struct cm_state_replay *cm_state_replay_new(const struct cm_keys *);
void	cm_state_replay_free(struct cm_state_replay *);

/* What one entry says of the state, extracted where it was parsed. */
enum cm_state_kind {
	SF_NONE, SF_CONSENT, SF_CREATED, SF_RESTRICTED, SF_UNRESTRICTED, SF_MERGED,
	SF_OBJECTED, SF_PREFS, SF_SUPP_ADDED, SF_SUPP_LIFTED, SF_UNLINKED, SF_JSON
};

struct cm_state_fact {
	enum cm_state_kind	 sf_kind;
	char			 sf_psn[40];	/* the entry's subject pseudonym */
	char			 sf_other[40];	/* merged pseudonym, tag or frequency */
	char			 sf_reason[16];
	int64_t			 sf_num;	/* since, objected_at or paused_until */
	uint8_t			 sf_digest[16];	/* a consent event's fields */
	uint8_t			 sf_mask;	/* which optional fields it carried */
	bool			 sf_legacy;	/* written before the log carried them */
	json_t			*sf_json;	/* SF_JSON: the whole entry */
};

/*
 * Extracts from a parsed ENTRY what it says of the state into F (SF_NONE
 * when nothing). Safe on any thread; F keeps a reference to ENTRY only for
 * the rare kinds it keeps whole. Release F with cm_state_fact_clear().
 */
void	cm_state_extract(json_t *entry, struct cm_state_fact *f);
void	cm_state_fact_clear(struct cm_state_fact *f);

/* Applies what entry IDX said; call in index order. */
void	cm_state_apply(struct cm_state_replay *, uint64_t idx, const struct cm_state_fact *);

/*
 * Compares every state table of DB with the replay, writing one line per
 * table (and per failure, up to a limit) to OUT, and counting each table
 * as passed or failed in REP. CM_OK unless a table could not be read.
 */
cm_result cm_state_compare(struct cm_state_replay *, struct cm_db *, FILE *out,
	    struct cm_verify_report *rep) CM_WUR;

#endif
