/* SPDX-License-Identifier: ISC */
/*
 * Subjects, their identifiers (by blind index, values sealed) and profile
 * attributes (values sealed). Every function runs inside the caller's
 * transaction except the reads, which also work outside one.
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

static const char *const subject_states[] = { "active", "restricted", "erased", NULL };

const char *
cm_subject_state_name(enum cm_subject_state s)
{
	return (size_t)s < CM_NELEM(subject_states) - 1 ? subject_states[s] : "invalid";
}

int
cm_subject_state_parse(const char *s, enum cm_subject_state *out)
{
	int i;

	i = s != NULL ? cm_strv_index(subject_states, s) : -1;
	*out = i < 0 ? CM_SUBJECT_INVALID : (enum cm_subject_state)i;
	return i < 0 ? -1 : 0;
}

cm_result
cm_store_subject_insert(struct cm_db *d, const char *id, const uint8_t wrapped[CM_WRAPPED_LEN],
    int64_t now)
{
	static const char sql[] = "INSERT INTO subjects (id, state, wrapped_key, "
	    "created_at, updated_at) VALUES (?, 'active', ?, ?, ?)";

	return store_exec(d, sql, "tBii", id, wrapped, (size_t)CM_WRAPPED_LEN, now, now);
}

cm_result
cm_store_subject_get(struct cm_db *d, const char *id, struct cm_subject_row *row)
{
	static const char sql[] = "SELECT id, state, wrapped_key, merged_into, created_at, "
	    "updated_at FROM subjects WHERE id = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "t", id)) == CM_OK) {
		memset(row, 0, sizeof(*row));
		store_column_text(row->s_id, sizeof(row->s_id), &q, 0);
		(void)cm_subject_state_parse(store_col_text(&q, 1),
		    &row->s_state);
		row->s_has_key = store_column_blob(row->s_wrapped, CM_WRAPPED_LEN, &q, 2);
		store_column_text(row->s_merged_into, sizeof(row->s_merged_into), &q, 3);
		row->s_created_us = store_col_int64(&q, 4);
		row->s_updated_us = store_col_int64(&q, 5);
	}
	store_done(&q);
	return rc;
}

cm_result
cm_store_subject_merge_away(struct cm_db *d, const char *id, const char *into, int64_t now)
{
	static const char sql[] = "UPDATE subjects SET merged_into = ?, wrapped_key = NULL, "
	    "updated_at = ? WHERE id = ?";

	return store_exec(d, sql, "tit", into, now, id);
}

cm_result
cm_store_subject_touch(struct cm_db *d, const char *id, int64_t now)
{
	static const char sql[] = "UPDATE subjects SET updated_at = ? WHERE id = ?";

	return store_exec(d, sql, "it", now, id);
}

cm_result
cm_store_identifier_owner(struct cm_db *d, const char *type, const uint8_t blind[32],
    char subject[CM_SUBJECT_ID_LEN + 1])
{
	static const char sql[] = "SELECT subject_id FROM identifiers "
	    "WHERE type = ? AND blind = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "tb", type, blind)) == CM_OK)
		store_column_text(subject, CM_SUBJECT_ID_LEN + 1, &q, 0);
	store_done(&q);
	return rc;
}

cm_result
cm_store_identifier_insert(struct cm_db *d, const char *subject,
    const struct cm_ident_row *row, int64_t now)
{
	static const char sql[] = "INSERT INTO identifiers (type, blind, subject_id, sealed, "
	    "source, verified, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
	cm_result rc;

	rc = store_exec(d, sql, "tbtBtii", row->i_type, row->i_blind, subject, row->i_sealed,
	    row->i_sealed_len, row->i_source, (int64_t)row->i_verified, now);
	/* An entry on the new identifier now binds the subject. */
	store_decisions_forget_ident(d, row->i_type, row->i_blind, &rc);
	store_decisions_forget_subject(d, subject, &rc);
	return rc;
}

cm_result
cm_store_identifier_delete(struct cm_db *d, const char *subject, const char *type,
    const uint8_t blind[32])
{
	static const char sql[] = "DELETE FROM identifiers WHERE type = ? AND blind = ? "
	    "AND subject_id = ?";
	int64_t n;
	cm_result rc;

	if ((rc = store_exec_changes(d, &n, sql, "tbt", type, blind, subject)) != CM_OK)
		return rc;
	if (n == 0)
		return CM_NOTFOUND;
	store_decisions_forget_ident(d, type, blind, &rc);
	store_decisions_forget_subject(d, subject, &rc);
	return rc;
}

cm_result
cm_store_identifier_move(struct cm_db *d, const char *type, const uint8_t blind[32],
    const char *subject, const uint8_t *sealed, size_t len)
{
	static const char sql_owner[] = "SELECT subject_id FROM identifiers "
	    "WHERE type = ? AND blind = ?";
	static const char sql[] = "UPDATE identifiers SET subject_id = ?, sealed = ? "
	    "WHERE type = ? AND blind = ?";
	char was[CM_SUBJECT_ID_LEN + 1] = "";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql_owner, "tb", type, blind)) == CM_OK)
		store_column_text(was, sizeof(was), &q, 0);
	store_done(&q);
	if (rc != CM_OK && rc != CM_NOTFOUND)
		return rc;
	rc = store_exec(d, sql, "tBtb", subject, sealed, len, type, blind);
	/* Both the subject it left and the one it joined. */
	store_decisions_forget_ident(d, type, blind, &rc);
	if (was[0] != '\0')
		store_decisions_forget_subject(d, was, &rc);
	store_decisions_forget_subject(d, subject, &rc);
	return rc;
}

