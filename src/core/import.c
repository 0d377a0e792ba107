/* SPDX-License-Identifier: ISC */
/*
 * The import run: bytes in, rows out, each row written through the same
 * domain calls as the API (cm_consent_record() for consents and
 * preferences, cm_suppression_import() for suppressions). CSV is read by
 * libcsv, one physical line at a time so that a record's first line is
 * known for the rejects; NDJSON one line at a time by jansson. The rows
 * go in chunks, one transaction each, closed after io_batch rows or
 * io_batch_ms milliseconds, whichever comes first: a chunk commits whole
 * or not at all, and progress is told only after it committed. Large
 * chunks are what make an import fast: each commit encrypts and writes
 * every page the chunk touched, and the B-tree pages that rows of new
 * people share (the blind-index and request-id indexes, whose keys are
 * random, and every interior page) are encrypted once a chunk instead of
 * once a row or two (100,000 new people: commits took a third of the time
 * in chunks of 2,000 rows, a fifth in chunks of 10,000). The time bound
 * keeps the store's write lock from being held long while a server
 * writes too. A refused row writes nothing (see row_write()), so it never
 * undoes the chunk's other rows; a dry run undoes each transaction
 * instead of committing it. A consent's request id is a keyed hash of
 * what it says, so a second run of the same file (after a crash, say)
 * replays each one and writes nothing; a suppression already listed is
 * left as it is.
 */
#define _GNU_SOURCE
#include <csv.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "import_int.h"

#define IMPORT_BATCH_DEFAULT	10000
#define IMPORT_BATCH_MS_DEFAULT	2000
#define IMPORT_CLIENT		"import"	/* the request ids' namespace */

struct cm_import {
	struct cm_ctx		 im_cxv;	/* the caller's, with the time of each row */
	const struct cm_ctx	*im_cx;
	struct cm_import_opts	 im_o;
	struct cm_import_stats	 im_st;
	struct csv_parser	 im_csv;
	struct cm_buf		 im_fields;	/* the current record's fields, NUL-ended */
	size_t			*im_off;	/* where each starts in im_fields */
	size_t			 im_n, im_cap;
	char			**im_hdr;	/* the header's names */
	size_t			 im_nhdr;
	bool			 im_have_hdr;
	struct cm_buf		 im_line;	/* a physical line being gathered */
	struct cm_buf		 im_raw;	/* the current record as read */
	uint64_t		 im_lineno;	/* physical lines read */
	uint64_t		 im_rec_line;	/* the current record's first line */
	bool			 im_skipping;	/* an over-long line: to its end */
	unsigned		 im_in_batch;	/* rows in the open transaction */
	int64_t			 im_batch_end;	/* when it must commit, monotonic us */
	bool			 im_open;	/* a transaction is open */
	cm_result		 im_fatal;	/* the store failed: stop */
	struct cm_why		*im_w;
	struct imp_action	 im_acts[IMP_RECS_MAX];
};

