/* SPDX-License-Identifier: ISC */
/*
 * The keys of a consentd data directory and the few primitives other modules
 * need. This module and src/audit/ are the only code that includes
 * <sodium.h>. Key material lives in sodium_malloc() memory, read-only
 * between uses, and is wiped when freed.
 */
#ifndef CONSENTD_CRYPTO_H
#define CONSENTD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consentd/common.h"

#define CM_KEY_LEN		32
#define CM_MASTER_KEY_FILE	"master.key"
#define CM_AUDIT_KEY_FILE	"audit.key"
#define CM_DB_FILE		"consentd.db"
/*
 * Files of a key rotation (src/crypto/rotate.c): the new master key, the
 * keys that outlive a master rotation sealed under the master key, the
 * re-keyed database being built, the record that commits a master
 * rotation, and a new audit key waiting for its log entry.
 */
#define CM_MASTER_NEW_FILE	"master.key.new"
#define CM_SEALED_KEYS_FILE	"sealed.keys"
#define CM_SEALED_NEW_FILE	"sealed.keys.new"
#define CM_DB_ROTATING_FILE	"consentd.db.rotating"
#define CM_ROTATE_COMMIT_FILE	"rotate-master.commit"
#define CM_AUDIT_NEW_FILE	"audit.key.new"
#define CM_KEY_ID_LEN		16	/* hex digits of a master key's id */
/* Length of the SQLCipher raw-key literal x'<64 hex>' plus NUL. */
#define CM_SQLCIPHER_KEY_LEN	(3 + 2 * CM_KEY_LEN + 1 + 1)
/* Tokens look like cmt_<16 hex selector>_<43 base64url chars>. */
#define CM_TOKEN_SELECTOR_LEN	16
#define CM_TOKEN_MAX		80

/* Every key derived from the master key, one KDF context each. */
struct cm_keys {
	uint8_t	k_store[CM_KEY_LEN];	/* SQLCipher raw key */
	uint8_t	k_blind[CM_KEY_LEN];	/* blind index (keyed BLAKE2b) */
	uint8_t	k_token[CM_KEY_LEN];	/* API token hashes */
	uint8_t	k_kek[CM_KEY_LEN];	/* wraps per-subject data keys */
	uint8_t	k_holdout[CM_KEY_LEN];	/* measurement holdout assignment */
	uint8_t	k_link[CM_KEY_LEN];	/* preference-centre link MACs */
	uint8_t	k_tag[CM_KEY_LEN];	/* audit tags of blind indexes and erased ids */
	uint8_t	k_request[CM_KEY_LEN];	/* hashes of idempotent requests */
	uint8_t	k_code[CM_KEY_LEN];	/* hashes of identity codes of requests */
	uint8_t	k_secret[CM_KEY_LEN];	/* seals downstream systems' secrets */
	uint8_t	k_session[CM_KEY_LEN];	/* preference-centre and console sessions */
	uint8_t	k_audit_sk[64];		/* Ed25519 secret key of the audit log */
	uint8_t	k_audit_pk[32];		/* its public key */
	char	k_master_id[CM_KEY_ID_LEN + 1];	/* names the master key, reveals nothing */
};

/* Initialises libsodium. Returns 0, or -1 when it cannot be used. */
int	cm_crypto_init(void) CM_WUR;

/*
 * Creates DIR/master.key and DIR/audit.key (32 random bytes each, mode
 * 0600, O_EXCL so an existing key is never replaced). On failure removes
 * what it created and writes a reason (no key material) into ERR.
 */
cm_result cm_keys_create(const char *dir, char *err, size_t errlen) CM_WUR;

/*
 * Loads the key files of DIR and derives every key. On success *OUT is a
 * read-only sodium_malloc() block the caller frees with cm_keys_free(). On
 * failure writes a reason into ERR and returns CM_NOTFOUND (no key file),
 * CM_INVALID (wrong size or unsafe mode) or CM_IOERR.
 */
cm_result cm_keys_load(const char *dir, struct cm_keys **out, char *err,
	    size_t errlen) CM_WUR;

/*
 * cm_keys_load() that also opens a directory holding a new audit key not
 * yet committed (audit.key.new): for 'consentd keys rotate-audit', which
 * finishes or undoes it. cm_keys_load() refuses such a directory.
 */
