/* SPDX-License-Identifier: MIT */
/*
 * catalog_int.h - what the catalog's files share: the catalog and entry
 * structures and the functions one file gives another. Not a public
 * interface (catalog.h is); catalog_i.h holds the pure parsers.
 *
 *   catalog.c   set up, free, stats
 *   names.c     the tables (versions, entries, ids), negative answers
 *               and the name lookups of catalog.h
 *   discover.c  probes, S3 walks, buildcache listings, refresh
 *   bcart.c     the buildcaches of an artifact (bc_base)
 *   attach.c    attach and release
 */
#ifndef SFFS_CATALOG_INT_H
#define SFFS_CATALOG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sffs/buildcache.h"
#include "sffs/catalog.h"
#include "sffs/fetch.h"
#include "sffs/open.h"
#include "sffs/trust.h"

#include <uthash.h>

#include "catalog_i.h"

#define TEMPLATE_SEGMENTS_MAX 16
/* A listing or a probe answer larger than this is refused. */
#define DOC_MAX S3_LIST_MAX_BYTES
/* Listing requests in one refresh, at most (pages x directories). */
#define LIST_REQUESTS_MAX 10000
#define NEG_SLOTS 256
#define NAMES_MAX 64 /* configured versions / toolchains */
/* Entries at most: an id must fit the front end's inode numbers
 * (FS_ID_MAX in fs/fs.h). */
#define FS_ENTRY_LIMIT (1u << 23)
/* The catalog's threads (work.c), at most. */
#define CAT_WORKERS 6
/* How long a caller waits for an attach that already outlasted an
 * earlier caller's deadline. */
#define CAT_LATE_WAIT_MS 100
/* A worker idle this long ends (all but the last one). */
#define CAT_WORKER_IDLE_S 10
/* A network failure's attach back-off: attach_retry_s doubled per
 * failure in a row, capped at this (or attach_retry_s when larger). */
#define CAT_BACKOFF_CAP_S 10
/* Probes: per lookup, in flight per process, begun per second. */
#define CAT_PROBES_PER_LOOKUP 16
#define CAT_PROBES_INFLIGHT 4
#define CAT_PROBES_PER_S 32
/* Key of an entry in c->by_key: "<version>/<toolchain>" for artifacts,
 * "<parent id>:<name>" for the packages of an artifact's buildcaches. */
#define CAT_KEY_MAX (2 * CATALOG_NAME_MAX + 16)

struct catalog_entry {
	uint32_t id, vidx;
	char version[CATALOG_NAME_MAX + 1];
	char toolchain[CATALOG_NAME_MAX + 1];
	char *url;
	/* an artifact's modulefile (set when made, then immutable); a
	 * package's, made at its first read and dropped when its listing
	 * changes (catalog_pkg_module; guarded by lock) */
	char *module;
	size_t module_len;
	/* a buildcache package: its blob's digest and who signed it */
	unsigned char sha256[32];
	bool has_sha;
	char hash[33]; /* a package's full hash (guarded by lock) */
	/* a package's spec name and version from its listing, "" for an
	 * artifact (guarded by lock) */
	char pkg_name[BC_FIELD_MAX];
	char pkg_version[BC_FIELD_MAX];
	char signer[TRUST_FPR_LEN + 1];
	/* a package of an artifact's buildcaches: that artifact (NULL for
	 * artifacts and for the packages of layout=buildcache) */
	struct catalog_entry *parent;
	/* an artifact's buildcaches: listed when (guarded by lock) */
	uint64_t bc_listed_ns, bc_next_ns;
	bool bc_listing;
	unsigned bc_gen;
	atomic_bool present; /* set with cat_set_present */
	atomic_uint seen;    /* the refresh that last found it */
	atomic_uint missed;  /* complete listings in a row without it */
	char key[CAT_KEY_MAX];
	UT_hash_handle hh;    /* c->by_key, guarded by c->lock */
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t changed;
	bool attaching, releasing;
	struct opened o; /* o.ar set while attached */
	uint32_t epoch;
	uint64_t nlookup, active;
	uint64_t last_used_ns;
	/* the last failed attach: its error, given until retry_ns; fails in
	 * a row (network errors back off) */
	uint64_t retry_ns;
	int fail_err;
	unsigned fails;
	uint32_t waiters; /* in catalog_attach_wait */
	/* a wait on this attach reached its deadline: later callers with
	 * the default deadline wait at most CAT_LATE_WAIT_MS (the kernel
	 * queues lookups of one name behind each other: 12 would otherwise
	 * take 12 timeouts) */
	bool attach_overdue;
	/* its world-writable directories were looked for (at its first
	 * attach: logged once, not at every attach) */
	bool writable_checked;
};

