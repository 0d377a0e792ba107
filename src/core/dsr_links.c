/* SPDX-License-Identifier: ISC */
/* TEMPORARY: replaced when the outbox, systems and packages land. */
#include <string.h>

#include "consentd/subject.h"
#include "dsr_int.h"

cm_result
dsr_send_code(const struct cm_ctx *cx, struct dsr_req *r, const char *code)
{
	(void)cx; (void)r; (void)code;
	return CM_OK;
}

cm_result
dsr_systems_json(const struct cm_ctx *cx, const char *id, json_t *j)
{
	(void)cx; (void)id;
	json_object_set_new(j, "systems", json_array());
	return CM_OK;
}

cm_result
dsr_notify(const struct cm_ctx *cx, struct dsr_req *r, const char *t, json_t *vars)
{
	(void)cx; (void)r; (void)t;
	json_decref(vars);
	return CM_OK;
}

cm_result
dsr_notify_after_erasure(const struct cm_ctx *cx, struct dsr_req *r)
{
	(void)cx; (void)r;
	return CM_OK;
}

cm_result
dsr_identifiers(const struct cm_ctx *cx, struct dsr_req *r, json_t **out)
{
	json_t *ids, *v, *list = json_array();
	size_t i;
	cm_result rc;

	*out = NULL;
	if ((rc = cm_subject_identifiers(cx, r->row.r_subject, &ids, NULL)) != CM_OK) {
		json_decref(list);
		return rc;
	}
	json_array_foreach(ids, i, v)
		json_array_append(list, json_object_get(v, "identifier"));
	json_decref(ids);
	*out = list;
	return CM_OK;
}

cm_result
dsr_forget(const struct cm_ctx *cx, const char *subject)
{
	/* TEMPORARY: the subject's queued messages are destroyed here too. */
	return dsr_package_forget(cx, subject);
}

cm_result
dsr_call_systems(const struct cm_ctx *cx, struct dsr_req *r, const char *event,
    json_t *payload, size_t *n)
{
	(void)cx; (void)r; (void)event; (void)payload;
	*n = 0;
	return CM_OK;
}

cm_result
dsr_notice_sent(const struct cm_ctx *cx, struct dsr_req *r, const char *t, bool *sent)
{
	(void)cx; (void)r; (void)t;
	*sent = true;
	return CM_OK;
}
