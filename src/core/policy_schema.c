/* SPDX-License-Identifier: ISC */
/*
 * The schema of the policy document: every object is checked for unknown
 * keys, types, enumerations, references between purposes, topics,
 * channels and identifier types, version rules, and what a record of
 * processing needs under GDPR Art. 30 (categories of data subjects,
 * security measures, the safeguard of every transfer out of the
 * jurisdiction's home area); defaults are then filled in. The lookups
 * by id into what the check built live here too.
 */
#include <errno.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/policy.h"
#include "consentd/util.h"
#include "policy_int.h"

static const char *const basis_names[] = {
	"consent", "legitimate_interest", "soft_opt_in", "contract", "legal_obligation"
};

static const char *const required_channels[] = {
	"email", "sms", "push", "phone", "post", "ads"
};

static const char *const builtin_id_types[] = {
	"email", "phone", "device", "loyalty", "customer"
};

static const char *const recipient_roles[] = {
	"processor", "controller", "joint_controller"
};

/* The EEA: the 27 EU member states, Iceland, Liechtenstein and Norway. */
static const char eea_countries[][3] = {
	"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR",
	"HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO",
	"SE", "SI", "SK", "IS", "LI", "NO"
};

const char *
cm_lawful_basis_name(enum cm_lawful_basis b)
{
	return (size_t)b < CM_NELEM(basis_names) ? basis_names[b] : "unknown";
}

/* ---- the schema -------------------------------------------------------- */

static void
check_address(struct pctx *c, json_t *obj, const char *key)
{
	static const char *const keys[] = { "street_address", "locality", "region",
	    "postal_code", "country", NULL };
	json_t *a;
	const char *country;

	if ((a = pc_get_typed(c, obj, key, JSON_OBJECT, true, "an object")) == NULL)
		return;
	pc_path_push_key(c, key);
	pc_check_keys(c, a, keys);
	pc_get_string(c, a, "street_address", true);
	pc_get_string(c, a, "locality", true);
	pc_get_string(c, a, "region", false);
	pc_get_string(c, a, "postal_code", true);
	if ((country = pc_get_string(c, a, "country", true)) != NULL &&
	    (strlen(country) != 2 || country[0] < 'A' || country[0] > 'Z' ||
	    country[1] < 'A' || country[1] > 'Z'))
		pc_fail(c, "country", "must be an ISO 3166-1 alpha-2 code such as \"GB\"");
	pc_path_pop(c);
}

static void
check_controller(struct pctx *c, json_t *doc)
{
	static const char *const keys[] = { "name", "address", "email", "phone",
	    "url", "dpo", NULL };
	static const char *const dpo_keys[] = { "name", "email", "phone", NULL };
	json_t *o, *dpo;

	if ((o = pc_get_typed(c, doc, "controller", JSON_OBJECT, true, "an object")) == NULL)
		return;
	pc_path_push_key(c, "controller");
	pc_check_keys(c, o, keys);
	pc_get_string(c, o, "name", true);
	check_address(c, o, "address");
	pc_get_string(c, o, "email", true);
	pc_get_string(c, o, "phone", false);
	pc_get_string(c, o, "url", false);
	if ((dpo = pc_get_typed(c, o, "dpo", JSON_OBJECT, true, "an object")) != NULL) {
		pc_path_push_key(c, "dpo");
		pc_check_keys(c, dpo, dpo_keys);
		pc_get_string(c, dpo, "name", false);
		pc_get_string(c, dpo, "email", true);
		pc_get_string(c, dpo, "phone", false);
		pc_path_pop(c);
	}
	pc_path_pop(c);
}

static void
check_authority(struct pctx *c, json_t *doc)
{
	static const char *const keys[] = { "name", "url", NULL };
	json_t *o;

	if ((o = pc_get_typed(c, doc, "supervisory_authority", JSON_OBJECT, true,
	    "an object")) == NULL)
		return;
	pc_path_push_key(c, "supervisory_authority");
	pc_check_keys(c, o, keys);
	pc_get_string(c, o, "name", true);
	pc_get_string(c, o, "url", true);
	pc_path_pop(c);
}

