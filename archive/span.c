/* SPDX-License-Identifier: MIT */
/*
 * span.c - the read path: cached chunk, else verified blocks -> decode.
 *
 * A chunk is ARCHIVE_CHUNK decoded bytes of one span, keyed by
 * (archive id, span << 32 | chunk). A span is decoded from its seek
 * point, fed from the verified blocks (blocks.h) that cover its
 * compressed bytes: no byte is decoded, cached or served before its block
 * matched its SHA-256.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sffs/log.h"

#include "archive_i.h"

/* Local keys; the archive's id is their owner, so caches may be shared
 * by every archive of the process. */
static uint64_t chunk_key(size_t span, uint64_t chunk)
{
	return ((uint64_t)span << ARCHIVE_SPAN_SHIFT) | chunk;
}

/* ---- windows: a bounded LRU in front of the index or spill file ---- */

/* Windows of consecutive points lie one after the other in the index
 * (or the spill file): one read brings a run of them, so a sequential
 * reader pays one request per WINDOW_RUN_BYTES of windows, not one per
 * span. */
#define WINDOW_RUN_BYTES (256u * 1024)

static int window_bytes(struct archive *ar, uint64_t off, size_t len,
			unsigned char *buf, const struct archive_req *rq)
{
	if (ar->idx)
		return fetch_range_until(ar->idx,
					 ar->ih.sec[INDEX_WINDOWS].off + off,
					 len, buf, 0, rq->deadline_ns);
	return archive_spill_read(ar, off, len, buf);
}

/* The points from i on (before kmax) whose windows follow i's without a
 * gap and are not cached yet, up to WINDOW_RUN_BYTES: [i, *end). */
static size_t window_run(struct archive *ar, size_t i, size_t kmax,
			 uint64_t *bytes)
{
	const struct seek_point *pts = ar->si->pts;
	uint64_t next = pts[i].woff + pts[i].wlen;
	size_t k = i + 1;

	*bytes = pts[i].wlen;
	if (kmax > ar->si->n)
		kmax = ar->si->n;
	for (; k < kmax; k++) {
		struct chunk *c;

		if (!pts[k].wlen)
			continue;
		if (pts[k].woff != next ||
		    *bytes + pts[k].wlen > WINDOW_RUN_BYTES)
			break;
		c = cache_get(ar->wcache, ar->id, k);
		if (c) {
			cache_chunk_put(c);
			break;
		}
		next += pts[k].wlen;
		*bytes += pts[k].wlen;
	}
	return k;
}

/* Checks each window of the run against its digest and caches it;
 * *out gets point i's. */
static int window_split(struct archive *ar, size_t i, size_t end,
			const unsigned char *buf, struct chunk **out)
{
	const struct seek_point *pts = ar->si->pts;
	uint64_t base = pts[i].woff;
	unsigned char md[32];
	size_t k;

	for (k = i; k < end; k++) {
		const unsigned char *w = buf + (pts[k].woff - base);
		struct chunk *c;

		if (!pts[k].wlen)
			continue;
		if (!EVP_Digest(w, pts[k].wlen, md, NULL, EVP_sha256(), NULL) ||
		    memcmp(md, pts[k].wdigest, sizeof(md)))
			return k == i ? -EBADMSG : 0;
		c = cache_chunk_new(ar->wcache, pts[k].wlen);
		if (!c)
			return k == i ? -ENOMEM : 0;
		memcpy(c->data, w, pts[k].wlen);
		c->len = pts[k].wlen;
		atomic_fetch_add(&ar->windows_loaded, 1);
		cache_insert(ar->wcache, ar->id, k, c);
		if (k == i)
			*out = c;
		else
			cache_chunk_put(c);
	}
	return 0;
}

static int wfail_check(struct archive *ar, size_t i)
{
	struct wfail_slot *w = &ar->wfail[i % WFAIL_SLOTS];
	int rc = 0;

	/* held only until a window loads again, WFAIL_HOLD_NS at most */
	pthread_mutex_lock(&ar->seq_lock);
	if (w->when && w->point == i &&
	    w->loaded == atomic_load(&ar->windows_loaded) &&
	    fetch_now_ns() - w->when < WFAIL_HOLD_NS)
		rc = w->err;
	pthread_mutex_unlock(&ar->seq_lock);
	return rc;
}

