/* SPDX-License-Identifier: MIT */
/*
 * test_tar.c - the streaming tar reader against archives written here (every
 * format feature and a corpus of bad inputs) and against GNU tar's output
 * (gnu, posix, ustar, v7 and the sparse formats) for a real directory tree.
 * Every archive is parsed at once, byte by byte and in random pieces, and
 * the three results must be identical.
 */
#include "check.h"
#include "sffs/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- growable buffer -------------------------------------------------- */

struct buf {
	unsigned char *d;
	size_t n, cap;
};

static void buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->n + n)
			cap *= 2;
		b->d = realloc(b->d, cap);
		if (!b->d)
			abort();
		b->cap = cap;
	}
	if (n)
		memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void buf_zero(struct buf *b, size_t n)
{
	static const unsigned char z[512];

	while (n > 0) {
		size_t k = n < sizeof(z) ? n : sizeof(z);

		buf_put(b, z, k);
		n -= k;
	}
}

static void buf_pad(struct buf *b)
{
	buf_zero(b, (512 - b->n % 512) % 512);
}

/* ---- a small tar writer ----------------------------------------------- */

enum fmt { F_USTAR, F_GNU, F_V7 };

struct hdr {
	const char *name;
	char type;
	unsigned mode;
	uint64_t size;
	int64_t mtime;
	const char *link;
	const char *prefix;
	enum fmt fmt;
	bool b256_size, b256_mtime, bad_sum, signed_sum;
	const unsigned char *raw_size; /* 12 bytes written verbatim */
};

static void put_octal(unsigned char *f, size_t n, uint64_t v)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%0*llo", (int)n - 1, (unsigned long long)v);
	memcpy(f, tmp, n - 1);
	f[n - 1] = '\0';
}

static void put_b256(unsigned char *f, size_t n, int64_t v)
{
	uint64_t u = (uint64_t)v;
	size_t i;

	memset(f, v < 0 ? 0xff : 0, n);
	for (i = 0; i < 8; i++)
		f[n - 1 - i] = (unsigned char)(u >> (8 * i));
	f[0] = v < 0 ? 0xff : 0x80;
}

static void set_sum(unsigned char *h, bool sign, bool bad)
{
	int64_t sum = 0;
	size_t i;

	memset(h + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += sign ? (signed char)h[i] : h[i];
	if (bad)
		sum += 1;
	snprintf((char *)h + 148, 8, "%06llo", (long long)(sum & 0777777));
	h[155] = ' ';
}

static void hdr_fill(unsigned char *h, const struct hdr *o)
{
	strncpy((char *)h, o->name, 100);
	put_octal(h + 100, 8, o->mode ? o->mode : 0644);
	put_octal(h + 108, 8, 0);
	put_octal(h + 116, 8, 0);
	if (o->raw_size)
		memcpy(h + 124, o->raw_size, 12);
	else if (o->b256_size)
		put_b256(h + 124, 12, (int64_t)o->size);
	else
		put_octal(h + 124, 12, o->size);
	if (o->b256_mtime)
		put_b256(h + 136, 12, o->mtime);
	else
		put_octal(h + 136, 12, (uint64_t)o->mtime);
	h[156] = (unsigned char)o->type;
	if (o->link)
		strncpy((char *)h + 157, o->link, 100);
	if (o->fmt == F_USTAR)
		memcpy(h + 257,
		       "ustar\0"
		       "00",
		       8);
	else if (o->fmt == F_GNU)
		memcpy(h + 257, "ustar  \0", 8);
	if (o->prefix) /* only ustar reads it; GNU keeps atime there */
		strncpy((char *)h + 345, o->prefix, 155);
}

static void tw_header(struct buf *b, const struct hdr *o)
{
	unsigned char h[512] = {0};

	hdr_fill(h, o);
	set_sum(h, o->signed_sum, o->bad_sum);
	buf_put(b, h, 512);
}

static void tw_data(struct buf *b, const void *d, size_t n)
{
	buf_put(b, d, n);
	buf_pad(b);
}

static void tw_file(struct buf *b, const char *name, const char *data)
{
	struct hdr h = {
	    .name = name, .type = '0', .size = strlen(data), .mtime = 1000};

	tw_header(b, &h);
	tw_data(b, data, strlen(data));
}

static void tw_end(struct buf *b)
{
	buf_zero(b, 1024);
}

/* Appends one pax record "LEN key=value\n", LEN counting itself. */
static void pax_rec(struct buf *r, const char *key, const char *val,
		    size_t vlen)
{
	size_t base = strlen(key) + vlen + 3, len = base + 1;
	char num[32];

	for (;;) {
		snprintf(num, sizeof(num), "%zu", len);
		if (strlen(num) + base == len)
			break;
		len = strlen(num) + base;
	}
	buf_put(r, num, strlen(num));
	buf_put(r, " ", 1);
	buf_put(r, key, strlen(key));
	buf_put(r, "=", 1);
	buf_put(r, val, vlen);
	buf_put(r, "\n", 1);
}

static void pax_str(struct buf *r, const char *key, const char *val)
{
	pax_rec(r, key, val, strlen(val));
}

/* An 'x' or 'g' header with the records in r (freed). */
static void tw_pax(struct buf *b, char type, struct buf *r)
{
	struct hdr h = {.name = "PaxHeaders/x", .type = type, .size = r->n};

	tw_header(b, &h);
	tw_data(b, r->d, r->n);
	free(r->d);
	memset(r, 0, sizeof(*r));
}

static void tw_long(struct buf *b, char type, const char *name)
{
	struct hdr h = {.name = "././@LongLink",
			.type = type,
			.size = strlen(name) + 1,
			.fmt = F_GNU};

	tw_header(b, &h);
	tw_data(b, name, strlen(name) + 1);
}

/* ---- collecting what the parser reports ------------------------------- */

struct got_entry {
	char *path, *link;
	struct tar_entry e;
	struct tar_sparse *sp;
};

struct got {
	struct got_entry *e;
	size_t n;
	char warns[8192];
	size_t nwarn;
	int rc;
	char err[512];
	int stop_at; /* return -ECANCELED at this entry (1-based), 0 never */
};

static int got_entry(void *arg, const struct tar_entry *e)
{
	struct got *g = arg;
	struct got_entry *x;

	if (g->stop_at && (size_t)g->stop_at == g->n + 1)
		return -ECANCELED;
	g->e = realloc(g->e, (g->n + 1) * sizeof(*g->e));
	if (!g->e)
		abort();
	x = &g->e[g->n++];
	x->e = *e;
	x->path = strdup(e->path);
	x->link = e->link ? strdup(e->link) : NULL;
	x->sp = NULL;
	if (e->sparse) {
		x->sp = malloc((e->nsparse + 1) * sizeof(*x->sp));
		if (e->nsparse)
			memcpy(x->sp, e->sparse, e->nsparse * sizeof(*x->sp));
	}
	return 0;
}

static void got_warn(void *arg, uint64_t off, const char *msg)
{
	struct got *g = arg;
	size_t l = strlen(g->warns);

	(void)off;
	snprintf(g->warns + l, sizeof(g->warns) - l, "%s\n", msg);
	g->nwarn++;
}

static void got_free(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		free(g->e[i].path);
		free(g->e[i].link);
		free(g->e[i].sp);
	}
	free(g->e);
	memset(g, 0, sizeof(*g));
}