cm_result cm_keys_load_pending(const char *dir, struct cm_keys **out, char *err,
	    size_t errlen) CM_WUR;

/*
 * Finishes or undoes a master-key rotation that was interrupted: with the
 * commit record present the new files are renamed into place (rolled
 * forward), else every file the rotation made is removed (rolled back).
 * Idempotent, so a crash during recovery is recovered the same way.
 * cm_keys_load() calls it first. *WHAT (may be NULL) is set to 0 (nothing
 * to do), 1 (rolled forward) or -1 (rolled back).
 */
cm_result cm_keys_recover(const char *dir, int *what, char *err, size_t errlen) CM_WUR;

/*
 * Starts a master-key rotation: writes a new random master key to
 * DIR/master.key.new and the keys that stay (every derived key but the
 * database key and the key-encryption key) sealed under it to
 * DIR/sealed.keys.new, both synced. *NEWK is OLD with the database key,
 * the key-encryption key and the key id of the new master (free with
 * cm_keys_free()).
 */
cm_result cm_keys_rotate_prepare(const char *dir, const struct cm_keys *old,
	    struct cm_keys **newk, char *err, size_t errlen) CM_WUR;

/*
 * Commits a prepared master-key rotation once DIR/consentd.db.rotating is
 * complete and synced: writes the commit record, then rolls forward. The
 * old master key file is overwritten before it is replaced.
 */
cm_result cm_keys_rotate_commit(const char *dir, char *err, size_t errlen) CM_WUR;

/* Syncs the file PATH and the directory DIR to disk. 0 or -1 (errno). */
int	cm_fsync_path(const char *path, const char *dir) CM_WUR;

/*
 * A new audit signing key: writes DIR/audit.key.new (synced) and its
 * public key into PK.
 */
cm_result cm_keys_audit_new(const char *dir, uint8_t pk[32], char *err,
	    size_t errlen) CM_WUR;
/*
 * The public key of DIR/audit.key.new into PK: CM_OK, CM_NOTFOUND when
 * there is none, or CM_INVALID/CM_IOERR.
 */
cm_result cm_keys_audit_pending(const char *dir, uint8_t pk[32], char *err,
	    size_t errlen) CM_WUR;
/* Renames audit.key.new over audit.key (COMMIT) or removes it. */
cm_result cm_keys_audit_finish(const char *dir, bool commit, char *err,
	    size_t errlen) CM_WUR;

/* Wipes and frees keys from cm_keys_load(); accepts NULL. */
void	cm_keys_free(struct cm_keys *);

/*
 * Writes the SQLCipher raw-key literal for KEYS into OUT, which must be
 * secure memory from cm_secure_alloc(CM_SQLCIPHER_KEY_LEN).
 */
void	cm_keys_sqlcipher_literal(const struct cm_keys *, char *out);

/* sodium_malloc()/sodium_free() for secrets held outside this module. */
void	*cm_secure_alloc(size_t);
void	 cm_secure_free(void *);
void	 cm_wipe(void *, size_t);

/*
 * A CM_KEY_LEN buffer for one subject key, from a per-thread pool of
 * secure memory (allocated once per thread, guarded and locked like any
 * sodium_malloc block) so the write path does not pay for mprotect and
 * mlock on every request. Release wipes it. Falls back to
 * cm_secure_alloc when the pool is exhausted.
 */
uint8_t	*cm_key_acquire(void);
void	 cm_key_release(uint8_t *);

void	cm_random(void *, size_t);
/* Constant-time comparison; 0 when equal. */
int	cm_memeq(const void *, const void *, size_t) CM_WUR;
void	cm_sha256(uint8_t out[32], const void *, size_t);

/*
 * Makes a new API token into TOKEN (CM_TOKEN_MAX bytes) and its selector
 * into SELECTOR (CM_TOKEN_SELECTOR_LEN + 1 bytes).
 */
void	cm_token_generate(char *token, char *selector);
/*
 * Splits TOKEN into its selector (copied into SELECTOR) after checking its
 * shape. Returns 0, or -1 for anything that is not a token.
 */
int	cm_token_parse(const char *token, char *selector) CM_WUR;
/* The keyed hash of TOKEN under the token key, the only form stored. */
void	cm_token_hash(const struct cm_keys *, const char *token, uint8_t out[32]);

