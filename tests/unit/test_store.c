/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the encrypted store (src/store/store.c, migrate.c,
 * tokens.c), each in a fresh temporary data directory with keys from
 * cm_keys_create + cm_keys_load: creating a database applies every
 * built-in migration (which are the bytes of migrations/); re-opening is a
 * no-op that leaves consentd.db byte-identical; migrations read from a
 * directory upgrade a database, while a changed migration, a schema newer
 * than the migration set, or a pending migration without so_apply are
 * refused with CM_CONFLICT before a byte is written; badly named or
 * non-contiguous migration files are refused; a wrong key or a file that is
 * not a database gives CM_AUTH and leaves the file (and no -wal/-shm)
 * behind untouched; the token table (create, find, the one-active-name
 * rule, replace, revoke, list order); per-thread connections; that the
 * file on disk holds neither the token names nor the schema in plaintext;
 * and the statement helper of src/store/ (store_exec, store_query,
 * store_row): every format letter, NULL binding, changed-row counts, a
 * constraint failure answered and not logged, other failures logged under
 * the caller's name without the bound values, one row and many, readers
 * that nest by taking a private statement, and formats that do not fit.
 */
#define _GNU_SOURCE	/* memmem */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define SQLITE_HAS_CODEC 1
#include <sqlite3.h>

#include "consentd/crypto.h"
#include "consentd/scope.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "../../src/store/store_int.h"

#define INIT_SQL	"migrations/0001_init.sql"
#define EXTRA_SQL	"CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT);\n"

struct fx {
	char		*dir;		/* the data directory */
	struct cm_keys	*keys;
	char		 db[4200];	/* DIR/consentd.db */
};

/* ---- file helpers -------------------------------------------------------- */

static void
path_in(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < outlen);
}

static void
rm_rf(const char *path)
{
	struct dirent *de;
	struct stat st;
	char sub[4200];
	DIR *d;

	if (lstat(path, &st) == -1)
		return;
	if (S_ISDIR(st.st_mode)) {
		d = opendir(path);
		assert_non_null(d);
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			path_in(sub, sizeof(sub), path, de->d_name);
			rm_rf(sub);
		}
		closedir(d);
		assert_int_equal(rmdir(path), 0);
	} else {
		assert_int_equal(unlink(path), 0);
	}
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static char *
read_all(const char *path, size_t *len)
{
	char *p = cm_file_read(path, 256 * 1024 * 1024, len);

	if (p == NULL)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	return p;
}

static void
digest(const char *path, uint8_t out[32])
{
	size_t len;
	char *p = read_all(path, &len);

	cm_sha256(out, p, len);
	free(p);
}

static bool
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Asserts that neither DB-wal nor DB-shm exists. */
static void
assert_no_wal(const struct fx *f)
{
	char p[4300];

	snprintf(p, sizeof(p), "%s-wal", f->db);
	if (exists(p))
		fail_msg("%s was left behind", p);
	snprintf(p, sizeof(p), "%s-shm", f->db);
	if (exists(p))
		fail_msg("%s was left behind", p);
}

static void
copy_file(const char *from, const char *to)
{
	size_t len;
	char *p = read_all(from, &len);

	write_file(to, p, len, 0644);
	free(p);
}

/* Makes DIR/NAME (a directory) and returns its path in OUT. */
static void
make_subdir(const struct fx *f, const char *name, char *out, size_t outlen)
{
	path_in(out, outlen, f->dir, name);
	assert_int_equal(mkdir(out, 0700), 0);
}

/* ---- fixtures ------------------------------------------------------------ */

static int
group_setup(void **state)
{
	(void)state;
	cm_log_set_level(CM_LOG_WARN);	/* no "migration_applied" lines */
	return cm_crypto_init() == 0 ? 0 : -1;
}