static void wfail_note(struct archive *ar, size_t i, int err)
{
	struct wfail_slot *w = &ar->wfail[i % WFAIL_SLOTS];

	pthread_mutex_lock(&ar->seq_lock);
	w->point = i;
	w->when = fetch_now_ns();
	w->loaded = atomic_load(&ar->windows_loaded);
	w->err = err;
	pthread_mutex_unlock(&ar->seq_lock);
}

/* Point i's window with a reference (NULL for a point without one).
 * upto: the points up to it (included) hold bytes the reader wants. */
static int window_get(struct archive *ar, size_t i, size_t upto,
		      const struct archive_req *rq, struct chunk **out)
{
	const struct seek_point *pt = &ar->si->pts[i];
	unsigned char *buf;
	uint64_t bytes;
	size_t end;
	int rc;

	*out = NULL;
	if (!pt->wlen)
		return 0;
	*out = cache_get(ar->wcache, ar->id, i);
	if (*out)
		return 0;
	rc = wfail_check(ar, i);
	if (rc)
		return rc;
	/* A run for a reader going forward (the last window loaded was the
	 * point before), or over the spans of the file being read (its
	 * readers decode them at once, in any order): one request. Other
	 * random readers fetch one window each. */
	if (atomic_exchange(&ar->last_window, i + 1) == i)
		end = window_run(ar, i, ar->si->n, &bytes);
	else
		end = window_run(ar, i, upto + 1, &bytes);
	buf = malloc((size_t)bytes);
	if (!buf)
		return -ENOMEM;
	rc = window_bytes(ar, pt->woff, (size_t)bytes, buf, rq);
	if (!rc)
		rc = window_split(ar, i, end, buf, out);
	free(buf);
	if (rc) {
		log_err("%s: window of seek point %zu is unusable: %s",
			fetch_url(ar->idx ? ar->idx : ar->f), i, strerror(-rc));
		cache_chunk_put(*out);
		*out = NULL;
		wfail_note(ar, i, rc);
		return rc;
	}
	return 0;
}

/* ---- decoding a span into chunks ---- */

/* Gathers decoded output into chunks and stores them; keeps a reference
 * to chunk `want`. */
struct sink {
	struct archive *ar;
	size_t span;
	uint64_t chunk;	   /* index of the chunk being filled */
	struct chunk *cur; /* being filled */
	uint64_t want;	   /* the chunk the reader asked for */
	struct chunk *got; /* its reference, once made */
	uint64_t stop;	   /* stop decoding after this chunk */
	/* once this many bytes of the span are decoded, stop before a block
	 * that is not held (fetch nothing past the bytes wanted) */
	uint64_t need;
	int err;
};

static uint64_t sink_decoded(const struct sink *s)
{
	return s->chunk * ARCHIVE_CHUNK + (s->cur ? s->cur->len : 0);
}

static int sink_flush(struct sink *s)
{
	/* A span's last chunk is often short: keep it in a buffer of its
	 * size, not in a whole 256 KiB one (a copy of under 128 KiB). */
	if (s->cur->len < s->cur->cap / 2) {
		struct chunk *small =
		    cache_chunk_new(s->ar->cache, s->cur->len);

		if (small) {
			memcpy(small->data, s->cur->data, s->cur->len);
			small->len = s->cur->len;
			cache_chunk_put(s->cur);
			s->cur = small;
		}
	}
	cache_insert(s->ar->cache, s->ar->id, chunk_key(s->span, s->chunk),
		     s->cur);
	if (s->chunk == s->want)
		s->got = s->cur;
	else
		cache_chunk_put(s->cur);
	s->cur = NULL;
	s->chunk++;
	return s->chunk > s->stop ? 1 : 0;
}

static int sink_out(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;
	const unsigned char *p = data;

	while (len) {
		size_t n;

		if (!s->cur) {
			s->cur = cache_chunk_new(s->ar->cache, ARCHIVE_CHUNK);
			if (!s->cur) {
				s->err = -ENOMEM;
				return -ENOMEM;
			}
		}
		n = ARCHIVE_CHUNK - s->cur->len;
		if (n > len)
			n = len;
		memcpy(s->cur->data + s->cur->len, p, n);
		s->cur->len += n;
		p += n;
		len -= n;
		if (s->cur->len == ARCHIVE_CHUNK && sink_flush(s))
			return 1; /* far enough: stop the decoder */
	}
	return 0;
}

