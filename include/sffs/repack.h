/* SPDX-License-Identifier: MIT */
/*
 * repack.h - rewrite a tarball as a seekable .tar.gz or .tar.zst.
 *
 * The output holds the same tar stream, byte for byte, compressed so that
 * every member (from its first header block) and every REPACK_CHUNK of a
 * large member's data starts a new gzip member or zstd frame (a "piece").
 * It stays a valid .tar.gz / .tar.zst that `tar -xzf` / `tar --zstd -xf`
 * extracts unchanged (gzip and zstd both read concatenated pieces), and a
 * seek point at a piece start needs no 32 KiB window (gzip) and no decoding
 * from the start of the stream (zstd), so its index has no window section
 * and no span much over REPACK_CHUNK (the indexer groups pieces until a
 * span holds a quarter of its spacing). The same idea as eStargz, without
 * a TOC inside the tarball: the TOC is the .sfidx beside it.
 *
 * Every zstd frame records its content size and an XXH64 checksum.
 *
 * Two streaming passes over the input (one to find where members start,
 * one to compress), memory bounded by the number of pieces (8 bytes each).
 * Deterministic output for a given input, codec, level and zlib/libzstd
 * version. Single threaded; independent calls may run in parallel.
 * Never includes FUSE headers.
 */
#ifndef SFFS_REPACK_H
#define SFFS_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "sffs/fetch.h"
#include "sffs/seek.h"

#define REPACK_CHUNK (1024u * 1024) /* most member data in one piece */

struct repack_opts {
	/* Output codec: SEEK_GZIP or SEEK_ZSTD; SEEK_NONE follows the input
	 * (gzip for a plain tar). */
	enum seek_codec to;
	/* Compression level, 0 for the codec's default (gzip 6, zstd 6);
	 * gzip takes 1-9, zstd 1 to ZSTD_maxCLevel(). */
	int level;
};

struct repack_stats {
	uint64_t in_bytes, out_bytes, tar_bytes;
	uint64_t members; /* pieces written: gzip members or zstd frames */
	enum seek_codec in_codec, out_codec;
	int level; /* the level used */
};

/* Repacks the artifact behind in (tar, tar.gz or tar.zst, any number of
 * members or frames) into out_path, atomically: out_path is replaced only
 * on success. o may be NULL (all defaults). st is filled in, also on
 * failure as far as the work went. Returns 0, or -EINVAL (bad codec or
 * level; input that is not a tar archive), -EBADMSG (corrupt or
 * truncated gzip/zstd input), -EIO (a corrupt tar stream, an artifact
 * that changed between the passes), -E2BIG (a tar
 * field over the reader's limits), -ENOMEM, or the -errno of the failed
 * read or write; err gets a one-line reason. */
int repack_tarball(struct fetch *in, const char *out_path,
		   const struct repack_opts *o, struct repack_stats *st,
		   char *err, size_t errlen);

/* "gzip members", "zstd frames": what st->members counts, for messages. */
const char *repack_piece_name(enum seek_codec c);

#endif