/* Parses d in pieces of 'step' bytes (0: at once, SIZE_MAX: random). */
static void parse(const unsigned char *d, size_t n, size_t step, struct got *g)
{
	struct tar_parser *p = tar_parser_new(got_entry, got_warn, g);
	unsigned seed = 12345;
	size_t at = 0;
	int rc = 0;

	while (at < n && rc == 0) {
		size_t k = step == 0 ? n - at : step;

		if (step == SIZE_MAX) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 8) % 1500;
		}
		if (k > n - at)
			k = n - at;
		rc = tar_parser_feed(p, d + at, k);
		at += k;
	}
	if (rc == 0)
		rc = tar_parser_finish(p);
	g->rc = rc;
	snprintf(g->err, sizeof(g->err), "%s", tar_parser_error(p));
	tar_parser_free(p);
}

static bool entry_same(const struct got_entry *a, const struct got_entry *b)
{
	const struct tar_entry *x = &a->e, *y = &b->e;

	if (strcmp(a->path, b->path) || !a->link != !b->link ||
	    (a->link && strcmp(a->link, b->link)))
		return false;
	if (x->type != y->type || x->mode != y->mode || x->mtime != y->mtime ||
	    x->size != y->size || x->data_off != y->data_off ||
	    x->data_len != y->data_len || x->header_off != y->header_off ||
	    x->nsparse != y->nsparse || !a->sp != !b->sp)
		return false;
	return !x->nsparse ||
	       !memcmp(a->sp, b->sp, x->nsparse * sizeof(*a->sp));
}

static bool got_same(const struct got *a, const struct got *b)
{
	size_t i;

	if (a->n != b->n || a->rc != b->rc || strcmp(a->err, b->err) ||
	    strcmp(a->warns, b->warns))
		return false;
	for (i = 0; i < a->n; i++)
		if (!entry_same(&a->e[i], &b->e[i]))
			return false;
	return true;
}

/* Parses at once, byte by byte (if small) and in random pieces; checks the
 * results agree and returns the first in g. */
static void parse_all(const unsigned char *d, size_t n, struct got *g)
{
	struct got b1 = {0}, rnd = {0};

	memset(g, 0, sizeof(*g));
	parse(d, n, 0, g);
	if (n <= (4u << 20)) {
		parse(d, n, 1, &b1);
		CHECK(got_same(g, &b1));
		got_free(&b1);
	}
	parse(d, n, SIZE_MAX, &rnd);
	CHECK(got_same(g, &rnd));
	got_free(&rnd);
}

static const struct got_entry *find(const struct got *g, const char *path)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (!strcmp(g->e[i].path, path))
			return &g->e[i];
	return NULL;
}

/* The member's data equals s. */
static bool data_is(const struct buf *b, const struct got_entry *x,
		    const char *s)
{
	size_t n = strlen(s);

	return x && x->e.data_len == n && x->e.data_off + n <= b->n &&
	       !memcmp(b->d + x->e.data_off, s, n);
}

/* ---- archives written here -------------------------------------------- */

static void test_basic(void)
{
	struct hdr dir = {
	    .name = "./view/", .type = '5', .mode = 0755, .mtime = 1700000000};
	struct hdr sym = {.name = "view/link",
			  .type = '2',
			  .mode = 0777,
			  .link = "bin/x",
			  .mtime = 5};
	struct hdr hard = {.name = "view/hard",
			   .type = '1',
			   .link = "./view/bin/x",
			   .size = 77 /* ignored: links have no data */};
	struct hdr suid = {.name = "view/suid", .type = '0', .mode = 04755};
	const struct got_entry *x;
	struct buf b = {0};
	struct got g;

	tw_header(&b, &dir);
	tw_file(&b, "./view/bin/x", "hello world");
	tw_header(&b, &sym);
	tw_header(&b, &hard);
	tw_header(&b, &suid);
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 5);
	x = find(&g, "view");
	CHECK(x && x->e.type == TAR_DIR && x->e.mode == 0755 &&
	      x->e.mtime == 1700000000 && x->e.header_off == 0 && !x->link);
	x = find(&g, "view/bin/x");
	CHECK(x && x->e.type == TAR_REG && x->e.size == 11 &&
	      x->e.data_off == 1024 && x->e.header_off == 512 && !x->e.sparse);
	CHECK(data_is(&b, x, "hello world"));
	x = find(&g, "view/link");
	CHECK(x && x->e.type == TAR_SYMLINK && !strcmp(x->link, "bin/x") &&
	      x->e.mode == 0777 && x->e.mtime == 5);
	x = find(&g, "view/hard");
	CHECK(x && x->e.type == TAR_HARDLINK && !strcmp(x->link, "view/bin/x"));
	x = find(&g, "view/suid");
	CHECK(x && x->e.mode == 04755 && x->e.size == 0);
	CHECK_EQ_U64(g.nwarn, 0);
	got_free(&g);
	free(b.d);
}

static void test_ustar_v7_checksums(void)
{
	struct hdr pre = {
	    .name = "file", .type = '0', .prefix = "a/very/long/prefix"};
	struct hdr v7dir = {.name = "olddir/", .type = '\0', .fmt = F_V7};
	struct hdr v7f = {
	    .name = "oldfile", .type = '\0', .fmt = F_V7, .size = 3};
	struct hdr cont = {.name = "contig", .type = '7', .size = 2};
	struct hdr sgn = {
	    .name = "caf\xc3\xa9\xff", .type = '0', .signed_sum = true};
	struct hdr gnu_pre = {
	    .name = "gnuname", .type = '0', .fmt = F_GNU, .prefix = "ignored"};
	const struct got_entry *x;
	struct buf b = {0};
	struct got g;

	tw_header(&b, &pre);
	tw_header(&b, &v7dir);
	tw_header(&b, &v7f);
	tw_data(&b, "abc", 3);
	tw_header(&b, &cont);
	tw_data(&b, "zz", 2);
	tw_header(&b, &sgn);
	/* An old GNU header has no prefix field: those bytes are not a name. */
	tw_header(&b, &gnu_pre);
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 6);
	CHECK(find(&g, "a/very/long/prefix/file") != NULL);
	x = find(&g, "olddir");
	CHECK(x && x->e.type == TAR_DIR);
	x = find(&g, "oldfile");
	CHECK(x && x->e.type == TAR_REG && data_is(&b, x, "abc"));
	x = find(&g, "contig");
	CHECK(x && x->e.type == TAR_REG && data_is(&b, x, "zz"));
	CHECK(find(&g, "caf\xc3\xa9\xff") != NULL);
	CHECK(find(&g, "gnuname") != NULL);
	got_free(&g);
	free(b.d);
}

