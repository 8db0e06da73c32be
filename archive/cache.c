/* SPDX-License-Identifier: MIT */
#include "sffs/cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <uthash.h>

/* Chunks of CACHE_POOL_CAP bytes are mapped pages of their own, and a
 * few freed ones are kept for the next chunk: under the steady churn of
 * a full cache (one chunk in, one out) memory is neither faulted in again
 * nor fragmented across malloc arenas, so RSS follows what is held. */
#define CACHE_POOL_CAP (256u * 1024)
#define CACHE_POOL_KEEP 4

struct cache_pool {
	pthread_mutex_t lock;
	struct centry *free; /* guarded by lock */
	unsigned nfree;
	atomic_uint users; /* the cache and every pooled chunk alive */
};

/* A chunk with its reference count and the table's handle. */
struct centry {
	struct chunk c;
	atomic_uint refs;
	struct cache_pool *pool; /* NULL: malloc'd */
	size_t maplen;
	struct centry *next_free;
	UT_hash_handle hh;
	unsigned char bytes[];
};

struct cache {
	pthread_mutex_t lock;
	size_t max_bytes;
	struct centry *table;  /* guarded by lock; hash order = LRU order */
	struct cache_stats st; /* guarded by lock */
	struct cache_pool *pool;
};

static void pool_unuse(struct cache_pool *p)
{
	struct centry *e;

	if (atomic_fetch_sub(&p->users, 1) != 1)
		return;
	while (p->free) {
		e = p->free;
		p->free = e->next_free;
		munmap(e, e->maplen);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static struct centry *entry_of(struct chunk *ch)
{
	return (struct centry *)((char *)ch - offsetof(struct centry, c));
}

struct cache *cache_new(size_t max_bytes)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->pool = calloc(1, sizeof(*c->pool));
	if (!c->pool) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->pool->lock, NULL);
	atomic_init(&c->pool->users, 1);
	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	return c;
}

static struct centry *pool_get(struct cache_pool *p)
{
	size_t len = sizeof(struct centry) + CACHE_POOL_CAP;
	struct centry *e;

	pthread_mutex_lock(&p->lock);
	e = p->free;
	if (e) {
		p->free = e->next_free;
		p->nfree--;
	}
	pthread_mutex_unlock(&p->lock);
	if (!e) {
		e = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (e == MAP_FAILED)
			return NULL;
		e->maplen = len;
	}
	atomic_fetch_add(&p->users, 1);
	e->pool = p;
	return e;
}

struct chunk *cache_chunk_new(struct cache *c, size_t cap)
{
	struct centry *e;
	size_t maplen = 0;

	if (cap == CACHE_POOL_CAP) {
		e = pool_get(c->pool);
		if (!e)
			return NULL;
		maplen = e->maplen;
	} else {
		e = malloc(sizeof(*e) + (cap ? cap : 1));
		if (!e)
			return NULL;
	}
	memset(e, 0, sizeof(*e));
	e->pool = maplen ? c->pool : NULL;
	e->maplen = maplen;
	e->c.cap = cap;
	e->c.data = e->bytes;
	atomic_init(&e->refs, 1);
	return &e->c;
}

static void pool_put(struct cache_pool *p, struct centry *e)
{
	bool keep;

	pthread_mutex_lock(&p->lock);
	keep = p->nfree < CACHE_POOL_KEEP;
	if (keep) {
		e->next_free = p->free;
		p->free = e;
		p->nfree++;
	}
	pthread_mutex_unlock(&p->lock);
	if (!keep)
		munmap(e, e->maplen);
	pool_unuse(p);
}

void cache_trim(struct cache *c)
{
	struct centry *e, *next;

	pthread_mutex_lock(&c->pool->lock);
	e = c->pool->free;
	c->pool->free = NULL;
	c->pool->nfree = 0;
	pthread_mutex_unlock(&c->pool->lock);
	for (; e; e = next) {
		next = e->next_free;
		munmap(e, e->maplen);
	}
}

void cache_chunk_put(struct chunk *ch)
{
	struct centry *e;

	if (!ch)
		return;
	e = entry_of(ch);
	if (atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	if (e->pool)
		pool_put(e->pool, e);
	else
		free(e);
}

void cache_free(struct cache *c)
{
	struct centry *e, *tmp;

	if (!c)
		return;
	HASH_ITER(hh, c->table, e, tmp)
	{
		/* HASH_ITER keeps the next element in tmp, so deleting the
		 * current one is safe (uthash's documented idiom). */
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		HASH_DEL(c->table, e);
		cache_chunk_put(&e->c);
	}
	pthread_mutex_destroy(&c->lock);
	pool_unuse(c->pool);
	free(c);
}

struct chunk *cache_get(struct cache *c, uint64_t owner, uint64_t key)
{
	struct cache_key k = {.owner = owner, .local = key};
	struct centry *e;

	pthread_mutex_lock(&c->lock);
	/* k is fully set: the analyzer misreads the hash of its bytes */
	// NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
	HASH_FIND(hh, c->table, &k, sizeof(k), e);
	if (e) {
		/* Move to the tail: uthash keeps insertion order, so the head
		 * is always the least recently used chunk. */
		HASH_DEL(c->table, e);
		HASH_ADD(hh, c->table, c.key, sizeof(e->c.key), e);
		atomic_fetch_add(&e->refs, 1);
		c->st.hits++;
	} else {
		c->st.misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return e ? &e->c : NULL;
}

/* Removes e from the table; its reference goes. Caller holds lock. */
static void cache_evict(struct cache *c, struct centry *e)
{
	// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
	HASH_DEL(c->table, e);
	c->st.bytes -= e->c.len;
	c->st.entries--;
	c->st.evictions++;
	cache_chunk_put(&e->c);
}

/* Evicts from the LRU end until need more bytes fit. Caller holds lock. */
static void cache_make_room(struct cache *c, size_t need)
{
	struct centry *e, *tmp;

	HASH_ITER(hh, c->table, e, tmp)
	{
		if (c->st.bytes + need <= c->max_bytes)
			break;
		/* HASH_ITER sets e before the body runs (cppcheck cannot
		 * see through the macro) */
		// cppcheck-suppress uninitvar
		cache_evict(c, e);
	}
}

void cache_insert(struct cache *c, uint64_t owner, uint64_t key,
		  struct chunk *ch)
{
	struct cache_key k = {.owner = owner, .local = key};
	struct centry *e = entry_of(ch), *old;

	if (ch->len > c->max_bytes)
		return;
	pthread_mutex_lock(&c->lock);
	/* k is fully set: the analyzer misreads the hash of its bytes */
	// NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
	HASH_FIND(hh, c->table, &k, sizeof(k), old);
	if (!old) {
		cache_make_room(c, ch->len);
		ch->key = k;
		atomic_fetch_add(&e->refs, 1);
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		HASH_ADD(hh, c->table, c.key, sizeof(ch->key), e);
		c->st.bytes += ch->len;
		c->st.entries++;
		c->st.inserts++;
	}
	pthread_mutex_unlock(&c->lock);
}

void cache_drop(struct cache *c, uint64_t owner)
{
	struct centry *e, *tmp;

	pthread_mutex_lock(&c->lock);
	HASH_ITER(hh, c->table, e, tmp)
	{
		/* HASH_ITER sets e before the body runs (cppcheck cannot
		 * see through the macro) */
		// cppcheck-suppress uninitvar
		if (e->c.key.owner == owner)
			cache_evict(c, e);
	}
	pthread_mutex_unlock(&c->lock);
}

void cache_get_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}
