/* SPDX-License-Identifier: MIT */
/*
 * attr.c - attributes and entries of every inode: an archive's nodes from
 * their tree, the catalog's own inodes through their vdir row.
 */
#include <string.h>
#include <sys/stat.h>

#include "fs.h"

/* A relocated text file's size may need its bytes read (archive.h,
 * archive_node_size): 0, or -errno with the archive's size filled in. */
static int fill_node_attr(struct fs *fs, const struct fs_ref *r, uint32_t idx,
			  struct stat *st)
{
	const struct tree_node *n = tree_node(archive_tree(r->ar), idx);
	uint64_t size = n->size;
	int rc = archive_node_size(r->ar, idx, &size);

	memset(st, 0, sizeof(*st));
	st->st_ino = fs_node_ino(fs, r, idx);
	/* Never serve a setuid or setgid bit, whatever the archive says. */
	st->st_mode = n->mode & ~(mode_t)(S_ISUID | S_ISGID);
	st->st_nlink = n->nlink;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_mtim.tv_sec = n->mtime;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	return rc;
}

static fuse_ino_t ref_ino(const struct fs *fs, const struct fs_ref *r)
{
	switch (r->kind) {
	case FS_ROOT:
		return FS_INO_ROOT;
	case FS_MODULES:
		return FS_INO_MODULES;
	case FS_MODSLURM:
		return FS_INO_MODSLURM;
	case FS_LATEST:
		return FS_INO_LATEST;
	case FS_BCINDEX:
		return FS_INO_BCINDEX;
	case FS_BCDIR:
		return FS_INO_BCDIR + catalog_entry_id(r->e);
	case FS_VERSION:
		return FS_INO_VERSION + r->vidx;
	case FS_ARTROOT:
		return FS_INO_ARTROOT + catalog_entry_id(r->e);
	case FS_MODFILE:
		return FS_INO_MODFILE + catalog_entry_id(r->e);
	case FS_BCMODS:
		return FS_INO_BCMODS + catalog_entry_id(r->e);
	case FS_BCMODDIR:
		return FS_INO_BCMODDIR + catalog_entry_id(r->e);
	case FS_BCMODFILE:
		return FS_INO_BCMODFILE + catalog_entry_id(r->e);
	case FS_NODE:
		break;
	}
	return fs_node_ino(fs, r, r->node);
}

/* The catalog's inodes: times are the mount's. */
static void fill_virtual_attr(struct fs *fs, const struct fs_ref *r,
			      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ref_ino(fs, r);
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = fs->mtime;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	fs_vdir_attr(fs, r, st);
}

int fs_fill_attr(struct fs *fs, const struct fs_ref *r, struct stat *st)
{
	if (r->kind == FS_NODE)
		return fill_node_attr(fs, r, r->node, st);
	fill_virtual_attr(fs, r, st);
	return 0;
}

double fs_ref_timeout(const struct fs *fs, const struct fs_ref *r)
{
	return r->kind == FS_NODE ? fs->timeout : fs->vtimeout;
}

int fs_fill_entry(struct fs *fs, const struct fs_ref *r,
		  struct fuse_entry_param *e)
{
	int rc;

	memset(e, 0, sizeof(*e));
	rc = fs_fill_attr(fs, r, &e->attr);
	e->ino = e->attr.st_ino;
	e->generation = 1;
	/* a size not known yet: the kernel asks again */
	e->attr_timeout = rc ? 0 : fs_ref_timeout(fs, r);
	e->entry_timeout = e->attr_timeout;
	return rc;
}

bool fs_ref_is_dir(struct fs *fs, const struct fs_ref *r)
{
	if (r->kind == FS_NODE)
		return S_ISDIR(tree_node(archive_tree(r->ar), r->node)->mode);
	return fs_vdir_is_dir(fs_vdir_of(fs, r->kind));
}
