/* SPDX-License-Identifier: ISC */
/*
 * Import mappings: how the columns of a provider's export become consent,
 * preference and suppression records. A mapping is a small JSON document
 * (docs/operations.md, "Import"): a name and a list of records, each with
 * its kind, the conditions under which it applies to a row ("require":
 * column values, "absent": empty columns), and where each of its fields
 * comes from: a constant, or the first non-empty of some columns. It is
 * checked against the policy once, so a row is only read, never judged
 * against a mapping that cannot work. Messages about a row name columns,
 * never a value read from it.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "import_int.h"

/* A field: a constant, or the first non-empty of some columns. */
struct imp_field {
	char	*f_const;
	char	*f_cols[IMP_COLS_MAX];
	int	 f_idx[IMP_COLS_MAX];	/* CSV column, -1: absent */
	size_t	 f_ncols;
};

struct imp_record {
	enum imp_kind	 r_kind;
	struct imp_field r_req;		/* columns that must hold r_req_val */
	char		*r_req_val[IMP_COLS_MAX];	/* "*": anything but empty */
	struct imp_field r_absent;	/* columns that must be empty */
	char		*r_id_type;	/* NULL: the value is "type:value" */
	struct imp_field r_ident;
	struct imp_field r_purpose, r_topic, r_channel, r_state, r_reason;
	struct imp_field r_time, r_ip;
};

struct cm_import_map {
	char			*m_name;
	struct imp_record	 m_recs[IMP_RECS_MAX];
	size_t			 m_nrecs;
};

int
cm_import_parse_time(const char *s, int64_t *us)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, oh, om;
	int64_t frac = 0, scale = 1000000;
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	p = s + 10;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
			return -1;
		p += 6;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &sec, &n) != 1 || n != 2)
				return -1;
			p += 3;
		}
		if (*p == '.') {
			for (p++; *p >= '0' && *p <= '9'; p++)
				if (scale > 1)
					frac += (*p - '0') * (scale /= 10);
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1 && y != 1969)
		return -1;
	while (*p == ' ')
		p++;
	if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0') || strcmp(p, "UTC") == 0) {
		/* No zone: the providers' exports are in UTC. */
	} else if ((*p == '+' || *p == '-') && ((sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 &&
	    n == 5 && p[6] == '\0') || (sscanf(p + 1, "%2d%2d%n", &oh, &om, &n) == 2 &&
	    n == 4 && p[5] == '\0')) && oh <= 23 && om <= 59) {
		t -= (time_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
	} else {
		return -1;
	}
	*us = (int64_t)t * 1000000 + frac;
	return 0;
}

/* Provider words for a state, and for a suppression reason. */
static const char *const state_words[][2] = {
	{ "granted", "granted" }, { "subscribed", "granted" }, { "subscribe", "granted" },
	{ "opted_in", "granted" }, { "yes", "granted" }, { "true", "granted" },
	{ "withdrawn", "withdrawn" }, { "unsubscribed", "withdrawn" },
	{ "unsubscribe", "withdrawn" }, { "opted_out", "withdrawn" },
	{ "no", "withdrawn" }, { "false", "withdrawn" }, { "refused", "refused" },
	{ "never_subscribed", "" }
};
static const char *const reason_words[][2] = {
	{ "unsubscribed", "unsubscribed" }, { "unsubscribe", "unsubscribed" },
	{ "bounced", "bounced" }, { "bounce", "bounced" }, { "hard_bounce", "bounced" },
	{ "cleaned", "bounced" }, { "invalid_email", "bounced" },
	{ "complained", "complained" }, { "spam_complaint", "complained" },
	{ "complaint", "complained" }, { "manual", "manual" },
	{ "user_suppressed", "manual" }, { "suppressed", "manual" }
};

/* The word a provider's WORD stands for ("" : no decision), or NULL. */
static const char *
word_lookup(const char *const (*tab)[2], size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(tab[i][0], word) == 0)
			return tab[i][1];
	return NULL;
}

static void
field_free(struct imp_field *f)
{
	size_t i;

	free(f->f_const);
	for (i = 0; i < f->f_ncols; i++)
		free(f->f_cols[i]);
}

