/* SPDX-License-Identifier: ISC */
/*
 * consentd systems (add, list, remove downstream systems) and consentd
 * outbox (list, retry, run one delivery pass): the same core calls as
 * the API, each change in a transaction of its own with its audit entry
 * by the actor "cli". Works while the server runs (the store is shared).
 * A system's secret is read from standard input, never from the command
 * line, where other users could see it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/cli.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/outbox.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct ob_args {
	const char	*data;
	const char	*policy;
	const char	*name;
	const char	*url;
	const char	*events;
	const char	*status;
};

static int
ob_set(int val, const char *arg, void *ctx)
{
	struct ob_args *a = ctx;

	switch (val) {
	case 'd':
		a->data = arg;
		return 0;
	case 'p':
		a->policy = arg;
		return 0;
	case 'n':
		a->name = arg;
		return 0;
	case 'u':
		a->url = arg;
		return 0;
	case 'e':
		a->events = arg;
		return 0;
	case 's':
		a->status = arg;
		return 0;
	}
	return CM_EXIT_USAGE;
}

/* Parses argv after the verb into A; -1 to go on, or an exit code. */
static int
ob_args(const char *cmd, int argc, char **argv, struct ob_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "policy", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' },
		{ "url", required_argument, NULL, 'u' },
		{ "events", required_argument, NULL, 'e' },
		{ "status", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->policy = "./policy";
	if (cm_cli_env_defaults(opts, ob_set, a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage(cmd, false);
			return CM_EXIT_OK;
		}
		if (c == '?' || ob_set(c, optarg, a) != 0) {
			cm_cli_usage(cmd, true);
			return CM_EXIT_USAGE;
		}
	}
	a->data = cm_cli_data_dir(a->data);
	return -1;
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

/* Reads a system's secret, one line, from standard input into BUF. */
static int
read_secret(char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		return -1;
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

static cm_result
systems_add(struct cm_ctx *cx, const struct ob_args *a, char *secret)
{
	struct cm_why w;
	json_t *events = json_array(), *out = NULL;
	char *list = cm_strdup(a->events), *tok, *save = NULL;
	bool insecure;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
		json_array_append_new(events, json_string(tok));
	free(list);
	rc = cm_system_add(cx, a->name, a->url, events, secret, &insecure, &out, &w);
	json_decref(events);
	if (rc == CM_OK) {
		print_json(out);
		if (insecure)
			cm_cli_error("warning: webhooks to this system go over plain http");
	} else if (w.w_code != NULL) {
		cm_cli_error("%s: %s", w.w_field[0] ? w.w_field : w.w_code, w.w_msg);
	}
	json_decref(out);
	return rc;
}

/* Runs the change VERB asks in one transaction; prints what it gives. */
static int
ob_change(struct cm_ctx *cx, const char *verb, const struct ob_args *a, const char *id)
{
	struct cm_why w;
	json_t *out = NULL;
	char *secret = NULL;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (strcmp(verb, "add") == 0) {
		if (a->name == NULL || a->url == NULL || a->events == NULL) {
			cm_cli_usage("systems", true);
			return CM_EXIT_USAGE;
		}
		secret = cm_secure_alloc(CM_SYSTEM_SECRET_MAX + 2);
		if (read_secret(secret, CM_SYSTEM_SECRET_MAX + 2) != 0) {
			cm_cli_error("give the system's secret on standard input, one line");
			cm_secure_free(secret);
			return CM_EXIT_USAGE;
		}
	}
	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK)
		goto out;
	if (secret != NULL)
		rc = systems_add(cx, a, secret);
	else if (strcmp(verb, "remove") == 0)
		rc = cm_system_remove(cx, id, &w);
	else
		rc = cm_outbox_retry(cx, id, &out, &w);
	if (rc != CM_OK) {
		cm_db_rollback(cx->cx_db);
		if (secret == NULL && w.w_code != NULL)
			cm_cli_error("%s: %s", w.w_code, w.w_msg);
		goto out;
	}
	if ((rc = cm_db_commit(cx->cx_db)) == CM_OK && out != NULL)
		print_json(out);
out:
	json_decref(out);
	if (secret != NULL) {
		cm_wipe(secret, CM_SYSTEM_SECRET_MAX + 2);
		cm_secure_free(secret);
	}
	if (rc != CM_OK && w.w_code == NULL && rc != CM_INVALID && rc != CM_CONFLICT)
		cm_cli_error("the store failed: %s", cm_result_str(rc));
	return rc == CM_OK ? CM_EXIT_OK : CM_EXIT_ERROR;
}

/* Opens A's data directory and runs the command's verb. */
static int
ob_run(const char *cmd, const char *verb, const struct ob_args *a, const char *id)
{
	struct cm_policy *pol = NULL;
	struct cm_outbox_opts o;
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_ctx cx;
	json_t *out = NULL;
	char err[1024];
	size_t sent = 0, failed = 0;
	int rc;
	cm_result r;

	if ((rc = cm_cli_open(a->data, NULL, false, &keys, &store)) != CM_EXIT_OK)
		return rc;
	rc = CM_EXIT_ERROR;
	if (strcmp(cmd, "outbox") == 0 && strcmp(verb, "run") == 0) {
		if (cm_policy_load(a->policy, &pol, err, sizeof(err)) != CM_OK ||
		    cm_outbox_opts_env(&o, a->data, err, sizeof(err)) != 0) {
			cm_cli_error("%s", err);
			goto out;
		}
		if ((r = cm_outbox_run(store, keys, pol, &o, &sent, &failed)) != CM_OK) {
			cm_cli_error("the store failed: %s", cm_result_str(r));
			goto out;
		}
		printf("%zu sent, %zu failed\n", sent, failed);
		rc = CM_EXIT_OK;
		goto out;
	}
	cm_ctx_init(&cx, cm_store_db(store), keys, NULL, "cli");
	if (cx.cx_db == NULL)
		goto out;
	if (strcmp(verb, "list") == 0) {
		r = strcmp(cmd, "systems") == 0 ? cm_systems_list(&cx, &out) :
		    cm_outbox_list(&cx, a->status, 1000, &out);
		if (r == CM_OK) {
			print_json(out);
			rc = CM_EXIT_OK;
		} else {
			cm_cli_error("the store failed: %s", cm_result_str(r));
		}
	} else {
		rc = ob_change(&cx, verb, a, id);
	}
out:
	json_decref(out);
	cm_policy_free(pol);
	cm_store_close(store);
	cm_keys_free(keys);
	return rc;
}

static int
ob_main(const char *cmd, const char *const *verbs, const char *const *need_id, int argc,
    char **argv)
{
	struct ob_args a;
	const char *verb, *id = NULL;
	int rc;

	if (argc < 2 || cm_strv_index(verbs, argv[1]) < 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			cm_cli_usage(cmd, false);
			return CM_EXIT_OK;
		}
		cm_cli_usage(cmd, true);
		return CM_EXIT_USAGE;
	}
	verb = argv[1];
	if ((rc = ob_args(cmd, argc - 1, argv + 1, &a)) >= 0)
		return rc;
	if (cm_strv_index(need_id, verb) >= 0) {
		if (optind + 1 != argc - 1) {
			cm_cli_usage(cmd, true);
			return CM_EXIT_USAGE;
		}
		id = argv[optind + 1];
	} else if (optind != argc - 1) {
		cm_cli_usage(cmd, true);
		return CM_EXIT_USAGE;
	}
	if (a.status != NULL && strcmp(a.status, "pending") != 0 &&
	    strcmp(a.status, "sent") != 0 && strcmp(a.status, "dead") != 0) {
		cm_cli_error("--status: pending, sent or dead");
		return CM_EXIT_USAGE;
	}
	return ob_run(cmd, verb, &a, id);
}

int
cm_cmd_systems(int argc, char **argv)
{
	static const char *const verbs[] = { "add", "list", "remove", NULL };
	static const char *const need_id[] = { "remove", NULL };

	return ob_main("systems", verbs, need_id, argc, argv);
}

int
cm_cmd_outbox(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "retry", "run", NULL };
	static const char *const need_id[] = { "retry", NULL };

	return ob_main("outbox", verbs, need_id, argc, argv);
}