/* The last block worth queueing ahead for the first `need` decoded
 * bytes of a span of usize bytes from compressed [off, off + len): in
 * proportion, plus an eighth of the span for an uneven ratio. */
static uint64_t want_limit(struct archive *ar, uint64_t off, uint64_t len,
			   uint64_t need, uint64_t usize)
{
	uint64_t first, last, est;

	blocks_span(ar->blocks, off, len, &first, &last);
	if (!usize || need >= usize)
		return last;
	est =
	    (uint64_t)((double)len * ((double)need / (double)usize)) + len / 8;
	if (est >= len)
		return last;
	blocks_span(ar->blocks, off, est + 1, &first, &est);
	return est;
}

/* Block b for the decoder: once the bytes wanted are decoded, only a
 * block already held (-ENOENT otherwise: stop there). */
static int feed_get(struct archive *ar, uint64_t b, struct archive_req *rq,
		    const struct sink *s, uint64_t usize,
		    const struct block **blk)
{
	/* need < usize is whole chunks: those up to it are stored. (A span
	 * is always decoded to its end once wanted there: its last chunk may
	 * be short and its last block hold only the stream's end.) */
	if (s->need < usize && sink_decoded(s) >= s->need)
		return blocks_peek(ar->blocks, b, blk);
	return blocks_get(ar->blocks, b, rq->deadline_ns, rq->cancel, blk);
}

/* Feeds the span's compressed bytes [off, off + len) from the verified
 * blocks, queueing the blocks ahead so the fetchers merge them: those
 * the wanted bytes probably need (want_limit); a block past them is
 * fetched alone, when the decoder gets there and still wants bytes. */
static int feed_blocks(struct archive *ar, struct seek_decoder *d, uint64_t off,
		       uint64_t len, uint64_t usize, struct archive_req *rq,
		       struct sink *s)
{
	uint64_t b, first, last, wanted = 0, step, wlast;
	int rc = 0;

	blocks_span(ar->blocks, off, len, &first, &last);
	wlast = want_limit(ar, off, len, s->need, usize);
	step = ar->o.blocks.merge_max / blocks_size(ar->blocks);
	if (!step)
		step = 1;
	for (b = first; b <= last && !rc; b++) {
		const struct block *blk;
		uint64_t boff = b * blocks_size(ar->blocks), a, z;

		if (b >= wanted && b <= wlast) {
			wanted = b + step;
			blocks_want(ar->blocks, b,
				    wanted - 1 < wlast ? wanted - 1 : wlast,
				    rq->deadline_ns);
		}
		rc = feed_get(ar, b, rq, s, usize, &blk);
		if (rc == -ENOENT)
			return 1; /* the rest is not held and not wanted */
		if (rc)
			break;
		a = off > boff ? off - boff : 0;
		z = off + len - boff < blk->len ? off + len - boff : blk->len;
		rc = seek_decoder_feed(d, blk->data + a, (size_t)(z - a),
				       sink_out, s);
		blocks_release(ar->blocks, blk);
	}
	return rc;
}

static const char *span_errmsg(int rc)
{
	return rc == -ETIMEDOUT ? "deadline passed waiting for the origin"
	       : rc == -EINTR	? "interrupted"
				: strerror(-rc);
}

/* The decoded bytes of span i a reader of chunk j wants, whose bytes end
 * at uend in the stream: whole chunks up to uend (a chunk is cached
 * whole or not at all), or the whole span when uend is past it. */
static uint64_t span_need(struct archive *ar, size_t i, uint64_t j,
			  uint64_t uend)
{
	uint64_t start = seek_span_ustart(ar->si, i);
	uint64_t usize = seek_span_usize(ar->si, i), need;

	if (uend <= start || uend - start >= usize)
		return usize;
	need =
	    (uend - start + ARCHIVE_CHUNK - 1) / ARCHIVE_CHUNK * ARCHIVE_CHUNK;
	if (need < (j + 1) * ARCHIVE_CHUNK)
		need = (j + 1) * ARCHIVE_CHUNK;
	return need < usize ? need : usize;
}

