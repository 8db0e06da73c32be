/* SPDX-License-Identifier: MIT */
#include "sffs/repack.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "sffs/seek.h"
#include "sffs/tar.h"
#include "sffs/util.h"

#define OUTBUF (256u * 1024)

/* Where gzip members start, in uncompressed offsets (ascending). */
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

/* ---- pass 1: member boundaries ---- */

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
 * matter: the one place that knows every codec. */
#define NO_POINTS (UINT64_C(1) << 62)

static int scan_members(struct fetch *in, struct cuts *cuts, char *err,
			size_t errlen)
{
	struct scan s = { .cuts = cuts };
	struct seek_index *si = NULL;
	int rc = -ENOMEM;

	s.tp = tar_parser_new(scan_entry, NULL, &s);
	s.ix = seek_indexer_new(detect(in), NO_POINTS, scan_plain, &s);
	if (s.tp && s.ix)
		rc = fetch_stream(in, 0, 0, scan_compressed, &s);
	if (!rc)
		rc = seek_indexer_finish(s.ix, &si);
	if (!rc)
		rc = tar_parser_finish(s.tp);
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

/* ---- pass 2: compress, a new gzip member at every cut ---- */

struct writer {
	struct seek_indexer *ix;
	const struct cuts *cuts;
	size_t next;        /* next cut to honour */
	uint64_t uoff;      /* uncompressed bytes taken so far */
	bool open;          /* a member has started */
	z_stream zs;
	FILE *out;
	unsigned char buf[OUTBUF];
	struct repack_stats *st;
};

/* Runs deflate over the pending input with flush, writing all output. */
static int w_deflate(struct writer *w, int flush)
{
	int zrc;

	do {
		w->zs.next_out = w->buf;
		w->zs.avail_out = sizeof(w->buf);
		zrc = deflate(&w->zs, flush);
		if (zrc == Z_STREAM_ERROR)
			return -EIO;
		if (fwrite(w->buf, 1, sizeof(w->buf) - w->zs.avail_out,
			   w->out) != sizeof(w->buf) - w->zs.avail_out)
			return -EIO;
		w->st->out_bytes += sizeof(w->buf) - w->zs.avail_out;
	} while (w->zs.avail_out == 0 ||
		 (flush == Z_FINISH && zrc != Z_STREAM_END));
	return 0;
}

static int w_end_member(struct writer *w)
{
	int rc;

	if (!w->open)
		return 0;
	w->zs.avail_in = 0;
	rc = w_deflate(w, Z_FINISH);
	if (!rc && deflateReset(&w->zs) != Z_OK)
		rc = -EIO;
	w->open = false;
	return rc;
}

static int w_plain(void *arg, const void *data, size_t len)
{
	struct writer *w = arg;
	const unsigned char *p = data;
	int rc;

	while (len) {
		size_t n = len;

		while (w->next < w->cuts->n && w->cuts->v[w->next] <= w->uoff) {
			rc = w_end_member(w);
			if (rc)
				return rc;
			w->next++;
		}
		if (w->next < w->cuts->n && w->cuts->v[w->next] - w->uoff < n)
			n = (size_t)(w->cuts->v[w->next] - w->uoff);
		if (!w->open)
			w->st->members++;
		w->open = true;
		w->zs.next_in = (unsigned char *)p;
		w->zs.avail_in = (uInt)n;
		rc = w_deflate(w, Z_NO_FLUSH);
		if (rc)
			return rc;
		p += n;
		len -= n;
		w->uoff += n;
	}
	return 0;
}

static int w_compressed(void *arg, const void *data, size_t len)
{
	struct writer *w = arg;

	w->st->in_bytes += len;
	return seek_indexer_feed(w->ix, data, len);
}

static int write_members(struct fetch *in, const struct cuts *cuts, FILE *out,
			 int level, struct repack_stats *st)
{
	struct writer *w = calloc(1, sizeof(*w));
	struct seek_index *si = NULL;
	int rc = -ENOMEM;

	if (!w)
		return rc;
	w->cuts = cuts;
	w->out = out;
	w->st = st;
	/* 31: gzip wrapper; zlib writes mtime 0 and no name: deterministic */
	if (deflateInit2(&w->zs, level, Z_DEFLATED, 31, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		goto out_free;
	w->ix = seek_indexer_new(detect(in), NO_POINTS, w_plain, w);
	if (w->ix)
		rc = fetch_stream(in, 0, 0, w_compressed, w);
	if (!rc)
		rc = seek_indexer_finish(w->ix, &si);
	if (!rc)
		rc = w_end_member(w);
	st->tar_bytes = w->uoff;
	seek_index_free(si);
	seek_indexer_free(w->ix);
	deflateEnd(&w->zs);
out_free:
	free(w);
	return rc;
}

int repack_gzip(struct fetch *in, const char *out_path, int level,
		struct repack_stats *st, char *err, size_t errlen)
{
	struct cuts cuts = { 0 };
	struct util_atomic af;
	int rc;

	memset(st, 0, sizeof(*st));
	if (errlen)
		err[0] = '\0';
	rc = scan_members(in, &cuts, err, errlen);
	if (rc)
		goto out;
	rc = util_atomic_open(&af, out_path);
	if (rc) {
		snprintf(err, errlen, "cannot create a file beside %s: %s",
			 out_path, strerror(-rc));
		goto out;
	}
	rc = util_atomic_finish(&af, write_members(in, &cuts, af.f, level, st));
	if (rc && !*err)
		snprintf(err, errlen, "writing %s: %s", out_path,
			 strerror(-rc));
out:
	free(cuts.v);
	return rc;
}
