/* SPDX-License-Identifier: MIT */
/*
 * repack.h - rewrite a tarball as a seekable .tar.gz.
 *
 * The output holds the same tar stream, byte for byte, compressed so that
 * every member (from its first header block) and every REPACK_CHUNK of a
 * large member's data starts a new gzip member (a "piece"). It stays a
 * valid .tar.gz that `tar -xzf` extracts unchanged (gzip reads
 * concatenated members), and a seek point at a member start needs no
 * 32 KiB window, so its index has no window section to speak of. The same
 * idea as eStargz, without a TOC inside the tarball: the TOC is the .sfidx
 * beside it.
 *
 * Two streaming passes over the input (one to find where members start,
 * one to compress), memory bounded by the number of pieces (8 bytes each).
 * Deterministic output for a given input, level and zlib version. Single
 * threaded; independent calls may run in parallel.
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
	/* Output codec: SEEK_GZIP; SEEK_NONE for the default (gzip). */
	enum seek_codec to;
	/* Compression level 1-9, 0 for the codec's default (gzip 6). */
	int level;
};

struct repack_stats {
	uint64_t in_bytes, out_bytes, tar_bytes;
	uint64_t members; /* pieces written: gzip members */
	enum seek_codec in_codec, out_codec;
	int level; /* the level used */
};

/* Repacks the artifact behind in (tar, tar.gz or tar.zst, any number of
 * members or frames) into out_path, atomically: out_path is replaced only
 * on success. o may be NULL (all defaults). st is filled in, also on
 * failure as far as the work went. Returns 0, or -EINVAL (bad codec or
 * level; input that is not a tar archive), -EIO (corrupt or truncated
 * input, an artifact that changed between the passes), -E2BIG (a tar
 * field over the reader's limits), -ENOMEM, or the -errno of the failed
 * read or write; err gets a one-line reason. */
int repack_tarball(struct fetch *in, const char *out_path,
		   const struct repack_opts *o, struct repack_stats *st,
		   char *err, size_t errlen);

/* "gzip members": what st->members counts, for messages. */
const char *repack_piece_name(enum seek_codec c);

#endif
