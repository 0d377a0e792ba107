/* SPDX-License-Identifier: ISC */
/*
 * Appending to the audit log and reading its tree. An entry is canonical
 * JSON (sorted keys, no whitespace, integers only) carrying its version
 * "v", index "i", time "t" in microseconds, "type", "actor", and optionally
 * non-personal details "d", a subject pseudonym "s" and a commitment "c"
 * (hex SHA-256 of salt || canonical private details) whose opening is
 * sealed under the subject's key. The bytes are stored exactly as hashed.
 * Appending reads the tree size and the left siblings it needs inside the
 * caller's write transaction, so appends from several processes (the
 * server and the CLI) stay consistent; on average an append stores two
 * hashes and reads one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/store.h"
#include "consentd/util.h"

#define META_ORIGIN	"audit_origin"

/* True when J holds no real number anywhere (entries are integers only). */
static bool
json_integers_only(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_REAL:
		return false;
	case JSON_OBJECT:
		json_object_foreach(j, k, v)
			if (!json_integers_only(v))
				return false;
		return true;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
			if (!json_integers_only(v))
				return false;
		return true;
	default:
		return true;
	}
}

static int
audit_get(void *ctx, unsigned level, uint64_t index, uint8_t out[CM_HASH_LEN])
{
	return cm_store_audit_get_hash(ctx, level, index, out) == CM_OK ? 0 : -1;
}

/*
 * Commits to EV's private details: fills COMMIT (hex) and SEALED (the
 * opening {"salt","details"} sealed under the subject key, AD = subject id
 * and entry index).
 */
