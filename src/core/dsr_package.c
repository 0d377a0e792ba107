/* SPDX-License-Identifier: ISC */
/* TEMPORARY: replaced when the access package lands. */
#include "dsr_int.h"

cm_result
dsr_package(const struct cm_ctx *cx, struct dsr_req *r, struct cm_why *w)
{
	(void)cx; (void)r; (void)w;
	return CM_OK;
}

cm_result
dsr_package_forget(const struct cm_ctx *cx, const char *subject)
{
	(void)cx; (void)subject;
	return CM_OK;
}
