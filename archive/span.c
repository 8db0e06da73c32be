/* SPDX-License-Identifier: MIT */
/*
 * span.c - the read path: cached chunk, else fetch + verify + decode a span.
 *
 * A chunk is ARCHIVE_CHUNK decoded bytes of one span, keyed by
 * (span << 24 | chunk). Spans are verified against the SHA-256 recorded at
 * indexing before a single byte of them is decoded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "sffs/log.h"

#include "archive_i.h"

static uint64_t chunk_key(size_t span, uint64_t chunk)
{
	return ((uint64_t)span << 24) | chunk;
}

/* Gathers decoded output into chunks, stores them, and copies the bytes
 * the caller asked for (chunk `want_chunk`, from `want_off`). */
struct sink {
	struct archive *ar;
	size_t span;
	uint64_t chunk;      /* index of the chunk being filled */
	size_t fill;
	unsigned char *buf;  /* ARCHIVE_CHUNK bytes */
	uint64_t want_chunk;
	size_t want_off, want_len;
	unsigned char *dst;
	ssize_t copied;      /* -1 until the wanted chunk was produced */
	uint64_t stop_chunk; /* stop decoding after this chunk */
};

static int sink_flush(struct sink *s)
{
	if (s->chunk == s->want_chunk) {
		size_t n = 0;

		if (s->want_off < s->fill)
			n = s->fill - s->want_off;
		if (n > s->want_len)
			n = s->want_len;
		memcpy(s->dst, s->buf + s->want_off, n);
		s->copied = (ssize_t)n;
	}
	/* A failed insert only costs a later re-decode. */
	(void)cache_insert(s->ar->cache, chunk_key(s->span, s->chunk), s->buf,
			   s->fill);
	s->chunk++;
	s->fill = 0;
	return s->chunk > s->stop_chunk ? 1 : 0;
}