/* Fails when ID was already seen among the first N ids of SEEN. */
static void
check_unique(struct pctx *c, const char *id, const char **seen, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(seen[i], id) == 0) {
			pc_fail(c, "id", "duplicate id \"%s\"", id);
			return;
		}
}

/*
 * Which identifier types reach a person on a channel when the policy does
 * not say: the ones a bounce of that identifier makes useless.
 */
static const struct {
	const char	*channel;
	const char	*type;
} default_channel_types[] = {
	{ "email", "email" }, { "sms", "phone" }, { "phone", "phone" },
	{ "push", "device" },
};

static bool
known_id_type(const struct cm_policy *p, const char *type)
{
	size_t i;

	if (pc_enum_index(type, builtin_id_types, CM_NELEM(builtin_id_types)) >= 0)
		return true;
	for (i = 0; i < p->pol_nid_types; i++)
		if (p->pol_id_types[i] != NULL && strcmp(p->pol_id_types[i], type) == 0)
			return true;
	return false;
}

/*
 * Fills CH's identifier types from O's optional "identifier_types" (ids of
 * built-in types or of the policy's own), or from the defaults.
 */
static void
channel_id_types(struct pctx *c, json_t *o, const struct cm_policy *p,
    struct cm_channel *ch)
{
	json_t *a, *v;
	const char *s;
	size_t k, j;

	if ((a = pc_get_typed(c, o, "identifier_types", JSON_ARRAY, false,
	    "an array")) == NULL) {
		if (c->failed)
			return;
		ch->ch_id_types = cm_calloc(CM_NELEM(default_channel_types) + 1,
		    sizeof(*ch->ch_id_types));
		for (k = 0; k < CM_NELEM(default_channel_types); k++)
			if (strcmp(ch->ch_id, default_channel_types[k].channel) == 0)
				ch->ch_id_types[ch->ch_nid_types++] =
				    default_channel_types[k].type;
		return;
	}
	if (json_array_size(a) > CM_POLICY_MAX_ITEMS) {
		pc_fail(c, "identifier_types", "too many items (at most %d)",
		    CM_POLICY_MAX_ITEMS);
		return;
	}
	ch->ch_id_types = cm_calloc(json_array_size(a) + 1, sizeof(*ch->ch_id_types));
	pc_path_push_key(c, "identifier_types");
	json_array_foreach(a, k, v) {
		pc_path_push_index(c, k);
		if (!json_is_string(v)) {
			pc_fail(c, NULL, "must be an identifier type id");
		} else if (!known_id_type(p, (s = json_string_value(v)))) {
			pc_fail(c, NULL, "unknown identifier type \"%s\" (a built-in type "
			    "or one of identifier_types)", s);
		} else {
			for (j = 0; j < ch->ch_nid_types; j++)
				if (strcmp(ch->ch_id_types[j], s) == 0)
					pc_fail(c, NULL, "identifier type \"%s\" is listed "
					    "twice", s);
			ch->ch_id_types[ch->ch_nid_types++] = s;
		}
		pc_path_pop(c);
		if (c->failed)
			break;
	}
	pc_path_pop(c);
}

static void
channel_cb(struct pctx *c, json_t *o, size_t i, void *arg)
{
	static const char *const keys[] = { "id", "title", "description",
	    "identifier_types", NULL };
	struct cm_policy *p = arg;
	const char *id;

	pc_check_keys(c, o, keys);
	if ((id = pc_get_id(c, o, "id")) == NULL)
		return;
	pc_get_string(c, o, "title", true);
	pc_get_string(c, o, "description", true);
	if (c->failed)
		return;
	if (i >= CM_POLICY_MAX_CHANNELS) {
		pc_fail(c, NULL, "at most %d channels", CM_POLICY_MAX_CHANNELS);
		return;
	}
	{
		const char *seen[CM_POLICY_MAX_CHANNELS];
		size_t k;

		for (k = 0; k < i; k++)
			seen[k] = p->pol_channels[k].ch_id;
		check_unique(c, id, seen, i);
	}
	p->pol_channels[i].ch_id = id;
	p->pol_channels[i].ch_title = json_string_value(json_object_get(o, "title"));
	channel_id_types(c, o, p, &p->pol_channels[i]);
}

