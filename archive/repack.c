/* SPDX-License-Identifier: MIT */
/*
 * repack.c - the seekable repack: pass 1 finds the cut points (member
 * starts, every REPACK_CHUNK of a member's data), pass 2 decompresses the
 * input again and writes it through an output codec that starts a new
 * piece (gzip member, zstd frame) at every cut. The cut logic and the
 * write loop know no codec; a codec is a table of function pointers.
 */
#include "sffs/repack.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "sffs/tar.h"
#include "sffs/util.h"

#define OUTBUF (256u * 1024)

/* Where pieces start, in uncompressed offsets (strictly ascending). */
struct cuts {
	uint64_t *v;
	size_t n, cap;
};

static int cuts_add(struct cuts *c, uint64_t off)
{
	if (c->n && off <= c->v[c->n - 1])
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4096;
		uint64_t *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = off;
	return 0;
}

/* ---- pass 1: cut points ---- */

struct scan {
	struct seek_indexer *ix;
	struct tar_parser *tp;
	struct cuts *cuts;
};

static int scan_entry(void *arg, const struct tar_entry *e)
{
	struct scan *s = arg;
	uint64_t off;
	int rc = cuts_add(s->cuts, e->header_off);

	for (off = REPACK_CHUNK; !rc && off < e->data_len; off += REPACK_CHUNK)
		rc = cuts_add(s->cuts, e->data_off + off);
	return rc;
}

static int scan_plain(void *arg, const void *data, size_t len)
{
	struct scan *s = arg;

	return tar_parser_feed(s->tp, data, len);
}

static int scan_compressed(void *arg, const void *data, size_t len)
{
	struct scan *s = arg;

	return seek_indexer_feed(s->ix, data, len);
}

static enum seek_codec detect(struct fetch *in)
{
	unsigned char head[16];
	size_t n = fetch_size(in) < sizeof(head) ? (size_t)fetch_size(in)
						 : sizeof(head);

	if (fetch_range(in, 0, n, head, 0))
		return SEEK_NONE;
	return seek_detect(head, n);
}

/* A decompressor is a seek indexer whose points are too far apart to
 * matter: the one place that knows every input codec. */
#define NO_POINTS (UINT64_C(1) << 62)

/* Fills cuts and *usize (the tar stream's length). */
static int scan_members(struct fetch *in, enum seek_codec codec,
			struct cuts *cuts, uint64_t *usize, char *err,
			size_t errlen)
{
	struct scan s = {.cuts = cuts};
	struct seek_index *si = NULL;
	int rc = -ENOMEM;

	s.tp = tar_parser_new(scan_entry, NULL, &s);
	s.ix = seek_indexer_new(codec, NO_POINTS, scan_plain, &s);
	if (s.tp && s.ix)
		rc = fetch_stream(in, 0, 0, scan_compressed, &s);
	if (!rc)
		rc = seek_indexer_finish(s.ix, &si);
	if (!rc)
		rc = tar_parser_finish(s.tp);
	if (!rc)
		*usize = si->usize;
	if (rc && s.tp && *tar_parser_error(s.tp))
		snprintf(err, errlen, "tar: %s", tar_parser_error(s.tp));
	else if (rc && s.ix && *seek_indexer_error(s.ix))
		snprintf(err, errlen, "%s", seek_indexer_error(s.ix));
	else if (rc)
		snprintf(err, errlen, "reading %s: %s", fetch_url(in),
			 strerror(-rc));
	seek_index_free(si);
	seek_indexer_free(s.ix);
	tar_parser_free(s.tp);
	return rc;
}

/* ---- output codecs ---- */

struct writer;

/* A piece is opened with begin (told its exact length), filled with put,
 * closed with end; open/close bracket the whole output. Each returns 0 or
 * -errno and may set w->why. */
struct codec_ops {
	enum seek_codec id;
	const char *pieces; /* what a piece is called, plural */
	int level_default;
	int (*level_max)(void);
	int (*open)(struct writer *w, int level);
	int (*begin)(struct writer *w, uint64_t len);
	int (*put)(struct writer *w, const unsigned char *p, size_t len);
	int (*end)(struct writer *w);
	void (*close)(struct writer *w); /* safe after a failed open */
};

