/* SPDX-License-Identifier: ISC */
/*
 * One body of checks run on both engines: the executor (every parameter
 * letter, NULLs, rows, nested queries, conflicts, counts of changed rows,
 * update-else-insert) and store functions whose SQL is written once for
 * both (meta, suppressions and their bindings). The SQLite engine runs on
 * a store made here; the PostgreSQL engine on the database named by
 * CONSENTD_PG (a libpq connection string), to which the migration runner
 * applies migrations-pg/ (CONSENTD_PG_MIGRATIONS) first:
 * tests/pg/engines.test.mjs starts a throwaway cluster and runs this.
 * Without CONSENTD_PG it fails: a check that was not run must not pass.
 *
 * And on PostgreSQL alone: every statement of the store's SQL files, as
 * the preprocessor leaves them (CONSENTD_PG_STATEMENTS, a JSON list the
 * driver extracts), prepares on the schema of migrations-pg/. Those named
 * sqlite_* are SQLite's own (its catalogue, a table only SQLite stores
 * had), run only there; their number is held so that adding one is a
 * choice. And the migration runner, on an empty database
 * (CONSENTD_PG_EMPTY), applies and refuses what it does on SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "../../src/store/store_int.h"

struct engine {
	const char		*name;
	struct cm_db		*d;
	/* SQLite's */
	char			 dir[64];
	struct cm_keys		*keys;
	struct cm_store		*st;
};

static const char h_ddl[] = "CREATE TABLE h (id bigint PRIMARY KEY, t text, tn text, "
    "b bytea, bn bytea, i bigint, z bigint, u text UNIQUE)";
static const char h_ins[] = "INSERT INTO h (id, t, tn, b, bn, i, z) VALUES "
    "(?, ?, ?, ?, ?, ?, ?)";
static const char h_get[] = "SELECT t, tn, b, bn, i, z, id FROM h WHERE id = ?";
static const char h_ids[] = "SELECT id FROM h WHERE id >= ? ORDER BY id";
static const char h_count[] = "SELECT count(*) FROM h";
static const char h_u[] = "INSERT INTO h (id, u) VALUES (?, ?)";
static const char h_set_z[] = "UPDATE h SET z = ? WHERE id <= ?";
static const char h_upd_t[] = "UPDATE h SET t = ?2 WHERE id = ?1";
static const char h_ins_t[] = "INSERT INTO h (id, t) VALUES (?1, ?2)";
static const char h_fail[] = "INSERT OR FAIL INTO h (id, t) VALUES (?, ?)";

