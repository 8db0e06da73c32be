/* SPDX-License-Identifier: MIT */
/*
 * tree.h - the in-memory member tree of one archive: what fs/ serves.
 *
 * Nodes are numbered 0..n-1; node 0 is the root directory. A node is an
 * inode: hardlinked names share one node (nlink counts them). Directories
 * hold their entries sorted by name (strcmp) for binary-search lookup and
 * stable readdir offsets. Parent directories without an entry of their own
 * appear with mode 0755 and the mtime of the member that implied them,
 * until an entry of their own arrives.
 *
 * Extraction semantics follow GNU tar: a later member of the same name
 * replaces the earlier one (a new node; hardlinks made to the old one keep
 * it); a later directory entry over a directory updates its mode and mtime;
 * a non-directory over a non-empty directory is refused with a warning (tar
 * fails to rmdir it); a hardlink to a missing target is skipped with a
 * warning; a path through a non-directory is skipped with a warning.
 *
 * Memory: a node is ~48 bytes, a name is stored once in an arena; the
 * build-time hash (uthash, keyed by parent node + name) is freed by
 * tree_finish(). test_tree measures ~250 bytes per member at the peak of
 * building and ~85 once finished (short names), so a tree of short names
 * reaches TREE_MAX_MEM at about as many members as TREE_MAX_NODES.
 *
 * Building is single threaded; after tree_finish() every reader function is
 * safe to call from any number of threads (the tree is immutable).
 * Never includes FUSE headers.
 */
#ifndef SFFS_TREE_H
#define SFFS_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sffs/tar.h"

/*
 * Limits (docs/limits.md). Past any of them tree_add() warns with the limit
 * and returns -E2BIG, which stops indexing.
 *   TREE_MAX_NODES  inodes (members plus implied directories).
 *   TREE_MAX_DEPTH  path components; a tar name holds at most TAR_MAX_NAME
 *                   bytes, so at most TAR_MAX_NAME / 2 components.
 *   TREE_MAX_MEM    heap bytes of the tree (as tree_mem_usage counts them,
 *                   build-time hash included): what bounds long symlink
 *                   targets and big sparse maps, which nodes alone do not.
 */
#define TREE_MAX_NODES (UINT32_C(1) << 24)
#define TREE_MAX_DEPTH (TAR_MAX_NAME / 2)
#define TREE_MAX_MEM (UINT64_C(4) << 30)

struct tree;

struct tree_sparse_map {
	size_t n;
	struct tar_sparse seg[]; /* sorted by off, non-overlapping */
};

struct tree_node {
	uint64_t size;     /* regular: logical size; symlink: strlen(target) */
	uint64_t data_off; /* regular: offset of the data in the tar stream */
	int64_t mtime;
	uint32_t mode;     /* S_IFREG/S_IFDIR/S_IFLNK | 07777 bits as archived */
	uint32_t nlink;    /* names of a file; 2 + subdirectories of a dir */
	union {
		const char *symlink;                /* S_IFLNK */
		const struct tree_sparse_map *sparse; /* S_IFREG, NULL if dense */
		uint32_t parent;                    /* S_IFDIR: its parent */
	} u;
	uint32_t dir;      /* S_IFDIR: index of its entry list (internal) */
};

typedef void (*tree_warn_cb)(void *arg, uint64_t off, const char *msg);

/* Returns NULL on allocation failure. warn may be NULL. */
struct tree *tree_new(tree_warn_cb warn, void *arg);
void tree_free(struct tree *t);

/* Adds one member (from tar_entry_cb). Returns 0 (also when the member was
 * skipped with a warning), -ENOMEM, or -E2BIG past TREE_MAX_NODES, _DEPTH or
 * _MEM (after a warning that names the limit). */
int tree_add(struct tree *t, const struct tar_entry *e);
/* Lowers this tree's node and memory limits (0 keeps the default; values
 * above the defaults are ignored). Call before the first tree_add; for
 * tests, and for a mount option later. */
void tree_set_limits(struct tree *t, uint32_t max_nodes, uint64_t max_mem);
/* Sorts directories and frees build-time state. 0 or -ENOMEM. No tree_add
 * after this. */
int tree_finish(struct tree *t);

uint32_t tree_count(const struct tree *t);
/* NULL if idx is out of range. */
const struct tree_node *tree_node(const struct tree *t, uint32_t idx);
/* Looks name up in directory dir. 0 and *out, or -ENOENT / -ENOTDIR. */
int tree_lookup(const struct tree *t, uint32_t dir, const char *name,
		uint32_t *out);
/* Resolves a relative path ("" is the root) without following symlinks. */
int tree_resolve(const struct tree *t, const char *path, uint32_t *out);
/* Number of entries of directory dir (0 if not a directory). */
size_t tree_dir_size(const struct tree *t, uint32_t dir);
/* Entry i of directory dir, in sorted order. 0, or -ENOENT past the end. */
int tree_dir_entry(const struct tree *t, uint32_t dir, size_t i,
		   const char **name, uint32_t *node);
/* Bytes of heap this tree holds (for the memory report). */
size_t tree_mem_usage(const struct tree *t);
/* While building: the bytes tree_add counts against TREE_MAX_MEM, in O(1)
 * (tree_mem_usage walks every directory), so a caller may check a budget
 * of its own after every member. */
uint64_t tree_mem_now(const struct tree *t);

#endif
