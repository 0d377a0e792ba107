/* SPDX-License-Identifier: ISC */
/*
 * The SQLite engine's internals (store_int.h says which files are the
 * engine): the only header of the project that includes <sqlite3.h>.
 */
#ifndef CONSENTD_STORE_SQLITE_H
#define CONSENTD_STORE_SQLITE_H

#define SQLITE_HAS_CODEC 1
#include <sqlite3.h>

#include "store_int.h"

/* Maps an SQLite result code to a cm_result. */
cm_result	 store_rc(int);

/* Logs an SQLite failure in FUNC with the error text (never bound values). */
void		 store_log_error(struct cm_db *, const char *func, int rc);

#endif
