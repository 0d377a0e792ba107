/* SPDX-License-Identifier: ISC */
/*
 * Detached Ed25519 signatures by the audit log's key over documents other
 * than checkpoints (consent receipts). The signed message is DOMAIN, one
 * NUL byte, then the document, so a signature made for one kind of
 * document can never pass for another, nor for a signed note: a note's
 * text starts with its origin, which cannot hold a NUL.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "consentd/audit.h"
#include "consentd/util.h"

/* DOMAIN || 0x00 || MSG into a new buffer of *LEN bytes; NULL for a bad domain. */
static uint8_t *
sign_message(const char *domain, const void *msg, size_t len, size_t *outlen)
{
	size_t dlen = strlen(domain);
	uint8_t *m;

	if (dlen == 0 || len > SIZE_MAX - dlen - 1)
		return NULL;
	m = cm_malloc(dlen + 1 + len);
	memcpy(m, domain, dlen);
	m[dlen] = 0;
	if (len > 0)
		memcpy(m + dlen + 1, msg, len);
	*outlen = dlen + 1 + len;
	return m;
}

int
cm_audit_sign_detached(uint8_t sig[64], const char *domain, const void *msg, size_t len,
    const uint8_t sk[64])
{
	uint8_t *m;
	size_t mlen;
	int rc;

	if ((m = sign_message(domain, msg, len, &mlen)) == NULL)
		return -1;
	rc = crypto_sign_detached(sig, NULL, m, mlen, sk) == 0 ? 0 : -1;
	free(m);
	return rc;
}

int
cm_audit_verify_detached(const uint8_t sig[64], const char *domain, const void *msg,
    size_t len, const uint8_t pk[32])
{
	uint8_t *m;
	size_t mlen;
	int rc;

	if ((m = sign_message(domain, msg, len, &mlen)) == NULL)
		return -1;
	rc = crypto_sign_verify_detached(sig, m, mlen, pk) == 0 ? 0 : -1;
	free(m);
	return rc;
}
