/* SPDX-License-Identifier: ISC */
/*
 * RFC 6962 / RFC 9162 Merkle tree arithmetic over SHA-256: hashing, roots
 * over stored perfect subtrees, proof generation and verification, and an
 * in-memory right-edge frontier. Pure computation: no I/O, no allocation;
 * bounded stack use (a few KiB at most).
 *
 * The hashes are Nettle's SHA-256 (the library GnuTLS already brings for
 * the server's TLS), not libsodium's: this is a public, unkeyed hash fixed
 * by the log format, and Nettle uses the CPU's SHA instructions where they
 * exist, four times faster than libsodium's portable code, which is what
 * bounds `audit verify` (two hashes per entry). Everything keyed stays
 * with libsodium. tests/unit/test_merkle.c checks both give the same bytes.
 */
#include <string.h>

#include <nettle/sha2.h>
#include <nettle/version.h>
#include <sodium.h>

#include "consentd/merkle.h"

/* Nettle 4 dropped the length argument of its digest functions. */
#if NETTLE_VERSION_MAJOR >= 4
#define SHA256_DIGEST(st, out)	sha256_digest((st), (out))
#else
#define SHA256_DIGEST(st, out)	sha256_digest((st), CM_HASH_LEN, (out))
#endif

/* A half-open leaf range [lo, hi) naming one Merkle tree node. */
struct range {
	uint64_t	lo;
	uint64_t	hi;
};

/* True if A and B are the same 32-byte hash. */
static int
hash_equal(const uint8_t a[CM_HASH_LEN], const uint8_t b[CM_HASH_LEN])
{
	return sodium_memcmp(a, b, CM_HASH_LEN) == 0;
}

/* The largest power of two strictly below N; N must be at least 2. */
static uint64_t
split_point(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/* The largest power of two not above N; N must not be 0. */
static uint64_t
top_bit(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n));
}

void
cm_merkle_leaf_hash(uint8_t out[CM_HASH_LEN], const uint8_t *entry,
    size_t len)
{
	static const uint8_t prefix = 0x00;
	struct sha256_ctx st;

	sha256_init(&st);
	sha256_update(&st, 1, &prefix);
	if (len > 0)
		sha256_update(&st, len, entry);
	SHA256_DIGEST(&st, out);
}

void
cm_merkle_node_hash(uint8_t out[CM_HASH_LEN], const uint8_t left[CM_HASH_LEN],
    const uint8_t right[CM_HASH_LEN])
{
	static const uint8_t prefix = 0x01;
	struct sha256_ctx st;

	/* Both inputs are consumed before OUT is written, so aliasing is safe. */
	sha256_init(&st);
	sha256_update(&st, 1, &prefix);
	sha256_update(&st, CM_HASH_LEN, left);
	sha256_update(&st, CM_HASH_LEN, right);
	SHA256_DIGEST(&st, out);
}

void
cm_merkle_empty_root(uint8_t out[CM_HASH_LEN])
{
	struct sha256_ctx st;

	sha256_init(&st);
	SHA256_DIGEST(&st, out);
}

int
cm_merkle_verify_inclusion(uint64_t index, uint64_t size,
    const uint8_t leaf[CM_HASH_LEN], const uint8_t (*proof)[CM_HASH_LEN],
    size_t nproof, const uint8_t root[CM_HASH_LEN])
{
	uint8_t r[CM_HASH_LEN];
	uint64_t fn, sn;
	size_t i;

	if (index >= size || (nproof > 0 && proof == NULL))
		return -1;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, CM_HASH_LEN);
	for (i = 0; i < nproof; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) != 0 || fn == sn) {
			cm_merkle_node_hash(r, proof[i], r);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			cm_merkle_node_hash(r, r, proof[i]);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && hash_equal(r, root) ? 0 : -1;
}

