/* SPDX-License-Identifier: ISC */
/*
 * Issuing consent receipts. Everything a receipt states is read in one
 * snapshot: the event, its subject's state, the exact bytes of the audit
 * entry that recorded it, the first signed checkpoint covering that entry
 * and the inclusion proof against it, and the notice version the person
 * decided on (its lawful basis, title and SHA-256 as served, not as the
 * policy says today). Proving against the first covering checkpoint, not
 * the latest, makes a receipt a fixed document: asked for again, the same
 * event gives the same bytes, however far the log has grown; a verifier
 * who wants a fresher root asks GET /v1/audit/consistency.
 *
 * The subject appears only as the random pseudonym of its audit entries
 * (the entry's "s"): it is derived from nothing, so it tells nothing, and
 * erasure deletes its link to the subject. A receipt is not issued for an
 * erased subject's events, and the answer is the one an unknown event
 * gets, so it does not even say the event existed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/policy.h"
#include "consentd/receipt.h"
#include "consentd/util.h"

bool
cm_event_id_valid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != CM_EVENT_ID_LEN || strncmp(s, "evt_", 4) != 0)
		return false;
	for (i = 4; i < CM_EVENT_ID_LEN; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
			return false;
	return true;
}

static json_t *
b64_json(const void *p, size_t len)
{
	char *s;
	json_t *j;
	size_t n = len / 3 * 4 + 8;

	s = cm_malloc(n);
	cm_base64(s, n, p, len);
	j = json_string(s);
	free(s);
	return j;
}

/* The controller as the policy names it: only these members, as written. */
static json_t *
controller_json(json_t *policy)
{
	static const char *const keys[] = { "name", "address", "email", "phone", "url",
	    "dpo", NULL };
	json_t *c = json_object_get(policy, "controller"), *o = json_object(), *v;
	size_t i;

	for (i = 0; keys[i] != NULL; i++)
		if ((v = json_object_get(c, keys[i])) != NULL)
			json_object_set_new(o, keys[i], json_deep_copy(v));
	return o;
}

static json_t *
consent_json(const struct cm_receipt_facts *f)
{
	const struct cm_event_row *e = f->rf_event;
	char col[32], rec[32], url[160], hex[65];
	json_t *notice;

	cm_time_format(col, e->e_collected_us);
	cm_time_format(rec, e->e_recorded_us);
	snprintf(url, sizeof(url), "/v1/policy/notices/%s/%lld", e->e_purpose,
	    (long long)e->e_notice_version);
	if (f->rf_notice_sha256 != NULL)
		cm_hex_encode(hex, f->rf_notice_sha256, 32);
	notice = json_pack("{s:I, s:s?, s:s}", "version", (json_int_t)e->e_notice_version,
	    "sha256", f->rf_notice_sha256 ? hex : NULL, "url", url);
	return json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s?, s:o, s:s, s:s, s:s, s:b}",
	    "event_id", e->e_event_id, "purpose", e->e_purpose, "purpose_title",
	    f->rf_purpose_title, "channel", strcmp(e->e_channel, CM_ALL_CHANNELS) ?
	    e->e_channel : NULL, "action", e->e_state, "lawful_basis", f->rf_lawful_basis,
	    "notice", notice, "method", e->e_method, "collected_at", col, "recorded_at",
	    rec, "superseded", e->e_superseded);
}

static json_t *
audit_json(const struct cm_receipt_facts *f)
{
	uint8_t leaf[32];
	json_t *proof = json_array();
	size_t i;

	cm_merkle_leaf_hash(leaf, f->rf_entry, f->rf_entry_len);
	for (i = 0; i < f->rf_nproof; i++)
		json_array_append_new(proof, b64_json(f->rf_proof[i], 32));
	return json_pack("{s:I, s:o, s:o, s:I, s:o, s:o, s:s}", "index",
	    (json_int_t)f->rf_event->e_audit_index, "entry", b64_json(f->rf_entry,
	    f->rf_entry_len), "leaf_hash", b64_json(leaf, 32), "tree_size",
	    (json_int_t)f->rf_size, "root", b64_json(f->rf_root, 32), "proof", proof,
	    "checkpoint", f->rf_checkpoint);
}

