/* SPDX-License-Identifier: MIT */
/* archive_i.h - internals shared by archive.c (indexing) and span.c (reads). */
#ifndef SFFS_ARCHIVE_I_H
#define SFFS_ARCHIVE_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "sffs/archive.h"
#include "sffs/cache.h"
#include "sffs/index.h"

/* Spans whose compressed bytes fit this are fetched whole, verified, then
 * decoded; larger ones (a huge zstd frame, say) are streamed twice in
 * pieces of SPAN_PIECE: once to verify, once to decode. */
#define SPAN_BUF_MAX (32u * 1024 * 1024)
#define SPAN_PIECE (4u * 1024 * 1024)
/* Within a large span, decode this many chunks past the one asked for. */
#define READAHEAD_CHUNKS 16

struct inflight {
	size_t span;
	struct inflight *next;
};

struct archive {
	struct fetch *f; /* borrowed */
	struct tree *tree;
	struct seek_index *si;
	struct cache *cache;
	pthread_mutex_t lock;
	pthread_cond_t loaded;
	struct inflight *loading; /* guarded by lock */
	/* Built by streaming: the member records and the artifact's digest,
	 * until archive_write_index. */
	struct index_members *members;
	unsigned char sha256[32];
	uint64_t spacing;
	/* Loaded from an index: where windows come from (borrowed). */
	struct fetch *idx;
	struct index_header ih;
	uint64_t warnings; /* while opening (single threaded) */
	atomic_uint_fast64_t spans_loaded;
	atomic_uint_fast64_t verify_fail;
};

#endif