static void
idtype_cb(struct pctx *c, json_t *o, size_t i, void *arg)
{
	static const char *const keys[] = { "id", "title", NULL };
	struct cm_policy *p = arg;
	const char *id;

	pc_check_keys(c, o, keys);
	if ((id = pc_get_id(c, o, "id")) == NULL)
		return;
	pc_get_string(c, o, "title", true);
	if (c->failed)
		return;
	if (pc_enum_index(id, builtin_id_types, CM_NELEM(builtin_id_types)) >= 0) {
		pc_fail(c, "id", "\"%s\" is a built-in identifier type", id);
		return;
	}
	check_unique(c, id, p->pol_id_types, i);
	p->pol_id_types[i] = id;
}

static bool
valid_country(const char *s)
{
	return strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' &&
	    s[1] <= 'Z';
}

/*
 * Whether a recipient in COUNTRY receives the data without a transfer out
 * of the jurisdiction's home area: the EEA for the GDPR, the UK and the
 * EEA for the UK GDPR (the UK's adequacy regulations cover the EEA). The
 * CCPA has no transfer rule.
 */
static bool
home_country(enum cm_jurisdiction j, const char *country)
{
	size_t i;

	if (j == CM_JUR_CCPA)
		return true;
	if (j == CM_JUR_UK_GDPR && strcmp(country, "GB") == 0)
		return true;
	for (i = 0; i < CM_NELEM(eea_countries); i++)
		if (strcmp(country, eea_countries[i]) == 0)
			return true;
	return false;
}

static void
recipient_cb(struct pctx *c, json_t *o, size_t i, void *arg)
{
	static const char *const keys[] = { "name", "role", "country",
	    "transfer_safeguards", NULL };
	const struct cm_policy *p = arg;
	const char *role, *country;

	(void)i;
	pc_check_keys(c, o, keys);
	pc_get_string(c, o, "name", true);
	if ((role = pc_get_string(c, o, "role", true)) != NULL &&
	    pc_enum_index(role, recipient_roles, CM_NELEM(recipient_roles)) < 0)
		pc_fail(c, "role", "unknown role \"%s\" (expected processor, controller "
		    "or joint_controller)", role);
	if ((country = pc_get_string(c, o, "country", true)) != NULL &&
	    !valid_country(country))
		pc_fail(c, "country", "must be an ISO 3166-1 alpha-2 code");
	if (pc_get_string(c, o, "transfer_safeguards", false) != NULL || c->failed)
		return;
	/* Art. 30(1)(e): a transfer out of the home area names its safeguard. */
	if (!home_country(p->pol_jurisdiction, country))
		pc_fail(c, "transfer_safeguards", "required for a recipient in %s, outside %s: "
		    "name the safeguard of the transfer (an adequacy decision or "
		    "regulations, standard contractual clauses or the IDTA, binding "
		    "corporate rules)", country, p->pol_jurisdiction == CM_JUR_UK_GDPR ?
		    "the UK and the EEA" : "the EEA");
}

