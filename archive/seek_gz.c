/* SPDX-License-Identifier: MIT */
/*
 * seek_gz.c - gzip seek points (zran style) and span decoding.
 *
 * The indexer inflates with Z_BLOCK so inflate() stops at every deflate
 * block boundary; there, if far enough from the last point, it records the
 * compressed offset, the bits still unread in the byte before it and the
 * last 32 KiB of output (deflated). Output is written into one linear
 * buffer whose first SEEK_WINDOW bytes always hold the window: when the
 * buffer fills, the last 32 KiB move to the front. Members follow each
 * other; a member start needs no window.
 */
#include "seek_i.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define GZ_WBITS 31	/* gzip wrapper, 32 KiB window */
#define RAW_WBITS (-15) /* raw deflate */
#define GZ_TRAILER 8	/* CRC-32 + ISIZE */
#define OBUF_SIZE (SEEK_WINDOW + SEEK_IX_OUTBUF)

enum gz_ix_state {
	GZ_MEMBER,   /* inside a member (header, deflate data, trailer) */
	GZ_BETWEEN,  /* after a member: another one, or trailing bytes? */
	GZ_TRAILING, /* bytes after the last member, ignored */
};

struct gz_ix {
	z_stream zs; /* inflate */
	bool zs_ok;
	z_stream def; /* deflate, for windows */
	bool def_ok;
	enum gz_ix_state state;
	bool held;	     /* GZ_BETWEEN: a 0x1f seen, not yet consumed */
	unsigned char *obuf; /* OBUF_SIZE */
	size_t opos;	     /* next output byte; >= SEEK_WINDOW */
	unsigned char *wtmp; /* deflateBound(SEEK_WINDOW) */
	size_t wtmp_len;
	uint64_t trail_off, trail_len;
	bool trail_zero;
};

static uInt clamp_uint(size_t len)
{
	return len > UINT_MAX ? UINT_MAX : (uInt)len;
}

