/* SPDX-License-Identifier: MIT */
/*
 * blockstore.c - the process's verified blocks: one LRU and budget, the
 * identities handles share, the entries and the fetcher threads that serve
 * every handle round robin.
 */
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

#include "blocks_i.h"

struct extent *bstore_extent_new(struct blockstore *s, size_t len)
{
	size_t maplen = sizeof(struct extent) + len;
	struct extent *x = NULL, **pp;

	pthread_mutex_lock(&s->xlock);
	for (pp = &s->xfree; *pp; pp = &(*pp)->next) {
		if ((*pp)->maplen == maplen) {
			x = *pp;
			*pp = x->next;
			s->nxfree--;
			break;
		}
	}
	pthread_mutex_unlock(&s->xlock);
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

void bstore_extent_put(struct blockstore *s, struct extent *x)
{
	bool keep;

	if (!x || atomic_fetch_sub(&x->refs, 1) != 1)
		return;
	pthread_mutex_lock(&s->xlock);
	keep = s->nxfree < XPOOL_KEEP;
	if (keep) {
		x->next = s->xfree;
		s->xfree = x;
		s->nxfree++;
	}
	pthread_mutex_unlock(&s->xlock);
	if (!keep)
		munmap(x, x->maplen);
}

/* ---- the store ---- */

struct blockstore *blockstore_new(const struct blocks_opts *o)
{
	struct blockstore *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (o)
		s->o = *o;
	else
		blocks_opts_default(&s->o);
	if (!s->o.max_fetches)
		s->o.max_fetches = 1;
	if (s->o.merge_max < BLOCKS_MIN_SIZE)
		s->o.merge_max = BLOCKS_MIN_SIZE;
	if (!s->o.timeout_s)
		s->o.timeout_s = 60;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work, NULL);
	util_cond_init_monotonic(&s->done);
	pthread_mutex_init(&s->xlock, NULL);
	return s;
}

void blockstore_free(struct blockstore *s)
{
	unsigned k;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
	for (k = 0; k < s->nthreads; k++)
		pthread_join(s->threads[k], NULL);
	free(s->threads);
	/* every handle is gone, and took its entries with it */
	while (s->xfree) {
		struct extent *x = s->xfree;

		s->xfree = x->next;
		munmap(x, x->maplen);
	}
	pthread_mutex_destroy(&s->xlock);
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void blockstore_get_stats(struct blockstore *s, struct blockstore_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->lock);
	st->blocks = s->nblocks;
	st->bytes = s->mem;
	st->budget = s->o.mem;
	st->threads = s->nthreads;
	st->handles = s->handles;
	st->queued_demand = s->ndemand_q;
	st->queued_prefetch = s->nprefetch_q;
	st->inflight = s->inflight;
	st->requests = s->requests;
	pthread_mutex_unlock(&s->lock);
	st->has_disk = s->o.disk != NULL;
	if (s->o.disk)
		disk_get_stats(s->o.disk, &st->disk);
}

/* ---- identities (caller holds s->lock) ---- */

int bstore_ident_key(uint64_t csize, uint32_t size, const unsigned char *dg,
		     uint64_t n, const unsigned char *art,
		     unsigned char key[32])
{
	static const unsigned char lazy_tag[] = "sffs lazy block identity";
	unsigned char head[12];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	for (int k = 0; k < 8; k++)
		head[k] = (unsigned char)(csize >> (8 * k));
	for (int k = 0; k < 4; k++)
		head[8 + k] = (unsigned char)(size >> (8 * k));
	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	     (dg || EVP_DigestUpdate(md, lazy_tag, sizeof(lazy_tag))) &&
	     EVP_DigestUpdate(md, head, sizeof(head)) &&
	     (dg ? EVP_DigestUpdate(md, dg, (size_t)n * BLOCKS_DIGEST)
		 : EVP_DigestUpdate(md, art, 32)) &&
	     EVP_DigestFinal_ex(md, key, NULL);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -ENOMEM;
}

