/* SPDX-License-Identifier: ISC */
/*
 * The migration runner, for both engines (migrations/ for SQLite,
 * migrations-pg/ for PostgreSQL, under the same numbers). Migrations are
 * numbered SQL files; each is applied in its own transaction and recorded
 * with the SHA-256 of its bytes. A
 * database whose recorded checksum differs from the file, or that records a
 * migration this binary does not have, is refused before anything is
 * written, so an operator can put the right binary or file back.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "store_int.h"

#define MIGRATION_MAX_BYTES	(1024 * 1024)
#define MIGRATION_MAX_COUNT	9999

/* Returns the version of a well-formed name NNNN_name.sql, or -1. */
static int
migration_version(const char *name)
{
	size_t len, i;
	int v = 0;

	len = strlen(name);
	if (len < 10 || len > 128 || strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
		return -1;
	for (i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	for (i = 5; i < len - 4; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return -1;
	return v;
}

static int
migration_cmp(const void *a, const void *b)
{
	const struct cm_migration *x = a, *y = b;

	return (x->m_version > y->m_version) - (x->m_version < y->m_version);
}

static cm_result
migrations_check(const struct cm_migration_set *set, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < set->ms_count; i++) {
		if (set->ms_list[i].m_version != (int)i + 1) {
			snprintf(err, errlen, "migrations must be numbered 0001, 0002, … "
			    "without gaps or duplicates; found %s at position %zu",
			    set->ms_list[i].m_name, i + 1);
			return CM_INVALID;
		}
	}
	return CM_OK;
}

static cm_result
migrations_load_dir(const char *dir, struct cm_migration_set *set, char *err,
    size_t errlen)
{
	DIR *dp;
	struct dirent *de;
	struct cm_migration *m;
	char path[4096], *sql, *name;
	cm_result rc = CM_INVALID;
	size_t len;
	int v, n;

	memset(set, 0, sizeof(*set));
	if ((dp = opendir(dir)) == NULL) {
		snprintf(err, errlen, "cannot open migrations directory %s: %s", dir,
		    strerror(errno));
		return CM_IOERR;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((v = migration_version(de->d_name)) <= 0) {
			snprintf(err, errlen, "%s/%s: migration files are named "
			    "NNNN_name.sql (lower case, digits, underscores)", dir, de->d_name);
			goto out;
		}
		if (set->ms_count >= MIGRATION_MAX_COUNT) {
			snprintf(err, errlen, "%s: too many migrations", dir);
			goto out;
		}
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			snprintf(err, errlen, "%s: path too long", dir);
			goto out;
		}
		if ((sql = cm_file_read(path, MIGRATION_MAX_BYTES, &len)) == NULL) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			rc = CM_IOERR;
			goto out;
		}
		name = cm_strdup(de->d_name);
		set->ms_strings = cm_reallocarray(set->ms_strings, set->ms_nstrings + 2,
		    sizeof(*set->ms_strings));
		set->ms_strings[set->ms_nstrings++] = sql;
		set->ms_strings[set->ms_nstrings++] = name;
		set->ms_owned = cm_reallocarray(set->ms_owned, set->ms_count + 1,
		    sizeof(*set->ms_owned));
		m = &set->ms_owned[set->ms_count++];
		m->m_version = v;
		m->m_name = name;
		m->m_sql = sql;
		m->m_len = len;
	}
	if (set->ms_count > 0)
		qsort(set->ms_owned, set->ms_count, sizeof(*set->ms_owned), migration_cmp);
	set->ms_list = set->ms_owned;
	rc = migrations_check(set, err, errlen);
out:
	closedir(dp);
	if (rc != CM_OK)
		cm_migrations_free(set);
	return rc;
}

