/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes the checks the API makes of a JSON request body: the server's
 * parse (json_loadb with JSON_REJECT_DUPLICATES, an object required), then
 * the real handler of a route of cm_api_routes that takes a JSON body, so
 * cm_json_check_fields, the cm_json_get_* getters and each handler's own
 * checks (evidence, times, identifiers, the policy's purposes, channels,
 * topics) all run. No server is needed: the request is one the writer
 * thread would hold (its reply is kept, not queued on a connection), the
 * group-commit writer is not running, and the store is one whose database
 * has gone, so a handler whose checks all pass answers 503 and never
 * writes. The first byte picks the route, the rest is the body. Checks
 * that every body gets exactly the error envelope
 * {"error":{"code","message","field"}} with a 4xx status, or 503, and
 * never a 500 or an "internal" error.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../../src/http/http_int.h"
#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "fuzz.h"

#define MAX_ROUTES	32

static const struct cm_route *routes[MAX_ROUTES];
static size_t nroutes;
static struct cm_app app;
static struct cm_server srv;
static char dir[256];

struct opener {
	struct cm_keys	*keys;
	struct cm_store	*store;
	char		 err[512];
};

/* On a thread of its own, whose connection to the store ends with it. */
static void *
open_store(void *arg)
{
	struct opener *o = arg;
	struct cm_migration_set set;

	if (cm_keys_create(dir, o->err, sizeof(o->err)) != CM_OK ||
	    cm_keys_load(dir, &o->keys, o->err, sizeof(o->err)) != CM_OK ||
	    cm_migrations_load(NULL, &set, o->err, sizeof(o->err)) != CM_OK)
		return NULL;
	if (cm_store_create(dir, o->keys, &set, o->err, sizeof(o->err)) != CM_OK ||
	    cm_store_open(dir, o->keys, &set, NULL, &o->store, o->err,
	    sizeof(o->err)) != CM_OK)
		o->store = NULL;
	cm_migrations_free(&set);
	return NULL;
}

static void
cleanup(void)
{
	struct dirent *de;
	char path[600];
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct opener o;
	pthread_t t;
	const char *tmp;
	char path[300];
	size_t i;

	(void)argc;
	(void)argv;
	if (cm_crypto_init() != 0)
		abort();
	for (i = 0; i < cm_api_nroutes && nroutes < MAX_ROUTES; i++)
		if (cm_api_routes[i].r_flags & CM_ROUTE_JSON_BODY)
			routes[nroutes++] = &cm_api_routes[i];
	if ((tmp = getenv("CONSENTD_FUZZ_TMP")) == NULL)
		tmp = "build";
	mkdir(tmp, 0700);
	snprintf(dir, sizeof(dir), "%s/json-body-XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "fuzz: cannot make a directory in %s: %s\n", tmp, strerror(errno));
		abort();
	}
	atexit(cleanup);
	memset(&o, 0, sizeof(o));
	if (pthread_create(&t, NULL, open_store, &o) != 0 || pthread_join(t, NULL) != 0 ||
	    o.store == NULL) {
		fprintf(stderr, "fuzz: cannot make a store: %s\n", o.err);
		abort();
	}
	/* The database goes: every connection this thread asks for fails. */
	snprintf(path, sizeof(path), "%s/consentd.db", dir);
	unlink(path);
	app.app_store = o.store;
	app.app_keys = o.keys;
	app.app_policy = fuzz_policy();
	srv.sv_app = &app;
	pthread_mutex_init(&srv.sv_writer.wr_lock, NULL);
	return 0;
}

static size_t
pattern_params(const char *pattern)
{
	size_t n = 0;

	for (; *pattern != '\0'; pattern++)
		if (*pattern == '{')
			n++;
	return n;
}

/* The reply is one error envelope, with a status the input may cause. */
static void
check_reply(const struct cm_request *rq)
{
	json_t *o, *e, *code, *msg, *field;

	FUZZ_CHECK(rq->rq_kept_body != NULL);
	FUZZ_CHECK((rq->rq_kept_status >= 400 && rq->rq_kept_status < 500) ||
	    rq->rq_kept_status == 503);
	o = json_loadb(rq->rq_kept_body, rq->rq_kept_len, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_object(o) && json_object_size(o) == 1);
	e = json_object_get(o, "error");
	code = json_object_get(e, "code");
	msg = json_object_get(e, "message");
	field = json_object_get(e, "field");
	FUZZ_CHECK(json_is_string(code) && json_is_string(msg) &&
	    (json_is_string(field) || json_is_null(field)));
	FUZZ_CHECK(strcmp(json_string_value(code), "internal") != 0);
	json_decref(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cm_route *route;
	struct cm_request *rq;
	json_t *body;
	size_t i;

	if (size == 0)
		return 0;
	route = routes[data[0] % nroutes];
	/* As the server does before it calls the handler. */
	body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(body)) {
		json_decref(body);
		return 0;
	}
	rq = cm_calloc(1, sizeof(*rq));
	rq->rq_srv = &srv;
	rq->rq_route = route;
	rq->rq_method = route->r_method;
	rq->rq_json = body;
	rq->rq_in_writer = true;
	for (i = 0; i < pattern_params(route->r_pattern); i++)
		rq->rq_params[rq->rq_nparams++] = cm_strdup("sub_abcdefghijklmnopqrstuvwxyz");
	route->r_fn(rq);
	check_reply(rq);
	req_free(rq);
	return 0;
}
