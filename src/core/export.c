/* SPDX-License-Identifier: ISC */
/*
 * The consentd-export/1 document, written and verified a line at a time
 * (docs/export-format.md has the format in full):
 *
 *   {
 *   "format":"consentd-export/1",
 *   "NAME":<compact JSON>,               one line per section, or
 *   "NAME":[                             a list, one item per line:
 *    <item>                              the first after a space,
 *   ,<item>                              the others after a comma
 *   ],
 *   "manifest":<compact JSON>,
 *   "signature":<compact JSON>
 *   }
 *
 * A section is the run of lines from its "NAME": line up to the next line
 * that starts with a double quote; its hash covers those bytes exactly,
 * newlines and trailing comma included. Only member lines start with a
 * quote: items start with a space or a comma, and compact JSON never
 * holds a raw newline. So a verifier needs no JSON parser to find the
 * bytes it hashes, and neither side holds more than a line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/export.h"
#include "consentd/util.h"

#define DUMP_FLAGS	(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

static void
put(struct cm_export *x, const void *p, size_t len)
{
	if (x->ex_failed || len == 0)
		return;
	if (x->ex_name[0] != '\0')
		cm_sha256_update(&x->ex_hash, p, len);
	if (x->ex_sink(x->ex_arg, p, len) != 0)
		x->ex_failed = true;
	x->ex_bytes += len;
}

static void
puts_(struct cm_export *x, const char *s)
{
	put(x, s, strlen(s));
}

/* Writes V (taken) as compact JSON. */
static void
put_json(struct cm_export *x, json_t *v)
{
	char *enc;

	if (v == NULL || (enc = json_dumps(v, DUMP_FLAGS)) == NULL) {
		x->ex_failed = true;
		json_decref(v);
		return;
	}
	json_decref(v);
	put(x, enc, strlen(enc));
	cm_wipe(enc, strlen(enc));
	free(enc);
}

/* Closes the open section: its hash goes into the manifest's list. */
static void
section_end(struct cm_export *x)
{
	uint8_t h[32];
	char hex[65];

	if (x->ex_name[0] == '\0')
		return;
	cm_sha256_final(&x->ex_hash, h);
	cm_hex_encode(hex, h, sizeof(h));
	json_array_append_new(x->ex_sections, json_pack("{s:s, s:s}", "name", x->ex_name,
	    "sha256", hex));
	x->ex_name[0] = '\0';
}

static void
section_begin(struct cm_export *x, const char *name)
{
	size_t n = strlen(name);

	section_end(x);
	if (n == 0 || n >= sizeof(x->ex_name) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
		x->ex_failed = true;
		return;
	}
	memcpy(x->ex_name, name, n + 1);
	cm_sha256_init(&x->ex_hash);
	puts_(x, "\"");
	puts_(x, name);
	puts_(x, "\":");
}

void
cm_export_begin(struct cm_export *x, cm_export_sink sink, void *arg)
{
	memset(x, 0, sizeof(*x));
	x->ex_sink = sink;
	x->ex_arg = arg;
	x->ex_sections = json_array();
	puts_(x, "{\n");
	cm_export_value(x, "format", json_string(CM_EXPORT_FORMAT));
}

void
cm_export_value(struct cm_export *x, const char *name, json_t *v)
{
	section_begin(x, name);
	put_json(x, v);
	puts_(x, ",\n");
}

void
cm_export_list_begin(struct cm_export *x, const char *name)
{
	section_begin(x, name);
	puts_(x, "[\n");
	x->ex_in_list = true;
	x->ex_items = 0;
}

void
cm_export_list_item(struct cm_export *x, json_t *v)
{
	if (!x->ex_in_list) {
		x->ex_failed = true;
		json_decref(v);
		return;
	}
	puts_(x, x->ex_items++ == 0 ? " " : ",");
	put_json(x, v);
	puts_(x, "\n");
}

void
cm_export_list_end(struct cm_export *x)
{
	if (!x->ex_in_list)
		x->ex_failed = true;
	x->ex_in_list = false;
	puts_(x, "],\n");
}

int
cm_export_finish(struct cm_export *x, const char *key_name, const uint8_t sk[64],
    const uint8_t pk[32])
{
	struct cm_buf msg = { 0 };
	char vkey[256], *man, *p, sig64[128], keyid[9];
	json_t *mj;
	uint8_t sig[64];
	int rc = -1;

	section_end(x);
	if (x->ex_in_list)
		x->ex_failed = true;
	mj = json_pack("{s:s, s:s, s:O}", "format", CM_EXPORT_FORMAT, "hash", "sha256",
	    "sections", x->ex_sections);
	man = mj != NULL ? json_dumps(mj, DUMP_FLAGS) : NULL;
	json_decref(mj);
	cm_note_vkey(vkey, sizeof(vkey), key_name, CM_NOTE_ED25519, pk);
	if (man == NULL || (p = strchr(vkey, '+')) == NULL || strlen(p) < 10)
		goto out;
	memcpy(keyid, p + 1, 8);
	keyid[8] = '\0';
	cm_buf_append(&msg, CM_EXPORT_SIG_PREFIX, strlen(CM_EXPORT_SIG_PREFIX));
	cm_buf_append(&msg, man, strlen(man));
	cm_ed25519_sign(sig, msg.b_data, msg.b_len, sk);
	cm_base64(sig64, sizeof(sig64), sig, sizeof(sig));
	puts_(x, "\"manifest\":");
	puts_(x, man);
	puts_(x, ",\n\"signature\":");
	put_json(x, json_pack("{s:s, s:s, s:s, s:s}", "algorithm", "ed25519", "key_name",
	    key_name, "key_id", keyid, "value", sig64));
	puts_(x, "\n}\n");
	rc = x->ex_failed ? -1 : 0;
out:
	free(man);
	cm_buf_free(&msg);
	cm_export_abort(x);
	return rc;
}

void
cm_export_abort(struct cm_export *x)
{
	json_decref(x->ex_sections);
	x->ex_sections = NULL;
	x->ex_name[0] = '\0';
}
