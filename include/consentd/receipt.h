/* SPDX-License-Identifier: ISC */
/*
 * Consent receipts (SPEC §7, GDPR Art. 7(1)): a signed statement of one
 * consent event that anyone holding the log's verifier key can check
 * offline. It carries the fields of ISO/IEC TS 27560 and the Kantara
 * Consent Receipt 1.1 (controller, purpose, lawful basis, notice version,
 * method, times, a subject pseudonym; docs/receipt-format.md maps them),
 * the exact audit entry that recorded the event with its RFC 9162
 * inclusion proof against the first signed checkpoint covering it, that
 * checkpoint's signed note, and an Ed25519 signature by the log's key over
 * the receipt's canonical JSON (sorted keys, no white space; all of it but
 * signature.value) prefixed with the domain "consentd-receipt/1" and a
 * NUL byte.
 */
#ifndef CONSENTD_RECEIPT_H
#define CONSENTD_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consentd/common.h"
#include "consentd/core.h"
#include "consentd/store.h"

#define CM_RECEIPT_FORMAT	"consentd-receipt/1"
/* What the signed bytes start with (then a NUL byte, then the receipt). */
#define CM_RECEIPT_DOMAIN	"consentd-receipt/1"
/* What the bytes a receipt id is the hash of start with. */
#define CM_RECEIPT_ID_DOMAIN	"consentd-receipt-id/1"
#define CM_RECEIPT_ID_LEN	36	/* a UUID: 8-4-4-4-12 hex digits */
#define CM_RECEIPT_MAX_BYTES	(1024 * 1024)

/* Everything a receipt states; every pointer is borrowed for the call. */
struct cm_receipt_facts {
	const struct cm_event_row *rf_event;
	const char	*rf_pseudonym;		/* the entry's "s" */
	const char	*rf_lawful_basis;	/* of the notice version, or NULL */
	const char	*rf_purpose_title;	/* of the notice version, or NULL */
	const uint8_t	*rf_notice_sha256;	/* of the stored notice text, or NULL */
	json_t		*rf_policy;		/* the policy document */
	const void	*rf_entry;		/* the audit entry, exactly as stored */
	size_t		 rf_entry_len;
	uint64_t	 rf_size;		/* the checkpoint's tree size */
	const uint8_t	*rf_root;		/* and root */
	const uint8_t	(*rf_proof)[32];	/* inclusion proof of rf_event's entry */
	size_t		 rf_nproof;
	const char	*rf_checkpoint;		/* the checkpoint's signed note */
	const char	*rf_origin;		/* the log's origin (its key name) */
};

/* Whether S has the form of an event id ("evt_" and 26 base32 characters). */
bool	cm_event_id_valid(const char *s);

/*
 * Builds and signs the receipt of F with the log's key SK/PK. Deterministic:
 * the same facts give the same bytes. *OUT is a new reference.
 */
cm_result cm_receipt_build(const struct cm_receipt_facts *f, const uint8_t sk[64],
	    const uint8_t pk[32], json_t **out) CM_WUR;

/*
 * The receipt of consent event EVENT_ID, read in one snapshot, signed
 * with CX's audit key; ORIGIN is the log's. CM_INVALID "invalid_field"
 * for a malformed id; CM_NOTFOUND "not_found" for an unknown event and
 * for an event of an erased subject (nothing is told about it);
 * CM_CONFLICT "checkpoint_pending" while no signed checkpoint covers the
 * event's entry yet (the checkpointer signs one within a second).
 */
cm_result cm_receipt_issue(const struct cm_ctx *, const char *origin,
	    const char *event_id, json_t **out, struct cm_why *) CM_WUR;

/* ---- verification (src/core/receipt_verify.c) -------------------------- */

/*
 * The canonical bytes of receipt R (sorted keys, no white space), as a new
 * string the caller frees, NULL when R is not an object. WITH_ID: what is
 * signed, everything but signature.value. Without: what the id is the
 * hash of, without receipt_id and signature.
 */
char	*cm_receipt_canonical(json_t *r, bool with_id);

/* The receipt id of R (a UUIDv8 from SHA-256 of its content) into OUT. */
int	cm_receipt_id(char out[CM_RECEIPT_ID_LEN + 1], json_t *r) CM_WUR;

struct cm_receipt_report {
	char		 rr_event_id[CM_EVENT_ID_LEN + 1];
	uint64_t	 rr_index;
	uint64_t	 rr_size;
	bool		 rr_key_from_receipt;	/* no VKEY given: only integrity shown */
	char		 rr_why[256];		/* the first check that failed */
};

/*
 * Checks receipt R offline: its form, its id, its signature, the
 * checkpoint's signature, that the entry it carries is in that tree (the
 * inclusion proof), and that the entry records what the receipt says.
 * Keys: the verifier key VKEY, or when NULL the one the receipt names
 * (which shows integrity, not who signed). 0, or -1 with rr_why set.
 */
int	cm_receipt_verify(json_t *r, const char *vkey, struct cm_receipt_report *) CM_WUR;

#endif
