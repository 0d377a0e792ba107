/* SPDX-License-Identifier: ISC */
/*
 * Internals shared by the files of src/store/: the connection structure,
 * the prepared-statement cache, and the one way statements are bound, run
 * and read. Nothing outside src/store/ includes this header except the
 * store's unit test.
 *
 * The files of src/store/ are of three kinds. The SQLite engine (exec.c,
 * store.c, backup.c, rotate.c) includes store_sqlite.h and with it
 * <sqlite3.h>: it opens and keys connections, runs and reads statements
 * and maps SQLite's result codes. The PostgreSQL engine (exec_pg.c) runs
 * the same statements through libpq when a connection's db_pg is set;
 * exec.c hands them to it. Every other file is the store's SQL: it runs
 * its statements through store_exec() and store_query() and reads columns
 * with store_col_*(), and names no engine's function or type
 * (tools/check-layers.sh holds the headers to their engines; tests/pg/
 * runs the SQL on both). A statement only one engine can run is named
 * for it: sqlite_* or pg_*.
 */
#ifndef CONSENTD_STORE_INT_H
#define CONSENTD_STORE_INT_H

#include <stdarg.h>

#include "consentd/crypto.h"
#include "consentd/store.h"

/* The SQLite engine's own types, opaque to the store's SQL. */
struct sqlite3;
struct sqlite3_stmt;
/* The PostgreSQL engine's (exec_pg.c): a connection, libpq's result. */
struct store_pg;
struct pg_result;

/*
 * Prepared statements kept per connection, keyed by the address of their
 * static SQL text (about 100 distinct texts today): room for twice that,
 * so the open-addressed table stays sparse as tables are added.
 */
#define STMT_CACHE_SLOTS	256

/* The first slot of a statement cache to try for SQL (by its address). */
unsigned	 store_stmt_hash(const char *sql);

struct stmt_slot {
	const char	*ss_sql;	/* key: the address of a static SQL string */
	struct sqlite3_stmt *ss_stmt;
};

/*
 * A token row this connection read, and the token table's generation read
 * just before it: while the generation is unchanged, so is the row.
 */
#define TOKEN_CACHE_SLOTS	8
struct token_cached {
	char			 tc_selector[CM_TOKEN_SELECTOR_LEN + 1];	/* "": empty */
	int64_t			 tc_gen;
	struct cm_token_row	 tc_row;
};

struct cm_db {
	struct sqlite3		*db_conn;
	struct store_pg		*db_pg;		/* not NULL: a PostgreSQL connection */
	struct cm_store		*db_store;
	struct stmt_slot	 db_stmts[STMT_CACHE_SLOTS];
	bool			 db_reading;	/* in a read transaction we began */
	unsigned		 db_read_depth;	/* nesting of cm_db_read_begin */
	bool			 db_writing;	/* holds the store's writer mutex */
	struct store_erased	*db_erased;	/* erasures of the open transaction */
	size_t			 db_nerased, db_caperased;
	size_t			 db_sp_erased;	/* db_nerased at SAVEPOINT job */
	uint64_t		 db_statements;	/* run since the last harvest */
	uint64_t		 db_checks_row;	/* checks from a decision row, since then */
	uint64_t		 db_checks_tables;	/* checks from the tables, since then */
	char			**db_optouts;	/* opt-out lines of the open transaction */
	size_t			 db_noptouts, db_capoptouts;
	size_t			 db_sp_optouts;	/* db_noptouts at SAVEPOINT job */
	struct token_cached	 db_tokens[TOKEN_CACHE_SLOTS];
	unsigned		 db_tokens_next;	/* the slot to fill next */
	bool			 db_no_decisions;	/* checks read the tables only */
	struct cm_db		*db_next;	/* the store's list of connections */
	struct cm_db		*db_prev;
};

/*
 * Adds what D's connection has cost since the last call to its store's
 * totals, and TXNS (1 as a transaction ends, 0 when it closes) to its count.
 */
