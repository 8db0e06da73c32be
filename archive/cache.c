/* SPDX-License-Identifier: MIT */
#include "sffs/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

struct chunk {
	uint64_t key;
	size_t len;
	UT_hash_handle hh;
	unsigned char data[];
};

struct cache {
	pthread_mutex_t lock;
	size_t max_bytes;
	struct chunk *table; /* guarded by lock; hash order = LRU order */
	struct cache_stats st; /* guarded by lock */
};

struct cache *cache_new(size_t max_bytes)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	return c;
}

void cache_free(struct cache *c)
{
	struct chunk *ch, *tmp;

	if (!c)
		return;
	HASH_ITER(hh, c->table, ch, tmp) {
		/* HASH_ITER keeps the next element in tmp, so deleting and
		 * freeing the current one is safe (uthash's documented
		 * idiom); clang-analyzer cannot see through the macros. */
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		HASH_DEL(c->table, ch);
		free(ch);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

ssize_t cache_read(struct cache *c, uint64_t key, size_t off, size_t len,
		   void *dst)
{
	struct chunk *ch;
	ssize_t n = -ENOENT;

	pthread_mutex_lock(&c->lock);
	HASH_FIND(hh, c->table, &key, sizeof(key), ch);
	if (ch) {
		/* Move to the tail: uthash keeps insertion order, so the head
		 * is always the least recently used chunk. */
		HASH_DEL(c->table, ch);
		HASH_ADD(hh, c->table, key, sizeof(ch->key), ch);
		if (off >= ch->len)
			len = 0;
		else if (len > ch->len - off)
			len = ch->len - off;
		memcpy(dst, ch->data + off, len);
		n = (ssize_t)len;
		c->st.hits++;
	} else {
		c->st.misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* Evicts from the LRU end until need more bytes fit. Caller holds lock. */
static void cache_make_room(struct cache *c, size_t need)
{
	struct chunk *ch, *tmp;

	HASH_ITER(hh, c->table, ch, tmp) {
		if (c->st.bytes + need <= c->max_bytes)
			break;
		/* HASH_ITER keeps the next element in tmp, so deleting and
		 * freeing the current one is safe (uthash's documented
		 * idiom); clang-analyzer cannot see through the macros. */
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		HASH_DEL(c->table, ch);
		c->st.bytes -= ch->len;
		c->st.entries--;
		c->st.evictions++;
		free(ch);
	}
}

int cache_insert(struct cache *c, uint64_t key, const void *data, size_t len)
{
	struct chunk *ch, *old;

	if (len > c->max_bytes)
		return 0;
	ch = malloc(sizeof(*ch) + len);
	if (!ch)
		return -ENOMEM;
	ch->key = key;
	ch->len = len;
	memcpy(ch->data, data, len);

	pthread_mutex_lock(&c->lock);
	HASH_FIND(hh, c->table, &key, sizeof(key), old);
	if (old) {
		pthread_mutex_unlock(&c->lock);
		free(ch);
		return 0;
	}
	cache_make_room(c, len);
	/* The same false positive: the table was walked by HASH_ITER. */
	// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
	HASH_ADD(hh, c->table, key, sizeof(ch->key), ch);
	c->st.bytes += len;
	c->st.entries++;
	c->st.inserts++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void cache_get_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}
