/* SPDX-License-Identifier: MIT */
/*
 * blocks.h - verified, aligned blocks of one artifact's compressed bytes.
 *
 * The artifact is cut into fixed blocks of `size` bytes (the last one may
 * be shorter); the index holds a SHA-256 of every block. Every byte the
 * read path decodes comes out of a block that was checked against its
 * digest first, whatever the size of the span being decoded. Aligned
 * blocks are also the unit an HTTP cache (a CDN, nginx `slice`, Squid)
 * shares between nodes and the unit a disk cache will store.
 *
 * One struct blockstore per process holds the verified blocks of every
 * artifact and fetches them:
 *   - ONE bounded LRU of verified blocks (`mem` bytes for all artifacts
 *     together; blocks a reader holds are never freed under it), keyed by
 *     the artifact's identity and the block number. A handle with a
 *     digest table (blocks_new) has a SHA-256 over the artifact's size,
 *     the block size and every block digest as identity: exactly what
 *     verification checks. A lazy handle (blocks_new_lazy: digests come
 *     a page at a time from an index) has the artifact's size, block
 *     size and SHA-256 as the index names them, and serves a shared
 *     block only if it was verified against its own digest: an index
 *     that lies about the artifact cannot make another's blocks pass;
 *   - ONE set of `max_fetches` fetcher threads (started on first use, so
 *     a process may fork after blockstore_new), whatever the number of
 *     handles. A fetcher serves the handles with queued blocks round
 *     robin, on-demand blocks of any handle before any prefetch, at most
 *     `max_per_artifact` requests per handle at once (so one large
 *     artifact never takes every fetcher). It takes the handle's first
 *     queued block and every queued block right after it, up to
 *     `merge_max` bytes, and fetches them in one range request;
 *   - collapsed loads: any number of readers of one block wait for one
 *     fetch, and a failed load hands its error to every waiter at once.
 * A struct blocks is one artifact's handle on a store: its source, block
 * size and digests, its queues and its counters.
 *
 * Budget: the store's memory is at most `mem` bytes of blocks nobody holds
 * plus the blocks readers hold right now plus one merged request per
 * fetcher, whatever the number of handles or their size; so a process's
 * RSS stays near cache_mem + mem + window_mem + a small constant.
 *
 * Errors keep what happened: a block whose digest does not match is
 * fetched once more bypassing HTTP caches (FETCH_NOCACHE), then fails with
 * -EBADMSG (integrity); a failed fetch keeps its own errno (-EIO,
 * -ETIMEDOUT, -EHOSTUNREACH, -ECONNREFUSED, -EACCES, ... as fetch.h gives
 * them); a wait ends with -ETIMEDOUT at its deadline or -EINTR when
 * cancelled. Every fetch has a deadline of `timeout_s`, and never outlives
 * the furthest deadline of the readers that want it. A failed block
 * answers with its error only until a later load of the same identity
 * succeeds, and never longer than half a second (the kernel retries a
 * failed readahead at once): no read fails on an error older than its
 * cause.
 *
 * Thread safety: every function may be called from any thread once
 * blocks_new returned, except blocks_free. No lock is held during I/O.
 * Never includes FUSE headers.
 */
#ifndef SFFS_BLOCKS_H
#define SFFS_BLOCKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sffs/disk.h"
#include "sffs/fetch.h"

#define BLOCKS_DIGEST 32u
#define BLOCKS_MIN_SIZE (4u * 1024)
#define BLOCKS_MAX_SIZE (16u * 1024 * 1024)
/* 128 KiB: a cold read that needs a few spans pays on average half a
 * block more per span than its bytes (256 KiB blocks made a cold
 * `sinfo --version` 12% heavier); sequential readers still get large
 * requests, as fetchers merge adjacent blocks up to merge_max. */
#define BLOCKS_DEFAULT_SIZE (128u * 1024)

struct blocks;
struct blockstore;

/* A verified block, immutable while referenced. */
struct block {
	uint64_t idx;
	size_t len;
	const unsigned char *data;
};