void		 store_cost_harvest(struct cm_db *d, unsigned txns);
/*
 * Reads identifier (TYPE, BLIND)'s decision row into K for PURPOSE and
 * CHANNEL (decisions.c): CM_NOTFOUND when there is none, it cannot be
 * read, or D does not use them.
 */
cm_result	 store_decision_read(struct cm_db *d, const char *type,
		    const uint8_t blind[32], const char *purpose, const char *channel,
		    struct cm_check_row *k);
/*
 * What the schema's triggers do for the other tables, for identifiers
 * (decisions.c): drop the decision row of identifier (TYPE, BLIND); drop
 * SUBJECT's rows (those of the identifiers it holds now) and note it for a
 * rebuild. Each runs only while *RC is CM_OK, and leaves its failure there.
 */
void		 store_decisions_forget_ident(struct cm_db *d, const char *type,
		    const uint8_t blind[32], cm_result *rc);
void		 store_decisions_forget_subject(struct cm_db *d, const char *subject,
		    cm_result *rc);
/*
 * Subjects whose facts this transaction changed get their decision rows
 * back just before it commits: at most this many notes per commit (a
 * subject written twice is noted twice and rebuilt once; a store left
 * with more by a migration or another tool is drained by the upgrade step).
 */
#define DECISIONS_PER_COMMIT	1024

/* Wipes D's kept token rows (tokens.c), as its connection closes. */
void		 store_tokens_forget(struct cm_db *d);

/*
 * A MAC-chained line file in the data directory (chain.c): the erasure and
 * opt-out ledgers. Lines are "TAG TEXT MAC".
 */
struct store_chain {
	const char	*sc_name;	/* the file's name in the data directory */
	const char	*sc_tag;	/* the first field of every line */
};
/* Called with each line's TEXT: 0 goes on, > 0 stops, < 0 not understood. */
typedef int	(*store_chain_fn)(void *arg, const char *text);
/*
 * Checks every whole line of C's file in DIR under KEY, calling FN with
 * each; a missing file has none. CM_AUTH (with ERR naming file and line)
 * when a line is malformed, does not verify, or FN does not understand it.
 */
cm_result	 store_chain_read(const char *dir, const struct store_chain *c,
		    const uint8_t key[32], store_chain_fn fn, void *arg, char *err,
		    size_t errlen);
/* Appends the N TEXTS (no spaces at their ends, no newlines) to C's file, synced. */
cm_result	 store_chain_append(const char *dir, const struct store_chain *c,
		    const uint8_t key[32], char *const *texts, size_t n);

/* The store's SQLCipher key literal (borrowed) and busy timeout, for backup.c. */
const char	*store_keylit(const struct cm_store *);
int		 store_busy_ms(const struct cm_store *);

/* The erasure ledger's MAC key of the store (borrowed), for erasures.c. */
const uint8_t	*store_ledger_key_of(const struct cm_store *);

/*
 * ---- the erasure ledger (erasures.c) ------------------------------------
 * cm_store_subject_erase() notes each erased subject on its connection;
 * cm_db_commit() appends the notes to the ledger once COMMIT succeeded;
 * a rollback (of the transaction, or to the savepoint) discards them.
 */
struct store_erased;
void		 store_ledger_key(const struct cm_keys *, uint8_t out[32]);
void		 store_erasures_note(struct cm_db *, const char *subject, int64_t at);
void		 store_erasures_committed(struct cm_db *);
/* Keeps only the first KEEP notes. */
void		 store_erasures_discard(struct cm_db *, size_t keep);
void		 store_erasures_free(struct cm_db *);

/*
 * ---- the opt-out ledger (optouts.c) -------------------------------------
 * The writes of a "no" note it on their connection; cm_db_commit() appends
 * the notes once COMMIT succeeded; a rollback discards them.
 */
void		 store_optouts_note(struct cm_db *, const struct cm_optout *);
/* Notes event E when its state is not granted. */
void		 store_optouts_note_event(struct cm_db *, const struct cm_event_row *e);
/* Notes an objection or a restriction of SUBJECT at AT. */
void		 store_optouts_note_subject(struct cm_db *, enum cm_optout_kind,
		    const char *subject, int64_t at);
