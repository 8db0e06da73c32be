/* SPDX-License-Identifier: MIT */
/*
 * vdir.c - the catalog's own inodes (root, modules/, modules/slurm/,
 * latest, <version>/, buildcache/, index.json, modulefiles, the packages'
 * modules/<name>/ and modulefiles, artifact roots before they are
 * attached) as one table of struct fs_vdir, one row per
 * kind: the FUSE handlers dispatch through it and never switch on a
 * catalog feature. Everything here answers from what the catalog knows
 * now; nothing attaches an artifact.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"

/* ---- listings ---------------------------------------------------------- */

static struct fs_ventry *vlist_add(struct fs_vlist *l, const char *name,
				   enum fs_kind kind)
{
	struct fs_ventry *nv;
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap ? 2 * l->cap : 16;
		nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = cap;
	}
	nv = &l->v[l->n++];
	memset(nv, 0, sizeof(*nv));
	snprintf(nv->name, sizeof(nv->name), "%s", name);
	nv->r.kind = kind;
	return nv;
}

/* The catalog entries a lister gives (version's, all, a buildcache's) as
 * entries of kind, named by name(). */
typedef size_t (*entries_fn)(struct catalog *c, const struct fs_ref *dir,
			     struct catalog_entry **out, size_t max);

static int add_entries(struct fs *fs, const struct fs_ref *dir, entries_fn list,
		       enum fs_kind kind,
		       void (*name)(struct catalog_entry *e, char *buf,
				    size_t len),
		       struct fs_vlist *l)
{
	struct catalog_entry **ents;
	struct fs_ventry *x;
	size_t m = list(fs->cat, dir, NULL, 0), k;
	int rc = 0;

	/* an array of pointers */
	// NOLINTNEXTLINE(bugprone-sizeof-expression)
	ents = calloc(m ? m : 1, sizeof(*ents));
	if (!ents)
		return -ENOMEM;
	m = list(fs->cat, dir, ents, m);
	for (k = 0; k < m && !rc; k++) {
		x = vlist_add(l, "", kind);
		if (!x) {
			rc = -ENOMEM;
			break;
		}
		x->r.e = ents[k];
		name(ents[k], x->name, sizeof(x->name));
	}
	free(ents);
	return rc;
}

static size_t all_entries(struct catalog *c, const struct fs_ref *dir,
			  struct catalog_entry **out, size_t max)
{
	(void)dir;
	return catalog_all(c, out, max);
}

static size_t version_entries(struct catalog *c, const struct fs_ref *dir,
			      struct catalog_entry **out, size_t max)
{
	return catalog_entries(c, dir->vidx, out, max);
}

static size_t bc_entries(struct catalog *c, const struct fs_ref *dir,
			 struct catalog_entry **out, size_t max)
{
	return catalog_bc_packages(c, dir->e, out, max);
}

static void name_version(struct catalog_entry *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", catalog_entry_version(e));
}

static void name_toolchain(struct catalog_entry *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", catalog_entry_toolchain(e));
}

static void name_modfile(struct catalog_entry *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%s.lua", catalog_entry_version(e),
		 catalog_entry_toolchain(e));
}

/* ---- each kind: lookup, list, attributes, content ---------------------- */

static int root_lookup(struct fs *fs, const struct fs_ref *dir,
		       const char *name, struct fs_ref *out)
{
	int v;

	(void)dir;
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
}

static int root_list(struct fs *fs, const struct fs_ref *dir,
		     struct fs_vlist *l)
{
	const char **vers;
	struct fs_ventry *x;
	size_t m, k;
	int rc = 0;

	(void)dir;
	if (!vlist_add(l, "modules", FS_MODULES))
		return -ENOMEM;
	if (catalog_latest(fs->cat) && !vlist_add(l, "latest", FS_LATEST))
		return -ENOMEM;
	m = catalog_versions(fs->cat, NULL, 0);
	vers = calloc(m ? m : 1, sizeof(*vers));
	if (!vers)
		return -ENOMEM;
	m = catalog_versions(fs->cat, vers, m);
	for (k = 0; k < m; k++) {
		int idx = catalog_version(fs->cat, vers[k], false);

		if (idx < 0)
			continue;
		x = vlist_add(l, vers[k], FS_VERSION);
		if (!x) {
			rc = -ENOMEM;
			break;
		}
		x->r.vidx = (uint32_t)idx;
	}
	free(vers);
	return rc;
}