static int
open_sqlite(void **state)
{
	struct engine *e = calloc(1, sizeof(*e));
	struct cm_migration_set set;
	struct cm_store_opts o;
	char err[512];

	if (e == NULL)
		return -1;
	e->name = "sqlite";
	snprintf(e->dir, sizeof(e->dir), "/tmp/consentd-test-engines-XXXXXX");
	if (mkdtemp(e->dir) == NULL || cm_crypto_init() != 0 ||
	    cm_keys_create(e->dir, err, sizeof(err)) != CM_OK ||
	    cm_keys_load(e->dir, &e->keys, err, sizeof(err)) != CM_OK ||
	    cm_migrations_load(NULL, &set, err, sizeof(err)) != CM_OK)
		return -1;
	cm_store_opts_default(&o);
	if (cm_store_create(e->dir, e->keys, &set, err, sizeof(err)) != CM_OK ||
	    cm_store_open(e->dir, e->keys, &set, &o, &e->st, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	cm_migrations_free(&set);
	if ((e->d = cm_store_db(e->st)) == NULL)
		return -1;
	*state = e;
	return 0;
}

/* Connects to CONSENTD_PG, its schema brought up to migrations-pg/ by the runner. */
static int
open_pg(void **state)
{
	struct engine *e = calloc(1, sizeof(*e));
	const char *conninfo = getenv("CONSENTD_PG"), *dir = getenv("CONSENTD_PG_MIGRATIONS");
	struct cm_migration_set set;
	char err[1024];
	cm_result rc;

	if (e == NULL)
		return -1;
	e->name = "postgresql";
	if (conninfo == NULL || dir == NULL) {
		fprintf(stderr, "CONSENTD_PG and CONSENTD_PG_MIGRATIONS are not set: run "
		    "through tests/pg/engines.test.mjs\n");
		return -1;
	}
	if (store_pg_connect(conninfo, &e->d, err, sizeof(err)) != CM_OK ||
	    cm_migrations_load(dir, &set, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	rc = store_migrate(e->d, &set, true, err, sizeof(err));
	cm_migrations_free(&set);
	if (rc != CM_OK) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = e;
	return 0;
}

static int
close_engine(void **state)
{
	struct engine *e = *state;
	char cmd[128];

	assert_int_equal(store_exec_once(e->d, "DROP TABLE IF EXISTS h"), CM_OK);
	if (e->st != NULL) {
		cm_store_close(e->st);
		cm_keys_free(e->keys);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
		assert_int_equal(system(cmd), 0);
	} else
		store_pg_close(e->d);
	free(e);
	return 0;
}

/* The integer COUNT_SQL reads (a static statement without parameters). */
static int64_t
count(struct cm_db *d, const char *count_sql)
{
	struct store_query q;
	int64_t n = -1;

	if (store_row(&q, d, count_sql, "") == CM_OK)
		n = store_col_int64(&q, 0);
	assert_int_equal(store_done(&q), CM_OK);
	return n;
}

static int64_t
rows(struct cm_db *d)
{
	return count(d, h_count);
}

/* Every letter binds its type and reads back as it went in. */
static void
test_letters(void **state)
{
	static const uint8_t blob[5] = { 0, 1, 2, 0, 255 };
	struct engine *e = *state;
	struct store_query q;
	uint8_t b32[32], got[32];
	int k;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	for (k = 0; k < 32; k++)
		b32[k] = (uint8_t)(k * 7 + 1);
	assert_int_equal(store_exec(e->d, h_ins, "itTbBiI", (int64_t)1, "text", "abcdef",
	    (size_t)3, b32, blob, sizeof(blob), INT64_MIN, INT64_MAX), CM_OK);
	assert_int_equal(store_exec(e->d, h_ins, "itTbBiI", (int64_t)2, "", "xyz", (size_t)0,
	    b32, blob, (size_t)0, (int64_t)0, (int64_t)0), CM_OK);
	assert_int_equal(store_exec(e->d, h_ins, "itTbBiI", (int64_t)3, NULL, NULL, (size_t)0,
	    NULL, NULL, (size_t)0, (int64_t)-5, (int64_t)7), CM_OK);

	assert_int_equal(store_row(&q, e->d, h_get, "i", (int64_t)1), CM_OK);
	assert_string_equal(store_col_text(&q, 0), "text");
	assert_string_equal(store_col_text(&q, 1), "abc");
	assert_int_equal(store_col_bytes(&q, 1), 3);
	assert_true(store_col_is_blob(&q, 2));
	assert_false(store_col_is_blob(&q, 0));
	assert_true(store_column_blob(got, 32, &q, 2));
	assert_memory_equal(got, b32, 32);
	assert_int_equal(store_col_bytes(&q, 3), 5);
	assert_memory_equal(store_col_blob(&q, 3), blob, 5);
	assert_false(store_column_blob(got, 32, &q, 3));
	assert_true(store_col_int64(&q, 4) == INT64_MIN);
	assert_true(store_col_int64(&q, 5) == INT64_MAX);
	assert_int_equal(store_col_int(&q, 6), 1);
	/* An integer read as text is its digits, as SQLite gives it. */
	assert_string_equal(store_col_text(&q, 6), "1");
	assert_int_equal(store_done(&q), CM_OK);

	/* Empty text and blobs are values; I's 0 is NULL. */
	assert_int_equal(store_row(&q, e->d, h_get, "i", (int64_t)2), CM_OK);
	assert_string_equal(store_col_text(&q, 0), "");
	assert_false(store_col_null(&q, 1));
	assert_int_equal(store_col_bytes(&q, 1), 0);
	assert_false(store_col_null(&q, 3));
	assert_int_equal(store_col_bytes(&q, 3), 0);
	assert_false(store_col_null(&q, 4));
	assert_int_equal(store_col_int64(&q, 4), 0);
	assert_true(store_col_null(&q, 5));
	assert_int_equal(store_col_int64(&q, 5), 0);
	assert_int_equal(store_done(&q), CM_OK);

	/* NULL pointers bind NULL. */
	assert_int_equal(store_row(&q, e->d, h_get, "i", (int64_t)3), CM_OK);
	assert_null(store_col_text(&q, 0));
	assert_true(store_col_null(&q, 1));
	assert_null(store_col_blob(&q, 2));
	assert_true(store_col_null(&q, 3));
	assert_int_equal(store_col_int64(&q, 4), -5);
	assert_int_equal(store_done(&q), CM_OK);

	assert_int_equal(store_row(&q, e->d, h_get, "i", (int64_t)9), CM_NOTFOUND);
	assert_int_equal(store_done(&q), CM_OK);
}

/* Rows in order, a query inside another's loop, counts of changed rows. */
static void
test_rows(void **state)
{
	struct engine *e = *state;
	struct store_query q, in;
	int64_t id, want = 2, n;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	for (id = 1; id <= 5; id++)
		assert_int_equal(store_exec(e->d, h_ins, "itTbBiI", id, "r", "r", (size_t)1,
		    NULL, NULL, (size_t)0, id, (int64_t)0), CM_OK);
	store_query(&q, e->d, h_ids, "i", (int64_t)2);
	while (store_next(&q)) {
		assert_int_equal(store_col_int64(&q, 0), want++);
		store_query(&in, e->d, h_ids, "i", (int64_t)4);
		for (n = 0; store_next(&in); n++)
			;
		assert_int_equal(n, 2);
		assert_int_equal(store_done(&in), CM_OK);
	}
	assert_int_equal(store_done(&q), CM_OK);
	assert_int_equal(want, 6);

	assert_int_equal(store_exec_changes(e->d, &n, h_set_z, "ii", (int64_t)9, (int64_t)3),
	    CM_OK);
	assert_int_equal(n, 3);
	assert_int_equal(store_exec_changes(e->d, &n, h_set_z, "ii", (int64_t)9, (int64_t)0),
	    CM_OK);
	assert_int_equal(n, 0);
}

/*
 * A duplicate is CM_CONFLICT and changes nothing; an update-else-insert
 * makes one row and then changes it; OR FAIL is a plain insert.
 */
static void
test_conflicts_and_upserts(void **state)
{
	struct engine *e = *state;
	struct store_query q;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	assert_int_equal(store_exec(e->d, h_u, "it", (int64_t)1, "same"), CM_OK);
	assert_int_equal(store_exec(e->d, h_u, "it", (int64_t)2, "same"), CM_CONFLICT);
	assert_int_equal(store_exec(e->d, h_u, "it", (int64_t)1, "other"), CM_CONFLICT);
	assert_int_equal(rows(e->d), 1);

	assert_int_equal(store_upsert(e->d, h_upd_t, h_ins_t, "it", (int64_t)7, "first"), CM_OK);
	assert_int_equal(store_upsert(e->d, h_upd_t, h_ins_t, "it", (int64_t)7, "second"), CM_OK);
	assert_int_equal(rows(e->d), 2);
	assert_int_equal(store_row(&q, e->d, h_get, "i", (int64_t)7), CM_OK);
	assert_string_equal(store_col_text(&q, 0), "second");
	assert_int_equal(store_done(&q), CM_OK);

	assert_int_equal(store_exec(e->d, h_fail, "it", (int64_t)8, "x"), CM_OK);
	assert_int_equal(store_exec(e->d, h_fail, "it", (int64_t)8, "y"), CM_CONFLICT);
	assert_int_equal(rows(e->d), 3);

	/* A format that does not fit runs nothing. */
	assert_int_equal(store_exec(e->d, h_u, "i", (int64_t)3), CM_IOERR);
	assert_int_equal(rows(e->d), 3);
}

/*
 * Inside a transaction a statement that fails takes back only itself: the
 * writes before it stay and the transaction goes on, as the store's SQL
 * expects of both engines.
 */
static void
test_failed_statement_in_transaction(void **state)
{
	static const char begin[] = "BEGIN", commit[] = "COMMIT", rollback[] = "ROLLBACK";
	struct engine *e = *state;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	assert_int_equal(store_exec(e->d, begin, ""), CM_OK);
	assert_true(store_in_tx(e->d));
	assert_int_equal(store_exec(e->d, h_u, "it", (int64_t)1, "a"), CM_OK);
	assert_int_equal(store_exec(e->d, h_u, "it", (int64_t)2, "a"), CM_CONFLICT);
	assert_int_equal(store_exec(e->d, h_u, "it", (int64_t)3, "b"), CM_OK);
	assert_int_equal(rows(e->d), 2);
	assert_int_equal(store_exec(e->d, commit, ""), CM_OK);
	assert_false(store_in_tx(e->d));
	assert_int_equal(rows(e->d), 2);

	assert_int_equal(store_exec(e->d, begin, ""), CM_OK);
	assert_int_equal(store_exec(e->d, h_u, "it", (int64_t)4, "c"), CM_OK);
	assert_int_equal(store_exec(e->d, rollback, ""), CM_OK);
	assert_int_equal(rows(e->d), 2);
}

/* The store's own SQL, run on the engine's schema. */
static void
test_store_functions(void **state)
{
	struct engine *e = *state;
	uint8_t x[32], y[32], blind[32];
	char reason[16], v[16], subject[64];
	int64_t since;
	struct store_query q;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	assert_int_equal(store_exec_once(e->d, "BEGIN"), CM_OK);
	assert_true(store_in_tx(e->d));
	assert_int_equal(cm_store_meta_set(e->d, "engines.key", "one"), CM_OK);
	assert_int_equal(cm_store_meta_set(e->d, "engines.key", "two"), CM_OK);
	assert_int_equal(cm_store_meta_get(e->d, "engines.key", v, sizeof(v)), CM_OK);
	assert_string_equal(v, "two");

	memset(x, 1, sizeof(x));
	memset(y, 2, sizeof(y));
	assert_int_equal(cm_store_suppression_put(e->d, "email", x, "manual", 10), CM_OK);
	assert_int_equal(cm_store_suppression_put(e->d, "email", x, "bounced", 11), CM_CONFLICT);
	assert_int_equal(cm_store_suppression_get(e->d, "email", x, reason, &since), CM_OK);
	assert_string_equal(reason, "manual");
	assert_int_equal(since, 10);
	assert_int_equal(cm_store_suppression_bind(e->d, "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "email", x), CM_OK);
	assert_int_equal(cm_store_suppression_bind(e->d, "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "email", x), CM_OK);
	assert_int_equal(cm_store_suppression_bind(e->d, "sub_bbbbbbbbbbbbbbbbbbbbbbbbbb",
	    "email", x), CM_OK);
	assert_int_equal(cm_store_suppression_bindings_move(e->d,
	    "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa", "sub_bbbbbbbbbbbbbbbbbbbbbbbbbb"), CM_OK);
	assert_int_equal(cm_store_suppression_rekey(e->d, "email", x, y), CM_OK);
	assert_int_equal(cm_store_suppression_get(e->d, "email", x, reason, &since),
	    CM_NOTFOUND);
	assert_int_equal(cm_store_suppression_get(e->d, "email", y, reason, &since), CM_OK);
	store_query(&q, e->d, "SELECT subject_id, blind FROM suppression_subjects", "");
	assert_true(store_next(&q));
	store_column_text(subject, sizeof(subject), &q, 0);
	assert_string_equal(subject, "sub_bbbbbbbbbbbbbbbbbbbbbbbbbb");
	assert_true(store_column_blob(blind, 32, &q, 1));
	assert_memory_equal(blind, y, 32);
	assert_false(store_next(&q));
	assert_int_equal(store_done(&q), CM_OK);
	/* Nothing of this stays: the next run starts as this one did. */
	assert_int_equal(store_exec_once(e->d, "ROLLBACK"), CM_OK);
	assert_false(store_in_tx(e->d));
	store_optouts_discard(e->d, 0);
	assert_int_equal(cm_store_meta_get(e->d, "engines.key", v, sizeof(v)), CM_NOTFOUND);
}

static int
count_change(void *arg, const struct cm_change_row *c)
{
	int64_t *n = arg;

	assert_true(c->ch_seq > 0);
	(*n)++;
	return 0;
}

static void
event(struct cm_event_row *e, const char *id, const char *state, int64_t at)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->e_event_id, sizeof(e->e_event_id), "%s", id);
	snprintf(e->e_subject, sizeof(e->e_subject), "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa");
	snprintf(e->e_purpose, sizeof(e->e_purpose), "newsletter");
	snprintf(e->e_channel, sizeof(e->e_channel), "email");
	snprintf(e->e_state, sizeof(e->e_state), "%s", state);
	e->e_notice_version = 1;
	snprintf(e->e_method, sizeof(e->e_method), "web_form");
	e->e_collected_us = e->e_recorded_us = at;
	snprintf(e->e_client, sizeof(e->e_client), "tests");
}

/*
 * What a consent write and a check do in the store, on both engines: a
 * token, a subject with an identifier, a grant and its current row, the
 * decision row rebuilt from them, a withdrawal that drops that row in the
 * same transaction (the check then reads the tables and says withdrawn),
 * the rebuilt row saying withdrawn too, and the change feed.
 */
static void
test_consent_path(void **state)
{
	struct engine *e = *state;
	static const char A[] = "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa";
	uint8_t wrapped[CM_WRAPPED_LEN], blind[32], hash[32], sealed[8] = { 1 };
	struct cm_ident_row id;
	struct cm_event_row ev, by;
	struct cm_check_row k;
	struct cm_token_row t;
	char owner[CM_SUBJECT_ID_LEN + 1];
	int64_t seq, n = 0;
	bool left;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	assert_int_equal(store_exec_once(e->d, "BEGIN"), CM_OK);
	memset(hash, 9, sizeof(hash));
	assert_int_equal(cm_store_token_create(e->d, "engines", "abcdefghijklmnop", hash, 3,
	    false, 5), CM_OK);
	assert_int_equal(cm_store_token_create(e->d, "engines", "bbcdefghijklmnop", hash, 3,
	    false, 6), CM_CONFLICT);
	assert_int_equal(cm_store_token_find(e->d, "abcdefghijklmnop", &t), CM_OK);
	assert_string_equal(t.t_name, "engines");
	assert_int_equal(t.t_scopes, 3);
	assert_int_equal(t.t_revoked_us, 0);

	memset(wrapped, 7, sizeof(wrapped));
	memset(blind, 4, sizeof(blind));
	assert_int_equal(cm_store_subject_insert(e->d, A, wrapped, 10), CM_OK);
	memset(&id, 0, sizeof(id));
	snprintf(id.i_type, sizeof(id.i_type), "email");
	memcpy(id.i_blind, blind, 32);
	id.i_sealed = sealed;
	id.i_sealed_len = sizeof(sealed);
	snprintf(id.i_source, sizeof(id.i_source), "api");
	assert_int_equal(cm_store_identifier_insert(e->d, A, &id, 10), CM_OK);
	assert_int_equal(cm_store_identifier_insert(e->d, A, &id, 11), CM_CONFLICT);
	assert_int_equal(cm_store_identifier_owner(e->d, "email", blind, owner), CM_OK);
	assert_string_equal(owner, A);

	event(&ev, "evt_granted_00000000000000000", "granted", 100);
	snprintf(ev.e_request_id, sizeof(ev.e_request_id), "req-1");
	assert_int_equal(cm_store_event_insert(e->d, &ev), CM_OK);
	assert_true(ev.e_seq > 0);
	seq = ev.e_seq;
	assert_int_equal(cm_store_current_put(e->d, &ev), CM_OK);
	assert_int_equal(cm_store_event_insert(e->d, &ev), CM_CONFLICT);
	assert_int_equal(cm_store_event_by_request(e->d, "tests", "req-1", &by), CM_OK);
	assert_int_equal(by.e_seq, seq);
	assert_int_equal(cm_store_decisions_rebuild(e->d, 100, &left), CM_OK);
	assert_false(left);
	assert_int_equal(cm_store_check_facts(e->d, "email", blind, "newsletter", "email", &k),
	    CM_OK);
	assert_true(k.k_from_row);
	assert_string_equal(k.k_subject, A);
	assert_string_equal(k.k_channel.e_state, "granted");

	event(&ev, "evt_withdrawn_000000000000000", "withdrawn", 200);
	assert_int_equal(cm_store_event_insert(e->d, &ev), CM_OK);
	assert_true(ev.e_seq > seq);
	assert_int_equal(cm_store_current_put(e->d, &ev), CM_OK);
	assert_int_equal(cm_store_check_facts(e->d, "email", blind, "newsletter", "email", &k),
	    CM_OK);
	assert_false(k.k_from_row);
	assert_string_equal(k.k_channel.e_state, "withdrawn");
	assert_int_equal(cm_store_decisions_rebuild(e->d, 100, &left), CM_OK);
	assert_int_equal(cm_store_check_facts(e->d, "email", blind, "newsletter", "email", &k),
	    CM_OK);
	assert_true(k.k_from_row);
	assert_string_equal(k.k_channel.e_state, "withdrawn");
	assert_int_equal(k.k_channel.e_seq, ev.e_seq);

	assert_int_equal(cm_store_change_insert(e->d, "consent", 200, A, "email", blind,
	    "{}"), CM_OK);
	assert_int_equal(cm_store_change_insert(e->d, "consent", 201, NULL, NULL, NULL,
	    "{}"), CM_OK);
	assert_int_equal(cm_store_changes_after(e->d, 0, 10, count_change, &n), CM_OK);
	assert_int_equal(n, 2);
	assert_int_equal(cm_store_changes_last(e->d, &seq), CM_OK);
	assert_true(seq >= 2);
	assert_int_equal(store_exec_once(e->d, "ROLLBACK"), CM_OK);
	store_optouts_discard(e->d, 0);
}

static int
scan_entry(void *arg, uint64_t idx, const void *entry, size_t len, const uint8_t leaf[32])
{
	uint64_t *seen = arg;

	assert_int_equal(idx, *seen);
	assert_int_equal(len, 3);
	assert_memory_equal(entry, "{1}", 3);
	assert_int_equal(leaf[0], (uint8_t)idx);
	(*seen)++;
	return 0;
}

static int
count_checkpoint(void *arg, const struct cm_checkpoint_row *cp)
{
	uint64_t *last = arg;

	assert_true(cp->cp_size > *last);
	*last = cp->cp_size;
	return 0;
}

/*
 * The audit log's tables: entries and their leaf hashes, the hashes of
 * perfect subtrees read back by a cursor that lives across other reads,
 * checkpoints, pseudonyms and sealed openings, and an erasure's forgetting
 * of a subject's.
 */
static void
test_audit_tables(void **state)
{
	struct engine *e = *state;
	static const char A[] = "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa";
	struct cm_hash_cursor *c;
	struct cm_checkpoint_row cp;
	struct cm_buf buf = { 0 };
	uint8_t leaf[32], h[32], got[32];
	char pseud[64], subject[64];
	uint64_t i, idx, size, seen = 0, last = 0;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	assert_int_equal(store_exec_once(e->d, "BEGIN"), CM_OK);
	for (i = 0; i < 5; i++) {
		memset(leaf, (int)i, sizeof(leaf));
		assert_int_equal(cm_store_audit_put_entry(e->d, i, "{1}", 3, leaf), CM_OK);
	}
	assert_int_equal(cm_store_audit_put_entry(e->d, 4, "{1}", 3, leaf), CM_CONFLICT);
	assert_int_equal(cm_store_audit_size(e->d, &size), CM_OK);
	assert_int_equal(size, 5);
	assert_int_equal(cm_store_audit_scan(e->d, 0, UINT64_MAX, scan_entry, &seen), CM_OK);
	assert_int_equal(seen, 5);
	assert_int_equal(cm_store_audit_get_hash(e->d, 0, 3, got), CM_OK);
	assert_int_equal(got[0], 3);

	for (i = 0; i < 2; i++) {
		memset(h, 0x40 + (int)i, sizeof(h));
		assert_int_equal(cm_store_audit_put_hash(e->d, 1, i, h), CM_OK);
	}
	assert_non_null(c = cm_store_audit_hash_cursor(e->d, 1));
	assert_int_equal(cm_store_audit_hash_next(c, &idx, got), CM_OK);
	assert_int_equal(idx, 0);
	assert_int_equal(got[0], 0x40);
	/* Another read between two steps of the cursor. */
	assert_int_equal(cm_store_audit_get_hash(e->d, 1, 1, h), CM_OK);
	assert_int_equal(cm_store_audit_hash_next(c, &idx, got), CM_OK);
	assert_int_equal(idx, 1);
	assert_memory_equal(got, h, 32);
	assert_int_equal(cm_store_audit_hash_next(c, &idx, got), CM_NOTFOUND);
	cm_store_audit_hash_cursor_free(c);

	memset(h, 0x77, sizeof(h));
	assert_int_equal(cm_store_audit_checkpoint_put(e->d, 2, h, "note two", 20), CM_OK);
	assert_int_equal(cm_store_audit_checkpoint_put(e->d, 5, h, "note five", 50), CM_OK);
	assert_int_equal(cm_store_audit_checkpoint_put(e->d, 5, h, "again", 51), CM_CONFLICT);
	assert_int_equal(cm_store_audit_checkpoint_latest(e->d, &cp), CM_OK);
	assert_int_equal(cp.cp_size, 5);
	assert_string_equal(cp.cp_note, "note five");
	assert_int_equal(cp.cp_signed_us, 50);
	free(cp.cp_note);
	assert_int_equal(cm_store_audit_checkpoint_covering(e->d, 3, &cp), CM_OK);
	assert_int_equal(cp.cp_size, 5);
	free(cp.cp_note);
	assert_int_equal(cm_store_audit_checkpoints(e->d, count_checkpoint, &last), CM_OK);
	assert_int_equal(last, 5);

	assert_int_equal(cm_store_audit_pseudonym(e->d, A, false, NULL, pseud, sizeof(pseud)),
	    CM_NOTFOUND);
	assert_int_equal(cm_store_audit_pseudonym(e->d, A, true, "psd_first", pseud,
	    sizeof(pseud)), CM_OK);
	assert_string_equal(pseud, "psd_first");
	assert_int_equal(cm_store_audit_pseudonym(e->d, A, true, "psd_second", pseud,
	    sizeof(pseud)), CM_OK);
	assert_string_equal(pseud, "psd_first");
	assert_int_equal(cm_store_audit_opening_put(e->d, 3, A, "sealed", 6), CM_OK);
	assert_int_equal(cm_store_audit_opening_get(e->d, 3, &buf, subject, sizeof(subject)),
	    CM_OK);
	assert_int_equal(buf.b_len, 6);
	assert_memory_equal(buf.b_data, "sealed", 6);
	assert_string_equal(subject, A);
	cm_buf_free(&buf);
	assert_int_equal(cm_store_audit_forget_subject(e->d, A), CM_OK);
	assert_int_equal(cm_store_audit_pseudonym(e->d, A, false, NULL, pseud, sizeof(pseud)),
	    CM_NOTFOUND);
	assert_int_equal(cm_store_audit_opening_get(e->d, 3, &buf, subject, sizeof(subject)),
	    CM_NOTFOUND);
	cm_buf_free(&buf);
	assert_int_equal(store_exec_once(e->d, "ROLLBACK"), CM_OK);
}

static int
list_dsr(void *arg, const struct cm_dsr_row *r)
{
	struct cm_buf *ids = arg;

	cm_buf_append(ids, r->r_id + 26, 4);
	cm_buf_append(ids, " ", 1);
	return 0;
}

static void
dsr(struct cm_db *d, char last, const char *status, int64_t due)
{
	struct cm_dsr_row r;

	memset(&r, 0, sizeof(r));
	snprintf(r.r_id, sizeof(r.r_id), "dsr_aaaaaaaaaaaaaaaaaaaaaaaaa%c", last);
	snprintf(r.r_type, sizeof(r.r_type), "access");
	snprintf(r.r_ident_type, sizeof(r.r_ident_type), "email");
	r.r_sealed = (const uint8_t *)"s";
	r.r_sealed_len = 1;
	snprintf(r.r_jurisdiction, sizeof(r.r_jurisdiction), "gdpr");
	snprintf(r.r_source, sizeof(r.r_source), "api");
	snprintf(r.r_status, sizeof(r.r_status), "%s", status);
	r.r_received_us = 1;
	r.r_due_us = due;
	r.r_updated_us = 1;
	assert_int_equal(cm_store_dsr_insert(d, &r), CM_OK);
}

/*
 * The statements rewritten for both engines, run: preferences and the
 * other rows written again in place, requests listed with and without
 * each filter and counted against their deadlines, a system found by the
 * event it takes.
 */
static void
test_rewritten_statements(void **state)
{
	struct engine *e = *state;
	static const char A[] = "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa";
	struct cm_prefs_row p = { .p_present = true }, got;
	struct cm_dsr_query dq;
	struct cm_system_row sys;
	struct cm_buf ids = { 0 };
	uint8_t wrapped[CM_WRAPPED_LEN];
	char topics[] = "{\"news\":true}";
	int64_t gen, open, soon, overdue, n;
	bool any;

	assert_int_equal(store_exec_once(e->d, h_ddl), CM_OK);
	assert_int_equal(store_exec_once(e->d, "BEGIN"), CM_OK);
	memset(wrapped, 7, sizeof(wrapped));
	assert_int_equal(cm_store_subject_insert(e->d, A, wrapped, 10), CM_OK);
	p.p_paused_until = 9;
	assert_int_equal(cm_store_prefs_put(e->d, A, &p, 1), CM_OK);
	p.p_paused_until = 0;
	p.p_topics = topics;
	assert_int_equal(cm_store_prefs_put(e->d, A, &p, 2), CM_OK);
	assert_int_equal(cm_store_prefs_get(e->d, A, &got), CM_OK);
	assert_int_equal(got.p_paused_until, 0);
	assert_string_equal(got.p_topics, topics);
	cm_prefs_row_clear(&got);
	assert_int_equal(cm_store_profile_put(e->d, A, "size", (const uint8_t *)"m", 1, 3), CM_OK);
	assert_int_equal(cm_store_profile_put(e->d, A, "size", (const uint8_t *)"l", 1, 4), CM_OK);
	assert_int_equal(cm_store_profile_count(e->d, A, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(cm_store_link_revoke(e->d, A, 5, &gen), CM_OK);
	assert_int_equal(cm_store_link_revoke(e->d, A, 6, &gen), CM_OK);
	assert_int_equal(gen, 2);

	dsr(e->d, 'a', "verified", 100);
	dsr(e->d, 'b', "in_progress", 200);
	dsr(e->d, 'c', "completed", 50);
	dsr(e->d, 'd', "verified", 300);
	memset(&dq, 0, sizeof(dq));
	dq.dq_limit = 10;
	assert_int_equal(cm_store_dsr_list(e->d, &dq, list_dsr, &ids), CM_OK);
	assert_string_equal(ids.b_data, "aaac aaaa aaab aaad ");
	ids.b_len = 0;
	dq.dq_status = "verified";
	assert_int_equal(cm_store_dsr_list(e->d, &dq, list_dsr, &ids), CM_OK);
	assert_string_equal(ids.b_data, "aaaa aaad ");
	ids.b_len = 0;
	dq.dq_status = NULL;
	dq.dq_overdue_at = 250;
	assert_int_equal(cm_store_dsr_list(e->d, &dq, list_dsr, &ids), CM_OK);
	assert_string_equal(ids.b_data, "aaaa aaab ");
	ids.b_len = 0;
	dq.dq_overdue_at = 0;
	dq.dq_after_due = 100;
	dq.dq_after_id = "dsr_aaaaaaaaaaaaaaaaaaaaaaaaaa";
	assert_int_equal(cm_store_dsr_list(e->d, &dq, list_dsr, &ids), CM_OK);
	assert_string_equal(ids.b_data, "aaab aaad ");
	cm_buf_free(&ids);
	assert_int_equal(cm_store_dsr_deadlines(e->d, 150, 250, &open, &soon, &overdue), CM_OK);
	assert_int_equal(open, 3);
	assert_int_equal(overdue, 1);
	assert_int_equal(soon, 1);

	memset(&sys, 0, sizeof(sys));
	snprintf(sys.s_name, sizeof(sys.s_name), "crm");
	snprintf(sys.s_url, sizeof(sys.s_url), "https://crm.example/hook");
	snprintf(sys.s_events, sizeof(sys.s_events), "[\"consent.changed\"]");
	sys.s_secret_len = 1;
	assert_int_equal(cm_store_system_insert(e->d, &sys), CM_OK);
	assert_int_equal(cm_store_systems_any(e->d, "\"consent.changed\"", &any), CM_OK);
	assert_true(any);
	assert_int_equal(cm_store_systems_any(e->d, "\"dsr.completed\"", &any), CM_OK);
	assert_false(any);
	assert_int_equal(store_exec_once(e->d, "ROLLBACK"), CM_OK);
	store_optouts_discard(e->d, 0);
}

static int64_t
applied(struct cm_db *d)
{
	static const char sql[] = "SELECT count(*) FROM schema_migrations";

	return count(d, sql);
}

static void
test_pg_migrations(void **state)
{
	struct engine *e = *state;
	const char *dir = getenv("CONSENTD_PG_MIGRATIONS"), *empty = getenv("CONSENTD_PG_EMPTY");
	struct cm_migration_set set, part;
	struct cm_migration more[64];
	struct cm_db *d;
	char err[1024];

	if (dir == NULL || empty == NULL)
		fail_msg("CONSENTD_PG_MIGRATIONS and CONSENTD_PG_EMPTY are not set");
	if (cm_migrations_load(dir, &set, err, sizeof(err)) != CM_OK)
		fail_msg("%s", err);
	assert_true(set.ms_count >= 16 && set.ms_count < 63);
	if (store_pg_connect(empty, &d, err, sizeof(err)) != CM_OK)
		fail_msg("%s", err);

	/* Refused before anything is written: pending, without leave to apply. */
	err[0] = '\0';
	assert_int_equal(store_migrate(d, &set, false, err, sizeof(err)), CM_CONFLICT);
	assert_non_null(strstr(err, "consentd migrate"));

	assert_int_equal(store_migrate(d, &set, true, err, sizeof(err)), CM_OK);
	assert_int_equal(applied(d), (int64_t)set.ms_count);
	assert_int_equal(store_migrate(d, &set, false, err, sizeof(err)), CM_OK);
	assert_int_equal(store_migrate(d, &set, true, err, sizeof(err)), CM_OK);
	assert_int_equal(applied(d), (int64_t)set.ms_count);

	/* A changed file, and a binary that knows fewer migrations. */
	memcpy(more, set.ms_list, set.ms_count * sizeof(more[0]));
	part.ms_list = more;
	part.ms_count = set.ms_count;
	more[2].m_sql = "SELECT 1";
	more[2].m_len = 8;
	assert_int_equal(store_migrate(d, &part, true, err, sizeof(err)), CM_CONFLICT);
	assert_non_null(strstr(err, "has changed since it was applied"));
	part.ms_list = set.ms_list;
	part.ms_count = set.ms_count - 1;
	assert_int_equal(store_migrate(d, &part, true, err, sizeof(err)), CM_CONFLICT);
	assert_non_null(strstr(err, "newer than this binary"));

	/* A failing migration leaves nothing of itself. */
	memcpy(more, set.ms_list, set.ms_count * sizeof(more[0]));
	more[set.ms_count].m_version = (int)set.ms_count + 1;
	more[set.ms_count].m_name = "9999_failing.sql";
	more[set.ms_count].m_sql = "CREATE TABLE engines_half (x bigint); SELECT no_such_function();";
	more[set.ms_count].m_len = strlen(more[set.ms_count].m_sql);
	part.ms_list = more;
	part.ms_count = set.ms_count + 1;
	assert_int_equal(store_migrate(d, &part, true, err, sizeof(err)), CM_IOERR);
	assert_non_null(strstr(err, "9999_failing.sql failed: ERROR:"));
	assert_false(store_in_tx(d));
	assert_int_equal(applied(d), (int64_t)set.ms_count);
	assert_int_equal(store_exec_once(d, "SELECT x FROM engines_half"), CM_IOERR);

	store_pg_close(d);
	cm_migrations_free(&set);
	(void)e;
}

#define SQLITE_ONLY	5	/* statements named sqlite_* */

static void
test_every_statement_prepares(void **state)
{
	struct engine *e = *state;
	const char *file = getenv("CONSENTD_PG_STATEMENTS");
	json_error_t je;
	json_t *list, *st;
	const char *name, *sql, *where;
	char why[512];
	size_t i, prepared = 0, sqlite_only = 0, bad = 0;

	if (file == NULL)
		fail_msg("CONSENTD_PG_STATEMENTS is not set: run through tests/pg/engines.test.mjs");
	if ((list = json_load_file(file, 0, &je)) == NULL)
		fail_msg("%s: %s", file, je.text);
	json_array_foreach(list, i, st) {
		if (json_unpack(st, "{s:s, s:s, s:s}", "file", &where, "name", &name,
		    "sql", &sql) != 0)
			fail_msg("%s: entry %zu is not {file, name, sql}", file, i);
		if (strncmp(name, "sqlite_", 7) == 0) {
			sqlite_only++;
			continue;
		}
		if (store_pg_prepare_check(e->d, sql, why, sizeof(why)) != CM_OK) {
			print_message("%s: %s: %s\n", where, name, why);
			bad++;
		}
		prepared++;
	}
	json_decref(list);
	assert_int_equal(bad, 0);
	assert_int_equal(sqlite_only, SQLITE_ONLY);
	assert_true(prepared >= 150);
	print_message("%zu statements prepared on PostgreSQL, %zu SQLite's own\n", prepared,
	    sqlite_only);
}

#define ON_BOTH(t) \
	cmocka_unit_test_setup_teardown(t, open_sqlite, close_engine), \
	cmocka_unit_test_setup_teardown(t, open_pg, close_engine)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		ON_BOTH(test_letters),
		ON_BOTH(test_rows),
		ON_BOTH(test_conflicts_and_upserts),
		ON_BOTH(test_failed_statement_in_transaction),
		ON_BOTH(test_store_functions),
		ON_BOTH(test_consent_path),
		ON_BOTH(test_audit_tables),
		ON_BOTH(test_rewritten_statements),
		cmocka_unit_test_setup_teardown(test_every_statement_prepares, open_pg,
		    close_engine),
		cmocka_unit_test_setup_teardown(test_pg_migrations, open_pg, close_engine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
