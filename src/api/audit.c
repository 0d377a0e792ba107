/* SPDX-License-Identifier: ISC */
/*
 * Audit routes (scope audit:read): the latest signed checkpoint and the
 * verifier key as plain text, entries by range as NDJSON with their exact
 * stored bytes, and RFC 9162 inclusion and consistency proofs. Proofs are
 * only given for tree sizes a signed checkpoint covers, so every proof can
 * be checked against a signed root.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/store.h"
#include "consentd/util.h"

#define ENTRIES_MAX_RANGE	10000

static struct cm_db *
audit_db(struct cm_request *rq)
{
	struct cm_db *db = cm_store_db(cm_req_app(rq)->app_store);

	if (db == NULL)
		cm_reply_store_error(rq, CM_IOERR);
	return db;
}

/* The size of the latest signed checkpoint (0 when none yet). */
static bool
signed_size(struct cm_request *rq, struct cm_db *db, uint64_t *size)
{
	struct cm_checkpoint_row row;
	cm_result rc;

	rc = cm_store_audit_checkpoint_latest(db, &row);
	if (rc == CM_NOTFOUND) {
		*size = 0;
		return true;
	}
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return false;
	}
	*size = row.cp_size;
	free(row.cp_note);
	return true;
}

void
cm_api_audit_checkpoint(struct cm_request *rq)
{
	struct cm_checkpoint_row row;
	struct cm_db *db;
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    (db = audit_db(rq)) == NULL)
		return;
	rc = cm_store_audit_checkpoint_latest(db, &row);
	if (rc == CM_NOTFOUND) {
		cm_reply_error(rq, 404, "not_found", NULL, "no checkpoint has been signed yet");
		return;
	}
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_bytes(rq, 200, "text/plain; charset=utf-8", row.cp_note, strlen(row.cp_note));
	free(row.cp_note);
}

void
cm_api_audit_vkey(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	char vkey[256];

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }))
		return;
	cm_note_vkey(vkey, sizeof(vkey), app->app_origin, CM_NOTE_ED25519,
	    app->app_keys->k_audit_pk);
	cm_reply_bytes(rq, 200, "text/plain; charset=utf-8", vkey, strlen(vkey));
}

/*
 * Every verifier key the log has had, oldest first, with the checkpoint
 * sizes each signs: the chain the log itself records, so a checkpoint
 * kept from before a key rotation can still be checked.
 */