/* What a catalog lookup that gave e says: 0, or why not (a probe's
 * network error - EACCES, EIO, ETIMEDOUT - is not "no such name"). */
static int found(const struct catalog_entry *e, int err)
{
	if (e)
		return 0;
	return err > 0 && err != ENOENT ? -err : -ENOENT;
}

/* layout=buildcache: index.json, then the packages, flat. */
static int flat_lookup(struct fs *fs, const struct fs_ref *dir,
		       const char *name, struct fs_ref *out)
{
	(void)dir;
	if (!strcmp(name, "modules")) {
		out->kind = FS_MODULES;
		return 0;
	}
	if (!strcmp(name, "index.json")) {
		out->kind = FS_BCINDEX;
		return catalog_bc_index(fs->cat, 0, NULL, 0) ? 0 : -ENOENT;
	}
	out->kind = FS_ARTROOT;
	errno = 0;
	out->e = catalog_find(fs->cat, name, "", false);
	return found(out->e, errno);
}

static int flat_list(struct fs *fs, const struct fs_ref *dir,
		     struct fs_vlist *l)
{
	/* a package directory's name always holds a '-': no clash */
	if (!vlist_add(l, "modules", FS_MODULES))
		return -ENOMEM;
	if (catalog_bc_index(fs->cat, 0, NULL, 0) &&
	    !vlist_add(l, "index.json", FS_BCINDEX))
		return -ENOMEM;
	return add_entries(fs, dir, all_entries, FS_ARTROOT, name_version, l);
}

static int modules_lookup(struct fs *fs, const struct fs_ref *dir,
			  const char *name, struct fs_ref *out)
{
	(void)fs, (void)dir;
	out->kind = FS_MODSLURM;
	return strcmp(name, "slurm") ? -ENOENT : 0;
}

static int modules_list(struct fs *fs, const struct fs_ref *dir,
			struct fs_vlist *l)
{
	(void)fs, (void)dir;
	return vlist_add(l, "slurm", FS_MODSLURM) ? 0 : -ENOMEM;
}

/* "<version>-<toolchain>.lua": names hold no '-' (catalog_name_ok). */
static int modslurm_lookup(struct fs *fs, const struct fs_ref *dir,
			   const char *name, struct fs_ref *out)
{
	char v[CATALOG_NAME_MAX + 1], t[CATALOG_NAME_MAX + 1];
	const char *dash = strchr(name, '-');
	size_t n = strlen(name);

	(void)dir;
	out->kind = FS_MODFILE;
	if (!dash || n < 5 || strcmp(name + n - 4, ".lua") ||
	    (size_t)(dash - name) > CATALOG_NAME_MAX ||
	    (size_t)(name + n - 4 - dash - 1) > CATALOG_NAME_MAX)
		return -ENOENT;
	snprintf(v, sizeof(v), "%.*s", (int)(dash - name), name);
	snprintf(t, sizeof(t), "%.*s", (int)(name + n - 4 - dash - 1),
		 dash + 1);
	errno = 0;
	out->e = catalog_find(fs->cat, v, t, true);
	return found(out->e, errno);
}

static int modslurm_list(struct fs *fs, const struct fs_ref *dir,
			 struct fs_vlist *l)
{
	return add_entries(fs, dir, all_entries, FS_MODFILE, name_modfile, l);
}

static int version_lookup(struct fs *fs, const struct fs_ref *dir,
			  const char *name, struct fs_ref *out)
{
	out->kind = FS_ARTROOT;
	errno = 0;
	out->e = catalog_find(fs->cat, catalog_version_name(fs->cat, dir->vidx),
			      name, true);
	return found(out->e, errno);
}

