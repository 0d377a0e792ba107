/* SPDX-License-Identifier: ISC */
/*
 * Opening, keying and configuring SQLCipher connections. The database is
 * keyed with a raw 256-bit key (no SQLCipher KDF), checked before anything
 * else happens so a wrong key never writes a byte; then WAL mode, foreign
 * keys, a busy timeout and a page cache sized for the hot path are set.
 * Each thread gets its own connection with its own statement cache
 * (exec.c runs the statements). Transactions, and the faults injected
 * into them in the fault-injection build, are here too.
 *
 * A store on PostgreSQL (DIR/store, or opts' so_conninfo) is opened here
 * as well: a libpq session a thread (exec_pg.c), checked against the
 * keys by a keyed hash in meta, replaced when lost; write transactions
 * take one advisory lock on every node, reads are REPEATABLE READ.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "store_sqlite.h"

struct cm_store {
	char			*st_path;	/* DIR/consentd.db */
	char			*st_dir;	/* DIR */
	char			*st_conninfo;	/* secure memory: PostgreSQL's, or NULL */
#ifdef CM_FAULT_INJECTION
	char			*st_fault;	/* DIR/FAULT */
#endif
	char			*st_keylit;	/* secure memory: x'…' */
	uint8_t			*st_ledger_key;	/* secure memory: the erasure ledger's MAC key */
	struct cm_store_opts	 st_opts;
	pthread_key_t		 st_tls;	/* this thread's struct cm_db */
	pthread_mutex_t		 st_lock;	/* guards st_conns only */
	pthread_mutex_t		 st_write;	/* one writer at a time in this process */
	struct cm_db		*st_conns;
	/* cm_store_cost()'s totals; relaxed adds, once per transaction. */
	atomic_uint_fast64_t	 st_pages_hit, st_pages_miss, st_pages_written;
	atomic_uint_fast64_t	 st_statements, st_transactions;
	atomic_uint_fast64_t	 st_checks_row, st_checks_tables;
};


void
cm_store_opts_default(struct cm_store_opts *o)
{
	o->so_cache_mb = 64;
	o->so_busy_ms = 5000;
	o->so_apply = true;
	o->so_file = NULL;
	o->so_conninfo = NULL;
}

bool
cm_store_is_pg(const char *s)
{
	return s != NULL && (strncmp(s, "postgresql://", 13) == 0 ||
	    strncmp(s, "postgres://", 11) == 0);
}

/*
 * Runs SQL text that needs no parameters and returns no rows the caller
 * needs (pragmas, transaction control), on no cached statement.
 */
/* The page cache of a connection doing whole-table scans, KiB. */
#define CM_STORE_SCAN_CACHE_KIB	4096

static int
store_exec_sql(sqlite3 *c, const char *sql)
{
	return sqlite3_exec(c, sql, NULL, NULL, NULL);
}

/*
 * Whether the file opens with the right key and SQLCipher's default 1 KiB
 * pages: a store from before the page size was set. Reads only.
 */
static bool
store_old_pages(const struct cm_store *st)
{
	static const char hex[] = "0123456789ABCDEF";
	sqlite3 *c = NULL;
	char *uri, *u;
	const char *p;
	bool old;

	/*
	 * As an immutable file: no locks, no -wal or -shm left behind. The
	 * path goes into a URI, so anything but safe characters is escaped.
	 */
	uri = u = cm_malloc(strlen(st->st_path) * 3 + sizeof("file:?immutable=1"));
	u += sprintf(u, "file:");
	for (p = st->st_path; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("/._-", ch) != NULL) {
			*u++ = (char)ch;
		} else {
			*u++ = '%';
			*u++ = hex[ch >> 4];
			*u++ = hex[ch & 15];
		}
	}
	strcpy(u, "?immutable=1");
	if (sqlite3_open_v2(uri, &c, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
		sqlite3_close(c);
		free(uri);
		return false;
	}
	free(uri);
	old = sqlite3_key(c, st->st_keylit, (int)strlen(st->st_keylit)) == SQLITE_OK &&
	    store_exec_sql(c, "PRAGMA cipher_page_size = 1024") == SQLITE_OK &&
	    store_exec_sql(c, "SELECT count(*) FROM sqlite_master") == SQLITE_OK;
	sqlite3_close(c);
	return old;
}

/*
 * Sets up D's PostgreSQL session: lock waits (the write lock) end after
 * the busy timeout, as SQLite's do, and a commit waits for the standbys
 * whatever the server's default (acknowledged means kept).
 */
static cm_result
store_pg_session(struct cm_db *d)
{
	char set[128];
	int n;

	n = snprintf(set, sizeof(set), "SET lock_timeout = %d; SET synchronous_commit = on",
	    d->db_store->st_opts.so_busy_ms);
	if (n < 0 || (size_t)n >= sizeof(set))
		return CM_IOERR;
	return store_exec_once(d, set);
}

/* A connection to the store's PostgreSQL database, set up. */
static cm_result
store_connect_pg(struct cm_store *st, struct cm_db **out, char *err, size_t errlen)
{
	struct cm_db *d;
	cm_result rc;

	if ((rc = store_pg_connect(st->st_conninfo, &d, err, errlen)) != CM_OK)
		return rc;
	d->db_store = st;
	if (store_pg_session(d) != CM_OK) {
		snprintf(err, errlen, "cannot configure the PostgreSQL session");
		store_pg_close(d);
		return CM_IOERR;
	}
	*out = d;
	return CM_OK;
}

