/* SPDX-License-Identifier: ISC */
/*
 * The PostgreSQL engine's executor: the store's SQL, written once for both
 * engines, run through libpq. Each statement is rewritten on first use
 * (SQLite's ?N and ? to $N; INSERT OR FAIL and UPDATE OR FAIL, which
 * differ from a plain statement only in SQLite, to the plain statement),
 * prepared under a name of the connection's cache slot with its
 * parameters' types from the format letters, and run with binary
 * parameters and results. Errors map to cm_result as SQLite's do: an
 * integrity violation (class 23) is CM_CONFLICT and not logged, a
 * serialisation failure or deadlock CM_BUSY; the log names the function
 * and the SQLSTATE, never a message text, which can quote a value.
 *
 * Inside a transaction a failed statement would end PostgreSQL's whole
 * transaction, where SQLite's goes on: a one-row INSERT runs as INSERT …
 * ON CONFLICT DO NOTHING (no row: CM_CONFLICT), every other write in a
 * savepoint of its own, sent with it as one pipeline. A failure without a
 * SQLSTATE marks the session lost; store.c replaces it between
 * transactions. store.c opens the sessions, one a thread, and takes the
 * write lock (an advisory lock); migrate.c applies migrations-pg/
 * through this executor. A query's result is read whole, not a row at a
 * time.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "consentd/util.h"
#include "store_int.h"

/* Type OIDs of the built-in types (pg_type.dat; fixed since 7.x). */
#define OID_BOOL	16
#define OID_BYTEA	17
#define OID_INT8	20
#define OID_INT2	21
#define OID_INT4	23
#define OID_TEXT	25

#define PG_PARAMS_MAX	32
#define PG_SQL_MAX	8192
/* What a one-row INSERT gains on PostgreSQL: see pg_row_insert(). */
#define PG_ON_CONFLICT	" ON CONFLICT DO NOTHING"

struct pg_slot {
	const char	*ps_sql;	/* key: the address of a static SQL string */
	int		 ps_nparams;
	bool		 ps_row_insert;	/* one row's INSERT: see pg_row_insert() */
};

struct store_pg {
	PGconn		*pg_conn;
	struct pg_slot	 pg_slots[STMT_CACHE_SLOTS];
	char		 pg_errmsg[256];	/* store_pg_errmsg()'s */
	int64_t		 pg_changes;	/* rows written by the statements run */
	bool		 pg_lost;	/* a failure of the connection was seen */
	bool		 pg_warned;	/* a WARNING came since it was last cleared */
	int64_t		 pg_began;	/* pg_changes when the write transaction began */
};

/*
 * Notices are never printed (one can quote a value). A WARNING is noted:
 * the one COMMIT can raise is "canceling wait for synchronous
 * replication", a commit made on the primary alone, which a failover can
 * lose. Its text is translated, its SQLSTATE the generic 01000, so the
 * severity is what is tested, in its untranslated form.
 */
static void
pg_notice(void *arg, const PGresult *res)
{
	struct store_pg *pg = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (sev != NULL && strcmp(sev, "WARNING") == 0)
		pg->pg_warned = true;
}

static cm_result
pg_rc(const PGresult *res, struct store_pg *pg)
{
	const char *state;

	/*
	 * No result, or one without a SQLSTATE: libpq's own failure, the
	 * connection's (which libpq has not always marked bad yet, as after a
	 * PQexec of several statements). The session is taken for lost.
	 */
	if (res == NULL || PQstatus(pg->pg_conn) != CONNECTION_OK ||
	    (state = PQresultErrorField(res, PG_DIAG_SQLSTATE)) == NULL) {
		pg->pg_lost = true;
		return CM_IOERR;
	}
	if (strncmp(state, "23", 2) == 0)
		return CM_CONFLICT;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0)
		return CM_BUSY;
	if (strcmp(state, "53200") == 0)
		return CM_NOMEM;
	return CM_IOERR;
}

static void
pg_log(const char *func, const PGresult *res, const char *what)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char esc[16];

	cm_log(CM_LOG_ERROR, "store_error", ",\"func\":\"%s\",\"engine\":\"postgresql\","
	    "\"sqlstate\":\"%s\",\"msg\":\"%s\"", func,
	    cm_json_escape(esc, sizeof(esc), state != NULL ? state : ""), what);
}

