/* SPDX-License-Identifier: ISC */
/*
 * The context of a domain call, why a call failed, and the one way the
 * domain appends to the audit log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/core.h"
#include "consentd/util.h"

void
cm_ctx_init(struct cm_ctx *cx, struct cm_db *db, const struct cm_keys *keys,
    const struct cm_policy *policy, const char *actor)
{
	memset(cx, 0, sizeof(*cx));
	cx->cx_db = db;
	cx->cx_keys = keys;
	cx->cx_policy = policy;
	snprintf(cx->cx_actor, sizeof(cx->cx_actor), "%s", actor ? actor : "system");
	cx->cx_now = cm_time_now_us();
}

void
cm_why_set(struct cm_why *w, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (w == NULL)
		return;
	w->w_code = code;
	va_start(ap, fmt);
	vsnprintf(w->w_msg, sizeof(w->w_msg), fmt, ap);
	va_end(ap);
}

cm_result
cm_ctx_audit(const struct cm_ctx *cx, const char *type, const char *subject,
    const uint8_t *key, json_t *details, json_t *private_, uint64_t *idx)
{
	struct cm_audit_event ev = { type, cx->cx_actor, details, subject, key, private_ };
	cm_result rc;

	rc = cm_audit_append(cx->cx_db, &ev, idx);
	json_decref(details);
	json_decref(private_);
	return rc;
}
