/*
 * consentd token: create (printed once, stored as a keyed hash), list and
 * revoke API tokens. Works while the server runs: the store is shared and
 * the server looks tokens up on every request, so a revocation takes
 * effect on the next request.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/scope.h"
#include "consentd/store.h"
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

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CM_TOKEN_NAME_MAX && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
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
 * Runs the change and its audit entry in one transaction: the store call
 * FN, then an entry of TYPE with DETAILS (stolen).
 */
static cm_result
token_change(struct cm_db *db, const char *type, json_t *details,
    cm_result (*fn)(struct cm_db *, void *), void *arg)
{
	struct cm_audit_event ev = { type, "system", details, NULL, NULL, NULL };
	cm_result rc;

	if ((rc = cm_db_begin(db)) != CM_OK)
		goto out;
	if ((rc = fn(db, arg)) != CM_OK || (rc = cm_audit_append(db, &ev, NULL)) != CM_OK) {
		cm_db_rollback(db);
		goto out;
	}
	rc = cm_db_commit(db);
out:
	json_decref(details);
	return rc;
}

struct create_op {
	const char	*name;
	const char	*selector;
	const uint8_t	*hash;
	uint32_t	 scopes;
	bool		 replace;
};

static cm_result
create_op(struct cm_db *db, void *arg)
{
	struct create_op *op = arg;

	return cm_store_token_create(db, op->name, op->selector, op->hash, op->scopes,
	    op->replace, cm_time_now_us());
}

static cm_result
revoke_op(struct cm_db *db, void *arg)
{
	return cm_store_token_revoke(db, arg, cm_time_now_us());
}

static int
token_create(struct cm_db *db, const struct cm_keys *keys, struct token_args *a)
{
	struct create_op op;
	char token[CM_TOKEN_MAX], selector[CM_TOKEN_SELECTOR_LEN + 1], bad[80], known[160];
	uint8_t hash[32];
	uint32_t scopes;
	cm_result rc;

	if (a->name == NULL || !valid_name(a->name)) {
		cm_cli_error("--name: 1-64 characters of A-Z a-z 0-9 . _ - are required");
		return CM_EXIT_USAGE;
	}
	if (cm_scope_parse(a->scopes, &scopes, bad, sizeof(bad)) != 0) {
		cm_scope_format(CM_SCOPE_ALL, known, sizeof(known));
		cm_cli_error("--scopes: unknown scope '%s' (known: %s)", bad, known);
		return CM_EXIT_USAGE;
	}
	cm_token_generate(token, selector);
	cm_token_hash(keys, token, hash);
	op.name = a->name;
	op.selector = selector;
	op.hash = hash;
	op.scopes = scopes;
	op.replace = a->replace;
	rc = token_change(db, "token.created", json_pack("{s:s, s:o, s:b}", "name",
	    a->name, "scopes", cm_scope_json(scopes), "replace", a->replace), create_op, &op);
	if (rc == CM_CONFLICT) {
		cm_cli_error("an active token is already called '%s' (revoke it, or use "
		    "--replace)", a->name);
		cm_wipe(token, sizeof(token));
		return CM_EXIT_ERROR;
	}
	if (rc != CM_OK) {
		cm_cli_error("cannot store the token: %s", cm_result_str(rc));
		cm_wipe(token, sizeof(token));
		return CM_EXIT_ERROR;
	}
	printf("%s\n", token);
	fflush(stdout);
	cm_wipe(token, sizeof(token));
	fprintf(stderr, "consentd: token '%s' created; it is shown only this once\n",
	    a->name);
	return CM_EXIT_OK;
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
		r = token_change(db, "token.revoked", json_pack("{s:s}", "name", a.name),
		    revoke_op, (void *)(uintptr_t)a.name);
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
