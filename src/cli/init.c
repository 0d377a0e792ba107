/* SPDX-License-Identifier: ISC */
/*
 * consentd init: creates a data directory with fresh keys and an encrypted
 * store with every migration applied. It never touches a directory that
 * already holds keys or a database, and it removes what it created when a
 * later step fails, so a failed init leaves nothing half-made.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/upgrade.h"

struct init_args {
	const char	*data;
	const char	*migrations;
	const char	*origin;
};

static int
init_set(int val, const char *arg, void *ctx)
{
	struct init_args *a = ctx;

	switch (val) {
	case 'd':
		a->data = arg;
		return 0;
	case 'm':
		a->migrations = arg;
		return 0;
	case 'o':
		a->origin = arg;
		return 0;
	}
	return CM_EXIT_USAGE;
}

/* Removes the files init created in DIR, and DIR itself if it made it. */
static void
init_undo(const char *dir, bool made_dir)
{
	static const char *const files[] = { CM_MASTER_KEY_FILE, CM_AUDIT_KEY_FILE,
	    CM_DB_FILE, CM_DB_FILE "-wal", CM_DB_FILE "-shm", CM_STORE_PG_FILE };
	char path[4096];
	size_t i;

	for (i = 0; i < CM_NELEM(files); i++)
		if (snprintf(path, sizeof(path), "%s/%s", dir, files[i]) < (int)sizeof(path))
			unlink(path);
	if (made_dir)
		rmdir(dir);
}

/*
 * Fixes the log's origin and opens the log with its first entry and first
 * signed checkpoint.
 */
static cm_result
init_audit(const char *dir, const struct cm_keys *keys,
    const struct cm_migration_set *set, const char *origin, char *err, size_t errlen)
{
	struct cm_audit_event ev = { "store.initialised", "system", NULL, NULL, NULL, NULL };
	struct cm_upgrade_report up;
	struct cm_store *store = NULL;
	struct cm_db *db;
	char vkey[256];
	bool signed_;
	cm_result rc;

	if ((rc = cm_store_open(dir, keys, set, NULL, &store, err, errlen)) != CM_OK)
		return rc;
	db = cm_store_db(store);
	/* A new store has nothing to upgrade: this only completes its schema. */
	if ((rc = cm_upgrade_run(db, keys, &up)) != CM_OK) {
		snprintf(err, errlen, "cannot complete the store: %s", cm_result_str(rc));
		cm_store_close(store);
		return rc;
	}
	cm_note_vkey(vkey, sizeof(vkey), origin, CM_NOTE_ED25519, keys->k_audit_pk);
	ev.ae_details = json_pack("{s:s, s:s, s:I}", "origin", origin, "audit_vkey", vkey,
	    "schema_version", (json_int_t)set->ms_count);
	if ((rc = cm_db_begin(db)) == CM_OK) {
		if ((rc = cm_store_meta_put(db, "audit_origin", origin)) != CM_OK ||
		    (rc = cm_audit_append(db, &ev, NULL)) != CM_OK)
			cm_db_rollback(db);
		else
			rc = cm_db_commit(db);
	}
	if (rc == CM_OK)
		rc = cm_audit_checkpoint(db, keys, origin, &signed_);
	if (rc != CM_OK)
		snprintf(err, errlen, "cannot start the audit log: %s", cm_result_str(rc));
	json_decref(ev.ae_details);
	cm_store_close(store);
	return rc;
}

/* The log's origin: ARG, or "consentd/HOST"; "" when ARG is too long. */
static void
init_origin(const char *arg, char *origin, size_t len)
{
	char host[256];

	if (arg == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[64] = '\0';
		snprintf(origin, len, "consentd/%.64s", host);
	} else if (strlen(arg) >= len) {
		origin[0] = '\0';
	} else {
		memcpy(origin, arg, strlen(arg) + 1);
	}
}

