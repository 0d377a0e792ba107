/* SPDX-License-Identifier: ISC */
/*
 * consentd link: a shopper's preference-centre and one-click links from
 * the command line, as POST /v1/subjects/{id}/preference-link makes them,
 * or (--revoke) the revocation of every link of a subject. 'make run'
 * prints a demo link with it. Works while the server runs: the store is
 * shared, and the links are signed with the data directory's link key.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/cli.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/identifier.h"
#include "consentd/policy.h"
#include "consentd/shopper.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

struct link_args {
	const char	*data;
	const char	*policy;
	const char	*public_url;
	const char	*subject;
	const char	*identifier;
	int64_t		 ttl;
	bool		 create;
	bool		 revoke;
};

enum { OPT_DATA = 256, OPT_POLICY, OPT_PUBLIC_URL, OPT_SUBJECT, OPT_IDENTIFIER, OPT_TTL,
	OPT_CREATE, OPT_REVOKE, OPT_HELP };

static const struct option link_opts[] = {
	{ "data", required_argument, NULL, OPT_DATA },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "public-url", required_argument, NULL, OPT_PUBLIC_URL },
	{ "subject", required_argument, NULL, OPT_SUBJECT },
	{ "identifier", required_argument, NULL, OPT_IDENTIFIER },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "create", no_argument, NULL, OPT_CREATE },
	{ "revoke", no_argument, NULL, OPT_REVOKE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

/* --data, --policy and --public-url also come from the environment. */
static int
link_env(int val, const char *arg, void *ctx)
{
	struct link_args *a = ctx;

	if (val == OPT_DATA)
		a->data = arg;
	else if (val == OPT_POLICY)
		a->policy = arg;
	else if (val == OPT_PUBLIC_URL)
		a->public_url = arg;
	return 0;
}

static int
link_set(int val, const char *arg, struct link_args *a)
{
	switch (val) {
	case OPT_DATA:
	case OPT_POLICY:
	case OPT_PUBLIC_URL:
		return link_env(val, arg, a);
	case OPT_SUBJECT:
		a->subject = arg;
		return 0;
	case OPT_IDENTIFIER:
		a->identifier = arg;
		return 0;
	case OPT_TTL:
		if (cm_parse_i64(arg, CM_LINK_TTL_MIN, CM_LINK_TTL_MAX, &a->ttl) != 0) {
			cm_cli_error("--ttl: seconds from %d to %d", CM_LINK_TTL_MIN,
			    CM_LINK_TTL_MAX);
			return CM_EXIT_USAGE;
		}
		return 0;
	case OPT_CREATE:
		a->create = true;
		return 0;
	case OPT_REVOKE:
		a->revoke = true;
		return 0;
	}
	return CM_EXIT_USAGE;
}

/*
 * The subject of A's --subject, or of --identifier (made, with --create,
 * when nobody holds it), into ID. Inside the caller's transaction.
 */
static cm_result
link_subject(const struct cm_ctx *cx, const struct link_args *a, char *id, struct cm_why *w)
{
	struct cm_new_ident ni;
	char why[160];
	cm_result rc;

	if (a->subject != NULL) {
		snprintf(id, CM_SUBJECT_ID_LEN + 1, "%s", a->subject);
		return CM_OK;
	}
	memset(&ni, 0, sizeof(ni));
	if (cm_identifier_parse(a->identifier, strlen(a->identifier), cx->cx_policy, &ni.ni_id,
	    why, sizeof(why)) != CM_OK) {
		cm_why_set(w, "invalid_identifier", "--identifier: %s", why);
		return CM_INVALID;
	}
	rc = cm_subject_resolve(cx, &ni.ni_id, id);
	if (rc == CM_NOTFOUND && a->create) {
		ni.ni_source = "cli";
		rc = cm_subject_create(cx, &ni, 1, NULL, id, w);
	} else if (rc == CM_NOTFOUND) {
		cm_why_set(w, "not_found", "nobody holds this identifier (--create makes "
		    "a subject for it)");
	}
	cm_wipe(&ni, sizeof(ni));
	return rc;
}

