/* SPDX-License-Identifier: ISC */
/*
 * The running service's shared, read-mostly state, handed to every request
 * handler: the store, the policy and the keys. Built by 'consentd serve'
 * before the server starts and torn down after it stops. Its functions
 * (src/app/app.c) are what the HTTP layer needs of the store without
 * knowing it: a read snapshot for a request, the transaction of a group
 * commit, and the spool directory for answers too long to hold in memory.
 */
#ifndef CONSENTD_APP_H
#define CONSENTD_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "consentd/common.h"

struct cm_store;
struct cm_policy;
struct cm_keys;

struct cm_par;

struct cm_app {
	struct cm_store		*app_store;
	struct cm_policy	*app_policy;
	const struct cm_keys	*app_keys;
	struct cm_par		*app_par;	/* helper threads; may be NULL */
	atomic_bool		 app_draining;	/* shutting down: not ready */
	char			 app_origin[129];	/* the audit log's origin */
	char			*app_spool;	/* DATA/tmp, owned; NULL: none */
	const char		*app_web;	/* --web: pages and static assets */
	/* --public-url, without a trailing "/": the base of the links made */
	char			 app_public_url[256];
	bool			 app_https;	/* it is https, or the server serves
						   TLS: cookies are Secure */
	/* The bound port, once listening: the default base is http://127.0.0.1:PORT */
	atomic_int		 app_port;
};

/* ---- read snapshots ------------------------------------------------------ */

/*
 * Opens one read snapshot on the calling thread's connection to the store:
 * every read the thread makes until cm_app_read_end() sees one state,
 * under one set of file locks. Nests (inside a write transaction it is
 * that transaction). Returns CM_OK, or the store's failure, in which case
 * nothing is open and cm_app_read_end() must not be called.
 */
cm_result cm_app_read_begin(struct cm_app *) CM_WUR;
void	  cm_app_read_end(struct cm_app *);

/* ---- group commit -------------------------------------------------------- */

/*
 * One write transaction on the calling thread's connection, shared by
 * several jobs, each in a savepoint of its own: cm_app_batch_begin(), then
 * for each job cm_app_job_begin(), the job, cm_app_job_end(), then
 * cm_app_batch_end(). Each returns CM_OK or the store's failure.
 *
 * Or, cheaper, jobs without savepoints (SQLCipher encrypts every page a
 * savepoint journals): cm_app_job_writes() before and after each job says
 * whether it wrote anything, and cm_app_in_write() whether the
 * transaction is still open; a failed job that wrote, or a dropped
 * transaction, means the batch must be rolled back and run again with
 * savepoints.
 */
cm_result cm_app_batch_begin(struct cm_app *) CM_WUR;
int64_t	  cm_app_job_writes(struct cm_app *);
bool	  cm_app_in_write(struct cm_app *);
cm_result cm_app_job_begin(struct cm_app *) CM_WUR;
/*
 * Keeps (KEEP) or undoes the job's changes. CM_IOERR when the batch can no
 * longer be trusted: the savepoint could not be released or undone, or the
 * store dropped the transaction.
 */
cm_result cm_app_job_end(struct cm_app *, bool keep) CM_WUR;
/*
 * Commits the batch when RC is CM_OK and returns the commit's result;
 * otherwise rolls everything back (if anything was begun) and returns RC.
 */
cm_result cm_app_batch_end(struct cm_app *, cm_result rc) CM_WUR;

/* ---- the spool directory ------------------------------------------------- */

/*
 * Makes DATA/tmp, mode 0700, for cm_app_spool_open(), at start-up; an
 * existing one is taken if it is a directory of ours (and set to 0700).
 * Returns 0, or -1 with a reason in ERR (ERRLEN bytes).
 */
int	cm_app_spool_init(struct cm_app *, const char *data, char *err, size_t errlen) CM_WUR;
/*
 * A new, empty, read-write file in the spool directory that no other
 * process can open: made with O_TMPFILE where the file system allows, else
 * made and unlinked at once. The caller closes it. -1 with errno set on
 * failure.
 */
int	cm_app_spool_open(struct cm_app *) CM_WUR;
/* Removes the (empty) spool directory at shutdown and frees its name. */
void	cm_app_spool_fini(struct cm_app *);

#endif