cm_result
store_pg_revive(struct cm_db *d)
{
	cm_result rc;

	if ((rc = store_pg_reconnect(d, d->db_store->st_conninfo)) != CM_OK ||
	    (rc = store_pg_session(d)) != CM_OK)
		return rc;
	cm_log(CM_LOG_WARN, "store_reconnected", ",\"engine\":\"postgresql\"");
	return CM_OK;
}

/*
 * Opens one keyed connection to PATH. CREATE allows creating the file.
 * Checks the key by reading the schema: SQLITE_NOTADB means a wrong key or
 * a file that is not a consentd database.
 */
static cm_result
store_connect(struct cm_store *st, bool create, struct cm_db **out,
    char *err, size_t errlen)
{
	struct cm_db *d;
	char pragma[128];
	int rc, flags, n;
	cm_result res = CM_IOERR;

	*out = NULL;
	if (st->st_conninfo != NULL)
		return store_connect_pg(st, out, err, errlen);
	d = cm_calloc(1, sizeof(*d));
	d->db_store = st;
	flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(st->st_path, &d->db_conn, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open the database: %s",
		    d->db_conn ? sqlite3_errmsg(d->db_conn) : sqlite3_errstr(rc));
		res = rc == SQLITE_CANTOPEN ? CM_NOTFOUND : CM_IOERR;
		goto fail;
	}
	rc = sqlite3_key(d->db_conn, st->st_keylit, (int)strlen(st->st_keylit));
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot key the database: %s", sqlite3_errstr(rc));
		goto fail;
	}
	/*
	 * 4 KiB pages, not SQLCipher's 1 KiB: the B-trees keyed by 32-byte
	 * blind indexes and 30-character ids are two levels shallower, so a
	 * consent check fetches and searches far fewer pages (40k checks/s
	 * instead of 35k), writes match the file system's blocks, and the
	 * store is 15% smaller. Part of the file format: set on every open.
	 */
	rc = store_exec_sql(d->db_conn, "PRAGMA cipher_page_size = " CM_STORE_PAGE_SIZE);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot set the page size: %s", sqlite3_errstr(rc));
		goto fail;
	}
	rc = store_exec_sql(d->db_conn, "SELECT count(*) FROM sqlite_master");
	if (rc != SQLITE_OK) {
		if ((rc & 0xff) == SQLITE_NOTADB && store_old_pages(st)) {
			snprintf(err, errlen, "this store was made by an earlier development "
			    "build, with 1 KiB pages; this build reads 4 KiB pages. Make it "
			    "again with 'consentd init' (there is no migration before 1.0)");
			res = CM_INVALID;
		} else if ((rc & 0xff) == SQLITE_NOTADB) {
			snprintf(err, errlen, "wrong key, or not a consentd database");
			res = CM_AUTH;
		} else {
			snprintf(err, errlen, "cannot read the database: %s",
			    sqlite3_errmsg(d->db_conn));
			res = store_rc(rc);
		}
		goto fail;
	}
	sqlite3_busy_timeout(d->db_conn, st->st_opts.so_busy_ms);
	n = snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d",
	    st->st_opts.so_cache_mb * 1024);
	if (n < 0 || (size_t)n >= sizeof(pragma))
		goto fail;
	if ((rc = store_exec_sql(d->db_conn, "PRAGMA journal_mode = WAL")) != SQLITE_OK ||
	    (rc = store_exec_sql(d->db_conn, "PRAGMA synchronous = FULL")) != SQLITE_OK ||
	    (rc = store_exec_sql(d->db_conn, "PRAGMA foreign_keys = ON")) != SQLITE_OK ||
	    (rc = store_exec_sql(d->db_conn, "PRAGMA temp_store = MEMORY")) != SQLITE_OK ||
	    (rc = store_exec_sql(d->db_conn, pragma)) != SQLITE_OK) {
		snprintf(err, errlen, "cannot configure the database: %s",
		    sqlite3_errmsg(d->db_conn));
		res = store_rc(rc);
		goto fail;
	}
	*out = d;
	return CM_OK;
fail:
	sqlite3_close(d->db_conn);
	free(d);
	return res;
}

static void
store_disconnect(struct cm_db *d)
{
	size_t i;

	if (d == NULL)
		return;
	/* What ran outside a transaction since the last one ended. */
	if (d->db_store != NULL)
		store_cost_harvest(d, 0);
	if (d->db_pg != NULL) {
		store_pg_close(d);
		return;
	}
	for (i = 0; i < STMT_CACHE_SLOTS; i++)
		sqlite3_finalize(d->db_stmts[i].ss_stmt);
	sqlite3_close(d->db_conn);
	store_tokens_forget(d);
	store_erasures_free(d);
	store_optouts_free(d);
	free(d);
}

static void
store_register(struct cm_store *st, struct cm_db *d)
{
	pthread_mutex_lock(&st->st_lock);
	d->db_next = st->st_conns;
	if (st->st_conns != NULL)
		st->st_conns->db_prev = d;
	st->st_conns = d;
	pthread_mutex_unlock(&st->st_lock);
}

static void
store_unregister(struct cm_store *st, struct cm_db *d)
{
	pthread_mutex_lock(&st->st_lock);
	if (d->db_prev != NULL)
		d->db_prev->db_next = d->db_next;
	else
		st->st_conns = d->db_next;
	if (d->db_next != NULL)
		d->db_next->db_prev = d->db_prev;
	pthread_mutex_unlock(&st->st_lock);
}

/* Thread-exit destructor of st_tls. */
static void
store_tls_release(void *p)
{
	struct cm_db *d = p;

	store_unregister(d->db_store, d);
	store_disconnect(d);
}

/*
 * SQLite counts every allocation under one global mutex unless told not
 * to; with a connection per thread that mutex was where worker threads
 * queued. We never read those counts. Must run before SQLite initialises.
 */
