/* SPDX-License-Identifier: MIT */
/*
 * test_seek.c - seek points for gzip, zstd and uncompressed streams.
 *
 * Builds ~40 MiB of deterministic test data (text, zero runs, random and
 * binary-like bytes), compresses it several ways (zlib, gzip, pigz, pigz -i,
 * multi-member gzip, single and multi-frame zstd, pzstd, none), indexes
 * each and checks: points, span digests, determinism under any split of
 * the input, full span decodes and random reads against the original.
 * Then bad inputs: corruption, truncation, trailing bytes, empty input.
 */
#include "check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <zlib.h>
#include <zstd.h>

#include "sffs/seek.h"

#define MIB (1024u * 1024u)
#define DATA_SIZE (40u * MIB)
#define RANDOM_READS 300

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + len)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, p, len);
	b->len += len;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* 1 .. max, log-uniform: many small pieces and some big ones. */
static size_t rnd_piece(uint64_t *s, size_t max)
{
	size_t n = 1 + (size_t)(rnd(s) % (1ull << (rnd(s) % 21)));

	return n < max ? n : max;
}

/* ---- test data ---- */

static void gen_text(struct buf *b, uint64_t *s, size_t len)
{
	static const char *const words[] = {
	    "slurm", "node",   "partition", "job",  "the",    "of",
	    "lib",   "share",  "/opt/view", "user", "munge",  "config",
	    "error", "return", "static",    "int",  "struct", "{",
	    "}",     ";",      "=",	    "0x1f", "if",     "else",
	};
	size_t end = b->len + len;

	while (b->len < end) {
		const char *w =
		    words[rnd(s) % (sizeof(words) / sizeof(words[0]))];
		char sep = rnd(s) % 9 ? ' ' : '\n';

		buf_add(b, w, strlen(w));
		buf_add(b, &sep, 1);
	}
}

static void gen_binary(struct buf *b, uint64_t *s, size_t len)
{
	static const unsigned char ops[] = {0x48, 0x89, 0x8b, 0xe8, 0x0f,
					    0x85, 0x84, 0xc3, 0x00, 0xff,
					    0x74, 0x75, 0x83, 0xc7, 0x45};
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t r = rnd(s);
		unsigned char c = r % 4 ? ops[(r >> 8) % sizeof(ops)]
					: (unsigned char)(r >> 16);

		buf_add(b, &c, 1);
	}
}

static void gen_data(struct buf *b, size_t size, uint64_t seed)
{
	uint64_t s = seed;

	while (b->len < size) {
		size_t len = 1024 + rnd(&s) % (400 * 1024);
		unsigned char chunk[4096];
		size_t i;

		switch (rnd(&s) % 4) {
		case 0:
			gen_text(b, &s, len);
			break;
		case 1:
			memset(chunk, 0, sizeof(chunk));
			for (i = 0; i < len; i += sizeof(chunk))
				buf_add(b, chunk, sizeof(chunk));
			break;
		case 2:
			for (i = 0; i < len; i++) {
				unsigned char c = (unsigned char)rnd(&s);

				buf_add(b, &c, 1);
			}
			break;
		default:
			gen_binary(b, &s, len);
			break;
		}
	}
	b->len = size;
}

/* ---- compressors ---- */

static void deflate_all(z_stream *zs, struct buf *out, int flush)
{
	unsigned char tmp[65536];
	int ret;

	do {
		zs->next_out = tmp;
		zs->avail_out = sizeof(tmp);
		ret = deflate(zs, flush);
		buf_add(out, tmp, sizeof(tmp) - zs->avail_out);
	} while (ret == Z_OK && zs->avail_out == 0);
	if (ret != (flush == Z_FINISH ? Z_STREAM_END : Z_OK))
		abort();
}

/* One gzip member; sync: end with an empty block before the last one, as
 * pigz does (so a point can fall where no output follows in the member). */
static void gz_member(struct buf *out, const unsigned char *p, size_t len,
		      int level, bool sync)
{
	z_stream zs;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY))
		abort();
	zs.next_in = (Bytef *)p;
	zs.avail_in = (uInt)len;
	if (sync && len)
		deflate_all(&zs, out, Z_SYNC_FLUSH);
	deflate_all(&zs, out, Z_FINISH);
	deflateEnd(&zs);
}

