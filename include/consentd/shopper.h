/* SPDX-License-Identifier: ISC */
/*
 * The shopper's way in (SPEC §7 "Shopper", §10): signed, expiring links
 * to the preference centre and to one-click unsubscribe, and the
 * server-side sessions a good preference-centre link starts.
 *
 * A link token is "K.SUBJECT.EXPIRY.GEN.MAC": its kind K ('p' preference
 * centre, 'u' one-click unsubscribe), the subject id without its "sub_"
 * prefix, the expiry in Unix seconds, the subject's link generation when
 * it was made, and the keyed BLAKE2b-256 (the link key) of all of them, in
 * hex. It holds no identifier and is stored nowhere; raising the subject's
 * generation revokes every link made before. A 'u' link cannot open a
 * session, so the address a mailbox provider sees in List-Unsubscribe
 * gives no way into the preference centre.
 *
 * A session id is 32 random bytes (hex, the cookie's value), stored only
 * as its keyed hash under the session key; its CSRF token is another keyed
 * hash of the id, so it needs no storage and dies with the session.
 */
#ifndef CONSENTD_SHOPPER_H
#define CONSENTD_SHOPPER_H

#include <stdbool.h>
#include <stdint.h>

#include "consentd/common.h"

/* No store header here: the HTTP layer verifies sessions through this one. */
struct cm_ctx;
struct cm_keys;
struct cm_store;
struct cm_why;

#define CM_LINK_KIND_PREFS	'p'
#define CM_LINK_KIND_UNSUB	'u'
/* ttl_seconds of POST /v1/subjects/{id}/preference-link: bounds and default. */
#define CM_LINK_TTL_MIN		300			/* 5 minutes */
#define CM_LINK_TTL_MAX		(400 * 86400)		/* 400 days */
#define CM_LINK_TTL_DEFAULT	(30 * 86400)		/* 30 days */
#define CM_LINK_TOKEN_MAX	192
/* A shopper session lasts 30 minutes from the link's use, whatever happens. */
#define CM_SESSION_TTL_US	(30LL * 60 * 1000000)
#define CM_SESSION_ID_LEN	64	/* hex characters */

enum cm_link_status {
	CM_LINK_OK,
	CM_LINK_INVALID,	/* malformed, tampered, or of the other kind */
	CM_LINK_EXPIRED,
	CM_LINK_REVOKED,	/* made before the subject's links were revoked */
	CM_LINK_GONE		/* the subject is erased, merged away or unknown */
};

/*
 * A link of KIND for SUBJECT expiring at EXPIRES (Unix seconds) into OUT
 * (CM_LINK_TOKEN_MAX bytes). CM_NOTFOUND ("not_found", "merged"),
 * CM_CONFLICT "subject_erased".
 */
cm_result cm_link_make(const struct cm_ctx *, const char *subject, char kind,
	    int64_t expires, char *out, struct cm_why *) CM_WUR;

/*
 * Checks TOKEN as a link of KIND at CX's time: *ST says what it is, and on
 * CM_LINK_OK SUBJECT (CM_SUBJECT_ID_LEN + 1 bytes) is whom it is for.
 * Anything but CM_OK is the store's failure: the link is then neither good
 * nor bad.
 */
cm_result cm_link_check(const struct cm_ctx *, const char *token, char kind,
	    enum cm_link_status *st, char *subject) CM_WUR;

/*
 * Revokes every link of SUBJECT made so far and ends its sessions, with
 * the audit entry "links.revoked"; *GEN is the new generation.
 */
cm_result cm_link_revoke(const struct cm_ctx *, const char *subject, int64_t *gen,
	    struct cm_why *) CM_WUR;

/*
 * Starts a session for SUBJECT: its id into SID (CM_SESSION_ID_LEN + 1
 * bytes, for the cookie only), and when it ends into *EXPIRES_US. Sessions
 * already over are deleted on the way.
 */
cm_result cm_session_start(const struct cm_ctx *, const char *subject, char *sid,
	    int64_t *expires_us) CM_WUR;

struct cm_session_grant {
	char	 sg_subject[31];	/* CM_SUBJECT_ID_LEN + 1 */
	int64_t	 sg_expires_us;
};

/*
 * The session SID names, on the thread's connection to STORE: CM_OK with
 * G filled; CM_NOTFOUND when it is no session, is over, or its subject is
 * no longer there (erased, merged away); anything else is the store's.
 */
cm_result cm_session_verify(struct cm_store *, const struct cm_keys *, const char *sid,
	    struct cm_session_grant *g) CM_WUR;

/* The CSRF token of session SID into OUT (CM_SESSION_ID_LEN + 1 bytes). */
void	cm_session_csrf(const struct cm_keys *, const char *sid, char *out);

/* Ends session SID; CM_NOTFOUND when there was none. */
cm_result cm_session_end(const struct cm_ctx *, const char *sid) CM_WUR;

struct cm_policy;
struct cm_buf;

#define CM_LIST_UNSUBSCRIBE_POST	"List-Unsubscribe=One-Click"

/*
 * The value of the List-Unsubscribe header (RFC 2369, RFC 8058) for the
 * one-click link UTOKEN under BASE, with a mailto of the policy's
 * controller email when it has a usable one, appended to OUT.
 */
void	cm_link_list_unsubscribe(const struct cm_policy *, const char *base,
	    const char *utoken, struct cm_buf *out);

/*
 * Whether S can be the base of the links (--public-url): http or https, a
 * host, nothing that could end a header value or start a query. 0 or -1.
 */
int	cm_public_url_valid(const char *s) CM_WUR;

/*
 * Honours a Global Privacy Control signal a session request carried
 * (SPEC §6): the first time SUBJECT sends one, every purpose the policy
 * marks gpc is withdrawn (method "gpc"); after that the person's own later
 * choices stand, so a grant made in the preference centre wins over the
 * signal. *APPLIED says whether anything was written.
 */
cm_result cm_shopper_gpc(const struct cm_ctx *, const char *subject, bool *applied,
	    struct cm_why *) CM_WUR;

#endif
