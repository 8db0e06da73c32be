/* SPDX-License-Identifier: MIT */
/*
 * blocks.c - verified aligned blocks: LRU, queues, fetcher threads.
 *
 * Every entry lives in the hash while it is queued, loading or ready. A
 * failed entry leaves the hash at once (so the next reader starts a new
 * load) and is freed when its last waiter lets go. The hash holds one
 * reference to each entry in it; each reader and the fetcher loading it
 * hold one more.
 */
#include "sffs/blocks.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/evp.h>
#include <uthash.h>
#include <utlist.h>

#include "sffs/log.h"
#include "sffs/util.h"

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

struct bent {
	struct block b;     /* public part; b.data == buf */
	unsigned char *buf; /* b.len bytes once loaded, inside ext */
	struct extent *ext;
	enum bstate st;     /* guarded by bs->lock, as is all below */
	int err;
	uint64_t failed_ns; /* B_FAILED: when */
	uint64_t deadline;  /* the furthest deadline of those who want it */
	unsigned refs;
	bool in_hash, demand, prefetched;
	bool used; /* a reader has had it (since it was loaded) */
	struct bent *qprev, *qnext; /* the queue it waits in */
	struct bent *lprev, *lnext; /* LRU, while ready */
	UT_hash_handle hh;
};

struct blocks {
	struct fetch *f;
	uint32_t size;
	uint64_t n;
	unsigned char *digests;
	struct blocks_opts o;

	pthread_mutex_t lock;
	pthread_cond_t work; /* a block was queued, or stop */
	pthread_cond_t done; /* a load ended, or blocks_wake */
	struct bent *hash;   /* guarded by lock, as is all below */
	struct bent *demand_q, *prefetch_q, *lru;
	uint64_t nprefetch_q;
	bool started, stop;
	pthread_t *threads;
	unsigned nthreads;
	struct blocks_stats st;
	pthread_mutex_t xlock;
	struct extent *xfree; /* guarded by xlock */
	unsigned nxfree;
};

static struct extent *extent_new(struct blocks *bs, size_t len)
{
	size_t full = sizeof(struct extent) + bs->size;
	size_t maplen = len <= bs->size ? full : sizeof(struct extent) + len;
	struct extent *x = NULL;

	if (maplen == full) {
		pthread_mutex_lock(&bs->xlock);
		x = bs->xfree;
		if (x) {
			bs->xfree = x->next;
			bs->nxfree--;
		}
		pthread_mutex_unlock(&bs->xlock);
	}
	if (!x) {
		x = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (x == MAP_FAILED)
			return NULL;
		x->maplen = maplen;
	}
	atomic_init(&x->refs, 1);
	return x;
}

static void extent_put(struct blocks *bs, struct extent *x)
{
	bool keep;

	if (!x || atomic_fetch_sub(&x->refs, 1) != 1)
		return;
	pthread_mutex_lock(&bs->xlock);
	keep = x->maplen == sizeof(struct extent) + bs->size &&
	       bs->nxfree < XPOOL_KEEP;
	if (keep) {
		x->next = bs->xfree;
		bs->xfree = x;
		bs->nxfree++;
	}
	pthread_mutex_unlock(&bs->xlock);
	if (!keep)
		munmap(x, x->maplen);
}

void blocks_opts_default(struct blocks_opts *o)
{
	o->max_fetches = 4;
	o->merge_max = 4u * 1024 * 1024;
	o->mem = 16u * 1024 * 1024;
	o->timeout_s = 60;
}

uint64_t blocks_count_for(uint64_t csize, uint32_t size)
{
	return size ? (csize + size - 1) / size : 0;
}

struct blocks *blocks_new(struct fetch *f, uint32_t size,
			  const unsigned char *digests,
			  const struct blocks_opts *o)
{
	struct blocks *bs;
	uint64_t n = blocks_count_for(fetch_size(f), size);

	if (size < BLOCKS_MIN_SIZE || size > BLOCKS_MAX_SIZE ||
	    n > SIZE_MAX / BLOCKS_DIGEST)
		return NULL;
	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return NULL;
	bs->digests = malloc(n ? n * BLOCKS_DIGEST : 1);
	if (!bs->digests) {
		free(bs);
		return NULL;
	}
	memcpy(bs->digests, digests, n * BLOCKS_DIGEST);
	bs->f = f;
	bs->size = size;
	bs->n = n;
	if (o)
		bs->o = *o;
	else
		blocks_opts_default(&bs->o);
	if (!bs->o.max_fetches)
		bs->o.max_fetches = 1;
	if (bs->o.merge_max < size)
		bs->o.merge_max = size;
	pthread_mutex_init(&bs->lock, NULL);
	pthread_cond_init(&bs->work, NULL);
	util_cond_init_monotonic(&bs->done);
	pthread_mutex_init(&bs->xlock, NULL);
	return bs;
}

