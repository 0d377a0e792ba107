/* SPDX-License-Identifier: ISC */
/*
 * Running statements: every table function runs its SQL through the
 * helper here, on the connection's cache of prepared statements keyed by
 * the address of their static text: bound from a format string, stepped,
 * read, errors mapped to cm_result and logged (function and format, never
 * a value) in one place.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"
#include "store_sqlite.h"

cm_result
store_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return CM_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return CM_BUSY;
	case SQLITE_CONSTRAINT:
		return CM_CONFLICT;
	case SQLITE_NOTADB:
		return CM_AUTH;
	case SQLITE_NOTFOUND:
		return CM_NOTFOUND;
	case SQLITE_NOMEM:
		return CM_NOMEM;
	default:
		return CM_IOERR;
	}
}

void
store_log_error(struct cm_db *d, const char *func, int rc)
{
	char msg[256];

	cm_json_escape(msg, sizeof(msg), d != NULL && d->db_conn != NULL ?
	    sqlite3_errmsg(d->db_conn) : sqlite3_errstr(rc));
	cm_log(CM_LOG_ERROR, "store_error", ",\"func\":\"%s\",\"rc\":%d,\"msg\":\"%s\"",
	    func, rc, msg);
}

int64_t
store_col_int64(const struct store_query *q, int col)
{
	if (q->q_pg != NULL)
		return store_pg_col_int64(q, col);
	return sqlite3_column_int64(q->q_stmt, col);
}

int
store_col_int(const struct store_query *q, int col)
{
	if (q->q_pg != NULL)
		return (int)store_pg_col_int64(q, col);
	return sqlite3_column_int(q->q_stmt, col);
}

const char *
store_col_text(const struct store_query *q, int col)
{
	if (q->q_pg != NULL)
		return store_pg_col_text(q, col);
	return (const char *)sqlite3_column_text(q->q_stmt, col);
}

const void *
store_col_blob(const struct store_query *q, int col)
{
	if (q->q_pg != NULL)
		return store_pg_col_blob(q, col);
	return sqlite3_column_blob(q->q_stmt, col);
}

size_t
store_col_bytes(const struct store_query *q, int col)
{
	if (q->q_pg != NULL)
		return store_pg_col_bytes(q, col);
	return (size_t)sqlite3_column_bytes(q->q_stmt, col);
}

bool
store_col_null(const struct store_query *q, int col)
{
	if (q->q_pg != NULL)
		return store_pg_col_null(q, col);
	return sqlite3_column_type(q->q_stmt, col) == SQLITE_NULL;
}

bool
store_col_is_blob(const struct store_query *q, int col)
{
	if (q->q_pg != NULL)
		return store_pg_col_is_blob(q, col);
	return sqlite3_column_type(q->q_stmt, col) == SQLITE_BLOB;
}

void
store_column_text(char *dst, size_t n, const struct store_query *q, int col)
{
	const char *t = store_col_text(q, col);
	size_t len;

	if (t == NULL) {
		dst[0] = '\0';
		return;
	}
	len = strlen(t);
	if (len >= n)
		len = n - 1;
	memcpy(dst, t, len);
	dst[len] = '\0';
}

bool
store_column_blob(void *dst, size_t n, const struct store_query *q, int col)
{
	const void *p = store_col_blob(q, col);

	if (p == NULL || store_col_bytes(q, col) != n)
		return false;
	memcpy(dst, p, n);
	return true;
}

const char *
store_errmsg(struct cm_db *d)
{
	if (d->db_pg != NULL)
		return store_pg_errmsg(d);
	return sqlite3_errmsg(d->db_conn);
}

int64_t
store_last_rowid(struct cm_db *d)
{
	if (d->db_pg != NULL)
		return store_pg_last_rowid(d);
	return sqlite3_last_insert_rowid(d->db_conn);
}

bool
store_in_tx(struct cm_db *d)
{
	if (d->db_pg != NULL)
		return store_pg_in_tx(d);
	return sqlite3_get_autocommit(d->db_conn) == 0;
}

cm_result
store_exec_once_at(struct cm_db *d, const char *func, const char *sql)
{
	int r;

	if (d->db_pg != NULL)
		return store_pg_exec_once(d, func, sql);
	if ((r = sqlite3_exec(d->db_conn, sql, NULL, NULL, NULL)) != SQLITE_OK) {
		store_log_error(d, func, r);
		return store_rc(r);
	}
	return CM_OK;
}

unsigned
store_stmt_hash(const char *sql)
{
	uintptr_t p = (uintptr_t)sql;

	return (unsigned)((p >> 4) ^ (p >> 12)) % STMT_CACHE_SLOTS;
}

/*
 * The cached prepared statement for SQL (keyed by the string's address),
 * reset and with no bindings; prepared on first use. With BUSY not NULL,
 * NULL and *BUSY true when the cached one is in the middle of a step loop.
 * Other failures give NULL and are logged under FUNC.
 */
