/* SPDX-License-Identifier: ISC */
/*
 * The history of the policy's notices (SPEC §4, "Policy history"): the
 * text of every purpose version the service has served, kept so that what
 * a person was told when they decided can always be shown (EDPB 05/2020
 * §108). A purpose's notice text is its title, description, lawful basis,
 * channels, data categories and recipients, as canonical JSON (sorted
 * keys, no white space), with the SHA-256 of those bytes. At start-up the
 * policy is compared with the history: a version that went down, or a text
 * or lawful basis that changed under the same version, is refused; each
 * new version is stored with its audit entry "policy.version".
 */
#ifndef CONSENTD_NOTICE_H
#define CONSENTD_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consentd/common.h"
#include "consentd/store.h"

struct cm_db;
struct cm_policy;
struct json_t;		/* jansson's json_t: the store side never needs its header */

/* ---- domain (src/core/notice.c) ----------------------------------------- */

/*
 * The notice text of purpose index PURPOSE of the policy: its title,
 * description, lawful_basis, channels, data_categories and recipients as
 * written, in canonical JSON. *TEXT is a new string the caller frees with
 * free(); SHA256 receives the SHA-256 of its bytes.
 */
cm_result cm_notice_text(const struct cm_policy *, size_t purpose, char **text,
	    uint8_t sha256[32]) CM_WUR;

/*
 * Compares purpose index PURPOSE of the policy, whose notice text is TEXT
 * (from cm_notice_text), with its history: SAME is the stored row of the
 * purpose's current version (NULL when that version was never served),
 * MAX_VERSION the highest version stored for the purpose (0: none). CM_OK
 * with *IS_NEW set when the version is to be recorded, clear when it is
 * already stored with this very text. CM_CONFLICT when the version is
 * below MAX_VERSION, or when the text differs from SAME's: ERR then reads
 * "FILE:LINE: FIELD: purpose ID changed its FIELD (OLD → NEW) without
 * raising version N", naming the first field that differs.
 */
cm_result cm_notice_compare(const struct cm_policy *, size_t purpose, const char *text,
	    const struct cm_notice_row *same, int64_t max_version, bool *is_new,
	    char *err, size_t errlen) CM_WUR;

/*
 * The start-up check: compares every purpose of the policy with the
 * history in DB and, only when none is refused, stores every new version
 * with its audit entry "policy.version" (actor "system"; details purpose,
 * version, sha256, lawful_basis), all in one transaction. Purposes no
 * longer in the policy keep their history. *RECORDED is the number of
 * versions stored. CM_CONFLICT with ERR as cm_notice_compare() writes it,
 * or a store error with a reason in ERR; either way nothing was written.
 */
cm_result cm_notice_sync(struct cm_db *, const struct cm_policy *, size_t *recorded,
	    char *err, size_t errlen) CM_WUR;

/*
 * A stored row as the API shows it: {"purpose","version","sha256" (hex),
 * "notice" (the stored text as an object, whose canonical form is the
 * hashed bytes),"first_served_at","audit_index"}. A new reference, or NULL
 * when the stored text is not a JSON object.
 */
struct json_t *cm_notice_json(const struct cm_notice_row *);

#endif
