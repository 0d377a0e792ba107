/*
 * The route table: every path the service answers, its method, the scope a
 * token needs and the handler. docs/openapi.yaml must describe each of
 * these; a test compares the two ('consentd routes' prints this table).
 */
#include "consentd/api.h"
#include "consentd/scope.h"

const struct cm_route cm_api_routes[] = {
	{ "GET", "/healthz", CM_SCOPE_NONE, 0, cm_api_healthz,
	    "liveness: the process answers" },
	{ "GET", "/readyz", CM_SCOPE_NONE, 0, cm_api_readyz,
	    "readiness: the store answers and the server is not draining" },
	{ "GET", "/.well-known/gpc.json", CM_SCOPE_NONE, 0, cm_api_gpc,
	    "Global Privacy Control support resource" },
	{ "GET", "/metrics", CM_SCOPE_NONE, CM_ROUTE_ANY_TOKEN, cm_api_metrics,
	    "Prometheus metrics (any valid token)" },
	{ "GET", "/v1/policy", CM_SCOPE_NONE, 0, cm_api_policy_get,
	    "the public privacy policy" },
	{ "GET", "/v1/token", CM_SCOPE_NONE, CM_ROUTE_ANY_TOKEN, cm_api_token_self,
	    "the calling token's name and scopes" },
	{ "GET", "/v1/tokens", CM_SCOPE_ADMIN, 0, cm_api_tokens_list,
	    "every token's name, scopes and state (never the token)" },
	{ "GET", "/v1/audit/checkpoint", CM_SCOPE_AUDIT_READ, 0, cm_api_audit_checkpoint,
	    "the latest signed checkpoint (C2SP signed note)" },
	{ "GET", "/v1/audit/vkey", CM_SCOPE_AUDIT_READ, 0, cm_api_audit_vkey,
	    "the log's C2SP verifier key" },
	{ "GET", "/v1/audit/entries", CM_SCOPE_AUDIT_READ, 0, cm_api_audit_entries,
	    "entries [from, to) as NDJSON with their exact bytes" },
	{ "GET", "/v1/audit/proof", CM_SCOPE_AUDIT_READ, 0, cm_api_audit_proof,
	    "inclusion proof of an entry in a signed tree size" },
	{ "GET", "/v1/audit/consistency", CM_SCOPE_AUDIT_READ, 0, cm_api_audit_consistency,
	    "consistency proof between two signed tree sizes" },
	{ "POST", "/v1/subjects", CM_SCOPE_SUBJECTS_WRITE, CM_ROUTE_JSON_BODY,
	    cm_api_subjects_create, "create a subject with identifiers and a profile" },
	{ "GET", "/v1/subjects/resolve", CM_SCOPE_CONSENT_READ, 0, cm_api_subjects_resolve,
	    "the subject an identifier belongs to" },
	{ "POST", "/v1/subjects/merge", CM_SCOPE_SUBJECTS_WRITE, CM_ROUTE_JSON_BODY,
	    cm_api_subjects_merge, "merge two subjects found to be one person" },
	{ "GET", "/v1/subjects/{id}", CM_SCOPE_CONSENT_READ, 0, cm_api_subjects_get,
	    "a subject: state, identifiers, profile" },
	{ "POST", "/v1/subjects/{id}/identifiers", CM_SCOPE_SUBJECTS_WRITE, CM_ROUTE_JSON_BODY,
	    cm_api_subjects_link, "link an identifier to a subject" },
	{ "DELETE", "/v1/subjects/{id}/identifiers/{identifier}", CM_SCOPE_SUBJECTS_WRITE, 0,
	    cm_api_subjects_unlink, "unlink an identifier (URL-encoded type:value)" },
	{ "PATCH", "/v1/subjects/{id}/profile", CM_SCOPE_SUBJECTS_WRITE, CM_ROUTE_JSON_BODY,
	    cm_api_subjects_profile, "set or remove profile attributes (null removes)" },
};

const size_t cm_api_nroutes = sizeof(cm_api_routes) / sizeof(cm_api_routes[0]);