/* A store's terms (every handle of the store shares them). */
struct blocks_opts {
	unsigned max_fetches; /* fetcher threads; default 4 */
	uint64_t merge_max;   /* bytes one request may cover; default 4 MiB */
	uint64_t mem;	      /* verified blocks kept; default 16 MiB */
	unsigned timeout_s;   /* deadline of one fetch; default 60 */
	/* requests one artifact may have in flight; 0 (default) =
	 * max(1, max_fetches / 2) */
	unsigned max_per_artifact;
	/* The disk tier (disk.h; borrowed, outlives the store), or NULL.
	 * A fetcher looks there before the network, and writes every block
	 * the network gave it (verified) there after its readers have it. */
	struct disk *disk;
	/* bytes of a streaming pass's blocks kept as verified blocks
	 * (blocks_seed_room); default BLOCKS_SEED_MAX, 0 = none */
	uint64_t seed_max;
};

void blocks_opts_default(struct blocks_opts *o);

/* Number of blocks of `size` bytes in an artifact of csize bytes. */
uint64_t blocks_count_for(uint64_t csize, uint32_t size);

/* A store for the whole process (o may be NULL for defaults). No thread
 * starts before the first block is wanted. NULL on ENOMEM. */
struct blockstore *blockstore_new(const struct blocks_opts *o);
/* Stops the fetchers and frees the store; every handle must be freed
 * first. NULL does nothing. */
void blockstore_free(struct blockstore *s);

struct blockstore_stats {
	uint64_t blocks, bytes; /* verified blocks in memory now */
	uint64_t budget;	/* `mem` */
	uint64_t threads;	/* fetcher threads running */
	uint64_t handles;	/* artifacts on the store */
	uint64_t queued_demand; /* blocks queued for a reader */
	uint64_t queued_prefetch;
	uint64_t inflight; /* range requests being sent or received */
	uint64_t requests; /* range requests sent so far */
	bool has_disk;	   /* a disk tier: then disk is its counters */
	struct disk_stats disk;
};
void blockstore_get_stats(struct blockstore *s, struct blockstore_stats *st);

/*
 * A handle on store (borrowed: free it after every handle) for the
 * artifact behind f (borrowed: free it after blocks_free) with blocks of
 * `size` bytes and their digests (blocks_count_for(fetch_size(f), size) *
 * 32 bytes, copied). store NULL: a private store made from o (NULL for
 * defaults) and freed with the handle, as single mode and tests use; with
 * a store, o is ignored. NULL on a bad size or ENOMEM.
 */
struct blocks *blocks_new(struct blockstore *store, struct fetch *f,
			  uint32_t size, const unsigned char *digests,
			  const struct blocks_opts *o);
/* Where a lazy handle gets block i's digest: 0 and out, or -errno (a
 * network error, -ETIMEDOUT at deadline_ns, -EBADMSG for a source that
 * failed its own check). Called without any lock of the store, from
 * fetcher and reader threads at once. */
typedef int (*blocks_digest_fn)(void *arg, uint64_t i, uint64_t deadline_ns,
				unsigned char out[BLOCKS_DIGEST]);

/*
 * A handle like blocks_new's whose digests come one at a time from
 * get(arg, ...) (an index's pages, fetched on first need) instead of a
 * table held in memory. Its identity is (fetch_size(f), size,
 * artifact_sha256): what an index names, so every handle of one artifact
 * shares blocks whatever its index. That is safe although an index may
 * lie about the SHA-256: the fetcher checks a block against the digest of
 * the handle it loads it for and records that digest in the block, and a
 * lazy handle serves a block only if its own digest of it is the
 * recorded one (else -EBADMSG, logged). A lying index can make another
 * handle's reads of a block it loaded fail, never pass. get and arg must
 * outlive the handle. NULL on a bad size or ENOMEM.
 */
struct blocks *blocks_new_lazy(struct blockstore *store, struct fetch *f,
			       uint32_t size,
			       const unsigned char artifact_sha256[32],
			       blocks_digest_fn get, void *arg,
			       const struct blocks_opts *o);
/*
 * Frees the handle; NULL does nothing. Drops the blocks it queued (a
 * reader of another handle of the same identity queues them again) and
 * waits only for its own requests in flight. When it was the last handle
 * of its identity, that identity's verified blocks leave the store at once
 * (a released artifact gives its memory back; a re-attach fetches them
 * again, or finds them in a disk tier). No other call on this handle may
 * be running and none of its blocks may still be held.
 */
void blocks_free(struct blocks *bs);

/* The store bs is a handle on (its own when blocks_new got NULL). */
struct blockstore *blocks_store(const struct blocks *bs);
uint32_t blocks_size(const struct blocks *bs);
uint64_t blocks_count(const struct blocks *bs);
/* The blocks holding compressed bytes [off, off + len), len > 0. */
void blocks_span(const struct blocks *bs, uint64_t off, uint64_t len,
		 uint64_t *first, uint64_t *last);

