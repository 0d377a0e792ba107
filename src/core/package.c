/* SPDX-License-Identifier: ISC */
/*
 * Where access and portability packages are held and how they go. A
 * package is a sealed file, DATA/packages/pkg_…, under a random key of
 * its own that the store keeps wrapped under the key-encryption key (AD:
 * the package id); the row also says when it expires. Reading one
 * decrypts it a chunk at a time while it is sent. Destroying one deletes
 * its row (and so its key) in the caller's transaction and removes the
 * file: an erasure destroys the subject's, and every build destroys the
 * expired ones and the files of builds that never committed.
 *
 * Nothing here calls into dsr.c: the erasure (through dsr_links.c) calls
 * in, and dsr.c reaches dsr_links.c.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "dsr_int.h"
#include "package_int.h"

struct cm_package_reader {
	struct cm_sealed_reader	*pr_sealed;
};

int
package_path(struct cm_db *db, const char *id, bool mkdir_, char *out, size_t outlen)
{
	char dir[4096];
	int n;

	if (cm_store_dir(db, dir, sizeof(dir)) != 0)
		return -1;
	n = snprintf(out, outlen, "%s/" PACKAGE_DIR, dir);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	if (mkdir_ && mkdir(out, 0700) != 0 && errno != EEXIST)
		return -1;
	n = snprintf(out, outlen, "%s/" PACKAGE_DIR "/%s", dir, id);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int
unlink_package(void *arg, const struct cm_package_row *p)
{
	struct cm_db *db = arg;
	char path[4200];

	if (package_path(db, p->pk_id, false, path, sizeof(path)) == 0 &&
	    unlink(path) != 0 && errno != ENOENT)
		cm_log(CM_LOG_WARN, "package_unlink_failed", ",\"package\":\"%s\"", p->pk_id);
	return 0;
}

/*
 * Removes the files of DATA/packages that no row names: a build whose
 * transaction rolled back after its file was written. Runs inside a
 * write transaction, so no other build is writing one meanwhile.
 */
static cm_result
remove_orphans(struct cm_db *db)
{
	struct cm_package_row p;
	struct dirent *de;
	char dir[4200];
	DIR *d;
	cm_result rc = CM_OK;

	if (package_path(db, "", false, dir, sizeof(dir)) != 0)
		return CM_IOERR;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? CM_OK : CM_IOERR;
	while (rc == CM_OK && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "pkg_", 4) != 0)
			continue;
		if ((rc = cm_store_package_by_id(db, de->d_name, &p)) == CM_NOTFOUND) {
			memset(&p, 0, sizeof(p));
			snprintf(p.pk_id, sizeof(p.pk_id), "%.30s", de->d_name);
			if (strcmp(p.pk_id, de->d_name) == 0)
				(void)unlink_package(db, &p);
			rc = CM_OK;
		}
	}
	closedir(d);
	return rc;
}

cm_result
package_destroy(const struct cm_ctx *cx, const char *subject)
{
	cm_result rc;

	if ((rc = cm_store_packages_list(cx->cx_db, subject, cx->cx_now, unlink_package,
	    cx->cx_db)) != CM_OK ||
	    (rc = cm_store_packages_delete(cx->cx_db, subject, cx->cx_now)) != CM_OK)
		return rc;
	return subject == NULL ? remove_orphans(cx->cx_db) : CM_OK;
}

cm_result
dsr_package_forget(const struct cm_ctx *cx, const char *subject)
{
	return package_destroy(cx, subject);
}

cm_result
cm_dsr_packages_sweep(const struct cm_ctx *cx)
{
	return package_destroy(cx, NULL);
}

