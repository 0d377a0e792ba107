/* SPDX-License-Identifier: ISC */
/*
 * Minimising consent evidence once policy retention.evidence_ip_truncate_days
 * have passed since it was recorded: the IP address is cut to its network
 * (IPv4 /24, IPv6 /48) and the user agent dropped, since with the address
 * cut the full user-agent string would still single out a device. The rest
 * (URL, notice hash, form, sale reference) stays: it is what proves how the
 * consent was given. The evidence is re-sealed under the subject's key. The
 * opening of the event's audit commitment holds the same evidence, so it
 * is re-sealed minimised too, without its salt (with the salt and a
 * guessable user agent the 256 candidates of the cut octet could be tried
 * against the commitment) and marked "minimised_at": from then on it tells
 * what the entry recorded, minus what was minimised, and no longer opens
 * the commitment. The consent event itself, and so every decision, is
 * untouched.
 *
 * Events are visited in recording order from a watermark the sweep keeps
 * in the store, so each is looked at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/crypto.h"
#include "consentd/retention.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "ledger.h"
#include "retention_int.h"

int
cm_retention_ip_truncate(const char *ip, char *out, size_t outlen)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strnlen(ip, INET6_ADDRSTRLEN) >= INET6_ADDRSTRLEN)
		return -1;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		((uint8_t *)&a4.s_addr)[3] = 0;
		return inet_ntop(AF_INET, &a4, out, (socklen_t)outlen) != NULL ? 0 : -1;
	}
	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6))
			a6.s6_addr[15] = 0;
		else
			memset(a6.s6_addr + 6, 0, 10);
		return inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen) != NULL ? 0 : -1;
	}
	return -1;
}

/* Minimises the evidence object EV in place; whether anything changed. */
static bool
evidence_minimise(json_t *ev)
{
	char cut[INET6_ADDRSTRLEN];
	json_t *ip;
	bool changed = false;

	if (!json_is_object(ev))
		return false;
	if (json_object_get(ev, "user_agent") != NULL) {
		json_object_del(ev, "user_agent");
		changed = true;
	}
	if ((ip = json_object_get(ev, "ip")) == NULL)
		return changed;
	if (!json_is_string(ip) ||
	    cm_retention_ip_truncate(json_string_value(ip), cut, sizeof(cut)) != 0) {
		json_object_del(ev, "ip");
		return true;
	}
	if (strcmp(cut, json_string_value(ip)) == 0)
		return changed;
	json_object_set_new(ev, "ip", json_string(cut));
	return true;
}

/* The data key of subject ID into KEY; CM_NOTFOUND when it has none (erased). */
static cm_result
subject_key(const struct cm_ctx *cx, const char *id, uint8_t *key)
{
	struct cm_subject_row row;
	cm_result rc;

	if ((rc = cm_store_subject_get(cx->cx_db, id, &row)) != CM_OK)
		return rc;
	if (!row.s_has_key)
		return CM_NOTFOUND;
	if (cm_subject_key_unwrap(cx->cx_keys, row.s_id, row.s_wrapped, CM_WRAPPED_LEN,
	    key) != 0) {
		cm_log(CM_LOG_ERROR, "subject_key_unwrap_failed", NULL);
		return CM_NOTFOUND;
	}
	return CM_OK;
}

/* Opens CT under KEY and AD into a new JSON value, or NULL. */
static json_t *
open_json(const uint8_t *key, const char *ad, const struct cm_buf *ct)
{
	json_t *v = NULL;
	uint8_t *pt;
	size_t len;

	if (ct->b_len < CM_AEAD_OVERHEAD)
		return NULL;
	len = ct->b_len - CM_AEAD_OVERHEAD;
	pt = cm_malloc(len + 1);
	if (cm_aead_open(pt, key, ad, strlen(ad), (const uint8_t *)ct->b_data,
	    ct->b_len) == 0)
		v = json_loadb((const char *)pt, len, 0, NULL);
	cm_wipe(pt, len);
	free(pt);
	return v;
}

/* Seals the JSON text of V under KEY and AD into OUT (reset first). */
static int
seal_json(const uint8_t *key, const char *ad, json_t *v, size_t flags, struct cm_buf *out)
{
	uint8_t *ct;
	char *t;
	size_t len;

	if ((t = json_dumps(v, flags)) == NULL)
		return -1;
	len = strlen(t);
	ct = cm_malloc(len + CM_AEAD_OVERHEAD);
	cm_aead_seal(ct, key, ad, strlen(ad), t, len);
	cm_buf_reset(out);
	cm_buf_append(out, ct, len + CM_AEAD_OVERHEAD);
	free(ct);
	cm_wipe(t, len);
	free(t);
	return 0;
}

/*
 * Minimises the evidence in the opening of audit entry IDX: re-sealed
 * without the salt, marked with the time. Nothing to do is CM_OK.
 */
