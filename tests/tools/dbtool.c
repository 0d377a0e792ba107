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
 *
 * When DIR/store names a PostgreSQL store, the plain SQL runs there,
 * through libpq (values read in binary, so a dump shows bytes as stored),
 * and the write lock is the advisory lock every consentd node takes.
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
#include <libpq-fe.h>
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

/* The store as plain SQL sees it: SQLCipher's file, or PostgreSQL's database. */
struct raw {
	sqlite3	*sq;
	PGconn	*pg;
};

static struct raw *
open_raw(const char *dir)
{
	static struct raw r;
	char path[4096], *lit, *conninfo;
	size_t len;

	memset(&r, 0, sizeof(r));
	snprintf(path, sizeof(path), "%s/" CM_STORE_PG_FILE, dir);
	if ((conninfo = cm_file_read(path, 4096, &len)) != NULL) {
		conninfo[strcspn(conninfo, "\n")] = '\0';
		r.pg = PQconnectdb(conninfo);
		free(conninfo);
		if (PQstatus(r.pg) != CONNECTION_OK)
			die(PQerrorMessage(r.pg));
		return &r;
	}
	snprintf(path, sizeof(path), "%s/consentd.db", dir);
	if (sqlite3_open(path, &r.sq) != SQLITE_OK)
		die("open");
	lit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(keys, lit);
	if (sqlite3_key(r.sq, lit, (int)strlen(lit)) != SQLITE_OK ||
	    sqlite3_exec(r.sq, "PRAGMA cipher_page_size = " CM_STORE_PAGE_SIZE, NULL, NULL,
	    NULL) != SQLITE_OK)
		die("key");
	cm_secure_free(lit);
	/*
	 * A running server writes on its own (the outbox's deliveries, the
	 * checkpointer): wait for its transaction instead of failing with
	 * "database is locked".
	 */
	sqlite3_busy_timeout(r.sq, 10000);
	return &r;
}

static void
close_raw(struct raw *r)
{
	if (r->pg != NULL)
		PQfinish(r->pg);
	else
		sqlite3_close(r->sq);
}

/* Runs SQL (no rows wanted); the rows it changed. */
static int64_t
exec(struct raw *r, const char *sql)
{
	char *err = NULL;
	PGresult *res;
	int64_t n;

	if (r->pg != NULL) {
		res = PQexec(r->pg, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "dbtool: %s: %s\n", sql, PQresultErrorMessage(res));
			exit(1);
		}
		n = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		return n;
	}
	if (sqlite3_exec(r->sq, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "dbtool: %s: %s\n", sql, err);
		exit(1);
	}
	return sqlite3_changes(r->sq);
}

/* One row of a query: N columns, each with its name, bytes and kind. */
struct raw_row {
	int		 n;
	const char	*name[64];
	const uint8_t	*v[64];
	size_t		 len[64];
	bool		 blob[64], null[64];
};

/*
 * Calls FN with each row of SQL. BINARY: PostgreSQL's values as stored
 * (bytea as its bytes, integers as 8 bytes); else as text.
 */
