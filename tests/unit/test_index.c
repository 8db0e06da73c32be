/* SPDX-License-Identifier: MIT */
/*
 * test_index.c - the .sfidx block-digest pages (format 2.2) and reading
 * older indexes.
 *
 * Writes small indexes with index_write (an uncompressed artifact of
 * 4 KiB blocks, so the block counts are chosen exactly), serves them from
 * memory through fetch_open_source (counting requests and the bytes they
 * cover) and checks: the pages the header names, each page fetched alone
 * and checked, a corrupt page refused while the others still load, an
 * eager load that leaves BLOCKS alone, the whole section through
 * index_load_blocks, a 2.1 header (no pages) still read, bad page fields
 * refused, and byte-identical output for the same input.
 */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "sffs/blocks.h"
#include "sffs/index.h"

#define H_SECTIONS 168
#define H_IDENTITY (H_SECTIONS + INDEX_NSECTIONS * 56)

struct mem {
	unsigned char *p;
	size_t len;
	unsigned requests;
	uint64_t lo, hi;   /* lowest and highest byte asked for */
	uint64_t last_end; /* end of the last request */
	unsigned fail;	   /* fail this many requests with -EIO */
	unsigned delay_ms; /* sleep in each request */
};

static int mem_range(void *arg, uint64_t off, size_t len, void *buf,
		     unsigned flags)
{
	struct mem *m = arg;

	(void)flags;
	if (m->delay_ms)
		usleep(m->delay_ms * 1000u);
	__atomic_fetch_add(&m->requests, 1, __ATOMIC_SEQ_CST);
	if (off > m->len || len > m->len - off)
		return -EIO;
	if (m->fail) {
		m->fail--;
		return -EIO;
	}
	memcpy(buf, m->p + off, len);
	if (off < m->lo)
		m->lo = off;
	if (off + len > m->hi)
		m->hi = off + len;
	m->last_end = off + len;
	return 0;
}

static const struct fetch_source_ops mem_ops = {.range = mem_range};

static struct fetch *mem_fetch(struct mem *m)
{
	m->requests = 0;
	m->lo = UINT64_MAX;
	m->hi = 0;
	return fetch_open_source("mem.sfidx", m->len, "", &mem_ops, m);
}

static unsigned char *fake_digests(uint64_t n)
{
	unsigned char *d = malloc(n * 32 + 1);
	uint64_t i;

	for (i = 0; d && i < n * 32; i++)
		d[i] = (unsigned char)(i * 131 + (i >> 5) * 7);
	return d;
}

static int read_file(const char *path, struct mem *m)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	m->p = malloc((size_t)n + 1);
	m->len = m->p ? fread(m->p, 1, (size_t)n, f) : 0;
	fclose(f);
	return m->p && m->len == (size_t)n ? 0 : -EIO;
}

/* An index of an uncompressed artifact of nblocks 4 KiB blocks (the last
 * one 100 bytes), one seek point, no members, read back into m. */
static const struct tar_entry test_members[] = {
    {.path = "",
     .type = TAR_DIR,
     .mode = 0755,
     .header_off = 0,
     .data_off = 512},
    {.path = "view",
     .type = TAR_DIR,
     .mode = 0755,
     .mtime = -5,
     .header_off = 512,
     .data_off = 1024},
    {.path = "view/bin",
     .type = TAR_DIR,
     .mode = 0755,
     .header_off = 1024,
     .data_off = 1536},
    {.path = "view/bin/sinfo",
     .type = TAR_REG,
     .mode = 04755,
     .mtime = 1700000000,
     .size = 77832,
     .data_len = 77832,
     .header_off = 1536,
     .data_off = 2048},
    {.path = "view/bin/squeue",
     .type = TAR_REG,
     .mode = 0755,
     .size = 3000000000ull,
     .data_len = 3000000000ull,
     .header_off = 80384,
     .data_off = 81920},
    {.path = "view/lib",
     .type = TAR_SYMLINK,
     .link = "bin",
     .mode = 0777,
     .size = 3,
     .header_off = 3000081920ull,
     .data_off = 3000082432ull},
    /* a later duplicate: replaces the first sinfo */
    {.path = "view/bin/sinfo",
     .type = TAR_REG,
     .mode = 0700,
     .size = 10,
     .data_len = 10,
     .header_off = 3000082432ull,
     .data_off = 3000082944ull},
    {.path = "a",
     .type = TAR_HARDLINK,
     .link = "view/bin/squeue",
     .mode = 0644,
     .header_off = 3000083968ull,
     .data_off = 3000084480ull},
};
#define NTEST_MEMBERS (sizeof(test_members) / sizeof(test_members[0]))

