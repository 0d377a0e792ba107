/* SPDX-License-Identifier: ISC */
/*
 * consentd keys rotate-master | rotate-audit: key rotation, offline (the
 * server stopped; refused while anything has the store open).
 *
 * rotate-master builds a re-keyed copy of the database beside the live
 * one, with every wrapped data key wrapped again and an audit entry
 * naming both keys by id, then commits by renames (src/crypto/rotate.c):
 * killed at any point, the directory opens with the old keys or the new
 * ones, and the next start or run finishes or undoes the rotation. On
 * PostgreSQL the store is rotated in place, its transaction prepared
 * before the key files commit and committed after (keys_rotate_pg()).
 *
 * rotate-audit records the new verifier key in the log (an entry signed
 * into a checkpoint by the old key), then puts the new key in place;
 * killed in between, running it again finishes it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/store.h"

struct keys_args {
	const char	*data;
	const char	*migrations;
};

static int
keys_set(int val, const char *arg, void *ctx)
{
	struct keys_args *a = ctx;

	if (val == 'd')
		a->data = arg;
	else if (val == 'm')
		a->migrations = arg;
	else
		return CM_EXIT_USAGE;
	return 0;
}

/* Opens DIR's store with KEYS, offline. The exit status on failure. */
static int
keys_open(const char *dir, const char *migrations, const struct cm_keys *keys,
    const char *file, struct cm_store **store, struct cm_db **db)
{
	struct cm_migration_set set;
	struct cm_store_opts opts;
	char err[1024];
	cm_result rc;

	*store = NULL;
	if (cm_migrations_load(migrations, &set, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	cm_store_opts_default(&opts);
	opts.so_apply = false;
	opts.so_file = file;
	rc = cm_store_open(dir, keys, &set, &opts, store, err, sizeof(err));
	cm_migrations_free(&set);
	if (rc != CM_OK) {
		cm_cli_error(rc == CM_AUTH ? "%s: wrong key, or not a consentd database "
		    "(nothing was changed)" : "%s (nothing was changed)",
		    rc == CM_AUTH ? dir : err);
		return rc == CM_AUTH ? CM_EXIT_KEY : CM_EXIT_ERROR;
	}
	if ((*db = cm_store_db(*store)) == NULL) {
		cm_cli_error("cannot open the store");
		cm_store_close(*store);
		*store = NULL;
		return CM_EXIT_ERROR;
	}
	if (file == NULL && cm_store_lock_offline(*db, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		cm_store_close(*store);
		*store = NULL;
		return CM_EXIT_ERROR;
	}
	return CM_EXIT_OK;
}

/*
 * In DB, in a write transaction left open on success: every wrapped key
 * wrapped again, and the audit entry. *N counts the keys; ERR says why on
 * failure (nothing is then left open).
 */
static cm_result
keys_rewrap_tx(struct cm_db *db, const struct cm_keys *old, const struct cm_keys *newk,
    uint64_t *n, char *err, size_t errlen)
{
	struct cm_audit_event ev = { "keys.master_rotated", "system", NULL, NULL, NULL, NULL };
	cm_result rc;

	err[0] = '\0';
	if ((rc = cm_db_begin(db)) != CM_OK) {
		snprintf(err, errlen, "cannot begin the rotation's transaction: %s",
		    cm_result_str(rc));
		return rc;
	}
	if ((rc = cm_store_rewrap_all(db, old, newk, n, err, errlen)) == CM_OK) {
		/* Key ids only: they name the keys and reveal nothing of them. */
		ev.ae_details = json_pack("{s:s, s:s, s:I}", "old_key_id", old->k_master_id,
		    "new_key_id", newk->k_master_id, "rewrapped", (json_int_t)*n);
		rc = cm_audit_append(db, &ev, NULL);
		json_decref(ev.ae_details);
	}
	if (rc != CM_OK) {
		cm_db_rollback(db);
		if (err[0] == '\0')
			snprintf(err, errlen, "%s", cm_result_str(rc));
	}
	return rc;
}

/*
 * In the re-keyed copy: every wrapped key wrapped again, and the audit
 * entry, in one transaction.
 */
static int
keys_rewrap(const char *dir, const char *migrations, const struct cm_keys *old,
    const struct cm_keys *newk)
{
	struct cm_store *store;
	struct cm_db *db;
	char err[1024];
	uint64_t n = 0;
	cm_result rc;
	int xrc;

	if ((xrc = keys_open(dir, migrations, newk, CM_DB_ROTATING_FILE, &store,
	    &db)) != CM_EXIT_OK)
		return xrc;
	if ((rc = keys_rewrap_tx(db, old, newk, &n, err, sizeof(err))) == CM_OK &&
	    (rc = cm_db_commit(db)) != CM_OK)
		snprintf(err, sizeof(err), "cannot commit the re-keyed copy: %s",
		    cm_result_str(rc));
	cm_store_close(store);
	if (rc != CM_OK) {
		cm_cli_error("%s (nothing was changed)", err);
		return CM_EXIT_ERROR;
	}
	printf("%llu data keys wrapped again\n", (unsigned long long)n);
	return CM_EXIT_OK;
}

/*
 * PostgreSQL: the store is rotated in place. Its transaction (every key
 * wrapped again, the audit entry, the keys check naming the new key) is
 * prepared, the key files committed, then the transaction: killed between,
 * the next open of the store commits or undoes it by the keys it is
 * opened with, as the key files were rolled forward or back (see
 * cm_store_open()). STORE and DB are open with OLD, offline.
 */
static int
keys_rotate_pg(const char *dir, struct cm_db *db, const struct cm_keys *old,
    struct cm_keys **newk)
{
	char err[1024];
	uint64_t n = 0;

	if (cm_store_rekey_possible(db, err, sizeof(err)) != CM_OK ||
	    cm_keys_rotate_prepare(dir, old, newk, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s (nothing was changed)", err);
		return -1;
	}
	if (keys_rewrap_tx(db, old, *newk, &n, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s (nothing was changed)", err);
		return -1;
	}
	if (cm_store_rekey_prepare(db, *newk) != CM_OK) {
		cm_cli_error("cannot prepare the rotation's transaction (nothing was changed)");
		return -1;
	}
	printf("%llu data keys wrapped again\n", (unsigned long long)n);
	/* The commit point: from here on the rotation is made, whatever follows. */
	if (cm_keys_rotate_commit(dir, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return 1;
	}
	if (cm_store_rekey_commit(db, *newk) != CM_OK)
		cm_cli_error("the database's part of the rotation is prepared, not yet "
		    "committed: the next command or start on this store commits it");
	return 0;
}

static bool
keys_exists(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;

	return snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path) &&
	    lstat(path, &st) == 0;
}

static int
keys_rotate_master(const char *dir, const char *migrations)
{
	struct cm_keys *old = NULL, *newk = NULL;
	struct cm_store *store = NULL;
	struct cm_db *db;
	char err[1024], path[4096];
	int what, rc;

	if (cm_keys_recover(dir, &what, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	if (what == 1) {
		printf("finished the interrupted master-key rotation\n");
		return CM_EXIT_OK;
	}
	if (what == -1)
		printf("undid an interrupted master-key rotation; starting again\n");
	if (snprintf(path, sizeof(path), "%s/%s", dir, CM_DB_ROTATING_FILE) >=
	    (int)sizeof(path)) {
		cm_cli_error("data directory path is too long");
		return CM_EXIT_ERROR;
	}
	if (cm_keys_load(dir, &old, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	if ((rc = keys_open(dir, migrations, old, NULL, &store, &db)) != CM_EXIT_OK)
		goto out;
	rc = CM_EXIT_ERROR;
	if (cm_store_on_pg(store)) {
		switch (keys_rotate_pg(dir, db, old, &newk)) {
		case -1:
			goto undo;
		case 1:
			goto out;
		}
		printf("master key rotated: key %s replaced by key %s\n", old->k_master_id,
		    newk->k_master_id);
		rc = CM_EXIT_OK;
		goto out;
	}
	if (cm_keys_rotate_prepare(dir, old, &newk, err, sizeof(err)) != CM_OK ||
	    cm_store_export_rekeyed(db, path, newk, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s (nothing was changed)", err);
		goto undo;
	}
	if ((rc = keys_rewrap(dir, migrations, old, newk)) != CM_EXIT_OK)
		goto undo;
	rc = CM_EXIT_ERROR;
	/* The copy must be whole in its one file before the commit. */
	if (keys_exists(dir, CM_DB_ROTATING_FILE "-wal") ||
	    keys_exists(dir, CM_DB_ROTATING_FILE "-journal") ||
	    cm_fsync_path(path, dir) != 0) {
		cm_cli_error("cannot make the re-keyed copy durable (nothing was changed)");
		goto undo;
	}
	/* The old store stays locked until the new one is in its place. */
	if (cm_keys_rotate_commit(dir, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		goto out;
	}
	printf("master key rotated: key %s replaced by key %s\n", old->k_master_id,
	    newk->k_master_id);
	rc = CM_EXIT_OK;
	goto out;
undo:
	cm_store_close(store);
	store = NULL;
	if (cm_keys_recover(dir, NULL, err, sizeof(err)) != CM_OK)
		cm_cli_error("%s", err);
out:
	cm_store_close(store);
	cm_keys_free(old);
	cm_keys_free(newk);
	return rc;
}

/* A new audit key waiting from a run that was killed: finish or undo it. */
static int
keys_audit_pending(const char *dir, struct cm_db *db, const struct cm_keys *keys,
    const char *origin, bool *finished)
{
	struct cm_audit_vkey *v = NULL;
	char err[1024], vkey[256];
	uint8_t pk[32];
	size_t n = 0;
	bool done;
	cm_result rc;

	*finished = false;
	if ((rc = cm_keys_audit_pending(dir, pk, err, sizeof(err))) == CM_NOTFOUND)
		return CM_EXIT_OK;
	/*
	 * Cut short while it was written: the log cannot name it (the entry
	 * is written only once the file is whole and synced), so it goes.
	 */
	if (rc == CM_INVALID) {
		if (cm_keys_audit_finish(dir, false, err, sizeof(err)) != CM_OK) {
			cm_cli_error("%s", err);
			return CM_EXIT_ERROR;
		}
		printf("undid an interrupted audit key rotation; starting again\n");
		return CM_EXIT_OK;
	}
	if (rc != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	cm_note_vkey(vkey, sizeof(vkey), origin, CM_NOTE_ED25519, pk);
	if (cm_audit_vkeys_load(db, &v, &n) != CM_OK) {
		cm_cli_error("cannot read the chain of verifier keys");
		return CM_EXIT_ERROR;
	}
	done = n > 0 && strcmp(v[n - 1].av_vkey, vkey) == 0;
	free(v);
	if (done) {
		bool signed_;

		/* The log names the new key: sign its link, then put it in place. */
		if (cm_audit_checkpoint(db, keys, origin, &signed_) != CM_OK ||
		    cm_keys_audit_finish(dir, true, err, sizeof(err)) != CM_OK) {
			cm_cli_error("cannot finish the audit key rotation");
			return CM_EXIT_ERROR;
		}
		printf("finished the interrupted audit key rotation: %s\n", vkey);
		*finished = true;
		return CM_EXIT_OK;
	}
	if (cm_keys_audit_finish(dir, false, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	printf("undid an interrupted audit key rotation; starting again\n");
	return CM_EXIT_OK;
}

static int
keys_rotate_audit(const char *dir, const char *migrations)
{
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_db *db;
	char err[1024], origin[CM_AUDIT_ORIGIN_MAX + 1], vkey[256];
	uint8_t pk[32];
	uint64_t from;
	bool finished;
	int rc;

	if (cm_keys_load_pending(dir, &keys, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	if ((rc = keys_open(dir, migrations, keys, NULL, &store, &db)) != CM_EXIT_OK)
		goto out;
	rc = CM_EXIT_ERROR;
	if (cm_audit_origin(db, origin, sizeof(origin)) != CM_OK) {
		cm_cli_error("cannot read the log's origin");
		goto out;
	}
	if ((rc = keys_audit_pending(dir, db, keys, origin, &finished)) != CM_EXIT_OK ||
	    finished)
		goto out;
	rc = CM_EXIT_ERROR;
	if (cm_keys_audit_new(dir, pk, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s (nothing was changed)", err);
		goto out;
	}
	if (cm_audit_rotate_key(db, keys, pk, origin, &from) != CM_OK) {
		cm_cli_error("cannot record the new key in the audit log; run the command "
		    "again");
		goto out;
	}
	if (cm_keys_audit_finish(dir, true, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s; run the command again to finish", err);
		goto out;
	}
	cm_note_vkey(vkey, sizeof(vkey), origin, CM_NOTE_ED25519, pk);
	printf("audit key rotated: checkpoints of size %llu on are signed by %s\n",
	    (unsigned long long)from, vkey);
	rc = CM_EXIT_OK;
out:
	cm_store_close(store);
	cm_keys_free(keys);
	return rc;
}

int
cm_cmd_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "migrations", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct keys_args a = { NULL, NULL };
	const char *sub;
	int c;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		cm_cli_usage("keys", argc < 2);
		return argc < 2 ? CM_EXIT_USAGE : CM_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "rotate-master") != 0 && strcmp(sub, "rotate-audit") != 0)
		goto usage;
	if (cm_cli_env_defaults(opts, keys_set, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("keys", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || keys_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (optind != argc - 1)
		goto usage;
	if (cm_crypto_init() != 0) {
		cm_cli_error("cannot initialise libsodium");
		return CM_EXIT_ERROR;
	}
	if (strcmp(sub, "rotate-master") == 0)
		return keys_rotate_master(cm_cli_data_dir(a.data), a.migrations);
	return keys_rotate_audit(cm_cli_data_dir(a.data), a.migrations);
usage:
	cm_cli_usage("keys", true);
	return CM_EXIT_USAGE;
}
