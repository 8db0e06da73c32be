/* SPDX-License-Identifier: MIT */
/*
 * seek_zstd.c - zstd seek points at frame starts, and span decoding.
 *
 * ZSTD_decompressStream() returns 0 exactly when a frame is decoded and
 * flushed, and never reads past the frame's end in that call, so the
 * compressed offset at that moment is where the next frame starts. A point
 * goes there when far enough from the last one; it stays pending until
 * output follows, so skippable (and empty) frames move it forward: they
 * belong to the span before.
 *
 * zstd's streaming decoder does not check a frame's declared content size
 * when the frame ends in an empty last block (its one-shot path, taken
 * when the whole frame is in one input buffer, does). The indexer checks it
 * itself, so whether a stream is accepted never depends on how the input
 * was split (found by tests/fuzz/fuzz_seek_zstd).
 */
#include "seek_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

/* ZSTD_FRAMEHEADERSIZE_MAX, which zstd.h only has for static linking. */
#define ZS_HEAD_MAX 18

struct zs_ix {
	ZSTD_DCtx *dctx;
	unsigned char *obuf; /* SEEK_IX_OUTBUF */
	uint64_t frames;     /* frames completed */
	uint64_t frame_off;  /* where the current frame started */
	bool in_frame;	     /* bytes of an unfinished frame consumed */
	bool trailing;
	unsigned char head[ZS_HEAD_MAX]; /* first bytes of the current frame */
	size_t hlen;
	uint64_t fout; /* bytes the current frame has produced */
};

static int zs_ix_init(struct seek_indexer *ix)
{
	struct zs_ix *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	ix->cs = z;
	z->dctx = ZSTD_createDCtx();
	z->obuf = malloc(SEEK_IX_OUTBUF);
	if (!z->dctx || !z->obuf)
		return -ENOMEM;
	return 0;
}

static void zs_ix_free(struct seek_indexer *ix)
{
	struct zs_ix *z = ix->cs;

	if (!z)
		return;
	ZSTD_freeDCtx(z->dctx);
	free(z->obuf);
	free(z);
	ix->cs = NULL;
}

static int zs_error(struct seek_indexer *ix, struct zs_ix *z, size_t ret)
{
	if (ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation)
		return -ENOMEM;
	/* not a frame where one could start: trailing bytes, as gzip has */
	if (ZSTD_getErrorCode(ret) == ZSTD_error_prefix_unknown &&
	    z->frames > 0) {
		z->trailing = true;
		z->in_frame = false;
		return 0;
	}
	/* zstd does not say where inside the frame: name the frame */
	return seek_ix_fail(
	    ix, "zstd: %s in the frame at compressed offset %llu",
	    ZSTD_getErrorName(ret), (unsigned long long)z->frame_off);
}

/* Keeps the start of the current frame (for its header) and counts its
 * output. */
static void zs_track(struct zs_ix *z, const unsigned char *p, size_t len,
		     size_t out)
{
	size_t n = ZS_HEAD_MAX - z->hlen;

	if (n > len)
		n = len;
	memcpy(z->head + z->hlen, p, n);
	z->hlen += n;
	z->fout += out;
}

/* Only zstd frames and skippable frames: libzstd may also be built to
 * read legacy (pre-1.0) frames, which it decodes differently in pieces
 * than in one go (found by tests/fuzz/fuzz_seek_zstd). */
static bool zs_magic_ok(const unsigned char *h)
{
	uint32_t m = (uint32_t)h[0] | (uint32_t)h[1] << 8 |
		     (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;

	return m == ZSTD_MAGICNUMBER || (m & 0xFFFFFFF0u) == 0x184D2A50u;
}

static int zs_frame_end(struct seek_indexer *ix, struct zs_ix *z)
{
	unsigned long long fcs = ZSTD_getFrameContentSize(z->head, z->hlen);

	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR &&
	    fcs != z->fout)
		return seek_ix_fail(
		    ix,
		    "zstd: frame at compressed offset %llu holds %llu bytes, "
		    "its header says %llu",
		    (unsigned long long)z->frame_off,
		    (unsigned long long)z->fout, fcs);
	z->hlen = 0;
	z->fout = 0;
	z->frames++;
	z->in_frame = false;
	z->frame_off = ix->coff;
	if (!seek_ix_want(ix, true))
		return 0;
	return seek_ix_point(ix, 0, 0, NULL, 0);
}

