/* SPDX-License-Identifier: MIT */
/*
 * test_engine.c - what every archive of a process shares: the decoded
 * chunk and window caches keyed by archive ids that are never reused.
 *
 * One archive stays open with known bytes while 70,000 others (past the
 * 65,536 of the old 16-bit tags) are opened, read through the same shared
 * caches and freed: no archive is ever served another one's chunk.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "check.h"
#include "sffs/archive.h"
#include "sffs/cache.h"
#include "sffs/log.h"

#define CYCLES 70000
#define FILE_LEN 3000

/* ---- a one-file .tar.gz made here ---- */

static void tar_header(unsigned char *h, const char *name, size_t size)
{
	unsigned sum = 0;
	size_t k;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011zo", size);
	snprintf((char *)h + 136, 12, "%011o", 1700000000);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (k = 0; k < 512; k++)
		sum += h[k];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* The bytes of the file of archive `seed`: its number all through. */
static void content(unsigned char *p, size_t n, unsigned seed)
{
	char word[32];
	int wl = snprintf(word, sizeof(word), "<%u>", seed);

	for (size_t k = 0; k < n; k++)
		p[k] = (unsigned char)word[k % (size_t)wl];
}

struct art {
	atomic_uint calls; /* range calls to the source */
	atomic_bool stall; /* calls wait while set */
	unsigned char *gz;
	size_t gzlen;
	unsigned char *data;
	size_t len; /* of data, the file's bytes */
	struct fetch *f;
	struct archive *ar;
	uint32_t node;
};

/* Incompressible bytes: a large file spans many blocks and seek points. */
static void noise(unsigned char *p, size_t n, unsigned seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t k = 0; k < n; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[k] = (unsigned char)x;
	}
}

/* a's one-file tarball, gzipped: FILE_LEN bytes of its number, or len
 * bytes of noise. */
static int make_gz(struct art *a, unsigned seed, size_t len)
{
	size_t flen = len ? len : FILE_LEN;
	size_t tlen = 512 + (flen + 511) / 512 * 512 + 1024;
	unsigned char *tar = calloc(1, tlen);
	z_stream zs = {0};
	int rc = -1;

	a->len = flen;
	a->data = malloc(a->len);
	a->gz = malloc(tlen + tlen / 100 + 1024);
	if (!tar || !a->data || !a->gz ||
	    deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY))
		goto out;
	if (len)
		noise(a->data, len, seed);
	else
		content(a->data, FILE_LEN, seed);
	tar_header(tar, "file", a->len);
	memcpy(tar + 512, a->data, a->len);
	zs.next_in = tar;
	zs.avail_in = (uInt)tlen;
	zs.next_out = a->gz;
	zs.avail_out = (uInt)(tlen + tlen / 100 + 1024);
	if (deflate(&zs, Z_FINISH) == Z_STREAM_END)
		rc = 0;
	a->gzlen = zs.total_out;
	deflateEnd(&zs);
out:
	free(tar);
	return rc;
}

static int mem_range(void *arg, uint64_t off, size_t len, void *buf,
		     unsigned flags)
{
	struct art *a = arg;

	(void)flags;
	atomic_fetch_add(&a->calls, 1);
	while (atomic_load(&a->stall))
		usleep(1000);
	if (off > a->gzlen || len > a->gzlen - off)
		return -EIO;
	memcpy(buf, a->gz + off, len);
	return 0;
}

static const struct fetch_source_ops mem_ops = {.range = mem_range};

static int art_open_on(struct art *a, unsigned seed, struct cache *cache,
		       struct cache *wcache, struct blockstore *store)
{
	struct archive_opts o;
	char err[256];

	if (!a->gz && make_gz(a, seed, 0))
		return -1;
	archive_opts_default(&o);
	o.block_size = BLOCKS_MIN_SIZE;
	o.blocks.max_fetches = 1;
	o.blocks.mem = 64 * 1024;
	o.blocks.seed_max = 0; /* these tests count fetches */
	o.readahead = 0;
	o.cache = cache;
	o.wcache = wcache;
	o.store = store;
	a->f =
	    fetch_open_source("mem://one.tar.gz", a->gzlen, "v1", &mem_ops, a);
	a->ar = a->f ? archive_open(a->f, &o, err, sizeof(err)) : NULL;
	if (!a->ar) {
		fprintf(stderr, "archive_open %u: %s\n", seed, err);
		return -1;
	}
	return tree_lookup(archive_tree(a->ar), 0, "file", &a->node) ? -1 : 0;
}

