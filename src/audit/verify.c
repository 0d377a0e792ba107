/* SPDX-License-Identifier: ISC */
/*
 * Full verification of the audit log, as an auditor would do it: recompute
 * the Merkle tree from the stored entry bytes alone, compare every stored
 * leaf and interior hash and every signed checkpoint root with it, check
 * each checkpoint's signature, and check each checkpoint is consistent
 * with the next through a proof built from the stored hashes. Entries are
 * streamed in index order; each tree level is compared through its own
 * cursor over the stored hashes, so memory stays O(log n) (plus one size
 * and root per checkpoint, and two batches of entries).
 *
 * What is checked of one entry alone (it parses, carries its index, is
 * canonical; its leaf hash) does not depend on the others, so it is done
 * for a batch of entries by every core at once: helper threads and the
 * main thread take chunks of a batch while the main thread also reads the
 * next batch from the store. Everything that depends on order (the index
 * sequence, the tree, the checkpoints, which entry is reported first) is
 * then applied by the main thread alone, entry by entry in index order,
 * exactly as when there was one thread: the report does not depend on
 * the threads or on how the batches fall.
 */
#define _GNU_SOURCE	/* sched_getaffinity, CPU_COUNT */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/par.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "entry_fields.h"
#include "state.h"

#define MAX_LEVELS	64
#define MAX_FAIL_LINES	20

/*
 * A batch is handed to the threads once it holds BATCH_ENTRIES entries or
 * BATCH_BYTES of them, and is shared out in chunks of CHUNK_ENTRIES: big
 * enough that taking one costs nothing next to checking it, small enough
 * that the main thread, back from reading, finds some left to take.
 */
#define BATCH_ENTRIES	4096
#define BATCH_BYTES	(1024 * 1024)
#define CHUNK_ENTRIES	64
#define MAX_HELPERS	7

struct vcp {
	uint64_t	size;
	uint8_t		root[32];
	bool		sig_ok;
};

/* One entry of a batch, and what the threads found of it alone. */
struct ventry {
	uint64_t	idx;
	size_t		off;		/* into the batch's bytes */
	size_t		len;
	uint8_t		stored_leaf[32];
	uint8_t		leaf[32];	/* computed from the bytes */
	bool		idx_ok;		/* parses, and "i" is IDX */
	bool		canon;		/* parses, and is canonical */
	struct cm_state_fact sf;	/* what it says of the state */
};

struct vbatch {
	struct ventry	*e;
	size_t		 n;
	uint8_t		*bytes;
	size_t		 used, cap;
	size_t		 nchunks;
	size_t		 claimed;	/* chunks taken; guarded by the pool lock */
	size_t		 done;		/* chunks checked; likewise */
};

/*
 * Two batches: the main thread fills one while the other is checked, then
 * helps finish the older one and applies it. Helpers take chunks of the
 * published batches that the main thread has not taken back, oldest
 * first.
 */
struct vpool {
	pthread_mutex_t	 lock;
	pthread_cond_t	 work;		/* a batch was published, or stop */
	pthread_cond_t	 done;		/* a batch's last chunk was checked */
	struct vbatch	 b[2];
	uint64_t	 published;	/* batches published so far */
	uint64_t	 taken;		/* batches the main thread took back */
	bool		 stop;
	pthread_t	 thr[MAX_HELPERS];
	unsigned	 nthr;
};

struct vstate {
	struct cm_db		*db;
	FILE			*out;
	uint64_t		 next;		/* next expected index */
	int64_t			 bad_seq, bad_canon, bad_leaf, bad_node;
	char			 why_seq[128];
	struct cm_hash_cursor	*cur[MAX_LEVELS];
	/*
	 * The recomputed tree's right edge; its hashes are also the left
	 * siblings each new leaf merges with, so every node is hashed once.
	 */
	struct cm_merkle_frontier fr;
	struct vcp		*cps;
	size_t			 ncps, cpi;
	unsigned		 passed, failed, fail_lines;
	cm_result		 err;
	bool			 halted;	/* stop applying entries */
	struct cm_state_replay	*replay;	/* the state the log says, or NULL */
	struct vs_cmp		*cmp;		/* the state tables against it */
	/* A thread reading the state tables meanwhile, on a twin connection. */
	struct cm_db		*twin;
	pthread_t		 collector;
	bool			 collecting;
	cm_result		 collect_rc;
	struct vpool		 pool;
	struct vbatch		*fill;		/* the batch being read into */
};

