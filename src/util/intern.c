/* SPDX-License-Identifier: ISC */
/*
 * String interning: each distinct string gets a dense id, in the order
 * first seen, so callers can keep arrays indexed by it instead of maps of
 * strings. Open addressing with linear probing over a power-of-two slot
 * array kept at most half full; the strings live back to back in one
 * arena. FNV-1a is enough: the keys (pseudonyms, audit tags) are random.
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"

static uint32_t
intern_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0') {
		h ^= (uint8_t)*s++;
		h *= 16777619u;
	}
	return h;
}

static void
intern_grow(struct cm_intern *t)
{
	uint32_t nslots = t->in_nslots ? t->in_nslots * 2 : 1024, i, j;
	uint32_t *slot = cm_calloc(nslots, sizeof(*slot));

	for (i = 0; i < t->in_n; i++) {
		j = intern_hash(t->in_arena + t->in_off[i]) & (nslots - 1);
		while (slot[j] != 0)
			j = (j + 1) & (nslots - 1);
		slot[j] = i + 1;
	}
	free(t->in_slot);
	t->in_slot = slot;
	t->in_nslots = nslots;
}

uint32_t
cm_intern(struct cm_intern *t, const char *s, bool add)
{
	size_t len = strlen(s) + 1;
	uint32_t j, id;

	if (t->in_nslots == 0) {
		if (!add)
			return CM_INTERN_NONE;
		intern_grow(t);
	}
	j = intern_hash(s) & (t->in_nslots - 1);
	while ((id = t->in_slot[j]) != 0) {
		if (strcmp(t->in_arena + t->in_off[id - 1], s) == 0)
			return id - 1;
		j = (j + 1) & (t->in_nslots - 1);
	}
	if (!add || t->in_n == CM_INTERN_NONE - 1)
		return CM_INTERN_NONE;
	if (t->in_used + len > t->in_cap) {
		t->in_cap = t->in_cap ? t->in_cap * 2 : 65536;
		while (t->in_used + len > t->in_cap)
			t->in_cap *= 2;
		t->in_arena = cm_realloc(t->in_arena, t->in_cap);
	}
	if (t->in_n == t->in_ncap) {
		t->in_ncap = t->in_ncap ? t->in_ncap * 2 : 1024;
		t->in_off = cm_reallocarray(t->in_off, t->in_ncap, sizeof(*t->in_off));
	}
	memcpy(t->in_arena + t->in_used, s, len);
	t->in_off[t->in_n] = t->in_used;
	t->in_used += len;
	id = t->in_n++;
	t->in_slot[j] = id + 1;
	if (t->in_n * 2 > t->in_nslots)
		intern_grow(t);
	return id;
}

const char *
cm_intern_str(const struct cm_intern *t, uint32_t id)
{
	return id < t->in_n ? t->in_arena + t->in_off[id] : NULL;
}

void
cm_intern_free(struct cm_intern *t)
{
	if (t == NULL)
		return;
	free(t->in_arena);
	free(t->in_off);
	free(t->in_slot);
	memset(t, 0, sizeof(*t));
}
