/* SPDX-License-Identifier: MIT */
/*
 * repack.h - rewrite a tarball as a seekable .tar.gz.
 *
 * The output holds the same tar stream, byte for byte, compressed so that
 * every member (from its first header block) and every REPACK_CHUNK of a
 * large member starts a new gzip member. It stays a valid .tar.gz that
 * `tar -xzf` extracts unchanged (gzip reads concatenated members), and a
 * seek point at a member start needs no 32 KiB window, so its index has
 * no window section to speak of. The same idea as eStargz, without a TOC
 * inside the tarball: the TOC is the .sfidx beside it.
 *
 * Two streaming passes over the input (one to find where members start,
 * one to compress), bounded memory. Deterministic output.
 * Never includes FUSE headers.
 */
#ifndef SFFS_REPACK_H
#define SFFS_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "sffs/fetch.h"

#define REPACK_CHUNK (1024u * 1024) /* largest stretch in one gzip member */

struct repack_stats {
	uint64_t in_bytes, out_bytes, tar_bytes;
	uint64_t members; /* gzip members written */
};

/* Repacks the artifact behind in (tar, tar.gz or tar.zst) into out_path
 * (atomically). 0, or -errno with a one-line reason in err. */
int repack_gzip(struct fetch *in, const char *out_path, int level,
		struct repack_stats *st, char *err, size_t errlen);

#endif
