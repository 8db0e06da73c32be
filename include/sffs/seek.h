/* SPDX-License-Identifier: MIT */
/*
 * seek.h - random access into a compressed stream: seek points and spans.
 *
 * One streaming pass (seek_indexer_*) decompresses the whole artifact,
 * hands the uncompressed bytes on (to the tar parser), and records seek
 * points about every `spacing` uncompressed bytes:
 *   gzip - at deflate block boundaries: compressed offset, bit offset,
 *          uncompressed offset and the 32 KiB window before it (kept
 *          deflate-compressed); a point at the start of a gzip member needs
 *          no window (multi-member files, as pigz -i or a repacked tarball
 *          writes them, seek for free). Member CRC-32 and ISIZE are checked.
 *   zstd - at frame starts (frames are independent); small frames are
 *          grouped into one span. Frame checksums are checked.
 *   none - every `spacing` bytes.
 * Span i is the stretch between point i and point i+1 (the last one ends
 * at the end of the stream). For every span the indexer also records the
 * SHA-256 of its compressed bytes (seek_span_crange), so every later fetch
 * of a span can be verified before it is decompressed.
 *
 * A span is decoded on its own from its compressed bytes (seek_decoder_*),
 * fed in pieces of any size; output comes out in order.
 *
 * The indexer is single threaded. A finished struct seek_index is
 * immutable and may be shared by any number of threads, each with its own
 * decoders. Never includes FUSE headers; never does I/O.
 */
#ifndef SFFS_SEEK_H
#define SFFS_SEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum seek_codec { SEEK_NONE, SEEK_GZIP, SEEK_ZSTD };

#define SEEK_WINDOW 32768u
#define SEEK_DIGEST 32u /* SHA-256 */

enum seek_point_flags {
	SEEK_PT_MEMBER = 1 << 0, /* gzip: a member header starts at coff */
};

struct seek_point {
	uint64_t coff; /* compressed offset (gzip: first whole byte) */
	uint64_t uoff; /* uncompressed offset */
	uint8_t bits;  /* gzip: bits of byte coff-1 still to be read (0-7) */
	uint8_t flags;
	uint32_t wlen; /* bytes at window (deflate-compressed); 0 = none */
	unsigned char *window; /* NULL while not loaded (index.h: lazily) */
	unsigned char digest[SEEK_DIGEST]; /* SHA-256 of the span's bytes */
	/* Where an index file keeps the window (offset in its window
	 * section) and the window's SHA-256; set by index_load only. */
	uint64_t woff;
	unsigned char wdigest[SEEK_DIGEST];
};

struct seek_index {
	enum seek_codec codec;
	uint64_t csize;		/* compressed size (the artifact's size) */
	uint64_t usize;		/* uncompressed size */
	size_t n;		/* number of points (>= 1 once finished) */
	struct seek_point *pts; /* sorted by uoff and coff; pts[0].uoff == 0 */
};

/* Guesses the codec from the first bytes: 1f 8b gzip, 28 b5 2f fd (or a
 * skippable frame) zstd, else none. */
enum seek_codec seek_detect(const void *head, size_t len);
const char *seek_codec_name(enum seek_codec c);

struct seek_indexer;
/* Receives the uncompressed stream in order. Return 0 to go on, else a
 * -errno that seek_indexer_feed returns. */
typedef int (*seek_out_cb)(void *arg, const void *data, size_t len);

/* spacing: wanted uncompressed bytes between points (>= 64 KiB). NULL on
 * allocation failure. */
struct seek_indexer *seek_indexer_new(enum seek_codec c, uint64_t spacing,
				      seek_out_cb out, void *arg);
void seek_indexer_free(struct seek_indexer *ix);
/* Called once for every point that has a window, as soon as the point is
 * final: it may write the window elsewhere, set pt->woff and
 * pt->wdigest, free pt->window and set it to NULL, so that an index
 * holds no windows in memory however big the artifact. 0 or -errno
 * (which stops the indexer). */
typedef int (*seek_spill_cb)(void *arg, struct seek_point *pt);
void seek_indexer_set_spill(struct seek_indexer *ix, seek_spill_cb spill,
			    void *arg);
/* Feeds the next compressed bytes. 0, the out callback's error, or
 * -EBADMSG on corrupt data, a failed gzip CRC / ISIZE or zstd checksum
 * (integrity, not the network: seek_indexer_error says what, with the
 * compressed offset: "gzip: invalid distance too far back at compressed offset
 * 123456"). */
int seek_indexer_feed(struct seek_indexer *ix, const void *data, size_t len);
/* Declares the end of input: -EBADMSG if the stream is truncated. Bytes after
 * the last complete gzip member that are not a gzip member are ignored with
 * a warning (seek_indexer_warning) - as gzip does. On success *out gets the
 * index (caller owns it: seek_index_free). */
int seek_indexer_finish(struct seek_indexer *ix, struct seek_index **out);
const char *seek_indexer_error(const struct seek_indexer *ix);
/* A non-fatal note (e.g. trailing garbage), or NULL. */
const char *seek_indexer_warning(const struct seek_indexer *ix);

void seek_index_free(struct seek_index *si);
/* The span that holds uncompressed offset uoff (uoff < usize). */
size_t seek_index_find(const struct seek_index *si, uint64_t uoff);
/* Uncompressed extent of span i. */
uint64_t seek_span_ustart(const struct seek_index *si, size_t i);
uint64_t seek_span_usize(const struct seek_index *si, size_t i);
/* Compressed bytes to fetch to decode span i: [*off, *off + *len). For
 * gzip with bits != 0 this starts one byte before coff. The digest of
 * pts[i] covers exactly these bytes. */
void seek_span_crange(const struct seek_index *si, size_t i, uint64_t *off,
		      uint64_t *len);
/* Heap bytes held (points + windows). */
size_t seek_index_mem_usage(const struct seek_index *si);

struct seek_decoder;
/* A decoder for span i. NULL on allocation failure or a bad window. */
struct seek_decoder *seek_decoder_new(const struct seek_index *si, size_t i);
/* The same with point i's window given by the caller (wlen must be the
 * point's): a window cache keeps windows out of the index. The window is
 * read only during this call. */
struct seek_decoder *seek_decoder_new_window(const struct seek_index *si,
					     size_t i,
					     const unsigned char *window,
					     uint32_t wlen);
/* Frees d; its codec state (inflate or zstd context and output buffer)
 * goes back to a small process-wide pool that later decoders of any
 * archive reuse (at most 4 idle states per codec). NULL does nothing. */
void seek_decoder_free(struct seek_decoder *d);
/* Frees the idle pooled decoder states (an idle process gives their memory
 * back; call beside cache_trim). Thread safe. */
void seek_pool_trim(void);
/*
 * Feeds the next compressed bytes of the span (the first call starts at
 * seek_span_crange's *off). Uncompressed output goes to out in order,
 * starting at the span's ustart; output past the span's end is never
 * produced. out returning non-zero stops decoding and is returned.
 * Returns 0, or -EBADMSG on corrupt data (or a window that does not
 * inflate), -ENOMEM, -EIO on a codec state error.
 */
int seek_decoder_feed(struct seek_decoder *d, const void *data, size_t len,
		      seek_out_cb out, void *arg);
/* 0 if exactly seek_span_usize bytes came out, else -EBADMSG. */
int seek_decoder_finish(struct seek_decoder *d);

#endif