void
cm_import_map_free(struct cm_import_map *m)
{
	size_t i, j;

	if (m == NULL)
		return;
	for (i = 0; i < m->m_nrecs; i++) {
		struct imp_record *r = &m->m_recs[i];

		field_free(&r->r_req);
		for (j = 0; j < r->r_req.f_ncols; j++)
			free(r->r_req_val[j]);
		field_free(&r->r_absent);
		free(r->r_id_type);
		field_free(&r->r_ident);
		field_free(&r->r_purpose);
		field_free(&r->r_topic);
		field_free(&r->r_channel);
		field_free(&r->r_state);
		field_free(&r->r_reason);
		field_free(&r->r_time);
		field_free(&r->r_ip);
	}
	free(m->m_name);
	free(m);
}

const char *
cm_import_map_name(const struct cm_import_map *m)
{
	return m->m_name;
}

static int
add_col(struct imp_field *f, json_t *v)
{
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > 128 || f->f_ncols == IMP_COLS_MAX)
		return -1;
	f->f_idx[f->f_ncols] = -1;
	f->f_cols[f->f_ncols++] = cm_strdup(json_string_value(v));
	return 0;
}

/*
 * A field from V: a string is a constant (columns when COLS_ONLY), an
 * array the columns, an object {"column": C} or {"columns": [...]}.
 */
static int
field_parse(struct imp_field *f, json_t *v, bool cols_only)
{
	json_t *c;
	size_t i;

	if (json_is_string(v)) {
		if (cols_only)
			return add_col(f, v);
		if (json_string_length(v) == 0 || json_string_length(v) > 64)
			return -1;
		f->f_const = cm_strdup(json_string_value(v));
		return 0;
	}
	if (json_is_object(v) && json_object_size(v) == 1 &&
	    (c = json_object_get(v, "column")) != NULL)
		return add_col(f, c);
	if (json_is_object(v) && json_object_size(v) == 1)
		v = json_object_get(v, "columns");
	if (!json_is_array(v) || json_array_size(v) == 0)
		return -1;
	json_array_foreach(v, i, c)
		if (add_col(f, c) != 0)
			return -1;
	return 0;
}

static int
ident_parse(struct imp_record *r, json_t *v)
{
	json_t *t = json_object_get(v, "type");

	if (!json_is_object(v))
		return field_parse(&r->r_ident, v, true);
	if (t != NULL) {
		if (!json_is_string(t) || json_string_length(t) > CM_ID_TYPE_MAX)
			return -1;
		r->r_id_type = cm_strdup(json_string_value(t));
	}
	if ((t = json_object_get(v, "column")) != NULL)
		return json_object_size(v) == (r->r_id_type ? 2u : 1u) ? add_col(&r->r_ident, t) :
		    -1;
	if ((t = json_object_get(v, "columns")) == NULL ||
	    json_object_size(v) != (r->r_id_type ? 2u : 1u))
		return -1;
	return field_parse(&r->r_ident, t, true);
}

static int
require_parse(struct imp_record *r, json_t *v)
{
	const char *k;
	json_t *x;
	size_t n;

	if (!json_is_object(v))
		return -1;
	json_object_foreach(v, k, x) {
		n = r->r_req.f_ncols;
		if (!json_is_string(x) || n == IMP_COLS_MAX)
			return -1;
		r->r_req.f_idx[n] = -1;
		r->r_req.f_cols[n] = cm_strdup(k);
		r->r_req_val[n] = cm_strdup(json_string_value(x));
		r->r_req.f_ncols++;
	}
	return 0;
}

/* One member K of a record; -1 for an unknown or malformed one. */
static int
record_member(struct imp_record *r, const char *k, json_t *v)
{
	if (strcmp(k, "kind") == 0) {
		const char *s = json_string_value(v);

		if (s == NULL)
			return -1;
		if (strcmp(s, "consent") == 0)
			r->r_kind = IMP_CONSENT;
		else if (strcmp(s, "suppression") == 0)
			r->r_kind = IMP_SUPPRESSION;
		else if (strcmp(s, "preference") == 0)
			r->r_kind = IMP_PREFERENCE;
		else
			return -1;
		return 0;
	}
	if (strcmp(k, "require") == 0)
		return require_parse(r, v);
	if (strcmp(k, "absent") == 0)
		return field_parse(&r->r_absent, v, true);
	if (strcmp(k, "identifier") == 0)
		return ident_parse(r, v);
	if (strcmp(k, "purpose") == 0)
		return field_parse(&r->r_purpose, v, false);
	if (strcmp(k, "topic") == 0)
		return field_parse(&r->r_topic, v, false);
	if (strcmp(k, "channel") == 0)
		return field_parse(&r->r_channel, v, false);
	if (strcmp(k, "state") == 0)
		return field_parse(&r->r_state, v, false);
	if (strcmp(k, "reason") == 0)
		return field_parse(&r->r_reason, v, false);
	if (strcmp(k, "time") == 0)
		return field_parse(&r->r_time, v, true);
	if (strcmp(k, "ip") == 0)
		return field_parse(&r->r_ip, v, true);
	return -1;
}

