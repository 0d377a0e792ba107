/* SPDX-License-Identifier: ISC */
/*
 * consentd backup and consentd restore: copies of the store that cannot
 * lose data, and putting one back without bringing an erased person back.
 *
 * backup copies the store through the store's online backup (one read
 * snapshot, write-ahead log included; the server may keep running and
 * writing) into a staging directory beside FILE, checks the copy as a
 * restore would (it opens with the key, SQLCipher's and SQLite's integrity
 * checks pass, `audit verify` passes, state check included), then syncs it
 * and renames it to FILE, so FILE is always a whole, checked copy.
 *
 * restore needs the server stopped. It checks FILE the same way in a
 * staging directory inside DIR, applies pending migrations, then erases
 * again every subject the erasure ledger (DIR/erasures.ledger, outside the
 * database) records and the copy still holds, through the erasure of a
 * data-subject request, then records again every "no" the opt-out ledger
 * (DIR/optouts.ledger, src/cli/optouts.c) holds and the copy lacks, and
 * checks the result once more. Only then is the store swapped: the old
 * database is renamed aside, the new one renamed in, the directory synced,
 * and the old one deleted.
 */
#define _GNU_SOURCE	/* open_memstream */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/upgrade.h"
#include "consentd/util.h"

#define RESTORE_LEDGERS_MAX	64

struct backup_args {
	const char	*data;
	const char	*to;
	bool		 json;
	const char	*policy;	/* restore: for the opt-out ledger's consents */
	bool		 replay;	/* restore --replay: the store in place */
	/* restore --ledgers: other nodes' data directories */
	const char	*ledgers[RESTORE_LEDGERS_MAX];
	size_t		 nledgers;
};

/* What a checked copy holds, for the summary. */
struct copy_facts {
	uint64_t	 cf_audit_size;
	uint64_t	 cf_cp_size;
	char		 cf_cp_root[48];	/* base64, "" when no checkpoint */
	unsigned	 cf_passed;
	bool		 cf_cipher;	/* cipher_integrity_check ran */
	long long	 cf_bytes;
};

static int
backup_set(int val, const char *arg, void *ctx)
{
	struct backup_args *a = ctx;

	switch (val) {
	case 'd': a->data = arg; return 0;
	case 't': a->to = arg; return 0;
	case 'p': a->policy = arg; return 0;
	case 'l':
		if (a->nledgers == RESTORE_LEDGERS_MAX) {
			cm_cli_error("--ledgers: at most %d directories", RESTORE_LEDGERS_MAX);
			return CM_EXIT_USAGE;
		}
		a->ledgers[a->nledgers++] = arg;
		return 0;
	}
	return CM_EXIT_USAGE;
}