struct writer {
	const struct codec_ops *codec;
	struct seek_indexer *ix; /* decompresses the input */
	const struct cuts *cuts;
	size_t next;	/* first cut not yet passed */
	uint64_t uoff;	/* uncompressed bytes taken so far */
	uint64_t usize; /* the tar stream's length, from pass 1 */
	uint64_t left;	/* bytes until the current piece ends */
	bool open;	/* a piece has begun and not ended */
	z_stream zs;
	ZSTD_CCtx *zc;
	const char *why; /* the codec library's message (static), or NULL */
	FILE *out;
	struct repack_stats *st;
	unsigned char buf[OUTBUF];
};

static int w_emit(struct writer *w, size_t n)
{
	if (fwrite(w->buf, 1, n, w->out) != n)
		return -EIO;
	w->st->out_bytes += n;
	return 0;
}

/* -- gzip: zlib, one member per piece -- */

static int gz_errno(struct writer *w, int zrc)
{
	w->why = w->zs.msg ? w->zs.msg : zError(zrc);
	return zrc == Z_MEM_ERROR ? -ENOMEM : -EIO;
}

static int gz_level_max(void)
{
	return 9;
}

static int gz_open(struct writer *w, int level)
{
	/* 31: gzip wrapper; zlib writes mtime 0 and no name: deterministic */
	int zrc =
	    deflateInit2(&w->zs, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);

	return zrc == Z_OK ? 0 : gz_errno(w, zrc);
}

static int gz_begin(struct writer *w, uint64_t len)
{
	(void)w;
	(void)len; /* gzip's trailer holds the length: nothing to declare */
	return 0;
}

/* Runs deflate over the pending input with flush, writing all output. */
static int gz_deflate(struct writer *w, int flush)
{
	int zrc, rc;

	do {
		w->zs.next_out = w->buf;
		w->zs.avail_out = sizeof(w->buf);
		zrc = deflate(&w->zs, flush);
		if (zrc == Z_STREAM_ERROR)
			return gz_errno(w, zrc);
		rc = w_emit(w, sizeof(w->buf) - w->zs.avail_out);
		if (rc)
			return rc;
	} while (w->zs.avail_out == 0 ||
		 (flush == Z_FINISH && zrc != Z_STREAM_END));
	return 0;
}

static int gz_put(struct writer *w, const unsigned char *p, size_t len)
{
	int rc = 0;

	while (len && !rc) {
		/* avail_in is a uInt: feed at most 1 GiB at a time */
		size_t n = len < (1u << 30) ? len : (1u << 30);

		w->zs.next_in = (unsigned char *)p;
		w->zs.avail_in = (uInt)n;
		rc = gz_deflate(w, Z_NO_FLUSH);
		p += n;
		len -= n;
	}
	return rc;
}

static int gz_end(struct writer *w)
{
	int rc, zrc;

	w->zs.avail_in = 0;
	rc = gz_deflate(w, Z_FINISH);
	if (rc)
		return rc;
	zrc = deflateReset(&w->zs);
	return zrc == Z_OK ? 0 : gz_errno(w, zrc);
}

static void gz_close(struct writer *w)
{
	deflateEnd(&w->zs); /* harmless on a zeroed, never-opened stream */
}

/* -- zstd: one frame per piece, content size and checksum set -- */

static int zs_errno(struct writer *w, size_t ret)
{
	w->why = ZSTD_getErrorName(ret);
	return ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation ? -ENOMEM
								      : -EIO;
}

static int zs_open(struct writer *w, int level)
{
	size_t r;

	w->zc = ZSTD_createCCtx();
	if (!w->zc)
		return -ENOMEM;
	r = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_contentSizeFlag, 1);
	return ZSTD_isError(r) ? zs_errno(w, r) : 0;
}