static void bent_free(struct blocks *bs, struct bent *e)
{
	extent_put(bs, e->ext);
	free(e);
}

void blocks_free(struct blocks *bs)
{
	struct bent *e, *tmp;
	unsigned k;

	if (!bs)
		return;
	pthread_mutex_lock(&bs->lock);
	bs->stop = true;
	pthread_cond_broadcast(&bs->work);
	pthread_mutex_unlock(&bs->lock);
	for (k = 0; k < bs->nthreads; k++)
		pthread_join(bs->threads[k], NULL);
	free(bs->threads);
	HASH_ITER(hh, bs->hash, e, tmp) {
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		HASH_DEL(bs->hash, e);
		bent_free(bs, e);
	}
	while (bs->xfree) {
		struct extent *x = bs->xfree;

		bs->xfree = x->next;
		munmap(x, x->maplen);
	}
	pthread_mutex_destroy(&bs->xlock);
	pthread_cond_destroy(&bs->done);
	pthread_cond_destroy(&bs->work);
	pthread_mutex_destroy(&bs->lock);
	free(bs->digests);
	free(bs);
}

uint32_t blocks_size(const struct blocks *bs)
{
	return bs->size;
}

uint64_t blocks_count(const struct blocks *bs)
{
	return bs->n;
}

void blocks_span(const struct blocks *bs, uint64_t off, uint64_t len,
		 uint64_t *first, uint64_t *last)
{
	*first = off / bs->size;
	*last = (off + (len ? len : 1) - 1) / bs->size;
}

static uint64_t block_off(const struct blocks *bs, uint64_t i)
{
	return i * bs->size;
}

static size_t block_len(const struct blocks *bs, uint64_t i)
{
	uint64_t end = block_off(bs, i) + bs->size;

	if (end > fetch_size(bs->f))
		end = fetch_size(bs->f);
	return (size_t)(end - block_off(bs, i));
}

static bool digest_ok(const struct blocks *bs, uint64_t i, const void *data,
		      size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
		return false;
	return mdlen == BLOCKS_DIGEST &&
	       !memcmp(md, bs->digests + i * BLOCKS_DIGEST, BLOCKS_DIGEST);
}

/* ---- entries (caller holds bs->lock) ---- */

static void bent_unref(struct blocks *bs, struct bent *e)
{
	if (--e->refs)
		return;
	if (e->st == B_READY)
		bs->st.mem -= e->b.len;
	bent_free(bs, e);
}

static void bent_unhash(struct blocks *bs, struct bent *e)
{
	if (!e->in_hash)
		return;
	HASH_DEL(bs->hash, e);
	e->in_hash = false;
	if (e->st == B_READY)
		DL_DELETE2(bs->lru, e, lprev, lnext);
	bent_unref(bs, e);
}

/* Frees least recently used ready blocks nobody holds until the held
 * bytes fit: first those a reader has had, then prefetched ones still
 * unread (evicting those first would fetch them twice). */
static void evict(struct blocks *bs)
{
	struct bent *e, *tmp;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		DL_FOREACH_SAFE2(bs->lru, e, tmp, lnext) {
			if (bs->st.mem <= bs->o.mem)
				return;
			/* cppcheck-suppress uninitvar ; set by bent_queue */
			if (e->refs == 1 && (pass || e->used))
				bent_unhash(bs, e);
		}
	}
}

/* How long a failed load answers for its block before a new try. */
#define FAIL_HOLD_NS (1000000000ull)

static struct bent *bent_find(struct blocks *bs, uint64_t i)
{
	struct bent *e;

	HASH_FIND(hh, bs->hash, &i, sizeof(i), e);
	if (e && e->st == B_FAILED &&
	    fetch_now_ns() - e->failed_ns >= FAIL_HOLD_NS) {
		bent_unhash(bs, e);
		e = NULL;
	}
	return e;
}

