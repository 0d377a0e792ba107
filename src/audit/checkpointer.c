/*
 * The checkpointer: a thread that signs a checkpoint of the audit log once
 * a second while entries arrive (nothing is signed while the log is still),
 * and a last one when the server stops.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "consentd/audit.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct cm_checkpointer {
	pthread_t		 cp_thread;
	pthread_mutex_t		 cp_lock;
	pthread_cond_t		 cp_cond;
	bool			 cp_stop;	/* guarded by cp_lock */
	struct cm_store		*cp_store;
	const struct cm_keys	*cp_keys;
	char			 cp_origin[CM_AUDIT_ORIGIN_MAX + 1];
	unsigned		 cp_interval_ms;
};

static void
checkpointer_once(struct cm_checkpointer *c)
{
	struct cm_db *db;
	bool signed_;
	cm_result rc;

	if ((db = cm_store_db(c->cp_store)) == NULL)
		return;
	if ((rc = cm_audit_checkpoint(db, c->cp_keys, c->cp_origin, &signed_)) != CM_OK)
		cm_log(CM_LOG_WARN, "checkpoint_failed", ",\"result\":\"%s\"",
		    cm_result_str(rc));
}

static void *
checkpointer_main(void *arg)
{
	struct cm_checkpointer *c = arg;
	struct timespec ts;
	bool stop;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += c->cp_interval_ms / 1000;
		ts.tv_nsec += (long)(c->cp_interval_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&c->cp_lock);
		while (!c->cp_stop &&
		    pthread_cond_timedwait(&c->cp_cond, &c->cp_lock, &ts) == 0)
			;
		stop = c->cp_stop;
		pthread_mutex_unlock(&c->cp_lock);
		checkpointer_once(c);
		if (stop)
			break;
	}
	return NULL;
}

struct cm_checkpointer *
cm_checkpointer_start(struct cm_store *store, const struct cm_keys *keys,
    const char *origin, unsigned interval_ms)
{
	struct cm_checkpointer *c;
	pthread_condattr_t ca;

	c = cm_calloc(1, sizeof(*c));
	c->cp_store = store;
	c->cp_keys = keys;
	c->cp_interval_ms = interval_ms ? interval_ms : 1000;
	snprintf(c->cp_origin, sizeof(c->cp_origin), "%s", origin);
	pthread_mutex_init(&c->cp_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cp_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&c->cp_thread, NULL, checkpointer_main, c) != 0) {
		pthread_cond_destroy(&c->cp_cond);
		pthread_mutex_destroy(&c->cp_lock);
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
	pthread_mutex_lock(&c->cp_lock);
	c->cp_stop = true;
	pthread_cond_signal(&c->cp_cond);
	pthread_mutex_unlock(&c->cp_lock);
	pthread_join(c->cp_thread, NULL);
	pthread_cond_destroy(&c->cp_cond);
	pthread_mutex_destroy(&c->cp_lock);
	free(c);
}