/*
 * Block i, verified, with a reference the caller gives back with
 * blocks_release. Queues an on-demand fetch when it is not held (and
 * promotes a queued prefetch). Waits until it is loaded, deadline_ns
 * passes (CLOCK_MONOTONIC, fetch_now_ns; 0 = none) or *cancel becomes
 * true (cancel may be NULL; see blocks_wake). Returns 0, -ETIMEDOUT,
 * -EINTR, -EBADMSG (digest mismatch twice), the failed fetch's own errno
 * (-EIO, -ETIMEDOUT, -EHOSTUNREACH, ...), -EAGAIN (the load was dropped
 * over and over by freed handles) or -ENOMEM.
 */
int blocks_get(struct blocks *bs, uint64_t i, uint64_t deadline_ns,
	       const atomic_bool *cancel, const struct block **out);
/* Block i if it is held and verified (a reference), else -ENOENT; never
 * fetches a block (a lazy handle may fetch its digest, within the
 * store's timeout; -EBADMSG if it is not the block's). */
int blocks_peek(struct blocks *bs, uint64_t i, const struct block **out);
void blocks_release(struct blocks *bs, const struct block *b);

/* The most bytes of one streaming pass's blocks kept to seed a store. */
#define BLOCKS_SEED_MAX (64u * 1024 * 1024)
/* How many bytes of blocks a streaming pass may keep to seed a handle on
 * store (NULL: the private store o describes, NULL for defaults):
 * min(mem / 2, seed_max, BLOCKS_SEED_MAX), so that seeded blocks never
 * push out more than half of what the store holds. */
uint64_t blocks_seed_room(const struct blockstore *store,
			  const struct blocks_opts *o);
/*
 * Block i's bytes (len, the block's whole length; copied), which the
 * caller already has (archive_open's streaming pass), into the store as a
 * verified block of bs's identity, exactly as a fetcher would have loaded
 * it: checked against bs's digest of block i first, then held (unread, it
 * is evicted like an unread prefetch, within `mem`) and counted in
 * blocks_stats.seeded. With a disk tier it is written there too, in the
 * calling thread (a disk write: never call it on a FUSE worker). Returns
 * 0, -EINVAL (i or len wrong), -EBADMSG (not the block's bytes), -EEXIST
 * (the store holds, loads or queues that block already), -ENOMEM, or a
 * lazy handle's digest error. Thread safe with readers and fetchers.
 */
int blocks_seed(struct blocks *bs, uint64_t i, const void *data, size_t len);

/* Queues on-demand fetches of the missing blocks of [first, last] at
 * once, so that fetchers merge them; blocks_get then waits for each.
 * deadline_ns (0 = none) is the caller's: a fetch never outlives the
 * furthest deadline of those who want its blocks. */
void blocks_want(struct blocks *bs, uint64_t first, uint64_t last,
		 uint64_t deadline_ns);
/* Queues prefetches of the missing blocks of [first, last] (at most
 * about half of `mem` queued at a time); returns at once. */
void blocks_prefetch(struct blocks *bs, uint64_t first, uint64_t last);
/* Wakes every waiter so that it looks at its cancel flag again. */
void blocks_wake(struct blocks *bs);

struct blocks_stats {
	uint64_t hits, misses;	 /* blocks_get found it held / not */
	uint64_t hit_bytes;	 /* bytes of those hits (the memory tier) */
	uint64_t fetched, bytes; /* blocks loaded from the network, bytes */
	uint64_t disk_hits;	 /* blocks loaded from the disk tier */
	uint64_t disk_bytes;	 /* their bytes */
	uint64_t disk_bad;	 /* block files that failed their digest */
	uint64_t requests;	 /* range requests the fetchers sent */
	uint64_t prefetched;	 /* blocks loaded by a prefetch */
	uint64_t verify_fail;	 /* digest mismatches */
	uint64_t errors;	 /* loads that failed for good */
	uint64_t timeouts;	 /* waits that ended at their deadline */
	uint64_t seeded;	 /* blocks put in by blocks_seed */
	uint64_t mem;		 /* bytes of this identity's blocks held */
};
void blocks_get_stats(struct blocks *bs, struct blocks_stats *st);

#endif