/* Why request ROW has no package in FORMAT to give, into W. */
static cm_result
no_package(const struct cm_ctx *cx, const struct cm_dsr_row *row, struct cm_why *w)
{
	struct cm_subject_row s;
	cm_result rc;

	if (row->r_subject[0] != '\0') {
		if ((rc = cm_store_subject_get(cx->cx_db, row->r_subject, &s)) != CM_OK &&
		    rc != CM_NOTFOUND)
			return rc;
		if (rc == CM_OK && s.s_state == CM_SUBJECT_ERASED) {
			cm_why_set(w, "subject_erased", "the subject's record was erased, and "
			    "their packages with it");
			snprintf(w->w_field, sizeof(w->w_field), "id");
			return CM_CONFLICT;
		}
	}
	if (strcmp(row->r_status, "completed") == 0 && row->r_subject[0] != '\0') {
		cm_why_set(w, "package_expired", "the package has expired and was destroyed; "
		    "a new request makes a new one");
		snprintf(w->w_field, sizeof(w->w_field), "expires_at");
		return CM_CONFLICT;
	}
	cm_why_set(w, "package_not_ready", "no package yet: the request is %s%s",
	    row->r_status, row->r_subject[0] == '\0' ? " and no data is held" : "");
	snprintf(w->w_field, sizeof(w->w_field), "status");
	return CM_CONFLICT;
}

static cm_result
open_row(const struct cm_ctx *cx, const struct cm_package_row *p,
    struct cm_package_reader **out)
{
	struct cm_package_reader *r;
	char path[4200];
	uint8_t *key;
	cm_result rc = CM_IOERR;

	key = cm_key_acquire();
	if (cm_subject_key_unwrap(cx->cx_keys, p->pk_id, p->pk_wrapped, sizeof(p->pk_wrapped),
	    key) != 0 || package_path(cx->cx_db, p->pk_id, false, path, sizeof(path)) != 0) {
		cm_log(CM_LOG_ERROR, "package_key_unusable", ",\"package\":\"%s\"", p->pk_id);
		goto out;
	}
	r = cm_calloc(1, sizeof(*r));
	if ((r->pr_sealed = cm_sealed_open(path, key)) == NULL) {
		cm_log(CM_LOG_ERROR, "package_unreadable", ",\"package\":\"%s\"", p->pk_id);
		free(r);
		goto out;
	}
	*out = r;
	rc = CM_OK;
out:
	cm_key_release(key);
	return rc;
}

cm_result
cm_dsr_package_open(const struct cm_ctx *cx, const char *id, enum cm_package_format fmt,
    struct cm_package_reader **out, uint64_t *size, struct cm_why *w)
{
	struct cm_package_row p;
	struct cm_dsr_row row;
	cm_result rc;

	*out = NULL;
	*size = 0;
	if ((rc = cm_db_read_begin(cx->cx_db)) != CM_OK)
		return rc;
	if ((rc = cm_store_dsr_get(cx->cx_db, id, &row)) != CM_OK) {
		if (rc == CM_NOTFOUND)
			cm_why_set(w, "not_found", "no such request");
		goto out;
	}
	rc = CM_CONFLICT;
	if (strcmp(row.r_type, "access") != 0 && strcmp(row.r_type, "portability") != 0) {
		cm_why_set(w, "invalid_request_type", "only access and portability requests "
		    "have a package; this one is %s", row.r_type);
		snprintf(w->w_field, sizeof(w->w_field), "type");
		goto out;
	}
	if (fmt == CM_PACKAGE_CSV && strcmp(row.r_type, "portability") != 0) {
		cm_why_set(w, "invalid_parameter", "CSV is offered for portability requests");
		snprintf(w->w_field, sizeof(w->w_field), "format");
		rc = CM_INVALID;
		goto out;
	}
	rc = cm_store_package_get(cx->cx_db, id, fmt == CM_PACKAGE_CSV ? "csv" : "json", &p);
	if (rc == CM_NOTFOUND) {
		rc = no_package(cx, &row, w);
		goto out;
	}
	if (rc != CM_OK)
		goto out;
	if (p.pk_expires_us <= cx->cx_now) {
		cm_why_set(w, "package_expired", "the package expired; a new request makes a "
		    "new one");
		snprintf(w->w_field, sizeof(w->w_field), "expires_at");
		rc = CM_CONFLICT;
		goto out;
	}
	if ((rc = open_row(cx, &p, out)) == CM_OK)
		*size = (uint64_t)p.pk_size;
out:
	cm_dsr_row_clear(&row);
	cm_db_read_end(cx->cx_db);
	return rc;
}

long
cm_dsr_package_read(struct cm_package_reader *r, void *buf, size_t len)
{
	return cm_sealed_read(r->pr_sealed, buf, len);
}

void
cm_dsr_package_close(struct cm_package_reader *r)
{
	if (r == NULL)
		return;
	cm_sealed_close(r->pr_sealed);
	free(r);
}
