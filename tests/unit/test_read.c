/* SPDX-License-Identifier: MIT */
/*
 * test_read.c - the read path (verified blocks, decode, chunk cache,
 * waiters, deadlines, cancel, prefetch) at library level, with no mount:
 * an in-memory .tar.gz served through fetch_open_source by a source that
 * injects failures (errors as after a reset, wrong bytes, stalls); and
 * the streaming pass's blocks seeding the store (blocks_seed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "check.h"
#include "memtar.h"
#include "sffs/archive.h"
#include "sffs/blocks.h"
#include "sffs/index.h"
#include "sffs/log.h"

#define NFILES 6
#define BIG (6u * 1024 * 1024)

/* ---- a tarball made here ---- */

struct file {
	char name[64];
	size_t size;
	unsigned char *data;
};

static void octal(char *dst, size_t n, uint64_t v)
{
	snprintf(dst, n, "%0*llo", (int)n - 1, (unsigned long long)v);
}

static size_t tar_header(unsigned char *h, const char *name, size_t size)
{
	unsigned sum = 0;
	size_t k;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%.99s", name);
	octal((char *)h + 100, 8, 0644);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size);
	octal((char *)h + 136, 12, 1700000000);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (k = 0; k < 512; k++)
		sum += h[k];
	snprintf((char *)h + 148, 8, "%06o", sum);
	return 512;
}

/* Mixed content: text runs and pseudo-random runs, so spans have real
 * deflate blocks and windows. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
	size_t k;

	for (k = 0; k < n; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[k] = (k / 8192) % 2 ? (unsigned char)x
				      : (unsigned char)("sffs reads "[k % 11]);
	}
}

static unsigned char *make_tar(struct file *fs, size_t *len)
{
	size_t cap = 1024, k, at = 0;
	unsigned char *t;

	for (k = 0; k < NFILES; k++)
		cap += 512 + (fs[k].size + 511) / 512 * 512;
	t = calloc(1, cap);
	for (k = 0; t && k < NFILES; k++) {
		at += tar_header(t + at, fs[k].name, fs[k].size);
		memcpy(t + at, fs[k].data, fs[k].size);
		at += (fs[k].size + 511) / 512 * 512;
	}
	*len = cap;
	return t;
}

/* ---- the faulty source ---- */

struct src {
	const unsigned char *data;
	size_t len;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_uint calls;
	atomic_uint fail_next; /* fail this many calls with -EIO */
	atomic_uint corrupt;   /* flip a byte in this many calls */
	atomic_bool stall;     /* calls wait until it is cleared */
	atomic_uint stalled;   /* calls waiting now */
};

static int src_range(void *arg, uint64_t off, size_t len, void *buf,
		     unsigned flags)
{
	struct src *s = arg;
	unsigned n;

	(void)flags;
	atomic_fetch_add(&s->calls, 1);
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->stall)) {
		atomic_fetch_add(&s->stalled, 1);
		while (atomic_load(&s->stall))
			pthread_cond_wait(&s->cond, &s->lock);
		atomic_fetch_sub(&s->stalled, 1);
	}
	pthread_mutex_unlock(&s->lock);
	n = atomic_load(&s->fail_next);
	if (n && atomic_compare_exchange_strong(&s->fail_next, &n, n - 1))
		return -EIO;
	memcpy(buf, s->data + off, len);
	n = atomic_load(&s->corrupt);
	if (n && atomic_compare_exchange_strong(&s->corrupt, &n, n - 1))
		((unsigned char *)buf)[len / 2] ^= 0x40;
	return 0;
}

static void src_unstall(struct src *s)
{
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->stall, false);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static const struct fetch_source_ops src_ops = {.range = src_range};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the world of one test ---- */

struct world {
	struct file files[NFILES];
	unsigned char *gz;
	size_t gzlen;
	struct src src;
	struct fetch *f;
	struct archive *ar;
	uint32_t node[NFILES];
};

