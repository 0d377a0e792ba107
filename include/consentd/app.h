/*
 * The running service's shared, read-mostly state, handed to every request
 * handler: the store, the policy and the keys. Built by 'consentd serve'
 * before the server starts and torn down after it stops.
 */
#ifndef CONSENTD_APP_H
#define CONSENTD_APP_H

#include <stdatomic.h>
#include <stdbool.h>

struct cm_store;
struct cm_policy;
struct cm_keys;

struct cm_par;

struct cm_app {
	struct cm_store		*app_store;
	struct cm_policy	*app_policy;
	const struct cm_keys	*app_keys;
	struct cm_par		*app_par;	/* helper threads; may be NULL */
	atomic_bool		 app_draining;	/* shutting down: not ready */
	char			 app_origin[129];	/* the audit log's origin */
};

#endif
