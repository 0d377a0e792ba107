/* SPDX-License-Identifier: ISC */
/*
 * Internals of the import shared by src/core/import.c (the run) and
 * src/core/import_map.c (mappings, and what one row of a file says under
 * one). Only those two files include this header.
 */
#ifndef CONSENTD_CORE_IMPORT_INT_H
#define CONSENTD_CORE_IMPORT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/decision.h"
#include "consentd/identifier.h"
#include "consentd/import.h"
#include "consentd/policy.h"

#define IMP_COLS_MAX	8	/* candidate columns of one field */
#define IMP_RECS_MAX	16	/* records of one mapping */

enum imp_kind { IMP_CONSENT, IMP_SUPPRESSION, IMP_PREFERENCE };

/* One row as read: CSV fields by column, or one NDJSON object. */
struct imp_row {
	char	**rw_vals;	/* CSV: rw_n fields */
	size_t	  rw_n;
	json_t	 *rw_obj;	/* NDJSON: the object */
};

/* What one record of a row says, checked, ready for the domain. */
struct imp_action {
	enum imp_kind		 a_kind;
	size_t			 a_rec;		/* which record of the mapping */
	struct cm_identifier	 a_ident;
	const struct cm_purpose	*a_purpose;
	int			 a_channel;	/* -1: all channels */
	enum cm_consent_state	 a_state;
	int64_t			 a_time_us;	/* 0 for a suppression without one */
	char			 a_reason[16];	/* suppression reason */
	char			 a_ip[64];	/* evidence.ip or "" */
};

/*
 * Resolves the mapping's columns against a CSV header (HDR, N names):
 * -1 when the file lacks one. -1 with a reason in WHY when no record's
 * identifier can be found in it, so the file cannot be this export.
 */
int	imp_map_bind(struct cm_import_map *, char **hdr, size_t n, char *why,
	    size_t whylen);

/*
 * What ROW says under the mapping into ACTS (IMP_RECS_MAX of them):
 * the number of records that apply (0: the row has nothing to import),
 * or -1 with a reason in WHY, free of the row's values.
 */
int	imp_map_row(const struct cm_import_map *, const struct cm_policy *,
	    const struct imp_row *, struct imp_action *acts, char *why, size_t whylen);

#endif
