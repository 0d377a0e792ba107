/*
 * Data upgrades that SQL alone cannot do. Migration 5 rebuilt the consent
 * projection in collected_at order and kept the old one (ordered by when
 * events were recorded) as consent_current_v1. Here the two are compared
 * for every subject, purpose and scope (all channels, and each channel
 * either holds a row for): wherever the old projection decided on a
 * withdrawal or refusal and the new order would let a grant decide, the
 * old "no" is restated as a fresh event, so no stored decision turns from
 * deny into allow by the upgrade. The other direction (an old grant that
 * beat a newer withdrawal) is exactly the defect the new order fixes, and
 * stands. Everything runs in one transaction with one audit entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/subject.h"
#include "consentd/upgrade.h"
#include "consentd/util.h"
#include "ledger.h"

#define UPGRADE_ACTOR	"system:upgrade"
#define SCOPES_MAX	(CM_POLICY_MAX_CHANNELS + 1)

struct pairs {
	char	(*subject)[CM_SUBJECT_ID_LEN + 1];
	char	(*purpose)[65];
	size_t	 n;
};

static int
pair_add(void *arg, const char *subject, const char *purpose)
{
	struct pairs *p = arg;

	p->subject = cm_reallocarray(p->subject, p->n + 1, sizeof(*p->subject));
	p->purpose = cm_reallocarray(p->purpose, p->n + 1, sizeof(*p->purpose));
	snprintf(p->subject[p->n], sizeof(*p->subject), "%s", subject);
	snprintf(p->purpose[p->n], sizeof(*p->purpose), "%s", purpose);
	p->n++;
	return 0;
}

/* The rows of one (subject, purpose), by channel. */
struct rows {
	struct cm_event_row	 r[SCOPES_MAX];
	size_t			 n;
};

static int
rows_add(void *arg, const struct cm_event_row *e)
{
	struct rows *rs = arg;

	if (rs->n < SCOPES_MAX)
		rs->r[rs->n++] = *e;
	return 0;
}

static const struct cm_event_row *
rows_get(const struct rows *rs, const char *channel)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (strcmp(rs->r[i].e_channel, channel) == 0)
			return &rs->r[i];
	return NULL;
}

/* The old projection's decision for CHANNEL: the later recorded of it and "*". */
static const struct cm_event_row *
old_effective(const struct rows *rs, const char *channel)
{
	const struct cm_event_row *ch = rows_get(rs, channel), *all;

	all = rows_get(rs, CM_ALL_CHANNELS);
	if (ch == NULL || strcmp(channel, CM_ALL_CHANNELS) == 0)
		return all;
	if (all == NULL)
		return ch;
	return ch->e_seq >= all->e_seq ? ch : all;
}

/* The new projection's decision for CHANNEL: the later collected. */
static const struct cm_event_row *
new_effective(const struct rows *rs, const char *channel)
{
	const struct cm_event_row *ch = rows_get(rs, channel), *all;

	all = rows_get(rs, CM_ALL_CHANNELS);
	if (ch == NULL || strcmp(channel, CM_ALL_CHANNELS) == 0)
		return all;
	if (all == NULL)
		return ch;
	return cm_consent_after(all->e_collected_us, all->e_seq, ch->e_collected_us,
	    ch->e_seq) ? all : ch;
}

static bool
granted(const struct cm_event_row *r)
{
	return r != NULL && strcmp(r->e_state, "granted") == 0;
}