void		 store_optouts_committed(struct cm_db *);
/* Keeps only the first KEEP notes. */
void		 store_optouts_discard(struct cm_db *, size_t keep);
void		 store_optouts_free(struct cm_db *);

/*
 * ---- running a statement: its SQL and its parameters --------------------
 *
 * SQL is a string with static storage: its address keys the connection's
 * statement cache. FMT has one letter for each parameter of SQL (?1, ?2, …
 * in order), and the values follow FMT as printf's follow its format:
 *
 *	t  const char *			text up to its NUL
 *	T  const char *, size_t		text of that many bytes
 *	b  const uint8_t *		32 bytes: a blind index, a hash
 *	B  const void *, size_t		a blob of that many bytes
 *	i  int64_t			an integer
 *	I  int64_t			an integer; 0 binds NULL
 *
 * A NULL pointer binds NULL. Integers are read as int64_t and sizes as
 * size_t, whatever was passed: cast bools, ints, unsigned values and
 * constants (`(int64_t)e->e_sale_ref`, `(size_t)CM_WRAPPED_LEN`). Values
 * are bound without a copy and must stay valid until the call returns (for
 * a query, until store_done()). A letter outside the table, or a number of
 * letters that is not the statement's number of parameters, runs nothing
 * and gives CM_IOERR.
 *
 * Failures are logged under the caller's function name with SQLite's error
 * text, never with a bound value (they can be blind indexes of personal
 * identifiers). A constraint violation is not logged: it is an answer,
 * CM_CONFLICT, that callers map. The macros pass the caller's __func__.
 */

/*
 * Runs SQL to completion (INSERT, UPDATE, DELETE, transaction control) on
 * the cached statement and resets it. When CHANGES is not NULL and the
 * statement ran, *CHANGES is the number of rows it changed. A statement
 * that returns a row is a query: CM_IOERR here, read it with store_query().
 */
cm_result	 store_exec_at(struct cm_db *, const char *func, int64_t *changes,
		    const char *sql, const char *fmt, ...);
#define store_exec(d, sql, ...) \
	store_exec_at((d), __func__, NULL, (sql), __VA_ARGS__)
#define store_exec_changes(d, changes, sql, ...) \
	store_exec_at((d), __func__, (changes), (sql), __VA_ARGS__)

/*
 * An update, else an insert: runs SQL_UPD and, when it changed no row,
 * SQL_INS, both with FMT's values; the two number their parameters alike
 * (?1, ?2, …) and each uses every one. Not INSERT OR REPLACE, which
 * deletes the row it replaces (SQLite keeps a statement journal for that,
 * which SQLCipher encrypts page by page) and which other engines do not
 * have. Run it inside a write transaction, where no other writer can come
 * between the two.
 */
cm_result	 store_upsert_at(struct cm_db *, const char *func, const char *sql_upd,
		    const char *sql_ins, const char *fmt, ...);
#define store_upsert(d, sql_upd, sql_ins, ...) \
	store_upsert_at((d), __func__, (sql_upd), (sql_ins), __VA_ARGS__)

/*
 * A query being read, from store_query() or store_row() to store_done().
 * It runs on the cached statement, or on one of its own when a caller
 * further up is still reading the cached one (a callback that lists
 * again), so readers nest.
 */
struct store_query {
	struct cm_db	*q_db;
	struct sqlite3_stmt *q_stmt;	/* the engine's; read with store_col_*() */
	struct pg_result *q_pg;		/* PostgreSQL's whole result, */
	int		 q_row;		/* and the row being read */
	char		 q_num[24];	/* an integer column read as text */
	const char	*q_func;	/* the caller, for the log */
	bool		 q_own;		/* q_stmt is private: finalised at the end */
	bool		 q_ahead;	/* a row stepped to, not yet given out */
	bool		 q_end;		/* no more rows; a cached q_stmt needs no reset */
	cm_result	 q_rc;		/* CM_OK, or the failure */
};