static int version_list(struct fs *fs, const struct fs_ref *dir,
			struct fs_vlist *l)
{
	return add_entries(fs, dir, version_entries, FS_ARTROOT, name_toolchain,
			   l);
}

static int bcdir_lookup(struct fs *fs, const struct fs_ref *dir,
			const char *name, struct fs_ref *out)
{
	if (!strcmp(name, "modules")) {
		out->kind = FS_BCMODS;
		out->e = dir->e;
		return 0;
	}
	out->kind = FS_ARTROOT;
	errno = 0;
	out->e = catalog_bc_find(fs->cat, dir->e, name);
	return found(out->e, errno);
}

static int bcdir_list(struct fs *fs, const struct fs_ref *dir,
		      struct fs_vlist *l)
{
	struct fs_ventry *x = vlist_add(l, "modules", FS_BCMODS);

	if (!x)
		return -ENOMEM;
	x->r.e = dir->e;
	return add_entries(fs, dir, bc_entries, FS_ARTROOT, name_version, l);
}

/* ---- the packages' modulefiles: <set>/modules/<name>/<f>.lua ---------- */

/* The package set of a modules/ directory: its artifact's buildcaches,
 * or (layout=buildcache's MNT/modules/) NULL, the flat set. */
static struct catalog_entry *pkgmods_set(const struct fs_ref *dir)
{
	return dir->kind == FS_BCMODS ? dir->e : NULL;
}

/* A name the listing gave that can be a directory entry. */
static bool entry_name_ok(const char *name)
{
	return name[0] && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..");
}

static int pkgmods_lookup(struct fs *fs, const struct fs_ref *dir,
			  const char *name, struct fs_ref *out)
{
	out->kind = FS_BCMODDIR;
	out->e = catalog_pkg_module_dir(fs->cat, pkgmods_set(dir), name);
	return out->e ? 0 : -ENOENT;
}

/* The entries a catalog lister gives (list(c, key, out, max)), named
 * by catalog_pkg_names' name (file false) or file name (true). */
static int add_pkg_entries(struct fs *fs, struct catalog_entry *key,
			   size_t (*list)(struct catalog *,
					  struct catalog_entry *,
					  struct catalog_entry **, size_t),
			   enum fs_kind kind, bool file, struct fs_vlist *l)
{
	char name[sizeof(l->v->name)], fname[sizeof(l->v->name)];
	struct catalog_entry **ents;
	struct fs_ventry *x;
	size_t m = list(fs->cat, key, NULL, 0), k;
	int rc = 0;

	// NOLINTNEXTLINE(bugprone-sizeof-expression)
	ents = calloc(m ? m : 1, sizeof(*ents));
	if (!ents)
		return -ENOMEM;
	m = list(fs->cat, key, ents, m);
	for (k = 0; k < m && !rc; k++) {
		if (!catalog_pkg_names(ents[k], name, sizeof(name), fname,
				       sizeof(fname)) ||
		    !entry_name_ok(file ? fname : name))
			continue;
		x = vlist_add(l, file ? fname : name, kind);
		if (!x)
			rc = -ENOMEM;
		else
			x->r.e = ents[k];
	}
	free(ents);
	return rc;
}

static int pkgmods_list(struct fs *fs, const struct fs_ref *dir,
			struct fs_vlist *l)
{
	return add_pkg_entries(fs, pkgmods_set(dir), catalog_pkg_module_dirs,
			       FS_BCMODDIR, false, l);
}

static int bcmoddir_lookup(struct fs *fs, const struct fs_ref *dir,
			   const char *name, struct fs_ref *out)
{
	struct fs_vlist l = {0};
	size_t k;
	int rc = add_pkg_entries(fs, dir->e, catalog_pkg_modules, FS_BCMODFILE,
				 true, &l);

	for (k = 0; !rc && k < l.n; k++)
		if (!strcmp(l.v[k].name, name))
			break;
	if (!rc && k == l.n)
		rc = -ENOENT;
	if (!rc)
		*out = l.v[k].r;
	fs_vlist_free(&l);
	return rc;
}

