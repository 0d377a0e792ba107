/* SPDX-License-Identifier: ISC */
/*
 * The suppression list: one entry per identifier (type and blind index)
 * with its reason and time, and the subjects each entry binds
 * (suppression_subjects), so an entry set on one identifier of a person
 * still stands when that identifier is unlinked or the person merged.
 * Writes run inside the caller's transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

cm_result
cm_store_suppression_get(struct cm_db *d, const char *type, const uint8_t blind[32],
    char reason[16], int64_t *since)
{
	static const char sql[] = "SELECT reason, since FROM suppressions "
	    "WHERE type = ? AND blind = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "tb", type, blind)) == CM_OK) {
		store_column_text(reason, 16, &q, 0);
		*since = store_col_int64(&q, 1);
	}
	store_done(&q);
	return rc;
}

/* Calls FN with every suppression entry of Q until FN returns non-zero; ends Q. */
static cm_result
supp_rows(struct store_query *q, int (*fn)(void *, const struct cm_supp_row *), void *arg)
{
	struct cm_supp_row r;

	while (store_next(q)) {
		memset(&r, 0, sizeof(r));
		store_column_text(r.sr_type, sizeof(r.sr_type), q, 0);
		store_column_blob(r.sr_blind, sizeof(r.sr_blind), q, 1);
		store_column_text(r.sr_reason, sizeof(r.sr_reason), q, 2);
		r.sr_since = store_col_int64(q, 3);
		if (fn(arg, &r) != 0)
			break;
	}
	return store_done(q);
}

cm_result
cm_store_subject_suppressions(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_supp_row *), void *arg)
{
	static const char sql[] = "SELECT s.type, s.blind, s.reason, s.since "
	    "FROM identifiers i JOIN suppressions s ON s.type = i.type AND s.blind = i.blind "
	    "WHERE i.subject_id = ?1 UNION ALL SELECT s.type, s.blind, s.reason, s.since "
	    "FROM suppression_subjects b JOIN suppressions s ON s.type = b.type AND "
	    "s.blind = b.blind WHERE b.subject_id = ?1";
	struct store_query q;

	store_query(&q, d, sql, "t", subject);
	return supp_rows(&q, fn, arg);
}

cm_result
cm_store_suppressions_scan(struct cm_db *d, int (*fn)(void *, const struct cm_supp_row *),
    void *arg)
{
	static const char sql[] = "SELECT type, blind, reason, since FROM "
	    "suppressions ORDER BY type, blind";
	struct store_query q;

	store_query(&q, d, sql, "");
	return supp_rows(&q, fn, arg);
}

cm_result
cm_store_suppression_bind(struct cm_db *d, const char *subject, const char *type,
    const uint8_t blind[32])
{
	static const char sql[] = "INSERT INTO suppression_subjects (subject_id, type, blind) "
	    "SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM suppression_subjects "
	    "WHERE subject_id = ?1 AND type = ?2 AND blind = ?3)";

	return store_exec(d, sql, "ttb", subject, type, blind);
}

cm_result
cm_store_suppression_unbind(struct cm_db *d, const char *type, const uint8_t blind[32])
{
	static const char sql[] = "DELETE FROM suppression_subjects WHERE type = ? AND blind = ?";

	return store_exec(d, sql, "tb", type, blind);
}

cm_result
cm_store_suppression_bindings_move(struct cm_db *d, const char *from, const char *to)
{
	/* FROM's bindings move to TO, but for those TO already has. */
	static const char sql_mv[] = "UPDATE suppression_subjects SET subject_id = ?1 "
	    "WHERE subject_id = ?2 AND NOT EXISTS (SELECT 1 FROM suppression_subjects AS o "
	    "WHERE o.subject_id = ?1 AND o.type = suppression_subjects.type AND "
	    "o.blind = suppression_subjects.blind)";
	static const char sql_rm[] = "DELETE FROM suppression_subjects WHERE subject_id = ?";
	cm_result rc;

	if ((rc = store_exec(d, sql_mv, "tt", to, from)) != CM_OK)
		return rc;
	/* What INTO had already stays; FROM's duplicates go. */
	return store_exec(d, sql_rm, "t", from);
}

cm_result
cm_store_suppression_bindings(struct cm_db *d, const char *subject,
    int (*fn)(void *, const char *, const char *, const uint8_t *), void *arg)
{
	static const char sql_all[] = "SELECT subject_id, type, blind FROM "
	    "suppression_subjects ORDER BY subject_id, type, blind";
	static const char sql_one[] = "SELECT subject_id, type, blind FROM "
	    "suppression_subjects WHERE subject_id = ? ORDER BY type, blind";
	struct store_query q;
	uint8_t blind[32];

	if (subject == NULL)
		store_query(&q, d, sql_all, "");
	else
		store_query(&q, d, sql_one, "t", subject);
	while (store_next(&q)) {
		memset(blind, 0, sizeof(blind));
		store_column_blob(blind, sizeof(blind), &q, 2);
		if (fn(arg, store_col_text(&q, 0),
		    store_col_text(&q, 1), blind) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_suppression_put(struct cm_db *d, const char *type, const uint8_t blind[32],
    const char *reason, int64_t since)
{
	static const char sql[] = "INSERT INTO suppressions (type, blind, reason, since) "
	    "VALUES (?, ?, ?, ?)";
	struct cm_optout o;
	cm_result rc;

	if ((rc = store_exec(d, sql, "tbti", type, blind, reason, since)) != CM_OK)
		return rc;
	/* The entry goes to the opt-out ledger: its type and blind index, never the identifier. */
	memset(&o, 0, sizeof(o));
	o.o_kind = CM_OPTOUT_SUPPRESSION;
	snprintf(o.o_type, sizeof(o.o_type), "%s", type);
	memcpy(o.o_blind, blind, 32);
	snprintf(o.o_reason, sizeof(o.o_reason), "%s", reason);
	o.o_at = since;
	store_optouts_note(d, &o);
	return CM_OK;
}

cm_result
cm_store_suppression_delete(struct cm_db *d, const char *type, const uint8_t blind[32])
{
	static const char sql[] = "DELETE FROM suppressions WHERE type = ? AND blind = ?";
	int64_t n;
	cm_result rc;

	if ((rc = store_exec_changes(d, &n, sql, "tb", type, blind)) != CM_OK)
		return rc;
	return n != 0 ? CM_OK : CM_NOTFOUND;
}