struct bident *bstore_ident_get(struct blockstore *s,
				const unsigned char key[32])
{
	struct bident *id;

	HASH_FIND(hh, s->idents, key, 32, id);
	if (!id) {
		id = calloc(1, sizeof(*id));
		if (!id)
			return NULL;
		memcpy(id->key, key, 32);
		id->id = ++s->next_ident;
		HASH_ADD(hh, s->idents, key, 32, id);
	}
	id->handles++;
	return id;
}

uint64_t bstore_block_off(const struct blocks *bs, uint64_t i)
{
	return i * bs->size;
}

size_t bstore_block_len(const struct blocks *bs, uint64_t i)
{
	uint64_t end = bstore_block_off(bs, i) + bs->size;

	if (end > fetch_size(bs->f))
		end = fetch_size(bs->f);
	return (size_t)(end - bstore_block_off(bs, i));
}

int bstore_digest(const struct blocks *bs, uint64_t i, uint64_t deadline,
		  unsigned char out[BLOCKS_DIGEST])
{
	if (bs->dget)
		return bs->dget(bs->darg, i, deadline, out);
	memcpy(out, bs->digests + i * BLOCKS_DIGEST, BLOCKS_DIGEST);
	return 0;
}

int bstore_digest_check(const struct blocks *bs, uint64_t i, const void *data,
			size_t len, uint64_t deadline,
			unsigned char vd[BLOCKS_DIGEST])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = bstore_digest(bs, i, deadline, vd);

	if (rc)
		return rc;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
		return -ENOMEM;
	return mdlen == BLOCKS_DIGEST && !memcmp(md, vd, BLOCKS_DIGEST)
		   ? 0
		   : -EBADMSG;
}

/* ---- entries (caller holds s->lock) ---- */

void bstore_bent_unref(struct blockstore *s, struct bent *e)
{
	if (--e->refs)
		return;
	if (e->st == B_READY) {
		s->mem -= e->b.len;
		s->nblocks--;
		e->ident->mem -= e->b.len;
	}
	bstore_extent_put(s, e->ext);
	free(e);
}

void bstore_bent_unhash(struct blockstore *s, struct bent *e)
{
	if (!e->in_hash)
		return;
	HASH_DEL(s->hash, e);
	e->in_hash = false;
	if (e->st == B_READY)
		DL_DELETE2(s->lru, e, lprev, lnext);
	bstore_bent_unref(s, e);
}

/* Frees least recently used ready blocks nobody holds until the held
 * bytes fit: first those a reader has had, then prefetched ones still
 * unread (evicting those first would fetch them twice). */
void bstore_evict(struct blockstore *s)
{
	struct bent *e, *tmp;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		DL_FOREACH_SAFE2(s->lru, e, tmp, lnext)
		{
			if (s->mem <= s->o.mem)
				return;
			/* cppcheck-suppress uninitvar ; set by bent_queue */
			if (e->refs == 1 && (pass || e->used))
				bstore_bent_unhash(s, e);
		}
	}
}

/* A failure answers only until a load of the artifact that started after
 * it succeeded, and never longer than FAIL_HOLD_NS. */
static bool fail_expired(const struct bent *e)
{
	return e->ident->ok_run > e->fail_seq ||
	       fetch_now_ns() - e->failed_ns >= FAIL_HOLD_NS;
}

struct bent *bstore_bent_find(struct blocks *bs, uint64_t i)
{
	struct bkey k = {.ident = bs->ident->id, .idx = i};
	struct bent *e;

	/* k is fully set: the analyzer misreads the hash of its bytes */
	// NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
	HASH_FIND(hh, bs->s->hash, &k, sizeof(k), e);
	if (e && e->st == B_FAILED && fail_expired(e)) {
		bstore_bent_unhash(bs->s, e);
		e = NULL;
	}
	return e;
}

