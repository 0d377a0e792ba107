/* SPDX-License-Identifier: ISC */
/*
 * consentd token: create (printed once, stored as a keyed hash), list and
 * revoke API tokens; how a token is made and revoked is core's
 * (src/core/token.c), each change in a transaction of its own with its
 * audit entry. Works while the server runs: the store is shared and the
 * server verifies the token on every request, so a revocation takes effect
 * on the next request.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "consentd/cli.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/scope.h"
#include "consentd/store.h"
#include "consentd/token.h"
#include "consentd/util.h"

struct token_args {
	const char	*data;
	const char	*name;
	const char	*scopes;
	bool		 replace;
};

static int
token_set(int val, const char *arg, void *ctx)
{
	struct token_args *a = ctx;

	switch (val) {
	case 'd':
		a->data = arg;
		return 0;
	case 'n':
		a->name = arg;
		return 0;
	case 's':
		a->scopes = arg;
		return 0;
	}
	return CM_EXIT_USAGE;
}

static int
token_print(void *arg, const struct cm_token_row *row)
{
	char scopes[128], created[32], revoked[32];

	(void)arg;
	cm_scope_format(row->t_scopes, scopes, sizeof(scopes));
	cm_time_format(created, row->t_created_us);
	if (row->t_revoked_us)
		cm_time_format(revoked, row->t_revoked_us);
	printf("%-24s %-8s %-20s %s\n", row->t_name,
	    row->t_revoked_us ? "revoked" : "active",
	    row->t_revoked_us ? revoked : created, scopes);
	return 0;
}

/*
 * Runs FN(CX, ARG), the change and its audit entry, in one transaction on
 * DB by the actor "system".
 */
static cm_result
token_change(struct cm_db *db, const struct cm_keys *keys,
    cm_result (*fn)(const struct cm_ctx *, void *), void *arg)
{
	struct cm_ctx cx;
	cm_result rc;

	cm_ctx_init(&cx, db, keys, NULL, NULL);
	if ((rc = cm_db_begin(db)) != CM_OK)
		goto out;
	if ((rc = fn(&cx, arg)) != CM_OK) {
		cm_db_rollback(db);
		goto out;
	}
	rc = cm_db_commit(db);
out:
	return rc;
}

struct create_op {
	struct token_args	*args;
	uint32_t		 scopes;
	char			 token[CM_TOKEN_MAX];
};

static cm_result
create_op(const struct cm_ctx *cx, void *arg)
{
	struct create_op *op = arg;

	return cm_token_create(cx, op->args->name, op->scopes, op->args->replace, op->token);
}

static cm_result
revoke_op(const struct cm_ctx *cx, void *arg)
{
	return cm_token_revoke(cx, arg);
}

static int
token_create(struct cm_db *db, const struct cm_keys *keys, struct token_args *a)
{
	struct create_op op;
	char bad[80], known[160];
	cm_result rc;
	int ret = CM_EXIT_ERROR;

	memset(&op, 0, sizeof(op));
	if (a->name == NULL || !cm_token_name_valid(a->name)) {
		cm_cli_error("--name: 1-64 characters of A-Z a-z 0-9 . _ - are required");
		ret = CM_EXIT_USAGE;
		goto out;
	}
	if (cm_scope_parse(a->scopes, &op.scopes, bad, sizeof(bad)) != 0) {
		cm_scope_format(CM_SCOPE_ALL, known, sizeof(known));
		cm_cli_error("--scopes: unknown scope '%s' (known: %s)", bad, known);
		ret = CM_EXIT_USAGE;
		goto out;
	}
	op.args = a;
	rc = token_change(db, keys, create_op, &op);
	if (rc == CM_CONFLICT) {
		cm_cli_error("an active token is already called '%s' (revoke it, or use "
		    "--replace)", a->name);
		goto out;
	}
	if (rc != CM_OK) {
		cm_cli_error("cannot store the token: %s", cm_result_str(rc));
		goto out;
	}
	printf("%s\n", op.token);
	fflush(stdout);
	fprintf(stderr, "consentd: token '%s' created; it is shown only this once\n",
	    a->name);
	ret = CM_EXIT_OK;
out:
	cm_wipe(op.token, sizeof(op.token));
	return ret;
}

int
cm_cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "scopes", required_argument, NULL, 's' },
		{ "replace", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct token_args a = { NULL, NULL, NULL, false };
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_db *db;
	const char *sub;
	cm_result r;
	int c, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cm_cli_usage("token", argc >= 2 ? false : true);
		return argc >= 2 ? CM_EXIT_OK : CM_EXIT_USAGE;
	}
	sub = argv[1];
	if (cm_cli_env_defaults(opts, token_set, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("token", false);
			return CM_EXIT_OK;
		}
		if (c == 'r') {
			a.replace = true;
			continue;
		}
		if (c == '?' || token_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (strcmp(sub, "create") == 0) {
		if (optind != argc - 1 || a.name == NULL || a.scopes == NULL)
			goto usage;
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc - 1)
			goto usage;
	} else if (strcmp(sub, "revoke") == 0) {
		if (optind != argc - 2 || a.name != NULL)
			goto usage;
		a.name = argv[1 + optind];
	} else {
		goto usage;
	}
	if ((rc = cm_cli_open(cm_cli_data_dir(a.data), NULL, false, &keys, &store)) != 0)
		return rc;
	rc = CM_EXIT_ERROR;
	if ((db = cm_store_db(store)) == NULL) {
		cm_cli_error("cannot open the store");
		goto out;
	}
	if (strcmp(sub, "create") == 0) {
		rc = token_create(db, keys, &a);
	} else if (strcmp(sub, "list") == 0) {
		printf("%-24s %-8s %-20s %s\n", "NAME", "STATE", "SINCE", "SCOPES");
		if ((r = cm_store_token_list(db, token_print, NULL)) != CM_OK)
			cm_cli_error("cannot list tokens: %s", cm_result_str(r));
		else
			rc = CM_EXIT_OK;
	} else {
		r = token_change(db, keys, revoke_op, (void *)(uintptr_t)a.name);
		if (r == CM_NOTFOUND)
			cm_cli_error("no active token is called '%s'", a.name);
		else if (r != CM_OK)
			cm_cli_error("cannot revoke: %s", cm_result_str(r));
		else {
			fprintf(stderr, "consentd: token '%s' revoked\n", a.name);
			rc = CM_EXIT_OK;
		}
	}
out:
	cm_store_close(store);
	cm_keys_free(keys);
	return rc;
usage:
	cm_cli_usage("token", true);
	return CM_EXIT_USAGE;
}
