/* SPDX-License-Identifier: ISC */
/*
 * dbtool: a test helper that plays two parts against a data directory.
 * As the service, it appends entries through consentd's own audit code
 * (cm_audit_append, group-committed in transactions of 100). As an
 * attacker who holds the keys, it edits the stored log behind consentd's
 * back with plain SQL: flips a byte of an entry, deletes one, swaps two,
 * or truncates the log, appends a different history and re-signs it with
 * the right key. Used only by the tests.
 *
 *   dbtool append DIR N [PER_COMMIT]
 *   dbtool flip DIR INDEX
 *   dbtool delete DIR INDEX
 *   dbtool swap DIR A B
 *   dbtool rewrite DIR KEEP ADD [keep-checkpoints]
 *   dbtool object DIR SUBJECT   record an Art. 21 objection (as the DSR will)
 *   dbtool restrict DIR SUBJECT record an Art. 18 restriction (as the DSR will)
 *   dbtool erase DIR SUBJECT    erase a subject (as the DSR will)
 *   dbtool dump DIR        every row of every table, decrypted by SQLCipher
 *                          (text as is, blobs as raw bytes), to scan for
 *                          plaintext personal data
 *   dbtool forensics DIR NEEDLE…  every place a holder of the master key
 *                          could find a NEEDLE: values as stored and as
 *                          they decrypt under every data key still
 *                          unwrappable, and every file under DIR raw
 *   dbtool sql DIR SQL     runs SQL on the decrypted store and prints each
 *                          row tab-separated (for looking at sizes and plans)
 *   dbtool lock DIR MS     holds the store's write lock for MS milliseconds
 *                          (prints "locked" once it holds it), as another
 *                          writer would: consentd's writes wait meanwhile
 */
#define _GNU_SOURCE	/* nftw */
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SQLITE_HAS_CODEC 1
#include <sqlite3.h>
#include <sodium.h>

#include "consentd/audit.h"
#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/util.h"

static struct cm_keys *keys;

static void
die(const char *msg)
{
	fprintf(stderr, "dbtool: %s\n", msg);
	exit(1);
}

static struct cm_store *
open_store(const char *dir)
{
	struct cm_migration_set set;
	struct cm_store *st;
	char err[512];

	if (cm_migrations_load(NULL, &set, err, sizeof(err)) != CM_OK ||
	    cm_store_open(dir, keys, &set, NULL, &st, err, sizeof(err)) != CM_OK)
		die(err);
	cm_migrations_free(&set);
	return st;
}

static sqlite3 *
open_raw(const char *dir)
{
	char path[4096], *lit;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/consentd.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open");
	lit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(keys, lit);
	if (sqlite3_key(db, lit, (int)strlen(lit)) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA cipher_page_size = " CM_STORE_PAGE_SIZE, NULL, NULL,
	    NULL) != SQLITE_OK)
		die("key");
	cm_secure_free(lit);
	/*
	 * A running server writes on its own (the outbox's deliveries, the
	 * checkpointer): wait for its transaction instead of failing with
	 * "database is locked".
	 */
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static void
exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "dbtool: %s: %s\n", sql, err);
		exit(1);
	}
}

/* Appends N synthetic entries, PER per transaction; prints entries/s. */
static void
append(struct cm_store *st, uint64_t n, uint64_t per, const char *type)
{
	struct cm_db *db = cm_store_db(st);
	uint64_t i, idx;
	int64_t t0, us;

	t0 = cm_time_mono_us();
	for (i = 0; i < n; i++) {
		json_t *d = json_pack("{s:I, s:s}", "n", (json_int_t)i, "note", "synthetic");
		struct cm_audit_event ev = { type, "system", d, NULL, NULL, NULL };

		if (i % per == 0 && cm_db_begin(db) != CM_OK)
			die("begin");
		if (cm_audit_append(db, &ev, &idx) != CM_OK)
			die("append");
		json_decref(d);
		if ((i % per == per - 1 || i == n - 1) && cm_db_commit(db) != CM_OK)
			die("commit");
	}
	us = cm_time_mono_us() - t0;
	printf("appended %" PRIu64 " entries in %.3f s: %.0f entries/s (%" PRIu64
	    " per commit)\n", n, (double)us / 1e6,
	    us > 0 ? (double)n * 1e6 / (double)us : 0.0, per);
}