static void
store_sqlite_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static struct cm_store *
store_alloc(const char *dir, const struct cm_keys *keys,
    const struct cm_store_opts *opts, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct cm_store *st;
	const char *file;
	size_t len;

	pthread_once(&once, store_sqlite_config);
	st = cm_calloc(1, sizeof(*st));
	st->st_dir = cm_strdup(dir);
	file = opts != NULL && opts->so_file != NULL ? opts->so_file : CM_DB_FILE;
	len = strlen(dir) + 1 + strlen(file) + 1;
	st->st_path = cm_malloc(len);
	if (snprintf(st->st_path, len, "%s/%s", dir, file) < 0) {
		free(st->st_path);
		free(st->st_dir);
		free(st);
		snprintf(err, errlen, "bad data directory");
		return NULL;
	}
#ifdef CM_FAULT_INJECTION
	st->st_fault = cm_malloc(strlen(dir) + sizeof("/FAULT"));
	memcpy(st->st_fault, dir, strlen(dir));
	memcpy(st->st_fault + strlen(dir), "/FAULT", sizeof("/FAULT"));
#endif
	st->st_keylit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(keys, st->st_keylit);
	st->st_ledger_key = cm_secure_alloc(32);
	store_ledger_key(keys, st->st_ledger_key);
	if (opts != NULL)
		st->st_opts = *opts;
	else
		cm_store_opts_default(&st->st_opts);
	pthread_mutex_init(&st->st_lock, NULL);
	pthread_mutex_init(&st->st_write, NULL);
	if (pthread_key_create(&st->st_tls, store_tls_release) != 0) {
		cm_secure_free(st->st_keylit);
		cm_secure_free(st->st_ledger_key);
#ifdef CM_FAULT_INJECTION
		free(st->st_fault);
#endif
		free(st->st_path);
		free(st->st_dir);
		free(st);
		snprintf(err, errlen, "cannot create thread-local storage");
		return NULL;
	}
	return st;
}

bool
cm_store_on_pg(const struct cm_store *st)
{
	return st->st_conninfo != NULL;
}

void
cm_store_close(struct cm_store *st)
{
	struct cm_db *d, *next;

	if (st == NULL)
		return;
	pthread_setspecific(st->st_tls, NULL);
	pthread_key_delete(st->st_tls);
	for (d = st->st_conns; d != NULL; d = next) {
		next = d->db_next;
		store_disconnect(d);
	}
	pthread_mutex_destroy(&st->st_lock);
	pthread_mutex_destroy(&st->st_write);
	cm_secure_free(st->st_keylit);
	cm_secure_free(st->st_ledger_key);
	if (st->st_conninfo != NULL)
		cm_secure_free(st->st_conninfo);
#ifdef CM_FAULT_INJECTION
	free(st->st_fault);
#endif
	free(st->st_path);
	free(st->st_dir);
	free(st);
}

/* Keeps CONNINFO in ST, in secure memory: it can hold a password. */
static void
store_set_conninfo(struct cm_store *st, const char *conninfo)
{
	size_t n = strlen(conninfo) + 1;

	st->st_conninfo = cm_secure_alloc(n);
	memcpy(st->st_conninfo, conninfo, n);
}

/*
 * The PostgreSQL store DIR/store names into ST, when it names one: 1, 0
 * when DIR has no such file, -1 (ERR says why) when it cannot be used.
 */
static int
store_pg_named(struct cm_store *st, const char *dir, char *err, size_t errlen)
{
	char path[4096];
	size_t len;
	char *text;
	int n;

	n = snprintf(path, sizeof(path), "%s/" CM_STORE_PG_FILE, dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "bad data directory");
		return -1;
	}
	if ((text = cm_file_read(path, 4096, &len)) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	if (!cm_store_is_pg(text) || strlen(text) != len) {
		snprintf(err, errlen, "%s: not a postgresql:// connection string", path);
		cm_wipe(text, len);
		free(text);
		return -1;
	}
	store_set_conninfo(st, text);
	cm_wipe(text, len);
	free(text);
	return 1;
}

struct cm_db *
cm_store_db(struct cm_store *st)
{
	struct cm_db *d;
	char err[256];

	if ((d = pthread_getspecific(st->st_tls)) != NULL) {
		/* A lost PostgreSQL session is opened again between transactions. */
		if (d->db_pg != NULL && !store_pg_alive(d) && !d->db_writing &&
		    d->db_read_depth == 0 && store_pg_revive(d) != CM_OK)
			return NULL;
		return d;
	}
	if (store_connect(st, false, &d, err, sizeof(err)) != CM_OK) {
		char msg[300];

		cm_log(CM_LOG_ERROR, "store_error", ",\"func\":\"%s\",\"msg\":\"%s\"",
		    __func__, cm_json_escape(msg, sizeof(msg), err));
		return NULL;
	}
	store_register(st, d);
	pthread_setspecific(st->st_tls, d);
	return d;
}

cm_result
cm_store_create(const char *dir, const struct cm_keys *keys,
    const struct cm_migration_set *set, char *err, size_t errlen)
{
	struct cm_store *st;
	struct cm_db *d = NULL;
	struct stat sb;
	cm_result rc;

	if ((st = store_alloc(dir, keys, NULL, err, errlen)) == NULL)
		return CM_IOERR;
	if (stat(st->st_path, &sb) == 0) {
		snprintf(err, errlen, "%s already exists", st->st_path);
		rc = CM_CONFLICT;
		goto out;
	}
	if ((rc = store_connect(st, true, &d, err, errlen)) != CM_OK)
		goto out;
	rc = store_migrate(d, set, true, err, errlen);
	store_disconnect(d);
	if (rc == CM_OK && chmod(st->st_path, 0600) == -1) {
		snprintf(err, errlen, "cannot chmod the database: %s", strerror(errno));
		rc = CM_IOERR;
	}
out:
	cm_store_close(st);
	return rc;
}