/* Decodes span i from its start up to chunk j, and further (a few chunks
 * at most) only as far as the bytes the reader wants (up to uend in the
 * stream) or the blocks already held go: a cold read of a file that ends
 * early in a span fetches no block past it. *out gets a reference to
 * chunk j. */
static int span_load(struct archive *ar, size_t i, uint64_t j, uint64_t uend,
		     struct archive_req *rq, struct chunk **out)
{
	struct sink s = {.ar = ar,
			 .span = i,
			 .want = j,
			 .stop = j + READAHEAD_CHUNKS,
			 .need = span_need(ar, i, j, uend)};
	size_t upto = uend ? seek_index_find(ar->si, uend - 1) : i;
	struct seek_decoder *d = NULL;
	struct chunk *w = NULL;
	uint64_t off, len;
	int rc;

	seek_span_crange(ar->si, i, &off, &len);
	rc = window_get(ar, i, upto, rq, &w);
	if (!rc) {
		d = seek_decoder_new_window(ar->si, i, w ? w->data : NULL,
					    ar->si->pts[i].wlen);
		rc = d ? 0 : -EIO;
	}
	cache_chunk_put(w);
	if (!rc)
		rc = len ? feed_blocks(ar, d, off, len,
				       seek_span_usize(ar->si, i), rq, &s)
			 : 0;
	if (rc == 0) {
		rc = seek_decoder_finish(d);
		if (!rc && s.cur && s.cur->len)
			sink_flush(&s);
	} else if (rc == 1) {
		rc = 0; /* stopped early on purpose */
	}
	if (s.err)
		rc = s.err;
	cache_chunk_put(s.cur);
	seek_decoder_free(d);
	atomic_fetch_add(&ar->spans_loaded, 1);
	if (!rc && !s.got)
		rc = -EBADMSG; /* the span ended before the chunk asked for */
	if (rc) {
		cache_chunk_put(s.got);
		if (rc != -EINTR)
			log_err("%s: decoding span %zu failed: %s",
				fetch_url(ar->f), i, span_errmsg(rc));
		return rc;
	}
	*out = s.got;
	return 0;
}

/* ---- one decoder per span; its readers wait ---- */

static struct inflight *inflight_find(struct archive *ar, size_t span)
{
	struct inflight *it;

	for (it = ar->loading; it; it = it->next)
		if (it->span == span)
			return it;
	return NULL;
}

static void inflight_unref(struct inflight *it)
{
	if (--it->refs == 0)
		free(it);
}

/* Waits for the decoder of it; 0 once it succeeded, else its error (or
 * our deadline's, or -EINTR). Called and returns with ar->lock held. */
static int inflight_wait(struct archive *ar, struct inflight *it,
			 struct archive_req *rq)
{
	struct timespec ts = {
	    .tv_sec = (time_t)(rq->deadline_ns / 1000000000u),
	    .tv_nsec = (long)(rq->deadline_ns % 1000000000u),
	};
	int rc = 0;

	it->refs++;
	while (!it->done) {
		if (rq->cancel && atomic_load(rq->cancel)) {
			rc = -EINTR;
			break;
		}
		if (pthread_cond_timedwait(&ar->loaded, &ar->lock, &ts) ==
			ETIMEDOUT &&
		    !it->done) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	if (!rc)
		rc = it->err;
	inflight_unref(it);
	return rc;
}

/* Chunk j of span i with a reference: from the cache, else decoded once
 * for all concurrent readers. A failed decode fails them all at once. */
static int span_chunk(struct archive *ar, size_t i, uint64_t j, uint64_t uend,
		      struct archive_req *rq, struct chunk **out)
{
	struct inflight *it;
	int rc;

	for (;;) {
		*out = cache_get(ar->cache, ar->id, chunk_key(i, j));
		if (*out)
			return 0;
		if (rq->nowait)
			return -EAGAIN;
		pthread_mutex_lock(&ar->lock);
		it = inflight_find(ar, i);
		if (!it)
			break;
		rc = inflight_wait(ar, it, rq);
		pthread_mutex_unlock(&ar->lock);
		if (rc)
			return rc;
	}
	it = calloc(1, sizeof(*it));
	if (!it) {
		pthread_mutex_unlock(&ar->lock);
		return -ENOMEM;
	}
	it->span = i;
	it->refs = 1;
	it->next = ar->loading;
	ar->loading = it;
	pthread_mutex_unlock(&ar->lock);

