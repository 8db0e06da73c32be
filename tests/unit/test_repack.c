/* SPDX-License-Identifier: MIT */
/*
 * test_repack.c - the seekable repack (repack_tarball) on a synthetic tar.
 *
 * Builds a tar by hand, block by block, so the offsets where pieces must
 * start are known by construction and not taken from the tar reader: a
 * pax global header (a piece before the first member), a directory, an
 * empty file, files of exactly REPACK_CHUNK and REPACK_CHUNK+1 bytes, a
 * GNU long name, an old GNU sparse file whose stored data crosses
 * REPACK_CHUNK, a symlink, a hardlink, a file of 3 * REPACK_CHUNK and one
 * byte. Compresses it as plain tar, one gzip member, one zstd frame
 * (streamed: no content size) and uneven zstd frames, repacks each to
 * gzip and to zstd, and checks every output: the same tar stream, piece
 * starts exactly at the expected cuts, every zstd frame with its content
 * size and checksum, the stats, seek points only at piece starts with no
 * windows and small spans, identical bytes whatever the input framing.
 * Then refusals: a bad level, truncated input, input that is not a tar.
 * Needs no external tool.
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

#include <zlib.h>
#include <zstd.h>

#include "sffs/fetch.h"
#include "sffs/repack.h"
#include "sffs/seek.h"

#define BLK 512u
#define CHUNK ((uint64_t)REPACK_CHUNK)
#define MAX_CUTS 64
#define SPACING (1024u * 1024) /* sffs-index's default */

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
	if (p)
		memcpy(b->p + b->len, p, len);
	else
		memset(b->p + b->len, 0, len);
	b->len += len;
}

/* ---- the synthetic tar ---- */

struct tarb {
	struct buf b;
	uint64_t cuts[MAX_CUTS]; /* where pieces must start */
	size_t ncuts;
	uint64_t seed;
};

static void cut(struct tarb *t, uint64_t off)
{
	if (t->ncuts == MAX_CUTS)
		abort();
	t->cuts[t->ncuts++] = off;
}

/* v as n-1 octal digits and a NUL. */
static void octal(unsigned char *f, size_t n, uint64_t v)
{
	size_t i;

	f[n - 1] = '\0';
	for (i = n - 1; i > 0; i--, v >>= 3)
		f[i - 1] = (unsigned char)('0' + (v & 7));
}

/* A GNU header block for name (first 99 bytes) into h. */
static void hdr_init(unsigned char *h, const char *name, char type,
		     uint64_t size, const char *link)
{
	memset(h, 0, BLK);
	memcpy(h, name, strlen(name) < 99 ? strlen(name) : 99);
	octal(h + 100, 8, type == '2' ? 0777 : 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, 1700000000);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar  ", 8); /* GNU magic and version */
}

static void hdr_add(struct tarb *t, unsigned char *h)
{
	unsigned sum = 0;
	size_t i;

	memset(h + 148, ' ', 8);
	for (i = 0; i < BLK; i++)
		sum += h[i];
	octal(h + 148, 7, sum); /* six digits, a NUL, the space stays */
	buf_add(&t->b, h, BLK);
}

/* len bytes of text-like data (compressible, not trivially), padded. */
static void data_add(struct tarb *t, uint64_t len)
{
	static const char *const words[] = {"slurm ", "node ", "lib/",
					    "job\n",  "0x1f ", "munge "};
	uint64_t end = t->b.len + len;

	while (t->b.len < end) {
		const char *w;

		t->seed = t->seed * 6364136223846793005ull + 1442695040888963407ull;
		w = words[(t->seed >> 33) % 6];
		buf_add(&t->b, w,
			strlen(w) < end - t->b.len ? strlen(w)
						   : (size_t)(end - t->b.len));
	}
	buf_add(&t->b, NULL, (BLK - len % BLK) % BLK);
}

/* The cuts inside a member's data: every CHUNK after its start. */
static void data_cuts(struct tarb *t, uint64_t data_len)
{
	uint64_t off;

	for (off = CHUNK; off < data_len; off += CHUNK)
		cut(t, t->b.len + off);
}