static void
purpose_cb(struct pctx *c, json_t *o, size_t i, void *arg)
{
	static const char *const keys[] = { "id", "title", "description",
	    "lawful_basis", "legitimate_interest", "marketing", "channels",
	    "data_categories", "data_subject_categories", "recipients", "retention",
	    "source", "automated_decision_making", "version", "min_valid_version",
	    "gpc", "holdout_percent", NULL };
	static const char *const ret_keys[] = { "days", "description", NULL };
	struct cm_policy *p = arg;
	struct cm_purpose *pu = &p->pol_purposes[i];
	const char *basis, *seen[CM_POLICY_MAX_ITEMS];
	json_t *chans, *ret, *v;
	int64_t n;
	size_t k;
	int b, ci;

	pc_check_keys(c, o, keys);
	if ((pu->pu_id = pc_get_id(c, o, "id")) == NULL)
		return;
	for (k = 0; k < i; k++)
		seen[k] = p->pol_purposes[k].pu_id;
	check_unique(c, pu->pu_id, seen, i);
	pu->pu_title = pc_get_string(c, o, "title", true);
	pc_get_string(c, o, "description", true);
	if ((basis = pc_get_string(c, o, "lawful_basis", true)) == NULL)
		return;
	if ((b = pc_enum_index(basis, basis_names, CM_NELEM(basis_names))) < 0) {
		pc_fail(c, "lawful_basis", "unknown lawful basis \"%s\" (expected consent, "
		    "legitimate_interest, soft_opt_in, contract or legal_obligation)", basis);
		return;
	}
	pu->pu_basis = (enum cm_lawful_basis)b;
	if (pc_get_string(c, o, "legitimate_interest", false) == NULL && !c->failed &&
	    (pu->pu_basis == CM_BASIS_LEGITIMATE_INTEREST ||
	    pu->pu_basis == CM_BASIS_SOFT_OPT_IN))
		pc_fail(c, "legitimate_interest", "required for a purpose whose lawful "
		    "basis is %s: describe the interest pursued (Art. 13(1)(d))", basis);
	pu->pu_marketing = pc_get_bool(c, o, "marketing", true, false);
	if (pu->pu_basis == CM_BASIS_SOFT_OPT_IN && !pu->pu_marketing && !c->failed)
		pc_fail(c, "marketing", "soft opt-in applies only to direct marketing: "
		    "set marketing to true");
	if ((chans = pc_get_typed(c, o, "channels", JSON_ARRAY, true, "an array")) != NULL) {
		pc_path_push_key(c, "channels");
		json_array_foreach(chans, k, v) {
			pc_path_push_index(c, k);
			if (!json_is_string(v))
				pc_fail(c, NULL, "must be a channel id");
			else if ((ci = cm_policy_channel_index(p, json_string_value(v))) < 0)
				pc_fail(c, NULL, "unknown channel \"%s\"", json_string_value(v));
			else if (pu->pu_channels & (UINT64_C(1) << ci))
				pc_fail(c, NULL, "channel \"%s\" is listed twice",
				    json_string_value(v));
			else
				pu->pu_channels |= UINT64_C(1) << ci;
			pc_path_pop(c);
			if (c->failed)
				break;
		}
		pc_path_pop(c);
	}
	pc_get_string_array(c, o, "data_categories", true, true);
	/* Art. 30(1)(c): whose data this is, here or as the policy's default. */
	if (pc_get_string_array(c, o, "data_subject_categories", false, true) == NULL &&
	    !c->failed && json_object_get(p->pol_doc,
	    "default_data_subject_categories") == NULL)
		pc_fail(c, "data_subject_categories", "required: name the categories of "
		    "data subjects (Art. 30(1)(c)), or set "
		    "default_data_subject_categories for every purpose");
	pc_each_object(c, o, "recipients", true, 0, recipient_cb, p);
	if ((ret = pc_get_typed(c, o, "retention", JSON_OBJECT, true, "an object")) != NULL) {
		pc_path_push_key(c, "retention");
		pc_check_keys(c, ret, ret_keys);
		pc_get_int(c, ret, "days", true, 1, 36500, 0, &n);
		pc_get_string(c, ret, "description", true);
		pc_path_pop(c);
	}
	pc_get_string(c, o, "source", true);
	pc_get_string(c, o, "automated_decision_making", false);
	pc_get_int(c, o, "version", true, 1, INT32_MAX, 1, &pu->pu_version);
	if (pc_get_int(c, o, "min_valid_version", true, 1, INT32_MAX, 1,
	    &pu->pu_min_valid_version) && !c->failed &&
	    pu->pu_min_valid_version > pu->pu_version)
		pc_fail(c, "min_valid_version", "%lld is greater than version %lld",
		    (long long)pu->pu_min_valid_version, (long long)pu->pu_version);
	pu->pu_gpc = pc_get_bool(c, o, "gpc", false, false);
	if (pc_get_int(c, o, "holdout_percent", false, 0, 50, 0, &n))
		pu->pu_holdout_percent = (int)n;
	if (pu->pu_holdout_percent > 0 && pu->pu_basis != CM_BASIS_CONSENT &&
	    pu->pu_basis != CM_BASIS_LEGITIMATE_INTEREST &&
	    pu->pu_basis != CM_BASIS_SOFT_OPT_IN && !c->failed)
		pc_fail(c, "holdout_percent", "a holdout cannot withhold processing "
		    "needed for a contract or a legal obligation");
}

