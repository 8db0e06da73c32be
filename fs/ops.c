/* SPDX-License-Identifier: MIT */
/*
 * ops.c - FUSE low-level handlers. Each is a few lines: a do_x() helper
 * returns 0 or -errno, the handler sends exactly one reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "sffs/log.h"
#include "fs.h"

#define XATTR_PREFIX "user.sffs."

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* fuse_ino_t -> node index; -ENOENT for numbers we never gave out. */
static int ino_node(struct fs *fs, fuse_ino_t ino, uint32_t *node)
{
	if (ino < FUSE_ROOT_ID || ino - 1 >= tree_count(fs->tree))
		return -ENOENT;
	*node = (uint32_t)(ino - 1);
	return 0;
}

static void fill_attr(struct fs *fs, uint32_t idx, struct stat *st)
{
	const struct tree_node *n = tree_node(fs->tree, idx);

	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)idx + 1;
	/* Never serve a setuid or setgid bit, whatever the archive says. */
	st->st_mode = n->mode & ~(mode_t)(S_ISUID | S_ISGID);
	st->st_nlink = n->nlink;
	st->st_size = (off_t)n->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_mtim.tv_sec = n->mtime;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static void fill_entry(struct fs *fs, uint32_t idx,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = (fuse_ino_t)idx + 1;
	e->generation = 1;
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	fill_attr(fs, idx, &e->attr);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fuse_entry_param e;
	uint32_t dir, node;
	int rc = ino_node(fs, parent, &dir);

	if (!rc)
		rc = tree_lookup(fs->tree, dir, name, &node);
	if (rc == -ENOENT) {
		/* A negative entry: the name will not appear later either. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(fs, node, &e);
	fuse_reply_entry(req, &e);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req); /* inodes live as long as the mount */
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct stat st;
	uint32_t node;
	int rc = ino_node(fs, ino, &node);

	(void)fi;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_attr(fs, node, &st);
	fuse_reply_attr(req, &st, fs->timeout);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	const struct tree_node *n;
	uint32_t node;
	int rc = ino_node(fs, ino, &node);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	n = tree_node(fs->tree, node);
	if (!S_ISLNK(n->mode)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_readlink(req, n->u.symlink);
}

static int do_open(struct fs *fs, fuse_ino_t ino, struct fuse_file_info *fi,
		   bool dir)
{
	const struct tree_node *n;
	uint32_t node;
	int rc = ino_node(fs, ino, &node);

	if (rc)
		return rc;
	n = tree_node(fs->tree, node);
	if (dir != !!S_ISDIR(n->mode))
		return dir ? -ENOTDIR : -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_CREAT)))
		return -EROFS;
	/* Content cannot change under a pinned identity. */
	fi->keep_cache = 1;
	if (dir)
		fi->cache_readdir = 1;
	return 0;
}

/*
 * Where the kernel supports it, open and opendir answer ENOSYS once: from
 * then on the kernel opens without a round trip and uses its defaults for
 * such files, keep_cache and cache_readdir - exactly what immutable content
 * wants. That takes two requests per directory off a hot `find` and two
 * per file off every program start. The mount is read-only, so the kernel
 * itself refuses opens for writing.
 */
static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int rc = req_fs(req)->no_open ? -ENOSYS
				      : do_open(req_fs(req), ino, fi, false);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_open(req, fi);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	int rc = req_fs(req)->no_opendir ? -ENOSYS
					 : do_open(req_fs(req), ino, fi, true);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_open(req, fi);
}

/* Best-effort name of a node for error messages: a scan of every
 * directory, done only when a read has failed. */
void fs_node_name(struct fs *fs, uint32_t node, char *buf, size_t len)
{
	uint32_t d, child, count = tree_count(fs->tree);
	const char *name;
	size_t i;

	for (d = 0; d < count; d++) {
		for (i = 0; !tree_dir_entry(fs->tree, d, i, &name, &child);
		     i++) {
			if (child == node) {
				snprintf(buf, len, "%s (inode %" PRIu32 ")",
					 name, node + 1);
				return;
			}
		}
	}
	snprintf(buf, len, "inode %" PRIu32, node + 1);
}

/* Fills buf with entries from offset off ("." is 0, ".." 1, then the
 * directory's sorted entries); returns the bytes used. */