/*
 * A PostgreSQL store records a keyed hash under the data directory's keys
 * in its meta table, so that a node holding other keys (whose subject keys
 * and blind indexes would not match a row) is refused as SQLCipher refuses
 * a wrong key. Version 1 hashes the tag key alone; version 2 ("v2:" and
 * the hash), written by a master-key rotation, the master key's id too:
 * the tag key outlives a rotation (sealed.keys), so only the id tells the
 * old master key from the new one.
 */
static void
store_key_check_value(const struct cm_keys *keys, bool v2, char out[STORE_KEY_CHECK_LEN])
{
	const char *const parts[] = { v2 ? "consentd postgresql store v2" :
	    "consentd postgresql store v1", keys->k_master_id };
	uint8_t h[32];

	cm_keyed_hash(h, sizeof(h), keys->k_tag, parts, v2 ? 2 : 1);
	if (v2)
		memcpy(out, "v2:", 3);
	cm_hex_encode(out + (v2 ? 3 : 0), h, sizeof(h));
}

cm_result
store_key_check_set(struct cm_db *d, const struct cm_keys *keys)
{
	static const char sql[] = "UPDATE meta SET value = ? WHERE key = 'store_key_check'";
	char check[STORE_KEY_CHECK_LEN];

	store_key_check_value(keys, true, check);
	return store_exec(d, sql, "t", check);
}

/* The keys check of a PostgreSQL store (see store_key_check_value()). */
static cm_result
store_pg_check_keys(struct cm_db *d, const struct cm_keys *keys, char *err, size_t errlen)
{
	static const char sql[] = "SELECT value FROM meta WHERE key = 'store_key_check'";
	struct store_query q;
	char want[STORE_KEY_CHECK_LEN];
	const char *have;
	cm_result rc;
	bool has;

	if ((rc = store_table_exists(d, "meta", &has)) != CM_OK) {
		snprintf(err, errlen, "cannot read the PostgreSQL database: %s", store_errmsg(d));
		return rc;
	}
	if (!has) {
		snprintf(err, errlen, "the PostgreSQL database holds no consentd store (make "
		    "one with 'consentd init --store …')");
		return CM_NOTFOUND;
	}
	rc = store_row(&q, d, sql, "");
	if (rc == CM_OK) {
		have = store_col_text(&q, 0);
		store_key_check_value(keys, have != NULL && strncmp(have, "v2:", 3) == 0, want);
		if (have == NULL || strcmp(have, want) != 0)
			rc = CM_AUTH;
	}
	store_done(&q);
	if (rc == CM_NOTFOUND)
		rc = CM_AUTH;
	if (rc == CM_AUTH)
		snprintf(err, errlen, "wrong key, or not a consentd database");
	else if (rc != CM_OK)
		snprintf(err, errlen, "cannot read the PostgreSQL database: %s", store_errmsg(d));
	return rc;
}

/*
 * A master-key rotation's transaction, prepared (PREPARE TRANSACTION,
 * named STORE_PG_REKEY_GID and the new key's id) and not yet committed
 * when its process died: the keys this store is opened with decide it,
 * before anything else reads or writes. The new key (its id names the
 * transaction) means the rotation committed its key files: commit it. The
 * old key (the store's committed check passes) means they were rolled
 * back: undo it. Any other key touches nothing and is refused.
 */
static cm_result
store_pg_rekey_settle(struct cm_db *d, const struct cm_keys *keys, char *err, size_t errlen)
{
	static const char sql[] = "SELECT gid FROM pg_prepared_xacts WHERE database = "
	    "current_database() AND gid LIKE '" STORE_PG_REKEY_GID "%' ORDER BY prepared";
	char gid[64], stmt[128];
	struct store_query q;
	const char *id;
	bool forward;
	cm_result rc;

	for (;;) {
		rc = store_row(&q, d, sql, "");
		if (rc == CM_OK)
			snprintf(gid, sizeof(gid), "%s", store_col_text(&q, 0));
		store_done(&q);
		if (rc == CM_NOTFOUND)
			return CM_OK;
		if (rc != CM_OK) {
			snprintf(err, errlen, "cannot read the prepared transactions: %s",
			    store_errmsg(d));
			return rc;
		}
		id = gid + strlen(STORE_PG_REKEY_GID);
		/* Ours: the prefix, then a key id (hex digits); never quoted. */
		if (strlen(id) != CM_KEY_ID_LEN || strspn(id, "0123456789abcdef") != CM_KEY_ID_LEN) {
			snprintf(err, errlen, "a prepared transaction %s is not consentd's: "
			    "commit or roll it back", gid);
			return CM_CONFLICT;
		}
		forward = strcmp(id, keys->k_master_id) == 0;
		if (!forward && (rc = store_pg_check_keys(d, keys, err, errlen)) != CM_OK)
			return rc;
		snprintf(stmt, sizeof(stmt), "%s PREPARED '%s'", forward ? "COMMIT" : "ROLLBACK",
		    gid);
		if ((rc = store_exec_once(d, stmt)) != CM_OK) {
			snprintf(err, errlen, "cannot finish an interrupted master-key rotation: %s",
			    store_errmsg(d));
			return rc;
		}
		cm_log(CM_LOG_WARN, "master_key_rotation_settled", ",\"rolled\":\"%s\"",
		    forward ? "forward" : "back");
	}
}

