/* SPDX-License-Identifier: ISC */
/*
 * Preference-centre links and shopper sessions (consentd/shopper.h): the
 * rule joining the link and session keys of src/crypto/ to the rows of
 * src/store/shopper.c. A link is checked in a fixed order, so what it
 * answers says nothing a forger could use: its shape and MAC first
 * (invalid), then its expiry, then its generation, then its subject.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/consent.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/shopper.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

_Static_assert(sizeof(((struct cm_session_grant *)0)->sg_subject) == CM_SUBJECT_ID_LEN + 1,
    "a grant holds a subject id");

#define LINK_MAC_CONTEXT	"consentd-link-1"
#define SUBJECT_PREFIX		"sub_"
#define SUBJECT_TAIL		(CM_SUBJECT_ID_LEN - 4)

/* The MAC of a link's fields, as 64 hex digits into OUT (65 bytes). */
static void
link_mac(const struct cm_keys *keys, char kind, const char *subject, int64_t expires,
    int64_t gen, char *out)
{
	char k[2] = { kind, '\0' }, exp[24], g[24];
	const char *parts[] = { LINK_MAC_CONTEXT, k, subject, exp, g };
	uint8_t mac[32];

	snprintf(exp, sizeof(exp), "%lld", (long long)expires);
	snprintf(g, sizeof(g), "%lld", (long long)gen);
	cm_keyed_hash(mac, sizeof(mac), keys->k_link, parts, CM_NELEM(parts));
	cm_hex_encode(out, mac, sizeof(mac));
	cm_wipe(mac, sizeof(mac));
}

cm_result
cm_link_make(const struct cm_ctx *cx, const char *subject, char kind, int64_t expires,
    char *out, struct cm_why *w)
{
	struct cm_subject_row row;
	char mac[65];
	int64_t gen;
	cm_result rc;

	out[0] = '\0';
	if ((rc = cm_subject_load(cx, subject, &row, w)) != CM_OK)
		return rc;
	if (row.s_state == CM_SUBJECT_ERASED) {
		cm_why_set(w, "subject_erased", "this subject was erased");
		return CM_CONFLICT;
	}
	if ((rc = cm_store_link_generation(cx->cx_db, row.s_id, &gen)) != CM_OK)
		return rc;
	link_mac(cx->cx_keys, kind, row.s_id, expires, gen, mac);
	snprintf(out, CM_LINK_TOKEN_MAX, "%c.%.26s.%lld.%lld.%.64s", kind,
	    row.s_id + strlen(SUBJECT_PREFIX), (long long)expires, (long long)gen, mac);
	return CM_OK;
}

/* A decimal of 1 to MAXLEN digits without a leading zero ("0" itself is one). */
static bool
parse_dec(const char *s, size_t len, size_t maxlen, int64_t *out)
{
	char buf[24];

	if (len == 0 || len > maxlen || strspn(s, "0123456789") < len ||
	    (len > 1 && s[0] == '0'))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return cm_parse_i64(buf, 0, INT64_MAX, out) == 0;
}

/* The fields of a link token, when it has the shape of one. */
struct link_fields {
	char	 kind;
	char	 subject[CM_SUBJECT_ID_LEN + 1];
	int64_t	 expires;
	int64_t	 gen;
	char	 mac[65];
};

static bool
link_parse(const char *t, struct link_fields *f)
{
	const char *p[5], *dot;
	size_t len[5], i, n = 0;

	if (strlen(t) >= CM_LINK_TOKEN_MAX)
		return false;
	for (p[0] = t; n < 5; n++) {
		dot = strchr(p[n], '.');
		len[n] = dot != NULL ? (size_t)(dot - p[n]) : strlen(p[n]);
		if (n < 4) {
			if (dot == NULL)
				return false;
			p[n + 1] = dot + 1;
		} else if (dot != NULL) {
			return false;
		}
	}
	if (len[0] != 1 || len[1] != SUBJECT_TAIL || len[4] != 64 ||
	    strspn(p[1], "abcdefghijklmnopqrstuvwxyz234567") < SUBJECT_TAIL ||
	    strspn(p[4], "0123456789abcdef") != 64 ||
	    !parse_dec(p[2], len[2], 12, &f->expires) || !parse_dec(p[3], len[3], 12, &f->gen))
		return false;
	f->kind = p[0][0];
	snprintf(f->subject, sizeof(f->subject), "%s%.*s", SUBJECT_PREFIX, (int)SUBJECT_TAIL,
	    p[1]);
	for (i = 0; i < 64; i++)
		f->mac[i] = p[4][i];
	f->mac[64] = '\0';
	return true;
}