void bstore_ring_add(struct blocks *bs)
{
	if (bs->in_ring)
		return;
	DL_APPEND2(bs->s->active, bs, aprev, anext);
	bs->in_ring = true;
}

void bstore_ring_del(struct blocks *bs)
{
	if (!bs->in_ring)
		return;
	DL_DELETE2(bs->s->active, bs, aprev, anext);
	bs->in_ring = false;
}

static void enqueue(struct blocks *bs, struct bent *e)
{
	if (e->demand) {
		DL_APPEND2(bs->demand_q, e, qprev, qnext);
		bs->s->ndemand_q++;
	} else {
		DL_APPEND2(bs->prefetch_q, e, qprev, qnext);
		bs->s->nprefetch_q++;
	}
	bstore_ring_add(bs);
}

struct bent *bstore_bent_queue(struct blocks *bs, uint64_t i, bool demand,
			       uint64_t deadline)
{
	struct bent *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->deadline = deadline;
	e->b.idx = i;
	e->b.len = bstore_block_len(bs, i);
	e->key.ident = bs->ident->id;
	e->key.idx = i;
	e->ident = bs->ident;
	e->st = B_QUEUED;
	e->refs = 1;
	e->in_hash = true;
	e->demand = demand;
	e->owner = bs;
	HASH_ADD(hh, bs->s->hash, key, sizeof(e->key), e);
	enqueue(bs, e);
	return e;
}

void bstore_bent_dequeue(struct bent *e)
{
	struct blocks *bs = e->owner;

	/* e is in the queue its flag names, so that queue is not empty;
	 * clang-analyzer cannot see through utlist's macros. */
	if (e->demand) {
		// NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
		DL_DELETE2(bs->demand_q, e, qprev, qnext);
		bs->s->ndemand_q--;
	} else {
		// NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
		DL_DELETE2(bs->prefetch_q, e, qprev, qnext);
		bs->s->nprefetch_q--;
	}
}

/* A queued prefetch that a reader now waits for moves to the front line. */
void bstore_bent_promote(struct bent *e)
{
	if (e->st != B_QUEUED || e->demand)
		return;
	bstore_bent_dequeue(e);
	e->demand = true;
	enqueue(e->owner, e);
}

/* ---- fetchers ---- */

static void *fetcher_main(void *arg);

/* Starts the fetchers on first use: after any fork of the daemon. */
int bstore_start_fetchers(struct blockstore *s)
{
	unsigned k;

	if (s->started)
		return 0;
	s->threads = calloc(s->o.max_fetches, sizeof(*s->threads));
	if (!s->threads)
		return -ENOMEM;
	for (k = 0; k < s->o.max_fetches; k++) {
		if (pthread_create(&s->threads[k], NULL, fetcher_main, s))
			break;
		s->nthreads++;
	}
	if (!s->nthreads) {
		free(s->threads);
		s->threads = NULL;
		return -EAGAIN;
	}
	s->started = true;
	return 0;
}

/* Requests one artifact may have in flight: the others keep a share of
 * the fetchers. */
static unsigned per_artifact_cap(const struct blockstore *s)
{
	if (s->o.max_per_artifact)
		return s->o.max_per_artifact < s->o.max_fetches
			   ? s->o.max_per_artifact
			   : s->o.max_fetches;
	return s->o.max_fetches / 2 ? s->o.max_fetches / 2 : 1;
}

/* The next handle to serve: round robin over handles with queued blocks
 * and a free slot, on-demand blocks of any handle before prefetches. */
static struct blocks *pick(struct blockstore *s)
{
	unsigned cap = per_artifact_cap(s);
	struct blocks *bs, *tmp;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		DL_FOREACH_SAFE2(s->active, bs, tmp, anext)
		{
			/* cppcheck-suppress uninitvar ; set by the loop */
			if (!bs->demand_q && !bs->prefetch_q) {
				bstore_ring_del(bs);
				continue;
			}
			if (bs->inflight < cap &&
			    (pass ? bs->prefetch_q : bs->demand_q))
				return bs;
		}
	}
	return NULL;
}

