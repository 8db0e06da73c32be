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

#include "catalog_i.h"

#define TEMPLATE_SEGMENTS_MAX 16
/* A listing or a probe answer larger than this is refused. */
#define DOC_MAX S3_LIST_MAX_BYTES
/* Listing requests in one refresh, at most (pages x directories). */
#define LIST_REQUESTS_MAX 10000
#define NEG_SLOTS 256
#define NAMES_MAX 64 /* configured versions / toolchains */
/* Entries at most: an id must fit the front end's inode numbers. */
#define FS_ENTRY_LIMIT (1u << 23)

struct catalog_entry {
	uint32_t id, vidx;
	char version[CATALOG_NAME_MAX + 1];
	char toolchain[CATALOG_NAME_MAX + 1];
	char *url;
	char *module;
	size_t module_len;
	/* a buildcache package: its blob's digest and who signed it */
	unsigned char sha256[32];
	bool has_sha;
	char signer[TRUST_FPR_LEN + 1];
	/* a package of an artifact's buildcaches: that artifact (NULL for
	 * artifacts and for the packages of layout=buildcache) */
	struct catalog_entry *parent;
	/* an artifact's buildcaches: listed when (guarded by lock) */
	uint64_t bc_listed_ns;
	bool bc_listing;
	unsigned bc_gen;
	atomic_bool present;
	atomic_uint seen;     /* the refresh that last found it */
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t changed;
	bool attaching, releasing;
	struct opened o; /* o.ar set while attached */
	uint32_t epoch;
	uint64_t nlookup, active;
	uint64_t last_used_ns, fail_ns;
	int fail_err;
};

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
	char *bc_index; /* guarded by lock: the database document */
	size_t bc_index_len;
	bool s3;
	char *bucket_url, *prefix; /* s3: listing URL and key prefix */
	char *module_root;
	char *names[2][NAMES_MAX]; /* configured versions, toolchains */
	size_t nnames[2];
	struct cache *cache, *wcache;

	pthread_mutex_t lock; /* guards the tables and neg[] */
	struct catalog_entry **ents;
	size_t n, cap;
	char **vers; /* by vidx */
	size_t nv, vcap;
	struct neg_slot neg[NEG_SLOTS];
	uint64_t refreshed_ns; /* 0: never */
	bool refreshing;
	atomic_uint gen; /* refreshes begun */

	atomic_uint_fast64_t attaches, attach_failures, releases;
	atomic_uint_fast64_t list_requests, probe_requests, probes_found;
};

static inline uint64_t now_ns(void)
{
	return fetch_now_ns();
}

/* names.c */
/* Frees an entry that is in no table (or the whole catalog's). */
void cat_entry_free(struct catalog_entry *e);
/* (version, toolchain), or NULL. Caller holds c->lock. */
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
int cat_probe(struct catalog *c, const char *version, const char *toolchain);
/* A package's blob url, digest and signer, from a listing. 0 or -ENOMEM. */
int cat_set_package(struct catalog_entry *e, const struct bc_package *p);

#endif
