/*
 * The policy_notices table: the notice text of every purpose version the
 * service has served. Rows are only added, at start-up, inside the
 * transaction that also appends their audit entries; the schema refuses
 * updates and deletes.
 */
#include <string.h>

#include "consentd/notice.h"
#include "store_int.h"

#define NOTICE_COLUMNS	"purpose, version, sha256, lawful_basis, notice, " \
			"first_served_at, audit_index"

static void
notice_row_read(sqlite3_stmt *s, struct cm_notice_row *row)
{
	const void *h;

	memset(row, 0, sizeof(*row));
	store_column_text(row->nr_purpose, sizeof(row->nr_purpose), s, 0);
	row->nr_version = sqlite3_column_int64(s, 1);
	h = sqlite3_column_blob(s, 2);
	if (h != NULL && sqlite3_column_bytes(s, 2) == 32)
		memcpy(row->nr_sha256, h, 32);
	store_column_text(row->nr_basis, sizeof(row->nr_basis), s, 3);
	row->nr_text = (const char *)sqlite3_column_text(s, 4);
	row->nr_text_len = (size_t)sqlite3_column_bytes(s, 4);
	if (row->nr_text == NULL)
		row->nr_text = "";
	row->nr_first_served_us = sqlite3_column_int64(s, 5);
	row->nr_audit_index = sqlite3_column_int64(s, 6);
}

cm_result
cm_store_notice_insert(struct cm_db *d, const struct cm_notice_row *row)
{
	static const char sql[] = "INSERT INTO policy_notices (" NOTICE_COLUMNS
	    ") VALUES (?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *s;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, row->nr_purpose, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, row->nr_version);
	sqlite3_bind_blob(s, 3, row->nr_sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, row->nr_basis, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, row->nr_text, (int)row->nr_text_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, row->nr_first_served_us);
	sqlite3_bind_int64(s, 7, row->nr_audit_index);
	return store_step_done(d, s, __func__);
}

struct notice_walk {
	int	(*fn)(void *, const struct cm_notice_row *);
	void	*arg;
};

static int
notice_walk_row(void *arg, sqlite3_stmt *s)
{
	struct notice_walk *w = arg;
	struct cm_notice_row row;

	notice_row_read(s, &row);
	return w->fn(w->arg, &row);
}

cm_result
cm_store_notice_list(struct cm_db *d, const char *purpose,
    int (*fn)(void *, const struct cm_notice_row *), void *arg)
{
	static const char sql_all[] = "SELECT " NOTICE_COLUMNS " FROM policy_notices "
	    "ORDER BY purpose, version";
	static const char sql_one[] = "SELECT " NOTICE_COLUMNS " FROM policy_notices "
	    "WHERE purpose = ?1 ORDER BY version";
	struct notice_walk w = { fn, arg };

	return store_each_row(d, __func__, purpose != NULL ? sql_one : sql_all, purpose,
	    notice_walk_row, &w);
}

cm_result
cm_store_notice_get(struct cm_db *d, const char *purpose, int64_t version,
    int (*fn)(void *, const struct cm_notice_row *), void *arg)
{
	static const char sql[] = "SELECT " NOTICE_COLUMNS " FROM policy_notices "
	    "WHERE purpose = ? AND version = ?";
	struct cm_notice_row row;
	sqlite3_stmt *s;
	cm_result rc;

	if ((s = store_stmt(d, sql)) == NULL)
		return CM_IOERR;
	sqlite3_bind_text(s, 1, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, version);
	if ((rc = store_step_row(d, s, __func__)) == CM_OK) {
		notice_row_read(s, &row);
		(void)fn(arg, &row);
	}
	sqlite3_reset(s);
	return rc;
}
