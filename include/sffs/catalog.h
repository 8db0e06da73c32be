/* SPDX-License-Identifier: MIT */
/*
 * catalog.h - every published artifact under one base, as a set of
 * (version, toolchain) entries: URL templates and layouts, discovery (S3
 * ListObjectsV2, HEAD probes), lazy attach and release of each artifact
 * through the open policy (open.h), and generated modulefiles.
 *
 * The catalog knows no FUSE. Its front end (fs/) asks it for names, and
 * tells it what the kernel holds:
 *  - catalog_attach() gets an artifact's archive ready (one attach at a
 *    time per artifact; concurrent callers wait for it) and takes an
 *    "active" reference for the request; catalog_get() takes one on an
 *    artifact already attached; catalog_put() gives it back.
 *  - catalog_ref()/catalog_unref() count the kernel's lookups of the
 *    archive's inodes (entries replied, forgets).
 *  - catalog_idle() marks artifacts unused for release_after seconds as
 *    releasing and names them, so that the front end can tell the kernel
 *    to drop their entries. A releasing artifact is freed once the kernel
 *    holds none of its inodes and no request uses it; a lookup before
 *    then takes it back into use.
 * Memory is per process: one chunk cache and one window cache shared by
 * every attached archive, one HTTP client (fetch.h). Attaches, listings
 * after the first and releases run on the catalog's own threads (at most
 * 6, down to 1 when idle, joined by catalog_free), never in a caller
 * that answers the kernel.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef SFFS_CATALOG_H
#define SFFS_CATALOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sffs/archive.h"
#include "sffs/open.h"

struct catalog;
struct catalog_entry; /* one artifact; lives as long as the catalog */

/* Longest version, toolchain or arch name, without the NUL. */
#define CATALOG_NAME_MAX 64

struct catalog_opts {
	const char *base;      /* ends in '/': http(s)://, s3://, file://, path */
	const char *layout;    /* "seed" (default), "factory", or "buildcache":
				  a Spack buildcache's packages, flat */
	const char *tmpl;      /* own template; overrides layout */
	const char *arch;      /* {arch}; NULL: the node's */
	const char *versions;  /* ':'-separated names to probe, or NULL */
	const char *toolchains;
	unsigned refresh_s;       /* a listing is redone after this (300) */
	unsigned negative_ttl_s;  /* a missing name stays missing (30) */
	unsigned release_after_s; /* unused this long: released (600; 0 off) */
	unsigned attach_retry_s;  /* a failed attach is retried after (5) */
	const char *module_root;  /* absolute path modulefiles name */
	/* Each artifact's Spack buildcaches: templates ({version},
	 * {toolchain}, {arch}; ':'-separated; NULL: the seed's two,
	 * "{toolchain}/slurm/deps/buildcache/" and
	 * "{toolchain}/slurm/{version}/buildcache/", and the factory's
	 * "{toolchain}/spack/") under bc_base (NULL:
	 * none), shown as MNT/<version>/<toolchain>/buildcache/<package>/. */
	const char *bc_base;
	const char *bc_templates;
	/* buildcache packages are served as Spack's relocation leaves them
	 * at their directories in the mount (docs/relocation.md) unless
	 * norelocate */
	bool norelocate;
	/* artifacts' ELF files relocated (archive_relocate_tree's spec,
	 * to MNT/<version>/<toolchain>), or NULL */
	const char *relocate;
	struct open_cfg oc;       /* index, cache_dir, fetch options */
	struct archive_opts ao;   /* per artifact; caches: the catalog's */
};

void catalog_opts_default(struct catalog_opts *o);

/* Checks the options (template, base, arch) and sets up; lists nothing.
 * NULL with a one-line reason in err. */
struct catalog *catalog_new(const struct catalog_opts *o, char *err,
			    size_t errlen);
/* Frees everything; no other call may be running. */
void catalog_free(struct catalog *c);

/* Lists (S3) or probes (versions x toolchains) now, in the caller (the
 * mount calls it once before serving). 0, or -errno when the listing
 * failed or was incomplete (what was known stays; a failed listing is
 * redone after attach_retry_s). Hiding: an entry missing from a complete,
 * non-empty listing is hidden only when it is missing from two in a row
 * and not in use (attached, attaching, referenced); a probe's 403 or 5xx
 * hides nothing. */
int catalog_refresh(struct catalog *c);
/* Queues catalog_refresh on a catalog thread when one is due (refresh_s
 * after the last, attach_retry_s after a failed one) and returns at once:
 * names answer from what is known meanwhile. */