static int
setup(void **state)
{
	char tmpl[] = "/tmp/consentd-test-store-XXXXXX", err[512];
	struct fx *f;

	f = calloc(1, sizeof(*f));
	if (f == NULL || mkdtemp(tmpl) == NULL)
		return -1;
	f->dir = strdup(tmpl);
	path_in(f->db, sizeof(f->db), f->dir, CM_DB_FILE);
	if (cm_keys_create(f->dir, err, sizeof(err)) != CM_OK ||
	    cm_keys_load(f->dir, &f->keys, err, sizeof(err)) != CM_OK) {
		print_error("keys: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	cm_keys_free(f->keys);
	rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void
load_set(const char *dir, struct cm_migration_set *set)
{
	char err[1024] = "";

	if (cm_migrations_load(dir, set, err, sizeof(err)) != CM_OK)
		fail_msg("cm_migrations_load(%s): %s", dir ? dir : "builtin", err);
}

static void
create_ok(const struct fx *f, const struct cm_migration_set *set)
{
	char err[1024] = "";

	if (cm_store_create(f->dir, f->keys, set, err, sizeof(err)) != CM_OK)
		fail_msg("cm_store_create: %s", err);
}

static struct cm_store *
open_ok(const struct fx *f, const struct cm_migration_set *set,
    const struct cm_store_opts *opts)
{
	struct cm_store *st = NULL;
	char err[1024] = "";

	if (cm_store_open(f->dir, f->keys, set, opts, &st, err, sizeof(err)) != CM_OK)
		fail_msg("cm_store_open: %s", err);
	assert_non_null(st);
	return st;
}

/* Opens, reads the schema version, closes. */
static int
version_of(const struct fx *f, const struct cm_migration_set *set)
{
	struct cm_store *st;
	struct cm_db *d;
	int v = -1;

	st = open_ok(f, set, NULL);
	d = cm_store_db(st);
	assert_non_null(d);
	assert_int_equal(cm_store_schema_version(d, &v), CM_OK);
	assert_int_equal(cm_store_ping(d), CM_OK);
	cm_store_close(st);
	return v;
}

/* Expects cm_store_open to fail with WANT and an error mentioning PART. */
static void
expect_open_fail(const struct fx *f, const struct cm_migration_set *set,
    const struct cm_store_opts *opts, cm_result want, const char *part)
{
	struct cm_store *st = (struct cm_store *)&st;
	char err[1024] = "";
	cm_result rc;

	rc = cm_store_open(f->dir, f->keys, set, opts, &st, err, sizeof(err));
	if (rc == CM_OK)
		cm_store_close(st);
	if (rc != want)
		fail_msg("cm_store_open gave %s, want %s (%s)", cm_result_str(rc),
		    cm_result_str(want), err);
	assert_null(st);
	if (strstr(err, part) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, part);
}

/* A migrations directory DIR/NAME with 0001_init.sql and, if EXTRA, 0002_extra.sql. */
static void
make_migdir(const struct fx *f, const char *name, bool extra, char *out, size_t outlen)
{
	char p[4300];

	make_subdir(f, name, out, outlen);
	path_in(p, sizeof(p), out, "0001_init.sql");
	copy_file(INIT_SQL, p);
	if (extra) {
		path_in(p, sizeof(p), out, "0002_extra.sql");
		write_file(p, EXTRA_SQL, strlen(EXTRA_SQL), 0644);
	}
}

/* ---- creating and opening ----------------------------------------------- */

/* The built-in set is migrations/ byte for byte, numbered 1, 2, …. */
static void
test_builtin_migrations(void **state)
{
	struct cm_migration_set set;
	char path[4200], *text;
	size_t i, len;

	(void)state;
	load_set(NULL, &set);
	assert_int_equal(set.ms_count, cm_migrations_builtin_count);
	assert_true(cm_migrations_builtin_count >= 1);
	assert_string_equal(cm_migrations_builtin[0].m_name, "0001_init.sql");
	for (i = 0; i < set.ms_count; i++) {
		assert_int_equal(set.ms_list[i].m_version, (int)i + 1);
		path_in(path, sizeof(path), "migrations", set.ms_list[i].m_name);
		text = read_all(path, &len);
		assert_int_equal(set.ms_list[i].m_len, len);
		assert_memory_equal(set.ms_list[i].m_sql, text, len);
		assert_int_equal(set.ms_list[i].m_sql[len], '\0');
		free(text);
	}
	cm_migrations_free(&set);
	assert_int_equal(set.ms_count, 0);
	cm_migrations_free(&set);	/* twice is harmless */
	cm_migrations_free(NULL);
}

static void
test_create_fresh(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct stat st;
	char err[1024] = "";

	load_set(NULL, &set);
	create_ok(f, &set);
	assert_int_equal(stat(f->db, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_no_wal(f);
	assert_int_equal(version_of(f, &set), (int)cm_migrations_builtin_count);

	/* Never over an existing database. */
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)),
	    CM_CONFLICT);
	assert_non_null(strstr(err, "already exists"));
	cm_migrations_free(&set);
}

static void
test_open_missing(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;

	load_set(NULL, &set);
	expect_open_fail(f, &set, NULL, CM_NOTFOUND, "no database at");
	/* And it is not created by trying. */
	assert_false(exists(f->db));
	cm_migrations_free(&set);
}

static void
test_reopen_is_noop(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_store_opts opts;
	uint8_t h0[32], h1[32];
	int i;

	load_set(NULL, &set);
	create_ok(f, &set);
	digest(f->db, h0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(version_of(f, &set), (int)cm_migrations_builtin_count);
		assert_no_wal(f);
		digest(f->db, h1);
		assert_memory_equal(h0, h1, 32);
	}
	/* Without so_apply, an up-to-date database opens too. */
	cm_store_opts_default(&opts);
	assert_true(opts.so_apply);
	opts.so_apply = false;
	cm_store_close(open_ok(f, &set, &opts));
	digest(f->db, h1);
	assert_memory_equal(h0, h1, 32);
	cm_migrations_free(&set);
}

/* ---- migrations from a directory ---------------------------------------- */

static void
test_migrations_from_dir(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set one, two, builtin;
	char m1[4200], m2[4200];

	make_migdir(f, "m1", false, m1, sizeof(m1));
	make_migdir(f, "m2", true, m2, sizeof(m2));
	load_set(m1, &one);
	load_set(m2, &two);
	assert_int_equal(one.ms_count, 1);
	assert_int_equal(two.ms_count, 2);
	assert_string_equal(two.ms_list[0].m_name, "0001_init.sql");
	assert_string_equal(two.ms_list[1].m_name, "0002_extra.sql");
	assert_int_equal(two.ms_list[1].m_version, 2);
	assert_int_equal(two.ms_list[1].m_len, strlen(EXTRA_SQL));
	assert_string_equal(two.ms_list[1].m_sql, EXTRA_SQL);

	create_ok(f, &one);
	assert_int_equal(version_of(f, &one), 1);
	{
		/* The built-in 0001 is the same file, so its checksum agrees. */
		struct cm_migration_set b1;

		memset(&b1, 0, sizeof(b1));
		b1.ms_list = cm_migrations_builtin;
		b1.ms_count = 1;
		assert_int_equal(version_of(f, &b1), 1);
	}
	assert_int_equal(version_of(f, &two), 2);
	assert_int_equal(version_of(f, &two), 2);
	/* The built-in 0001 is the same file, so its checksum agrees. */
	memset(&builtin, 0, sizeof(builtin));
	builtin.ms_list = cm_migrations_builtin;
	builtin.ms_count = 1;
	expect_open_fail(f, &builtin, NULL, CM_CONFLICT, "newer than this binary");
	cm_store_close(NULL);
	cm_migrations_free(&one);
	cm_migrations_free(&two);
}

static void
test_changed_migration_refused(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set, changed;
	char m1[4200], p[4300];
	uint8_t h0[32], h1[32];
	size_t len;
	char *text;

	make_migdir(f, "m1", false, m1, sizeof(m1));
	load_set(m1, &set);
	create_ok(f, &set);
	digest(f->db, h0);

	/* One more comment line: another checksum. */
	path_in(p, sizeof(p), m1, "0001_init.sql");
	text = read_all(p, &len);
	text = realloc(text, len + 32);
	assert_non_null(text);
	strcpy(text + len, "-- edited\n");
	write_file(p, text, strlen(text), 0644);
	free(text);
	load_set(m1, &changed);
	expect_open_fail(f, &changed, NULL, CM_CONFLICT, "0001_init.sql");
	expect_open_fail(f, &changed, NULL, CM_CONFLICT, "has changed");
	assert_no_wal(f);
	digest(f->db, h1);
	assert_memory_equal(h0, h1, 32);
	/* The original still opens. */
	assert_int_equal(version_of(f, &set), 1);
	cm_migrations_free(&set);
	cm_migrations_free(&changed);
}

static void
test_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set one, two;
	char m1[4200], m2[4200];
	uint8_t h0[32], h1[32];

	make_migdir(f, "m1", false, m1, sizeof(m1));
	make_migdir(f, "m2", true, m2, sizeof(m2));
	load_set(m1, &one);
	load_set(m2, &two);
	create_ok(f, &two);
	digest(f->db, h0);
	expect_open_fail(f, &one, NULL, CM_CONFLICT, "newer than this binary");
	expect_open_fail(f, &one, NULL, CM_CONFLICT, "0002_extra.sql");
	assert_no_wal(f);
	digest(f->db, h1);
	assert_memory_equal(h0, h1, 32);
	cm_migrations_free(&one);
	cm_migrations_free(&two);
}

static void
test_pending_without_apply_refused(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set one, two;
	struct cm_store_opts opts;
	char m1[4200], m2[4200];
	uint8_t h0[32], h1[32];

	make_migdir(f, "m1", false, m1, sizeof(m1));
	make_migdir(f, "m2", true, m2, sizeof(m2));
	load_set(m1, &one);
	load_set(m2, &two);
	create_ok(f, &one);
	digest(f->db, h0);
	cm_store_opts_default(&opts);
	opts.so_apply = false;
	expect_open_fail(f, &two, &opts, CM_CONFLICT, "consentd migrate");
	expect_open_fail(f, &two, &opts, CM_CONFLICT, "migration 0001");
	assert_no_wal(f);
	digest(f->db, h1);
	assert_memory_equal(h0, h1, 32);
	assert_int_equal(version_of(f, &one), 1);
	/* With so_apply it upgrades. */
	opts.so_apply = true;
	cm_store_close(open_ok(f, &two, &opts));
	assert_int_equal(version_of(f, &two), 2);
	cm_migrations_free(&one);
	cm_migrations_free(&two);
}

/* A migration that fails is rolled back and leaves the version where it was. */
static void
test_failing_migration_rolled_back(void **state)
{
	static const char bad[] = "CREATE TABLE half (id INTEGER);\nTHIS IS NOT SQL;\n";
	struct fx *f = *state;
	struct cm_migration_set one, two;
	struct cm_store *st = NULL;
	char m1[4200], m2[4200], p[4300], err[1024] = "";

	make_migdir(f, "m1", false, m1, sizeof(m1));
	make_migdir(f, "m2", false, m2, sizeof(m2));
	path_in(p, sizeof(p), m2, "0002_bad.sql");
	write_file(p, bad, strlen(bad), 0644);
	load_set(m1, &one);
	load_set(m2, &two);
	create_ok(f, &one);
	assert_int_not_equal(cm_store_open(f->dir, f->keys, &two, NULL, &st, err,
	    sizeof(err)), CM_OK);
	assert_null(st);
	assert_non_null(strstr(err, "0002_bad.sql"));
	assert_non_null(strstr(err, "syntax error"));
	assert_int_equal(version_of(f, &one), 1);
	/* Nothing of it stayed: the second try fails the same way. */
	err[0] = '\0';
	assert_int_not_equal(cm_store_open(f->dir, f->keys, &two, NULL, &st, err,
	    sizeof(err)), CM_OK);
	assert_non_null(strstr(err, "syntax error"));
	cm_migrations_free(&one);
	cm_migrations_free(&two);
}

static void
expect_load_fail(const struct fx *f, const char *sub, const char *const *files,
    cm_result want, const char *part)
{
	struct cm_migration_set set;
	char dir[4200], p[4300], err[1024] = "";
	cm_result rc;
	size_t i;

	make_subdir(f, sub, dir, sizeof(dir));
	for (i = 0; files[i] != NULL; i++) {
		path_in(p, sizeof(p), dir, files[i]);
		write_file(p, EXTRA_SQL, strlen(EXTRA_SQL), 0644);
	}
	memset(&set, 0xa5, sizeof(set));
	rc = cm_migrations_load(dir, &set, err, sizeof(err));
	if (rc == CM_OK)
		cm_migrations_free(&set);
	if (rc != want)
		fail_msg("%s: %s, want %s (%s)", sub, cm_result_str(rc),
		    cm_result_str(want), err);
	assert_int_equal(set.ms_count, 0);
	assert_null(set.ms_owned);
	assert_null(set.ms_strings);
	if (strstr(err, part) == NULL)
		fail_msg("%s: error \"%s\" does not mention \"%s\"", sub, err, part);
}

static void
test_bad_migration_names(void **state)
{
	static const char *const short_name[] = { "1_x.sql", NULL };
	static const char *const dash[] = { "0001-x.sql", NULL };
	static const char *const upper[] = { "0001_X.sql", NULL };
	static const char *const zero[] = { "0000_zero.sql", NULL };
	static const char *const txt[] = { "0001_init.txt", NULL };
	static const char *const readme[] = { "0001_init.sql", "README", NULL };
	static const char *const noname[] = { "0001_.sql", NULL };
	static const char *const gap[] = { "0001_a.sql", "0003_c.sql", NULL };
	static const char *const nofirst[] = { "0002_b.sql", NULL };
	static const char *const dup[] = { "0001_a.sql", "0001_b.sql", NULL };
	struct fx *f = *state;
	struct cm_migration_set set;
	char dir[4200], p[4300], err[1024] = "";

	expect_load_fail(f, "a", short_name, CM_INVALID, "1_x.sql");
	expect_load_fail(f, "b", dash, CM_INVALID, "0001-x.sql");
	expect_load_fail(f, "c", upper, CM_INVALID, "0001_X.sql");
	expect_load_fail(f, "d", zero, CM_INVALID, "0000_zero.sql");
	expect_load_fail(f, "e", txt, CM_INVALID, "0001_init.txt");
	expect_load_fail(f, "f", readme, CM_INVALID, "README");
	expect_load_fail(f, "g", noname, CM_INVALID, "0001_.sql");
	expect_load_fail(f, "h", gap, CM_INVALID, "0003_c.sql");
	expect_load_fail(f, "i", nofirst, CM_INVALID, "0002_b.sql");
	expect_load_fail(f, "j", dup, CM_INVALID, "0001_");

	/* A missing directory. */
	path_in(dir, sizeof(dir), f->dir, "nope");
	assert_int_equal(cm_migrations_load(dir, &set, err, sizeof(err)), CM_IOERR);
	assert_non_null(strstr(err, "nope"));

	/* Dot files are ignored. */
	make_migdir(f, "k", false, dir, sizeof(dir));
	path_in(p, sizeof(p), dir, ".0002_hidden.sql");
	write_file(p, "junk", 4, 0644);
	load_set(dir, &set);
	assert_int_equal(set.ms_count, 1);
	cm_migrations_free(&set);
}

/* ---- keys ------------------------------------------------------------------ */

/*
 * A store an earlier build made with SQLCipher's 1 KiB pages: the right key
 * no longer reads it, and the error says why instead of "wrong key".
 */
static void
test_old_page_size(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	sqlite3 *c;
	char *lit;
	uint8_t h0[32], h1[32];

	lit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(f->keys, lit);
	assert_int_equal(sqlite3_open(f->db, &c), SQLITE_OK);
	assert_int_equal(sqlite3_key(c, lit, (int)strlen(lit)), SQLITE_OK);
	assert_int_equal(sqlite3_exec(c, "PRAGMA cipher_page_size = 1024; "
	    "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1)",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(c);
	cm_secure_free(lit);
	digest(f->db, h0);
	load_set(NULL, &set);
	expect_open_fail(f, &set, NULL, CM_INVALID, "1 KiB pages");
	cm_migrations_free(&set);
	assert_no_wal(f);
	digest(f->db, h1);
	assert_memory_equal(h0, h1, 32);
}

static void
test_wrong_key(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_keys *saved, *other = NULL;
	uint8_t h0[32], h1[32], key[CM_KEY_LEN];
	char p[4200], err[1024] = "";
	struct stat st;

	load_set(NULL, &set);
	create_ok(f, &set);
	digest(f->db, h0);

	path_in(p, sizeof(p), f->dir, CM_MASTER_KEY_FILE);
	cm_random(key, sizeof(key));
	write_file(p, key, sizeof(key), 0600);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(cm_keys_load(f->dir, &other, err, sizeof(err)), CM_OK);

	saved = f->keys;
	f->keys = other;
	expect_open_fail(f, &set, NULL, CM_AUTH, "wrong key, or not a consentd database");
	f->keys = saved;
	cm_keys_free(other);
	assert_no_wal(f);
	digest(f->db, h1);
	assert_memory_equal(h0, h1, 32);
	/* The right key still opens it. */
	assert_int_equal(version_of(f, &set), (int)cm_migrations_builtin_count);
	cm_migrations_free(&set);
}

static void
test_not_a_database(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	uint8_t junk[8192], h0[32], h1[32];

	cm_random(junk, sizeof(junk));
	write_file(f->db, junk, sizeof(junk), 0600);
	digest(f->db, h0);
	load_set(NULL, &set);
	expect_open_fail(f, &set, NULL, CM_AUTH, "wrong key, or not a consentd database");
	assert_no_wal(f);
	digest(f->db, h1);
	assert_memory_equal(h0, h1, 32);

	/* A plaintext text file is not one either. */
	write_file(f->db, "hello, world\n", 13, 0600);
	expect_open_fail(f, &set, NULL, CM_AUTH, "wrong key, or not a consentd database");
	cm_migrations_free(&set);
}

/* ---- tokens ---------------------------------------------------------------- */

struct collected {
	int	n;
	int	stop_after;
	int64_t	ids[16];
	char	names[16][CM_TOKEN_NAME_MAX + 1];
	int64_t	revoked[16];
};

static int
collect(void *arg, const struct cm_token_row *row)
{
	struct collected *c = arg;

	if (c->n < 16) {
		c->ids[c->n] = row->t_id;
		strcpy(c->names[c->n], row->t_name);
		c->revoked[c->n] = row->t_revoked_us;
	}
	c->n++;
	return c->stop_after != 0 && c->n >= c->stop_after;
}

/* A new token NAME, written inside the caller's transaction: fills SEL and HASH. */
static cm_result
token_new_raw(struct cm_db *d, const struct cm_keys *k, const char *name,
    uint32_t scopes, bool replace, int64_t now, char *sel, uint8_t hash[32])
{
	char tok[CM_TOKEN_MAX];

	cm_token_generate(tok, sel);
	cm_token_hash(k, tok, hash);
	return cm_store_token_create(d, name, sel, hash, scopes, replace, now);
}

/* The same in a transaction of its own, committed on success. */
static cm_result
token_new(struct cm_db *d, const struct cm_keys *k, const char *name,
    uint32_t scopes, bool replace, int64_t now, char *sel, uint8_t hash[32])
{
	cm_result rc;

	assert_int_equal(cm_db_begin(d), CM_OK);
	rc = token_new_raw(d, k, name, scopes, replace, now, sel, hash);
	if (rc == CM_OK)
		return cm_db_commit(d);
	cm_db_rollback(d);
	return rc;
}

static cm_result
token_revoke(struct cm_db *d, const char *name, int64_t now)
{
	cm_result rc;

	assert_int_equal(cm_db_begin(d), CM_OK);
	if ((rc = cm_store_token_revoke(d, name, now)) == CM_OK)
		return cm_db_commit(d);
	cm_db_rollback(d);
	return rc;
}

static void
test_tokens(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_token_row row;
	struct collected c;
	struct cm_store *st;
	struct cm_db *d;
	char s1[CM_TOKEN_SELECTOR_LEN + 1], s2[CM_TOKEN_SELECTOR_LEN + 1];
	char s3[CM_TOKEN_SELECTOR_LEN + 1], s4[CM_TOKEN_SELECTOR_LEN + 1];
	char s5[CM_TOKEN_SELECTOR_LEN + 1];
	uint8_t h1[32], h2[32], h3[32], h4[32], h5[32];

	load_set(NULL, &set);
	create_ok(f, &set);
	st = open_ok(f, &set, NULL);
	d = cm_store_db(st);
	assert_non_null(d);
	assert_ptr_equal(cm_store_db(st), d);	/* same thread, same connection */

	/* Create and find. */
	assert_int_equal(token_new(d, f->keys, "ci", CM_SCOPE_CONSENT_READ |
	    CM_SCOPE_AUDIT_READ, false, 1000, s1, h1), CM_OK);
	memset(&row, 0x5a, sizeof(row));
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_string_equal(row.t_name, "ci");
	assert_memory_equal(row.t_hash, h1, 32);
	assert_int_equal(row.t_scopes, CM_SCOPE_CONSENT_READ | CM_SCOPE_AUDIT_READ);
	assert_int_equal(row.t_created_us, 1000);
	assert_int_equal(row.t_revoked_us, 0);
	assert_true(row.t_id > 0);
	assert_int_equal(cm_store_token_find(d, "0000000000000000", &row), CM_NOTFOUND);

	/* A second active "ci" is refused, and leaves nothing behind. */
	assert_int_equal(token_new(d, f->keys, "ci", CM_SCOPE_ADMIN, false, 2000, s2, h2),
	    CM_CONFLICT);
	assert_int_equal(cm_store_token_find(d, s2, &row), CM_NOTFOUND);
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);
	/* The same selector twice is refused too. */
	assert_int_equal(cm_db_begin(d), CM_OK);
	assert_int_equal(cm_store_token_create(d, "other", s1, h2, CM_SCOPE_ADMIN,
	    false, 2000), CM_CONFLICT);
	cm_db_rollback(d);

	/* Replace revokes the old one in the same step. */
	assert_int_equal(token_new(d, f->keys, "ci", CM_SCOPE_ADMIN, true, 3000, s3, h3),
	    CM_OK);
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 3000);
	assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);
	assert_int_equal(row.t_scopes, CM_SCOPE_ADMIN);
	assert_memory_equal(row.t_hash, h3, 32);
	/* Replace with no active token of that name just creates. */
	assert_int_equal(token_new(d, f->keys, "deploy", CM_SCOPE_ADMIN, true, 4000, s4,
	    h4), CM_OK);

	/* Revoke. */
	assert_int_equal(token_revoke(d, "ci", 5000), CM_OK);
	assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 5000);
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 3000);	/* untouched */
	assert_int_equal(token_revoke(d, "ci", 6000), CM_NOTFOUND);
	assert_int_equal(token_revoke(d, "nobody", 6000), CM_NOTFOUND);
	/* A revoked name can be used again. */
	assert_int_equal(token_new(d, f->keys, "ci", CM_SCOPE_CONSENT_WRITE, false, 7000,
	    s5, h5), CM_OK);

	/* List: newest first. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(cm_store_token_list(d, collect, &c), CM_OK);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.names[0], "ci");
	assert_int_equal(c.revoked[0], 0);
	assert_string_equal(c.names[1], "deploy");
	assert_string_equal(c.names[2], "ci");
	assert_int_equal(c.revoked[2], 5000);
	assert_string_equal(c.names[3], "ci");
	assert_int_equal(c.revoked[3], 3000);
	assert_true(c.ids[0] > c.ids[1] && c.ids[1] > c.ids[2] && c.ids[2] > c.ids[3]);
	/* Stopping early. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(cm_store_token_list(d, collect, &c), CM_OK);
	assert_int_equal(c.n, 2);

	cm_store_close(st);
	cm_store_close(NULL);

	/* Everything survives a re-open. */
	st = open_ok(f, &set, NULL);
	d = cm_store_db(st);
	assert_int_equal(cm_store_token_find(d, s5, &row), CM_OK);
	assert_string_equal(row.t_name, "ci");
	assert_int_equal(row.t_scopes, CM_SCOPE_CONSENT_WRITE);
	memset(&c, 0, sizeof(c));
	assert_int_equal(cm_store_token_list(d, collect, &c), CM_OK);
	assert_int_equal(c.n, 4);
	cm_store_close(st);
	cm_migrations_free(&set);
}