static int gz_ix_init(struct seek_indexer *ix)
{
	struct gz_ix *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	ix->cs = g;
	if (inflateInit2(&g->zs, GZ_WBITS) != Z_OK)
		return -ENOMEM;
	g->zs_ok = true;
	if (deflateInit2(&g->def, SEEK_WINDOW_LEVEL, Z_DEFLATED, RAW_WBITS, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	g->def_ok = true;
	g->wtmp_len = deflateBound(&g->def, SEEK_WINDOW);
	g->wtmp = malloc(g->wtmp_len);
	/* zeros before the stream's start make a harmless window */
	g->obuf = calloc(1, OBUF_SIZE);
	if (!g->wtmp || !g->obuf)
		return -ENOMEM;
	g->opos = SEEK_WINDOW;
	g->state = GZ_MEMBER;
	return 0;
}

static void gz_ix_free(struct seek_indexer *ix)
{
	struct gz_ix *g = ix->cs;

	if (!g)
		return;
	if (g->zs_ok)
		inflateEnd(&g->zs);
	if (g->def_ok)
		deflateEnd(&g->def);
	free(g->obuf);
	free(g->wtmp);
	free(g);
	ix->cs = NULL;
}

/* A point at the block boundary inflate just stopped at. */
static int gz_block_point(struct seek_indexer *ix, struct gz_ix *g)
{
	unsigned char *win;
	uInt wlen;

	deflateReset(&g->def);
	g->def.next_in = g->obuf + g->opos - SEEK_WINDOW;
	g->def.avail_in = SEEK_WINDOW;
	g->def.next_out = g->wtmp;
	g->def.avail_out = clamp_uint(g->wtmp_len);
	if (deflate(&g->def, Z_FINISH) != Z_STREAM_END) {
		(void)seek_ix_fail(ix, "gzip: cannot deflate a window");
		return -ENOMEM; /* our own deflate: not the artifact's fault */
	}
	wlen = clamp_uint(g->wtmp_len) - g->def.avail_out;
	win = malloc(wlen);
	if (!win)
		return -ENOMEM;
	memcpy(win, g->wtmp, wlen);
	return seek_ix_point(ix, (uint8_t)(g->zs.data_type & 7), 0, win, wlen);
}

static int gz_inflate_error(struct seek_indexer *ix, const struct gz_ix *g,
			    int ret)
{
	int rc;

	if (ret == Z_MEM_ERROR)
		return -ENOMEM;
	rc = seek_ix_fail(ix, "gzip: %s at compressed offset %llu",
			  g->zs.msg ? g->zs.msg : zError(ret),
			  (unsigned long long)ix->coff);
	/* bad data (a failed check) is an integrity failure, not I/O */
	return ret == Z_DATA_ERROR ? -EBADMSG : rc;
}

/* One inflate() call into the output buffer; hands on what came out. */
static int gz_inflate_once(struct seek_indexer *ix, struct gz_ix *g, int *ret)
{
	z_stream *zs = &g->zs;
	const unsigned char *in0 = zs->next_in;
	uInt room;
	size_t made;
	int rc;

	if (g->opos == OBUF_SIZE) {
		memmove(g->obuf, g->obuf + OBUF_SIZE - SEEK_WINDOW,
			SEEK_WINDOW);
		g->opos = SEEK_WINDOW;
	}
	room = (uInt)(OBUF_SIZE - g->opos);
	zs->next_out = g->obuf + g->opos;
	zs->avail_out = room;
	*ret = inflate(zs, Z_BLOCK);
	made = room - zs->avail_out;
	rc = seek_ix_consume(ix, in0, (size_t)(zs->next_in - in0));
	if (!rc)
		rc = seek_ix_output(ix, g->obuf + g->opos, made);
	g->opos += made;
	return rc;
}

/* Inflates from *p until the input is used up or the member ends. */
static int gz_ix_inflate(struct seek_indexer *ix, struct gz_ix *g,
			 const unsigned char **p, size_t *len)
{
	z_stream *zs = &g->zs;
	int ret, rc = 0;

	zs->next_in = (Bytef *)*p;
	zs->avail_in = clamp_uint(*len);
	for (;;) {
		rc = gz_inflate_once(ix, g, &ret);
		if (rc)
			break;
		if (ret == Z_STREAM_END) {
			g->state = GZ_BETWEEN;
			break;
		}
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			rc = gz_inflate_error(ix, g, ret);
			break;
		}
		/* 128: at a block boundary; 64: in the last block */
		if ((zs->data_type & 128) && !(zs->data_type & 64) &&
		    seek_ix_want(ix, false)) {
			rc = gz_block_point(ix, g);
			if (rc)
				break;
		}
		if (zs->avail_in == 0 && zs->avail_out != 0)
			break;
	}
	*len -= (size_t)(zs->next_in - *p);
	*p = zs->next_in;
	return rc;
}

static int gz_start_trailing(struct seek_indexer *ix, struct gz_ix *g)
{
	static const unsigned char magic1 = 0x1f;

	g->state = GZ_TRAILING;
	g->trail_off = ix->coff;
	g->trail_zero = !g->held;
	if (!g->held)
		return 0;
	g->held = false;
	g->trail_len = 1;
	return seek_ix_consume(ix, &magic1, 1);
}

static int gz_start_member(struct seek_indexer *ix, struct gz_ix *g)
{
	static const unsigned char magic1 = 0x1f;
	const unsigned char *p = &magic1;
	size_t one = 1;
	int rc;

	if (seek_ix_want(ix, true)) {
		rc = seek_ix_point(ix, 0, SEEK_PT_MEMBER, NULL, 0);
		if (rc)
			return rc;
	}
	ix->member_uoff = ix->uoff;
	if (inflateReset(&g->zs) != Z_OK)
		return seek_ix_fail(ix, "gzip: inflateReset failed");
	g->state = GZ_MEMBER;
	if (!g->held)
		return 0;
	g->held = false;
	return gz_ix_inflate(ix, g, &p, &one);
}

/* After a member: 1f 8b starts another one; anything else is trailing. */
static int gz_between(struct seek_indexer *ix, struct gz_ix *g,
		      const unsigned char **p, size_t *len)
{
	unsigned char second;

	if (!g->held) {
		if ((*p)[0] != 0x1f)
			return gz_start_trailing(ix, g);
		if (*len < 2) {
			g->held = true; /* consumed once we know what it is */
			(*p)++;
			(*len)--;
			return 0;
		}
		second = (*p)[1];
	} else {
		second = (*p)[0];
	}
	if (second != 0x8b)
		return gz_start_trailing(ix, g);
	return gz_start_member(ix, g);
}

static int gz_trailing(struct seek_indexer *ix, struct gz_ix *g,
		       const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; g->trail_zero && i < len; i++)
		g->trail_zero = p[i] == 0;
	g->trail_len += len;
	return seek_ix_consume(ix, p, len);
}

