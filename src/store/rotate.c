/* SPDX-License-Identifier: ISC */
/*
 * The store's part of a master-key rotation: taking the store offline
 * (refusing when a server has it open), copying it into a new file under
 * the new database key, and wrapping every stored data key again under the
 * new key-encryption key. The order of files and the commit are in
 * src/crypto/rotate.c; the command in src/cli/keys.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consentd/crypto.h"
#include "store_sqlite.h"

/*
 * PostgreSQL's: no other session on the database (every consentd node
 * keeps one open while it runs), and the write lock every node's writers
 * take, held by this session until it closes, so that a node starting
 * meanwhile writes nothing.
 */
static cm_result
store_lock_offline_pg(struct cm_db *d, char *err, size_t errlen)
{
	static const char pg_others[] = "SELECT count(*) FROM pg_stat_activity WHERE "
	    "datname = current_database() AND pid <> pg_backend_pid()";
	struct store_query q;
	cm_result rc;
	int64_t others = 0;
	int tries;

	/*
	 * A process killed a moment ago leaves its session for as long as the
	 * server takes to see the socket close: a second to go.
	 */
	rc = store_exec_once(d, "SELECT pg_advisory_lock(" STORE_PG_WRITE_LOCK ")");
	for (tries = 0; rc == CM_OK && tries < 20; tries++) {
		if (tries > 0)
			usleep(50 * 1000);
		if ((rc = store_row(&q, d, pg_others, "")) == CM_OK)
			others = store_col_int64(&q, 0);
		(void)store_done(&q);
		if (others == 0)
			break;
	}
	if (rc != CM_OK) {
		snprintf(err, errlen, "cannot lock the store: %s", store_errmsg(d));
		return rc;
	}
	if (others > 0) {
		snprintf(err, errlen, "the store is in use by another process (a running "
		    "server?): stop it first (nothing was changed)");
		return CM_BUSY;
	}
	return CM_OK;
}

cm_result
cm_store_lock_offline(struct cm_db *d, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (d->db_pg != NULL)
		return store_lock_offline_pg(d, err, errlen);
	/*
	 * A connection in WAL mode holds a shared lock on the database file
	 * for as long as it is open, so the exclusive lock taken here is
	 * refused while any other process (a server, a CLI command) has the
	 * store open; once taken it is held until this connection closes.
	 */
	sqlite3_busy_timeout(d->db_conn, 0);
	rc = sqlite3_exec(d->db_conn, "PRAGMA locking_mode = EXCLUSIVE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db_conn, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db_conn, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(d->db_conn, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "the store is in use by another process (a running "
		    "server?): stop it first (nothing was changed)");
		return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ?
		    CM_BUSY : store_rc(rc);
	}
	/* Everything into the database file: the copy is made from it. */
	rc = sqlite3_prepare_v2(d->db_conn, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW &&
	    sqlite3_column_int(s, 0) != 0)
		rc = SQLITE_BUSY;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot checkpoint the database: %s",
		    sqlite3_errstr(rc));
		return store_rc(rc);
	}
	return CM_OK;
}

cm_result
cm_store_export_rekeyed(struct cm_db *d, const char *path, const struct cm_keys *newk,
    char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	char *lit;
	int fd, rc;

	if (d->db_pg != NULL) {
		snprintf(err, errlen, "the master key of a PostgreSQL store is not rotated by "
		    "consentd yet (see docs/operations.md)");
		return CM_INVALID;
	}
	/*
	 * The store's connections may not create files; an empty file is an
	 * empty database to SQLite, and ATTACH opens it.
	 */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "cannot create the re-keyed copy: %s", strerror(errno));
		return CM_IOERR;
	}
	close(fd);
	lit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(newk, lit);
	rc = sqlite3_prepare_v2(d->db_conn, "ATTACH DATABASE ?1 AS rot KEY ?2", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, lit, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	cm_secure_free(lit);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot create the re-keyed copy: %s",
		    sqlite3_errmsg(d->db_conn));
		return store_rc(rc);
	}
	rc = sqlite3_exec(d->db_conn, "PRAGMA rot.cipher_page_size = " CM_STORE_PAGE_SIZE,
	    NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db_conn, "PRAGMA rot.cache_size = -65536", NULL, NULL, NULL);
	/*
	 * No journal and no syncs while copying: until the commit record the
	 * copy is scratch that recovery deletes, and it is synced whole before
	 * that record is written.
	 */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db_conn, "PRAGMA rot.journal_mode = OFF", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db_conn, "PRAGMA rot.synchronous = OFF", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db_conn, "SELECT sqlcipher_export('rot')", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		snprintf(err, errlen, "cannot copy the store into the re-keyed file: %s",
		    sqlite3_errmsg(d->db_conn));
	if (sqlite3_exec(d->db_conn, "DETACH DATABASE rot", NULL, NULL, NULL) != SQLITE_OK &&
	    rc == SQLITE_OK) {
		snprintf(err, errlen, "cannot close the re-keyed copy: %s",
		    sqlite3_errmsg(d->db_conn));
		rc = SQLITE_IOERR;
	}
	return rc == SQLITE_OK ? CM_OK : store_rc(rc);
}