static void
rows(struct raw *r, const char *sql, bool binary,
    void (*fn)(void *, const struct raw_row *), void *arg)
{
	struct raw_row row;
	sqlite3_stmt *s;
	PGresult *res;
	int i, t;

	if (r->pg != NULL) {
		/* As text, as psql would: several statements, the last one's rows. */
		res = binary ? PQexecParams(r->pg, sql, 0, NULL, NULL, NULL, NULL, 1) :
		    PQexec(r->pg, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK &&
		    PQresultStatus(res) != PGRES_COMMAND_OK) {
			fprintf(stderr, "dbtool: %s\n", PQresultErrorMessage(res));
			exit(1);
		}
		row.n = PQnfields(res) < 64 ? PQnfields(res) : 64;
		for (t = 0; t < PQntuples(res); t++) {
			uint8_t *raw[64] = { NULL };

			for (i = 0; i < row.n; i++) {
				row.name[i] = PQfname(res, i);
				row.v[i] = (const uint8_t *)PQgetvalue(res, t, i);
				row.len[i] = (size_t)PQgetlength(res, t, i);
				row.null[i] = PQgetisnull(res, t, i) != 0;
				row.blob[i] = PQftype(res, i) == 17;	/* bytea */
				/* A blob as its bytes, as SQLite's reads, not as \x… */
				if (row.blob[i] && !binary && !row.null[i] &&
				    (raw[i] = PQunescapeBytea(row.v[i], &row.len[i])) != NULL)
					row.v[i] = raw[i];
			}
			fn(arg, &row);
			for (i = 0; i < row.n; i++)
				PQfreemem(raw[i]);
		}
		PQclear(res);
		return;
	}
	if (sqlite3_prepare_v2(r->sq, sql, -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "dbtool: %s\n", sqlite3_errmsg(r->sq));
		exit(1);
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		row.n = sqlite3_column_count(s) < 64 ? sqlite3_column_count(s) : 64;
		for (i = 0; i < row.n; i++) {
			row.name[i] = sqlite3_column_name(s, i);
			row.null[i] = sqlite3_column_type(s, i) == SQLITE_NULL;
			row.blob[i] = sqlite3_column_type(s, i) == SQLITE_BLOB;
			row.v[i] = row.blob[i] ? sqlite3_column_blob(s, i) :
			    sqlite3_column_text(s, i);
			row.len[i] = (size_t)sqlite3_column_bytes(s, i);
		}
		fn(arg, &row);
	}
	if (sqlite3_finalize(s) != SQLITE_OK)
		die(sqlite3_errmsg(r->sq));
}

/* The names of the store's tables, NULL-terminated; free each and the list. */
struct names {
	char	**n;
	size_t	 count;
};

static void
name_add(void *arg, const struct raw_row *row)
{
	struct names *ns = arg;

	ns->n = realloc(ns->n, (ns->count + 2) * sizeof(*ns->n));
	if (ns->n == NULL)
		die("memory");
	ns->n[ns->count] = malloc(row->len[0] + 1);
	if (ns->n[ns->count] == NULL)
		die("memory");
	memcpy(ns->n[ns->count], row->v[0], row->len[0]);
	ns->n[ns->count++][row->len[0]] = '\0';
	ns->n[ns->count] = NULL;
}

static char **
tables(struct raw *r)
{
	struct names ns = { NULL, 0 };

	rows(r, r->pg != NULL ? "SELECT tablename FROM pg_tables WHERE "
	    "schemaname = current_schema() ORDER BY tablename" :
	    "SELECT name FROM sqlite_master WHERE type = 'table'", false, name_add, &ns);
	if (ns.n == NULL)
		die("no tables");
	return ns.n;
}