/* Makes and prints the links for subject ID. */
static cm_result
link_print(const struct cm_ctx *cx, const struct link_args *a, const char *id,
    struct cm_why *w)
{
	char ptok[CM_LINK_TOKEN_MAX], utok[CM_LINK_TOKEN_MAX], exp[32], base[256];
	struct cm_buf lu = { NULL, 0, 0 };
	int64_t expires = cx->cx_now / 1000000 + a->ttl;
	cm_result rc;

	snprintf(base, sizeof(base), "%s", a->public_url);
	while (base[0] != '\0' && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	if ((rc = cm_link_make(cx, id, CM_LINK_KIND_PREFS, expires, ptok, w)) != CM_OK ||
	    (rc = cm_link_make(cx, id, CM_LINK_KIND_UNSUB, expires, utok, w)) != CM_OK)
		return rc;
	cm_time_format(exp, expires * 1000000);
	cm_link_list_unsubscribe(cx->cx_policy, base, utok, &lu);
	printf("subject: %s\npreference centre: %s/p/%s\none-click unsubscribe: %s/u/%s\n"
	    "expires: %s\nList-Unsubscribe: %s\nList-Unsubscribe-Post: %s\n", id, base, ptok,
	    base, utok, exp, lu.b_data, CM_LIST_UNSUBSCRIBE_POST);
	cm_buf_free(&lu);
	return CM_OK;
}

static int
link_run(const struct cm_ctx *cx, const struct link_args *a)
{
	char id[CM_SUBJECT_ID_LEN + 1];
	struct cm_why w;
	int64_t gen;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK) {
		cm_cli_error("cannot write to the store: %s", cm_result_str(rc));
		return CM_EXIT_ERROR;
	}
	if ((rc = link_subject(cx, a, id, &w)) == CM_OK) {
		if (a->revoke) {
			if ((rc = cm_link_revoke(cx, id, &gen, &w)) == CM_OK)
				printf("subject: %s\nlinks revoked (generation %lld)\n", id,
				    (long long)gen);
		} else {
			rc = link_print(cx, a, id, &w);
		}
	}
	if (rc != CM_OK) {
		cm_db_rollback(cx->cx_db);
		cm_cli_error("%s", w.w_code != NULL ? w.w_msg : cm_result_str(rc));
		return CM_EXIT_ERROR;
	}
	if ((rc = cm_db_commit(cx->cx_db)) != CM_OK) {
		cm_cli_error("cannot commit: %s", cm_result_str(rc));
		return CM_EXIT_ERROR;
	}
	return CM_EXIT_OK;
}

int
cm_cmd_link(int argc, char **argv)
{
	struct link_args a;
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_policy *policy = NULL;
	struct cm_ctx cx;
	char err[256];
	int c, ret;

	memset(&a, 0, sizeof(a));
	a.policy = "./policy";
	a.public_url = "http://127.0.0.1:8080";
	a.ttl = CM_LINK_TTL_DEFAULT;
	if (cm_cli_env_defaults(link_opts, link_env, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", link_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			cm_cli_usage("link", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || link_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (optind != argc || (a.subject == NULL) == (a.identifier == NULL) ||
	    (a.create && a.identifier == NULL))
		goto usage;
	if (cm_public_url_valid(a.public_url) != 0) {
		cm_cli_error("--public-url: expected http://HOST[:PORT][/PATH] or https://…");
		return CM_EXIT_USAGE;
	}
	if (cm_policy_load(a.policy, &policy, err, sizeof(err)) != CM_OK) {
		cm_cli_error("invalid policy: %s", err);
		return CM_EXIT_ERROR;
	}
	if ((ret = cm_cli_open(cm_cli_data_dir(a.data), NULL, false, &keys, &store)) == 0) {
		cm_ctx_init(&cx, cm_store_db(store), keys, policy, "cli");
		if (cx.cx_db == NULL) {
			cm_cli_error("cannot open the store");
			ret = CM_EXIT_ERROR;
		} else {
			ret = link_run(&cx, &a);
		}
	}
	cm_store_close(store);
	cm_keys_free(keys);
	cm_policy_free(policy);
	return ret;
usage:
	cm_cli_usage("link", true);
	return CM_EXIT_USAGE;
}
