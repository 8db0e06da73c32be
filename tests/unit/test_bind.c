/* SPDX-License-Identifier: MIT */
/*
 * test_bind.c - the index header's binding (format 3.1: the artifact's
 * name, version, toolchain and publication time, inside what a header
 * signature covers) and the budgets relative to the artifact's size.
 *
 * Writes small indexes with index_write and checks: the binding comes
 * back as written and changes the header digest; an empty binding is
 * still "bound" (3.1) while a 3.0 header made from the same file (the
 * binding cut out, the sections moved up) reads as not bound, pages
 * intact; malformed binding fields are refused; index_url_basename; and
 * crafted headers past each budget refused with -EFBIG and a message
 * naming the section, its size and the bound.
 */
#include "check.h"

#include <errno.h>
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
#define NBLOCKS 10u

struct mem {
	unsigned char *p;
	size_t len;
};

static int mem_range(void *arg, uint64_t off, size_t len, void *buf,
		     unsigned flags)
{
	struct mem *m = arg;

	(void)flags;
	if (off > m->len || len > m->len - off)
		return -EIO;
	memcpy(buf, m->p + off, len);
	return 0;
}

static const struct fetch_source_ops mem_ops = {.range = mem_range};

static void put64(unsigned char *p, uint64_t v)
{
	int b;

	for (b = 0; b < 8; b++)
		p[b] = (unsigned char)(v >> (8 * b));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	int b;

	for (b = 7; b >= 0; b--)
		v = v << 8 | p[b];
	return v;
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

/* An index of an uncompressed artifact of NBLOCKS 4 KiB blocks, one
 * member, one seek point, bound as bind says, read back into m. */
static int make_index(const char *path, const struct index_binding *bind,
		      struct mem *m)
{
	static const struct tar_entry dir = {
	    .path = "view", .type = TAR_DIR, .mode = 0755, .data_off = 512};
	struct index_members *mem = index_members_new();
	struct seek_point pt = {0};
	struct seek_index si = {.codec = SEEK_NONE, .n = 1, .pts = &pt};
	unsigned char *d = calloc(NBLOCKS, 32);
	struct index_header h;
	int rc = -ENOMEM;

	memset(&h, 0, sizeof(h));
	h.artifact_size = (NBLOCKS - 1) * BLOCKS_MIN_SIZE + 100;
	h.block_size = BLOCKS_MIN_SIZE;
	h.spacing = 1u << 20;
	if (bind)
		h.bind = *bind;
	si.csize = si.usize = h.artifact_size;
	if (mem && d && !index_members_add(mem, &dir))
		rc = index_write(path, &h, mem, &si, d, NULL);
	index_members_free(mem);
	free(d);
	return rc ? rc : read_file(path, m);
}

/* Loads m's index as a node would (its own size as the artifact's);
 * the reason of a refusal into err. */
static int load(struct mem *m, char *err, size_t errlen)
{
	struct fetch *f =
	    fetch_open_source("mem.sfidx", m->len, "", &mem_ops, m);
	struct tree *t = tree_new(NULL, NULL);
	struct seek_index *si = NULL;
	struct index_header h;
	int rc = -ENOMEM;

	err[0] = '\0';
	if (f && t)
		rc = index_load(f, (NBLOCKS - 1) * BLOCKS_MIN_SIZE + 100, &h, t,
				&si, NULL, NULL, NULL, err, errlen);
	seek_index_free(si);
	tree_free(t);
	fetch_free(f);
	return rc;
}

static void redigest(struct mem *m)
{
	uint32_t hlen = (uint32_t)(m->p[12] | m->p[13] << 8);

	SHA256(m->p, hlen - 32, m->p + hlen - 32);
}

static void test_round_trip(const char *path)
{
	struct index_binding b = {.name =
				      "slurm-25.05-bookworm-software.tar.gz",
				  .version = "25.05",
				  .toolchain = "bookworm",
				  .published = 1765000000};
	struct index_header h, h0;
	struct mem m = {0}, m0 = {0};
	char err[512];

	CHECK(make_index(path, &b, &m) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	CHECK_EQ_U64(h.major, 3);
	CHECK_EQ_U64(h.minor, 1);
	CHECK(h.bound);
	CHECK(!strcmp(h.bind.name, b.name));
	CHECK(!strcmp(h.bind.version, "25.05"));
	CHECK(!strcmp(h.bind.toolchain, "bookworm"));
	CHECK_EQ_U64(h.bind.published, 1765000000);
	CHECK(load(&m, err, sizeof(err)) == 0);

	/* nothing bound: still a 3.1 header, every field empty, shorter by
	 * exactly the strings */
	CHECK(make_index(path, NULL, &m0) == 0);
	CHECK(index_parse_header(m0.p, m0.len, &h0) == 0);
	CHECK(h0.bound);
	CHECK(h0.bind.name[0] == '\0' && h0.bind.version[0] == '\0' &&
	      h0.bind.toolchain[0] == '\0' && h0.bind.published == 0);
	CHECK_EQ_U64(h.hlen - h0.hlen,
		     strlen(b.name) + strlen(b.version) + strlen(b.toolchain));
	/* the binding is under the header digest: one changed byte of the
	 * name is refused */
	m.p[h.hlen - 32 - 8 - 2 - 8 - 2 - 5 - 2 - 3] ^= 1;
	CHECK(index_parse_header(m.p, m.len, &h) == -EINVAL);
	free(m.p);
	free(m0.p);
}

/* Rewrites a 3.1 file as 3.0 wrote it: the binding cut out of the
 * header, the sections moved up, the digest redone. */
static void to_minor0(struct mem *m, const struct index_header *h)
{
	size_t blen = 2 + strlen(h->bind.name) + 2 + strlen(h->bind.version) +
		      2 + strlen(h->bind.toolchain) + 8;
	size_t nlen = h->hlen - blen, k;
	unsigned char *p = m->p;

	p[10] = 0;
	p[11] = 0;
	p[12] = (unsigned char)nlen;
	p[13] = (unsigned char)(nlen >> 8);
	for (k = 0; k < INDEX_NSECTIONS; k++) {
		unsigned char *s = p + H_SECTIONS + k * 56;

		put64(s, get64(s) - blen);
	}
	/* the digest's place, then everything after the header */
	memmove(p + nlen - 32, p + h->hlen - 32, m->len - (h->hlen - 32));
	m->len -= blen;
	redigest(m);
}

static void test_old_minor(const char *path)
{
	struct index_binding b = {.name = "a.tar", .published = 7};
	struct index_header h, h0;
	struct mem m = {0};
	char err[512];

	CHECK(make_index(path, &b, &m) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	to_minor0(&m, &h);
	CHECK(index_parse_header(m.p, m.len, &h0) == 0);
	CHECK_EQ_U64(h0.minor, 0);
	CHECK(!h0.bound);
	CHECK(h0.bind.name[0] == '\0' && h0.bind.published == 0);
	CHECK_EQ_U64(h0.bpage, h.bpage);
	CHECK_EQ_U64(h0.npages, h.npages);
	CHECK(!memcmp(h0.page_sha256[0], h.page_sha256[0], 32));
	CHECK(load(&m, err, sizeof(err)) == 0);
	free(m.p);
}

/* A name at its bound, one past it, a NUL in it, a field too long. */
static void test_bad_fields(const char *path)
{
	struct index_binding b = {.name = "abc"};
	struct index_header h;
	struct mem m = {0};
	size_t at;

	memset(b.name, 'x', INDEX_MAX_NAME);
	CHECK(make_index(path, &b, &m) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	CHECK_EQ_U64(strlen(h.bind.name), INDEX_MAX_NAME);
	/* a name one byte longer than the bound */
	at = h.hlen - 32 - 8 - 2 - 2 - INDEX_MAX_NAME - 2;
	CHECK_EQ_U64(m.p[at] | m.p[at + 1] << 8, INDEX_MAX_NAME);
	m.p[at] = (unsigned char)((INDEX_MAX_NAME + 1) & 0xff);
	m.p[at + 1] = (unsigned char)((INDEX_MAX_NAME + 1) >> 8);
	redigest(&m);
	CHECK(index_parse_header(m.p, m.len, &h) == -EINVAL);
	/* a NUL inside it */
	m.p[at] = (unsigned char)INDEX_MAX_NAME;
	m.p[at + 1] = 0;
	m.p[at + 10] = 0;
	redigest(&m);
	CHECK(index_parse_header(m.p, m.len, &h) == -EINVAL);
	/* a toolchain running into the digest */
	m.p[at + 10] = 'x';
	m.p[h.hlen - 32 - 8 - 2] = 200;
	redigest(&m);
	CHECK(index_parse_header(m.p, m.len, &h) == -EINVAL);
	free(m.p);
	/* a version at its bound is written and read back */
	memset(&b, 0, sizeof(b));
	memset(b.version, 'v', INDEX_MAX_TAG);
	CHECK(make_index(path, &b, &m) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	CHECK_EQ_U64(strlen(h.bind.version), INDEX_MAX_TAG);
	free(m.p);
}

static void test_basename(void)
{
	static const struct {
		const char *url, *name;
	} cases[] = {
	    {"https://h/b/slurm-25.05-bookworm-software.tar.gz?X-Amz-"
	     "Signature=abc/def",
	     "slurm-25.05-bookworm-software.tar.gz"},
	    {"s3://bucket/dir/x.tar.zst", "x.tar.zst"},
	    {"/srv/www/a.tar#frag", "a.tar"},
	    {"a.tar", "a.tar"},
	    {"http://h/dir/", ""},
	    {"http://user:secret@host", ""},
	    {"http://host?q=/a.tar", ""},
	};
	char out[64], tiny[4];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		index_url_basename(cases[i].url, out, sizeof(out));
		CHECK(!strcmp(out, cases[i].name));
	}
	index_url_basename("http://h/abcdef", tiny, sizeof(tiny));
	CHECK(!strcmp(tiny, "abc"));
}

/* Sets a 64-bit header field of m's header at off and redoes the
 * digest. */
static void set_field(struct mem *m, size_t off, uint64_t v)
{
	put64(m->p + off, v);
	redigest(m);
}

static void expect_budget(struct mem *m, const char *what)
{
	struct index_header h;
	char err[512];

	CHECK(index_parse_header(m->p, m->len, &h) == -EFBIG);
	CHECK(index_budget_check(&h, err, sizeof(err)) == -EFBIG);
	CHECK(strstr(err, what) != NULL);
	CHECK(load(m, err, sizeof(err)) == -EFBIG);
	CHECK(strstr(err, what) != NULL && strstr(err, "at most") != NULL);
	if (!strstr(err, what))
		fprintf(stderr, "budget: %s\n", err);
}

static void test_budgets(const char *path)
{
	const uint64_t size = (NBLOCKS - 1) * BLOCKS_MIN_SIZE + 100;
	const size_t mem_sec = H_SECTIONS, pts_sec = H_SECTIONS + 56;
	struct index_header h;
	struct mem m = {0};
	unsigned char keep[INDEX_HEADER_MAX];
	char err[512];
	size_t k;

	CHECK(make_index(path, NULL, &m) == 0);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	memcpy(keep, m.p, h.hlen);
	/* the members an artifact of size can hold, and one more */
	set_field(&m, 80, (UINT64_C(1) << 20) + size / 2);
	CHECK(index_parse_header(m.p, m.len, &h) == 0);
	set_field(&m, 80, (UINT64_C(1) << 20) + size / 2 + 1);
	expect_budget(&m, "member count is 1067059");
	memcpy(m.p, keep, h.hlen);
	/* seek points (POINTS' raw length follows them) */
	set_field(&m, 88, (UINT64_C(1) << 16) + size / 8 + 1);
	set_field(&m, pts_sec + 16, ((UINT64_C(1) << 16) + size / 8 + 1) * 62);
	expect_budget(&m, "seek-point count");
	memcpy(m.p, keep, h.hlen);
	/* MEMBERS raw past 16 MiB + 8 * size: 16,777,216 + 295,712 */
	set_field(&m, mem_sec + 16, (UINT64_C(16) << 20) + 8 * size + 1);
	expect_budget(&m, "MEMBERS (raw bytes) is 17072929");
	memcpy(m.p, keep, h.hlen);
	/* MEMBERS stored much larger than its raw bytes: the sections after
	 * it move along, so only the budget refuses it */
	set_field(&m, mem_sec + 8, 100000);
	for (k = 1; k < INDEX_NSECTIONS; k++)
		set_field(&m, H_SECTIONS + k * 56,
			  get64(m.p + H_SECTIONS + k * 56) + 100000 -
			      h.sec[INDEX_MEMBERS].len);
	expect_budget(&m, "MEMBERS (stored bytes) is 100000");
	memcpy(m.p, keep, h.hlen);
	CHECK(load(&m, err, sizeof(err)) == 0);
	free(m.p);
}

int main(void)
{
	const char *base = getenv("SFFS_TEST_TMP");
	char path[4096];

	snprintf(path, sizeof(path), "%s/test_bind.%d.sfidx",
		 base ? base : "/tmp", (int)getpid());
	if (base)
		mkdir(base, 0755);
	test_round_trip(path);
	test_old_minor(path);
	test_bad_fields(path);
	test_basename();
	test_budgets(path);
	unlink(path);
	return check_done();
}
