/* SPDX-License-Identifier: ISC */
/*
 * Copies of the store that cannot lose data. A plain copy of consentd.db
 * while the server runs misses every commit still in the write-ahead log;
 * this copies through SQLite's online backup API instead, from one read
 * snapshot that includes the log, page by page into a new file keyed like
 * the store. Also the checks a copy must pass before anyone relies on it
 * (SQLite's and SQLCipher's integrity checks), and the test that nobody
 * else has the store open, which a restore needs.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "store_sqlite.h"

/*
 * Pages copied per step: small enough that the copy never holds the
 * source's locks for long, and a progress count means something.
 */
#define BACKUP_STEP_PAGES	256
#define BACKUP_SLEEP_MS		10

/* Opens and keys a connection to PATH as the store's connections are keyed. */
static int
backup_open_keyed(const char *keylit, const char *path, int flags, sqlite3 **out)
{
	int rc;

	*out = NULL;
	if ((rc = sqlite3_open_v2(path, out, flags, NULL)) != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_key(*out, keylit, (int)strlen(keylit))) != SQLITE_OK)
		return rc;
	return sqlite3_exec(*out, "PRAGMA cipher_page_size = " CM_STORE_PAGE_SIZE, NULL,
	    NULL, NULL);
}

/*
 * Steps B to the end. A step that meets a lock (SQLITE_BUSY, or LOCKED)
 * is retried for as long as the store's busy timeout allows, as every
 * other statement of the store is.
 */
static int
backup_steps(struct cm_db *src, sqlite3_backup *b, int64_t *steps)
{
	int rc, waited = 0, busy_ms = store_busy_ms(src->db_store);

	for (;;) {
		rc = sqlite3_backup_step(b, BACKUP_STEP_PAGES);
		if (rc == SQLITE_DONE)
			return SQLITE_OK;
		if (rc == SQLITE_OK) {
			(*steps)++;
			waited = 0;
			continue;
		}
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && waited < busy_ms) {
			sqlite3_sleep(BACKUP_SLEEP_MS);
			waited += BACKUP_SLEEP_MS;
			continue;
		}
		return rc;
	}
}

cm_result
cm_store_backup(struct cm_db *src, const char *dest, struct cm_backup_stats *st,
    char *err, size_t errlen)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *b = NULL;
	cm_result res = CM_IOERR;
	int rc;

	if (src->db_pg != NULL) {
		snprintf(err, errlen, "a PostgreSQL store is backed up with PostgreSQL's tools "
		    "(pgBackRest, pg_dump; see docs/operations.md), not consentd backup");
		return CM_INVALID;
	}
	memset(st, 0, sizeof(*st));
	rc = backup_open_keyed(store_keylit(src->db_store), dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dst);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot create the copy: %s", sqlite3_errstr(rc));
		goto out;
	}
	/*
	 * One read transaction on the source for the whole copy: every step
	 * reads the same snapshot (the write-ahead log up to its start
	 * included), so the server's writes meanwhile neither restart the
	 * copy nor end up half in it. In WAL mode the reader blocks no writer.
	 */
	if ((res = cm_db_read_begin(src)) != CM_OK) {
		snprintf(err, errlen, "cannot read the store: %s", cm_result_str(res));
		goto out;
	}
	if ((rc = sqlite3_exec(src->db_conn, "SELECT count(*) FROM sqlite_master", NULL, NULL,
	    NULL)) != SQLITE_OK ||
	    (b = sqlite3_backup_init(dst, "main", src->db_conn, "main")) == NULL) {
		snprintf(err, errlen, "cannot start the copy: %s", sqlite3_errmsg(dst));
		cm_db_read_end(src);
		res = CM_IOERR;
		goto out;
	}
	rc = backup_steps(src, b, &st->bs_steps);
	st->bs_pages = sqlite3_backup_pagecount(b);
	if (sqlite3_backup_finish(b) != SQLITE_OK && rc == SQLITE_OK)
		rc = sqlite3_errcode(dst);
	cm_db_read_end(src);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "the copy failed: %s", sqlite3_errstr(rc));
		res = store_rc(rc);
		goto out;
	}
	res = CM_OK;
out:
	if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && res == CM_OK) {
		snprintf(err, errlen, "cannot close the copy");
		res = CM_IOERR;
	}
	return res;
}