/* A member with data_len bytes of data (0 for links and directories). */
static void member(struct tarb *t, const char *name, char type,
		   uint64_t data_len, const char *link)
{
	unsigned char h[BLK];

	cut(t, t->b.len);
	if (strlen(name) > 99) {
		hdr_init(h, "././@LongLink", 'L', strlen(name) + 1, NULL);
		hdr_add(t, h);
		buf_add(&t->b, name, strlen(name) + 1);
		buf_add(&t->b, NULL, (BLK - (strlen(name) + 1) % BLK) % BLK);
	}
	hdr_init(h, name, type, data_len, link);
	hdr_add(t, h);
	data_cuts(t, data_len);
	data_add(t, data_len);
}

/* An old GNU sparse member: 4 MiB with three data segments, the second
 * CHUNK long, so that its stored data is cut once. */
static void sparse_member(struct tarb *t)
{
	static const uint64_t seg[3][2] = {
	    {0, 4096}, {CHUNK, CHUNK}, {4 * CHUNK - 100, 100}};
	uint64_t stored = 4096 + CHUNK + 100;
	unsigned char h[BLK];
	size_t i;

	cut(t, t->b.len);
	hdr_init(h, "d/sparse", 'S', stored, NULL);
	for (i = 0; i < 3; i++) {
		octal(h + 386 + 24 * i, 12, seg[i][0]);
		octal(h + 386 + 24 * i + 12, 12, seg[i][1]);
	}
	octal(h + 483, 12, 4 * CHUNK);
	hdr_add(t, h);
	data_cuts(t, stored);
	data_add(t, stored);
}

static void make_tar(struct tarb *t)
{
	static const char rec[] = "17 comment=hello\n";
	char longname[200];
	unsigned char h[BLK];

	memset(t, 0, sizeof(*t));
	t->seed = 42;
	/* a global header belongs to no member: a piece of its own */
	hdr_init(h, "pax_global_header", 'g', sizeof(rec) - 1, NULL);
	hdr_add(t, h);
	buf_add(&t->b, rec, sizeof(rec) - 1);
	buf_add(&t->b, NULL, BLK - (sizeof(rec) - 1));
	member(t, "d/", '5', 0, NULL);
	member(t, "d/empty", '0', 0, NULL);
	member(t, "d/exact", '0', CHUNK, NULL);
	member(t, "d/plus1", '0', CHUNK + 1, NULL);
	memset(longname, 'n', sizeof(longname) - 1);
	memcpy(longname, "d/", 2);
	longname[sizeof(longname) - 1] = '\0';
	member(t, longname, '0', 1000, NULL);
	sparse_member(t);
	member(t, "d/link", '2', 0, "exact");
	member(t, "d/hard", '1', 0, "d/exact");
	member(t, "d/big", '0', 3 * CHUNK, NULL);
	member(t, "d/tiny", '0', 1, NULL);
	buf_add(&t->b, NULL, 2 * BLK); /* end of archive */
	buf_add(&t->b, NULL, (10240 - t->b.len % 10240) % 10240);
}

/* The piece starts the repack must produce: 0, then every cut. */
static size_t expected_starts(const struct tarb *t, uint64_t *v)
{
	size_t i, n = 0;

	if (t->cuts[0] != 0)
		v[n++] = 0;
	for (i = 0; i < t->ncuts; i++)
		v[n++] = t->cuts[i];
	return n;
}

/* ---- compressed inputs ---- */

static void gz_all(struct buf *out, const struct buf *in)
{
	z_stream zs;
	unsigned char tmp[65536];
	int ret;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY))
		abort();
	zs.next_in = in->p;
	zs.avail_in = (uInt)in->len;
	do {
		zs.next_out = tmp;
		zs.avail_out = sizeof(tmp);
		ret = deflate(&zs, Z_FINISH);
		buf_add(out, tmp, sizeof(tmp) - zs.avail_out);
	} while (ret == Z_OK);
	if (ret != Z_STREAM_END)
		abort();
	deflateEnd(&zs);
}

/* zstd frames of the pieces [cut[i], cut[i+1]); streamed frames (as the
 * zstd command writes from a pipe) do not declare their size. */
static void zs_frames(struct buf *out, const struct buf *in,
		      const size_t *cuts, size_t n)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	unsigned char tmp[65536];
	size_t i;

	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	for (i = 0; i < n; i++) {
		size_t end = i + 1 < n ? cuts[i + 1] : in->len;
		ZSTD_inBuffer zi = {in->p + cuts[i], end - cuts[i], 0};
		size_t left;

		do {
			ZSTD_outBuffer zo = {tmp, sizeof(tmp), 0};

			left = ZSTD_compressStream2(cc, &zo, &zi, ZSTD_e_end);
			if (ZSTD_isError(left))
				abort();
			buf_add(out, tmp, zo.pos);
		} while (left);
	}
	ZSTD_freeCCtx(cc);
}