static int world_open(struct world *w, uint64_t cache_mem)
{
	struct archive_opts o;
	char err[256];

	archive_opts_default(&o);
	o.cache_mem = cache_mem;
	o.block_size = 64 * 1024;
	o.blocks.merge_max = 512 * 1024;
	o.blocks.mem = 2u * 1024 * 1024;
	o.readahead = 2u * 1024 * 1024;
	o.spacing = 256 * 1024;
	o.blocks.seed_max = 0; /* these tests count fetches (test_seeded) */
	w->f = fetch_open_source("mem://test.tar.gz", w->gzlen, "v1", &src_ops,
				 &w->src);
	w->ar = w->f ? archive_open(w->f, &o, err, sizeof(err)) : NULL;
	if (!w->ar) {
		fprintf(stderr, "archive_open: %s\n", w->f ? err : "ENOMEM");
		return -1;
	}
	for (int k = 0; k < NFILES; k++) {
		uint32_t dir;

		if (tree_lookup(archive_tree(w->ar), 0, "dir", &dir) ||
		    tree_lookup(archive_tree(w->ar), dir, w->files[k].name + 4,
				&w->node[k]))
			return -1;
	}
	return 0;
}

static void world_close(struct world *w)
{
	archive_free(w->ar);
	fetch_free(w->f);
	w->ar = NULL;
	w->f = NULL;
}

static int world_new(struct world *w)
{
	static const size_t sizes[NFILES] = {100,     70000, 300000,
					     1000000, BIG,   4096};
	unsigned char *tar;
	size_t tlen;

	memset(w, 0, sizeof(*w));
	for (int k = 0; k < NFILES; k++) {
		snprintf(w->files[k].name, sizeof(w->files[k].name),
			 "dir/file%d", k);
		w->files[k].size = sizes[k];
		w->files[k].data = malloc(sizes[k]);
		fill(w->files[k].data, sizes[k], (unsigned)k + 1);
	}
	tar = make_tar(w->files, &tlen);
	w->gz = tar ? memtar_gzip_buf(tar, tlen, &w->gzlen) : NULL;
	free(tar);
	pthread_mutex_init(&w->src.lock, NULL);
	pthread_cond_init(&w->src.cond, NULL);
	w->src.data = w->gz;
	w->src.len = w->gzlen;
	return w->gz ? world_open(w, 8u * 1024 * 1024) : -1;
}

static void world_free(struct world *w)
{
	world_close(w);
	for (int k = 0; k < NFILES; k++)
		free(w->files[k].data);
	free(w->gz);
	pthread_cond_destroy(&w->src.cond);
	pthread_mutex_destroy(&w->src.lock);
}

static bool read_ok(struct world *w, int k, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	ssize_t n = archive_read(w->ar, w->node[k], off, len, buf);
	size_t want = off >= w->files[k].size	     ? 0
		      : len < w->files[k].size - off ? len
						     : w->files[k].size - off;
	bool ok =
	    n == (ssize_t)want && !memcmp(buf, w->files[k].data + off, want);

	free(buf);
	return ok;
}

/* ---- tests ---- */

static void test_all_bytes(struct world *w)
{
	for (int k = 0; k < NFILES; k++) {
		CHECK(read_ok(w, k, 0, w->files[k].size));
		CHECK(read_ok(w, k, w->files[k].size / 3, 5000));
		CHECK(read_ok(w, k, w->files[k].size, 10));
	}
}

