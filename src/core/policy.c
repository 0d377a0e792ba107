/*
 * Loading and validating the policy document. jansson parses the JSON;
 * this file checks every object against its schema (unknown keys, types,
 * enumerations, references between purposes, topics, channels and
 * identifier types, version rules, and what a record of processing needs
 * under GDPR Art. 30: categories of data subjects, security measures, the
 * safeguard of every transfer out of the jurisdiction's home area) and,
 * because jansson keeps no source positions, finds the line of a failing
 * field by walking the already-validated text along the field's path
 * (cm_policy_line() does the same for checks made after loading). The
 * accepted document, with defaults filled in, is the public view served at
 * GET /v1/policy.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "consentd/policy.h"
#include "consentd/util.h"

#define PATH_MAX_DEPTH	8

struct path_el {
	const char	*pe_key;	/* object member, or NULL for an index */
	size_t		 pe_index;
};

struct pctx {
	const char	*file;
	const char	*text;
	size_t		 len;
	struct path_el	 path[PATH_MAX_DEPTH];
	int		 depth;
	char		*err;
	size_t		 errlen;
	bool		 failed;
};

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

/* ---- locating a path in the source text -------------------------------- */

static size_t
loc_ws(const char *t, size_t len, size_t i)
{
	while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
		i++;
	return i;
}

/* I is at an opening quote; returns the index just past the closing one. */
static size_t
loc_string(const char *t, size_t len, size_t i)
{
	for (i++; i < len && t[i] != '"'; i++)
		if (t[i] == '\\')
			i++;
	return i < len ? i + 1 : len;
}

/* I is at the start of a value; returns the index just past it. */
static size_t
loc_skip(const char *t, size_t len, size_t i)
{
	int depth = 0;

	if (i < len && t[i] == '"')
		return loc_string(t, len, i);
	if (i < len && (t[i] == '{' || t[i] == '[')) {
		for (; i < len; i++) {
			if (t[i] == '"') {
				i = loc_string(t, len, i) - 1;
			} else if (t[i] == '{' || t[i] == '[') {
				depth++;
			} else if (t[i] == '}' || t[i] == ']') {
				if (--depth == 0)
					return i + 1;
			}
		}
		return len;
	}
	while (i < len && t[i] != ',' && t[i] != '}' && t[i] != ']' &&
	    t[i] != ' ' && t[i] != '\n' && t[i] != '\r' && t[i] != '\t')
		i++;
	return i;
}

/*
 * Offset of the value at PATH (N elements) in the text, or of the deepest
 * enclosing value found when the path does not exist (a missing field is
 * reported at the object that lacks it).
 */
static size_t
loc_find(const char *t, size_t len, const struct path_el *path, int n)
{
	size_t i, k, idx, klen;

	i = loc_ws(t, len, 0);
	for (k = 0; k < (size_t)n; k++) {
		if (i >= len)
			return len;
		if (path[k].pe_key != NULL && t[i] == '{') {
			size_t start = i;

			klen = strlen(path[k].pe_key);
			for (i++;;) {
				i = loc_ws(t, len, i);
				if (i >= len || t[i] != '"')
					return start;
				size_t ks = i + 1, ke = loc_string(t, len, i) - 1;
				i = loc_ws(t, len, ke + 1);
				if (i >= len || t[i] != ':')
					return start;
				i = loc_ws(t, len, i + 1);
				if (ke - ks == klen && memcmp(t + ks, path[k].pe_key, klen) == 0)
					break;
				i = loc_ws(t, len, loc_skip(t, len, i));
				if (i >= len || t[i] != ',')
					return start;
				i++;
			}
		} else if (path[k].pe_key == NULL && t[i] == '[') {
			size_t start = i;

			i = loc_ws(t, len, i + 1);
			for (idx = 0; idx < path[k].pe_index; idx++) {
				i = loc_ws(t, len, loc_skip(t, len, i));
				if (i >= len || t[i] != ',')
					return start;
				i = loc_ws(t, len, i + 1);
			}
		} else {
			return i;
		}
	}
	return i;
}