/* PostgreSQL's migrations of SET; NULL (ERR says why) when it has none. */
static const struct cm_migration_set *
store_pg_set(const struct cm_migration_set *set, char *err, size_t errlen)
{
	if (set->ms_pg == NULL || set->ms_pg->ms_count == 0) {
		snprintf(err, errlen, "no PostgreSQL migrations: give --migrations a directory "
		    "with its DIR-pg beside it, or none");
		return NULL;
	}
	return set->ms_pg;
}

cm_result
cm_store_create_pg(const char *dir, const char *conninfo, const struct cm_keys *keys,
    const struct cm_migration_set *set, char *err, size_t errlen)
{
	static const char sql[] = "INSERT INTO meta (key, value) VALUES ('store_key_check', ?)";
	const struct cm_migration_set *pgset;
	struct cm_store *st;
	struct cm_db *d = NULL;
	char path[4096], check[STORE_KEY_CHECK_LEN];
	struct stat sb;
	cm_result rc;
	bool has;
	int n;

	if (!cm_store_is_pg(conninfo)) {
		snprintf(err, errlen, "--store: not a postgresql:// connection string");
		return CM_INVALID;
	}
	if ((pgset = store_pg_set(set, err, errlen)) == NULL)
		return CM_INVALID;
	n = snprintf(path, sizeof(path), "%s/" CM_STORE_PG_FILE, dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "data directory path is too long");
		return CM_INVALID;
	}
	if (stat(path, &sb) == 0) {
		snprintf(err, errlen, "%s already exists", path);
		return CM_CONFLICT;
	}
	if ((st = store_alloc(dir, keys, NULL, err, errlen)) == NULL)
		return CM_IOERR;
	store_set_conninfo(st, conninfo);
	if ((rc = store_connect(st, false, &d, err, errlen)) != CM_OK)
		goto out;
	if ((rc = store_table_exists(d, "schema_migrations", &has)) != CM_OK ||
	    (!has && (rc = store_table_exists(d, "meta", &has)) != CM_OK)) {
		snprintf(err, errlen, "cannot read the PostgreSQL database: %s", store_errmsg(d));
		goto out;
	}
	if (has) {
		snprintf(err, errlen, "the PostgreSQL database already holds a consentd store");
		rc = CM_CONFLICT;
		goto out;
	}
	if ((rc = store_migrate(d, pgset, true, err, errlen)) != CM_OK)
		goto out;
	store_key_check_value(keys, false, check);
	if ((rc = store_exec(d, sql, "t", check)) != CM_OK) {
		snprintf(err, errlen, "cannot record the keys' check: %s", store_errmsg(d));
		goto out;
	}
	if (cm_file_write_new(path, conninfo, strlen(conninfo)) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		rc = CM_IOERR;
	}
out:
	store_disconnect(d);
	cm_store_close(st);
	return rc;
}

cm_result
cm_store_open(const char *dir, const struct cm_keys *keys,
    const struct cm_migration_set *set, const struct cm_store_opts *opts,
    struct cm_store **out, char *err, size_t errlen)
{
	struct cm_store *st;
	struct cm_db *d;
	cm_result rc;

	*out = NULL;
	if ((st = store_alloc(dir, keys, opts, err, errlen)) == NULL)
		return CM_IOERR;
	if (opts != NULL && opts->so_conninfo != NULL) {
		if (!cm_store_is_pg(opts->so_conninfo)) {
			snprintf(err, errlen, "--store: not a postgresql:// connection string");
			cm_store_close(st);
			return CM_INVALID;
		}
		store_set_conninfo(st, opts->so_conninfo);
	} else if (store_pg_named(st, dir, err, errlen) < 0) {
		cm_store_close(st);
		return CM_INVALID;
	}
	if (st->st_conninfo != NULL && (set = store_pg_set(set, err, errlen)) == NULL) {
		cm_store_close(st);
		return CM_INVALID;
	}
	if ((rc = store_connect(st, false, &d, err, errlen)) != CM_OK) {
		if (rc == CM_NOTFOUND)
			snprintf(err, errlen, "no database at %s (run 'consentd init --data %s' first)",
			    st->st_path, dir);
		cm_store_close(st);
		return rc;
	}
	store_register(st, d);
	pthread_setspecific(st->st_tls, d);
	if ((d->db_pg != NULL && ((rc = store_pg_rekey_settle(d, keys, err, errlen)) != CM_OK ||
	    (rc = store_pg_check_keys(d, keys, err, errlen)) != CM_OK)) ||
	    (rc = store_migrate(d, set, st->st_opts.so_apply, err, errlen)) != CM_OK) {
		cm_store_close(st);
		return rc;
	}
	*out = st;
	return CM_OK;
}

cm_result
cm_store_ping(struct cm_db *d)
{
	static const char sql[] = "SELECT 1 FROM schema_migrations LIMIT 1";
	struct store_query q;
	cm_result rc;

	if (d == NULL)
		return CM_IOERR;
	rc = store_row(&q, d, sql, "");
	store_done(&q);
	return rc == CM_NOTFOUND ? CM_IOERR : rc;
}

cm_result
cm_store_schema_version(struct cm_db *d, int *version)
{
	static const char sql[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "")) == CM_OK)
		*version = store_col_int(&q, 0);
	store_done(&q);
	return rc;
}

cm_result
cm_db_savepoint(struct cm_db *d)
{
	static const char sql[] = "SAVEPOINT job";

	d->db_sp_erased = d->db_nerased;
	d->db_sp_optouts = d->db_noptouts;
	return store_exec(d, sql, "");
}

cm_result
cm_db_savepoint_release(struct cm_db *d)
{
	static const char sql[] = "RELEASE job";

	return store_exec(d, sql, "");
}

