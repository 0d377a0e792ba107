/* SPDX-License-Identifier: ISC */
/*
 * Checking a consent receipt offline, with nothing but the receipt and the
 * log's verifier key: what `consentd receipt verify` runs, and what the
 * issuer's own bytes are made from (the canonical form and the id). The
 * checks, in order: the form; the id, a hash of the content; the
 * signature, over the canonical JSON (all of it but the signature's value)
 * with the domain prefix; the
 * checkpoint's signed note, by the same key; the inclusion proof of the
 * carried entry in that checkpoint's tree; and that the entry is the
 * consent.recorded entry of the very event the receipt describes, with
 * the same purpose, channel, action, method, notice version, collection
 * time and pseudonym. The last step is what makes the receipt's claims
 * rest on the log (which witnesses check), not on the signature alone.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/receipt.h"
#include "consentd/util.h"

#define VKEY_MAX	512

char *
cm_receipt_canonical(json_t *r, bool with_id)
{
	json_t *c, *sig;
	char *t;

	if (!json_is_object(r) || (c = json_copy(r)) == NULL)
		return NULL;
	if (with_id && json_is_object(sig = json_object_get(r, "signature"))) {
		/* What the signature says of itself is signed too: all but its value. */
		sig = json_copy(sig);
		json_object_del(sig, "value");
		json_object_set_new(c, "signature", sig);
	} else {
		json_object_del(c, "signature");
	}
	if (!with_id)
		json_object_del(c, "receipt_id");
	t = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(c);
	return t;
}

int
cm_receipt_id(char out[CM_RECEIPT_ID_LEN + 1], json_t *r)
{
	struct cm_buf b = { 0 };
	uint8_t h[32];
	char hex[33], *t;

	if ((t = cm_receipt_canonical(r, false)) == NULL)
		return -1;
	cm_buf_append(&b, CM_RECEIPT_ID_DOMAIN, strlen(CM_RECEIPT_ID_DOMAIN) + 1);
	cm_buf_append(&b, t, strlen(t));
	cm_sha256(h, b.b_data, b.b_len);
	cm_buf_free(&b);
	free(t);
	/* RFC 9562 UUIDv8 (B.2, name-based with SHA-256): version and variant. */
	h[6] = (uint8_t)((h[6] & 0x0f) | 0x80);
	h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
	cm_hex_encode(hex, h, 16);
	snprintf(out, CM_RECEIPT_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
	    hex + 12, hex + 16, hex + 20);
	return 0;
}

static int	fail(struct cm_receipt_report *, const char *, ...) CM_PRINTF(2, 3);

static int
fail(struct cm_receipt_report *rr, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rr->rr_why, sizeof(rr->rr_why), fmt, ap);
	va_end(ap);
	return -1;
}