static int make_index(const char *path, uint64_t nblocks,
		      const unsigned char *digests, struct mem *m, bool members)
{
	struct index_members *mem = index_members_new();
	struct seek_point pt = {0};
	struct seek_index si = {.codec = SEEK_NONE, .n = 1, .pts = &pt};
	struct index_header h;
	size_t i;
	int rc;

	memset(&h, 0, sizeof(h));
	h.artifact_size = (nblocks - 1) * BLOCKS_MIN_SIZE + 100;
	h.block_size = BLOCKS_MIN_SIZE;
	h.spacing = 1u << 20;
	si.csize = si.usize = h.artifact_size;
	for (i = 0; members && mem && i < NTEST_MEMBERS; i++)
		CHECK(index_members_add(mem, &test_members[i]) == 0);
	rc = mem ? index_write(path, &h, mem, &si, digests, NULL) : -ENOMEM;
	index_members_free(mem);
	return rc ? rc : read_file(path, m);
}

static int load(struct mem *m, struct index_header *h, unsigned char **blocks)
{
	struct tree *t = tree_new(NULL, NULL);
	struct fetch *f = mem_fetch(m);
	struct seek_index *si = NULL;
	struct index_header peek;
	char err[256] = "";
	int rc = index_parse_header(m->p, m->len, &peek);

	/* the artifact's size as the index says (the loader checks it) */
	if (!rc)
		rc = f && t ? index_load(f, peek.artifact_size, h, t, &si,
					 blocks, NULL, NULL, err, sizeof(err))
			    : -ENOMEM;

	if (rc)
		fprintf(stderr, "index_load: %s\n", err);
	seek_index_free(si);
	tree_free(t);
	fetch_free(f);
	return rc;
}

static void test_pages(const char *path)
{
	uint64_t nblocks = 2 * 128 + 45, n = 0, p;
	unsigned char *d = fake_digests(nblocks), *all = NULL;
	unsigned char page[128 * 32];
	struct mem m = {0};
	struct index_header h;
	struct fetch *f;

	CHECK(make_index(path, nblocks, d, &m, false) == 0);
	CHECK(load(&m, &h, NULL) == 0);
	CHECK_EQ_U64(h.major, 3);
	CHECK_EQ_U64(h.minor, INDEX_MINOR);
	CHECK_EQ_U64(h.bpage, 128);
	CHECK_EQ_U64(h.npages, 3);
	/* This small index fits in the header's read: MEMBERS and POINTS
	 * come from it, and BLOCKS is not asked for. */
	CHECK(h.sec[INDEX_BLOCKS].off < INDEX_HEADER_MAX);
	CHECK_EQ_U64(m.requests, 1);
	CHECK_EQ_U64(m.hi, INDEX_HEADER_MAX);
	CHECK_EQ_U64(index_page_of(&h, 255), 1);
	CHECK_EQ_U64(index_page_of(&h, 256), 2);

	f = mem_fetch(&m);
	for (p = 0; p < 3; p++) {
		CHECK(index_load_page(f, &h, p, page, &n) == 0);
		CHECK_EQ_U64(n, p < 2 ? 128 : 45);
		CHECK(memcmp(page, d + p * 128 * 32, (size_t)n * 32) == 0);
	}
	CHECK_EQ_U64(m.requests, 3);
	CHECK(m.lo == h.sec[INDEX_BLOCKS].off);
	CHECK(m.hi == h.sec[INDEX_BLOCKS].off + nblocks * 32);
	CHECK(index_load_page(f, &h, 3, page, &n) == -EINVAL);
	CHECK(index_load_blocks(f, &h, &all) == 0);
	CHECK(all && memcmp(all, d, (size_t)nblocks * 32) == 0);
	free(all);
	all = NULL;

	/* One flipped digest byte in page 1: that page and the whole
	 * section are refused, the others still load. */
	m.p[h.sec[INDEX_BLOCKS].off + 128 * 32 + 7] ^= 1;
	CHECK(index_load_page(f, &h, 1, page, &n) == -EBADMSG);
	CHECK(index_load_page(f, &h, 0, page, &n) == 0);
	CHECK(index_load_page(f, &h, 2, page, &n) == 0);
	CHECK(index_load_blocks(f, &h, &all) == -EBADMSG);
	CHECK(all == NULL);
	fetch_free(f);
	/* The eager load that asks for BLOCKS checks the whole section. */
	CHECK(load(&m, &h, &all) == -EBADMSG);
	m.p[h.sec[INDEX_BLOCKS].off + 128 * 32 + 7] ^= 1;
	CHECK(load(&m, &h, &all) == 0);
	CHECK(all && memcmp(all, d, (size_t)nblocks * 32) == 0);
	free(all);
	free(m.p);
	free(d);
}