static int bcmoddir_list(struct fs *fs, const struct fs_ref *dir,
			 struct fs_vlist *l)
{
	return add_pkg_entries(fs, dir->e, catalog_pkg_modules, FS_BCMODFILE,
			       true, l);
}

/* modules/<name>/ is in its set's modules/ */
static void parent_pkgmods(struct fs *fs, const struct fs_ref *dir,
			   struct fs_ref *out)
{
	(void)fs;
	out->e = catalog_entry_parent(dir->e);
	out->kind = out->e ? FS_BCMODS : FS_MODULES;
}

/* buildcache/modules/ is in its artifact's buildcache/ */
static void parent_bcdir(struct fs *fs, const struct fs_ref *dir,
			 struct fs_ref *out)
{
	(void)fs;
	out->kind = FS_BCDIR;
	out->e = dir->e;
}

static size_t bcmodfile_read(struct fs *fs, const struct fs_ref *r,
			     uint64_t off, void *buf, size_t len)
{
	return catalog_pkg_module(fs->cat, r->e, off, buf, len);
}

static void parent_root(struct fs *fs, const struct fs_ref *dir,
			struct fs_ref *out)
{
	(void)fs, (void)dir;
	out->kind = FS_ROOT;
}

static void parent_modules(struct fs *fs, const struct fs_ref *dir,
			   struct fs_ref *out)
{
	(void)fs, (void)dir;
	out->kind = FS_MODULES;
}

/* buildcache/ is inside its artifact's root */
static void parent_artroot(struct fs *fs, const struct fs_ref *dir,
			   struct fs_ref *out)
{
	(void)fs;
	out->kind = FS_ARTROOT;
	out->e = dir->e;
}

static const char *latest_link(struct fs *fs, const struct fs_ref *r)
{
	(void)r;
	return catalog_latest(fs->cat);
}

static size_t modfile_read(struct fs *fs, const struct fs_ref *r, uint64_t off,
			   void *buf, size_t len)
{
	size_t n;
	const char *text = catalog_entry_module(r->e, &n);

	(void)fs;
	if (!buf)
		return n;
	if (off >= n)
		return 0;
	if (len > n - off)
		len = n - (size_t)off;
	memcpy(buf, text + off, len);
	return len;
}

static size_t bcindex_read(struct fs *fs, const struct fs_ref *r, uint64_t off,
			   void *buf, size_t len)
{
	(void)r;
	return catalog_bc_index(fs->cat, off, buf, len);
}

static const struct fs_vdir vdirs[] = {
    {.kind = FS_ROOT,
     .lookup = root_lookup,
     .list = root_list,
     .parent = parent_root},
    {.kind = FS_MODULES,
     .lookup = modules_lookup,
     .list = modules_list,
     .parent = parent_root},
    {.kind = FS_MODSLURM,
     .lookup = modslurm_lookup,
     .list = modslurm_list,
     .parent = parent_modules},
    {.kind = FS_VERSION,
     .lookup = version_lookup,
     .list = version_list,
     .parent = parent_root},
    {.kind = FS_BCDIR,
     .lookup = bcdir_lookup,
     .list = bcdir_list,
     .parent = parent_artroot},
    {.kind = FS_BCMODS,
     .lookup = pkgmods_lookup,
     .list = pkgmods_list,
     .parent = parent_bcdir},
    {.kind = FS_BCMODDIR,
     .lookup = bcmoddir_lookup,
     .list = bcmoddir_list,
     .parent = parent_pkgmods},
    {.kind = FS_BCMODFILE, .read = bcmodfile_read},
    /* an artifact's root before it is attached: a plain directory */
    {.kind = FS_ARTROOT},
    {.kind = FS_LATEST, .link = latest_link},
    {.kind = FS_MODFILE, .read = modfile_read},
    {.kind = FS_BCINDEX, .read = bcindex_read},
};

static const struct fs_vdir flat_root = {.kind = FS_ROOT,
					 .lookup = flat_lookup,
					 .list = flat_list,
					 .parent = parent_root};