static sqlite3_stmt *
stmt_get(struct cm_db *d, const char *sql, bool *busy, const char *func)
{
	struct stmt_slot *s;
	unsigned h, i;
	int rc;

	if (busy != NULL)
		*busy = false;
	h = store_stmt_hash(sql);
	for (i = 0; i < STMT_CACHE_SLOTS; i++) {
		s = &d->db_stmts[(h + i) % STMT_CACHE_SLOTS];
		if (s->ss_sql == sql) {
			if (busy != NULL && sqlite3_stmt_busy(s->ss_stmt)) {
				*busy = true;
				return NULL;
			}
			sqlite3_reset(s->ss_stmt);
			sqlite3_clear_bindings(s->ss_stmt);
			return s->ss_stmt;
		}
		if (s->ss_sql == NULL)
			break;
	}
	if (i == STMT_CACHE_SLOTS) {
		cm_log(CM_LOG_ERROR, "store_error", ",\"func\":\"%s\",\"msg\":\"statement cache full\"",
		    func);
		return NULL;
	}
	rc = sqlite3_prepare_v2(d->db_conn, sql, -1, &s->ss_stmt, NULL);
	if (rc != SQLITE_OK) {
		store_log_error(d, func, rc);
		s->ss_stmt = NULL;
		return NULL;
	}
	s->ss_sql = sql;
	return s->ss_stmt;
}

/*
 * Logs a format that does not fit its statement. Apart from store_bind(),
 * so the bind path carries no buffer of its own.
 */
static void __attribute__((noinline, cold))
store_log_misfit(const char *func, const char *fmt)
{
	char esc[64];

	cm_log(CM_LOG_ERROR, "store_error", ",\"func\":\"%s\",\"msg\":\"parameter format does "
	    "not fit the statement\",\"fmt\":\"%s\"", func, cm_json_escape(esc, sizeof(esc), fmt));
}

/*
 * Binds the values AP to S as FMT says (the letters are in store_int.h).
 * A format that does not fit S, or a value SQLite refuses, is logged under
 * FUNC and binds nothing further.
 */
static cm_result
store_bind(struct cm_db *d, const char *func, sqlite3_stmt *s, const char *fmt,
    va_list ap)
{
	const void *p;
	cm_result rc = CM_OK;
	int64_t v;
	size_t n;
	int i, r = SQLITE_OK;

	if ((size_t)sqlite3_bind_parameter_count(s) != strlen(fmt))
		goto misfit;
	for (i = 1; fmt[i - 1] != '\0' && r == SQLITE_OK; i++) {
		switch (fmt[i - 1]) {
		case 't':
			r = sqlite3_bind_text(s, i, va_arg(ap, const char *), -1, SQLITE_STATIC);
			break;
		case 'T':
			p = va_arg(ap, const char *);
			n = va_arg(ap, size_t);
			r = sqlite3_bind_text64(s, i, p, n, SQLITE_STATIC, SQLITE_UTF8);
			break;
		case 'b':
			r = sqlite3_bind_blob(s, i, va_arg(ap, const uint8_t *), 32, SQLITE_STATIC);
			break;
		case 'B':
			p = va_arg(ap, const void *);
			n = va_arg(ap, size_t);
			r = sqlite3_bind_blob64(s, i, p, n, SQLITE_STATIC);
			break;
		case 'i':
			r = sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
			break;
		case 'I':
			v = va_arg(ap, int64_t);
			r = v != 0 ? sqlite3_bind_int64(s, i, v) : sqlite3_bind_null(s, i);
			break;
		default:
			goto misfit;
		}
	}
	if (r != SQLITE_OK) {
		store_log_error(d, func, r);
		rc = store_rc(r);
	}
	goto out;
misfit:
	store_log_misfit(func, fmt);
	rc = CM_IOERR;
out:
	return rc;
}

static cm_result
store_exec_v(struct cm_db *d, const char *func, int64_t *changes, const char *sql,
    const char *fmt, va_list ap)
{
	sqlite3_stmt *s;
	cm_result rc;
	int r;

	if (d->db_pg != NULL)
		return store_pg_exec(d, func, changes, sql, fmt, ap);
	if ((s = stmt_get(d, sql, NULL, func)) == NULL)
		return CM_IOERR;
	if ((rc = store_bind(d, func, s, fmt, ap)) != CM_OK)
		goto out;
	/*
	 * What runs here is a write or transaction control (queries go
	 * through store_query()); SQLite calls BEGIN, COMMIT, SAVEPOINT and
	 * RELEASE read-only, and those touch no table, so they are not counted.
	 */
	if (!sqlite3_stmt_readonly(s))
		d->db_statements++;
	r = sqlite3_step(s);
	sqlite3_reset(s);
	if (r == SQLITE_DONE) {
		if (changes != NULL)
			*changes = sqlite3_changes(d->db_conn);
		goto out;
	}
	/* A row means a query: those are read with store_query(). */
	if ((r & 0xff) != SQLITE_CONSTRAINT)
		store_log_error(d, func, r);
	rc = r == SQLITE_ROW ? CM_IOERR : store_rc(r);
out:
	return rc;
}

