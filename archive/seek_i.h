/* SPDX-License-Identifier: MIT */
/*
 * seek_i.h - internals shared by seek.c (index, points, digests, none codec)
 * and the codec back ends seek_gz.c and seek_zstd.c.
 *
 * A codec back end is a table of function pointers (struct seek_ops). The
 * back end decompresses and calls back into seek.c:
 *   seek_ix_consume()  for every compressed byte it has consumed, in order
 *                      (advances coff, feeds the span digest);
 *   seek_ix_output()   for every uncompressed byte (advances uoff, hands it
 *                      to the caller's callback);
 *   seek_ix_want() / seek_ix_point() at a place where a span may start.
 *
 * A new point stays "pending" until the first uncompressed byte after it
 * comes out: so the last span is never empty, and a later candidate at the
 * same uncompressed offset (a gzip member start after an empty final block,
 * a zstd frame after a skippable frame) may replace it.
 */
#ifndef SFFS_SEEK_I_H
#define SFFS_SEEK_I_H

#include <openssl/evp.h>

#include "sffs/seek.h"

#define SEEK_MIN_SPACING (64u * 1024)
/* Output buffer of the indexers (past the 32 KiB window kept before it). */
#define SEEK_IX_OUTBUF (512u * 1024)
/* Output buffer of the span decoders. */
#define SEEK_DEC_OUTBUF (256u * 1024)
/* deflate level for the stored windows. Measured on a tar of 300 MB of
 * shared libraries at 1 MiB spacing: level 1 gives 12.9 KB per window and
 * indexes at 200 MB/s (CPU); level 6 gives 11.8 KB but 171 MB/s. */
#ifndef SEEK_WINDOW_LEVEL
#define SEEK_WINDOW_LEVEL 1
#endif
#define SEEK_ERRLEN 256
#define SEEK_CODECS 3 /* enum seek_codec's values */

struct seek_indexer;
struct seek_decoder;

struct seek_ops {
	/* Indexer back end: state in ix->cs. */
	int (*ix_init)(struct seek_indexer *ix);
	void (*ix_free)(struct seek_indexer *ix);
	int (*ix_feed)(struct seek_indexer *ix, const unsigned char *p,
		       size_t len);
	/* End of input: -EBADMSG (with seek_ix_fail) if the stream is cut. */
	int (*ix_finish)(struct seek_indexer *ix);
	/* Decoder back end: state in d->cs. */
	int (*dec_init)(struct seek_decoder *d);
	void (*dec_free)(struct seek_decoder *d);
	int (*dec_feed)(struct seek_decoder *d, const unsigned char *p,
			size_t len);
	/* Makes d->cs, a state of an earlier decoder of this codec taken
	 * from the pool, ready for d's point; on failure the caller frees it
	 * with dec_free. NULL: the codec's states are not pooled. */
	int (*dec_reuse)(struct seek_decoder *d);
};

extern const struct seek_ops seek_gz_ops;
extern const struct seek_ops seek_zstd_ops;

struct seek_indexer {
	const struct seek_ops *ops;
	enum seek_codec codec;
	uint64_t spacing;
	seek_out_cb out;
	void *arg;
	seek_spill_cb spill;
	void *spill_arg;
	void *cs; /* codec state */

	uint64_t coff;		 /* compressed bytes consumed so far */
	uint64_t uoff;		 /* uncompressed bytes produced so far */
	uint64_t member_uoff;	 /* uoff where the current gzip member began */
	unsigned char last_byte; /* byte coff - 1 */
	int rc;			 /* sticky failure */
	bool finished;

	struct seek_point *pts; /* committed points */
	size_t n, cap;
	bool pending;
	struct seek_point pend;
	EVP_MD_CTX *md;	     /* digest of the current (last) span */
	EVP_MD_CTX *md_prev; /* while pending: pts[n-1]'s span, extended */

	char err[SEEK_ERRLEN];
	char warn[SEEK_ERRLEN];
	bool has_warn;
};

struct seek_decoder {
	const struct seek_index *si;
	const struct seek_ops *ops;
	size_t i;
	const struct seek_point *pt; /* == &ptcopy */
	struct seek_point ptcopy;
	uint64_t usize; /* bytes this span yields */
	uint64_t done;	/* bytes yielded so far */
	seek_out_cb out;
	void *arg;
	void *cs;
};

/* The compressed bytes [p, p + len) were consumed, in stream order. */
int seek_ix_consume(struct seek_indexer *ix, const unsigned char *p,
		    size_t len);
/* Uncompressed bytes came out: commits a pending point, calls ix->out. */
int seek_ix_output(struct seek_indexer *ix, const unsigned char *p, size_t len);
/* Whether a point at the current offsets would be recorded. member: a
 * gzip member starts here (may replace a pending block point). */
bool seek_ix_want(const struct seek_indexer *ix, bool member);
/* Records a point at (ix->coff, ix->uoff). window (malloc'd, wlen bytes,
 * may be NULL) is taken over, also on failure. */
int seek_ix_point(struct seek_indexer *ix, uint8_t bits, uint8_t flags,
		  unsigned char *window, uint32_t wlen);
/* Sets the error message; returns -EBADMSG (the stream is corrupt). */
int seek_ix_fail(struct seek_indexer *ix, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void seek_ix_warn(struct seek_indexer *ix, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Bytes the decoder may still yield. */
static inline uint64_t seek_dec_left(const struct seek_decoder *d)
{
	return d->usize - d->done;
}

/* Hands decoded bytes (at most seek_dec_left) to the caller. */
int seek_dec_output(struct seek_decoder *d, const unsigned char *p, size_t len);

#endif