static cm_result
audit_commit(const struct cm_audit_event *ev, uint64_t idx, char commit[65],
    uint8_t **sealed, size_t *sealed_len)
{
	uint8_t salt[32], h[32];
	char salt64[64], ad[128];
	char *details = NULL, *opening = NULL;
	struct cm_buf msg = { 0 };
	json_t *o;
	size_t len;
	int n;

	if (!json_integers_only(ev->ae_private))
		return CM_INVALID;
	details = json_dumps(ev->ae_private, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (details == NULL)
		return CM_INVALID;
	cm_random(salt, sizeof(salt));
	cm_buf_append(&msg, salt, sizeof(salt));
	cm_buf_append(&msg, details, strlen(details));
	cm_sha256(h, msg.b_data, msg.b_len);
	cm_hex_encode(commit, h, sizeof(h));
	cm_base64(salt64, sizeof(salt64), salt, sizeof(salt));
	o = json_pack("{s:s, s:s}", "salt", salt64, "details", details);
	opening = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	n = snprintf(ad, sizeof(ad), "%s:%" PRIu64, ev->ae_subject, idx);
	if (opening == NULL || n < 0 || (size_t)n >= sizeof(ad)) {
		free(details);
		free(opening);
		cm_buf_free(&msg);
		return CM_INVALID;
	}
	len = strlen(opening);
	*sealed_len = len + CM_AEAD_OVERHEAD;
	*sealed = cm_malloc(*sealed_len);
	cm_aead_seal(*sealed, ev->ae_subject_key, ad, (size_t)n, opening, len);
	cm_wipe(salt, sizeof(salt));
	cm_wipe(opening, len);
	cm_wipe(details, strlen(details));
	cm_wipe(msg.b_data, msg.b_len);
	free(details);
	free(opening);
	cm_buf_free(&msg);
	return CM_OK;
}

cm_result
cm_audit_append(struct cm_db *db, const struct cm_audit_event *ev, uint64_t *index)
{
	struct cm_merkle_stored st[CM_MERKLE_MAX_APPEND];
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	char commit[65], pseudo[40], cand[40];
	uint8_t leaf[CM_HASH_LEN];
	uint64_t size;
	json_t *e = NULL;
	char *bytes = NULL;
	size_t n, i, len;
	cm_result rc;

	if (ev->ae_type == NULL || ev->ae_actor == NULL ||
	    (ev->ae_details != NULL && !json_integers_only(ev->ae_details)) ||
	    (ev->ae_private != NULL && (ev->ae_subject == NULL || ev->ae_subject_key == NULL)))
		return CM_INVALID;
	if ((rc = cm_store_audit_size(db, &size)) != CM_OK)
		return rc;
	e = json_pack("{s:i, s:I, s:I, s:s, s:s}", "v", CM_AUDIT_ENTRY_VERSION,
	    "i", (json_int_t)size, "t", (json_int_t)cm_time_now_us(),
	    "type", ev->ae_type, "actor", ev->ae_actor);
	if (e == NULL) {
		rc = CM_INVALID;
		goto out;
	}
	if (ev->ae_details != NULL)
		json_object_set(e, "d", ev->ae_details);
	if (ev->ae_subject != NULL) {
		cm_random_id(cand, sizeof(cand), "psn_");
		if ((rc = cm_store_audit_pseudonym(db, ev->ae_subject, true, cand, pseudo,
		    sizeof(pseudo))) != CM_OK)
			goto out;
		json_object_set_new(e, "s", json_string(pseudo));
	}
	if (ev->ae_private != NULL) {
		if ((rc = audit_commit(ev, size, commit, &sealed, &sealed_len)) != CM_OK)
			goto out;
		json_object_set_new(e, "c", json_string(commit));
	}
	bytes = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
	if (bytes == NULL || (len = strlen(bytes)) > CM_AUDIT_ENTRY_MAX) {
		rc = CM_INVALID;
		goto out;
	}
	cm_merkle_leaf_hash(leaf, (const uint8_t *)bytes, len);
	if ((rc = cm_store_audit_put_entry(db, size, bytes, len, leaf)) != CM_OK)
		goto out;
	if ((n = cm_merkle_append_hashes(size, leaf, audit_get, db, st, CM_NELEM(st))) == 0) {
		rc = CM_IOERR;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (st[i].level == 0)
			continue;
		if ((rc = cm_store_audit_put_hash(db, st[i].level, st[i].index,
		    st[i].hash)) != CM_OK)
			goto out;
	}
	if (ev->ae_private != NULL &&
	    (rc = cm_store_audit_opening_put(db, size, ev->ae_subject, sealed,
	    sealed_len)) != CM_OK)
		goto out;
	if (index != NULL)
		*index = size;
	rc = CM_OK;
out:
	json_decref(e);
	free(bytes);
	free(sealed);
	return rc;
}

cm_result
cm_audit_root(struct cm_db *db, uint64_t size, uint8_t root[32])
{
	return cm_merkle_root(size, audit_get, db, root) == 0 ? CM_OK : CM_IOERR;
}

cm_result
cm_audit_inclusion_proof(struct cm_db *db, uint64_t index, uint64_t size,
    uint8_t (*proof)[32], size_t cap, size_t *n)
{
	if (index >= size)
		return CM_INVALID;
	return cm_merkle_inclusion_proof(index, size, audit_get, db, proof, cap, n) == 0 ?
	    CM_OK : CM_IOERR;
}

cm_result
cm_audit_consistency_proof(struct cm_db *db, uint64_t old, uint64_t new_,
    uint8_t (*proof)[32], size_t cap, size_t *n)
{
	if (old > new_)
		return CM_INVALID;
	return cm_merkle_consistency_proof(old, new_, audit_get, db, proof, cap, n) == 0 ?
	    CM_OK : CM_IOERR;
}

static json_t *
hash_json(const uint8_t h[32])
{
	char b64[64];

	cm_base64(b64, sizeof(b64), h, 32);
	return json_string(b64);
}

static json_t *
proof_json(uint8_t (*proof)[32], size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, hash_json(proof[i]));
	return a;
}

cm_result
cm_audit_proof_json(struct cm_db *db, uint64_t index, uint64_t size, json_t **out)
{
	uint8_t proof[CM_MERKLE_MAX_PROOF][32], leaf[32], root[32];
	size_t n;
	cm_result rc;

	*out = NULL;
	if ((rc = cm_store_audit_get_hash(db, 0, index, leaf)) != CM_OK ||
	    (rc = cm_audit_root(db, size, root)) != CM_OK ||
	    (rc = cm_audit_inclusion_proof(db, index, size, proof, CM_MERKLE_MAX_PROOF,
	    &n)) != CM_OK)
		return rc;
	*out = json_pack("{s:I, s:I, s:o, s:o, s:o}", "index", (json_int_t)index, "size",
	    (json_int_t)size, "leaf_hash", hash_json(leaf), "root", hash_json(root),
	    "proof", proof_json(proof, n));
	return *out ? CM_OK : CM_IOERR;
}

