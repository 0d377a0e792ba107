/* SPDX-License-Identifier: ISC */
/*
 * Internals of retention shared by src/core/retention.c (the sweep, its
 * batches and its audit entry) and retention_evidence.c (minimising the
 * evidence of consent events). Only these include it.
 */
#ifndef CONSENTD_CORE_RETENTION_INT_H
#define CONSENTD_CORE_RETENTION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "consentd/core.h"

/*
 * One batch of the evidence minimisation, in CX's transaction: up to BATCH
 * consent events after sequence *AFTER recorded before CUTOFF have their
 * IP address truncated and user agent dropped, in the sealed evidence and
 * in the opening of their audit entry's commitment (unless DRY). *AFTER
 * moves past the events looked at, *CHANGED counts those minimised (or
 * that would be), and *DONE says no event before CUTOFF is left.
 */
cm_result retention_evidence_batch(const struct cm_ctx *cx, int64_t cutoff, bool dry,
	    int batch, int64_t *after, int64_t *changed, bool *done) CM_WUR;

#endif