/* Many blocks: bpage grows (powers of two) so that pages stay <= 64. */
static void test_page_size(const char *path)
{
	static const struct {
		uint64_t nblocks;
		uint32_t bpage, npages;
	} cases[] = {
	    {1, 128, 1},	 {128, 128, 1},		  {129, 128, 2},
	    {64 * 128, 128, 64}, {64 * 128 + 1, 256, 33}, {100000, 2048, 49},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char *d = fake_digests(cases[i].nblocks);
		struct mem m = {0}, m2 = {0};
		struct index_header h;

		CHECK(make_index(path, cases[i].nblocks, d, &m, false) == 0);
		CHECK(index_parse_header(m.p, m.len, &h) == 0);
		CHECK_EQ_U64(h.bpage, cases[i].bpage);
		CHECK_EQ_U64(h.npages, cases[i].npages);
		CHECK(h.hlen <= INDEX_HEADER_MAX);
		if (cases[i].nblocks == 100000) {
			unsigned char *all = NULL;

			/* BLOCKS starts in the header's read and goes on
			 * past it: the eager load stitches the two. */
			CHECK(load(&m, &h, &all) == 0);
			CHECK_EQ_U64(m.requests, 2);
			CHECK(all && memcmp(all, d, 100000 * 32) == 0);
			free(all);
		}
		/* the same input gives the same bytes */
		CHECK(make_index(path, cases[i].nblocks, d, &m2, false) == 0);
		CHECK(m.len == m2.len && memcmp(m.p, m2.p, m.len) == 0);
		free(m.p);
		free(m2.p);
		free(d);
	}
}

/* Rewrites m's header as format 2.1 wrote it (no signer, no pages):
 * a shorter header, the sections moved up, the digest redone. */
static void to_minor1(struct mem *m, const struct index_header *h)
{
	size_t idlen = strlen(h->identity), nlen = H_IDENTITY + 2 + idlen + 32;
	size_t delta = h->hlen - nlen, k;
	unsigned char *p = m->p;

	p[8] = 2; /* an index without members reads the same in 2.x */
	p[9] = 0;
	p[10] = 1;
	p[11] = 0;
	p[12] = (unsigned char)nlen;
	p[13] = (unsigned char)(nlen >> 8);
	for (k = 0; k < INDEX_NSECTIONS; k++) {
		unsigned char *s = p + H_SECTIONS + k * 56;
		uint64_t off = h->sec[k].off - delta;
		int b;

		for (b = 0; b < 8; b++)
			s[b] = (unsigned char)(off >> (8 * b));
	}
	memmove(p + nlen, p + h->hlen, m->len - h->hlen);
	m->len -= delta;
	SHA256(p, nlen - 32, p + nlen - 32);
}

