/* SPDX-License-Identifier: MIT */
/*
 * fs.h - the FUSE front end: maps kernel inodes onto (artifact, node).
 *
 * Single-artifact mode: inode = tree node + 1 (FUSE_ROOT_ID is node 0).
 *
 * Catalog mode (catalog.h), inode numbers:
 *   1 root, 2 modules/, 3 modules/slurm/, 4 latest
 *   (layout=buildcache: 1 root, 5 index.json, and MNT/<package>/ are
 *   artifact roots straight under the root)
 *   FS_INO_VERSION + vidx   MNT/<version>/
 *   FS_INO_ARTROOT + id     MNT/<version>/<toolchain>/ (the artifact's
 *                           root node once attached - node 0, or a Spack
 *                           package's prefix; answered without it)
 *   FS_INO_MODFILE + id     MNT/modules/slurm/<version>-<toolchain>.lua
 *   FS_INO_BCDIR + id       MNT/<version>/<toolchain>/buildcache/ (with
 *                           -o buildcache_base=); its packages are
 *                           artifact roots of entries of their own
 *   FS_INO_BCMODS + id      MNT/<version>/<toolchain>/buildcache/modules/
 *                           (id: the artifact's; layout=buildcache's
 *                           MNT/modules/ is FS_INO_MODULES)
 *   FS_INO_BCMODDIR + id    .../modules/<name>/ of a package set (id:
 *                           the set's first package of that name,
 *                           catalog_pkg_module_dir: stable)
 *   FS_INO_BCMODFILE + id   .../modules/<name>/<version>-<hash7>.lua
 *                           (id: the package's)
 *   bit 63 | id << 40 | epoch << 32 | node   any other node of an
 *                           attached artifact (node >= 1, not its root)
 * The kernel's lookups of node inodes are counted per attachment
 * (catalog_ref/unref), so a released artifact is freed once the kernel
 * forgets them. Content under a pinned identity is immutable, so node
 * entries, attributes and pages are cached by the kernel for a long time;
 * the catalog's own directories change, and are cached briefly.
 */
#ifndef SFFS_FS_H
#define SFFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "sffs/archive.h"
#include "sffs/catalog.h"

/* Reads the FUSE workers hand on, and the threads that serve them. */
#define FS_READERS 16
#define FS_READ_SLOTS 256
/* FUSE workers of a catalog mount unless -o max_threads says otherwise
 * (lookups wait for attaches in them) */
#define FS_CATALOG_THREADS 64
/* idle FUSE workers kept unless -o max_idle_threads says otherwise */
#define FS_IDLE_THREADS 4

#define FS_INO_ROOT 1
#define FS_INO_MODULES 2
#define FS_INO_MODSLURM 3
#define FS_INO_LATEST 4
#define FS_INO_BCINDEX 5 /* layout=buildcache: MNT/index.json */
#define FS_INO_VERSION 0x10000000ull
#define FS_INO_ARTROOT 0x20000000ull
#define FS_INO_MODFILE 0x30000000ull
#define FS_INO_BCDIR 0x40000000ull     /* + id: MNT/<v>/<tc>/buildcache/ */
#define FS_INO_BCMODS 0x50000000ull    /* + id: buildcache/modules/ */
#define FS_INO_BCMODDIR 0x60000000ull  /* + id: modules/<name>/ */
#define FS_INO_BCMODFILE 0x70000000ull /* + id: modules/<name>/<f>.lua */
#define FS_INO_NODE (1ull << 63)
#define FS_ID_MAX (1u << 23)

enum fs_kind {
	FS_ROOT,
	FS_MODULES,
	FS_MODSLURM,
	FS_LATEST,
	FS_VERSION,
	FS_ARTROOT,
	FS_MODFILE,
	FS_BCINDEX,
	FS_BCDIR,
	FS_BCMODS,    /* buildcache/modules/: e its artifact */
	FS_BCMODDIR,  /* modules/<name>/: e catalog_pkg_module_dir's */
	FS_BCMODFILE, /* a package's modulefile: e the package */
	FS_NODE,
};

/* What an inode stands for. For FS_NODE (and FS_ARTROOT once held) the
 * archive is held until fs_unref. */
struct fs_ref {
	enum fs_kind kind;
	struct catalog_entry *e; /* ARTROOT, MODFILE, NODE, BCDIR (its
				    artifact), BCMOD* in a catalog */
	uint32_t vidx;		 /* VERSION */
	uint32_t epoch;		 /* NODE in a catalog */
	struct archive *ar;	 /* NODE */
	uint32_t node;		 /* NODE */
	bool held;		 /* catalog_put owed */
};