static int
loc_line(const char *t, size_t off)
{
	int line = 1;
	size_t i;

	for (i = 0; i < off; i++)
		if (t[i] == '\n')
			line++;
	return line;
}

int
cm_policy_line(const struct cm_policy *p, const char *field)
{
	struct path_el path[PATH_MAX_DEPTH];
	char keys[PATH_MAX_DEPTH][65], *end;
	const char *s = field;
	size_t klen;
	long idx;
	int n = 0;

	if (p->pol_text == NULL)
		return 1;
	while (*s != '\0' && n < PATH_MAX_DEPTH) {
		if (*s == '[') {
			errno = 0;
			idx = strtol(s + 1, &end, 10);
			if (end == s + 1 || *end != ']' || idx < 0 || errno != 0)
				break;
			path[n].pe_key = NULL;
			path[n++].pe_index = (size_t)idx;
			s = end + 1;
			continue;
		}
		if (*s == '.')
			s++;
		if ((klen = strcspn(s, ".[")) == 0 || klen >= sizeof(keys[n]))
			break;
		memcpy(keys[n], s, klen);
		keys[n][klen] = '\0';
		path[n].pe_key = keys[n];
		path[n++].pe_index = 0;
		s += klen;
	}
	return loc_line(p->pol_text, loc_find(p->pol_text, p->pol_text_len, path, n));
}

/* ---- errors ------------------------------------------------------------ */

static void
path_push_key(struct pctx *c, const char *key)
{
	if (c->depth < PATH_MAX_DEPTH) {
		c->path[c->depth].pe_key = key;
		c->path[c->depth].pe_index = 0;
	}
	c->depth++;
}

static void
path_push_index(struct pctx *c, size_t i)
{
	if (c->depth < PATH_MAX_DEPTH) {
		c->path[c->depth].pe_key = NULL;
		c->path[c->depth].pe_index = i;
	}
	c->depth++;
}

static void
path_pop(struct pctx *c)
{
	c->depth--;
}

static void
path_format(const struct pctx *c, char *out, size_t outlen)
{
	size_t o = 0;
	int i, n;

	out[0] = '\0';
	for (i = 0; i < c->depth && i < PATH_MAX_DEPTH; i++) {
		if (c->path[i].pe_key != NULL)
			n = snprintf(out + o, outlen - o, "%s%s", i ? "." : "",
			    c->path[i].pe_key);
		else
			n = snprintf(out + o, outlen - o, "[%zu]", c->path[i].pe_index);
		if (n < 0 || (size_t)n >= outlen - o)
			return;
		o += (size_t)n;
	}
	if (o == 0)
		snprintf(out, outlen, "(document)");
}

/*
 * Records the first error: "FILE:LINE: FIELD: message". FIELD is the
 * current path plus KEY when KEY is not NULL.
 */
static void CM_PRINTF(3, 4)
fail(struct pctx *c, const char *key, const char *fmt, ...)
{
	char field[256], msg[512];
	size_t off;
	va_list ap;
	int depth;

	if (c->failed)
		return;
	c->failed = true;
	if (key != NULL)
		path_push_key(c, key);
	depth = c->depth < PATH_MAX_DEPTH ? c->depth : PATH_MAX_DEPTH;
	off = loc_find(c->text, c->len, c->path, depth);
	path_format(c, field, sizeof(field));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file, loc_line(c->text, off),
	    field, msg);
	if (key != NULL)
		path_pop(c);
}

/* ---- typed field access ------------------------------------------------ */

/* Fails on any member of OBJ not named in ALLOWED (NULL-terminated). */
static void
check_keys(struct pctx *c, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		(void)v;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			fail(c, key, "unknown field");
			return;
		}
	}
}