static void
topic_cb(struct pctx *c, json_t *o, size_t i, void *arg)
{
	static const char *const keys[] = { "id", "title", "description", "purpose", NULL };
	struct cm_policy *p = arg;
	struct cm_topic *t = &p->pol_topics[i];
	const char *purpose, *seen[CM_POLICY_MAX_ITEMS];
	size_t k;
	int pi;

	pc_check_keys(c, o, keys);
	if ((t->tp_id = pc_get_id(c, o, "id")) == NULL)
		return;
	for (k = 0; k < i; k++)
		seen[k] = p->pol_topics[k].tp_id;
	check_unique(c, t->tp_id, seen, i);
	t->tp_title = pc_get_string(c, o, "title", true);
	pc_get_string(c, o, "description", true);
	if ((purpose = pc_get_string(c, o, "purpose", true)) == NULL)
		return;
	if ((pi = cm_policy_purpose_index(p, purpose)) < 0) {
		pc_fail(c, "purpose", "no purpose has the id \"%s\"", purpose);
		return;
	}
	if (p->pol_purposes[pi].pu_channels == 0)
		pc_fail(c, "purpose", "purpose \"%s\" uses no channel, so it cannot be a "
		    "preference-centre topic", purpose);
	t->tp_purpose = (size_t)pi;
}

static void
check_retention(struct pctx *c, json_t *doc, struct cm_policy *p)
{
	static const char *const keys[] = { "closed_requests_days",
	    "service_records_days", "packages_days",
	    "outbox_delivered_days", "evidence_ip_truncate_days", NULL };
	json_t *o;

	if ((o = pc_get_typed(c, doc, "retention", JSON_OBJECT, true, "an object")) == NULL)
		return;
	pc_path_push_key(c, "retention");
	pc_check_keys(c, o, keys);
	pc_get_int(c, o, "closed_requests_days", true, 1, 36500, 0,
	    &p->pol_closed_requests_days);
	pc_get_int(c, o, "service_records_days", true, 1, 36500, 0,
	    &p->pol_service_records_days);
	/* How long an access or portability package is held for download. */
	pc_get_int(c, o, "packages_days", false, 1, 365, 30, &p->pol_packages_days);
	/*
	 * What the retention sweeper does (docs/operations.md, "Retention"):
	 * delivered outbox rows are deleted, and the IP address and user agent
	 * of consent evidence minimised, this many days on. Ten years bounds
	 * both: a longer period is a typing error, not a policy.
	 */
	pc_get_int(c, o, "outbox_delivered_days", false, 1, 3650, CM_RETENTION_OUTBOX_DAYS,
	    &p->pol_outbox_delivered_days);
	pc_get_int(c, o, "evidence_ip_truncate_days", false, 1, 3650,
	    CM_RETENTION_EVIDENCE_DAYS, &p->pol_evidence_ip_days);
	pc_path_pop(c);
}

/*
 * Adds the defaults of optional fields to the public document, so that it
 * states every purpose's record in full.
 */