static size_t fill_dir(fuse_req_t req, struct fs *fs, uint32_t dir,
		       char *buf, size_t size, off_t off, bool plus)
{
	const struct tree_node *d = tree_node(fs->tree, dir);
	size_t used = 0, n;
	off_t k;

	for (k = off; k >= 0; k++) {
		struct fuse_entry_param e;
		const char *name;
		uint32_t node;

		if (k == 0) {
			name = ".";
			node = dir;
		} else if (k == 1) {
			name = "..";
			node = dir ? d->u.parent : 0;
		} else if (tree_dir_entry(fs->tree, dir, (size_t)k - 2, &name,
					  &node)) {
			break;
		}
		fill_entry(fs, node, &e);
		if (plus)
			n = fuse_add_direntry_plus(req, buf + used,
						   size - used, name, &e, k + 1);
		else
			n = fuse_add_direntry(req, buf + used, size - used,
					      name, &e.attr, k + 1);
		if (n > size - used)
			break;
		used += n;
	}
	return used;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       bool plus)
{
	struct fs *fs = req_fs(req);
	uint32_t dir;
	char *buf;
	int rc = ino_node(fs, ino, &dir);

	if (!rc && !S_ISDIR(tree_node(fs->tree, dir)->mode))
		rc = -ENOTDIR;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_buf(req, buf, fill_dir(req, fs, dir, buf, size, off, plus));
	free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	const struct seek_index *si = archive_seek_index(fs->ar);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (fsblkcnt_t)((si->usize + 4095) / 4096);
	sv.f_files = tree_count(fs->tree);
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes: the mount root describes the artifact ---- */

static const char *const xattr_names[] = { XATTR_PREFIX "url",
					   XATTR_PREFIX "identity",
					   XATTR_PREFIX "stats" };

static int xattr_value(struct fs *fs, const char *name, char *buf, size_t len)
{
	struct fetch *f = archive_fetch(fs->ar);
	struct archive_stats as;
	struct fetch_stats fst;

	if (!strcmp(name, xattr_names[0]))
		return snprintf(buf, len, "%s", fetch_url(f));
	if (!strcmp(name, xattr_names[1]))
		return snprintf(buf, len, "size=%" PRIu64 " %s", fetch_size(f),
				fetch_identity(f));
	if (strcmp(name, xattr_names[2]))
		return -ENODATA;
	archive_get_stats(fs->ar, &as);
	fetch_get_stats(f, &fst);
	return snprintf(
	    buf, len,
	    "requests=%" PRIu64 " bytes=%" PRIu64 " retries=%" PRIu64
	    " spans_loaded=%" PRIu64 " verify_fail=%" PRIu64
	    " cache_hits=%" PRIu64 " cache_misses=%" PRIu64
	    " cache_bytes=%" PRIu64 " blocks_fetched=%" PRIu64
	    " block_requests=%" PRIu64 " block_bytes=%" PRIu64
	    " block_hits=%" PRIu64 " blocks_prefetched=%" PRIu64
	    " block_errors=%" PRIu64 " block_mem=%" PRIu64
	    " windows_loaded=%" PRIu64 " window_mem=%" PRIu64
	    " reads_cached=%" PRIu64 " reads_queued=%" PRIu64
	    " reads_sync=%" PRIu64 " read_errors=%" PRIu64
	    " reads_interrupted=%" PRIu64 " index_mem=%zu members=%" PRIu32
	    "\n",
	    fst.requests, fst.bytes, fst.retries, as.spans_loaded,
	    as.verify_fail, as.cache.hits, as.cache.misses, as.cache.bytes,
	    as.blocks.fetched, as.blocks.requests, as.blocks.bytes,
	    as.blocks.hits, as.blocks.prefetched, as.blocks.errors,
	    as.blocks.mem, as.windows_loaded, as.window_mem,
	    (uint64_t)atomic_load(&fs->rd.fast),
	    (uint64_t)atomic_load(&fs->rd.queued),
	    (uint64_t)atomic_load(&fs->rd.sync),
	    (uint64_t)atomic_load(&fs->rd.errors),
	    (uint64_t)atomic_load(&fs->rd.interrupted), as.index_mem,
	    tree_count(fs->tree));
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char buf[2048];
	int n = -ENODATA;

	if (ino == FUSE_ROOT_ID)
		n = xattr_value(req_fs(req), name, buf, sizeof(buf));
	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char buf[256];
	size_t i, n = 0;

	if (ino == FUSE_ROOT_ID) {
		for (i = 0; i < sizeof(xattr_names) / sizeof(*xattr_names);
		     i++) {
			memcpy(buf + n, xattr_names[i],
			       strlen(xattr_names[i]) + 1);
			n += strlen(xattr_names[i]) + 1;
		}
	}
	if (size == 0)
		fuse_reply_xattr(req, n);
	else if (n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, n);
}

/* ---- every write operation: read-only file system ---- */

static void rofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	rofs(req);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	rofs(req);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	rofs(req);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	rofs(req);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link, (void)parent, (void)name;
	rofs(req);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	rofs(req);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	rofs(req);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino, (void)buf, (void)size, (void)off, (void)fi;
	rofs(req);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	rofs(req);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	rofs(req);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	rofs(req);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length, struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	rofs(req);
}

static void fs_init_conn(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	fs->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	fs->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Plain readdir when the kernel only wants names (ls, find). */
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	/* Reads are answered asynchronously: let the kernel keep more of its
	 * readahead in flight than its default of 12. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	(void)fs_readers_start(fs);
}

static void fs_destroy(void *userdata)
{
	fs_readers_stop(userdata);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init_conn,
	.destroy = fs_destroy,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.open = fs_open,
	.read = fs_read,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setattr = fs_setattr,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_unlink,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.write = fs_write,
	.create = fs_create,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
	.fallocate = fs_fallocate,
};

int fs_init(struct fs *fs, struct archive *ar, double timeout)
{
	memset(fs, 0, sizeof(*fs));
	fs->ar = ar;
	fs->tree = archive_tree(ar);
	fs->timeout = timeout;
	pthread_mutex_init(&fs->rd.lock, NULL);
	pthread_cond_init(&fs->rd.work, NULL);
	return 0;
}

void fs_fini(struct fs *fs)
{
	fs_readers_stop(fs);
	pthread_cond_destroy(&fs->rd.work);
	pthread_mutex_destroy(&fs->rd.lock);
}