static void test_cache_and_nowait(struct world *w)
{
	struct archive_req rq = {.nowait = true};
	unsigned before;
	ssize_t n;

	world_close(w);
	CHECK(world_open(w, 8u * 1024 * 1024) == 0);
	/* Cold: nowait answers -EAGAIN and fetches nothing. */
	before = atomic_load(&w->src.calls);
	n = archive_read_iov(w->ar, w->node[3], 600000, 4096, &rq);
	CHECK(n == -EAGAIN);
	CHECK_EQ_U64(atomic_load(&w->src.calls), before);
	CHECK(read_ok(w, 3, 600000, 4096));
	/* Warm: the same bytes come from chunks, without a fetch. */
	before = atomic_load(&w->src.calls);
	n = archive_read_iov(w->ar, w->node[3], 600000, 4096, &rq);
	CHECK_EQ_U64(n, 4096);
	CHECK(rq.n >= 1 && !memcmp(rq.iov[0].base, w->files[3].data + 600000,
				   rq.iov[0].len));
	archive_req_release(&rq);
	CHECK_EQ_U64(atomic_load(&w->src.calls), before);
}

/* Wrong bytes once: the block is fetched again (bypassing caches) and the
 * read succeeds; wrong bytes every time: -EBADMSG (integrity, not the
 * network), nothing wrong served. */
static void test_wrong_bytes(struct world *w)
{
	struct archive_stats st;

	world_close(w);
	CHECK(world_open(w, 8u * 1024 * 1024) == 0);
	atomic_store(&w->src.corrupt, 1);
	CHECK(read_ok(w, 2, 1000, 50000));
	archive_get_stats(w->ar, &st);
	CHECK_EQ_U64(st.verify_fail, 1);
	atomic_store(&w->src.corrupt, 1000);
	CHECK(archive_read(w->ar, w->node[4], 3000000, 1000,
			   (unsigned char[1000]){0}) == -EBADMSG);
	/* The failure answers for its block while nothing succeeded since
	 * (the kernel retries a failed read at once)... */
	CHECK(archive_read(w->ar, w->node[4], 3000000, 1000,
			   (unsigned char[1000]){0}) == -EBADMSG);
	/* ...and not once the origin serves right bytes again: a later load
	 * of the artifact succeeds, and the failed bytes read at once. */
	atomic_store(&w->src.corrupt, 0);
	CHECK(read_ok(w, 3, 900000, 1000));
	CHECK(read_ok(w, 4, 3000000, 1000));
	/* Never beyond half a second, even with no success in between. */
	atomic_store(&w->src.corrupt, 1000);
	CHECK(archive_read(w->ar, w->node[5], 0, 1000,
			   (unsigned char[1000]){0}) == -EBADMSG);
	atomic_store(&w->src.corrupt, 0);
	usleep(600000);
	CHECK(read_ok(w, 5, 0, 1000));
}

/* A load that fails (as after a reset and every retry) fails its waiters
 * together; the next read starts a new load. */
struct waiter {
	struct world *w;
	ssize_t rc;
};

static void *wait_read(void *arg)
{
	struct waiter *wt = arg;
	unsigned char buf[4096];

	wt->rc =
	    archive_read(wt->w->ar, wt->w->node[4], 4500000, sizeof(buf), buf);
	return NULL;
}

static void test_failed_load_shared(struct world *w)
{
	struct waiter wt[8];
	pthread_t th[8];
	unsigned calls;
	int k;

	world_close(w);
	CHECK(world_open(w, 8u * 1024 * 1024) == 0);
	atomic_store(&w->src.stall, true);
	for (k = 0; k < 8; k++) {
		wt[k].w = w;
		pthread_create(&th[k], NULL, wait_read, &wt[k]);
	}
	while (!atomic_load(&w->src.stalled))
		usleep(1000);
	usleep(50000);
	calls = atomic_load(&w->src.calls);
	atomic_store(&w->src.fail_next, 1000);
	src_unstall(&w->src);
	for (k = 0; k < 8; k++) {
		pthread_join(th[k], NULL);
		CHECK(wt[k].rc == -EIO);
	}
	/* One failed request per stalled fetch, not one per waiter. */
	CHECK(atomic_load(&w->src.calls) - calls <= 4);
	atomic_store(&w->src.fail_next, 0);
	/* the origin is back: one success, and the failed block is read at
	 * once (no failure outlives its cause) */
	CHECK(read_ok(w, 3, 100000, 4096));
	CHECK(read_ok(w, 4, 4500000, 4096));
}