cm_result
cm_link_check(const struct cm_ctx *cx, const char *token, char kind,
    enum cm_link_status *st, char *subject)
{
	struct link_fields f;
	struct cm_subject_row row;
	char mac[65];
	int64_t gen;
	cm_result rc;

	*st = CM_LINK_INVALID;
	subject[0] = '\0';
	memset(&f, 0, sizeof(f));
	if (!link_parse(token, &f) || f.kind != kind)
		return CM_OK;
	link_mac(cx->cx_keys, f.kind, f.subject, f.expires, f.gen, mac);
	if (cm_memeq(mac, f.mac, 64) != 0)
		return CM_OK;
	if (f.expires <= cx->cx_now / 1000000) {
		*st = CM_LINK_EXPIRED;
		return CM_OK;
	}
	if ((rc = cm_store_link_generation(cx->cx_db, f.subject, &gen)) != CM_OK)
		return rc;
	if (f.gen != gen) {
		*st = CM_LINK_REVOKED;
		return CM_OK;
	}
	rc = cm_store_subject_get(cx->cx_db, f.subject, &row);
	if (rc == CM_NOTFOUND || (rc == CM_OK && (row.s_state == CM_SUBJECT_ERASED ||
	    row.s_merged_into[0] != '\0'))) {
		*st = CM_LINK_GONE;
		return CM_OK;
	}
	if (rc != CM_OK)
		return rc;
	*st = CM_LINK_OK;
	snprintf(subject, CM_SUBJECT_ID_LEN + 1, "%s", f.subject);
	return CM_OK;
}

cm_result
cm_link_revoke(const struct cm_ctx *cx, const char *subject, int64_t *gen, struct cm_why *w)
{
	struct cm_subject_row row;
	int64_t ended = 0;
	cm_result rc;

	if ((rc = cm_subject_load(cx, subject, &row, w)) != CM_OK)
		return rc;
	if ((rc = cm_store_link_revoke(cx->cx_db, row.s_id, cx->cx_now, gen)) != CM_OK ||
	    (rc = cm_store_sessions_end_subject(cx->cx_db, row.s_id, &ended)) != CM_OK)
		return rc;
	return cm_ctx_audit(cx, "links.revoked", row.s_id, NULL, json_pack("{s:I, s:I}",
	    "generation", (json_int_t)*gen, "sessions_ended", (json_int_t)ended), NULL, NULL);
}

/* The keyed hash a session id is stored as (PURPOSE "session") or its CSRF token. */
static void
session_hash(const struct cm_keys *keys, const char *purpose, const char *sid,
    uint8_t out[32])
{
	const char *parts[] = { "consentd-session-1", purpose, sid };

	cm_keyed_hash(out, 32, keys->k_session, parts, CM_NELEM(parts));
}

cm_result
cm_session_start(const struct cm_ctx *cx, const char *subject, char *sid, int64_t *expires_us)
{
	uint8_t raw[32], hash[32];
	cm_result rc;

	cm_random(raw, sizeof(raw));
	cm_hex_encode(sid, raw, sizeof(raw));
	cm_wipe(raw, sizeof(raw));
	session_hash(cx->cx_keys, "session", sid, hash);
	*expires_us = cx->cx_now + CM_SESSION_TTL_US;
	if ((rc = cm_store_sessions_purge(cx->cx_db, cx->cx_now)) == CM_OK)
		rc = cm_store_session_insert(cx->cx_db, hash, "shopper", subject, cx->cx_now,
		    *expires_us);
	cm_wipe(hash, sizeof(hash));
	if (rc != CM_OK)
		cm_wipe(sid, CM_SESSION_ID_LEN + 1);
	return rc;
}

/* Whether SID has the shape of a session id: 64 lower-case hex digits. */
static bool
sid_valid(const char *sid)
{
	return strlen(sid) == CM_SESSION_ID_LEN &&
	    strspn(sid, "0123456789abcdef") == CM_SESSION_ID_LEN;
}

cm_result
cm_session_verify(struct cm_store *store, const struct cm_keys *keys, const char *sid,
    struct cm_session_grant *g)
{
	struct cm_session_row row;
	struct cm_subject_row subj;
	struct cm_db *db;
	uint8_t hash[32];
	cm_result rc;