cm_result
cm_migrations_load(const char *dir, struct cm_migration_set *set, char *err,
    size_t errlen)
{
	struct cm_migration_set *pg;
	struct stat sb;
	char pgdir[4096];
	cm_result rc;
	size_t len;
	int n;

	memset(set, 0, sizeof(*set));
	pg = cm_calloc(1, sizeof(*pg));
	if (dir == NULL) {
		set->ms_list = cm_migrations_builtin;
		set->ms_count = cm_migrations_builtin_count;
		pg->ms_list = cm_migrations_builtin_pg;
		pg->ms_count = cm_migrations_builtin_pg_count;
		set->ms_pg = pg;
		if ((rc = migrations_check(set, err, errlen)) != CM_OK ||
		    (rc = migrations_check(pg, err, errlen)) != CM_OK)
			cm_migrations_free(set);
		return rc;
	}
	if ((rc = migrations_load_dir(dir, set, err, errlen)) != CM_OK) {
		free(pg);
		return rc;
	}
	/* PostgreSQL's beside them, as migrations-pg/ is beside migrations/. */
	len = strlen(dir);
	if (len > 1 && dir[len - 1] == '/')
		len--;
	n = snprintf(pgdir, sizeof(pgdir), "%.*s-pg", (int)len, dir);
	if (n > 0 && (size_t)n < sizeof(pgdir) && stat(pgdir, &sb) == 0 &&
	    S_ISDIR(sb.st_mode)) {
		if ((rc = migrations_load_dir(pgdir, pg, err, errlen)) != CM_OK) {
			free(pg);
			cm_migrations_free(set);
			return rc;
		}
		set->ms_pg = pg;
	} else {
		free(pg);
	}
	return CM_OK;
}

void
cm_migrations_free(struct cm_migration_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	if (set->ms_pg != NULL) {
		cm_migrations_free(set->ms_pg);
		free(set->ms_pg);
	}
	for (i = 0; i < set->ms_nstrings; i++)
		free(set->ms_strings[i]);
	free(set->ms_strings);
	free(set->ms_owned);
	memset(set, 0, sizeof(*set));
}

static void
migration_checksum(const struct cm_migration *m, char out[65])
{
	uint8_t h[32];

	cm_sha256(h, m->m_sql, m->m_len);
	cm_hex_encode(out, h, sizeof(h));
}