/* One read waiting for, or being served by, a reader thread. Slots live
 * as long as the mount, so a late interrupt never touches freed memory. */
struct fs_read {
	fuse_req_t req; /* NULL while free; guarded by fs_readers.lock */
	struct fs_ref ref;
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

/* A forget the reaper passes on to the catalog (fs_forget_ino). */
struct fs_forget {
	uint32_t id, epoch;
	uint64_t n;
};

struct fs {
	struct archive *ar;  /* single mode: the artifact (owned by main) */
	struct catalog *cat; /* catalog mode (owned by main) */
	struct fuse_session *se;
	double timeout;	    /* node entry/attr timeout, seconds */
	double vtimeout;    /* the catalog's directories */
	double neg_timeout; /* a name the catalog does not know */
	time_t mtime;	    /* of the catalog's own entries */
	/* The kernel can open files / directories without asking us: set in
	 * init, read-only afterwards. */
	bool no_open, no_opendir;
	struct fs_readers rd;
	/* catalog mode: the thread that releases idle artifacts */
	pthread_t reaper;
	bool reaper_started;
	pthread_mutex_t reaper_lock;
	pthread_cond_t reaper_wake; /* CLOCK_MONOTONIC */
	bool reaper_stop;	    /* guarded by reaper_lock */
	bool refresh_wanted;	    /* guarded by reaper_lock */
	unsigned reap_period_s;
	/* session.c: the INIT request to grant parallel directory
	 * operations in (0: none), and whether they were granted */
	atomic_uint_fast64_t init_unique;
	atomic_bool parallel_dirops;
	/* forgets for the reaper; guarded by reaper_lock */
	struct fs_forget *forgets;
	size_t nforgets, forgets_cap;
};

/* Single mode: serves ar. 0 or -errno. */
int fs_init(struct fs *fs, struct archive *ar, double timeout);
/* Catalog mode: serves cat. 0 or -errno. */
int fs_init_catalog(struct fs *fs, struct catalog *cat, double timeout);
/* Frees what fs_init and the session made. */
void fs_fini(struct fs *fs);

/* fs/cli.c: the help text; argv with the config file's options (if any)
 * first (0 or -errno); the mount options sffs always adds, with SOURCE
 * redacted as fsname (0 or -ENOMEM). */
void fs_usage(const char *prog);
int fs_build_args(int argc, char *argv[], struct fuse_args *args);
int fs_add_mount_opts(struct fuse_args *args, const char *source);

/* fs/session.c: after fuse_session_mount, makes the kernel channel's
 * I/O grant FUSE_PARALLEL_DIROPS, which libfuse 3.14 drops. 0 or -errno
 * (the session then works as libfuse alone would). */
int fs_session_channel(struct fs *fs, struct fuse_session *se);

/* fs/inode.c: what ino stands for, the archive held for FS_NODE. 0, or
 * -ENOENT (never given out), -ESTALE (its artifact was released). */
int fs_resolve(struct fs *fs, fuse_ino_t ino, struct fs_ref *r);
/* Gives back what fs_resolve (or fs_hold_artroot) held. */
void fs_unref(struct fs *fs, struct fs_ref *r);
/* For FS_ARTROOT: attaches the artifact and turns r into its root node
 * (archive_root). Waits at most the read timeout (-o timeout; less once
 * an earlier wait on the same attach ran out: catalog_attach_wait),
 * then -ETIMEDOUT while the attach goes on for the next request, and ends on a FUSE interrupt of req
 * (-EINTR; req may be NULL). Other errors: the attach's. */
int fs_hold_artroot(struct fs *fs, struct fs_ref *r, fuse_req_t req);
/* The inode of node in r's archive (its root: the artifact root's). */
fuse_ino_t fs_node_ino(const struct fs *fs, const struct fs_ref *r,
		       uint32_t node);
/* The kernel holds one more lookup of node inode ino (catalog_ref). */
void fs_node_looked_up(struct fs *fs, const struct fs_ref *r);
/* The kernel forgot n lookups of ino: queued for the reaper, which may
 * free a released artifact (fs_forgets_run); never heavy work here. */
void fs_forget_ino(struct fs *fs, fuse_ino_t ino, uint64_t n);
/* Passes n queued forgets on to the catalog (the reaper's thread). */
void fs_forgets_run(struct fs *fs, struct fs_forget *f, size_t n);

/* fs/read.c: starts the reader threads (from the init handler: after the
 * daemon forked). 0 or -errno. */
int fs_readers_start(struct fs *fs);
/* Stops and joins them (the destroy handler). */
void fs_readers_stop(struct fs *fs);
/* The read handler: cached bytes at once, the rest through a reader. */
void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);