/* A stalled origin: a read ends at its deadline, a cancelled one at
 * once, cached bytes still answer; all recover when the origin does. */
struct timed {
	struct world *w;
	uint64_t deadline_ms;
	atomic_bool cancel;
	ssize_t rc;
	uint64_t took_ms;
};

static void *timed_read(void *arg)
{
	struct timed *t = arg;
	unsigned char buf[4096];
	struct archive_req rq = {.cancel = &t->cancel};
	uint64_t t0 = now_ms();

	if (t->deadline_ms)
		rq.deadline_ns = (t0 + t->deadline_ms) * 1000000u;
	t->rc = archive_read_req(t->w->ar, t->w->node[4], 5500000, sizeof(buf),
				 buf, &rq);
	t->took_ms = now_ms() - t0;
	return NULL;
}

static void test_stall(struct world *w)
{
	struct timed a = {.w = w, .deadline_ms = 300};
	struct timed b = {.w = w, .deadline_ms = 60000};
	pthread_t ta, tb;

	world_close(w);
	CHECK(world_open(w, 8u * 1024 * 1024) == 0);
	CHECK(read_ok(w, 0, 0, 100)); /* cached before the stall */
	atomic_store(&w->src.stall, true);
	pthread_create(&ta, NULL, timed_read, &a);
	pthread_create(&tb, NULL, timed_read, &b);
	pthread_join(ta, NULL);
	CHECK(a.rc == -ETIMEDOUT);
	CHECK(a.took_ms >= 250 && a.took_ms < 5000);
	CHECK(read_ok(w, 0, 0, 100)); /* cached: answers during the stall */
	atomic_store(&b.cancel, true);
	archive_wake(w->ar);
	pthread_join(tb, NULL);
	CHECK(b.rc == -EINTR);
	CHECK(b.took_ms < 5000);
	src_unstall(&w->src);
	/* The stalled fetch may end past the deadline of the reader that
	 * queued it, and fail: its failure answers half a second at most. */
	usleep(600000);
	CHECK(read_ok(w, 4, 5500000, 4096));
}

/* A sequential reader gets its blocks prefetched in merged requests. */
static void test_sequential(struct world *w)
{
	struct archive_stats st;
	uint64_t off;
	bool ok = true;

	world_close(w);
	CHECK(world_open(w, 1u * 1024 * 1024) == 0);
	for (off = 0; off < BIG; off += 128 * 1024)
		ok = ok && read_ok(w, 4, off, 128 * 1024);
	CHECK(ok);
	archive_get_stats(w->ar, &st);
	CHECK(st.blocks.prefetched > 0);
	CHECK(st.blocks.requests * 2 < st.blocks.fetched);
	fprintf(stderr,
		"sequential %u bytes: %" PRIu64 " blocks in %" PRIu64
		" requests, %" PRIu64 " prefetched, window memory %" PRIu64
		"\n",
		BIG, st.blocks.fetched, st.blocks.requests,
		st.blocks.prefetched, st.window_mem);
	CHECK(st.window_mem > 0);
}

/* ---- the index's signer record and the header check (open policy's
 * seams: the header is seen before any other byte of the index) ---- */

struct hdr_seen {
	int calls;
	int answer;
	char signer[INDEX_MAX_SIGNER + 1];
	uint32_t hlen;
	bool digest_ok;
};

static int see_header(void *arg, const void *raw, const struct index_header *h,
		      char *why, size_t whylen)
{
	struct hdr_seen *hs = arg;

	hs->calls++;
	snprintf(hs->signer, sizeof(hs->signer), "%s", h->signer);
	hs->hlen = h->hlen;
	/* raw is the header as stored: its own digest closes it */
	hs->digest_ok = false;
	{
		unsigned char md[32];
		unsigned int n = 0;

		hs->digest_ok =
		    EVP_Digest(raw, h->hlen - 32, md, &n, EVP_sha256(), NULL) &&
		    !memcmp(md, (const unsigned char *)raw + h->hlen - 32, 32);
	}
	if (hs->answer)
		snprintf(why, whylen, "refused by the test");
	return hs->answer;
}