/*
 * Writes SQL as PostgreSQL takes it into OUT: ?N becomes $N, a bare ? the
 * number after the largest given so far (SQLite's rule), and the OR FAIL
 * of an INSERT or UPDATE goes. Quoted text is copied as it is. Returns the
 * number of parameters, or -1 when OUT is too small.
 */
static int
pg_rewrite(const char *sql, char *out, size_t outlen)
{
	static const char *const drop[] = { "INSERT OR FAIL ", "UPDATE OR FAIL ", NULL };
	size_t o = 0, k;
	int max = 0, n;
	char quote = 0;
	const char *p = sql;

	while (*p != '\0') {
		if (quote == 0 && (p == sql || p[-1] == ' ' || p[-1] == '\n')) {
			for (k = 0; drop[k] != NULL; k++)
				if (strncmp(p, drop[k], strlen(drop[k])) == 0)
					break;
			if (drop[k] != NULL) {
				/* "INSERT " or "UPDATE " */
				if (o + 7 >= outlen)
					return -1;
				memcpy(out + o, p, 7);
				o += 7;
				p += strlen(drop[k]);
				continue;
			}
		}
		if (quote != 0) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '?') {
			p++;
			if (*p >= '0' && *p <= '9') {
				for (n = 0; *p >= '0' && *p <= '9'; p++)
					n = n * 10 + (*p - '0');
			} else
				n = max + 1;
			if (n > max)
				max = n;
			k = (size_t)snprintf(out + o, outlen - o, "$%d", n);
			if (k >= outlen - o)
				return -1;
			o += k;
			continue;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = *p++;
	}
	out[o] = '\0';
	return max;
}

/*
 * Whether SQL inserts one row of VALUES. Such an INSERT runs as INSERT …
 * ON CONFLICT DO NOTHING, without a savepoint: a row that is already there
 * (SQLite's constraint failure, which the store's SQL takes as an answer)
 * is then no row inserted, which the executor answers as CM_CONFLICT, and
 * the transaction goes on. A savepoint for each (a subtransaction) cost a
 * round trip, and PostgreSQL slows down for every session once one
 * transaction holds more than 64 of them.
 */
static bool
pg_row_insert(const char *sql)
{
	return strncmp(sql, "INSERT ", 7) == 0 && strstr(sql, " VALUES (") != NULL &&
	    strstr(sql, "SELECT") == NULL && strstr(sql, "), (") == NULL &&
	    strstr(sql, "),(") == NULL && strstr(sql, "ON CONFLICT") == NULL;
}

static Oid
pg_type_of(char letter)
{
	switch (letter) {
	case 't':
	case 'T':
		return OID_TEXT;
	case 'b':
	case 'B':
		return OID_BYTEA;
	default:
		return OID_INT8;
	}
}

/*
 * The name SQL is prepared under on D's connection, prepared on first use
 * with FMT's types. NULL, logged under FUNC, when it cannot be.
 */