enum input { IN_TAR, IN_GZIP, IN_ZSTD1, IN_ZSTDN, IN_COUNT };

static void make_inputs(const struct buf *tar, struct buf *in)
{
	const size_t one[] = {0};
	const size_t uneven[] = {0, 100000, 100001, 2 * CHUNK + 7,
				 tar->len - 3};

	buf_add(&in[IN_TAR], tar->p, tar->len);
	gz_all(&in[IN_GZIP], tar);
	zs_frames(&in[IN_ZSTD1], tar, one, 1);
	zs_frames(&in[IN_ZSTDN], tar, uneven, 5);
}

/* ---- files ---- */

static bool write_file(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "wb");
	bool ok;

	if (!f)
		return false;
	ok = fwrite(b->p, 1, b->len, f) == b->len;
	return fclose(f) == 0 && ok;
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

static bool make_tmpdir(char *dir, size_t len)
{
	const char *base = getenv("SFFS_TEST_TMP");

	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(dir, len, "%s/test_repack.XXXXXX", base);
	return mkdtemp(dir) != NULL;
}

/* Repacks the bytes of in (written to dir/in) into dir/out, read into
 * out. The return value and err are repack_tarball's. */
static int run_repack(const char *dir, const struct buf *in,
		      const struct repack_opts *o, struct repack_stats *st,
		      struct buf *out, char *err, size_t errlen)
{
	char ip[300], op[300];
	struct fetch *f;
	int rc;

	snprintf(ip, sizeof(ip), "%s/in", dir);
	snprintf(op, sizeof(op), "%s/out", dir);
	unlink(op);
	if (!write_file(ip, in))
		return -EIO;
	f = fetch_open(ip, NULL, err, errlen);
	if (!f)
		return -EIO;
	rc = repack_tarball(f, op, o, st, err, errlen);
	fetch_free(f);
	if (!rc && !read_file(op, out))
		rc = -EIO;
	if (rc)
		CHECK(access(op, F_OK) != 0); /* no output after a failure */
	unlink(ip);
	unlink(op);
	return rc;
}

/* ---- checking an output ---- */

struct piece {
	uint64_t coff, uoff;
};

/* The zstd frame at b[pos]: appends its bytes to tar, returns its
 * compressed length (0 on failure). Checks content size and checksum. */
static size_t zs_piece(const struct buf *b, size_t pos, struct buf *tar)
{
	size_t clen = ZSTD_findFrameCompressedSize(b->p + pos, b->len - pos);
	unsigned long long fcs;
	size_t at = tar->len;

	if (ZSTD_isError(clen) || b->len - pos < 5)
		return 0;
	fcs = ZSTD_getFrameContentSize(b->p + pos, clen);
	CHECK(fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR);
	CHECK(b->p[pos + 4] & 0x04); /* Content_Checksum_flag */
	if (fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs == ZSTD_CONTENTSIZE_ERROR)
		return 0;
	buf_add(tar, NULL, (size_t)fcs);
	/* ZSTD_decompress checks the checksum and the declared size */
	if (ZSTD_decompress(tar->p + at, (size_t)fcs, b->p + pos, clen) != fcs)
		return 0;
	return clen;
}

/* The gzip member at b[pos], as zs_piece. */
static size_t gz_piece(const struct buf *b, size_t pos, struct buf *tar)
{
	unsigned char tmp[65536];
	z_stream zs;
	int ret;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 31) != Z_OK)
		return 0;
	zs.next_in = b->p + pos;
	zs.avail_in = (uInt)(b->len - pos);
	do {
		zs.next_out = tmp;
		zs.avail_out = sizeof(tmp);
		ret = inflate(&zs, Z_NO_FLUSH);
		buf_add(tar, tmp, sizeof(tmp) - zs.avail_out);
	} while (ret == Z_OK);
	inflateEnd(&zs);
	return ret == Z_STREAM_END ? b->len - pos - zs.avail_in : 0;
}