/* Takes bs's first queued block and the queued ones right after it. */
static size_t take_run(struct blocks *bs, struct bent **run, size_t max,
		       uint64_t *latest)
{
	struct bent *e = bs->demand_q ? bs->demand_q : bs->prefetch_q;
	uint64_t seq = ++bs->ident->runs;
	size_t n = 0;

	*latest = 0;
	while (e && n < max) {
		if (e->deadline > *latest)
			*latest = e->deadline;
		bstore_bent_dequeue(e);
		e->run_seq = seq;
		e->st = B_LOADING;
		e->refs++;
		run[n++] = e;
		e = bstore_bent_find(bs, e->b.idx + 1);
		if (e && (e->st != B_QUEUED || e->owner != bs))
			e = NULL;
	}
	/* the served handle goes to the back of the line */
	bstore_ring_del(bs);
	if (bs->demand_q || bs->prefetch_q)
		bstore_ring_add(bs);
	return n;
}

/* Fetches block e alone (again), bypassing HTTP caches, into an extent
 * of its own. */
static int refetch_one(struct blocks *bs, struct bent *e, uint64_t deadline)
{
	struct extent *x = bstore_extent_new(bs->s, e->b.len);
	int rc;

	if (!x)
		return -ENOMEM;
	rc = fetch_range_until(bs->f, bstore_block_off(bs, e->b.idx), e->b.len,
			       x->data, FETCH_NOCACHE, deadline);
	if (!rc)
		rc = bstore_digest_check(bs, e->b.idx, x->data, e->b.len,
					 deadline, e->vd);
	if (rc) {
		bstore_extent_put(bs->s, x);
		return rc;
	}
	bstore_extent_put(bs->s, e->ext);
	e->ext = x;
	e->buf = x->data;
	return 0;
}

static int verify_one(struct blocks *bs, struct bent *e, uint64_t deadline)
{
	uint64_t off = bstore_block_off(bs, e->b.idx);
	int rc;

	rc = bstore_digest_check(bs, e->b.idx, e->buf, e->b.len, deadline,
				 e->vd);
	if (rc != -EBADMSG)
		return rc; /* verified, or its digest could not be had */
	pthread_mutex_lock(&bs->s->lock);
	bs->st.verify_fail++;
	pthread_mutex_unlock(&bs->s->lock);
	log_err("%s: compressed bytes %" PRIu64 "-%" PRIu64 " (block %" PRIu64
		") do not match their SHA-256; fetching them again bypassing "
		"caches",
		fetch_url_shown(bs->f), off, off + e->b.len - 1, e->b.idx);
	rc = refetch_one(bs, e, deadline);
	if (rc == -EBADMSG) {
		/* bad bytes past every cache: the server's fault, so once
		 * more from the next server of the ring, if there is one */
		fetch_report_corrupt(bs->f);
		rc = refetch_one(bs, e, deadline);
	}
	if (rc == -EBADMSG)
		log_err("%s: block %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
			") failed its SHA-256 check again: giving EBADMSG",
			fetch_url_shown(bs->f), e->b.idx, off,
			off + e->b.len - 1);
	return rc;
}

/* Block e from the disk tier into its buffer, checked against bs's
 * digest: true when it is there and good. A bad file is gone afterwards
 * (disk_get deleted it) and counted on the artifact. */
static bool load_from_disk(struct blocks *bs, struct bent *e, uint64_t deadline)
{
	struct disk *d = bs->s->o.disk;
	int rc;

	if (!d || bstore_digest(bs, e->b.idx, deadline, e->vd))
		return false;
	rc = disk_get(d, bs->ident->key, e->b.idx, e->buf, e->b.len, e->vd);
	if (rc == -EBADMSG) {
		pthread_mutex_lock(&bs->s->lock);
		bs->st.disk_bad++;
		pthread_mutex_unlock(&bs->s->lock);
	}
	e->from_disk = !rc;
	return !rc;
}

