/* SPDX-License-Identifier: ISC */
/*
 * consentd dsr list|show|verify|resend|extend|deny|cancel|process|complete|
 * lift: the DPO's requests from the command line, over the same core
 * functions the HTTP routes call (src/core/dsr.c, dsr_steps.c), each step
 * in a transaction of its own with its timeline row and audit entry, by
 * the actor "cli". Works while the server runs: the store is shared.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/cli.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct dsr_args {
	const char	*data;
	const char	*policy;
	const char	*text;		/* --reason, --note or --code */
	const char	*status;
	const char	*type;
	const char	*subject;
	int		 limit;
	bool		 overdue;
	bool		 json;
};

/* The subcommands that change a request, and what each takes. */
enum dsr_step { S_VERIFY, S_RESEND, S_EXTEND, S_DENY, S_CANCEL, S_PROCESS, S_COMPLETE,
	S_LIFT };

static const struct dsr_sub {
	const char	*s_name;
	enum dsr_step	 s_step;
	const char	*s_text;	/* the option it needs: "reason", "note", "code", or NULL */
} dsr_subs[] = {
	{ "verify",	S_VERIFY,	"code" },
	{ "resend",	S_RESEND,	NULL },
	{ "extend",	S_EXTEND,	"reason" },
	{ "deny",	S_DENY,		"reason" },
	{ "cancel",	S_CANCEL,	"reason" },
	{ "process",	S_PROCESS,	NULL },
	{ "complete",	S_COMPLETE,	"note" },
	{ "lift",	S_LIFT,		"reason" },
};

enum { OPT_DATA = 256, OPT_POLICY, OPT_REASON, OPT_NOTE, OPT_CODE, OPT_STATUS, OPT_TYPE,
	OPT_SUBJECT, OPT_LIMIT, OPT_OVERDUE, OPT_JSON, OPT_HELP };

static const struct option dsr_opts[] = {
	{ "data", required_argument, NULL, OPT_DATA },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "reason", required_argument, NULL, OPT_REASON },
	{ "note", required_argument, NULL, OPT_NOTE },
	{ "code", required_argument, NULL, OPT_CODE },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "subject", required_argument, NULL, OPT_SUBJECT },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "overdue", no_argument, NULL, OPT_OVERDUE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

/* Only --data and --policy come from the environment (CONSENTD_DATA, …). */
static int
dsr_env(int val, const char *arg, void *ctx)
{
	struct dsr_args *a = ctx;

	if (val == OPT_DATA)
		a->data = arg;
	else if (val == OPT_POLICY)
		a->policy = arg;
	return 0;
}

static int
dsr_set(int val, const char *arg, struct dsr_args *a, const char **textopt)
{
	char *end;
	long n;

	switch (val) {
	case OPT_DATA:
	case OPT_POLICY:
		return dsr_env(val, arg, a);
	case OPT_REASON:
	case OPT_NOTE:
	case OPT_CODE:
		if (a->text != NULL)
			return CM_EXIT_USAGE;
		a->text = arg;
		*textopt = val == OPT_REASON ? "reason" : val == OPT_NOTE ? "note" : "code";
		return 0;
	case OPT_STATUS:
		a->status = arg;
		return 0;
	case OPT_TYPE:
		a->type = arg;
		return 0;
	case OPT_SUBJECT:
		a->subject = arg;
		return 0;
	case OPT_LIMIT:
		n = strtol(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || n < 1 || n > 500) {
			cm_cli_error("--limit: a number from 1 to 500 is required");
			return CM_EXIT_USAGE;
		}
		a->limit = (int)n;
		return 0;
	case OPT_OVERDUE:
		a->overdue = true;
		return 0;
	case OPT_JSON:
		a->json = true;
		return 0;
	}
	return CM_EXIT_USAGE;
}

/* Says why a core call failed, without the store's details. */
static void
dsr_fail(cm_result rc, const struct cm_why *w)
{
	if (w->w_code != NULL && w->w_field[0] != '\0')
		cm_cli_error("%s (%s): %s", w->w_code, w->w_field, w->w_msg);
	else if (w->w_code != NULL)
		cm_cli_error("%s: %s", w->w_code, w->w_msg);
	else
		cm_cli_error("the store failed: %s", cm_result_str(rc));
}