static int sink_out(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;
	const unsigned char *p = data;

	while (len) {
		size_t n = ARCHIVE_CHUNK - s->fill;

		if (n > len)
			n = len;
		memcpy(s->buf + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
		if (s->fill == ARCHIVE_CHUNK && sink_flush(s))
			return 1; /* far enough: stop the decoder */
	}
	return 0;
}

static bool digest_ok(const unsigned char *want, const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
		return false;
	return mdlen == SEEK_DIGEST && !memcmp(md, want, SEEK_DIGEST);
}

/* Hashes [off, off+len) in pieces without keeping it. */
static int digest_stream(struct archive *ar, uint64_t off, uint64_t len,
			 unsigned flags, unsigned char *buf, unsigned char *md)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -ENOMEM;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while (len) {
		size_t n = len > SPAN_PIECE ? SPAN_PIECE : (size_t)len;

		rc = fetch_range(ar->f, off, n, buf, flags);
		if (rc)
			goto out;
		EVP_DigestUpdate(ctx, buf, n);
		off += n;
		len -= n;
	}
	rc = EVP_DigestFinal_ex(ctx, md, NULL) ? 0 : -EIO;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Fetches span i's bytes into *cbuf (SPAN_BUF_MAX case) or checks them in
 * pieces; on a digest mismatch tries once more past any HTTP cache. */
static int span_fetch_verified(struct archive *ar, size_t i, uint64_t off,
			       uint64_t len, unsigned char *cbuf)
{
	const unsigned char *want = ar->si->pts[i].digest;
	unsigned flags = 0;
	int attempt, rc;

	for (attempt = 0; attempt < 2; attempt++, flags = FETCH_NOCACHE) {
		unsigned char md[SEEK_DIGEST];

		if (len <= SPAN_BUF_MAX) {
			rc = fetch_range(ar->f, off, len, cbuf, flags);
			if (rc)
				return rc;
			if (digest_ok(want, cbuf, len))
				return 0;
		} else {
			rc = digest_stream(ar, off, len, flags, cbuf, md);
			if (rc)
				return rc;
			if (!memcmp(md, want, SEEK_DIGEST))
				return 0;
		}
		atomic_fetch_add(&ar->verify_fail, 1);
		log_err("%s: compressed bytes %" PRIu64 "-%" PRIu64
			" (span %zu) do not match their SHA-256%s",
			fetch_url(ar->f), off, off + len - 1, i,
			attempt ? " again, bypassing caches: giving EIO"
				: "; fetching them again bypassing caches");
	}
	return -EIO;
}

/* An archive loaded from an index fetches a window the first time one of
 * its spans is decoded. Racing loaders both fetch; the first to publish
 * wins and the other's copy is dropped. */
static int ensure_window(struct archive *ar, size_t i)
{
	struct seek_point *pt = &ar->si->pts[i];
	unsigned char *w, *expected = NULL;
	int rc;

	if (!pt->wlen || __atomic_load_n(&pt->window, __ATOMIC_ACQUIRE))
		return 0;
	if (!ar->idx)
		return -EIO;
	rc = index_load_window(ar->idx, &ar->ih, pt, &w);
	if (rc) {
		log_err("%s: window of seek point %zu is unusable: %s",
			fetch_url(ar->idx), i, strerror(-rc));
		return rc;
	}
	if (!__atomic_compare_exchange_n(&pt->window, &expected, w, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		free(w);
	return 0;
}

static int span_decode(struct archive *ar, size_t i, uint64_t off,
		       uint64_t len, unsigned char *cbuf, struct sink *s)
{
	struct seek_decoder *d;
	int rc = ensure_window(ar, i);

	if (rc)
		return rc;
	d = seek_decoder_new(ar->si, i);
	rc = -ENOMEM;
	if (!d)
		return rc;
	if (len <= SPAN_BUF_MAX) {
		rc = seek_decoder_feed(d, cbuf, len, sink_out, s);
	} else {
		/* Verified already as a whole; the bytes come again in
		 * pieces and identity pinning keeps them the same version. */
		rc = 0;
		while (len && !rc) {
			size_t n = len > SPAN_PIECE ? SPAN_PIECE : (size_t)len;

			rc = fetch_range(ar->f, off, n, cbuf, 0);
			if (!rc)
				rc = seek_decoder_feed(d, cbuf, n, sink_out, s);
			off += n;
			len -= n;
		}
	}
	if (rc == 0) {
		rc = seek_decoder_finish(d);
		if (!rc && s->fill)
			sink_flush(s);
	} else if (rc == 1) {
		rc = 0; /* stopped early on purpose */
	}
	seek_decoder_free(d);
	if (rc)
		log_err("%s: decoding span %zu failed: %s", fetch_url(ar->f),
			i, strerror(-rc));
	return rc;
}

/* Loads span i and copies want_len bytes of chunk j from want_off. */
static ssize_t span_load(struct archive *ar, size_t i, uint64_t j,
			 size_t want_off, size_t want_len, void *dst)
{
	struct sink s = { .ar = ar, .span = i, .want_chunk = j,
			  .want_off = want_off, .want_len = want_len,
			  .dst = dst, .copied = -1,
			  .stop_chunk = j + READAHEAD_CHUNKS };
	uint64_t off, len;
	unsigned char *cbuf;
	int rc;

	seek_span_crange(ar->si, i, &off, &len);
	cbuf = malloc(len < SPAN_BUF_MAX ? (len ? len : 1) : SPAN_BUF_MAX);
	s.buf = malloc(ARCHIVE_CHUNK);
	rc = -ENOMEM;
	if (!cbuf || !s.buf)
		goto out;
	rc = span_fetch_verified(ar, i, off, len, cbuf);
	if (!rc)
		rc = span_decode(ar, i, off, len, cbuf, &s);
	if (!rc && s.copied < 0)
		rc = -EIO; /* the span ended before the chunk asked for */
	atomic_fetch_add(&ar->spans_loaded, 1);
out:
	free(s.buf);
	free(cbuf);
	return rc ? rc : s.copied;
}

static bool inflight_has(struct archive *ar, size_t span)
{
	struct inflight *it;

	for (it = ar->loading; it; it = it->next)
		if (it->span == span)
			return true;
	return false;
}

/* Collapses concurrent misses of one span into one fetch: the first
 * reader loads, the others wait and then find the chunk in the cache. */
static ssize_t span_read(struct archive *ar, size_t i, uint64_t j, size_t off,
			 size_t len, void *dst)
{
	struct inflight me = { .span = i };
	struct inflight **pp;
	ssize_t n;

	for (;;) {
		n = cache_read(ar->cache, chunk_key(i, j), off, len, dst);
		if (n != -ENOENT)
			return n;
		pthread_mutex_lock(&ar->lock);
		if (!inflight_has(ar, i))
			break;
		pthread_cond_wait(&ar->loaded, &ar->lock);
		pthread_mutex_unlock(&ar->lock);
	}
	me.next = ar->loading;
	ar->loading = &me;
	pthread_mutex_unlock(&ar->lock);

	n = span_load(ar, i, j, off, len, dst);

	pthread_mutex_lock(&ar->lock);
	for (pp = &ar->loading; *pp != &me; pp = &(*pp)->next)
		;
	*pp = me.next;
	pthread_cond_broadcast(&ar->loaded);
	pthread_mutex_unlock(&ar->lock);
	return n;
}

/* Reads len bytes of the uncompressed stream at uoff. 0 or -errno. */
static int stream_read(struct archive *ar, uint64_t uoff, size_t len,
		       unsigned char *dst)
{
	const struct seek_index *si = ar->si;

	while (len) {
		size_t i, off, want, clen;
		uint64_t rel, j, usize;
		ssize_t n;

		if (uoff >= si->usize)
			return -EIO;
		i = seek_index_find(si, uoff);
		rel = uoff - seek_span_ustart(si, i);
		usize = seek_span_usize(si, i);
		j = rel / ARCHIVE_CHUNK;
		off = rel % ARCHIVE_CHUNK;
		clen = usize - j * ARCHIVE_CHUNK;
		if (clen > ARCHIVE_CHUNK)
			clen = ARCHIVE_CHUNK;
		want = clen - off < len ? clen - off : len;
		n = span_read(ar, i, j, off, want, dst);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		uoff += (size_t)n;
		dst += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sparse file: zeros, except where a segment's stored bytes go. */
static int sparse_read(struct archive *ar, const struct tree_node *n,
		       uint64_t off, size_t len, unsigned char *dst)
{
	const struct tree_sparse_map *m = n->u.sparse;
	uint64_t stored = n->data_off;
	size_t k;

	memset(dst, 0, len);
	for (k = 0; k < m->n; k++) {
		const struct tar_sparse *sg = &m->seg[k];
		uint64_t a = off > sg->off ? off : sg->off;
		uint64_t b = off + len < sg->off + sg->len ? off + len
							   : sg->off + sg->len;
		int rc;

		if (a < b) {
			rc = stream_read(ar, stored + (a - sg->off), b - a,
					 dst + (a - off));
			if (rc)
				return rc;
		}
		stored += sg->len;
	}
	return 0;
}

ssize_t archive_read(struct archive *ar, uint32_t node, uint64_t off,
		     size_t len, void *buf)
{
	const struct tree_node *n = tree_node(ar->tree, node);
	int rc;

	if (!n)
		return -EINVAL;
	if (S_ISDIR(n->mode))
		return -EISDIR;
	if (!S_ISREG(n->mode))
		return -EINVAL;
	if (off >= n->size)
		return 0;
	if (len > n->size - off)
		len = n->size - off;
	if (n->u.sparse)
		rc = sparse_read(ar, n, off, len, buf);
	else
		rc = stream_read(ar, n->data_off + off, len, buf);
	return rc ? rc : (ssize_t)len;
}

void archive_get_stats(struct archive *ar, struct archive_stats *st)
{
	struct cache_stats cs;

	cache_get_stats(ar->cache, &cs);
	memset(st, 0, sizeof(*st));
	st->cache.hits = cs.hits;
	st->cache.misses = cs.misses;
	st->cache.bytes = cs.bytes;
	st->spans_loaded = atomic_load(&ar->spans_loaded);
	st->verify_fail = atomic_load(&ar->verify_fail);
	st->index_mem = tree_mem_usage(ar->tree) +
			seek_index_mem_usage(ar->si);
}