static void art_close(struct art *a)
{
	archive_free(a->ar);
	fetch_free(a->f);
	free(a->gz);
	free(a->data);
	a->ar = NULL;
	a->f = NULL;
	a->gz = NULL;
	a->data = NULL;
}

/* The whole file, within 10 s. */
static bool art_read_ok(struct art *a)
{
	unsigned char *buf = malloc(a->len);
	struct archive_req rq = {0};
	ssize_t n;
	bool ok;

	rq.deadline_ns = fetch_now_ns() + 10ull * 1000000000u;
	n = buf ? archive_read_req(a->ar, a->node, 0, a->len, buf, &rq) : -1;
	ok = n == (ssize_t)a->len && !memcmp(buf, a->data, a->len);
	free(buf);
	return ok;
}

/* ---- tests ---- */

static void test_ids_never_reused(void)
{
	struct cache *cache = cache_new(4u * 1024 * 1024);
	struct cache *wcache = cache_new(1024 * 1024);
	/* one store for all, as in a catalog: no fetcher thread per cycle */
	struct blockstore *store = blockstore_new(NULL);
	struct art *kept = calloc(1, sizeof(*kept));
	struct art *other = calloc(1, sizeof(*other));
	unsigned bad = 0, badkept = 0, failed = 0, k;
	uint64_t first_id, last_id = 0;
	struct cache_stats st;

	CHECK(cache && wcache && store && kept && other);
	if (!cache || !wcache || !store || !kept || !other)
		goto out;
	CHECK(art_open_on(kept, 0xffffffffu, cache, wcache, store) == 0);
	CHECK(art_read_ok(kept));
	first_id = archive_id(kept->ar);
	for (k = 1; k <= CYCLES && failed < 10; k++) {
		if (art_open_on(other, k, cache, wcache, store)) {
			failed++;
			art_close(other);
			continue;
		}
		last_id = archive_id(other->ar);
		if (!art_read_ok(other))
			bad++;
		/* the kept archive's chunk stays cached all along: a reused
		 * key would hand it to the other archive, or theirs to it */
		if (k % 1000 == 0 || (k > 65530 && k < 65542))
			if (!art_read_ok(kept))
				badkept++;
		art_close(other);
	}
	CHECK_EQ_U64(failed, 0);
	CHECK_EQ_U64(bad, 0);
	CHECK_EQ_U64(badkept, 0);
	CHECK(art_read_ok(kept));
	/* really past the old wrap point of 16-bit tags */
	CHECK(last_id - first_id >= CYCLES);
	/* freed archives left nothing: only the kept one's chunk */
	cache_get_stats(cache, &st);
	CHECK_EQ_U64(st.entries, 1);
	CHECK(st.hits >= CYCLES / 1000);
out:
	art_close(kept);
	free(kept);
	free(other);
	blockstore_free(store);
	cache_free(wcache);
	cache_free(cache);
}

/* The cache itself: same local key, other owner, other chunk. */
static void test_cache_owners(void)
{
	struct cache *c = cache_new(1024 * 1024);
	struct chunk *a = c ? cache_chunk_new(c, 16) : NULL;
	struct chunk *b = c ? cache_chunk_new(c, 16) : NULL;
	struct chunk *g;

	CHECK(a && b);
	if (!a || !b)
		goto out;
	a->len = 9;
	memcpy(a->data, "owner-one", 9);
	b->len = 9;
	memcpy(b->data, "owner-two", 9);
	cache_insert(c, 1, 7, a);
	cache_insert(c, UINT64_C(1) << 48 | 1, 7, b);
	g = cache_get(c, UINT64_C(1) << 48 | 1, 7);
	CHECK(g == b);
	cache_chunk_put(g);
	g = cache_get(c, 1, 7);
	CHECK(g == a);
	cache_chunk_put(g);
	cache_drop(c, 1);
	CHECK(cache_get(c, 1, 7) == NULL);
	g = cache_get(c, UINT64_C(1) << 48 | 1, 7);
	CHECK(g == b);
	cache_chunk_put(g);
out:
	cache_chunk_put(a);
	cache_chunk_put(b);
	cache_free(c);
}