static struct bent *bent_queue(struct blocks *bs, uint64_t i, bool demand,
			       uint64_t deadline)
{
	struct bent *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->deadline = deadline;
	e->b.idx = i;
	e->b.len = block_len(bs, i);
	e->st = B_QUEUED;
	e->refs = 1;
	e->in_hash = true;
	e->demand = demand;
	HASH_ADD(hh, bs->hash, b.idx, sizeof(e->b.idx), e);
	if (demand) {
		DL_APPEND2(bs->demand_q, e, qprev, qnext);
	} else {
		DL_APPEND2(bs->prefetch_q, e, qprev, qnext);
		bs->nprefetch_q++;
	}
	return e;
}

static void bent_dequeue(struct blocks *bs, struct bent *e)
{
	/* e is in the queue its flag names, so that queue is not empty;
	 * clang-analyzer cannot see through utlist's macros. */
	if (e->demand) {
		// NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
		DL_DELETE2(bs->demand_q, e, qprev, qnext);
	} else {
		// NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
		DL_DELETE2(bs->prefetch_q, e, qprev, qnext);
		bs->nprefetch_q--;
	}
}

/* A queued prefetch that a reader now waits for moves to the front line. */
static void bent_promote(struct blocks *bs, struct bent *e)
{
	if (e->st != B_QUEUED || e->demand)
		return;
	bent_dequeue(bs, e);
	e->demand = true;
	DL_APPEND2(bs->demand_q, e, qprev, qnext);
}

static void *fetcher_main(void *arg);

/* Starts the fetchers on first use: after any fork of the daemon. */
static int start_fetchers(struct blocks *bs)
{
	unsigned k;

	if (bs->started)
		return 0;
	bs->threads = calloc(bs->o.max_fetches, sizeof(*bs->threads));
	if (!bs->threads)
		return -ENOMEM;
	for (k = 0; k < bs->o.max_fetches; k++) {
		if (pthread_create(&bs->threads[k], NULL, fetcher_main, bs))
			break;
		bs->nthreads++;
	}
	if (!bs->nthreads) {
		free(bs->threads);
		bs->threads = NULL;
		return -EAGAIN;
	}
	bs->started = true;
	return 0;
}

/* ---- fetchers ---- */

/* Takes the first queued block and the queued ones right after it. */
static size_t take_run(struct blocks *bs, struct bent **run, size_t max,
		       uint64_t *latest)
{
	struct bent *e = bs->demand_q ? bs->demand_q : bs->prefetch_q;
	size_t n = 0;

	*latest = 0;
	while (e && n < max) {
		if (e->deadline > *latest)
			*latest = e->deadline;
		bent_dequeue(bs, e);
		e->st = B_LOADING;
		e->refs++;
		run[n++] = e;
		e = bent_find(bs, e->b.idx + 1);
		if (e && e->st != B_QUEUED)
			e = NULL;
	}
	return n;
}

/* Fetches block e alone (again), bypassing HTTP caches, into an extent
 * of its own. */
static int refetch_one(struct blocks *bs, struct bent *e, uint64_t deadline)
{
	struct extent *x = extent_new(bs, e->b.len);
	int rc;

	if (!x)
		return -ENOMEM;
	rc = fetch_range_until(bs->f, block_off(bs, e->b.idx), e->b.len,
			       x->data, FETCH_NOCACHE, deadline);
	if (!rc && !digest_ok(bs, e->b.idx, x->data, e->b.len))
		rc = -EIO;
	if (rc) {
		extent_put(bs, x);
		return rc;
	}
	extent_put(bs, e->ext);
	e->ext = x;
	e->buf = x->data;
	return 0;
}

static int verify_one(struct blocks *bs, struct bent *e, uint64_t deadline)
{
	uint64_t off = block_off(bs, e->b.idx);

	if (digest_ok(bs, e->b.idx, e->buf, e->b.len))
		return 0;
	pthread_mutex_lock(&bs->lock);
	bs->st.verify_fail++;
	pthread_mutex_unlock(&bs->lock);
	log_err("%s: compressed bytes %" PRIu64 "-%" PRIu64 " (block %" PRIu64
		") do not match their SHA-256; fetching them again bypassing "
		"caches",
		fetch_url(bs->f), off, off + e->b.len - 1, e->b.idx);
	if (!refetch_one(bs, e, deadline))
		return 0;
	log_err("%s: block %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
		") failed its SHA-256 check again: giving EIO",
		fetch_url(bs->f), e->b.idx, off, off + e->b.len - 1);
	return -EIO;
}

/* Fetches a run of adjacent blocks in one request, straight into a buffer
 * of each block's own (no request-sized buffer, no copy), then verifies
 * each. */