static bool
valid_id(const char *s)
{
	size_t i;

	if (s[0] < 'a' || s[0] > 'z')
		return false;
	for (i = 1; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_'))
			return false;
	return i <= 64;
}

static json_t *
get_typed(struct pctx *c, json_t *obj, const char *key, json_type type,
    bool required, const char *what)
{
	json_t *v;

	if (c->failed)
		return NULL;
	if ((v = json_object_get(obj, key)) == NULL) {
		if (required)
			fail(c, key, "required field is missing");
		return NULL;
	}
	if (json_typeof(v) != type &&
	    !(type == JSON_TRUE && json_is_boolean(v))) {
		fail(c, key, "must be %s", what);
		return NULL;
	}
	return v;
}

static const char *
get_string(struct pctx *c, json_t *obj, const char *key, bool required)
{
	json_t *v;
	const char *s;

	if ((v = get_typed(c, obj, key, JSON_STRING, required, "a string")) == NULL)
		return NULL;
	s = json_string_value(v);
	if (s[0] == '\0' || strlen(s) != json_string_length(v)) {
		fail(c, key, "must be a non-empty string without NUL characters");
		return NULL;
	}
	return s;
}

static const char *
get_id(struct pctx *c, json_t *obj, const char *key)
{
	const char *s;

	if ((s = get_string(c, obj, key, true)) != NULL && !valid_id(s)) {
		fail(c, key, "\"%s\" is not a valid id (a-z first, then a-z, 0-9, _; "
		    "at most 64)", s);
		return NULL;
	}
	return s;
}

static bool
get_int(struct pctx *c, json_t *obj, const char *key, bool required,
    int64_t min, int64_t max, int64_t def, int64_t *out)
{
	json_t *v;

	*out = def;
	if ((v = get_typed(c, obj, key, JSON_INTEGER, required, "an integer")) == NULL)
		return !c->failed;
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		fail(c, key, "must be between %lld and %lld", (long long)min,
		    (long long)max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

static bool
get_bool(struct pctx *c, json_t *obj, const char *key, bool required, bool def)
{
	json_t *v;

	if ((v = get_typed(c, obj, key, JSON_TRUE, required, "true or false")) == NULL)
		return def;
	return json_is_true(v);
}

static int
enum_index(const char *s, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static bool
valid_date(const char *s)
{
	int y, m, d, n = 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	static const int digits[] = { 0, 1, 2, 3, 5, 6, 8, 9 };
	size_t i;

	if (strlen(s) != 10)
		return false;
	for (i = 0; i < CM_NELEM(digits); i++)
		if (s[digits[i]] < '0' || s[digits[i]] > '9')
			return false;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10)
		return false;
	if (s[4] != '-' || s[7] != '-' || y < 2000 || m < 1 || m > 12 || d < 1)
		return false;
	if (d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	return true;
}

/* A non-empty array of non-empty strings, each at most 256 bytes. */
static json_t *
get_string_array(struct pctx *c, json_t *obj, const char *key, bool required,
    bool nonempty)
{
	json_t *a, *v;
	size_t i;

	if ((a = get_typed(c, obj, key, JSON_ARRAY, required, "an array")) == NULL)
		return NULL;
	if (nonempty && json_array_size(a) == 0) {
		fail(c, key, "must not be empty");
		return NULL;
	}
	if (json_array_size(a) > CM_POLICY_MAX_ITEMS) {
		fail(c, key, "too many items (at most %d)", CM_POLICY_MAX_ITEMS);
		return NULL;
	}
	path_push_key(c, key);
	json_array_foreach(a, i, v) {
		path_push_index(c, i);
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 256)
			fail(c, NULL, "must be a non-empty string of at most 256 bytes");
		path_pop(c);
	}
	path_pop(c);
	return c->failed ? NULL : a;
}

/* Walks an array of objects: calls FN(c, obj, index, arg) for each. */
static json_t *
each_object(struct pctx *c, json_t *parent, const char *key, bool required,
    size_t min, void (*fn)(struct pctx *, json_t *, size_t, void *), void *arg)
{
	json_t *a, *v;
	size_t i;

	if ((a = get_typed(c, parent, key, JSON_ARRAY, required, "an array")) == NULL)
		return NULL;
	if (json_array_size(a) < min) {
		fail(c, key, "must hold at least %zu item%s", min, min == 1 ? "" : "s");
		return NULL;
	}
	if (json_array_size(a) > CM_POLICY_MAX_ITEMS) {
		fail(c, key, "too many items (at most %d)", CM_POLICY_MAX_ITEMS);
		return NULL;
	}
	path_push_key(c, key);
	json_array_foreach(a, i, v) {
		if (c->failed)
			break;
		path_push_index(c, i);
		if (!json_is_object(v))
			fail(c, NULL, "must be an object");
		else
			fn(c, v, i, arg);
		path_pop(c);
	}
	path_pop(c);
	return c->failed ? NULL : a;
}

/* ---- the schema -------------------------------------------------------- */

static void
check_address(struct pctx *c, json_t *obj, const char *key)
{
	static const char *const keys[] = { "street_address", "locality", "region",
	    "postal_code", "country", NULL };
	json_t *a;
	const char *country;

	if ((a = get_typed(c, obj, key, JSON_OBJECT, true, "an object")) == NULL)
		return;
	path_push_key(c, key);
	check_keys(c, a, keys);
	get_string(c, a, "street_address", true);
	get_string(c, a, "locality", true);
	get_string(c, a, "region", false);
	get_string(c, a, "postal_code", true);
	if ((country = get_string(c, a, "country", true)) != NULL &&
	    (strlen(country) != 2 || country[0] < 'A' || country[0] > 'Z' ||
	    country[1] < 'A' || country[1] > 'Z'))
		fail(c, "country", "must be an ISO 3166-1 alpha-2 code such as \"GB\"");
	path_pop(c);
}

static void
check_controller(struct pctx *c, json_t *doc)
{
	static const char *const keys[] = { "name", "address", "email", "phone",
	    "url", "dpo", NULL };
	static const char *const dpo_keys[] = { "name", "email", "phone", NULL };
	json_t *o, *dpo;

	if ((o = get_typed(c, doc, "controller", JSON_OBJECT, true, "an object")) == NULL)
		return;
	path_push_key(c, "controller");
	check_keys(c, o, keys);
	get_string(c, o, "name", true);
	check_address(c, o, "address");
	get_string(c, o, "email", true);
	get_string(c, o, "phone", false);
	get_string(c, o, "url", false);
	if ((dpo = get_typed(c, o, "dpo", JSON_OBJECT, true, "an object")) != NULL) {
		path_push_key(c, "dpo");
		check_keys(c, dpo, dpo_keys);
		get_string(c, dpo, "name", false);
		get_string(c, dpo, "email", true);
		get_string(c, dpo, "phone", false);
		path_pop(c);
	}
	path_pop(c);
}

static void
check_authority(struct pctx *c, json_t *doc)
{
	static const char *const keys[] = { "name", "url", NULL };
	json_t *o;

	if ((o = get_typed(c, doc, "supervisory_authority", JSON_OBJECT, true,
	    "an object")) == NULL)
		return;
	path_push_key(c, "supervisory_authority");
	check_keys(c, o, keys);
	get_string(c, o, "name", true);
	get_string(c, o, "url", true);
	path_pop(c);
}

/* Fails when ID was already seen among the first N ids of SEEN. */
static void
check_unique(struct pctx *c, const char *id, const char **seen, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(seen[i], id) == 0) {
			fail(c, "id", "duplicate id \"%s\"", id);
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

	if (enum_index(type, builtin_id_types, CM_NELEM(builtin_id_types)) >= 0)
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

	if ((a = get_typed(c, o, "identifier_types", JSON_ARRAY, false,
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
		fail(c, "identifier_types", "too many items (at most %d)",
		    CM_POLICY_MAX_ITEMS);
		return;
	}
	ch->ch_id_types = cm_calloc(json_array_size(a) + 1, sizeof(*ch->ch_id_types));
	path_push_key(c, "identifier_types");
	json_array_foreach(a, k, v) {
		path_push_index(c, k);
		if (!json_is_string(v)) {
			fail(c, NULL, "must be an identifier type id");
		} else if (!known_id_type(p, (s = json_string_value(v)))) {
			fail(c, NULL, "unknown identifier type \"%s\" (a built-in type "
			    "or one of identifier_types)", s);
		} else {
			for (j = 0; j < ch->ch_nid_types; j++)
				if (strcmp(ch->ch_id_types[j], s) == 0)
					fail(c, NULL, "identifier type \"%s\" is listed "
					    "twice", s);
			ch->ch_id_types[ch->ch_nid_types++] = s;
		}
		path_pop(c);
		if (c->failed)
			break;
	}
	path_pop(c);
}

static void
channel_cb(struct pctx *c, json_t *o, size_t i, void *arg)
{
	static const char *const keys[] = { "id", "title", "description",
	    "identifier_types", NULL };
	struct cm_policy *p = arg;
	const char *id;

	check_keys(c, o, keys);
	if ((id = get_id(c, o, "id")) == NULL)
		return;
	get_string(c, o, "title", true);
	get_string(c, o, "description", true);
	if (c->failed)
		return;
	if (i >= CM_POLICY_MAX_CHANNELS) {
		fail(c, NULL, "at most %d channels", CM_POLICY_MAX_CHANNELS);
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

	check_keys(c, o, keys);
	if ((id = get_id(c, o, "id")) == NULL)
		return;
	get_string(c, o, "title", true);
	if (c->failed)
		return;
	if (enum_index(id, builtin_id_types, CM_NELEM(builtin_id_types)) >= 0) {
		fail(c, "id", "\"%s\" is a built-in identifier type", id);
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
	check_keys(c, o, keys);
	get_string(c, o, "name", true);
	if ((role = get_string(c, o, "role", true)) != NULL &&
	    enum_index(role, recipient_roles, CM_NELEM(recipient_roles)) < 0)
		fail(c, "role", "unknown role \"%s\" (expected processor, controller "
		    "or joint_controller)", role);
	if ((country = get_string(c, o, "country", true)) != NULL &&
	    !valid_country(country))
		fail(c, "country", "must be an ISO 3166-1 alpha-2 code");
	if (get_string(c, o, "transfer_safeguards", false) != NULL || c->failed)
		return;
	/* Art. 30(1)(e): a transfer out of the home area names its safeguard. */
	if (!home_country(p->pol_jurisdiction, country))
		fail(c, "transfer_safeguards", "required for a recipient in %s, outside %s: "
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

	check_keys(c, o, keys);
	if ((pu->pu_id = get_id(c, o, "id")) == NULL)
		return;
	for (k = 0; k < i; k++)
		seen[k] = p->pol_purposes[k].pu_id;
	check_unique(c, pu->pu_id, seen, i);
	pu->pu_title = get_string(c, o, "title", true);
	get_string(c, o, "description", true);
	if ((basis = get_string(c, o, "lawful_basis", true)) == NULL)
		return;
	if ((b = enum_index(basis, basis_names, CM_NELEM(basis_names))) < 0) {
		fail(c, "lawful_basis", "unknown lawful basis \"%s\" (expected consent, "
		    "legitimate_interest, soft_opt_in, contract or legal_obligation)", basis);
		return;
	}
	pu->pu_basis = (enum cm_lawful_basis)b;
	if (get_string(c, o, "legitimate_interest", false) == NULL && !c->failed &&
	    (pu->pu_basis == CM_BASIS_LEGITIMATE_INTEREST ||
	    pu->pu_basis == CM_BASIS_SOFT_OPT_IN))
		fail(c, "legitimate_interest", "required for a purpose whose lawful "
		    "basis is %s: describe the interest pursued (Art. 13(1)(d))", basis);
	pu->pu_marketing = get_bool(c, o, "marketing", true, false);
	if (pu->pu_basis == CM_BASIS_SOFT_OPT_IN && !pu->pu_marketing && !c->failed)
		fail(c, "marketing", "soft opt-in applies only to direct marketing: "
		    "set marketing to true");
	if ((chans = get_typed(c, o, "channels", JSON_ARRAY, true, "an array")) != NULL) {
		path_push_key(c, "channels");
		json_array_foreach(chans, k, v) {
			path_push_index(c, k);
			if (!json_is_string(v))
				fail(c, NULL, "must be a channel id");
			else if ((ci = cm_policy_channel_index(p, json_string_value(v))) < 0)
				fail(c, NULL, "unknown channel \"%s\"", json_string_value(v));
			else if (pu->pu_channels & (UINT64_C(1) << ci))
				fail(c, NULL, "channel \"%s\" is listed twice",
				    json_string_value(v));
			else
				pu->pu_channels |= UINT64_C(1) << ci;
			path_pop(c);
			if (c->failed)
				break;
		}
		path_pop(c);
	}
	get_string_array(c, o, "data_categories", true, true);
	/* Art. 30(1)(c): whose data this is, here or as the policy's default. */
	if (get_string_array(c, o, "data_subject_categories", false, true) == NULL &&
	    !c->failed && json_object_get(p->pol_doc,
	    "default_data_subject_categories") == NULL)
		fail(c, "data_subject_categories", "required: name the categories of "
		    "data subjects (Art. 30(1)(c)), or set "
		    "default_data_subject_categories for every purpose");
	each_object(c, o, "recipients", true, 0, recipient_cb, p);
	if ((ret = get_typed(c, o, "retention", JSON_OBJECT, true, "an object")) != NULL) {
		path_push_key(c, "retention");
		check_keys(c, ret, ret_keys);
		get_int(c, ret, "days", true, 1, 36500, 0, &n);
		get_string(c, ret, "description", true);
		path_pop(c);
	}
	get_string(c, o, "source", true);
	get_string(c, o, "automated_decision_making", false);
	get_int(c, o, "version", true, 1, INT32_MAX, 1, &pu->pu_version);
	if (get_int(c, o, "min_valid_version", true, 1, INT32_MAX, 1,
	    &pu->pu_min_valid_version) && !c->failed &&
	    pu->pu_min_valid_version > pu->pu_version)
		fail(c, "min_valid_version", "%lld is greater than version %lld",
		    (long long)pu->pu_min_valid_version, (long long)pu->pu_version);
	pu->pu_gpc = get_bool(c, o, "gpc", false, false);
	if (get_int(c, o, "holdout_percent", false, 0, 50, 0, &n))
		pu->pu_holdout_percent = (int)n;
	if (pu->pu_holdout_percent > 0 && pu->pu_basis != CM_BASIS_CONSENT &&
	    pu->pu_basis != CM_BASIS_LEGITIMATE_INTEREST &&
	    pu->pu_basis != CM_BASIS_SOFT_OPT_IN && !c->failed)
		fail(c, "holdout_percent", "a holdout cannot withhold processing "
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

	check_keys(c, o, keys);
	if ((t->tp_id = get_id(c, o, "id")) == NULL)
		return;
	for (k = 0; k < i; k++)
		seen[k] = p->pol_topics[k].tp_id;
	check_unique(c, t->tp_id, seen, i);
	t->tp_title = get_string(c, o, "title", true);
	get_string(c, o, "description", true);
	if ((purpose = get_string(c, o, "purpose", true)) == NULL)
		return;
	if ((pi = cm_policy_purpose_index(p, purpose)) < 0) {
		fail(c, "purpose", "no purpose has the id \"%s\"", purpose);
		return;
	}
	if (p->pol_purposes[pi].pu_channels == 0)
		fail(c, "purpose", "purpose \"%s\" uses no channel, so it cannot be a "
		    "preference-centre topic", purpose);
	t->tp_purpose = (size_t)pi;
}

static void
check_retention(struct pctx *c, json_t *doc, struct cm_policy *p)
{
	static const char *const keys[] = { "closed_requests_days",
	    "service_records_days", NULL };
	json_t *o;

	if ((o = get_typed(c, doc, "retention", JSON_OBJECT, true, "an object")) == NULL)
		return;
	path_push_key(c, "retention");
	check_keys(c, o, keys);
	get_int(c, o, "closed_requests_days", true, 1, 36500, 0,
	    &p->pol_closed_requests_days);
	get_int(c, o, "service_records_days", true, 1, 36500, 0,
	    &p->pol_service_records_days);
	path_pop(c);
}

/*
 * Adds the defaults of optional fields to the public document, so that it
 * states every purpose's record in full.
 */
static void
fill_defaults(json_t *doc, const struct cm_policy *p)
{
	json_t *purposes, *pu, *dsc, *ch, *types;
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

static void
check_document(struct pctx *c, json_t *doc, struct cm_policy *p)
{
	static const char *const keys[] = { "policy_version", "language",
	    "privacy_notice_url", "jurisdiction", "controller",
	    "supervisory_authority", "gpc_last_update", "default_phone_region",
	    "default_data_subject_categories", "security_measures", "channels",
	    "identifier_types", "frequencies", "default_frequency", "purposes",
	    "topics", "retention", NULL };
	json_t *a, *v;
	const char *s, *def;
	size_t i, k;

	check_keys(c, doc, keys);
	get_string(c, doc, "policy_version", true);
	get_string(c, doc, "language", true);
	get_string(c, doc, "privacy_notice_url", true);
	if ((s = get_string(c, doc, "jurisdiction", true)) != NULL) {
		if (strcmp(s, "gdpr") == 0)
			p->pol_jurisdiction = CM_JUR_GDPR;
		else if (strcmp(s, "uk_gdpr") == 0)
			p->pol_jurisdiction = CM_JUR_UK_GDPR;
		else if (strcmp(s, "ccpa") == 0)
			p->pol_jurisdiction = CM_JUR_CCPA;
		else
			fail(c, "jurisdiction", "unknown jurisdiction \"%s\" (expected "
			    "gdpr, uk_gdpr or ccpa)", s);
	}
	check_controller(c, doc);
	check_authority(c, doc);
	if ((s = get_string(c, doc, "gpc_last_update", true)) != NULL) {
		if (!valid_date(s))
			fail(c, "gpc_last_update", "must be a date YYYY-MM-DD");
		p->pol_gpc_last_update = s;
	}
	if ((s = get_string(c, doc, "default_phone_region", false)) != NULL) {
		if (!valid_country(s))
			fail(c, "default_phone_region", "must be an ISO 3166-1 alpha-2 "
			    "code such as \"GB\"");
		p->pol_phone_region = s;
	}
	get_string_array(c, doc, "default_data_subject_categories", false, true);
	/* Art. 30(1)(g): a general description of the Art. 32 measures. */
	get_string_array(c, doc, "security_measures", true, true);
	if (c->failed)
		return;

	/* The policy's own identifier types first: channels may name them. */
	a = json_object_get(doc, "identifier_types");
	p->pol_nid_types = json_is_array(a) ? json_array_size(a) : 0;
	p->pol_id_types = cm_calloc(p->pol_nid_types + 1, sizeof(*p->pol_id_types));
	if (each_object(c, doc, "identifier_types", false, 0, idtype_cb, p) == NULL &&
	    c->failed)
		return;

	a = json_object_get(doc, "channels");
	p->pol_nchannels = json_is_array(a) ? json_array_size(a) : 0;
	if (p->pol_nchannels > CM_POLICY_MAX_CHANNELS) {
		fail(c, "channels", "at most %d channels", CM_POLICY_MAX_CHANNELS);
		return;
	}
	p->pol_channels = cm_calloc(p->pol_nchannels + 1, sizeof(*p->pol_channels));
	if (each_object(c, doc, "channels", true, 1, channel_cb, p) == NULL)
		return;
	for (i = 0; i < CM_NELEM(required_channels); i++)
		if (cm_policy_channel_index(p, required_channels[i]) < 0) {
			fail(c, "channels", "the channel \"%s\" is required",
			    required_channels[i]);
			return;
		}

	if ((a = get_string_array(c, doc, "frequencies", true, true)) != NULL) {
		p->pol_nfrequencies = json_array_size(a);
		p->pol_frequencies = cm_calloc(p->pol_nfrequencies + 1,
		    sizeof(*p->pol_frequencies));
		path_push_key(c, "frequencies");
		json_array_foreach(a, i, v) {
			s = json_string_value(v);
			path_push_index(c, i);
			if (!valid_id(s))
				fail(c, NULL, "\"%s\" is not a valid id", s);
			for (k = 0; k < i && !c->failed; k++)
				if (strcmp(p->pol_frequencies[k], s) == 0)
					fail(c, NULL, "duplicate frequency \"%s\"", s);
			path_pop(c);
			p->pol_frequencies[i] = s;
		}
		path_pop(c);
	}
	if ((def = get_string(c, doc, "default_frequency", true)) != NULL &&
	    cm_policy_frequency_index(p, def) < 0)
		fail(c, "default_frequency", "\"%s\" is not one of the frequencies", def);
	if (c->failed)
		return;

	a = json_object_get(doc, "purposes");
	p->pol_npurposes = json_is_array(a) ? json_array_size(a) : 0;
	p->pol_purposes = cm_calloc(p->pol_npurposes + 1, sizeof(*p->pol_purposes));
	if (each_object(c, doc, "purposes", true, 1, purpose_cb, p) == NULL)
		return;
	a = json_object_get(doc, "topics");
	p->pol_ntopics = json_is_array(a) ? json_array_size(a) : 0;
	p->pol_topics = cm_calloc(p->pol_ntopics + 1, sizeof(*p->pol_topics));
	if (each_object(c, doc, "topics", true, 0, topic_cb, p) == NULL)
		return;
	check_retention(c, doc, p);
}

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

cm_result
cm_policy_parse(const char *file, const char *text, size_t len,
    struct cm_policy **out, char *err, size_t errlen)
{
	struct cm_policy *p;
	struct pctx c;
	json_error_t je;
	json_t *doc;
	char *pub;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.file = file;
	c.text = text;
	c.len = len;
	c.err = err;
	c.errlen = errlen;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		snprintf(err, errlen, "%s:%d: (document): %s", file, je.line, je.text);
		return CM_INVALID;
	}
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "%s:%d: (document): must be a JSON object", file,
		    loc_line(text, loc_ws(text, len, 0)));
		json_decref(doc);
		return CM_INVALID;
	}
	p = cm_calloc(1, sizeof(*p));
	p->pol_doc = doc;
	p->pol_file = cm_strdup(file);
	p->pol_text = cm_strndup(text, len);
	p->pol_text_len = len;
	check_document(&c, doc, p);
	if (c.failed) {
		cm_policy_free(p);
		return CM_INVALID;
	}
	fill_defaults(doc, p);
	pub = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (pub == NULL) {
		snprintf(err, errlen, "%s: cannot encode the policy", file);
		cm_policy_free(p);
		return CM_IOERR;
	}
	p->pol_public = pub;
	p->pol_public_len = strlen(pub);
	*out = p;
	return CM_OK;
}

cm_result
cm_policy_load(const char *path, struct cm_policy **out, char *err, size_t errlen)
{
	struct stat st;
	char file[4096], *text;
	size_t len;
	cm_result rc;
	int n;

	*out = NULL;
	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return CM_NOTFOUND;
	}
	if (S_ISDIR(st.st_mode))
		n = snprintf(file, sizeof(file), "%s/%s", path, CM_POLICY_FILE);
	else
		n = snprintf(file, sizeof(file), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(file)) {
		snprintf(err, errlen, "policy path too long");
		return CM_INVALID;
	}
	if ((text = cm_file_read(file, CM_POLICY_MAX_BYTES, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", file, errno == EFBIG ?
		    "larger than 1 MiB" : strerror(errno));
		return errno == ENOENT ? CM_NOTFOUND : CM_IOERR;
	}
	rc = cm_policy_parse(file, text, len, out, err, errlen);
	free(text);
	return rc;
}

void
cm_policy_free(struct cm_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	json_decref(p->pol_doc);
	free(p->pol_public);
	free(p->pol_file);
	free(p->pol_text);
	for (i = 0; p->pol_channels != NULL && i < p->pol_nchannels; i++)
		free(p->pol_channels[i].ch_id_types);
	free(p->pol_channels);
	free(p->pol_purposes);
	free(p->pol_topics);
	free(p->pol_frequencies);
	free(p->pol_id_types);
	free(p);
}
