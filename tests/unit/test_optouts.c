/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the opt-out ledger (src/store/optouts.c), on a real store
 * in a fresh data directory: each write of a "no" (a withdrawn or refused
 * event, a suppression entry, an objection, a restriction) adds one line
 * once its transaction committed, a rollback of either kind none, a grant
 * none, an objection saved again none; the lines hold blind indexes and
 * ids only and read back as written, odd bytes included; an edited or removed line makes
 * reading fail; sync puts back, as it was, a line a crash kept out, once.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

static int
setup(void **state)
{
	struct cm_migration_set set;
	struct cm_store_opts o;
	char err[512];
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t wrapped[CM_WRAPPED_LEN];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/consentd-test-optouts-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->ledger, sizeof(f->ledger), "%s/%s", f->dir, CM_OPTOUT_LEDGER);
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
	memset(wrapped, 7, sizeof(wrapped));
	if (cm_store_subject_insert(f->db, A, wrapped, 1000) != CM_OK ||
	    cm_store_subject_insert(f->db, B, wrapped, 1000) != CM_OK)
		return -1;
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

struct seen {
	struct cm_optout	o[8];
	size_t			n;
};

static int
see(void *arg, const struct cm_optout *o)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	s->o[s->n++] = *o;
	return 0;
}

static cm_result
read_ledger(struct fx *f, struct seen *s)
{
	char err[512];

	memset(s, 0, sizeof(*s));
	return cm_store_optouts_read(f->dir, f->keys, see, s, err, sizeof(err));
}

static void
event(struct fx *f, const char *subject, const char *state, int64_t collected)
{
	static int n;
	struct cm_event_row e;

	memset(&e, 0, sizeof(e));
	snprintf(e.e_event_id, sizeof(e.e_event_id), "evt_test%d", ++n);
	snprintf(e.e_subject, sizeof(e.e_subject), "%s", subject);
	snprintf(e.e_purpose, sizeof(e.e_purpose), "newsletter");
	snprintf(e.e_channel, sizeof(e.e_channel), "email");
	snprintf(e.e_state, sizeof(e.e_state), "%s", state);
	snprintf(e.e_method, sizeof(e.e_method), "web_form");
	snprintf(e.e_client, sizeof(e.e_client), "test");
	e.e_notice_version = 2;
	e.e_collected_us = collected;
	e.e_recorded_us = collected + 5;
	e.e_audit_index = n;
	assert_int_equal(cm_store_event_insert(f->db, &e), CM_OK);
}

/* One withdrawal, committed on its own: one line. */
static void
withdrawal(struct fx *f, const char *subject, int64_t collected)
{
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	event(f, subject, "withdrawn", collected);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
}

