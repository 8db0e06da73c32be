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
#include <time.h>

#include "sffs/log.h"
#include "sffs/util.h"
#include "fs.h"

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- lookup ---------------------------------------------------------- */

/* A name in an archive directory; an artifact's root may also hold the
 * catalog's buildcache/. */
static int lookup_node(struct fs *fs, struct fs_ref *dir, const char *name,
		       struct fs_ref *child)
{
	uint32_t node;
	int rc = tree_lookup(archive_tree(dir->ar), dir->node, name, &node);

	if (rc == -ENOENT && fs_vdir_has_bcdir(fs, dir) &&
	    !strcmp(name, "buildcache")) {
		memset(child, 0, sizeof(*child));
		child->kind = FS_BCDIR;
		child->e = dir->e;
		return 0;
	}
	if (rc)
		return rc;
	*child = *dir;
	child->held = false; /* dir's reference covers the request */
	child->node = node;
	return 0;
}

static int do_lookup(fuse_req_t req, struct fs_ref *dir, const char *name,
		     struct fuse_entry_param *e)
{
	struct fs *fs = req_fs(req);
	struct fs_ref child;
	int rc = fs_hold_artroot(fs, dir, req);

	if (rc)
		return rc;
	if (dir->kind != FS_NODE)
		rc = fs_vdir_lookup(fs, dir, name, &child);
	else
		rc = lookup_node(fs, dir, name, &child);
	if (rc)
		return rc;
	rc = fs_fill_entry(fs, &child, e);
	if (rc)
		return rc == -ENOMEM || rc == -EINTR ? rc : -EIO;
	if (child.kind == FS_NODE && child.node != archive_root(child.ar))
		fs_node_looked_up(fs, &child);
	return 0;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fuse_entry_param e;
	struct fs_ref dir;
	int rc = fs_resolve(fs, parent, &dir);

	if (!rc)
		rc = do_lookup(req, &dir, name, &e);
	if (rc == -ENOENT) {
		/* A negative entry: an archive's names never appear later;
		 * the catalog's may, after negative_ttl. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout =
		    dir.kind == FS_NODE ? fs->timeout : fs->neg_timeout;
		rc = 0;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
	fs_unref(fs, &dir);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_forget_ino(req_fs(req), ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_forget_ino(req_fs(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_ref r;
	struct stat st;
	int rc = fs_resolve(fs, ino, &r);

	(void)fi;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	rc = fs_fill_attr(fs, &r, &st);
	if (rc)
		fuse_reply_err(req, rc == -ENOMEM || rc == -EINTR ? -rc : EIO);
	else
		fuse_reply_attr(req, &st, fs_ref_timeout(fs, &r));
	fs_unref(fs, &r);
}

static int do_readlink(struct fs *fs, const struct fs_ref *r,
		       const char **target)
{

	if (r->kind != FS_NODE) {
		*target = fs_vdir_link(fs, r);
		if (*target)
			return 0;
		/* latest before any version is known */
		return fs_vdir_of(fs, r->kind) && fs_vdir_of(fs, r->kind)->link
			   ? -ENOENT
			   : -EINVAL;
	}
	*target = archive_link_target(r->ar, r->node);
	return *target ? 0 : -EINVAL;
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	const char *target = NULL;
	struct fs_ref r;
	int rc = fs_resolve(fs, ino, &r);

	if (!rc)
		rc = do_readlink(fs, &r, &target);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, target);
	fs_unref(fs, &r);
}

static int do_open(struct fs *fs, fuse_ino_t ino, struct fuse_file_info *fi,
		   bool dir)
{
	struct fs_ref r;
	int rc = fs_resolve(fs, ino, &r);

	if (rc)
		return rc;
	if (dir != fs_ref_is_dir(fs, &r))
		rc = dir ? -ENOTDIR : -EISDIR;
	else if ((fi->flags & O_ACCMODE) != O_RDONLY ||
		 (fi->flags & (O_TRUNC | O_CREAT)))
		rc = -EROFS;
	/* Content cannot change under a pinned identity; the catalog's own
	 * directories can, and are read afresh. */
	fi->keep_cache = 1;
	if (dir)
		fi->cache_readdir = r.kind == FS_NODE || r.kind == FS_ARTROOT;
	fs_unref(fs, &r);
	return rc;
}

/*
 * Where the kernel supports it, open and opendir answer ENOSYS once: from
 * then on the kernel opens without a round trip and uses its defaults for
 * such files, keep_cache and cache_readdir - exactly what immutable content
 * wants. That takes two requests per directory off a hot `find` and two
 * per file off every program start. The mount is read-only, so the kernel
 * itself refuses opens for writing. A catalog's directories change, so
 * catalog mode answers opendir itself (without cache_readdir for them).
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

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	struct catalog_stats cs;
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	if (fs->ar) {
		sv.f_blocks =
		    (fsblkcnt_t)((archive_seek_index(fs->ar)->usize + 4095) /
				 4096);
		sv.f_files = tree_count(archive_tree(fs->ar));
	} else {
		catalog_get_stats(fs->cat, &cs);
		sv.f_files = cs.known;
	}
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
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

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	rofs(req);
}

static void fs_init_conn(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	fs->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	/* a catalog's directories change: it answers opendir (do_open) */
	fs->no_opendir =
	    !fs->cat && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* Without it the kernel holds a directory's lock across each lookup
	 * and readdir: lookups waiting for an attach queue behind one
	 * another. (libfuse 3.14 never passes it on to the kernel, whatever
	 * want says: session.c does.) */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
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
	if (fs->cat)
		(void)fs_reaper_start(fs);
}

static void fs_destroy(void *userdata)
{
	fs_reaper_stop(userdata);
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

static void fs_init_common(struct fs *fs, double timeout)
{
	fs->timeout = timeout;
	fs->vtimeout = 5.0;
	fs->neg_timeout = 5.0;
	fs->mtime = time(NULL);
	pthread_mutex_init(&fs->rd.lock, NULL);
	pthread_cond_init(&fs->rd.work, NULL);
	pthread_mutex_init(&fs->reaper_lock, NULL);
	util_cond_init_monotonic(&fs->reaper_wake);
}

int fs_init(struct fs *fs, struct archive *ar, double timeout)
{
	memset(fs, 0, sizeof(*fs));
	fs->ar = ar;
	fs_init_common(fs, timeout);
	return 0;
}

int fs_init_catalog(struct fs *fs, struct catalog *cat, double timeout)
{
	memset(fs, 0, sizeof(*fs));
	fs->cat = cat;
	fs_init_common(fs, timeout);
	return 0;
}

void fs_fini(struct fs *fs)
{
	fs_reaper_stop(fs);
	fs_readers_stop(fs);
	pthread_cond_destroy(&fs->rd.work);
	pthread_mutex_destroy(&fs->rd.lock);
	pthread_cond_destroy(&fs->reaper_wake);
	pthread_mutex_destroy(&fs->reaper_lock);
	free(fs->forgets);
	fs->forgets = NULL;
}
