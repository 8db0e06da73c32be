/* SPDX-License-Identifier: MIT */
/*
 * archive.h - one mounted artifact: its member tree and verified reads.
 *
 * archive_open() streams the artifact once through the codec's seek
 * indexer (seek.h) into the tar reader (tar.h), building the member tree
 * (tree.h) and the seek points with a SHA-256 per span. Afterwards a read
 * finds the spans that hold the wanted bytes, fetches each span's
 * compressed bytes (fetch.h), checks them against the span's digest (on a
 * mismatch it fetches once more bypassing caches, then gives -EIO),
 * decodes them and keeps the decoded chunks in a bounded LRU (cache.h).
 *
 * Concurrency: archive_read() may run in any number of threads. No lock is
 * held while fetching or decoding; two readers missing the same span wait
 * for one fetch (collapsed requests).
 * Never includes FUSE headers.
 */
#ifndef SFFS_ARCHIVE_H
#define SFFS_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sffs/fetch.h"
#include "sffs/seek.h"
#include "sffs/tree.h"

#define ARCHIVE_CHUNK (256u * 1024) /* unit of the decoded-chunk cache */
#define ARCHIVE_DEFAULT_SPACING (1024u * 1024)
#define ARCHIVE_DEFAULT_CACHE (256u * 1024 * 1024)
/* Refused beyond this: seek points and indexing time grow with it. */
#define ARCHIVE_MAX_USIZE (UINT64_C(1) << 40)
/* Warnings logged per archive; the rest are only counted. */
#define ARCHIVE_MAX_WARNINGS 1000

struct archive;

struct fetch;
/* Called during archive_open as bytes stream in (from that thread). */
typedef void (*archive_progress_cb)(void *arg, uint64_t done, uint64_t total);

struct archive_opts {
	uint64_t spacing;   /* seek-point spacing (uncompressed bytes) */
	uint64_t cache_mem; /* bytes of decoded chunks to keep */
	archive_progress_cb progress;
	void *progress_arg;
};

void archive_opts_default(struct archive_opts *o);

/*
 * Indexes the artifact behind f (which the archive borrows: free it after
 * archive_free). On failure returns NULL with a one-line message in err
 * that names the problem and where ("gzip: incorrect data check at
 * compressed offset 1234", "not a tar archive: bad header checksum at
 * offset 0").
 */
struct archive *archive_open(struct fetch *f, const struct archive_opts *o,
			     char *err, size_t errlen);
/*
 * Loads the tree and seek points from the index file behind idx (index.h)
 * instead of streaming the artifact: only the index's eager part is read;
 * windows come from idx when a read first needs them. Both f and idx are
 * borrowed. NULL with a reason in err if the index is unusable (corrupt,
 * truncated, another version, another artifact) - then use archive_open.
 */
struct archive *archive_open_index(struct fetch *f, struct fetch *idx,
				   const struct archive_opts *o, char *err,
				   size_t errlen);
/*
 * Writes the index of an archive made by archive_open to path (atomic
 * rename); identity may be NULL. Frees the member records it needs, so
 * it works once per archive. 0 or -errno (-EINVAL if already written or
 * the archive came from an index).
 */
int archive_write_index(struct archive *ar, const char *path,
			const char *identity);
void archive_free(struct archive *ar);

const struct tree *archive_tree(const struct archive *ar);
const struct seek_index *archive_seek_index(const struct archive *ar);
struct fetch *archive_fetch(const struct archive *ar);

/* Reads up to len bytes of regular-file node at off into buf. Returns the
 * bytes read (short only at end of file), or -EIO (fetch failed, digest
 * mismatch twice, corrupt data), -EISDIR/-EINVAL for non-files. */
ssize_t archive_read(struct archive *ar, uint32_t node, uint64_t off,
		     size_t len, void *buf);

struct archive_stats {
	struct cache_stats_view {
		uint64_t hits, misses, bytes;
	} cache;
	uint64_t spans_loaded;   /* spans fetched and decoded */
	uint64_t verify_fail;    /* spans whose digest did not match */
	size_t index_mem;        /* tree + seek points, bytes */
};
void archive_get_stats(struct archive *ar, struct archive_stats *st);

#endif
