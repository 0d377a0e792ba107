/* SPDX-License-Identifier: ISC */
/*
 * The restore's second ledger: every "no" DIR/optouts.ledger records
 * (withdrawals, refusals, unsubscribes, preferences switched off, GPC
 * signals, suppression entries, objections, restrictions) is recorded
 * again in the restored store when the backup lacks it, through the domain
 * code (cm_optout_replay), so that a restore never turns a person's "no"
 * back into an allow. Runs after the erasures, on the staged store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/consent.h"
#include "consentd/core.h"
#include "consentd/util.h"

/* Lines per transaction: few commits, yet no transaction without end. */
#define OPTOUT_BATCH	500

static int
optout_collect(void *arg, const struct cm_optout *o)
{
	struct cm_cli_optouts *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->lines = cm_reallocarray(l->lines, l->cap, sizeof(*l->lines));
	}
	l->lines[l->n++] = *o;
	if (o->o_kind == CM_OPTOUT_CONSENT)
		l->nconsent++;
	return 0;
}

int
cm_cli_optouts_load(const char *dir, const struct cm_keys *keys, struct cm_cli_optouts *l)
{
	char err[1024];

	memset(l, 0, sizeof(*l));
	if (cm_store_optouts_read(dir, keys, optout_collect, l, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s; the opt-out ledger cannot be trusted, so nothing is restored "
		    "(nothing was changed)", err);
		cm_cli_optouts_free(l);
		return -1;
	}
	return 0;
}

void
cm_cli_optouts_free(struct cm_cli_optouts *l)
{
	free(l->lines);
	memset(l, 0, sizeof(*l));
}

int
cm_cli_optouts_replay(struct cm_db *db, const struct cm_keys *keys,
    const struct cm_policy *pol, const struct cm_cli_optouts *l, size_t *done)
{
	struct cm_why w;
	struct cm_ctx cx;
	size_t i;
	bool did, open_ = false;
	cm_result rc = CM_OK;

	*done = 0;
	for (i = 0; i < l->n; i++) {
		if (!open_) {
			if ((rc = cm_db_begin(db)) != CM_OK)
				break;
			open_ = true;
		}
		memset(&w, 0, sizeof(w));
		cm_ctx_init(&cx, db, keys, pol, "system:restore");
		if ((rc = cm_optout_replay(&cx, &l->lines[i], &did, &w)) != CM_OK) {
			cm_db_rollback(db);
			open_ = false;
			break;
		}
		if (did)
			(*done)++;
		if ((i + 1) % OPTOUT_BATCH == 0 || i + 1 == l->n) {
			open_ = false;
			if ((rc = cm_db_commit(db)) != CM_OK)
				break;
		}
	}
	if (rc != CM_OK) {
		cm_cli_error("cannot record again line %zu of the opt-out ledger: %s%s%s", i + 1,
		    cm_result_str(rc), w.w_code != NULL ? ": " : "",
		    w.w_code != NULL ? w.w_code : "");
		return -1;
	}
	return 0;
}