static char *repeat_path(size_t n, const char *tail)
{
	char *s = malloc(n + strlen(tail) + 1);
	size_t i;

	for (i = 0; i < n; i++)
		s[i] = i % 10 == 9 ? '/' : (char)('a' + i % 10);
	strcpy(s + n, tail);
	return s;
}

static void test_gnu_long(void)
{
	char *n150 = repeat_path(150, "f"), *n300 = repeat_path(300, "g");
	char *t200 = repeat_path(200, "target");
	struct hdr sym = {
	    .name = "trunc", .type = '2', .link = "trunc", .fmt = F_GNU};
	struct hdr hard = {.name = "trunc2", .type = '1', .fmt = F_GNU};
	struct hdr f = {.name = "trunc3", .type = '0', .size = 2, .fmt = F_GNU};
	const struct got_entry *x;
	struct buf b = {0};
	struct got g;

	tw_long(&b, 'L', n150);
	tw_header(&b, &f);
	tw_data(&b, "hi", 2);
	tw_long(&b, 'L', n300);
	tw_long(&b, 'K', t200);
	tw_header(&b, &sym);
	tw_long(&b, 'K', n150);
	tw_header(&b, &hard);
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 3);
	x = find(&g, n150);
	CHECK(x && x->e.header_off == 0 && x->e.data_off == 1536 &&
	      data_is(&b, x, "hi"));
	x = find(&g, n300);
	CHECK(x && x->e.type == TAR_SYMLINK && !strcmp(x->link, t200));
	x = find(&g, "trunc2");
	CHECK(x && x->e.type == TAR_HARDLINK && !strcmp(x->link, n150));
	got_free(&g);
	free(b.d);
	free(n150);
	free(n300);
	free(t200);
}

static void test_pax(void)
{
	char *n300 = repeat_path(300, "p");
	struct hdr f = {.name = "short", .type = '0', .mtime = 1000};
	struct hdr s = {.name = "sym", .type = '2', .mtime = 1000};
	const struct got_entry *x;
	struct buf b = {0}, r = {0};
	struct got g;

	pax_str(&r, "mtime", "42");
	tw_pax(&b, 'g', &r);
	pax_str(&r, "path", n300);
	pax_str(&r, "size", "5");
	pax_str(&r, "mtime", "1700000000.123456");
	pax_str(&r, "atime", "1.5");
	pax_str(&r, "SCHILY.xattr.user.x", "v");
	tw_pax(&b, 'x', &r);
	tw_header(&b, &f); /* size 0 in the header; pax says 5 */
	tw_data(&b, "12345", 5);
	pax_str(&r, "linkpath", "../outside/is/fine/for/symlinks");
	pax_str(&r, "mtime", "-10.5");
	tw_pax(&b, 'x', &r);
	tw_header(&b, &s);
	pax_str(&r, "path", ""); /* an empty value unsets: header name used */
	tw_pax(&b, 'x', &r);
	f.name = "plain";
	tw_header(&b, &f);
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 3);
	x = find(&g, n300);
	CHECK(x && x->e.size == 5 && x->e.mtime == 1700000000 &&
	      x->e.header_off == 1024 && data_is(&b, x, "12345"));
	x = find(&g, "sym");
	CHECK(x && x->e.type == TAR_SYMLINK && x->e.mtime == -11 &&
	      !strcmp(x->link, "../outside/is/fine/for/symlinks"));
	x = find(&g, "plain");
	CHECK(x && x->e.mtime == 42); /* the global mtime */
	got_free(&g);
	free(b.d);
	free(n300);
}

static void test_base256(void)
{
	struct hdr f = {.name = "b256",
			.type = '0',
			.size = 5,
			.mtime = -1000,
			.b256_size = true,
			.b256_mtime = true,
			.fmt = F_GNU};
	struct hdr big = {.name = "bigtime",
			  .type = '0',
			  .mtime = INT64_C(1) << 40,
			  .b256_mtime = true,
			  .fmt = F_GNU};
	const struct got_entry *x;
	struct buf b = {0};
	struct got g;

	tw_header(&b, &f);
	tw_data(&b, "abcde", 5);
	tw_header(&b, &big);
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	x = find(&g, "b256");
	CHECK(x && x->e.mtime == -1000 && x->e.size == 5 &&
	      data_is(&b, x, "abcde"));
	x = find(&g, "bigtime");
	CHECK(x && x->e.mtime == INT64_C(1) << 40);
	got_free(&g);
	free(b.d);
}

static const struct tar_sparse six[] = {
    {0, 10}, {1000, 10}, {2000, 10}, {3000, 10}, {4000, 10}, {5000, 10},
};

static void put_pair(unsigned char *f, uint64_t off, uint64_t len)
{
	put_octal(f, 12, off);
	put_octal(f + 12, 12, len);
}

static void test_old_sparse(void)
{
	struct hdr h = {
	    .name = "old/sparse", .type = 'S', .size = 60, .fmt = F_GNU};
	unsigned char blk[512] = {0}, ext[512] = {0}, data[60];
	const struct got_entry *x;
	struct buf b = {0};
	struct got g;
	size_t i;

	tw_file(&b, "before", "x");
	hdr_fill(blk, &h);
	for (i = 0; i < 4; i++)
		put_pair(blk + 386 + i * 24, six[i].off, six[i].len);
	blk[482] = 1;
	put_octal(blk + 483, 12, 8000);
	set_sum(blk, false, false);
	buf_put(&b, blk, 512);
	put_pair(ext, six[4].off, six[4].len);
	put_pair(ext + 24, six[5].off, six[5].len);
	put_pair(ext + 48, 8000, 0); /* GNU's end marker: an empty segment */
	buf_put(&b, ext, 512);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)('A' + i);
	tw_data(&b, data, sizeof(data));
	tw_file(&b, "after", "y");
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 3);
	x = find(&g, "old/sparse");
	CHECK(x && x->e.type == TAR_REG && x->e.size == 8000 &&
	      x->e.data_len == 60 && x->e.data_off == 2048 &&
	      x->e.nsparse == 6 && x->sp && !memcmp(x->sp, six, sizeof(six)));
	CHECK(data_is(&b, find(&g, "after"), "y"));
	got_free(&g);
	free(b.d);
}

