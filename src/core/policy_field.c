/* SPDX-License-Identifier: ISC */
/*
 * Reading the policy document: jansson keeps no source positions, so the
 * line of a failing field is found by walking the already-validated text
 * along the field's path (cm_policy_line() does the same for checks made
 * after loading); errors read "FILE:LINE: FIELD: message" and only the
 * first is kept; typed access to members checks type, presence and range.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/policy.h"
#include "consentd/util.h"
#include "policy_int.h"

/* ---- locating a path in the source text -------------------------------- */

size_t
pc_loc_ws(const char *t, size_t len, size_t i)
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

	i = pc_loc_ws(t, len, 0);
	for (k = 0; k < (size_t)n; k++) {
		if (i >= len)
			return len;
		if (path[k].pe_key != NULL && t[i] == '{') {
			size_t start = i;

			klen = strlen(path[k].pe_key);
			for (i++;;) {
				i = pc_loc_ws(t, len, i);
				if (i >= len || t[i] != '"')
					return start;
				size_t ks = i + 1, ke = loc_string(t, len, i) - 1;
				i = pc_loc_ws(t, len, ke + 1);
				if (i >= len || t[i] != ':')
					return start;
				i = pc_loc_ws(t, len, i + 1);
				if (ke - ks == klen && memcmp(t + ks, path[k].pe_key, klen) == 0)
					break;
				i = pc_loc_ws(t, len, loc_skip(t, len, i));
				if (i >= len || t[i] != ',')
					return start;
				i++;
			}
		} else if (path[k].pe_key == NULL && t[i] == '[') {
			size_t start = i;

			i = pc_loc_ws(t, len, i + 1);
			for (idx = 0; idx < path[k].pe_index; idx++) {
				i = pc_loc_ws(t, len, loc_skip(t, len, i));
				if (i >= len || t[i] != ',')
					return start;
				i = pc_loc_ws(t, len, i + 1);
			}
		} else {
			return i;
		}
	}
	return i;
}

int
pc_loc_line(const char *t, size_t off)
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
	return pc_loc_line(p->pol_text, loc_find(p->pol_text, p->pol_text_len, path, n));
}

/* ---- errors ------------------------------------------------------------ */

void
pc_path_push_key(struct pctx *c, const char *key)
{
	if (c->depth < PATH_MAX_DEPTH) {
		c->path[c->depth].pe_key = key;
		c->path[c->depth].pe_index = 0;
	}
	c->depth++;
}

void
pc_path_push_index(struct pctx *c, size_t i)
{
	if (c->depth < PATH_MAX_DEPTH) {
		c->path[c->depth].pe_key = NULL;
		c->path[c->depth].pe_index = i;
	}
	c->depth++;
}

void
pc_path_pop(struct pctx *c)
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
void CM_PRINTF(3, 4)
pc_fail(struct pctx *c, const char *key, const char *fmt, ...)
{
	char field[256], msg[512];
	size_t off;
	va_list ap;
	int depth;

	if (c->failed)
		return;
	c->failed = true;
	if (key != NULL)
		pc_path_push_key(c, key);
	depth = c->depth < PATH_MAX_DEPTH ? c->depth : PATH_MAX_DEPTH;
	off = loc_find(c->text, c->len, c->path, depth);
	path_format(c, field, sizeof(field));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file, pc_loc_line(c->text, off),
	    field, msg);
	if (key != NULL)
		pc_path_pop(c);
}

/* ---- typed field access ------------------------------------------------ */

/* Fails on any member of OBJ not named in ALLOWED (NULL-terminated). */
void
pc_check_keys(struct pctx *c, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		(void)v;
		if (cm_strv_index(allowed, key) < 0) {
			pc_fail(c, key, "unknown field");
			return;
		}
	}
}

bool
pc_valid_id(const char *s)
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

json_t *
pc_get_typed(struct pctx *c, json_t *obj, const char *key, json_type type,
    bool required, const char *what)
{
	json_t *v;

	if (c->failed)
		return NULL;
	if ((v = json_object_get(obj, key)) == NULL) {
		if (required)
			pc_fail(c, key, "required field is missing");
		return NULL;
	}
	if (json_typeof(v) != type &&
	    !(type == JSON_TRUE && json_is_boolean(v))) {
		pc_fail(c, key, "must be %s", what);
		return NULL;
	}
	return v;
}