/* ---- authenticated encryption (XChaCha20-Poly1305) ---------------------- */

#define CM_AEAD_OVERHEAD	(24 + 16)	/* nonce + tag */

/*
 * Encrypts PT (PTLEN bytes) under KEY with associated data AD into OUT,
 * which must hold PTLEN + CM_AEAD_OVERHEAD bytes: a random nonce, then the
 * ciphertext and tag.
 */
void	cm_aead_seal(uint8_t *out, const uint8_t key[CM_KEY_LEN], const void *ad,
	    size_t adlen, const void *pt, size_t ptlen);
/*
 * Decrypts CT (CTLEN bytes, from cm_aead_seal) into OUT (CTLEN -
 * CM_AEAD_OVERHEAD bytes). Returns 0, or -1 when it is forged, truncated or
 * under another key or AD.
 */
int	cm_aead_open(uint8_t *out, const uint8_t key[CM_KEY_LEN], const void *ad,
	    size_t adlen, const uint8_t *ct, size_t ctlen) CM_WUR;

/*
 * Writes PREFIX followed by 26 lower-case base32 characters of 128 random
 * bits into OUT (OUTLEN bytes, at least strlen(PREFIX) + 27).
 */
void	cm_random_id(char *out, size_t outlen, const char *prefix);

/*
 * Like cm_random_id, but the 26 characters are 10 of NOW_US in
 * milliseconds (in an order-keeping base32 of the same characters) and 16
 * of 78 random bits: ids made later sort later, so new rows land at the
 * end of the B-trees they key instead of at random pages. For ids whose
 * creation time is stored next to them anyway (subjects, events); never
 * for pseudonyms.
 */
void	cm_time_id(char *out, size_t outlen, const char *prefix, int64_t now_us);

/* ---- subject keys and blind indexes ------------------------------------ */

#define CM_WRAPPED_KEY_LEN	(CM_KEY_LEN + CM_AEAD_OVERHEAD)

/*
 * Keyed BLAKE2b of the NPARTS strings PARTS joined by NUL bytes, under KEY,
 * into OUT (OUTLEN bytes, 1 to 64): the one keyed hash the blind index
 * and the measurement holdout are built on.
 */
void	cm_keyed_hash(uint8_t *out, size_t outlen, const uint8_t key[CM_KEY_LEN],
	    const char *const *parts, size_t nparts);

/*
 * The blind index of an identifier: keyed BLAKE2b-256 (the blind-index
 * key) of TYPE || 0x00 || normalised VALUE. The only form in which an
 * identifier is searchable.
 */
void	cm_blind_index(const struct cm_keys *, const char *type, const char *value,
	    uint8_t out[32]);

/*
 * The audit tag of DATA (LEN bytes): keyed BLAKE2b-128 under the tag key,
 * as 32 lower-case hex digits into OUT. Audit entries name a suppressed
 * identifier or an erased subject by it: opaque without the master key,
 * and with it no more revealing than the rows it stands for.
 */
void	cm_audit_tag(const struct cm_keys *, const void *data, size_t len, char out[33]);

/*
 * The audit tag of identifier (TYPE, BLIND): cm_audit_tag of TYPE (at
 * most 64 bytes of it), a NUL and the 32-byte blind index. What audit
 * entries name a suppression entry by.
 */
void	cm_audit_tag_blind(const struct cm_keys *, const char *type,
	    const uint8_t blind[32], char out[33]);

/*
 * The keyed BLAKE2b-256 of a request's canonical bytes under the request
 * key, so a repeated idempotency key can be compared with the first
 * request without keeping the request (which may hold personal data).
 */
void	cm_request_hash(const struct cm_keys *, const void *data, size_t len,
	    uint8_t out[32]);

/*
 * A new random subject data key in secure memory (KEY, CM_KEY_LEN bytes
 * from cm_secure_alloc) and its wrapping under the key-encryption key with
 * AD = SUBJECT_ID, into WRAPPED (CM_WRAPPED_KEY_LEN bytes).
 */
void	cm_subject_key_new(const struct cm_keys *, const char *subject_id,
	    uint8_t *key, uint8_t wrapped[CM_WRAPPED_KEY_LEN]);