/* The three pax sparse versions, each followed by a plain file. */
static void test_pax_sparse(void)
{
	static const struct tar_sparse two[] = {{100, 5}, {4000, 5}};
	struct hdr h = {.name = "GNUSparseFile.0/x", .type = '0', .size = 10};
	const char *names[] = {"sp00", "sp01", "sp10"};
	const struct got_entry *x;
	struct buf b = {0}, r = {0}, map = {0};
	struct got g;
	size_t i;

	pax_str(&r, "GNU.sparse.size", "8000");
	pax_str(&r, "GNU.sparse.numblocks", "2");
	pax_str(&r, "GNU.sparse.offset", "100");
	pax_str(&r, "GNU.sparse.numbytes", "5");
	pax_str(&r, "GNU.sparse.offset", "4000");
	pax_str(&r, "GNU.sparse.numbytes", "5");
	pax_str(&r, "path", "sp00");
	tw_pax(&b, 'x', &r);
	tw_header(&b, &h);
	tw_data(&b, "aaaaabbbbb", 10);
	pax_str(&r, "GNU.sparse.size", "8000");
	pax_str(&r, "GNU.sparse.map", "100,5,4000,5");
	pax_str(&r, "GNU.sparse.name", "sp01");
	tw_pax(&b, 'x', &r);
	tw_header(&b, &h);
	tw_data(&b, "aaaaabbbbb", 10);
	pax_str(&r, "GNU.sparse.major", "1");
	pax_str(&r, "GNU.sparse.minor", "0");
	pax_str(&r, "GNU.sparse.name", "sp10");
	pax_str(&r, "GNU.sparse.realsize", "8000");
	tw_pax(&b, 'x', &r);
	h.size = 512 + 10;
	tw_header(&b, &h);
	buf_put(&map, "2\n100\n5\n4000\n5\n", 15);
	buf_pad(&map);
	buf_put(&map, "aaaaabbbbb", 10);
	tw_data(&b, map.d, map.n);
	tw_file(&b, "after", "y");
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 4);
	for (i = 0; i < 3; i++) {
		x = find(&g, names[i]);
		CHECK(x && x->e.size == 8000 && x->e.nsparse == 2 &&
		      !memcmp(x->sp, two, sizeof(two)) &&
		      data_is(&b, x, "aaaaabbbbb"));
	}
	CHECK(data_is(&b, find(&g, "after"), "y"));
	got_free(&g);
	free(b.d);
	free(map.d);
}

static void test_types(void)
{
	const char types[] = {'3', '4', '6', 'V', 'Z'};
	const struct got_entry *x;
	struct buf b = {0};
	struct got g;
	size_t i;

	for (i = 0; i < sizeof(types); i++) {
		char name[16];
		struct hdr h = {.name = name, .type = types[i], .size = 3};

		snprintf(name, sizeof(name), "t%c", types[i]);
		tw_header(&b, &h);
		tw_data(&b, "dev", 3);
	}
	tw_file(&b, "last", "z");
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 2);
	x = find(&g, "tZ");
	CHECK(x && x->e.type == TAR_REG && data_is(&b, x, "dev"));
	CHECK(data_is(&b, find(&g, "last"), "z"));
	CHECK_EQ_U64(g.nwarn, 4); /* 3 devices/FIFO + unknown; not 'V' */
	CHECK(strstr(g.warns, "unknown type 'Z'") != NULL);
	got_free(&g);
	free(b.d);
}

struct name_case {
	const char *raw;
	char type;
	const char *want; /* NULL: skipped with a warning */
};

static const struct name_case name_cases[] = {
    {"/abs/x", '0', "abs/x"},
    {"///abs//y", '0', "abs/y"},
    {"./a//b/./c/", '5', "a/b/c"},
    {"a/b/", '0', "a/b"}, /* a regular file ending in "/" is a dir */
    {"..a/b..", '0', "..a/b.."},
    {".", '5', ""},
    {"./", '5', ""},
    {"/", '5', ""},
    {"./.", '5', ""},
    {"a/../b", '0', NULL},
    {"..", '5', NULL},
    {"../x", '0', NULL},
    {"a/b/..", '5', NULL},
    {"", '0', NULL},
    {".", '0', NULL},
    {"./", '2', NULL},
};

static void test_names(void)
{
	size_t i;

	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];
		struct hdr h = {.name = c->raw, .type = c->type, .link = "t"};
		struct buf b = {0};
		struct got g;

		tw_header(&b, &h);
		tw_file(&b, "next", "n");
		tw_end(&b);
		parse_all(b.d, b.n, &g);
		CHECK_EQ_U64(g.rc, 0);
		if (c->want) {
			CHECK(g.n == 2 && !strcmp(g.e[0].path, c->want));
			CHECK(g.nwarn == 0);
			if (g.n == 2 && !strcmp(g.e[0].path, c->want) &&
			    c->raw[strlen(c->raw) - 1] == '/')
				CHECK(g.e[0].e.type == TAR_DIR ||
				      c->type == '2');
		} else {
			CHECK(g.n == 1 && g.nwarn == 1);
		}
		if (g.n == 0 || strcmp(g.e[g.n - 1].path, "next"))
			fprintf(stderr, "name case %zu (%s) failed\n", i,
				c->raw);
		got_free(&g);
		free(b.d);
	}
}

/* NULs and ".." in pax values, too-long names, bad link targets. */
static void test_skips(void)
{
	char *n5000 = repeat_path(5000, "x");
	struct hdr f = {.name = "f", .type = '0'};
	struct hdr hl = {
	    .name = "hl", .type = '1', .link = "a/../../etc/passwd"};
	struct hdr sl = {.name = "sl", .type = '2', .link = ""};
	struct buf b = {0}, r = {0};
	struct got g;

	pax_rec(&r, "path", "a\0b", 3);
	tw_pax(&b, 'x', &r);
	tw_header(&b, &f);
	pax_str(&r, "path", n5000);
	tw_pax(&b, 'x', &r);
	tw_header(&b, &f);
	pax_rec(&r, "linkpath", "x\0y", 3);
	tw_pax(&b, 'x', &r);
	tw_header(&b, &sl);
	tw_header(&b, &hl);
	tw_header(&b, &sl);
	tw_file(&b, "ok", "k");
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 1);
	CHECK_EQ_U64(g.nwarn, 5);
	CHECK(strstr(g.warns, "NUL") != NULL);
	CHECK(strstr(g.warns, "too long") != NULL);
	CHECK(data_is(&b, find(&g, "ok"), "k"));
	got_free(&g);
	free(b.d);
	free(n5000);
}

/* A component of 255 bytes is kept; of 256 (name or hardlink target) the
 * member is skipped, as no lookup could reach it. The too-long message
 * gives the length. */
