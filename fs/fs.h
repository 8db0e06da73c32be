/* SPDX-License-Identifier: MIT */
/*
 * fs.h - the FUSE front end: maps kernel requests onto an archive.
 *
 * Inode numbers are tree node + 1 (FUSE_ROOT_ID is node 0). Content is
 * immutable while the artifact's identity holds, so entries, attributes
 * and pages are cached by the kernel for a long time.
 */
#ifndef SFFS_FS_H
#define SFFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "sffs/archive.h"

/* Reads the FUSE workers hand on, and the threads that serve them. */
#define FS_READERS 16
#define FS_READ_SLOTS 256

/* One read waiting for, or being served by, a reader thread. Slots live
 * as long as the mount, so a late interrupt never touches freed memory. */
struct fs_read {
	fuse_req_t req; /* NULL while free; guarded by fs_readers.lock */
	uint32_t node;
	uint64_t off;
	size_t size;
	atomic_bool cancel;
	struct fs_read *next; /* free list or queue; guarded by lock */
};

struct fs_readers {
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct fs_read slots[FS_READ_SLOTS];
	struct fs_read *free, *head, *tail; /* guarded by lock */
	pthread_t threads[FS_READERS];
	unsigned nthreads;
	bool stop; /* guarded by lock */
	atomic_uint_fast64_t fast, queued, sync, interrupted, errors;
};

struct fs {
	struct archive *ar;      /* owned by main */
	const struct tree *tree; /* archive_tree(ar) */
	double timeout;          /* entry/attr timeout, seconds */
	/* The kernel can open files / directories without asking us: set in
	 * init, read-only afterwards. */
	bool no_open, no_opendir;
	struct fs_readers rd;
};

/* Fills fs from ar. 0 or -errno. */
int fs_init(struct fs *fs, struct archive *ar, double timeout);
/* Frees what fs_init and the session made. */
void fs_fini(struct fs *fs);

/* fs/read.c: starts the reader threads (from the init handler: after the
 * daemon forked). 0 or -errno. */
int fs_readers_start(struct fs *fs);
/* Stops and joins them (the destroy handler). */
void fs_readers_stop(struct fs *fs);
/* The read handler: cached bytes at once, the rest through a reader. */
void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
/* Best-effort "name (inode N)" of a node, for error messages. */
void fs_node_name(struct fs *fs, uint32_t node, char *buf, size_t len);

extern const struct fuse_lowlevel_ops fs_ops;

#endif
