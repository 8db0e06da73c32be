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

#include "sffs/archive.h"

struct fs {
	struct archive *ar;      /* owned by main */
	const struct tree *tree; /* archive_tree(ar) */
	uint32_t *dir_nlink;     /* per node: 2 + subdirectories; 0 else */
	double timeout;          /* entry/attr timeout, seconds */
};

/* Fills fs from ar (computes directory link counts). 0 or -ENOMEM. */
int fs_init(struct fs *fs, struct archive *ar, double timeout);
void fs_release(struct fs *fs);

extern const struct fuse_lowlevel_ops fs_ops;

#endif