void catalog_maybe_refresh(struct catalog *c);

/* ---- names --------------------------------------------------------- */

/* Versions known now, in version order: names[0..n) point into the
 * catalog (stable), n at most max; returns the count (may exceed max;
 * names may be NULL to count). */
size_t catalog_versions(struct catalog *c, const char **names, size_t max);
/* Index of version name (stable, for inode numbers), or -ENOENT. With
 * probe, an unknown name (not negatively cached) is probed first: at most
 * 16 HEADs, a few at once per process and a bounded rate, all within the
 * read timeout (ao.timeout_s); when a server could not tell (403, 5xx,
 * timeout) that -errno instead of -ENOENT, and nothing is cached. */
int catalog_version(struct catalog *c, const char *name, bool probe);
const char *catalog_version_name(struct catalog *c, uint32_t vidx);
/* The newest version, or NULL. */
const char *catalog_latest(struct catalog *c);

/* Entries of version vidx, in toolchain order; as catalog_versions (out
 * may be NULL to count). */
size_t catalog_entries(struct catalog *c, uint32_t vidx,
		       struct catalog_entry **out, size_t max);
/* Every entry, in (version, toolchain) order. */
size_t catalog_all(struct catalog *c, struct catalog_entry **out,
		   size_t max);
/* The entry (version, toolchain), or NULL with errno ENOENT (or, after
 * a probe the server could not answer, EACCES, EIO, ETIMEDOUT...: not a
 * missing name). probe: as catalog_version. */
struct catalog_entry *catalog_find(struct catalog *c, const char *version,
				   const char *toolchain, bool probe);
/* By id (stable, for inode numbers), or NULL. */
struct catalog_entry *catalog_entry_by_id(struct catalog *c, uint32_t id);

uint32_t catalog_entry_id(const struct catalog_entry *e);
uint32_t catalog_entry_vidx(const struct catalog_entry *e);
const char *catalog_entry_version(const struct catalog_entry *e);
const char *catalog_entry_toolchain(const struct catalog_entry *e);
const char *catalog_entry_url(const struct catalog_entry *e);
/* Is it listed now (a released or never attached entry that vanished
 * from the listing is not)? */
bool catalog_entry_present(const struct catalog_entry *e);
/* Its generated modulefile (catalog_i.h), made without fetching it. */
const char *catalog_entry_module(const struct catalog_entry *e, size_t *len);

/* ---- attach and release -------------------------------------------- */

/*
 * The entry's archive, attached if need be (index from the cache dir,
 * published, or built once), with an active reference: 0 and *ar, *epoch
 * (the attach generation, for inode numbers), or -errno (attach failed:
 * logged; the same error is given until the retry: attach_retry_s after
 * an integrity failure, -EBADMSG or -EKEYREJECTED, which also hides a
 * buildcache package; after any other (network) error attach_retry_s
 * doubled per failure in a row, capped at 10 s, +-25% jitter, and
 * nothing is hidden). catalog_attach_wait with deadline 0 and no cancel:
 * at most the read timeout, then -ETIMEDOUT.
 */
int catalog_attach(struct catalog *c, struct catalog_entry *e,
		   struct archive **ar, uint32_t *epoch);
/*
 * catalog_attach with the caller's deadline and cancel flag: the attach
 * runs on a catalog thread, never in the caller's, and goes on when the
 * wait ends, so that the next caller finds it done. deadline_ns is
 * CLOCK_MONOTONIC (fetch_now_ns; 0 = now + the read timeout, ao.timeout_s,
 * cut to 100 ms when an earlier wait on the same attach already reached
 * its deadline: the kernel queues lookups of one name one behind the
 * other, so that 12 of them would otherwise take 12 timeouts; a deadline
 * given is kept exactly). cancel may be NULL (see catalog_wake). Returns
 * as catalog_attach, or -ETIMEDOUT at the deadline, -EINTR once *cancel
 * is true.
 */
int catalog_attach_wait(struct catalog *c, struct catalog_entry *e,
			uint64_t deadline_ns, const atomic_bool *cancel,
			struct archive **ar, uint32_t *epoch);
/* Wakes every catalog_attach_wait so that it looks at its cancel flag
 * (a FUSE interrupt handler calls it, after setting the flag). */
void catalog_wake(struct catalog *c);
/* An active reference on the entry's archive of generation epoch, if
 * attached: 0 and *ar, or -ESTALE (not attached, or another generation). */
int catalog_get(struct catalog *c, struct catalog_entry *e, uint32_t epoch,
		struct archive **ar);