/* Members of random sizes (one empty), random levels. */
static void gz_multi(struct buf *out, const struct buf *in, uint64_t seed)
{
	uint64_t s = seed;
	size_t pos = 0, n = 0;

	while (pos < in->len) {
		size_t len = n == 3 ? 0 : (size_t)(rnd(&s) % (3 * MIB));

		if (n % 5 == 1)
			len = 1 + rnd(&s) % 5000; /* tiny members */
		if (len > in->len - pos)
			len = in->len - pos;
		gz_member(out, in->p + pos, len, 1 + (int)(rnd(&s) % 9), n % 2);
		pos += len;
		n++;
	}
}

/* Frames of `frame` bytes with checksums; frame ends are noted in ends. */
static void zstd_frames(struct buf *out, const struct buf *in, size_t frame,
			struct buf *ends)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t pos = 0, bound = ZSTD_compressBound(frame);
	unsigned char *tmp = malloc(bound);

	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
	while (pos < in->len) {
		size_t len = in->len - pos < frame ? in->len - pos : frame;
		size_t r = ZSTD_compress2(cc, tmp, bound, in->p + pos, len);
		uint64_t end;

		if (ZSTD_isError(r))
			abort();
		buf_add(out, tmp, r);
		end = out->len;
		if (ends)
			buf_add(ends, &end, sizeof(end));
		pos += len;
	}
	free(tmp);
	ZSTD_freeCCtx(cc);
}

static bool read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	unsigned char tmp[65536];
	size_t n;

	if (!f)
		return false;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(b, tmp, n);
	fclose(f);
	return true;
}

static bool write_file(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "wb");
	bool ok;

	if (!f)
		return false;
	ok = fwrite(b->p, 1, b->len, f) == b->len;
	return fclose(f) == 0 && ok;
}

static bool have_tool(const char *tool)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Runs "<tool> <args> < data > out" in dir; the output into b. */
static bool run_tool(const char *dir, const char *tool, const char *args,
		     struct buf *b)
{
	char cmd[1024], path[512];
	bool ok;

	if (!have_tool(tool))
		return false;
	snprintf(cmd, sizeof(cmd), "%s %s < '%s/data' > '%s/out'", tool, args,
		 dir, dir);
	if (system(cmd) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/out", dir);
	ok = read_file(path, b);
	unlink(path);
	return ok;
}

/* ---- indexing ---- */

struct cmp {
	const struct buf *orig;
	uint64_t pos;
	bool bad;
};

static int cmp_out(void *arg, const void *data, size_t len)
{
	struct cmp *c = arg;

	if (c->pos + len > c->orig->len ||
	    memcmp(c->orig->p + c->pos, data, len) != 0)
		c->bad = true;
	c->pos += len;
	return 0;
}

/* Indexes b in random pieces (whole when seed is 0; at most `tiny` bytes
 * when tiny is set). The error or warning goes to msg. */
static int index_buf(enum seek_codec c, uint64_t spacing, const struct buf *b,
		     uint64_t seed, size_t tiny, seek_out_cb out, void *arg,
		     struct seek_index **si, char *msg, size_t msglen)
{
	struct seek_indexer *ix = seek_indexer_new(c, spacing, out, arg);
	uint64_t s = seed;
	size_t pos = 0;
	int rc = 0;

