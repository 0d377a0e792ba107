/* SPDX-License-Identifier: ISC */
/*
 * POST /v1/imports runs a bulk import (src/core/import.c) in the
 * background and answers 202 at once; GET /v1/imports/{id} reads its
 * progress. The body is the export itself (text/csv or
 * application/x-ndjson, at most --max-body-bytes); the query names the
 * mapping. One import runs at a time (another is 409 import_running):
 * imports share the store's one writer with the API, and one at a time
 * keeps the API's writes flowing between its transactions. The last few
 * imports are kept in memory only, with at most IMPORT_REJECTS_MAX
 * rejects each as line numbers and reasons (never the record: the API
 * holds no copy of personal data it was not asked to keep); a restart
 * forgets them, and stops a running one, whose committed rows stay (a
 * new run of the file skips them).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/import.h"
#include "consentd/store.h"
#include "consentd/util.h"

#define IMPORTS_KEPT		16
#define IMPORT_REJECTS_MAX	1000
#define IMPORT_API_BATCH	500
#define IMPORT_API_BATCH_MS	100	/* the API's own writers wait at most this */
#define IMPORT_PIECE		(64 * 1024)
#define IMPORT_ID_MAX		48

enum import_status { IMPORT_RUNNING, IMPORT_COMPLETED, IMPORT_FAILED };

struct import_job {
	char			 ij_id[IMPORT_ID_MAX];
	enum import_status	 ij_status;
	bool			 ij_dry_run;
	struct cm_import_stats	 ij_st;
	json_t			*ij_rejects;	/* [{"line","reason"}] */
	bool			 ij_truncated;
	char			 ij_error[160];
	int64_t			 ij_started, ij_finished;
	/* For the thread only. */
	struct cm_app		*ij_app;
	struct cm_import_map	*ij_map;
	enum cm_import_format	 ij_format;
	char			 ij_actor[CM_ACTOR_MAX];
	char			 ij_file[65];
	char			*ij_body;
	size_t			 ij_len;
};

/* Every import of this process, newest last, under one lock. */
static pthread_mutex_t		 imports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct import_job	*imports[IMPORTS_KEPT];
static size_t			 imports_n;
static pthread_t		 imports_thread;
static bool			 imports_joinable;
static atomic_bool		 imports_stop;

static void
job_free(struct import_job *j)
{
	if (j == NULL)
		return;
	json_decref(j->ij_rejects);
	cm_import_map_free(j->ij_map);
	if (j->ij_body != NULL) {
		cm_wipe(j->ij_body, j->ij_len);
		free(j->ij_body);
	}
	free(j);
}

static void
job_reject(void *arg, uint64_t line, const char *reason, const char *raw, size_t len)
{
	struct import_job *j = arg;

	(void)raw;
	(void)len;
	pthread_mutex_lock(&imports_lock);
	if (json_array_size(j->ij_rejects) < IMPORT_REJECTS_MAX)
		json_array_append_new(j->ij_rejects, json_pack("{s:I, s:s}", "line",
		    (json_int_t)line, "reason", reason));
	else
		j->ij_truncated = true;
	pthread_mutex_unlock(&imports_lock);
}

static void
job_progress(void *arg, const struct cm_import_stats *st)
{
	struct import_job *j = arg;

	pthread_mutex_lock(&imports_lock);
	j->ij_st = *st;
	pthread_mutex_unlock(&imports_lock);
}

/* Runs the import on its own thread and connection to the store. */
static cm_result
job_feed(struct import_job *j, struct cm_import_stats *st, struct cm_why *w)
{
	struct cm_import_opts o;
	struct cm_import *im;
	struct cm_ctx cx;
	size_t off, n;
	cm_result rc = CM_OK;

	cm_ctx_init(&cx, cm_store_db(j->ij_app->app_store), j->ij_app->app_keys,
	    j->ij_app->app_policy, j->ij_actor);
	if (cx.cx_db == NULL)
		return CM_IOERR;
	memset(&o, 0, sizeof(o));
	o.io_format = j->ij_format;
	o.io_map = j->ij_map;
	o.io_file = j->ij_file[0] ? j->ij_file : NULL;
	o.io_dry_run = j->ij_dry_run;
	o.io_batch = IMPORT_API_BATCH;
	o.io_batch_ms = IMPORT_API_BATCH_MS;
	o.io_reject = job_reject;
	o.io_progress = job_progress;
	o.io_arg = j;
	im = cm_import_new(&cx, &o);
	for (off = 0; off < j->ij_len && rc == CM_OK; off += n) {
		n = j->ij_len - off < IMPORT_PIECE ? j->ij_len - off : IMPORT_PIECE;
		if (atomic_load(&imports_stop)) {
			cm_why_set(w, "stopped", "the server stopped; the rows committed stay "
			    "(send the file again: they are skipped)");
			rc = CM_BUSY;
			break;
		}
		rc = cm_import_feed(im, j->ij_body + off, n, w);
	}
	if (rc == CM_OK)
		rc = cm_import_finish(im, st, w);
	cm_import_free(im);
	return rc;
}