static void
print_json(const json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

static void
print_row(const json_t *r)
{
	json_t *dl = json_object_get(r, "days_left");
	char days[24] = "-";

	if (json_is_integer(dl))
		snprintf(days, sizeof(days), "%lld", (long long)json_integer_value(dl));
	printf("%-30s %-20s %-14s %-26s %5s%s\n",
	    json_string_value(json_object_get(r, "id")),
	    json_string_value(json_object_get(r, "status")),
	    json_string_value(json_object_get(r, "type")),
	    json_string_value(json_object_get(r, "due_at")), days,
	    json_is_true(json_object_get(r, "overdue")) ? "  overdue" : "");
}

/* Lists every request the filter selects, page by page. */
static int
dsr_list(const struct cm_ctx *cx, const struct dsr_args *a)
{
	struct cm_dsr_filter f = { -1, -1, a->subject, a->overdue, NULL, 500 };
	enum cm_dsr_status st;
	enum cm_dsr_type t;
	struct cm_why w;
	json_t *page = NULL, *v;
	char *cursor = NULL;
	size_t i, shown = 0;
	int ret = CM_EXIT_ERROR;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (a->status != NULL) {
		if (cm_dsr_status_parse(a->status, &st) != 0) {
			cm_cli_error("--status: unknown status");
			return CM_EXIT_USAGE;
		}
		f.df_status = (int)st;
	}
	if (a->type != NULL) {
		if (cm_dsr_type_parse(a->type, &t) != 0) {
			cm_cli_error("--type: unknown type");
			return CM_EXIT_USAGE;
		}
		f.df_type = (int)t;
	}
	if (!a->json)
		printf("%-30s %-20s %-14s %-26s %5s\n", "ID", "STATUS", "TYPE", "DUE", "DAYS");
	for (;;) {
		if (a->limit > 0)
			f.df_limit = a->limit - (int)shown < 500 ? a->limit - (int)shown : 500;
		if ((rc = cm_dsr_list(cx, &f, &page, &w)) != CM_OK) {
			dsr_fail(rc, &w);
			goto out;
		}
		json_array_foreach(json_object_get(page, "requests"), i, v) {
			if (a->json) {
				char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

				if (s != NULL)
					printf("%s\n", s);
				free(s);
			} else {
				print_row(v);
			}
			shown++;
		}
		v = json_object_get(page, "next_cursor");
		if (!json_is_string(v) || (a->limit > 0 && (int)shown >= a->limit))
			break;
		free(cursor);
		cursor = strdup(json_string_value(v));
		if (cursor == NULL)
			goto out;
		f.df_cursor = cursor;
		json_decref(page);
		page = NULL;
	}
	ret = CM_EXIT_OK;
out:
	json_decref(page);
	free(cursor);
	return ret;
}

static cm_result
dsr_apply(const struct cm_ctx *cx, enum dsr_step s, const char *id, const char *text,
    bool *accepted, json_t **out, struct cm_why *w)
{
	switch (s) {
	case S_VERIFY:
		return cm_dsr_verify(cx, id, text, accepted, out, w);
	case S_RESEND:
		return cm_dsr_resend(cx, id, out, w);
	case S_EXTEND:
		return cm_dsr_extend(cx, id, text, out, w);
	case S_DENY:
		return cm_dsr_deny(cx, id, text, out, w);
	case S_CANCEL:
		return cm_dsr_cancel(cx, id, text, out, w);
	case S_PROCESS:
		return cm_dsr_process(cx, id, out, w);
	case S_COMPLETE:
		return cm_dsr_complete(cx, id, text, out, w);
	case S_LIFT:
		return cm_dsr_lift(cx, id, text, out, w);
	}
	return CM_INVALID;
}

/* Runs step S on request ID in one transaction and prints the request after. */
static int
dsr_run(const struct cm_ctx *cx, enum dsr_step s, const char *id, const char *text)
{
	struct cm_why w;
	json_t *out = NULL;
	bool accepted = true;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK) {
		dsr_fail(rc, &w);
		return CM_EXIT_ERROR;
	}
	rc = dsr_apply(cx, s, id, text, &accepted, &out, &w);
	if (rc != CM_OK) {
		cm_db_rollback(cx->cx_db);
		json_decref(out);
		dsr_fail(rc, &w);
		return CM_EXIT_ERROR;
	}
	/* A wrong code is an attempt, and an attempt is kept. */
	if ((rc = cm_db_commit(cx->cx_db)) != CM_OK) {
		json_decref(out);
		dsr_fail(rc, &w);
		return CM_EXIT_ERROR;
	}
	if (!accepted) {
		json_decref(out);
		dsr_fail(CM_INVALID, &w);
		return CM_EXIT_ERROR;
	}
	print_json(out);
	json_decref(out);
	return CM_EXIT_OK;
}