static void
names_free(char **n)
{
	size_t i;

	for (i = 0; n[i] != NULL; i++)
		free(n[i]);
	free(n);
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
struct dump_count {
	long	rows;
};

static void
dump_row(void *arg, const struct raw_row *row)
{
	struct dump_count *c = arg;
	int i;

	for (i = 0; i < row->n; i++) {
		if (!row->null[i] && row->len[i] > 0)
			fwrite(row->v[i], 1, row->len[i], stdout);
		putchar('\t');
	}
	putchar('\n');
	c->rows++;
}

static void
dump(struct raw *r)
{
	struct dump_count c = { 0 };
	char sql[256], **t;
	int i;

	t = tables(r);
	for (i = 0; t[i] != NULL; i++) {
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", t[i]);
		printf("== table %s\n", t[i]);
		rows(r, sql, true, dump_row, &c);
	}
	fprintf(stderr, "dumped %d tables, %ld rows\n", i, c.rows);
	names_free(t);
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

/* Sets *ARG when a row names the column wrapped_key (PRAGMA's second column). */
static void
wrapped_key_seen(void *arg, const struct raw_row *row)
{
	int col = row->n > 1 ? 1 : 0;

	if (row->len[col] == strlen("wrapped_key") &&
	    memcmp(row->v[col], "wrapped_key", row->len[col]) == 0)
		*(bool *)arg = true;
}

/* Whether TABLE has a column named wrapped_key, asked of the catalogue. */
static bool
has_wrapped_key(struct raw *r, const char *table)
{
	char sql[256];
	bool found = false;

	/* PRAGMA: SQLite 3.15 has no pragma functions. */
	if (r->pg != NULL)
		snprintf(sql, sizeof(sql), "SELECT column_name FROM information_schema.columns "
		    "WHERE table_schema = current_schema() AND table_name = '%s'", table);
	else
		snprintf(sql, sizeof(sql), "PRAGMA table_info(\"%s\")", table);
	rows(r, sql, false, wrapped_key_seen, &found);
	return found;
}

struct fkeys {
	struct fkey	*k;
	size_t		 n;
};

static void
fkey_row(void *arg, const struct raw_row *row)
{
	struct fkeys *fk = arg;
	char id[128];

	fk->k = realloc(fk->k, (fk->n + 1) * sizeof(*fk->k));
	if (fk->k == NULL)
		die("memory");
	snprintf(id, sizeof(id), "%.*s", (int)row->len[0], (const char *)row->v[0]);
	if (cm_subject_key_unwrap(keys, id, row->v[1], row->len[1], fk->k[fk->n].k) == 0)
		fk->n++;
}

static size_t
forensic_keys(struct raw *r, struct fkey **out)
{
	struct fkeys fk = { NULL, 0 };
	char sql[256], **t;
	size_t i;

	t = tables(r);
	for (i = 0; t[i] != NULL; i++) {
		if (!has_wrapped_key(r, t[i]))
			continue;
		snprintf(sql, sizeof(sql), "SELECT id, wrapped_key FROM \"%s\" "
		    "WHERE wrapped_key IS NOT NULL", t[i]);
		rows(r, sql, true, fkey_row, &fk);
	}
	names_free(t);
	*out = fk.k;
	return fk.n;
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

struct fscan {
	const char	*table;
	char		**needles;
	int		 nneedles;
	struct fkey	*k;
	size_t		 nk;
};

static void
forensic_row(void *arg, const struct raw_row *row)
{
	struct fscan *f = arg;
	uint8_t *pt;
	size_t j, len;
	int c, i;

	for (c = 0; c < row->n; c++) {
		const uint8_t *v = row->v[c];

		len = row->null[c] ? 0 : row->len[c];
		for (i = 0; i < f->nneedles; i++)
			if (contains(v, len, f->needles[i])) {
				printf("hit %s.%s: needle %d\n", f->table, row->name[c], i);
				forensic_hits++;
			}
		if (!row->blob[c] || len <= CM_AEAD_OVERHEAD)
			continue;
		pt = malloc(len);
		for (j = 0; pt != NULL && j < f->nk; j++) {
			crypto_stream_xchacha20_xor_ic(pt, v + 24, len - CM_AEAD_OVERHEAD, v, 1,
			    f->k[j].k);
			for (i = 0; i < f->nneedles; i++)
				if (contains(pt, len - CM_AEAD_OVERHEAD, f->needles[i])) {
					printf("hit %s.%s (decrypted): needle %d\n", f->table,
					    row->name[c], i);
					forensic_hits++;
				}
		}
		free(pt);
	}
}

static int
forensics(const char *dir, char **needles, int nneedles)
{
	struct raw *r = open_raw(dir);
	struct fscan f = { NULL, needles, nneedles, NULL, 0 };
	char sql[256], **t;
	int i;

	forensic_needles = needles;
	forensic_nneedles = nneedles;
	f.nk = forensic_keys(r, &f.k);
	t = tables(r);
	for (i = 0; t[i] != NULL; i++) {
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", t[i]);
		f.table = t[i];
		rows(r, sql, true, forensic_row, &f);
	}
	names_free(t);
	close_raw(r);
	sodium_memzero(f.k, f.nk * sizeof(*f.k));
	free(f.k);
	nftw(dir, forensic_file, 16, FTW_PHYS);
	printf("%d hits, %zu data keys tried\n", forensic_hits, f.nk);
	return 0;
}

/* Prints a row, tab-separated, NULL as NULL. */
static void
print_row(void *arg, const struct raw_row *row)
{
	int i;

	(void)arg;
	for (i = 0; i < row->n; i++) {
		if (i > 0)
			putchar('\t');
		if (row->null[i])
			fputs("NULL", stdout);
		else
			fwrite(row->v[i], 1, row->len[i], stdout);
	}
	putchar('\n');
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
	struct raw *db;

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
		close_raw(db);
	} else if (strcmp(argv[1], "lock") == 0 && argc == 4) {
		uint64_t ms = num(argv[3]);

		db = open_raw(argv[2]);
		exec(db, db->pg != NULL ? "BEGIN; SELECT pg_advisory_xact_lock(7365726)" :
		    "BEGIN IMMEDIATE");
		printf("locked\n");
		fflush(stdout);
		usleep((useconds_t)(ms * 1000));
		exec(db, "ROLLBACK");
		close_raw(db);
	} else if (strcmp(argv[1], "sql") == 0 && argc == 4) {
		db = open_raw(argv[2]);
		rows(db, argv[3], false, print_row, NULL);
		close_raw(db);
	} else if (strcmp(argv[1], "flip") == 0 && argc == 4) {
		/* Change one byte: the last digit of the entry's time. */
		db = open_raw(argv[2]);
		if (db->pg != NULL)
			snprintf(sql, sizeof(sql), "UPDATE audit_entries SET entry = "
			    "set_byte(entry, position(',\"type\"'::bytea in entry) - 2, "
			    "CASE get_byte(entry, position(',\"type\"'::bytea in entry) - 2) "
			    "WHEN 57 THEN 56 ELSE 57 END) WHERE idx = %" PRIu64, num(argv[3]));
		else
			snprintf(sql, sizeof(sql), "UPDATE audit_entries SET entry = CAST("
			    "substr(CAST(entry AS TEXT), 1, instr(CAST(entry AS TEXT), ',\"type\"') - 2) || "
			    "CASE substr(CAST(entry AS TEXT), instr(CAST(entry AS TEXT), ',\"type\"') - 1, 1) "
			    "WHEN '9' THEN '8' ELSE '9' END || "
			    "substr(CAST(entry AS TEXT), instr(CAST(entry AS TEXT), ',\"type\"')) AS BLOB) "
			    "WHERE idx = %" PRIu64, num(argv[3]));
		if (exec(db, sql) != 1)
			die("no such entry");
		close_raw(db);
	} else if (strcmp(argv[1], "delete") == 0 && argc == 4) {
		db = open_raw(argv[2]);
		snprintf(sql, sizeof(sql), "DELETE FROM audit_entries WHERE idx = %" PRIu64,
		    num(argv[3]));
		exec(db, sql);
		close_raw(db);
	} else if (strcmp(argv[1], "swap") == 0 && argc == 5) {
		uint64_t a = num(argv[3]), b = num(argv[4]);

		db = open_raw(argv[2]);
		exec(db, "BEGIN");
		if (db->sq != NULL)
			exec(db, "PRAGMA ignore_check_constraints = ON");
		/* Through an index no entry has. */
		snprintf(sql, sizeof(sql), "UPDATE audit_entries SET idx = 999999999999 "
		    "WHERE idx = %" PRIu64, a);
		exec(db, sql);
		snprintf(sql, sizeof(sql), "UPDATE audit_entries SET idx = %" PRIu64
		    " WHERE idx = %" PRIu64, a, b);
		exec(db, sql);
		snprintf(sql, sizeof(sql), "UPDATE audit_entries SET idx = %" PRIu64
		    " WHERE idx = 999999999999", b);
		exec(db, sql);
		exec(db, "COMMIT");
		close_raw(db);
	} else if (strcmp(argv[1], "rewrite") == 0 && (argc == 5 || argc == 6)) {
		uint64_t keep = num(argv[3]), add = num(argv[4]);
		bool keep_cps = argc == 6 && strcmp(argv[5], "keep-checkpoints") == 0;

		db = open_raw(argv[2]);
		exec(db, "BEGIN");
		snprintf(sql, sizeof(sql), "DELETE FROM audit_entries WHERE idx >= %" PRIu64, keep);
		exec(db, sql);
		snprintf(sql, sizeof(sql), "DELETE FROM audit_hashes WHERE "
		    "(idx + 1) * %s > %" PRIu64, db->pg != NULL ? "(1::bigint << level::int)" :
		    "(1 << level)", keep);
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
		close_raw(db);
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