static void test_components(void)
{
	char c255[300], c256[300], name[600];
	struct hdr f = {.name = "f", .type = '0'};
	struct hdr hl = {.name = "hl", .type = '1'};
	char *n5000 = repeat_path(5000, "x");
	struct buf b = {0}, r = {0};
	struct got g;

	memset(c255, 'c', 255);
	c255[255] = '\0';
	memset(c256, 'd', 256);
	c256[256] = '\0';
	snprintf(name, sizeof(name), "dir/%s", c255);
	pax_str(&r, "path", name);
	tw_pax(&b, 'x', &r);
	tw_header(&b, &f);
	snprintf(name, sizeof(name), "dir/%s/x", c256);
	pax_str(&r, "path", name);
	tw_pax(&b, 'x', &r);
	tw_header(&b, &f);
	pax_str(&r, "linkpath", c256);
	tw_pax(&b, 'x', &r);
	tw_header(&b, &hl);
	pax_str(&r, "path", n5000);
	tw_pax(&b, 'x', &r);
	tw_header(&b, &f);
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	CHECK_EQ_U64(g.n, 1);
	CHECK(g.n == 1 && strlen(g.e[0].path) == 4 + 255);
	CHECK_EQ_U64(g.nwarn, 3);
	CHECK(strstr(g.warns, "a component longer than 255 bytes\n") != NULL);
	CHECK(strstr(g.warns, "longer than 255 bytes in its link target") !=
	      NULL);
	CHECK(strstr(g.warns, "a name too long (5001 bytes; the limit is "
			      "4096)") != NULL);
	got_free(&g);
	free(b.d);
	free(n5000);
}

static void test_ends(void)
{
	struct buf b = {0};
	struct got g;
	size_t one;

	/* One zero block then EOF: complete (GNU-like tolerance). */
	tw_file(&b, "a", "1");
	buf_zero(&b, 512);
	one = b.n;
	parse_all(b.d, b.n, &g);
	CHECK(g.rc == 0 && g.n == 1 && g.nwarn == 0);
	got_free(&g);
	/* No marker at all: complete with a warning. */
	parse_all(b.d, one - 512, &g);
	CHECK(g.rc == 0 && g.n == 1 && g.nwarn == 1);
	got_free(&g);
	/* Garbage after the marker is ignored. */
	buf_zero(&b, 512);
	buf_put(&b, "garbage", 7);
	parse_all(b.d, b.n, &g);
	CHECK(g.rc == 0 && g.n == 1 && g.nwarn == 0);
	got_free(&g);
	/* A lone zero block ends the archive too, with a warning. */
	b.n = one;
	tw_file(&b, "hidden", "2");
	tw_end(&b);
	parse_all(b.d, b.n, &g);
	CHECK(g.rc == 0 && g.n == 1 && g.nwarn == 1);
	CHECK(strstr(g.warns, "lone zero block") != NULL);
	got_free(&g);
	/* Empty input. */
	parse_all(b.d, 0, &g);
	CHECK(g.rc == 0 && g.n == 0);
	got_free(&g);
	free(b.d);
}

/* ---- bad inputs ------------------------------------------------------- */

static void bad_trunc_header(struct buf *b)
{
	tw_file(b, "a", "1");
	tw_file(b, "b", "2");
	b->n -= 512 + 256; /* half of b's header */
}

static void bad_trunc_data(struct buf *b)
{
	struct hdr h = {.name = "./view/bin/x", .type = '0', .size = 1000};

	tw_header(b, &h);
	buf_zero(b, 600);
}

static void bad_checksum(struct buf *b)
{
	static const char data[600];
	struct hdr h = {.name = "a", .type = '0', .size = sizeof(data)};
	struct hdr bad = {.name = "b", .type = '0', .bad_sum = true};

	tw_header(b, &h);
	tw_data(b, data, sizeof(data));
	tw_header(b, &bad); /* at 1536 */
	tw_end(b);
}

static void pax_one(struct buf *b, const char *key, const char *val)
{
	struct hdr f = {.name = "f", .type = '0'};
	struct buf r = {0};

	pax_str(&r, key, val);
	tw_pax(b, 'x', &r);
	tw_header(b, &f);
	tw_end(b);
}

static void pax_raw(struct buf *b, const char *rec)
{
	struct hdr f = {.name = "f", .type = '0'};
	struct buf r = {0};

	buf_put(&r, rec, strlen(rec));
	tw_pax(b, 'x', &r);
	tw_header(b, &f);
	tw_end(b);
}

static void bad_pax_size_2_62(struct buf *b)
{
	pax_one(b, "size", "4611686018427387904");
}

static void bad_pax_size_neg(struct buf *b)
{
	pax_one(b, "size", "-1");
}

static void bad_pax_size_huge(struct buf *b)
{
	pax_one(b, "size", "99999999999999999999999999");
}

static void bad_pax_mtime(struct buf *b)
{
	pax_one(b, "mtime", "12x");
}

static void bad_pax_len_long(struct buf *b)
{
	pax_raw(b, "99 path=a\n");
}

static void bad_pax_len_short(struct buf *b)
{
	pax_raw(b, "5 path=abc\n");
}

static void bad_pax_no_newline(struct buf *b)
{
	pax_raw(b, "11 path=abX");
}

static void bad_pax_no_eq(struct buf *b)
{
	pax_raw(b, "9 pathab\n");
}

static void bad_pax_len_digits(struct buf *b)
{
	pax_raw(b, "x1 path=a\n");
}

static void bad_pax_trailing(struct buf *b)
{
	pax_raw(b, "11 path=ab\n\n");
}

static void bad_pax_1mb_path(struct buf *b)
{
	size_t n = 1u << 20;
	char *p = malloc(n + 1);

	memset(p, 'a', n);
	p[n] = '\0';
	pax_one(b, "path", p);
	free(p);
}

static void bad_long_name_huge(struct buf *b)
{
	struct hdr h = {.name = "././@LongLink",
			.type = 'L',
			.size = 2u << 20,
			.fmt = F_GNU};

	tw_header(b, &h);
	buf_zero(b, 4096);
}

static void bad_trunc_pax(struct buf *b)
{
	struct hdr h = {.name = "x", .type = 'x', .size = 100};

	tw_header(b, &h);
	buf_put(b, "30 path=aaaaaaaaaaaaaaaaaaaaa\n", 30);
}

static void bad_pax_then_eof(struct buf *b)
{
	struct buf r = {0};

	pax_str(&r, "path", "p");
	tw_pax(b, 'x', &r);
}

static void bad_pax_then_end(struct buf *b)
{
	bad_pax_then_eof(b);
	tw_end(b);
}

static void bad_hdr_size_2_62(struct buf *b)
{
	struct hdr h = {.name = "big",
			.type = '0',
			.size = UINT64_C(1) << 62,
			.b256_size = true};

	tw_header(b, &h);
	tw_end(b);
}

static void bad_hdr_size_neg(struct buf *b)
{
	struct hdr h = {.name = "neg",
			.type = '0',
			.size = (uint64_t)-5,
			.b256_size = true};

	tw_header(b, &h);
	tw_end(b);
}

static void bad_hdr_size_chars(struct buf *b)
{
	static const unsigned char f[12] = "12x45678901";
	struct hdr h = {.name = "chars", .type = '0', .raw_size = f};

	tw_header(b, &h);
	tw_end(b);
}

