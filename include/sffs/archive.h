/* SPDX-License-Identifier: MIT */
/*
 * archive.h - one mounted artifact: its member tree and verified reads.
 *
 * archive_open() streams the artifact once through the codec's seek
 * indexer (seek.h) into the tar reader (tar.h), building the member tree
 * (tree.h), the seek points and a SHA-256 of every aligned block of the
 * compressed artifact (blocks.h); windows go to a spill file as they are
 * made, never all into memory. archive_open_index() loads the same from
 * an index (index.h) after checking that the index belongs to the served
 * artifact (its first and last 4 KiB).
 *
 * A read finds the span holding the wanted bytes, gets the verified
 * blocks covering the span's compressed bytes (blocks.h: fetched whole,
 * merged, checked before any byte is decoded), decodes from the span's
 * seek point with its window (from a bounded window LRU) and keeps the
 * decoded chunks in a bounded LRU (cache.h). Reading a file sequentially
 * prefetches the blocks ahead of it (`readahead` bytes of the file).
 *
 * Concurrency: reads may run in any number of threads. No lock is held
 * while fetching or decoding; readers of one span wait for one decode,
 * and a failed decode hands its error to all of them. Every read has a
 * deadline and may be cancelled (archive_wake).
 * Never includes FUSE headers.
 */
#ifndef SFFS_ARCHIVE_H
#define SFFS_ARCHIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sffs/blocks.h"
#include "sffs/cache.h"
#include "sffs/fetch.h"
#include "sffs/index.h"
#include "sffs/seek.h"
#include "sffs/tree.h"

#define ARCHIVE_CHUNK (256u * 1024) /* unit of the decoded-chunk cache */
#define ARCHIVE_DEFAULT_SPACING (1024u * 1024)
#define ARCHIVE_DEFAULT_CACHE (64u * 1024 * 1024)
#define ARCHIVE_DEFAULT_WINDOWS (4u * 1024 * 1024)
#define ARCHIVE_DEFAULT_READAHEAD (8u * 1024 * 1024)
#define ARCHIVE_DEFAULT_TIMEOUT 60
/* Pieces one archive_read_iov may return (a 1 MiB read crossing spans). */
#define ARCHIVE_IOV_MAX 64
/* Refused beyond this: seek points and indexing time grow with it. */
#define ARCHIVE_MAX_USIZE (UINT64_C(1) << 40)
/* Warnings logged per archive; the rest are only counted. */
#define ARCHIVE_MAX_WARNINGS 1000

struct archive;

struct fetch;
/* Called during archive_open as bytes stream in (from that thread). */
typedef void (*archive_progress_cb)(void *arg, uint64_t done, uint64_t total);

struct archive_opts {
	uint64_t spacing;    /* seek-point spacing (uncompressed bytes) */
	uint64_t cache_mem;  /* bytes of decoded chunks to keep */
	uint64_t window_mem; /* bytes of seek-point windows to keep */
	uint64_t readahead;  /* bytes of a file prefetched ahead; 0 = off */
	uint32_t block_size; /* verified block size when indexing */
	unsigned timeout_s;  /* a read's deadline */
	struct blocks_opts blocks; /* fetchers, merging, block memory */
	/* Caches shared by every archive of a process (borrowed; they must
	 * outlive the archive, which drops its entries when freed), or NULL
	 * for caches of the archive's own of cache_mem / window_mem bytes. */
	struct cache *cache, *wcache;
	/* The process's block store (blocks.h; borrowed, outlives the
	 * archive), or NULL for a store of the archive's own made from
	 * `blocks`. */
	struct blockstore *store;
	archive_progress_cb progress;
	void *progress_arg;
	/* archive_open: sees every compressed byte as it streams by, in
	 * order (a signature check over the whole artifact); nonzero
	 * (-errno) stops the pass. */
	int (*tap)(void *arg, const void *data, size_t len);
	void *tap_arg;
	/* archive_open_index: sees the index's header before anything
	 * else of the index is read (index_check_cb in index.h). */
	index_check_cb check_index;
	void *check_arg;
	/* archive_open: the most bytes the pass may hold in its member tree,
	 * member records and window spill before it ends (0: only the
	 * tree's own TREE_MAX_MEM). Past it the pass stops with E2BIG. Set
	 * it to archive_unverified_mem() when nothing vouches for the bytes
	 * until the pass is over (a signature over the stream, a digest to
	 * meet): then they cannot make the process hold more than a real
	 * artifact of their size needs. */
	uint64_t tree_mem_max;
	/* archive_open: the directory of the window spill file (borrowed,
	 * only during archive_open), made there unlinked from birth and
	 * mode 0600 (O_TMPFILE, else mkstemp + unlink); NULL or a directory
	 * that refuses both: tmpfile(). */
	const char *spill_dir;
	/* archive_open_index: the artifact's server cannot be reached (the
	 * index comes from this node's cache, kept under the size and
	 * validator pinned then): its first and last 4 KiB are not
	 * compared with the index's edge digests. */
	bool offline;
};

