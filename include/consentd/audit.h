/* SPDX-License-Identifier: ISC */
/*
 * The append-only audit log: entries appended inside the caller's
 * transaction, an RFC 6962 Merkle tree over them, C2SP signed-note
 * checkpoints, inclusion and consistency proofs, full verification, and
 * the C2SP cosignature a DPO-held witness adds. Entries hold no personal
 * data: a subject appears as a random pseudonym (its mapping is erasable),
 * and personal details only as a salted SHA-256 commitment whose opening
 * is sealed under the subject's own key.
 */
#ifndef CONSENTD_AUDIT_H
#define CONSENTD_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "consentd/common.h"

struct cm_db;
struct cm_buf;
struct cm_keys;

#define CM_AUDIT_ENTRY_MAX	65536
#define CM_AUDIT_ENTRY_VERSION	1
#define CM_AUDIT_ORIGIN_MAX	128
#define CM_NOTE_MAX		4096

/* One change to record. Every pointer is borrowed for the call. */
struct cm_audit_event {
	const char	*ae_type;	/* "token.created", "consent.recorded", … */
	const char	*ae_actor;	/* "system", "subject" or "token:NAME" */
	json_t		*ae_details;	/* non-personal details (integers, strings,
					   booleans, arrays, objects), or NULL */
	const char	*ae_subject;	/* subject id, or NULL */
	const uint8_t	*ae_subject_key;/* the subject's 32-byte data key, needed
					   when ae_private is set */
	json_t		*ae_private;	/* personal details: only a commitment goes
					   in the entry, or NULL */
};

/*
 * Appends EV to the log inside the transaction the caller holds open on
 * DB, so the entry commits or rolls back with the change it records. Sets
 * *INDEX to the entry's index. CM_INVALID for a malformed event (a real
 * number, an entry over 64 KiB, private details without a subject key).
 */
cm_result cm_audit_append(struct cm_db *, const struct cm_audit_event *,
	    uint64_t *index) CM_WUR;

/* Root of the first SIZE entries, from O(log n) stored hashes. */
cm_result cm_audit_root(struct cm_db *, uint64_t size, uint8_t root[32]) CM_WUR;

/* Inclusion proof of entry INDEX in the tree of SIZE entries (RFC 9162). */
cm_result cm_audit_inclusion_proof(struct cm_db *, uint64_t index, uint64_t size,
	    uint8_t (*proof)[32], size_t cap, size_t *n) CM_WUR;
/* Consistency proof from the tree of OLD entries to the one of NEW. */
cm_result cm_audit_consistency_proof(struct cm_db *, uint64_t old, uint64_t new_,
	    uint8_t (*proof)[32], size_t cap, size_t *n) CM_WUR;

/*
 * The inclusion proof of entry INDEX in the tree of SIZE entries as the
 * JSON the API serves and the CLI prints: {"index","size","leaf_hash",
 * "root","proof"}, hashes in base64. *OUT is a new reference.
 */
cm_result cm_audit_proof_json(struct cm_db *, uint64_t index, uint64_t size,
	    json_t **out) CM_WUR;
/* Likewise {"old","new","old_root","new_root","proof"} (a witness reads it). */
cm_result cm_audit_consistency_json(struct cm_db *, uint64_t old, uint64_t new_,
	    json_t **out) CM_WUR;

/*
 * Signs a checkpoint of the current tree when it has grown since the last
 * one, in a transaction of its own. Sets *SIGNED when it made one.
 * Never signs two different roots for one size.
 */
cm_result cm_audit_checkpoint(struct cm_db *, const struct cm_keys *,
	    const char *origin, bool *signed_) CM_WUR;

/*
 * Recomputes the root of the latest checkpoint's size from the stored
 * hashes and compares: a start-up check that the tree was not altered.
 * CM_CONFLICT on a mismatch.
 */
cm_result cm_audit_check_latest(struct cm_db *) CM_WUR;

/* The log origin fixed at init ("consentd/HOST"), into OUT. */
cm_result cm_audit_origin(struct cm_db *, char *out, size_t outlen) CM_WUR;
/* Whether ORIGIN is usable as a note key name (no space, '+', newline). */
bool	cm_audit_origin_valid(const char *origin);

struct cm_verify_report {
	uint64_t	vr_entries;
	uint64_t	vr_checkpoints;
	unsigned	vr_passed;
	unsigned	vr_failed;
	int64_t		vr_first_bad;	/* first bad entry index, or -1 */
};

/*
 * Recomputes the whole tree from the stored entry bytes and checks: the
 * entries run 0..n-1 with matching indices and canonical bytes, every leaf
 * and interior hash, every checkpoint's signature (by the key with vkey
 * VKEY, or the local audit key when VKEY is NULL) and root, and that each
 * checkpoint is consistent with the next. Writes one line per check to OUT.
 * Entries are checked on every core the process may use; what is reported
 * does not depend on it.
 */
cm_result cm_audit_verify(struct cm_db *, const struct cm_keys *, const char *vkey,
	    FILE *out, struct cm_verify_report *) CM_WUR;

/*
 * Whether ENTRY (LEN bytes) is canonical, that is exactly what jansson
 * writes for J with JSON_COMPACT | JSON_SORT_KEYS, where J is what
 * json_loadb() with JSON_REJECT_DUPLICATES made of those bytes (false when
 * J is NULL): the check verify makes of every entry, mostly settled in one
 * pass over the bytes without dumping J.
 */