/* An active reference on the entry's archive if it is attached now (any
 * generation; never attaches): 0 and *ar, or -ESTALE. */
int catalog_peek(struct catalog *c, struct catalog_entry *e,
		 struct archive **ar);
void catalog_put(struct catalog *c, struct catalog_entry *e);
/* The kernel now holds n more (ref) or fewer (unref) lookups of inodes
 * of generation epoch. When catalog_put or catalog_unref drops the last
 * use of a releasing archive, it is closed (threads joined, memory
 * trimmed) on a catalog thread: both are cheap enough for forget. */
void catalog_ref(struct catalog *c, struct catalog_entry *e, uint32_t epoch,
		 uint64_t n);
void catalog_unref(struct catalog *c, struct catalog_entry *e,
		   uint32_t epoch, uint64_t n);

/* Marks attached entries unused for release_after_s as releasing; calls
 * cb for each (the front end drops the kernel's entries there). Returns
 * how many. */
size_t catalog_idle(struct catalog *c,
		    void (*cb)(void *arg, struct catalog_entry *e),
		    void *arg);

struct catalog_stats {
	uint64_t known, attached, attaches, attach_failures, releases;
	uint64_t list_requests, probe_requests, probes_found;
	struct blockstore_stats store; /* the one block store of them all */
};
void catalog_get_stats(struct catalog *c, struct catalog_stats *st);

/* ---- layout=buildcache ---------------------------------------------- */
/* The packages are entries of version "<name>-<version>-<hash7>" and
 * toolchain "", shown flat: MNT/<package>/ is the package's install
 * prefix. */
bool catalog_flat(const struct catalog *c);

/* ---- an artifact's buildcaches (bc_base) ---------------------------- */
bool catalog_bc_enabled(const struct catalog *c);
/* The packages of art's buildcaches, by name (listed on first call and
 * after refresh_s; packages whose manifests fail are not among them);
 * as catalog_entries. Package entries are attached, released and read
 * like artifacts; their roots are their install prefixes. */
size_t catalog_bc_packages(struct catalog *c, struct catalog_entry *art,
			   struct catalog_entry **out, size_t max);
struct catalog_entry *catalog_bc_find(struct catalog *c,
				      struct catalog_entry *art,
				      const char *name);
/* The artifact a package entry belongs to, or NULL. */
struct catalog_entry *catalog_entry_parent(const struct catalog_entry *e);
/* Copies up to len bytes at off of the buildcache's database document
 * into buf and returns how many; with buf NULL, its whole size. */
size_t catalog_bc_index(struct catalog *c, uint64_t off, void *buf,
			size_t len);

/* ---- buildcache packages' modulefiles -------------------------------- */
/* A set of packages: art's buildcaches, or NULL for layout=buildcache's.
 * The front end shows <set>/modules/<name>/<version>-<hash7>.lua; all of
 * it is made from the listing, never by attaching a package. */

/* Package e's spec name into name and its modulefile's file name
 * "<version>-<hash7>.lua" into file: true, or false (e is no package, or
 * a buffer is too small). */
bool catalog_pkg_names(struct catalog_entry *e, char *name, size_t nlen,
		       char *file, size_t flen);
/* One entry per name among the set's present packages, by name: each
 * the first entry of that name in the set (lowest id, present or not),
 * so that its id stays the same while the catalog lives (inode numbers
 * of <set>/modules/<name>/). As catalog_entries. */
size_t catalog_pkg_module_dirs(struct catalog *c, struct catalog_entry *art,
			       struct catalog_entry **out, size_t max);
/* The entry catalog_pkg_module_dirs gives for name, or NULL. */
struct catalog_entry *catalog_pkg_module_dir(struct catalog *c,
					     struct catalog_entry *art,
					     const char *name);
/* The present packages of dir's set that have dir's name (dir from
 * catalog_pkg_module_dir(s)), by id; as catalog_entries. */
size_t catalog_pkg_modules(struct catalog *c, struct catalog_entry *dir,
			   struct catalog_entry **out, size_t max);
/* Copies up to len bytes at off of package e's modulefile (catalog_i.h
 * catalog_bc_modulefile: prefix its directory in the mount,
 * LD_LIBRARY_PATH with norelocate; made at the first call, again after a
 * listing changed it) into buf and returns how many; with buf NULL its
 * whole size. 0 when e is no package or it cannot be made (logged). */
size_t catalog_pkg_module(struct catalog *c, struct catalog_entry *e,
			  uint64_t off, void *buf, size_t len);


#endif
