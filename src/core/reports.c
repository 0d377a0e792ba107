/* SPDX-License-Identifier: ISC */
/*
 * Aggregate reports counted over the whole store. The measurement holdout
 * report walks every subject once: each active one is in the control or
 * the treatment group of every purpose that holds some people out, by the
 * keyed assignment the check itself uses (cm_holdout_member).
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/core.h"
#include "consentd/decision.h"
#include "consentd/policy.h"
#include "consentd/reports.h"

/* The walk over the subjects. */
struct holdout_scan {
	const struct cm_keys		*hs_keys;
	struct cm_holdout_report	*hs_report;
};

static int
holdout_row(void *arg, const char *id, enum cm_subject_state state)
{
	struct holdout_scan *hs = arg;
	struct cm_holdout_report *hr = hs->hs_report;
	size_t i;

	if (state != CM_SUBJECT_ACTIVE)
		return 0;
	hr->hr_active++;
	for (i = 0; i < hr->hr_ngroups; i++)
		if (cm_holdout_member(hs->hs_keys, id, hr->hr_groups[i].hg_purpose))
			hr->hr_groups[i].hg_control++;
	return 0;
}

cm_result
cm_holdout_report(const struct cm_ctx *cx, struct cm_holdout_report *out)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct holdout_scan hs;
	size_t i;
	cm_result rc;

	memset(out, 0, sizeof(*out));
	out->hr_groups = cm_calloc(pol->pol_npurposes + 1, sizeof(*out->hr_groups));
	for (i = 0; i < pol->pol_npurposes; i++)
		if (pol->pol_purposes[i].pu_holdout_percent > 0)
			out->hr_groups[out->hr_ngroups++].hg_purpose = &pol->pol_purposes[i];
	hs.hs_keys = cx->cx_keys;
	hs.hs_report = out;
	if ((rc = cm_store_subjects_scan(cx->cx_db, holdout_row, &hs)) != CM_OK) {
		cm_holdout_report_free(out);
		goto out;
	}
	for (i = 0; i < out->hr_ngroups; i++)
		out->hr_groups[i].hg_treatment = out->hr_active - out->hr_groups[i].hg_control;
out:
	return rc;
}

void
cm_holdout_report_free(struct cm_holdout_report *hr)
{
	if (hr == NULL)
		return;
	free(hr->hr_groups);
	memset(hr, 0, sizeof(*hr));
}