void
pc_fill_defaults(json_t *doc, const struct cm_policy *p)
{
	json_t *purposes, *pu, *dsc, *ch, *types;
	json_t *ret;
	size_t i, k;

	dsc = json_object_get(doc, "default_data_subject_categories");
	purposes = json_object_get(doc, "purposes");
	json_array_foreach(purposes, i, pu) {
		if (json_object_get(pu, "data_subject_categories") == NULL)
			json_object_set_new(pu, "data_subject_categories",
			    json_deep_copy(dsc));
		if (json_object_get(pu, "gpc") == NULL)
			json_object_set_new(pu, "gpc", json_false());
		if (json_object_get(pu, "holdout_percent") == NULL)
			json_object_set_new(pu, "holdout_percent", json_integer(0));
		if (json_object_get(pu, "automated_decision_making") == NULL)
			json_object_set_new(pu, "automated_decision_making",
			    json_string("none"));
	}
	if ((ret = json_object_get(doc, "retention")) != NULL) {
		if (json_object_get(ret, "packages_days") == NULL)
			json_object_set_new(ret, "packages_days",
			    json_integer(p->pol_packages_days));
		if (json_object_get(ret, "outbox_delivered_days") == NULL)
			json_object_set_new(ret, "outbox_delivered_days",
			    json_integer(p->pol_outbox_delivered_days));
		if (json_object_get(ret, "evidence_ip_truncate_days") == NULL)
			json_object_set_new(ret, "evidence_ip_truncate_days",
			    json_integer(p->pol_evidence_ip_days));
	}
	if (json_object_get(doc, "identifier_types") == NULL)
		json_object_set_new(doc, "identifier_types", json_array());
	if (json_object_get(doc, "default_phone_region") == NULL)
		json_object_set_new(doc, "default_phone_region", json_null());
	json_array_foreach(json_object_get(doc, "channels"), i, ch) {
		if (json_object_get(ch, "identifier_types") != NULL ||
		    i >= p->pol_nchannels)
			continue;
		types = json_array();
		for (k = 0; k < p->pol_channels[i].ch_nid_types; k++)
			json_array_append_new(types,
			    json_string(p->pol_channels[i].ch_id_types[k]));
		json_object_set_new(ch, "identifier_types", types);
	}
}

/* The fifth root of A in [0, 1], by Newton's method (no libm here). */
static double
root5(double a)
{
	double x = 1;
	int k;

	if (a <= 0)
		return 0;
	for (k = 0; k < 60; k++)
		x -= (x * x * x * x * x - a) / (5 * x * x * x * x);
	return x;
}

/* Relative luminance (WCAG 2.1) of the colour #RRGGBB HEX, or -1. */
static double
colour_luminance(const char *hex)
{
	static const double w[3] = { 0.2126, 0.7152, 0.0722 };
	double l = 0, ch;
	unsigned u;
	int i;

	for (i = 0; i < 3; i++) {
		if (sscanf(hex + 1 + 2 * i, "%2x", &u) != 1)
			return -1;
		ch = (double)u / 255;
		/* sRGB to linear: ((c + 0.055) / 1.055)^2.4, where x^2.4 = x^2 * (x^2)^(1/5). */
		if (ch <= 0.04045)
			ch /= 12.92;
		else {
			ch = (ch + 0.055) / 1.055;
			ch = ch * ch * root5(ch * ch);
		}
		l += w[i] * ch;
	}
	return l;
}

/*
 * The preference centre's branding: the retailer's name as shoppers know
 * it, and an accent colour that reaches CSS only as #rrggbb, dark enough
 * that white text on it meets WCAG 2.1 AA (4.5:1) since the page's
 * buttons are white on the accent.
 */