	*si = NULL;
	if (!ix)
		return -ENOMEM;
	while (pos < b->len && !rc) {
		size_t n = seed ? rnd_piece(&s, b->len - pos) : b->len - pos;

		if (tiny && n > tiny)
			n = 1 + rnd(&s) % tiny;
		if (n > b->len - pos)
			n = b->len - pos;

		rc = seek_indexer_feed(ix, b->p + pos, n);
		pos += n;
	}
	if (!rc)
		rc = seek_indexer_finish(ix, si);
	if (msg) {
		const char *m =
		    rc ? seek_indexer_error(ix) : seek_indexer_warning(ix);

		snprintf(msg, msglen, "%s", m ? m : "");
	}
	seek_indexer_free(ix);
	return rc;
}

static bool same_index(const struct seek_index *a, const struct seek_index *b)
{
	size_t i;

	if (a->n != b->n || a->usize != b->usize || a->csize != b->csize)
		return false;
	for (i = 0; i < a->n; i++) {
		const struct seek_point *p = &a->pts[i], *q = &b->pts[i];

		if (p->coff != q->coff || p->uoff != q->uoff ||
		    p->bits != q->bits || p->flags != q->flags ||
		    p->wlen != q->wlen ||
		    memcmp(p->digest, q->digest, SEEK_DIGEST) ||
		    (p->wlen && memcmp(p->window, q->window, p->wlen)))
			return false;
	}
	return true;
}

/* ---- decoding ---- */

struct grab {
	const struct buf *orig;
	uint64_t pos;	    /* uncompressed offset of the next byte out */
	uint64_t want, end; /* compare [want, end); stop at end */
	bool bad, stop;
};

static int grab_out(void *arg, const void *data, size_t len)
{
	struct grab *g = arg;
	uint64_t from = g->pos > g->want ? g->pos : g->want;
	uint64_t to = g->pos + len < g->end ? g->pos + len : g->end;

	if (from < to && memcmp(g->orig->p + from,
				(const unsigned char *)data + (from - g->pos),
				to - from) != 0)
		g->bad = true;
	g->pos += len;
	return g->stop && g->pos >= g->end ? 1 : 0;
}

/* Decodes span i from comp in random pieces; 0, 1 (stopped) or -errno. */
static int decode_span(const struct seek_index *si, size_t i,
		       const struct buf *comp, uint64_t *seed, struct grab *g)
{
	struct seek_decoder *d = seek_decoder_new(si, i);
	uint64_t off, len, pos = 0;
	int rc = 0;

	if (!d)
		return -ENOMEM;
	seek_span_crange(si, i, &off, &len);
	g->pos = seek_span_ustart(si, i);
	while (pos < len && !rc) {
		size_t n = rnd_piece(seed, len - pos);

		rc = seek_decoder_feed(d, comp->p + off + pos, n, grab_out, g);
		pos += n;
	}
	if (!rc)
		rc = seek_decoder_finish(d);
	seek_decoder_free(d);
	return rc;
}

/* ---- checks per case ---- */

struct scase {
	const char *name;
	enum seek_codec codec;
	uint64_t spacing;
	size_t min_pts;
	bool windowless; /* every point must be a gzip member start */
	struct buf comp;
	struct buf ends; /* zstd: known frame ends (uint64_t each) */
	int in;		 /* enum input */
	void (*make)(struct scase *t, const struct buf *in, const char *dir);
};

static void check_points(const struct scase *t, const struct seek_index *si,
			 const struct buf *orig)
{
	size_t i, bad = 0;

	CHECK_EQ_U64(si->usize, orig->len);
	CHECK_EQ_U64(si->csize, t->comp.len);
	CHECK(si->n >= t->min_pts);
	CHECK(si->n >= 1 && si->pts[0].uoff == 0 && si->pts[0].coff == 0);
	for (i = 0; i < si->n; i++) {
		const struct seek_point *p = &si->pts[i];
		const unsigned char *at = t->comp.p + p->coff;

		if (i && (p->uoff <= si->pts[i - 1].uoff ||
			  p->coff <= si->pts[i - 1].coff))
			bad++;
		/* window-free restart points (gzip members, zstd frames)
		 * may stand at a quarter of the spacing */
		if (i + 1 < si->n &&
		    seek_span_usize(si, i) <
			    (t->codec != SEEK_NONE && !si->pts[i + 1].wlen
				     ? t->spacing / 4
				     : t->spacing))
			bad++;
		if (t->codec == SEEK_GZIP && (p->flags & SEEK_PT_MEMBER) &&
		    (p->wlen || p->bits || at[0] != 0x1f || at[1] != 0x8b))
			bad++;
		if (t->codec == SEEK_GZIP && !(p->flags & SEEK_PT_MEMBER) &&
		    (!p->wlen || !p->window || p->bits > 7))
			bad++;
		/* a data frame: skippable ones belong to the span before */
		if (t->codec == SEEK_ZSTD && i &&
		    (si->csize - p->coff < 4 ||
		     memcmp(at, "\x28\xb5\x2f\xfd", 4) != 0))
			bad++;
	}
	CHECK_EQ_U64(bad, 0);
	CHECK(si->n == 0 || seek_span_usize(si, si->n - 1) > 0 ||
	      si->usize == 0);
}

/* Every point of a multi-frame zstd file sits on a frame end we made. */
static void check_zstd_ends(const struct scase *t, const struct seek_index *si)
{
	const uint64_t *ends = (const uint64_t *)(const void *)t->ends.p;
	size_t ne = t->ends.len / sizeof(uint64_t), i, j = 0, miss = 0;

	if (!ne)
		return;
	for (i = 1; i < si->n; i++) {
		while (j < ne && ends[j] < si->pts[i].coff)
			j++;
		if (j == ne || ends[j] != si->pts[i].coff)
			miss++;
	}
	CHECK_EQ_U64(miss, 0);
}

static void check_digests(const struct seek_index *si, const struct buf *comp)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t off, len, prev_end = 0;
	size_t i, bad = 0;

