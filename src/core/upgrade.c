/* SPDX-License-Identifier: ISC */
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
 * stands.
 *
 * Identifier normalisation (IDNA, NFC and case folding for email,
 * libphonenumber for phones) changed the form of some stored values; each
 * is re-normalised and, where its form changed, linked under its new
 * blind index and unlinked from the old, with its suppression entry
 * re-keyed. Where the new form belongs to another subject, the two were
 * one person all along and are merged (the one holding the new form
 * survives), so every "no" of either still applies. A suppression entry of
 * an identifier nobody holds cannot be re-keyed: only its blind index was
 * ever stored.
 *
 * Each upgrade runs in one transaction with one audit entry saying what
 * it did, through the same domain operations (each with its own entry) as
 * the API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/consent.h"
#include "consentd/identifier.h"
#include "consentd/crypto.h"
#include "consentd/subject.h"
#include "consentd/upgrade.h"
#include "consentd/util.h"
#include "ledger.h"

/* Subjects whose decision rows one upgrade transaction builds. */
#define UPGRADE_DECISIONS_TX	20000
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
	if (srow.s_state == CM_SUBJECT_ERASED || srow.s_merged_into[0] != '\0')
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
upgrade_consent_order(const struct cm_ctx *cx, long *restated, long *pairs)
{
	struct pairs ps = { NULL, NULL, 0 };
	size_t i;
	cm_result rc;

	if ((rc = cm_store_upgrade_v1_pairs(cx->cx_db, pair_add, &ps)) != CM_OK)
		goto out;
	*pairs = (long)ps.n;
	for (i = 0; i < ps.n && rc == CM_OK; i++)
		rc = upgrade_pair(cx, ps.subject[i], ps.purpose[i], restated);
	if (rc == CM_OK)
		rc = cm_store_upgrade_v1_done(cx->cx_db);
	/* A store with no consent yet (a new one) has nothing to report. */
	if (rc == CM_OK && ps.n > 0)
		rc = cm_ctx_audit(cx, "store.upgraded", NULL, NULL, json_pack("{s:s, s:I, s:I}",
		    "upgrade", "consent_collected_order", "pairs", (json_int_t)ps.n,
		    "restated", (json_int_t)*restated), NULL, NULL);
out:
	free(ps.subject);
	free(ps.purpose);
	return rc;
}

#define META_IDENT_NORM	"identifier_normalisation"
#define IDENT_NORM_VERSION	"2"

struct subjects {
	char	(*id)[CM_SUBJECT_ID_LEN + 1];
	size_t	 n;
};

static int
subject_add(void *arg, const char *id)
{
	struct subjects *l = arg;

	l->id = cm_reallocarray(l->id, l->n + 1, sizeof(*l->id));
	snprintf(l->id[l->n++], CM_SUBJECT_ID_LEN + 1, "%s", id);
	return 0;
}

struct norm_counts {
	long	 reindexed, merged, unparseable;
	json_t	*rekeyed;	/* [[old tag, new tag], …] of suppression entries */
};

/*
 * Moves identifier OLD_TEXT of SUBJECT to its new form NEW; *MERGED_INTO
 * is set when that form belonged to another subject, which SUBJECT was
 * merged into.
 */