static void test_index_signer(struct world *w)
{
	static const char signer[] =
	    "openpgp:0123456789ABCDEF0123456789ABCDEF01234567";
	const char *base = getenv("SFFS_TEST_TMP");
	char path[512], plain[512], err[512];
	struct archive_opts o;
	struct fetch_stats st;
	struct hdr_seen hs = {0};
	struct archive *ar;
	struct fetch *idx;

	snprintf(path, sizeof(path), "%s/test_read_signed.%d.sfidx",
		 base ? base : "/tmp", (int)getpid());
	snprintf(plain, sizeof(plain), "%s/test_read_plain.%d.sfidx",
		 base ? base : "/tmp", (int)getpid());
	(void)!system(base ? "mkdir -p \"$SFFS_TEST_TMP\"" : "true");
	/* each write frees the member records: one archive per index */
	world_close(w);
	CHECK(world_open(w, 8u * 1024 * 1024) == 0);
	CHECK(archive_write_index(w->ar, plain, NULL) == 0);
	world_close(w);
	CHECK(world_open(w, 8u * 1024 * 1024) == 0);
	archive_set_signer(w->ar, signer);
	CHECK(!strcmp(archive_signer(w->ar), signer));
	CHECK(archive_write_index(w->ar, path, NULL) == 0);

	archive_opts_default(&o);
	o.check_index = see_header;
	o.check_arg = &hs;
	/* accepted: the hook saw the record, and the archive carries it */
	idx = fetch_open(path, NULL, err, sizeof(err));
	CHECK(idx != NULL);
	ar = idx ? archive_open_index(w->f, idx, &o, err, sizeof(err)) : NULL;
	CHECK(ar != NULL);
	CHECK_EQ_U64(hs.calls, 1);
	CHECK(hs.digest_ok);
	/* fixed fields, empty identity, signer field, block pages (bpage
	 * and 1 page digest: format 3.0), an empty binding (3.1: three
	 * empty strings and a time), digest */
	CHECK_EQ_U64(hs.hlen, 394 + 2 + strlen(signer) + 4 + 32 + 14 + 32);
	CHECK(!strcmp(hs.signer, signer));
	CHECK(ar && !strcmp(archive_signer(ar), signer));
	CHECK(ar && read_ok(w, 2, 1000, 5000));
	archive_free(ar);
	fetch_free(idx);

	/* refused by the hook: the hook's errno, and nothing but the
	 * header was read */
	hs.answer = -EKEYREJECTED;
	idx = fetch_open(path, NULL, err, sizeof(err));
	CHECK(idx != NULL);
	errno = 0;
	ar = idx ? archive_open_index(w->f, idx, &o, err, sizeof(err)) : NULL;
	CHECK(ar == NULL);
	CHECK_EQ_U64(errno, EKEYREJECTED);
	CHECK(strstr(err, "refused by the test") != NULL);
	if (idx) {
		fetch_get_stats(idx, &st);
		CHECK(st.bytes <= INDEX_HEADER_MAX);
	}
	fetch_free(idx);

	/* without a signer: an empty signer field (format 3.0 always has
	 * one), the block pages, the digest, and no record */
	hs.answer = 0;
	hs.calls = 0;
	idx = fetch_open(plain, NULL, err, sizeof(err));
	ar = idx ? archive_open_index(w->f, idx, &o, err, sizeof(err)) : NULL;
	CHECK(ar != NULL);
	CHECK_EQ_U64(hs.calls, 1);
	CHECK_EQ_U64(hs.hlen, 394 + 2 + 4 + 32 + 14 + 32);
	CHECK(hs.signer[0] == '\0');
	CHECK(ar && archive_signer(ar)[0] == '\0');
	archive_free(ar);
	fetch_free(idx);
	unlink(path);
	unlink(plain);
}

