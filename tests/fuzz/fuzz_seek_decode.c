/* SPDX-License-Identifier: MIT */
/*
 * fuzz_seek_decode.c - span decoders against corrupted compressed bytes.
 *
 * At start-up a fixed sample (~400 KiB of text, runs and noise) is
 * compressed as a two-member gzip file and as a multi-frame zstd file with
 * checksums, and both are indexed (spacing 64 KiB). Each input then picks a
 * codec and a span and gives the bytes to decode:
 *   byte 0: bit 0 codec (0 gzip, 1 zstd); bit 1 mode (0 raw, 1 patch)
 *   byte 1: span number (modulo the number of spans)
 *   raw:   the rest is the span's compressed input, fed in random pieces;
 *   patch: the rest is a list of 3-byte edits (offset hi, offset lo, xor)
 *          applied to the span's real bytes; an edit with xor 0 cuts the
 *          input at that offset.
 * The decoder must return 0, -EBADMSG or -EIO, never emit more than the
 * span's size, and decode the unmodified bytes to exactly the sample.
 *
 * With FUZZ_DUMP_SEEDS=DIR in the environment, start-up also writes one raw
 * and one patch seed per span to DIR (how tests/fuzz/corpus/ was made).
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>

#include <zlib.h>
#include <zstd.h>

#include "sffs/seek.h"

#define SAMPLE_SIZE (400u * 1024)
#define ZSTD_FRAME (96u * 1024)

struct sample {
	unsigned char *plain;
	struct fuzz_buf comp[2]; /* [0] gzip, [1] zstd */
	struct seek_index *index[2];
};

/* libFuzzer calls LLVMFuzzerTestOneInput with no context; the sample is
 * built once and never changes after LLVMFuzzerInitialize. */
static struct sample sample;

static void gen_plain(unsigned char *p, size_t len)
{
	static const char words[] = "slurm node job lib share view munge ";
	uint64_t s = 42;
	size_t i = 0;

	while (i < len) {
		uint64_t r = fuzz_rng(&s);
		size_t run = 512 + (size_t)(r % 8192), k;

		for (k = 0; k < run && i < len; k++, i++) {
			switch ((r >> 20) % 3) {
			case 0:
				p[i] =
				    (unsigned char)words[(i + (r >> 32)) %
							 (sizeof(words) - 1)];
				break;
			case 1:
				p[i] = 0;
				break;
			default:
				p[i] = (unsigned char)fuzz_rng(&s);
				break;
			}
		}
	}
}

static void gz_member(struct fuzz_buf *out, const unsigned char *p, size_t len)
{
	z_stream zs = {0};
	unsigned char tmp[16384];
	int ret;

	if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zs.next_in = (unsigned char *)p;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = tmp;
		zs.avail_out = sizeof(tmp);
		ret = deflate(&zs, Z_FINISH);
		if (fuzz_buf_add(out, tmp, sizeof(tmp) - zs.avail_out))
			abort();
	} while (ret == Z_OK);
	if (ret != Z_STREAM_END)
		abort();
	deflateEnd(&zs);
}

static void zstd_frames(struct fuzz_buf *out, const unsigned char *p,
			size_t len)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t off, cap = ZSTD_compressBound(ZSTD_FRAME);
	unsigned char *tmp = malloc(cap);

	if (!cc || !tmp)
		abort();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	for (off = 0; off < len; off += ZSTD_FRAME) {
		size_t n = len - off < ZSTD_FRAME ? len - off : ZSTD_FRAME;
		size_t r = ZSTD_compress2(cc, tmp, cap, p + off, n);

		if (ZSTD_isError(r) || fuzz_buf_add(out, tmp, r))
			abort();
	}
	free(tmp);
	ZSTD_freeCCtx(cc);
}

static int ignore(void *arg, const void *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

static struct seek_index *build_index(enum seek_codec c,
				      const struct fuzz_buf *in)
{
	struct seek_indexer *ix = seek_indexer_new(c, 64 * 1024, ignore, NULL);
	struct seek_index *si = NULL;

	if (!ix || seek_indexer_feed(ix, in->p, in->len) ||
	    seek_indexer_finish(ix, &si) || si->n < 3 ||
	    si->usize != SAMPLE_SIZE)
		abort();
	seek_indexer_free(ix);
	return si;
}

static void write_seed(const char *dir, int codec, int mode, size_t span,
		       const void *body, size_t len)
{
	char path[4096];
	unsigned char head[2] = {(unsigned char)(codec | mode << 1),
				 (unsigned char)span};
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%s-span%zu", dir,
		 codec ? "zstd" : "gzip", mode ? "patch" : "raw", span);
	f = fopen(path, "wb");
	if (!f || fwrite(head, 1, 2, f) != 2 || fwrite(body, 1, len, f) != len)
		abort();
	fclose(f);
}