const char *
pc_get_string(struct pctx *c, json_t *obj, const char *key, bool required)
{
	json_t *v;
	const char *s;

	if ((v = pc_get_typed(c, obj, key, JSON_STRING, required, "a string")) == NULL)
		return NULL;
	s = json_string_value(v);
	if (s[0] == '\0' || strlen(s) != json_string_length(v)) {
		pc_fail(c, key, "must be a non-empty string without NUL characters");
		return NULL;
	}
	return s;
}

const char *
pc_get_id(struct pctx *c, json_t *obj, const char *key)
{
	const char *s;

	if ((s = pc_get_string(c, obj, key, true)) != NULL && !pc_valid_id(s)) {
		pc_fail(c, key, "\"%s\" is not a valid id (a-z first, then a-z, 0-9, _; "
		    "at most 64)", s);
		return NULL;
	}
	return s;
}

bool
pc_get_int(struct pctx *c, json_t *obj, const char *key, bool required,
    int64_t min, int64_t max, int64_t def, int64_t *out)
{
	json_t *v;

	*out = def;
	if ((v = pc_get_typed(c, obj, key, JSON_INTEGER, required, "an integer")) == NULL)
		return !c->failed;
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		pc_fail(c, key, "must be between %lld and %lld", (long long)min,
		    (long long)max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

bool
pc_get_bool(struct pctx *c, json_t *obj, const char *key, bool required, bool def)
{
	json_t *v;

	if ((v = pc_get_typed(c, obj, key, JSON_TRUE, required, "true or false")) == NULL)
		return def;
	return json_is_true(v);
}

int
pc_enum_index(const char *s, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

bool
pc_valid_date(const char *s)
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
json_t *
pc_get_string_array(struct pctx *c, json_t *obj, const char *key, bool required,
    bool nonempty)
{
	json_t *a, *v;
	size_t i;

	if ((a = pc_get_typed(c, obj, key, JSON_ARRAY, required, "an array")) == NULL)
		return NULL;
	if (nonempty && json_array_size(a) == 0) {
		pc_fail(c, key, "must not be empty");
		return NULL;
	}
	if (json_array_size(a) > CM_POLICY_MAX_ITEMS) {
		pc_fail(c, key, "too many items (at most %d)", CM_POLICY_MAX_ITEMS);
		return NULL;
	}
	pc_path_push_key(c, key);
	json_array_foreach(a, i, v) {
		pc_path_push_index(c, i);
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 256)
			pc_fail(c, NULL, "must be a non-empty string of at most 256 bytes");
		pc_path_pop(c);
	}
	pc_path_pop(c);
	return c->failed ? NULL : a;
}

/* Walks an array of objects: calls FN(c, obj, index, arg) for each. */
json_t *
pc_each_object(struct pctx *c, json_t *parent, const char *key, bool required,
    size_t min, void (*fn)(struct pctx *, json_t *, size_t, void *), void *arg)
{
	json_t *a, *v;
	size_t i;

	if ((a = pc_get_typed(c, parent, key, JSON_ARRAY, required, "an array")) == NULL)
		return NULL;
	if (json_array_size(a) < min) {
		pc_fail(c, key, "must hold at least %zu item%s", min, min == 1 ? "" : "s");
		return NULL;
	}
	if (json_array_size(a) > CM_POLICY_MAX_ITEMS) {
		pc_fail(c, key, "too many items (at most %d)", CM_POLICY_MAX_ITEMS);
		return NULL;
	}
	pc_path_push_key(c, key);
	json_array_foreach(a, i, v) {
		if (c->failed)
			break;
		pc_path_push_index(c, i);
		if (!json_is_object(v))
			pc_fail(c, NULL, "must be an object");
		else
			fn(c, v, i, arg);
		pc_path_pop(c);
	}
	pc_path_pop(c);
	return c->failed ? NULL : a;
}