static int
dsr_show(const struct cm_ctx *cx, const char *id)
{
	struct cm_why w;
	json_t *out = NULL;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((rc = cm_db_read_begin(cx->cx_db)) != CM_OK) {
		dsr_fail(rc, &w);
		return CM_EXIT_ERROR;
	}
	rc = cm_dsr_get(cx, id, &out, &w);
	cm_db_read_end(cx->cx_db);
	if (rc != CM_OK) {
		dsr_fail(rc, &w);
		return CM_EXIT_ERROR;
	}
	print_json(out);
	json_decref(out);
	return CM_EXIT_OK;
}

/*
 * The identity code when --code was not given: one line of standard
 * input, so the code need not be on a command line other users can see.
 */
static const char *
read_code(char *buf, size_t len)
{
	if (fgets(buf, (int)len, stdin) == NULL)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

/* Opens the data directory and the policy, and runs SUB on ID (or lists). */
static int
dsr_open_run(const struct dsr_args *a, const char *sub, const struct dsr_sub *step,
    const char *id)
{
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_policy *policy = NULL;
	struct cm_ctx cx;
	char err[256];
	int ret;

	if (cm_policy_load(a->policy, &policy, err, sizeof(err)) != CM_OK) {
		cm_cli_error("invalid policy: %s", err);
		return CM_EXIT_ERROR;
	}
	if ((ret = cm_cli_open(cm_cli_data_dir(a->data), NULL, false, &keys, &store)) != 0)
		goto out;
	cm_ctx_init(&cx, cm_store_db(store), keys, policy, "cli");
	if (cx.cx_db == NULL) {
		cm_cli_error("cannot open the store");
		ret = CM_EXIT_ERROR;
	} else if (strcmp(sub, "list") == 0) {
		ret = dsr_list(&cx, a);
	} else if (strcmp(sub, "show") == 0) {
		ret = dsr_show(&cx, id);
	} else {
		ret = dsr_run(&cx, step->s_step, id, a->text);
	}
out:
	cm_store_close(store);
	cm_keys_free(keys);
	cm_policy_free(policy);
	return ret;
}

int
cm_cmd_dsr(int argc, char **argv)
{
	struct dsr_args a;
	const struct dsr_sub *step = NULL;
	const char *sub, *textopt = NULL, *id = NULL;
	char code[16];
	size_t i;
	int c, ret;

	memset(&a, 0, sizeof(a));
	a.policy = "./policy";
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cm_cli_usage("dsr", argc < 2);
		return argc < 2 ? CM_EXIT_USAGE : CM_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "export") == 0 || strcmp(sub, "verify-package") == 0)
		return cm_cmd_dsr_package(argc, argv);
	for (i = 0; i < CM_NELEM(dsr_subs) && step == NULL; i++)
		if (strcmp(sub, dsr_subs[i].s_name) == 0)
			step = &dsr_subs[i];
	if (step == NULL && strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0)
		goto usage;
	if (cm_cli_env_defaults(dsr_opts, dsr_env, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", dsr_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			cm_cli_usage("dsr", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || dsr_set(c, optarg, &a, &textopt) != 0)
			goto usage;
	}
	if (strcmp(sub, "list") == 0) {
		if (optind != argc - 1 || a.text != NULL)
			goto usage;
	} else {
		if (optind != argc - 2 || a.status != NULL || a.type != NULL ||
		    a.subject != NULL || a.overdue || a.limit != 0)
			goto usage;
		id = argv[1 + optind];
		/* Each step takes only its own option: --reason, --note or --code. */
		if (a.text != NULL && (step == NULL || step->s_text == NULL ||
		    strcmp(step->s_text, textopt) != 0))
			goto usage;
		if (step != NULL && step->s_step == S_VERIFY && a.text == NULL &&
		    (a.text = read_code(code, sizeof(code))) == NULL) {
			cm_cli_error("--code: the code is required (or one line on stdin)");
			return CM_EXIT_USAGE;
		}
	}
	ret = dsr_open_run(&a, sub, step, id);
	cm_wipe(code, sizeof(code));
	return ret;
usage:
	cm_cli_usage("dsr", true);
	return CM_EXIT_USAGE;
}