static void bad_sparse_overlap(struct buf *b)
{
	struct hdr f = {.name = "f", .type = '0', .size = 20};
	struct buf r = {0};

	pax_str(&r, "GNU.sparse.size", "100");
	pax_str(&r, "GNU.sparse.map", "0,10,5,10");
	tw_pax(b, 'x', &r);
	tw_header(b, &f);
	buf_zero(b, 512);
	tw_end(b);
}

static void bad_sparse_past_end(struct buf *b)
{
	struct hdr f = {.name = "f", .type = '0', .size = 20};
	struct buf r = {0};

	pax_str(&r, "GNU.sparse.size", "15");
	pax_str(&r, "GNU.sparse.map", "0,10,10,10");
	tw_pax(b, 'x', &r);
	tw_header(b, &f);
	buf_zero(b, 512);
	tw_end(b);
}

static void sparse10(struct buf *b, const char *map)
{
	struct hdr f = {.name = "f", .type = '0', .size = 1024};
	struct buf r = {0};

	pax_str(&r, "GNU.sparse.major", "1");
	pax_str(&r, "GNU.sparse.minor", "0");
	pax_str(&r, "GNU.sparse.realsize", "100");
	tw_pax(b, 'x', &r);
	tw_header(b, &f);
	buf_put(b, map, strlen(map));
	buf_pad(b);
	buf_zero(b, 512);
	tw_end(b);
}

static void bad_sparse10_garbage(struct buf *b)
{
	sparse10(b, "2\nabc\n");
}

static void bad_sparse10_count(struct buf *b)
{
	sparse10(b, "70000\n");
}

static void bad_sparse10_overrun(struct buf *b)
{
	char map[2100];
	size_t i;

	strcpy(map, "500\n");
	for (i = 0; strlen(map) < 2000; i++)
		sprintf(map + strlen(map), "%zu\n1\n", i * 2);
	sparse10(b, map);
}

static void bad_b256_mtime_overflow(struct buf *b)
{
	struct hdr h = {.name = "t", .type = '0', .fmt = F_GNU};
	unsigned char blk[512] = {0};

	hdr_fill(blk, &h);
	memset(blk + 136, 0, 12);
	blk[136] = 0x80;
	blk[137] = 1; /* 2^80 */
	set_sum(blk, false, false);
	buf_put(b, blk, 512);
	tw_end(b);
}

struct bad_case {
	const char *name;
	void (*build)(struct buf *b);
	int rc;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"truncated header", bad_trunc_header, -EIO,
     "archive truncated inside a header at offset 1024"},
    {"truncated data", bad_trunc_data, -EIO,
     "archive truncated inside member data of 'view/bin/x' (offset 1112)"},
    {"bad checksum", bad_checksum, -EINVAL,
     "bad header checksum at offset 1536"},
    {"pax size 2^62", bad_pax_size_2_62, -E2BIG,
     "size 4611686018427387904 too large at offset 0"},
    {"pax size -1", bad_pax_size_neg, -EINVAL, "bad pax size"},
    {"pax size huge", bad_pax_size_huge, -E2BIG, "too large"},
    {"pax mtime", bad_pax_mtime, -EINVAL, "bad pax mtime"},
    {"pax LEN long", bad_pax_len_long, -EINVAL, "bad pax record at offset 0"},
    {"pax LEN short", bad_pax_len_short, -EINVAL, "bad pax record"},
    {"pax no newline", bad_pax_no_newline, -EINVAL, "bad pax record"},
    {"pax no =", bad_pax_no_eq, -EINVAL, "bad pax record"},
    {"pax LEN digits", bad_pax_len_digits, -EINVAL, "bad pax record"},
    {"pax trailing", bad_pax_trailing, -EINVAL, "bad pax record"},
    {"pax 1MB path", bad_pax_1mb_path, -E2BIG,
     "pax header too large (1048590 bytes) at offset 0"},
    {"long name 2MB", bad_long_name_huge, -E2BIG, "long name header too large"},
    {"truncated pax", bad_trunc_pax, -EIO, "inside an extended header"},
    {"pax then EOF", bad_pax_then_eof, -EIO, "after an extended header"},
    {"pax then end", bad_pax_then_end, -EINVAL, "after an extended header"},
    {"size 2^62", bad_hdr_size_2_62, -E2BIG,
     "size 4611686018427387904 too large at offset 0"},
    {"size -5", bad_hdr_size_neg, -EINVAL, "bad size field at offset 0"},
    {"size chars", bad_hdr_size_chars, -EINVAL, "bad size field"},
    {"mtime 2^80", bad_b256_mtime_overflow, -EINVAL, "bad numeric field"},
    {"sparse overlap", bad_sparse_overlap, -EINVAL, "bad sparse map"},
    {"sparse past end", bad_sparse_past_end, -EINVAL, "bad sparse map"},
    {"sparse 1.0 garbage", bad_sparse10_garbage, -EINVAL, "bad sparse map"},
    {"sparse 1.0 count", bad_sparse10_count, -E2BIG, "sparse segments"},
    {"sparse 1.0 overrun", bad_sparse10_overrun, -EINVAL, "overruns"},
};

static void test_bad(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct buf b = {0};
		struct got g;

		c->build(&b);
		parse_all(b.d, b.n, &g);
		CHECK_EQ_U64(g.rc, c->rc);
		CHECK(strstr(g.err, c->msg) != NULL);
		if (g.rc != c->rc || !strstr(g.err, c->msg))
			fprintf(stderr, "bad case '%s': rc %d, '%s'\n", c->name,
				g.rc, g.err);
		got_free(&g);
		free(b.d);
	}
}

/* "Not a tar archive" only before the first valid header: a bad first
 * checksum, or random bytes, leave tar_parser_seen_header() false; a limit
 * hit in the first member does not. */
static void bad_first_checksum(struct buf *b)
{
	struct hdr bad = {.name = "b", .type = '0', .bad_sum = true};

	tw_header(b, &bad);
	tw_end(b);
}

static void test_seen_header(void)
{
	static void (*const builds[])(struct buf *) = {
	    bad_first_checksum, bad_checksum, bad_sparse10_count,
	    bad_pax_size_2_62};
	static const bool want[] = {false, true, true, true};
	unsigned char junk[1024];
	struct tar_parser *p;
	size_t i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	p = tar_parser_new(NULL, NULL, NULL);
	CHECK(p && !tar_parser_seen_header(p));
	CHECK(p && tar_parser_feed(p, junk, sizeof(junk)) == -EINVAL);
	CHECK(p && !tar_parser_seen_header(p));
	tar_parser_free(p);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct buf b = {0};

		builds[i](&b);
		p = tar_parser_new(NULL, NULL, NULL);
		CHECK(p && tar_parser_feed(p, b.d, b.n) != 0);
		CHECK(p && tar_parser_seen_header(p) == want[i]);
		tar_parser_free(p);
		free(b.d);
	}
}

