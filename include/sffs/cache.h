/* SPDX-License-Identifier: MIT */
/*
 * cache.h - a bounded, thread-safe LRU of immutable, reference-counted
 * byte chunks.
 *
 * Holds decompressed chunks (and seek-point windows) keyed by (owner,
 * local key): the owner is an id never reused in the process (an
 * archive's archive_id), the local key the owner's own numbering, both
 * 64 bits and never truncated, so one cache is shared by any number of
 * archives over the process's life without one being served another's
 * chunk. A chunk is made with cache_chunk_new, filled, then handed to
 * cache_insert; readers get a reference with cache_get and give it back
 * with cache_chunk_put, so a read can send a chunk's bytes to the kernel
 * without copying them out under the lock. An evicted chunk is freed when
 * its last reference goes. The stored bytes stay at or below the limit
 * given to cache_new (chunks still referenced after eviction are not
 * counted); a single chunk larger than the limit is not stored.
 * One mutex guards the table; reference counts are atomics.
 * Never includes FUSE headers.
 */
#ifndef SFFS_CACHE_H
#define SFFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cache;

/* A chunk: data[0..len) is filled by its maker (len <= cap), then
 * immutable once inserted. The reference count lives in cache.c. */
struct cache_key {
	uint64_t owner; /* never reused in the process; 0 is nobody */
	uint64_t local; /* the owner's numbering */
};

struct chunk {
	struct cache_key key;
	size_t len, cap;
	unsigned char *data;
};

struct cache_stats {
	uint64_t hits, misses, inserts, evictions;
	uint64_t bytes;	  /* stored now */
	uint64_t entries; /* stored now */
};

/* max_bytes 0 disables storing. NULL on allocation failure. */
struct cache *cache_new(size_t max_bytes);
void cache_free(struct cache *c);

/* A new chunk of cap bytes with one reference (the caller's), len 0, to
 * be inserted into c (256 KiB chunks come from c's pool of mapped pages,
 * which outlives c until the last such chunk is put). NULL on ENOMEM. */
struct chunk *cache_chunk_new(struct cache *c, size_t cap);
/* Drops a reference; the last one frees the chunk. NULL does nothing. */
void cache_chunk_put(struct chunk *ch);

/* Chunk (owner, key) with a new reference, marked recently used; NULL if
 * absent. */
struct chunk *cache_get(struct cache *c, uint64_t owner, uint64_t key);
/* Stores ch under (owner, key) (the cache takes its own reference; the
 * caller keeps its one), evicting least recently used chunks. If the key
 * is already stored, or ch is larger than the limit, nothing is stored. */
void cache_insert(struct cache *c, uint64_t owner, uint64_t key,
		  struct chunk *ch);
/* Removes every stored chunk of owner (when the owner goes); referenced
 * chunks live on until put. Linear in the chunks stored. */
void cache_drop(struct cache *c, uint64_t owner);
/* Unmaps the few freed chunks kept for reuse (after an artifact is
 * released, so that an idle process gives its memory back). */
void cache_trim(struct cache *c);
void cache_get_stats(struct cache *c, struct cache_stats *st);

#endif
