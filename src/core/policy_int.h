/* SPDX-License-Identifier: ISC */
/*
 * Internals of policy loading shared by policy.c, policy_field.c (finding
 * a field in the source text, errors as FILE:LINE: FIELD: message, typed
 * field access) and policy_schema.c (the schema). Only these include it.
 */
#ifndef CONSENTD_CORE_POLICY_INT_H
#define CONSENTD_CORE_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/policy.h"

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

/* ---- the source text (policy_field.c) ---------------------------------- */

/* Index of the first non-blank character of T (LEN bytes) at or after I. */
size_t	pc_loc_ws(const char *t, size_t len, size_t i);
/* The 1-based line of offset OFF in T. */
int	pc_loc_line(const char *t, size_t off);

/* ---- the path of the field being checked, and errors ------------------- */

void	pc_path_push_key(struct pctx *, const char *key);
void	pc_path_push_index(struct pctx *, size_t i);
void	pc_path_pop(struct pctx *);
/*
 * Records the first error: "FILE:LINE: FIELD: message". FIELD is the
 * current path plus KEY when KEY is not NULL.
 */
void	pc_fail(struct pctx *, const char *key, const char *fmt, ...) CM_PRINTF(3, 4);

/* ---- typed field access: each fails (pc_fail) and returns NULL/false ---- */

/* Fails on any member of OBJ not named in ALLOWED (NULL-terminated). */
void	pc_check_keys(struct pctx *, json_t *obj, const char *const *allowed);
/* An id: 1 to 64 of [a-z0-9_], starting with a letter. */
bool	pc_valid_id(const char *s);
/* OBJ's member KEY of TYPE (WHAT names it in the error); NULL if absent. */
json_t	*pc_get_typed(struct pctx *, json_t *obj, const char *key, json_type type,
	    bool required, const char *what);
const char *pc_get_string(struct pctx *, json_t *obj, const char *key, bool required);
/* A string member that must be a valid id. */
const char *pc_get_id(struct pctx *, json_t *obj, const char *key);
/* An integer member in [MIN, MAX] into *OUT (DEF when absent and optional). */
bool	pc_get_int(struct pctx *, json_t *obj, const char *key, bool required,
	    int64_t min, int64_t max, int64_t def, int64_t *out);
bool	pc_get_bool(struct pctx *, json_t *obj, const char *key, bool required, bool def);
/* Index of S in NAMES (N of them), or -1. */
int	pc_enum_index(const char *s, const char *const *names, size_t n);
/* A calendar date YYYY-MM-DD. */
bool	pc_valid_date(const char *s);
/* An array of strings (NONEMPTY: at least one). */
json_t	*pc_get_string_array(struct pctx *, json_t *obj, const char *key, bool required,
	    bool nonempty);
/*
 * Checks PARENT's member KEY is an array of MIN to CM_POLICY_MAX_ITEMS
 * objects and calls FN(c, object, index, ARG) for each with its path
 * pushed; returns the array, or NULL when absent or failed.
 */
json_t	*pc_each_object(struct pctx *, json_t *parent, const char *key, bool required,
	    size_t min, void (*fn)(struct pctx *, json_t *, size_t, void *), void *arg);

/* ---- the schema (policy_schema.c) --------------------------------------- */

/* Checks the whole document, filling P; the first error is kept in C. */
void	pc_check_document(struct pctx *, json_t *doc, struct cm_policy *p);
/*
 * Adds the defaults of optional fields to the public document, so that it
 * states every purpose's record in full.
 */
void	pc_fill_defaults(json_t *doc, const struct cm_policy *p);

#endif