static int gz_ix_feed(struct seek_indexer *ix, const unsigned char *p,
		      size_t len)
{
	struct gz_ix *g = ix->cs;
	int rc = 0;

	while (len > 0 && !rc) {
		switch (g->state) {
		case GZ_MEMBER:
			rc = gz_ix_inflate(ix, g, &p, &len);
			break;
		case GZ_BETWEEN:
			rc = gz_between(ix, g, &p, &len);
			break;
		case GZ_TRAILING:
			rc = gz_trailing(ix, g, p, len);
			len = 0;
			break;
		}
	}
	return rc;
}

static int gz_ix_finish(struct seek_indexer *ix)
{
	struct gz_ix *g = ix->cs;
	int rc;

	if (g->state == GZ_MEMBER) {
		if (!ix->coff)
			return seek_ix_fail(ix, "gzip: empty input");
		return seek_ix_fail(ix,
				    "gzip stream truncated at compressed "
				    "offset %llu",
				    (unsigned long long)ix->coff);
	}
	if (g->state == GZ_BETWEEN && g->held) {
		rc = gz_start_trailing(ix, g);
		if (rc)
			return rc;
	}
	if (g->state != GZ_TRAILING)
		return 0;
	if (g->trail_zero)
		seek_ix_warn(ix,
			     "gzip: %llu trailing zero bytes ignored at "
			     "compressed offset %llu",
			     (unsigned long long)g->trail_len,
			     (unsigned long long)g->trail_off);
	else
		seek_ix_warn(ix,
			     "gzip: %llu bytes of trailing garbage ignored at "
			     "compressed offset %llu",
			     (unsigned long long)g->trail_len,
			     (unsigned long long)g->trail_off);
	return 0;
}

/* ---- span decoder ---- */

enum gz_dec_state {
	GZD_RAW,     /* raw deflate: the span starts inside a member */
	GZD_TRAILER, /* skipping the trailer of that member */
	GZD_MEMBER,  /* whole members, gzip wrapper checked by zlib */
};

struct gz_dec {
	z_stream zs;
	bool zs_ok;
	enum gz_dec_state state;
	unsigned skip;	 /* GZD_TRAILER: bytes left */
	bool need_prime; /* the first byte holds `bits` bits of the span */
	unsigned char *obuf;
};

/* Inflates the stored window into win (SEEK_WINDOW bytes). */
static int gz_load_window(const struct seek_point *pt, unsigned char *win)
{
	z_stream zs;
	int ret;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, RAW_WBITS) != Z_OK)
		return -ENOMEM;
	zs.next_in = pt->window;
	zs.avail_in = pt->wlen;
	zs.next_out = win;
	zs.avail_out = SEEK_WINDOW;
	ret = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	if (ret != Z_STREAM_END || zs.avail_out != 0)
		return -EBADMSG;
	return 0;
}

static int gz_dec_init_raw(struct gz_dec *g, const struct seek_point *pt)
{
	unsigned char *win;
	int rc;

	if (!pt->window || !pt->wlen || pt->bits > 7)
		return -EINVAL;
	win = malloc(SEEK_WINDOW);
	if (!win)
		return -ENOMEM;
	rc = gz_load_window(pt, win);
	if (!rc && inflateSetDictionary(&g->zs, win, SEEK_WINDOW) != Z_OK)
		rc = -EBADMSG;
	free(win);
	g->state = GZD_RAW;
	g->need_prime = pt->bits != 0;
	return rc;
}

