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

#include <stdbool.h>

#include "sffs/archive.h"

struct fs {
	struct archive *ar;      /* owned by main */
	const struct tree *tree; /* archive_tree(ar) */
	double timeout;          /* entry/attr timeout, seconds */
	/* The kernel can open files / directories without asking us: set in
	 * init, read-only afterwards. */
	bool no_open, no_opendir;
};

/* Fills fs from ar. Always 0. */
int fs_init(struct fs *fs, struct archive *ar, double timeout);

extern const struct fuse_lowlevel_ops fs_ops;

#endif