static void
check_branding(struct pctx *c, json_t *doc)
{
	static const char *const keys[] = { "name", "accent_color", NULL };
	const char *s;
	json_t *o;
	size_t i;
	double lum;

	if ((o = pc_get_typed(c, doc, "branding", JSON_OBJECT, false, "an object")) == NULL)
		return;
	pc_path_push_key(c, "branding");
	pc_check_keys(c, o, keys);
	pc_get_string(c, o, "name", false);
	if ((s = pc_get_string(c, o, "accent_color", false)) != NULL) {
		for (i = 1; i < 7 && s[0] == '#' && strlen(s) == 7; i++)
			if (!isxdigit((unsigned char)s[i]))
				break;
		if (s[0] != '#' || strlen(s) != 7 || i != 7)
			pc_fail(c, "accent_color", "must be a colour #rrggbb");
		else if ((lum = colour_luminance(s)) < 0 || 1.05 / (lum + 0.05) < 4.5)
			pc_fail(c, "accent_color", "too light: white text on it must have a "
			    "contrast of at least 4.5:1 (WCAG 2.1 AA)");
	}
	pc_path_pop(c);
}

/* The document's own fields: version, language, jurisdiction, parties, Art. 30. */
static void
check_header(struct pctx *c, json_t *doc, struct cm_policy *p)
{
	const char *s;

	pc_get_string(c, doc, "policy_version", true);
	pc_get_string(c, doc, "language", true);
	pc_get_string(c, doc, "privacy_notice_url", true);
	if ((s = pc_get_string(c, doc, "jurisdiction", true)) != NULL) {
		if (strcmp(s, "gdpr") == 0)
			p->pol_jurisdiction = CM_JUR_GDPR;
		else if (strcmp(s, "uk_gdpr") == 0)
			p->pol_jurisdiction = CM_JUR_UK_GDPR;
		else if (strcmp(s, "ccpa") == 0)
			p->pol_jurisdiction = CM_JUR_CCPA;
		else
			pc_fail(c, "jurisdiction", "unknown jurisdiction \"%s\" (expected "
			    "gdpr, uk_gdpr or ccpa)", s);
	}
	check_controller(c, doc);
	check_authority(c, doc);
	check_branding(c, doc);
	if ((s = pc_get_string(c, doc, "gpc_last_update", true)) != NULL) {
		if (!pc_valid_date(s))
			pc_fail(c, "gpc_last_update", "must be a date YYYY-MM-DD");
		p->pol_gpc_last_update = s;
	}
	if ((s = pc_get_string(c, doc, "default_phone_region", false)) != NULL) {
		if (!valid_country(s))
			pc_fail(c, "default_phone_region", "must be an ISO 3166-1 alpha-2 "
			    "code such as \"GB\"");
		p->pol_phone_region = s;
	}
	pc_get_string_array(c, doc, "default_data_subject_categories", false, true);
	/* Art. 30(1)(g): a general description of the Art. 32 measures. */
	pc_get_string_array(c, doc, "security_measures", true, true);
}

/* The frequencies a person may choose from, and the default one. */
static void
check_frequencies(struct pctx *c, json_t *doc, struct cm_policy *p)
{
	const char *s, *def;
	json_t *a, *v;
	size_t i, k;

	if ((a = pc_get_string_array(c, doc, "frequencies", true, true)) != NULL) {
		p->pol_nfrequencies = json_array_size(a);
		p->pol_frequencies = cm_calloc(p->pol_nfrequencies + 1,
		    sizeof(*p->pol_frequencies));
		pc_path_push_key(c, "frequencies");
		json_array_foreach(a, i, v) {
			s = json_string_value(v);
			pc_path_push_index(c, i);
			if (!pc_valid_id(s))
				pc_fail(c, NULL, "\"%s\" is not a valid id", s);
			for (k = 0; k < i && !c->failed; k++)
				if (strcmp(p->pol_frequencies[k], s) == 0)
					pc_fail(c, NULL, "duplicate frequency \"%s\"", s);
			pc_path_pop(c);
			p->pol_frequencies[i] = s;
		}
		pc_path_pop(c);
	}
	if ((def = pc_get_string(c, doc, "default_frequency", true)) != NULL &&
	    cm_policy_frequency_index(p, def) < 0)
		pc_fail(c, "default_frequency", "\"%s\" is not one of the frequencies", def);
}

