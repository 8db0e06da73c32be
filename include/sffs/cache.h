/* SPDX-License-Identifier: MIT */
/*
 * cache.h - a bounded, thread-safe LRU of immutable byte chunks.
 *
 * Holds decompressed chunks keyed by a 64-bit number (archive.c uses span
 * and chunk index). The total of stored bytes stays at or below the limit
 * given to cache_new(); the one exception is a single chunk larger than
 * the limit, which is not stored at all. One mutex guards the table; reads
 * copy out under it (chunks are at most a few hundred KiB, so the copy is
 * short and no reference counting is needed).
 * Never includes FUSE headers.
 */
#ifndef SFFS_CACHE_H
#define SFFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cache;

struct cache_stats {
	uint64_t hits, misses, inserts, evictions;
	uint64_t bytes;   /* stored now */
	uint64_t entries; /* stored now */
};

/* max_bytes 0 disables storing. NULL on allocation failure. */
struct cache *cache_new(size_t max_bytes);
void cache_free(struct cache *c);

/* Copies min(len, chunk_len - off) bytes of chunk key from offset off into
 * dst and marks it recently used. Returns the bytes copied (0 if off is at
 * or past the chunk's end) or -ENOENT if the chunk is not cached. */
ssize_t cache_read(struct cache *c, uint64_t key, size_t off, size_t len,
		   void *dst);
/* Stores a copy of data[0..len) under key (no-op if present or too big),
 * evicting least recently used chunks. 0 or -ENOMEM. */
int cache_insert(struct cache *c, uint64_t key, const void *data, size_t len);
void cache_get_stats(struct cache *c, struct cache_stats *st);

#endif
