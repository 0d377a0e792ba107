/* SPDX-License-Identifier: ISC */
/*
 * C2SP signed notes (signed-note@v1.0.0), tlog-checkpoint bodies
 * (tlog-checkpoint@v1.0.0) and tlog-cosignature/v1 lines, with Ed25519 from
 * libsodium. A note is its text, a blank line, then one line per signature:
 * "— NAME base64(keyid[4] || signature)", where keyid is the first four
 * bytes of SHA-256(NAME || 0x0A || type || public key).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/util.h"

#define EMDASH		"\xe2\x80\x94"
#define COSIG_PREFIX	"cosignature/v1\ntime "

static void
note_keyid(uint8_t id[4], const char *name, uint8_t type, const uint8_t pk[32])
{
	crypto_hash_sha256_state st;
	uint8_t h[32], nl = '\n';

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
	crypto_hash_sha256_update(&st, &nl, 1);
	crypto_hash_sha256_update(&st, &type, 1);
	crypto_hash_sha256_update(&st, pk, 32);
	crypto_hash_sha256_final(&st, h);
	memcpy(id, h, 4);
}

int
cm_checkpoint_body(char *out, size_t outlen, const char *origin, uint64_t size,
    const uint8_t root[32])
{
	char b64[64];
	int n;

	cm_base64(b64, sizeof(b64), root, 32);
	n = snprintf(out, outlen, "%s\n%" PRIu64 "\n%s\n", origin, size, b64);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int
cm_checkpoint_parse(const char *body, size_t len, char *origin, size_t originlen,
    uint64_t *size, uint8_t root[32])
{
	const char *l1, *l2, *l3, *end = body + len;
	char num[24];
	int64_t v;

	if ((l1 = memchr(body, '\n', len)) == NULL || l1 == body)
		return -1;
	if ((l2 = memchr(l1 + 1, '\n', (size_t)(end - l1 - 1))) == NULL)
		return -1;
	if ((l3 = memchr(l2 + 1, '\n', (size_t)(end - l2 - 1))) == NULL || l3 + 1 != end)
		return -1;
	if ((size_t)(l1 - body) >= originlen || (size_t)(l2 - l1 - 1) >= sizeof(num))
		return -1;
	memcpy(origin, body, (size_t)(l1 - body));
	origin[l1 - body] = '\0';
	memcpy(num, l1 + 1, (size_t)(l2 - l1 - 1));
	num[l2 - l1 - 1] = '\0';
	if (cm_parse_i64(num, 0, INT64_MAX, &v) != 0)
		return -1;
	*size = (uint64_t)v;
	if (cm_base64_decode(root, 32, l2 + 1, (size_t)(l3 - l2 - 1)) != 32)
		return -1;
	return 0;
}

int
cm_note_sign(struct cm_buf *out, const char *body, const char *name,
    const uint8_t sk[64], const uint8_t pk[32])
{
	uint8_t sig[4 + 64];
	char b64[128];
	size_t blen = strlen(body);

	if (blen == 0 || body[blen - 1] != '\n')
		return -1;
	note_keyid(sig, name, CM_NOTE_ED25519, pk);
	if (crypto_sign_detached(sig + 4, NULL, (const uint8_t *)body, blen, sk) != 0)
		return -1;
	cm_base64(b64, sizeof(b64), sig, sizeof(sig));
	cm_buf_appendf(out, "%s\n" EMDASH " %s %s\n", body, name, b64);
	return 0;
}

void
cm_note_vkey(char *out, size_t outlen, const char *name, uint8_t type,
    const uint8_t pk[32])
{
	uint8_t id[4], key[33];
	char hex[9], b64[64];

	note_keyid(id, name, type, pk);
	cm_hex_encode(hex, id, 4);
	key[0] = type;
	memcpy(key + 1, pk, 32);
	cm_base64(b64, sizeof(b64), key, sizeof(key));
	if (snprintf(out, outlen, "%s+%s+%s", name, hex, b64) >= (int)outlen && outlen > 0)
		out[0] = '\0';
}

int
cm_note_vkey_parse(const char *vkey, uint8_t type, char *name, size_t namelen,
    uint8_t pk[32])
{
	const char *p1, *p2;
	uint8_t key[40], id[4];
	char hex[9];
	size_t nlen;

	if ((p1 = strchr(vkey, '+')) == NULL || (p2 = strchr(p1 + 1, '+')) == NULL)
		return -1;
	nlen = (size_t)(p1 - vkey);
	if (nlen == 0 || nlen >= namelen || p2 - p1 - 1 != 8)
		return -1;
	memcpy(name, vkey, nlen);
	name[nlen] = '\0';
	if (cm_base64_decode(key, sizeof(key), p2 + 1, strlen(p2 + 1)) != 33 ||
	    key[0] != type)
		return -1;
	memcpy(pk, key + 1, 32);
	note_keyid(id, name, type, pk);
	cm_hex_encode(hex, id, 4);
	if (memcmp(hex, p1 + 1, 8) != 0)
		return -1;
	return 0;
}

/*
 * Splits NOTE at its blank line: *BODYLEN bytes of text (ending in '\n')
 * and the signature block after the blank line.
 */
