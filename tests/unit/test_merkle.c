/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the Merkle tree module (src/audit/merkle.c): the RFC 6962
 * eight-leaf test vectors, proofs generated over an in-memory store checked
 * against a naive recursive reference built from the RFC definitions and
 * against the verifiers, a 1000-leaf tree, synthetic trees near 2^64
 * leaves, error paths, and the transparency-dev/merkle proof corpus found
 * in $CM_MERKLE_VECTORS (default tests/vectors/transparency-dev-merkle/
 * testdata, relative to the repository root).
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "consentd/merkle.h"

#define DEFAULT_VECTORS	"tests/vectors/transparency-dev-merkle/testdata"
#define MIN_VECTORS	190
#define BIG_TREE	1000
#define MAX_FILE	(64 * 1024)
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* Hex-encoded RFC 6962 test entries and the roots of their prefixes. */
static const char *const rfc_entries[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

static const char *const rfc_roots[9] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/*
 * An in-memory store of perfect-subtree hashes keyed by (level, index).
 * Reads outside [0, limit) leaves or of hashes never stored fail, which
 * proves the module only reads complete subtrees of the tree in question.
 */
struct store {
	uint64_t	 nleaves;
	uint64_t	 limit;
	uint64_t	 len[64];
	uint8_t		(*hash[64])[CM_HASH_LEN];
	uint8_t		*have[64];
	unsigned long	 reads;
	unsigned long	 fail_after;
};

/* A tree whose leaves all have one hash: subtree hashes depend on level only. */
struct uniform {
	uint64_t	size;
	uint8_t		p[64][CM_HASH_LEN];
};

struct corpus {
	const char	*root;
	unsigned	 inclusion;
	unsigned	 consistency;
	unsigned	 crosschecked;
	struct store	 rfc;
	uint8_t		 rfc_leaves[8][CM_HASH_LEN];
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t
hex_decode(uint8_t *out, size_t cap, const char *hex)
{
	size_t len = 0;

	assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len,
	    NULL), 0);
	return len;
}

/* ---- the in-memory store ------------------------------------------------ */

static void
store_init(struct store *s, uint64_t maxleaves)
{
	unsigned l;

	memset(s, 0, sizeof(*s));
	for (l = 0; l < 64 && (maxleaves >> l) != 0; l++) {
		s->len[l] = maxleaves >> l;
		s->hash[l] = calloc(s->len[l], CM_HASH_LEN);
		s->have[l] = calloc(s->len[l], 1);
		assert_non_null(s->hash[l]);
		assert_non_null(s->have[l]);
	}
}

static void
store_free(struct store *s)
{
	unsigned l;

	for (l = 0; l < 64; l++) {
		free(s->hash[l]);
		free(s->have[l]);
	}
	memset(s, 0, sizeof(*s));
}

static int
store_get(void *ctx, unsigned level, uint64_t index, uint8_t out[CM_HASH_LEN])
{
	struct store *s = ctx;

	s->reads++;
	if (s->fail_after != 0 && s->reads >= s->fail_after)
		return -1;
	if (level >= 64 || index >= s->len[level] || !s->have[level][index])
		return -1;
	if (((index + 1) << level) > s->limit)
		return -1;
	memcpy(out, s->hash[level][index], CM_HASH_LEN);
	return 0;
}

/* Number of trailing one bits of X. */
static unsigned
trailing_ones(uint64_t x)
{
	unsigned n = 0;

	while ((x & 1) != 0) {
		n++;
		x >>= 1;
	}
	return n;
}

static void
store_append(struct store *s, const uint8_t leaf[CM_HASH_LEN])
{
	struct cm_merkle_stored out[CM_MERKLE_MAX_APPEND];
	size_t n, i;

	s->limit = s->nleaves;
	n = cm_merkle_append_hashes(s->nleaves, leaf, store_get, s, out,
	    CM_MERKLE_MAX_APPEND);
	assert_int_equal(n, 1 + trailing_ones(s->nleaves));
	for (i = 0; i < n; i++) {
		assert_int_equal(out[i].level, i);
		assert_int_equal(out[i].index, s->nleaves >> i);
		assert_true(out[i].level < 64);
		assert_true(out[i].index < s->len[out[i].level]);
		assert_false(s->have[out[i].level][out[i].index]);
		memcpy(s->hash[out[i].level][out[i].index], out[i].hash,
		    CM_HASH_LEN);
		s->have[out[i].level][out[i].index] = 1;
	}
	s->nleaves++;
}

static int
uniform_get(void *ctx, unsigned level, uint64_t index, uint8_t out[CM_HASH_LEN])
{
	const struct uniform *u = ctx;

	if (level >= 64 || index >= (u->size >> level))
		return -1;
	memcpy(out, u->p[level], CM_HASH_LEN);
	return 0;
}

/* ---- reference implementation, straight from RFC 6962 section 2.1 ------- */

