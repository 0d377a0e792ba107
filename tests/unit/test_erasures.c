/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the erasure ledger and the store's backup (src/store/
 * erasures.c, backup.c), on a real store in a fresh data directory: a
 * line is written only once the erasure committed (a rollback, of the
 * transaction or to the savepoint, writes none); subjects merged into the
 * erased one are written too; a line edited, or removed before another,
 * makes reading fail, while a torn last line is ignored and cut off by the
 * next append; sync puts back what a crash kept out, once; a backup copy
 * opens, passes the integrity checks and holds a write made before it; and
 * nobody may take the store exclusively while a connection has it open.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct fx {
	char			 dir[64];
	char			 ledger[128];
	struct cm_keys		*keys;
	struct cm_store		*st;
	struct cm_db		*db;
};

static const char A[] = "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char B[] = "sub_bbbbbbbbbbbbbbbbbbbbbbbbbb";
static const char C[] = "sub_cccccccccccccccccccccccccc";

static int
setup(void **state)
{
	struct cm_migration_set set;
	struct cm_store_opts o;
	char err[512];
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/consentd-test-erasures-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->ledger, sizeof(f->ledger), "%s/%s", f->dir, CM_ERASURE_LEDGER);
	cm_store_opts_default(&o);
	if (cm_crypto_init() != 0 || cm_keys_create(f->dir, err, sizeof(err)) != CM_OK ||
	    cm_keys_load(f->dir, &f->keys, err, sizeof(err)) != CM_OK ||
	    cm_migrations_load(NULL, &set, err, sizeof(err)) != CM_OK)
		return -1;
	if (cm_store_create(f->dir, f->keys, &set, err, sizeof(err)) != CM_OK ||
	    cm_store_open(f->dir, f->keys, &set, &o, &f->st, err, sizeof(err)) != CM_OK) {
		cm_migrations_free(&set);
		return -1;
	}
	cm_migrations_free(&set);
	f->db = cm_store_db(f->st);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	cm_store_close(f->st);
	cm_keys_free(f->keys);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
add_subject(struct fx *f, const char *id)
{
	uint8_t wrapped[CM_WRAPPED_LEN];

	memset(wrapped, 7, sizeof(wrapped));
	assert_int_equal(cm_store_subject_insert(f->db, id, wrapped, 1000), CM_OK);
}

static void
erase(struct fx *f, const char *id, int64_t now)
{
	int64_t a, b, c;

	assert_int_equal(cm_store_subject_erase(f->db, id, &a, &b, &c, now), CM_OK);
}

struct seen {
	char	ids[8][CM_SUBJECT_ID_LEN + 1];
	int64_t	at[8];
	size_t	n;
};

static int
see(void *arg, const char *id, int64_t at)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	snprintf(s->ids[s->n], sizeof(s->ids[s->n]), "%s", id);
	s->at[s->n++] = at;
	return 0;
}

static cm_result
read_ledger(struct fx *f, struct seen *s)
{
	char err[512];

	memset(s, 0, sizeof(*s));
	return cm_store_erasures_read(f->dir, f->keys, see, s, err, sizeof(err));
}

static char *
slurp(const char *path, size_t *len)
{
	char *p = cm_file_read(path, 1 << 20, len);

	assert_non_null(p);
	return p;
}

