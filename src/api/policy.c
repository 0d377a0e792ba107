/*
 * GET /v1/policy: the retailer's policy as loaded and validated at start-up,
 * with defaults filled in. All of it is information the controller must
 * give data subjects (GDPR Arts. 13 and 14), so it needs no token.
 */
#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/policy.h"

void
cm_api_policy_get(struct cm_request *rq)
{
	const struct cm_policy *p = cm_req_app(rq)->app_policy;

	cm_reply_bytes(rq, 200, "application/json; charset=utf-8", p->pol_public,
	    p->pol_public_len);
}