/* Signs a checkpoint of the current size, replacing any of that size. */
static void
resign(struct cm_store *st)
{
	struct cm_db *db = cm_store_db(st);
	struct cm_buf note = { 0 };
	char origin[CM_AUDIT_ORIGIN_MAX + 1], body[512];
	uint8_t root[32];
	uint64_t size;

	if (cm_audit_origin(db, origin, sizeof(origin)) != CM_OK ||
	    cm_store_audit_size(db, &size) != CM_OK ||
	    cm_audit_root(db, size, root) != CM_OK ||
	    cm_checkpoint_body(body, sizeof(body), origin, size, root) != 0 ||
	    cm_note_sign(&note, body, origin, keys->k_audit_sk, keys->k_audit_pk) != 0)
		die("sign");
	if (cm_db_begin(db) != CM_OK ||
	    cm_store_audit_checkpoint_put(db, size, root, note.b_data, cm_time_now_us()) != CM_OK ||
	    cm_db_commit(db) != CM_OK)
		die("store checkpoint");
	cm_buf_free(&note);
	printf("re-signed size %" PRIu64 "\n", size);
}

/* Writes every value of every table of the opened database to stdout. */
static void
dump(sqlite3 *db)
{
	sqlite3_stmt *t, *s;
	char sql[256];
	int i, n, tables = 0;
	long rows = 0;

	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'",
	    -1, &t, NULL) != SQLITE_OK)
		die("list tables");
	while (sqlite3_step(t) == SQLITE_ROW) {
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", sqlite3_column_text(t, 0));
		if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
			die("select");
		printf("== table %s\n", sqlite3_column_text(t, 0));
		tables++;
		while (sqlite3_step(s) == SQLITE_ROW) {
			n = sqlite3_column_count(s);
			for (i = 0; i < n; i++) {
				if (sqlite3_column_bytes(s, i) > 0)
					fwrite(sqlite3_column_blob(s, i), 1,
					    (size_t)sqlite3_column_bytes(s, i), stdout);
				putchar('\t');
			}
			putchar('\n');
			rows++;
		}
		sqlite3_finalize(s);
	}
	sqlite3_finalize(t);
	fprintf(stderr, "dumped %d tables, %ld rows\n", tables, rows);
}

/*
 * Forensics: whether any of NEEDLES (N of them) can be found by someone
 * holding the master key. Every value of every table is searched as it is
 * stored and, for blobs long enough to be sealed, as it decrypts under
 * every data key that key can still unwrap (each table's wrapped_key,
 * unwrapped with its row id as the AD, as subjects and requests are).
 * XChaCha20-Poly1305 is decrypted as the stream cipher it is, without the
 * tag and the AD, so a value sealed under any label is still found. Then
 * every file under DIR is searched raw. Prints one line per hit; the
 * caller fails on any (and checks the tool finds what is there).
 */
struct fkey {
	uint8_t	k[CM_KEY_LEN];
};

static bool
contains(const uint8_t *h, size_t hl, const char *needle)
{
	size_t nl = strlen(needle), i;

	for (i = 0; nl > 0 && i + nl <= hl; i++)
		if (memcmp(h + i, needle, nl) == 0)
			return true;
	return false;
}

/* Whether TABLE has a column named wrapped_key (PRAGMA: SQLite 3.15 has no pragma functions). */
static bool
has_wrapped_key(sqlite3 *db, const char *table)
{
	sqlite3_stmt *s;
	char sql[256];
	bool found = false;

	snprintf(sql, sizeof(sql), "PRAGMA table_info(\"%s\")", table);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die("table_info");
	while (sqlite3_step(s) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(s, 1), "wrapped_key") == 0)
			found = true;
	sqlite3_finalize(s);
	return found;
}

static size_t
forensic_keys(sqlite3 *db, struct fkey **out)
{
	sqlite3_stmt *t, *s;
	struct fkey *k = NULL;
	size_t n = 0;
	char sql[256];

	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'",
	    -1, &t, NULL) != SQLITE_OK)
		die("list tables");
	while (sqlite3_step(t) == SQLITE_ROW) {
		if (!has_wrapped_key(db, (const char *)sqlite3_column_text(t, 0)))
			continue;
		snprintf(sql, sizeof(sql), "SELECT id, wrapped_key FROM \"%s\" "
		    "WHERE wrapped_key IS NOT NULL", sqlite3_column_text(t, 0));
		if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
			die("select wrapped keys");
		while (sqlite3_step(s) == SQLITE_ROW) {
			k = realloc(k, (n + 1) * sizeof(*k));
			if (k == NULL)
				die("memory");
			if (cm_subject_key_unwrap(keys, (const char *)sqlite3_column_text(s, 0),
			    sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1),
			    k[n].k) == 0)
				n++;
		}
		sqlite3_finalize(s);
	}
	sqlite3_finalize(t);
	*out = k;
	return n;
}

/* What the walk over the files looks for (nftw passes no argument). */
static char	**forensic_needles;
static int	  forensic_nneedles, forensic_hits;

static int
forensic_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char *data;
	size_t len;
	int i;

	(void)st;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	if ((data = cm_file_read(path, 512 * 1024 * 1024, &len)) == NULL)
		return 0;
	for (i = 0; i < forensic_nneedles; i++)
		if (contains((const uint8_t *)data, len, forensic_needles[i])) {
			printf("hit file %s: needle %d\n", path, i);
			forensic_hits++;
		}
	free(data);
	return 0;
}