/*
 * Makes DIR (mode 0700), or takes an existing empty-of-consentd one; never
 * a directory that already holds a store's keys or database. 0 or -1
 * (reported); *MADE says whether DIR was created here.
 */
static int
init_dir(const char *dir, bool *made)
{
	static const char *const files[] = { CM_MASTER_KEY_FILE, CM_AUDIT_KEY_FILE,
	    CM_DB_FILE, CM_STORE_PG_FILE };
	char path[4096];
	struct stat st;
	size_t i;

	*made = false;
	if (stat(dir, &st) != 0) {
		if (mkdir(dir, 0700) == -1) {
			cm_cli_error("cannot create %s: %s", dir, strerror(errno));
			return -1;
		}
		*made = true;
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		cm_cli_error("%s exists and is not a directory", dir);
		return -1;
	}
	for (i = 0; i < CM_NELEM(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (access(path, F_OK) == 0) {
			cm_cli_error("%s already holds a consentd store (%s); refusing "
			    "to overwrite its keys. Use another directory, or move "
			    "this one away if you mean to start afresh.", dir, files[i]);
			return -1;
		}
	}
	if (chmod(dir, 0700) == -1) {
		cm_cli_error("cannot chmod %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
cm_cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "migrations", required_argument, NULL, 'm' },
		{ "origin", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct init_args a = { NULL, NULL, NULL };
	char origin[CM_AUDIT_ORIGIN_MAX + 1];
	struct cm_migration_set set;
	struct cm_keys *keys = NULL;
	const char *pg = cm_cli_store();
	char err[1024];
	bool made_dir = false;
	int c, rc = CM_EXIT_ERROR;

	if (cm_cli_env_defaults(opts, init_set, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("init", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || init_set(c, optarg, &a) != 0) {
			cm_cli_usage("init", true);
			return CM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cm_cli_usage("init", true);
		return CM_EXIT_USAGE;
	}
	a.data = cm_cli_data_dir(a.data);
	init_origin(a.origin, origin, sizeof(origin));
	if (!cm_audit_origin_valid(origin)) {
		cm_cli_error("--origin: 1-%d characters without spaces or '+'",
		    CM_AUDIT_ORIGIN_MAX);
		return CM_EXIT_USAGE;
	}
	umask(077);
	if (cm_crypto_init() != 0) {
		cm_cli_error("cannot initialise libsodium");
		return CM_EXIT_ERROR;
	}
	if (cm_migrations_load(a.migrations, &set, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	if (init_dir(a.data, &made_dir) != 0)
		goto out;
	if (cm_keys_create(a.data, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		init_undo(a.data, made_dir);
		goto out;
	}
	if (cm_keys_load(a.data, &keys, err, sizeof(err)) != CM_OK ||
	    (pg == NULL ? cm_store_create(a.data, keys, &set, err, sizeof(err)) :
	    cm_store_create_pg(a.data, pg, keys, &set, err, sizeof(err))) != CM_OK ||
	    init_audit(a.data, keys, &set, origin, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		init_undo(a.data, made_dir);
		goto out;
	}
	if (pg == NULL)
		printf("initialised %s: %s, %s and %s (%zu migrations)\n", a.data,
		    CM_MASTER_KEY_FILE, CM_AUDIT_KEY_FILE, CM_DB_FILE, set.ms_count);
	else
		printf("initialised %s: %s and %s, and the store on PostgreSQL (%zu "
		    "migrations), named by %s\n", a.data, CM_MASTER_KEY_FILE,
		    CM_AUDIT_KEY_FILE, set.ms_pg->ms_count, CM_STORE_PG_FILE);
	printf("audit log %s\n", origin);
	printf("back up master.key and audit.key somewhere safe: without master.key "
	    "the data cannot be read.\n");
	rc = CM_EXIT_OK;
out:
	cm_keys_free(keys);
	cm_migrations_free(&set);
	return rc;
}