static uint64_t
ref_split(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

static void
ref_mth(const uint8_t (*d)[CM_HASH_LEN], uint64_t n, uint8_t out[CM_HASH_LEN])
{
	uint8_t l[CM_HASH_LEN], r[CM_HASH_LEN];
	uint64_t k;

	if (n == 0) {
		cm_merkle_empty_root(out);
		return;
	}
	if (n == 1) {
		memcpy(out, d[0], CM_HASH_LEN);
		return;
	}
	k = ref_split(n);
	ref_mth(d, k, l);
	ref_mth(d + k, n - k, r);
	cm_merkle_node_hash(out, l, r);
}

static void
ref_path(uint64_t m, const uint8_t (*d)[CM_HASH_LEN], uint64_t n,
    uint8_t (*out)[CM_HASH_LEN], size_t *cnt)
{
	uint64_t k;

	if (n <= 1)
		return;
	k = ref_split(n);
	if (m < k) {
		ref_path(m, d, k, out, cnt);
		ref_mth(d + k, n - k, out[(*cnt)++]);
	} else {
		ref_path(m - k, d + k, n - k, out, cnt);
		ref_mth(d, k, out[(*cnt)++]);
	}
}

static void
ref_subproof(uint64_t m, const uint8_t (*d)[CM_HASH_LEN], uint64_t n, int b,
    uint8_t (*out)[CM_HASH_LEN], size_t *cnt)
{
	uint64_t k;

	if (m == n) {
		if (!b)
			ref_mth(d, n, out[(*cnt)++]);
		return;
	}
	k = ref_split(n);
	if (m <= k) {
		ref_subproof(m, d, k, b, out, cnt);
		ref_mth(d + k, n - k, out[(*cnt)++]);
	} else {
		ref_subproof(m - k, d + k, n - k, 0, out, cnt);
		ref_mth(d, k, out[(*cnt)++]);
	}
}

/* ---- shared checks ------------------------------------------------------- */

/*
 * Generates the inclusion proof of INDEX in the first SIZE leaves of S,
 * compares it with the reference over D, verifies it, and when TAMPER is
 * set checks that one flipped bit anywhere, a wrong index, size or
 * length makes verification fail.
 */
static void
check_inclusion(struct store *s, const uint8_t (*d)[CM_HASH_LEN],
    uint64_t index, uint64_t size, int tamper)
{
	uint8_t proof[CM_MERKLE_MAX_PROOF][CM_HASH_LEN];
	uint8_t want[CM_MERKLE_MAX_PROOF][CM_HASH_LEN];
	uint8_t root[CM_HASH_LEN], leaf[CM_HASH_LEN];
	size_t n = 0, nwant = 0, j;
	unsigned bit;

	s->limit = size;
	assert_int_equal(cm_merkle_root(size, store_get, s, root), 0);
	assert_int_equal(cm_merkle_inclusion_proof(index, size, store_get, s,
	    proof, CM_MERKLE_MAX_PROOF, &n), 0);
	ref_path(index, d, size, want, &nwant);
	assert_int_equal(n, nwant);
	if (n > 0)
		assert_memory_equal(proof, want, n * CM_HASH_LEN);
	memcpy(leaf, d[index], CM_HASH_LEN);
	assert_int_equal(cm_merkle_verify_inclusion(index, size, leaf,
	    (const uint8_t (*)[CM_HASH_LEN])proof, n, root), 0);
	if (!tamper)
		return;

	for (j = 0; j < n; j++) {
		bit = (unsigned)(rng() % (CM_HASH_LEN * 8));
		proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(cm_merkle_verify_inclusion(index, size, leaf,
		    (const uint8_t (*)[CM_HASH_LEN])proof, n, root), -1);
		proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	bit = (unsigned)(rng() % (CM_HASH_LEN * 8));
	leaf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	assert_int_equal(cm_merkle_verify_inclusion(index, size, leaf,
	    (const uint8_t (*)[CM_HASH_LEN])proof, n, root), -1);
	leaf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	root[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	assert_int_equal(cm_merkle_verify_inclusion(index, size, leaf,
	    (const uint8_t (*)[CM_HASH_LEN])proof, n, root), -1);
	root[bit / 8] ^= (uint8_t)(1u << (bit % 8));

	if (n > 0)
		assert_int_equal(cm_merkle_verify_inclusion(index, size, leaf,
		    (const uint8_t (*)[CM_HASH_LEN])proof, n - 1, root), -1);
	memcpy(proof[n], root, CM_HASH_LEN);
	assert_int_equal(cm_merkle_verify_inclusion(index, size, leaf,
	    (const uint8_t (*)[CM_HASH_LEN])proof, n + 1, root), -1);
	/* The other child of the bottom pair (or past the end) must fail. */
	if (size > 1)
		assert_int_equal(cm_merkle_verify_inclusion(index ^ 1,
		    size, leaf, (const uint8_t (*)[CM_HASH_LEN])proof, n, root),
		    -1);
	assert_int_equal(cm_merkle_verify_inclusion(size, size, leaf,
	    (const uint8_t (*)[CM_HASH_LEN])proof, n, root), -1);
}

/*
 * Generates the consistency proof from the first M to the first N leaves
 * of S, compares it with the reference, verifies it and, when TAMPER is
 * set, checks that flipped bits and wrong sizes make verification fail.
 */
static void
check_consistency(struct store *s, const uint8_t (*d)[CM_HASH_LEN],
    uint64_t m, uint64_t n, int tamper)
{
	uint8_t proof[CM_MERKLE_MAX_PROOF + 1][CM_HASH_LEN];
	uint8_t want[CM_MERKLE_MAX_PROOF][CM_HASH_LEN];
	uint8_t r1[CM_HASH_LEN], r2[CM_HASH_LEN];
	size_t np = 0, nwant = 0, j;
	unsigned bit;

	s->limit = n;
	assert_int_equal(cm_merkle_root(m, store_get, s, r1), 0);
	assert_int_equal(cm_merkle_root(n, store_get, s, r2), 0);
	assert_int_equal(cm_merkle_consistency_proof(m, n, store_get, s, proof,
	    CM_MERKLE_MAX_PROOF, &np), 0);
	if (m > 0 && m < n)
		ref_subproof(m, d, n, 1, want, &nwant);
	assert_int_equal(np, nwant);
	if (np > 0)
		assert_memory_equal(proof, want, np * CM_HASH_LEN);
	assert_int_equal(cm_merkle_verify_consistency(m, n, r1, r2,
	    (const uint8_t (*)[CM_HASH_LEN])proof, np), 0);
	if (!tamper)
		return;

	for (j = 0; j < np; j++) {
		bit = (unsigned)(rng() % (CM_HASH_LEN * 8));
		proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(cm_merkle_verify_consistency(m, n, r1, r2,
		    (const uint8_t (*)[CM_HASH_LEN])proof, np), -1);
		proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	bit = (unsigned)(rng() % (CM_HASH_LEN * 8));
	r1[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	assert_int_equal(cm_merkle_verify_consistency(m, n, r1, r2,
	    (const uint8_t (*)[CM_HASH_LEN])proof, np), -1);
	r1[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	r2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	assert_int_equal(cm_merkle_verify_consistency(m, n, r1, r2,
	    (const uint8_t (*)[CM_HASH_LEN])proof, np), -1);
	r2[bit / 8] ^= (uint8_t)(1u << (bit % 8));

	if (np > 0)
		assert_int_equal(cm_merkle_verify_consistency(m, n, r1, r2,
		    (const uint8_t (*)[CM_HASH_LEN])proof, np - 1), -1);
	memcpy(proof[np], r2, CM_HASH_LEN);
	assert_int_equal(cm_merkle_verify_consistency(m, n, r1, r2,
	    (const uint8_t (*)[CM_HASH_LEN])proof, np + 1), -1);
	if (np > 0)
		assert_int_equal(cm_merkle_verify_consistency(m, n, r2, r1,
		    (const uint8_t (*)[CM_HASH_LEN])proof, np), -1);
	if (m != n)
		assert_int_equal(cm_merkle_verify_consistency(n, m, r2, r1,
		    (const uint8_t (*)[CM_HASH_LEN])proof, np), -1);
}

static void
rfc_tree(struct store *s, uint8_t leaves[8][CM_HASH_LEN])
{
	uint8_t entry[16];
	size_t len, i;

	store_init(s, 8);
	for (i = 0; i < 8; i++) {
		len = hex_decode(entry, sizeof(entry), rfc_entries[i]);
		cm_merkle_leaf_hash(leaves[i], entry, len);
		store_append(s, leaves[i]);
	}
}

/* ---- tests -------------------------------------------------------------- */

static int
group_setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void
test_hash_primitives(void **state)
{
	uint8_t got[CM_HASH_LEN], want[CM_HASH_LEN], a[CM_HASH_LEN],
	    b[CM_HASH_LEN], c[CM_HASH_LEN];
	const uint8_t one = 0x00;

	(void)state;
	cm_merkle_empty_root(got);
	hex_decode(want, sizeof(want), rfc_roots[0]);
	assert_memory_equal(got, want, CM_HASH_LEN);

	cm_merkle_leaf_hash(got, NULL, 0);
	hex_decode(want, sizeof(want), rfc_roots[1]);
	assert_memory_equal(got, want, CM_HASH_LEN);

	/* The leaf prefix keeps leaf("") and leaf("\0") apart. */
	cm_merkle_leaf_hash(a, &one, 1);
	assert_memory_not_equal(a, got, CM_HASH_LEN);

	/* node_hash may write over either input. */
	cm_merkle_leaf_hash(b, (const uint8_t *)"x", 1);
	cm_merkle_node_hash(c, a, b);
	memcpy(got, a, CM_HASH_LEN);
	cm_merkle_node_hash(got, got, b);
	assert_memory_equal(got, c, CM_HASH_LEN);
	memcpy(got, b, CM_HASH_LEN);
	cm_merkle_node_hash(got, a, got);
	assert_memory_equal(got, c, CM_HASH_LEN);
	cm_merkle_node_hash(got, b, a);
	assert_memory_not_equal(got, c, CM_HASH_LEN);
}

/*
 * The tree hashes are Nettle's SHA-256; libsodium's is the reference here:
 * every length from 0 to 300 bytes (each padding case around the 64-byte
 * blocks) and random contents give the same leaf and node hashes.
 */
static void
test_hash_matches_libsodium(void **state)
{
	uint8_t buf[1 + 300], got[CM_HASH_LEN], want[CM_HASH_LEN],
	    pair[1 + 2 * CM_HASH_LEN];
	size_t len;

	(void)state;
	for (len = 0; len <= 300; len++) {
		randombytes_buf(buf, sizeof(buf));
		buf[0] = 0x00;
		cm_merkle_leaf_hash(got, buf + 1, len);
		crypto_hash_sha256(want, buf, 1 + len);
		assert_memory_equal(got, want, CM_HASH_LEN);

		randombytes_buf(pair, sizeof(pair));
		pair[0] = 0x01;
		cm_merkle_node_hash(got, pair + 1, pair + 1 + CM_HASH_LEN);
		crypto_hash_sha256(want, pair, sizeof(pair));
		assert_memory_equal(got, want, CM_HASH_LEN);
	}
	cm_merkle_empty_root(got);
	crypto_hash_sha256(want, buf, 0);
	assert_memory_equal(got, want, CM_HASH_LEN);
}

static void
test_rfc6962_roots(void **state)
{
	struct store s;
	struct cm_merkle_frontier f;
	uint8_t leaves[8][CM_HASH_LEN], got[CM_HASH_LEN], want[CM_HASH_LEN];
	uint64_t size;
	unsigned long bits;

	(void)state;
	rfc_tree(&s, leaves);
	cm_merkle_frontier_init(&f);
	for (size = 0; size <= 8; size++) {
		hex_decode(want, sizeof(want), rfc_roots[size]);
		s.limit = size;
		s.reads = 0;
		assert_int_equal(cm_merkle_root(size, store_get, &s, got), 0);
		assert_memory_equal(got, want, CM_HASH_LEN);
		bits = (unsigned long)__builtin_popcountll(size);
		assert_int_equal(s.reads, bits);
		ref_mth((const uint8_t (*)[CM_HASH_LEN])leaves, size, got);
		assert_memory_equal(got, want, CM_HASH_LEN);
		cm_merkle_frontier_root(&f, got);
		assert_memory_equal(got, want, CM_HASH_LEN);
		if (size < 8)
			assert_int_equal(cm_merkle_frontier_push(&f,
			    leaves[size]), 0);
	}
	store_free(&s);
}

static void
test_rfc6962_proofs(void **state)
{
	struct store s;
	uint8_t leaves[8][CM_HASH_LEN];
	uint64_t m, n;

	(void)state;
	rfc_tree(&s, leaves);
	for (n = 1; n <= 8; n++)
		for (m = 0; m < n; m++)
			check_inclusion(&s,
			    (const uint8_t (*)[CM_HASH_LEN])leaves, m, n, 1);
	for (n = 1; n <= 8; n++)
		for (m = 1; m <= n; m++)
			check_consistency(&s,
			    (const uint8_t (*)[CM_HASH_LEN])leaves, m, n, 1);
	store_free(&s);
}

static void
test_large_tree(void **state)
{
	static const uint64_t edges[] = {
		1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
		127, 128, 129, 255, 256, 257, 511, 512, 513, 999, 1000,
	};
	struct store s;
	struct cm_merkle_frontier f;
	uint8_t (*leaves)[CM_HASH_LEN];
	uint8_t entry[8], a[CM_HASH_LEN], b[CM_HASH_LEN];
	uint64_t i, m, n;
	size_t e, k;

	(void)state;
	leaves = calloc(BIG_TREE, CM_HASH_LEN);
	assert_non_null(leaves);
	store_init(&s, BIG_TREE);
	cm_merkle_frontier_init(&f);
	for (i = 0; i <= BIG_TREE; i++) {
		s.limit = i;
		s.reads = 0;
		assert_int_equal(cm_merkle_root(i, store_get, &s, a), 0);
		assert_true(s.reads <= 64);
		cm_merkle_frontier_root(&f, b);
		assert_memory_equal(a, b, CM_HASH_LEN);
		if (i == BIG_TREE)
			break;
		for (k = 0; k < sizeof(entry); k++)
			entry[k] = (uint8_t)((i * 2654435761u) >> (8 * k));
		cm_merkle_leaf_hash(leaves[i], entry, sizeof(entry));
		store_append(&s, leaves[i]);
		assert_int_equal(cm_merkle_frontier_push(&f, leaves[i]), 0);
	}
	ref_mth((const uint8_t (*)[CM_HASH_LEN])leaves, BIG_TREE, b);
	assert_memory_equal(a, b, CM_HASH_LEN);

	for (e = 0; e < NELEM(edges); e++) {
		n = edges[e];
		check_inclusion(&s, (const uint8_t (*)[CM_HASH_LEN])leaves, 0, n,
		    1);
		check_inclusion(&s, (const uint8_t (*)[CM_HASH_LEN])leaves,
		    n - 1, n, 1);
		check_inclusion(&s, (const uint8_t (*)[CM_HASH_LEN])leaves,
		    rng() % n, n, 1);
		check_consistency(&s, (const uint8_t (*)[CM_HASH_LEN])leaves, 1,
		    n, 1);
		check_consistency(&s, (const uint8_t (*)[CM_HASH_LEN])leaves, n,
		    BIG_TREE, 1);
		check_consistency(&s, (const uint8_t (*)[CM_HASH_LEN])leaves,
		    1 + rng() % n, n, 1);
	}
	for (k = 0; k < 300; k++) {
		n = 1 + rng() % BIG_TREE;
		m = 1 + rng() % n;
		check_inclusion(&s, (const uint8_t (*)[CM_HASH_LEN])leaves,
		    m - 1, n, 1);
		check_consistency(&s, (const uint8_t (*)[CM_HASH_LEN])leaves, m,
		    n, 1);
	}
	store_free(&s);
	free(leaves);
}

static void
test_huge_tree(void **state)
{
	static const uint64_t sizes[] = {
		(1ULL << 32) + 1, (1ULL << 63) - 1, 1ULL << 63,
		(1ULL << 63) + 1, UINT64_MAX - 1, UINT64_MAX,
	};
	struct uniform u;
	struct cm_merkle_frontier f;
	uint8_t proof[CM_MERKLE_MAX_PROOF][CM_HASH_LEN];
	uint8_t r1[CM_HASH_LEN], r2[CM_HASH_LEN];
	uint64_t n, m, idx;
	size_t np, longest = 0, e, k;
	unsigned l;

	(void)state;
	cm_merkle_leaf_hash(u.p[0], (const uint8_t *)"same", 4);
	for (l = 1; l < 64; l++)
		cm_merkle_node_hash(u.p[l], u.p[l - 1], u.p[l - 1]);
	for (e = 0; e < NELEM(sizes); e++) {
		n = sizes[e];
		u.size = n;
		assert_int_equal(cm_merkle_root(n, uniform_get, &u, r2), 0);
		f.size = n;
		for (l = 0; l < 64; l++)
			memcpy(f.hash[l], u.p[l], CM_HASH_LEN);
		cm_merkle_frontier_root(&f, r1);
		assert_memory_equal(r1, r2, CM_HASH_LEN);

		for (k = 0; k < 8; k++) {
			idx = k == 0 ? 0 : k == 1 ? n - 1 : rng() % n;
			assert_int_equal(cm_merkle_inclusion_proof(idx, n,
			    uniform_get, &u, proof, CM_MERKLE_MAX_PROOF, &np), 0);
			assert_true(np <= 64);
			assert_int_equal(cm_merkle_verify_inclusion(idx, n,
			    u.p[0], (const uint8_t (*)[CM_HASH_LEN])proof, np,
			    r2), 0);
			r2[0] ^= 1;
			assert_int_equal(cm_merkle_verify_inclusion(idx, n,
			    u.p[0], (const uint8_t (*)[CM_HASH_LEN])proof, np,
			    r2), -1);
			r2[0] ^= 1;

			m = k == 0 ? 1 : k == 1 ? n - 1 : 1 + rng() % n;
			assert_int_equal(cm_merkle_root(m, uniform_get, &u, r1),
			    0);
			assert_int_equal(cm_merkle_consistency_proof(m, n,
			    uniform_get, &u, proof, CM_MERKLE_MAX_PROOF, &np), 0);
			if (np > longest)
				longest = np;
			assert_int_equal(cm_merkle_verify_consistency(m, n, r1,
			    r2, (const uint8_t (*)[CM_HASH_LEN])proof, np), 0);
		}
	}
	assert_true(longest <= CM_MERKLE_MAX_PROOF);

	/* The longest consistency proof there is needs all 65 slots. */
	n = UINT64_MAX;
	m = UINT64_MAX - 2;
	u.size = n;
	assert_int_equal(cm_merkle_root(m, uniform_get, &u, r1), 0);
	assert_int_equal(cm_merkle_root(n, uniform_get, &u, r2), 0);
	assert_int_equal(cm_merkle_consistency_proof(m, n, uniform_get, &u,
	    proof, CM_MERKLE_MAX_PROOF - 1, &np), -1);
	assert_int_equal(cm_merkle_consistency_proof(m, n, uniform_get, &u,
	    proof, CM_MERKLE_MAX_PROOF, &np), 0);
	assert_int_equal(np, CM_MERKLE_MAX_PROOF);
	assert_int_equal(cm_merkle_verify_consistency(m, n, r1, r2,
	    (const uint8_t (*)[CM_HASH_LEN])proof, np), 0);

	/* A full frontier refuses more leaves and stays unchanged. */
	f.size = UINT64_MAX;
	assert_int_equal(cm_merkle_frontier_push(&f, u.p[0]), -1);
	assert_true(f.size == UINT64_MAX);
}

static void
test_error_paths(void **state)
{
	struct store s;
	struct cm_merkle_stored out[CM_MERKLE_MAX_APPEND];
	uint8_t leaves[8][CM_HASH_LEN], proof[CM_MERKLE_MAX_PROOF][CM_HASH_LEN];
	uint8_t r[CM_HASH_LEN], empty[CM_HASH_LEN], other[CM_HASH_LEN];
	size_t np;

	(void)state;
	rfc_tree(&s, leaves);
	s.limit = 8;
	cm_merkle_empty_root(empty);
	memset(other, 0x5a, sizeof(other));

	/* Appending: full tree, short output, failing reads. */
	assert_int_equal(cm_merkle_append_hashes(UINT64_MAX, leaves[0],
	    store_get, &s, out, CM_MERKLE_MAX_APPEND), 0);
	assert_int_equal(cm_merkle_append_hashes(7, leaves[0], store_get, &s,
	    out, 3), 0);
	assert_int_equal(cm_merkle_append_hashes(7, leaves[0], store_get, &s,
	    out, 0), 0);
	assert_int_equal(cm_merkle_append_hashes(4, leaves[0], NULL, &s, out,
	    1), 0);
	s.reads = 0;
	s.fail_after = 2;
	assert_int_equal(cm_merkle_append_hashes(7, leaves[0], store_get, &s,
	    out, CM_MERKLE_MAX_APPEND), 0);

	/* Roots and proofs pass read errors on. */
	s.reads = 0;
	assert_int_equal(cm_merkle_root(7, store_get, &s, r), -1);
	s.reads = 0;
	assert_int_equal(cm_merkle_inclusion_proof(0, 7, store_get, &s, proof,
	    CM_MERKLE_MAX_PROOF, &np), -1);
	assert_int_equal(np, 0);
	s.reads = 0;
	assert_int_equal(cm_merkle_consistency_proof(3, 7, store_get, &s,
	    proof, CM_MERKLE_MAX_PROOF, &np), -1);
	assert_int_equal(np, 0);
	s.fail_after = 0;
	s.limit = 4;
	assert_int_equal(cm_merkle_root(5, store_get, &s, r), -1);
	s.limit = 8;

	/* Sub-range hashes need ranges that split into aligned subtrees. */
	assert_int_equal(cm_merkle_subtree_hash(4, 7, store_get, &s, r), 0);
	ref_mth((const uint8_t (*)[CM_HASH_LEN])leaves + 4, 3, other);
	assert_memory_equal(r, other, CM_HASH_LEN);
	assert_int_equal(cm_merkle_subtree_hash(2, 5, store_get, &s, r), 0);
	ref_mth((const uint8_t (*)[CM_HASH_LEN])leaves + 2, 3, other);
	assert_memory_equal(r, other, CM_HASH_LEN);
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(cm_merkle_subtree_hash(1, 4, store_get, &s, r), -1);
	assert_int_equal(cm_merkle_subtree_hash(6, 10, store_get, &s, r), -1);
	assert_int_equal(cm_merkle_subtree_hash(5, 4, store_get, &s, r), -1);
	assert_int_equal(cm_merkle_subtree_hash(3, 3, store_get, &s, r), 0);
	assert_memory_equal(r, empty, CM_HASH_LEN);
	assert_int_equal(cm_merkle_subtree_hash(0, 4, NULL, &s, r), -1);

	/* Proof generation: bad sizes and short output. */
	assert_int_equal(cm_merkle_inclusion_proof(8, 8, store_get, &s, proof,
	    CM_MERKLE_MAX_PROOF, &np), -1);
	assert_int_equal(cm_merkle_inclusion_proof(0, 0, store_get, &s, proof,
	    CM_MERKLE_MAX_PROOF, &np), -1);
	assert_int_equal(cm_merkle_inclusion_proof(0, 8, store_get, &s, proof,
	    2, &np), -1);
	assert_int_equal(cm_merkle_inclusion_proof(0, 8, store_get, &s, proof,
	    3, &np), 0);
	assert_int_equal(np, 3);
	assert_int_equal(cm_merkle_inclusion_proof(0, 1, store_get, &s, NULL,
	    0, &np), 0);
	assert_int_equal(np, 0);
	assert_int_equal(cm_merkle_consistency_proof(5, 4, store_get, &s,
	    proof, CM_MERKLE_MAX_PROOF, &np), -1);
	assert_int_equal(cm_merkle_consistency_proof(3, 8, store_get, &s,
	    proof, 3, &np), -1);
	assert_int_equal(cm_merkle_consistency_proof(0, 8, store_get, &s,
	    NULL, 0, &np), 0);
	assert_int_equal(np, 0);
	assert_int_equal(cm_merkle_consistency_proof(8, 8, store_get, &s,
	    NULL, 0, &np), 0);
	assert_int_equal(np, 0);

	/* Verification outside 0 < size1 < size2. */
	assert_int_equal(cm_merkle_root(3, store_get, &s, r), 0);
	assert_int_equal(cm_merkle_verify_inclusion(0, 0, leaves[0], NULL, 0,
	    empty), -1);
	assert_int_equal(cm_merkle_verify_consistency(0, 0, empty, empty, NULL,
	    0), 0);
	assert_int_equal(cm_merkle_verify_consistency(0, 0, other, other, NULL,
	    0), -1);
	assert_int_equal(cm_merkle_verify_consistency(0, 3, empty, r, NULL, 0),
	    0);
	assert_int_equal(cm_merkle_verify_consistency(0, 3, other, r, NULL, 0),
	    -1);
	memcpy(proof[0], r, CM_HASH_LEN);
	assert_int_equal(cm_merkle_verify_consistency(0, 3, empty, r,
	    (const uint8_t (*)[CM_HASH_LEN])proof, 1), -1);
	assert_int_equal(cm_merkle_verify_consistency(3, 3, r, r, NULL, 0), 0);
	assert_int_equal(cm_merkle_verify_consistency(3, 3, r, other, NULL, 0),
	    -1);
	assert_int_equal(cm_merkle_verify_consistency(3, 3, r, r,
	    (const uint8_t (*)[CM_HASH_LEN])proof, 1), -1);
	assert_int_equal(cm_merkle_verify_consistency(4, 3, r, r, NULL, 0), -1);

	/*
	 * Run on 3 > 2, the RFC steps would accept root2 = H(0x01 || root1 ||
	 * c) with proof (root1, c): the explicit size check must refuse it.
	 */
	memcpy(proof[0], r, CM_HASH_LEN);
	memcpy(proof[1], leaves[7], CM_HASH_LEN);
	cm_merkle_node_hash(other, r, leaves[7]);
	assert_int_equal(cm_merkle_verify_consistency(3, 2, r, other,
	    (const uint8_t (*)[CM_HASH_LEN])proof, 2), -1);
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(cm_merkle_verify_consistency(2, 3, r, r, NULL, 0), -1);
	store_free(&s);
}

/* ---- the transparency-dev/merkle corpus --------------------------------- */

/* A base64 hash as decoded: LEN is SIZE_MAX when the text is not base64. */
struct blob {
	size_t	len;
	uint8_t	b[64];
};

static void
decode_b64(const json_t *v, struct blob *out)
{
	const char *s, *end = NULL;

	out->len = SIZE_MAX;
	if (!json_is_string(v))
		return;
	s = json_string_value(v);
	if (sodium_base642bin(out->b, sizeof(out->b), s, json_string_length(v),
	    NULL, &out->len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != s + json_string_length(v))
		out->len = SIZE_MAX;
}

/*
 * Reads the unsigned integer member KEY of the JSON document TEXT. jansson
 * stores integers as signed 64-bit values and refuses 2^64 - 1, which the
 * corpus uses (a leaf index of 0 minus one), so documents are loaded with
 * JSON_DECODE_INT_AS_REAL and the exact value is read from the text here;
 * it must agree with the number jansson parsed (DOC), which guards the scan.
 */
static int
json_u64(const char *text, const json_t *doc, const char *key, uint64_t *out)
{
	char pat[64];
	const char *p;
	char *end;
	const json_t *v;
	unsigned long long u;

	v = json_object_get(doc, key);
	if (!json_is_number(v))
		return -1;
	assert_true(snprintf(pat, sizeof(pat), "\"%s\"", key) < (int)sizeof(pat));
	for (p = strstr(text, pat); p != NULL; p = strstr(p + 1, pat)) {
		end = NULL;
		p += strlen(pat);
		p += strspn(p, " \t\r\n");
		if (*p != ':')
			continue;
		p++;
		p += strspn(p, " \t\r\n");
		if (*p < '0' || *p > '9')
			continue;
		errno = 0;
		u = strtoull(p, &end, 10);
		if (end == p || errno != 0)
			return -1;
		if ((double)u != json_number_value(v))
			return -1;
		*out = (uint64_t)u;
		return 0;
	}
	return -1;
}

/*
 * Decodes the "proof" member of DOC into a new array at *PROOF (NULL when
 * empty or null) and its length in *N. Returns 1 if every element is a
 * 32-byte hash, 0 if some element is not, -1 on a malformed member.
 */
static int
load_proof(const json_t *doc, uint8_t (**proof)[CM_HASH_LEN], size_t *n)
{
	const json_t *arr;
	struct blob b;
	size_t i;
	int ok = 1;

	*proof = NULL;
	*n = 0;
	arr = json_object_get(doc, "proof");
	if (json_is_null(arr))
		return 1;
	if (!json_is_array(arr))
		return -1;
	*n = json_array_size(arr);
	if (*n == 0)
		return 1;
	*proof = calloc(*n, CM_HASH_LEN);
	assert_non_null(*proof);
	for (i = 0; i < *n; i++) {
		decode_b64(json_array_get(arr, i), &b);
		if (b.len == CM_HASH_LEN)
			memcpy((*proof)[i], b.b, CM_HASH_LEN);
		else
			ok = 0;
	}
	return ok;
}

/*
 * If the proof in a happy-path case is over a prefix of the RFC 6962
 * eight-leaf tree (as the corpus's are), it must be exactly what our
 * generator produces for that prefix.
 */
static void
crosscheck(struct corpus *c, int inclusion, uint64_t a, uint64_t b,
    const uint8_t root[CM_HASH_LEN], const uint8_t (*proof)[CM_HASH_LEN],
    size_t n)
{
	uint8_t want[CM_HASH_LEN], gen[CM_MERKLE_MAX_PROOF][CM_HASH_LEN];
	size_t ngen = 0;

	if (b > 8 || b == 0)
		return;
	hex_decode(want, sizeof(want), rfc_roots[b]);
	if (sodium_memcmp(want, root, CM_HASH_LEN) != 0)
		return;
	c->rfc.limit = 8;
	if (inclusion)
		assert_int_equal(cm_merkle_inclusion_proof(a, b, store_get,
		    &c->rfc, gen, CM_MERKLE_MAX_PROOF, &ngen), 0);
	else
		assert_int_equal(cm_merkle_consistency_proof(a, b, store_get,
		    &c->rfc, gen, CM_MERKLE_MAX_PROOF, &ngen), 0);
	assert_int_equal(ngen, n);
	if (n > 0)
		assert_memory_equal(gen, proof, n * CM_HASH_LEN);
	c->crosschecked++;
}

static void
run_inclusion(struct corpus *c, const char *path, const char *text,
    const json_t *doc, int want_ok)
{
	struct blob leaf, root;
	uint8_t (*proof)[CM_HASH_LEN];
	uint64_t index, size;
	size_t n;
	int shape, ok = 0;

	assert_int_equal(json_u64(text, doc, "leafIdx", &index), 0);
	assert_int_equal(json_u64(text, doc, "treeSize", &size), 0);
	decode_b64(json_object_get(doc, "leafHash"), &leaf);
	decode_b64(json_object_get(doc, "root"), &root);
	shape = load_proof(doc, &proof, &n);
	assert_int_not_equal(shape, -1);
	if (shape == 1 && leaf.len == CM_HASH_LEN && root.len == CM_HASH_LEN)
		ok = cm_merkle_verify_inclusion(index, size, leaf.b,
		    (const uint8_t (*)[CM_HASH_LEN])proof, n, root.b) == 0;
	if (ok != want_ok)
		fail_msg("%s: inclusion verified=%d, want %d", path, ok, want_ok);
	if (ok)
		crosscheck(c, 1, index, size, root.b,
		    (const uint8_t (*)[CM_HASH_LEN])proof, n);
	free(proof);
	c->inclusion++;
}

static void
run_consistency(struct corpus *c, const char *path, const char *text,
    const json_t *doc, int want_ok)
{
	struct blob r1, r2;
	uint8_t (*proof)[CM_HASH_LEN];
	uint64_t size1, size2;
	size_t n;
	int shape, ok = 0;

	assert_int_equal(json_u64(text, doc, "size1", &size1), 0);
	assert_int_equal(json_u64(text, doc, "size2", &size2), 0);
	decode_b64(json_object_get(doc, "root1"), &r1);
	decode_b64(json_object_get(doc, "root2"), &r2);
	shape = load_proof(doc, &proof, &n);
	assert_int_not_equal(shape, -1);
	if (shape == 1 && r1.len == CM_HASH_LEN && r2.len == CM_HASH_LEN)
		ok = cm_merkle_verify_consistency(size1, size2, r1.b, r2.b,
		    (const uint8_t (*)[CM_HASH_LEN])proof, n) == 0;
	else if (size1 == size2 && size1 != 0 && r1.len != SIZE_MAX &&
	    r2.len != SIZE_MAX)
		/*
		 * Upstream quirk: for equal sizes upstream only compares the
		 * roots as byte strings and requires an empty proof, so it
		 * accepts "sizes-are-equal-one-and-proof-is-empty", whose
		 * equal roots are the 12 bytes "don't care 2". Our verifier
		 * takes 32-byte roots only, so apply that rule here instead.
		 * (Size 0 needs the 32-byte empty-tree root, so it stays
		 * invalid, as upstream also says.)
		 */
		ok = n == 0 && r1.len == r2.len &&
		    memcmp(r1.b, r2.b, r1.len) == 0;
	if (ok != want_ok)
		fail_msg("%s: consistency verified=%d, want %d", path, ok,
		    want_ok);
	if (ok && r2.len == CM_HASH_LEN)
		crosscheck(c, 0, size1, size2, r2.b,
		    (const uint8_t (*)[CM_HASH_LEN])proof, n);
	free(proof);
	c->consistency++;
}

static char *
read_text(const char *path)
{
	FILE *fp;
	char *buf;
	size_t n;

	fp = fopen(path, "rb");
	if (fp == NULL)
		fail_msg("%s: cannot open", path);
	buf = malloc(MAX_FILE + 1);
	assert_non_null(buf);
	n = fread(buf, 1, MAX_FILE + 1, fp);
	fclose(fp);
	if (n > MAX_FILE) {
		free(buf);
		fail_msg("%s: larger than %d bytes", path, MAX_FILE);
	}
	buf[n] = '\0';
	return buf;
}

static void
run_case(struct corpus *c, const char *path, int inclusion)
{
	json_error_t err;
	json_t *doc;
	const json_t *want_err;
	char *text;

	text = read_text(path);
	doc = json_loads(text, JSON_DECODE_INT_AS_REAL, &err);
	if (doc == NULL) {
		free(text);
		fail_msg("%s:%d: %s", path, err.line, err.text);
	}
	want_err = json_object_get(doc, "wantErr");
	assert_true(json_is_boolean(want_err));
	if (inclusion)
		run_inclusion(c, path, text, doc, !json_is_true(want_err));
	else
		run_consistency(c, path, text, doc, !json_is_true(want_err));
	json_decref(doc);
	free(text);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every *.json file under DIR, recursively, in sorted name order. */
static void
walk(struct corpus *c, const char *dir, int inclusion)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char **names = NULL, **grown, path[4096];
	size_t n = 0, cap = 0, i, len;

	d = opendir(dir);
	if (d == NULL)
		fail_msg("%s: cannot open directory (set CM_MERKLE_VECTORS)", dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			grown = realloc(names, cap * sizeof(*names));
			assert_non_null(grown);
			names = grown;
		}
		names[n] = strdup(de->d_name);
		assert_non_null(names[n]);
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		assert_true(snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]) < (int)sizeof(path));
		assert_int_equal(stat(path, &st), 0);
		len = strlen(names[i]);
		if (S_ISDIR(st.st_mode))
			walk(c, path, inclusion);
		else if (S_ISREG(st.st_mode) && len > 5 &&
		    strcmp(names[i] + len - 5, ".json") == 0)
			run_case(c, path, inclusion);
		free(names[i]);
	}
	free(names);
}

static void
test_vectors_corpus(void **state)
{
	struct corpus c;
	char path[4096];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.root = getenv("CM_MERKLE_VECTORS");
	if (c.root == NULL || *c.root == '\0')
		c.root = DEFAULT_VECTORS;
	rfc_tree(&c.rfc, c.rfc_leaves);

	assert_true(snprintf(path, sizeof(path), "%s/inclusion", c.root) <
	    (int)sizeof(path));
	walk(&c, path, 1);
	assert_true(snprintf(path, sizeof(path), "%s/consistency", c.root) <
	    (int)sizeof(path));
	walk(&c, path, 0);
	store_free(&c.rfc);

	if (c.inclusion == 0 || c.consistency == 0 ||
	    c.inclusion + c.consistency < MIN_VECTORS)
		fail_msg("only %u inclusion and %u consistency cases under %s",
		    c.inclusion, c.consistency, c.root);
	assert_true(c.crosschecked > 0);
	printf("merkle vectors: %u inclusion, %u consistency cases passed\n",
	    c.inclusion, c.consistency);
	fflush(stdout);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_primitives),
		cmocka_unit_test(test_hash_matches_libsodium),
		cmocka_unit_test(test_rfc6962_roots),
		cmocka_unit_test(test_rfc6962_proofs),
		cmocka_unit_test(test_large_tree),
		cmocka_unit_test(test_huge_tree),
		cmocka_unit_test(test_error_paths),
		cmocka_unit_test(test_vectors_corpus),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
