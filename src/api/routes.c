/* SPDX-License-Identifier: ISC */
/*
 * The route table: every path the service answers, its method, how the
 * caller authenticates and the scope it needs, the query parameters it
 * takes (any other is a 400 before the handler runs) and the handler.
 * docs/openapi.yaml must describe each of these; a test compares the two
 * ('consentd routes' prints this table).
 */
#include "consentd/api.h"
#include "consentd/scope.h"

/*
 * Who may call a route, its kind of authentication beside its scope:
 * PUBLIC, or BEARER(scope) for a bearer token holding that scope
 * (BEARER(CM_SCOPE_NONE): any valid token).
 */
#define PUBLIC		CM_AUTH_NONE, CM_SCOPE_NONE
#define BEARER(scope)	CM_AUTH_BEARER, (scope)
/* A shopper's preference-centre session (cookie; writes also its CSRF token). */
#define SESSION		CM_AUTH_SESSION, CM_SCOPE_NONE
/* A bearer token only, never a console session (signing in to the console). */
#define TOKEN(scope)	CM_AUTH_TOKEN, (scope)
/* A DPO console session (cookie; writes also its CSRF token). */
#define CONSOLE		CM_AUTH_CONSOLE, CM_SCOPE_NONE

/* A route without query parameters; RQ: with the ones Q(...) lists. */
#define R(m, p, who, flags, fn, sum)	{ m, p, who, flags, fn, sum, NULL, NULL }
#define RQ(m, p, who, flags, q, fn, sum) { m, p, who, flags, fn, sum, NULL, q }
#define Q(...)	((const char *const[]){ __VA_ARGS__, NULL })
/* A route that also takes an NDJSON body, streamed through CHUNK. */
#define S(m, p, who, flags, fn, chunk, sum) \
	{ m, p, who, (flags) | CM_ROUTE_NDJSON, fn, sum, chunk, NULL }

