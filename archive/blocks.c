/* SPDX-License-Identifier: MIT */
/*
 * blocks.c - an artifact's handle on the block store: readers wait for
 * verified blocks, queue on-demand and prefetch loads, and a freed handle
 * leaves nothing of its own behind (blocks_i.h, blockstore.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uthash.h>
#include <utlist.h>

#include "sffs/log.h"

#include "blocks_i.h"

void blocks_opts_default(struct blocks_opts *o)
{
	o->max_fetches = 4;
	o->merge_max = 4u * 1024 * 1024;
	o->mem = 16u * 1024 * 1024;
	o->timeout_s = 60;
	o->max_per_artifact = 0;
	o->disk = NULL;
	o->seed_max = BLOCKS_SEED_MAX;
}

uint64_t blocks_count_for(uint64_t csize, uint32_t size)
{
	return size ? (csize + size - 1) / size : 0;
}

/* ---- handles ---- */

/* digests NULL: a lazy handle, which holds no table. */
static struct blocks *handle_alloc(struct fetch *f, uint32_t size,
				   const unsigned char *digests)
{
	uint64_t n = blocks_count_for(fetch_size(f), size);
	struct blocks *bs;

	if (size < BLOCKS_MIN_SIZE || size > BLOCKS_MAX_SIZE ||
	    n > SIZE_MAX / BLOCKS_DIGEST)
		return NULL;
	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return NULL;
	if (digests) {
		bs->digests = malloc(n ? n * BLOCKS_DIGEST : 1);
		if (!bs->digests) {
			free(bs);
			return NULL;
		}
		memcpy(bs->digests, digests, n * BLOCKS_DIGEST);
	}
	bs->f = f;
	bs->size = size;
	bs->n = n;
	return bs;
}

/* Puts bs on its store (made when store is NULL) under the identity of
 * key; frees bs on failure. */
static struct blocks *handle_attach(struct blocks *bs, struct blockstore *store,
				    const unsigned char *art,
				    const struct blocks_opts *o)
{
	unsigned char key[32];

	bs->own_store = !store;
	bs->s = store ? store : blockstore_new(o);
	if (!bs->s || bstore_ident_key(fetch_size(bs->f), bs->size, bs->digests,
				       bs->n, art, key))
		goto fail;
	pthread_mutex_lock(&bs->s->lock);
	bs->ident = bstore_ident_get(bs->s, key);
	if (bs->ident)
		bs->s->handles++;
	pthread_mutex_unlock(&bs->s->lock);
	if (!bs->ident)
		goto fail;
	return bs;
fail:
	if (bs->own_store)
		blockstore_free(bs->s);
	free(bs->digests);
	free(bs);
	return NULL;
}

struct blocks *blocks_new(struct blockstore *store, struct fetch *f,
			  uint32_t size, const unsigned char *digests,
			  const struct blocks_opts *o)
{
	struct blocks *bs = handle_alloc(f, size, digests);

	return bs ? handle_attach(bs, store, NULL, o) : NULL;
}

struct blocks *blocks_new_lazy(struct blockstore *store, struct fetch *f,
			       uint32_t size,
			       const unsigned char artifact_sha256[32],
			       blocks_digest_fn get, void *arg,
			       const struct blocks_opts *o)
{
	struct blocks *bs = get ? handle_alloc(f, size, NULL) : NULL;

	if (!bs)
		return NULL;
	bs->dget = get;
	bs->darg = arg;
	return handle_attach(bs, store, artifact_sha256, o);
}

struct blockstore *blocks_store(const struct blocks *bs)
{
	return bs->s;
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

/* ---- readers ---- */

static void touch(struct blockstore *s, struct bent *e)
{
	DL_DELETE2(s->lru, e, lprev, lnext);
	DL_APPEND2(s->lru, e, lprev, lnext);
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
			pthread_cond_wait(&bs->s->done, &bs->s->lock);
		} else if (pthread_cond_timedwait(&bs->s->done, &bs->s->lock,
						  &ts) == ETIMEDOUT) {
			if (e->st == B_QUEUED || e->st == B_LOADING) {
				bs->st.timeouts++;
				return -ETIMEDOUT;
			}
		}
	}
	return e->st == B_READY ? 0 : (e->err ? e->err : -EIO);
}