/* The string at PATH ("a.b") in R, or NULL. */
static const char *
str_at(json_t *r, const char *a, const char *b)
{
	json_t *v = json_object_get(r, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* Decodes base64 S into exactly 32 bytes. 0 or -1. */
static int
hash32(const char *s, uint8_t out[32])
{
	return s != NULL && cm_base64_decode(out, 32, s, strlen(s)) == 32 ? 0 : -1;
}

/* The signature over the canonical bytes, by PK. */
static int
check_signature(json_t *r, const uint8_t pk[32], struct cm_receipt_report *rr)
{
	const char *v = str_at(r, "signature", "value"), *d = str_at(r, "signature", "domain");
	uint8_t sig[64];
	char *t;
	int rc;

	if (v == NULL || cm_base64_decode(sig, sizeof(sig), v, strlen(v)) != 64 ||
	    d == NULL || strcmp(d, CM_RECEIPT_DOMAIN) != 0 ||
	    strcmp(str_at(r, "signature", "alg") ? str_at(r, "signature", "alg") : "",
	    "Ed25519") != 0)
		return fail(rr, "signature: missing or malformed (Ed25519, domain %s, "
		    "64 bytes in base64)", CM_RECEIPT_DOMAIN);
	if ((t = cm_receipt_canonical(r, true)) == NULL)
		return fail(rr, "receipt: not a JSON object");
	rc = cm_audit_verify_detached(sig, CM_RECEIPT_DOMAIN, t, strlen(t), pk);
	free(t);
	if (rc != 0)
		return fail(rr, "signature: does not verify with the key given: the receipt "
		    "was altered or signed by another key");
	return 0;
}

/* The checkpoint note by VKEY, naming the tree the proof is against. */
static int
check_checkpoint(json_t *r, const char *vkey, uint64_t size, const uint8_t root[32],
    struct cm_receipt_report *rr)
{
	const char *note = str_at(r, "audit", "checkpoint");
	char body[CM_NOTE_MAX], origin[CM_AUDIT_ORIGIN_MAX + 1];
	uint8_t croot[32];
	uint64_t csize;

	if (note == NULL || cm_note_open(note, vkey, body, sizeof(body)) != 0)
		return fail(rr, "checkpoint: its signature does not verify with the key given");
	if (cm_checkpoint_parse(body, strlen(body), origin, sizeof(origin), &csize,
	    croot) != 0)
		return fail(rr, "checkpoint: not a tlog checkpoint");
	if (csize != size || cm_memeq(croot, root, 32) != 0)
		return fail(rr, "checkpoint: its size or root differs from audit.tree_size "
		    "or audit.root");
	return 0;
}

/* The entry and its inclusion proof; the entry's bytes into *ENTRY (free). */
static int
check_proof(json_t *r, uint64_t *index, uint64_t *size, uint8_t root[32], json_t **entry,
    struct cm_receipt_report *rr)
{
	json_t *a = json_object_get(r, "audit"), *p = json_object_get(a, "proof"), *v;
	uint8_t (*proof)[32] = NULL, leaf[32], want[32];
	const char *e64 = str_at(r, "audit", "entry");
	uint8_t *bytes = NULL;
	long n;
	size_t i, np;
	int rc = -1;

	*entry = NULL;
	if (!json_is_integer(json_object_get(a, "index")) ||
	    !json_is_integer(json_object_get(a, "tree_size")) ||
	    json_integer_value(json_object_get(a, "index")) < 0 ||
	    hash32(str_at(r, "audit", "root"), root) != 0 ||
	    hash32(str_at(r, "audit", "leaf_hash"), want) != 0 || !json_is_array(p) ||
	    (np = json_array_size(p)) > CM_MERKLE_MAX_PROOF || e64 == NULL)
		return fail(rr, "audit: missing or malformed index, tree_size, root, "
		    "leaf_hash, proof or entry");
	*index = (uint64_t)json_integer_value(json_object_get(a, "index"));
	*size = (uint64_t)json_integer_value(json_object_get(a, "tree_size"));
	bytes = cm_malloc(strlen(e64) / 4 * 3 + 3);
	if ((n = cm_base64_decode(bytes, strlen(e64) / 4 * 3 + 3, e64, strlen(e64))) <= 0) {
		fail(rr, "audit.entry: not base64");
		goto out;
	}
	cm_merkle_leaf_hash(leaf, bytes, (size_t)n);
	if (cm_memeq(leaf, want, 32) != 0) {
		fail(rr, "audit.entry: its leaf hash is not audit.leaf_hash");
		goto out;
	}
	proof = cm_calloc(np + 1, 32);
	json_array_foreach(p, i, v)
		if (hash32(json_string_value(v), proof[i]) != 0) {
			fail(rr, "audit.proof[%zu]: not a base64 SHA-256 hash", i);
			goto out;
		}
	if (cm_merkle_verify_inclusion(*index, *size, leaf, (const uint8_t (*)[32])proof, np,
	    root) != 0) {
		fail(rr, "audit.proof: entry %" PRIu64 " is not in the tree of size %" PRIu64
		    " with that root", *index, *size);
		goto out;
	}
	if ((*entry = json_loadb((const char *)bytes, (size_t)n, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL) {
		fail(rr, "audit.entry: not JSON");
		goto out;
	}
	rc = 0;
out:
	free(bytes);
	free(proof);
	return rc;
}

/* Whether the strings A and B are equal, NULL equal only to NULL. */
static bool
same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The entry records what the receipt says, about the same pseudonym. */
static int
check_entry(json_t *r, json_t *e, uint64_t index, struct cm_receipt_report *rr)
{
	json_t *d = json_object_get(e, "d"), *c = json_object_get(r, "consent");
	json_t *nv = json_object_get(json_object_get(c, "notice"), "version");
	char col[32];

	if (!json_is_integer(json_object_get(e, "i")) ||
	    (uint64_t)json_integer_value(json_object_get(e, "i")) != index ||
	    !same_str(json_string_value(json_object_get(e, "type")), "consent.recorded"))
		return fail(rr, "audit.entry: not the consent.recorded entry %" PRIu64, index);
	if (!same_str(json_string_value(json_object_get(e, "s")),
	    str_at(r, "subject", "pseudonym")) || str_at(r, "subject", "pseudonym") == NULL)
		return fail(rr, "subject.pseudonym: not the one the entry names");
	if (!json_is_integer(json_object_get(d, "collected_at")))
		return fail(rr, "audit.entry: no collected_at");
	cm_time_format(col, json_integer_value(json_object_get(d, "collected_at")));
	if (!same_str(str_at(d, "event_id", NULL), str_at(c, "event_id", NULL)) ||
	    str_at(c, "event_id", NULL) == NULL)
		return fail(rr, "consent.event_id: not the event the entry records");
	if (!same_str(str_at(d, "purpose", NULL), str_at(c, "purpose", NULL)) ||
	    !same_str(str_at(d, "channel", NULL), str_at(c, "channel", NULL)) ||
	    !same_str(str_at(d, "state", NULL), str_at(c, "action", NULL)) ||
	    !same_str(str_at(d, "method", NULL), str_at(c, "method", NULL)) ||
	    !same_str(col, str_at(c, "collected_at", NULL)) || !json_is_integer(nv) ||
	    !json_equal(json_object_get(d, "notice_version"), nv) ||
	    !json_equal(json_object_get(d, "superseded"), json_object_get(c, "superseded")))
		return fail(rr, "consent: purpose, channel, action, method, notice version, "
		    "collected_at or superseded differ from what the entry records");
	return 0;
}

int
cm_receipt_verify(json_t *r, const char *vkey, struct cm_receipt_report *rr)
{
	char id[CM_RECEIPT_ID_LEN + 1], name[CM_AUDIT_ORIGIN_MAX + 1];
	const char *given = vkey;
	uint8_t pk[32], root[32];
	json_t *entry = NULL;
	int rc = -1;

	memset(rr, 0, sizeof(*rr));
	if (!json_is_object(r) || !same_str(str_at(r, "format", NULL), CM_RECEIPT_FORMAT))
		return fail(rr, "format: not a %s receipt", CM_RECEIPT_FORMAT);
	snprintf(rr->rr_event_id, sizeof(rr->rr_event_id), "%s",
	    str_at(r, "consent", "event_id") ? str_at(r, "consent", "event_id") : "");
	if (vkey == NULL) {
		rr->rr_key_from_receipt = true;
		if ((vkey = str_at(r, "signature", "vkey")) == NULL)
			return fail(rr, "signature.vkey: missing, and no key was given");
	}
	if (strlen(vkey) > VKEY_MAX ||
	    cm_note_vkey_parse(vkey, CM_NOTE_ED25519, name, sizeof(name), pk) != 0)
		return fail(rr, "%s: not an Ed25519 verifier key (name+keyid+base64)",
		    given ? "the key given" : "signature.vkey");
	if (cm_receipt_id(id, r) != 0 || !same_str(id, str_at(r, "receipt_id", NULL)))
		return fail(rr, "receipt_id: not the hash of the receipt's content");
	if (check_signature(r, pk, rr) != 0 ||
	    check_proof(r, &rr->rr_index, &rr->rr_size, root, &entry, rr) != 0 ||
	    check_checkpoint(r, vkey, rr->rr_size, root, rr) != 0 ||
	    check_entry(r, entry, rr->rr_index, rr) != 0)
		goto out;
	rc = 0;
out:
	json_decref(entry);
	return rc;
}