void archive_opts_default(struct archive_opts *o);

/* What a streaming pass of an artifact of size compressed bytes may hold
 * when nothing vouches for it yet (tree_mem_max): ARCHIVE_UNVERIFIED_BASE +
 * ARCHIVE_UNVERIFIED_PER_BYTE * size, at most TREE_MAX_MEM (archive.c says
 * what a real artifact needs). */
#define ARCHIVE_UNVERIFIED_BASE (UINT64_C(64) << 20)
#define ARCHIVE_UNVERIFIED_PER_BYTE 2
uint64_t archive_unverified_mem(uint64_t size);

/*
 * Indexes the artifact behind f (which the archive borrows: free it after
 * archive_free). On failure returns NULL with a one-line message in err
 * that names the problem and where ("gzip: incorrect data check at
 * compressed offset 1234", "not a tar archive: bad header checksum at
 * offset 0"), and errno set to what happened: EBADMSG when the bytes
 * are not a valid gzip/zstd stream (corrupt data, a failed CRC, length or
 * checksum, truncated) - integrity; the fetch's own errno when the network
 * failed (EIO, ETIMEDOUT, EHOSTUNREACH, ECONNREFUSED, EACCES, ...); the
 * tap's errno if it stopped the pass; E2BIG past o->tree_mem_max;
 * ENOMEM; EIO for a tar error.
 */
struct archive *archive_open(struct fetch *f, const struct archive_opts *o,
			     char *err, size_t errlen);
/*
 * Loads the tree and seek points from the index file behind idx (index.h)
 * instead of streaming the artifact: only the index's eager part is read,
 * then the artifact's first and last 4 KiB are fetched and compared with
 * the index's digests; windows come from idx when a read first needs
 * them. Both f and idx are borrowed. NULL with a reason in err if the
 * index is unusable (corrupt, truncated, another version, another
 * artifact) - then use archive_open - and errno set: the check_index
 * callback's errno if it refused, else EINVAL, ESTALE, ENOMEM or EIO.
 */
struct archive *archive_open_index(struct fetch *f, struct fetch *idx,
				   const struct archive_opts *o, char *err,
				   size_t errlen);
/*
 * Who verified the artifact ("openpgp:<fingerprint>"), as the open policy
 * decided; "" if nobody. archive_write_index records it; an archive
 * loaded from an index starts with the index's record, which the open
 * policy must overwrite unless it trusts where the index came from.
 */
void archive_set_signer(struct archive *ar, const char *signer);
const char *archive_signer(const struct archive *ar);
/* The SHA-256 of the whole artifact: computed by the streaming pass, or
 * as the index records it. */
const unsigned char *archive_sha256(const struct archive *ar);
/* The archive's id: from a process-wide 64-bit counter, never reused, so
 * the owner of its keys in shared caches (cache.h). */
uint64_t archive_id(const struct archive *ar);
/* The directory served as the artifact's root (a Spack package's install
 * prefix inside its tarball); node 0 unless set. */