cm_result
store_table_exists(struct cm_db *d, const char *name, bool *exists)
{
	static const char sqlite_table[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' "
	    "AND name = ?";
	static const char pg_table[] = "SELECT 1 FROM pg_tables WHERE "
	    "schemaname = current_schema() AND tablename = ?";
	struct store_query q;
	cm_result rc;

	rc = store_row(&q, d, d->db_pg != NULL ? pg_table : sqlite_table, "t", name);
	store_done(&q);
	*exists = rc == CM_OK;
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

/*
 * Compares every recorded migration with SET. Sets *APPLIED to the highest
 * recorded version. Reads only.
 */
static cm_result
migrations_verify(struct cm_db *d, const struct cm_migration_set *set, int *applied,
    char *err, size_t errlen)
{
	static const char sql[] = "SELECT version, name, checksum FROM schema_migrations "
	    "ORDER BY version";
	const struct cm_migration *m;
	struct store_query q;
	const char *sum;
	char want[65];
	cm_result res;
	bool exists;
	int64_t v, expect = 1;

	*applied = 0;
	if ((res = store_table_exists(d, "schema_migrations", &exists)) != CM_OK)
		goto readfail;
	if (!exists)
		return CM_OK;
	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		v = store_col_int64(&q, 0);
		if (v > (int64_t)set->ms_count) {
			snprintf(err, errlen, "the database schema (migration %04lld, %s) is "
			    "newer than this binary, which knows %zu migrations: run the "
			    "consentd release that wrote it, or a newer one", (long long)v,
			    store_col_text(&q, 1) != NULL ? store_col_text(&q, 1) : "?",
			    set->ms_count);
			store_done(&q);
			return CM_CONFLICT;
		}
		if (v != expect) {
			snprintf(err, errlen, "the database records migration %04lld but "
			    "not %04lld: restore the database from a backup", (long long)v,
			    (long long)expect);
			store_done(&q);
			return CM_CONFLICT;
		}
		m = &set->ms_list[v - 1];
		migration_checksum(m, want);
		sum = store_col_text(&q, 2);
		if (sum == NULL || strcmp(sum, want) != 0) {
			snprintf(err, errlen, "migration %s has changed since it was "
			    "applied (recorded sha256 %.12s…, file %.12s…): restore the "
			    "original file and put schema changes in a new migration",
			    m->m_name, sum ? sum : "?", want);
			store_done(&q);
			return CM_CONFLICT;
		}
		*applied = (int)v;
		expect++;
	}
	if ((res = store_done(&q)) == CM_OK)
		return CM_OK;
readfail:
	snprintf(err, errlen, "cannot read the migration table: %s", store_errmsg(d));
	return res;
}

/*
 * Applies M in a transaction of its own that holds the database's write
 * lock (SQLite's, or an advisory lock every consentd node on one
 * PostgreSQL database takes for its migrations), recording it.
 */
static cm_result
migration_apply(struct cm_db *d, const struct cm_migration *m, char *err, size_t errlen)
{
	static const char sqlite_begin[] = "BEGIN IMMEDIATE";
	static const char pg_begin[] = STORE_PG_BEGIN_WRITE;
	static const char sqlite_ddl[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
	    "checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)";
	static const char pg_ddl[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version bigint PRIMARY KEY, name text NOT NULL, "
	    "checksum text NOT NULL, applied_at bigint NOT NULL)";
	static const char sql[] = "INSERT INTO schema_migrations (version, name, checksum, "
	    "applied_at) VALUES (?, ?, ?, ?)";
	bool pg = d->db_pg != NULL;
	char sum[65];
	cm_result rc;

	migration_checksum(m, sum);
	if ((rc = store_exec_once(d, pg ? pg_begin : sqlite_begin)) != CM_OK ||
	    (rc = store_exec_once(d, pg ? pg_ddl : sqlite_ddl)) != CM_OK ||
	    (rc = store_exec_once(d, m->m_sql)) != CM_OK ||
	    (rc = store_exec(d, sql, "itti", (int64_t)m->m_version, m->m_name, sum,
	    cm_time_now_us())) != CM_OK ||
	    (rc = store_exec_once(d, "COMMIT")) != CM_OK) {
		snprintf(err, errlen, "migration %s failed: %s", m->m_name, store_errmsg(d));
		if (store_in_tx(d))
			(void)store_exec_once(d, "ROLLBACK");
		return rc;
	}
	cm_log(CM_LOG_INFO, "migration_applied", ",\"version\":%d", m->m_version);
	return CM_OK;
}

cm_result
store_migrate(struct cm_db *d, const struct cm_migration_set *set, bool apply,
    char *err, size_t errlen)
{
	cm_result rc;
	int applied;
	size_t i;

	if ((rc = migrations_verify(d, set, &applied, err, errlen)) != CM_OK)
		return rc;
	if ((size_t)applied == set->ms_count)
		return CM_OK;
	if (!apply) {
		snprintf(err, errlen, "the database is at migration %04d and this "
		    "binary has %zu: run 'consentd migrate' to upgrade it",
		    applied, set->ms_count);
		return CM_CONFLICT;
	}
	for (i = (size_t)applied; i < set->ms_count; i++) {
		/*
		 * Another process may have applied it since we looked: re-check
		 * inside the lock before applying.
		 */
		if ((rc = migrations_verify(d, set, &applied, err, errlen)) != CM_OK)
			return rc;
		if ((size_t)applied > i)
			continue;
		if ((rc = migration_apply(d, &set->ms_list[i], err, errlen)) != CM_OK)
			return rc;
	}
	return CM_OK;
}
