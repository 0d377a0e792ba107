/* SPDX-License-Identifier: ISC */
/*
 * The policy_notices table: the notice text of every purpose version the
 * service has served. Rows are only added, at start-up, inside the
 * transaction that also appends their audit entries; the schema refuses
 * updates and deletes.
 */
#include <string.h>

#include "consentd/store.h"
#include "store_int.h"

#define NOTICE_COLUMNS	"purpose, version, sha256, lawful_basis, notice, " \
			"first_served_at, audit_index"

static void
notice_row_read(const struct store_query *s, struct cm_notice_row *row)
{
	memset(row, 0, sizeof(*row));
	store_column_text(row->nr_purpose, sizeof(row->nr_purpose), s, 0);
	row->nr_version = store_col_int64(s, 1);
	store_column_blob(row->nr_sha256, sizeof(row->nr_sha256), s, 2);
	store_column_text(row->nr_basis, sizeof(row->nr_basis), s, 3);
	row->nr_text = store_col_text(s, 4);
	row->nr_text_len = store_col_bytes(s, 4);
	if (row->nr_text == NULL)
		row->nr_text = "";
	row->nr_first_served_us = store_col_int64(s, 5);
	row->nr_audit_index = store_col_int64(s, 6);
}

cm_result
cm_store_notice_insert(struct cm_db *d, const struct cm_notice_row *row)
{
	static const char sql[] = "INSERT INTO policy_notices (" NOTICE_COLUMNS
	    ") VALUES (?, ?, ?, ?, ?, ?, ?)";

	return store_exec(d, sql, "tibtTii", row->nr_purpose, row->nr_version, row->nr_sha256,
	    row->nr_basis, row->nr_text, row->nr_text_len, row->nr_first_served_us,
	    row->nr_audit_index);
}

cm_result
cm_store_notice_list(struct cm_db *d, const char *purpose,
    int (*fn)(void *, const struct cm_notice_row *), void *arg)
{
	static const char sql_all[] = "SELECT " NOTICE_COLUMNS " FROM policy_notices "
	    "ORDER BY purpose, version";
	static const char sql_one[] = "SELECT " NOTICE_COLUMNS " FROM policy_notices "
	    "WHERE purpose = ?1 ORDER BY version";
	struct cm_notice_row row;
	struct store_query q;

	if (purpose != NULL)
		store_query(&q, d, sql_one, "t", purpose);
	else
		store_query(&q, d, sql_all, "");
	while (store_next(&q)) {
		notice_row_read(&q, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_notice_get(struct cm_db *d, const char *purpose, int64_t version,
    int (*fn)(void *, const struct cm_notice_row *), void *arg)
{
	static const char sql[] = "SELECT " NOTICE_COLUMNS " FROM policy_notices "
	    "WHERE purpose = ? AND version = ?";
	struct cm_notice_row row;
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "ti", purpose, version)) == CM_OK) {
		notice_row_read(&q, &row);
		(void)fn(arg, &row);
	}
	store_done(&q);
	return rc;
}