	for (i = 0; i < si->n; i++) {
		seek_span_crange(si, i, &off, &len);
		SHA256(comp->p + off, len, md);
		if (memcmp(md, si->pts[i].digest, SEEK_DIGEST) != 0)
			bad++;
		/* spans tile the file; gzip ones may share one byte */
		if (off != prev_end && off + 1 != prev_end)
			bad++;
		prev_end = off + len;
	}
	CHECK_EQ_U64(bad, 0);
	CHECK_EQ_U64(prev_end, comp->len);
}

static void check_find(const struct seek_index *si)
{
	size_t i, bad = 0;

	for (i = 0; i < si->n; i++) {
		uint64_t u = seek_span_ustart(si, i),
			 n = seek_span_usize(si, i);

		if (n && (seek_index_find(si, u) != i ||
			  seek_index_find(si, u + n - 1) != i))
			bad++;
	}
	CHECK_EQ_U64(bad, 0);
}

static void check_full_decode(const struct seek_index *si,
			      const struct buf *comp, const struct buf *orig)
{
	uint64_t seed = 0x5eed;
	size_t i, bad = 0;

	for (i = 0; i < si->n; i++) {
		struct grab g = {.orig = orig,
				 .want = seek_span_ustart(si, i),
				 .end = orig->len};
		int rc = decode_span(si, i, comp, &seed, &g);

		if (rc || g.bad || g.pos != g.want + seek_span_usize(si, i))
			bad++;
	}
	CHECK_EQ_U64(bad, 0);
}

/* Reads [uoff, uoff + len) span by span, stopping early in each. */
static void check_random_reads(const struct seek_index *si,
			       const struct buf *comp, const struct buf *orig)
{
	uint64_t seed = 0xabcdef;
	size_t k, bad = 0;

	for (k = 0; k < RANDOM_READS && si->usize; k++) {
		uint64_t uoff = rnd(&seed) % si->usize;
		uint64_t len = 1 + rnd(&seed) % (300 * 1024);
		uint64_t end = uoff + len < si->usize ? uoff + len : si->usize;

		while (uoff < end) {
			size_t i = seek_index_find(si, uoff);
			uint64_t sstart = seek_span_ustart(si, i);
			uint64_t send = sstart + seek_span_usize(si, i);
			struct grab g = {.orig = orig,
					 .want = uoff,
					 .end = end < send ? end : send,
					 .stop = true};
			int rc = decode_span(si, i, comp, &seed, &g);

			if (uoff < sstart || uoff >= send || g.bad ||
			    g.pos < g.end || (rc != 1 && rc != 0))
				bad++;
			uoff = g.end;
		}
	}
	CHECK_EQ_U64(bad, 0);
}

static void report_windows(const char *name, const struct seek_index *si)
{
	uint64_t sum = 0;
	size_t i, nw = 0;

	for (i = 0; i < si->n; i++) {
		sum += si->pts[i].wlen;
		nw += si->pts[i].wlen != 0;
	}
	printf("  %-13s %9llu -> %9llu B: %3zu points, %3zu windows, "
	       "avg wlen %5llu B, index %zu B\n",
	       name, (unsigned long long)si->usize,
	       (unsigned long long)si->csize, si->n, nw,
	       nw ? (unsigned long long)(sum / nw) : 0ull,
	       seek_index_mem_usage(si));
}

