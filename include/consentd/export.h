/* SPDX-License-Identifier: ISC */
/*
 * The consentd-export/1 document (docs/export-format.md): one JSON object
 * laid out one member per line, so that each member ("section") is a run
 * of whole lines whose exact bytes are hashed as they are written; a
 * manifest lists each section's SHA-256 and an Ed25519 signature covers
 * the manifest's exact bytes. Written a piece at a time (a list section
 * one item per line), so a document of any length needs no more memory
 * than its longest item; verified the same way, offline.
 */
#ifndef CONSENTD_EXPORT_H
#define CONSENTD_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "consentd/common.h"
#include "consentd/crypto.h"

#define CM_EXPORT_FORMAT	"consentd-export/1"
/* What the signature covers: this prefix, then the manifest's bytes. */
#define CM_EXPORT_SIG_PREFIX	"consentd-export/1 manifest\n"
#define CM_EXPORT_NAME_MAX	32

/* Where the bytes go: 0, or -1 to stop the document. */
typedef int (*cm_export_sink)(void *arg, const void *data, size_t len);

/* A document being written; fill with cm_export_begin. */
struct cm_export {
	cm_export_sink		 ex_sink;
	void			*ex_arg;
	bool			 ex_failed;	/* the sink failed, or a value would not encode */
	bool			 ex_in_list;
	size_t			 ex_items;	/* of the list being written */
	char			 ex_name[CM_EXPORT_NAME_MAX];	/* the open section, or "" */
	struct cm_sha256_ctx	 ex_hash;	/* of the open section's bytes */
	json_t			*ex_sections;	/* the manifest's list so far */
	uint64_t		 ex_bytes;	/* written so far */
};

/* Starts a document into SINK(ARG, …); writes "{" and the "format" section. */
void	cm_export_begin(struct cm_export *, cm_export_sink sink, void *arg);
/* A section NAME ([a-z0-9_]) holding V (taken), on one line. */
void	cm_export_value(struct cm_export *, const char *name, json_t *v);
/* A section NAME holding a list, one item per line: begin, items (taken), end. */
void	cm_export_list_begin(struct cm_export *, const char *name);
void	cm_export_list_item(struct cm_export *, json_t *v);
void	cm_export_list_end(struct cm_export *);
/*
 * Writes the manifest and its signature by the key SK/PK named KEY_NAME
 * (the audit log's origin, as its verifier key names it) and closes the
 * document. 0, or -1 when anything written failed; the state is released
 * either way.
 */
int	cm_export_finish(struct cm_export *, const char *key_name, const uint8_t sk[64],
	    const uint8_t pk[32]) CM_WUR;
/* Releases a document abandoned before cm_export_finish; accepts a zeroed one. */
void	cm_export_abort(struct cm_export *);

/* What a verification found. */
struct cm_export_check {
	size_t	ec_sections;		/* sections hashed and matched */
	char	ec_key_name[128];	/* who signed */
	char	ec_error[256];		/* why it failed, naming the section or line */
};

/*
 * Verifies the document read from F against the verifier key VKEY (C2SP
 * "name+hexkeyid+base64(0x01 || pk)", as GET /v1/audit/vkey gives it):
 * the layout, every section's SHA-256 against the manifest, and the
 * signature over the manifest. 0, or -1 with EC->ec_error saying why.
 */
int	cm_export_verify(FILE *f, const char *vkey, struct cm_export_check *ec) CM_WUR;

#endif
