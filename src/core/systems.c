/* SPDX-License-Identifier: ISC */
/*
 * Downstream systems (SPEC §7): the services that hold copies of a
 * person's data and must apply an erasure, a rectification, a
 * restriction, an objection or a consent change. Each is registered with
 * the URL it is called at, the events it wants and a shared secret, kept
 * sealed under the data directory's secret key (AD "system:NAME") and
 * never shown again. Webhooks to a system and its callbacks are signed
 * the same way: "t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/outbox.h"
#include "consentd/util.h"

const char *const cm_system_events[] = { "erasure", "rectification", "restriction",
    "objection", "consent.changed", NULL };

#define SECRET_MIN	16

static bool
name_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= CM_SYSTEM_NAME_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* An absolute http or https URL with a host, no spaces or controls. */
static bool
url_valid(const char *s, bool *insecure)
{
	const char *host;
	size_t i, n = strlen(s);

	if (n > CM_SYSTEM_URL_MAX)
		return false;
	if (strncmp(s, "https://", 8) == 0) {
		*insecure = false;
		host = s + 8;
	} else if (strncmp(s, "http://", 7) == 0) {
		*insecure = true;
		host = s + 7;
	} else {
		return false;
	}
	if (*host == '\0' || *host == '/' || *host == ':' || *host == '@')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void
ad_of(char *ad, size_t len, const char *name)
{
	snprintf(ad, len, "system:%s", name);
}

static cm_result
invalid(struct cm_why *w, const char *field, const char *msg)
{
	cm_why_set(w, "invalid_field", "%s", msg);
	snprintf(w->w_field, sizeof(w->w_field), "%s", field);
	return CM_INVALID;
}

/* EVENTS checked into ROW's s_events (a JSON array of the names, in order given). */
static cm_result
events_take(json_t *events, struct cm_system_row *row, struct cm_why *w)
{
	json_t *v;
	char *enc;
	size_t i, j;

	if (!json_is_array(events) || json_array_size(events) == 0 ||
	    json_array_size(events) > 5)
		return invalid(w, "events", "a non-empty list of erasure, rectification, "
		    "restriction, objection, consent.changed");
	json_array_foreach(events, i, v) {
		if (!json_is_string(v) || cm_strv_index(cm_system_events,
		    json_string_value(v)) < 0) {
			cm_why_set(w, "invalid_field", "events are erasure, rectification, "
			    "restriction, objection and consent.changed");
			snprintf(w->w_field, sizeof(w->w_field), "events[%zu]", i);
			return CM_INVALID;
		}
		for (j = 0; j < i; j++)
			if (json_equal(json_array_get(events, j), v)) {
				cm_why_set(w, "invalid_field", "an event is named once");
				snprintf(w->w_field, sizeof(w->w_field), "events[%zu]", i);
				return CM_INVALID;
			}
	}
	enc = json_dumps(events, JSON_COMPACT);
	snprintf(row->s_events, sizeof(row->s_events), "%s", enc ? enc : "[]");
	free(enc);
	return CM_OK;
}

cm_result
cm_system_add(const struct cm_ctx *cx, const char *name, const char *url, json_t *events,
    const char *secret, bool *insecure, json_t **out, struct cm_why *w)
{
	struct cm_system_row row;
	char ad[96];
	size_t slen = strlen(secret);
	cm_result rc;

	*out = NULL;
	*insecure = false;
	memset(&row, 0, sizeof(row));
	if (!name_valid(name))
		return invalid(w, "name", "1 to 64 of a-z, 0-9, '.', '_' and '-'");
	if (!url_valid(url, insecure))
		return invalid(w, "url", "an http or https URL of at most 512 bytes");
	if (slen < SECRET_MIN || slen > CM_SYSTEM_SECRET_MAX)
		return invalid(w, "secret", "16 to 256 bytes");
	if ((rc = events_take(events, &row, w)) != CM_OK)
		return rc;
	snprintf(row.s_name, sizeof(row.s_name), "%s", name);
	snprintf(row.s_url, sizeof(row.s_url), "%s", url);
	row.s_created_us = cx->cx_now;
	ad_of(ad, sizeof(ad), name);
	cm_aead_seal(row.s_secret, cx->cx_keys->k_secret, ad, strlen(ad), secret, slen);
	row.s_secret_len = slen + CM_AEAD_OVERHEAD;
	if ((rc = cm_store_system_insert(cx->cx_db, &row)) == CM_CONFLICT) {
		cm_why_set(w, "system_exists", "a system of that name is registered; remove it "
		    "first to change it");
		snprintf(w->w_field, sizeof(w->w_field), "name");
	}
	if (rc == CM_OK)
		rc = cm_ctx_audit(cx, "system.registered", NULL, NULL, json_pack("{s:s, s:o, s:s}",
		    "name", name, "events", json_deep_copy(events), "scheme",
		    *insecure ? "http" : "https"), NULL, NULL);
	if (rc == CM_OK)
		*out = cm_system_json(&row);
	cm_wipe(row.s_secret, sizeof(row.s_secret));
	return rc;
}

cm_result
cm_system_remove(const struct cm_ctx *cx, const char *name, struct cm_why *w)
{
	cm_result rc;

	if ((rc = cm_store_system_delete(cx->cx_db, name)) == CM_NOTFOUND) {
		cm_why_set(w, "not_found", "no system of that name");
		snprintf(w->w_field, sizeof(w->w_field), "name");
	}
	if (rc == CM_OK)
		rc = cm_ctx_audit(cx, "system.removed", NULL, NULL, json_pack("{s:s}", "name",
		    name), NULL, NULL);
	return rc;
}

json_t *
cm_system_json(const struct cm_system_row *r)
{
	json_error_t je;
	json_t *events = json_loads(r->s_events, 0, &je);
	char t[32];

	cm_time_format(t, r->s_created_us);
	return json_pack("{s:s, s:s, s:o, s:s}", "name", r->s_name, "url", r->s_url,
	    "events", events ? events : json_array(), "created_at", t);
}

bool
cm_system_has_event(const struct cm_system_row *r, const char *event)
{
	char quoted[48];

	snprintf(quoted, sizeof(quoted), "\"%s\"", event);
	return strstr(r->s_events, quoted) != NULL;
}

static int
list_row(void *arg, const struct cm_system_row *r)
{
	json_array_append_new(arg, cm_system_json(r));
	return 0;
}

cm_result
cm_systems_list(const struct cm_ctx *cx, json_t **out)
{
	json_t *a = json_array();
	cm_result rc;

	*out = NULL;
	if ((rc = cm_db_read_begin(cx->cx_db)) == CM_OK) {
		rc = cm_store_systems_list(cx->cx_db, list_row, a);
		cm_db_read_end(cx->cx_db);
	}
	if (rc != CM_OK) {
		json_decref(a);
		return rc;
	}
	*out = json_pack("{s:o}", "systems", a);
	return CM_OK;
}

cm_result
cm_system_secret(const struct cm_ctx *cx, const char *name, struct cm_system_row *row,
    uint8_t *secret, size_t *len)
{
	char ad[96];
	cm_result rc;

	*len = 0;
	if ((rc = cm_store_system_get(cx->cx_db, name, row)) != CM_OK)
		return rc;
	ad_of(ad, sizeof(ad), name);
	if (row->s_secret_len <= CM_AEAD_OVERHEAD ||
	    row->s_secret_len - CM_AEAD_OVERHEAD > CM_SYSTEM_SECRET_MAX ||
	    cm_aead_open(secret, cx->cx_keys->k_secret, ad, strlen(ad), row->s_secret,
	    row->s_secret_len) != 0)
		return CM_IOERR;
	*len = row->s_secret_len - CM_AEAD_OVERHEAD;
	return CM_OK;
}

/* ---- signatures ---------------------------------------------------------- */

void
cm_signature_make(char *out, const uint8_t *secret, size_t len, int64_t t, const void *body,
    size_t blen)
{
	uint8_t mac[32];
	char ts[24], hex[65];

	snprintf(ts, sizeof(ts), "%lld.", (long long)t);
	cm_hmac_sha256(mac, secret, len, ts, strlen(ts), body, blen);
	cm_hex_encode(hex, mac, sizeof(mac));
	snprintf(out, CM_SIGNATURE_MAX, "t=%lld,v1=%s", (long long)t, hex);
}

int
cm_signature_check(const char *header, const uint8_t *secret, size_t len, const void *body,
    size_t blen, int64_t now_s)
{
	char want[CM_SIGNATURE_MAX], num[24];
	const char *comma;
	int64_t t;
	size_t n;

	if (header == NULL || strncmp(header, "t=", 2) != 0 ||
	    (comma = strchr(header, ',')) == NULL || (n = (size_t)(comma - header - 2)) == 0 ||
	    n >= sizeof(num) || strncmp(comma, ",v1=", 4) != 0 || strlen(comma + 4) != 64)
		return -1;
	memcpy(num, header + 2, n);
	num[n] = '\0';
	if (cm_parse_i64(num, 0, INT64_MAX / 2, &t) != 0 ||
	    t < now_s - CM_SIGNATURE_TOLERANCE_S || t > now_s + CM_SIGNATURE_TOLERANCE_S)
		return -1;
	cm_signature_make(want, secret, len, t, body, blen);
	if (strlen(want) != strlen(header))
		return -1;
	return cm_memeq(want, header, strlen(want)) == 0 ? 0 : -1;
}