/* A version name's index (c->by_version, guarded by c->lock). */
struct cat_version {
	char *name;
	uint32_t vidx;
	UT_hash_handle hh;
};

struct cat_job;

struct neg_slot {
	char key[2 * CATALOG_NAME_MAX + 2];
	uint64_t when; /* 0: empty */
};

struct catalog {
	struct catalog_opts o;
	char *base; /* ends in '/' */
	char *tmpl;
	char *seg[TEMPLATE_SEGMENTS_MAX];
	size_t nseg;
	bool has_arch;
	char arch[CATALOG_NAME_MAX + 1];
	bool flat; /* layout=buildcache: MNT/<package>/ */
	/* -o buildcache_base=: each artifact's buildcaches, as templates
	 * relative to bc_base */
	char *bc_base;
	char *bc_tmpl[TEMPLATE_SEGMENTS_MAX];
	size_t nbc;
	char *bc_index;		   /* guarded by lock: the database document */
	struct bc_keyset *bc_keys; /* offered keys added to the trust set */
	size_t bc_index_len;
	bool s3;
	char *bucket_url, *prefix; /* s3: listing URL and key prefix */
	char *module_root;
	char *names[2][NAMES_MAX]; /* configured versions, toolchains */
	size_t nnames[2];
	struct cache *cache, *wcache;
	struct blockstore *store; /* every artifact's verified blocks */

	pthread_mutex_t lock; /* guards the tables and neg[] */
	struct catalog_entry **ents;
	size_t n, cap;
	char **vers; /* by vidx */
	size_t nv, vcap;
	struct neg_slot neg[NEG_SLOTS];
	uint64_t refreshed_ns;	  /* 0: never */
	uint64_t refresh_next_ns; /* a refresh is due then */
	bool refreshing, refresh_queued;
	atomic_uint gen;		/* refreshes begun */
	struct catalog_entry *by_key;	/* guarded by lock */
	struct cat_version *by_version; /* guarded by lock */
	bool full_logged;		/* FS_ENTRY_LIMIT reached, said so */
	/* versions shown (one entry present), by vidx, as of shown_gen;
	 * presence bumps presence_gen (guarded by lock) */
	bool *vshown;
	size_t vshown_cap;
	unsigned shown_gen;
	const char *latest;
	atomic_uint presence_gen;

	/* work.c: the catalog's threads and their queue */
	pthread_mutex_t wlock; /* guards these */
	pthread_cond_t wcond;
	struct cat_job *jobs, *jobs_tail;
	size_t njobs, nworkers, wbusy; /* nworkers: running ones */
	bool wstop;
	struct cat_worker {
		struct catalog *c;
		pthread_t th;
		bool started; /* to be joined */
		bool exited;  /* idle too long: ended (joined on reuse) */
	} workers[CAT_WORKERS];
	atomic_uint nwaiters; /* in catalog_attach_wait, all entries */

	/* probes: in flight and a token bucket (guarded by plock) */
	pthread_mutex_t plock;
	pthread_cond_t pcond;
	unsigned pinflight;
	double ptokens;
	uint64_t prefill_ns;

	atomic_uint_fast64_t attaches, attach_failures, releases;
	atomic_uint_fast64_t list_requests, probe_requests, probes_found;
};