/* layout=buildcache's MNT/modules/: the flat set's packages by name */
static const struct fs_vdir flat_modules = {.kind = FS_MODULES,
					    .lookup = pkgmods_lookup,
					    .list = pkgmods_list,
					    .parent = parent_root};

const struct fs_vdir *fs_vdir_of(const struct fs *fs, enum fs_kind kind)
{
	size_t i;

	if (!fs->cat)
		return NULL;
	if (kind == FS_ROOT && catalog_flat(fs->cat))
		return &flat_root;
	if (kind == FS_MODULES && catalog_flat(fs->cat))
		return &flat_modules;
	for (i = 0; i < sizeof(vdirs) / sizeof(*vdirs); i++)
		if (vdirs[i].kind == kind)
			return &vdirs[i];
	return NULL;
}

bool fs_vdir_is_dir(const struct fs_vdir *v)
{
	return v && !v->link && !v->read;
}

/* ---- what the handlers call -------------------------------------------- */

int fs_vdir_lookup(struct fs *fs, const struct fs_ref *dir, const char *name,
		   struct fs_ref *out)
{
	const struct fs_vdir *v = fs_vdir_of(fs, dir->kind);

	memset(out, 0, sizeof(*out));
	if (!v || !v->lookup)
		return -ENOTDIR;
	return v->lookup(fs, dir, name, out);
}

int fs_vdir_list(struct fs *fs, const struct fs_ref *dir, struct fs_vlist *l)
{
	const struct fs_vdir *v = fs_vdir_of(fs, dir->kind);
	struct fs_ventry *x;

	memset(l, 0, sizeof(*l));
	if (!v || !v->list)
		return -ENOTDIR;
	x = vlist_add(l, ".", dir->kind);
	if (x)
		x->r = *dir;
	if (x)
		x = vlist_add(l, "..", FS_ROOT);
	if (x)
		v->parent(fs, dir, &x->r);
	if (x && !v->list(fs, dir, l))
		return 0;
	fs_vlist_free(l);
	return -ENOMEM;
}

void fs_vlist_free(struct fs_vlist *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void fs_vdir_attr(struct fs *fs, const struct fs_ref *r, struct stat *st)
{
	const struct fs_vdir *v = fs_vdir_of(fs, r->kind);
	const char *target;
	size_t len;

	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	if (v && v->link) {
		target = v->link(fs, r);
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = target ? (off_t)strlen(target) : 0;
	} else if (v && v->read) {
		len = v->read(fs, r, 0, NULL, 0);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		st->st_blocks = (blkcnt_t)((len + 511) / 512);
	}
}

const char *fs_vdir_link(struct fs *fs, const struct fs_ref *r)
{
	const struct fs_vdir *v = fs_vdir_of(fs, r->kind);

	return v && v->link ? v->link(fs, r) : NULL;
}

ssize_t fs_vdir_read(struct fs *fs, const struct fs_ref *r, uint64_t off,
		     void *buf, size_t len)
{
	const struct fs_vdir *v = fs_vdir_of(fs, r->kind);

	if (!v || !v->read)
		return -EISDIR;
	return (ssize_t)v->read(fs, r, off, buf, len);
}

/* ---- where an artifact's tree meets the catalog ------------------------ */

bool fs_vdir_has_bcdir(struct fs *fs, const struct fs_ref *r)
{
	return fs->cat && r->kind == FS_NODE && r->e &&
	       r->node == archive_root(r->ar) && !catalog_entry_parent(r->e) &&
	       catalog_bc_enabled(fs->cat);
}

void fs_vdir_artroot_parent(struct fs *fs, struct catalog_entry *e,
			    struct fs_ref *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = FS_VERSION;
	out->vidx = catalog_entry_vidx(e);
	if (catalog_flat(fs->cat))
		out->kind = FS_ROOT;
	if (catalog_entry_parent(e)) {
		out->kind = FS_BCDIR;
		out->e = catalog_entry_parent(e);
	}
}