static cm_result
renormalise_one(const struct cm_ctx *cx, const char *subject, const char *old_text,
    const struct cm_identifier *new_id, bool verified, const char *source,
    char merged_into[CM_SUBJECT_ID_LEN + 1], struct norm_counts *nc)
{
	struct cm_identifier old;
	struct cm_new_ident ni;
	struct cm_why w;
	json_t *conflicts = NULL;
	char owner[CM_SUBJECT_ID_LEN + 1];
	const char *colon = strchr(old_text, ':');
	uint8_t ob[32], nb[32];
	bool existed;
	cm_result rc;

	memset(&old, 0, sizeof(old));
	memset(&w, 0, sizeof(w));
	merged_into[0] = '\0';
	if (colon == NULL || (size_t)(colon - old_text) > CM_ID_TYPE_MAX)
		return CM_INVALID;
	memcpy(old.id_type, old_text, (size_t)(colon - old_text));
	snprintf(old.id_value, sizeof(old.id_value), "%s", colon + 1);
	snprintf(old.id_text, sizeof(old.id_text), "%s", old_text);
	cm_blind_index(cx->cx_keys, old.id_type, old.id_value, ob);
	cm_blind_index(cx->cx_keys, new_id->id_type, new_id->id_value, nb);
	rc = cm_store_suppression_rekey(cx->cx_db, old.id_type, ob, nb);
	if (rc == CM_OK) {
		char ot[33], nt[33];

		cm_audit_tag_blind(cx->cx_keys, old.id_type, ob, ot);
		cm_audit_tag_blind(cx->cx_keys, new_id->id_type, nb, nt);
		json_array_append_new(nc->rekeyed, json_pack("[s, s]", ot, nt));
	} else if (rc != CM_NOTFOUND) {
		goto out;
	}
	rc = cm_store_identifier_owner(cx->cx_db, new_id->id_type, nb, owner);
	if (rc == CM_NOTFOUND) {
		memset(&ni, 0, sizeof(ni));
		ni.ni_id = *new_id;
		ni.ni_verified = verified;
		ni.ni_source = source;
		if ((rc = cm_subject_link(cx, subject, &ni, &existed, &w)) != CM_OK)
			goto out;
		snprintf(owner, sizeof(owner), "%s", subject);
	} else if (rc != CM_OK) {
		goto out;
	} else if (strcmp(owner, subject) != 0) {
		/* One person under two spellings: the holder of the new form stays. */
		if ((rc = cm_subject_merge(cx, owner, subject, "identifier normalisation",
		    &conflicts, &w)) != CM_OK)
			goto out;
		snprintf(merged_into, CM_SUBJECT_ID_LEN + 1, "%s", owner);
		nc->merged++;
	}
	rc = cm_subject_unlink(cx, owner, &old, &w);
	nc->reindexed++;
out:
	json_decref(conflicts);
	cm_wipe(&old, sizeof(old));
	return rc;
}

/* Re-normalises the identifiers of SUBJECT; follows it into a merge. */
static cm_result
renormalise_subject(const struct cm_ctx *cx, const char *subject, struct norm_counts *nc,
    int depth)
{
	struct cm_identifier new_id;
	struct cm_why w;
	json_t *ids = NULL, *v;
	char into[CM_SUBJECT_ID_LEN + 1], why[160];
	const char *text;
	size_t i;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (depth > 8)
		return CM_IOERR;
	rc = cm_subject_identifiers(cx, subject, &ids, &w);
	if (rc == CM_CONFLICT || rc == CM_NOTFOUND)
		return CM_OK;	/* erased or merged away meanwhile */
	if (rc != CM_OK)
		return rc;
	json_array_foreach(ids, i, v) {
		text = json_string_value(json_object_get(v, "identifier"));
		if (text == NULL)
			continue;
		if (cm_identifier_parse(text, strlen(text), cx->cx_policy, &new_id, why,
		    sizeof(why)) != CM_OK) {
			/* Kept as it is: still found by its old index, and counted. */
			nc->unparseable++;
			continue;
		}
		if (strcmp(new_id.id_text, text) == 0)
			continue;
		rc = renormalise_one(cx, subject, text, &new_id,
		    json_is_true(json_object_get(v, "verified")),
		    json_string_value(json_object_get(v, "source")), into, nc);
		cm_wipe(&new_id, sizeof(new_id));
		if (rc != CM_OK)
			break;
		if (into[0] != '\0') {
			/* SUBJECT is gone; its other identifiers are INTO's now. */
			rc = renormalise_subject(cx, into, nc, depth + 1);
			break;
		}
	}
	json_decref(ids);
	return rc;
}

static cm_result
upgrade_identifiers(const struct cm_ctx *cx, struct cm_upgrade_report *rep)
{
	struct subjects l = { NULL, 0 };
	struct norm_counts nc = { 0, 0, 0, NULL };
	size_t i;
	cm_result rc;

	nc.rekeyed = json_array();
	if ((rc = cm_store_subjects_with_identifiers(cx->cx_db, subject_add, &l)) != CM_OK)
		goto out;
	for (i = 0; i < l.n && rc == CM_OK; i++)
		rc = renormalise_subject(cx, l.id[i], &nc, 0);
	if (rc == CM_OK)
		rc = cm_store_meta_put(cx->cx_db, META_IDENT_NORM, IDENT_NORM_VERSION);
	if (rc == CM_OK && l.n > 0)
		rc = cm_ctx_audit(cx, "store.upgraded", NULL, NULL, json_pack("{s:s, s:I, s:I, "
		    "s:I, s:I, s:O}", "upgrade", "identifier_normalisation", "subjects",
		    (json_int_t)l.n, "reindexed", (json_int_t)nc.reindexed, "merged",
		    (json_int_t)nc.merged, "unparseable", (json_int_t)nc.unparseable, "rekeyed",
		    nc.rekeyed), NULL, NULL);
	rep->ur_subjects = (long)l.n;
	rep->ur_reindexed = nc.reindexed;
	rep->ur_merged = nc.merged;
	rep->ur_unparseable = nc.unparseable;
out:
	json_decref(nc.rekeyed);
	free(l.id);
	return rc;
}