static int zs_ix_feed(struct seek_indexer *ix, const unsigned char *p,
		      size_t len)
{
	struct zs_ix *z = ix->cs;
	ZSTD_inBuffer in = {p, len, 0};
	int rc = 0;

	while (!z->trailing && !rc) {
		ZSTD_outBuffer out = {z->obuf, SEEK_IX_OUTBUF, 0};
		size_t pos0 = in.pos;
		size_t ret = ZSTD_decompressStream(z->dctx, &out, &in);

		rc = seek_ix_consume(ix, p + pos0, in.pos - pos0);
		zs_track(z, p + pos0, in.pos - pos0, out.pos);
		if (!rc && z->hlen >= 4 && !zs_magic_ok(z->head))
			ret = (size_t)-ZSTD_error_prefix_unknown;
		if (!rc && ZSTD_isError(ret))
			rc = zs_error(ix, z, ret);
		if (!rc && !z->trailing)
			rc = seek_ix_output(ix, z->obuf, out.pos);
		if (rc || z->trailing)
			break;
		if (ret == 0)
			rc = zs_frame_end(ix, z);
		else if (in.pos > pos0)
			z->in_frame = true;
		if (in.pos == in.size && out.pos < out.size)
			break;
	}
	if (!rc && z->trailing)
		rc = seek_ix_consume(ix, p + in.pos, in.size - in.pos);
	return rc;
}

static int zs_ix_finish(struct seek_indexer *ix)
{
	struct zs_ix *z = ix->cs;

	if (z->trailing) {
		seek_ix_warn(ix,
			     "zstd: %llu bytes of trailing garbage ignored at "
			     "compressed offset %llu",
			     (unsigned long long)(ix->coff - z->frame_off),
			     (unsigned long long)z->frame_off);
		return 0;
	}
	if (!ix->coff)
		return seek_ix_fail(ix, "zstd: empty input");
	if (z->in_frame || !z->frames)
		return seek_ix_fail(ix,
				    "zstd stream truncated at compressed "
				    "offset %llu",
				    (unsigned long long)ix->coff);
	return 0;
}

/* ---- span decoder ---- */

struct zs_dec {
	ZSTD_DCtx *dctx;
	unsigned char *obuf; /* SEEK_DEC_OUTBUF */
};

static int zs_dec_init(struct seek_decoder *d)
{
	struct zs_dec *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	d->cs = z;
	z->dctx = ZSTD_createDCtx();
	z->obuf = malloc(SEEK_DEC_OUTBUF);
	if (!z->dctx || !z->obuf)
		return -ENOMEM;
	return 0;
}

static int zs_dec_reuse(struct seek_decoder *d)
{
	struct zs_dec *z = d->cs;

	if (!z->dctx || !z->obuf ||
	    ZSTD_isError(ZSTD_DCtx_reset(z->dctx, ZSTD_reset_session_only)))
		return -EIO;
	return 0;
}

static void zs_dec_free(struct seek_decoder *d)
{
	struct zs_dec *z = d->cs;

	if (!z)
		return;
	ZSTD_freeDCtx(z->dctx);
	free(z->obuf);
	free(z);
	d->cs = NULL;
}

static int zs_dec_feed(struct seek_decoder *d, const unsigned char *p,
		       size_t len)
{
	struct zs_dec *z = d->cs;
	ZSTD_inBuffer in = {p, len, 0};
	int rc = 0;

	while (seek_dec_left(d) && !rc) {
		uint64_t left = seek_dec_left(d);
		ZSTD_outBuffer out = {
		    z->obuf,
		    left < SEEK_DEC_OUTBUF ? (size_t)left : SEEK_DEC_OUTBUF,
		    0,
		};
		size_t ret = ZSTD_decompressStream(z->dctx, &out, &in);

		if (ZSTD_isError(ret))
			return ZSTD_getErrorCode(ret) ==
				       ZSTD_error_memory_allocation
				   ? -ENOMEM
				   : -EBADMSG;
		rc = seek_dec_output(d, z->obuf, out.pos);
		if (in.pos == in.size && out.pos < out.size)
			break;
	}
	return rc;
}

const struct seek_ops seek_zstd_ops = {
    .ix_init = zs_ix_init,
    .ix_free = zs_ix_free,
    .ix_feed = zs_ix_feed,
    .ix_finish = zs_ix_finish,
    .dec_init = zs_dec_init,
    .dec_free = zs_dec_free,
    .dec_feed = zs_dec_feed,
    .dec_reuse = zs_dec_reuse,
};