/* The tables holding keys wrapped under the key-encryption key (AD = id). */
static const struct {
	const char	*sel;
	const char	*upd;
	const char	*name;
} wrapped_tables[] = {
	{ "SELECT id, wrapped_key FROM subjects WHERE id > ? AND wrapped_key IS NOT NULL "
	  "ORDER BY id LIMIT 1024", "UPDATE subjects SET wrapped_key = ?2 WHERE id = ?1",
	  "subjects" },
	{ "SELECT id, wrapped_key FROM dsr_requests WHERE id > ? AND wrapped_key IS NOT "
	  "NULL ORDER BY id LIMIT 1024",
	  "UPDATE dsr_requests SET wrapped_key = ?2 WHERE id = ?1", "dsr_requests" },
	{ "SELECT id, wrapped_key FROM dsr_packages WHERE id > ? AND wrapped_key IS NOT "
	  "NULL ORDER BY id LIMIT 1024",
	  "UPDATE dsr_packages SET wrapped_key = ?2 WHERE id = ?1", "dsr_packages" },
	{ "SELECT id, wrapped_key FROM outbox WHERE id > ? AND wrapped_key IS NOT NULL "
	  "ORDER BY id LIMIT 1024", "UPDATE outbox SET wrapped_key = ?2 WHERE id = ?1",
	  "outbox" },
};

#define REWRAP_BATCH	1024

/*
 * One table, in batches of ids read first and updated after, so no
 * statement reads a table while another changes it. Each row's key is
 * unwrapped with OLD and wrapped with NEWK, its id the associated data.
 */
static cm_result
rewrap_table(struct cm_db *d, size_t t, const struct cm_keys *old,
    const struct cm_keys *newk, uint8_t *key, uint64_t *n, char *err, size_t errlen)
{
	char last[64] = "", (*ids)[64];
	uint8_t (*wk)[CM_WRAPPED_KEY_LEN], out[CM_WRAPPED_KEY_LEN];
	size_t *wl, i, got, len;
	struct store_query q;
	cm_result rc = CM_OK;

	ids = cm_calloc(REWRAP_BATCH, sizeof(*ids));
	wk = cm_calloc(REWRAP_BATCH, sizeof(*wk));
	wl = cm_calloc(REWRAP_BATCH, sizeof(*wl));
	do {
		got = 0;
		store_query(&q, d, wrapped_tables[t].sel, "t", last);
		while (store_next(&q) && got < REWRAP_BATCH) {
			const char *id = store_col_text(&q, 0);

			snprintf(ids[got], sizeof(ids[got]), "%s", id != NULL ? id : "");
			len = store_col_bytes(&q, 1);
			/* Too long to be one: it cannot unwrap, and says so below. */
			wl[got] = len <= CM_WRAPPED_KEY_LEN ? len : 0;
			if (wl[got] > 0)
				memcpy(wk[got], store_col_blob(&q, 1), len);
			got++;
		}
		if ((rc = store_done(&q)) != CM_OK) {
			snprintf(err, errlen, "cannot read the keys of %s: %s",
			    wrapped_tables[t].name, store_errmsg(d));
			break;
		}
		for (i = 0; i < got && rc == CM_OK; i++) {
			if (wl[i] == 0 || cm_subject_key_unwrap(old, ids[i], wk[i], wl[i], key) != 0) {
				snprintf(err, errlen, "%s %s: its wrapped key does not open with the "
				    "current master key; nothing was changed", wrapped_tables[t].name,
				    ids[i]);
				rc = CM_CONFLICT;
				break;
			}
			cm_aead_seal(out, newk->k_kek, ids[i], strlen(ids[i]), key, CM_KEY_LEN);
			cm_wipe(key, CM_KEY_LEN);
			if ((rc = store_exec(d, wrapped_tables[t].upd, "tB", ids[i], out,
			    (size_t)sizeof(out))) != CM_OK)
				snprintf(err, errlen, "cannot re-wrap the keys of %s: %s",
				    wrapped_tables[t].name, store_errmsg(d));
			else
				(*n)++;
		}
		if (got > 0)
			memcpy(last, ids[got - 1], sizeof(last));
	} while (rc == CM_OK && got == REWRAP_BATCH);
	cm_wipe(wk, REWRAP_BATCH * sizeof(*wk));
	free(ids);
	free(wk);
	free(wl);
	return rc;
}

cm_result
cm_store_rewrap_all(struct cm_db *d, const struct cm_keys *old, const struct cm_keys *newk,
    uint64_t *n, char *err, size_t errlen)
{
	uint8_t *key;
	cm_result rc = CM_OK;
	size_t t;

	*n = 0;
	key = cm_secure_alloc(CM_KEY_LEN);
	for (t = 0; t < CM_NELEM(wrapped_tables) && rc == CM_OK; t++)
		rc = rewrap_table(d, t, old, newk, key, n, err, errlen);
	cm_secure_free(key);
	/* PostgreSQL's keys check names the master key: the old one no longer passes. */
	if (rc == CM_OK && d->db_pg != NULL && (rc = store_key_check_set(d, newk)) != CM_OK)
		snprintf(err, errlen, "cannot record the new keys' check: %s", store_errmsg(d));
	return rc;
}