static void load_run(struct blocks *bs, struct bent **run, size_t n,
		     uint64_t latest)
{
	uint64_t off = block_off(bs, run[0]->b.idx), deadline;
	struct fetch_iov *iov = calloc(n, sizeof(*iov));
	size_t k;
	int rc = iov ? 0 : -ENOMEM;

	/* No fetch outlives everyone who wants it: a block whose readers
	 * all gave up at their deadline fails at once instead of holding
	 * the next reader (the kernel's retry) for another deadline. */
	deadline = fetch_now_ns() + (uint64_t)bs->o.timeout_s * 1000000000u;
	if (latest && latest < deadline)
		deadline = latest;
	for (k = 0; k < n && !rc; k++) {
		struct bent *e = run[k];

		e->ext = extent_new(bs, e->b.len);
		if (!e->ext) {
			rc = -ENOMEM;
			break;
		}
		e->buf = e->ext->data;
		iov[k].base = e->buf;
		iov[k].len = e->b.len;
	}
	if (!rc)
		rc = fetch_range_iov(bs->f, off, iov, n, 0, deadline);
	free(iov);
	/* The fetch logged why; a waiter's own -ETIMEDOUT means only that
	 * its deadline passed, so a failed fetch is -EIO for all. */
	if (rc && rc != -ENOMEM)
		rc = -EIO;
	for (k = 0; k < n; k++)
		run[k]->err = rc ? rc : verify_one(bs, run[k], deadline);
}

static void finish_run(struct blocks *bs, struct bent **run, size_t n)
{
	size_t k;

	pthread_mutex_lock(&bs->lock);
	bs->st.requests++;
	for (k = 0; k < n; k++) {
		struct bent *e = run[k];

		if (e->err) {
			/* Kept in the hash for a moment: a reader that comes
			 * right after (the kernel retries a failed readahead
			 * at once) gets the error without a second wait. */
			e->st = B_FAILED;
			e->failed_ns = fetch_now_ns();
			extent_put(bs, e->ext);
			e->ext = NULL;
			e->buf = NULL;
			bs->st.errors++;
		} else {
			e->st = B_READY;
			e->b.data = e->buf;
			bs->st.fetched++;
			bs->st.bytes += e->b.len;
			bs->st.mem += e->b.len;
			if (!e->demand)
				bs->st.prefetched++;
			/* Run entries are distinct and referenced by the
			 * fetcher: none was freed by an earlier turn. */
			if (e->in_hash) // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
				DL_APPEND2(bs->lru, e, lprev, lnext);
		}
		/* The fetcher's reference: e lives on while the hash or a
		 * waiter holds it (the analyzer cannot count references). */
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		bent_unref(bs, e);
	}
	evict(bs);
	pthread_cond_broadcast(&bs->done);
	pthread_mutex_unlock(&bs->lock);
}

static void *fetcher_main(void *arg)
{
	struct blocks *bs = arg;
	size_t max = (size_t)(bs->o.merge_max / bs->size), n;
	uint64_t latest;
	struct bent **run = calloc(max ? max : 1, sizeof(struct bent *));

	if (!run)
		max = 0; /* this fetcher stays idle; the others work */
	pthread_mutex_lock(&bs->lock);
	while (!bs->stop) {
		n = max ? take_run(bs, run, max, &latest) : 0;
		if (!n) {
			pthread_cond_wait(&bs->work, &bs->lock);
			continue;
		}
		pthread_mutex_unlock(&bs->lock);
		load_run(bs, run, n, latest);
		finish_run(bs, run, n);
		pthread_mutex_lock(&bs->lock);
	}
	pthread_mutex_unlock(&bs->lock);
	free(run);
	return NULL;
}

/* ---- readers ---- */

static void touch(struct blocks *bs, struct bent *e)
{
	DL_DELETE2(bs->lru, e, lprev, lnext);
	DL_APPEND2(bs->lru, e, lprev, lnext);
}

static int wait_loaded(struct blocks *bs, struct bent *e, uint64_t deadline,
		       const atomic_bool *cancel)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(deadline / 1000000000u);
	ts.tv_nsec = (long)(deadline % 1000000000u);
	while (e->st == B_QUEUED || e->st == B_LOADING) {
		if (cancel && atomic_load(cancel))
			return -EINTR;
		if (!deadline) {
			pthread_cond_wait(&bs->done, &bs->lock);
		} else if (pthread_cond_timedwait(&bs->done, &bs->lock, &ts) ==
			   ETIMEDOUT) {
			if (e->st == B_QUEUED || e->st == B_LOADING) {
				bs->st.timeouts++;
				return -ETIMEDOUT;
			}
		}
	}
	return e->st == B_READY ? 0 : (e->err ? e->err : -EIO);
}