/* Splits out into pieces (at most max); the decoded stream into tar.
 * Returns the number of pieces, 0 on a bad piece. */
static size_t pieces(const struct buf *out, enum seek_codec c, struct buf *tar,
		     struct piece *pc, size_t max)
{
	size_t pos = 0, n = 0;

	while (pos < out->len && n < max) {
		size_t clen;

		pc[n].coff = pos;
		pc[n].uoff = tar->len;
		clen = c == SEEK_ZSTD ? zs_piece(out, pos, tar)
				      : gz_piece(out, pos, tar);
		if (!clen)
			return 0;
		pos += clen;
		n++;
	}
	return pos == out->len ? n : 0;
}

static bool is_piece(const struct piece *pc, size_t n, uint64_t coff,
		     uint64_t uoff)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pc[i].coff == coff && pc[i].uoff == uoff)
			return true;
	return false;
}

/* Indexes out as sffs-index would: every point at a piece start, no
 * windows, no span above CHUNK plus a quarter of the spacing (frames
 * are grouped until a span holds that much) plus headers. */
static void check_points(const struct buf *out, enum seek_codec c,
			 const struct piece *pc, size_t n, size_t *npoints)
{
	struct seek_indexer *ix = seek_indexer_new(c, SPACING, NULL, NULL);
	struct seek_index *si = NULL;
	size_t i;

	CHECK(ix != NULL);
	if (!ix)
		return;
	CHECK_EQ_U64(seek_indexer_feed(ix, out->p, out->len), 0);
	CHECK_EQ_U64(seek_indexer_finish(ix, &si), 0);
	seek_indexer_free(ix);
	if (!si)
		return;
	CHECK(si->n > 1);
	for (i = 0; i < si->n; i++) {
		CHECK(is_piece(pc, n, si->pts[i].coff, si->pts[i].uoff));
		CHECK_EQ_U64(si->pts[i].wlen, 0);
		CHECK(seek_span_usize(si, i) <= CHUNK + SPACING / 4 + 8192);
	}
	*npoints = si->n;
	seek_index_free(si);
}

struct tcase {
	const char *name;
	enum input in;
	struct repack_opts o;
	enum seek_codec out; /* expected codec */
	int level;	     /* expected level */
};

static void check_output(const struct tcase *tc, const struct tarb *t,
			 const struct buf *in, const struct buf *out,
			 const struct repack_stats *st)
{
	static const enum seek_codec incodec[IN_COUNT] = {
	    SEEK_NONE, SEEK_GZIP, SEEK_ZSTD, SEEK_ZSTD};
	struct piece pc[MAX_CUTS + 1];
	uint64_t want[MAX_CUTS + 1];
	size_t nwant = expected_starts(t, want), n, i, npoints = 0;
	struct buf tar = {0};

	n = pieces(out, tc->out, &tar, pc, MAX_CUTS + 1);
	CHECK_EQ_U64(n, nwant);
	CHECK(tar.len == t->b.len && !memcmp(tar.p, t->b.p, t->b.len));
	for (i = 0; i < n && i < nwant; i++)
		CHECK_EQ_U64(pc[i].uoff, want[i]);
	CHECK_EQ_U64(st->members, nwant);
	CHECK_EQ_U64(st->tar_bytes, t->b.len);
	CHECK_EQ_U64(st->out_bytes, out->len);
	CHECK_EQ_U64(st->in_bytes, in->len);
	CHECK_EQ_U64(st->in_codec, incodec[tc->in]);
	CHECK_EQ_U64(st->out_codec, tc->out);
	CHECK_EQ_U64(st->level, tc->level);
	if (n == nwant)
		check_points(out, tc->out, pc, n, &npoints);
	printf("  %-22s %zu -> %zu bytes, %zu %s, %zu seek points\n",
	       tc->name, in->len, out->len, n, repack_piece_name(tc->out),
	       npoints);
	free(tar.p);
}

/* ---- the cases ---- */

