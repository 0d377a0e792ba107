/* SPDX-License-Identifier: ISC */
/*
 * The rights that change what the check answers for a person: an Art. 21
 * objection to direct marketing, an Art. 18 restriction, and Art. 17
 * erasure. Erasure keeps "do not contact": every identifier's blind index
 * goes on the suppression list as erased before the identifiers, profile,
 * preferences and evidence are deleted and the subject key destroyed.
 * Its audit entry records counts and audit tags, never data: the tag of
 * the subject id and of each suppressed identifier, which only the master
 * key can match to the rows they stand for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/changes.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "ledger.h"

cm_result
cm_subject_object(const struct cm_ctx *cx, const char *id, struct cm_why *w)
{
	return cm_subject_object_at(cx, id, 0, w);
}

cm_result
cm_subject_object_at(const struct cm_ctx *cx, const char *id, int64_t when, struct cm_why *w)
{
	struct cm_subject_row row;
	struct cm_prefs_row pr;
	uint64_t idx;
	char at[32];
	uint8_t *key;
	cm_result rc;

	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK ||
	    (rc = cm_store_prefs_get(cx->cx_db, row.s_id, &pr)) != CM_OK)
		goto out;
	if (pr.p_objected_at == 0)
		pr.p_objected_at = when > 0 && when < cx->cx_now ? when : cx->cx_now;
	rc = cm_store_prefs_put(cx->cx_db, row.s_id, &pr, cx->cx_now);
	if (rc == CM_OK)
		rc = cm_ctx_audit(cx, "subject.objected", row.s_id, key, json_pack("{s:s, s:I}",
		    "scope", "direct_marketing", "objected_at", (json_int_t)pr.p_objected_at),
		    NULL, &idx);
	cm_time_format(at, pr.p_objected_at);
	if (rc == CM_OK)
		rc = cm_change_record(cx, "objection", row.s_id, NULL, NULL, json_pack("{s:s, "
		    "s:s, s:I}", "scope", "direct_marketing", "objected_at", at, "audit_index",
		    (json_int_t)idx));
	cm_prefs_row_clear(&pr);
out:
	cm_key_release(key);
	return rc;
}

cm_result
cm_subject_restrict(const struct cm_ctx *cx, const char *id, bool on, struct cm_why *w)
{
	struct cm_subject_row row;
	uint64_t idx;
	uint8_t *key;
	cm_result rc;

	key = cm_key_acquire();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) == CM_OK &&
	    (rc = cm_store_subject_set_state(cx->cx_db, row.s_id,
	    on ? CM_SUBJECT_RESTRICTED : CM_SUBJECT_ACTIVE,
	    cx->cx_now)) == CM_OK)
		rc = cm_ctx_audit(cx, on ? "subject.restricted" : "subject.unrestricted", row.s_id,
		    key, NULL, NULL, &idx);
	if (rc == CM_OK)
		rc = cm_restriction_change(cx, row.s_id, on, idx);
	cm_key_release(key);
	return rc;
}

struct erase_ids {
	const struct cm_ctx	*cx;
	json_t			*tags;
	char			 since[32];	/* now, for the feed */
	cm_result		 rc;
};

static int
erase_suppress(void *arg, const struct cm_ident_row *r)
{
	struct erase_ids *e = arg;
	char reason[16], tag[33];
	int64_t since;
	cm_result rc;

	/* An existing suppression becomes "erased": the strongest reason. */
	rc = cm_store_suppression_get(e->cx->cx_db, r->i_type, r->i_blind, reason, &since);
	if (rc == CM_OK)
		rc = cm_store_suppression_delete(e->cx->cx_db, r->i_type, r->i_blind);
	else if (rc == CM_NOTFOUND)
		rc = CM_OK;
	if (rc == CM_OK)
		rc = cm_store_suppression_put(e->cx->cx_db, r->i_type, r->i_blind, "erased",
		    e->cx->cx_now);
	if (rc != CM_OK) {
		e->rc = rc;
		return 1;
	}
	/* In the feed by type only: nobody holds the identifier after this. */
	if ((rc = cm_change_record(e->cx, "suppression", NULL, r->i_type, r->i_blind,
	    json_pack("{s:s, s:s, s:s, s:s}", "action", "added", "identifier_type",
	    r->i_type, "reason", "erased", "since", e->since))) != CM_OK) {
		e->rc = rc;
		return 1;
	}
	ledger_supp_tag(e->cx, r->i_type, r->i_blind, tag);
	json_array_append_new(e->tags, json_string(tag));
	return 0;
}