int blocks_get(struct blocks *bs, uint64_t i, uint64_t deadline_ns,
	       const atomic_bool *cancel, const struct block **out)
{
	struct bent *e;
	int rc = -EINVAL;

	if (i >= bs->n)
		return rc;
	pthread_mutex_lock(&bs->lock);
	e = bent_find(bs, i);
	if (e && e->st == B_READY) {
		bs->st.hits++;
		e->refs++;
		e->used = true;
		touch(bs, e);
		pthread_mutex_unlock(&bs->lock);
		*out = &e->b;
		return 0;
	}
	bs->st.misses++;
	if (e && e->st == B_FAILED) {
		rc = e->err;
		pthread_mutex_unlock(&bs->lock);
		return rc;
	}
	rc = start_fetchers(bs);
	if (!rc && !e) {
		e = bent_queue(bs, i, true, deadline_ns);
		if (e)
			pthread_cond_signal(&bs->work);
		else
			rc = -ENOMEM;
	}
	if (!rc) {
		bent_promote(bs, e);
		if (!deadline_ns || deadline_ns > e->deadline)
			e->deadline = deadline_ns ? deadline_ns : UINT64_MAX;
		e->refs++;
		rc = wait_loaded(bs, e, deadline_ns, cancel);
		if (rc) {
			bent_unref(bs, e);
		} else {
			e->used = true;
			*out = &e->b;
		}
	}
	pthread_mutex_unlock(&bs->lock);
	return rc;
}

int blocks_peek(struct blocks *bs, uint64_t i, const struct block **out)
{
	struct bent *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&bs->lock);
	e = i < bs->n ? bent_find(bs, i) : NULL;
	if (e && e->st == B_READY) {
		bs->st.hits++;
		e->refs++;
		e->used = true;
		touch(bs, e);
		*out = &e->b;
		rc = 0;
	}
	pthread_mutex_unlock(&bs->lock);
	return rc;
}

void blocks_release(struct blocks *bs, const struct block *b)
{
	struct bent *e;

	if (!b)
		return;
	e = (struct bent *)((char *)b - offsetof(struct bent, b));
	pthread_mutex_lock(&bs->lock);
	bent_unref(bs, e);
	evict(bs);
	pthread_mutex_unlock(&bs->lock);
}

static void queue_range(struct blocks *bs, uint64_t first, uint64_t last,
			bool demand, uint64_t deadline)
{
	uint64_t i, limit = bs->o.mem / 2 / bs->size + 1;
	bool queued = false;

	if (first >= bs->n)
		return;
	if (last >= bs->n)
		last = bs->n - 1;
	pthread_mutex_lock(&bs->lock);
	if (start_fetchers(bs))
		goto out;
	for (i = first; i <= last; i++) {
		struct bent *e = bent_find(bs, i);

		if (e) {
			if (demand)
				bent_promote(bs, e);
			if (e->st == B_QUEUED && deadline > e->deadline)
				e->deadline = deadline;
			continue;
		}
		if (!demand && bs->nprefetch_q >= limit)
			break;
		if (!bent_queue(bs, i, demand, deadline))
			break;
		queued = true;
	}
	if (queued)
		pthread_cond_broadcast(&bs->work);
out:
	pthread_mutex_unlock(&bs->lock);
}

void blocks_want(struct blocks *bs, uint64_t first, uint64_t last,
		 uint64_t deadline_ns)
{
	queue_range(bs, first, last, true,
		    deadline_ns ? deadline_ns : UINT64_MAX);
}

void blocks_prefetch(struct blocks *bs, uint64_t first, uint64_t last)
{
	queue_range(bs, first, last, false,
		    fetch_now_ns() +
			(uint64_t)bs->o.timeout_s * 1000000000u);
}

void blocks_wake(struct blocks *bs)
{
	pthread_mutex_lock(&bs->lock);
	pthread_cond_broadcast(&bs->done);
	pthread_mutex_unlock(&bs->lock);
}

void blocks_get_stats(struct blocks *bs, struct blocks_stats *st)
{
	pthread_mutex_lock(&bs->lock);
	*st = bs->st;
	pthread_mutex_unlock(&bs->lock);
}