void
pc_check_document(struct pctx *c, json_t *doc, struct cm_policy *p)
{
	static const char *const keys[] = { "policy_version", "language",
	    "privacy_notice_url", "jurisdiction", "controller",
	    "supervisory_authority", "gpc_last_update", "default_phone_region",
	    "default_data_subject_categories", "security_measures", "channels",
	    "identifier_types", "frequencies", "default_frequency", "purposes",
	    "topics", "retention", "branding", NULL };
	json_t *a;
	size_t i;

	pc_check_keys(c, doc, keys);
	check_header(c, doc, p);
	if (c->failed)
		return;

	/* The policy's own identifier types first: channels may name them. */
	a = json_object_get(doc, "identifier_types");
	p->pol_nid_types = json_is_array(a) ? json_array_size(a) : 0;
	p->pol_id_types = cm_calloc(p->pol_nid_types + 1, sizeof(*p->pol_id_types));
	if (pc_each_object(c, doc, "identifier_types", false, 0, idtype_cb, p) == NULL &&
	    c->failed)
		return;

	a = json_object_get(doc, "channels");
	p->pol_nchannels = json_is_array(a) ? json_array_size(a) : 0;
	if (p->pol_nchannels > CM_POLICY_MAX_CHANNELS) {
		pc_fail(c, "channels", "at most %d channels", CM_POLICY_MAX_CHANNELS);
		return;
	}
	p->pol_channels = cm_calloc(p->pol_nchannels + 1, sizeof(*p->pol_channels));
	if (pc_each_object(c, doc, "channels", true, 1, channel_cb, p) == NULL)
		return;
	for (i = 0; i < CM_NELEM(required_channels); i++)
		if (cm_policy_channel_index(p, required_channels[i]) < 0) {
			pc_fail(c, "channels", "the channel \"%s\" is required",
			    required_channels[i]);
			return;
		}

	check_frequencies(c, doc, p);
	if (c->failed)
		return;

	a = json_object_get(doc, "purposes");
	p->pol_npurposes = json_is_array(a) ? json_array_size(a) : 0;
	p->pol_purposes = cm_calloc(p->pol_npurposes + 1, sizeof(*p->pol_purposes));
	if (pc_each_object(c, doc, "purposes", true, 1, purpose_cb, p) == NULL)
		return;
	a = json_object_get(doc, "topics");
	p->pol_ntopics = json_is_array(a) ? json_array_size(a) : 0;
	p->pol_topics = cm_calloc(p->pol_ntopics + 1, sizeof(*p->pol_topics));
	if (pc_each_object(c, doc, "topics", true, 0, topic_cb, p) == NULL)
		return;
	check_retention(c, doc, p);
}

/* ---- lookups in the checked policy --------------------------------------- */

int
cm_policy_purpose_index(const struct cm_policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->pol_npurposes; i++)
		if (p->pol_purposes[i].pu_id != NULL && strcmp(p->pol_purposes[i].pu_id, id) == 0)
			return (int)i;
	return -1;
}

int
cm_policy_channel_index(const struct cm_policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->pol_nchannels; i++)
		if (p->pol_channels[i].ch_id != NULL && strcmp(p->pol_channels[i].ch_id, id) == 0)
			return (int)i;
	return -1;
}

int
cm_policy_topic_index(const struct cm_policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->pol_ntopics; i++)
		if (p->pol_topics[i].tp_id != NULL && strcmp(p->pol_topics[i].tp_id, id) == 0)
			return (int)i;
	return -1;
}

bool
cm_policy_channel_uses_type(const struct cm_policy *p, size_t c, const char *type)
{
	const struct cm_channel *ch;
	size_t i;

	if (c >= p->pol_nchannels)
		return false;
	ch = &p->pol_channels[c];
	for (i = 0; i < ch->ch_nid_types; i++)
		if (strcmp(ch->ch_id_types[i], type) == 0)
			return true;
	return false;
}

int
cm_policy_frequency_index(const struct cm_policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->pol_nfrequencies; i++)
		if (p->pol_frequencies[i] != NULL && strcmp(p->pol_frequencies[i], id) == 0)
			return (int)i;
	return -1;
}
