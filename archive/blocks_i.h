/* SPDX-License-Identifier: MIT */
/*
 * blocks_i.h - internals shared by blockstore.c (the process's store:
 * memory, identities, entries, fetchers) and blocks.c (an artifact's
 * handle: readers, queueing, freeing).
 *
 * Every entry lives in the store's hash, keyed by (identity, block), while
 * it is queued, loading, ready or (briefly) failed. The hash holds one
 * reference to each entry in it; each reader and the fetcher loading it
 * hold one more. A queued or loading entry has an owner: the handle whose
 * queue it waits in and whose source loads it.
 */
#ifndef SFFS_BLOCKS_I_H
#define SFFS_BLOCKS_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <uthash.h>

#include "sffs/blocks.h"

enum bstate { B_QUEUED, B_LOADING, B_READY, B_FAILED };

/* A block's buffer: mapped pages of its own, recycled through a small
 * pool, so that the blocks' memory is given back exactly (malloc would
 * scatter 256 KiB buffers of many threads over its arenas) and the
 * steady churn of a full LRU faults no pages in again. */
struct extent {
	atomic_uint refs;
	size_t maplen;
	struct extent *next; /* in the pool */
	unsigned char data[];
};

#define XPOOL_KEEP 4

/* How long a failed load answers for its block at most (the kernel
 * retries a failed readahead at once); any later success of a load of the
 * same artifact ends it sooner. */
#define FAIL_HOLD_NS (500000000ull)

/* The bytes a set of handles share: same size, block size and block
 * digests (so a block verified for one is verified for all). */
struct bident {
	unsigned char key[32]; /* SHA-256(size, block size, digests) */
	uint64_t id;	       /* never reused in the store */
	unsigned handles;
	uint64_t mem;	 /* bytes of its ready blocks */
	uint64_t runs;	 /* runs of its blocks taken by fetchers */
	uint64_t ok_run; /* the latest-taken run that loaded a block */
	UT_hash_handle hh;
};

struct bkey {
	uint64_t ident, idx;
};

struct bent {
	struct block b; /* public part; b.data == buf */
	struct bkey key;
	struct bident *ident;
	/* the digest the bytes matched, set by the fetcher before B_READY:
	 * a lazy handle serves the block only if its own digest is this */
	unsigned char vd[BLOCKS_DIGEST];
	unsigned char *buf; /* b.len bytes once loaded, inside ext */
	struct extent *ext;
	enum bstate st; /* guarded by the store's lock, as is all below */
	int err;
	uint64_t failed_ns; /* B_FAILED: when */
	uint64_t run_seq;   /* B_LOADING on: its run's number (ident->runs) */
	uint64_t fail_seq;  /* B_FAILED: ident->runs then */
	uint64_t deadline;  /* the furthest deadline of those who want it */
	unsigned refs;
	bool in_hash, demand;
	bool used;	      /* a reader has had it (since it was loaded) */
	bool from_disk;	      /* loaded from the disk tier (by its fetcher) */
	struct blocks *owner; /* queued or loading: whose queue / source */
	struct bent *qprev, *qnext; /* the owner's queue it waits in */
	struct bent *lprev, *lnext; /* LRU, while ready */
	UT_hash_handle hh;
};

struct blockstore {
	struct blocks_opts o;
	pthread_mutex_t lock;
	pthread_cond_t work; /* a block was queued, a slot freed, or stop */
	pthread_cond_t done; /* a load ended, or a wake */
	struct bent *hash;   /* guarded by lock, as is all below */
	struct bent *lru;
	struct bident *idents;
	struct blocks *active; /* handles with queued blocks, round robin */
	uint64_t next_ident;
	uint64_t nprefetch_q, ndemand_q, inflight, mem, nblocks, handles;
	uint64_t requests;
	bool started, stop;
	pthread_t *threads;
	unsigned nthreads;
	pthread_mutex_t xlock;
	struct extent *xfree; /* guarded by xlock */
	unsigned nxfree;
};

struct blocks {
	struct blockstore *s;
	bool own_store;
	struct fetch *f;
	uint32_t size;
	uint64_t n;
	unsigned char *digests; /* NULL when lazy: then dget/darg */
	blocks_digest_fn dget;
	void *darg;
	struct bident *ident;
	/* guarded by s->lock: */
	struct bent *demand_q, *prefetch_q;
	unsigned inflight; /* runs being loaded from f */
	bool in_ring;
	struct blocks *aprev, *anext; /* in s->active */
	struct blocks_stats st;
};

/* ---- blockstore.c: shared by blocks.c; entries and identities want the
 * store's lock held ---- */

struct extent *bstore_extent_new(struct blockstore *s, size_t len);
void bstore_extent_put(struct blockstore *s, struct extent *x);
/* The identity of (size, block size, digests): SHA-256 over all three.
 * dg NULL: of (size, block size, the artifact's SHA-256 in art), for
 * lazy handles (a domain of its own: no table ever gives that key). */
int bstore_ident_key(uint64_t csize, uint32_t size, const unsigned char *dg,
		     uint64_t n, const unsigned char *art,
		     unsigned char key[32]);
/* The identity of key, made or with one more handle. NULL on ENOMEM. */
struct bident *bstore_ident_get(struct blockstore *s,
				const unsigned char key[32]);
uint64_t bstore_block_off(const struct blocks *bs, uint64_t i);
size_t bstore_block_len(const struct blocks *bs, uint64_t i);
/* Block i's digest for bs: from its table, or its lazy source (which may
 * fetch, until deadline). 0 or -errno. */
int bstore_digest(const struct blocks *bs, uint64_t i, uint64_t deadline,
		  unsigned char out[BLOCKS_DIGEST]);
/* 0 when data matches bs's digest of block i (copied into vd), -EBADMSG
 * when not, or the lazy source's -errno. */
int bstore_digest_check(const struct blocks *bs, uint64_t i, const void *data,
			size_t len, uint64_t deadline,
			unsigned char vd[BLOCKS_DIGEST]);
void bstore_bent_unref(struct blockstore *s, struct bent *e);
void bstore_bent_unhash(struct blockstore *s, struct bent *e);
/* Frees unheld ready blocks, least recently used first, to the budget. */
void bstore_evict(struct blockstore *s);
/* bs's entry for block i (a failure past its hold is dropped), or NULL. */
struct bent *bstore_bent_find(struct blocks *bs, uint64_t i);
void bstore_ring_add(struct blocks *bs);
void bstore_ring_del(struct blocks *bs);
/* Queues block i for bs (hash, queue, ring). NULL on ENOMEM. */
struct bent *bstore_bent_queue(struct blocks *bs, uint64_t i, bool demand,
			       uint64_t deadline);
void bstore_bent_dequeue(struct bent *e);
/* A queued prefetch that a reader now waits for moves to the front line. */
void bstore_bent_promote(struct bent *e);
/* Starts the fetchers on first use: after any fork of the daemon. */
int bstore_start_fetchers(struct blockstore *s);

#endif