	memset(g, 0, sizeof(*g));
	if (!sid_valid(sid))
		return CM_NOTFOUND;
	if ((db = cm_store_db(store)) == NULL)
		return CM_IOERR;
	session_hash(keys, "session", sid, hash);
	rc = cm_store_session_find(db, hash, &row);
	cm_wipe(hash, sizeof(hash));
	if (rc != CM_OK)
		return rc;
	if (strcmp(row.ss_kind, "shopper") != 0 || row.ss_expires_us <= cm_time_now_us())
		return CM_NOTFOUND;
	if ((rc = cm_store_subject_get(db, row.ss_subject, &subj)) != CM_OK)
		return rc == CM_NOTFOUND ? CM_NOTFOUND : rc;
	if (subj.s_state == CM_SUBJECT_ERASED || subj.s_merged_into[0] != '\0')
		return CM_NOTFOUND;
	snprintf(g->sg_subject, sizeof(g->sg_subject), "%s", row.ss_subject);
	g->sg_expires_us = row.ss_expires_us;
	return CM_OK;
}

void
cm_session_csrf(const struct cm_keys *keys, const char *sid, char *out)
{
	uint8_t h[32];

	session_hash(keys, "csrf", sid, h);
	cm_hex_encode(out, h, sizeof(h));
	cm_wipe(h, sizeof(h));
}

cm_result
cm_session_end(const struct cm_ctx *cx, const char *sid)
{
	uint8_t hash[32];
	cm_result rc;

	if (!sid_valid(sid))
		return CM_NOTFOUND;
	session_hash(cx->cx_keys, "session", sid, hash);
	rc = cm_store_session_delete(cx->cx_db, hash);
	cm_wipe(hash, sizeof(hash));
	return rc;
}

cm_result
cm_shopper_gpc(const struct cm_ctx *cx, const char *subject, bool *applied,
    struct cm_why *w)
{
	const struct cm_policy *pol = cx->cx_policy;
	struct cm_consent_input in;
	struct cm_consent_result res;
	json_t *hist = NULL, *ev;
	size_t i;
	bool any = false;
	cm_result rc;

	*applied = false;
	for (i = 0; i < pol->pol_npurposes; i++)
		if (pol->pol_purposes[i].pu_gpc)
			any = true;
	if (!any)
		return CM_OK;
	if ((rc = cm_consent_list(cx, subject, true, false, &hist, w)) != CM_OK)
		return rc;
	/* Honoured once: after that, the person's own later choice stands. */
	json_array_foreach(json_object_get(hist, "events"), i, ev)
		if (strcmp(json_string_value(json_object_get(ev, "method")) ?
		    json_string_value(json_object_get(ev, "method")) : "", "gpc") == 0) {
			json_decref(hist);
			return CM_OK;
		}
	json_decref(hist);
	memset(&in, 0, sizeof(in));
	memset(&res, 0, sizeof(res));
	in.ci_subject = subject;
	in.ci_channel = -1;
	in.ci_state = CM_CONSENT_WITHDRAWN;
	in.ci_method = "gpc";
	in.ci_client = "shopper";
	rc = cm_consent_record(cx, &in, &res, w);
	json_decref(res.cr_event_ids);
	*applied = rc == CM_OK;
	return rc;
}

/* The policy's controller address for the mailto: of List-Unsubscribe, or NULL. */
static const char *
controller_email(const struct cm_policy *pol)
{
	const char *e = json_string_value(json_object_get(json_object_get(
	    (json_t *)pol->pol_doc, "controller"), "email"));

	/* It goes between < and > in a mail header: nothing that could end it. */
	if (e == NULL || strlen(e) > 200 || strchr(e, '@') == NULL ||
	    strcspn(e, "<>,;\"'?#% \t\r\n\\") != strlen(e))
		return NULL;
	return e;
}

void
cm_link_list_unsubscribe(const struct cm_policy *pol, const char *base, const char *utoken,
    struct cm_buf *out)
{
	const char *mail;

	cm_buf_appendf(out, "<%s/u/%s>", base, utoken);
	if ((mail = controller_email(pol)) != NULL)
		cm_buf_appendf(out, ", <mailto:%s?subject=unsubscribe>", mail);
}

/*
 * Whether S can be the base of the links the API makes: http or https, a
 * host, no query, fragment, quote, space or angle bracket (it goes into a
 * List-Unsubscribe header between < and >), at most 200 bytes.
 */
int
cm_public_url_valid(const char *s)
{
	size_t n = strlen(s), skip;

	if (strncmp(s, "https://", 8) == 0)
		skip = 8;
	else if (strncmp(s, "http://", 7) == 0)
		skip = 7;
	else
		return -1;
	if (n > 200 || n == skip || s[skip] == '/' || strcspn(s, "?#<>\"' ,\\") != n)
		return -1;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return -1;
	return 0;
}
