/* SPDX-License-Identifier: MIT */
/*
 * fuzz_seek_index.h - the body of fuzz_seek_gz and fuzz_seek_zstd: the seek
 * indexer of one codec over arbitrary bytes, then every span decoded on its
 * own and compared with the indexer's output.
 *
 * The input is indexed twice (in fuzzer-chosen pieces, then in one piece):
 * both runs must agree on the outcome and the points. On success the index
 * must hold together (points sorted, span ranges inside the input, span
 * digests matching the SHA-256 of the bytes they cover), and each span,
 * decoded from its compressed range in one piece and in random pieces,
 * must give exactly the indexer's bytes for that stretch.
 *
 * Define FUZZ_CODEC before including.
 */
#ifndef SFFS_FUZZ_SEEK_INDEX_H
#define SFFS_FUZZ_SEEK_INDEX_H

#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>

#include <openssl/sha.h>

#include "sffs/seek.h"

#define FUZZ_SPACING (64u * 1024)
/* Output kept per input; past it the run stops (decompression bombs). */
#define FUZZ_MAX_OUT (8u << 20)

static int collect(void *arg, const void *data, size_t len)
{
	return fuzz_buf_add(arg, data, len) ? -E2BIG : 0;
}

static int count(void *arg, const void *data, size_t len)
{
	size_t *n = arg;

	(void)data;
	if (len > FUZZ_MAX_OUT - *n)
		return -E2BIG;
	*n += len;
	return 0;
}

static int run_indexer(const uint8_t *data, size_t size, bool pieces,
		       seek_out_cb out, void *arg, struct seek_index **si)
{
	struct seek_indexer *ix;
	uint64_t seed = fuzz_seed(data, size);
	size_t off = 0;
	int rc = 0;

	ix = seek_indexer_new(FUZZ_CODEC, FUZZ_SPACING, out, arg);
	if (!ix)
		abort();
	while (off < size && rc == 0) {
		size_t n = pieces ? fuzz_piece(&seed, size - off) : size - off;

		rc = seek_indexer_feed(ix, data + off, n);
		off += n;
	}
	*si = NULL;
	if (rc == 0)
		rc = seek_indexer_finish(ix, si);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -E2BIG);
	if (rc == -EBADMSG)
		FUZZ_CHECK(seek_indexer_error(ix) && *seek_indexer_error(ix));
	FUZZ_CHECK((rc == 0) == (*si != NULL));
	seek_indexer_free(ix);
	return rc;
}

static void check_index(const struct seek_index *si, const uint8_t *data,
			size_t size, size_t usize)
{
	uint64_t total = 0;
	size_t i;

	FUZZ_CHECK(si->codec == FUZZ_CODEC && si->csize == size);
	FUZZ_CHECK(si->usize == usize && si->n >= 1 && si->pts[0].uoff == 0);
	for (i = 0; i < si->n; i++) {
		const struct seek_point *pt = &si->pts[i];
		unsigned char md[SEEK_DIGEST];
		uint64_t off, len;

		FUZZ_CHECK(pt->bits < 8 && pt->coff <= size);
		if (i > 0)
			FUZZ_CHECK(pt->uoff > si->pts[i - 1].uoff &&
				   pt->coff > si->pts[i - 1].coff);
		FUZZ_CHECK(seek_span_ustart(si, i) == pt->uoff);
		total += seek_span_usize(si, i);
		if (seek_span_usize(si, i))
			FUZZ_CHECK(seek_index_find(si, pt->uoff) == i);
		seek_span_crange(si, i, &off, &len);
		FUZZ_CHECK(off <= size && len <= size - off);
		SHA256(data + off, len, md);
		FUZZ_CHECK(memcmp(md, pt->digest, SEEK_DIGEST) == 0);
	}
	FUZZ_CHECK(total == usize);
}

struct cmp {
	const unsigned char *want; /* the span's bytes in the indexer output */
	size_t len, got;
};

static int compare(void *arg, const void *data, size_t len)
{
	struct cmp *c = arg;

	FUZZ_CHECK(len <= c->len - c->got);
	FUZZ_CHECK(memcmp(c->want + c->got, data, len) == 0);
	c->got += len;
	return 0;
}

static void decode_span(const struct seek_index *si, size_t i,
			const uint8_t *data, const unsigned char *out,
			uint64_t *seed)
{
	uint64_t off, len, pos = 0;
	static const unsigned char none[1];
	struct cmp c = {.want = (out ? out : none) + seek_span_ustart(si, i),
			.len = seek_span_usize(si, i)};
	struct seek_decoder *d = seek_decoder_new(si, i);
	int rc = 0;

	FUZZ_CHECK(d != NULL);
	seek_span_crange(si, i, &off, &len);
	while (pos < len && rc == 0) {
		size_t n = seed ? fuzz_piece(seed, len - pos) : len - pos;

		rc = seek_decoder_feed(d, data + off + pos, n, compare, &c);
		pos += n;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(seek_decoder_finish(d) == 0);
	FUZZ_CHECK(c.got == c.len);
	seek_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_buf out = {.max = FUZZ_MAX_OUT};
	struct seek_index *si = NULL, *si2 = NULL;
	uint64_t seed = fuzz_seed(data, size) ^ 0x5eed;
	size_t i, n2 = 0;
	int rc, rc2;

	rc = run_indexer(data, size, true, collect, &out, &si);
	rc2 = run_indexer(data, size, false, count, &n2, &si2);
	FUZZ_CHECK(rc == rc2);
	if (rc == 0) {
		FUZZ_CHECK(n2 == out.len && si2->n == si->n);
		for (i = 0; i < si->n; i++)
			FUZZ_CHECK(si->pts[i].coff == si2->pts[i].coff &&
				   si->pts[i].uoff == si2->pts[i].uoff &&
				   si->pts[i].bits == si2->pts[i].bits);
		check_index(si, data, size, out.len);
		for (i = 0; i < si->n; i++) {
			decode_span(si, i, data, out.p, NULL);
			decode_span(si, i, data, out.p, &seed);
		}
	}
	seek_index_free(si);
	seek_index_free(si2);
	fuzz_buf_free(&out);
	return 0;
}

#endif
