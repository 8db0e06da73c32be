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
 * A struct blocks owns:
 *   - a bounded LRU of verified blocks (`mem` bytes; blocks a reader holds
 *     are never freed under it);
 *   - two queues of blocks to fetch, on-demand before prefetch, served by
 *     `max_fetches` fetcher threads (started on first use, so a process
 *     may fork after blocks_new). A fetcher takes the first queued block
 *     and every queued block right after it, up to `merge_max` bytes, and
 *     fetches them in one range request;
 *   - collapsed loads: any number of readers of one block wait for one
 *     fetch, and a failed load hands its error to every waiter at once (the
 *     next reader after that starts a new load).
 * On a digest mismatch a block is fetched once more bypassing HTTP caches
 * (FETCH_NOCACHE), then fails with -EIO. Every fetch has a deadline of
 * `timeout_s`, and never outlives the furthest deadline of the readers
 * that want it; every wait has the caller's deadline and cancel flag. A
 * failed block answers with its error for one second (the kernel retries
 * a failed readahead at once), then the next reader tries again.
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

#include "sffs/fetch.h"

#define BLOCKS_DIGEST 32u
#define BLOCKS_MIN_SIZE (4u * 1024)
#define BLOCKS_MAX_SIZE (16u * 1024 * 1024)
#define BLOCKS_DEFAULT_SIZE (256u * 1024)

struct blocks;

/* A verified block, immutable while referenced. */
struct block {
	uint64_t idx;
	size_t len;
	const unsigned char *data;
};

struct blocks_opts {
	unsigned max_fetches; /* fetcher threads; default 4 */
	uint64_t merge_max;   /* bytes one request may cover; default 4 MiB */
	uint64_t mem;         /* verified blocks kept; default 16 MiB */
	unsigned timeout_s;   /* deadline of one fetch; default 60 */
};

void blocks_opts_default(struct blocks_opts *o);

/* Number of blocks of `size` bytes in an artifact of csize bytes. */
uint64_t blocks_count_for(uint64_t csize, uint32_t size);

/*
 * A block store over f (borrowed: free it after blocks_free) with blocks
 * of `size` bytes and their digests (blocks_count_for(fetch_size(f),
 * size) * 32 bytes, copied). o may be NULL for defaults. NULL on a bad
 * size or ENOMEM.
 */
struct blocks *blocks_new(struct fetch *f, uint32_t size,
			  const unsigned char *digests,
			  const struct blocks_opts *o);
/* Stops the fetchers and frees everything; NULL does nothing. No other
 * call may be running and no block may still be held. */
void blocks_free(struct blocks *bs);

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
 * -EINTR, -EIO (fetch failed or digest mismatch twice) or -ENOMEM.
 */
int blocks_get(struct blocks *bs, uint64_t i, uint64_t deadline_ns,
	       const atomic_bool *cancel, const struct block **out);
/* Block i if it is held and verified (a reference), else -ENOENT; never
 * fetches. */
int blocks_peek(struct blocks *bs, uint64_t i, const struct block **out);
void blocks_release(struct blocks *bs, const struct block *b);

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
	uint64_t hits, misses;    /* blocks_get found it held / not */
	uint64_t fetched, bytes;  /* blocks loaded and their bytes */
	uint64_t requests;        /* range requests the fetchers sent */
	uint64_t prefetched;      /* blocks loaded by a prefetch */
	uint64_t verify_fail;     /* digest mismatches */
	uint64_t errors;          /* loads that failed for good */
	uint64_t timeouts;        /* waits that ended at their deadline */
	uint64_t mem;             /* bytes of blocks held now */
};
void blocks_get_stats(struct blocks *bs, struct blocks_stats *st);

#endif