cm_result
cm_db_savepoint_rollback(struct cm_db *d)
{
	static const char sql[] = "ROLLBACK TO job";
	cm_result rc;

	if ((rc = store_exec(d, sql, "")) != CM_OK)
		return rc;
	store_erasures_discard(d, d->db_sp_erased);
	store_optouts_discard(d, d->db_sp_optouts);
	return cm_db_savepoint_release(d);
}

#ifdef CM_FAULT_INJECTION
/*
 * Test builds only (make builds build/tests/consentd-faults with
 * -DCM_FAULT_INJECTION): while DIR/FAULT names a fault, the matching store
 * operation fails as a busy or broken disk would make it fail, so tests can
 * show the API answers 503 and never allow. The shipped binary has none of
 * this.
 */
static cm_result
store_fault(struct cm_db *d, const char *op)
{
	char buf[64];
	FILE *f;
	size_t n;

	if ((f = fopen(d->db_store->st_fault, "r")) == NULL)
		return CM_OK;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (strncmp(buf, op, strlen(op)) != 0 || buf[strlen(op)] != '_')
		return CM_OK;
	return strcmp(buf + strlen(op) + 1, "busy") == 0 ? CM_BUSY : CM_IOERR;
}
#else
#define store_fault(d, op)	CM_OK
#endif

/* The counter OP of D's connection since the last call, which resets it. */
static uint64_t
cost_take(struct cm_db *d, int op)
{
	int cur = 0, hi = 0;

	/* PostgreSQL's buffer counters are the server's, not a connection's. */
	if (d->db_conn == NULL)
		return 0;
	if (sqlite3_db_status(d->db_conn, op, &cur, &hi, 1) != SQLITE_OK || cur < 0)
		return 0;
	return (uint64_t)cur;
}

void
store_cost_harvest(struct cm_db *d, unsigned txns)
{
	struct cm_store *st = d->db_store;

	atomic_fetch_add_explicit(&st->st_pages_hit, cost_take(d, SQLITE_DBSTATUS_CACHE_HIT),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&st->st_pages_miss, cost_take(d, SQLITE_DBSTATUS_CACHE_MISS),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&st->st_pages_written,
	    cost_take(d, SQLITE_DBSTATUS_CACHE_WRITE), memory_order_relaxed);
	atomic_fetch_add_explicit(&st->st_statements, d->db_statements, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->st_transactions, txns, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->st_checks_row, d->db_checks_row, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->st_checks_tables, d->db_checks_tables,
	    memory_order_relaxed);
	d->db_statements = 0;
	d->db_checks_row = d->db_checks_tables = 0;
}

void
cm_store_cost(struct cm_store *st, struct cm_store_cost *out)
{
	out->sc_pages_hit = atomic_load_explicit(&st->st_pages_hit, memory_order_relaxed);
	out->sc_pages_miss = atomic_load_explicit(&st->st_pages_miss, memory_order_relaxed);
	out->sc_pages_written = atomic_load_explicit(&st->st_pages_written,
	    memory_order_relaxed);
	out->sc_statements = atomic_load_explicit(&st->st_statements, memory_order_relaxed);
	out->sc_transactions = atomic_load_explicit(&st->st_transactions,
	    memory_order_relaxed);
	out->sc_checks_row = atomic_load_explicit(&st->st_checks_row, memory_order_relaxed);
	out->sc_checks_tables = atomic_load_explicit(&st->st_checks_tables,
	    memory_order_relaxed);
}

cm_result
cm_db_read_begin(struct cm_db *d)
{
	static const char sql[] = "BEGIN";
	/* One snapshot for every statement of the transaction, as SQLite's. */
	static const char pg_sql[] = "BEGIN ISOLATION LEVEL REPEATABLE READ";
	cm_result rc;

	if ((rc = store_fault(d, "read")) != CM_OK)
		return rc;
	/* Nested, or inside a write transaction: that one is the snapshot. */
	if (d->db_read_depth > 0 || store_in_tx(d)) {
		d->db_read_depth++;
		return CM_OK;
	}
	rc = store_exec(d, d->db_pg != NULL ? pg_sql : sql, "");
	/* A PostgreSQL session found lost only now: once more on a new one. */
	if (rc != CM_OK && d->db_pg != NULL && !store_pg_alive(d) && store_pg_revive(d) == CM_OK)
		rc = store_exec(d, pg_sql, "");
	if (rc != CM_OK)
		return rc;
	d->db_reading = true;
	d->db_read_depth = 1;
	return CM_OK;
}

void
cm_db_read_end(struct cm_db *d)
{
	static const char sql[] = "COMMIT";

	if (d->db_read_depth == 0 || --d->db_read_depth > 0 || !d->db_reading)
		return;
	d->db_reading = false;
	if (store_exec(d, sql, "") != CM_OK)
		cm_db_rollback(d);
	else
		store_cost_harvest(d, 1);
}


/*
 * A second connection to D's store, with read transactions begun on D and
 * on it that see one state of the store: a third connection holds the
 * write lock (writers of this process queue on st_write, other processes
 * wait in the busy timeout) while each takes its snapshot with a first
 * read, so no commit can fall between the two. For work split across
 * threads that must agree, such as the state check of `audit verify`; the
 * lock is held for two reads. D must not be in a transaction. End the
 * twin's with cm_db_twin_close() and D's with cm_db_read_end().
 */
/*
 * PostgreSQL's twin: D's snapshot exported and imported by the twin's
 * transaction, with no lock at all.
 */
