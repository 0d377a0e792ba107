/* SPDX-License-Identifier: ISC */
/*
 * What the running service offers the HTTP layer of the lower layers, so
 * that src/http/ needs no store header: a read snapshot for a request
 * (its token and its answer read in one), the transaction of a group
 * commit, and the spool directory DATA/tmp, where answers too long to hold
 * in memory wait in files nobody else can open until they are sent. Each
 * store call is on the calling thread's own connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/app.h"
#include "consentd/store.h"
#include "consentd/util.h"

cm_result
cm_app_read_begin(struct cm_app *app)
{
	struct cm_db *db = cm_store_db(app->app_store);

	return db != NULL ? cm_db_read_begin(db) : CM_IOERR;
}

void
cm_app_read_end(struct cm_app *app)
{
	struct cm_db *db = cm_store_db(app->app_store);

	if (db != NULL)
		cm_db_read_end(db);
}

cm_result
cm_app_batch_begin(struct cm_app *app)
{
	struct cm_db *db = cm_store_db(app->app_store);

	return db != NULL ? cm_db_begin(db) : CM_IOERR;
}

int64_t
cm_app_job_writes(struct cm_app *app)
{
	struct cm_db *db = cm_store_db(app->app_store);

	return db != NULL ? cm_db_changes(db) : -1;
}

bool
cm_app_in_write(struct cm_app *app)
{
	struct cm_db *db = cm_store_db(app->app_store);

	return db != NULL && cm_db_in_write(db);
}

cm_result
cm_app_job_begin(struct cm_app *app)
{
	struct cm_db *db = cm_store_db(app->app_store);

	return db != NULL ? cm_db_savepoint(db) : CM_IOERR;
}

cm_result
cm_app_job_end(struct cm_app *app, bool keep)
{
	struct cm_db *db = cm_store_db(app->app_store);

	if (db == NULL || (keep ? cm_db_savepoint_release(db) :
	    cm_db_savepoint_rollback(db)) != CM_OK || !cm_db_in_write(db))
		return CM_IOERR;
	return CM_OK;
}

cm_result
cm_app_batch_end(struct cm_app *app, cm_result rc)
{
	struct cm_db *db = cm_store_db(app->app_store);

	if (rc != CM_OK) {
		if (db != NULL)
			cm_db_rollback(db);
		return rc;
	}
	return db != NULL ? cm_db_commit(db) : CM_IOERR;
}

int
cm_app_spool_init(struct cm_app *app, const char *data, char *err, size_t errlen)
{
	struct stat st;
	char *dir = NULL;
	size_t n;
	int rc = -1;

	n = strlen(data) + sizeof("/tmp");
	dir = cm_malloc(n);
	if ((size_t)snprintf(dir, n, "%s/tmp", data) >= n) {
		snprintf(err, errlen, "%s: path too long", data);
		goto out;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
		goto out;
	}
	/* An existing one is taken only if it is a directory of ours. */
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    chmod(dir, 0700) == -1) {
		snprintf(err, errlen, "%s: not a directory of this user's that can be "
		    "made private (mode 0700)", dir);
		goto out;
	}
	free(app->app_spool);
	app->app_spool = dir;
	dir = NULL;
	rc = 0;
out:
	free(dir);
	return rc;
}

int
cm_app_spool_open(struct cm_app *app)
{
	char *path = NULL;
	size_t n;
	int fd = -1;

	if (app->app_spool == NULL) {
		errno = ENOENT;
		goto out;
	}
	if ((fd = open(app->app_spool, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1)
		goto out;
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	n = strlen(app->app_spool) + sizeof("/spool-XXXXXX");
	path = cm_malloc(n);
	snprintf(path, n, "%s/spool-XXXXXX", app->app_spool);
	if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
		unlink(path);
out:
	free(path);
	return fd;
}

void
cm_app_spool_fini(struct cm_app *app)
{
	char esc[256];

	if (app->app_spool == NULL)
		return;
	/* Its files were never visible, so it is empty unless one was left by a crash. */
	if (rmdir(app->app_spool) == -1 && errno != ENOENT)
		cm_log(CM_LOG_WARN, "spool_not_removed", ",\"dir\":\"%s\",\"error\":\"%s\"",
		    cm_json_escape(esc, sizeof(esc), app->app_spool), strerror(errno));
	free(app->app_spool);
	app->app_spool = NULL;
}
