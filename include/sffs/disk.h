/* SPDX-License-Identifier: MIT */
/*
 * disk.h - the disk tier of the block store: a directory of verified blocks
 * under a quota, shared safely by every daemon of a node.
 *
 * Layout: DIR/blocks/XX/<identity hex>-<block number>, where identity is
 * the block store's 32-byte identity of an artifact (size, block size and
 * digests, blocks_i.h) and XX spreads one artifact's blocks over 256
 * directories. Directories are 0700 and files 0600, of the daemon's user;
 * a DIR/blocks that is not is refused (disk_new fails) rather than used.
 *
 * Invariants (why no lock, journal or fsync is needed):
 *   - a block file holds exactly the bytes of its block, or it is not
 *     used: it is written under a temporary name (".tmp-...", in the same
 *     directory) and renamed into place, and every read checks the bytes
 *     against the block's SHA-256 before they leave disk_get. A file torn
 *     by a crash or a power loss (no fsync: a rename may reach the disk
 *     before the data) is a mismatch: it is deleted and reported a miss;
 *   - the bytes used are counted from the directory itself (a scan at
 *     start, and again whenever this process's count passes the quota
 *     or it wrote (100 - DISK_LOW_WATER)% of the quota since its last
 *     scan):
 *     there is no state of ours a crash could leave wrong, and several
 *     processes on one directory each see what all of them wrote;
 *   - eviction deletes the least recently used files (mtime, which a hit
 *     sets to now at most once a minute, so every process sees recency)
 *     down to DISK_LOW_WATER percent of the quota. A file another process
 *     deleted first is simply gone (ENOENT is not an error); a block being
 *     read while it is deleted is still read whole (the open file lives).
 *   - no process waits for another: there is no lock file, so the death
 *     of one daemon never stalls the others.
 * Temporary files of a writer that died are removed by a later scan once
 * older than DISK_TMP_STALE_S.
 *
 * Thread safety: every function but disk_free may be called from any
 * thread at once. Never includes FUSE headers.
 */
#ifndef SFFS_DISK_H
#define SFFS_DISK_H

#include <stddef.h>
#include <stdint.h>

#define DISK_LOW_WATER 90    /* percent of the quota eviction goes down to */
#define DISK_TMP_STALE_S 120 /* a temporary file older than this is dead */
#define DISK_TOUCH_S 60	     /* a hit refreshes mtime at most this often */
#define DISK_MAX_BLOCK (16u * 1024 * 1024) /* BLOCKS_MAX_SIZE */

struct disk;

/*
 * The disk tier under dir (made 0700 with its parents when missing) in
 * dir/blocks, holding at most quota bytes of blocks (quota > 0). Scans
 * the directory: counts what is there, removes stale temporary files and
 * evicts down to the low-water mark if over the quota. NULL with errno
 * set (EINVAL for quota 0, EPERM for a directory another user owns or may
 * write, or the failing call's errno) after one log line.
 */
struct disk *disk_new(const char *dir, uint64_t quota);
/* NULL does nothing. Leaves every block in place for the next daemon. */
void disk_free(struct disk *d);

/*
 * Block idx of identity (len bytes, at most DISK_MAX_BLOCK) into buf, if
 * the file is there and its SHA-256 is digest: 0. A file that fails
 * (size or digest) is deleted, counted as a verification failure and
 * gives -EBADMSG; a missing one -ENOENT; an I/O error its -errno (logged).
 * Every non-zero result means: fetch the block elsewhere (buf may have
 * been written).
 */
int disk_get(struct disk *d, const unsigned char ident[32], uint64_t idx,
	     void *buf, size_t len, const unsigned char digest[32]);
/*
 * Stores block idx of identity (len bytes, already verified by the
 * caller) under a temporary name renamed into place, then evicts if this
 * process's count of the bytes used passes the quota (a directory scan:
 * call it where a stall of milliseconds to a second is fine, never on a
 * FUSE worker). 0, -E2BIG (larger than the quota) or the failing call's
 * -errno (logged now and then: ENOSPC on a full disk is not an outage).
 */
int disk_put(struct disk *d, const unsigned char ident[32], uint64_t idx,
	     const void *buf, size_t len);
/* Scans the directory and evicts down to the low-water mark if over the
 * quota. Returns at once (0) when another thread of this process is doing
 * it. 0 or -errno. */
int disk_evict(struct disk *d);

struct disk_stats {
	uint64_t hits, misses;	/* disk_get: served / not (any reason) */
	uint64_t bytes_read;	/* bytes served */
	uint64_t writes;	/* blocks stored */
	uint64_t bytes_written; /* their bytes */
	uint64_t verify_fail;	/* files that failed: deleted */
	uint64_t evictions;	/* files this process deleted for quota */
	uint64_t scans;		/* directory scans */
	uint64_t errors;	/* I/O errors (not misses) */
	uint64_t used, quota;	/* bytes in the directory (as counted) */
};
void disk_get_stats(struct disk *d, struct disk_stats *st);

#endif
