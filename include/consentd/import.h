/* SPDX-License-Identifier: ISC */
/*
 * Bulk import of consents, preferences and suppressions from the CSV and
 * NDJSON exports of email and SMS providers (SPEC §6, §7), through the
 * same domain calls as POST /v1/consents and POST /v1/suppressions. A
 * mapping says how a provider's columns become records: each row of the
 * file may give several (Klaviyo: an email consent, an SMS consent and a
 * suppression), each kept at the provider's own time. Rows are written
 * many to a transaction; a refused row writes nothing (a row of several
 * records is all or nothing) and goes to the rejects with its line and a
 * reason that holds no personal data. Re-running a file writes nothing: each consent
 * carries a request id derived from a keyed hash of what it says.
 */
#ifndef CONSENTD_IMPORT_H
#define CONSENTD_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/core.h"

#define CM_IMPORT_REASON_MAX	160
#define CM_IMPORT_LINE_MAX	(1024 * 1024)	/* bytes of one record */

enum cm_import_format { CM_IMPORT_CSV, CM_IMPORT_NDJSON };

struct cm_import_map;

/* The mappings carried by the binary (share/mappings/NAME.json). */
struct cm_import_builtin {
	const char	*ib_name;
	const char	*ib_text;
	size_t		 ib_len;
};
extern const struct cm_import_builtin	cm_import_builtins[];
extern const size_t			cm_import_builtins_count;

/*
 * Builds a mapping from its JSON document (docs/operations.md, "Import")
 * checked against POLICY: known kinds, purposes, topics, channels, states
 * and reasons. NULL with a reason in WHY (WHYLEN bytes) naming the field.
 * Caller frees with cm_import_map_free().
 */
struct cm_import_map *cm_import_map_new(json_t *doc, const struct cm_policy *,
	    char *why, size_t whylen);
/* The document of the built-in mapping called NAME (caller releases); NULL if none. */
json_t	*cm_import_map_builtin(const char *name);
void	cm_import_map_free(struct cm_import_map *);
/* The mapping's name: evidence.source of what it imports. */
const char *cm_import_map_name(const struct cm_import_map *);

/*
 * The mapping of one record given field by field (the command line's
 * --kind, --column FIELD=HEADER and --purpose/--channel defaults): a
 * JSON document for cm_import_map_new(). FIELD=HEADER pairs come from
 * COLUMNS (NULL-terminated). NULL with a reason in WHY.
 */
json_t	*cm_import_map_adhoc(const char *kind, const char *const *columns,
	    char *why, size_t whylen);
/*
 * Fills in PURPOSE and CHANNEL (either may be NULL) on each consent
 * record of DOC that names none: the defaults of the command line.
 */
void	cm_import_map_defaults(json_t *doc, const char *purpose, const char *channel);

struct cm_import_stats {
	uint64_t	is_rows;	/* data rows read (not the header) */
	uint64_t	is_imported;	/* rows that wrote something */
	uint64_t	is_unchanged;	/* rows already imported: nothing new */
	uint64_t	is_rejected;	/* rows refused, each in the rejects */
	uint64_t	is_skipped;	/* rows no record of the mapping applies to */
	uint64_t	is_bytes;	/* input bytes read */
};

struct cm_import_opts {
	enum cm_import_format	 io_format;
	struct cm_import_map	*io_map;	/* borrowed; bound to the header read */
	const char		*io_file;	/* evidence.file (a base name) or NULL */
	bool			 io_dry_run;	/* every transaction undone: counts only */
	unsigned		 io_batch;	/* rows per transaction at most (0: 10000) */
	unsigned		 io_batch_ms;	/* and milliseconds (0: 2000) */
	/* A refused row: its first line, a reason without personal data, and
	 * the record as read (RAW, LEN bytes), which is the caller's to keep
	 * or drop. */
	void	(*io_reject)(void *arg, uint64_t line, const char *reason,
		    const char *raw, size_t len);
	/* After each transaction (and at the end). */
	void	(*io_progress)(void *arg, const struct cm_import_stats *);
	void	*io_arg;
};

struct cm_import;

/*
 * An import on CX (its db, keys, policy and actor, all borrowed until
 * cm_import_free()). Feed the file's bytes in pieces of any size, then
 * finish. Caller frees with cm_import_free().
 */
struct cm_import *cm_import_new(const struct cm_ctx *cx, const struct cm_import_opts *);
/*
 * Reads LEN more bytes, writing complete rows. A refused row never stops
 * the run; CM_INVALID (with WHY) when the header cannot serve the mapping,
 * or the store's failure, stops it: the rows of the current transaction
 * are undone, those committed before stay (and a re-run skips them).
 */
cm_result cm_import_feed(struct cm_import *, const char *data, size_t len,
	    struct cm_why *) CM_WUR;
/* Reads what is left, commits, and copies the counts into *STATS. */
cm_result cm_import_finish(struct cm_import *, struct cm_import_stats *,
	    struct cm_why *) CM_WUR;
void	cm_import_free(struct cm_import *);

/*
 * A provider's time: RFC 3339, or "YYYY-MM-DD HH:MM:SS" (a space for the T,
 * seconds and zone optional; no zone is UTC, as the providers write it).
 * 0 and *US, or -1.
 */
int	cm_import_parse_time(const char *s, int64_t *us) CM_WUR;

#endif