cm_result
cm_store_identifier_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const struct cm_ident_row *), void *arg)
{
	static const char sql[] = "SELECT type, blind, sealed, source, verified, created_at "
	    "FROM identifiers WHERE subject_id = ? ORDER BY created_at, type";
	struct cm_ident_row row;
	struct store_query q;
	const struct store_query *s;

	store_query(&q, d, sql, "t", subject);
	while (store_next(&q)) {
		s = &q;
		memset(&row, 0, sizeof(row));
		store_column_text(row.i_type, sizeof(row.i_type), s, 0);
		store_column_blob(row.i_blind, sizeof(row.i_blind), s, 1);
		row.i_sealed = store_col_blob(s, 2);
		row.i_sealed_len = store_col_bytes(s, 2);
		store_column_text(row.i_source, sizeof(row.i_source), s, 3);
		row.i_verified = store_col_int(s, 4) != 0;
		row.i_created_us = store_col_int64(s, 5);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_profile_list(struct cm_db *d, const char *subject,
    int (*fn)(void *, const char *, const uint8_t *, size_t), void *arg)
{
	static const char sql[] = "SELECT name, sealed FROM profile_attributes "
	    "WHERE subject_id = ? ORDER BY name";
	struct store_query q;

	store_query(&q, d, sql, "t", subject);
	while (store_next(&q))
		if (fn(arg, store_col_text(&q, 0),
		    store_col_blob(&q, 1),
		    store_col_bytes(&q, 1)) != 0)
			break;
	return store_done(&q);
}

cm_result
cm_store_profile_put(struct cm_db *d, const char *subject, const char *name,
    const uint8_t *sealed, size_t len, int64_t now)
{
	static const char sql_upd[] = "UPDATE profile_attributes SET sealed = ?3, "
	    "updated_at = ?4 WHERE subject_id = ?1 AND name = ?2";
	static const char sql_ins[] = "INSERT INTO profile_attributes (subject_id, name, "
	    "sealed, updated_at) VALUES (?1, ?2, ?3, ?4)";

	return store_upsert(d, sql_upd, sql_ins, "ttBi", subject, name, sealed, len, now);
}

cm_result
cm_store_profile_delete(struct cm_db *d, const char *subject, const char *name)
{
	static const char sql[] = "DELETE FROM profile_attributes WHERE subject_id = ? "
	    "AND name = ?";

	return store_exec(d, sql, "tt", subject, name);
}

cm_result
cm_store_profile_count(struct cm_db *d, const char *subject, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM profile_attributes WHERE subject_id = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "t", subject)) == CM_OK)
		*n = store_col_int64(&q, 0);
	store_done(&q);
	return rc;
}

struct opening {
	uint64_t	 idx;
	uint8_t		*sealed;
	size_t		 len;
};

cm_result
cm_store_audit_openings_rehome(struct cm_db *d, const char *from, const char *to,
    int (*fn)(void *, uint64_t, const uint8_t *, size_t, struct cm_buf *), void *arg)
{
	static const char sql_get[] = "SELECT idx, sealed FROM audit_openings "
	    "WHERE subject_id = ? ORDER BY idx";
	static const char sql_put[] = "UPDATE audit_openings SET subject_id = ?, sealed = ? "
	    "WHERE idx = ?";
	struct store_query q;
	struct opening *list = NULL;
	struct cm_buf out = { 0 };
	size_t n = 0, i;
	cm_result rc;

	/* Read them all first: rows are not updated under a running scan. */
	store_query(&q, d, sql_get, "t", from);
	while (store_next(&q)) {
		list = cm_reallocarray(list, n + 1, sizeof(*list));
		list[n].idx = (uint64_t)store_col_int64(&q, 0);
		list[n].len = store_col_bytes(&q, 1);
		list[n].sealed = cm_malloc(list[n].len);
		memcpy(list[n].sealed, store_col_blob(&q, 1), list[n].len);
		n++;
	}
	if ((rc = store_done(&q)) != CM_OK)
		goto out;
	for (i = 0; i < n; i++) {
		cm_buf_reset(&out);
		if (fn(arg, list[i].idx, list[i].sealed, list[i].len, &out) != 0) {
			rc = CM_IOERR;
			goto out;
		}
		if ((rc = store_exec(d, sql_put, "tBi", to, out.b_data, out.b_len,
		    (int64_t)list[i].idx)) != CM_OK)
			goto out;
	}
out:
	for (i = 0; i < n; i++)
		free(list[i].sealed);
	free(list);
	cm_buf_free(&out);
	return rc;
}