/* A callback error stops the parse; later feeds keep failing. */
static void test_callback_stop(void)
{
	struct got g = {.stop_at = 2};
	struct tar_parser *p = tar_parser_new(got_entry, got_warn, &g);
	struct buf b = {0};

	tw_file(&b, "a", "1");
	tw_file(&b, "b", "2");
	tw_file(&b, "c", "3");
	tw_end(&b);
	CHECK_EQ_U64(tar_parser_feed(p, b.d, b.n), -ECANCELED);
	CHECK_EQ_U64(g.n, 1);
	CHECK_EQ_U64(tar_parser_offset(p), 1536);
	CHECK_EQ_U64(tar_parser_feed(p, b.d, 1), -ECANCELED);
	CHECK_EQ_U64(tar_parser_finish(p), -ECANCELED);
	CHECK(strstr(tar_parser_error(p), "'b'") != NULL);
	tar_parser_free(p);
	tar_parser_free(NULL);
	got_free(&g);
	free(b.d);
}

/* ---- mutations --------------------------------------------------------- */

/* The block holds a valid header checksum. */
static bool is_header(const unsigned char *h)
{
	unsigned char c[512];

	memcpy(c, h, 512);
	set_sum(c, false, false);
	return !memcmp(c + 148, h + 148, 8) && h[0];
}

/* Every feature in one archive. */
static void build_everything(struct buf *b)
{
	struct buf r = {0};
	struct hdr f = {.name = "GNUSparseFile.0/x", .type = '0', .size = 522};
	char *n300 = repeat_path(300, "q");

	pax_str(&r, "GNU.sparse.major", "1");
	pax_str(&r, "GNU.sparse.minor", "0");
	pax_str(&r, "GNU.sparse.name", "sp10");
	pax_str(&r, "GNU.sparse.realsize", "8000");
	pax_str(&r, "mtime", "12.5");
	tw_pax(b, 'x', &r);
	tw_header(b, &f);
	buf_put(b, "2\n100\n5\n4000\n5\n", 15);
	buf_pad(b);
	tw_data(b, "aaaaabbbbb", 10);
	pax_str(&r, "GNU.sparse.size", "8000");
	pax_str(&r, "GNU.sparse.map", "100,5,4000,5");
	pax_str(&r, "path", n300);
	tw_pax(b, 'x', &r);
	f.size = 10;
	tw_header(b, &f);
	tw_data(b, "aaaaabbbbb", 10);
	tw_long(b, 'L', n300);
	tw_long(b, 'K', "target");
	f.type = '2';
	f.size = 0;
	tw_header(b, &f);
	tw_file(b, "./plain/file", "content");
	free(n300);
}

/* Random byte changes (header checksums kept valid so the damage reaches
 * the fields): never a crash, and the same result however it is fed. */
static void test_mutations(void)
{
	struct buf orig = {0}, m = {0};
	unsigned seed = 99;
	size_t i, j, blk, errors = 0;

	build_everything(&orig);
	tw_end(&orig);
	{
		struct got g;

		parse_all(orig.d, orig.n, &g);
		CHECK(g.rc == 0 && g.n == 4 && g.nwarn == 0);
		got_free(&g);
	}
	for (i = 0; i < 3000; i++) {
		struct got g;

		m.n = 0;
		buf_put(&m, orig.d, orig.n);
		for (j = 0; j < 1 + i % 4; j++) {
			seed = seed * 1103515245u + 12345u;
			m.d[(seed >> 4) % m.n] = (unsigned char)(seed >> 20);
		}
		for (blk = 0; blk + 512 <= m.n; blk += 512)
			if (is_header(orig.d + blk))
				set_sum(m.d + blk, false, false);
		if (i % 7 == 0) /* also cut it short */
			m.n = (seed >> 3) % m.n;
		parse_all(m.d, m.n, &g);
		errors += g.rc != 0;
		got_free(&g);
	}
	printf("mutations: %zu of 3000 rejected\n", errors);
	CHECK(errors > 0 && errors < 3000);
	free(orig.d);
	free(m.d);
}

/* ---- against GNU tar -------------------------------------------------- */

#define LONG_DIR                                                               \
	"long/a-directory-name-that-is-quite-long-0123456789-0123456789-"      \
	"0123456789-0123456789-0123456789-0123456789-end"
#define LONG_FILE                                                              \
	"and-a-file-name-that-is-also-long-0123456789-0123456789-0123456789-"  \
	"0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-"   \
	"end.txt"
#define SPARSE_SIZE (3u << 20)

static void put_file(const char *dir, const char *rel, const void *d, size_t n,
		     mode_t mode)
{
	char path[8192];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, d, n) != (ssize_t)n)
		abort();
	close(fd);
	if (chmod(path, mode))
		abort();
}

static void put_at(int fd, off_t off, const char *s)
{
	if (pwrite(fd, s, strlen(s), off) != (ssize_t)strlen(s))
		abort();
}

static void sub(char *out, size_t n, const char *dir, const char *rel)
{
	snprintf(out, n, "%s/%s", dir, rel);
}

static void make_tree(const char *src)
{
	static const char *dirs[] = {"", "dir", "dir/sub", "long", LONG_DIR};
	char path[8192], a[8192];
	unsigned char *big = malloc(200000);
	size_t i;
	int fd;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		sub(path, sizeof(path), src, dirs[i]);
		if (mkdir(path, 0755) && errno != EEXIST)
			abort();
	}
	for (i = 0; i < 200000; i++)
		big[i] = (unsigned char)(i * 7 + i / 251);
	put_file(src, "dir/sub/file.txt", "hello\n", 6, 0644);
	put_file(src, "exec.sh", "#!/bin/sh\n", 10, 0755);
	put_file(src, "suid", "s", 1, 04711);
	put_file(src, "empty", "", 0, 0600);
	put_file(src, "big", big, 200000, 0644);
	put_file(src, LONG_DIR "/" LONG_FILE, "long\n", 5, 0640);
	free(big);
	sub(path, sizeof(path), src, "link");
	if (symlink("dir/sub/file.txt", path))
		abort();
	sub(path, sizeof(path), src, "dangling");
	if (symlink("../nowhere", path))
		abort();
	sub(path, sizeof(path), src, "long/longtarget");
	if (symlink("../" LONG_DIR "/" LONG_FILE, path))
		abort();
	sub(a, sizeof(a), src, "big");
	sub(path, sizeof(path), src, "dir/hard");
	if (link(a, path))
		abort();
	sub(path, sizeof(path), src, "sparse");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, SPARSE_SIZE))
		abort();
	put_at(fd, 65536, "abc");
	put_at(fd, (1 << 20) + 7, "xyz");
	put_at(fd, SPARSE_SIZE - 3, "end");
	close(fd);
}