static const char *
pg_prepared(struct cm_db *d, const char *func, const char *sql, const char *fmt,
    char name[16], bool *row_insert)
{
	struct store_pg *pg = d->db_pg;
	struct pg_slot *s;
	Oid types[PG_PARAMS_MAX];
	char text[PG_SQL_MAX];
	PGresult *res;
	size_t i, nfmt = strlen(fmt);
	unsigned slot = store_stmt_hash(sql);
	int n;

	for (i = 0; i < STMT_CACHE_SLOTS; i++) {
		s = &pg->pg_slots[(slot + i) % STMT_CACHE_SLOTS];
		if (s->ps_sql == sql || s->ps_sql == NULL)
			break;
	}
	if (i == STMT_CACHE_SLOTS) {
		pg_log(func, NULL, "statement cache full");
		return NULL;
	}
	snprintf(name, 16, "cm%u", (slot + (unsigned)i) % STMT_CACHE_SLOTS);
	if (s->ps_sql == sql) {
		if ((size_t)s->ps_nparams != nfmt)
			goto misfit;
		*row_insert = s->ps_row_insert;
		return name;
	}
	if ((n = pg_rewrite(sql, text, sizeof(text) - sizeof(PG_ON_CONFLICT))) < 0) {
		pg_log(func, NULL, "statement too long");
		return NULL;
	}
	if (pg_row_insert(sql))
		strcat(text, PG_ON_CONFLICT);
	if ((size_t)n != nfmt || nfmt > PG_PARAMS_MAX)
		goto misfit;
	for (i = 0; i < nfmt; i++)
		types[i] = pg_type_of(fmt[i]);
	res = PQprepare(pg->pg_conn, name, text, n, types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		(void)pg_rc(res, pg);	/* marks a lost connection */
		pg_log(func, res, "prepare failed");
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	s->ps_sql = sql;
	s->ps_nparams = n;
	s->ps_row_insert = *row_insert = pg_row_insert(sql);
	return name;
misfit:
	pg_log(func, NULL, "parameter format does not fit the statement");
	return NULL;
}

/* A statement ready to send: its prepared name and binary parameters. */
struct pg_call {
	char		 name[16];
	bool		 row_insert;	/* pg_row_insert() */
	int		 n;
	const char	*values[PG_PARAMS_MAX];
	int		 lengths[PG_PARAMS_MAX], formats[PG_PARAMS_MAX];
	uint8_t		 ints[PG_PARAMS_MAX][8];
};

/* Prepares SQL when it is not yet and binds FMT's values AP into C: 0 or -1. */
static int
pg_bind(struct cm_db *d, const char *func, const char *sql, const char *fmt, va_list ap,
    struct pg_call *c)
{
	const char *p;
	int64_t v;
	uint64_t u;
	size_t i, n;
	int j;

	if (pg_prepared(d, func, sql, fmt, c->name, &c->row_insert) == NULL)
		return -1;
	for (i = 0; fmt[i] != '\0'; i++) {
		c->formats[i] = 1;
		switch (fmt[i]) {
		case 't':
			p = va_arg(ap, const char *);
			c->values[i] = p;
			c->lengths[i] = p != NULL ? (int)strlen(p) : 0;
			break;
		case 'T':
			p = va_arg(ap, const char *);
			n = va_arg(ap, size_t);
			c->values[i] = p;
			c->lengths[i] = (int)n;
			break;
		case 'b':
			c->values[i] = (const char *)va_arg(ap, const uint8_t *);
			c->lengths[i] = 32;
			break;
		case 'B':
			c->values[i] = va_arg(ap, const void *);
			c->lengths[i] = (int)va_arg(ap, size_t);
			break;
		default:	/* 'i', 'I': checked when prepared */
			v = va_arg(ap, int64_t);
			if (fmt[i] == 'I' && v == 0) {
				c->values[i] = NULL;
				c->lengths[i] = 0;
				break;
			}
			u = (uint64_t)v;
			for (j = 7; j >= 0; j--, u >>= 8)
				c->ints[i][j] = (uint8_t)u;
			c->values[i] = (const char *)c->ints[i];
			c->lengths[i] = 8;
			break;
		}
	}
	c->n = (int)i;
	d->db_statements++;
	return 0;
}

/* Runs SQL with FMT's values AP; the result, or NULL when nothing ran. */
static PGresult *
pg_run(struct cm_db *d, const char *func, const char *sql, const char *fmt, va_list ap)
{
	struct pg_call c;

	if (pg_bind(d, func, sql, fmt, ap, &c) != 0)
		return NULL;
	return PQexecPrepared(d->db_pg->pg_conn, c.name, c.n, c.values, c.lengths, c.formats, 1);
}

/*
 * Runs C inside a savepoint of its own, in one round trip: SAVEPOINT, the
 * statement and RELEASE sent as a pipeline. The statement's result, or
 * NULL when the connection failed. When the statement failed, the server
 * skipped the RELEASE and the transaction waits for ROLLBACK TO SAVEPOINT.
 */
static PGresult *
pg_run_in_savepoint(struct cm_db *d, const struct pg_call *c)
{
	PGconn *conn = d->db_pg->pg_conn;
	PGresult *res, *stmt = NULL;
	int i;
	bool ok;

	if (PQenterPipelineMode(conn) != 1)
		return NULL;
	ok = PQsendQueryParams(conn, "SAVEPOINT cm_stmt", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
	    PQsendQueryPrepared(conn, c->name, c->n, c->values, c->lengths, c->formats, 1) == 1 &&
	    PQsendQueryParams(conn, "RELEASE SAVEPOINT cm_stmt", 0, NULL, NULL, NULL, NULL,
	    0) == 1 && PQpipelineSync(conn) == 1;
	/* Each command's results end with NULL; the sync's is PIPELINE_SYNC. */
	for (i = 0; ok && i < 3; i++) {
		while ((res = PQgetResult(conn)) != NULL) {
			if (i == 1 && stmt == NULL)
				stmt = res;
			else
				PQclear(res);
		}
	}
	while (ok && (res = PQgetResult(conn)) != NULL) {
		ExecStatusType t = PQresultStatus(res);

		PQclear(res);
		if (t == PGRES_PIPELINE_SYNC)
			break;
	}
	if (PQexitPipelineMode(conn) != 1 || !ok) {
		PQclear(stmt);
		return NULL;
	}
	return stmt;
}

/* Runs transaction control TEXT (no parameters); whether it succeeded. */
static bool
pg_control(struct cm_db *d, const char *text)
{
	PGresult *res = PQexec(d->db_pg->pg_conn, text);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok;
}

cm_result
store_pg_exec(struct cm_db *d, const char *func, int64_t *changes, const char *sql,
    const char *fmt, va_list ap)
{
	struct pg_call c;
	PGresult *res;
	cm_result rc = CM_OK;
	bool sp, failed = false;

	/*
	 * A failed statement ends PostgreSQL's transaction, where SQLite's
	 * goes on without the statement: the store's SQL counts on the
	 * latter (a conflict is an answer its caller acts on in the same
	 * transaction), so inside one each write runs in a savepoint of its
	 * own, rolled back alone when it fails.
	 */
	if (pg_bind(d, func, sql, fmt, ap, &c) != 0)
		return CM_IOERR;
	sp = store_pg_in_tx(d) && !c.row_insert && strncmp(sql, "BEGIN", 5) != 0 &&
	    strncmp(sql, "COMMIT", 6) != 0 && strncmp(sql, "ROLLBACK", 8) != 0 &&
	    strncmp(sql, "SAVEPOINT", 9) != 0 && strncmp(sql, "RELEASE", 7) != 0;
	res = sp ? pg_run_in_savepoint(d, &c) :
	    PQexecPrepared(d->db_pg->pg_conn, c.name, c.n, c.values, c.lengths, c.formats, 1);
	if (res == NULL) {
		d->db_pg->pg_lost = true;
		pg_log(func, NULL, "the connection failed");
		return CM_IOERR;
	}
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK: {
		int64_t n = strtoll(PQcmdTuples(res), NULL, 10);

		if (changes != NULL)
			*changes = n;
		d->db_pg->pg_changes += n;
		/* The row was there: SQLite's constraint failure. */
		if (c.row_insert && n == 0)
			rc = CM_CONFLICT;
		break;
	}
	case PGRES_TUPLES_OK:
		/* A row means a query: those are read with store_query(). */
		pg_log(func, NULL, "a query run as a statement");
		rc = CM_IOERR;
		break;
	default:
		if ((rc = pg_rc(res, d->db_pg)) != CM_CONFLICT)
			pg_log(func, res, "statement failed");
		if (rc == CM_OK)
			rc = CM_IOERR;
		failed = true;
		break;
	}
	PQclear(res);
	/* Only a failed statement left its savepoint unreleased. */
	if (sp && failed &&
	    !pg_control(d, "ROLLBACK TO SAVEPOINT cm_stmt; RELEASE SAVEPOINT cm_stmt"))
		rc = CM_IOERR;
	return rc;
}

void
store_pg_query(struct store_query *q, const char *sql, const char *fmt, va_list ap)
{
	PGresult *res;

	if ((res = pg_run(q->q_db, q->q_func, sql, fmt, ap)) == NULL) {
		q->q_rc = CM_IOERR;
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		q->q_rc = pg_rc(res, q->q_db->db_pg);
		pg_log(q->q_func, res, "query failed");
		PQclear(res);
		return;
	}
	q->q_pg = res;
	q->q_row = -1;
	q->q_end = false;
}

bool
store_pg_next(struct store_query *q)
{
	if (q->q_end || q->q_pg == NULL)
		return false;
	if (++q->q_row < PQntuples(q->q_pg))
		return true;
	q->q_end = true;
	return false;
}

cm_result
store_pg_done(struct store_query *q)
{
	PQclear(q->q_pg);
	q->q_pg = NULL;
	q->q_end = true;
	return q->q_rc;
}

bool
store_pg_col_null(const struct store_query *q, int col)
{
	return q->q_pg == NULL || q->q_row < 0 || col >= PQnfields(q->q_pg) ||
	    PQgetisnull(q->q_pg, q->q_row, col);
}

int64_t
store_pg_col_int64(const struct store_query *q, int col)
{
	const uint8_t *p;
	uint64_t u = 0;
	int i, len;

	if (store_pg_col_null(q, col))
		return 0;
	p = (const uint8_t *)PQgetvalue(q->q_pg, q->q_row, col);
	len = PQgetlength(q->q_pg, q->q_row, col);
	switch (PQftype(q->q_pg, col)) {
	case OID_INT8:
	case OID_INT4:
	case OID_INT2:
	case OID_BOOL:
		/* Big-endian, sign-extended from its width. */
		for (i = 0; i < len; i++)
			u = (u << 8) | p[i];
		if (len < 8 && len > 0 && (p[0] & 0x80))
			u |= ~(uint64_t)0 << (8 * len);
		return (int64_t)u;
	case OID_TEXT:
		return strtoll((const char *)p, NULL, 10);
	default:
		return 0;
	}
}

const char *
store_pg_col_text(const struct store_query *q, int col)
{
	/* q_num is scratch space of Q's own, written while Q is read. */
	struct store_query *w = (struct store_query *)(uintptr_t)q;

	if (store_pg_col_null(q, col))
		return NULL;
	switch (PQftype(q->q_pg, col)) {
	case OID_INT8:
	case OID_INT4:
	case OID_INT2:
	case OID_BOOL:
		/* As SQLite gives an integer read as text: its decimal digits. */
		snprintf(w->q_num, sizeof(w->q_num), "%lld",
		    (long long)store_pg_col_int64(q, col));
		return w->q_num;
	default:
		/* libpq ends every value with a NUL. */
		return PQgetvalue(q->q_pg, q->q_row, col);
	}
}

const void *
store_pg_col_blob(const struct store_query *q, int col)
{
	if (store_pg_col_null(q, col))
		return NULL;
	return PQgetvalue(q->q_pg, q->q_row, col);
}

size_t
store_pg_col_bytes(const struct store_query *q, int col)
{
	if (store_pg_col_null(q, col))
		return 0;
	return (size_t)PQgetlength(q->q_pg, q->q_row, col);
}

bool
store_pg_col_is_blob(const struct store_query *q, int col)
{
	return !store_pg_col_null(q, col) && PQftype(q->q_pg, col) == OID_BYTEA;
}

int64_t
store_pg_last_rowid(struct cm_db *d)
{
	PGresult *res;
	int64_t v = 0;

	/*
	 * The value the session's last nextval() gave: the identity of the
	 * row the last INSERT made, as long as nothing it fired numbered a
	 * row of its own (no trigger of the tables whose rows are numbered
	 * this way inserts into another such table).
	 */
	res = PQexec(d->db_pg->pg_conn, "SELECT lastval()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

bool
store_pg_in_tx(struct cm_db *d)
{
	PGTransactionStatusType t = PQtransactionStatus(d->db_pg->pg_conn);

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

cm_result
store_pg_prepare_check(struct cm_db *d, const char *sql, char *why, size_t whylen)
{
	char text[PG_SQL_MAX];
	PGresult *res;
	cm_result rc = CM_OK;

	/* As pg_prepared() prepares it. */
	if (pg_rewrite(sql, text, sizeof(text) - sizeof(PG_ON_CONFLICT)) < 0) {
		snprintf(why, whylen, "statement too long");
		return CM_INVALID;
	}
	if (pg_row_insert(sql))
		strcat(text, PG_ON_CONFLICT);
	res = PQprepare(d->db_pg->pg_conn, "", text, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(why, whylen, "%s", PQresultErrorMessage(res));
		why[strcspn(why, "\n")] = '\0';
		rc = CM_INVALID;
	}
	PQclear(res);
	return rc;
}

const char *
store_pg_errmsg(struct cm_db *d)
{
	char *m = d->db_pg->pg_errmsg;

	/* The first line only: the DETAIL lines after it can quote values. */
	snprintf(m, sizeof(d->db_pg->pg_errmsg), "%s", PQerrorMessage(d->db_pg->pg_conn));
	m[strcspn(m, "\n")] = '\0';
	return m;
}

cm_result
store_pg_exec_once(struct cm_db *d, const char *func, const char *sql)
{
	PGresult *res;
	cm_result rc = CM_OK;

	/* Run as written: DDL, transaction control and migrations take no parameters. */
	res = PQexec(d->db_pg->pg_conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_rc(res, d->db_pg);
		pg_log(func, res, "statement failed");
	}
	PQclear(res);
	return rc;
}

cm_result
store_pg_connect(const char *conninfo, struct cm_db **out, char *err, size_t errlen)
{
	struct cm_db *d;
	PGconn *conn;

	*out = NULL;
	conn = PQconnectdb(conninfo);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		/* libpq's message names the host and the reason, not the password. */
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    conn != NULL ? PQerrorMessage(conn) : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfinish(conn);
		return CM_IOERR;
	}
	d = cm_calloc(1, sizeof(*d));
	d->db_pg = cm_calloc(1, sizeof(*d->db_pg));
	d->db_pg->pg_conn = conn;
	PQsetNoticeReceiver(conn, pg_notice, d->db_pg);
	*out = d;
	return CM_OK;
}

int64_t
store_pg_changes(struct cm_db *d)
{
	return d->db_pg->pg_changes;
}

void
store_pg_write_began(struct cm_db *d)
{
	d->db_pg->pg_began = d->db_pg->pg_changes;
}

/*
 * A write transaction that wrote nothing still writes one row before it
 * commits (in the same round trip): a commit that wrote nothing to the
 * WAL does not wait for the synchronous standby, and its answer (a replay
 * that found itself done, a refusal) may rest on a commit made on the
 * primary alone. Written, it waits until all before it is on the standby.
 */
cm_result
store_pg_commit(struct cm_db *d)
{
	struct store_pg *pg = d->db_pg;
	PGresult *res;
	const char *state;
	cm_result rc = CM_OK;

	/* An aborted transaction's COMMIT answers ROLLBACK, and succeeds. */
	if (PQtransactionStatus(pg->pg_conn) == PQTRANS_INERROR) {
		pg_log(__func__, NULL, "the transaction had failed");
		(void)pg_control(d, "ROLLBACK");
		return CM_IOERR;
	}
	pg->pg_warned = false;
	res = PQexec(pg->pg_conn, pg->pg_changes != pg->pg_began ? "COMMIT" :
	    "UPDATE meta SET value = value WHERE key = 'store_key_check'; COMMIT");
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		/*
		 * The server said why, and the transaction is gone: a
		 * serialisation failure (class 40) may run again at once,
		 * anything else is an error. No answer, a lost connection
		 * (class 08) or a server going down (class 57) leave the
		 * outcome unknown: the commit may have been made.
		 */
		rc = pg_rc(res, pg);
		if (pg->pg_lost || state == NULL || strncmp(state, "08", 2) == 0 ||
		    strncmp(state, "57", 2) == 0) {
			pg->pg_lost = true;
			rc = CM_UNKNOWN;
		} else if (strncmp(state, "40", 2) == 0) {
			rc = CM_BUSY;
		} else if (rc == CM_OK || rc == CM_CONFLICT) {
			rc = CM_IOERR;
		}
		pg_log(__func__, res, "commit failed");
	} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		pg_log(__func__, NULL, "the transaction was rolled back");
		rc = CM_IOERR;
	} else if (pg->pg_warned) {
		/*
		 * Committed on this server, perhaps on it alone (a cancelled
		 * wait for the synchronous standby): not acknowledged. A
		 * replay with the same request id finds it, and its own
		 * commit waits for the standby (see above).
		 */
		pg_log(__func__, NULL, "the commit raised a warning: not acknowledged");
		rc = CM_UNKNOWN;
	}
	PQclear(res);
	return rc;
}

bool
store_pg_alive(struct cm_db *d)
{
	PGconn *conn = d->db_pg->pg_conn;

	/* A pipeline left open by a connection lost in the middle of one counts as lost. */
	return !d->db_pg->pg_lost && PQstatus(conn) == CONNECTION_OK &&
	    PQpipelineStatus(conn) == PQ_PIPELINE_OFF;
}

cm_result
store_pg_reconnect(struct cm_db *d, const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		PQfinish(conn);
		return CM_IOERR;
	}
	PQsetNoticeReceiver(conn, pg_notice, d->db_pg);
	PQfinish(d->db_pg->pg_conn);
	d->db_pg->pg_conn = conn;
	d->db_pg->pg_lost = false;
	/* A new session: nothing is prepared on it. */
	memset(d->db_pg->pg_slots, 0, sizeof(d->db_pg->pg_slots));
	return CM_OK;
}

void
store_pg_close(struct cm_db *d)
{
	if (d == NULL)
		return;
	PQfinish(d->db_pg->pg_conn);
	free(d->db_pg);
	store_tokens_forget(d);
	store_optouts_free(d);
	store_erasures_free(d);
	free(d);
}