/*
 * Starts Q: binds FMT's values to SQL and steps to the first row. A
 * failure is kept in Q: store_next() then gives false and store_done()
 * returns it. End Q with store_done() on every path.
 */
void		 store_query_at(struct store_query *q, struct cm_db *, const char *func,
		    const char *sql, const char *fmt, ...);
#define store_query(q, d, sql, ...) \
	store_query_at((q), (d), __func__, (sql), __VA_ARGS__)

/*
 * store_query() for one row: CM_OK with the row ready in q_stmt,
 * CM_NOTFOUND when there is none, or the failure. End Q with store_done()
 * whatever it returns.
 */
cm_result	 store_row_at(struct store_query *q, struct cm_db *, const char *func,
		    const char *sql, const char *fmt, ...);
#define store_row(q, d, sql, ...) \
	store_row_at((q), (d), __func__, (sql), __VA_ARGS__)

/*
 * store_query() on a statement of Q's own rather than the cached one, for
 * a cursor that outlives its caller's call, interleaved with other reads.
 */
void		 store_query_own_at(struct store_query *q, struct cm_db *,
		    const char *func, const char *sql, const char *fmt, ...);
#define store_query_own(q, d, sql, ...) \
	store_query_own_at((q), (d), __func__, (sql), __VA_ARGS__)

/* Whether Q has another row; if so it is ready to be read. */
bool		 store_next(struct store_query *q);

/*
 * Gives Q's statement back (reset, or finalised when private) and returns
 * CM_OK or Q's failure. Reading may stop before the last row.
 */
cm_result	 store_done(struct store_query *q);

/*
 * Column COL of Q's current row (the first is 0). An integer column that
 * is NULL reads 0; text and blobs read NULL when the column is NULL, and
 * their pointers hold until Q moves on or ends. store_col_bytes() is the
 * length of the text or blob.
 */
int64_t		 store_col_int64(const struct store_query *q, int col);
int		 store_col_int(const struct store_query *q, int col);
const char	*store_col_text(const struct store_query *q, int col);
const void	*store_col_blob(const struct store_query *q, int col);
size_t		 store_col_bytes(const struct store_query *q, int col);
bool		 store_col_null(const struct store_query *q, int col);
/* Whether column COL holds a blob (not text, a number or NULL). */
bool		 store_col_is_blob(const struct store_query *q, int col);

/* Copies text column COL of Q into DST (size N), "" for NULL, truncating. */
void		 store_column_text(char *dst, size_t n, const struct store_query *q, int col);

/*
 * Copies blob column COL of Q into DST when it holds exactly N bytes, and
 * says whether it did; DST is left alone otherwise.
 */
bool		 store_column_blob(void *dst, size_t n, const struct store_query *q, int col);

/*
 * The engine's text for D's last failure, its first line: for messages
 * about the schema (a migration), never about a row.
 */
const char	*store_errmsg(struct cm_db *d);

/*
 * Whether D's database has table NAME (in its schema, on PostgreSQL):
 * *EXISTS, or the failure (migrate.c; the engines keep their catalogues
 * apart).
 */
cm_result	 store_table_exists(struct cm_db *d, const char *name, bool *exists);

/* Applies SET's pending migrations to D's database (migrate.c). */
cm_result	 store_migrate(struct cm_db *, const struct cm_migration_set *, bool apply,
		    char *err, size_t errlen);

/* The rowid of the row D's last INSERT made. */
int64_t		 store_last_rowid(struct cm_db *d);

/* Whether D's connection is inside a transaction, whoever began it. */
bool		 store_in_tx(struct cm_db *d);

/*
 * Runs SQL, a statement that must not be cached (DDL that drops what a
 * cached statement would refer to), once: CM_OK or the failure, logged
 * under FUNC.
 */
cm_result	 store_exec_once_at(struct cm_db *d, const char *func, const char *sql);
#define store_exec_once(d, sql) store_exec_once_at((d), __func__, (sql))