/* ---- checks of one entry alone, on any thread --------------------------- */

static void
check_alone(const struct vbatch *b, struct ventry *e)
{
	const uint8_t *bytes = b->bytes + e->off;
	struct cm_entry_fields ef;
	json_error_t je;
	json_t *j, *ji;

	cm_merkle_leaf_hash(e->leaf, bytes, e->len);
	/* Nearly every entry: simdjson and the canonical scan settle it. */
	if (cm_entry_fast(bytes, e->len, &ef)) {
		e->canon = true;
		e->idx_ok = ef.i.kind == EF_INT && (uint64_t)ef.i.num == e->idx;
		/* For the state replay, which the main thread runs in order. */
		if (!e->idx_ok || cm_state_extract_fields(&ef, &e->sf))
			return;
	}
	j = json_loadb((const char *)bytes, e->len, JSON_REJECT_DUPLICATES, &je);
	ji = j ? json_object_get(j, "i") : NULL;
	e->idx_ok = ji != NULL && json_is_integer(ji) &&
	    (uint64_t)json_integer_value(ji) == e->idx;
	e->canon = cm_audit_entry_canonical(bytes, e->len, j);
	if (j != NULL && e->idx_ok && e->canon)
		cm_state_extract(j, &e->sf);
	json_decref(j);
}

static void
check_chunk(struct vbatch *b, size_t chunk)
{
	size_t i, lim;

	lim = (chunk + 1) * CHUNK_ENTRIES;
	if (lim > b->n)
		lim = b->n;
	for (i = chunk * CHUNK_ENTRIES; i < lim; i++)
		check_alone(b, &b->e[i]);
}

/* A published batch not yet taken back that has chunks left, or NULL. */
static struct vbatch *
pool_work(struct vpool *p)
{
	struct vbatch *b;
	uint64_t seq;

	for (seq = p->taken; seq < p->published; seq++) {
		b = &p->b[seq % 2];
		if (b->claimed < b->nchunks)
			return b;
	}
	return NULL;
}

/* Checks one chunk of B, entered and left with the pool locked. */
static void
pool_check_one(struct vpool *p, struct vbatch *b)
{
	size_t chunk = b->claimed++;

	pthread_mutex_unlock(&p->lock);
	check_chunk(b, chunk);
	pthread_mutex_lock(&p->lock);
	if (++b->done == b->nchunks)
		pthread_cond_broadcast(&p->done);
}

