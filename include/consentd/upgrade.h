/* SPDX-License-Identifier: ISC */
/*
 * Data upgrades: the part of a schema migration that needs the domain
 * (keys, audit entries, decisions) rather than SQL alone. Each runs once,
 * in one transaction, after the SQL migrations that prepare it, and
 * appends an audit entry saying what it did.
 */
#ifndef CONSENTD_UPGRADE_H
#define CONSENTD_UPGRADE_H

#include "consentd/common.h"

struct cm_db;
struct cm_keys;

struct cm_upgrade_report {
	int	ur_ran;			/* upgrades run now */
	long	ur_pairs;		/* (subject, purpose) pairs compared */
	long	ur_restated;		/* withdrawals restated to keep a decision */
	long	ur_subjects;		/* subjects whose identifiers were read */
	long	ur_reindexed;		/* identifiers moved to their new form */
	long	ur_merged;		/* subjects found to be one person */
	long	ur_unparseable;		/* stored identifiers that no longer parse */
	long	ur_decisions;		/* subjects whose decision rows were built */
};

/*
 * Runs every pending data upgrade on DB (the store's connection of this
 * thread) with KEYS: carrying the consent projection over to the
 * collected_at order of migration 5 without turning any decision of the
 * old projection from deny into allow (where the new order would, the old
 * withdrawal or refusal is restated as a fresh event); and moving stored
 * identifiers to the current normalisation (merging subjects that turn
 * out to share one). Nothing pending: CM_OK and ur_ran 0.
 */
cm_result cm_upgrade_run(struct cm_db *, const struct cm_keys *,
	    struct cm_upgrade_report *) CM_WUR;

#endif