struct cm_import *
cm_import_new(const struct cm_ctx *cx, const struct cm_import_opts *o)
{
	struct cm_import *im = cm_calloc(1, sizeof(*im));

	im->im_cxv = *cx;
	im->im_cx = &im->im_cxv;
	im->im_o = *o;
	if (im->im_o.io_batch == 0)
		im->im_o.io_batch = IMPORT_BATCH_DEFAULT;
	if (im->im_o.io_batch_ms == 0)
		im->im_o.io_batch_ms = IMPORT_BATCH_MS_DEFAULT;
	im->im_fatal = CM_OK;
	if (csv_init(&im->im_csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
		abort();
	return im;
}

void
cm_import_free(struct cm_import *im)
{
	size_t i;

	if (im == NULL)
		return;
	if (im->im_open)
		cm_db_rollback(im->im_cx->cx_db);
	csv_free(&im->im_csv);
	for (i = 0; i < im->im_nhdr; i++)
		free(im->im_hdr[i]);
	free(im->im_hdr);
	free(im->im_off);
	cm_buf_free(&im->im_fields);
	if (im->im_raw.b_data != NULL)
		cm_wipe(im->im_raw.b_data, im->im_raw.b_cap);
	if (im->im_line.b_data != NULL)
		cm_wipe(im->im_line.b_data, im->im_line.b_cap);
	cm_buf_free(&im->im_raw);
	cm_buf_free(&im->im_line);
	cm_wipe(im->im_acts, sizeof(im->im_acts));
	free(im);
}

static void
import_reject(struct cm_import *im, uint64_t line, const char *reason, const char *raw,
    size_t len)
{
	while (len > 0 && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
		len--;
	im->im_st.is_rejected++;
	if (im->im_o.io_reject != NULL)
		im->im_o.io_reject(im->im_o.io_arg, line, reason, raw, len);
}

/* Ends the open transaction: committed, or (FAILED) undone. */
static cm_result
batch_end(struct cm_import *im, bool failed)
{
	cm_result rc = CM_OK;
	bool left;

	if (!im->im_open)
		return CM_OK;
	im->im_open = false;
	im->im_in_batch = 0;
	/*
	 * A dry run undoes each transaction instead of committing it. A batch
	 * may hold more people than a commit builds decision rows for: all of
	 * them get theirs before it commits, so checks on them are one probe
	 * from the start.
	 */
	if (failed || im->im_o.io_dry_run)
		cm_db_rollback(im->im_cx->cx_db);
	else if ((rc = cm_store_decisions_rebuild(im->im_cx->cx_db, INT_MAX, &left)) != CM_OK)
		cm_db_rollback(im->im_cx->cx_db);
	else
		rc = cm_db_commit(im->im_cx->cx_db);
	if (rc == CM_OK && !failed && im->im_o.io_progress != NULL)
		im->im_o.io_progress(im->im_o.io_arg, &im->im_st);
	return rc;
}

/* The request id of consent action A: "import:" and a keyed hash of it. */
static void
request_id(const struct cm_import *im, const struct imp_action *a, char out[64])
{
	const struct cm_policy *pol = im->im_cx->cx_policy;
	uint8_t h[32];
	json_t *o;
	char *t;

	o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "mapping",
	    cm_import_map_name(im->im_o.io_map), "record", (json_int_t)a->a_rec, "identifier",
	    a->a_ident.id_text, "purpose", a->a_purpose->pu_id, "channel", a->a_channel >= 0 ?
	    pol->pol_channels[a->a_channel].ch_id : CM_ALL_CHANNELS, "state",
	    cm_consent_state_name(a->a_state), "time", (json_int_t)a->a_time_us, "ip", a->a_ip);
	t = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (t == NULL)
		abort();
	cm_request_hash(im->im_cx->cx_keys, t, strlen(t), h);
	cm_wipe(t, strlen(t));
	free(t);
	memcpy(out, "import:", 7);
	cm_hex_encode(out + 7, h, 20);
}

/* What a domain refusal means for the row, without personal data. */
static const char *
refusal(const struct cm_why *w)
{
	const char *c = w->w_code ? w->w_code : "";

	if (strcmp(c, "suppressed") == 0)
		return "suppressed: the person is on the suppression list (409 suppressed)";
	if (strcmp(c, "subject_erased") == 0)
		return "the person was erased";
	if (strcmp(c, "sale_reference") == 0)
		return "a soft opt-in grant needs the sale it rests on";
	if (strcmp(c, "merged") == 0 || strcmp(c, "not_found") == 0)
		return "the person's record was merged away or is gone";
	return "refused by the consent rules";
}

/*
 * Writes action A: CM_OK with *WROTE, a refusal (CM_CONFLICT and the
 * like) with its reason in WHY, or the store's failure.
 */
static cm_result
action_run(struct cm_import *im, const struct imp_action *a, bool *wrote, const char **why)
{
	const struct cm_ctx *cx = im->im_cx;
	struct cm_consent_input in;
	struct cm_consent_result res;
	struct cm_why w;
	char rid[64];
	json_t *ev;
	bool existed;
	cm_result rc;

	*wrote = false;
	if (a->a_kind == IMP_SUPPRESSION) {
		rc = cm_suppression_import(cx, &a->a_ident, a->a_reason, a->a_time_us, &existed);
		*wrote = rc == CM_OK && !existed;
		return rc;
	}
	memset(&in, 0, sizeof(in));
	memset(&w, 0, sizeof(w));
	request_id(im, a, rid);
	ev = json_pack("{s:s, s:s?}", "source", cm_import_map_name(im->im_o.io_map), "file",
	    im->im_o.io_file);
	if (a->a_ip[0] != '\0')
		json_object_set_new(ev, "ip", json_string(a->a_ip));
	in.ci_ident = &a->a_ident;
	in.ci_purpose = a->a_purpose;
	in.ci_channel = a->a_channel;
	in.ci_state = a->a_state;
	in.ci_method = "import";
	in.ci_collected_us = a->a_time_us;
	in.ci_evidence = ev;
	in.ci_request_id = rid;
	in.ci_client = IMPORT_CLIENT;
	rc = cm_consent_record(cx, &in, &res, &w);
	json_decref(res.cr_event_ids);
	json_decref(ev);
	if (rc == CM_OK) {
		*wrote = !res.cr_replayed;
		return CM_OK;
	}
	/* The same consent from another file of the same export: already here. */
	if (rc == CM_CONFLICT && w.w_code != NULL && strcmp(w.w_code, "request_id_reused") == 0)
		return CM_OK;
	*why = refusal(&w);
	return rc;
}

static bool
store_failure(cm_result rc)
{
	return rc == CM_IOERR || rc == CM_BUSY || rc == CM_NOMEM || rc == CM_AUTH;
}

/*
 * Writes the N actions of one row. A row of one action runs without a
 * savepoint of its own: a savepoint makes SQLCipher encrypt every page
 * the row touches into the statement journal, which more than doubled
 * the cost of a row, and the domain refuses (suppressed, erased, no sale
 * reference, a reused request id) before it writes anything. That is
 * checked, not assumed: a refused row that changed a row of the store
 * undoes the whole transaction and stops the run (the rows committed
 * before it stay, and a new run skips them). A row of several actions
 * (an email and an SMS consent, say) is all or nothing, in a savepoint.
 */
static void
row_write(struct cm_import *im, int n, uint64_t line, const char *raw, size_t len)
{
	struct cm_db *db = im->im_cx->cx_db;
	const char *why = NULL;
	bool wrote, any = false, sp = n > 1;
	cm_result rc = CM_OK;
	int64_t before;
	int i;

	if (!im->im_open) {
		if ((rc = cm_db_begin(db)) != CM_OK) {
			im->im_fatal = rc;
			return;
		}
		im->im_open = true;
		im->im_batch_end = cm_time_mono_us() + (int64_t)im->im_o.io_batch_ms * 1000;
	}
	if (sp && (rc = cm_db_savepoint(db)) != CM_OK) {
		im->im_fatal = rc;
		return;
	}
	before = cm_db_changes(db);
	for (i = 0; i < n && rc == CM_OK; i++) {
		rc = action_run(im, &im->im_acts[i], &wrote, &why);
		any = any || wrote;
	}
	if (sp && !store_failure(rc))
		rc = (rc != CM_OK ? cm_db_savepoint_rollback(db) : cm_db_savepoint_release(db)) ==
		    CM_OK ? rc : CM_IOERR;
	else if (!sp && rc != CM_OK && !store_failure(rc) && cm_db_changes(db) != before) {
		cm_why_set(im->im_w, "partial_row", "line %llu was refused after writing part "
		    "of itself; its transaction was undone (run the file again: what was "
		    "written is skipped)", (unsigned long long)line);
		rc = CM_IOERR;
	}
	if (store_failure(rc)) {
		im->im_fatal = rc;
		return;
	}
	if (rc != CM_OK)
		import_reject(im, line, why ? why : "refused", raw, len);
	else if (any)
		im->im_st.is_imported++;
	else
		im->im_st.is_unchanged++;
	im->im_in_batch++;
}

/* One data row: what it says under the mapping, then written. */
static void
import_row(struct cm_import *im, const struct imp_row *row, uint64_t line, const char *raw,
    size_t len)
{
	char why[CM_IMPORT_REASON_MAX];
	cm_result rc;
	int n;

	im->im_st.is_rows++;
	im->im_cxv.cx_now = cm_time_now_us();
	n = imp_map_row(im->im_o.io_map, im->im_cx->cx_policy, row, im->im_acts, why,
	    sizeof(why));
	if (n < 0)
		import_reject(im, line, why, raw, len);
	else if (n == 0)
		im->im_st.is_skipped++;
	else
		row_write(im, n, line, raw, len);
	cm_wipe(im->im_acts, sizeof(im->im_acts));
	/* The chunk ends after its rows or its time, refused rows included. */
	if (im->im_open && im->im_fatal == CM_OK && (im->im_in_batch >= im->im_o.io_batch ||
	    cm_time_mono_us() >= im->im_batch_end) && (rc = batch_end(im, false)) != CM_OK)
		im->im_fatal = rc;
}

/* ---- CSV ------------------------------------------------------------------ */

static void
csv_field(void *s, size_t len, void *arg)
{
	struct cm_import *im = arg;

	if (im->im_n == im->im_cap) {
		im->im_cap = im->im_cap ? im->im_cap * 2 : 32;
		im->im_off = cm_reallocarray(im->im_off, im->im_cap, sizeof(*im->im_off));
	}
	im->im_off[im->im_n++] = im->im_fields.b_len;
	cm_buf_append(&im->im_fields, s ? s : "", s ? len : 0);
	cm_buf_append(&im->im_fields, "", 1);
}

/* The header: its names (a byte-order mark dropped), bound to the mapping. */
static void
csv_header(struct cm_import *im, char **vals, size_t n)
{
	char why[CM_IMPORT_REASON_MAX];
	size_t i;

	if (n > 0 && strncmp(vals[0], "\xef\xbb\xbf", 3) == 0)
		memmove(vals[0], vals[0] + 3, strlen(vals[0] + 3) + 1);
	im->im_hdr = cm_calloc(n, sizeof(*im->im_hdr));
	for (i = 0; i < n; i++)
		im->im_hdr[i] = cm_strdup(vals[i]);
	im->im_nhdr = n;
	im->im_have_hdr = true;
	if (imp_map_bind(im->im_o.io_map, im->im_hdr, n, why,
	    sizeof(why)) != 0) {
		cm_why_set(im->im_w, "invalid_header", "%s", why);
		im->im_fatal = CM_INVALID;
	}
}

static void
csv_record(int c, void *arg)
{
	struct cm_import *im = arg;
	struct imp_row row;
	char *vals[512];
	char why[CM_IMPORT_REASON_MAX];
	size_t i, n = im->im_n;

	(void)c;
	if (im->im_fatal != CM_OK)
		goto out;
	for (i = 0; i < n && i < CM_NELEM(vals); i++)
		vals[i] = im->im_fields.b_data + im->im_off[i];
	if (n > CM_NELEM(vals)) {
		snprintf(why, sizeof(why), "more than %zu columns", CM_NELEM(vals));
		im->im_st.is_rows++;
		import_reject(im, im->im_rec_line, why, im->im_raw.b_data, im->im_raw.b_len);
	} else if (!im->im_have_hdr) {
		csv_header(im, vals, n);
	} else if (n != im->im_nhdr) {
		snprintf(why, sizeof(why), "wrong column count: %zu, the header has %zu", n,
		    im->im_nhdr);
		im->im_st.is_rows++;
		import_reject(im, im->im_rec_line, why, im->im_raw.b_data, im->im_raw.b_len);
	} else {
		row.rw_vals = vals;
		row.rw_n = n;
		row.rw_obj = NULL;
		import_row(im, &row, im->im_rec_line, im->im_raw.b_data, im->im_raw.b_len);
	}
out:
	im->im_n = 0;
	cm_wipe(im->im_fields.b_data, im->im_fields.b_len);
	cm_buf_reset(&im->im_fields);
	im->im_rec_line = 0;
	cm_buf_reset(&im->im_raw);
}

/* After a quoting error: the record is dropped and reading starts afresh. */
static void
csv_restart(struct cm_import *im, const char *why)
{
	im->im_st.is_rows++;
	import_reject(im, im->im_rec_line, why, im->im_raw.b_data, im->im_raw.b_len);
	csv_free(&im->im_csv);
	if (csv_init(&im->im_csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
		abort();
	im->im_n = 0;
	cm_buf_reset(&im->im_fields);
	im->im_rec_line = 0;
	cm_buf_reset(&im->im_raw);
}

static void
csv_line(struct cm_import *im, const char *s, size_t len)
{
	if (im->im_rec_line == 0)
		im->im_rec_line = im->im_lineno;
	if (im->im_raw.b_len + len > CM_IMPORT_LINE_MAX) {
		csv_restart(im, "record too long");
		return;
	}
	/* The record as read, for the rejects (without its line end). */
	cm_buf_append(&im->im_raw, s, len);
	if (csv_parse(&im->im_csv, s, len, csv_field, csv_record, im) != len) {
		while (im->im_raw.b_len > 0 && (im->im_raw.b_data[im->im_raw.b_len - 1] == '\n' ||
		    im->im_raw.b_data[im->im_raw.b_len - 1] == '\r'))
			im->im_raw.b_data[--im->im_raw.b_len] = '\0';
		csv_restart(im, "malformed CSV: a quote out of place");
		return;
	}
	/* Nothing pending (a record ended, or the line was blank): start anew. */
	if (im->im_csv.pstate == 0 && im->im_n == 0) {
		im->im_rec_line = 0;
		cm_buf_reset(&im->im_raw);
	}
}

/* ---- NDJSON --------------------------------------------------------------- */

static void
ndjson_line(struct cm_import *im, const char *s, size_t len)
{
	struct imp_row row;
	json_error_t je;
	json_t *o;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		len--;
	if (len == 0)
		return;
	o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		im->im_st.is_rows++;
		import_reject(im, im->im_lineno, "not a JSON object", s, len);
	} else {
		memset(&row, 0, sizeof(row));
		row.rw_obj = o;
		import_row(im, &row, im->im_lineno, s, len);
	}
	json_decref(o);
}

/* One physical line (LEN bytes, its "\n" included unless the file ended). */
static void
import_line(struct cm_import *im, const char *s, size_t len)
{
	im->im_lineno++;
	if (im->im_o.io_format == CM_IMPORT_NDJSON)
		ndjson_line(im, s, len);
	else
		csv_line(im, s, len);
}

cm_result
cm_import_feed(struct cm_import *im, const char *data, size_t len, struct cm_why *w)
{
	const char *nl;
	size_t n;

	im->im_w = w;
	im->im_st.is_bytes += len;
	while (len > 0 && im->im_fatal == CM_OK) {
		nl = memchr(data, '\n', len);
		n = nl ? (size_t)(nl - data) + 1 : len;
		if (im->im_skipping) {
			im->im_skipping = nl == NULL;
		} else if (im->im_line.b_len + n > CM_IMPORT_LINE_MAX) {
			im->im_lineno++;
			cm_buf_reset(&im->im_line);
			im->im_skipping = nl == NULL;
			if (im->im_o.io_format == CM_IMPORT_CSV) {
				if (im->im_rec_line == 0)
					im->im_rec_line = im->im_lineno;
				csv_restart(im, "record too long");
			} else {
				im->im_st.is_rows++;
				import_reject(im, im->im_lineno, "line too long", "", 0);
			}
		} else if (nl == NULL) {
			cm_buf_append(&im->im_line, data, n);
		} else if (im->im_line.b_len > 0) {
			cm_buf_append(&im->im_line, data, n);
			import_line(im, im->im_line.b_data, im->im_line.b_len);
			cm_wipe(im->im_line.b_data, im->im_line.b_len);
			cm_buf_reset(&im->im_line);
		} else {
			/* A whole line in the piece: read in place, no copy. */
			import_line(im, data, n);
		}
		data += n;
		len -= n;
	}
	if (im->im_fatal != CM_OK) {
		(void)batch_end(im, true);
		if (im->im_fatal != CM_INVALID && w != NULL && w->w_code == NULL)
			cm_why_set(w, "store_failed", "the store failed; the rows of the last "
			    "transaction were undone (run the file again: what was written is "
			    "skipped)");
	}
	return im->im_fatal;
}

cm_result
cm_import_finish(struct cm_import *im, struct cm_import_stats *st, struct cm_why *w)
{
	bool was_open;
	cm_result rc;

	im->im_w = w;
	if (im->im_fatal == CM_OK && im->im_line.b_len > 0) {
		import_line(im, im->im_line.b_data, im->im_line.b_len);
		cm_buf_reset(&im->im_line);
	}
	if (im->im_fatal == CM_OK && im->im_o.io_format == CM_IMPORT_CSV &&
	    csv_fini(&im->im_csv, csv_field, csv_record, im) != 0)
		csv_restart(im, "malformed CSV: a quoted field never ends");
	if (im->im_fatal == CM_OK && im->im_o.io_format == CM_IMPORT_CSV && !im->im_have_hdr) {
		cm_why_set(w, "invalid_header", "the file has no header line");
		im->im_fatal = CM_INVALID;
	}
	was_open = im->im_open;
	if ((rc = im->im_fatal) != CM_OK)
		(void)batch_end(im, true);
	else if ((rc = batch_end(im, false)) != CM_OK)
		cm_why_set(w, "store_failed", "the last transaction could not be committed");
	else if (!was_open && im->im_o.io_progress != NULL)
		im->im_o.io_progress(im->im_o.io_arg, &im->im_st);
	*st = im->im_st;
	return rc;
}
