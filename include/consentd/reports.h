/* SPDX-License-Identifier: ISC */
/*
 * Aggregate reports over the whole store, counted by the domain and
 * formatted by the API: the measurement holdout's group sizes.
 */
#ifndef CONSENTD_REPORTS_H
#define CONSENTD_REPORTS_H

#include <stddef.h>
#include <stdint.h>

#include "consentd/common.h"

struct cm_ctx;
struct cm_purpose;

/* One purpose's measurement holdout. */
struct cm_holdout_group {
	const struct cm_purpose	*hg_purpose;	/* borrowed from the policy */
	int64_t			 hg_control;	/* active subjects held out */
	int64_t			 hg_treatment;	/* active subjects contacted as usual */
};

struct cm_holdout_report {
	int64_t			 hr_active;	/* active subjects */
	struct cm_holdout_group	*hr_groups;	/* purposes with a holdout, in policy order */
	size_t			 hr_ngroups;
};

/*
 * Counts, over every active subject of the store, the control and the
 * treatment group of each purpose of CX's policy that has a holdout, in
 * the caller's snapshot if it holds one. On CM_OK the caller frees *OUT
 * with cm_holdout_report_free(); on failure *OUT holds nothing to free.
 */
cm_result cm_holdout_report(const struct cm_ctx *cx, struct cm_holdout_report *out) CM_WUR;
/* Frees what cm_holdout_report() filled in; accepts an emptied report. */
void	cm_holdout_report_free(struct cm_holdout_report *);

#endif