/* A cold read of a file that ends early in a long span fetches the
 * blocks its bytes need, not the whole span's; later reads further into
 * the span (decoded again from the seek point, or from cached chunks)
 * get every byte right. */
static void test_partial_span(struct world *w)
{
	struct archive_opts o;
	struct archive_stats st;
	struct archive *ar, *keep = w->ar;
	uint64_t spanb, off, len, first = 0;
	char err[256];

	archive_opts_default(&o);
	o.block_size = 64 * 1024;
	o.blocks.merge_max = 512 * 1024;
	o.readahead = 0;
	o.blocks.seed_max = 0;
	o.spacing = 2u * 1024 * 1024; /* span 0 holds files 0-3 */
	ar = archive_open(w->f, &o, err, sizeof(err));
	CHECK(ar != NULL);
	if (!ar)
		return;
	seek_span_crange(archive_seek_index(ar), 0, &off, &len);
	spanb = (off + len + o.block_size - 1) / o.block_size;
	CHECK(spanb >= 10);
	w->ar = ar;
	/* file1 ends in the span's first chunk (256 KiB of 2 MiB) */
	CHECK(read_ok(w, 1, 0, w->files[1].size));
	archive_get_stats(ar, &st);
	CHECK(st.blocks.fetched * 2 < spanb);
	first = st.blocks.fetched;
	CHECK(read_ok(w, 3, 0, w->files[3].size));
	CHECK(read_ok(w, 2, 0, w->files[2].size));
	CHECK(read_ok(w, 1, 0, w->files[1].size));
	CHECK(read_ok(w, 4, 0, 300000));
	archive_get_stats(ar, &st);
	CHECK(st.blocks.fetched > first + 5); /* fetched as reads got there */
	w->ar = keep;
	archive_free(ar);
}

/* ---- the streaming pass's blocks seed the store ---- */

#define SEED_BLOCK (64u * 1024)

/* archive_open on the world's bytes with a store of mem bytes keeping at
 * most seed_max of the pass's; calls the source got after the open. */
static struct archive *open_seeded(struct world *w, uint64_t mem,
				   uint64_t seed_max)
{
	struct archive_opts o;
	struct archive *ar;
	char err[256];

	archive_opts_default(&o);
	o.block_size = SEED_BLOCK;
	o.blocks.mem = mem;
	o.blocks.seed_max = seed_max;
	o.spacing = 256 * 1024;
	ar = archive_open(w->f, &o, err, sizeof(err));
	if (!ar)
		fprintf(stderr, "archive_open: %s\n", err);
	return ar;
}

/* Every block fits: reading every file whole sends no range request. */
static void test_seeded_all(struct world *w)
{
	struct archive *keep = w->ar, *ar;
	uint64_t n = (w->gzlen + SEED_BLOCK - 1) / SEED_BLOCK;
	struct archive_stats st;
	unsigned calls;

	ar = open_seeded(w, 64u * 1024 * 1024, BLOCKS_SEED_MAX);
	CHECK(ar != NULL);
	if (!ar)
		return;
	w->ar = ar;
	calls = atomic_load(&w->src.calls);
	archive_get_stats(ar, &st);
	CHECK_EQ_U64(st.blocks.seeded, n);
	CHECK_EQ_U64(st.store.bytes, w->gzlen);
	for (int k = 0; k < NFILES; k++)
		CHECK(read_ok(w, k, 0, w->files[k].size));
	CHECK_EQ_U64(atomic_load(&w->src.calls), calls);
	archive_get_stats(ar, &st);
	CHECK_EQ_U64(st.blocks.fetched, 0);
	CHECK_EQ_U64(st.blocks.requests, 0);
	CHECK(st.blocks.hits >= n);
	w->ar = keep;
	archive_free(ar);
}