static bool
is_set(const struct imp_field *f)
{
	return f->f_const != NULL || f->f_ncols > 0;
}

/* The constants of record R, checked against POL; a message in WHY. */
static int
record_check(const struct imp_record *r, const struct cm_policy *pol, char *why,
    size_t whylen)
{
	enum cm_consent_state st;
	int pi = -1, ci;

	if (!is_set(&r->r_ident))
		return snprintf(why, whylen, "identifier: required"), -1;
	if (r->r_id_type != NULL && !cm_identifier_type_known(r->r_id_type, pol))
		return snprintf(why, whylen, "identifier.type: unknown type"), -1;
	if (r->r_kind == IMP_SUPPRESSION) {
		if (!is_set(&r->r_reason))
			return snprintf(why, whylen, "reason: required for a suppression"), -1;
		if (r->r_reason.f_const != NULL &&
		    !cm_suppression_reason_valid(r->r_reason.f_const))
			return snprintf(why, whylen, "reason: unsubscribed, bounced, "
			    "complained or manual"), -1;
		return 0;
	}
	if (!is_set(&r->r_state))
		return snprintf(why, whylen, "state: required"), -1;
	if (r->r_state.f_const != NULL && cm_consent_state_parse(r->r_state.f_const, &st) != 0)
		return snprintf(why, whylen, "state: granted, withdrawn or refused"), -1;
	/* A grant without its time could outrank a later "no": never. */
	if (!is_set(&r->r_time))
		return snprintf(why, whylen, "time: required (the provider's time is "
		    "kept as collected_at)"), -1;
	if (r->r_kind == IMP_CONSENT && !is_set(&r->r_purpose))
		return snprintf(why, whylen, "purpose: required"), -1;
	if (r->r_kind == IMP_PREFERENCE && !is_set(&r->r_topic))
		return snprintf(why, whylen, "topic: required"), -1;
	if (r->r_purpose.f_const != NULL &&
	    (pi = cm_policy_purpose_index(pol, r->r_purpose.f_const)) < 0)
		return snprintf(why, whylen, "purpose: the policy has no such purpose"), -1;
	if (r->r_topic.f_const != NULL && cm_policy_topic_index(pol, r->r_topic.f_const) < 0)
		return snprintf(why, whylen, "topic: the policy has no such topic"), -1;
	if (r->r_channel.f_const != NULL) {
		if ((ci = cm_policy_channel_index(pol, r->r_channel.f_const)) < 0)
			return snprintf(why, whylen, "channel: the policy has no such "
			    "channel"), -1;
		if (pi >= 0 && !(pol->pol_purposes[pi].pu_channels & (UINT64_C(1) << ci)))
			return snprintf(why, whylen, "channel: not used by the purpose"), -1;
	}
	return 0;
}

