/* SPDX-License-Identifier: ISC */
/*
 * Verifying a consentd-export/1 document offline (docs/export-format.md):
 * it is read a line at a time, each section's lines hashed as they come,
 * then the manifest compared with what was hashed and its signature
 * checked with the audit log's verifier key. Nothing of the content is
 * kept or printed: only section names reach the error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/export.h"
#include "consentd/util.h"

struct vstate {
	json_t			*sections;	/* what was hashed: [{"name","sha256"}] */
	char			 name[CM_EXPORT_NAME_MAX];
	struct cm_sha256_ctx	 hash;
	bool			 open;
};

static int
fail(struct cm_export_check *ec, const char *fmt, ...) CM_PRINTF(2, 3);

static int
fail(struct cm_export_check *ec, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ec->ec_error, sizeof(ec->ec_error), fmt, ap);
	va_end(ap);
	return -1;
}

static void
vsection_end(struct vstate *v)
{
	uint8_t h[32];
	char hex[65];

	if (!v->open)
		return;
	cm_sha256_final(&v->hash, h);
	cm_hex_encode(hex, h, sizeof(h));
	json_array_append_new(v->sections, json_pack("{s:s, s:s}", "name", v->name,
	    "sha256", hex));
	v->open = false;
}

/* A member line "NAME":…: its name into V, or -1 when it is not one. */
static int
vsection_begin(struct vstate *v, const char *line, size_t len)
{
	const char *q = memchr(line + 1, '"', len - 1);
	size_t n;

	if (q == NULL || q[1] != ':')
		return -1;
	n = (size_t)(q - line - 1);
	if (n == 0 || n >= sizeof(v->name) ||
	    strspn(line + 1, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return -1;
	vsection_end(v);
	memcpy(v->name, line + 1, n);
	v->name[n] = '\0';
	cm_sha256_init(&v->hash);
	v->open = true;
	return 0;
}

/* Compares the manifest M with what was hashed. */
static int
check_manifest(struct vstate *v, const char *m, size_t mlen, struct cm_export_check *ec)
{
	json_t *mj, *list, *want, *got;
	size_t i;
	int rc = -1;

	if ((mj = json_loadb(m, mlen, 0, NULL)) == NULL)
		return fail(ec, "the manifest is not JSON");
	list = json_object_get(mj, "sections");
	if (!json_is_string(json_object_get(mj, "format")) ||
	    strcmp(json_string_value(json_object_get(mj, "format")), CM_EXPORT_FORMAT) != 0 ||
	    !json_is_string(json_object_get(mj, "hash")) ||
	    strcmp(json_string_value(json_object_get(mj, "hash")), "sha256") != 0 ||
	    !json_is_array(list)) {
		fail(ec, "the manifest is not of %s with sha256", CM_EXPORT_FORMAT);
		goto out;
	}
	for (i = 0; i < json_array_size(v->sections) || i < json_array_size(list); i++) {
		want = json_array_get(list, i);
		got = json_array_get(v->sections, i);
		if (want == NULL || got == NULL) {
			fail(ec, "section %s is %s", json_string_value(json_object_get(
			    want ? want : got, "name")), want ? "missing from the document" :
			    "not in the manifest");
			goto out;
		}
		if (!json_equal(json_object_get(want, "name"), json_object_get(got, "name"))) {
			fail(ec, "section %zu is %s, the manifest says %s", i + 1,
			    json_string_value(json_object_get(got, "name")),
			    json_is_string(json_object_get(want, "name")) ?
			    json_string_value(json_object_get(want, "name")) : "something else");
			goto out;
		}
		if (!json_equal(json_object_get(want, "sha256"), json_object_get(got, "sha256"))) {
			fail(ec, "section %s: SHA-256 does not match the manifest",
			    json_string_value(json_object_get(got, "name")));
			goto out;
		}
	}
	ec->ec_sections = i;
	rc = 0;
out:
	json_decref(mj);
	return rc;
}

/* Checks signature S (its JSON text) over manifest M with VKEY. */
static int
check_signature(const char *s, size_t slen, const char *m, size_t mlen, const char *vkey,
    struct cm_export_check *ec)
{
	struct cm_buf msg = { 0 };
	char name[128], mine[256], *p;
	const char *kn, *kid, *val;
	uint8_t pk[32], sig[64];
	json_t *sj;
	int rc = -1;

	if (cm_note_vkey_parse(vkey, CM_NOTE_ED25519, name, sizeof(name), pk) != 0)
		return fail(ec, "not an Ed25519 verifier key (name+keyid+base64)");
	cm_note_vkey(mine, sizeof(mine), name, CM_NOTE_ED25519, pk);
	if ((sj = json_loadb(s, slen, 0, NULL)) == NULL)
		return fail(ec, "the signature is not JSON");
	kn = json_string_value(json_object_get(sj, "key_name"));
	kid = json_string_value(json_object_get(sj, "key_id"));
	val = json_string_value(json_object_get(sj, "value"));
	p = strchr(mine, '+');
	if (kn == NULL || kid == NULL || val == NULL ||
	    !json_is_string(json_object_get(sj, "algorithm")) ||
	    strcmp(json_string_value(json_object_get(sj, "algorithm")), "ed25519") != 0) {
		fail(ec, "the signature names no ed25519 key and value");
		goto out;
	}
	snprintf(ec->ec_key_name, sizeof(ec->ec_key_name), "%s", kn);
	if (strcmp(kn, name) != 0 || p == NULL || strlen(kid) != 8 ||
	    strncmp(p + 1, kid, 8) != 0) {
		fail(ec, "signed by another key (%.64s+%.8s), not by %s", kn, kid, name);
		goto out;
	}
	if (cm_base64_decode(sig, sizeof(sig), val, strlen(val)) != 64) {
		fail(ec, "the signature value is not 64 bytes of base64");
		goto out;
	}
	cm_buf_append(&msg, CM_EXPORT_SIG_PREFIX, strlen(CM_EXPORT_SIG_PREFIX));
	cm_buf_append(&msg, m, mlen);
	if (cm_ed25519_verify(sig, msg.b_data, msg.b_len, pk) != 0) {
		fail(ec, "the signature over the manifest does not verify with %s", name);
		goto out;
	}
	rc = 0;
out:
	cm_buf_free(&msg);
	json_decref(sj);
	return rc;
}

#define MANIFEST_KEY	"\"manifest\":"
#define SIGNATURE_KEY	"\"signature\":"

int
cm_export_verify(FILE *f, const char *vkey, struct cm_export_check *ec)
{
	struct vstate v;
	char *line = NULL, *man = NULL;
	size_t cap = 0, mlen = 0, lineno = 1;
	ssize_t n;
	int rc = -1;

	memset(ec, 0, sizeof(*ec));
	memset(&v, 0, sizeof(v));
	v.sections = json_array();
	if ((n = getline(&line, &cap, f)) != 2 || strcmp(line, "{\n") != 0) {
		fail(ec, "line 1: not a %s document", CM_EXPORT_FORMAT);
		goto out;
	}
	for (;;) {
		lineno++;
		if ((n = getline(&line, &cap, f)) <= 0 || line[n - 1] != '\n') {
			fail(ec, "line %zu: the document ends before its manifest", lineno);
			goto out;
		}
		if ((size_t)n > strlen(MANIFEST_KEY) &&
		    memcmp(line, MANIFEST_KEY, strlen(MANIFEST_KEY)) == 0)
			break;
		if (line[0] == '"' && vsection_begin(&v, line, (size_t)n) != 0) {
			fail(ec, "line %zu: not a section", lineno);
			goto out;
		}
		if (!v.open) {
			fail(ec, "line %zu: outside any section", lineno);
			goto out;
		}
		if (lineno == 2 && strcmp(line, "\"format\":\"" CM_EXPORT_FORMAT "\",\n") != 0) {
			fail(ec, "line 2: the format is not %s", CM_EXPORT_FORMAT);
			goto out;
		}
		cm_sha256_update(&v.hash, line, (size_t)n);
	}
	vsection_end(&v);
	if (n < (ssize_t)strlen(MANIFEST_KEY) + 3 || memcmp(line + n - 2, ",\n", 2) != 0) {
		fail(ec, "line %zu: the manifest line does not end in \",\"", lineno);
		goto out;
	}
	mlen = (size_t)n - strlen(MANIFEST_KEY) - 2;
	man = cm_malloc(mlen + 1);
	memcpy(man, line + strlen(MANIFEST_KEY), mlen);
	man[mlen] = '\0';
	lineno++;
	if ((n = getline(&line, &cap, f)) <= (ssize_t)strlen(SIGNATURE_KEY) + 1 ||
	    memcmp(line, SIGNATURE_KEY, strlen(SIGNATURE_KEY)) != 0 || line[n - 1] != '\n') {
		fail(ec, "line %zu: no signature after the manifest", lineno);
		goto out;
	}
	if (check_manifest(&v, man, mlen, ec) != 0 ||
	    check_signature(line + strlen(SIGNATURE_KEY), (size_t)n - strlen(SIGNATURE_KEY) - 1,
	    man, mlen, vkey, ec) != 0)
		goto out;
	lineno++;
	if (getline(&line, &cap, f) != 2 || strcmp(line, "}\n") != 0 || fgetc(f) != EOF) {
		fail(ec, "line %zu: the document does not end after its signature", lineno);
		goto out;
	}
	rc = 0;
out:
	free(line);
	free(man);
	json_decref(v.sections);
	return rc;
}