static unsigned threads_now(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	unsigned n = 0;

	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "Threads: %u", &n) == 1)
			break;
	if (fp)
		fclose(fp);
	return n;
}

#define NARTS 20

/* Twenty artifacts on one store: one set of fetchers for all, every byte
 * right, one memory budget. */
static void test_store_shared(void)
{
	struct blocks_opts bo;
	struct blockstore *store;
	struct blockstore_stats st;
	struct archive_stats as;
	struct art *a = calloc(NARTS, sizeof(*a));
	unsigned before, bad = 0, k;

	blocks_opts_default(&bo);
	bo.max_fetches = 3;
	bo.mem = 16 * BLOCKS_MIN_SIZE;
	bo.seed_max = 0;
	store = blockstore_new(&bo);
	CHECK(store && a);
	if (!store || !a)
		goto out;
	/* one artifact attached and read: the store's fetchers run */
	CHECK(art_open_on(&a[0], 100, NULL, NULL, store) == 0);
	CHECK(art_read_ok(&a[0]));
	before = threads_now();
	for (k = 1; k < NARTS; k++) {
		CHECK(art_open_on(&a[k], 100 + k, NULL, NULL, store) == 0);
		if (!art_read_ok(&a[k]))
			bad++;
	}
	CHECK_EQ_U64(bad, 0);
	blockstore_get_stats(store, &st);
	CHECK_EQ_U64(st.threads, 3);
	CHECK_EQ_U64(st.handles, NARTS);
	CHECK(st.bytes <= bo.mem);
	/* nineteen more artifacts, not one more thread */
	CHECK(before > 0 && threads_now() <= before);
	/* each archive's stats show the store it shares */
	archive_get_stats(a[5].ar, &as);
	CHECK_EQ_U64(as.store.handles, NARTS);
	CHECK_EQ_U64(as.store.threads, 3);
	CHECK(as.blocks.fetched > 0);
	for (k = 0; k < NARTS; k++)
		art_close(&a[k]);
	blockstore_get_stats(store, &st);
	CHECK_EQ_U64(st.handles, 0);
	CHECK_EQ_U64(st.bytes, 0);
out:
	blockstore_free(store);
	free(a);
}

/* Two handles of one identity share its verified blocks; the last one
 * to go takes them out of memory. */
static void test_store_identity(void)
{
	struct blockstore *store = blockstore_new(NULL);
	struct art *a = calloc(2, sizeof(*a));
	struct blockstore_stats st;
	unsigned calls;

	CHECK(store && a);
	if (!store || !a)
		goto out;
	CHECK(art_open_on(&a[0], 7, NULL, NULL, store) == 0);
	CHECK(art_open_on(&a[1], 7, NULL, NULL, store) == 0);
	CHECK(art_read_ok(&a[0]));
	calls = atomic_load(&a[1].calls);
	CHECK(art_read_ok(&a[1]));
	CHECK_EQ_U64(atomic_load(&a[1].calls), calls);
	art_close(&a[0]);
	blockstore_get_stats(store, &st);
	CHECK(st.bytes > 0);
	CHECK(art_read_ok(&a[1]));
	art_close(&a[1]);
	blockstore_get_stats(store, &st);
	CHECK_EQ_U64(st.bytes, 0);
	CHECK_EQ_U64(st.blocks, 0);
out:
	blockstore_free(store);
	free(a);
}

/* An artifact whose origin stalls holds at most its share of the
 * fetchers: another artifact on the same store still reads. */
struct stalled {
	struct art *a;
	uint64_t off;
};