struct cm_import_map *
cm_import_map_new(json_t *doc, const struct cm_policy *pol, char *why, size_t whylen)
{
	struct cm_import_map *m;
	json_t *recs, *rv, *v;
	const char *k;
	char sub[CM_IMPORT_REASON_MAX];
	size_t i;

	m = cm_calloc(1, sizeof(*m));
	recs = json_object_get(doc, "records");
	v = json_object_get(doc, "name");
	json_object_foreach(doc, k, rv)
		if (strcmp(k, "name") != 0 && strcmp(k, "records") != 0 &&
		    strcmp(k, "description") != 0) {
			snprintf(why, whylen, "%.*s: unknown field", cm_utf8_prefix(k, 40), k);
			goto fail;
		}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64) {
		snprintf(why, whylen, "name: a string of 1-64 bytes");
		goto fail;
	}
	m->m_name = cm_strdup(json_string_value(v));
	if (!json_is_array(recs) || json_array_size(recs) == 0 ||
	    json_array_size(recs) > IMP_RECS_MAX) {
		snprintf(why, whylen, "records: a list of 1-%d records", IMP_RECS_MAX);
		goto fail;
	}
	json_array_foreach(recs, i, rv) {
		struct imp_record *r = &m->m_recs[m->m_nrecs++];

		if (!json_is_object(rv) || json_object_get(rv, "kind") == NULL) {
			snprintf(why, whylen, "records[%zu]: an object with a kind", i);
			goto fail;
		}
		json_object_foreach(rv, k, v)
			if (record_member(r, k, v) != 0) {
				snprintf(why, whylen, "records[%zu].%.*s: unknown or malformed",
				    i, cm_utf8_prefix(k, 40), k);
				goto fail;
			}
		if (record_check(r, pol, sub, sizeof(sub)) != 0) {
			snprintf(why, whylen, "records[%zu].%s", i, sub);
			goto fail;
		}
	}
	return m;
fail:
	cm_import_map_free(m);
	return NULL;
}

json_t *
cm_import_map_builtin(const char *name)
{
	size_t i;

	for (i = 0; i < cm_import_builtins_count; i++)
		if (strcmp(cm_import_builtins[i].ib_name, name) == 0)
			return json_loadb(cm_import_builtins[i].ib_text,
			    cm_import_builtins[i].ib_len, JSON_REJECT_DUPLICATES, NULL);
	return NULL;
}

json_t *
cm_import_map_adhoc(const char *kind, const char *const *columns, char *why, size_t whylen)
{
	static const char *const fields[] = { "identifier", "purpose", "topic", "channel",
	    "state", "reason", "time", "ip", NULL };
	json_t *rec, *doc;
	const char *eq;
	char name[32];
	size_t i;

	rec = json_pack("{s:s}", "kind", kind ? kind : "consent");
	for (i = 0; columns != NULL && columns[i] != NULL; i++) {
		const char *c = columns[i];
		size_t n;

		if ((eq = strchr(c, '=')) == NULL || eq[1] == '\0' || (n = (size_t)(eq - c)) == 0 ||
		    n >= sizeof(name)) {
			snprintf(why, whylen, "--column: FIELD=HEADER");
			goto fail;
		}
		memcpy(name, c, n);
		name[n] = '\0';
		if (cm_strv_index(fields, name) >= 0) {
			json_object_set_new(rec, name, json_pack("{s:s}", "column", eq + 1));
		} else if (strcmp(name, "email") == 0 || strcmp(name, "phone") == 0 ||
		    strcmp(name, "device") == 0 || strcmp(name, "customer") == 0 ||
		    strcmp(name, "loyalty") == 0) {
			json_object_set_new(rec, "identifier", json_pack("{s:s, s:s}", "type",
			    name, "column", eq + 1));
		} else {
			snprintf(why, whylen, "--column: unknown field %.*s", cm_utf8_prefix(name,
			    31), name);
			goto fail;
		}
	}
	doc = json_pack("{s:s, s:[o]}", "name", "columns", "records", rec);
	return doc;
fail:
	json_decref(rec);
	return NULL;
}

void
cm_import_map_defaults(json_t *doc, const char *purpose, const char *channel)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(doc, "records"), i, r) {
		const char *k = json_string_value(json_object_get(r, "kind"));

		if (k == NULL || strcmp(k, "suppression") == 0)
			continue;
		if (purpose != NULL && strcmp(k, "consent") == 0 &&
		    json_object_get(r, "purpose") == NULL)
			json_object_set_new(r, "purpose", json_string(purpose));
		if (channel != NULL && json_object_get(r, "channel") == NULL)
			json_object_set_new(r, "channel", json_string(channel));
	}
}

static void
field_bind(struct imp_field *f, char **hdr, size_t n)
{
	size_t i, j;

	for (i = 0; i < f->f_ncols; i++) {
		f->f_idx[i] = -1;
		for (j = 0; j < n; j++)
			if (strcasecmp(f->f_cols[i], hdr[j]) == 0) {
				f->f_idx[i] = (int)j;
				break;
			}
	}
}

static bool
field_bound(const struct imp_field *f)
{
	size_t i;

	for (i = 0; i < f->f_ncols; i++)
		if (f->f_idx[i] >= 0)
			return true;
	return false;
}