/* A keyed raw connection to F's store, as another tool would open it. */
static sqlite3 *
raw_conn(const struct fx *f)
{
	sqlite3 *c;
	char *lit;

	lit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(f->keys, lit);
	assert_int_equal(sqlite3_open(f->db, &c), SQLITE_OK);
	assert_int_equal(sqlite3_key(c, lit, (int)strlen(lit)), SQLITE_OK);
	assert_int_equal(sqlite3_exec(c, "PRAGMA cipher_page_size = " CM_STORE_PAGE_SIZE,
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_busy_timeout(c, 5000);
	cm_secure_free(lit);
	return c;
}

struct revoker {
	struct cm_store	*st;
	const char	*name;
	cm_result	 rc;
};

static void *
revoker_main(void *arg)
{
	struct revoker *r = arg;
	struct cm_db *d = cm_store_db(r->st);

	r->rc = d != NULL ? token_revoke(d, r->name, 9000) : CM_IOERR;
	return NULL;
}

/*
 * A connection keeps the token rows it read while the token table's
 * generation stands: a change by another connection, by another program
 * with plain SQL, or one rolled back on this very connection, is seen by
 * the next lookup; and the kept row is really used (taking the trigger
 * away, a plain edit goes unseen).
 */
static void
test_token_cache(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_token_row row;
	struct revoker rv;
	struct cm_store *st;
	struct cm_db *d;
	pthread_t th;
	sqlite3 *c;
	char s1[CM_TOKEN_SELECTOR_LEN + 1], s2[CM_TOKEN_SELECTOR_LEN + 1];
	char s3[CM_TOKEN_SELECTOR_LEN + 1], s4[CM_TOKEN_SELECTOR_LEN + 1];
	char sql[256];
	uint8_t h[32];

	load_set(NULL, &set);
	create_ok(f, &set);
	st = open_ok(f, &set, NULL);
	d = cm_store_db(st);
	assert_int_equal(token_new(d, f->keys, "a", CM_SCOPE_ADMIN, false, 1, s1, h), CM_OK);
	assert_int_equal(token_new(d, f->keys, "b", CM_SCOPE_ADMIN, false, 1, s2, h), CM_OK);
	assert_int_equal(token_new(d, f->keys, "c", CM_SCOPE_ADMIN, false, 1, s3, h), CM_OK);
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);

	/* Revoked on another thread's connection. */
	rv.st = st;
	rv.name = "a";
	assert_int_equal(pthread_create(&th, NULL, revoker_main, &rv), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(rv.rc, CM_OK);
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 9000);

	/* Revoked by plain SQL from another program. */
	assert_int_equal(cm_store_token_find(d, s2, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);
	c = raw_conn(f);
	snprintf(sql, sizeof(sql), "UPDATE tokens SET revoked_at = 77 WHERE selector = '%s'",
	    s2);
	assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(cm_store_token_find(d, s2, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 77);
	/* Deleted the same way. */
	snprintf(sql, sizeof(sql), "DELETE FROM tokens WHERE selector = '%s'", s2);
	assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(cm_store_token_find(d, s2, &row), CM_NOTFOUND);

	/*
	 * Rolled back here: "c" revoked inside a transaction, read there, then
	 * undone; another change then brings the generation to the number the
	 * undone one had. The row read inside was not kept.
	 */
	assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
	assert_int_equal(cm_db_begin(d), CM_OK);
	assert_int_equal(cm_store_token_revoke(d, "c", 5), CM_OK);
	assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 5);
	cm_db_rollback(d);
	assert_int_equal(sqlite3_exec(c, "UPDATE tokens SET scopes = scopes WHERE name = 'a'",
	    NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);

	/* More tokens than slots: each still found, and right. */
	for (int i = 0; i < 2 * TOKEN_CACHE_SLOTS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(token_new(d, f->keys, name, CM_SCOPE_CONSENT_READ, false, i,
		    s4, h), CM_OK);
		assert_int_equal(cm_store_token_find(d, s4, &row), CM_OK);
		assert_string_equal(row.t_name, name);
		assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
		assert_string_equal(row.t_name, "c");
	}

	/* The kept row is what answers: without the trigger, a plain edit is missed. */
	assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
	assert_int_equal(sqlite3_exec(c, "DROP TRIGGER tokens_gen_update; "
	    "UPDATE tokens SET revoked_at = 88 WHERE name = 'c'", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(cm_store_token_find(d, s3, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);
	sqlite3_close(c);
	cm_store_close(st);
	cm_migrations_free(&set);
}

/*
 * Token writes run in the caller's transaction: rolled back, a replace
 * neither revokes the old token nor keeps the new one.
 */
static void
test_token_writes_are_transactional(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_token_row row;
	struct cm_store *st;
	struct cm_db *d;
	char s1[CM_TOKEN_SELECTOR_LEN + 1], s2[CM_TOKEN_SELECTOR_LEN + 1];
	uint8_t h[32];

	load_set(NULL, &set);
	create_ok(f, &set);
	st = open_ok(f, &set, NULL);
	d = cm_store_db(st);
	assert_int_equal(token_new(d, f->keys, "t", CM_SCOPE_ADMIN, false, 1, s1, h),
	    CM_OK);

	assert_int_equal(cm_db_begin(d), CM_OK);
	assert_int_equal(token_new_raw(d, f->keys, "t", CM_SCOPE_ADMIN, true, 2, s2, h),
	    CM_OK);
	/* Visible inside the transaction… */
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 2);
	assert_int_equal(cm_store_token_find(d, s2, &row), CM_OK);
	cm_db_rollback(d);
	/* …and gone after the rollback. */
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);
	assert_int_equal(cm_store_token_find(d, s2, &row), CM_NOTFOUND);

	assert_int_equal(cm_db_begin(d), CM_OK);
	assert_int_equal(cm_store_token_revoke(d, "t", 3), CM_OK);
	cm_db_rollback(d);
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	assert_int_equal(row.t_revoked_us, 0);

	cm_db_rollback(d);	/* outside a transaction: harmless */
	assert_int_equal(cm_db_begin(d), CM_OK);
	assert_int_equal(cm_db_commit(d), CM_OK);
	assert_int_equal(cm_store_token_find(d, s1, &row), CM_OK);
	cm_store_close(st);
	cm_migrations_free(&set);
}

/* ---- threads ---------------------------------------------------------------- */

struct thr {
	struct cm_store		*st;
	pthread_barrier_t	*bar;
	struct cm_db		*db, *db2;
	cm_result		 ping, vrc;
	int			 version;
	const char		*selector;	/* to look up, or NULL */
	cm_result		 found;
};

static void *
thr_main(void *arg)
{
	struct thr *t = arg;
	struct cm_token_row row;

	t->db = cm_store_db(t->st);
	t->db2 = cm_store_db(t->st);
	if (t->db != NULL) {
		t->ping = cm_store_ping(t->db);
		t->vrc = cm_store_schema_version(t->db, &t->version);
		if (t->selector != NULL)
			t->found = cm_store_token_find(t->db, t->selector, &row);
	}
	/* Both threads hold their connection at the same time. */
	pthread_barrier_wait(t->bar);
	return NULL;
}

static void
test_per_thread_connections(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_store *st;
	struct cm_db *d0;
	pthread_barrier_t bar;
	pthread_t th[2];
	struct thr t[2];
	char sel[CM_TOKEN_SELECTOR_LEN + 1];
	uint8_t h[32];
	int i, round;

	load_set(NULL, &set);
	create_ok(f, &set);
	st = open_ok(f, &set, NULL);
	d0 = cm_store_db(st);
	assert_non_null(d0);
	assert_int_equal(token_new(d0, f->keys, "main", CM_SCOPE_ADMIN, false, 1, sel, h),
	    CM_OK);
	/* Twice: connections of exited threads are released and new ones made. */
	for (round = 0; round < 2; round++) {
		assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
		for (i = 0; i < 2; i++) {
			memset(&t[i], 0, sizeof(t[i]));
			t[i].st = st;
			t[i].bar = &bar;
			t[i].selector = sel;
			t[i].ping = t[i].vrc = t[i].found = CM_IOERR;
			assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
		}
		for (i = 0; i < 2; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		pthread_barrier_destroy(&bar);
		for (i = 0; i < 2; i++) {
			assert_non_null(t[i].db);
			assert_ptr_equal(t[i].db, t[i].db2);
			assert_ptr_not_equal(t[i].db, d0);
			assert_int_equal(t[i].ping, CM_OK);
			assert_int_equal(t[i].vrc, CM_OK);
			assert_int_equal(t[i].version, (int)cm_migrations_builtin_count);
			assert_int_equal(t[i].found, CM_OK);
		}
		assert_ptr_not_equal(t[0].db, t[1].db);
	}
	/* The main thread's connection is untouched. */
	assert_ptr_equal(cm_store_db(st), d0);
	assert_int_equal(cm_store_ping(d0), CM_OK);
	cm_store_close(st);
	cm_migrations_free(&set);
}

struct live {
	struct cm_store		*st;
	pthread_barrier_t	 bar;
	cm_result		 ping;
};

static void *
live_main(void *arg)
{
	struct live *l = arg;
	struct cm_db *d;

	d = cm_store_db(l->st);
	l->ping = d != NULL ? cm_store_ping(d) : CM_IOERR;
	pthread_barrier_wait(&l->bar);	/* connected */
	pthread_barrier_wait(&l->bar);	/* the store is closed */
	return NULL;
}

/* Closing the store while a thread still holds a connection: no double free at its exit. */
static void
test_close_with_live_thread(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct live l;
	pthread_t th;

	load_set(NULL, &set);
	create_ok(f, &set);
	memset(&l, 0, sizeof(l));
	l.st = open_ok(f, &set, NULL);
	assert_int_equal(pthread_barrier_init(&l.bar, NULL, 2), 0);
	assert_int_equal(pthread_create(&th, NULL, live_main, &l), 0);
	pthread_barrier_wait(&l.bar);
	cm_store_close(l.st);
	pthread_barrier_wait(&l.bar);
	assert_int_equal(pthread_join(th, NULL), 0);
	pthread_barrier_destroy(&l.bar);
	assert_int_equal(l.ping, CM_OK);
	assert_no_wal(f);
	cm_migrations_free(&set);
}

/* ---- encryption at rest -------------------------------------------------- */

static bool
contains(const char *hay, size_t len, const char *needle)
{
	return memmem(hay, len, needle, strlen(needle)) != NULL;
}

static void
test_file_is_encrypted(void **state)
{
	static const char canary[] = "canary-token-name-7f3a9c";
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_store *st;
	struct cm_db *d;
	char sel[CM_TOKEN_SELECTOR_LEN + 1], *raw;
	uint8_t h[32];
	size_t len;

	load_set(NULL, &set);
	create_ok(f, &set);
	st = open_ok(f, &set, NULL);
	d = cm_store_db(st);
	assert_int_equal(token_new(d, f->keys, canary, CM_SCOPE_ADMIN, false, 1, sel, h),
	    CM_OK);
	cm_store_close(st);
	assert_no_wal(f);

	raw = read_all(f->db, &len);
	assert_true(len >= 4096);
	/* The token really is in there. */
	st = open_ok(f, &set, NULL);
	{
		struct cm_token_row row;

		assert_int_equal(cm_store_token_find(cm_store_db(st), sel, &row), CM_OK);
		assert_string_equal(row.t_name, canary);
	}
	cm_store_close(st);
	assert_false(contains(raw, len, canary));
	assert_false(contains(raw, len, sel));
	assert_false(contains(raw, len, "CREATE TABLE tokens"));
	assert_false(contains(raw, len, "CREATE TABLE"));
	assert_false(contains(raw, len, "schema_migrations"));
	assert_false(contains(raw, len, "0001_init.sql"));
	assert_int_not_equal(memcmp(raw, "SQLite format 3", 15), 0);
	free(raw);
	cm_migrations_free(&set);
}

/* ---- the statement helper (store_int.h) ---------------------------------- */

/* A table of its own, so the helper is tested apart from the schema. */
static const char helper_ddl[] = "CREATE TABLE h (id INTEGER PRIMARY KEY, t TEXT, "
    "tn TEXT, b BLOB, bn BLOB, i INTEGER, z INTEGER, u TEXT UNIQUE, "
    "c INTEGER CHECK (c IS NULL OR c >= 0))";
static const char helper_ins[] = "INSERT INTO h (t, tn, b, bn, i, z) VALUES (?, ?, ?, ?, ?, ?)";
static const char helper_get[] = "SELECT t, tn, b, bn, i, z, typeof(t), typeof(tn), "
    "typeof(b), typeof(bn), typeof(i), typeof(z) FROM h WHERE id = ?";
static const char helper_ids[] = "SELECT id FROM h WHERE id >= ? ORDER BY id";
static const char helper_count[] = "SELECT count(*) FROM h";
static const char helper_uc[] = "INSERT INTO h (t, u, c) VALUES (?, ?, ?)";
static const char helper_overflow[] = "INSERT INTO h (t, i) VALUES (?, abs(?))";
static const char helper_set_z[] = "UPDATE h SET z = ? WHERE id <= ?";

struct helper {
	struct cm_migration_set	 set;
	struct cm_store		*st;
	struct cm_db		*d;
};

static void
helper_open(const struct fx *f, struct helper *h)
{
	load_set(NULL, &h->set);
	create_ok(f, &h->set);
	h->st = open_ok(f, &h->set, NULL);
	h->d = cm_store_db(h->st);
	assert_non_null(h->d);
	assert_int_equal(sqlite3_exec(h->d->db_conn, helper_ddl, NULL, NULL, NULL), SQLITE_OK);
}

static void
helper_close(struct helper *h)
{
	cm_store_close(h->st);
	cm_migrations_free(&h->set);
}

static int64_t
helper_rows(struct cm_db *d)
{
	struct store_query q;
	int64_t n = -1;

	if (store_row(&q, d, helper_count, "") == CM_OK)
		n = store_col_int64(&q, 0);
	assert_int_equal(store_done(&q), CM_OK);
	return n;
}

/* Inserts N rows with only i set (1, 2, …, N). */
static void
helper_fill(struct cm_db *d, int n)
{
	int k;

	for (k = 1; k <= n; k++)
		assert_int_equal(store_exec(d, helper_ins, "tTbBiI", NULL, NULL, (size_t)0,
		    NULL, NULL, (size_t)0, (int64_t)k, (int64_t)0), CM_OK);
}

/* Writes to fd 2 go to a file between capture_begin and capture_end. */
struct capture {
	char	path[64];
	int	fd;
	int	saved;
};

static void
capture_begin(struct capture *c)
{
	snprintf(c->path, sizeof(c->path), "/tmp/consentd-test-store-log-XXXXXX");
	c->fd = mkstemp(c->path);
	assert_true(c->fd >= 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(c->fd, STDERR_FILENO) >= 0);
}

/* What was written meanwhile; free() it. */
static char *
capture_end(struct capture *c)
{
	size_t len;
	char *p;

	fflush(stderr);
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	close(c->fd);
	p = read_all(c->path, &len);
	unlink(c->path);
	return p;
}

/* Every letter binds its type: t T b B i I, and I's 0 is NULL. */
static void
test_helper_letters(void **state)
{
	static const uint8_t blob[5] = { 0, 1, 2, 0, 255 };
	struct fx *f = *state;
	struct store_query q;
	struct helper h;
	uint8_t b32[32], got[32];
	int k;

	helper_open(f, &h);
	for (k = 0; k < 32; k++)
		b32[k] = (uint8_t)(k * 7 + 1);
	assert_int_equal(store_exec(h.d, helper_ins, "tTbBiI", "text", "ab\0cdef", (size_t)5,
	    b32, blob, sizeof(blob), INT64_MIN, INT64_MAX), CM_OK);
	assert_int_equal(store_exec(h.d, helper_ins, "tTbBiI", "", "xyz", (size_t)0, b32, blob,
	    (size_t)0, (int64_t)0, (int64_t)0), CM_OK);

	assert_int_equal(store_row(&q, h.d, helper_get, "i", (int64_t)1), CM_OK);
	assert_string_equal(store_col_text(&q, 0), "text");
	/* T binds its length, NUL and all. */
	assert_int_equal(store_col_bytes(&q, 1), 5);
	assert_memory_equal(store_col_text(&q, 1), "ab\0cd", 5);
	assert_int_equal(store_col_bytes(&q, 2), 32);
	assert_memory_equal(store_col_blob(&q, 2), b32, 32);
	assert_int_equal(store_col_bytes(&q, 3), 5);
	assert_memory_equal(store_col_blob(&q, 3), blob, 5);
	assert_true(store_col_int64(&q, 4) == INT64_MIN);
	assert_true(store_col_int64(&q, 5) == INT64_MAX);
	assert_string_equal(store_col_text(&q, 6), "text");
	assert_string_equal(store_col_text(&q, 7), "text");
	assert_string_equal(store_col_text(&q, 8), "blob");
	assert_string_equal(store_col_text(&q, 9), "blob");
	assert_string_equal(store_col_text(&q, 10), "integer");
	assert_string_equal(store_col_text(&q, 11), "integer");
	/* The column reader copies a blob of exactly the size asked. */
	memset(got, 0xee, sizeof(got));
	assert_true(store_column_blob(got, 32, &q, 2));
	assert_memory_equal(got, b32, 32);
	memset(got, 0xee, sizeof(got));
	assert_false(store_column_blob(got, 32, &q, 3));
	assert_false(store_column_blob(got, 32, &q, 0));
	for (k = 0; k < 32; k++)
		assert_int_equal(got[k], 0xee);
	assert_int_equal(store_done(&q), CM_OK);

	/* Empty text and blobs are values, not NULL; i's 0 is 0, I's is NULL. */
	assert_int_equal(store_row(&q, h.d, helper_get, "i", (int64_t)2), CM_OK);
	assert_string_equal(store_col_text(&q, 6), "text");
	assert_string_equal(store_col_text(&q, 7), "text");
	assert_int_equal(store_col_bytes(&q, 1), 0);
	assert_string_equal(store_col_text(&q, 9), "blob");
	assert_int_equal(store_col_bytes(&q, 3), 0);
	assert_string_equal(store_col_text(&q, 10), "integer");
	assert_int_equal(store_col_int64(&q, 4), 0);
	assert_string_equal(store_col_text(&q, 11), "null");
	/* What the readers ask of a column's kind. */
	assert_true(store_col_null(&q, 5));
	assert_false(store_col_null(&q, 4));
	assert_false(store_col_null(&q, 3));
	assert_true(store_col_is_blob(&q, 3));
	assert_false(store_col_is_blob(&q, 1));
	assert_false(store_col_is_blob(&q, 5));
	assert_int_equal(store_done(&q), CM_OK);
	helper_close(&h);
}

/*
 * What an erasure looks up by subject id must be found through an index,
 * so its cost does not grow with the store (make bench measures it; this
 * keeps the plans from regressing without timing anything). A full scan
 * of subjects here once made an erasure take a second at 1,000,000
 * subjects.
 */
static void
test_erasure_plans(void **state)
{
	static const char *const sqls[] = {
		"SELECT id FROM subjects WHERE merged_into = ?",
		"DELETE FROM identifiers WHERE subject_id = ?",
		"DELETE FROM profile_attributes WHERE subject_id = ?",
		"DELETE FROM preferences WHERE subject_id = ?",
		"UPDATE consent_events SET evidence = NULL WHERE subject_id = ? AND "
		    "evidence IS NOT NULL",
		"DELETE FROM audit_pseudonyms WHERE subject_id = ?",
		"DELETE FROM audit_openings WHERE subject_id = ?",
		"SELECT id FROM dsr_requests WHERE subject_id = ?",
		"DELETE FROM outbox WHERE subject_id = ?",
		"DELETE FROM sessions WHERE subject_id = ?",
		"DELETE FROM dsr_packages WHERE subject_id = ?",
	};
	struct fx *f = *state;
	struct helper h;
	sqlite3_stmt *st;
	const char *detail;
	char q[256];
	size_t i;

	helper_open(f, &h);
	for (i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sqls[i]);
		assert_int_equal(sqlite3_prepare_v2(h.d->db_conn, q, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			detail = (const char *)sqlite3_column_text(st, 3);
			if (strncmp(detail, "SCAN", 4) == 0)
				fail_msg("%s: %s", sqls[i], detail);
		}
		sqlite3_finalize(st);
	}
	helper_close(&h);
}

/* A NULL pointer binds NULL for every pointer letter. */
static void
test_helper_nulls(void **state)
{
	struct fx *f = *state;
	struct store_query q;
	struct helper h;
	int k;

	helper_open(f, &h);
	assert_int_equal(store_exec(h.d, helper_ins, "tTbBiI", NULL, NULL, (size_t)3, NULL,
	    NULL, (size_t)5, (int64_t)0, (int64_t)0), CM_OK);
	assert_int_equal(store_row(&q, h.d, helper_get, "i", (int64_t)1), CM_OK);
	for (k = 6; k <= 11; k++)
		assert_string_equal(store_col_text(&q, k), k == 10 ? "integer" : "null");
	assert_int_equal(store_done(&q), CM_OK);
	helper_close(&h);
}

/*
 * Changed rows are counted; a constraint failure is CM_CONFLICT and not
 * logged; any other failure is logged under the caller's name, without
 * the values bound.
 */
static void
test_helper_failures(void **state)
{
	struct fx *f = *state;
	struct capture cap;
	struct helper h;
	int64_t n = -1;
	char *log;

	helper_open(f, &h);
	helper_fill(h.d, 4);
	assert_int_equal(store_exec_changes(h.d, &n, helper_set_z, "ii", (int64_t)9,
	    (int64_t)3), CM_OK);
	assert_int_equal(n, 3);
	assert_int_equal(store_exec_changes(h.d, &n, helper_set_z, "ii", (int64_t)9,
	    (int64_t)0), CM_OK);
	assert_int_equal(n, 0);

	assert_int_equal(store_exec(h.d, helper_uc, "tti", "secret-1@example.com", "once",
	    (int64_t)1), CM_OK);
	capture_begin(&cap);
	assert_int_equal(store_exec(h.d, helper_uc, "tti", "secret-2@example.com", "once",
	    (int64_t)1), CM_CONFLICT);
	assert_int_equal(store_exec_changes(h.d, &n, helper_uc, "tti", "secret-3@example.com",
	    "twice", (int64_t)-1), CM_CONFLICT);
	log = capture_end(&cap);
	assert_string_equal(log, "");
	free(log);
	assert_int_equal(helper_rows(h.d), 5);

	/* abs() of the smallest integer overflows: an error, not a constraint. */
	capture_begin(&cap);
	assert_int_equal(store_exec(h.d, helper_overflow, "ti", "secret-4@example.com",
	    INT64_MIN), CM_IOERR);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "\"event\":\"store_error\""));
	assert_non_null(strstr(log, "\"func\":\"test_helper_failures\""));
	assert_non_null(strstr(log, "integer overflow"));
	assert_null(strstr(log, "secret"));
	assert_null(strstr(log, "9223372036854775808"));
	free(log);
	assert_int_equal(helper_rows(h.d), 5);
	/* The statement is reset and runs again. */
	assert_int_equal(store_exec(h.d, helper_overflow, "ti", "x", (int64_t)-5), CM_OK);
	assert_int_equal(helper_rows(h.d), 6);
	helper_close(&h);
}

/* One row, no row, and many rows read to the end or left early. */
static void
test_helper_rows(void **state)
{
	struct fx *f = *state;
	struct store_query q;
	struct helper h;
	int64_t want;

	helper_open(f, &h);
	assert_int_equal(store_row(&q, h.d, helper_get, "i", (int64_t)1), CM_NOTFOUND);
	assert_int_equal(store_done(&q), CM_OK);
	helper_fill(h.d, 5);
	assert_int_equal(store_row(&q, h.d, helper_get, "i", (int64_t)3), CM_OK);
	assert_int_equal(store_col_int64(&q, 4), 3);
	assert_false(store_next(&q));
	assert_int_equal(store_done(&q), CM_OK);

	store_query(&q, h.d, helper_ids, "i", (int64_t)2);
	for (want = 2; store_next(&q); want++)
		assert_int_equal(store_col_int64(&q, 0), want);
	assert_int_equal(want, 6);
	assert_false(store_next(&q));
	assert_int_equal(store_done(&q), CM_OK);

	/* Left after one row: the next query starts afresh on the cached statement. */
	store_query(&q, h.d, helper_ids, "i", (int64_t)1);
	assert_true(store_next(&q));
	assert_int_equal(store_col_int64(&q, 0), 1);
	assert_int_equal(store_done(&q), CM_OK);
	store_query(&q, h.d, helper_ids, "i", (int64_t)4);
	assert_false(q.q_own);
	assert_true(store_next(&q));
	assert_int_equal(store_col_int64(&q, 0), 4);
	assert_true(store_next(&q));
	assert_int_equal(store_col_int64(&q, 0), 5);
	assert_false(store_next(&q));
	assert_int_equal(store_done(&q), CM_OK);

	/* No rows at all. */
	store_query(&q, h.d, helper_ids, "i", (int64_t)99);
	assert_false(store_next(&q));
	assert_int_equal(store_done(&q), CM_OK);
	helper_close(&h);
}

/*
 * A query started while the cached statement is being read takes a
 * private one, and both read their own rows; a query that has finished
 * has given the cached statement back before store_done().
 */
static void
test_helper_nested(void **state)
{
	struct fx *f = *state;
	struct store_query outer, inner, one;
	struct helper h;
	int64_t want, in;

	helper_open(f, &h);
	helper_fill(h.d, 4);
	store_query(&outer, h.d, helper_ids, "i", (int64_t)1);
	assert_false(outer.q_own);
	for (want = 1; store_next(&outer); want++) {
		assert_int_equal(store_col_int64(&outer, 0), want);
		store_query(&inner, h.d, helper_ids, "i", want);
		assert_true(inner.q_own);
		for (in = want; store_next(&inner); in++)
			assert_int_equal(store_col_int64(&inner, 0), in);
		assert_int_equal(in, 5);
		assert_int_equal(store_done(&inner), CM_OK);
		/* store_row nests the same way. */
		assert_int_equal(store_row(&one, h.d, helper_ids, "i", (int64_t)3), CM_OK);
		assert_true(one.q_own);
		assert_int_equal(store_col_int64(&one, 0), 3);
		assert_int_equal(store_done(&one), CM_OK);
	}
	assert_int_equal(want, 5);
	assert_int_equal(store_done(&outer), CM_OK);

	/* Given back: the next query is on the cached statement again. */
	store_query(&outer, h.d, helper_ids, "i", (int64_t)1);
	assert_false(outer.q_own);
	assert_int_equal(store_done(&outer), CM_OK);

	/*
	 * A query with no rows is finished at once; one started before its
	 * store_done() takes the cached statement, and that store_done()
	 * leaves it alone.
	 */
	store_query(&outer, h.d, helper_ids, "i", (int64_t)99);
	store_query(&inner, h.d, helper_ids, "i", (int64_t)2);
	assert_false(inner.q_own);
	assert_true(store_next(&inner));
	assert_int_equal(store_col_int64(&inner, 0), 2);
	assert_int_equal(store_done(&outer), CM_OK);
	for (want = 3; store_next(&inner); want++)
		assert_int_equal(store_col_int64(&inner, 0), want);
	assert_int_equal(want, 5);
	assert_int_equal(store_done(&inner), CM_OK);
	helper_close(&h);
}

/* A letter outside the set, or a count of letters that is not the statement's, runs nothing. */
static void
test_helper_bad_format(void **state)
{
	struct fx *f = *state;
	struct store_query q;
	struct capture cap;
	struct helper h;
	char *log;

	helper_open(f, &h);
	capture_begin(&cap);
	assert_int_equal(store_exec(h.d, helper_ins, "tTbBix", "a", "b", (size_t)1, NULL,
	    NULL, (size_t)0, (int64_t)1, (int64_t)2), CM_IOERR);
	assert_int_equal(store_exec(h.d, helper_ins, "tTbBdI", "a", "b", (size_t)1, NULL,
	    NULL, (size_t)0, 1, (int64_t)2), CM_IOERR);
	assert_int_equal(store_exec(h.d, helper_ins, "tTbBi", "a", "b", (size_t)1, NULL,
	    NULL, (size_t)0, (int64_t)1), CM_IOERR);
	assert_int_equal(store_exec(h.d, helper_ins, "tTbBiIi", "a", "b", (size_t)1, NULL,
	    NULL, (size_t)0, (int64_t)1, (int64_t)2, (int64_t)3), CM_IOERR);
	assert_int_equal(store_exec(h.d, helper_count, "i", (int64_t)1), CM_IOERR);
	store_query(&q, h.d, helper_ids, "q", (int64_t)1);
	assert_false(store_next(&q));
	assert_int_equal(store_done(&q), CM_IOERR);
	assert_int_equal(store_row(&q, h.d, helper_get, "", (int64_t)1), CM_IOERR);
	assert_int_equal(store_done(&q), CM_IOERR);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "\"func\":\"test_helper_bad_format\""));
	assert_non_null(strstr(log, "parameter format does not fit the statement"));
	assert_non_null(strstr(log, "\"fmt\":\"tTbBix\""));
	free(log);
	assert_int_equal(helper_rows(h.d), 0);
	/* The statements still work with the right format. */
	helper_fill(h.d, 1);
	assert_int_equal(helper_rows(h.d), 1);
	helper_close(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_migrations),
		cmocka_unit_test_setup_teardown(test_erasure_plans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_fresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_is_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations_from_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_migration_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_without_apply_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failing_migration_rolled_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_migration_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_page_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_writes_are_transactional, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_per_thread_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_with_live_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_is_encrypted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_letters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_nulls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_bad_format, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