cm_result
cm_receipt_build(const struct cm_receipt_facts *f, const uint8_t sk[64], const uint8_t pk[32],
    json_t **out)
{
	char id[CM_RECEIPT_ID_LEN + 1], vkey[256], *t = NULL;
	const char *s;
	uint8_t sig[64];
	json_t *r;
	cm_result rc = CM_INVALID;

	*out = NULL;
	s = json_string_value(json_object_get(f->rf_policy, "jurisdiction"));
	r = json_pack("{s:s, s:s?, s:s?, s:s?, s:o, s:{s:s}, s:o, s:o}", "format",
	    CM_RECEIPT_FORMAT, "language", json_string_value(json_object_get(f->rf_policy,
	    "language")), "jurisdiction", s, "privacy_notice_url",
	    json_string_value(json_object_get(f->rf_policy, "privacy_notice_url")),
	    "controller", controller_json(f->rf_policy), "subject", "pseudonym",
	    f->rf_pseudonym, "consent", consent_json(f), "audit", audit_json(f));
	if (r == NULL || cm_receipt_id(id, r) != 0)
		goto out;
	json_object_set_new(r, "receipt_id", json_string(id));
	cm_note_vkey(vkey, sizeof(vkey), f->rf_origin, CM_NOTE_ED25519, pk);
	json_object_set_new(r, "signature", json_pack("{s:s, s:s, s:s}", "alg", "Ed25519",
	    "domain", CM_RECEIPT_DOMAIN, "vkey", vkey));
	if ((t = cm_receipt_canonical(r, true)) == NULL ||
	    cm_audit_sign_detached(sig, CM_RECEIPT_DOMAIN, t, strlen(t), sk) != 0)
		goto out;
	json_object_set_new(json_object_get(r, "signature"), "value",
	    b64_json(sig, sizeof(sig)));
	*out = r;
	r = NULL;
	rc = CM_OK;
out:
	free(t);
	json_decref(r);
	return rc;
}

/* What is read for one receipt, freed by issue_clear(). */
struct issue {
	struct cm_event_row	 ev;
	struct cm_checkpoint_row cp;
	bool			 has_cp;
	struct cm_buf		 entry;
	char			 pseudonym[64];
	uint8_t			 proof[CM_MERKLE_MAX_PROOF][32];
	size_t			 nproof;
	bool			 has_notice;
	uint8_t			 notice_sha[32];
	char			 basis[24];
	char			*title;
};

static void
issue_clear(struct issue *is)
{
	if (is->has_cp)
		free(is->cp.cp_note);
	cm_buf_free(&is->entry);
	free(is->title);
}

static int
issue_entry(void *arg, uint64_t idx, const void *entry, size_t len, const uint8_t leaf[32])
{
	struct issue *is = arg;

	(void)idx;
	(void)leaf;
	cm_buf_append(&is->entry, entry, len);
	return 0;
}

static int
issue_notice(void *arg, const struct cm_notice_row *n)
{
	struct issue *is = arg;
	json_t *t;

	is->has_notice = true;
	memcpy(is->notice_sha, n->nr_sha256, 32);
	snprintf(is->basis, sizeof(is->basis), "%s", n->nr_basis);
	t = json_loadb(n->nr_text, n->nr_text_len, 0, NULL);
	if (json_string_value(json_object_get(t, "title")) != NULL)
		is->title = strdup(json_string_value(json_object_get(t, "title")));
	json_decref(t);
	return 0;
}

/* The entry of the event, its pseudonym, and its proof against the checkpoint. */
static cm_result
issue_proof(const struct cm_ctx *cx, struct issue *is)
{
	uint64_t idx = (uint64_t)is->ev.e_audit_index;
	uint8_t leaf[32];
	json_t *e;
	cm_result rc;

	if ((rc = cm_store_audit_scan(cx->cx_db, idx, idx + 1, issue_entry, is)) != CM_OK)
		return rc;
	if (is->entry.b_len == 0)
		return CM_IOERR;
	e = json_loadb(is->entry.b_data, is->entry.b_len, 0, NULL);
	snprintf(is->pseudonym, sizeof(is->pseudonym), "%s",
	    json_string_value(json_object_get(e, "s")) ?
	    json_string_value(json_object_get(e, "s")) : "");
	json_decref(e);
	if (is->pseudonym[0] == '\0')
		return CM_IOERR;
	if ((rc = cm_audit_inclusion_proof(cx->cx_db, idx, is->cp.cp_size, is->proof,
	    CM_MERKLE_MAX_PROOF, &is->nproof)) != CM_OK)
		return rc;
	/* Never sign a receipt whose proof does not hold: the store is damaged. */
	cm_merkle_leaf_hash(leaf, (const uint8_t *)is->entry.b_data, is->entry.b_len);
	if (cm_merkle_verify_inclusion(idx, is->cp.cp_size, leaf,
	    (const uint8_t (*)[32])is->proof, is->nproof, is->cp.cp_root) != 0) {
		cm_log(CM_LOG_ERROR, "receipt_proof_invalid", NULL);
		return CM_IOERR;
	}
	return CM_OK;
}