int
imp_map_bind(struct cm_import_map *m, char **hdr, size_t n, char *why, size_t whylen)
{
	bool any = false;
	size_t i;

	for (i = 0; i < m->m_nrecs; i++) {
		struct imp_record *r = &m->m_recs[i];

		field_bind(&r->r_req, hdr, n);
		field_bind(&r->r_absent, hdr, n);
		field_bind(&r->r_ident, hdr, n);
		field_bind(&r->r_purpose, hdr, n);
		field_bind(&r->r_topic, hdr, n);
		field_bind(&r->r_channel, hdr, n);
		field_bind(&r->r_state, hdr, n);
		field_bind(&r->r_reason, hdr, n);
		field_bind(&r->r_time, hdr, n);
		field_bind(&r->r_ip, hdr, n);
		if (field_bound(&r->r_ident))
			any = true;
	}
	if (!any)
		snprintf(why, whylen, "the header has none of the identifier columns of "
		    "mapping %s (for example \"%.*s\")", m->m_name,
		    cm_utf8_prefix(m->m_recs[0].r_ident.f_cols[0], 60),
		    m->m_recs[0].r_ident.f_cols[0]);
	return any ? 0 : -1;
}

/* Column I of field F in ROW, or "" when the row has none there. */
static const char *
row_col(const struct imp_row *row, const struct imp_field *f, size_t i)
{
	json_t *v;

	if (row->rw_obj != NULL) {
		v = json_object_get(row->rw_obj, f->f_cols[i]);
		if (json_is_string(v))
			return json_string_value(v);
		if (json_is_true(v))
			return "true";
		if (json_is_false(v))
			return "false";
		return "";
	}
	if (f->f_idx[i] < 0 || (size_t)f->f_idx[i] >= row->rw_n)
		return "";
	return row->rw_vals[f->f_idx[i]];
}

/* The field's constant, or the first non-empty of its columns, or "". */
static const char *
row_get(const struct imp_row *row, const struct imp_field *f)
{
	const char *s;
	size_t i;

	if (f->f_const != NULL)
		return f->f_const;
	for (i = 0; i < f->f_ncols; i++)
		if (*(s = row_col(row, f, i)) != '\0')
			return s;
	return "";
}

/* Whether record R applies to ROW: its conditions hold and it names someone. */
static bool
record_applies(const struct imp_record *r, const struct imp_row *row)
{
	size_t i;

	for (i = 0; i < r->r_req.f_ncols; i++) {
		const char *s = row_col(row, &r->r_req, i);

		if (*s == '\0' || (strcmp(r->r_req_val[i], "*") != 0 &&
		    strcasecmp(s, r->r_req_val[i]) != 0))
			return false;
	}
	for (i = 0; i < r->r_absent.f_ncols; i++)
		if (*row_col(row, &r->r_absent, i) != '\0')
			return false;
	return *row_get(row, &r->r_ident) != '\0';
}

/* The identifier of record R in ROW, parsed and normalised, into A. */
static int
row_ident(const struct imp_record *r, const struct cm_policy *pol, const struct imp_row *row,
    struct imp_action *a, char *why, size_t whylen)
{
	char text[CM_ID_TEXT_MAX + 8], sub[128];
	const char *v = row_get(row, &r->r_ident);
	int n;

	while (*v == ' ' || *v == '\t')
		v++;
	if (r->r_id_type != NULL)
		n = snprintf(text, sizeof(text), "%s:%s", r->r_id_type, v);
	else
		n = snprintf(text, sizeof(text), "%s", v);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		snprintf(why, whylen, "invalid identifier: too long");
		return -1;
	}
	if (cm_identifier_parse(text, (size_t)n, pol, &a->a_ident, sub, sizeof(sub)) != CM_OK) {
		snprintf(why, whylen, "invalid identifier: %s", sub);
		cm_wipe(text, sizeof(text));
		return -1;
	}
	cm_wipe(text, sizeof(text));
	return 0;
}