static void run_case(const struct scase *t, const struct buf *orig)
{
	struct seek_index *si = NULL, *si2 = NULL;
	struct cmp c = {.orig = orig};
	int rc;

	CHECK(seek_detect(t->comp.p, t->comp.len) == t->codec);
	rc = index_buf(t->codec, t->spacing, &t->comp, 0, 0, cmp_out, &c, &si,
		       NULL, 0);
	CHECK_EQ_U64(rc, 0);
	if (rc) {
		fprintf(stderr, "%s: index failed: %d\n", t->name, rc);
		return;
	}
	CHECK(!c.bad && c.pos == orig->len);
	check_points(t, si, orig);
	if (t->windowless) {
		size_t k, nw = 0;

		for (k = 0; k < si->n; k++)
			nw += si->pts[k].wlen != 0 ||
			      !(si->pts[k].flags & SEEK_PT_MEMBER);
		CHECK_EQ_U64(nw, 0);
	}
	check_zstd_ends(t, si);
	check_digests(si, &t->comp);
	check_find(si);
	rc = index_buf(t->codec, t->spacing, &t->comp, 0x1234 + t->comp.len, 0,
		       NULL, NULL, &si2, NULL, 0);
	CHECK(rc == 0 && si2 && same_index(si, si2));
	if (t->spacing < MIB) { /* split anywhere, headers included */
		seek_index_free(si2);
		rc = index_buf(t->codec, t->spacing, &t->comp, 99, 16, NULL,
			       NULL, &si2, NULL, 0);
		CHECK(rc == 0 && si2 && same_index(si, si2));
	}
	check_full_decode(si, &t->comp, orig);
	check_random_reads(si, &t->comp, orig);
	report_windows(t->name, si);
	seek_index_free(si);
	seek_index_free(si2);
}

/* ---- bad inputs ---- */

struct bad {
	const char *name;
	enum seek_codec codec;
	int base;		     /* 0: empty, 1: gzip, 2: zstd input */
	size_t cut;		     /* keep len / cut bytes (0: all) */
	void (*prep)(struct buf *b); /* damage; NULL: none */
	int rc;			     /* expected */
	const char *msg; /* in the error or warning; NULL: no warning */
};

static void flip_mid(struct buf *b)
{
	b->p[b->len / 2] ^= 0x55;
}

static void flip_crc(struct buf *b)
{
	b->p[b->len - 8] ^= 1;
}

static void flip_isize(struct buf *b)
{
	b->p[b->len - 1] ^= 1;
}

static void add_garbage(struct buf *b)
{
	buf_add(b, "garbage!", 8);
}

static void add_zeros(struct buf *b)
{
	buf_add(b, "\0\0\0\0\0\0\0", 7);
}

static void add_1f(struct buf *b)
{
	buf_add(b, "\x1f", 1);
}

static void bad_method(struct buf *b)
{
	static const unsigned char h[] = {0x1f, 0x8b, 0x07, 0, 0, 0, 0,
					  0,	0,    3,    1, 2, 3};

	buf_add(b, h, sizeof(h));
}

/* Random bytes go into a raw block: only the checksum sees a flip. */
static void zstd_flip_raw(struct buf *b)
{
	struct buf rand = {0};
	uint64_t s = 7;

	while (rand.len < 65536) {
		uint64_t r = rnd(&s);

		buf_add(&rand, &r, sizeof(r));
	}
	zstd_frames(b, &rand, rand.len, NULL);
	b->p[b->len / 2] ^= 0x01;
	free(rand.p);
}

static void run_bad(const struct bad *t, const struct buf *gz,
		    const struct buf *zs)
{
	const struct buf *base = t->base == 1 ? gz : t->base == 2 ? zs : NULL;
	struct buf in = {0};
	struct seek_index *si = NULL;
	char msg[512];
	int rc;

	if (base)
		buf_add(&in, base->p, t->cut ? base->len / t->cut : base->len);
	if (t->prep)
		t->prep(&in);
	rc = index_buf(t->codec, MIB, &in, 0, 0, NULL, NULL, &si, msg,
		       sizeof(msg));
	CHECK_EQ_U64(rc, t->rc);
	CHECK(t->msg ? strstr(msg, t->msg) != NULL : msg[0] == 0);
	if (rc != t->rc || (t->msg && !strstr(msg, t->msg)))
		fprintf(stderr, "bad input %s: rc %d, \"%s\"\n", t->name, rc,
			msg);
	printf("  %-14s rc %d: %s\n", t->name, rc, msg);
	if (!rc)
		check_digests(si, &in);
	seek_index_free(si);
	free(in.p);
}