static int zs_begin(struct writer *w, uint64_t len)
{
	/* The pledged size goes into the frame header, and lets zstd size
	 * its window and tables to the frame. */
	size_t r = ZSTD_CCtx_reset(w->zc, ZSTD_reset_session_only);

	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setPledgedSrcSize(w->zc, len);
	return ZSTD_isError(r) ? zs_errno(w, r) : 0;
}

/* Compresses [p, p + len) with op, writing all output; ZSTD_e_end also
 * flushes the frame to its end (checksum included). */
static int zs_run(struct writer *w, const unsigned char *p, size_t len,
		  ZSTD_EndDirective op)
{
	ZSTD_inBuffer in = {p, len, 0};
	size_t left;
	int rc;

	do {
		ZSTD_outBuffer out = {w->buf, sizeof(w->buf), 0};

		left = ZSTD_compressStream2(w->zc, &out, &in, op);
		if (ZSTD_isError(left))
			return zs_errno(w, left);
		rc = w_emit(w, out.pos);
		if (rc)
			return rc;
	} while (op == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static int zs_put(struct writer *w, const unsigned char *p, size_t len)
{
	return zs_run(w, p, len, ZSTD_e_continue);
}

static int zs_end(struct writer *w)
{
	return zs_run(w, NULL, 0, ZSTD_e_end);
}

static void zs_close(struct writer *w)
{
	ZSTD_freeCCtx(w->zc); /* NULL does nothing */
	w->zc = NULL;
}

static const struct codec_ops codecs[] = {
    {
	.id = SEEK_GZIP,
	.pieces = "gzip members",
	.level_default = 6,
	.level_max = gz_level_max,
	.open = gz_open,
	.begin = gz_begin,
	.put = gz_put,
	.end = gz_end,
	.close = gz_close,
    },
    /* zstd 6, not zstd's own 3: on the 26 MiB test fixture (a tar of
     * Slurm binaries), 3 makes frames 10.2% larger than one -3 frame of
     * the whole tar, 6 only 5.6% (and smaller than the gzip repack), for
     * 0.45 s of CPU instead of 0.26 s, still a third of what the gzip
     * repack takes; 9 saves another 1.1% for twice the time, 19 saves
     * 7.8% for 17 times the time. Indexing the output takes about as
     * long at any of these levels. */
    {
	.id = SEEK_ZSTD,
	.pieces = "zstd frames",
	.level_default = 6,
	.level_max = ZSTD_maxCLevel,
	.open = zs_open,
	.begin = zs_begin,
	.put = zs_put,
	.end = zs_end,
	.close = zs_close,
    },
};

static const struct codec_ops *codec_find(enum seek_codec c)
{
	size_t i;

	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if (codecs[i].id == c)
			return &codecs[i];
	return NULL;
}

const char *repack_piece_name(enum seek_codec c)
{
	const struct codec_ops *ops = codec_find(c);

	return ops ? ops->pieces : "pieces";
}

/* ---- pass 2: the write loop, a new piece at every cut ---- */

/* Ends the current piece (if any) and begins the one at w->uoff, which
 * runs to the next cut or the end of the stream. */
static int w_next_piece(struct writer *w)
{
	uint64_t end;
	int rc;

	if (w->open) {
		w->open = false;
		rc = w->codec->end(w);
		if (rc)
			return rc;
	}
	while (w->next < w->cuts->n && w->cuts->v[w->next] <= w->uoff)
		w->next++;
	end = w->next < w->cuts->n ? w->cuts->v[w->next] : w->usize;
	if (end <= w->uoff)
		return -EIO; /* the stream grew since pass 1 */
	w->left = end - w->uoff;
	w->st->members++;
	w->open = true;
	return w->codec->begin(w, w->left);
}

static int w_plain(void *arg, const void *data, size_t len)
{
	struct writer *w = arg;
	const unsigned char *p = data;
	int rc;

	while (len) {
		size_t n;

		if (!w->left) {
			rc = w_next_piece(w);
			if (rc)
				return rc;
		}
		n = len < w->left ? len : (size_t)w->left;
		rc = w->codec->put(w, p, n);
		if (rc)
			return rc;
		p += n;
		len -= n;
		w->uoff += n;
		w->left -= n;
	}
	return 0;
}

static int w_compressed(void *arg, const void *data, size_t len)
{
	struct writer *w = arg;

	w->st->in_bytes += len;
	return seek_indexer_feed(w->ix, data, len);
}

static int w_finish(struct writer *w)
{
	int rc;

	if (w->left || w->uoff != w->usize)
		return -EIO; /* the stream shrank since pass 1 */
	if (!w->open) {
		/* an empty stream still gets one (empty) piece */
		w->st->members++;
		rc = w->codec->begin(w, 0);
		return rc ? rc : w->codec->end(w);
	}
	w->open = false;
	return w->codec->end(w);
}

struct job {
	struct fetch *in;
	const struct codec_ops *codec;
	struct cuts cuts;
	uint64_t usize;
};

static int write_pieces(const struct job *j, FILE *out, struct repack_stats *st,
			char *err, size_t errlen)
{
	struct writer *w = calloc(1, sizeof(*w));
	struct seek_index *si = NULL;
	int rc;

	if (!w)
		return -ENOMEM;
	w->codec = j->codec;
	w->cuts = &j->cuts;
	w->usize = j->usize;
	w->out = out;
	w->st = st;
	rc = w->codec->open(w, st->level);
	if (!rc) {
		w->ix = seek_indexer_new(st->in_codec, NO_POINTS, w_plain, w);
		rc = w->ix ? fetch_stream(j->in, 0, 0, w_compressed, w)
			   : -ENOMEM;
	}
	if (!rc)
		rc = seek_indexer_finish(w->ix, &si);
	if (!rc)
		rc = w_finish(w);
	st->tar_bytes = w->uoff;
	if (rc && w->why)
		snprintf(err, errlen, "%s: %s", seek_codec_name(st->out_codec),
			 w->why);
	else if (rc && w->ix && *seek_indexer_error(w->ix))
		snprintf(err, errlen, "%s", seek_indexer_error(w->ix));
	seek_index_free(si);
	seek_indexer_free(w->ix);
	w->codec->close(w);
	free(w);
	return rc;
}

/* Picks the output codec and level; -EINVAL with a reason if unusable. */
static int pick_codec(const struct repack_opts *o, struct repack_stats *st,
		      const struct codec_ops **out, char *err, size_t errlen)
{
	/* by default the input's codec; a plain tar gets gzip */
	enum seek_codec to = st->in_codec == SEEK_ZSTD ? SEEK_ZSTD : SEEK_GZIP;
	const struct codec_ops *c;

	if (o && o->to != SEEK_NONE)
		to = o->to;
	c = codec_find(to);
	if (!c) {
		snprintf(err, errlen, "cannot write %s output",
			 seek_codec_name(to));
		return -EINVAL;
	}
	st->out_codec = to;
	st->level = o && o->level ? o->level : c->level_default;
	if (st->level < 1 || st->level > c->level_max()) {
		snprintf(err, errlen, "%s level %d is not in 1-%d",
			 seek_codec_name(to), st->level, c->level_max());
		return -EINVAL;
	}
	*out = c;
	return 0;
}

int repack_tarball(struct fetch *in, const char *out_path,
		   const struct repack_opts *o, struct repack_stats *st,
		   char *err, size_t errlen)
{
	struct job j = {.in = in};
	struct util_atomic af;
	int rc;

	memset(st, 0, sizeof(*st));
	if (errlen)
		err[0] = '\0';
	st->in_codec = detect(in);
	rc = pick_codec(o, st, &j.codec, err, errlen);
	if (!rc)
		rc = scan_members(in, st->in_codec, &j.cuts, &j.usize, err,
				  errlen);
	if (rc)
		goto out;
	rc = util_atomic_open(&af, out_path);
	if (rc) {
		snprintf(err, errlen, "cannot create a file beside %s: %s",
			 out_path, strerror(-rc));
		goto out;
	}
	rc = util_atomic_finish(&af, write_pieces(&j, af.f, st, err, errlen));
	if (rc && !*err)
		snprintf(err, errlen, "writing %s: %s", out_path,
			 strerror(-rc));
out:
	free(j.cuts.v);
	return rc;
}