/* Fetches run[0..n) (adjacent blocks, each with its buffer) in one
 * request straight into each block's buffer, then verifies each. A failed
 * fetch keeps its errno (the fetch logged why). */
static void fetch_run(struct blocks *bs, struct bent **run, size_t n,
		      uint64_t deadline)
{
	struct fetch_iov *iov = calloc(n, sizeof(*iov));
	size_t k;
	int rc = iov ? 0 : -ENOMEM;

	for (k = 0; k < n && iov; k++) {
		iov[k].base = run[k]->buf;
		iov[k].len = run[k]->b.len;
	}
	if (!rc)
		rc = fetch_range_iov(bs->f, bstore_block_off(bs, run[0]->b.idx),
				     iov, n, 0, deadline);
	free(iov);
	for (k = 0; k < n; k++)
		run[k]->err = rc ? rc : verify_one(bs, run[k], deadline);
}

/* Loads a run of adjacent blocks into a buffer of each block's own (no
 * request-sized buffer, no copy): those the disk tier has from there, the
 * others from the network, each stretch of adjacent missing blocks in one
 * request. */
static unsigned load_run(struct blocks *bs, struct bent **run, size_t n,
			 uint64_t latest)
{
	unsigned requests = 0;
	uint64_t deadline;
	size_t k, first;

	/* No fetch outlives everyone who wants it: a block whose readers
	 * all gave up at their deadline fails at once instead of holding
	 * the next reader (the kernel's retry) for another deadline. */
	deadline = fetch_now_ns() + (uint64_t)bs->s->o.timeout_s * 1000000000u;
	if (latest && latest < deadline)
		deadline = latest;
	for (k = 0; k < n; k++) {
		struct bent *e = run[k];

		e->ext = bstore_extent_new(bs->s, e->b.len);
		if (!e->ext) {
			for (k = 0; k < n; k++)
				run[k]->err = -ENOMEM;
			return 0;
		}
		e->buf = e->ext->data;
	}
	for (k = 0; k < n;) {
		if (load_from_disk(bs, run[k], deadline)) {
			run[k++]->err = 0;
			continue;
		}
		first = k;
		while (++k < n && !load_from_disk(bs, run[k], deadline))
			;
		fetch_run(bs, run + first, k - first, deadline);
		requests++;
		if (k < n) /* the disk tier had it */
			run[k++]->err = 0;
	}
	return requests;
}

static void finish_one(struct blocks *bs, struct bent *e)
{
	struct blockstore *s = bs->s;

	e->owner = NULL;
	if (e->err) {
		/* Kept in the hash for a moment: a reader that comes right
		 * after (the kernel retries a failed readahead at once) gets
		 * the error without a second wait. */
		e->st = B_FAILED;
		e->failed_ns = fetch_now_ns();
		e->fail_seq = e->ident->runs;
		bstore_extent_put(s, e->ext);
		e->ext = NULL;
		e->buf = NULL;
		bs->st.errors++;
		return;
	}
	e->st = B_READY;
	e->b.data = e->buf;
	if (e->run_seq > e->ident->ok_run)
		e->ident->ok_run = e->run_seq;
	e->ident->mem += e->b.len;
	s->mem += e->b.len;
	s->nblocks++;
	if (e->from_disk) {
		bs->st.disk_hits++;
		bs->st.disk_bytes += e->b.len;
	} else {
		bs->st.fetched++;
		bs->st.bytes += e->b.len;
	}
	if (!e->demand)
		bs->st.prefetched++;
	/* Run entries are distinct and referenced by the fetcher: none was
	 * freed by an earlier turn. */
	if (e->in_hash) // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		DL_APPEND2(s->lru, e, lprev, lnext);
}