static int
forensics(const char *dir, char **needles, int nneedles)
{
	sqlite3 *db = open_raw(dir);
	sqlite3_stmt *t, *s;
	struct fkey *k;
	size_t nk, j;
	uint8_t *pt;
	char sql[256];
	int i, c, cols;

	forensic_needles = needles;
	forensic_nneedles = nneedles;
	nk = forensic_keys(db, &k);
	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'",
	    -1, &t, NULL) != SQLITE_OK)
		die("list tables");
	while (sqlite3_step(t) == SQLITE_ROW) {
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", sqlite3_column_text(t, 0));
		if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
			die("select");
		cols = sqlite3_column_count(s);
		while (sqlite3_step(s) == SQLITE_ROW) {
			for (c = 0; c < cols; c++) {
				const uint8_t *v = sqlite3_column_blob(s, c);
				size_t len = (size_t)sqlite3_column_bytes(s, c);

				for (i = 0; i < nneedles; i++)
					if (contains(v, len, needles[i])) {
						printf("hit %s.%s: needle %d\n", sqlite3_column_text(t, 0),
						    sqlite3_column_name(s, c), i);
						forensic_hits++;
					}
				if (sqlite3_column_type(s, c) != SQLITE_BLOB || len <= CM_AEAD_OVERHEAD)
					continue;
				pt = malloc(len);
				for (j = 0; pt != NULL && j < nk; j++) {
					crypto_stream_xchacha20_xor_ic(pt, v + 24, len - CM_AEAD_OVERHEAD, v,
					    1, k[j].k);
					for (i = 0; i < nneedles; i++)
						if (contains(pt, len - CM_AEAD_OVERHEAD, needles[i])) {
							printf("hit %s.%s (decrypted): needle %d\n",
							    sqlite3_column_text(t, 0),
							    sqlite3_column_name(s, c), i);
							forensic_hits++;
						}
				}
				free(pt);
			}
		}
		sqlite3_finalize(s);
	}
	sqlite3_finalize(t);
	sqlite3_close(db);
	sodium_memzero(k, nk * sizeof(*k));
	free(k);
	nftw(dir, forensic_file, 16, FTW_PHYS);
	printf("%d hits, %zu data keys tried\n", forensic_hits, nk);
	return 0;
}

/* Runs one statement and prints its rows, tab-separated. */
static void
query(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int i, n;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "dbtool: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		n = sqlite3_column_count(s);
		for (i = 0; i < n; i++)
			printf("%s%s", i ? "\t" : "", sqlite3_column_type(s, i) == SQLITE_NULL ?
			    "NULL" : (const char *)sqlite3_column_text(s, i));
		putchar('\n');
	}
	if (sqlite3_finalize(s) != SQLITE_OK)
		die(sqlite3_errmsg(db));
}

static uint64_t
num(const char *s)
{
	int64_t v;

	if (cm_parse_i64(s, 0, INT64_MAX, &v) != 0)
		die("bad number");
	return (uint64_t)v;
}