	rc = span_load(ar, i, j, uend, rq, out);

	pthread_mutex_lock(&ar->lock);
	for (struct inflight **pp = &ar->loading; *pp; pp = &(*pp)->next) {
		if (*pp == it) {
			*pp = it->next;
			break;
		}
	}
	it->done = true;
	/* A decoder interrupted or past its own deadline says nothing about
	 * the span: its waiters (with their own deadlines) try again. */
	it->err = rc == -EINTR || rc == -ETIMEDOUT ? -EAGAIN : rc;
	inflight_unref(it);
	pthread_cond_broadcast(&ar->loaded);
	pthread_mutex_unlock(&ar->lock);
	return rc;
}

/* ---- reads ---- */

/* The piece of the tar stream at uoff (at most len bytes): a chunk
 * reference, the offset in it and the length. uend: where the bytes the
 * reader may want end (its file's end), which bounds what is fetched. */
int span_piece(struct archive *ar, uint64_t uoff, size_t len, uint64_t uend,
	       struct archive_req *rq, struct chunk **ch, size_t *coff,
	       size_t *clen)
{
	const struct seek_index *si = ar->si;
	uint64_t rel, j, usize, have;
	size_t i;
	int rc;

	if (uoff >= si->usize)
		return -EBADMSG; /* past the stream: the index lies */
	i = seek_index_find(si, uoff);
	rel = uoff - seek_span_ustart(si, i);
	usize = seek_span_usize(si, i);
	j = rel / ARCHIVE_CHUNK;
	for (;;) {
		rc = span_chunk(ar, i, j, uend, rq, ch);
		if (rc != -EAGAIN || rq->nowait)
			break; /* -EAGAIN: its decoder was interrupted */
	}
	if (rc)
		return rc;
	*coff = (size_t)(rel % ARCHIVE_CHUNK);
	have = (*ch)->len > *coff ? (*ch)->len - *coff : 0;
	if (j * ARCHIVE_CHUNK + (*ch)->len > usize || !have) {
		cache_chunk_put(*ch);
		return -EBADMSG; /* a chunk that does not fit its span */
	}
	*clen = have < len ? (size_t)have : len;
	return 0;
}

void span_req_defaults(struct archive *ar, struct archive_req *rq)
{
	if (!rq->deadline_ns)
		rq->deadline_ns =
		    fetch_now_ns() + (uint64_t)ar->o.timeout_s * 1000000000u;
}

void archive_req_release(struct archive_req *rq)
{
	size_t k;

	for (k = 0; k < rq->n; k++)
		cache_chunk_put(rq->ref[k]);
	rq->n = 0;
}

/* ---- sequential readers: prefetch the blocks ahead of them ---- */

/* Queues prefetches for the compressed bytes behind file bytes
 * [from, to) of a non-sparse node. */
static void prefetch_file(struct archive *ar, const struct tree_node *n,
			  uint64_t from, uint64_t to)
{
	const struct seek_index *si = ar->si;
	uint64_t a, z, c0, c1, len, b0, b1;
	size_t i0, i1;

	if (to > n->size)
		to = n->size;
	if (from >= to)
		return;
	a = n->data_off + from;
	z = n->data_off + to - 1;
	i0 = seek_index_find(si, a);
	i1 = seek_index_find(si, z);
	seek_span_crange(si, i0, &c0, &len);
	blocks_span(ar->blocks, c0, len ? len : 1, &b0, &b1);
	seek_span_crange(si, i1, &c1, &len);
	if (!len)
		return;
	/* the last span only as far as the file goes in it */
	b1 = want_limit(ar, c1, len, span_need(ar, i1, 0, z + 1),
			seek_span_usize(si, i1));
	if (b1 < b0)
		return;
	blocks_prefetch(ar->blocks, b0, b1);
}

/* Follows reads of node; a second read that starts where the last one
 * ended makes it a sequential reader, whose next `readahead` bytes are
 * prefetched (in steps of a quarter of that, so requests stay large). */
void span_follow(struct archive *ar, uint32_t node, const struct tree_node *n,
		 uint64_t off, size_t len)
{
	struct seq_slot *sl = &ar->seq[node % SEQ_SLOTS];
	uint64_t from = 0, to = 0, ra = ar->o.readahead, end = off + len;
	bool seq;

	if (!ra || n->u.sparse)
		return;
	pthread_mutex_lock(&ar->seq_lock);
	/* The kernel's own readahead may send neighbouring reads out of
	 * order: near the last end counts as sequential. */
	seq = sl->used && sl->node == node && off <= sl->next + ra / 4 &&
	      end + ra / 4 >= sl->next;
	if (!seq) {
		sl->used = true;
		sl->node = node;
		sl->next = end;
		sl->ahead = end;
	} else {
		if (end > sl->next)
			sl->next = end;
		if (sl->ahead < end)
			sl->ahead = end;
		if (sl->ahead < end + ra - ra / 4) {
			from = sl->ahead;
			to = end + ra;
			sl->ahead = to;
		}
	}
	pthread_mutex_unlock(&ar->seq_lock);
	if (to > from)
		prefetch_file(ar, n, from, to);
}

int span_check_node(struct archive *ar, uint32_t node, uint64_t off,
		    size_t *len, const struct tree_node **out)
{
	const struct tree_node *n = tree_node(ar->tree, node);

	if (!n)
		return -EINVAL;
	if (S_ISDIR(n->mode))
		return -EISDIR;
	if (!S_ISREG(n->mode))
		return -EINVAL;
	if (off >= n->size)
		*len = 0;
	else if (*len > n->size - off)
		*len = (size_t)(n->size - off);
	*out = n;
	return 0;
}

ssize_t archive_read_iov(struct archive *ar, uint32_t node, uint64_t off,
			 size_t len, struct archive_req *rq)
{
	const struct tree_node *n;
	uint64_t uoff;
	size_t done = 0;
	int rc = span_check_node(ar, node, off, &len, &n);

	rq->n = 0;
	if (rc)
		return rc;
	if (n->u.sparse || relview_copy_only(ar, node))
		return -ENOTSUP;
	span_req_defaults(ar, rq);
	if (!rq->nowait && len)
		span_follow(ar, node, n, off, len);
	uoff = n->data_off + off;
	while (done < len) {
		size_t coff, clen;
		struct chunk *ch;

		if (rq->n == ARCHIVE_IOV_MAX) {
			rc = -ENOTSUP;
			break;
		}
		rc = span_piece(ar, uoff + done, len - done,
				n->data_off + n->size, rq, &ch, &coff, &clen);
		if (rc)
			break;
		rq->ref[rq->n] = ch;
		rq->iov[rq->n].base = ch->data + coff;
		rq->iov[rq->n].len = clen;
		rq->n++;
		done += clen;
	}
	if (rc) {
		archive_req_release(rq);
		return rc;
	}
	return (ssize_t)len;
}

void archive_wake(struct archive *ar)
{
	pthread_mutex_lock(&ar->lock);
	pthread_cond_broadcast(&ar->loaded);
	pthread_mutex_unlock(&ar->lock);
	blocks_wake(ar->blocks);
}

void archive_get_stats(struct archive *ar, struct archive_stats *st)
{
	struct cache_stats cs, ws;

	cache_get_stats(ar->cache, &cs);
	cache_get_stats(ar->wcache, &ws);
	memset(st, 0, sizeof(*st));
	st->cache.hits = cs.hits;
	st->cache.misses = cs.misses;
	st->cache.bytes = cs.bytes;
	st->spans_loaded = atomic_load(&ar->spans_loaded);
	st->windows_loaded = atomic_load(&ar->windows_loaded);
	st->window_mem = ws.bytes;
	if (ar->blocks) {
		blocks_get_stats(ar->blocks, &st->blocks);
		blockstore_get_stats(blocks_store(ar->blocks), &st->store);
	}
	st->verify_fail = st->blocks.verify_fail;
	st->index_mem = tree_mem_usage(ar->tree) + seek_index_mem_usage(ar->si);
}