/*
 * ---- the PostgreSQL engine (exec_pg.c) ----------------------------------
 * The executor above runs on a PostgreSQL connection through these when
 * D's db_pg is set. store_pg_connect() makes such a D from a libpq
 * connection string; store.c makes it a connection of a store.
 */
cm_result	 store_pg_connect(const char *conninfo, struct cm_db **out, char *err,
		    size_t errlen);
void		 store_pg_close(struct cm_db *);
cm_result	 store_pg_exec(struct cm_db *, const char *func, int64_t *changes,
		    const char *sql, const char *fmt, va_list ap);
/* Runs SQL for Q, whose q_db and q_func are set. */
void		 store_pg_query(struct store_query *q, const char *sql, const char *fmt,
		    va_list ap);
bool		 store_pg_next(struct store_query *);
cm_result	 store_pg_done(struct store_query *);
int64_t		 store_pg_col_int64(const struct store_query *, int col);
const char	*store_pg_col_text(const struct store_query *, int col);
const void	*store_pg_col_blob(const struct store_query *, int col);
size_t		 store_pg_col_bytes(const struct store_query *, int col);
bool		 store_pg_col_null(const struct store_query *, int col);
bool		 store_pg_col_is_blob(const struct store_query *, int col);
int64_t		 store_pg_last_rowid(struct cm_db *);
bool		 store_pg_in_tx(struct cm_db *);
cm_result	 store_pg_exec_once(struct cm_db *, const char *func, const char *sql);
const char	*store_pg_errmsg(struct cm_db *);
/* Rows D's statements have written since it connected. */
int64_t		 store_pg_changes(struct cm_db *);
/*
 * Commits D's transaction: CM_OK only when PostgreSQL answered COMMIT; a
 * lost connection leaves the outcome unknown (CM_IOERR).
 */
cm_result	 store_pg_commit(struct cm_db *);
/* Whether D's connection is up and ready for a statement. */
bool		 store_pg_alive(struct cm_db *);
/*
 * D's session lost (a restart, a failover): a new one, to whichever host
 * the connection string finds now, set up as the first was. Between
 * transactions only.
 */
cm_result	 store_pg_revive(struct cm_db *);
/*
 * Gives D a new session to CONNINFO in place of its lost one (whose
 * prepared statements went with it); the caller sets the session up.
 */
cm_result	 store_pg_reconnect(struct cm_db *, const char *conninfo);
/* Notes that D's write transaction has begun: see store_pg_commit(). */
void		 store_pg_write_began(struct cm_db *);
/*
 * The advisory lock every write transaction and every migration takes on
 * PostgreSQL, whichever node runs it: one writer at a time, so the audit
 * log and the change feed have one order.
 */
#define STORE_PG_WRITE_LOCK	"7365726"	/* also in migrations-pg/0017 */
/* The name of a master-key rotation's prepared transaction, before the new key's id. */
#define STORE_PG_REKEY_GID	"consentd-rekey-"
/* A PostgreSQL store's keys check: "v2:" and 64 hex digits, and a NUL. */
#define STORE_KEY_CHECK_LEN	(3 + 64 + 1)
/*
 * Inside a write transaction: records the keys check of KEYS (version 2,
 * naming the master key), as a master-key rotation does.
 */
cm_result	 store_key_check_set(struct cm_db *, const struct cm_keys *);

/* A PostgreSQL write transaction's start: BEGIN, then that lock. */
#define STORE_PG_BEGIN_WRITE	"BEGIN; SELECT pg_advisory_xact_lock(" STORE_PG_WRITE_LOCK ")"

/*
 * Whether SQL, rewritten as the engine runs it, prepares on D's database
 * (its parameters' types inferred): CM_OK, or CM_INVALID with
 * PostgreSQL's reason in WHY. For the tests of the store's SQL; the
 * reason may quote the statement, never a value.
 */
cm_result	 store_pg_prepare_check(struct cm_db *, const char *sql, char *why,
		    size_t whylen);

#endif
