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

#define XATTR_PREFIX "user.sffs."

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- attributes ------------------------------------------------------ */

static void fill_node_attr(struct fs *fs, const struct fs_ref *r,
			   uint32_t idx, struct stat *st)
{
	const struct tree_node *n = tree_node(archive_tree(r->ar), idx);

	memset(st, 0, sizeof(*st));
	st->st_ino = fs_node_ino(fs, r, idx);
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

/* The catalog's own inodes: directories, the latest link, modulefiles.
 * An artifact's root is a plain directory until it is attached. */
static void fill_virtual_attr(struct fs *fs, const struct fs_ref *r,
			      fuse_ino_t ino, struct stat *st)
{
	const char *latest;
	size_t len = 0;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = fs->mtime;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	if (r->kind == FS_LATEST) {
		latest = catalog_latest(fs->cat);
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = latest ? (off_t)strlen(latest) : 0;
	} else if (r->kind == FS_MODFILE || r->kind == FS_BCINDEX) {
		if (r->kind == FS_MODFILE)
			catalog_entry_module(r->e, &len);
		else
			len = catalog_bc_index(fs->cat, 0, NULL, 0);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		st->st_blocks = (blkcnt_t)((len + 511) / 512);
	}
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
	case FS_NODE:
		break;
	}
	return fs_node_ino(fs, r, r->node);
}

static void fill_attr(struct fs *fs, const struct fs_ref *r, struct stat *st)
{
	if (r->kind == FS_NODE)
		fill_node_attr(fs, r, r->node, st);
	else
		fill_virtual_attr(fs, r, ref_ino(fs, r), st);
}

static double ref_timeout(const struct fs *fs, const struct fs_ref *r)
{
	return r->kind == FS_NODE ? fs->timeout : fs->vtimeout;
}

static void fill_entry(struct fs *fs, const struct fs_ref *r,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	fill_attr(fs, r, &e->attr);
	e->ino = e->attr.st_ino;
	e->generation = 1;
	e->attr_timeout = ref_timeout(fs, r);
	e->entry_timeout = e->attr_timeout;
}

/* ---- lookup ---------------------------------------------------------- */

/* An artifact's root (not a package's) has a buildcache/ of its own when
 * buildcaches are configured. */
static bool has_bcdir(struct fs *fs, const struct fs_ref *r)
{
	return fs->cat && r->kind == FS_NODE && r->e &&
	       r->node == archive_root(r->ar) &&
	       !catalog_entry_parent(r->e) && catalog_bc_enabled(fs->cat);
}

/* "<version>-<toolchain>.lua": names hold no '-' (catalog_name_ok). */
static struct catalog_entry *modfile_entry(struct fs *fs, const char *name)
{
	char v[CATALOG_NAME_MAX + 1], t[CATALOG_NAME_MAX + 1];
	const char *dash = strchr(name, '-');
	size_t n = strlen(name);

	if (!dash || n < 5 || strcmp(name + n - 4, ".lua") ||
	    (size_t)(dash - name) > CATALOG_NAME_MAX ||
	    (size_t)(name + n - 4 - dash - 1) > CATALOG_NAME_MAX)
		return NULL;
	snprintf(v, sizeof(v), "%.*s", (int)(dash - name), name);
	snprintf(t, sizeof(t), "%.*s", (int)(name + n - 4 - dash - 1),
		 dash + 1);
	return catalog_find(fs->cat, v, t, true);
}