/* Runs PRAGMA NAME and says whether its only row is "ok" (or it has none). */
static cm_result
integrity_pragma(struct cm_db *d, const char *sql, bool empty_ok, char *why, size_t whylen)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *t;
	cm_result res = CM_OK;
	int rc;

	if ((rc = sqlite3_prepare_v2(d->db_conn, sql, -1, &s, NULL)) != SQLITE_OK) {
		snprintf(why, whylen, "%s: %s", sql, sqlite3_errmsg(d->db_conn));
		return store_rc(rc);
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE && empty_ok) {
		res = CM_OK;
	} else if (rc != SQLITE_ROW) {
		snprintf(why, whylen, "%s: %s", sql, sqlite3_errmsg(d->db_conn));
		res = rc == SQLITE_DONE ? CM_CONFLICT : store_rc(rc);
	} else if ((t = sqlite3_column_text(s, 0)) == NULL ||
	    strcmp((const char *)t, "ok") != 0) {
		/* The text names pages and tables, never a stored value. */
		snprintf(why, whylen, "%s: %s", sql, t != NULL ? (const char *)t : "no answer");
		res = CM_CONFLICT;
	}
	sqlite3_finalize(s);
	return res;
}

/*
 * Whether this SQLCipher has PRAGMA cipher_integrity_check (4.0 on): an
 * older one ignores the unknown pragma, which would pass for "no page
 * failed".
 */
static bool
cipher_check_known(struct cm_db *d)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *v;
	bool known = false;

	if (sqlite3_prepare_v2(d->db_conn, "PRAGMA cipher_version", -1, &s, NULL) ==
	    SQLITE_OK && sqlite3_step(s) == SQLITE_ROW &&
	    (v = sqlite3_column_text(s, 0)) != NULL)
		known = v[0] >= '4' && v[0] <= '9' && v[1] == '.';
	sqlite3_finalize(s);
	return known;
}

cm_result
cm_store_integrity(struct cm_db *d, bool *cipher_checked, char *why, size_t whylen)
{
	cm_result rc;

	if (d->db_pg != NULL) {
		snprintf(why, whylen, "a PostgreSQL store is checked with PostgreSQL's tools "
		    "(pg_amcheck; see docs/operations.md)");
		return CM_INVALID;
	}
	why[0] = '\0';
	/*
	 * SQLCipher 4 checks every page's MAC, in use or free, and reports
	 * nothing when all verify. Older ones (Debian bookworm has 3.4)
	 * check a page's MAC whenever it is read, which integrity_check
	 * does for every page in use.
	 */
	*cipher_checked = cipher_check_known(d);
	if (*cipher_checked && (rc = integrity_pragma(d, "PRAGMA cipher_integrity_check",
	    true, why, whylen)) != CM_OK)
		return rc;
	return integrity_pragma(d, "PRAGMA integrity_check", false, why, whylen);
}

cm_result
cm_store_probe_unused(const char *dir, const struct cm_keys *keys, char *err, size_t errlen)
{
	sqlite3 *c = NULL;
	char path[4096], *keylit;
	cm_result res;
	int rc, n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, CM_DB_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "the data directory's path is too long");
		return CM_INVALID;
	}
	keylit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(keys, keylit);
	rc = backup_open_keyed(keylit, path, SQLITE_OPEN_READWRITE, &c);
	cm_secure_free(keylit);
	/*
	 * With exclusive locking, the first transaction takes an exclusive
	 * lock on the database file, which fails at once while any other
	 * connection has the store open: in WAL mode each holds a shared lock
	 * on the file for as long as it is open.
	 */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c, "PRAGMA locking_mode = EXCLUSIVE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c, "COMMIT", NULL, NULL, NULL);
	res = store_rc(rc);
	if (rc == SQLITE_CANTOPEN)
		res = CM_NOTFOUND;
	if (res == CM_BUSY)
		snprintf(err, errlen, "the store is in use (a running 'consentd serve' or "
		    "another command has it open); stop it first");
	else if (res != CM_OK && res != CM_NOTFOUND)
		snprintf(err, errlen, "cannot lock the store: %s", sqlite3_errstr(rc));
	sqlite3_close(c);
	return res;
}