static cm_result
opening_minimise(const struct cm_ctx *cx, uint64_t idx)
{
	struct cm_buf ct = { 0 };
	char subject[CM_SUBJECT_ID_LEN + 1], ad[96], ts[32];
	json_t *o = NULL, *d = NULL, *n = NULL;
	uint8_t *key;
	char *details = NULL;
	cm_result rc;

	key = cm_key_acquire();
	if ((rc = cm_store_audit_opening_get(cx->cx_db, idx, &ct, subject,
	    sizeof(subject))) != CM_OK || (rc = subject_key(cx, subject, key)) != CM_OK)
		goto out;
	snprintf(ad, sizeof(ad), "%s:%llu", subject, (unsigned long long)idx);
	if ((o = open_json(key, ad, &ct)) == NULL || json_object_get(o, "minimised_at") ||
	    !json_is_string(json_object_get(o, "details")))
		goto out;
	d = json_loads(json_string_value(json_object_get(o, "details")), JSON_DECODE_ANY,
	    NULL);
	if (d == NULL || !evidence_minimise(json_object_get(d, "evidence")))
		goto out;
	details = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	cm_time_format(ts, cx->cx_now);
	if (details == NULL || (n = json_pack("{s:s, s:s}", "details", details,
	    "minimised_at", ts)) == NULL ||
	    seal_json(key, ad, n, JSON_COMPACT | JSON_SORT_KEYS, &ct) != 0) {
		rc = CM_INVALID;
		goto out;
	}
	rc = cm_store_audit_opening_replace(cx->cx_db, idx, ct.b_data, ct.b_len);
out:
	if (details != NULL) {
		cm_wipe(details, strlen(details));
		free(details);
	}
	json_decref(n);
	json_decref(d);
	json_decref(o);
	cm_buf_free(&ct);
	cm_key_release(key);
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

/* One event of a batch, copied out of the scan. */
struct ev_item {
	int64_t		 seq;
	char		 event_id[CM_EVENT_ID_LEN + 1];
	char		 subject[CM_SUBJECT_ID_LEN + 1];
	int64_t		 recorded_us;
	int64_t		 audit_index;
	struct cm_buf	 sealed;
};

struct ev_batch {
	struct ev_item	*items;
	size_t		 n;
};

static int
collect(void *arg, const struct cm_evidence_row *r)
{
	struct ev_batch *b = arg;
	struct ev_item *it = &b->items[b->n++];

	memset(it, 0, sizeof(*it));
	it->seq = r->ev_seq;
	snprintf(it->event_id, sizeof(it->event_id), "%s", r->ev_event_id);
	snprintf(it->subject, sizeof(it->subject), "%s", r->ev_subject);
	it->recorded_us = r->ev_recorded_us;
	it->audit_index = r->ev_audit_index;
	if (r->ev_evidence != NULL)
		cm_buf_append(&it->sealed, r->ev_evidence, r->ev_evidence_len);
	return 0;
}

/*
 * Minimises the evidence of event IT (unless DRY); *CHANGED says whether
 * it held anything to minimise. An event whose subject was erased, or
 * whose evidence cannot be opened, is left as it is.
 */
static cm_result
event_minimise(const struct cm_ctx *cx, struct ev_item *it, bool dry, bool *changed)
{
	struct cm_buf out = { 0 };
	char ad[96];
	json_t *ev = NULL;
	uint8_t *key;
	cm_result rc;

	*changed = false;
	if (it->sealed.b_len == 0)
		return CM_OK;
	key = cm_key_acquire();
	if ((rc = subject_key(cx, it->subject, key)) != CM_OK)
		goto out;
	snprintf(ad, sizeof(ad), "evidence:%s:%s", it->subject, it->event_id);
	if ((ev = open_json(key, ad, &it->sealed)) == NULL) {
		cm_log(CM_LOG_WARN, "evidence_unreadable", ",\"event\":\"%s\"", it->event_id);
		goto out;
	}
	if (!(*changed = evidence_minimise(ev)) || dry)
		goto out;
	if (seal_json(key, ad, ev, JSON_COMPACT | JSON_SORT_KEYS, &out) != 0) {
		rc = CM_INVALID;
		goto out;
	}
	if ((rc = cm_store_evidence_put(cx->cx_db, it->seq, out.b_data, out.b_len)) == CM_OK &&
	    it->audit_index >= 0)
		rc = opening_minimise(cx, (uint64_t)it->audit_index);
out:
	json_decref(ev);
	cm_buf_free(&out);
	cm_key_release(key);
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

cm_result
retention_evidence_batch(const struct cm_ctx *cx, int64_t cutoff, bool dry, int batch,
    int64_t *after, int64_t *changed, bool *done)
{
	struct ev_batch b = { NULL, 0 };
	size_t i;
	bool one;
	cm_result rc;

	*done = false;
	b.items = cm_calloc((size_t)batch, sizeof(*b.items));
	if ((rc = cm_store_evidence_scan(cx->cx_db, *after, batch, collect, &b)) != CM_OK)
		goto out;
	if (b.n < (size_t)batch)
		*done = true;
	for (i = 0; i < b.n; i++) {
		/* Recorded in order: the first one inside the period ends the sweep. */
		if (b.items[i].recorded_us >= cutoff) {
			*done = true;
			break;
		}
		if ((rc = event_minimise(cx, &b.items[i], dry, &one)) != CM_OK)
			goto out;
		if (one)
			(*changed)++;
		*after = b.items[i].seq;
	}
out:
	for (i = 0; i < b.n; i++)
		cm_buf_free(&b.items[i].sealed);
	free(b.items);
	return rc;
}
