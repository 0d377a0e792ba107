/* SPDX-License-Identifier: ISC */
/*
 * Merkle tree arithmetic for the audit log, as defined by RFC 6962 and
 * RFC 9162 (SHA-256, 0x00 leaf prefix, 0x01 node prefix): leaf and node
 * hashes, tree roots, and the generation and verification of inclusion
 * and consistency proofs. The module performs no I/O: tree operations
 * read the hashes of perfect, aligned subtrees through a caller-supplied
 * callback, so the storage (SQLite or memory) stays with the caller.
 * libsodium must have been initialised with sodium_init() before use.
 */
#ifndef CONSENTD_MERKLE_H
#define CONSENTD_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define CM_HASH_LEN		32

/* Most entries cm_merkle_append_hashes() can return for one leaf. */
#define CM_MERKLE_MAX_APPEND	64

/* Longest inclusion or consistency proof for any tree size below 2^64. */
#define CM_MERKLE_MAX_PROOF	65

/*
 * Reads the stored hash of the perfect subtree at LEVEL and INDEX, that is
 * the Merkle tree hash of leaves [INDEX * 2^LEVEL, (INDEX + 1) * 2^LEVEL),
 * into OUT. Level 0 holds leaf hashes. Returns 0, or -1 if the hash cannot
 * be read; the error is passed on to the caller of the tree operation.
 */
typedef int (*cm_merkle_get_fn)(void *ctx, unsigned level, uint64_t index,
    uint8_t out[CM_HASH_LEN]);

/* One perfect-subtree hash that the caller should store. */
struct cm_merkle_stored {
	unsigned	level;
	uint64_t	index;
	uint8_t		hash[CM_HASH_LEN];
};

/*
 * The right edge of a tree held in memory: for every bit L set in SIZE,
 * HASH[L] is the hash of the perfect subtree of 2^L leaves that bit stands
 * for. Enough to append leaves and compute the root in O(log n) memory.
 */
struct cm_merkle_frontier {
	uint64_t	size;
	uint8_t		hash[64][CM_HASH_LEN];
};

/* Writes the leaf hash SHA-256(0x00 || ENTRY[0..LEN)) to OUT. */
void	cm_merkle_leaf_hash(uint8_t out[CM_HASH_LEN], const uint8_t *entry,
	    size_t len);

/*
 * Writes the interior node hash SHA-256(0x01 || LEFT || RIGHT) to OUT.
 * OUT may be the same buffer as LEFT or RIGHT.
 */
void	cm_merkle_node_hash(uint8_t out[CM_HASH_LEN],
	    const uint8_t left[CM_HASH_LEN], const uint8_t right[CM_HASH_LEN]);

/* Writes the root of the empty tree, SHA-256 of no bytes, to OUT. */
void	cm_merkle_empty_root(uint8_t out[CM_HASH_LEN]);

/*
 * Checks that LEAF (a leaf hash) sits at INDEX of the tree of SIZE leaves
 * whose root is ROOT, using the NPROOF hashes of PROOF, leaf sibling first
 * (RFC 9162 section 2.1.3.2). Returns 0 if the proof is valid, -1
 * otherwise, including when INDEX >= SIZE.
 */
int	cm_merkle_verify_inclusion(uint64_t index, uint64_t size,
	    const uint8_t leaf[CM_HASH_LEN], const uint8_t (*proof)[CM_HASH_LEN],
	    size_t nproof, const uint8_t root[CM_HASH_LEN])
	    __attribute__((warn_unused_result));

/*
 * Checks that the tree of SIZE1 leaves with root ROOT1 is a prefix of the
 * tree of SIZE2 leaves with root ROOT2, using the NPROOF hashes of PROOF
 * (RFC 9162 section 2.1.4.2). Returns 0 if valid, -1 otherwise. Beyond
 * the RFC, which covers 0 < SIZE1 < SIZE2: SIZE1 > SIZE2 is invalid;
 * SIZE1 == SIZE2 is valid only with an empty proof and equal roots;
 * SIZE1 == 0 is valid only with an empty proof and ROOT1 equal to the
 * empty-tree root (ROOT2 is then not examined unless SIZE2 is 0 too).
 */
