/* SPDX-License-Identifier: ISC */
/*
 * A small router: method + path pattern → handler. Patterns are split into
 * segments once; a segment is a literal or a {param}. A path matches the
 * most specific pattern (literals beat parameters, leftmost first), then
 * the method is looked up among that pattern's routes, so a known path
 * with an unknown method answers 405 with Allow. Parameters are
 * percent-decoded per segment, so an encoded "/" stays inside its value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/http.h"

#define ROUTE_MAX_SEGS	8

struct route_pat {
	const struct cm_route	*rp_route;
	size_t			 rp_nsegs;
	const char		*rp_seg[ROUTE_MAX_SEGS];	/* NULL: {param} */
	size_t			 rp_seglen[ROUTE_MAX_SEGS];
	unsigned		 rp_literals;	/* bit (7 - i): segment i is literal */
};

struct cm_router {
	struct route_pat	*rt_pats;
	size_t			 rt_n;
};

static int
pattern_split(const char *pattern, struct route_pat *rp)
{
	const char *p = pattern, *end;
	size_t len, params = 0;

	if (*p != '/')
		return -1;
	rp->rp_nsegs = 0;
	rp->rp_literals = 0;
	while (*p == '/') {
		p++;
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || rp->rp_nsegs == ROUTE_MAX_SEGS)
			return -1;
		if (p[0] == '{') {
			if (len < 3 || p[len - 1] != '}' ||
			    ++params > CM_ROUTE_MAX_PARAMS)
				return -1;
			rp->rp_seg[rp->rp_nsegs] = NULL;
		} else {
			if (memchr(p, '{', len) != NULL || memchr(p, '}', len) != NULL)
				return -1;
			rp->rp_seg[rp->rp_nsegs] = p;
			rp->rp_literals |= 1u << (ROUTE_MAX_SEGS - 1 - rp->rp_nsegs);
		}
		rp->rp_seglen[rp->rp_nsegs] = len;
		rp->rp_nsegs++;
		p += len;
	}
	return *p == '\0' ? 0 : -1;
}

/* True when A and B are one pattern: equal literals, parameters anywhere alike. */
static bool
pat_same(const struct route_pat *a, const struct route_pat *b)
{
	size_t i;

	if (a->rp_nsegs != b->rp_nsegs || a->rp_literals != b->rp_literals)
		return false;
	for (i = 0; i < a->rp_nsegs; i++)
		if (a->rp_seg[i] != NULL && (a->rp_seglen[i] != b->rp_seglen[i] ||
		    memcmp(a->rp_seg[i], b->rp_seg[i], a->rp_seglen[i]) != 0))
			return false;
	return true;
}

struct cm_router *
cm_router_new(const struct cm_route *routes, size_t n, char *err, size_t errlen)
{
	struct cm_router *r;
	size_t i, j;

	r = cm_calloc(1, sizeof(*r));
	r->rt_pats = cm_calloc(n, sizeof(*r->rt_pats));
	r->rt_n = n;
	for (i = 0; i < n; i++) {
		r->rt_pats[i].rp_route = &routes[i];
		if (pattern_split(routes[i].r_pattern, &r->rt_pats[i]) == -1) {
			snprintf(err, errlen, "bad route pattern %s", routes[i].r_pattern);
			goto fail;
		}
		for (j = 0; j < i; j++)
			if (strcmp(routes[j].r_method, routes[i].r_method) == 0 &&
			    pat_same(&r->rt_pats[j], &r->rt_pats[i])) {
				snprintf(err, errlen, "duplicate route %s %s",
				    routes[i].r_method, routes[i].r_pattern);
				goto fail;
			}
	}
	return r;
fail:
	cm_router_free(r);
	return NULL;
}

void
cm_router_free(struct cm_router *r)
{
	if (r == NULL)
		return;
	free(r->rt_pats);
	free(r);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
cm_percent_decode(const char *s, size_t len)
{
	char *out;
	size_t i, o = 0;
	int hi, lo;

	out = cm_malloc(len + 1);
	for (i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (i + 2 >= len)
				goto bad;
			if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				goto bad;
			out[o] = (char)(hi << 4 | lo);
			if (out[o] == '\0')
				goto bad;
			o++;
			i += 2;
		} else if (s[i] == '\0') {
			goto bad;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Splits PATH into segments; returns the count or -1 when malformed. */
static int
path_split(const char *path, const char **seg, size_t *seglen)
{
	const char *p = path, *end;
	size_t n = 0, len;

	if (*p != '/')
		return -1;
	while (*p == '/') {
		p++;
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || n == ROUTE_MAX_SEGS)
			return -1;
		seg[n] = p;
		seglen[n] = len;
		n++;
		p += len;
	}
	return (int)n;
}

static bool
pat_matches(const struct route_pat *rp, const char **seg, const size_t *seglen,
    size_t n)
{
	size_t i;

	if (rp->rp_nsegs != n)
		return false;
	for (i = 0; i < n; i++)
		if (rp->rp_seg[i] != NULL && (rp->rp_seglen[i] != seglen[i] ||
		    memcmp(rp->rp_seg[i], seg[i], seglen[i]) != 0))
			return false;
	return true;
}

enum cm_match
cm_router_match(const struct cm_router *r, const char *method, const char *path,
    const struct cm_route **route, size_t *index, char **params, size_t *nparams,
    char *allow, size_t allowlen)
{
	const char *seg[ROUTE_MAX_SEGS];
	size_t seglen[ROUTE_MAX_SEGS], i, k, o = 0;
	const struct route_pat *best = NULL, *hit = NULL;
	int n, w;

	*nparams = 0;
	if (allowlen > 0)
		allow[0] = '\0';
	if ((n = path_split(path, seg, seglen)) <= 0)
		return CM_MATCH_NO_PATH;
	for (i = 0; i < r->rt_n; i++) {
		const struct route_pat *rp = &r->rt_pats[i];

		if (!pat_matches(rp, seg, seglen, (size_t)n))
			continue;
		if (best == NULL || rp->rp_literals > best->rp_literals)
			best = rp;
	}
	if (best == NULL)
		return CM_MATCH_NO_PATH;
	/* Among the routes with the winning pattern, find the method. */
	for (i = 0; i < r->rt_n; i++) {
		const struct route_pat *rp = &r->rt_pats[i];

		if (!pat_same(rp, best))
			continue;
		if (strcmp(rp->rp_route->r_method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 &&
		    strcmp(rp->rp_route->r_method, "GET") == 0)) {
			hit = rp;
			*index = i;
			break;
		}
		w = snprintf(allow + o, allowlen > o ? allowlen - o : 0, "%s%s",
		    o ? ", " : "", rp->rp_route->r_method);
		if (w > 0 && (size_t)w < allowlen - o)
			o += (size_t)w;
		else if (o < allowlen)
			allow[o] = '\0';	/* never leave half a method */
	}
	if (hit == NULL)
		return CM_MATCH_NO_METHOD;
	for (k = 0; k < (size_t)n; k++) {
		if (hit->rp_seg[k] != NULL)
			continue;
		if ((params[*nparams] = cm_percent_decode(seg[k], seglen[k])) == NULL) {
			for (i = 0; i < *nparams; i++)
				free(params[i]);
			*nparams = 0;
			return CM_MATCH_BAD_PATH;
		}
		if (++*nparams == CM_ROUTE_MAX_PARAMS)
			break;
	}
	*route = hit->rp_route;
	return CM_MATCH_OK;
}