/* Unwraps a subject key into KEY (secure memory). 0, or -1 when forged. */
int	cm_subject_key_unwrap(const struct cm_keys *, const char *subject_id,
	    const uint8_t *wrapped, size_t len, uint8_t *key) CM_WUR;

/* Ed25519 key pair from a 32-byte SEED (SK in secure memory). 0 or -1. */
int	cm_ed25519_from_seed(uint8_t pk[32], uint8_t sk[64], const uint8_t seed[32]) CM_WUR;

/* Standard base64 (with padding) of IN into OUT (size OUTLEN). */
void	cm_base64(char *out, size_t outlen, const uint8_t *in, size_t len);
/*
 * Decodes standard base64 S into OUT (at most OUTLEN bytes). Returns the
 * length, or -1 when S is not exactly canonical base64.
 */
long	cm_base64_decode(uint8_t *out, size_t outlen, const char *s, size_t slen) CM_WUR;

/* ---- streamed hashing, signatures, sealed files (src/crypto/stream.c) --- */

/* An incremental SHA-256; the state is opaque (libsodium's, aligned). */
struct cm_sha256_ctx {
	_Alignas(16) uint8_t	sc_state[128];
};

void	cm_sha256_init(struct cm_sha256_ctx *);
void	cm_sha256_update(struct cm_sha256_ctx *, const void *, size_t);
void	cm_sha256_final(struct cm_sha256_ctx *, uint8_t out[32]);

/* Ed25519 detached signature SIG of MSG (LEN bytes) under SK. */
void	cm_ed25519_sign(uint8_t sig[64], const void *msg, size_t len, const uint8_t sk[64]);
/* 0 when SIG is PK's signature of MSG, -1 otherwise. */
int	cm_ed25519_verify(const uint8_t sig[64], const void *msg, size_t len,
	    const uint8_t pk[32]) CM_WUR;

/*
 * A sealed file: libsodium's secretstream (XChaCha20-Poly1305) over
 * chunks of CM_SEALED_CHUNK bytes, the last one tagged final, so a file
 * cut short, reordered or changed fails to open; the header is the
 * stream's 24 bytes. Written once, read once from the start.
 */
#define CM_SEALED_CHUNK		65536

struct cm_sealed_writer;
struct cm_sealed_reader;

/*
 * Creates PATH (mode 0600, O_EXCL) sealed under KEY (copied into secure
 * memory). NULL with errno set on failure.
 */
struct cm_sealed_writer *cm_sealed_create(const char *path, const uint8_t key[CM_KEY_LEN]);
/* Appends LEN bytes. 0, or -1 on a write error (the writer stays to be aborted). */
int	cm_sealed_write(struct cm_sealed_writer *, const void *, size_t) CM_WUR;
/*
 * Seals the last chunk, syncs and closes; *SIZE (may be NULL) is the
 * plaintext's length. 0 or -1; either way the writer is freed, and on
 * failure the file removed.
 */
int	cm_sealed_finish(struct cm_sealed_writer *, uint64_t *size) CM_WUR;
/* Closes, removes the file and frees the writer; accepts NULL. */
void	cm_sealed_abort(struct cm_sealed_writer *);

/* Opens PATH sealed under KEY. NULL with errno set (EBADMSG: not ours). */
struct cm_sealed_reader *cm_sealed_open(const char *path, const uint8_t key[CM_KEY_LEN]);
/*
 * Reads up to LEN bytes of plaintext into BUF: the count, 0 at the end
 * (after the final chunk was authenticated), or -1 when the file is
 * forged, truncated or unreadable.
 */
long	cm_sealed_read(struct cm_sealed_reader *, void *buf, size_t len) CM_WUR;
/* Closes and frees (the key wiped); accepts NULL. */
void	cm_sealed_close(struct cm_sealed_reader *);
/*
 * HMAC-SHA256 under KEY (KEYLEN bytes) of A followed by B (BLEN may be 0)
 * into OUT: the signature of webhooks to and callbacks from downstream
 * systems. Compare results with cm_memeq.
 */
void	cm_hmac_sha256(uint8_t out[32], const uint8_t *key, size_t keylen, const void *a,
	    size_t alen, const void *b, size_t blen);

#endif
