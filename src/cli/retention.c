/* SPDX-License-Identifier: ISC */
/*
 * consentd retention run: one retention sweep (src/core/retention.c) with
 * the policy's periods, on a data directory whether or not a server is
 * running on it; --dry-run counts what it would do and changes nothing.
 * Prints the counts as one JSON object.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/retention.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct ret_args {
	const char	*data;
	const char	*policy;
	bool		 dry_run;
};

enum { OPT_DATA = 'd', OPT_POLICY = 'p', OPT_DRY = 'n', OPT_HELP = 'h' };

static int
ret_set(int val, const char *arg, void *ctx)
{
	struct ret_args *a = ctx;

	switch (val) {
	case OPT_DATA:
		a->data = arg;
		return 0;
	case OPT_POLICY:
		a->policy = arg;
		return 0;
	case OPT_DRY:
		a->dry_run = true;
		return 0;
	}
	return CM_EXIT_USAGE;
}

/* Parses the options after "run"; -1 to go on, or the exit code. */
static int
ret_args(int argc, char **argv, struct ret_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, OPT_DATA },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->policy = "./policy";
	if (cm_cli_env_defaults(opts, ret_set, a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			cm_cli_usage("retention", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || ret_set(c, optarg, a) != 0) {
			cm_cli_usage("retention", true);
			return CM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cm_cli_usage("retention", true);
		return CM_EXIT_USAGE;
	}
	a->data = cm_cli_data_dir(a->data);
	return -1;
}

int
cm_cmd_retention(int argc, char **argv)
{
	struct cm_retention_result r;
	struct cm_retention_opts o;
	struct cm_policy *pol = NULL;
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_db *db;
	struct ret_args a;
	char err[1024];
	cm_result res;
	int rc;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		cm_cli_usage("retention", false);
		return CM_EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		cm_cli_usage("retention", true);
		return CM_EXIT_USAGE;
	}
	if ((rc = ret_args(argc - 1, argv + 1, &a)) >= 0)
		return rc;
	/* The policy first: a bad one stops the run before the store is opened. */
	if (cm_policy_load(a.policy, &pol, err, sizeof(err)) != CM_OK) {
		cm_cli_error("invalid policy: %s\nfix the policy and start again "
		    "(nothing was changed)", err);
		return CM_EXIT_ERROR;
	}
	if ((rc = cm_cli_open(a.data, NULL, false, &keys, &store)) != CM_EXIT_OK)
		goto out;
	rc = CM_EXIT_ERROR;
	if ((db = cm_store_db(store)) == NULL) {
		cm_cli_error("cannot open the store");
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.ro_dry_run = a.dry_run;
	o.ro_actor = "cli";
	res = cm_retention_run(db, keys, pol, &o, &r);
	if (res != CM_OK) {
		cm_cli_error("the store failed: %s (the batches before it were kept)",
		    cm_result_str(res));
		goto out;
	}
	printf("{\"dry_run\":%s,\"requests\":%lld,\"packages\":%lld,\"outbox\":%lld,"
	    "\"evidence\":%lld,\"audit_index\":", a.dry_run ? "true" : "false",
	    (long long)r.rr_counts.rc_requests, (long long)r.rr_counts.rc_packages,
	    (long long)r.rr_counts.rc_outbox, (long long)r.rr_counts.rc_evidence);
	if (r.rr_audited)
		printf("%llu}\n", (unsigned long long)r.rr_audit_index);
	else
		printf("null}\n");
	rc = CM_EXIT_OK;
out:
	cm_store_close(store);
	cm_keys_free(keys);
	cm_policy_free(pol);
	return rc;
}
