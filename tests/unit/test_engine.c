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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	unsigned char gz[8192];
	size_t gzlen;
	unsigned char data[FILE_LEN];
	struct fetch *f;
	struct archive *ar;
	uint32_t node;
};

static int make_gz(struct art *a, unsigned seed)
{
	unsigned char tar[512 + 3072 + 1024] = {0};
	z_stream zs = {0};

	content(a->data, FILE_LEN, seed);
	tar_header(tar, "file", FILE_LEN);
	memcpy(tar + 512, a->data, FILE_LEN);
	if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY))
		return -1;
	zs.next_in = tar;
	zs.avail_in = sizeof(tar);
	zs.next_out = a->gz;
	zs.avail_out = sizeof(a->gz);
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		return -1;
	}
	a->gzlen = zs.total_out;
	deflateEnd(&zs);
	return 0;
}

static int mem_range(void *arg, uint64_t off, size_t len, void *buf,
		     unsigned flags)
{
	const struct art *a = arg;

	(void)flags;
	if (off > a->gzlen || len > a->gzlen - off)
		return -EIO;
	memcpy(buf, a->gz + off, len);
	return 0;
}

static const struct fetch_source_ops mem_ops = {.range = mem_range};

static int art_open(struct art *a, unsigned seed, struct cache *cache,
		    struct cache *wcache)
{
	struct archive_opts o;
	char err[256];

	if (make_gz(a, seed))
		return -1;
	archive_opts_default(&o);
	o.block_size = BLOCKS_MIN_SIZE;
	o.blocks.max_fetches = 1;
	o.blocks.mem = 64 * 1024;
	o.readahead = 0;
	o.cache = cache;
	o.wcache = wcache;
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
	a->ar = NULL;
	a->f = NULL;
}

static bool art_read_ok(struct art *a)
{
	unsigned char buf[FILE_LEN];
	ssize_t n = archive_read(a->ar, a->node, 0, sizeof(buf), buf);

	return n == FILE_LEN && !memcmp(buf, a->data, FILE_LEN);
}

/* ---- tests ---- */

static void test_ids_never_reused(void)
{
	struct cache *cache = cache_new(4u * 1024 * 1024);
	struct cache *wcache = cache_new(1024 * 1024);
	struct art *kept = calloc(1, sizeof(*kept));
	struct art *other = calloc(1, sizeof(*other));
	unsigned bad = 0, badkept = 0, failed = 0, k;
	uint64_t first_id, last_id = 0;
	struct cache_stats st;

	CHECK(cache && wcache && kept && other);
	if (!cache || !wcache || !kept || !other)
		goto out;
	CHECK(art_open(kept, 0xffffffffu, cache, wcache) == 0);
	CHECK(art_read_ok(kept));
	first_id = archive_id(kept->ar);
	for (k = 1; k <= CYCLES && failed < 10; k++) {
		if (art_open(other, k, cache, wcache)) {
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

int main(void)
{
	log_set_level(LOG_LVL_ERR);
	test_cache_owners();
	test_ids_never_reused();
	return check_done();
}