static void dump_seeds(const char *dir)
{
	/* patch: flip one bit mid-span, then cut the input short */
	const unsigned char patch[] = {0x01, 0x00, 0x10, 0x02, 0x00, 0x00};
	int c;
	size_t i;

	for (c = 0; c < 2; c++) {
		for (i = 0; i < sample.index[c]->n; i++) {
			uint64_t off, len;

			seek_span_crange(sample.index[c], i, &off, &len);
			write_seed(dir, c, 0, i, sample.comp[c].p + off, len);
			write_seed(dir, c, 1, i, patch, sizeof(patch));
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dump = getenv("FUZZ_DUMP_SEEDS");

	(void)argc;
	(void)argv;
	sample.plain = malloc(SAMPLE_SIZE);
	if (!sample.plain)
		abort();
	gen_plain(sample.plain, SAMPLE_SIZE);
	sample.comp[0].max = sample.comp[1].max = SIZE_MAX;
	gz_member(&sample.comp[0], sample.plain, SAMPLE_SIZE / 2);
	gz_member(&sample.comp[0], sample.plain + SAMPLE_SIZE / 2,
		  SAMPLE_SIZE / 2);
	zstd_frames(&sample.comp[1], sample.plain, SAMPLE_SIZE);
	sample.index[0] = build_index(SEEK_GZIP, &sample.comp[0]);
	sample.index[1] = build_index(SEEK_ZSTD, &sample.comp[1]);
	if (dump)
		dump_seeds(dump);
	return 0;
}

struct cmp {
	const unsigned char *want;
	size_t len, got;
	bool differs;
};

static int compare(void *arg, const void *data, size_t len)
{
	struct cmp *c = arg;

	FUZZ_CHECK(len <= c->len - c->got);
	if (memcmp(c->want + c->got, data, len) != 0)
		c->differs = true;
	c->got += len;
	return 0;
}

/* The span's real bytes with the input's edits applied; *len is cut at an
 * edit whose xor is 0. Returns a malloc'd copy. */
static unsigned char *patched(const unsigned char *span, size_t *len,
			      const uint8_t *edits, size_t nedits)
{
	unsigned char *p = malloc(*len ? *len : 1);
	size_t k;

	if (!p)
		abort();
	memcpy(p, span, *len);
	for (k = 0; k + 3 <= nedits; k += 3) {
		size_t at = ((size_t)edits[k] << 8 | edits[k + 1]);

		if (at >= *len)
			continue;
		if (edits[k + 2] == 0)
			*len = at;
		else
			p[at] ^= edits[k + 2];
	}
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct seek_index *si;
	const unsigned char *comp, *in;
	unsigned char *copy = NULL;
	struct seek_decoder *d;
	struct cmp c = {0};
	uint64_t off, clen, seed = fuzz_seed(data, size);
	size_t i, len, pos = 0;
	int rc = 0, codec;

	if (size < 2)
		return 0;
	codec = data[0] & 1;
	si = sample.index[codec];
	comp = sample.comp[codec].p;
	i = data[1] % si->n;
	seek_span_crange(si, i, &off, &clen);
	if (data[0] & 2) {
		len = (size_t)clen;
		in = copy = patched(comp + off, &len, data + 2, size - 2);
	} else {
		in = data + 2;
		len = size - 2;
	}
	c.want = sample.plain + seek_span_ustart(si, i);
	c.len = (size_t)seek_span_usize(si, i);
	d = seek_decoder_new(si, i);
	FUZZ_CHECK(d != NULL);
	while (pos < len && rc == 0) {
		size_t n = fuzz_piece(&seed, len - pos);

		rc = seek_decoder_feed(d, in + pos, n, compare, &c);
		pos += n;
	}
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EIO);
	if (rc == 0)
		rc = seek_decoder_finish(d);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EIO);
	FUZZ_CHECK(rc != 0 || c.got == c.len);
	if (len == clen && memcmp(in, comp + off, len) == 0)
		FUZZ_CHECK(rc == 0 && !c.differs);
	seek_decoder_free(d);
	free(copy);
	return 0;
}