static void *stalled_read(void *arg)
{
	struct stalled *sr = arg;
	unsigned char buf[4096];
	struct archive_req rq = {0};

	rq.deadline_ns = fetch_now_ns() + 30ull * 1000000000u;
	(void)archive_read_req(sr->a->ar, sr->a->node, sr->off, sizeof(buf),
			       buf, &rq);
	return NULL;
}

#define BIG_LEN (6u * 1024 * 1024)

static void test_store_fair(void)
{
	struct blocks_opts bo;
	struct blockstore *store;
	struct art *a = calloc(2, sizeof(*a));
	struct stalled sr[4];
	struct blockstore_stats st;
	pthread_t th[4];
	unsigned k;

	blocks_opts_default(&bo);
	bo.max_fetches = 4;
	bo.merge_max = 16 * BLOCKS_MIN_SIZE; /* a request per reader */
	bo.seed_max = 0;
	store = blockstore_new(&bo);
	CHECK(store && a);
	if (!store || !a)
		goto out;
	CHECK(make_gz(&a[0], 1, BIG_LEN) == 0);
	CHECK(art_open_on(&a[0], 1, NULL, NULL, store) == 0);
	CHECK(art_open_on(&a[1], 2, NULL, NULL, store) == 0);
	atomic_store(&a[0].stall, true);
	/* four readers of four spans: four requests a fetcher each, if
	 * nothing kept a share for the others */
	for (k = 0; k < 4; k++) {
		sr[k].a = &a[0];
		sr[k].off = (uint64_t)k * (BIG_LEN / 4) + 100;
		pthread_create(&th[k], NULL, stalled_read, &sr[k]);
	}
	/* until every reader queued its blocks (or 10 s): two requests in
	 * flight, the rest waiting for a slot of this artifact */
	for (k = 0; k < 1000; k++) {
		blockstore_get_stats(store, &st);
		if (st.inflight >= 2 && st.queued_demand > 0)
			break;
		usleep(10000);
	}
	CHECK_EQ_U64(st.inflight, 2);
	CHECK(st.queued_demand > 0);
	CHECK(art_read_ok(&a[1]));
	atomic_store(&a[0].stall, false);
	for (k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	CHECK(art_read_ok(&a[0]));
	art_close(&a[0]);
	art_close(&a[1]);
out:
	blockstore_free(store);
	free(a);
}

/* ---- lazy block digests: shared by artifact identity, never poisoned ---- */

#define LZ_BLOCKS 5u
#define LZ_LEN (LZ_BLOCKS * BLOCKS_MIN_SIZE)

struct lzsrc {
	unsigned char data[LZ_LEN];
	unsigned char dg[LZ_BLOCKS][32];
	atomic_uint calls; /* range requests */
	atomic_uint dgets; /* digests asked for */
	int dget_err;	   /* answered for block 3 when set */
};

static int lz_range(void *arg, uint64_t off, size_t len, void *buf,
		    unsigned flags)
{
	struct lzsrc *z = arg;

	(void)flags;
	atomic_fetch_add(&z->calls, 1);
	if (off > LZ_LEN || len > LZ_LEN - off)
		return -EIO;
	memcpy(buf, z->data + off, len);
	return 0;
}

static const struct fetch_source_ops lz_ops = {.range = lz_range};

static int lz_dget(void *arg, uint64_t i, uint64_t deadline_ns,
		   unsigned char out[BLOCKS_DIGEST])
{
	struct lzsrc *z = arg;

	(void)deadline_ns;
	atomic_fetch_add(&z->dgets, 1);
	if (i >= LZ_BLOCKS)
		return -EINVAL;
	if (i == 3 && z->dget_err)
		return z->dget_err;
	memcpy(out, z->dg[i], BLOCKS_DIGEST);
	return 0;
}

static void lz_fill(struct lzsrc *z, unsigned seed)
{
	noise(z->data, LZ_LEN, seed);
	for (unsigned b = 0; b < LZ_BLOCKS; b++)
		EVP_Digest(z->data + b * BLOCKS_MIN_SIZE, BLOCKS_MIN_SIZE,
			   z->dg[b], NULL, EVP_sha256(), NULL);
}

static bool lz_block_is(struct blocks *bs, uint64_t i, const struct lzsrc *z)
{
	const struct block *b = NULL;
	bool ok = blocks_get(bs, i, fetch_now_ns() + 10ull * 1000000000u, NULL,
			     &b) == 0 &&
		  b->len == BLOCKS_MIN_SIZE &&
		  !memcmp(b->data, z->data + i * BLOCKS_MIN_SIZE, b->len);

	blocks_release(bs, b);
	return ok;
}

static int lz_get_rc(struct blocks *bs, uint64_t i)
{
	const struct block *b = NULL;
	int rc =
	    blocks_get(bs, i, fetch_now_ns() + 10ull * 1000000000u, NULL, &b);

	if (!rc)
		blocks_release(bs, b);
	return rc;
}

/* Two handles that name one artifact (size + SHA-256) share blocks; one
 * whose index lies (other bytes in block 2, with their own digest) loads
 * its block 2 first: the honest handle refuses it (-EBADMSG), never
 * serves it. Digests are asked for only for the blocks read. */
static void test_lazy_digests(void)
{
	static const unsigned char art[32] = "claimed artifact sha-256 ......";
	struct lzsrc *good = calloc(1, sizeof(*good));
	struct lzsrc *liar = calloc(1, sizeof(*liar));
	struct blockstore *store = blockstore_new(NULL);
	struct fetch *fg = NULL, *fl = NULL;
	struct blocks *bg = NULL, *bl = NULL;
	unsigned calls;

	CHECK(good && liar && store);
	if (!good || !liar || !store)
		goto out;
	lz_fill(good, 11);
	*liar = *good;
	atomic_store(&liar->calls, 0);
	noise(liar->data + 2 * BLOCKS_MIN_SIZE, BLOCKS_MIN_SIZE, 12);
	EVP_Digest(liar->data + 2 * BLOCKS_MIN_SIZE, BLOCKS_MIN_SIZE,
		   liar->dg[2], NULL, EVP_sha256(), NULL);
	fg = fetch_open_source("mem://good", LZ_LEN, "g", &lz_ops, good);
	fl = fetch_open_source("mem://liar", LZ_LEN, "l", &lz_ops, liar);
	bg = fg ? blocks_new_lazy(store, fg, BLOCKS_MIN_SIZE, art, lz_dget,
				  good, NULL)
		: NULL;
	bl = fl ? blocks_new_lazy(store, fl, BLOCKS_MIN_SIZE, art, lz_dget,
				  liar, NULL)
		: NULL;
	CHECK(bg && bl);
	if (!bg || !bl)
		goto out;
	CHECK(blocks_new_lazy(store, fg, BLOCKS_MIN_SIZE, art, NULL, NULL,
			      NULL) == NULL);
	/* the liar's block 2 passes for the liar, who loaded it */
	CHECK(lz_block_is(bl, 2, liar));
	/* ... and is refused to the honest handle, not served */
	CHECK_EQ_U64(lz_get_rc(bg, 2), -EBADMSG);
	/* a block both agree on is fetched once and shared */
	CHECK(lz_block_is(bg, 1, good));
	calls = atomic_load(&liar->calls);
	CHECK(lz_block_is(bl, 1, liar));
	CHECK_EQ_U64(atomic_load(&liar->calls), calls);
	/* lazy: only blocks 1 and 2 were asked for so far */
	CHECK(atomic_load(&good->dgets) <= 4);
	CHECK(lz_block_is(bg, 4, good));
	/* a digest that cannot be had is that error, not tampering */
	good->dget_err = -EIO;
	CHECK_EQ_U64(lz_get_rc(bg, 3), -EIO);
	good->dget_err = 0;
	usleep(600000); /* past the hold of a failed load */
	CHECK(lz_block_is(bg, 3, good));
out:
	blocks_free(bl);
	blocks_free(bg);
	fetch_free(fl);
	fetch_free(fg);
	blockstore_free(store);
	free(liar);
	free(good);
}

int main(void)
{
	log_set_level(LOG_LVL_ERR);
	test_lazy_digests();
	test_store_shared();
	test_store_identity();
	test_store_fair();
	test_cache_owners();
	test_ids_never_reused();
	return check_done();
}