static void
objection(struct fx *f, const char *subject, int64_t at)
{
	struct cm_prefs_row p;

	memset(&p, 0, sizeof(p));
	p.p_objected_at = at;
	assert_int_equal(cm_store_prefs_put(f->db, subject, &p, at), CM_OK);
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

/* Every kind of "no" is a line once committed; rollbacks and grants are none. */
static void
test_lines_after_commit(void **state)
{
	struct fx *f = *state;
	uint8_t blind[32];
	struct seen s;
	struct stat sb;

	memset(blind, 0xab, sizeof(blind));
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	event(f, A, "withdrawn", 100);
	cm_db_rollback(f->db);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_db_savepoint(f->db), CM_OK);
	assert_int_equal(cm_store_suppression_put(f->db, "email", blind, "bounced", 150), CM_OK);
	assert_int_equal(cm_db_savepoint_rollback(f->db), CM_OK);
	event(f, A, "granted", 160);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(stat(f->ledger, &sb), -1);

	assert_int_equal(cm_db_begin(f->db), CM_OK);
	event(f, A, "refused", 200);
	assert_int_equal(cm_store_suppression_put(f->db, "email", blind, "complained", 300),
	    CM_OK);
	objection(f, B, 400);
	assert_int_equal(cm_store_subject_set_state(f->db, A, CM_SUBJECT_RESTRICTED, 500), CM_OK);
	/* Not before the commit. */
	assert_int_equal(stat(f->ledger, &sb), -1);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	/* The same objection saved again (a preference save) adds nothing. */
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	objection(f, B, 400);
	assert_int_equal(cm_db_commit(f->db), CM_OK);

	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.o[0].o_kind, CM_OPTOUT_CONSENT);
	assert_string_equal(s.o[0].o_subject, A);
	assert_string_equal(s.o[0].o_purpose, "newsletter");
	assert_string_equal(s.o[0].o_channel, "email");
	assert_string_equal(s.o[0].o_state, "refused");
	assert_string_equal(s.o[0].o_method, "web_form");
	assert_int_equal(s.o[0].o_notice, 2);
	assert_int_equal(s.o[0].o_at, 200);
	assert_int_equal(s.o[0].o_recorded, 205);
	assert_int_equal(s.o[1].o_kind, CM_OPTOUT_SUPPRESSION);
	assert_string_equal(s.o[1].o_type, "email");
	assert_memory_equal(s.o[1].o_blind, blind, 32);
	assert_string_equal(s.o[1].o_reason, "complained");
	assert_int_equal(s.o[1].o_at, 300);
	assert_int_equal(s.o[2].o_kind, CM_OPTOUT_OBJECTION);
	assert_string_equal(s.o[2].o_subject, B);
	assert_int_equal(s.o[2].o_at, 400);
	assert_int_equal(s.o[3].o_kind, CM_OPTOUT_RESTRICTION);
	assert_string_equal(s.o[3].o_subject, A);
	assert_int_equal(stat(f->ledger, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/* A read that, on its first line, commits a withdrawal of WHO at AT. */
struct reading {
	struct fx	*f;
	size_t		 n;	/* lines seen */
	const char	*who;
	int64_t		 at;
};

/*
 * On the first line: the ledger can be locked for an append (a reader
 * holding its shared lock through the read made every committing "no"
 * wait for the whole read, seconds at a server's start on a long ledger),
 * and a "no" committed now is appended at once.
 */
static int
see_and_write(void *arg, const struct cm_optout *o)
{
	struct reading *r = arg;
	int fd;

	(void)o;
	if (r->n++ > 0)
		return 0;
	fd = open(r->f->ledger, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(close(fd), 0);
	withdrawal(r->f, r->who, r->at);
	return 0;
}

/* A read locks nothing while it reads, and sees the ledger as it began. */
static void
test_read_while_appending(void **state)
{
	struct fx *f = *state;
	struct reading r = { f, 0, B, 700 };
	struct seen s;
	char err[512];

	withdrawal(f, A, 600);
	assert_int_equal(cm_store_optouts_read(f->dir, f->keys, see_and_write, &r, err,
	    sizeof(err)), CM_OK);
	assert_int_equal(r.n, 1);
	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.o[0].o_subject, A);
	assert_string_equal(s.o[1].o_subject, B);
	assert_int_equal(s.o[1].o_at, 700);
}

/*
 * A torn tail left by a crash is not read, even when an append cuts it off
 * and writes over it while the read goes on: the reader's buffer ends
 * inside the torn bytes, and what it reads next is the end of the new
 * line, which would join the torn line's start into one that ends in a
 * newline and fails its MAC (a false "the ledger was edited").
 */
static void
test_read_torn_tail_rewritten(void **state)
{
	struct fx *f = *state;
	struct reading r = { f, 0, A, 1999999 };	/* a line as long as the others */
	struct stat sb;
	char err[512], torn[8192];
	off_t line, k, i, size;
	size_t tlen;
	FILE *fp;

	/* Lines of one length L; K of them end within L of the first block. */
	withdrawal(f, A, 1000000);
	assert_int_equal(stat(f->ledger, &sb), 0);
	line = sb.st_size;
	k = ((off_t)sb.st_blksize - 1) / line;
	assert_true(k >= 2);
	for (i = 1; i < k; i++)
		withdrawal(f, A, 1000000 + i);
	assert_int_equal(stat(f->ledger, &sb), 0);
	size = sb.st_size;
	assert_int_equal(size, k * line);
	/* Torn bytes past the block's end, longer than the line that replaces them. */
	tlen = (size_t)((off_t)sb.st_blksize - size + line + 50);
	assert_true(tlen < sizeof(torn));
	memset(torn, 'x', tlen);
	memcpy(torn, "n1 c ", 5);
	fp = fopen(f->ledger, "a");
	assert_non_null(fp);
	assert_int_equal(fwrite(torn, 1, tlen, fp), tlen);
	assert_int_equal(fclose(fp), 0);

	assert_int_equal(cm_store_optouts_read(f->dir, f->keys, see_and_write, &r, err,
	    sizeof(err)), CM_OK);
	assert_int_equal(r.n, (size_t)k);
	assert_int_equal(stat(f->ledger, &sb), 0);
	assert_int_equal(sb.st_size, size + line);
	/* Read again: the K lines and the new one, all verifying. */
	r.n = 1;	/* past the first line: count only */
	assert_int_equal(cm_store_optouts_read(f->dir, f->keys, see_and_write, &r, err,
	    sizeof(err)), CM_OK);
	assert_int_equal(r.n, (size_t)k + 2);
}

/* An edited or removed line is found; sync puts a lost line back as it was. */
static void
test_tamper_and_sync(void **state)
{
	struct fx *f = *state;
	struct seen s;
	char err[512], *orig, *p, *now;
	size_t len, len2, added;
	bool found;

	withdrawal(f, A, 100);
	withdrawal(f, B, 200);
	assert_int_equal(cm_store_event_exists(f->db, B, "newsletter", "email", "withdrawn",
	    200, &found), CM_OK);
	assert_true(found);
	assert_int_equal(cm_store_event_exists(f->db, B, "newsletter", "email", "withdrawn",
	    201, &found), CM_OK);
	assert_false(found);
	orig = slurp(f->ledger, &len);

	p = strdup(orig);
	/* The collected_at of the first line (notice 2, collected 100) edited. */
	strstr(p, " 2 100 ")[3] = '9';
	put(f->ledger, p, len);
	assert_int_equal(read_ledger(f, &s), CM_AUTH);
	assert_int_equal(cm_store_optouts_sync(f->db, &added, err, sizeof(err)), CM_AUTH);
	assert_non_null(strstr(err, "optouts.ledger:1"));
	free(p);
	p = strchr(orig, '\n') + 1;
	put(f->ledger, p, len - (size_t)(p - orig));
	assert_int_equal(read_ledger(f, &s), CM_AUTH);

	/* The last line lost (torn by a crash): sync writes it again, once. */
	put(f->ledger, orig, len - 20);
	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 1);
	assert_int_equal(cm_store_optouts_sync(f->db, &added, err, sizeof(err)), CM_OK);
	assert_int_equal(added, 1);
	now = slurp(f->ledger, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(orig, now, len);
	assert_int_equal(cm_store_optouts_sync(f->db, &added, err, sizeof(err)), CM_OK);
	assert_int_equal(added, 0);
	free(orig);
	free(now);
}

/* A field with a space, a '%' or a byte outside ASCII reads back as written. */
static void
test_fields_round_trip(void **state)
{
	struct fx *f = *state;
	static const char odd[] = "x y%z\xc3\xa9";
	uint8_t blind[32];
	struct seen s;
	char *text;
	size_t len;

	memset(blind, 0x01, sizeof(blind));
	assert_int_equal(cm_store_suppression_put(f->db, odd, blind, "manual", 42), CM_OK);
	assert_int_equal(read_ledger(f, &s), CM_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.o[0].o_type, odd);
	assert_string_equal(s.o[0].o_reason, "manual");
	assert_int_equal(s.o[0].o_at, 42);
	text = slurp(f->ledger, &len);
	assert_non_null(strstr(text, "n1 s x%20y%25z%C3%A9 0101"));
	free(text);
}

/* Suppression bindings as "subject:blind-byte" strings, in the store's order. */
struct bindings {
	char	b[8][48];
	size_t	n;
};

static int
see_binding(void *arg, const char *subject, const char *type, const uint8_t *blind)
{
	struct bindings *s = arg;

	assert_string_equal(type, "email");
	assert_true(s->n < 8);
	snprintf(s->b[s->n++], sizeof(s->b[0]), "%s:%u", subject, blind[0]);
	return 0;
}

static void
bindings_are(struct fx *f, const char *subject, const char *want)
{
	struct bindings s = { .n = 0 };
	char got[400] = "";
	size_t i;

	assert_int_equal(cm_store_suppression_bindings(f->db, subject, see_binding, &s), CM_OK);
	for (i = 0; i < s.n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
		    s.b[i]);
	assert_string_equal(got, want);
}

/*
 * A subject's bindings to suppression entries, each once, whatever the
 * store is asked twice: binding again, a merge into a subject bound to the
 * same entry, an upgrade that rekeys an entry the subject holds under both
 * keys. None of them may drop a binding, or a "no" would stop following
 * the person.
 */
static void
test_suppression_bindings(void **state)
{
	struct fx *f = *state;
	uint8_t x[32], y[32], z[32];

	memset(x, 1, sizeof(x));
	memset(y, 2, sizeof(y));
	memset(z, 3, sizeof(z));
	assert_int_equal(cm_store_suppression_put(f->db, "email", x, "manual", 10), CM_OK);
	assert_int_equal(cm_store_suppression_put(f->db, "email", y, "bounced", 20), CM_OK);
	assert_int_equal(cm_store_suppression_put(f->db, "email", z, "manual", 30), CM_OK);

	assert_int_equal(cm_store_suppression_bind(f->db, A, "email", y), CM_OK);
	assert_int_equal(cm_store_suppression_bind(f->db, A, "email", y), CM_OK);
	bindings_are(f, A, "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa:2");

	/* A merges into B, which is bound to y already and to x only itself. */
	assert_int_equal(cm_store_suppression_bind(f->db, A, "email", x), CM_OK);
	assert_int_equal(cm_store_suppression_bind(f->db, B, "email", y), CM_OK);
	assert_int_equal(cm_store_suppression_bindings_move(f->db, A, B), CM_OK);
	bindings_are(f, A, "");
	bindings_are(f, B, "sub_bbbbbbbbbbbbbbbbbbbbbbbbbb:1 sub_bbbbbbbbbbbbbbbbbbbbbbbbbb:2");

	/* y is rekeyed to z, which B holds too; A holds y alone. */
	assert_int_equal(cm_store_suppression_bind(f->db, B, "email", z), CM_OK);
	assert_int_equal(cm_store_suppression_bind(f->db, A, "email", y), CM_OK);
	assert_int_equal(cm_store_suppression_rekey(f->db, "email", y, z), CM_OK);
	bindings_are(f, A, "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa:3");
	bindings_are(f, B, "sub_bbbbbbbbbbbbbbbbbbbbbbbbbb:1 sub_bbbbbbbbbbbbbbbbbbbbbbbbbb:3");
}

/*
 * Rows written whole, a second time over the first: every column takes
 * the new value, NULL included, and the row stays one row.
 */
static void
test_rows_written_again(void **state)
{
	struct fx *f = *state;
	struct cm_prefs_row p = { .p_present = true }, got;
	char v[16], channels[] = "{\"email\":false}", topics[] = "{\"news\":true}";

	p.p_channels = channels;
	snprintf(p.p_frequency, sizeof(p.p_frequency), "weekly");
	p.p_paused_until = 500;
	p.p_objected_at = 400;
	assert_int_equal(cm_store_prefs_put(f->db, A, &p, 1000), CM_OK);
	memset(&p, 0, sizeof(p));
	p.p_present = true;
	p.p_topics = topics;
	assert_int_equal(cm_store_prefs_put(f->db, A, &p, 2000), CM_OK);
	assert_int_equal(cm_store_prefs_get(f->db, A, &got), CM_OK);
	assert_true(got.p_present);
	assert_null(got.p_channels);
	assert_string_equal(got.p_topics, "{\"news\":true}");
	assert_string_equal(got.p_frequency, "");
	assert_int_equal(got.p_paused_until, 0);
	assert_int_equal(got.p_objected_at, 0);
	cm_prefs_row_clear(&got);

	assert_int_equal(cm_store_meta_set(f->db, "test.key", "one"), CM_OK);
	assert_int_equal(cm_store_meta_set(f->db, "test.key", "two"), CM_OK);
	assert_int_equal(cm_store_meta_get(f->db, "test.key", v, sizeof(v)), CM_OK);
	assert_string_equal(v, "two");
	assert_int_equal(cm_store_meta_set(f->db, "test.key", NULL), CM_OK);
	assert_int_equal(cm_store_meta_get(f->db, "test.key", v, sizeof(v)), CM_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_and_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fields_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_while_appending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_torn_tail_rewritten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suppression_bindings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_written_again, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