static void check_cases(const char *dir, const struct tarb *t,
			const struct buf *in)
{
	static const struct tcase cases[] = {
	    {"tar -> gzip", IN_TAR, {SEEK_NONE, 0}, SEEK_GZIP, 6},
	    {"tar -> zstd", IN_TAR, {SEEK_ZSTD, 0}, SEEK_ZSTD, 6},
	    {"gzip -> gzip", IN_GZIP, {SEEK_NONE, 0}, SEEK_GZIP, 6},
	    {"gzip -> zstd -1", IN_GZIP, {SEEK_ZSTD, 1}, SEEK_ZSTD, 1},
	    {"zstd 1 frame -> zstd", IN_ZSTD1, {SEEK_NONE, 0}, SEEK_ZSTD, 6},
	    {"zstd frames -> zstd", IN_ZSTDN, {SEEK_NONE, 0}, SEEK_ZSTD, 6},
	    {"zstd -> gzip -9", IN_ZSTD1, {SEEK_GZIP, 9}, SEEK_GZIP, 9},
	};
	struct buf first[2] = {{0}};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *tc = &cases[i];
		struct repack_stats st;
		struct buf out = {0};
		char err[512];
		int rc = run_repack(dir, &in[tc->in], &tc->o, &st, &out, err,
				    sizeof(err));

		CHECK_EQ_U64(rc, 0);
		if (rc)
			fprintf(stderr, "%s: %s\n", tc->name, err);
		else
			check_output(tc, t, &in[tc->in], &out, &st);
		/* same codec and level: the same bytes, whatever the input */
		if (!rc && tc->level == 6 && !first[tc->out == SEEK_ZSTD].p)
			first[tc->out == SEEK_ZSTD] = out;
		else if (!rc && tc->level == 6)
			CHECK(out.len == first[tc->out == SEEK_ZSTD].len &&
			      !memcmp(out.p, first[tc->out == SEEK_ZSTD].p,
				      out.len));
		if (first[tc->out == SEEK_ZSTD].p != out.p)
			free(out.p);
	}
	free(first[0].p);
	free(first[1].p);
}

/* A refusal: rc, and err containing want. */
static void check_refusal(const char *dir, const char *what,
			  const struct buf *in, const struct repack_opts *o,
			  int want_rc, const char *want)
{
	struct repack_stats st;
	struct buf out = {0};
	char err[512];
	int rc = run_repack(dir, in, o, &st, &out, err, sizeof(err));

	CHECK_EQ_U64(rc, want_rc);
	CHECK(strstr(err, want) != NULL);
	printf("  %-22s refused: %s\n", what, err);
	free(out.p);
}

static void check_errors(const char *dir, const struct buf *in)
{
	const struct repack_opts gz10 = {SEEK_GZIP, 10};
	const struct repack_opts zs99 = {SEEK_ZSTD, 99};
	const struct repack_opts none = {SEEK_NONE, -1};
	struct buf half = {0}, junk = {0}, empty = {0};
	unsigned char noise[4096];
	size_t i;

	check_refusal(dir, "gzip level 10", &in[IN_GZIP], &gz10, -EINVAL,
		      "gzip level 10 is not in 1-9");
	check_refusal(dir, "zstd level 99", &in[IN_ZSTD1], &zs99, -EINVAL,
		      "zstd level 99 is not in 1-");
	check_refusal(dir, "level -1", &in[IN_ZSTD1], &none, -EINVAL,
		      "level -1");
	buf_add(&half, in[IN_ZSTD1].p, in[IN_ZSTD1].len / 2);
	check_refusal(dir, "truncated zstd", &half, NULL, -EBADMSG,
		      "truncated");
	for (i = 0; i < sizeof(noise); i++)
		noise[i] = (unsigned char)(i * 7 + (i >> 5));
	buf_add(&empty, noise, sizeof(noise));
	gz_all(&junk, &empty);
	check_refusal(dir, "gzip of no tar", &junk, NULL, -EINVAL, "tar:");
	free(half.p);
	free(junk.p);
	free(empty.p);
}

int main(void)
{
	struct buf in[IN_COUNT] = {{0}};
	struct tarb t;
	char dir[256];
	size_t i;

	if (fetch_global_init())
		return 1;
	make_tar(&t);
	make_inputs(&t.b, in);
	printf("synthetic tar: %zu bytes, %zu cuts\n", t.b.len, t.ncuts);
	if (!make_tmpdir(dir, sizeof(dir))) {
		perror("mkdtemp");
		return 1;
	}
	check_cases(dir, &t, in);
	check_errors(dir, in);
	rmdir(dir);
	for (i = 0; i < IN_COUNT; i++)
		free(in[i].p);
	free(t.b.p);
	fetch_global_cleanup();
	return check_done();
}