/* malloc_trim gives freed memory back to the system; under a sanitizer
 * glibc's arenas are not the allocator, and it would crash. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||           \
    __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CAT_MALLOC_TRIM 0
#else
#define CAT_MALLOC_TRIM 1
#endif

static inline uint64_t now_ns(void)
{
	return fetch_now_ns();
}

/* work.c */
/* Runs fn(c, arg) on a catalog thread. 0, or -ENOMEM, -ECANCELED
 * (stopping), -EAGAIN (no thread could start): the caller runs it. */
int cat_submit(struct catalog *c, void (*fn)(struct catalog *c, void *arg),
	       void *arg);
/* Runs what is queued, then joins the threads (catalog_free). */
void cat_work_stop(struct catalog *c);
bool cat_stopping(struct catalog *c);

/* names.c */
/* A zeroed entry with its lock and condition (CLOCK_MONOTONIC), or NULL. */
struct catalog_entry *cat_entry_alloc(void);
/* Shows or hides e, and tells the version tables when that changes. */
void cat_set_present(struct catalog *c, struct catalog_entry *e, bool on);
/* Adds e to the tables under key, with the next id; false when full
 * (logged once) or out of memory. Caller holds c->lock. */
bool cat_add_locked(struct catalog *c, struct catalog_entry *e);
/* The entry of key, or NULL. Caller holds c->lock. */
struct catalog_entry *cat_by_key_locked(struct catalog *c, const char *key);
/* Is e in use (attached, attaching, or held by the kernel or a request)? */
bool cat_in_use(struct catalog_entry *e);
/* After a complete listing of generation gen: e was not in it. Hides e
 * when idle and missing from two listings in a row. */
void cat_missed(struct catalog *c, struct catalog_entry *e);
/* Frees an entry that is in no table (or the whole catalog's). */
void cat_entry_free(struct catalog_entry *e);
/* (version, toolchain), or NULL. Caller holds c->lock. O(1). */
struct catalog_entry *cat_find_locked(struct catalog *c, const char *version,
				      const char *toolchain);
/* base + the template expanded with v; malloc'd or NULL. */
char *cat_artifact_url(struct catalog *c, const struct catalog_vars *v);
/* Records that (version, toolchain) exists; the entry, or NULL (ENOMEM). */
struct catalog_entry *cat_entry_found(struct catalog *c,
				      const struct catalog_vars *v);

/* discover.c */
/* A HEAD of the artifact (version, toolchain): 0 (exists), -ENOENT, or
 * another -errno (the server could not tell). */
int cat_probe(struct catalog *c, const char *version, const char *toolchain,
	      uint64_t deadline_ns);
/* A package's blob url, digest and signer, from a listing. 0 or -ENOMEM. */
int cat_set_package(struct catalog_entry *e, const struct bc_package *p);
/* Waits for a probe slot (concurrency and rate) until deadline_ns: 0, or
 * -ETIMEDOUT. cat_probe_done gives the slot back. */
int cat_probe_admit(struct catalog *c, uint64_t deadline_ns);
void cat_probe_done(struct catalog *c);

/* bcart.c */
/* Waits on e->changed until deadline_ns (CLOCK_MONOTONIC): 0 (woken), or
 * -ETIMEDOUT. Caller holds e->lock. */
int cat_wait_locked(struct catalog_entry *e, uint64_t deadline_ns);

/* attach.c */
/* Is rc an integrity failure (digest, signature, gzip/zstd check)? Only
 * those hide a package or mark an artifact as failing its checks. */
bool cat_integrity_err(int rc);
/* The default wait of a lookup: now + the read timeout. */
uint64_t cat_deadline(struct catalog *c);

/* bcreloc.c: package e (its archive ar, root set) relocated to its
 * directory in the mount, or refused with a log line; 0, or -errno when
 * the attach must fail (the network, memory). */
int cat_package_relocate(struct catalog *c, struct catalog_entry *e,
			 struct archive *ar);
/* attach.c: e's attach queued on a catalog thread unless it is attached,
 * attaching, failed too recently, or no thread is free; never waits.
 * A package's dependencies are attached ahead so that a loader walking
 * its RPATH does not attach them one after another. */
void cat_attach_ahead(struct catalog *c, struct catalog_entry *e);

#endif