/* Compares the two projections of one (subject, purpose); restates where needed. */
static cm_result
upgrade_pair(const struct cm_ctx *cx, const char *subject, const char *purpose,
    long *restated)
{
	struct rows old, cur;
	const struct cm_event_row *o, *n;
	const char *scope[SCOPES_MAX * 2];
	struct cm_subject_row srow;
	struct cm_purpose p;
	struct cm_event_row ev;
	enum cm_consent_state st;
	size_t i, k, ns = 0;
	cm_result rc;

	memset(&old, 0, sizeof(old));
	memset(&cur, 0, sizeof(cur));
	if ((rc = cm_store_subject_get(cx->cx_db, subject, &srow)) != CM_OK)
		return rc == CM_NOTFOUND ? CM_OK : rc;
	/* An erased or merged-away subject decides nothing any more. */
	if (strcmp(srow.s_state, "erased") == 0 || srow.s_merged_into[0] != '\0')
		return CM_OK;
	if ((rc = cm_store_upgrade_v1_rows(cx->cx_db, subject, purpose, rows_add,
	    &old)) != CM_OK ||
	    (rc = cm_store_current_purpose(cx->cx_db, subject, purpose, rows_add,
	    &cur)) != CM_OK)
		return rc;
	scope[ns++] = CM_ALL_CHANNELS;
	for (i = 0; i < old.n + cur.n; i++) {
		const char *c = i < old.n ? old.r[i].e_channel : cur.r[i - old.n].e_channel;

		for (k = 0; k < ns && strcmp(scope[k], c) != 0; k++)
			;
		if (k == ns)
			scope[ns++] = c;
	}
	for (k = 0; k < ns; k++) {
		o = old_effective(&old, scope[k]);
		n = new_effective(&cur, scope[k]);
		if (o == NULL || granted(o) || !granted(n))
			continue;
		/* The old "no" stands: restate it, newer than anything. */
		memset(&p, 0, sizeof(p));
		p.pu_id = purpose;
		p.pu_version = o->e_notice_version;
		if (cm_consent_state_parse(o->e_state, &st) != 0)
			st = CM_CONSENT_WITHDRAWN;
		ledger_event_base(cx, &ev, subject, &p, scope[k], st, o->e_notice_version,
		    o->e_method, 0, UPGRADE_ACTOR);
		if ((rc = ledger_event_write(cx, NULL, &ev, NULL, NULL, false)) != CM_OK)
			return rc;
		(*restated)++;
		/* The projection moved: read it again for the next scope. */
		memset(&cur, 0, sizeof(cur));
		if ((rc = cm_store_current_purpose(cx->cx_db, subject, purpose, rows_add,
		    &cur)) != CM_OK)
			return rc;
	}
	return CM_OK;
}

static cm_result
upgrade_consent_order(const struct cm_ctx *cx, long *restated)
{
	struct pairs ps = { NULL, NULL, 0 };
	size_t i;
	cm_result rc;

	if ((rc = cm_store_upgrade_v1_pairs(cx->cx_db, pair_add, &ps)) != CM_OK)
		goto out;
	for (i = 0; i < ps.n && rc == CM_OK; i++)
		rc = upgrade_pair(cx, ps.subject[i], ps.purpose[i], restated);
	if (rc == CM_OK)
		rc = cm_store_upgrade_v1_done(cx->cx_db);
	/* A store with no consent yet (a new one) has nothing to report. */
	if (rc == CM_OK && ps.n > 0)
		rc = ledger_audit(cx, "store.upgraded", NULL, NULL, json_pack("{s:s, s:I, s:I}",
		    "upgrade", "consent_collected_order", "pairs", (json_int_t)ps.n,
		    "restated", (json_int_t)*restated), NULL, NULL);
out:
	free(ps.subject);
	free(ps.purpose);
	return rc;
}

cm_result
cm_upgrade_run(struct cm_db *db, const struct cm_keys *keys, struct cm_upgrade_report *rep)
{
	struct cm_ctx cx;
	bool pending;
	cm_result rc;

	memset(rep, 0, sizeof(*rep));
	if ((rc = cm_store_upgrade_v1_pending(db, &pending)) != CM_OK || !pending)
		return rc;
	memset(&cx, 0, sizeof(cx));
	cx.cx_db = db;
	cx.cx_keys = keys;
	cx.cx_policy = NULL;
	cx.cx_actor = UPGRADE_ACTOR;
	cx.cx_now = cm_time_now_us();
	if ((rc = cm_db_begin(db)) != CM_OK)
		return rc;
	if ((rc = upgrade_consent_order(&cx, &rep->ur_restated)) != CM_OK) {
		cm_db_rollback(db);
		return rc;
	}
	if ((rc = cm_db_commit(db)) != CM_OK)
		return rc;
	rep->ur_ran = 1;
	cm_log(CM_LOG_INFO, "store_upgraded", ",\"upgrade\":\"consent_collected_order\","
	    "\"restated\":%ld", rep->ur_restated);
	return CM_OK;
}
