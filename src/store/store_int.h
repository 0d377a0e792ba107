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

#endif
