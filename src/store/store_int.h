/*
 * Internals shared by the files of src/store/: the connection structure,
 * the prepared-statement cache and result-code mapping. Nothing outside
 * src/store/ includes this header.
 */
#ifndef CONSENTD_STORE_INT_H
#define CONSENTD_STORE_INT_H

#define SQLITE_HAS_CODEC 1
#include <sqlite3.h>

#include "consentd/store.h"

#define STMT_CACHE_SLOTS	128

struct stmt_slot {
	const char	*ss_sql;	/* key: the address of a static SQL string */
	sqlite3_stmt	*ss_stmt;
};

struct cm_db {
	sqlite3			*db_conn;
	struct cm_store		*db_store;
	struct stmt_slot	 db_stmts[STMT_CACHE_SLOTS];
	bool			 db_reading;	/* in a read transaction we began */
	unsigned		 db_read_depth;	/* nesting of cm_db_read_begin */
	bool			 db_writing;	/* holds the store's writer mutex */
	struct cm_db		*db_next;	/* the store's list of connections */
	struct cm_db		*db_prev;
};

/*
 * The cached, reset statement for SQL, which must be a string with static
 * storage (its address is the cache key). NULL on error (logged).
 */
sqlite3_stmt	*store_stmt(struct cm_db *, const char *sql);

/* Maps an SQLite result code to a cm_result. */
cm_result	 store_rc(int);

/* Logs an SQLite failure in FUNC with the error text (never bound values). */
void		 store_log_error(struct cm_db *, const char *func, int rc);

/*
 * Steps S, which should finish with SQLITE_DONE, and resets it. Logs
 * failures other than constraint violations (CM_CONFLICT, an expected
 * answer) under FUNC.
 */
cm_result	 store_step_done(struct cm_db *, sqlite3_stmt *s, const char *func);

/*
 * Steps S for one row: CM_OK with the row ready to read, CM_NOTFOUND when
 * there is none, or the logged error. The caller resets S after reading.
 */
cm_result	 store_step_row(struct cm_db *, sqlite3_stmt *s, const char *func);

/*
 * Runs SQL (with ?1 bound to BIND1 when it is not NULL) on a statement of
 * its own, so callers may query or write meanwhile, and calls FN(ARG, S)
 * for every row until FN returns non-zero.
 */
cm_result	 store_each_row(struct cm_db *, const char *func, const char *sql,
		    const char *bind1, int (*fn)(void *, sqlite3_stmt *), void *arg);

/* Copies text column COL of S into DST (size N), "" for NULL, truncating. */
void		 store_column_text(char *dst, size_t n, sqlite3_stmt *s, int col);

#endif