static void finish_run(struct blocks *bs, struct bent **run, size_t n,
		       unsigned requests)
{
	struct blockstore *s = bs->s;
	size_t k;

	pthread_mutex_lock(&s->lock);
	bs->st.requests += requests;
	s->requests += requests;
	for (k = 0; k < n; k++) {
		finish_one(bs, run[k]);
		/* The fetcher's reference: e lives on while the hash or a
		 * waiter holds it (the analyzer cannot count references). */
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		bstore_bent_unref(s, run[k]);
	}
	bs->inflight--;
	s->inflight--;
	bstore_evict(s);
	pthread_cond_broadcast(&s->done);
	/* a slot of bs is free: its queued blocks may go now */
	if (s->active)
		pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
	/* bs may be freed from here on (blocks_free waits for inflight) */
}

/* A block the network gave a fetcher, kept (a reference on its extent)
 * until it is written to the disk tier. */
struct wback {
	struct extent *x;
	uint64_t idx;
	size_t len;
};

/* Takes a reference on the extent of every block of the run that came
 * verified from the network (before finish_run lets bs go): how many. */
static size_t wback_take(struct blocks *bs, struct bent **run, size_t n,
			 struct wback *wb, unsigned char key[32])
{
	size_t k, m = 0;

	if (!bs->s->o.disk)
		return 0;
	memcpy(key, bs->ident->key, 32);
	for (k = 0; k < n; k++) {
		if (run[k]->err || run[k]->from_disk)
			continue;
		atomic_fetch_add(&run[k]->ext->refs, 1);
		wb[m].x = run[k]->ext;
		wb[m].idx = run[k]->b.idx;
		wb[m++].len = run[k]->b.len;
	}
	return m;
}

/* Writes them to the disk tier, on the fetcher: readers already have
 * them, and no FUSE worker waits for a disk write. */
static void wback_write(struct blockstore *s, struct wback *wb, size_t m,
			const unsigned char key[32])
{
	for (size_t k = 0; k < m; k++) {
		disk_put(s->o.disk, key, wb[k].idx, wb[k].x->data, wb[k].len);
		bstore_extent_put(s, wb[k].x);
	}
}

/* One turn of a fetcher, with s->lock held on entry and on return. */
static void fetcher_turn(struct blockstore *s, struct blocks *bs,
			 struct bent **run, size_t n, struct wback *wb)
{
	unsigned char key[32];
	unsigned requests;
	uint64_t latest;
	size_t m;

	n = take_run(bs, run, n, &latest);
	if (!n)
		return;
	bs->inflight++;
	s->inflight++;
	pthread_mutex_unlock(&s->lock);
	requests = load_run(bs, run, n, latest);
	m = wback_take(bs, run, n, wb, key);
	finish_run(bs, run, n, requests);
	wback_write(s, wb, m, key);
	pthread_mutex_lock(&s->lock);
}

static void *fetcher_main(void *arg)
{
	struct blockstore *s = arg;
	size_t max = (size_t)(s->o.merge_max / BLOCKS_MIN_SIZE), n;
	struct bent **run = calloc(max ? max : 1, sizeof(struct bent *));
	struct wback *wb = calloc(max ? max : 1, sizeof(struct wback));
	struct blocks *bs;

	pthread_setname_np(pthread_self(), "sffs-fetch");

	if (!run || !wb)
		max = 0; /* this fetcher stays idle; the others work */
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		bs = max ? pick(s) : NULL;
		if (!bs) {
			pthread_cond_wait(&s->work, &s->lock);
			continue;
		}
		n = (size_t)(s->o.merge_max / bs->size);
		fetcher_turn(s, bs, run, n < 1 ? 1 : n < max ? n : max, wb);
	}
	pthread_mutex_unlock(&s->lock);
	free(wb);
	free(run);
	return NULL;
}