static int gz_dec_init(struct seek_decoder *d)
{
	const bool member = d->pt->flags & SEEK_PT_MEMBER;
	struct gz_dec *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	d->cs = g;
	g->obuf = malloc(SEEK_DEC_OUTBUF);
	if (!g->obuf)
		return -ENOMEM;
	if (inflateInit2(&g->zs, member ? GZ_WBITS : RAW_WBITS) != Z_OK)
		return -ENOMEM;
	g->zs_ok = true;
	g->state = GZD_MEMBER;
	return member ? 0 : gz_dec_init_raw(g, d->pt);
}

static int gz_dec_reuse(struct seek_decoder *d)
{
	const bool member = d->pt->flags & SEEK_PT_MEMBER;
	struct gz_dec *g = d->cs;

	if (!g->zs_ok || !g->obuf ||
	    inflateReset2(&g->zs, member ? GZ_WBITS : RAW_WBITS) != Z_OK)
		return -EIO;
	g->state = GZD_MEMBER;
	g->skip = 0;
	g->need_prime = false;
	return member ? 0 : gz_dec_init_raw(g, d->pt);
}

static void gz_dec_free(struct seek_decoder *d)
{
	struct gz_dec *g = d->cs;

	if (!g)
		return;
	if (g->zs_ok)
		inflateEnd(&g->zs);
	free(g->obuf);
	free(g);
	d->cs = NULL;
}

/* Inflates from *p until the input is used up, a member ends or the span
 * is complete. */
static int gz_dec_inflate(struct seek_decoder *d, struct gz_dec *g,
			  const unsigned char **p, size_t *len)
{
	z_stream *zs = &g->zs;
	int ret, rc = 0;

	zs->next_in = (Bytef *)*p;
	zs->avail_in = clamp_uint(*len);
	while (seek_dec_left(d)) {
		uint64_t left = seek_dec_left(d);
		uInt room =
		    left < SEEK_DEC_OUTBUF ? (uInt)left : SEEK_DEC_OUTBUF;

		zs->next_out = g->obuf;
		zs->avail_out = room;
		ret = inflate(zs, Z_NO_FLUSH);
		rc = seek_dec_output(d, g->obuf, room - zs->avail_out);
		if (rc)
			break;
		if (ret == Z_STREAM_END) {
			if (g->state == GZD_RAW) {
				g->state = GZD_TRAILER;
				g->skip = GZ_TRAILER;
			} else if (inflateReset(zs) != Z_OK) {
				rc = -EIO;
			}
			break;
		}
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			rc = ret == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
			break;
		}
		if (zs->avail_in == 0 && zs->avail_out != 0)
			break;
	}
	*len -= (size_t)(zs->next_in - *p);
	*p = zs->next_in;
	return rc;
}

static int gz_dec_feed(struct seek_decoder *d, const unsigned char *p,
		       size_t len)
{
	struct gz_dec *g = d->cs;
	unsigned bits = d->pt->bits;
	int rc = 0;

	while (len > 0 && seek_dec_left(d) && !rc) {
		if (g->need_prime) {
			if (inflatePrime(&g->zs, (int)bits, p[0] >> (8 - bits)))
				return -EIO;
			g->need_prime = false;
			p++;
			len--;
		} else if (g->state == GZD_TRAILER) {
			size_t n = len < g->skip ? len : g->skip;

			g->skip -= (unsigned)n;
			p += n;
			len -= n;
			if (!g->skip && inflateReset2(&g->zs, GZ_WBITS))
				return -EIO;
			if (!g->skip)
				g->state = GZD_MEMBER;
		} else {
			rc = gz_dec_inflate(d, g, &p, &len);
		}
	}
	return rc;
}

const struct seek_ops seek_gz_ops = {
    .ix_init = gz_ix_init,
    .ix_free = gz_ix_free,
    .ix_feed = gz_ix_feed,
    .ix_finish = gz_ix_finish,
    .dec_init = gz_dec_init,
    .dec_free = gz_dec_free,
    .dec_feed = gz_dec_feed,
    .dec_reuse = gz_dec_reuse,
};
