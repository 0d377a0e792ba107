/* SPDX-License-Identifier: ISC */
/*
 * Scope names and their bits, parsed from and written to the
 * comma-separated lists used on the command line and in 'token list', and
 * the one rule of inclusion between scopes.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/scope.h"

static const struct {
	const char	*name;
	uint32_t	 bit;
} scopes[] = {
	{ "consent:check",	CM_SCOPE_CONSENT_CHECK },
	{ "consent:read",	CM_SCOPE_CONSENT_READ },
	{ "consent:write",	CM_SCOPE_CONSENT_WRITE },
	{ "subjects:read",	CM_SCOPE_SUBJECTS_READ },
	{ "subjects:write",	CM_SCOPE_SUBJECTS_WRITE },
	{ "dsr:admin",		CM_SCOPE_DSR_ADMIN },
	{ "audit:read",		CM_SCOPE_AUDIT_READ },
	{ "admin",		CM_SCOPE_ADMIN },
};

bool
cm_scope_allows(uint32_t have, uint32_t need)
{
	if (have & CM_SCOPE_CONSENT_READ)
		have |= CM_SCOPE_CONSENT_CHECK;
	return (have & need) != 0;
}

const char *
cm_scope_name(uint32_t bit)
{
	size_t i;

	for (i = 0; i < CM_NELEM(scopes); i++)
		if (scopes[i].bit == bit)
			return scopes[i].name;
	return NULL;
}

int
cm_scope_parse(const char *list, uint32_t *out, char *bad, size_t badlen)
{
	const char *p, *end;
	size_t len, i;

	*out = 0;
	if (list == NULL || *list == '\0') {
		snprintf(bad, badlen, "(empty)");
		return -1;
	}
	for (p = list; ; p = end + 1) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < CM_NELEM(scopes); i++)
			if (strlen(scopes[i].name) == len &&
			    memcmp(scopes[i].name, p, len) == 0)
				break;
		if (i == CM_NELEM(scopes)) {
			snprintf(bad, badlen, "%.*s", (int)(len > 64 ? 64 : len), p);
			return -1;
		}
		*out |= scopes[i].bit;
		if (end == NULL)
			break;
	}
	return 0;
}

void
cm_scope_format(uint32_t mask, char *out, size_t outlen)
{
	size_t i, o = 0;
	int n;

	out[0] = '\0';
	for (i = 0; i < CM_NELEM(scopes); i++) {
		if (!(mask & scopes[i].bit))
			continue;
		n = snprintf(out + o, outlen - o, "%s%s", o ? "," : "", scopes[i].name);
		if (n < 0 || (size_t)n >= outlen - o)
			return;
		o += (size_t)n;
	}
}

json_t *
cm_scope_json(uint32_t mask)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < CM_NELEM(scopes); i++)
		if (mask & scopes[i].bit)
			json_array_append_new(a, json_string(scopes[i].name));
	return a;
}
