/* SPDX-License-Identifier: MIT */
/* archive_i.h - internals shared by archive.c (indexing) and span.c (reads). */
#ifndef SFFS_ARCHIVE_I_H
#define SFFS_ARCHIVE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "sffs/archive.h"
#include "sffs/blocks.h"
#include "sffs/cache.h"
#include "sffs/index.h"

/* Cache keys: (archive id, span << 32 | chunk) for decoded chunks and
 * (archive id, point) for windows. Points stay below 2^32 (checked in
 * archive_start_blocks), chunks of a span too (ARCHIVE_MAX_USIZE /
 * ARCHIVE_CHUNK). */
#define ARCHIVE_SPAN_SHIFT 32

/* Within a large span, decode this many chunks past the one asked for. */
#define READAHEAD_CHUNKS 16
/* Files whose sequential reading is followed at once (direct-mapped). */
#define SEQ_SLOTS 64

/* A span being decoded; readers of it wait for the one decoder. */
struct inflight {
	size_t span;
	bool done;
	int err;
	unsigned refs; /* the decoder and each waiter; guarded by ar->lock */
	struct inflight *next;
};

/* Windows whose load failed lately, direct-mapped by point: the kernel's
 * at-once retry of a failed read gets the error instead of a second
 * deadline (as blocks.h does for blocks), but only until any window of
 * the archive loads again, and half a second at most. */
#define WFAIL_SLOTS 64
#define WFAIL_HOLD_NS (500000000ull)
struct wfail_slot {
	size_t point;
	uint64_t when;	 /* 0: empty */
	uint64_t loaded; /* ar->windows_loaded then */
	int err;
};

/* Where a file is being read sequentially. */
struct seq_slot {
	uint32_t node;
	bool used;
	uint64_t next;	/* file offset after the last read */
	uint64_t ahead; /* prefetched up to here (file offset) */
};

struct archive_reloc;

struct archive {
	struct fetch *f; /* borrowed */
	struct tree *tree;
	struct seek_index *si;
	struct cache *cache;  /* decoded chunks (shared or own) */
	struct cache *wcache; /* windows, keyed by point (shared or own) */
	bool own_cache, own_wcache;
	uint64_t id; /* owner of its cache keys; never reused (archive_id) */
	struct blocks *blocks;
	struct archive_opts o;
	pthread_mutex_t lock;
	pthread_cond_t loaded;	  /* CLOCK_MONOTONIC */
	struct inflight *loading; /* guarded by lock */
	pthread_mutex_t seq_lock;
	struct seq_slot seq[SEQ_SLOTS];	      /* guarded by seq_lock */
	struct wfail_slot wfail[WFAIL_SLOTS]; /* guarded by seq_lock */
	/* Built by streaming: the member records, the artifact's digest and
	 * its block digests, until archive_write_index. */
	struct index_members *members;
	unsigned char sha256[32];
	unsigned char *bdigests;
	/* instead of bdigests, for an index with pages: fetched on need */
	struct index_digests *ldigests;
	uint32_t block_size;
	uint64_t spacing;
	/* Where windows come from: the index (borrowed) or, after a
	 * streaming pass, the spill file the pass wrote them to. */
	struct fetch *idx;
	struct index_header ih;
	FILE *spill;
	uint64_t spill_len;
	uint64_t warnings; /* while opening (single threaded) */
	uint32_t root;	   /* the node served as the root (set once) */
	/* set once, before the archive is served (relview.c) */
	struct archive_reloc *reloc;
	atomic_uint_fast64_t spans_loaded;
	atomic_uint_fast64_t windows_loaded;
	atomic_size_t last_window; /* point of the last window loaded, + 1 */
};

/* The spill file: in o->spill_dir when it allows, else tmpfile(). NULL
 * (errno set). spill.c. */
FILE *archive_spill_open(const struct archive_opts *o);

/* Reads len bytes at off of the spill file (windows of a streaming
 * pass). 0 or -EIO (none, out of range, short read). */
int archive_spill_read(struct archive *ar, uint64_t off, size_t len,
		       unsigned char *buf);

/* span.c, for copy.c: the chunk holding the tar stream's byte uoff (a
 * reference, its bytes [*coff, *coff + *clen) of at most len) for a reader
 * who may want bytes up to uend; the request's default deadline; the
 * sequential-reader prefetch; node checked as a regular file with len
 * cut at its end. */
int span_piece(struct archive *ar, uint64_t uoff, size_t len, uint64_t uend,
	       struct archive_req *rq, struct chunk **ch, size_t *coff,
	       size_t *clen);
void span_req_defaults(struct archive *ar, struct archive_req *rq);
void span_follow(struct archive *ar, uint32_t node, const struct tree_node *n,
		 uint64_t off, size_t len);
int span_check_node(struct archive *ar, uint32_t node, uint64_t off,
		    size_t *len, const struct tree_node **out);

/* archive_read_req without relocation (copy.c). */
ssize_t archive_read_raw(struct archive *ar, uint32_t node, uint64_t off,
			 size_t len, void *buf, struct archive_req *rq);
/* relview.c: true if node's bytes must be copied (relocated, or maybe);
 * relview_read serves them; archive_reloc_free at archive_free. */
bool relview_copy_only(const struct archive *ar, uint32_t node);
ssize_t relview_read(struct archive *ar, uint32_t node, uint64_t off,
		     size_t len, void *buf, struct archive_req *rq);
void archive_reloc_free(struct archive_reloc *r);

/* Sets up the block store once the block digests are known. 0/-errno. */
int archive_start_blocks(struct archive *ar);

#endif
