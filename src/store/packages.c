/* SPDX-License-Identifier: ISC */
/*
 * The table of access and portability packages: where each package's key
 * is kept (wrapped), how large it is and when it expires. The package's
 * bytes are a sealed file beside the store (src/core/package.c). Writes
 * run inside the caller's transaction.
 */
#include <stdint.h>
#include <string.h>

#include "store_int.h"

#define PKG_COLS "id, request_id, subject_id, format, wrapped_key, size, created_at, expires_at"

static void
package_read(const struct store_query *s, struct cm_package_row *p)
{
	memset(p, 0, sizeof(*p));
	store_column_text(p->pk_id, sizeof(p->pk_id), s, 0);
	store_column_text(p->pk_request, sizeof(p->pk_request), s, 1);
	store_column_text(p->pk_subject, sizeof(p->pk_subject), s, 2);
	store_column_text(p->pk_format, sizeof(p->pk_format), s, 3);
	(void)store_column_blob(p->pk_wrapped, sizeof(p->pk_wrapped), s, 4);
	p->pk_size = store_col_int64(s, 5);
	p->pk_created_us = store_col_int64(s, 6);
	p->pk_expires_us = store_col_int64(s, 7);
}

cm_result
cm_store_package_insert(struct cm_db *d, const struct cm_package_row *p)
{
	static const char sql[] = "INSERT INTO dsr_packages (" PKG_COLS ") "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

	return store_exec(d, sql, "ttttBiii", p->pk_id, p->pk_request, p->pk_subject,
	    p->pk_format, p->pk_wrapped, (size_t)CM_WRAPPED_LEN, p->pk_size,
	    p->pk_created_us, p->pk_expires_us);
}

cm_result
cm_store_package_get(struct cm_db *d, const char *request, const char *format,
    struct cm_package_row *p)
{
	static const char sql[] = "SELECT " PKG_COLS " FROM dsr_packages "
	    "WHERE request_id = ? AND format = ?";
	struct store_query q;
	cm_result rc;

	memset(p, 0, sizeof(*p));
	if ((rc = store_row(&q, d, sql, "tt", request, format)) == CM_OK)
		package_read(&q, p);
	store_done(&q);
	return rc;
}

cm_result
cm_store_package_by_id(struct cm_db *d, const char *id, struct cm_package_row *p)
{
	static const char sql[] = "SELECT " PKG_COLS " FROM dsr_packages WHERE id = ?";
	struct store_query q;
	cm_result rc;

	memset(p, 0, sizeof(*p));
	if ((rc = store_row(&q, d, sql, "t", id)) == CM_OK)
		package_read(&q, p);
	store_done(&q);
	return rc;
}

cm_result
cm_store_packages_list(struct cm_db *d, const char *subject, int64_t expired_before,
    int (*fn)(void *, const struct cm_package_row *), void *arg)
{
	static const char by_subject[] = "SELECT " PKG_COLS " FROM dsr_packages "
	    "WHERE subject_id = ?1 OR request_id IN "
	    "(SELECT id FROM dsr_requests WHERE subject_id = ?1) ORDER BY id";
	static const char by_expiry[] = "SELECT " PKG_COLS " FROM dsr_packages "
	    "WHERE expires_at < ? ORDER BY expires_at, id";
	struct cm_package_row p;
	struct store_query q;

	if (subject != NULL)
		store_query(&q, d, by_subject, "t", subject);
	else
		store_query(&q, d, by_expiry, "i", expired_before);
	while (store_next(&q)) {
		package_read(&q, &p);
		if (fn(arg, &p) != 0)
			break;
	}
	return store_done(&q);
}

cm_result
cm_store_packages_delete(struct cm_db *d, const char *subject, int64_t expired_before)
{
	static const char by_subject[] = "DELETE FROM dsr_packages "
	    "WHERE subject_id = ?1 OR request_id IN "
	    "(SELECT id FROM dsr_requests WHERE subject_id = ?1)";
	static const char by_expiry[] = "DELETE FROM dsr_packages WHERE expires_at < ?";

	if (subject != NULL)
		return store_exec(d, by_subject, "t", subject);
	return store_exec(d, by_expiry, "i", expired_before);
}