/* Runs UP in a transaction of its own. */
static cm_result
upgrade_tx(const struct cm_ctx *cx, cm_result (*up)(const struct cm_ctx *,
    struct cm_upgrade_report *), struct cm_upgrade_report *rep)
{
	cm_result rc;

	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK)
		return rc;
	if ((rc = up(cx, rep)) != CM_OK) {
		cm_db_rollback(cx->cx_db);
		return rc;
	}
	if ((rc = cm_db_commit(cx->cx_db)) == CM_OK)
		rep->ur_ran++;
	return rc;
}

static cm_result
upgrade_order(const struct cm_ctx *cx, struct cm_upgrade_report *rep)
{
	return upgrade_consent_order(cx, &rep->ur_restated, &rep->ur_pairs);
}

/*
 * Builds the decision rows of every subject noted stale: all of them after
 * migration 15, or those another tool's writes left. Checks are exact
 * without them (they read the tables), only slower; so this runs in
 * transactions of a bounded size, and an interrupted run goes on next time.
 */
static cm_result
upgrade_decisions(struct cm_db *db, struct cm_upgrade_report *rep)
{
	int64_t pending;
	bool left = true;
	cm_result rc;

	if ((rc = cm_store_decisions_pending(db, &pending)) != CM_OK || pending == 0)
		return rc;
	while (left) {
		if ((rc = cm_db_begin(db)) != CM_OK)
			return rc;
		if ((rc = cm_store_decisions_rebuild(db, UPGRADE_DECISIONS_TX, &left)) != CM_OK) {
			cm_db_rollback(db);
			return rc;
		}
		if ((rc = cm_db_commit(db)) != CM_OK)
			return rc;
	}
	rep->ur_ran++;
	rep->ur_decisions = (long)pending;
	cm_log(CM_LOG_INFO, "store_upgraded", ",\"upgrade\":\"decision_rows\",\"subjects\":%ld",
	    rep->ur_decisions);
	return CM_OK;
}

cm_result
cm_upgrade_run(struct cm_db *db, const struct cm_keys *keys, struct cm_upgrade_report *rep)
{
	struct cm_ctx cx;
	char done[8];
	bool pending;
	cm_result rc;

	memset(rep, 0, sizeof(*rep));
	memset(&cx, 0, sizeof(cx));
	cx.cx_db = db;
	cx.cx_keys = keys;
	cx.cx_policy = NULL;
	snprintf(cx.cx_actor, sizeof(cx.cx_actor), "%s", UPGRADE_ACTOR);
	cx.cx_now = cm_time_now_us();
	if ((rc = cm_store_upgrade_v1_pending(db, &pending)) != CM_OK)
		return rc;
	if (pending) {
		if ((rc = upgrade_tx(&cx, upgrade_order, rep)) != CM_OK)
			return rc;
		if (rep->ur_pairs > 0)
			cm_log(CM_LOG_INFO, "store_upgraded", ",\"upgrade\":"
			    "\"consent_collected_order\",\"restated\":%ld", rep->ur_restated);
	}
	rc = cm_store_meta_get(db, META_IDENT_NORM, done, sizeof(done));
	if (rc == CM_NOTFOUND) {
		if ((rc = upgrade_tx(&cx, upgrade_identifiers, rep)) != CM_OK)
			return rc;
		if (rep->ur_subjects > 0)
			cm_log(CM_LOG_INFO, "store_upgraded", ",\"upgrade\":"
			    "\"identifier_normalisation\",\"reindexed\":%ld,\"merged\":%ld,"
			    "\"unparseable\":%ld", rep->ur_reindexed, rep->ur_merged,
			    rep->ur_unparseable);
	}
	if (rc != CM_OK)
		return rc;
	return upgrade_decisions(db, rep);
}