static int hit(struct blocks *bs, struct bent *e, const struct block **out)
{
	bs->st.hits++;
	bs->st.hit_bytes += e->b.len;
	e->refs++;
	e->used = true;
	touch(bs->s, e);
	*out = &e->b;
	return 0;
}

/* One try of blocks_get with s->lock held; -ECANCELED when the entry
 * waited for was dropped by its owner's blocks_free (try again). */
static int get_locked(struct blocks *bs, uint64_t i, uint64_t deadline_ns,
		      const atomic_bool *cancel, const struct block **out)
{
	struct bent *e = bstore_bent_find(bs, i);
	int rc;

	if (e && e->st == B_READY)
		return hit(bs, e, out);
	bs->st.misses++;
	if (e && e->st == B_FAILED)
		return e->err;
	rc = bstore_start_fetchers(bs->s);
	if (rc)
		return rc;
	if (!e) {
		e = bstore_bent_queue(bs, i, true, deadline_ns);
		if (!e)
			return -ENOMEM;
		pthread_cond_signal(&bs->s->work);
	}
	bstore_bent_promote(e);
	if (!deadline_ns || deadline_ns > e->deadline)
		e->deadline = deadline_ns ? deadline_ns : UINT64_MAX;
	e->refs++;
	rc = wait_loaded(bs, e, deadline_ns, cancel);
	if (rc) {
		bstore_bent_unref(bs->s, e);
		return rc;
	}
	e->used = true;
	*out = &e->b;
	return 0;
}

/* A lazy handle shares its identity with every index naming the same
 * artifact, honest or not: it serves a block only if the digest the
 * block was verified against is its own digest of that block. (A table
 * handle's identity covers its every digest: nothing to check.) */
static int check_served(struct blocks *bs, const struct block *b,
			uint64_t deadline)
{
	const struct bent *e =
	    (const struct bent *)((const char *)b - offsetof(struct bent, b));
	unsigned char md[BLOCKS_DIGEST];
	int rc;

	if (!bs->dget)
		return 0;
	rc = bs->dget(bs->darg, b->idx, deadline, md);
	if (!rc && memcmp(md, e->vd, BLOCKS_DIGEST)) {
		log_err("%s: block %" PRIu64 " held for this artifact was "
			"verified against another index's digest: refusing it",
			fetch_url(bs->f), b->idx);
		rc = -EBADMSG;
	}
	if (rc)
		blocks_release(bs, b);
	return rc;
}

int blocks_get(struct blocks *bs, uint64_t i, uint64_t deadline_ns,
	       const atomic_bool *cancel, const struct block **out)
{
	unsigned tries = 0;
	int rc;

	if (i >= bs->n)
		return -EINVAL;
	pthread_mutex_lock(&bs->s->lock);
	do {
		rc = get_locked(bs, i, deadline_ns, cancel, out);
	} while (rc == -ECANCELED && ++tries < 100);
	pthread_mutex_unlock(&bs->s->lock);
	if (!rc)
		rc = check_served(bs, *out, deadline_ns);
	return rc == -ECANCELED ? -EAGAIN : rc;
}

int blocks_peek(struct blocks *bs, uint64_t i, const struct block **out)
{
	struct bent *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&bs->s->lock);
	e = i < bs->n ? bstore_bent_find(bs, i) : NULL;
	if (e && e->st == B_READY)
		rc = hit(bs, e, out);
	pthread_mutex_unlock(&bs->s->lock);
	if (!rc)
		rc =
		    check_served(bs, *out,
				 fetch_now_ns() + (uint64_t)bs->s->o.timeout_s *
						      1000000000u);
	return rc;
}

