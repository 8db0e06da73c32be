/* SPDX-License-Identifier: MIT */
/*
 * dir.c - readdir and readdirplus: an archive's directories from its tree
 * (an artifact's root may add buildcache/), the catalog's from their vdir
 * listing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

/* The reply being filled: entry k is at offset k, the next at k + 1. */
struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
};

/* Adds one entry at offset k; false when full. */
static bool dir_add(struct fs *fs, struct dirbuf *d, const char *name,
		    const struct fs_ref *r, off_t k, bool counted)
{
	struct fuse_entry_param e;
	size_t n;

	(void)fs_fill_entry(fs, r, &e); /* on error: timeouts 0, asked again */
	if (d->plus)
		n = fuse_add_direntry_plus(d->req, d->buf + d->used,
					   d->size - d->used, name, &e, k + 1);
	else
		n = fuse_add_direntry(d->req, d->buf + d->used,
				      d->size - d->used, name, &e.attr, k + 1);
	if (n > d->size - d->used)
		return false;
	d->used += n;
	/* readdirplus entries but "." and ".." count as lookups */
	if (d->plus && counted)
		fs_node_looked_up(fs, r);
	return true;
}

/* After an artifact root's members: buildcache/, if it has one and no
 * member of that name. */
static void add_bcdir(struct fs *fs, struct dirbuf *d, const struct fs_ref *dir,
		      off_t k)
{
	struct fs_ref b = {.kind = FS_BCDIR, .e = dir->e};
	uint32_t node;

	if (!fs_vdir_has_bcdir(fs, dir) ||
	    !tree_lookup(archive_tree(dir->ar), dir->node, "buildcache", &node))
		return;
	dir_add(fs, d, "buildcache", &b, k, false);
}

/* An archive directory: "." is 0, ".." 1, then its sorted entries. */
static void fill_node_dir(struct fs *fs, const struct fs_ref *dir,
			  struct dirbuf *d, off_t off)
{
	const struct tree *t = archive_tree(dir->ar);
	const struct tree_node *dn = tree_node(t, dir->node);
	uint32_t root = archive_root(dir->ar);
	struct fs_ref r = *dir, up;
	const char *name;
	uint32_t node;

	for (off_t k = off; k >= 0; k++) {
		if (k == 0) {
			name = ".";
			node = dir->node;
		} else if (k == 1 && fs->cat && dir->node == root) {
			/* the artifact root's parent is the catalog's */
			fs_vdir_artroot_parent(fs, dir->e, &up);
			if (!dir_add(fs, d, "..", &up, k, false))
				break;
			continue;
		} else if (k == 1) {
			name = "..";
			node = dir->node != root ? dn->u.parent : root;
		} else if (tree_dir_entry(t, dir->node, (size_t)k - 2, &name,
					  &node)) {
			if ((size_t)k - 2 == tree_dir_size(t, dir->node))
				add_bcdir(fs, d, dir, k);
			break;
		}
		r.node = node;
		if (!dir_add(fs, d, name, &r, k, k >= 2 && node != root))
			break;
	}
}

static int fill_virtual_dir(struct fs *fs, const struct fs_ref *dir,
			    struct dirbuf *d, off_t off)
{
	struct fs_vlist l;
	int rc;

	/* answered from what is known; a listing due is done by the reaper */
	if (dir->kind == FS_ROOT && off == 0)
		fs_reaper_refresh(fs);
	rc = fs_vdir_list(fs, dir, &l);
	if (rc)
		return rc;
	for (off_t k = off; k >= 0 && (size_t)k < l.n; k++)
		if (!dir_add(fs, d, l.v[k].name, &l.v[k].r, k, false))
			break;
	fs_vlist_free(&l);
	return 0;
}

static int do_readdir(fuse_req_t req, struct fs_ref *dir, struct dirbuf *d,
		      off_t off)
{
	struct fs *fs = fuse_req_userdata(req);
	int rc = fs_hold_artroot(fs, dir, req);

	if (!rc && !fs_ref_is_dir(fs, dir))
		rc = -ENOTDIR;
	if (rc)
		return rc;
	d->buf = malloc(d->size ? d->size : 1);
	if (!d->buf)
		return -ENOMEM;
	if (dir->kind == FS_NODE)
		fill_node_dir(fs, dir, d, off);
	else
		rc = fill_virtual_dir(fs, dir, d, off);
	return rc;
}

static void readdir_reply(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	struct dirbuf d = {.req = req, .size = size, .plus = plus};
	struct fs_ref dir;
	int rc = fs_resolve(fs, ino, &dir);

	if (!rc)
		rc = do_readdir(req, &dir, &d, off);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
	fs_unref(fs, &dir);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	(void)fi;
	readdir_reply(req, ino, size, off, false);
}

void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	readdir_reply(req, ino, size, off, true);
}