int	cm_merkle_verify_consistency(uint64_t size1, uint64_t size2,
	    const uint8_t root1[CM_HASH_LEN], const uint8_t root2[CM_HASH_LEN],
	    const uint8_t (*proof)[CM_HASH_LEN], size_t nproof)
	    __attribute__((warn_unused_result));

/*
 * Computes what appending leaf hash LEAF at index SIZE (the current tree
 * size) completes: LEAF itself at level 0, then each parent for as long as
 * the node just made is a right child, reading left siblings through GET.
 * Fills OUT (room for CAP entries; CM_MERKLE_MAX_APPEND always suffices)
 * bottom-up and returns the number of entries, or 0 if GET failed, CAP was
 * too small or the tree is full (SIZE == UINT64_MAX). On 0 the contents of
 * OUT are unspecified and nothing should be stored.
 */
size_t	cm_merkle_append_hashes(uint64_t size, const uint8_t leaf[CM_HASH_LEN],
	    cm_merkle_get_fn get, void *ctx, struct cm_merkle_stored *out,
	    size_t cap) __attribute__((warn_unused_result));

/*
 * Writes to OUT the Merkle tree hash of leaves [LO, HI) (the empty-tree
 * root when LO == HI) from at most 64 reads of stored perfect subtrees.
 * LO must be a multiple of the largest power of two not above HI - LO,
 * which holds for every node of an RFC 6962 tree and for every prefix
 * (LO == 0). Returns 0, or -1 if the range is reversed or unaligned or
 * GET failed.
 */
int	cm_merkle_subtree_hash(uint64_t lo, uint64_t hi, cm_merkle_get_fn get,
	    void *ctx, uint8_t out[CM_HASH_LEN])
	    __attribute__((warn_unused_result));

/*
 * Writes to OUT the root of the tree made of the first SIZE leaves, from
 * at most 64 reads through GET (SIZE 0 gives SHA-256 of no bytes).
 * Returns 0, or -1 if GET failed.
 */
int	cm_merkle_root(uint64_t size, cm_merkle_get_fn get, void *ctx,
	    uint8_t out[CM_HASH_LEN]) __attribute__((warn_unused_result));

/*
 * Builds the inclusion proof of leaf INDEX in the tree of SIZE leaves
 * (RFC 9162 section 2.1.3.1), leaf sibling first, into PROOF (room for CAP
 * hashes; CM_MERKLE_MAX_PROOF always suffices) and sets *NPROOF to its
 * length. Returns 0, or -1 if INDEX >= SIZE, CAP is too small or GET
 * failed; on -1, *NPROOF is 0.
 */
int	cm_merkle_inclusion_proof(uint64_t index, uint64_t size,
	    cm_merkle_get_fn get, void *ctx, uint8_t (*proof)[CM_HASH_LEN],
	    size_t cap, size_t *nproof) __attribute__((warn_unused_result));

/*
 * Builds the consistency proof between the trees of SIZE1 and SIZE2
 * leaves (RFC 9162 section 2.1.4.1) into PROOF (room for CAP hashes;
 * CM_MERKLE_MAX_PROOF always suffices) and sets *NPROOF to its length.
 * The proof is empty when SIZE1 is 0 or equals SIZE2. Returns 0, or -1 if
 * SIZE1 > SIZE2, CAP is too small or GET failed; on -1, *NPROOF is 0.
 */
int	cm_merkle_consistency_proof(uint64_t size1, uint64_t size2,
	    cm_merkle_get_fn get, void *ctx, uint8_t (*proof)[CM_HASH_LEN],
	    size_t cap, size_t *nproof) __attribute__((warn_unused_result));

/* Makes F the frontier of the empty tree. */
void	cm_merkle_frontier_init(struct cm_merkle_frontier *f);

/*
 * Appends leaf hash LEAF to F. Returns 0, or -1 if F already holds
 * UINT64_MAX leaves (F is then unchanged).
 */
int	cm_merkle_frontier_push(struct cm_merkle_frontier *f,
	    const uint8_t leaf[CM_HASH_LEN]) __attribute__((warn_unused_result));

/* Writes the root of the tree F stands for to OUT. */
void	cm_merkle_frontier_root(const struct cm_merkle_frontier *f,
	    uint8_t out[CM_HASH_LEN]);

#endif