static unsigned char *read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *d = NULL;
	size_t cap = 0, len = 0, k;

	if (!f)
		return NULL;
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			d = realloc(d, cap);
			if (!d)
				abort();
		}
		k = fread(d + len, 1, cap - len, f);
		len += k;
	} while (k > 0);
	fclose(f);
	*n = len;
	return d;
}

/* The member's logical content rebuilt from the archive bytes. */
static unsigned char *member_content(const struct buf *ar,
				     const struct got_entry *x)
{
	const struct tar_entry *e = &x->e;
	unsigned char *c = calloc(1, e->size + 1);
	uint64_t at = e->data_off;
	size_t i;

	if (e->data_off + e->data_len > ar->n)
		return c;
	if (!x->sp) {
		memcpy(c, ar->d + e->data_off, e->size);
		return c;
	}
	for (i = 0; i < e->nsparse; i++) {
		memcpy(c + x->sp[i].off, ar->d + at, x->sp[i].len);
		at += x->sp[i].len;
	}
	return c;
}

static bool same_regular(const struct buf *ar, const struct got_entry *x,
			 const char *path, const struct stat *st)
{
	unsigned char *want, *have;
	size_t n = 0;
	bool ok;

	if (x->e.size != (uint64_t)st->st_size)
		return false;
	want = read_all(path, &n);
	have = member_content(ar, x);
	ok = want && n == x->e.size && !memcmp(want, have, n);
	free(want);
	free(have);
	return ok;
}

/* One member against the file it came from. */
static bool same_member(const struct buf *ar, const struct got_entry *x,
			const char *src)
{
	char path[8192], lpath[8192], target[8192];
	struct stat st, lst;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", src, x->path);
	if (lstat(path, &st))
		return false;
	if (x->e.mode != (st.st_mode & 07777) || x->e.mtime != st.st_mtime)
		return false;
	switch (x->e.type) {
	case TAR_DIR:
		return S_ISDIR(st.st_mode);
	case TAR_SYMLINK:
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0 || !S_ISLNK(st.st_mode))
			return false;
		target[n] = '\0';
		return !strcmp(target, x->link);
	case TAR_HARDLINK:
		snprintf(lpath, sizeof(lpath), "%s/%s", src, x->link);
		return !lstat(lpath, &lst) && lst.st_ino == st.st_ino;
	case TAR_REG:
		return S_ISREG(st.st_mode) && same_regular(ar, x, path, &st);
	}
	return false;
}

/* Every file under src/rel has exactly one member. */
static void walk(const char *src, const char *rel, const struct got *g,
		 bool skip_long, size_t *count)
{
	char path[8192], r[8192];
	struct dirent *de;
	size_t i, hits = 0;
	DIR *d;

	for (i = 0; i < g->n; i++)
		hits += !strcmp(g->e[i].path, rel);
	CHECK_EQ_U64(hits, 1);
	if (hits != 1)
		fprintf(stderr, "'%s' appears %zu times\n", rel, hits);
	(*count)++;
	snprintf(path, sizeof(path), "%s/%s", src, rel);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(r, sizeof(r), "%s%s%s", rel, *rel ? "/" : "",
			 de->d_name);
		if (skip_long && !strcmp(r, "long"))
			continue;
		walk(src, r, g, skip_long, count);
	}
	closedir(d);
}

struct gnu_case {
	const char *name;
	const char *opts;
	bool sparse; /* "sparse" must come out as a sparse member */
	bool skip_long;
};

static const struct gnu_case gnu_cases[] = {
    {"gnu", "--format=gnu", false, false},
    {"gnu -S", "--format=gnu -S", true, false},
    {"posix", "--format=posix", false, false},
    {"posix -S 0.0", "--format=posix -S --sparse-version=0.0", true, false},
    {"posix -S 0.1", "--format=posix -S --sparse-version=0.1", true, false},
    {"posix -S 1.0", "--format=posix -S --sparse-version=1.0", true, false},
    {"ustar", "--format=ustar --exclude=./long", false, true},
    {"v7", "--format=v7 --exclude=./long", false, true},
};

static void check_gnu_case(const struct gnu_case *c, const char *tmp,
			   const char *src)
{
	char cmd[16384], out[4400];
	const struct got_entry *x;
	struct buf ar = {0};
	size_t i, ok = 0, files = 0;
	struct got g;

	snprintf(out, sizeof(out), "%s/out.tar", tmp);
	snprintf(cmd, sizeof(cmd), "tar -C '%s' %s -cf '%s' . 2>/dev/null", src,
		 c->opts, out);
	CHECK(system(cmd) == 0);
	ar.d = read_all(out, &ar.n);
	CHECK(ar.d != NULL);
	if (!ar.d)
		return;
	parse_all(ar.d, ar.n, &g);
	CHECK_EQ_U64(g.rc, 0);
	for (i = 0; i < g.n; i++) {
		bool same = same_member(&ar, &g.e[i], src);

		ok += same;
		if (!same)
			fprintf(stderr, "%s: member '%s' differs\n", c->name,
				g.e[i].path);
	}
	CHECK_EQ_U64(ok, g.n);
	walk(src, "", &g, c->skip_long, &files);
	CHECK_EQ_U64(files, g.n);
	x = find(&g, "sparse");
	CHECK(x && !x->sp == !c->sparse);
	if (x && c->sparse)
		CHECK(x->e.nsparse >= 3 && x->e.data_len < SPARSE_SIZE / 4);
	x = find(&g, "dir/hard");
	if (!x || x->e.type != TAR_HARDLINK)
		x = find(&g, "big");
	CHECK(x && x->e.type == TAR_HARDLINK);
	printf("GNU tar %s: %zu members, %zu bytes\n", c->name, g.n, ar.n);
	got_free(&g);
	free(ar.d);
}

static void test_gnu_tar(void)
{
	const char *base = getenv("SFFS_TEST_TMP");
	char tmp[4096], src[4200], cmd[4300];
	size_t i;

	if (!base || !*base)
		base = "/tmp";
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", base);
	CHECK(system(cmd) == 0);
	snprintf(tmp, sizeof(tmp), "%s/test_tar.XXXXXX", base);
	if (!mkdtemp(tmp)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(src, sizeof(src), "%s/src", tmp);
	make_tree(src);
	for (i = 0; i < sizeof(gnu_cases) / sizeof(gnu_cases[0]); i++)
		check_gnu_case(&gnu_cases[i], tmp, src);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	test_basic();
	test_ustar_v7_checksums();
	test_gnu_long();
	test_pax();
	test_base256();
	test_old_sparse();
	test_pax_sparse();
	test_types();
	test_names();
	test_skips();
	test_components();
	test_seen_header();
	test_ends();
	test_bad();
	test_callback_stop();
	test_mutations();
	test_gnu_tar();
	return check_done();
}