/* The store keeps min(mem / 2, seed_max) bytes of the pass, the first
 * blocks; the others are fetched as before. */
static void test_seeded_budget(struct world *w)
{
	struct archive *keep = w->ar, *ar;
	struct archive_stats st;
	unsigned calls;

	ar = open_seeded(w, 2u * 1024 * 1024, BLOCKS_SEED_MAX);
	CHECK(ar != NULL);
	if (!ar)
		return;
	w->ar = ar;
	archive_get_stats(ar, &st);
	CHECK_EQ_U64(st.blocks.seeded, 1024 * 1024 / SEED_BLOCK);
	CHECK(st.store.bytes <= 1024 * 1024);
	calls = atomic_load(&w->src.calls);
	CHECK(read_ok(w, 0, 0, w->files[0].size)); /* block 0 */
	CHECK(read_ok(w, 2, 0, w->files[2].size)); /* below 1 MiB */
	CHECK_EQ_U64(atomic_load(&w->src.calls), calls);
	CHECK(read_ok(w, 4, 3000000, 100000)); /* past the seeded bytes */
	CHECK(atomic_load(&w->src.calls) > calls);
	archive_get_stats(ar, &st);
	CHECK(st.blocks.fetched > 0);
	CHECK(st.store.bytes <= st.store.budget);
	w->ar = keep;
	archive_free(ar);
	/* seed_max bounds it further: 3 whole blocks of 3.5 */
	ar = open_seeded(w, 64u * 1024 * 1024, 3 * SEED_BLOCK + SEED_BLOCK / 2);
	CHECK(ar != NULL);
	if (!ar)
		return;
	archive_get_stats(ar, &st);
	CHECK_EQ_U64(st.blocks.seeded, 3);
	CHECK_EQ_U64(st.store.bytes, 3 * SEED_BLOCK);
	archive_free(ar);
	/* none at all */
	ar = open_seeded(w, 64u * 1024 * 1024, 0);
	CHECK(ar != NULL);
	if (!ar)
		return;
	archive_get_stats(ar, &st);
	CHECK_EQ_U64(st.blocks.seeded, 0);
	archive_free(ar);
}

/* A handle with the world's block digests, on a store of its own. */
static struct blocks *seed_handle(struct world *w)
{
	uint64_t n = (w->gzlen + SEED_BLOCK - 1) / SEED_BLOCK;
	unsigned char *dg = malloc(n * BLOCKS_DIGEST);
	struct blocks_opts bo;
	struct blocks *bs = NULL;

	blocks_opts_default(&bo);
	bo.max_fetches = 2;
	bo.mem = 64u * 1024 * 1024;
	for (uint64_t i = 0; dg && i < n; i++) {
		size_t len = w->gzlen - i * SEED_BLOCK < SEED_BLOCK
				 ? w->gzlen - i * SEED_BLOCK
				 : SEED_BLOCK;

		EVP_Digest(w->gz + i * SEED_BLOCK, len, dg + i * BLOCKS_DIGEST,
			   NULL, EVP_sha256(), NULL);
	}
	if (dg)
		bs = blocks_new(NULL, w->f, SEED_BLOCK, dg, &bo);
	free(dg);
	return bs;
}

/* blocks_seed checks the bytes itself: wrong ones are refused and leave
 * nothing held; right ones serve a read with no request. */