/* A name inside one of the catalog's directories. */
static int lookup_virtual(struct fs *fs, const struct fs_ref *dir,
			  const char *name, struct fs_ref *out)
{
	int v;

	memset(out, 0, sizeof(*out));
	if (dir->kind == FS_ROOT && catalog_flat(fs->cat)) {
		if (!strcmp(name, "index.json")) {
			out->kind = FS_BCINDEX;
			return catalog_bc_index(fs->cat, 0, NULL, 0) ? 0
								     : -ENOENT;
		}
		out->kind = FS_ARTROOT;
		out->e = catalog_find(fs->cat, name, "", false);
		return out->e ? 0 : -ENOENT;
	}
	switch (dir->kind) {
	case FS_ROOT:
		if (!strcmp(name, "modules")) {
			out->kind = FS_MODULES;
			return 0;
		}
		if (!strcmp(name, "latest")) {
			out->kind = FS_LATEST;
			return catalog_latest(fs->cat) ? 0 : -ENOENT;
		}
		v = catalog_version(fs->cat, name, true);
		if (v < 0)
			return v;
		out->kind = FS_VERSION;
		out->vidx = (uint32_t)v;
		return 0;
	case FS_MODULES:
		out->kind = FS_MODSLURM;
		return strcmp(name, "slurm") ? -ENOENT : 0;
	case FS_MODSLURM:
		out->kind = FS_MODFILE;
		out->e = modfile_entry(fs, name);
		return out->e ? 0 : -ENOENT;
	case FS_VERSION:
		out->kind = FS_ARTROOT;
		out->e = catalog_find(fs->cat,
				      catalog_version_name(fs->cat, dir->vidx),
				      name, true);
		return out->e ? 0 : -ENOENT;
	case FS_BCDIR:
		out->kind = FS_ARTROOT;
		out->e = catalog_bc_find(fs->cat, dir->e, name);
		return out->e ? 0 : -ENOENT;
	default:
		return -ENOTDIR;
	}
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fuse_entry_param e;
	struct fs_ref dir, child;
	uint32_t node;
	int rc = fs_resolve(fs, parent, &dir);

	if (!rc)
		rc = fs_hold_artroot(fs, &dir);
	if (!rc && dir.kind != FS_NODE) {
		rc = lookup_virtual(fs, &dir, name, &child);
		if (!rc) {
			fill_entry(fs, &child, &e);
			fuse_reply_entry(req, &e);
			return;
		}
	} else if (!rc) {
		rc = tree_lookup(archive_tree(dir.ar), dir.node, name, &node);
		if (rc == -ENOENT && has_bcdir(fs, &dir) &&
		    !strcmp(name, "buildcache")) {
			child.kind = FS_BCDIR;
			child.e = dir.e;
			fill_entry(fs, &child, &e);
			fuse_reply_entry(req, &e);
			fs_unref(fs, &dir);
			return;
		}
		if (!rc) {
			child = dir;
			child.node = node;
			fill_entry(fs, &child, &e);
			if (node != archive_root(dir.ar))
				fs_node_looked_up(fs, &child);
			fuse_reply_entry(req, &e);
			fs_unref(fs, &dir);
			return;
		}
	}
	if (rc == -ENOENT) {
		/* A negative entry: an archive's names never appear later;
		 * the catalog's may, after negative_ttl. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout =
		    dir.kind == FS_NODE ? fs->timeout : fs->neg_timeout;
		fuse_reply_entry(req, &e);
	} else {
		fuse_reply_err(req, -rc);
	}
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
	fill_attr(fs, &r, &st);
	fuse_reply_attr(req, &st, ref_timeout(fs, &r));
	fs_unref(fs, &r);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	const struct tree_node *n;
	const char *latest;
	struct fs_ref r;
	int rc = fs_resolve(fs, ino, &r);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (r.kind == FS_LATEST) {
		latest = catalog_latest(fs->cat);
		if (latest)
			fuse_reply_readlink(req, latest);
		else
			fuse_reply_err(req, ENOENT);
		return;
	}
	n = r.kind == FS_NODE ? tree_node(archive_tree(r.ar), r.node) : NULL;
	if (!n || !S_ISLNK(n->mode))
		fuse_reply_err(req, EINVAL);
	else
		fuse_reply_readlink(req, n->u.symlink);
	fs_unref(fs, &r);
}

static bool ref_is_dir(const struct fs_ref *r)
{
	if (r->kind == FS_NODE)
		return S_ISDIR(tree_node(archive_tree(r->ar), r->node)->mode);
	return r->kind != FS_LATEST && r->kind != FS_MODFILE &&
	       r->kind != FS_BCINDEX;
}

static int do_open(struct fs *fs, fuse_ino_t ino, struct fuse_file_info *fi,
		   bool dir)
{
	struct fs_ref r;
	int rc = fs_resolve(fs, ino, &r);

	if (rc)
		return rc;
	if (dir != ref_is_dir(&r))
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

/* Best-effort name of a node for error messages: a scan of every
 * directory, done only when a read has failed. */
void fs_node_name(struct archive *ar, uint32_t node, char *buf, size_t len)
{
	const struct tree *t = archive_tree(ar);
	uint32_t d, child, count = tree_count(t);
	const char *name;
	size_t i;

	for (d = 0; d < count; d++) {
		for (i = 0; !tree_dir_entry(t, d, i, &name, &child); i++) {
			if (child == node) {
				snprintf(buf, len, "%s (node %" PRIu32 ")",
					 name, node);
				return;
			}
		}
	}
	snprintf(buf, len, "node %" PRIu32, node);
}

/* ---- directories ----------------------------------------------------- */

/* Adds one entry at offset k (the next is k + 1); false when full. */
struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
};

static bool dir_add(struct fs *fs, struct dirbuf *d, const char *name,
		    const struct fs_ref *r, off_t k, bool counted)
{
	struct fuse_entry_param e;
	size_t n;

	fill_entry(fs, r, &e);
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

/* An archive directory: "." is 0, ".." 1, then its sorted entries. */
static void fill_node_dir(struct fs *fs, const struct fs_ref *dir,
			  struct dirbuf *d, off_t off)
{
	const struct tree *t = archive_tree(dir->ar);
	const struct tree_node *dn = tree_node(t, dir->node);
	uint32_t root = archive_root(dir->ar);
	struct fs_ref r = *dir;
	const char *name;
	uint32_t node;

	for (off_t k = off; k >= 0; k++) {
		bool up = false;

		if (k == 0) {
			name = ".";
			node = dir->node;
		} else if (k == 1) {
			name = "..";
			node = dir->node != root ? dn->u.parent : root;
			/* the artifact root's parent is its version */
			up = fs->cat && dir->node == root;
		} else if (tree_dir_entry(t, dir->node, (size_t)k - 2, &name,
					  &node)) {
			struct fs_ref b = { .kind = FS_BCDIR, .e = dir->e };

			/* after the members: buildcache/, if it has one */
			if ((size_t)k - 2 == tree_dir_size(t, dir->node) &&
			    has_bcdir(fs, dir) && !tree_lookup(t, dir->node,
							       "buildcache",
							       &node))
				break;
			if ((size_t)k - 2 == tree_dir_size(t, dir->node) &&
			    has_bcdir(fs, dir))
				dir_add(fs, d, "buildcache", &b, k, false);
			break;
		}
		if (up) {
			struct fs_ref v = { .kind = FS_VERSION,
					    .vidx = catalog_entry_vidx(dir->e) };

			if (catalog_flat(fs->cat))
				v.kind = FS_ROOT;
			if (catalog_entry_parent(dir->e)) {
				v.kind = FS_BCDIR;
				v.e = catalog_entry_parent(dir->e);
			}

			if (!dir_add(fs, d, name, &v, k, false))
				break;
			continue;
		}
		r.node = node;
		if (!dir_add(fs, d, name, &r, k, k >= 2 && node != root))
			break;
	}
}

/* One entry of a catalog directory listing. */
struct ventry {
	char name[2 * CATALOG_NAME_MAX + 8];
	struct fs_ref r;
};

static struct ventry *vlist_add(struct ventry **v, size_t *n, size_t *cap)
{
	struct ventry *nv;

	if (*n == *cap) {
		nv = realloc(*v, (*cap ? 2 * *cap : 16) * sizeof(struct ventry));
		if (!nv)
			return NULL;
		*v = nv;
		*cap = *cap ? 2 * *cap : 16;
	}
	memset(&(*v)[*n], 0, sizeof(struct ventry));
	return &(*v)[(*n)++];
}

/* A buildcache's root: index.json, then its packages. */
static struct ventry *flat_list(struct fs *fs, struct ventry *v, size_t *n,
				size_t cap)
{
	struct catalog_entry **ents;
	struct ventry *x;
	size_t m, k;

	if (catalog_bc_index(fs->cat, 0, NULL, 0)) {
		if (!(x = vlist_add(&v, n, &cap)))
			goto fail;
		snprintf(x->name, sizeof(x->name), "index.json");
		x->r.kind = FS_BCINDEX;
	}
	m = catalog_all(fs->cat, NULL, 0);
	ents = calloc(m ? m : 1, sizeof(struct catalog_entry *));
	if (!ents)
		goto fail;
	m = catalog_all(fs->cat, ents, m);
	for (k = 0; k < m; k++) {
		if (!(x = vlist_add(&v, n, &cap))) {
			free(ents);
			goto fail;
		}
		snprintf(x->name, sizeof(x->name), "%s",
			 catalog_entry_version(ents[k]));
		x->r.kind = FS_ARTROOT;
		x->r.e = ents[k];
	}
	free(ents);
	return v;
fail:
	free(v);
	return NULL;
}

/* The whole listing of a catalog directory ("." and ".." first), made
 * afresh for each request: the catalog may have changed. NULL: ENOMEM. */
static struct ventry *virtual_list(struct fs *fs, const struct fs_ref *dir,
				   size_t *n)
{
	struct catalog_entry **ents = NULL;
	const char **vers = NULL;
	struct ventry *v = NULL, *x;
	size_t cap = 0, k, m = 0;

	*n = 0;
	if ((x = vlist_add(&v, n, &cap))) {
		snprintf(x->name, sizeof(x->name), ".");
		x->r = *dir;
	}
	if (x && (x = vlist_add(&v, n, &cap))) {
		snprintf(x->name, sizeof(x->name), "..");
		x->r.kind = dir->kind == FS_MODSLURM ? FS_MODULES : FS_ROOT;
		if (dir->kind == FS_BCDIR) {
			x->r.kind = FS_ARTROOT;
			x->r.e = dir->e;
		}
	}
	if (!x)
		goto fail;
	if (dir->kind == FS_ROOT && catalog_flat(fs->cat))
		return flat_list(fs, v, n, cap);
	switch (dir->kind) {
	case FS_ROOT:
		if (!(x = vlist_add(&v, n, &cap)))
			goto fail;
		snprintf(x->name, sizeof(x->name), "modules");
		x->r.kind = FS_MODULES;
		if (catalog_latest(fs->cat)) {
			if (!(x = vlist_add(&v, n, &cap)))
				goto fail;
			snprintf(x->name, sizeof(x->name), "latest");
			x->r.kind = FS_LATEST;
		}
		m = catalog_versions(fs->cat, NULL, 0);
		vers = calloc(m ? m : 1, sizeof(const char *));
		if (!vers)
			goto fail;
		m = catalog_versions(fs->cat, vers, m);
		for (k = 0; k < m; k++) {
			int idx = catalog_version(fs->cat, vers[k], false);

			if (idx < 0)
				continue;
			if (!(x = vlist_add(&v, n, &cap)))
				goto fail;
			snprintf(x->name, sizeof(x->name), "%s", vers[k]);
			x->r.kind = FS_VERSION;
			x->r.vidx = (uint32_t)idx;
		}
		break;
	case FS_MODULES:
		if (!(x = vlist_add(&v, n, &cap)))
			goto fail;
		snprintf(x->name, sizeof(x->name), "slurm");
		x->r.kind = FS_MODSLURM;
		break;
	case FS_BCDIR:
		m = catalog_bc_packages(fs->cat, dir->e, NULL, 0);
		ents = calloc(m ? m : 1, sizeof(struct catalog_entry *));
		if (!ents)
			goto fail;
		m = catalog_bc_packages(fs->cat, dir->e, ents, m);
		for (k = 0; k < m; k++) {
			if (!(x = vlist_add(&v, n, &cap)))
				goto fail;
			x->r.e = ents[k];
			x->r.kind = FS_ARTROOT;
			snprintf(x->name, sizeof(x->name), "%s",
				 catalog_entry_version(ents[k]));
		}
		break;
	case FS_VERSION:
	case FS_MODSLURM:
		m = dir->kind == FS_VERSION
			? catalog_entries(fs->cat, dir->vidx, NULL, 0)
			: catalog_all(fs->cat, NULL, 0);
		ents = calloc(m ? m : 1, sizeof(struct catalog_entry *));
		if (!ents)
			goto fail;
		m = dir->kind == FS_VERSION
			? catalog_entries(fs->cat, dir->vidx, ents, m)
			: catalog_all(fs->cat, ents, m);
		for (k = 0; k < m; k++) {
			if (!(x = vlist_add(&v, n, &cap)))
				goto fail;
			x->r.e = ents[k];
			x->r.kind = dir->kind == FS_VERSION ? FS_ARTROOT
							    : FS_MODFILE;
			if (dir->kind == FS_VERSION)
				snprintf(x->name, sizeof(x->name), "%s",
					 catalog_entry_toolchain(ents[k]));
			else
				snprintf(x->name, sizeof(x->name), "%s-%s.lua",
					 catalog_entry_version(ents[k]),
					 catalog_entry_toolchain(ents[k]));
		}
		break;
	default:
		break;
	}
	free(vers);
	free(ents);
	return v;
fail:
	free(vers);
	free(ents);
	free(v);
	return NULL;
}

static int fill_virtual_dir(struct fs *fs, const struct fs_ref *dir,
			    struct dirbuf *d, off_t off)
{
	struct ventry *v;
	size_t n;

	if (dir->kind == FS_ROOT && off == 0)
		catalog_maybe_refresh(fs->cat);
	v = virtual_list(fs, dir, &n);
	if (!v)
		return -ENOMEM;
	for (off_t k = off; k >= 0 && (size_t)k < n; k++)
		if (!dir_add(fs, d, v[k].name, &v[k].r, k, false))
			break;
	free(v);
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       bool plus)
{
	struct fs *fs = req_fs(req);
	struct dirbuf d = { .req = req, .size = size, .plus = plus };
	struct fs_ref dir;
	int rc = fs_resolve(fs, ino, &dir);

	if (!rc)
		rc = fs_hold_artroot(fs, &dir);
	if (!rc && !ref_is_dir(&dir))
		rc = -ENOTDIR;
	if (rc) {
		fuse_reply_err(req, -rc);
		fs_unref(fs, &dir);
		return;
	}
	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		fs_unref(fs, &dir);
		return;
	}
	if (dir.kind == FS_NODE)
		fill_node_dir(fs, &dir, &d, off);
	else
		rc = fill_virtual_dir(fs, &dir, &d, off);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
	fs_unref(fs, &dir);
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
	struct catalog_stats cs;
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	if (fs->ar) {
		sv.f_blocks = (fsblkcnt_t)((archive_seek_index(fs->ar)->usize +
					    4095) / 4096);
		sv.f_files = tree_count(archive_tree(fs->ar));
	} else {
		catalog_get_stats(fs->cat, &cs);
		sv.f_files = cs.known;
	}
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes: roots describe their artifact or catalog --- */

/* The catalog's root has stats only: keep it at index 2. */
static const char *const xattr_names[] = { XATTR_PREFIX "url",
					   XATTR_PREFIX "identity",
					   XATTR_PREFIX "stats",
					   XATTR_PREFIX "signer",
					   XATTR_PREFIX "verified" };
#define XATTR_CATALOG_FIRST 2
#define XATTR_CATALOG_END 3

static int archive_xattr(struct fs *fs, struct archive *ar, const char *name,
			 char *buf, size_t len)
{
	struct fetch *f = archive_fetch(ar);
	struct archive_stats as;
	struct fetch_stats fst;

	if (!strcmp(name, xattr_names[0]))
		return snprintf(buf, len, "%s", fetch_url(f));
	if (!strcmp(name, xattr_names[1]))
		return snprintf(buf, len, "size=%" PRIu64 " %s", fetch_size(f),
				fetch_identity(f));
	/* signer: the fingerprint that verified it ("" if none) */
	if (!strcmp(name, xattr_names[3]))
		return snprintf(buf, len, "%s",
				strchrnul(archive_signer(ar), ':') +
				    !!*archive_signer(ar));
	if (!strcmp(name, xattr_names[4]))
		return snprintf(buf, len, "%s",
				*archive_signer(ar) ? "yes" : "no");
	if (strcmp(name, xattr_names[2]))
		return -ENODATA;
	archive_get_stats(ar, &as);
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
	    tree_count(archive_tree(ar)));
}

static int catalog_xattr(struct fs *fs, const char *name, char *buf,
			 size_t len)
{
	struct catalog_stats cs;

	if (strcmp(name, xattr_names[2]))
		return -ENODATA;
	catalog_get_stats(fs->cat, &cs);
	return snprintf(
	    buf, len,
	    "known=%" PRIu64 " attached=%" PRIu64 " attaches=%" PRIu64
	    " attach_failures=%" PRIu64 " releases=%" PRIu64
	    " list_requests=%" PRIu64 " probe_requests=%" PRIu64
	    " probes_found=%" PRIu64 " reads_cached=%" PRIu64
	    " reads_queued=%" PRIu64 " read_errors=%" PRIu64 "\n",
	    cs.known, cs.attached, cs.attaches, cs.attach_failures,
	    cs.releases, cs.list_requests, cs.probe_requests, cs.probes_found,
	    (uint64_t)atomic_load(&fs->rd.fast),
	    (uint64_t)atomic_load(&fs->rd.queued),
	    (uint64_t)atomic_load(&fs->rd.errors));
}

/* The mount root (the artifact, or the catalog's counters) and, in a
 * catalog, each attached artifact's root. Never attaches. */
static int xattr_value(struct fs *fs, fuse_ino_t ino, const char *name,
		       char *buf, size_t len)
{
	struct archive *ar;
	struct fs_ref r;
	int n;

	if (!fs->cat)
		return ino == FUSE_ROOT_ID
			   ? archive_xattr(fs, fs->ar, name, buf, len)
			   : -ENODATA;
	if (ino == FS_INO_ROOT)
		return catalog_xattr(fs, name, buf, len);
	if (fs_resolve(fs, ino, &r) || r.kind != FS_ARTROOT)
		return -ENODATA;
	/* an attached artifact only: this never attaches one */
	if (catalog_peek(fs->cat, r.e, &ar))
		return -ENODATA;
	n = archive_xattr(fs, ar, name, buf, len);
	catalog_put(fs->cat, r.e);
	return n;
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char buf[2048];
	int n = xattr_value(req_fs(req), ino, name, buf, sizeof(buf));

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
	struct fs *fs = req_fs(req);
	char buf[256];
	size_t i, n = 0, first = 0;
	size_t end = sizeof(xattr_names) / sizeof(*xattr_names);

	if (fs->cat && ino == FS_INO_ROOT) {
		first = XATTR_CATALOG_FIRST;
		end = XATTR_CATALOG_END;
	}
	if (ino == FUSE_ROOT_ID || (fs->cat && (ino & ~0xfffffffull) ==
						   FS_INO_ARTROOT)) {
		for (i = first; i < end; i++) {
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
	/* a catalog's directories change: it answers opendir (do_open) */
	fs->no_opendir = !fs->cat &&
			 (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
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
}