static void *
pool_helper(void *arg)
{
	struct vpool *p = arg;
	struct vbatch *b;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		if ((b = pool_work(p)) != NULL)
			pool_check_one(p, b);
		else
			pthread_cond_wait(&p->work, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Helpers for every other core this process may run on. */
static unsigned
pool_helpers_wanted(void)
{
	unsigned n = cm_cpu_count();

	return n - 1 > MAX_HELPERS ? MAX_HELPERS : n - 1;
}

static void
pool_start(struct vpool *p)
{
	unsigned i, want;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (i = 0; i < 2; i++) {
		p->b[i].e = cm_reallocarray(NULL, BATCH_ENTRIES, sizeof(*p->b[i].e));
		p->b[i].cap = BATCH_BYTES;
		/* Zeroed padding after the last entry, for the fast path. */
		p->b[i].bytes = cm_calloc(1, p->b[i].cap + CM_ENTRY_PADDING);
	}
	/*
	 * jansson seeds its hash function when the first object is made,
	 * safely if its build has atomics; seeding first leaves no doubt.
	 */
	json_object_seed(0);
	/* Without helpers the main thread checks every chunk itself. */
	want = pool_helpers_wanted();
	for (i = 0; i < want; i++) {
		if (pthread_create(&p->thr[i], NULL, pool_helper, p) != 0)
			break;
		p->nthr++;
	}
}

static void
pool_stop(struct vpool *p)
{
	unsigned i;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthr; i++)
		pthread_join(p->thr[i], NULL);
	for (i = 0; i < 2; i++) {
		free(p->b[i].e);
		free(p->b[i].bytes);
	}
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
}

/* Hands B, just filled, to the threads. */
static void
pool_publish(struct vpool *p, struct vbatch *b)
{
	pthread_mutex_lock(&p->lock);
	p->published++;
	b->nchunks = (b->n + CHUNK_ENTRIES - 1) / CHUNK_ENTRIES;
	b->claimed = b->done = 0;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

/*
 * Takes back the oldest published batch once every chunk of it is
 * checked, checking what no helper has taken meanwhile.
 */
static struct vbatch *
pool_take(struct vpool *p)
{
	struct vbatch *b;

	pthread_mutex_lock(&p->lock);
	b = &p->b[p->taken % 2];
	while (b->claimed < b->nchunks)
		pool_check_one(p, b);
	while (b->done < b->nchunks)
		pthread_cond_wait(&p->done, &p->lock);
	p->taken++;
	pthread_mutex_unlock(&p->lock);
	return b;
}

/* ---- applying entries in order, on the main thread ---------------------- */

static void CM_PRINTF(3, 4)
report(struct vstate *v, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		v->passed++;
	else
		v->failed++;
	if (!ok && v->fail_lines++ >= MAX_FAIL_LINES)
		return;
	fputs(ok ? "ok   " : "FAIL ", v->out);
	va_start(ap, fmt);
	vfprintf(v->out, fmt, ap);
	va_end(ap);
	fputc('\n', v->out);
}

static void
first_bad(int64_t *slot, uint64_t idx)
{
	if (*slot < 0 || (uint64_t)*slot > idx)
		*slot = (int64_t)idx;
}

/*
 * Compares computed node (LEVEL >= 1, IDX) with the next stored one.
 * Hashes are public, so a plain memcmp will do.
 */
static void
check_node(struct vstate *v, unsigned level, uint64_t idx, const uint8_t h[32])
{
	uint8_t stored[32];
	uint64_t sidx;
	cm_result rc;

	if (v->cur[level] == NULL &&
	    (v->cur[level] = cm_store_audit_hash_cursor(v->db, level)) == NULL) {
		v->err = CM_IOERR;
		return;
	}
	rc = cm_store_audit_hash_next(v->cur[level], &sidx, stored);
	if (rc != CM_OK || sidx != idx || memcmp(stored, h, 32) != 0) {
		if (rc != CM_OK && rc != CM_NOTFOUND)
			v->err = rc;
		/*
		 * Leaves arrive in order, so the first mismatch seen is the
		 * lowest node over the first bad leaf: report where it starts.
		 */
		if (v->bad_node < 0)
			v->bad_node = (int64_t)(idx << level);
	}
}

/*
 * Adds leaf hash H at index IDX (the tree's size) to the recomputed tree,
 * checking each node it completes against the stored one. Returns -1 when
 * the tree cannot grow.
 */
static int
push_leaf(struct vstate *v, uint64_t idx, const uint8_t h[32])
{
	uint8_t node[32];
	unsigned level = 0;

	if (v->fr.size == UINT64_MAX)
		return -1;
	memcpy(node, h, 32);
	for (;;) {
		if (level > 0)
			check_node(v, level, idx, node);
		if ((idx & 1) == 0 || level + 1 >= MAX_LEVELS)
			break;
		cm_merkle_node_hash(node, v->fr.hash[level], node);
		idx >>= 1;
		level++;
	}
	/* What cm_merkle_frontier_push() does, without hashing again. */
	memcpy(v->fr.hash[level], node, 32);
	v->fr.size++;
	return 0;
}

static void
check_checkpoints_at(struct vstate *v, uint64_t size)
{
	uint8_t root[32];

	while (v->cpi < v->ncps && v->cps[v->cpi].size == size) {
		cm_merkle_frontier_root(&v->fr, root);
		report(v, cm_memeq(root, v->cps[v->cpi].root, 32) == 0,
		    "checkpoint %" PRIu64 ": signed root matches the tree recomputed "
		    "from the entries", size);
		v->cpi++;
	}
}

/* Applies entry E, whose own checks are done, to the sequence, tree and state. */
static void
apply_entry(struct vstate *v, struct ventry *e)
{
	uint64_t idx = e->idx;

	if (e->sf.sf_kind != SF_NONE) {
		if (v->replay != NULL)
			cm_state_apply(v->replay, idx, &e->sf);
		cm_state_fact_clear(&e->sf);
	}
	if (idx != v->next && v->bad_seq < 0) {
		v->bad_seq = (int64_t)v->next;
		snprintf(v->why_seq, sizeof(v->why_seq), "entry %" PRIu64 " is missing "
		    "(the next stored entry is %" PRIu64 ")", v->next, idx);
	}
	if (!e->idx_ok && (v->bad_seq < 0 || (uint64_t)v->bad_seq > idx)) {
		v->bad_seq = (int64_t)idx;
		snprintf(v->why_seq, sizeof(v->why_seq), "the entry stored at %"
		    PRIu64 " does not carry index %" PRIu64 " (moved or altered)",
		    idx, idx);
	}
	if (!e->canon)
		first_bad(&v->bad_canon, idx);
	if (memcmp(e->leaf, e->stored_leaf, 32) != 0)
		first_bad(&v->bad_leaf, idx);
	/* The recomputed tree uses the entry bytes, never the stored hashes. */
	if (push_leaf(v, v->next, e->leaf) != 0) {
		v->halted = true;
		return;
	}
	v->next++;
	check_checkpoints_at(v, v->next);
	if (v->err != CM_OK)
		v->halted = true;
}

/* Takes back the oldest batch in flight and applies its entries. */
static void
apply_oldest(struct vstate *v)
{
	struct vbatch *b;
	size_t i;

	b = pool_take(&v->pool);
	for (i = 0; i < b->n && !v->halted; i++)
		apply_entry(v, &b->e[i]);
	for (; i < b->n; i++)
		cm_state_fact_clear(&b->e[i].sf);
	b->n = b->used = 0;
}

/*
 * Publishes the batch being filled, applies the older one meanwhile, and
 * makes it the next to fill.
 */
static void
flush_fill(struct vstate *v)
{
	struct vpool *p = &v->pool;

	pool_publish(p, v->fill);
	if (p->published - p->taken == 2)
		apply_oldest(v);
	v->fill = &p->b[p->published % 2];
}

static int
read_entry(void *arg, uint64_t idx, const void *entry, size_t len,
    const uint8_t stored_leaf[32])
{
	struct vstate *v = arg;
	struct vbatch *b = v->fill;
	struct ventry *e;

	if (b->n == BATCH_ENTRIES || (b->n > 0 && len > b->cap - b->used)) {
		flush_fill(v);
		if (v->halted)
			return 1;
		b = v->fill;
	}
	if (len > b->cap - b->used) {
		/* One entry larger than a batch: only a tampered row can be. */
		b->cap = b->used + len;
		b->bytes = cm_realloc(b->bytes, b->cap + CM_ENTRY_PADDING);
		memset(b->bytes + b->cap, 0, CM_ENTRY_PADDING);
	}
	e = &b->e[b->n++];
	e->sf.sf_kind = SF_NONE;
	e->sf.sf_json = NULL;
	e->idx = idx;
	e->off = b->used;
	e->len = len;
	memcpy(e->stored_leaf, stored_leaf, 32);
	if (len > 0)
		memcpy(b->bytes + b->used, entry, len);
	b->used += len;
	return 0;
}

/* Reads and checks every entry; the entries read are applied even on error. */
static cm_result
verify_entries(struct vstate *v)
{
	struct vpool *p = &v->pool;
	cm_result rc;

	pool_start(p);
	v->fill = &p->b[0];
	rc = cm_store_audit_scan(v->db, 0, UINT64_MAX, read_entry, v);
	if (!v->halted && v->fill->n > 0)
		flush_fill(v);
	while (!v->halted && p->taken < p->published)
		apply_oldest(v);
	pool_stop(p);
	/* The first thing to go wrong, in entry order, is what is returned. */
	return v->err != CM_OK ? v->err : rc;
}

/* ---- checkpoints and the report ----------------------------------------- */

struct cp_load {
	struct vstate	*v;
	const char	*vkey;
	const char	*origin;
	const struct cm_audit_vkey *vkeys;	/* after a key rotation, or NULL */
	size_t		 nvkeys;
};

static int
load_checkpoint(void *arg, const struct cm_checkpoint_row *row)
{
	struct cp_load *l = arg;
	struct vstate *v = l->v;
	char body[CM_NOTE_MAX], origin[CM_AUDIT_ORIGIN_MAX + 1];
	uint8_t root[32];
	uint64_t size;
	struct vcp *c;
	const char *vk;

	v->cps = cm_reallocarray(v->cps, v->ncps + 1, sizeof(*v->cps));
	c = &v->cps[v->ncps++];
	c->size = row->cp_size;
	memcpy(c->root, row->cp_root, 32);
	/* Each checkpoint under the key of its time, once the key was rotated. */
	vk = l->nvkeys > 0 ? cm_audit_vkey_for(l->vkeys, l->nvkeys, row->cp_size) : l->vkey;
	c->sig_ok = vk != NULL && cm_note_open(row->cp_note, vk, body, sizeof(body)) == 0 &&
	    cm_checkpoint_parse(body, strlen(body), origin, sizeof(origin), &size, root) == 0 &&
	    strcmp(origin, l->origin) == 0 && size == row->cp_size &&
	    cm_memeq(root, row->cp_root, 32) == 0;
	return 0;
}

/* The lines about the entries and the tree, once every entry is applied. */
static void
report_entries(struct vstate *v)
{
	unsigned lvl;

	/* Stored hashes beyond the recomputed tree mean rows were added. */
	for (lvl = 1; lvl < MAX_LEVELS; lvl++) {
		uint64_t sidx;
		uint8_t h[32];

		if (v->cur[lvl] == NULL && (v->next >> lvl) == 0)
			break;
		if (v->cur[lvl] == NULL)
			continue;
		if (cm_store_audit_hash_next(v->cur[lvl], &sidx, h) == CM_OK &&
		    v->bad_node < 0)
			v->bad_node = (int64_t)(sidx << lvl);
	}
	if (v->bad_seq >= 0)
		report(v, false, "entries: %s", v->why_seq);
	else
		report(v, true, "entries: %" PRIu64 " entries, indices 0..%" PRIu64
		    " in order", v->next, v->next ? v->next - 1 : 0);
	if (v->bad_canon >= 0)
		report(v, false, "entries: entry %" PRId64 " is not canonical JSON",
		    v->bad_canon);
	else
		report(v, true, "entries: every entry is canonical JSON");
	if (v->bad_leaf >= 0)
		report(v, false, "leaf hashes: entry %" PRId64 " does not match its "
		    "stored leaf hash (its bytes were changed)", v->bad_leaf);
	else
		report(v, true, "leaf hashes: all %" PRIu64 " match the entry bytes", v->next);
	if (v->bad_node >= 0)
		report(v, false, "interior hashes: the stored tree differs from the "
		    "recomputed one from entry %" PRId64 " on", v->bad_node);
	else
		report(v, true, "interior hashes: all match the recomputed tree");
}

/* Each checkpoint against the next, by a proof built from the stored hashes. */
static void
report_consistency(struct vstate *v, uint64_t total)
{
	uint8_t proof[CM_MERKLE_MAX_PROOF][32], empty[32];
	size_t i, n;

	cm_merkle_empty_root(empty);
	for (i = 0; i + 1 < v->ncps; i++) {
		bool ok = v->cps[i + 1].size <= total &&
		    cm_audit_consistency_proof(v->db, v->cps[i].size, v->cps[i + 1].size,
		    proof, CM_MERKLE_MAX_PROOF, &n) == CM_OK &&
		    cm_merkle_verify_consistency(v->cps[i].size, v->cps[i + 1].size,
		    v->cps[i].size == 0 ? empty : v->cps[i].root, v->cps[i + 1].root,
		    (const uint8_t (*)[32])proof, n) == 0;

		report(v, ok, "checkpoints %" PRIu64 " -> %" PRIu64 ": consistent",
		    v->cps[i].size, v->cps[i + 1].size);
	}
}

static cm_result audit_verify(struct cm_db *, struct cm_db *, const struct cm_keys *,
		    const char *, FILE *, struct cm_verify_report *);

/*
 * One read transaction for the whole run: the size, the checkpoints, the
 * entries and the stored hashes are all read from one state of the log,
 * even while the server appends. With the keys, a twin connection that
 * sees the very same state reads the largest state tables meanwhile.
 */
cm_result
cm_audit_verify(struct cm_db *db, const struct cm_keys *keys, const char *vkey_arg,
    FILE *out, struct cm_verify_report *rep)
{
	struct cm_db *twin = NULL;
	cm_result rc;

	memset(rep, 0, sizeof(*rep));
	if ((keys == NULL || cm_db_read_begin_twin(db, &twin) != CM_OK) &&
	    (rc = cm_db_read_begin(db)) != CM_OK)
		return rc;
	/* Every table is read once, in order: caching its pages only costs. */
	cm_db_scan_cache(db, true);
	if (twin != NULL)
		cm_db_scan_cache(twin, true);
	rc = audit_verify(db, twin, keys, vkey_arg, out, rep);
	cm_db_twin_close(twin);
	cm_db_read_end(db);
	cm_db_scan_cache(db, false);
	return rc;
}

static void *
collect_main(void *arg)
{
	struct vstate *v = arg;

	v->collect_rc = cm_state_collect(v->cmp, v->twin);
	return NULL;
}

/* Starts reading the state tables on the twin, when there is one. */
static void
collect_start(struct vstate *v)
{
	if (v->cmp == NULL || v->twin == NULL)
		return;
	v->collecting = pthread_create(&v->collector, NULL, collect_main, v) == 0;
}

/* Waits for that reading; its result, or CM_OK when there was none. */
static cm_result
collect_wait(struct vstate *v)
{
	if (!v->collecting)
		return CM_OK;
	pthread_join(v->collector, NULL);
	v->collecting = false;
	return v->collect_rc;
}

static cm_result
audit_verify(struct cm_db *db, struct cm_db *twin, const struct cm_keys *keys,
    const char *vkey_arg, FILE *out, struct cm_verify_report *rep)
{
	struct vstate v;
	struct cp_load l;
	struct cm_audit_vkey *vks = NULL;
	char origin[CM_AUDIT_ORIGIN_MAX + 1], vkey[256];
	uint8_t pk[32];
	uint64_t total;
	size_t i;
	cm_result rc;
	unsigned lvl;

	memset(&v, 0, sizeof(v));
	memset(rep, 0, sizeof(*rep));
	v.db = db;
	v.out = out;
	v.bad_seq = v.bad_canon = v.bad_leaf = v.bad_node = -1;
	v.err = CM_OK;
	cm_merkle_frontier_init(&v.fr);
	if ((rc = cm_audit_origin(db, origin, sizeof(origin))) != CM_OK)
		return rc;
	if (vkey_arg != NULL) {
		char name[CM_AUDIT_ORIGIN_MAX + 1];

		if (cm_note_vkey_parse(vkey_arg, CM_NOTE_ED25519, name, sizeof(name), pk) != 0)
			return CM_INVALID;
		snprintf(vkey, sizeof(vkey), "%s", vkey_arg);
	} else {
		cm_note_vkey(vkey, sizeof(vkey), origin, CM_NOTE_ED25519, keys->k_audit_pk);
	}
	fprintf(out, "log %s, verifier key %s\n", origin, vkey);
	if ((rc = cm_store_audit_size(db, &total)) != CM_OK)
		return rc;
	/* With the data directory's keys, the state is checked against the log. */
	if (keys != NULL) {
		v.replay = cm_state_replay_new(keys);
		v.cmp = cm_state_cmp_new(v.replay);
		cm_state_cmp_expect(v.cmp, total);
		v.twin = twin;
		collect_start(&v);
	}
	l.v = &v;
	l.vkey = vkey;
	l.origin = origin;
	l.vkeys = NULL;
	l.nvkeys = 0;
	/* A rotated key: the chain, each link checked against the log. */
	if (vkey_arg == NULL) {
		if ((rc = cm_audit_vkeys_load(db, &vks, &l.nvkeys)) != CM_OK &&
		    rc != CM_CONFLICT)
			goto out;
		l.vkeys = vks;
		if (rc == CM_CONFLICT || l.nvkeys > 0)
			report(&v, rc == CM_OK && cm_audit_vkeys_check(db, vks, l.nvkeys, vkey),
			    "verifier keys: %zu, each named by the log and the last one this "
			    "data directory's", l.nvkeys);
	}
	rc = cm_store_audit_checkpoints(db, load_checkpoint, &l);
	free(vks);
	if (rc != CM_OK)
		goto out;
	for (i = 0; i < v.ncps; i++)
		report(&v, v.cps[i].sig_ok, "checkpoint %" PRIu64 ": signature, origin, "
		    "size and root of the signed note", v.cps[i].size);
	check_checkpoints_at(&v, 0);
	if ((rc = verify_entries(&v)) != CM_OK)
		goto out;
	for (; v.cpi < v.ncps; v.cpi++)
		report(&v, false, "checkpoint %" PRIu64 ": signed for more entries than "
		    "the log holds (%" PRIu64 "): entries were removed", v.cps[v.cpi].size,
		    v.next);
	report_entries(&v);
	report_consistency(&v, total);
	if (v.fail_lines > MAX_FAIL_LINES)
		fprintf(out, "… %u more failures not shown\n", v.fail_lines - MAX_FAIL_LINES);
	if (v.replay != NULL) {
		struct cm_verify_report st;

		memset(&st, 0, sizeof(st));
		if ((rc = collect_wait(&v)) != CM_OK ||
		    (rc = cm_state_compare(v.cmp, db, out, &st)) != CM_OK)
			goto out;
		v.passed += st.vr_passed;
		v.failed += st.vr_failed;
	}
	rc = CM_OK;
out:
	(void)collect_wait(&v);
	cm_state_cmp_free(v.cmp);
	cm_state_replay_free(v.replay);
	rep->vr_entries = v.next;
	rep->vr_checkpoints = v.ncps;
	rep->vr_passed = v.passed;
	rep->vr_failed = v.failed;
	rep->vr_first_bad = -1;
	if (v.bad_seq >= 0)
		first_bad(&rep->vr_first_bad, (uint64_t)v.bad_seq);
	if (v.bad_canon >= 0)
		first_bad(&rep->vr_first_bad, (uint64_t)v.bad_canon);
	if (v.bad_leaf >= 0)
		first_bad(&rep->vr_first_bad, (uint64_t)v.bad_leaf);
	if (v.bad_node >= 0)
		first_bad(&rep->vr_first_bad, (uint64_t)v.bad_node);
	for (lvl = 0; lvl < MAX_LEVELS; lvl++)
		cm_store_audit_hash_cursor_free(v.cur[lvl]);
	free(v.cps);
	return rc;
}
