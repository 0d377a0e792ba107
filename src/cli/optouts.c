/* SPDX-License-Identifier: ISC */
/*
 * The restore's second ledger: every "no" DIR/optouts.ledger records
 * (withdrawals, refusals, unsubscribes, preferences switched off, GPC
 * signals, suppression entries, objections, restrictions) is recorded
 * again in the restored store when the backup lacks it, through the domain
 * code (cm_optout_replay), so that a restore never turns a person's "no"
 * back into an allow. Runs after the erasures, on the staged store.
 *
 * The ledger is read twice rather than held: once, before anything is
 * changed, to check every line and count them; then once more, line by
 * line, to apply them (checked again: a line that no longer verifies
 * stops the restore before the store is swapped). A year of opt-outs of a
 * large retailer is millions of lines; memory stays flat.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/consent.h"
#include "consentd/core.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "consentd/worker.h"

/* Lines per transaction: few commits, yet no transaction without end. */
#define OPTOUT_BATCH	500

static int
optout_count(void *arg, const struct cm_optout *o)
{
	struct cm_cli_optouts *l = arg;

	l->n++;
	if (o->o_kind == CM_OPTOUT_CONSENT)
		l->nconsent++;
	return 0;
}

int
cm_cli_optouts_load(const char *dir, const struct cm_keys *keys, struct cm_cli_optouts *l)
{
	char err[1024];

	memset(l, 0, sizeof(*l));
	l->dir = dir;
	if (cm_store_optouts_read(dir, keys, optout_count, l, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s; the opt-out ledger cannot be trusted, so nothing is restored "
		    "(nothing was changed)", err);
		return -1;
	}
	return 0;
}

/* Where a replay is: the store, the open transaction, what was done. */
struct replay {
	struct cm_db		*db;
	const struct cm_keys	*keys;
	const struct cm_policy	*pol;
	size_t			 line;	/* lines seen */
	size_t			 done;	/* lines that wrote */
	bool			 open;	/* a transaction is open */
	struct cm_why		 w;
	cm_result		 rc;
};

static int
replay_line(void *arg, const struct cm_optout *o)
{
	struct replay *r = arg;
	struct cm_ctx cx;
	bool did;

	r->line++;
	if (!r->open) {
		if ((r->rc = cm_db_begin(r->db)) != CM_OK)
			return 1;
		r->open = true;
	}
	memset(&r->w, 0, sizeof(r->w));
	cm_ctx_init(&cx, r->db, r->keys, r->pol, "system:restore");
	if ((r->rc = cm_optout_replay(&cx, o, &did, &r->w)) != CM_OK)
		return 1;
	if (did)
		r->done++;
	if (r->line % OPTOUT_BATCH == 0) {
		r->open = false;
		if ((r->rc = cm_db_commit(r->db)) != CM_OK)
			return 1;
	}
	return 0;
}

int
cm_cli_optouts_replay(struct cm_db *db, const struct cm_keys *keys,
    const struct cm_policy *pol, const struct cm_cli_optouts *l, size_t *done)
{
	struct replay r;
	char err[1024];
	cm_result rc;

	*done = 0;
	memset(&r, 0, sizeof(r));
	r.db = db;
	r.keys = keys;
	r.pol = pol;
	rc = cm_store_optouts_read(l->dir, keys, replay_line, &r, err, sizeof(err));
	if (rc == CM_OK && r.rc == CM_OK && r.open) {
		r.open = false;
		r.rc = cm_db_commit(db);
	}
	if (r.open)
		cm_db_rollback(db);
	if (rc != CM_OK) {
		cm_cli_error("%s; the opt-out ledger cannot be trusted", err);
		return -1;
	}
	if (r.rc != CM_OK) {
		cm_cli_error("cannot record again line %zu of the opt-out ledger: %s%s%s", r.line,
		    cm_result_str(r.rc), r.w.w_code != NULL ? ": " : "",
		    r.w.w_code != NULL ? r.w.w_code : "");
		return -1;
	}
	*done = r.done;
	return 0;
}

/*
 * The start-up sync of the opt-out ledger (cm_store_optouts_sync) reads the
 * whole ledger and every suppression: seconds at a million subjects, and
 * the first start on a store that had no ledger writes every "no" it holds.
 * Serving does not wait for it: nothing a check or a write does depends on
 * it, and a line a concurrent write appends meanwhile at worst appears
 * twice, which a restore records once.
 */
struct optouts_sync {
	struct cm_store	*store;
	bool		 done;
};

static void
optouts_sync_run(void *arg, bool last)
{
	struct optouts_sync *s = arg;
	struct cm_db *db;
	char err[1024], msg[1200];
	size_t recorded;

	if (last) {
		free(s);
		return;
	}
	if (s->done || (db = cm_store_db(s->store)) == NULL)
		return;
	s->done = true;
	if (cm_store_optouts_sync(db, &recorded, err, sizeof(err)) != CM_OK)
		cm_log(CM_LOG_ERROR, "optout_ledger_error", ",\"msg\":\"%s\"",
		    cm_json_escape(msg, sizeof(msg), err));
	else if (recorded > 0)
		cm_log(CM_LOG_WARN, "optout_ledger_recovered", ",\"count\":%zu", recorded);
}

struct cm_worker *
cm_cli_optouts_sync_start(struct cm_store *store)
{
	struct optouts_sync *s = cm_calloc(1, sizeof(*s));
	struct cm_worker *w;

	s->store = store;
	if ((w = cm_worker_start(optouts_sync_run, s, 0)) == NULL) {
		free(s);
		return NULL;
	}
	cm_worker_wake(w);
	return w;
}