bool	cm_audit_entry_canonical(const void *entry, size_t len, const json_t *j);

/* ---- the chain of verifier keys (src/audit/vkeys.c) -------------------- */

/* One verifier key and the checkpoints it signs: sizes from av_from on. */
struct cm_audit_vkey {
	uint64_t	av_from;	/* first checkpoint size it signs */
	uint64_t	av_entry;	/* the log entry that names it */
	char		av_vkey[256];	/* C2SP vkey */
};

/*
 * The keys of a log whose key was rotated, oldest first, into *OUT (free()
 * it) and *N; *N is 0 for a log that was never rotated (its one key is the
 * data directory's). CM_CONFLICT when the stored chain is malformed.
 */
cm_result cm_audit_vkeys_load(struct cm_db *, struct cm_audit_vkey **out,
	    size_t *n) CM_WUR;
/* The key of the checkpoint of SIZE: the last one with av_from <= SIZE. */
const char *cm_audit_vkey_for(const struct cm_audit_vkey *, size_t n, uint64_t size);
/*
 * Whether each key of the chain is the one its log entry names, for the
 * sizes it names, and the last is CURRENT (unless NULL).
 */
bool	cm_audit_vkeys_check(struct cm_db *, const struct cm_audit_vkey *, size_t n,
	    const char *current);
/*
 * Records a rotation of the signing key from OLD's to NEWPK: in one
 * transaction the audit.key_rotated entry (both vkeys and *FROM, the
 * first checkpoint size the new key signs) and the chain's new link; then
 * a checkpoint covering the entry, signed by the old key.
 */
cm_result cm_audit_rotate_key(struct cm_db *, const struct cm_keys *old,
	    const uint8_t newpk[32], const char *origin, uint64_t *from) CM_WUR;

/* ---- checkpointer (src/audit/checkpointer.c) --------------------------- */

struct cm_store;
struct cm_checkpointer;

/*
 * Starts a thread that signs a checkpoint every INTERVAL_MS while the log
 * grows. KEYS and STORE are borrowed until cm_checkpointer_stop().
 */
struct cm_checkpointer *cm_checkpointer_start(struct cm_store *,
	    const struct cm_keys *, const char *origin, unsigned interval_ms);
/* Signs a last checkpoint, stops the thread and frees it; accepts NULL. */
void	cm_checkpointer_stop(struct cm_checkpointer *);

/* ---- C2SP notes (src/audit/note.c) -------------------------------------- */

#define CM_NOTE_ED25519		0x01
#define CM_NOTE_COSIGNATURE	0x04

/* The tlog-checkpoint body "ORIGIN\nSIZE\nBASE64(ROOT)\n" into OUT. */
int	cm_checkpoint_body(char *out, size_t outlen, const char *origin,
	    uint64_t size, const uint8_t root[32]) CM_WUR;
/* Parses a checkpoint body (no extension lines). 0 or -1. */
int	cm_checkpoint_parse(const char *body, size_t len, char *origin,
	    size_t originlen, uint64_t *size, uint8_t root[32]) CM_WUR;

/*
 * Signs BODY as a C2SP signed note by NAME with the Ed25519 key SK/PK,
 * appending the whole note to OUT.
 */
int	cm_note_sign(struct cm_buf *out, const char *body, const char *name,
	    const uint8_t sk[64], const uint8_t pk[32]) CM_WUR;
/* The C2SP vkey name+hex(keyid)+base64(TYPE || PK) into OUT. */
void	cm_note_vkey(char *out, size_t outlen, const char *name, uint8_t type,
	    const uint8_t pk[32]);
/*
 * Parses a vkey of TYPE into NAME and PK. 0 or -1.
 */
int	cm_note_vkey_parse(const char *vkey, uint8_t type, char *name,
	    size_t namelen, uint8_t pk[32]) CM_WUR;
/*
 * Splits NOTE into body and signatures and checks that one signature line
 * is a valid Ed25519 signature by the key of VKEY. Copies the body into
 * BODY (BODYLEN bytes). Returns 0, or -1 when no valid signature by that
 * key is present or the note is malformed.
 */
int	cm_note_open(const char *note, const char *vkey, char *body,
	    size_t bodylen) CM_WUR;
/*
 * A C2SP tlog-cosignature/v1 line "— NAME base64(keyid || u64be(T) ||
 * sig)" over BODY at time T, appended to OUT.
 */
int	cm_note_cosign(struct cm_buf *out, const char *body, const char *name,
	    const uint8_t sk[64], const uint8_t pk[32], uint64_t t) CM_WUR;
/* Checks a cosignature line of NOTE by the witness key WVKEY. */
int	cm_note_check_cosignature(const char *note, const char *wvkey,
	    uint64_t *t) CM_WUR;

/* ---- detached signatures (src/audit/sign.c) ----------------------------- */

/*
 * Signs DOMAIN || 0x00 || MSG (LEN bytes) with the Ed25519 key SK into
 * SIG: the log's key signing a document that is not a note, such as a
 * consent receipt. 0 or -1.
 */
int	cm_audit_sign_detached(uint8_t sig[64], const char *domain, const void *msg,
	    size_t len, const uint8_t sk[64]) CM_WUR;
/* Checks SIG over DOMAIN || 0x00 || MSG by the key PK. 0, or -1. */
int	cm_audit_verify_detached(const uint8_t sig[64], const char *domain,
	    const void *msg, size_t len, const uint8_t pk[32]) CM_WUR;

#endif
