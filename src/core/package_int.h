/* SPDX-License-Identifier: ISC */
/*
 * Internals of access and portability packages shared by
 * src/core/package.c (where a package's file is, opening it, destroying
 * packages) and dsr_package.c (building one while a request is
 * processed) and package_csv.c (the CSV of a portability request).
 */
#ifndef CONSENTD_CORE_PACKAGE_INT_H
#define CONSENTD_CORE_PACKAGE_INT_H

#include <stddef.h>

#include "consentd/core.h"
#include "consentd/export.h"
#include "consentd/store.h"

/* Days a package is kept when the policy says nothing (retention.packages_days). */
#define PACKAGE_DEFAULT_DAYS	30
#define PACKAGE_DIR		"packages"

/*
 * The path of package ID's file, DATA/packages/ID, into OUT (creating
 * DATA/packages, mode 0700, when MKDIR). -1 when it cannot.
 */
int	package_path(struct cm_db *, const char *id, bool mkdir_, char *out, size_t outlen);

/*
 * Destroys the packages of SUBJECT (and of the requests now held by it),
 * or, with SUBJECT NULL, those expired before CX's now: rows (their keys)
 * in CX's transaction, and their files; also files left by a build whose
 * transaction never committed.
 */
cm_result package_destroy(const struct cm_ctx *, const char *subject) CM_WUR;

/* The CSV of a portability request: the profile, identifiers and consent history. */
cm_result package_csv(const struct cm_ctx *, const char *subject, const uint8_t *key,
	    cm_export_sink sink, void *arg) CM_WUR;

#endif