static cm_result
store_pg_twin(struct cm_db *d, struct cm_db **twin)
{
	static const char pg_export[] = "SELECT pg_export_snapshot()";
	struct cm_db *tw = NULL;
	struct store_query q;
	char id[64], set[160], err[256];
	cm_result rc;
	size_t i;
	int n;

	if ((rc = cm_db_read_begin(d)) != CM_OK)
		return rc;
	if ((rc = store_row(&q, d, pg_export, "")) == CM_OK)
		store_column_text(id, sizeof(id), &q, 0);
	store_done(&q);
	/* The id is PostgreSQL's own: hex digits and dashes, quoted below. */
	for (i = 0; rc == CM_OK && id[i] != '\0'; i++)
		if (strchr("0123456789ABCDEFabcdef-", id[i]) == NULL)
			rc = CM_IOERR;
	n = snprintf(set, sizeof(set), "BEGIN ISOLATION LEVEL REPEATABLE READ; "
	    "SET TRANSACTION SNAPSHOT '%s'", id);
	if (rc == CM_OK && (n < 0 || (size_t)n >= sizeof(set)))
		rc = CM_IOERR;
	if (rc == CM_OK && (rc = store_connect(d->db_store, false, &tw, err,
	    sizeof(err))) == CM_OK && (rc = store_exec_once(tw, set)) == CM_OK) {
		tw->db_reading = true;
		tw->db_read_depth = 1;
	}
	if (rc != CM_OK) {
		cm_db_read_end(d);
		store_disconnect(tw);
		return rc;
	}
	*twin = tw;
	return CM_OK;
}

cm_result
cm_db_read_begin_twin(struct cm_db *d, struct cm_db **twin)
{
	struct cm_store *st = d->db_store;
	struct cm_db *lock = NULL, *tw = NULL;
	bool d_reading = false, tw_reading = false;
	char err[256];
	cm_result rc;

	*twin = NULL;
	if (d->db_read_depth > 0 || store_in_tx(d))
		return CM_BUSY;
	if (d->db_pg != NULL)
		return store_pg_twin(d, twin);
	if ((rc = store_connect(st, false, &lock, err, sizeof(err))) != CM_OK ||
	    (rc = store_connect(st, false, &tw, err, sizeof(err))) != CM_OK)
		goto out;
	pthread_mutex_lock(&st->st_write);
	if ((rc = store_rc(store_exec_sql(lock->db_conn, "BEGIN IMMEDIATE"))) == CM_OK) {
		if ((rc = cm_db_read_begin(d)) == CM_OK) {
			d_reading = true;
			rc = cm_store_ping(d);
		}
		if (rc == CM_OK && (rc = cm_db_read_begin(tw)) == CM_OK) {
			tw_reading = true;
			rc = cm_store_ping(tw);
		}
		(void)store_exec_sql(lock->db_conn, "ROLLBACK");
	}
	pthread_mutex_unlock(&st->st_write);
out:
	store_disconnect(lock);
	if (rc != CM_OK) {
		if (d_reading)
			cm_db_read_end(d);
		if (tw_reading)
			cm_db_read_end(tw);
		store_disconnect(tw);
		return rc;
	}
	*twin = tw;
	return CM_OK;
}

void
cm_db_twin_close(struct cm_db *tw)
{
	if (tw == NULL)
		return;
	cm_db_read_end(tw);
	store_disconnect(tw);
}


/*
 * Writers of this process queue on a mutex rather than in SQLite's busy
 * handler, which sleeps in steps of up to 100 ms and turned 64 concurrent
 * writers into a p99 of most of a second. Other processes (the CLI) are
 * still handled by the busy timeout.
 */
cm_result
cm_db_begin(struct cm_db *d)
{
	cm_result fault;
	int rc;

	if ((fault = store_fault(d, "write")) != CM_OK)
		return fault;
	pthread_mutex_lock(&d->db_store->st_write);
	if (d->db_pg != NULL) {
		/*
		 * Every node's writers take one advisory lock, held to the
		 * commit: the audit log's appends and the change feed's rows
		 * are numbered in commit order, and each statement (read
		 * committed) sees every earlier write.
		 */
		fault = store_exec_once(d, STORE_PG_BEGIN_WRITE);
		/* A session found lost only now: once more on a new one. */
		if (fault != CM_OK && !store_pg_alive(d) && store_pg_revive(d) == CM_OK)
			fault = store_exec_once(d, STORE_PG_BEGIN_WRITE);
		if (fault != CM_OK) {
			if (store_in_tx(d))
				(void)store_exec_once(d, "ROLLBACK");
			pthread_mutex_unlock(&d->db_store->st_write);
			return fault;
		}
		store_pg_write_began(d);
		d->db_writing = true;
		return CM_OK;
	}
	if ((rc = store_exec_sql(d->db_conn, "BEGIN IMMEDIATE")) != SQLITE_OK) {
		pthread_mutex_unlock(&d->db_store->st_write);
		store_log_error(d, __func__, rc);
		return store_rc(rc);
	}
	d->db_writing = true;
	return CM_OK;
}

cm_result
cm_db_bulk_load(struct cm_db *d)
{
	int rc;

	/* PostgreSQL's durability is its operators': a bulk load keeps it. */
	if (d->db_pg != NULL)
		return CM_OK;
	if ((rc = store_exec_sql(d->db_conn, "PRAGMA journal_mode = MEMORY")) != SQLITE_OK ||
	    (rc = store_exec_sql(d->db_conn, "PRAGMA synchronous = OFF")) != SQLITE_OK) {
		store_log_error(d, __func__, rc);
		return store_rc(rc);
	}
	return CM_OK;
}

bool
cm_db_in_write(struct cm_db *d)
{
	return d->db_writing && store_in_tx(d);
}