void blocks_release(struct blocks *bs, const struct block *b)
{
	struct bent *e;

	if (!b)
		return;
	e = (struct bent *)((char *)b - offsetof(struct bent, b));
	pthread_mutex_lock(&bs->s->lock);
	bstore_bent_unref(bs->s, e);
	bstore_evict(bs->s);
	pthread_mutex_unlock(&bs->s->lock);
}

static void queue_range(struct blocks *bs, uint64_t first, uint64_t last,
			bool demand, uint64_t deadline)
{
	struct blockstore *s = bs->s;
	uint64_t i, limit = s->o.mem / 2 / bs->size + 1;
	bool queued = false;

	if (first >= bs->n)
		return;
	if (last >= bs->n)
		last = bs->n - 1;
	pthread_mutex_lock(&s->lock);
	if (bstore_start_fetchers(s))
		goto out;
	for (i = first; i <= last; i++) {
		struct bent *e = bstore_bent_find(bs, i);

		if (e) {
			if (demand)
				bstore_bent_promote(e);
			if (e->st == B_QUEUED && deadline > e->deadline)
				e->deadline = deadline;
			continue;
		}
		if (!demand && s->nprefetch_q >= limit)
			break;
		if (!bstore_bent_queue(bs, i, demand, deadline))
			break;
		queued = true;
	}
	if (queued)
		pthread_cond_broadcast(&s->work);
out:
	pthread_mutex_unlock(&s->lock);
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
			(uint64_t)bs->s->o.timeout_s * 1000000000u);
}

void blocks_wake(struct blocks *bs)
{
	pthread_mutex_lock(&bs->s->lock);
	pthread_cond_broadcast(&bs->s->done);
	pthread_mutex_unlock(&bs->s->lock);
}

void blocks_get_stats(struct blocks *bs, struct blocks_stats *st)
{
	pthread_mutex_lock(&bs->s->lock);
	*st = bs->st;
	st->mem = bs->ident->mem;
	pthread_mutex_unlock(&bs->s->lock);
}

/* ---- freeing a handle ---- */

/* Drops bs's queued entries: a reader of another handle waiting for one
 * sees -ECANCELED and queues it again under its own handle. */
static void drop_queued(struct blocks *bs)
{
	struct bent *q[2] = {bs->demand_q, bs->prefetch_q};

	for (int k = 0; k < 2; k++) {
		struct bent *e = q[k], *next;

		for (; e; e = next) {
			next = e->qnext;
			bstore_bent_dequeue(e);
			e->owner = NULL;
			e->st = B_FAILED;
			e->err = -ECANCELED;
			bstore_bent_unhash(bs->s, e);
		}
	}
	bstore_ring_del(bs);
}

/* The last handle of an identity went: its blocks go too, so that a
 * released artifact gives its memory back at once (a later attach of the
 * same bytes fetches them again, or finds them in a disk tier). */
static void drop_ident(struct blockstore *s, struct bident *id)
{
	struct bent *e, *tmp;

	HASH_ITER(hh, s->hash, e, tmp)
	{
		/* cppcheck-suppress uninitvar ; set by HASH_ITER */
		if (e->ident == id)
			bstore_bent_unhash(s, e);
	}
	HASH_DEL(s->idents, id);
	free(id);
}

void blocks_free(struct blocks *bs)
{
	struct blockstore *s;

	if (!bs)
		return;
	s = bs->s;
	pthread_mutex_lock(&s->lock);
	drop_queued(bs);
	while (bs->inflight)
		pthread_cond_wait(&s->done, &s->lock);
	if (--bs->ident->handles == 0)
		drop_ident(s, bs->ident);
	s->handles--;
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->lock);
	if (bs->own_store)
		blockstore_free(s);
	free(bs->digests);
	free(bs);
}