static int
note_split(const char *note, size_t *bodylen, const char **sigs)
{
	const char *p;

	if ((p = strstr(note, "\n\n")) == NULL)
		return -1;
	*bodylen = (size_t)(p - note) + 1;
	*sigs = p + 2;
	return 0;
}

/*
 * Finds the signature line of NOTE whose name is NAME and whose key id is
 * ID; decodes its payload (after the key id) into SIG (up to SIGCAP bytes).
 * Returns the payload length, or -1.
 */
static long
note_find_sig(const char *sigs, const char *name, const uint8_t id[4], uint8_t *sig,
    size_t sigcap)
{
	const char *line = sigs, *eol, *sp;
	uint8_t raw[256];
	size_t nlen = strlen(name);
	long n;

	while (*line != '\0') {
		if ((eol = strchr(line, '\n')) == NULL)
			return -1;
		if (strncmp(line, EMDASH " ", 4) == 0 &&
		    (sp = memchr(line + 4, ' ', (size_t)(eol - line - 4))) != NULL &&
		    (size_t)(sp - line - 4) == nlen && memcmp(line + 4, name, nlen) == 0) {
			n = cm_base64_decode(raw, sizeof(raw), sp + 1, (size_t)(eol - sp - 1));
			if (n >= 4 && memcmp(raw, id, 4) == 0 && (size_t)(n - 4) <= sigcap) {
				memcpy(sig, raw + 4, (size_t)n - 4);
				return n - 4;
			}
		}
		line = eol + 1;
	}
	return -1;
}

int
cm_note_open(const char *note, const char *vkey, char *body, size_t bodylen)
{
	char name[CM_AUDIT_ORIGIN_MAX + 1];
	uint8_t pk[32], id[4], sig[64];
	const char *sigs;
	size_t blen;

	if (cm_note_vkey_parse(vkey, CM_NOTE_ED25519, name, sizeof(name), pk) != 0)
		return -1;
	if (note_split(note, &blen, &sigs) != 0 || blen >= bodylen)
		return -1;
	note_keyid(id, name, CM_NOTE_ED25519, pk);
	if (note_find_sig(sigs, name, id, sig, sizeof(sig)) != 64)
		return -1;
	if (crypto_sign_verify_detached(sig, (const uint8_t *)note, blen, pk) != 0)
		return -1;
	memcpy(body, note, blen);
	body[blen] = '\0';
	return 0;
}

static void
cosig_message(struct cm_buf *msg, const char *body, size_t blen, uint64_t t)
{
	cm_buf_appendf(msg, COSIG_PREFIX "%" PRIu64 "\n", t);
	cm_buf_append(msg, body, blen);
}

int
cm_note_cosign(struct cm_buf *out, const char *body, const char *name,
    const uint8_t sk[64], const uint8_t pk[32], uint64_t t)
{
	struct cm_buf msg = { 0 };
	uint8_t sig[4 + 8 + 64];
	char b64[160];
	int i, rc = -1;

	note_keyid(sig, name, CM_NOTE_COSIGNATURE, pk);
	for (i = 0; i < 8; i++)
		sig[4 + i] = (uint8_t)(t >> (56 - 8 * i));
	cosig_message(&msg, body, strlen(body), t);
	if (crypto_sign_detached(sig + 12, NULL, (const uint8_t *)msg.b_data,
	    msg.b_len, sk) == 0) {
		cm_base64(b64, sizeof(b64), sig, sizeof(sig));
		cm_buf_appendf(out, EMDASH " %s %s\n", name, b64);
		rc = 0;
	}
	cm_buf_free(&msg);
	return rc;
}

int
cm_note_check_cosignature(const char *note, const char *wvkey, uint64_t *t)
{
	char name[CM_AUDIT_ORIGIN_MAX + 1];
	struct cm_buf msg = { 0 };
	uint8_t pk[32], id[4], sig[8 + 64];
	const char *sigs;
	size_t blen;
	uint64_t ts = 0;
	int i, rc = -1;

	if (cm_note_vkey_parse(wvkey, CM_NOTE_COSIGNATURE, name, sizeof(name), pk) != 0 ||
	    note_split(note, &blen, &sigs) != 0)
		return -1;
	note_keyid(id, name, CM_NOTE_COSIGNATURE, pk);
	if (note_find_sig(sigs, name, id, sig, sizeof(sig)) != 72)
		return -1;
	for (i = 0; i < 8; i++)
		ts = ts << 8 | sig[i];
	cosig_message(&msg, note, blen, ts);
	if (crypto_sign_verify_detached(sig + 8, (const uint8_t *)msg.b_data, msg.b_len,
	    pk) == 0) {
		*t = ts;
		rc = 0;
	}
	cm_buf_free(&msg);
	return rc;
}