const struct cm_route cm_api_routes[] = {
	R("GET", "/healthz", PUBLIC, 0, cm_api_healthz,
	    "liveness: the process answers"),
	R("GET", "/readyz", PUBLIC, 0, cm_api_readyz,
	    "readiness: the store answers and the server is not draining"),
	R("GET", "/.well-known/gpc.json", PUBLIC, 0, cm_api_gpc,
	    "Global Privacy Control support resource"),
	R("GET", "/metrics", BEARER(CM_SCOPE_NONE), 0, cm_api_metrics,
	    "Prometheus metrics (any valid token)"),
	R("GET", "/v1/policy", PUBLIC, 0, cm_api_policy_get,
	    "the public privacy policy"),
	RQ("GET", "/v1/policy/notices", PUBLIC, 0, Q("purpose"), cm_api_policy_notices,
	    "every notice version served, by purpose and version (?purpose=)"),
	R("GET", "/v1/policy/notices/{purpose}/{version}", PUBLIC, 0,
	    cm_api_policy_notice_get, "the notice text of one purpose version, as served"),
	R("GET", "/v1/token", BEARER(CM_SCOPE_NONE), 0, cm_api_token_self,
	    "the calling token's name and scopes"),
	RQ("GET", "/v1/tokens", BEARER(CM_SCOPE_ADMIN), 0, Q("cursor", "limit"), cm_api_tokens_list,
	    "every token's name, scopes and state (never the token)"),

	R("GET", "/v1/audit/checkpoint", BEARER(CM_SCOPE_AUDIT_READ), 0,
	    cm_api_audit_checkpoint, "the latest signed checkpoint (C2SP signed note)"),
	R("GET", "/v1/audit/vkey", BEARER(CM_SCOPE_AUDIT_READ), 0, cm_api_audit_vkey,
	    "the log's C2SP verifier key"),
	R("GET", "/v1/audit/vkeys", BEARER(CM_SCOPE_AUDIT_READ), 0, cm_api_audit_vkeys,
	    "every verifier key of the log, with the checkpoint sizes each signs"),
	RQ("GET", "/v1/audit/entries", BEARER(CM_SCOPE_AUDIT_READ), 0, Q("from", "to"),
	    cm_api_audit_entries,
	    "entries [from, to) as NDJSON with their exact bytes"),
	RQ("GET", "/v1/audit/proof", BEARER(CM_SCOPE_AUDIT_READ), 0, Q("index", "size"),
	    cm_api_audit_proof,
	    "inclusion proof of an entry in a signed tree size"),
	RQ("GET", "/v1/audit/consistency", BEARER(CM_SCOPE_AUDIT_READ), 0, Q("old", "new"),
	    cm_api_audit_consistency,
	    "consistency proof between two signed tree sizes"),

	R("POST", "/v1/subjects", BEARER(CM_SCOPE_SUBJECTS_WRITE), CM_ROUTE_JSON_BODY,
	    cm_api_subjects_create, "create a subject with identifiers and a profile"),
	RQ("GET", "/v1/subjects/resolve", BEARER(CM_SCOPE_CONSENT_READ), 0, Q("identifier"),
	    cm_api_subjects_resolve,
	    "the subject an identifier belongs to"),
	R("POST", "/v1/subjects/merge", BEARER(CM_SCOPE_SUBJECTS_WRITE), CM_ROUTE_JSON_BODY,
	    cm_api_subjects_merge, "merge two subjects found to be one person"),
	R("GET", "/v1/subjects/{id}", BEARER(CM_SCOPE_SUBJECTS_READ), 0, cm_api_subjects_get,
	    "a subject: state, identifiers, profile, consents, preferences"),
	R("POST", "/v1/subjects/{id}/identifiers", BEARER(CM_SCOPE_SUBJECTS_WRITE),
	    CM_ROUTE_JSON_BODY, cm_api_subjects_link, "link an identifier to a subject"),
	R("DELETE", "/v1/subjects/{id}/identifiers/{identifier}",
	    BEARER(CM_SCOPE_SUBJECTS_WRITE), 0, cm_api_subjects_unlink,
	    "unlink an identifier (URL-encoded type:value)"),
	R("PATCH", "/v1/subjects/{id}/profile", BEARER(CM_SCOPE_SUBJECTS_WRITE),
	    CM_ROUTE_JSON_BODY, cm_api_subjects_profile,
	    "set or remove profile attributes (null removes)"),

	R("POST", "/v1/consents", BEARER(CM_SCOPE_CONSENT_WRITE), CM_ROUTE_JSON_BODY,
	    cm_api_consents_record, "record a consent decision"),
	RQ("GET", "/v1/consent/check", BEARER(CM_SCOPE_CONSENT_CHECK), 0,
	    Q("identifier", "purpose", "channel"), cm_api_check_one,
	    "may we contact this identifier for this purpose on this channel?"),
	S("POST", "/v1/consent/check", BEARER(CM_SCOPE_CONSENT_CHECK), CM_ROUTE_JSON_BODY,
	    cm_api_check_batch, cm_api_check_chunk,
	    "many checks: JSON (up to 10,000) or NDJSON streamed (any length)"),
	RQ("GET", "/v1/subjects/{id}/consents", BEARER(CM_SCOPE_CONSENT_READ), 0, Q("history", "cursor", "limit"),
	    cm_api_consents_list,
	    "current consents, or ?history=true for every event"),
	R("GET", "/v1/subjects/{id}/preferences", BEARER(CM_SCOPE_CONSENT_READ), 0,
	    cm_api_prefs_get, "channel and topic switches, frequency, pause"),
	R("PUT", "/v1/subjects/{id}/preferences", BEARER(CM_SCOPE_CONSENT_WRITE),
	    CM_ROUTE_JSON_BODY, cm_api_prefs_put,
	    "set preferences; switches become consent events"),
	R("POST", "/v1/subjects/{id}/unsubscribe", BEARER(CM_SCOPE_CONSENT_WRITE),
	    CM_ROUTE_JSON_BODY, cm_api_unsubscribe,
	    "withdraw every marketing purpose on every channel"),
	S("POST", "/v1/suppressions", BEARER(CM_SCOPE_CONSENT_WRITE), CM_ROUTE_JSON_BODY,
	    cm_api_suppressions_add, cm_api_suppressions_chunk,
	    "add to the suppression list (JSON, or NDJSON for long lists)"),
	RQ("GET", "/v1/suppressions/check", BEARER(CM_SCOPE_CONSENT_CHECK), 0, Q("identifier"),
	    cm_api_suppressions_check,
	    "whether an identifier is suppressed"),
	R("DELETE", "/v1/suppressions/{identifier}", BEARER(CM_SCOPE_ADMIN), 0,
	    cm_api_suppressions_lift, "lift a suppression (not one set by erasure)"),
	RQ("POST", "/v1/imports", BEARER(CM_SCOPE_CONSENT_WRITE), CM_ROUTE_RAW_BODY,
	    Q("mapping", "columns", "kind", "purpose", "channel", "dry_run", "file"),
	    cm_api_imports_start,
	    "import a provider's CSV or NDJSON export in the background"),
	R("GET", "/v1/imports/{id}", BEARER(CM_SCOPE_CONSENT_WRITE), 0, cm_api_imports_get,
	    "an import's progress, counts and rejects"),
	RQ("GET", "/v1/changes", BEARER(CM_SCOPE_CONSENT_READ), 0, Q("after", "limit"),
	    cm_api_changes,
	    "consent, preference and suppression changes in commit order, from a cursor"),
	RQ("GET", "/v1/reports/unsubscribe-reasons", BEARER(CM_SCOPE_CONSENT_READ), 0, Q("cursor", "limit"),
	    cm_api_report_unsubscribe, "unsubscribe reasons counted by month"),
	R("GET", "/v1/reports/holdout", BEARER(CM_SCOPE_CONSENT_READ), 0,
	    cm_api_report_holdout, "measurement holdout group sizes per purpose"),

	R("POST", "/v1/dsr", BEARER(CM_SCOPE_DSR_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_dsr_create, "receive a data-subject request"),
	RQ("GET", "/v1/dsr", BEARER(CM_SCOPE_DSR_ADMIN), 0,
	    Q("status", "type", "subject", "overdue", "cursor", "limit"), cm_api_dsr_list,
	    "requests by due date, filtered, a page at a time"),
	R("GET", "/v1/dsr/{id}", BEARER(CM_SCOPE_DSR_ADMIN), 0, cm_api_dsr_get,
	    "a request with its timeline and systems"),
	R("POST", "/v1/dsr/{id}/verify", BEARER(CM_SCOPE_DSR_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_dsr_verify, "verify the requester's identity with the code sent"),
	R("POST", "/v1/dsr/{id}/resend", BEARER(CM_SCOPE_DSR_ADMIN), 0, cm_api_dsr_resend,
	    "send a new identity code"),
	R("POST", "/v1/dsr/{id}/extend", BEARER(CM_SCOPE_DSR_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_dsr_extend, "extend the deadline once, with a reason"),
	R("POST", "/v1/dsr/{id}/deny", BEARER(CM_SCOPE_DSR_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_dsr_deny, "deny a request, with a reason"),
	R("POST", "/v1/dsr/{id}/cancel", BEARER(CM_SCOPE_DSR_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_dsr_cancel, "cancel a request, with a reason"),
	R("POST", "/v1/dsr/{id}/process", BEARER(CM_SCOPE_DSR_ADMIN), 0, cm_api_dsr_process,
	    "carry a verified request out"),
	R("POST", "/v1/dsr/{id}/complete", BEARER(CM_SCOPE_DSR_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_dsr_complete, "finalise a request whose systems have not all reported"),
	R("POST", "/v1/dsr/{id}/lift", BEARER(CM_SCOPE_DSR_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_dsr_lift, "lift a restriction: tell the subject, then lift it"),
	RQ("GET", "/v1/dsr/{id}/package", BEARER(CM_SCOPE_DSR_ADMIN), 0, Q("format"),
	    cm_api_dsr_package, "the access or portability package, streamed"),

	R("POST", "/admin/session", TOKEN(CM_SCOPE_DSR_ADMIN), 0, cm_api_console_signin,
	    "sign in to the DPO console: a dsr:admin token for a session cookie"),
	R("GET", "/admin/session", CONSOLE, 0, cm_api_console_get,
	    "the console session: its token's name and scopes, expiry, CSRF token"),
	R("DELETE", "/admin/session", CONSOLE, 0, cm_api_console_signout,
	    "sign out of the DPO console (X-CSRF-Token)"),
	R("GET", "/admin", PUBLIC, 0, cm_api_web_admin,
	    "the DPO console page (--web DIR/admin.html)"),
	R("POST", "/v1/audit/verify", BEARER(CM_SCOPE_AUDIT_READ), 0, cm_api_audit_verify,
	    "verify the whole audit log now (bounded); counts only"),

	R("GET", "/v1/consents/{event_id}/receipt", BEARER(CM_SCOPE_CONSENT_READ), 0,
	    cm_api_consents_receipt,
	    "the signed consent receipt of an event, with its audit inclusion proof"),
	R("POST", "/v1/dsr/{id}/systems/{name}", PUBLIC, CM_ROUTE_JSON_BODY,
	    cm_api_dsr_system_report,
	    "a downstream system reports on a request (signed with its secret, no token)"),

	RQ("GET", "/v1/outbox", BEARER(CM_SCOPE_ADMIN), 0, Q("status", "limit", "cursor"),
	    cm_api_outbox_list, "outbox rows, newest first (?status=pending|sent|dead)"),
	R("POST", "/v1/outbox/{id}/retry", BEARER(CM_SCOPE_ADMIN), 0, cm_api_outbox_retry,
	    "make a dead outbox row pending again"),
	R("POST", "/v1/systems", BEARER(CM_SCOPE_ADMIN), CM_ROUTE_JSON_BODY,
	    cm_api_systems_add, "register a downstream system"),
	RQ("GET", "/v1/systems", BEARER(CM_SCOPE_ADMIN), 0, Q("cursor", "limit"), cm_api_systems_list,
	    "downstream systems (never their secrets)"),
	R("DELETE", "/v1/systems/{name}", BEARER(CM_SCOPE_ADMIN), 0, cm_api_systems_remove,
	    "remove a downstream system"),

	R("POST", "/v1/subjects/{id}/preference-link", BEARER(CM_SCOPE_SUBJECTS_WRITE),
	    CM_ROUTE_JSON_BODY, cm_api_link_create,
	    "a signed preference-centre link and the RFC 8058 header values"),
	R("DELETE", "/v1/subjects/{id}/preference-links", BEARER(CM_SCOPE_SUBJECTS_WRITE), 0,
	    cm_api_links_revoke, "revoke every link of a subject and end its sessions"),
	R("GET", "/u/{token}", PUBLIC, 0, cm_api_unsub_page,
	    "one-click unsubscribe: a confirmation page (changes nothing)"),
	R("POST", "/u/{token}", PUBLIC, CM_ROUTE_RAW_BODY, cm_api_unsub_post,
	    "one-click unsubscribe (RFC 8058): List-Unsubscribe=One-Click"),
	R("GET", "/p/{token}", PUBLIC, 0, cm_api_pref_open,
	    "open the preference centre: start a session, 303 to /preferences"),
	R("GET", "/v1/me", SESSION, 0, cm_api_me_get,
	    "the session's person: masked identifiers, preferences, consents, CSRF token"),
	R("PUT", "/v1/me/preferences", SESSION, CM_ROUTE_JSON_BODY, cm_api_me_prefs_put,
	    "set the session's preferences (X-CSRF-Token)"),
	R("POST", "/v1/me/unsubscribe", SESSION, CM_ROUTE_JSON_BODY, cm_api_me_unsubscribe,
	    "unsubscribe from all marketing, with a reason (X-CSRF-Token)"),
	R("POST", "/v1/me/requests", SESSION, CM_ROUTE_JSON_BODY, cm_api_me_request_create,
	    "an access or erasure request, verified by the session (X-CSRF-Token)"),
	R("GET", "/v1/me/requests", SESSION, 0, cm_api_me_requests,
	    "the session's person's requests and their status"),
	R("POST", "/v1/me/logout", SESSION, 0, cm_api_me_logout,
	    "end the session (X-CSRF-Token)"),
	RQ("GET", "/preferences", PUBLIC, 0, Q("done"), cm_api_web_preferences,
	    "the preference centre page (--web DIR/preferences.html)"),
	R("GET", "/static/{file}", PUBLIC, 0, cm_api_web_static,
	    "the preference centre's assets (--web DIR/static/)"),
	R("GET", "/v1/me/requests/{id}/package", SESSION, 0, cm_api_me_package,
	    "the session's own access package, streamed"),
	R("GET", "/preferences/theme.css", PUBLIC, 0, cm_api_page_theme,
	    "the policy's accent colour as a stylesheet"),
	R("POST", "/preferences", PUBLIC, CM_ROUTE_RAW_BODY, cm_api_form_save,
	    "the preference form without JavaScript (csrf_token field; 303)"),
	R("POST", "/preferences/unsubscribe", PUBLIC, CM_ROUTE_RAW_BODY,
	    cm_api_form_unsubscribe, "unsubscribe form without JavaScript (303)"),
	R("POST", "/preferences/requests", PUBLIC, CM_ROUTE_RAW_BODY, cm_api_form_request,
	    "access or erasure request form, erasure after a confirmation (303)"),
	R("POST", "/preferences/logout", PUBLIC, CM_ROUTE_RAW_BODY, cm_api_form_logout,
	    "sign-out form without JavaScript (303)"),
};

const size_t cm_api_nroutes = sizeof(cm_api_routes) / sizeof(cm_api_routes[0]);