static void *
job_thread(void *arg)
{
	struct import_job *j = arg;
	struct cm_import_stats st;
	struct cm_why w;
	cm_result rc;

	memset(&w, 0, sizeof(w));
	memset(&st, 0, sizeof(st));
	rc = job_feed(j, &st, &w);
	pthread_mutex_lock(&imports_lock);
	if (rc == CM_OK)
		j->ij_st = st;
	j->ij_status = rc == CM_OK ? IMPORT_COMPLETED : IMPORT_FAILED;
	if (rc != CM_OK)
		snprintf(j->ij_error, sizeof(j->ij_error), "%s", w.w_code ? w.w_msg :
		    cm_result_str(rc));
	j->ij_finished = cm_time_now_us();
	cm_wipe(j->ij_body, j->ij_len);
	free(j->ij_body);
	j->ij_body = NULL;
	pthread_mutex_unlock(&imports_lock);
	cm_log(rc == CM_OK ? CM_LOG_INFO : CM_LOG_WARN, "import_finished", ",\"id\":\"%s\","
	    "\"rows\":%llu,\"imported\":%llu,\"unchanged\":%llu,\"rejected\":%llu,\"ok\":%s",
	    j->ij_id, (unsigned long long)j->ij_st.is_rows,
	    (unsigned long long)j->ij_st.is_imported, (unsigned long long)j->ij_st.is_unchanged,
	    (unsigned long long)j->ij_st.is_rejected, rc == CM_OK ? "true" : "false");
	return NULL;
}

void
cm_api_imports_stop(void)
{
	atomic_store(&imports_stop, true);
	if (imports_joinable)
		pthread_join(imports_thread, NULL);
	imports_joinable = false;
	pthread_mutex_lock(&imports_lock);
	while (imports_n > 0)
		job_free(imports[--imports_n]);
	pthread_mutex_unlock(&imports_lock);
}

/* ---- POST /v1/imports --------------------------------------------------- */

/* The mapping the query names, checked against the policy; NULL after a reply. */
static struct cm_import_map *
import_map_of(struct cm_request *rq)
{
	const struct cm_policy *pol = cm_req_app(rq)->app_policy;
	const char *mapping = cm_req_query(rq, "mapping"), *cols = cm_req_query(rq, "columns");
	const char *kind = cm_req_query(rq, "kind"), *list[33];
	struct cm_import_map *m = NULL;
	char why[256], *copy = NULL, *p, *save = NULL;
	json_t *doc = NULL;
	size_t n = 0;

	if ((mapping == NULL) == (cols == NULL)) {
		cm_reply_error(rq, 400, mapping ? "invalid_parameter" : "missing_parameter",
		    mapping ? "columns" : "mapping", "give exactly one of mapping and columns");
		return NULL;
	}
	if (kind != NULL && strcmp(kind, "consents") != 0 && strcmp(kind, "preferences") != 0 &&
	    strcmp(kind, "suppressions") != 0) {
		cm_reply_error(rq, 400, "invalid_parameter", "kind",
		    "consents, preferences or suppressions");
		return NULL;
	}
	if (mapping != NULL && (doc = cm_import_map_builtin(mapping)) == NULL) {
		cm_reply_error(rq, 422, "unknown_mapping", "mapping",
		    "no such mapping (mailchimp, klaviyo, braze)");
		return NULL;
	}
	if (cols != NULL) {
		copy = cm_strdup(cols);
		for (p = strtok_r(copy, ",", &save); p != NULL && n < 32;
		    p = strtok_r(NULL, ",", &save))
			list[n++] = p;
		list[n] = NULL;
		if ((doc = cm_import_map_adhoc(kind == NULL ? NULL : strcmp(kind, "consents") ==
		    0 ? "consent" : strcmp(kind, "suppressions") == 0 ? "suppression" :
		    "preference", list, why, sizeof(why))) == NULL) {
			cm_reply_error(rq, 400, "invalid_parameter", "columns", "%s", why);
			goto out;
		}
	}
	cm_import_map_defaults(doc, cm_req_query(rq, "purpose"), cm_req_query(rq, "channel"));
	if ((m = cm_import_map_new(doc, pol, why, sizeof(why))) == NULL)
		cm_reply_error(rq, 422, "invalid_mapping", mapping ? "mapping" : "columns",
		    "%s", why);
out:
	free(copy);
	json_decref(doc);
	return m;
}

/* The body's format from its Content-Type; -1 after a 415 reply. */
static int
import_format(struct cm_request *rq)
{
	const char *ct = cm_req_header(rq, "Content-Type");

	if (ct != NULL && strncasecmp(ct, "text/csv", 8) == 0)
		return CM_IMPORT_CSV;
	if (ct != NULL && strncasecmp(ct, "application/x-ndjson", 20) == 0)
		return CM_IMPORT_NDJSON;
	cm_reply_error(rq, 415, "unsupported_media_type", NULL,
	    "send the export as text/csv or application/x-ndjson");
	return -1;
}