cm_result
cm_audit_consistency_json(struct cm_db *db, uint64_t old, uint64_t new_, json_t **out)
{
	uint8_t proof[CM_MERKLE_MAX_PROOF][32], r1[32], r2[32];
	size_t n;
	cm_result rc;

	*out = NULL;
	if ((rc = cm_audit_root(db, old, r1)) != CM_OK ||
	    (rc = cm_audit_root(db, new_, r2)) != CM_OK ||
	    (rc = cm_audit_consistency_proof(db, old, new_, proof, CM_MERKLE_MAX_PROOF,
	    &n)) != CM_OK)
		return rc;
	*out = json_pack("{s:I, s:I, s:o, s:o, s:o}", "old", (json_int_t)old, "new",
	    (json_int_t)new_, "old_root", hash_json(r1), "new_root", hash_json(r2),
	    "proof", proof_json(proof, n));
	return *out ? CM_OK : CM_IOERR;
}

bool
cm_audit_origin_valid(const char *o)
{
	size_t i, n = strlen(o);

	if (n == 0 || n > CM_AUDIT_ORIGIN_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)o[i] <= ' ' || o[i] == '+' || o[i] == 0x7f)
			return false;
	return true;
}

cm_result
cm_audit_origin(struct cm_db *db, char *out, size_t outlen)
{
	return cm_store_meta_get(db, META_ORIGIN, out, outlen);
}

cm_result
cm_audit_checkpoint(struct cm_db *db, const struct cm_keys *keys, const char *origin,
    bool *signed_)
{
	struct cm_checkpoint_row last;
	struct cm_buf note = { 0 };
	char body[CM_AUDIT_ORIGIN_MAX + 128];
	uint8_t root[32];
	uint64_t size;
	cm_result rc;

	*signed_ = false;
	if ((rc = cm_db_begin(db)) != CM_OK)
		return rc;
	if ((rc = cm_store_audit_size(db, &size)) != CM_OK)
		goto fail;
	rc = cm_store_audit_checkpoint_latest(db, &last);
	if (rc == CM_OK) {
		free(last.cp_note);
		if (last.cp_size >= size) {
			cm_db_rollback(db);
			return CM_OK;
		}
	} else if (rc != CM_NOTFOUND) {
		goto fail;
	}
	if ((rc = cm_audit_root(db, size, root)) != CM_OK)
		goto fail;
	if (cm_checkpoint_body(body, sizeof(body), origin, size, root) != 0 ||
	    cm_note_sign(&note, body, origin, keys->k_audit_sk, keys->k_audit_pk) != 0) {
		rc = CM_IOERR;
		goto fail;
	}
	if ((rc = cm_store_audit_checkpoint_put(db, size, root, note.b_data,
	    cm_time_now_us())) != CM_OK)
		goto fail;
	cm_buf_free(&note);
	if ((rc = cm_db_commit(db)) == CM_OK)
		*signed_ = true;
	return rc;
fail:
	cm_buf_free(&note);
	cm_db_rollback(db);
	return rc;
}

cm_result
cm_audit_check_latest(struct cm_db *db)
{
	struct cm_checkpoint_row last;
	uint8_t root[32];
	cm_result rc;

	rc = cm_store_audit_checkpoint_latest(db, &last);
	if (rc == CM_NOTFOUND)
		return CM_OK;
	if (rc != CM_OK)
		return rc;
	free(last.cp_note);
	if ((rc = cm_audit_root(db, last.cp_size, root)) != CM_OK)
		return rc == CM_IOERR ? CM_CONFLICT : rc;
	return cm_memeq(root, last.cp_root, 32) == 0 ? CM_OK : CM_CONFLICT;
}