/* The purpose (or topic's purpose) and channel of a consent record. */
static int
row_purpose(const struct imp_record *r, const struct cm_policy *pol,
    const struct imp_row *row, struct imp_action *a, char *why, size_t whylen)
{
	const char *ch;
	int i;

	if (r->r_kind == IMP_PREFERENCE) {
		if ((i = cm_policy_topic_index(pol, row_get(row, &r->r_topic))) < 0)
			return snprintf(why, whylen, "unknown topic"), -1;
		a->a_purpose = &pol->pol_purposes[pol->pol_topics[i].tp_purpose];
	} else {
		if ((i = cm_policy_purpose_index(pol, row_get(row, &r->r_purpose))) < 0)
			return snprintf(why, whylen, "unknown purpose"), -1;
		a->a_purpose = &pol->pol_purposes[i];
	}
	a->a_channel = -1;
	if (*(ch = row_get(row, &r->r_channel)) == '\0')
		return 0;
	if ((a->a_channel = cm_policy_channel_index(pol, ch)) < 0)
		return snprintf(why, whylen, "unknown channel"), -1;
	if (!(a->a_purpose->pu_channels & (UINT64_C(1) << a->a_channel)))
		return snprintf(why, whylen, "channel not used by purpose %s",
		    a->a_purpose->pu_id), -1;
	return 0;
}

/* The time of record R: 1 found, 0 none, -1 malformed or out of range. */
static int
row_time(const struct imp_record *r, const struct imp_row *row, struct imp_action *a,
    char *why, size_t whylen)
{
	const char *t = row_get(row, &r->r_time);

	if (*t == '\0')
		return 0;
	if (cm_import_parse_time(t, &a->a_time_us) != 0)
		return snprintf(why, whylen, "bad time: RFC 3339 or YYYY-MM-DD HH:MM:SS"), -1;
	if (a->a_time_us < 0)
		return snprintf(why, whylen, "bad time: before 1970"), -1;
	if (a->a_time_us > cm_time_now_us() + CM_COLLECTED_SKEW_US)
		return snprintf(why, whylen, "bad time: in the future"), -1;
	return 1;
}

/* Record R of ROW into A: 1, 0 when its state says there was no decision, -1. */
static int
row_record(const struct imp_record *r, const struct cm_policy *pol,
    const struct imp_row *row, struct imp_action *a, char *why, size_t whylen)
{
	const char *s, *w;
	int t;

	memset(a, 0, sizeof(*a));
	a->a_kind = r->r_kind;
	if (r->r_kind == IMP_SUPPRESSION) {
		s = row_get(row, &r->r_reason);
		if (*s == '\0')
			return 0;
		if ((w = word_lookup(reason_words, CM_NELEM(reason_words), s)) == NULL)
			return snprintf(why, whylen, "unknown suppression reason"), -1;
		snprintf(a->a_reason, sizeof(a->a_reason), "%s", w);
	} else {
		s = row_get(row, &r->r_state);
		if (*s == '\0')
			return 0;
		if ((w = word_lookup(state_words, CM_NELEM(state_words), s)) == NULL)
			return snprintf(why, whylen, "unknown state"), -1;
		if (*w == '\0')
			return 0;
		(void)cm_consent_state_parse(w, &a->a_state);
		if (row_purpose(r, pol, row, a, why, whylen) != 0)
			return -1;
	}
	if ((t = row_time(r, row, a, why, whylen)) < 0)
		return -1;
	if (t == 0 && r->r_kind != IMP_SUPPRESSION)
		return snprintf(why, whylen, "no time: a consent keeps the provider's time"), -1;
	s = row_get(row, &r->r_ip);
	if (strlen(s) >= sizeof(a->a_ip) || strspn(s, "0123456789abcdefABCDEF.:") != strlen(s))
		return snprintf(why, whylen, "bad IP address"), -1;
	snprintf(a->a_ip, sizeof(a->a_ip), "%s", s);
	return row_ident(r, pol, row, a, why, whylen) == 0 ? 1 : -1;
}

int
imp_map_row(const struct cm_import_map *m, const struct cm_policy *pol,
    const struct imp_row *row, struct imp_action *acts, char *why, size_t whylen)
{
	size_t i;
	int n = 0, rc;

	for (i = 0; i < m->m_nrecs; i++) {
		if (!record_applies(&m->m_recs[i], row))
			continue;
		if ((rc = row_record(&m->m_recs[i], pol, row, &acts[n], why, whylen)) < 0) {
			cm_wipe(acts, sizeof(*acts) * IMP_RECS_MAX);
			return -1;
		}
		if (rc == 1)
			acts[n++].a_rec = i;
	}
	return n;
}