/*
 * The index the receipt's checkpoint must cover: the event's, or, once the
 * audit key was rotated, the last index before the current key's range,
 * so the checkpoint is signed by the key that signs the receipt.
 */
static uint64_t
receipt_cp_from(const struct cm_ctx *cx, uint64_t index)
{
	struct cm_audit_vkey *v = NULL;
	size_t n = 0;

	if (cm_audit_vkeys_load(cx->cx_db, &v, &n) == CM_OK && n > 0 &&
	    v[n - 1].av_from > 0 && v[n - 1].av_from - 1 > index)
		index = v[n - 1].av_from - 1;
	free(v);
	return index;
}

/* Reads everything a receipt of EVENT_ID states into IS. */
static cm_result
issue_read(const struct cm_ctx *cx, const char *event_id, struct issue *is,
    struct cm_why *w)
{
	struct cm_subject_row s;
	cm_result rc;

	if ((rc = cm_store_event_get(cx->cx_db, event_id, &is->ev)) == CM_OK &&
	    (rc = cm_store_subject_get(cx->cx_db, is->ev.e_subject, &s)) == CM_OK &&
	    s.s_state == CM_SUBJECT_ERASED)
		rc = CM_NOTFOUND;
	if (rc == CM_NOTFOUND)
		cm_why_set(w, "not_found", "no such consent event");
	if (rc != CM_OK)
		return rc;
	rc = cm_store_audit_checkpoint_covering(cx->cx_db, receipt_cp_from(cx,
	    (uint64_t)is->ev.e_audit_index), &is->cp);
	if (rc == CM_NOTFOUND) {
		cm_why_set(w, "checkpoint_pending", "no signed checkpoint covers this event "
		    "yet; one is signed within a second, ask again then");
		return CM_CONFLICT;
	}
	if (rc != CM_OK)
		return rc;
	is->has_cp = true;
	if ((rc = issue_proof(cx, is)) != CM_OK)
		return rc;
	rc = cm_store_notice_get(cx->cx_db, is->ev.e_purpose, is->ev.e_notice_version,
	    issue_notice, is);
	return rc == CM_NOTFOUND ? CM_OK : rc;
}

/*
 * The lawful basis of the event's notice version: as stored with that
 * version, else the policy's when it is at that version still (a basis
 * cannot change without a new version), else unknown.
 */
static const char *
issue_basis(const struct cm_ctx *cx, const struct issue *is)
{
	int pi;

	if (is->has_notice)
		return is->basis;
	if (cx->cx_policy == NULL ||
	    (pi = cm_policy_purpose_index(cx->cx_policy, is->ev.e_purpose)) < 0 ||
	    cx->cx_policy->pol_purposes[pi].pu_version != is->ev.e_notice_version)
		return NULL;
	return cm_lawful_basis_name(cx->cx_policy->pol_purposes[pi].pu_basis);
}

cm_result
cm_receipt_issue(const struct cm_ctx *cx, const char *origin, const char *event_id,
    json_t **out, struct cm_why *w)
{
	struct cm_receipt_facts f;
	struct issue is;
	cm_result rc;

	*out = NULL;
	if (!cm_event_id_valid(event_id)) {
		cm_why_set(w, "invalid_field", "not an event id (evt_ and 26 base32 characters)");
		return CM_INVALID;
	}
	memset(&is, 0, sizeof(is));
	if ((rc = cm_db_read_begin(cx->cx_db)) != CM_OK)
		return rc;
	rc = issue_read(cx, event_id, &is, w);
	cm_db_read_end(cx->cx_db);
	if (rc != CM_OK)
		goto out;
	memset(&f, 0, sizeof(f));
	f.rf_event = &is.ev;
	f.rf_pseudonym = is.pseudonym;
	f.rf_lawful_basis = issue_basis(cx, &is);
	f.rf_purpose_title = is.title;
	f.rf_notice_sha256 = is.has_notice ? is.notice_sha : NULL;
	f.rf_policy = cx->cx_policy ? cx->cx_policy->pol_doc : NULL;
	f.rf_entry = is.entry.b_data;
	f.rf_entry_len = is.entry.b_len;
	f.rf_size = is.cp.cp_size;
	f.rf_root = is.cp.cp_root;
	f.rf_proof = (const uint8_t (*)[32])is.proof;
	f.rf_nproof = is.nproof;
	f.rf_checkpoint = is.cp.cp_note;
	f.rf_origin = origin;
	rc = cm_receipt_build(&f, cx->cx_keys->k_audit_sk, cx->cx_keys->k_audit_pk, out);
out:
	issue_clear(&is);
	return rc;
}