int64_t
cm_db_changes(struct cm_db *d)
{
	return (d->db_pg != NULL ? store_pg_changes(d) : sqlite3_total_changes(d->db_conn)) +
	    (int64_t)d->db_nerased + (int64_t)d->db_noptouts;
}

static void
db_write_done(struct cm_db *d)
{
	if (d->db_writing) {
		d->db_writing = false;
		pthread_mutex_unlock(&d->db_store->st_write);
	}
}

cm_result
cm_store_rekey_possible(struct cm_db *d, char *err, size_t errlen)
{
	static const char sql[] = "SELECT current_setting('max_prepared_transactions')::int";
	struct store_query q;
	cm_result rc;
	int64_t n = 0;

	if (d->db_pg == NULL)
		return CM_OK;
	if ((rc = store_row(&q, d, sql, "")) == CM_OK)
		n = store_col_int64(&q, 0);
	store_done(&q);
	if (rc != CM_OK) {
		snprintf(err, errlen, "cannot read max_prepared_transactions: %s", store_errmsg(d));
		return rc;
	}
	if (n < 1) {
		snprintf(err, errlen, "the rotation commits with the key files through a prepared "
		    "transaction: set max_prepared_transactions to 1 or more on the PostgreSQL "
		    "server (a restart), then run it again (nothing was changed)");
		return CM_INVALID;
	}
	return CM_OK;
}

cm_result
cm_store_rekey_prepare(struct cm_db *d, const struct cm_keys *newk)
{
	char stmt[128];
	cm_result rc;

	/*
	 * The offline lock is the session's hold of the writers' lock, which
	 * this transaction holds too: PostgreSQL prepares no transaction
	 * holding a lock both ways, so the session's goes, and the prepared
	 * transaction keeps writers out until it is settled.
	 */
	snprintf(stmt, sizeof(stmt), "SELECT pg_advisory_unlock(" STORE_PG_WRITE_LOCK "); "
	    "PREPARE TRANSACTION '" STORE_PG_REKEY_GID "%s'", newk->k_master_id);
	rc = store_exec_once(d, stmt);
	if (rc != CM_OK || store_in_tx(d)) {
		cm_db_rollback(d);
		return rc != CM_OK ? rc : CM_IOERR;
	}
	/* The tests' crash here: prepared, the key files not yet committed. */
	if (store_fault(d, "rekeyprepared") != CM_OK)
		_exit(70);
	db_write_done(d);
	return CM_OK;
}

cm_result
cm_store_rekey_commit(struct cm_db *d, const struct cm_keys *newk)
{
	char stmt[128];

	/* The tests' crash here: the key files committed, the database not yet. */
	if (store_fault(d, "rekeycommit") != CM_OK)
		_exit(70);
	snprintf(stmt, sizeof(stmt), "COMMIT PREPARED '" STORE_PG_REKEY_GID "%s'",
	    newk->k_master_id);
	return store_exec_once(d, stmt);
}

cm_result
cm_db_commit(struct cm_db *d)
{
	cm_result r;
	bool left;
	int rc;

	/* The decision rows of the subjects this transaction changed. */
	if (d->db_writing && store_in_tx(d) &&
	    (r = cm_store_decisions_rebuild(d, DECISIONS_PER_COMMIT, &left)) != CM_OK) {
		cm_db_rollback(d);
		return r;
	}
	if (d->db_pg != NULL) {
		if ((r = store_pg_commit(d)) != CM_OK) {
			cm_db_rollback(d);
			return r;
		}
	} else if ((rc = store_exec_sql(d->db_conn, "COMMIT")) != SQLITE_OK) {
		store_log_error(d, __func__, rc);
		cm_db_rollback(d);
		return store_rc(rc);
	}
	/* Before the next writer of this process may begin: see erasures.c. */
	store_erasures_committed(d);
	store_optouts_committed(d);
	db_write_done(d);
	store_cost_harvest(d, 1);
	return CM_OK;
}

void
cm_db_rollback(struct cm_db *d)
{
	bool open = store_in_tx(d);

	if (open)
		(void)store_exec_once(d, "ROLLBACK");
	store_erasures_discard(d, 0);
	store_optouts_discard(d, 0);
	db_write_done(d);
	if (open)
		store_cost_harvest(d, 1);
}

int
cm_store_dir(struct cm_db *d, char *out, size_t outlen)
{
	const char *dir = d->db_store->st_dir;
	size_t n = strlen(dir);

	if (n >= outlen)
		return -1;
	memcpy(out, dir, n + 1);
	return 0;
}

void
cm_db_release_memory(struct cm_db *d)
{
	if (d->db_conn != NULL)
		(void)sqlite3_db_release_memory(d->db_conn);
}

/*
 * A whole-table scan reads each page once, so a large cache only costs:
 * every page it fills is a fresh page of memory to fault in. SCAN gives D
 * a small cache for such scans; false gives back the store's own.
 */
void
cm_db_scan_cache(struct cm_db *d, bool scan)
{
	char pragma[64];
	int n;

	if (d->db_pg != NULL)
		return;
	n = snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d",
	    scan ? CM_STORE_SCAN_CACHE_KIB : d->db_store->st_opts.so_cache_mb * 1024);
	if (n > 0 && (size_t)n < sizeof(pragma))
		(void)store_exec_sql(d->db_conn, pragma);
	if (!scan)
		(void)sqlite3_db_release_memory(d->db_conn);
}

const char *
store_keylit(const struct cm_store *st)
{
	return st->st_keylit;
}

int
store_busy_ms(const struct cm_store *st)
{
	return st->st_opts.so_busy_ms;
}

const uint8_t *
store_ledger_key_of(const struct cm_store *st)
{
	return st->st_ledger_key;
}