int
main(int argc, char **argv)
{
	char err[512], sql[512];
	struct cm_store *st;
	sqlite3 *db;

	if (argc < 3 || cm_crypto_init() != 0)
		die("usage: dbtool append|flip|delete|swap|rewrite|dump DIR …");
	if (cm_keys_load(argv[2], &keys, err, sizeof(err)) != CM_OK)
		die(err);
	if (strcmp(argv[1], "append") == 0 && (argc == 4 || argc == 5)) {
		uint64_t per = argc == 5 ? num(argv[4]) : 100;

		if (per == 0)
			die("PER_COMMIT must be at least 1");
		st = open_store(argv[2]);
		append(st, num(argv[3]), per, "test.synthetic");
		cm_store_close(st);
	} else if ((strcmp(argv[1], "object") == 0 || strcmp(argv[1], "restrict") == 0 ||
	    strcmp(argv[1], "erase") == 0) && argc == 4) {
		struct cm_ctx cx;
		struct cm_why w;

		st = open_store(argv[2]);
		memset(&cx, 0, sizeof(cx));
		memset(&w, 0, sizeof(w));
		cx.cx_db = cm_store_db(st);
		cx.cx_keys = keys;
		snprintf(cx.cx_actor, sizeof(cx.cx_actor), "system");
		cx.cx_now = cm_time_now_us();
		json_t *counts = NULL;
		cm_result r;

		if (cm_db_begin(cx.cx_db) != CM_OK)
			die("begin");
		if (strcmp(argv[1], "object") == 0)
			r = cm_subject_object(&cx, argv[3], &w);
		else if (strcmp(argv[1], "restrict") == 0)
			r = cm_subject_restrict(&cx, argv[3], true, &w);
		else
			r = cm_subject_erase(&cx, argv[3], &counts, &w);
		if (r != CM_OK || cm_db_commit(cx.cx_db) != CM_OK)
			die(w.w_code ? w.w_code : "store");
		json_decref(counts);
		cm_store_close(st);
	} else if (strcmp(argv[1], "forensics") == 0 && argc >= 4) {
		return forensics(argv[2], argv + 3, argc - 3);
	} else if (strcmp(argv[1], "dump") == 0 && argc == 3) {
		db = open_raw(argv[2]);
		dump(db);
		sqlite3_close(db);
	} else if (strcmp(argv[1], "lock") == 0 && argc == 4) {
		uint64_t ms = num(argv[3]);

		db = open_raw(argv[2]);
		exec(db, "BEGIN IMMEDIATE");
		printf("locked\n");
		fflush(stdout);
		usleep((useconds_t)(ms * 1000));
		exec(db, "ROLLBACK");
		sqlite3_close(db);
	} else if (strcmp(argv[1], "sql") == 0 && argc == 4) {
		db = open_raw(argv[2]);
		query(db, argv[3]);
		sqlite3_close(db);
	} else if (strcmp(argv[1], "flip") == 0 && argc == 4) {
		/* Change one byte: the last digit of the entry's time. */
		db = open_raw(argv[2]);
		snprintf(sql, sizeof(sql), "UPDATE audit_entries SET entry = CAST("
		    "substr(CAST(entry AS TEXT), 1, instr(CAST(entry AS TEXT), ',\"type\"') - 2) || "
		    "CASE substr(CAST(entry AS TEXT), instr(CAST(entry AS TEXT), ',\"type\"') - 1, 1) "
		    "WHEN '9' THEN '8' ELSE '9' END || "
		    "substr(CAST(entry AS TEXT), instr(CAST(entry AS TEXT), ',\"type\"')) AS BLOB) "
		    "WHERE idx = %" PRIu64, num(argv[3]));
		exec(db, sql);
		if (sqlite3_changes(db) != 1)
			die("no such entry");
		sqlite3_close(db);
	} else if (strcmp(argv[1], "delete") == 0 && argc == 4) {
		db = open_raw(argv[2]);
		snprintf(sql, sizeof(sql), "DELETE FROM audit_entries WHERE idx = %" PRIu64,
		    num(argv[3]));
		exec(db, sql);
		sqlite3_close(db);
	} else if (strcmp(argv[1], "swap") == 0 && argc == 5) {
		uint64_t a = num(argv[3]), b = num(argv[4]);

		db = open_raw(argv[2]);
		exec(db, "BEGIN");
		snprintf(sql, sizeof(sql), "UPDATE audit_entries SET idx = -1 WHERE idx = %"
		    PRIu64, a);
		exec(db, "PRAGMA ignore_check_constraints = ON");
		exec(db, sql);
		snprintf(sql, sizeof(sql), "UPDATE audit_entries SET idx = %" PRIu64
		    " WHERE idx = %" PRIu64, a, b);
		exec(db, sql);
		snprintf(sql, sizeof(sql), "UPDATE audit_entries SET idx = %" PRIu64
		    " WHERE idx = -1", b);
		exec(db, sql);
		exec(db, "COMMIT");
		sqlite3_close(db);
	} else if (strcmp(argv[1], "rewrite") == 0 && (argc == 5 || argc == 6)) {
		uint64_t keep = num(argv[3]), add = num(argv[4]);
		bool keep_cps = argc == 6 && strcmp(argv[5], "keep-checkpoints") == 0;

		db = open_raw(argv[2]);
		exec(db, "BEGIN");
		snprintf(sql, sizeof(sql), "DELETE FROM audit_entries WHERE idx >= %" PRIu64, keep);
		exec(db, sql);
		snprintf(sql, sizeof(sql), "DELETE FROM audit_hashes WHERE "
		    "(idx + 1) * (1 << level) > %" PRIu64, keep);
		exec(db, sql);
		if (!keep_cps) {
			snprintf(sql, sizeof(sql), "DELETE FROM audit_checkpoints WHERE "
			    "size > %" PRIu64, keep);
			exec(db, sql);
		} else {
			snprintf(sql, sizeof(sql), "DELETE FROM audit_checkpoints WHERE "
			    "size = %" PRIu64, keep + add);
			exec(db, sql);
		}
		exec(db, "COMMIT");
		sqlite3_close(db);
		st = open_store(argv[2]);
		append(st, add, 100, "test.rewritten");
		resign(st);
		cm_store_close(st);
	} else {
		die("usage: dbtool append|flip|delete|swap|rewrite|dump DIR …");
	}
	cm_keys_free(keys);
	return 0;
}