/* Whether the process that sent req has a fatal signal pending (one it
 * neither catches nor ignores, whose default action ends it), or cannot
 * be looked at. The kernel sends a FUSE interrupt for any signal, and
 * holds a dying process until its request is answered; a caught signal
 * (a shell's SIGCHLD) must not turn a slow lookup or read into EINTR. */
bool fs_req_dying(fuse_req_t req);

/* fs/attr.c: attributes and entries of any inode: 0, or -errno when a
 * relocated file's size could not be had (then filled with the archive's
 * and, for an entry, timeouts 0). */
int fs_fill_attr(struct fs *fs, const struct fs_ref *r, struct stat *st);
int fs_fill_entry(struct fs *fs, const struct fs_ref *r,
		  struct fuse_entry_param *e);
/* How long the kernel may cache r's entry and attributes. */
double fs_ref_timeout(const struct fs *fs, const struct fs_ref *r);
bool fs_ref_is_dir(struct fs *fs, const struct fs_ref *r);

/*
 * fs/vdir.c: the catalog's own inodes, one struct fs_vdir per kind, so
 * that the handlers dispatch through a table instead of switching on each
 * catalog feature. None of them attaches an artifact.
 */
struct fs_ventry {
	char name[2 * CATALOG_NAME_MAX + 8];
	struct fs_ref r;
};

/* A directory listing ("." and ".." first); free with fs_vlist_free. */
struct fs_vlist {
	struct fs_ventry *v;
	size_t n, cap;
};

struct fs_vdir {
	enum fs_kind kind;
	/* Directories: the name inside dir (0 and *out, or -errno), its
	 * entries (appended to l: 0 or -ENOMEM) and its "..". */
	int (*lookup)(struct fs *fs, const struct fs_ref *dir, const char *name,
		      struct fs_ref *out);
	int (*list)(struct fs *fs, const struct fs_ref *dir,
		    struct fs_vlist *l);
	void (*parent)(struct fs *fs, const struct fs_ref *dir,
		       struct fs_ref *out);
	/* Symbolic links: the target, or NULL (ENOENT). */
	const char *(*link)(struct fs *fs, const struct fs_ref *r);
	/* Regular files: up to len bytes at off copied into buf, the count;
	 * with buf NULL, the whole size. */
	size_t (*read)(struct fs *fs, const struct fs_ref *r, uint64_t off,
		       void *buf, size_t len);
};

/* The row for kind (the flat root under layout=buildcache), or NULL
 * (FS_NODE, or single mode). */
const struct fs_vdir *fs_vdir_of(const struct fs *fs, enum fs_kind kind);
bool fs_vdir_is_dir(const struct fs_vdir *v);
/* A name in a catalog directory: 0 and *out, -ENOENT, -ENOTDIR. */
int fs_vdir_lookup(struct fs *fs, const struct fs_ref *dir, const char *name,
		   struct fs_ref *out);
/* The listing of a catalog directory, made afresh (the catalog changes):
 * 0 and *l, or -ENOTDIR / -ENOMEM. */
int fs_vdir_list(struct fs *fs, const struct fs_ref *dir, struct fs_vlist *l);
void fs_vlist_free(struct fs_vlist *l);
/* Mode, nlink, size and blocks of a catalog inode (st zeroed before). */
void fs_vdir_attr(struct fs *fs, const struct fs_ref *r, struct stat *st);
/* A catalog link's target, or NULL. */
const char *fs_vdir_link(struct fs *fs, const struct fs_ref *r);
/* A catalog file's bytes: the count, or -EISDIR. */
ssize_t fs_vdir_read(struct fs *fs, const struct fs_ref *r, uint64_t off,
		     void *buf, size_t len);
/* Does r (an artifact's root node) have a buildcache/ of its own? */
bool fs_vdir_has_bcdir(struct fs *fs, const struct fs_ref *r);
/* The ".." of e's root: its version, the flat root, or its buildcache/. */
void fs_vdir_artroot_parent(struct fs *fs, struct catalog_entry *e,
			    struct fs_ref *out);

/* fs/dir.c, fs/xattr.c: the directory and extended attribute handlers. */
void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

/* fs/reaper.c: catalog mode's release of idle artifacts. */
int fs_reaper_start(struct fs *fs);
void fs_reaper_stop(struct fs *fs);
/* Asks the reaper for catalog_maybe_refresh (readdir of the root: the
 * listing is redone in the background, never in a FUSE worker); without a
 * reaper, calls it here. */
void fs_reaper_refresh(struct fs *fs);

extern const struct fuse_lowlevel_ops fs_ops;

#endif