static void bad_inputs(const struct buf *gz, const struct buf *zs)
{
	static const struct bad t[] = {
	    {"gzip flipped", SEEK_GZIP, 1, 0, flip_mid, -EBADMSG,
	     "compressed offset"},
	    {"gzip crc", SEEK_GZIP, 1, 0, flip_crc, -EBADMSG,
	     "incorrect data check"},
	    {"gzip isize", SEEK_GZIP, 1, 0, flip_isize, -EBADMSG,
	     "incorrect length check"},
	    {"gzip truncated", SEEK_GZIP, 1, 3, NULL, -EBADMSG,
	     "gzip stream truncated at compressed offset"},
	    {"gzip garbage", SEEK_GZIP, 1, 0, add_garbage, 0,
	     "8 bytes of trailing garbage"},
	    {"gzip zeros", SEEK_GZIP, 1, 0, add_zeros, 0,
	     "7 trailing zero bytes"},
	    {"gzip lone 1f", SEEK_GZIP, 1, 0, add_1f, 0,
	     "1 bytes of trailing garbage"},
	    {"gzip empty", SEEK_GZIP, 0, 0, NULL, -EBADMSG, "empty"},
	    {"gzip method", SEEK_GZIP, 0, 0, bad_method, -EBADMSG,
	     "unknown compression method"},
	    {"zstd flipped", SEEK_ZSTD, 2, 0, flip_mid, -EBADMSG,
	     "compressed offset"},
	    {"zstd truncated", SEEK_ZSTD, 2, 3, NULL, -EBADMSG, "truncated"},
	    {"zstd garbage", SEEK_ZSTD, 2, 0, add_garbage, 0,
	     "8 bytes of trailing garbage"},
	    {"zstd empty", SEEK_ZSTD, 0, 0, NULL, -EBADMSG, "empty"},
	    {"zstd checksum", SEEK_ZSTD, 0, 0, zstd_flip_raw, -EBADMSG, "checksum"},
	    {"none empty", SEEK_NONE, 0, 0, NULL, 0, NULL},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		run_bad(&t[i], gz, zs);
}

/* ---- smaller checks ---- */

static void check_detect(void)
{
	static const struct {
		const char *head;
		size_t len;
		enum seek_codec c;
	} t[] = {
	    {"\x1f\x8b\x08", 3, SEEK_GZIP},
	    {"\x28\xb5\x2f\xfd", 4, SEEK_ZSTD},
	    {"\x50\x2a\x4d\x18", 4, SEEK_ZSTD},
	    {"\x5f\x2a\x4d\x18", 4, SEEK_ZSTD},
	    {"\x60\x2a\x4d\x18", 4, SEEK_NONE},
	    {"\x28\xb5\x2f", 3, SEEK_NONE},
	    {"\x1f", 1, SEEK_NONE},
	    {"ustar", 5, SEEK_NONE},
	    {"", 0, SEEK_NONE},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(seek_detect(t[i].head, t[i].len) == t[i].c);
	CHECK(strcmp(seek_codec_name(SEEK_GZIP), "gzip") == 0);
	CHECK(strcmp(seek_codec_name(SEEK_ZSTD), "zstd") == 0);
	CHECK(strcmp(seek_codec_name(SEEK_NONE), "none") == 0);
}

static int fail_after(void *arg, const void *data, size_t len)
{
	uint64_t *left = arg;

	(void)data;
	if (len >= *left)
		return -ENOSPC;
	*left -= len;
	return 0;
}

/* The out callback's error comes back, and stays. */
static void check_cb_error(const struct buf *gz)
{
	uint64_t left = 5 * MIB;
	struct seek_indexer *ix =
	    seek_indexer_new(SEEK_GZIP, MIB, fail_after, &left);
	struct seek_index *si = NULL;

	CHECK(ix != NULL);
	if (!ix)
		return;
	CHECK_EQ_U64(seek_indexer_feed(ix, gz->p, gz->len), -ENOSPC);
	CHECK_EQ_U64(seek_indexer_feed(ix, gz->p, 1), -ENOSPC);
	CHECK_EQ_U64(seek_indexer_finish(ix, &si), -ENOSPC);
	CHECK(si == NULL);
	seek_indexer_free(ix);
	seek_indexer_free(NULL);
	seek_index_free(NULL);
	seek_decoder_free(NULL);
}

/* A damaged span: the digest sees it; a junk window is refused. */
static void check_bad_span(const struct seek_index *si, const struct buf *gz)
{
	unsigned char md[SHA256_DIGEST_LENGTH], junk[64];
	struct seek_point *p = NULL;
	uint64_t off, len;
	size_t i;

	for (i = 1; i < si->n && !p; i++)
		if (si->pts[i].wlen)
			p = &si->pts[i];
	CHECK(p != NULL);
	if (!p)
		return;
	i = (size_t)(p - si->pts);
	seek_span_crange(si, i, &off, &len);
	gz->p[off + len / 2] ^= 0x10;
	SHA256(gz->p + off, len, md);
	gz->p[off + len / 2] ^= 0x10;
	CHECK(memcmp(md, p->digest, SEEK_DIGEST) != 0);
	memset(junk, 0xa5, sizeof(junk));
	{
		unsigned char *w = p->window;
		uint32_t wl = p->wlen;

		p->window = junk;
		p->wlen = sizeof(junk);
		CHECK(seek_decoder_new(si, i) == NULL);
		p->window = w;
		p->wlen = wl;
	}
	CHECK(seek_decoder_new(si, si->n) == NULL);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int discard(void *arg, const void *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

/* Informational: indexer speed vs gzip -dc. */
static void throughput(const char *dir, const struct buf *gz, uint64_t usize)
{
	struct seek_index *si = NULL;
	char cmd[1024], path[512];
	double t0, t1, t2;
	int rc;

	t0 = now();
	rc = index_buf(SEEK_GZIP, MIB, gz, 0, 0, discard, NULL, &si, NULL, 0);
	t1 = now();
	seek_index_free(si);
	CHECK_EQ_U64(rc, 0);
	snprintf(path, sizeof(path), "%s/tp.gz", dir);
	if (!write_file(path, gz) || !have_tool("gzip"))
		return;
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s' > /dev/null", path);
	t1 -= t0;
	t0 = now();
	rc = system(cmd);
	t2 = now() - t0;
	unlink(path);
	printf("  throughput: indexer %.0f MB/s, gzip -dc %.0f MB/s "
	       "(uncompressed; informational)\n",
	       (double)usize / 1e6 / t1, rc ? 0.0 : (double)usize / 1e6 / t2);
}

/* ---- setup ---- */

static bool make_tmpdir(char *dir, size_t len)
{
	const char *base = getenv("SFFS_TEST_TMP");

	if (base && *base) {
		mkdir(base, 0755);
		snprintf(dir, len, "%s/test_seek.XXXXXX", base);
	} else {
		snprintf(dir, len, "/tmp/test_seek.XXXXXX");
	}
	return mkdtemp(dir) != NULL;
}

static void check_errors(struct buf *gz, const struct buf *zs)
{
	struct seek_index *si = NULL;

	CHECK_EQ_U64(
	    index_buf(SEEK_GZIP, MIB, gz, 0, 0, NULL, NULL, &si, NULL, 0), 0);
	if (si)
		check_bad_span(si, gz);
	seek_index_free(si);
	check_cb_error(gz);
	bad_inputs(gz, zs);
}

enum input { IN_DATA, IN_8M, IN_3M, IN_BIN, IN_COUNT };

static void make_inputs(struct buf *in)
{
	gen_data(&in[IN_DATA], DATA_SIZE, 0x9e3779b97f4a7c15ull);
	buf_add(&in[IN_8M], in[IN_DATA].p, 8 * MIB);
	buf_add(&in[IN_3M], in[IN_DATA].p, 3 * MIB);
	gen_binary(&in[IN_BIN], &(uint64_t){42}, 8 * MIB);
}

static void make_zlib(struct scase *t, const struct buf *in, const char *dir)
{
	(void)dir;
	gz_member(&t->comp, in->p, in->len, 6, false);
}

static void make_gzip(struct scase *t, const struct buf *in, const char *dir)
{
	(void)in;
	run_tool(dir, "gzip", "-c", &t->comp);
}

static void make_pigz(struct scase *t, const struct buf *in, const char *dir)
{
	(void)in;
	run_tool(dir, "pigz", "-c -p 2", &t->comp);
}

static void make_pigz_i(struct scase *t, const struct buf *in, const char *dir)
{
	(void)in;
	run_tool(dir, "pigz", "-c -i -p 2", &t->comp);
}

static void make_multi(struct scase *t, const struct buf *in, const char *dir)
{
	(void)dir;
	gz_multi(&t->comp, in, in->len);
}

/* Members of 256 KiB, as sffs-index --repack writes them. */
static void make_small_members(struct scase *t, const struct buf *in,
			       const char *dir)
{
	size_t pos;

	(void)dir;
	for (pos = 0; pos < in->len; pos += 256 * 1024) {
		size_t len = in->len - pos < 256 * 1024 ? in->len - pos
							: 256 * 1024;

		gz_member(&t->comp, in->p + pos, len, 6, 0);
	}
}

static void make_zstd_1(struct scase *t, const struct buf *in, const char *dir)
{
	(void)dir;
	zstd_frames(&t->comp, in, in->len, NULL);
}

static void make_zstd_1m(struct scase *t, const struct buf *in, const char *dir)
{
	(void)dir;
	zstd_frames(&t->comp, in, MIB, &t->ends);
}

static void make_zstd_100k(struct scase *t, const struct buf *in,
			   const char *dir)
{
	(void)dir;
	zstd_frames(&t->comp, in, 100 * 1024, &t->ends);
}

static void make_pzstd(struct scase *t, const struct buf *in, const char *dir)
{
	(void)in;
	run_tool(dir, "pzstd", "-q -c -p 2", &t->comp);
}

static void make_none(struct scase *t, const struct buf *in, const char *dir)
{
	(void)dir;
	buf_add(&t->comp, in->p, in->len);
}

#define CASE(n, c, sp, mp, i, mk)                                              \
	{                                                                      \
		.name = n, .codec = c, .spacing = sp, .min_pts = mp, .in = i,  \
		.make = mk                                                     \
	}

int main(void)
{
	struct scase t[] = {
	    CASE("zlib", SEEK_GZIP, MIB, 30, IN_DATA, make_zlib),
	    CASE("gzip", SEEK_GZIP, MIB, 30, IN_DATA, make_gzip),
	    CASE("pigz", SEEK_GZIP, MIB, 30, IN_DATA, make_pigz),
	    CASE("pigz -i", SEEK_GZIP, MIB, 30, IN_DATA, make_pigz_i),
	    CASE("multi-member", SEEK_GZIP, MIB, 20, IN_DATA, make_multi),
	    {.name = "small members", .codec = SEEK_GZIP, .spacing = MIB,
	     .min_pts = 35, .in = IN_DATA, .make = make_small_members,
	     .windowless = true},
	    CASE("multi 64K", SEEK_GZIP, 64 * 1024, 60, IN_8M, make_multi),
	    CASE("binary", SEEK_GZIP, MIB, 7, IN_BIN, make_zlib),
	    CASE("zstd 1 frame", SEEK_ZSTD, MIB, 1, IN_3M, make_zstd_1),
	    CASE("zstd frames", SEEK_ZSTD, MIB, 40, IN_DATA, make_zstd_1m),
	    CASE("zstd 100K", SEEK_ZSTD, MIB, 35, IN_DATA, make_zstd_100k),
	    CASE("pzstd", SEEK_ZSTD, MIB, 2, IN_DATA, make_pzstd),
	    CASE("none", SEEK_NONE, MIB, 40, IN_DATA, make_none),
	};
	const size_t nt = sizeof(t) / sizeof(t[0]);
	struct buf in[IN_COUNT] = {{0}};
	char dir[256], path[300];
	size_t i;

	check_detect();
	make_inputs(in);
	if (!make_tmpdir(dir, sizeof(dir))) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/data", dir);
	CHECK(write_file(path, &in[IN_DATA]));
	for (i = 0; i < nt; i++) {
		t[i].make(&t[i], &in[t[i].in], dir);
		/* A case whose tool (pigz, zstd) is missing fails: a test
		 * that cannot run must not pass. */
		CHECK(t[i].comp.len > 0);
		if (t[i].comp.len)
			run_case(&t[i], &in[t[i].in]);
		else
			printf("  %-14s FAILED: its tool is missing\n",
			       t[i].name);
	}
	unlink(path);
	check_errors(&t[0].comp, &t[8].comp);
	throughput(dir, t[1].comp.len ? &t[1].comp : &t[0].comp,
		   in[IN_DATA].len);
	rmdir(dir);
	for (i = 0; i < nt; i++) {
		free(t[i].comp.p);
		free(t[i].ends.p);
	}
	for (i = 0; i < IN_COUNT; i++)
		free(in[i].p);
	return check_done();
}
