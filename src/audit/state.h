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

/* Whether entries of TYPE change the state the replay follows. */
bool	cm_state_entry_wanted(const char *type);

/* Applies entry IDX (parsed, borrowed); call in index order. */
void	cm_state_apply(struct cm_state_replay *, uint64_t idx, const json_t *entry);

/*
 * Compares every state table of DB with the replay, writing one line per
 * table (and per failure, up to a limit) to OUT, and counting each table
 * as passed or failed in REP. CM_OK unless a table could not be read.
 */
cm_result cm_state_compare(struct cm_state_replay *, struct cm_db *, FILE *out,
	    struct cm_verify_report *rep) CM_WUR;

#endif
