/* SPDX-License-Identifier: ISC */
/*
 * String interning: each distinct string gets a dense id, in the order
 * first seen, so callers can keep arrays indexed by it instead of maps of
 * strings. Open addressing with linear probing over a power-of-two slot
 * array kept at most half full; the strings live back to back in one
 * arena. Each slot keeps the string's hash beside its id, so a probe
 * touches the arena only for a string that very likely is the one sought:
 * with a million keys, the slot, the offset and the string are three
 * cache misses, and this saves the last two on every collision. The hash
 * reads eight bytes at a time; it need not resist crafted keys, since the
 * keys (pseudonyms, audit tags, subject ids) are random.
 *
 * The log and the event table come in write order, so one subject's entries
 * mostly follow each other: the id last found is tried first, one compare
 * in cache instead of those misses.
 */
#include <stdlib.h>
#include <string.h>

#include "consentd/util.h"

static uint32_t
intern_hash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15u ^ len, w;

	while (len >= 8) {
		memcpy(&w, s, 8);
		h = (((h << 5) | (h >> 59)) ^ w) * 0x517cc1b727220a95u;
		s += 8;
		len -= 8;
	}
	if (len > 0) {
		w = 0;
		memcpy(&w, s, len);
		h = (((h << 5) | (h >> 59)) ^ w) * 0x517cc1b727220a95u;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9u;
	return (uint32_t)(h >> 32);
}

static void
intern_grow(struct cm_intern *t)
{
	uint32_t nslots = t->in_nslots ? t->in_nslots * 2 : 1024, i, j;
	uint64_t *slot = cm_calloc_large(nslots, sizeof(*slot));

	for (i = 0; i < t->in_nslots; i++) {
		if (t->in_slot[i] == 0)
			continue;
		j = (uint32_t)(t->in_slot[i] >> 32) & (nslots - 1);
		while (slot[j] != 0)
			j = (j + 1) & (nslots - 1);
		slot[j] = t->in_slot[i];
	}
	free(t->in_slot);
	t->in_slot = slot;
	t->in_nslots = nslots;
}

uint32_t
cm_intern(struct cm_intern *t, const char *s, bool add)
{
	size_t len;
	uint32_t j, id, h;
	uint64_t v;

	if (t->in_last != 0 && strcmp(t->in_arena + t->in_off[t->in_last - 1], s) == 0)
		return t->in_last - 1;
	len = strlen(s) + 1;
	h = intern_hash(s, len - 1);
	if (t->in_nslots == 0) {
		if (!add)
			return CM_INTERN_NONE;
		intern_grow(t);
	}
	j = h & (t->in_nslots - 1);
	while ((v = t->in_slot[j]) != 0) {
		id = (uint32_t)v - 1;
		if ((uint32_t)(v >> 32) == h && strcmp(t->in_arena + t->in_off[id], s) == 0) {
			t->in_last = id + 1;
			return id;
		}
		j = (j + 1) & (t->in_nslots - 1);
	}
	if (!add || t->in_n == CM_INTERN_NONE - 1)
		return CM_INTERN_NONE;
	if (t->in_used + len > t->in_cap) {
		t->in_cap = t->in_cap ? t->in_cap * 2 : 65536;
		while (t->in_used + len > t->in_cap)
			t->in_cap *= 2;
		t->in_arena = cm_reallocarray_large(t->in_arena, t->in_cap, 1);
	}
	if (t->in_n == t->in_ncap) {
		t->in_ncap = t->in_ncap ? t->in_ncap * 2 : 1024;
		t->in_off = cm_reallocarray_large(t->in_off, t->in_ncap, sizeof(*t->in_off));
	}
	memcpy(t->in_arena + t->in_used, s, len);
	t->in_off[t->in_n] = t->in_used;
	t->in_used += len;
	id = t->in_n++;
	t->in_slot[j] = ((uint64_t)h << 32) | (id + 1);
	t->in_last = id + 1;
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