static void test_seed_checks(struct world *w)
{
	struct blocks *bs = seed_handle(w);
	unsigned char *bad = malloc(SEED_BLOCK);
	const struct block *b = NULL;
	struct blocks_stats st;
	unsigned calls;

	CHECK(bs && bad);
	if (!bs || !bad)
		goto out;
	memcpy(bad, w->gz + SEED_BLOCK, SEED_BLOCK);
	bad[100] ^= 1;
	CHECK_EQ_U64(blocks_seed(bs, 1, bad, SEED_BLOCK), -EBADMSG);
	CHECK_EQ_U64(blocks_peek(bs, 1, &b), -ENOENT);
	CHECK_EQ_U64(blocks_seed(bs, 1, w->gz + SEED_BLOCK, 100), -EINVAL);
	CHECK_EQ_U64(blocks_seed(bs, blocks_count(bs), bad, SEED_BLOCK),
		     -EINVAL);
	CHECK_EQ_U64(blocks_seed(bs, 1, w->gz + SEED_BLOCK, SEED_BLOCK), 0);
	CHECK_EQ_U64(blocks_seed(bs, 1, w->gz + SEED_BLOCK, SEED_BLOCK),
		     -EEXIST);
	calls = atomic_load(&w->src.calls);
	CHECK(blocks_get(bs, 1, 0, NULL, &b) == 0);
	CHECK(b && b->len == SEED_BLOCK &&
	      !memcmp(b->data, w->gz + SEED_BLOCK, SEED_BLOCK));
	blocks_release(bs, b);
	CHECK_EQ_U64(atomic_load(&w->src.calls), calls);
	blocks_get_stats(bs, &st);
	CHECK_EQ_U64(st.seeded, 1);
	CHECK_EQ_U64(st.fetched, 0);
	CHECK_EQ_U64(st.hits, 1);
out:
	free(bad);
	blocks_free(bs);
}

struct seed_reader {
	struct world *w;
	struct blocks *bs;
	int bad;
};

static void *read_blocks(void *arg)
{
	struct seed_reader *r = arg;
	const struct block *b;

	for (uint64_t i = 0; i < blocks_count(r->bs); i++) {
		if (blocks_get(r->bs, i, 0, NULL, &b)) {
			r->bad++;
			continue;
		}
		if (memcmp(b->data, r->w->gz + i * SEED_BLOCK, b->len))
			r->bad++;
		blocks_release(r->bs, b);
	}
	return NULL;
}

/* Seeding while readers fetch the same blocks (for ThreadSanitizer):
 * each block is seeded or fetched, never both, and every read is right. */
static void test_seed_races(struct world *w)
{
	struct seed_reader r[2] = {{.w = w}, {.w = w}};
	struct blocks *bs = seed_handle(w);
	struct blocks_stats st;
	pthread_t th[2];
	uint64_t n, i, ok = 0;

	CHECK(bs != NULL);
	if (!bs)
		return;
	n = blocks_count(bs);
	for (int k = 0; k < 2; k++) {
		r[k].bs = bs;
		pthread_create(&th[k], NULL, read_blocks, &r[k]);
	}
	for (i = n; i-- > 0;) {
		size_t len = w->gzlen - i * SEED_BLOCK < SEED_BLOCK
				 ? w->gzlen - i * SEED_BLOCK
				 : SEED_BLOCK;
		int rc = blocks_seed(bs, i, w->gz + i * SEED_BLOCK, len);

		CHECK(rc == 0 || rc == -EEXIST);
		ok += rc == 0;
	}
	for (int k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	CHECK_EQ_U64(r[0].bad + r[1].bad, 0);
	blocks_get_stats(bs, &st);
	CHECK_EQ_U64(st.seeded, ok);
	CHECK_EQ_U64(st.seeded + st.fetched, n);
	blocks_free(bs);
}

int main(void)
{
	struct world w;

	log_set_level(LOG_LVL_ERR);
	if (world_new(&w)) {
		fprintf(stderr, "cannot build the test world\n");
		return 1;
	}
	test_all_bytes(&w);
	test_partial_span(&w);
	test_cache_and_nowait(&w);
	test_wrong_bytes(&w);
	test_failed_load_shared(&w);
	test_stall(&w);
	test_sequential(&w);
	test_index_signer(&w);
	test_seeded_all(&w);
	test_seeded_budget(&w);
	test_seed_checks(&w);
	test_seed_races(&w);
	world_free(&w);
	return check_done();
}