void archive_set_root(struct archive *ar, uint32_t node);
uint32_t archive_root(const struct archive *ar);
/*
 * Writes the index of an archive made by archive_open to path (atomic
 * rename); identity may be NULL. Frees the member records it needs, so
 * it works once per archive. 0 or -errno (-EINVAL if already written or
 * the archive came from an index).
 */
int archive_write_index(struct archive *ar, const char *path,
			const char *identity);
/* The same with the signed header's binding (index.h, minor 3.1: the
 * artifact's name, version, toolchain, publication time); bind NULL
 * binds nothing, as archive_write_index. */
int archive_write_index_bound(struct archive *ar, const char *path,
			      const char *identity,
			      const struct index_binding *bind);
void archive_free(struct archive *ar);

const struct tree *archive_tree(const struct archive *ar);
/* Best-effort "name (node N)" of a node, for messages: a scan of every
 * directory, for errors only. */
void archive_node_name(const struct archive *ar, uint32_t node, char *buf,
		       size_t len);
const struct seek_index *archive_seek_index(const struct archive *ar);
struct fetch *archive_fetch(const struct archive *ar);

/* One read's terms and, after archive_read_iov, its bytes: n pieces,
 * each in a chunk the request holds until archive_req_release. */
struct archive_req {
	uint64_t deadline_ns;	   /* CLOCK_MONOTONIC; 0: now + timeout */
	const atomic_bool *cancel; /* may be NULL; see archive_wake */
	bool nowait;		   /* only cached bytes, else -EAGAIN */
	size_t n;
	struct archive_iov {
		const void *base;
		size_t len;
	} iov[ARCHIVE_IOV_MAX];
	struct chunk *ref[ARCHIVE_IOV_MAX];
};

/*
 * Reads up to len bytes of regular-file node at off without copying:
 * rq->iov[0..n) get the bytes in order, inside chunks rq holds (release
 * them with archive_req_release, also after an error). Returns the bytes
 * (short only at end of file), or -EAGAIN (nowait and not all cached),
 * -ENOTSUP (sparse file, or more than ARCHIVE_IOV_MAX pieces: use
 * archive_read), -ETIMEDOUT (deadline), -EINTR (cancelled), -EBADMSG
 * (integrity: a block's digest mismatched twice, a window's digest, data
 * that does not decode or does not fit the index), the fetch's own errno
 * (-EIO, -ETIMEDOUT, -EHOSTUNREACH, ...) when the network failed,
 * -EISDIR/-EINVAL for non-files. A failure answers for the same bytes only
 * until a later load of the artifact succeeds (half a second at most). A
 * sequential reader of a file gets its blocks prefetched.
 */
ssize_t archive_read_iov(struct archive *ar, uint32_t node, uint64_t off,
			 size_t len, struct archive_req *rq);
void archive_req_release(struct archive_req *rq);
/* The same into buf (copies; any file). rq may be NULL (defaults). */
ssize_t archive_read_req(struct archive *ar, uint32_t node, uint64_t off,
			 size_t len, void *buf, struct archive_req *rq);
/* archive_read_req with the default deadline. */
ssize_t archive_read(struct archive *ar, uint32_t node, uint64_t off,
		     size_t len, void *buf);
/* Wakes every waiting read so that it looks at its cancel flag. */
void archive_wake(struct archive *ar);

struct archive_stats {
	struct cache_stats_view {
		uint64_t hits, misses, bytes;
	} cache;
	uint64_t spans_loaded;	 /* spans decoded */
	uint64_t verify_fail;	 /* blocks whose digest did not match */
	uint64_t windows_loaded; /* windows fetched (again) */
	uint64_t window_mem;	 /* bytes of windows held */
	struct blocks_stats blocks;
	size_t index_mem; /* tree + seek points, bytes */
	/* the block store the archive reads through (shared by every
	 * archive on it, or its own): blocks and bytes in memory, fetcher
	 * threads, queued and in-flight requests */
	struct blockstore_stats store;
};
void archive_get_stats(struct archive *ar, struct archive_stats *st);

