/* SPDX-License-Identifier: ISC */
/*
 * Internals of src/audit/: the replay of the log that `audit verify`
 * compares the state tables with (state.c) and the comparison
 * (state_cmp.c). Only files in src/audit/ include this header.
 */
#ifndef CONSENTD_AUDIT_STATE_H
#define CONSENTD_AUDIT_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct cm_db;
struct cm_keys;
struct cm_state_replay;

/* A replay keyed by KEYS (the audit tags are keyed); free it with the below. */
struct cm_state_replay *cm_state_replay_new(const struct cm_keys *);
void	cm_state_replay_free(struct cm_state_replay *);
/* Room for ENTRIES consent events at once (cm_state_cmp_expect() calls it). */
void	cm_state_replay_expect(struct cm_state_replay *, uint64_t entries);

/* What one entry says of the state, extracted where it was parsed. */
enum cm_state_kind {
	SF_NONE, SF_CONSENT, SF_CREATED, SF_RESTRICTED, SF_UNRESTRICTED, SF_MERGED,
	SF_OBJECTED, SF_PREFS, SF_SUPP_ADDED, SF_SUPP_LIFTED, SF_UNLINKED, SF_JSON
};

struct cm_state_fact {
	enum cm_state_kind	 sf_kind;
	char			 sf_psn[40];	/* the entry's subject pseudonym */
	char			 sf_other[40];	/* merged pseudonym, tag or frequency */
	char			 sf_reason[16];
	int64_t			 sf_num;	/* since, objected_at or paused_until */
	uint8_t			 sf_digest[16];	/* a consent event's fields */
	uint8_t			 sf_mask;	/* which optional fields it carried */
	int64_t			 sf_collected;	/* those fields, as sf_mask says */
	bool			 sf_sale_ref;
	bool			 sf_superseded;
	bool			 sf_legacy;	/* written before the log carried them */
	json_t			*sf_json;	/* SF_JSON: the whole entry */
};

/*
 * Extracts from a parsed ENTRY what it says of the state into F (SF_NONE
 * when nothing). Safe on any thread; F keeps a reference to ENTRY only for
 * the rare kinds it keeps whole. Release F with cm_state_fact_clear().
 */
void	cm_state_extract(json_t *entry, struct cm_state_fact *f);
/*
 * The same from the fields either parser read of an entry (entry_fields.h).
 * Returns false, with F empty, for the kinds kept whole, which only
 * cm_state_extract() can give.
 */
struct cm_entry_fields;
bool	cm_state_extract_fields(const struct cm_entry_fields *, struct cm_state_fact *f);
/* The fields of an entry jansson parsed (the fast path's, the slow way). */
void	cm_entry_fields_json(const json_t *entry, struct cm_entry_fields *);
void	cm_state_fact_clear(struct cm_state_fact *f);

/* Applies what entry IDX said; call in index order. */
void	cm_state_apply(struct cm_state_replay *, uint64_t idx, const struct cm_state_fact *);

/* The comparison of the state tables with a replay; free with the below. */
struct vs_cmp;
struct vs_cmp *cm_state_cmp_new(struct cm_state_replay *);
void	cm_state_cmp_free(struct vs_cmp *);
/*
 * Sizes the comparison's tables and the replay's event list for a log of
 * ENTRIES entries (about the number of events and current rows of an
 * untampered store, and capped), so that they are not grown and copied
 * again and again while read; they still grow past it. Optional; before
 * cm_state_collect() and before the replay is fed.
 */
void	cm_state_cmp_expect(struct vs_cmp *, uint64_t entries);
/*
 * Reads what the comparison needs nothing of the replay for, from DB:
 * safe on another thread while the replay is still fed, given a DB that
 * sees the same state as the one passed to cm_state_compare() (see
 * cm_db_read_begin_twin()). Optional: the comparison does it otherwise.
 */
cm_result cm_state_collect(struct vs_cmp *, struct cm_db *) CM_WUR;
/*
 * Compares every state table of DB with the replay, now complete, writing
 * one line per table (and per failure, up to a limit) to OUT, and
 * counting each table as passed or failed in REP. CM_OK unless a table
 * could not be read.
 */
cm_result cm_state_compare(struct vs_cmp *, struct cm_db *, FILE *out,
	    struct cm_verify_report *rep) CM_WUR;

/* ---- the replay's state, shared by state.c and state_cmp.c ------------- */

#define NONE		CM_INTERN_NONE	/* no pseudonym, tag or frequency */
#define MAX_REPORTS	10	/* failure lines printed per table */

/* Which optional fields a consent.recorded entry carried. */
#define EV_COLLECTED	0x1
#define EV_SALE		0x2
#define EV_SUPERSEDED	0x4

struct vs_event {
	uint64_t	idx;
	uint8_t		digest[16];	/* vs_event_digest() of the fields always logged */
	int64_t		collected;	/* the optional ones, as mask says */
	uint32_t	psn;
	uint8_t		mask;
	bool		sale_ref;
	bool		superseded;
	bool		matched;
};

struct vs_subject {
	enum cm_subject_state state;	/* CM_SUBJECT_INVALID: not in the log */
	uint32_t	 merged_into;	/* pseudonym id, or NONE */
	bool		 prefs;		/* a preferences row is expected */
	bool		 prefs_legacy;	/* an entry from before settings were logged */
	uint32_t	 frequency;	/* interned, or NONE: none chosen */
	int64_t		 paused_until;
	int64_t		 objected_at;	/* -1: objected, time not logged */
};

struct vs_supp {
	bool	 present;
	char	 reason[16];
	int64_t	 since;			/* -1: not logged */
};

struct cm_state_replay {
	const struct cm_keys	*keys;
	struct cm_intern	 psn;		/* pseudonyms */
	struct vs_subject	*subj;		/* by pseudonym id */
	size_t			 subj_cap;
	struct vs_event		*ev;
	size_t			 nev, ev_cap;
	struct cm_intern	 tags;		/* suppression tags */
	struct vs_supp		*supp;		/* by tag id */
	size_t			 supp_cap;
	struct cm_intern	 erased;	/* tags of erased subject ids */
	struct cm_intern	 bound;		/* "pseudonym tag" bindings */
	struct cm_intern	 freqs;
	uint64_t		 created;	/* subject.created entries */
	uint64_t		 legacy_supp;	/* suppression entries without a tag */
	uint64_t		 legacy_erase;	/* erasures without a subject tag */
};

/* The pseudonym a subject ends as, following merges. */
uint32_t vs_final_psn(const struct cm_state_replay *, uint32_t psn);
/* A keyed digest of strings and numbers, for comparisons within one run. */
void	vs_digest(uint8_t out[16], const char *const *strs, size_t nstrs,
	    const int64_t *nums, size_t nnums);
/* The digest of the fields every consent.recorded entry (and row) states. */
void	vs_event_digest(uint8_t out[16], const char *event_id, const char *purpose,
	    const char *channel, const char *state, const char *method, int64_t notice);
/* Member K of object O as a string, or "" when absent or not a string. */
const char *vs_str(const json_t *o, const char *k);

#endif
