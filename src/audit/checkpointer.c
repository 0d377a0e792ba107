/* SPDX-License-Identifier: ISC */
/*
 * The checkpointer: a thread that signs a checkpoint of the audit log once
 * a second while entries arrive (nothing is signed while the log is still),
 * and a last one when the server stops.
 */
#include <stdio.h>
#include <stdlib.h>

#include "consentd/audit.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "consentd/worker.h"

struct cm_checkpointer {
	struct cm_worker	*cp_worker;
	struct cm_store		*cp_store;
	const struct cm_keys	*cp_keys;
	char			 cp_origin[CM_AUDIT_ORIGIN_MAX + 1];
};

static void
checkpointer_once(void *arg, bool last)
{
	struct cm_checkpointer *c = arg;
	struct cm_db *db;
	bool signed_;
	cm_result rc;

	(void)last;	/* the last one signs what the final requests wrote */
	if ((db = cm_store_db(c->cp_store)) == NULL)
		return;
	if ((rc = cm_audit_checkpoint(db, c->cp_keys, c->cp_origin, &signed_)) != CM_OK)
		cm_log(CM_LOG_WARN, "checkpoint_failed", ",\"result\":\"%s\"",
		    cm_result_str(rc));
}

struct cm_checkpointer *
cm_checkpointer_start(struct cm_store *store, const struct cm_keys *keys,
    const char *origin, unsigned interval_ms)
{
	struct cm_checkpointer *c;

	c = cm_calloc(1, sizeof(*c));
	c->cp_store = store;
	c->cp_keys = keys;
	snprintf(c->cp_origin, sizeof(c->cp_origin), "%s", origin);
	if ((c->cp_worker = cm_worker_start(checkpointer_once, c,
	    interval_ms ? interval_ms : 1000)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
cm_checkpointer_stop(struct cm_checkpointer *c)
{
	if (c == NULL)
		return;
	cm_worker_stop(c->cp_worker);
	free(c);
}