/* A new job for RQ's body, or NULL after a reply. */
static struct import_job *
import_job_new(struct cm_request *rq)
{
	const char *dry = cm_req_query(rq, "dry_run"), *file = cm_req_query(rq, "file");
	const char *body;
	struct import_job *j;
	size_t len;
	int fmt;

	if ((fmt = import_format(rq)) < 0)
		return NULL;
	if (dry != NULL && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0) {
		cm_reply_error(rq, 400, "invalid_parameter", "dry_run", "true or false");
		return NULL;
	}
	if (file != NULL && (strlen(file) > 64 || strpbrk(file, "/\\\"") != NULL)) {
		cm_reply_error(rq, 400, "invalid_parameter", "file",
		    "a file name of at most 64 bytes, no path");
		return NULL;
	}
	body = cm_req_body(rq, &len);
	j = cm_calloc(1, sizeof(*j));
	if ((j->ij_map = import_map_of(rq)) == NULL) {
		job_free(j);
		return NULL;
	}
	j->ij_format = (enum cm_import_format)fmt;
	j->ij_dry_run = dry != NULL && strcmp(dry, "true") == 0;
	j->ij_app = cm_req_app(rq);
	j->ij_rejects = json_array();
	snprintf(j->ij_actor, sizeof(j->ij_actor), "%s", cm_req_actor(rq));
	snprintf(j->ij_file, sizeof(j->ij_file), "%s", file ? file : "");
	j->ij_body = cm_malloc(len + 1);
	memcpy(j->ij_body, body ? body : "", len);
	j->ij_len = len;
	cm_random_id(j->ij_id, sizeof(j->ij_id), "imp_");
	j->ij_started = cm_time_now_us();
	return j;
}

void
cm_api_imports_start(struct cm_request *rq)
{
	struct import_job *j;
	bool busy = false;
	size_t i;

	if (atomic_load(&imports_stop) || (j = import_job_new(rq)) == NULL) {
		if (!cm_req_replied(rq))
			cm_reply_store_error(rq, CM_BUSY);
		return;
	}
	pthread_mutex_lock(&imports_lock);
	for (i = 0; i < imports_n; i++)
		busy = busy || imports[i]->ij_status == IMPORT_RUNNING;
	if (!busy) {
		if (imports_joinable)
			pthread_join(imports_thread, NULL);
		imports_joinable = false;
		if (imports_n == IMPORTS_KEPT) {
			job_free(imports[0]);
			memmove(imports, imports + 1, (IMPORTS_KEPT - 1) * sizeof(*imports));
			imports_n--;
		}
		imports[imports_n++] = j;
		imports_joinable = pthread_create(&imports_thread, NULL, job_thread, j) == 0;
		if (!imports_joinable)
			imports[--imports_n] = NULL;
	}
	pthread_mutex_unlock(&imports_lock);
	if (busy) {
		cm_reply_error(rq, 409, "import_running", NULL,
		    "another import is running; one runs at a time");
	} else if (!imports_joinable) {
		cm_reply_store_error(rq, CM_BUSY);
	} else {
		cm_reply_json(rq, 202, json_pack("{s:s, s:s}", "id", j->ij_id, "status",
		    "running"));
		return;
	}
	job_free(j);
}

/* ---- GET /v1/imports/{id} ----------------------------------------------- */

static json_t *
job_json(const struct import_job *j)
{
	static const char *const names[] = { "running", "completed", "failed" };
	char t0[32], t1[32];
	json_t *o;

	cm_time_format(t0, j->ij_started);
	cm_time_format(t1, j->ij_finished);
	o = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:O, s:b, s:s, s:s?}",
	    "id", j->ij_id, "status", names[j->ij_status], "dry_run", j->ij_dry_run,
	    "rows", (json_int_t)j->ij_st.is_rows, "imported",
	    (json_int_t)j->ij_st.is_imported, "unchanged", (json_int_t)j->ij_st.is_unchanged,
	    "rejected", (json_int_t)j->ij_st.is_rejected, "skipped",
	    (json_int_t)j->ij_st.is_skipped, "rejects", j->ij_rejects, "rejects_truncated",
	    j->ij_truncated, "started_at", t0, "finished_at",
	    j->ij_status == IMPORT_RUNNING ? NULL : t1);
	if (j->ij_status == IMPORT_FAILED)
		json_object_set_new(o, "error", json_string(j->ij_error));
	return o;
}

void
cm_api_imports_get(struct cm_request *rq)
{
	const char *id = cm_req_param(rq, 0);
	json_t *out = NULL;
	size_t i;

	pthread_mutex_lock(&imports_lock);
	for (i = 0; i < imports_n && out == NULL; i++)
		if (strcmp(imports[i]->ij_id, id) == 0)
			out = job_json(imports[i]);
	pthread_mutex_unlock(&imports_lock);
	if (out == NULL) {
		cm_reply_error(rq, 404, "not_found", "id", "no such import (imports are "
		    "kept in memory until the server restarts)");
		return;
	}
	cm_reply_json(rq, 200, out);
}