/* ---- relocation (archive/relview.c; docs/relocation.md) ---- */

/*
 * What the read path serves of a Spack package (or a tarball's ELF files)
 * relocated as `spack install` would leave it at the mounted place:
 * binaries overlay a patch list on the verified bytes (same size), text
 * files are served relocated (their size changes: archive_node_size),
 * symlinks answer their relocated target (archive_link_target). Each
 * file's relocation is computed once, the first time it is read (or, for
 * text, stat'ed): the whole file is read through the verified path and
 * the engine (relocate.h) run over it; the result is kept for the
 * archive's life. A file the engine refuses (a string that would grow)
 * is served as in the archive, with a log line, and says so in
 * archive_reloc_describe.
 */
struct reloc_map;
struct archive_reloc_opts {
	const struct reloc_map *bin;  /* binaries and links (copied) */
	const struct reloc_map *text; /* text files (copied) */
	/* paths relative to the archive's root (archive_set_root) */
	const char *const *binaries, *const *textfiles, *const *links;
	size_t nbinaries, ntextfiles, nlinks;
	/* also every regular file under the root that turns out to be ELF
	 * (a tarball view's -o relocate=OLD) */
	bool elf_scan;
	const char *what; /* how logs name the archive ("MNT/slurm-...") */
};
/* The largest file relocated; a larger one is served as archived. */
#define ARCHIVE_RELOC_MAX_FILE (UINT64_C(1) << 30)
#define ARCHIVE_RELOC_MAX_TEXT (UINT64_C(64) << 20)
/*
 * Relocates from now on (call before the archive is served, once). A
 * listed path missing from the tree, or not of its kind, is skipped with
 * a warning. 0, -EALREADY, -EINVAL (a bad map), -ENOMEM.
 */
int archive_relocate(struct archive *ar, const struct archive_reloc_opts *o,
		     char *err, size_t errlen);
/*
 * A tarball view's ELF files relocated (-o relocate=SPEC): SPEC is
 * OLD[=REL] pairs separated by ':', each OLD an absolute path (a build
 * tree the files' RPATHs and strings point into) mapped to new_root, or
 * to new_root/REL; pairs in the order given. Every regular file under the
 * root is looked at the first time it is read; those that are ELF are
 * relocated as Spack relocates binaries. 0, or -EINVAL with the reason in
 * err, -EALREADY, -ENOMEM.
 */
int archive_relocate_tree(struct archive *ar, const char *spec,
			  const char *new_root, const char *what, char *err,
			  size_t errlen);
/* Marks the archive as not relocated for reason (one line), as the
 * xattr then says: the package cannot be relocated as a whole. */
void archive_reloc_refused(struct archive *ar, const char *reason);
/* The served size of node: a relocated text file's new size (computed
 * now if need be: reads the file), else the tree's. 0 or -errno. */
int archive_node_size(struct archive *ar, uint32_t node, uint64_t *size);
/* A symlink's target as served (relocated or the tree's; valid for the
 * archive's life); NULL if node is not a symlink. */
const char *archive_link_target(struct archive *ar, uint32_t node);
/* One line saying what relocation did to node ("binary: 12 patches",
 * "text: 412 -> 371 bytes", "link", "unchanged", "refused: ...", "not
 * yet read"); for the root, the archive's state ("relocated: ..." or
 * "refused: ..."). Returns its length as snprintf, or -ENODATA when the
 * archive is not relocated at all. */
int archive_reloc_describe(struct archive *ar, uint32_t node, char *buf,
			   size_t len);
struct archive_reloc_stats {
	uint64_t files;	   /* relocations computed */
	uint64_t refused;  /* files the engine refused */
	uint64_t patches;  /* patches of binaries, in all */
	uint64_t scanned;  /* bytes read to compute them */
	uint64_t ns;	   /* time spent in the engine */
	uint64_t overlays; /* reads that overlaid patches or text */
};
/* Zeros when not relocated. */
void archive_reloc_get_stats(struct archive *ar,
			     struct archive_reloc_stats *st);

#endif