/* DIR/NAME SUFFIX into OUT: 0, or -1 (OUT "") when it does not fit. */
static int
path_join(char *out, size_t outlen, const char *dir, const char *name, const char *suffix)
{
	int n = snprintf(out, outlen, "%s/%s%s", dir, name, suffix);

	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* Syncs the directory DIR, so the names renamed or created in it last. */
static int
sync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
sync_file(const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Removes the staging directory STAGE and what SQLite may have left in it. */
static void
stage_remove(const char *stage)
{
	static const char *const names[] = { CM_DB_FILE, CM_DB_FILE "-wal", CM_DB_FILE "-shm",
	    CM_DB_FILE "-journal", CM_ERASURE_LEDGER, CM_OPTOUT_LEDGER };
	char path[4096];
	size_t i;

	for (i = 0; i < CM_NELEM(names); i++)
		if (path_join(path, sizeof(path), stage, names[i], "") == 0)
			(void)unlink(path);
	(void)rmdir(stage);
}

/*
 * Opens the copy in STAGE with KEYS and checks it as a restore relies on
 * it: the key, SQLCipher's and SQLite's integrity checks, and the whole
 * of `audit verify` (the state against the log included). Fills CF; on
 * failure prints why and returns non-zero. With APPLY, pending
 * migrations are applied first and *OUT keeps the store open.
 */
static int
copy_check(const char *stage, const struct cm_keys *keys, bool apply, struct copy_facts *cf,
    struct cm_store **out)
{
	struct cm_migration_set set;
	struct cm_store_opts opts;
	struct cm_verify_report rep;
	struct cm_checkpoint_row cp;
	struct cm_store *st = NULL;
	struct cm_upgrade_report up;
	struct cm_db *db;
	char err[1024], *lines = NULL;
	size_t nlines = 0;
	FILE *mem;
	cm_result rc;
	int ret = -1;

	memset(cf, 0, sizeof(*cf));
	if (out != NULL)
		*out = NULL;
	if (cm_migrations_load(NULL, &set, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return -1;
	}
	cm_store_opts_default(&opts);
	opts.so_apply = apply;
	rc = cm_store_open(stage, keys, &set, &opts, &st, err, sizeof(err));
	cm_migrations_free(&set);
	if (rc != CM_OK) {
		if (rc == CM_AUTH)
			cm_cli_error("the copy does not open with this data directory's key: a "
			    "damaged file, or a copy of another store");
		else
			cm_cli_error("cannot open the copy: %s", err);
		return -1;
	}
	if ((db = cm_store_db(st)) == NULL ||
	    (apply && cm_upgrade_run(db, keys, &up) != CM_OK)) {
		cm_cli_error("cannot open the copy");
		goto out;
	}
	if ((rc = cm_store_integrity(db, &cf->cf_cipher, err, sizeof(err))) != CM_OK) {
		cm_cli_error("the copy fails its integrity check: %s", err);
		goto out;
	}
	if ((mem = open_memstream(&lines, &nlines)) == NULL)
		goto out;
	rc = cm_audit_verify(db, keys, NULL, mem, &rep);
	fclose(mem);
	if (rc != CM_OK || rep.vr_failed > 0) {
		cm_cli_error("the copy's audit log does not verify (%u failed):", rep.vr_failed);
		if (lines != NULL)
			fputs(lines, stderr);
		goto out;
	}
	cf->cf_passed = rep.vr_passed;
	cf->cf_audit_size = rep.vr_entries;
	if (cm_store_audit_checkpoint_latest(db, &cp) == CM_OK) {
		cf->cf_cp_size = cp.cp_size;
		cm_base64(cf->cf_cp_root, sizeof(cf->cf_cp_root), cp.cp_root, 32);
		free(cp.cp_note);
	}
	ret = 0;
out:
	free(lines);
	if (ret == 0 && out != NULL)
		*out = st;
	else
		cm_store_close(st);
	return ret;
}

/* Makes a staging directory NEAR (a directory) into OUT. */
static int
stage_make(const char *near, const char *what, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/.consentd-%s.XXXXXX", near, what);

	if (n < 0 || (size_t)n >= outlen || mkdtemp(out) == NULL) {
		cm_cli_error("cannot make a staging directory in %s: %s", near,
		    n < 0 || (size_t)n >= outlen ? "path too long" : strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The summary of a checked copy: one JSON object (EXTRA's members added;
 * EXTRA is stolen) with --json, else lines for a person.
 */
static void
print_facts(const struct copy_facts *cf, bool json, const char *what, const char *file,
    json_t *extra)
{
	json_t *o;
	char *t;

	if (json) {
		o = json_pack("{s:s, s:I, s:I, s:o, s:I, s:b}", what, file, "bytes",
		    (json_int_t)cf->cf_bytes,
		    "audit_size", (json_int_t)cf->cf_audit_size, "checkpoint",
		    cf->cf_cp_root[0] != '\0' ? json_pack("{s:I, s:s}", "size",
		    (json_int_t)cf->cf_cp_size, "root", cf->cf_cp_root) : json_null(),
		    "checks_passed", (json_int_t)cf->cf_passed, "cipher_integrity_check",
		    cf->cf_cipher);
		if (o != NULL && extra != NULL)
			json_object_update(o, extra);
		if (o != NULL && (t = json_dumps(o, JSON_COMPACT)) != NULL) {
			printf("%s\n", t);
			free(t);
		}
		json_decref(o);
		json_decref(extra);
		return;
	}
	json_decref(extra);
	printf("%s: %s\n%lld bytes, %" PRIu64 " audit entries\n", what, file, cf->cf_bytes,
	    cf->cf_audit_size);
	if (cf->cf_cp_root[0] != '\0')
		printf("latest checkpoint: size %" PRIu64 ", root %s\n", cf->cf_cp_size,
		    cf->cf_cp_root);
	else
		printf("latest checkpoint: none yet\n");
	printf("verified: %s, audit log and state (%u checks passed)\n",
	    cf->cf_cipher ? "cipher integrity, integrity" :
	    "integrity (every page read through its MAC)", cf->cf_passed);
}

/* Copies the live store of DIR into STAGE/consentd.db and checks it there. */
static int
backup_take(const char *dir, const char *stage, struct copy_facts *cf)
{
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_backup_stats bs;
	struct cm_db *db;
	char dest[4096], err[1024];
	struct stat sb;
	size_t added = 0;
	int rc;

	if ((rc = cm_cli_open(dir, NULL, false, &keys, &store)) != CM_EXIT_OK)
		return rc;
	rc = CM_EXIT_ERROR;
	if ((db = cm_store_db(store)) == NULL)
		goto out;
	/* Erasures a crash kept out of the ledger go in before the copy is made. */
	if (cm_store_erasures_sync(db, &added, err, sizeof(err)) != CM_OK)
		cm_cli_error("warning: %s", err);
	/* And the "no"s a crash kept out of the opt-out ledger. */
	if (cm_store_optouts_sync(db, &added, err, sizeof(err)) != CM_OK)
		cm_cli_error("warning: %s", err);
	if (path_join(dest, sizeof(dest), stage, CM_DB_FILE, "") != 0 ||
	    cm_store_backup(db, dest, &bs, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		goto out;
	}
	cm_store_close(store);
	store = NULL;
	if (copy_check(stage, keys, false, cf, NULL) != 0)
		goto out;
	if (chmod(dest, 0600) != 0 || stat(dest, &sb) != 0 || sync_file(dest) != 0) {
		cm_cli_error("cannot sync the copy: %s", strerror(errno));
		goto out;
	}
	cf->cf_bytes = (long long)sb.st_size;
	rc = CM_EXIT_OK;
out:
	cm_store_close(store);
	cm_keys_free(keys);
	return rc;
}

int
cm_cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "to", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct backup_args a = { .data = NULL };
	struct copy_facts cf;
	char stage[3072], dest[4096], *tocopy, *parent;
	int c, rc;

	if (cm_cli_env_defaults(opts, backup_set, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("backup", false);
			return CM_EXIT_OK;
		}
		if (c == 'j')
			a.json = true;
		else if (c == '?' || backup_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (optind != argc)
		goto usage;
	if (a.to == NULL || a.to[0] == '\0') {
		cm_cli_error("--to: the backup file to write is required");
		return CM_EXIT_USAGE;
	}
	if (cm_cli_store_pg(cm_cli_data_dir(a.data), "backup", CM_CLI_PG_BACKUP))
		return CM_EXIT_ERROR;
	tocopy = cm_strdup(a.to);
	parent = dirname(tocopy);
	if (stage_make(parent, "backup", stage, sizeof(stage)) != 0) {
		free(tocopy);
		return CM_EXIT_USAGE;
	}
	rc = backup_take(cm_cli_data_dir(a.data), stage, &cf);
	path_join(dest, sizeof(dest), stage, CM_DB_FILE, "");
	if (rc == CM_EXIT_OK && (rename(dest, a.to) != 0 || sync_dir(parent) != 0)) {
		cm_cli_error("cannot put the backup at %s: %s", a.to, strerror(errno));
		rc = CM_EXIT_ERROR;
	}
	stage_remove(stage);
	free(tocopy);
	if (rc == CM_EXIT_OK)
		print_facts(&cf, a.json, "backup", a.to, NULL);
	return rc;
usage:
	cm_cli_usage("backup", true);
	return CM_EXIT_USAGE;
}

/* ---- restore ------------------------------------------------------------- */

struct ledger_list {
	char	(*ids)[CM_SUBJECT_ID_LEN + 1];
	int64_t	*at;
	size_t	 n;
};

static int
ledger_collect(void *arg, const char *id, int64_t at)
{
	struct ledger_list *l = arg;

	l->ids = cm_reallocarray(l->ids, l->n + 1, sizeof(*l->ids));
	l->at = cm_reallocarray(l->at, l->n + 1, sizeof(*l->at));
	snprintf(l->ids[l->n], sizeof(l->ids[l->n]), "%s", id);
	l->at[l->n++] = at;
	return 0;
}

/*
 * Reads DIR's erasure ledger into L (appended) and checks and counts its
 * opt-out ledger into OL, WHAT saying what a ledger that cannot be trusted
 * stops. 0, or -1 after saying why.
 */
static int
ledgers_read(const char *dir, const struct cm_keys *keys, struct ledger_list *l,
    struct cm_cli_optouts *ol, const char *what)
{
	char err[1024];

	if (cm_store_erasures_read(dir, keys, ledger_collect, l, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s; the erasure ledger cannot be trusted, so nothing is %s "
		    "(nothing was changed)", err, what);
		return -1;
	}
	return cm_cli_optouts_load(dir, keys, ol);
}

/* Copies FROM into the new file TO (mode 0600), synced. */
static int
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n = 0;
	int in, out, rc = -1;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (n == 0 && fsync(out) == 0)
		rc = 0;
	close(in);
	if (close(out) != 0)
		rc = -1;
	return rc;
}

/*
 * Before anything is read: nobody may have DIR's store open, and the
 * ledgers get what the live store holds and they lack (a crash may have
 * kept a line out); a ledger that does not verify stops it.
 */
static int
restore_prepare(const char *dir, const struct cm_keys *keys, bool *unreadable)
{
	struct cm_migration_set set;
	struct cm_store_opts opts;
	struct cm_store *st = NULL;
	struct cm_db *db;
	char err[1024];
	size_t added;
	cm_result rc;

	rc = cm_store_probe_unused(dir, keys, err, sizeof(err));
	*unreadable = rc == CM_AUTH;
	if (rc == CM_BUSY || (rc != CM_OK && rc != CM_NOTFOUND && rc != CM_AUTH)) {
		cm_cli_error("%s (nothing was changed)", err);
		return -1;
	}
	if (rc == CM_OK && cm_migrations_load(NULL, &set, err, sizeof(err)) == CM_OK) {
		cm_store_opts_default(&opts);
		opts.so_apply = false;
		if (cm_store_open(dir, keys, &set, &opts, &st, err, sizeof(err)) == CM_OK &&
		    (db = cm_store_db(st)) != NULL &&
		    (cm_store_erasures_sync(db, &added, err, sizeof(err)) == CM_AUTH ||
		    cm_store_optouts_sync(db, &added, err, sizeof(err)) == CM_AUTH)) {
			cm_cli_error("%s; the ledger cannot be trusted, so nothing is "
			    "restored (nothing was changed)", err);
			cm_store_close(st);
			cm_migrations_free(&set);
			return -1;
		}
		cm_store_close(st);
		cm_migrations_free(&set);
	}
	return 0;
}

/*
 * Erases again, in the staged store ST, every subject of the ledger L it
 * still holds, each in a transaction of its own; *DONE how many. Then
 * records again every "no" of the opt-out ledger OL it lacks (policy POL);
 * *ODONE how many. Then signs a checkpoint over the entries that wrote.
 */
static int
restore_replay(struct cm_store *st, const struct cm_keys *keys, const struct ledger_list *l,
    size_t *done, const struct cm_policy *pol, const struct cm_cli_optouts *ol,
    size_t *odone)
{
	char origin[CM_AUDIT_ORIGIN_MAX + 1];
	struct cm_why w;
	struct cm_ctx cx;
	struct cm_db *db;
	bool did, signed_;
	size_t i;
	cm_result rc = CM_OK;

	*done = 0;
	if ((db = cm_store_db(st)) == NULL)
		return -1;
	for (i = 0; i < l->n; i++) {
		memset(&w, 0, sizeof(w));
		cm_ctx_init(&cx, db, keys, NULL, "system:restore");
		if ((rc = cm_db_begin(db)) != CM_OK)
			break;
		if ((rc = cm_dsr_erasure_replay(&cx, l->ids[i], l->at[i], &did, &w)) != CM_OK) {
			cm_db_rollback(db);
			break;
		}
		if ((rc = cm_db_commit(db)) != CM_OK)
			break;
		if (did)
			(*done)++;
	}
	if (rc != CM_OK) {
		cm_cli_error("cannot erase again subject %s of the ledger: %s", l->ids[i],
		    cm_result_str(rc));
		return -1;
	}
	if (cm_cli_optouts_replay(db, keys, pol, ol, odone) != 0)
		return -1;
	if (*done + *odone > 0 && (cm_audit_origin(db, origin, sizeof(origin)) != CM_OK ||
	    cm_audit_checkpoint(db, keys, origin, &signed_) != CM_OK)) {
		cm_cli_error("cannot sign a checkpoint after the erasures and opt-outs");
		return -1;
	}
	return 0;
}

/*
 * Puts STAGE/consentd.db in place of DIR/consentd.db: the old database
 * (and any -wal or -shm beside it) is renamed aside, the new one renamed
 * in, the directory synced; then the old one is deleted, unless KEEP_OLD
 * (it did not open with the key: what it is, the operator decides). On
 * failure the old one is put back.
 */
static int
restore_swap(const char *dir, const char *stage, bool keep_old)
{
	static const char *const side[] = { "", "-wal", "-shm" };
	char from[4096], to[4096], staged[4096];
	bool moved[3] = { false, false, false };
	size_t i;
	int ret = -1;

	path_join(staged, sizeof(staged), stage, CM_DB_FILE, "");
	for (i = 0; i < CM_NELEM(side); i++) {
		path_join(from, sizeof(from), dir, CM_DB_FILE, side[i]);
		path_join(to, sizeof(to), dir, CM_DB_FILE ".before-restore", side[i]);
		if (rename(from, to) == 0)
			moved[i] = true;
		else if (errno != ENOENT)
			goto undo;
	}
	path_join(to, sizeof(to), dir, CM_DB_FILE, "");
	if (rename(staged, to) != 0 || sync_dir(dir) != 0)
		goto undo;
	for (i = 0; i < CM_NELEM(side) && !keep_old; i++) {
		path_join(to, sizeof(to), dir, CM_DB_FILE ".before-restore", side[i]);
		if (moved[i])
			(void)unlink(to);
	}
	if (keep_old && moved[0])
		cm_cli_error("the old database did not open with the key; it is kept as "
		    "%s/%s.before-restore", dir, CM_DB_FILE);
	(void)sync_dir(dir);
	return 0;
undo:
	cm_cli_error("cannot put the restored store in place: %s", strerror(errno));
	for (i = 0; i < CM_NELEM(side); i++) {
		path_join(from, sizeof(from), dir, CM_DB_FILE ".before-restore", side[i]);
		path_join(to, sizeof(to), dir, CM_DB_FILE, side[i]);
		if (moved[i])
			(void)rename(from, to);
	}
	(void)sync_dir(dir);
	return ret;
}

/* The restore of FILE into DIR, once the arguments are checked. */
static int
restore_run(const char *dir, const char *file, bool json, const char *policy)
{
	struct ledger_list l = { NULL, NULL, 0 };
	struct cm_cli_optouts ol = { NULL, 0, 0 };
	struct cm_policy *pol = NULL;
	size_t odone = 0;
	struct cm_keys *keys = NULL;
	struct cm_store *st = NULL;
	struct copy_facts cf;
	struct stat sb;
	char stage[3072], staged[4096], err[1024];
	size_t done = 0;
	bool unreadable = false;
	int rc = CM_EXIT_ERROR;

	stage[0] = '\0';
	if (cm_crypto_init() != 0) {
		cm_cli_error("cannot initialise libsodium");
		return CM_EXIT_ERROR;
	}
	if (cm_keys_load(dir, &keys, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	if (restore_prepare(dir, keys, &unreadable) != 0 ||
	    ledgers_read(dir, keys, &l, &ol, "restored") != 0)
		goto out;
	/* A withdrawal is recorded again against the policy's purposes. */
	if (cm_policy_load(policy, &pol, err, sizeof(err)) != CM_OK && ol.nconsent > 0) {
		cm_cli_error("--policy: %s: the opt-out ledger's consents need the policy "
		    "(nothing was changed)", err);
		goto out;
	}
	if (stage_make(dir, "restore", stage, sizeof(stage)) != 0)
		goto out;
	path_join(staged, sizeof(staged), stage, CM_DB_FILE, "");
	if (copy_file(file, staged) != 0) {
		cm_cli_error("cannot copy %s: %s (nothing was changed)", file, strerror(errno));
		goto out;
	}
	/* Checked as it is, then migrated, erased again and checked once more. */
	if (copy_check(stage, keys, false, &cf, NULL) != 0 ||
	    copy_check(stage, keys, true, &cf, &st) != 0 ||
	    restore_replay(st, keys, &l, &done, pol, &ol, &odone) != 0) {
		cm_cli_error("%s was not restored (nothing was changed)", file);
		goto out;
	}
	cm_store_close(st);
	st = NULL;
	if (copy_check(stage, keys, false, &cf, NULL) != 0 || sync_file(staged) != 0 ||
	    stat(staged, &sb) != 0) {
		cm_cli_error("%s was not restored (nothing was changed)", file);
		goto out;
	}
	cf.cf_bytes = (long long)sb.st_size;
	if (cm_store_probe_unused(dir, keys, err, sizeof(err)) == CM_BUSY) {
		cm_cli_error("%s (nothing was changed)", err);
		goto out;
	}
	if (restore_swap(dir, stage, unreadable) != 0)
		goto out;
	print_facts(&cf, json, "restored", file, json_pack("{s:I, s:I, s:I, s:I}",
	    "ledger_lines", (json_int_t)l.n, "erasures_replayed", (json_int_t)done,
	    "optout_lines", (json_int_t)ol.n, "optouts_replayed", (json_int_t)odone));
	if (!json)
		printf("erasure ledger: %zu lines, %zu erasures made after the backup "
		    "applied again\n", l.n, done);
	if (!json)
		printf("opt-out ledger: %zu lines, %zu opt-outs said after the backup "
		    "recorded again\n", ol.n, odone);
	rc = CM_EXIT_OK;
out:
	cm_store_close(st);
	if (stage[0] != '\0')
		stage_remove(stage);
	free(l.ids);
	free(l.at);
	cm_policy_free(pol);
	cm_keys_free(keys);
	return rc;
}

/*
 * restore --replay: the store of DIR was put back by other means (on
 * PostgreSQL, its own tools: pgBackRest, pg_dump); with every server
 * stopped, erases again each subject of the ledgers it still holds and
 * records again each "no" it lacks, in place. The ledgers are DIR's and
 * those of the data directories FROM (the other nodes', which wrote their
 * own); every one must verify before anything is written.
 */
static int
restore_in_place(const char *dir, const char *const *from, size_t nfrom, bool json,
    const char *policy)
{
	struct ledger_list l = { NULL, NULL, 0 };
	struct cm_cli_optouts ol[RESTORE_LEDGERS_MAX + 1];
	struct cm_policy *pol = NULL;
	struct cm_keys *keys = NULL;
	struct cm_store *st = NULL;
	struct cm_db *db;
	const char *dirs[RESTORE_LEDGERS_MAX + 1];
	char err[1024];
	size_t i, ndirs = 0, done = 0, odone = 0, oall = 0, olines = 0, nconsent = 0, more;
	int rc;

	memset(ol, 0, sizeof(ol));
	dirs[ndirs++] = dir;
	for (i = 0; i < nfrom; i++)
		dirs[ndirs++] = from[i];
	if ((rc = cm_cli_open(dir, NULL, true, &keys, &st)) != CM_EXIT_OK)
		return rc;
	rc = CM_EXIT_ERROR;
	if ((db = cm_store_db(st)) == NULL ||
	    cm_store_lock_offline(db, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", db == NULL ? "cannot open the store" : err);
		goto out;
	}
	/* Every ledger, read whole and verified, before a row is written. */
	for (i = 0; i < ndirs; i++) {
		if (ledgers_read(dirs[i], keys, &l, &ol[i], "replayed") != 0)
			goto out;
		olines += ol[i].n;
		nconsent += ol[i].nconsent;
	}
	if (cm_policy_load(policy, &pol, err, sizeof(err)) != CM_OK && nconsent > 0) {
		cm_cli_error("--policy: %s: the opt-out ledger's consents need the policy "
		    "(nothing was changed)", err);
		goto out;
	}
	if (restore_replay(st, keys, &l, &done, pol, &ol[0], &odone) != 0)
		goto out;
	oall = odone;
	for (i = 1; i < ndirs; i++) {
		if (cm_cli_optouts_replay(db, keys, pol, &ol[i], &more) != 0)
			goto out;
		oall += more;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "replayed", "in place",
		    "ledgers", (json_int_t)ndirs, "ledger_lines", (json_int_t)l.n,
		    "erasures_replayed", (json_int_t)done, "optout_lines", (json_int_t)olines,
		    "optouts_replayed", (json_int_t)oall);

		if (o != NULL && json_dumpf(o, stdout, JSON_COMPACT) == 0)
			putchar('\n');
		json_decref(o);
	} else {
		printf("erasure ledgers (%zu): %zu lines, %zu erasures applied again\n", ndirs,
		    l.n, done);
		printf("opt-out ledgers (%zu): %zu lines, %zu opt-outs recorded again\n", ndirs,
		    olines, oall);
	}
	rc = CM_EXIT_OK;
out:
	cm_store_close(st);
	free(l.ids);
	free(l.at);
	cm_policy_free(pol);
	cm_keys_free(keys);
	return rc;
}

int
cm_cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "policy", required_argument, NULL, 'p' },
		{ "replay", no_argument, NULL, 'r' },
		{ "ledgers", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct backup_args a = { .policy = "./policy" };
	struct stat sb;
	size_t i;
	int c;

	if (cm_cli_env_defaults(opts, backup_set, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("restore", false);
			return CM_EXIT_OK;
		}
		if (c == 'j')
			a.json = true;
		else if (c == 'r')
			a.replay = true;
		else if (c == '?' || backup_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (stat(cm_cli_data_dir(a.data), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		cm_cli_error("--data: %s is not a data directory", cm_cli_data_dir(a.data));
		return CM_EXIT_USAGE;
	}
	for (i = 0; i < a.nledgers; i++)
		if (stat(a.ledgers[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			cm_cli_error("--ledgers: %s is not a data directory", a.ledgers[i]);
			return CM_EXIT_USAGE;
		}
	if (a.replay) {
		if (optind != argc) {
			cm_cli_error("restore --replay: no FILE; the store is replayed in place");
			goto usage;
		}
		return restore_in_place(cm_cli_data_dir(a.data), a.ledgers, a.nledgers,
		    a.json, a.policy);
	}
	if (a.nledgers > 0) {
		cm_cli_error("--ledgers: only with --replay");
		goto usage;
	}
	if (optind != argc - 1) {
		cm_cli_error("restore: one backup FILE is required");
		goto usage;
	}
	if (stat(argv[optind], &sb) != 0 || !S_ISREG(sb.st_mode)) {
		cm_cli_error("FILE: %s is not a readable backup file", argv[optind]);
		return CM_EXIT_USAGE;
	}
	if (cm_cli_store_pg(cm_cli_data_dir(a.data), "restore", CM_CLI_PG_BACKUP))
		return CM_EXIT_ERROR;
	return restore_run(cm_cli_data_dir(a.data), argv[optind], a.json, a.policy);
usage:
	cm_cli_usage("restore", true);
	return CM_EXIT_USAGE;
}
