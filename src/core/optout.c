/* SPDX-License-Identifier: ISC */
/*
 * Recording again, after a restore, the "no"s the opt-out ledger holds
 * (src/store/optouts.c) and the restored database lacks: a person's "no"
 * outlives a restore. Each goes through the domain's own writes, so the
 * audit log, the current state, the change feed and the outbox follow as
 * they did the first time; only the times are the ledger's, so that a
 * withdrawal keeps its place among the events by collected_at and an
 * older grant in the backup cannot outrank it.
 *
 * Idempotent: a consent line is skipped when the subject has an event of
 * that purpose, channel and state collected at that time (the backup held
 * it, or an earlier line of the ledger wrote it); a suppression when the
 * identifier is listed; an objection when one is recorded; a restriction
 * when the subject is restricted. A subject merged away is followed to the
 * survivor; one the database lacks, or erased, is skipped.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "ledger.h"

#define MERGE_DEPTH_MAX	32

/* The live subject ID stands for now into ROW: CM_NOTFOUND when none (or erased). */
static cm_result
live_subject(const struct cm_ctx *cx, const char *id, struct cm_subject_row *row)
{
	char cur[CM_SUBJECT_ID_LEN + 1];
	int depth;
	cm_result rc;

	snprintf(cur, sizeof(cur), "%s", id);
	for (depth = 0; depth < MERGE_DEPTH_MAX; depth++) {
		if ((rc = cm_store_subject_get(cx->cx_db, cur, row)) != CM_OK)
			return rc;
		if (row->s_merged_into[0] == '\0')
			return row->s_state == CM_SUBJECT_ERASED ? CM_NOTFOUND : CM_OK;
		snprintf(cur, sizeof(cur), "%s", row->s_merged_into);
	}
	return CM_NOTFOUND;
}

static cm_result
replay_consent(const struct cm_ctx *cx, const struct cm_optout *o, bool *done,
    struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	enum cm_consent_state state;
	struct cm_subject_row row;
	struct cm_event_row ev;
	json_t *extra;
	uint8_t *key;
	bool found;
	int pi;
	cm_result rc;

	/* Only a "no" is replayed; a grant never comes back this way. */
	if (pol == NULL || cm_consent_state_parse(o->o_state, &state) != 0 ||
	    state == CM_CONSENT_GRANTED)
		return CM_OK;
	if ((pi = cm_policy_purpose_index(pol, o->o_purpose)) < 0 ||
	    (strcmp(o->o_channel, CM_ALL_CHANNELS) != 0 &&
	    cm_policy_channel_index(pol, o->o_channel) < 0))
		return CM_OK;
	if ((rc = live_subject(cx, o->o_subject, &row)) != CM_OK)
		return rc == CM_NOTFOUND ? CM_OK : rc;
	if ((rc = cm_store_event_exists(cx->cx_db, row.s_id, o->o_purpose, o->o_channel,
	    o->o_state, o->o_at, &found)) != CM_OK || found)
		return rc;
	key = cm_key_acquire();
	extra = json_pack("{s:s}", "replayed_from", CM_OPTOUT_LEDGER);
	if ((rc = cm_subject_open(cx, row.s_id, &row, key, w)) == CM_OK) {
		ledger_event_base(cx, &ev, row.s_id, &pol->pol_purposes[pi], o->o_channel, state,
		    o->o_notice, o->o_method, o->o_at, cx->cx_actor);
		/* EXTRA is borrowed: it joins the entry's commitment. */
		rc = ledger_event_write(cx, key, &ev, NULL, extra, true);
	}
	json_decref(extra);
	cm_key_release(key);
	if (rc == CM_OK)
		*done = true;
	return rc;
}

static cm_result
replay_subject(const struct cm_ctx *cx, const struct cm_optout *o, bool *done,
    struct cm_why *w)
{
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	int64_t objected;
	cm_result rc;

	if ((rc = live_subject(cx, o->o_subject, &row)) != CM_OK)
		return rc == CM_NOTFOUND ? CM_OK : rc;
	if (o->o_kind == CM_OPTOUT_RESTRICTION) {
		if (row.s_state == CM_SUBJECT_RESTRICTED)
			return CM_OK;
		if ((rc = cm_subject_restrict(cx, row.s_id, true, w)) == CM_OK)
			*done = true;
		return rc;
	}
	if ((rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		return rc;
	objected = pr.p_objected_at;
	cm_prefs_row_clear(&pr);
	if (objected != 0)
		return CM_OK;
	if ((rc = cm_subject_object_at(cx, row.s_id, o->o_at, w)) == CM_OK)
		*done = true;
	return rc;
}

cm_result
cm_optout_replay(const struct cm_ctx *cx, const struct cm_optout *o, bool *done,
    struct cm_why *w)
{
	*done = false;
	switch (o->o_kind) {
	case CM_OPTOUT_CONSENT:
		return replay_consent(cx, o, done, w);
	case CM_OPTOUT_SUPPRESSION:
		return cm_suppression_replay(cx, o->o_type, o->o_blind, o->o_reason, o->o_at,
		    done);
	case CM_OPTOUT_OBJECTION:
	case CM_OPTOUT_RESTRICTION:
		return replay_subject(cx, o, done, w);
	}
	return CM_INVALID;
}