void
cm_api_audit_vkeys(struct cm_request *rq)
{
	struct cm_app *app = cm_req_app(rq);
	struct cm_audit_vkey *v = NULL;
	struct cm_db *db;
	json_t *keys, *out;
	char vkey[256];
	size_t i, n = 0;
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    (db = audit_db(rq)) == NULL)
		return;
	if ((rc = cm_audit_vkeys_load(db, &v, &n)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_note_vkey(vkey, sizeof(vkey), app->app_origin, CM_NOTE_ED25519,
	    app->app_keys->k_audit_pk);
	keys = json_array();
	if (n == 0)
		json_array_append_new(keys, json_pack("{s:s, s:I, s:n}", "vkey", vkey,
		    "from_size", (json_int_t)0, "to_size"));
	for (i = 0; i < n; i++) {
		json_t *k = json_pack("{s:s, s:I}", "vkey", v[i].av_vkey, "from_size",
		    (json_int_t)v[i].av_from);

		json_object_set_new(k, "to_size", i + 1 < n ?
		    json_integer((json_int_t)v[i + 1].av_from - 1) : json_null());
		if (i > 0)
			json_object_set_new(k, "entry", json_integer((json_int_t)v[i].av_entry));
		json_array_append_new(keys, k);
	}
	free(v);
	out = json_pack("{s:s, s:o}", "current", vkey, "keys", keys);
	cm_reply_json(rq, 200, out);
}

static int
entries_line(void *arg, uint64_t idx, const void *entry, size_t len, const uint8_t leaf[32])
{
	struct cm_buf *b = arg;
	char *e64, l64[64];
	size_t n = len / 3 * 4 + 8;

	e64 = cm_malloc(n);
	cm_base64(e64, n, entry, len);
	cm_base64(l64, sizeof(l64), leaf, 32);
	cm_buf_appendf(b, "{\"index\":%" PRIu64 ",\"entry\":\"%s\",\"leaf_hash\":\"%s\"}\n",
	    idx, e64, l64);
	free(e64);
	return 0;
}

void
cm_api_audit_entries(struct cm_request *rq)
{
	static const char *const params[] = { "from", "to", NULL };
	struct cm_buf b = { 0 };
	struct cm_db *db;
	uint64_t size;
	int64_t from, to;
	cm_result rc;

	if (!cm_req_query_check(rq, params) || (db = audit_db(rq)) == NULL)
		return;
	if ((rc = cm_store_audit_size(db, &size)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	if (!cm_req_query_int(rq, "from", false, 0, INT64_MAX, 0, &from))
		return;
	if (!cm_req_query_int(rq, "to", false, 0, INT64_MAX,
	    (int64_t)(size < (uint64_t)from + ENTRIES_MAX_RANGE ? size :
	    (uint64_t)from + ENTRIES_MAX_RANGE), &to))
		return;
	if (to < from) {
		cm_reply_error(rq, 400, "invalid_parameter", "to", "must not be less than from");
		return;
	}
	if ((uint64_t)to > size) {
		cm_reply_error(rq, 422, "beyond_log", "to", "the log holds %" PRIu64
		    " entries", size);
		return;
	}
	if (to - from > ENTRIES_MAX_RANGE) {
		cm_reply_error(rq, 400, "range_too_large", "to", "at most %d entries per "
		    "request", ENTRIES_MAX_RANGE);
		return;
	}
	if ((rc = cm_store_audit_scan(db, (uint64_t)from, (uint64_t)to, entries_line, &b)) != CM_OK) {
		cm_buf_free(&b);
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_bytes(rq, 200, "application/x-ndjson", b.b_data ? b.b_data : "", b.b_len);
	cm_buf_free(&b);
}

void
cm_api_audit_proof(struct cm_request *rq)
{
	static const char *const params[] = { "index", "size", NULL };
	struct cm_db *db;
	uint64_t latest;
	int64_t index, size;
	json_t *out;
	cm_result rc;

	if (!cm_req_query_check(rq, params) || (db = audit_db(rq)) == NULL ||
	    !signed_size(rq, db, &latest))
		return;
	if (!cm_req_query_int(rq, "index", true, 0, INT64_MAX, 0, &index) ||
	    !cm_req_query_int(rq, "size", false, 1, INT64_MAX, (int64_t)latest, &size))
		return;
	if ((uint64_t)size > latest || latest == 0) {
		cm_reply_error(rq, 422, "beyond_checkpoint", "size", "the latest signed "
		    "checkpoint covers %" PRIu64 " entries", latest);
		return;
	}
	if (index >= size) {
		cm_reply_error(rq, 422, "beyond_size", "index", "must be less than size");
		return;
	}
	if ((rc = cm_audit_proof_json(db, (uint64_t)index, (uint64_t)size, &out)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, out);
}

void
cm_api_audit_consistency(struct cm_request *rq)
{
	static const char *const params[] = { "old", "new", NULL };
	struct cm_db *db;
	uint64_t latest;
	int64_t old, new_;
	json_t *out;
	cm_result rc;

	if (!cm_req_query_check(rq, params) || (db = audit_db(rq)) == NULL ||
	    !signed_size(rq, db, &latest))
		return;
	if (!cm_req_query_int(rq, "old", true, 0, INT64_MAX, 0, &old) ||
	    !cm_req_query_int(rq, "new", false, 0, INT64_MAX, (int64_t)latest, &new_))
		return;
	if ((uint64_t)new_ > latest) {
		cm_reply_error(rq, 422, "beyond_checkpoint", "new", "the latest signed "
		    "checkpoint covers %" PRIu64 " entries", latest);
		return;
	}
	if (old > new_) {
		cm_reply_error(rq, 422, "beyond_size", "old", "must not exceed new");
		return;
	}
	if ((rc = cm_audit_consistency_json(db, (uint64_t)old, (uint64_t)new_, &out)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, out);
}

/*
 * POST /v1/audit/verify: what 'consentd audit verify' does, over the
 * store the server has open, for the DPO console's audit panel. Only the
 * counts are answered (the per-check lines are dropped: they are for the
 * command line). One verification runs at a time, and a log longer than
 * AUDIT_VERIFY_MAX entries is left to the command line, so the button
 * cannot tie up the server.
 */
#define AUDIT_VERIFY_MAX	1000000

static atomic_flag audit_verifying = ATOMIC_FLAG_INIT;

void
cm_api_audit_verify(struct cm_request *rq)
{
	struct cm_verify_report rep;
	struct cm_db *db;
	uint64_t size = 0;
	int64_t t0;
	FILE *sink;
	cm_result rc;

	if (!cm_req_query_check(rq, (const char *const[]){ NULL }) ||
	    (db = audit_db(rq)) == NULL)
		return;
	if ((rc = cm_store_audit_size(db, &size)) != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	if (size > AUDIT_VERIFY_MAX) {
		cm_reply_error(rq, 422, "log_too_large", NULL, "the log holds more than %d "
		    "entries: run 'consentd audit verify' instead", AUDIT_VERIFY_MAX);
		return;
	}
	if (atomic_flag_test_and_set(&audit_verifying)) {
		cm_reply_error(rq, 409, "verify_running", NULL, "a verification is "
		    "already running: try again when it ends");
		return;
	}
	memset(&rep, 0, sizeof(rep));
	t0 = cm_time_now_us();
	if ((sink = fopen("/dev/null", "w")) == NULL)
		rc = CM_IOERR;
	else {
		rc = cm_audit_verify(db, cm_req_app(rq)->app_keys, NULL, sink, &rep);
		fclose(sink);
	}
	atomic_flag_clear(&audit_verifying);
	if (rc != CM_OK) {
		cm_reply_store_error(rq, rc);
		return;
	}
	cm_reply_json(rq, 200, json_pack("{s:b, s:I, s:I, s:I, s:I, s:o, s:I}",
	    "ok", rep.vr_failed == 0, "entries", (json_int_t)rep.vr_entries,
	    "checkpoints", (json_int_t)rep.vr_checkpoints,
	    "passed", (json_int_t)rep.vr_passed, "failed", (json_int_t)rep.vr_failed,
	    "first_bad_entry", rep.vr_first_bad >= 0 ? json_integer(rep.vr_first_bad) :
	    json_null(), "elapsed_ms", (json_int_t)((cm_time_now_us() - t0) / 1000)));
}
