/* SPDX-License-Identifier: MIT */
/*
 * seek.c - seek points: the indexer's bookkeeping (points, span digests),
 * lookups in a finished index, the decoder front end, and the "none" codec.
 * gzip and zstd live in seek_gz.c and seek_zstd.c behind struct seek_ops.
 */
#include "seek_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct seek_ops seek_none_ops;

static const struct seek_ops *const codec_ops[] = {
    [SEEK_NONE] = &seek_none_ops,
    [SEEK_GZIP] = &seek_gz_ops,
    [SEEK_ZSTD] = &seek_zstd_ops,
};

static const struct seek_ops *ops_for(enum seek_codec c)
{
	if ((unsigned)c >= sizeof(codec_ops) / sizeof(codec_ops[0]))
		return NULL;
	return codec_ops[c];
}

enum seek_codec seek_detect(const void *head, size_t len)
{
	const unsigned char *h = head;

	if (len >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return SEEK_GZIP;
	if (len < 4)
		return SEEK_NONE;
	if (h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd)
		return SEEK_ZSTD;
	/* skippable frame: magic 0x184D2A50..0x184D2A5F, little endian */
	if ((h[0] & 0xf0) == 0x50 && h[1] == 0x2a && h[2] == 0x4d &&
	    h[3] == 0x18)
		return SEEK_ZSTD;
	return SEEK_NONE;
}

const char *seek_codec_name(enum seek_codec c)
{
	switch (c) {
	case SEEK_NONE:
		return "none";
	case SEEK_GZIP:
		return "gzip";
	case SEEK_ZSTD:
		return "zstd";
	}
	return "unknown";
}

/* ---- indexer bookkeeping, called by the codec back ends ---- */

int seek_ix_fail(struct seek_indexer *ix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ix->err, sizeof(ix->err), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

void seek_ix_warn(struct seek_indexer *ix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ix->warn, sizeof(ix->warn), fmt, ap);
	va_end(ap);
	ix->has_warn = true;
}

int seek_ix_consume(struct seek_indexer *ix, const unsigned char *p, size_t len)
{
	if (!len)
		return 0;
	if (!EVP_DigestUpdate(ix->md, p, len))
		return -ENOMEM;
	if (ix->pending && !EVP_DigestUpdate(ix->md_prev, p, len))
		return -ENOMEM;
	ix->coff += len;
	ix->last_byte = p[len - 1];
	return 0;
}

static int commit_pending(struct seek_indexer *ix)
{
	if (ix->n == ix->cap) {
		size_t cap = ix->cap * 2;
		struct seek_point *pts = realloc(ix->pts, cap * sizeof(*pts));

		if (!pts)
			return -ENOMEM;
		ix->pts = pts;
		ix->cap = cap;
	}
	ix->pts[ix->n++] = ix->pend;
	memset(&ix->pend, 0, sizeof(ix->pend));
	ix->pending = false;
	/* A committed point never changes again: its window may leave. */
	if (ix->spill && ix->pts[ix->n - 1].window)
		return ix->spill(ix->spill_arg, &ix->pts[ix->n - 1]);
	return 0;
}

void seek_indexer_set_spill(struct seek_indexer *ix, seek_spill_cb spill,
			    void *arg)
{
	ix->spill = spill;
	ix->spill_arg = arg;
}

int seek_ix_output(struct seek_indexer *ix, const unsigned char *p, size_t len)
{
	int rc;

	if (!len)
		return 0;
	if (ix->pending) {
		rc = commit_pending(ix);
		if (rc)
			return rc;
	}
	ix->uoff += len;
	return ix->out ? ix->out(ix->arg, p, len) : 0;
}

static uint64_t last_uoff(const struct seek_indexer *ix)
{
	return ix->pending ? ix->pend.uoff : ix->pts[ix->n - 1].uoff;
}

bool seek_ix_want(const struct seek_indexer *ix, bool restart)
{
	/* A pending point that no byte has followed yet gives way to a
	 * restart (gzip member, zstd frame) at the same place. */
	if (restart && ix->pending && !(ix->pend.flags & SEEK_PT_MEMBER))
		return true;
	/* Inside a gzip member shorter than the spacing so far, wait for
	 * the next member start: it needs no window. So a tarball whose
	 * members are small (sffs-index --repack, pigz --independent -b)
	 * gets an index without windows, and a single-member gzip is not
	 * affected. */
	if (!restart && ix->uoff - ix->member_uoff < ix->spacing)
		return false;
	/* A restart point costs no window, only its 94-byte record, so
	 * they may stand four times closer: smaller spans to fetch. */
	return ix->uoff - last_uoff(ix) >=
	       (restart ? ix->spacing / 4 : ix->spacing);
}

static int md_final(EVP_MD_CTX *md, unsigned char *dst)
{
	return EVP_DigestFinal_ex(md, dst, NULL) ? 0 : -ENOMEM;
}

/* Digest so far of md without ending it. */
static int md_peek(EVP_MD_CTX *md, unsigned char *dst)
{
	EVP_MD_CTX *tmp = EVP_MD_CTX_new();
	int rc = -ENOMEM;

	if (tmp && EVP_MD_CTX_copy_ex(tmp, md))
		rc = md_final(tmp, dst);
	EVP_MD_CTX_free(tmp);
	return rc;
}

int seek_ix_point(struct seek_indexer *ix, uint8_t bits, uint8_t flags,
		  unsigned char *window, uint32_t wlen)
{
	struct seek_point *prev = &ix->pts[ix->n - 1];
	int rc;

	if (ix->pending) {
		/* replace it: the previous span now reaches up to here */
		free(ix->pend.window);
		ix->pend.window = NULL;
		rc = md_peek(ix->md_prev, prev->digest);
	} else if (!EVP_MD_CTX_copy_ex(ix->md_prev, ix->md)) {
		rc = -ENOMEM;
	} else {
		rc = md_final(ix->md, prev->digest);
	}
	if (!rc && !EVP_DigestInit_ex(ix->md, EVP_sha256(), NULL))
		rc = -ENOMEM;
	/* the byte holding the first bits of the new span is in both */
	if (!rc && bits && !EVP_DigestUpdate(ix->md, &ix->last_byte, 1))
		rc = -ENOMEM;
	if (rc) {
		free(window);
		return rc;
	}
	ix->pend = (struct seek_point){
	    .coff = ix->coff,
	    .uoff = ix->uoff,
	    .bits = bits,
	    .flags = flags,
	    .wlen = wlen,
	    .window = window,
	};
	ix->pending = true;
	return 0;
}

/* ---- the indexer's public face ---- */

struct seek_indexer *seek_indexer_new(enum seek_codec c, uint64_t spacing,
				      seek_out_cb out, void *arg)
{
	const struct seek_ops *ops = ops_for(c);
	struct seek_indexer *ix;

	if (!ops)
		return NULL;
	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return NULL;
	ix->ops = ops;
	ix->codec = c;
	ix->spacing = spacing < SEEK_MIN_SPACING ? SEEK_MIN_SPACING : spacing;
	ix->out = out;
	ix->arg = arg;
	ix->cap = 64;
	ix->pts = calloc(ix->cap, sizeof(*ix->pts));
	ix->md = EVP_MD_CTX_new();
	ix->md_prev = EVP_MD_CTX_new();
	if (!ix->pts || !ix->md || !ix->md_prev ||
	    !EVP_DigestInit_ex(ix->md, EVP_sha256(), NULL))
		goto out_free_ix;
	/* point 0: the start of the stream (a gzip member start) */
	ix->pts[0].flags = c == SEEK_GZIP ? SEEK_PT_MEMBER : 0;
	ix->n = 1;
	if (ops->ix_init(ix))
		goto out_free_ix;
	return ix;

out_free_ix:
	seek_indexer_free(ix);
	return NULL;
}

void seek_indexer_free(struct seek_indexer *ix)
{
	size_t i;

	if (!ix)
		return;
	if (ix->ops)
		ix->ops->ix_free(ix);
	if (ix->pts) {
		for (i = 0; i < ix->n; i++)
			free(ix->pts[i].window);
	}
	free(ix->pts);
	free(ix->pend.window);
	EVP_MD_CTX_free(ix->md);
	EVP_MD_CTX_free(ix->md_prev);
	free(ix);
}

int seek_indexer_feed(struct seek_indexer *ix, const void *data, size_t len)
{
	if (ix->rc)
		return ix->rc;
	if (ix->finished)
		return -EINVAL;
	if (!len)
		return 0;
	ix->rc = ix->ops->ix_feed(ix, data, len);
	return ix->rc;
}

/* Ends the last span's digest; a pending point is dropped (nothing
 * follows it), so its bytes go to the span before. */
static int close_last_span(struct seek_indexer *ix)
{
	struct seek_point *last = &ix->pts[ix->n - 1];

	if (!ix->pending)
		return md_final(ix->md, last->digest);
	free(ix->pend.window);
	memset(&ix->pend, 0, sizeof(ix->pend));
	ix->pending = false;
	return md_final(ix->md_prev, last->digest);
}

static int build_index(struct seek_indexer *ix, struct seek_index **out)
{
	struct seek_index *si = calloc(1, sizeof(*si));
	struct seek_point *pts;

	if (!si)
		return -ENOMEM;
	pts = realloc(ix->pts, ix->n * sizeof(*pts));
	if (pts)
		ix->pts = pts;
	si->codec = ix->codec;
	si->csize = ix->coff;
	si->usize = ix->uoff;
	si->n = ix->n;
	si->pts = ix->pts;
	ix->pts = NULL;
	ix->n = 0;
	*out = si;
	return 0;
}

int seek_indexer_finish(struct seek_indexer *ix, struct seek_index **out)
{
	int rc;

	*out = NULL;
	if (ix->rc)
		return ix->rc;
	if (ix->finished)
		return -EINVAL;
	ix->finished = true;
	rc = ix->ops->ix_finish(ix);
	if (!rc)
		rc = close_last_span(ix);
	if (!rc)
		rc = build_index(ix, out);
	ix->rc = rc;
	return rc;
}

const char *seek_indexer_error(const struct seek_indexer *ix)
{
	if (ix->err[0])
		return ix->err;
	if (ix->rc == -ENOMEM)
		return "out of memory";
	return ix->rc ? "stopped by the output callback" : NULL;
}

const char *seek_indexer_warning(const struct seek_indexer *ix)
{
	return ix->has_warn ? ix->warn : NULL;
}

/* ---- a finished index ---- */

void seek_index_free(struct seek_index *si)
{
	size_t i;

	if (!si)
		return;
	for (i = 0; i < si->n; i++)
		free(si->pts[i].window);
	free(si->pts);
	free(si);
}

size_t seek_index_find(const struct seek_index *si, uint64_t uoff)
{
	size_t lo = 0, hi = si->n; /* answer in [lo, hi) */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (si->pts[mid].uoff <= uoff)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

uint64_t seek_span_ustart(const struct seek_index *si, size_t i)
{
	return si->pts[i].uoff;
}

uint64_t seek_span_usize(const struct seek_index *si, size_t i)
{
	uint64_t end = i + 1 < si->n ? si->pts[i + 1].uoff : si->usize;

	return end - si->pts[i].uoff;
}

void seek_span_crange(const struct seek_index *si, size_t i, uint64_t *off,
		      uint64_t *len)
{
	const struct seek_point *pt = &si->pts[i];
	uint64_t start = pt->coff - (pt->bits ? 1 : 0);
	uint64_t end = i + 1 < si->n ? si->pts[i + 1].coff : si->csize;

	*off = start;
	*len = end - start;
}

size_t seek_index_mem_usage(const struct seek_index *si)
{
	size_t bytes = sizeof(*si) + si->n * sizeof(si->pts[0]);
	size_t i;

	for (i = 0; i < si->n; i++) {
		if (si->pts[i].window) /* a loaded window */
			bytes += si->pts[i].wlen;
	}
	return bytes;
}

/* ---- decoders ---- */

int seek_dec_output(struct seek_decoder *d, const unsigned char *p, size_t len)
{
	if (!len)
		return 0;
	d->done += len;
	return d->out ? d->out(d->arg, p, len) : 0;
}

/* ---- decoder states, pooled for the whole process ----
 *
 * A span decoder's state (inflate or zstd context and its 256 KiB output
 * buffer) is made once and reused by later spans of any archive: reads
 * neither allocate it per span nor leave it behind in the malloc arena of
 * whichever reader thread ran last. The pool is process-wide like malloc
 * itself (a decoder state belongs to no archive), keeps at most
 * SEEK_POOL_KEEP idle states per codec, and seek_pool_trim gives them
 * back. */
#define SEEK_POOL_KEEP 4

static struct {
	pthread_mutex_t lock;
	void *idle[SEEK_CODECS][SEEK_POOL_KEEP]; /* guarded by lock */
	unsigned n[SEEK_CODECS];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *pool_take(enum seek_codec c)
{
	void *cs = NULL;

	pthread_mutex_lock(&pool.lock);
	if (pool.n[c])
		cs = pool.idle[c][--pool.n[c]];
	pthread_mutex_unlock(&pool.lock);
	return cs;
}

static bool pool_put(enum seek_codec c, void *cs)
{
	bool kept = false;

	pthread_mutex_lock(&pool.lock);
	if (pool.n[c] < SEEK_POOL_KEEP) {
		pool.idle[c][pool.n[c]++] = cs;
		kept = true;
	}
	pthread_mutex_unlock(&pool.lock);
	return kept;
}

void seek_pool_trim(void)
{
	struct seek_decoder d = {0};
	unsigned c;

	for (c = 0; c < SEEK_CODECS; c++) {
		d.ops = ops_for((enum seek_codec)c);
		while (d.ops && d.ops->dec_reuse) {
			d.cs = pool_take((enum seek_codec)c);
			if (!d.cs)
				break;
			d.ops->dec_free(&d);
		}
	}
}

/* A pooled state made ready for d's point, else a new one. */
static int decoder_state(struct seek_decoder *d)
{
	if (d->ops->dec_reuse) {
		d->cs = pool_take(d->si->codec);
		if (d->cs && !d->ops->dec_reuse(d))
			return 0;
		if (d->cs)
			d->ops->dec_free(d);
	}
	return d->ops->dec_init(d);
}

struct seek_decoder *seek_decoder_new(const struct seek_index *si, size_t i)
{
	if (!si || i >= si->n)
		return NULL;
	return seek_decoder_new_window(si, i, si->pts[i].window,
				       si->pts[i].wlen);
}

struct seek_decoder *seek_decoder_new_window(const struct seek_index *si,
					     size_t i,
					     const unsigned char *window,
					     uint32_t wlen)
{
	struct seek_decoder *d;

	if (!si || i >= si->n || !ops_for(si->codec) || wlen != si->pts[i].wlen)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->si = si;
	d->ops = ops_for(si->codec);
	d->i = i;
	/* The codec reads the window only in dec_init: a copy of the point
	 * that names the caller's window is enough. */
	d->ptcopy = si->pts[i];
	d->ptcopy.window = (unsigned char *)window;
	d->pt = &d->ptcopy;
	d->usize = seek_span_usize(si, i);
	if (decoder_state(d)) {
		seek_decoder_free(d);
		return NULL;
	}
	return d;
}

void seek_decoder_free(struct seek_decoder *d)
{
	if (!d)
		return;
	if (d->cs && d->ops->dec_reuse && pool_put(d->si->codec, d->cs))
		d->cs = NULL;
	d->ops->dec_free(d);
	free(d);
}

int seek_decoder_feed(struct seek_decoder *d, const void *data, size_t len,
		      seek_out_cb out, void *arg)
{
	if (!len || !seek_dec_left(d))
		return 0; /* past the span's end: nothing more to give */
	d->out = out;
	d->arg = arg;
	return d->ops->dec_feed(d, data, len);
}

int seek_decoder_finish(struct seek_decoder *d)
{
	return d->done == d->usize ? 0 : -EBADMSG;
}

/* ---- the "none" codec: a point every `spacing` bytes ---- */

static int none_ix_init(struct seek_indexer *ix)
{
	(void)ix;
	return 0;
}

static void none_ix_free(struct seek_indexer *ix)
{
	(void)ix;
}

static int none_ix_feed(struct seek_indexer *ix, const unsigned char *p,
			size_t len)
{
	int rc;

	while (len > 0) {
		uint64_t room;
		size_t n;

		if (seek_ix_want(ix, false)) {
			rc = seek_ix_point(ix, 0, 0, NULL, 0);
			if (rc)
				return rc;
		}
		room = ix->spacing - (ix->uoff - last_uoff(ix));
		n = room < len ? (size_t)room : len;
		rc = seek_ix_consume(ix, p, n);
		if (!rc)
			rc = seek_ix_output(ix, p, n);
		if (rc)
			return rc;
		p += n;
		len -= n;
	}
	return 0;
}

static int none_ix_finish(struct seek_indexer *ix)
{
	(void)ix;
	return 0;
}

static int none_dec_init(struct seek_decoder *d)
{
	(void)d;
	return 0;
}

static void none_dec_free(struct seek_decoder *d)
{
	(void)d;
}

static int none_dec_feed(struct seek_decoder *d, const unsigned char *p,
			 size_t len)
{
	uint64_t left = seek_dec_left(d);

	return seek_dec_output(d, p, left < len ? (size_t)left : len);
}

static const struct seek_ops seek_none_ops = {
    .ix_init = none_ix_init,
    .ix_free = none_ix_free,
    .ix_feed = none_ix_feed,
    .ix_finish = none_ix_finish,
    .dec_init = none_dec_init,
    .dec_free = none_dec_free,
    .dec_feed = none_dec_feed,
};