cm_result
store_exec_at(struct cm_db *d, const char *func, int64_t *changes, const char *sql,
    const char *fmt, ...)
{
	va_list ap;
	cm_result rc;

	va_start(ap, fmt);
	rc = store_exec_v(d, func, changes, sql, fmt, ap);
	va_end(ap);
	return rc;
}

cm_result
store_upsert_at(struct cm_db *d, const char *func, const char *sql_upd, const char *sql_ins,
    const char *fmt, ...)
{
	va_list ap, again;
	int64_t n = 0;
	cm_result rc;

	va_start(ap, fmt);
	va_copy(again, ap);
	if ((rc = store_exec_v(d, func, &n, sql_upd, fmt, ap)) == CM_OK && n == 0)
		rc = store_exec_v(d, func, NULL, sql_ins, fmt, again);
	va_end(again);
	va_end(ap);
	return rc;
}

static void
store_query_v(struct store_query *q, struct cm_db *d, const char *func, const char *sql,
    bool own, const char *fmt, va_list ap)
{
	bool busy = own;
	int r;

	memset(q, 0, sizeof(*q));
	q->q_db = d;
	q->q_func = func;
	q->q_end = true;
	if (d->db_pg != NULL) {
		store_pg_query(q, sql, fmt, ap);
		return;
	}
	/*
	 * The cached statement, unless a caller further up is still stepping
	 * it (a callback that lists again) or the caller asked for its own:
	 * then a private one.
	 */
	if (own || (q->q_stmt = stmt_get(d, sql, &busy, func)) == NULL) {
		if (!busy) {
			q->q_rc = CM_IOERR;
			goto out;
		}
		if ((r = sqlite3_prepare_v2(d->db_conn, sql, -1, &q->q_stmt, NULL)) != SQLITE_OK) {
			store_log_error(d, func, r);
			q->q_rc = store_rc(r);
			goto out;
		}
		q->q_own = true;
	}
	if ((q->q_rc = store_bind(d, func, q->q_stmt, fmt, ap)) != CM_OK)
		goto out;
	/*
	 * Step now: from here until store_done() the cached statement is
	 * busy, so a query started meanwhile takes a private one.
	 */
	q->q_end = false;
	d->db_statements++;
	q->q_ahead = store_next(q);
out:
	return;
}

void
store_query_at(struct store_query *q, struct cm_db *d, const char *func, const char *sql,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_query_v(q, d, func, sql, false, fmt, ap);
	va_end(ap);
}

void
store_query_own_at(struct store_query *q, struct cm_db *d, const char *func, const char *sql,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_query_v(q, d, func, sql, true, fmt, ap);
	va_end(ap);
}

cm_result
store_row_at(struct store_query *q, struct cm_db *d, const char *func, const char *sql,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_query_v(q, d, func, sql, false, fmt, ap);
	va_end(ap);
	if (store_next(q))
		return CM_OK;
	return q->q_rc != CM_OK ? q->q_rc : CM_NOTFOUND;
}

bool
store_next(struct store_query *q)
{
	int r;

	if (q->q_ahead) {
		q->q_ahead = false;
		return true;
	}
	if (q->q_end)
		return false;
	if (q->q_pg != NULL)
		return store_pg_next(q);
	if ((r = sqlite3_step(q->q_stmt)) == SQLITE_ROW)
		return true;
	if (r != SQLITE_DONE) {
		store_log_error(q->q_db, q->q_func, r);
		q->q_rc = store_rc(r);
	}
	/*
	 * A finished statement is not busy, so a query started before
	 * store_done() may take the cached one: give it back now.
	 */
	if (!q->q_own)
		sqlite3_reset(q->q_stmt);
	q->q_end = true;
	return false;
}

cm_result
store_done(struct store_query *q)
{
	if (q->q_pg != NULL)
		return store_pg_done(q);
	if (q->q_own)
		sqlite3_finalize(q->q_stmt);
	else if (!q->q_end)
		sqlite3_reset(q->q_stmt);
	q->q_stmt = NULL;
	q->q_own = false;
	q->q_ahead = false;
	q->q_end = true;
	return q->q_rc;
}
