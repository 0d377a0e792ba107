/* SPDX-License-Identifier: ISC */
/*
 * consentd migrate: applies pending migrations, or with --status reports
 * the schema version of the database against this binary's.
 */
#include <getopt.h>
#include <stdio.h>

#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/store.h"

struct migrate_args {
	const char	*data;
	const char	*migrations;
};

static int
migrate_set(int val, const char *arg, void *ctx)
{
	struct migrate_args *a = ctx;

	if (val == 'd')
		a->data = arg;
	else if (val == 'm')
		a->migrations = arg;
	else
		return CM_EXIT_USAGE;
	return 0;
}

int
cm_cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "migrations", required_argument, NULL, 'm' },
		{ "status", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct migrate_args a = { NULL, NULL };
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_migration_set set;
	struct cm_db *db;
	char err[512];
	bool status = false;
	int c, rc, version;

	if (cm_cli_env_defaults(opts, migrate_set, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("migrate", false);
			return CM_EXIT_OK;
		}
		if (c == 's') {
			status = true;
			continue;
		}
		if (c == '?' || migrate_set(c, optarg, &a) != 0 || 0) {
			cm_cli_usage("migrate", true);
			return CM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cm_cli_usage("migrate", true);
		return CM_EXIT_USAGE;
	}
	if (cm_migrations_load(a.migrations, &set, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	rc = cm_cli_open(cm_cli_data_dir(a.data), a.migrations, !status, &keys, &store);
	if (rc == CM_EXIT_OK) {
		if ((db = cm_store_db(store)) == NULL ||
		    cm_store_schema_version(db, &version) != CM_OK) {
			cm_cli_error("cannot read the schema version");
			rc = CM_EXIT_ERROR;
		} else {
			printf("schema version %d; this binary has %zu migrations\n",
			    version, cm_store_on_pg(store) && set.ms_pg != NULL ?
			    set.ms_pg->ms_count : set.ms_count);
		}
	}
	cm_store_close(store);
	cm_keys_free(keys);
	cm_migrations_free(&set);
	return rc;
}