int
cm_merkle_verify_consistency(uint64_t size1, uint64_t size2,
    const uint8_t root1[CM_HASH_LEN], const uint8_t root2[CM_HASH_LEN],
    const uint8_t (*proof)[CM_HASH_LEN], size_t nproof)
{
	uint8_t empty[CM_HASH_LEN], fr[CM_HASH_LEN], sr[CM_HASH_LEN];
	const uint8_t *c;
	uint64_t fn, sn;
	size_t i, total, skip;

	if (size1 > size2)
		return -1;
	cm_merkle_empty_root(empty);
	if (size1 == size2)
		return nproof == 0 && hash_equal(root1, root2) &&
		    (size1 != 0 || hash_equal(root1, empty)) ? 0 : -1;
	if (size1 == 0)
		return nproof == 0 && hash_equal(root1, empty) ? 0 : -1;
	if (nproof == 0 || proof == NULL)
		return -1;

	/*
	 * When SIZE1 is a power of two the proof omits ROOT1; the RFC
	 * prepends it to the path, here SKIP shifts the indices instead.
	 */
	skip = (size1 & (size1 - 1)) == 0 ? 1 : 0;
	total = nproof + skip;
	fn = size1 - 1;
	sn = size2 - 1;
	while ((fn & 1) != 0) {
		fn >>= 1;
		sn >>= 1;
	}
	c = skip ? root1 : proof[0];
	memcpy(fr, c, CM_HASH_LEN);
	memcpy(sr, c, CM_HASH_LEN);
	for (i = 1; i < total; i++) {
		c = proof[i - skip];
		if (sn == 0)
			return -1;
		if ((fn & 1) != 0 || fn == sn) {
			cm_merkle_node_hash(fr, c, fr);
			cm_merkle_node_hash(sr, c, sr);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			cm_merkle_node_hash(sr, sr, c);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && hash_equal(fr, root1) && hash_equal(sr, root2) ?
	    0 : -1;
}

size_t
cm_merkle_append_hashes(uint64_t size, const uint8_t leaf[CM_HASH_LEN],
    cm_merkle_get_fn get, void *ctx, struct cm_merkle_stored *out, size_t cap)
{
	uint8_t left[CM_HASH_LEN];
	uint64_t idx;
	size_t n;

	if (size == UINT64_MAX || get == NULL || out == NULL || cap == 0)
		return 0;
	out[0].level = 0;
	out[0].index = size;
	memcpy(out[0].hash, leaf, CM_HASH_LEN);
	n = 1;
	/* SIZE < 2^64 - 1 has at most 63 trailing ones: at most 64 entries. */
	for (idx = size; (idx & 1) != 0; idx >>= 1) {
		if (n >= cap)
			return 0;
		if (get(ctx, out[n - 1].level, idx - 1, left) != 0)
			return 0;
		out[n].level = out[n - 1].level + 1;
		out[n].index = idx >> 1;
		cm_merkle_node_hash(out[n].hash, left, out[n - 1].hash);
		n++;
	}
	return n;
}

int
cm_merkle_subtree_hash(uint64_t lo, uint64_t hi, cm_merkle_get_fn get,
    void *ctx, uint8_t out[CM_HASH_LEN])
{
	uint8_t acc[CM_HASH_LEN], h[CM_HASH_LEN];
	uint64_t n, bit, start;
	unsigned level;
	int have = 0;

	if (hi < lo)
		return -1;
	n = hi - lo;
	if (n == 0) {
		cm_merkle_empty_root(out);
		return 0;
	}
	if (get == NULL || lo % top_bit(n) != 0)
		return -1;
	/*
	 * [lo, hi) splits into one perfect subtree per set bit of N, largest
	 * first; the tree hash folds them together from the right.
	 */
	for (level = 0; level < 64; level++) {
		bit = (uint64_t)1 << level;
		if ((n & bit) == 0)
			continue;
		start = lo + (n & ~((bit << 1) - 1));
		if (get(ctx, level, start >> level, h) != 0)
			return -1;
		if (have)
			cm_merkle_node_hash(acc, h, acc);
		else
			memcpy(acc, h, CM_HASH_LEN);
		have = 1;
	}
	memcpy(out, acc, CM_HASH_LEN);
	return 0;
}

int
cm_merkle_root(uint64_t size, cm_merkle_get_fn get, void *ctx,
    uint8_t out[CM_HASH_LEN])
{
	return cm_merkle_subtree_hash(0, size, get, ctx, out);
}

/*
 * Writes to PROOF the hashes of the NSIB ranges SIB in reverse order (the
 * ranges were found root first; proofs list them leaf first), after the
 * hash of *FIRST when FIRST is not NULL. Sets *NPROOF on success.
 */
static int
emit_proof(const struct range *first, const struct range *sib, size_t nsib,
    cm_merkle_get_fn get, void *ctx, uint8_t (*proof)[CM_HASH_LEN],
    size_t cap, size_t *nproof)
{
	size_t i, o = 0;

	if (nsib + (first != NULL) > cap || (nsib + (first != NULL) > 0 &&
	    proof == NULL))
		return -1;
	if (first != NULL &&
	    cm_merkle_subtree_hash(first->lo, first->hi, get, ctx, proof[o++]) != 0)
		return -1;
	for (i = nsib; i > 0; i--)
		if (cm_merkle_subtree_hash(sib[i - 1].lo, sib[i - 1].hi, get, ctx,
		    proof[o++]) != 0)
			return -1;
	*nproof = o;
	return 0;
}

int
cm_merkle_inclusion_proof(uint64_t index, uint64_t size, cm_merkle_get_fn get,
    void *ctx, uint8_t (*proof)[CM_HASH_LEN], size_t cap, size_t *nproof)
{
	struct range sib[CM_MERKLE_MAX_PROOF];
	uint64_t lo = 0, hi = size, k;
	size_t nsib = 0;

	if (nproof == NULL)
		return -1;
	*nproof = 0;
	if (index >= size)
		return -1;
	/* PATH(m, D[lo:hi]) descends towards the leaf, one sibling a level. */
	while (hi - lo > 1) {
		if (nsib == CM_MERKLE_MAX_PROOF)
			return -1;
		k = split_point(hi - lo);
		if (index < lo + k) {
			sib[nsib].lo = lo + k;
			sib[nsib].hi = hi;
			hi = lo + k;
		} else {
			sib[nsib].lo = lo;
			sib[nsib].hi = lo + k;
			lo += k;
		}
		nsib++;
	}
	return emit_proof(NULL, sib, nsib, get, ctx, proof, cap, nproof);
}

int
cm_merkle_consistency_proof(uint64_t size1, uint64_t size2,
    cm_merkle_get_fn get, void *ctx, uint8_t (*proof)[CM_HASH_LEN],
    size_t cap, size_t *nproof)
{
	struct range sib[CM_MERKLE_MAX_PROOF], last;
	uint64_t lo = 0, hi = size2, m = size1, k;
	size_t nsib = 0;
	int whole = 1;

	if (nproof == NULL)
		return -1;
	*nproof = 0;
	if (size1 > size2)
		return -1;
	if (size1 == 0 || size1 == size2)
		return 0;
	/*
	 * SUBPROOF(m, D[lo:hi], b): WHOLE is b, true while D[lo:hi] is still
	 * the left edge, where the verifier already knows the old root.
	 */
	while (m != hi - lo) {
		if (nsib == CM_MERKLE_MAX_PROOF)
			return -1;
		k = split_point(hi - lo);
		if (m <= k) {
			sib[nsib].lo = lo + k;
			sib[nsib].hi = hi;
			hi = lo + k;
		} else {
			sib[nsib].lo = lo;
			sib[nsib].hi = lo + k;
			lo += k;
			m -= k;
			whole = 0;
		}
		nsib++;
	}
	last.lo = lo;
	last.hi = hi;
	return emit_proof(whole ? NULL : &last, sib, nsib, get, ctx, proof, cap,
	    nproof);
}

void
cm_merkle_frontier_init(struct cm_merkle_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

int
cm_merkle_frontier_push(struct cm_merkle_frontier *f,
    const uint8_t leaf[CM_HASH_LEN])
{
	uint8_t h[CM_HASH_LEN];
	unsigned level = 0;

	if (f->size == UINT64_MAX)
		return -1;
	memcpy(h, leaf, CM_HASH_LEN);
	/* Carry like binary addition: each set low bit merges into its parent. */
	while (((f->size >> level) & 1) != 0) {
		cm_merkle_node_hash(h, f->hash[level], h);
		level++;
	}
	memcpy(f->hash[level], h, CM_HASH_LEN);
	f->size++;
	return 0;
}

void
cm_merkle_frontier_root(const struct cm_merkle_frontier *f,
    uint8_t out[CM_HASH_LEN])
{
	uint8_t acc[CM_HASH_LEN];
	unsigned level;
	int have = 0;

	if (f->size == 0) {
		cm_merkle_empty_root(out);
		return;
	}
	for (level = 0; level < 64; level++) {
		if (((f->size >> level) & 1) == 0)
			continue;
		if (have)
			cm_merkle_node_hash(acc, f->hash[level], acc);
		else
			memcpy(acc, f->hash[level], CM_HASH_LEN);
		have = 1;
	}
	memcpy(out, acc, CM_HASH_LEN);
}