static void test_minor1(const char *path)
{
	uint64_t nblocks = 300, n;
	unsigned char *d = fake_digests(nblocks), *all = NULL;
	unsigned char page[128 * 32];
	struct mem m = {0};
	struct index_header h;
	struct fetch *f;

	CHECK(make_index(path, nblocks, d, &m, false) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	to_minor1(&m, &h);
	CHECK(load(&m, &h, &all) == 0);
	CHECK_EQ_U64(h.minor, 1);
	CHECK_EQ_U64(h.bpage, 0);
	CHECK(all && memcmp(all, d, (size_t)nblocks * 32) == 0);
	free(all);
	all = NULL;
	CHECK(load(&m, &h, NULL) == 0);
	f = mem_fetch(&m);
	CHECK(index_load_page(f, &h, 0, page, &n) == -EINVAL);
	CHECK(index_load_blocks(f, &h, &all) == 0);
	CHECK(all && memcmp(all, d, (size_t)nblocks * 32) == 0);
	fetch_free(f);
	free(all);
	free(m.p);
	free(d);
}

/* Sets the bpage field of a 2.2 header (no identity, no signer) and
 * redoes its digest. */
static void set_bpage(struct mem *m, const struct index_header *h,
		      uint32_t bpage)
{
	unsigned char *f = m->p + H_IDENTITY + 2 + 2;
	int b;

	for (b = 0; b < 4; b++)
		f[b] = (unsigned char)(bpage >> (8 * b));
	SHA256(m->p, h->hlen - 32, m->p + h->hlen - 32);
}

static void test_bad_pages(const char *path)
{
	uint64_t nblocks = 300;
	unsigned char *d = fake_digests(nblocks);
	struct mem m = {0};
	struct index_header h, h2;

	CHECK(make_index(path, nblocks, d, &m, false) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	set_bpage(&m, &h, 192); /* not a power of two */
	CHECK(index_parse_header(m.p, m.len, &h2) == -EINVAL);
	set_bpage(&m, &h, 64); /* below the minimum */
	CHECK(index_parse_header(m.p, m.len, &h2) == -EINVAL);
	set_bpage(&m, &h, 1u << 31); /* a page past 1 GiB */
	CHECK(index_parse_header(m.p, m.len, &h2) == -EINVAL);
	/* 2 pages: the header holds 3 digests, and since 3.1 the third is
	 * read where the binding is (its length field is past the bound) */
	set_bpage(&m, &h, 256);
	CHECK(index_parse_header(m.p, m.len, &h2) == -EINVAL);
	set_bpage(&m, &h, 128);
	CHECK(index_parse_header(m.p, m.len, &h2) == 0);
	/* one digest bit of a page digest: the header digest refuses it */
	m.p[H_IDENTITY + 2 + 2 + 4 + 40] ^= 1;
	CHECK(index_parse_header(m.p, m.len, &h2) == -EINVAL);
	free(m.p);
	free(d);
}

struct getter {
	struct index_digests *d;
	uint64_t b;
	unsigned char out[32];
	int rc;
};

static void *get_thread(void *arg)
{
	struct getter *g = arg;

	g->rc = index_digests_get(g->d, g->b, 0, g->out);
	return NULL;
}

/* The lazy table: a page is fetched once, when first needed; a failed
 * fetch is not held; eight readers of one page wait for one fetch. */
static void test_lazy(const char *path)
{
	uint64_t nblocks = 5 * 128 + 3, bytes = 0, loads = 0;
	unsigned char *d = fake_digests(nblocks), md[32];
	struct getter g[8];
	pthread_t th[8];
	struct mem m = {0};
	struct index_header h;
	struct index_digests *ds;
	struct fetch *f;
	int i;

	CHECK(make_index(path, nblocks, d, &m, false) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	f = mem_fetch(&m);
	ds = index_digests_new(f, &h);
	CHECK(ds != NULL);
	if (!ds)
		goto out;
	CHECK(index_digests_get(ds, 5 * 128 + 2, 0, md) == 0);
	CHECK(memcmp(md, d + (5 * 128 + 2) * 32, 32) == 0);
	CHECK(index_digests_get(ds, 5 * 128, 0, md) == 0);
	CHECK(memcmp(md, d + 5 * 128 * 32, 32) == 0);
	CHECK_EQ_U64(m.requests, 1);
	index_digests_stats(ds, &bytes, &loads);
	CHECK_EQ_U64(bytes, 3 * 32);
	CHECK_EQ_U64(loads, 1);
	CHECK(index_digests_get(ds, nblocks, 0, md) == -EINVAL);

	m.fail = 1;
	CHECK(index_digests_get(ds, 0, 0, md) == -EIO);
	CHECK(index_digests_get(ds, 0, 0, md) == 0);
	CHECK(memcmp(md, d, 32) == 0);
	CHECK_EQ_U64(m.requests, 3);

	m.p[h.sec[INDEX_BLOCKS].off + 128 * 32] ^= 1;
	CHECK(index_digests_get(ds, 200, 0, md) == -EBADMSG);
	m.p[h.sec[INDEX_BLOCKS].off + 128 * 32] ^= 1;
	CHECK(index_digests_get(ds, 200, 0, md) == 0);
	CHECK(memcmp(md, d + 200 * 32, 32) == 0);

	/* a slow page: the deadline ends the wait, the load goes on */
	m.requests = 0;
	m.delay_ms = 100;
	for (i = 0; i < 8; i++) {
		g[i] = (struct getter){.d = ds, .b = 2 * 128 + (uint64_t)i * 9};
		pthread_create(&th[i], NULL, get_thread, &g[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK(g[i].rc == 0);
		CHECK(memcmp(g[i].out, d + g[i].b * 32, 32) == 0);
	}
	CHECK_EQ_U64(m.requests, 1);
	m.requests = 0;
	g[0] = (struct getter){.d = ds, .b = 3 * 128};
	pthread_create(&th[0], NULL, get_thread, &g[0]);
	usleep(20000);
	CHECK(index_digests_get(ds, 3 * 128 + 1, fetch_now_ns() + 10000000u,
				md) == -ETIMEDOUT);
	pthread_join(th[0], NULL);
	CHECK(g[0].rc == 0);
	CHECK(index_digests_get(ds, 3 * 128 + 1, 0, md) == 0);
	CHECK(memcmp(md, d + (3 * 128 + 1) * 32, 32) == 0);
	CHECK_EQ_U64(m.requests, 1);
	m.delay_ms = 0;
	index_digests_free(ds);
	index_digests_free(NULL);
out:
	fetch_free(f);
	free(m.p);
	free(d);
}

/* No pages (a 2.1 index): no lazy table. */
static void test_lazy_minor1(const char *path)
{
	unsigned char *d = fake_digests(300);
	struct mem m = {0};
	struct index_header h;

	CHECK(make_index(path, 300, d, &m, false) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	to_minor1(&m, &h);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	CHECK(index_digests_new(NULL, &h) == NULL);
	free(m.p);
	free(d);
}

/* Format 3 MEMBERS: the tree loaded from an index is the tree the
 * entries build directly (offsets through their differences, paths
 * through shared prefixes, a duplicate, a hardlink, a symlink). */
static void test_members_tree(const char *path)
{
	unsigned char *d = fake_digests(300);
	struct tree *t = tree_new(NULL, NULL), *want = tree_new(NULL, NULL);
	struct seek_index *si = NULL;
	struct index_header h;
	struct mem m = {0};
	struct fetch *f;
	char err[256];
	uint32_t i, n;
	size_t k;

	CHECK(make_index(path, 300, d, &m, true) == 0);
	f = mem_fetch(&m);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	CHECK_EQ_U64(h.major, 3);
	CHECK_EQ_U64(h.nmembers, NTEST_MEMBERS);
	CHECK(index_load(f, h.artifact_size, &h, t, &si, NULL, NULL, NULL, err,
			 sizeof(err)) == 0);
	for (k = 0; k < NTEST_MEMBERS; k++)
		CHECK(tree_add(want, &test_members[k]) == 0);
	CHECK(tree_finish(t) == 0 && tree_finish(want) == 0);
	CHECK_EQ_U64(tree_count(t), tree_count(want));
	for (i = 0, n = tree_count(t); i < n; i++) {
		const struct tree_node *a = tree_node(t, i),
				       *b = tree_node(want, i);

		CHECK(a && b && a->size == b->size &&
		      a->data_off == b->data_off && a->mtime == b->mtime &&
		      a->mode == b->mode && a->nlink == b->nlink);
	}
	CHECK(tree_resolve(t, "view/bin/sinfo", &i) == 0);
	CHECK(tree_node(t, i)->size == 10 &&
	      tree_node(t, i)->data_off == 3000082944ull);
	seek_index_free(si);
	fetch_free(f);
	tree_free(t);
	tree_free(want);
	free(m.p);
	free(d);
}

/* Bad format 3 records: offsets below zero, a prefix longer than the
 * previous path, a path too long. */
/* index_parse_members of raw into a fresh tree, freed again. */
static int members_rc(const unsigned char *raw, size_t len, uint64_t count)
{
	struct tree *t = tree_new(NULL, NULL);
	int rc = index_parse_members(raw, len, count, t);

	tree_free(t);
	return rc;
}

static void test_members_bad(void)
{
	/* dir "a" at header 512 (delta +512 = zigzag 1024: 80 08) */
	static const unsigned char ok[] = {
	    1, 0x80, 0x07, 0, 0, 0x80, 0x08, 0x80, 0x08, 0, 0, 1, 'a', 0, 0};
	unsigned char rec[sizeof(ok) * 2 + 8];
	struct tree *t;
	size_t n = sizeof(ok);

	CHECK(members_rc(ok, n, 1) == 0);
	/* header delta -2 (zigzag 3) from 0 */
	memcpy(rec, ok, n);
	rec[5] = 3;
	rec[6] = 0;
	CHECK(members_rc(rec, n, 1) == -EINVAL);
	/* data 1024 below its header (zigzag 2047: ff 0f) */
	memcpy(rec, ok, n);
	rec[7] = 0xff;
	rec[8] = 0x0f;
	CHECK(members_rc(rec, n, 1) == -EINVAL);
	/* a second record sharing 2 bytes of the 1-byte previous path */
	memcpy(rec, ok, n);
	memcpy(rec + n, ok, n);
	rec[n + 10] = 2;
	CHECK(members_rc(rec, 2 * n, 2) == -EINVAL);
	/* a second record sharing 1 byte and adding "/b": "a/b" is fine */
	memcpy(rec + n, ok, n - 4);
	rec[n + 10] = 1;
	rec[n + 11] = 2;
	rec[n + 12] = '/';
	rec[n + 13] = 'b';
	rec[n + 14] = 0;
	rec[n + 15] = 0;
	t = tree_new(NULL, NULL);
	CHECK(index_parse_members(rec, 2 * n + 1, 2, t) == 0);
	CHECK(tree_finish(t) == 0 &&
	      tree_resolve(t, "a/b", &(uint32_t){0}) == 0);
	tree_free(t);
	/* a suffix of 4097 bytes (varint 81 20) */
	memcpy(rec, ok, n);
	rec[11] = 0x81;
	rec[12] = 0x20;
	CHECK(members_rc(rec, n, 1) == -EINVAL);
}

int main(void)
{
	const char *base = getenv("SFFS_TEST_TMP");
	char path[4096];

	snprintf(path, sizeof(path), "%s/test_index.%d.sfidx",
		 base ? base : "/tmp", (int)getpid());
	if (base)
		mkdir(base, 0755);
	test_pages(path);
	test_page_size(path);
	test_minor1(path);
	test_bad_pages(path);
	test_lazy(path);
	test_lazy_minor1(path);
	test_members_tree(path);
	test_members_bad();
	unlink(path);
	return check_done();
}