static void
put(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* A line is written after COMMIT only; a rollback of any kind writes none. */
static void
test_after_commit_only(void **state)
{
	struct fx *f = *state;
	struct seen s;
	struct stat sb;

	add_subject(f, A);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	erase(f, A, 5000);
	cm_db_rollback(f->db);
	assert_int_equal(stat(f->ledger, &sb), -1);

	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_db_savepoint(f->db), CM_OK);
	erase(f, A, 6000);
	assert_int_equal(cm_db_savepoint_rollback(f->db), CM_OK);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(stat(f->ledger, &sb), -1);

	assert_int_equal(cm_db_begin(f->db), CM_OK);
	erase(f, A, 7000);
	/* Not before the commit. */
	assert_int_equal(stat(f->ledger, &sb), -1);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], A);
	assert_int_equal(s.at[0], 7000);
	assert_int_equal(stat(f->ledger, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/* Subjects merged into the erased one (at any depth) are written with it. */
static void
test_merged_written(void **state)
{
	struct fx *f = *state;
	struct seen s;

	add_subject(f, A);
	add_subject(f, B);
	add_subject(f, C);
	assert_int_equal(cm_store_subject_merge_away(f->db, B, A, 2000), CM_OK);
	assert_int_equal(cm_store_subject_merge_away(f->db, C, B, 3000), CM_OK);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	erase(f, A, 9000);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.ids[0], A);
	assert_string_equal(s.ids[1], B);
	assert_string_equal(s.ids[2], C);
}

/* Edits and removals are found; a torn last line is not an error. */
static void
test_tamper_and_torn(void **state)
{
	struct fx *f = *state;
	struct seen s;
	char *orig, *p;
	size_t len;

	add_subject(f, A);
	add_subject(f, B);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	erase(f, A, 100);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	erase(f, B, 200);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	orig = slurp(f->ledger, &len);

	/* The time of the first line edited. */
	p = strdup(orig);
	strstr(p, " 100 ")[1] = '9';
	put(f->ledger, p, len);
	assert_int_equal(read_ledger(f, &s), CM_AUTH);
	free(p);

	/* The first line removed: the second's MAC no longer chains. */
	p = strchr(orig, '\n') + 1;
	put(f->ledger, p, len - (size_t)(p - orig));
	assert_int_equal(read_ledger(f, &s), CM_AUTH);

	/* A torn last line is ignored, and the next append cuts it off. */
	put(f->ledger, orig, len - 10);
	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 1);
	add_subject(f, C);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	erase(f, C, 300);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[1], C);
	free(orig);
}

/* Sync puts back the line a crash kept out, once, as it was. */
static void
test_sync(void **state)
{
	struct fx *f = *state;
	char err[512], *orig, *now;
	size_t added, len, len2;

	add_subject(f, A);
	add_subject(f, B);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	erase(f, A, 100);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(cm_store_erasures_sync(f->db, &added, err, sizeof(err)), CM_OK);
	assert_int_equal(added, 0);
	orig = slurp(f->ledger, &len);
	assert_int_equal(unlink(f->ledger), 0);
	assert_int_equal(cm_store_erasures_sync(f->db, &added, err, sizeof(err)), CM_OK);
	assert_int_equal(added, 1);
	now = slurp(f->ledger, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(orig, now, len);
	assert_int_equal(cm_store_erasures_sync(f->db, &added, err, sizeof(err)), CM_OK);
	assert_int_equal(added, 0);
	/* A ledger that does not verify is not appended to. */
	now[3] = now[3] == 'a' ? 'b' : 'a';
	put(f->ledger, now, len2);
	assert_int_equal(cm_store_erasures_sync(f->db, &added, err, sizeof(err)), CM_AUTH);
	assert_non_null(strstr(err, "erasures.ledger:1"));
	free(orig);
	free(now);
}

/* A backup holds a committed write, opens and checks clean; the lock probe. */
static void
test_backup_and_probe(void **state)
{
	struct fx *f = *state;
	struct cm_migration_set set;
	struct cm_store_opts o;
	struct cm_backup_stats bs;
	struct cm_subject_row row;
	struct cm_store *copy = NULL;
	char err[512], sub[128], dest[160];
	bool cipher;

	add_subject(f, A);
	snprintf(sub, sizeof(sub), "%s/copy", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/%s", sub, CM_DB_FILE);
	assert_int_equal(cm_store_backup(f->db, dest, &bs, err, sizeof(err)), CM_OK);
	assert_true(bs.bs_pages > 0);
	/* Nobody may take the store while this connection has it open. */
	assert_int_equal(cm_store_probe_unused(f->dir, f->keys, err, sizeof(err)), CM_BUSY);
	assert_non_null(strstr(err, "in use"));
	assert_int_equal(cm_store_probe_unused(sub, f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_probe_unused(f->ledger, f->keys, err, sizeof(err)),
	    CM_NOTFOUND);

	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	cm_store_opts_default(&o);
	o.so_apply = false;
	assert_int_equal(cm_store_open(sub, f->keys, &set, &o, &copy, err, sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	assert_int_equal(cm_store_integrity(cm_store_db(copy), &cipher, err, sizeof(err)),
	    CM_OK);
	assert_int_equal(cm_store_subject_get(cm_store_db(copy), A, &row), CM_OK);
	cm_store_close(copy);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_after_commit_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merged_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_and_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup_and_probe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