struct id_list {
	char	(*ids)[CM_SUBJECT_ID_LEN + 1];
	size_t	 n;
};

static int
collect_id(void *arg, const char *id)
{
	struct id_list *l = arg;

	l->ids = cm_reallocarray(l->ids, l->n + 1, sizeof(*l->ids));
	snprintf(l->ids[l->n++], CM_SUBJECT_ID_LEN + 1, "%s", id);
	return 0;
}

/*
 * Drops the audit pseudonym mapping and openings of ID and of every
 * subject merged into it (at any depth): the person's whole past in the
 * log becomes unlinkable.
 */
static cm_result
erase_pseudonyms(const struct cm_ctx *cx, const char *id, int depth)
{
	struct id_list l = { NULL, 0 };
	cm_result rc;
	size_t i;

	if (depth > 64)
		return CM_IOERR;
	if ((rc = cm_store_audit_forget_subject(cx->cx_db, id)) != CM_OK ||
	    (rc = cm_change_forget(cx, id)) != CM_OK ||
	    (rc = cm_store_subjects_merged_into(cx->cx_db, id, collect_id, &l)) != CM_OK)
		goto out;
	for (i = 0; i < l.n && rc == CM_OK; i++)
		rc = erase_pseudonyms(cx, l.ids[i], depth + 1);
out:
	free(l.ids);
	return rc;
}

cm_result
cm_subject_erase(const struct cm_ctx *cx, const char *id, json_t **counts, struct cm_why *w)
{
	struct cm_subject_row row;
	struct erase_ids e;
	int64_t nids = 0, nattrs = 0, nev = 0;
	uint64_t idx;
	uint8_t *key;
	char tag[33];
	cm_result rc;

	*counts = NULL;
	key = cm_key_acquire();
	memset(&e, 0, sizeof(e));
	cm_time_format(e.since, cx->cx_now);
	e.cx = cx;
	e.tags = json_array();
	if ((rc = cm_subject_open(cx, id, &row, key, w)) != CM_OK)
		goto out;
	if ((rc = cm_store_identifier_list(cx->cx_db, row.s_id, erase_suppress, &e)) != CM_OK ||
	    (rc = e.rc) != CM_OK)
		goto out;
	if ((rc = cm_store_subject_erase(cx->cx_db, row.s_id, &nids, &nattrs, &nev,
	    cx->cx_now)) != CM_OK ||
	    (rc = erase_pseudonyms(cx, row.s_id, 0)) != CM_OK)
		goto out;
	*counts = json_pack("{s:I, s:I, s:I, s:I}", "identifiers", (json_int_t)nids,
	    "suppressed", (json_int_t)json_array_size(e.tags), "profile_attributes",
	    (json_int_t)nattrs, "evidence", (json_int_t)nev);
	cm_audit_tag(cx->cx_keys, row.s_id, strlen(row.s_id), tag);
	/* No subject on the entry: that would map a new pseudonym to it. */
	if ((rc = cm_ctx_audit(cx, "erasure.completed", NULL, NULL, json_pack("{s:O, s:s, s:O, "
	    "s:I}", "counts", *counts, "subject_tag", tag, "suppressed_tags", e.tags, "since",
	    (json_int_t)cx->cx_now), NULL, &idx)) != CM_OK)
		goto out;
	/* The erasure alone stays in the feed, naming the id and nothing else. */
	rc = cm_change_record(cx, "erasure", row.s_id, NULL, NULL, json_pack("{s:I}",
	    "audit_index", (json_int_t)idx));
out:
	if (rc != CM_OK) {
		json_decref(*counts);
		*counts = NULL;
	}
	json_decref(e.tags);
	cm_key_release(key);
	return rc;
}
