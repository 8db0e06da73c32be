/* SPDX-License-Identifier: MIT */
/*
 * cfg.h - the daemon's options as parsed (main.c) and the setup steps
 * built on them (setup.c). Not part of any library.
 */
#ifndef SFFS_FS_CFG_H
#define SFFS_FS_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include "sffs/fetch.h"

struct disk;
struct trust;

struct cfg {
	char *source; /* own copy: the parsed argv is freed */
	char *cache_mem;
	char *span;
	char *source_opt;    /* source= (the config file's), moved to source */
	char *index;	     /* -o index=URL|PATH, or "none" */
	char *signature;     /* -o signature=URL|PATH: SOURCE's detached sig */
	char *oom_score_adj; /* -o oom_score_adj=N (-1000..1000) */
	char *cache_dir;     /* -o cache_dir=DIR, or "none" */
	char *cache_size;    /* -o cache_size=SIZE: the disk tier (0: none) */
	char *readahead;
	char *block;
	char *window_mem;
	unsigned timeout;
	unsigned max_fetches;
	char *cafile; /* -o cafile=FILE */
	unsigned retries;
	unsigned connect_timeout;
	int insecure;
	int allow_insecure; /* under trust: http:// and insecure allowed */
	char *mirrors;	    /* -o mirrors=URL[;URL] */
	char *proxies;	    /* -o proxies="A|B;C;DIRECT" */
	char *host_reset_after;
	char *proxy_reset_after;
	/* catalog mode */
	char *layout;
	char *tmpl;
	char *arch;
	char *s3_endpoint;
	char *versions;
	char *toolchains;
	char *refresh;
	char *negative_ttl;
	char *release_after;
	char *module_root;
	char *bc_base;	    /* -o buildcache_base=URL */
	char *bc_templates; /* -o buildcache=T[:T] */
	int norelocate;	    /* -o norelocate: packages as in their blobs */
	char *relocate;	    /* -o relocate=OLD[=REL][:...]: tarball ELFs */
	/* OpenPGP (trust.h) */
	char *trust;	    /* -o trust=FPR[:FPR...] */
	char *keyring;	    /* -o keyring=FILE|URL */
	char *verify;	    /* -o verify=require|off */
	int allow_rollback; /* -o allow_rollback: older signed builds too */
	char *config;
	int verbose;
	int quiet;
	int show_help;
	int show_version;
	int nargs;
};

/* main.c: option helpers (each logs what is wrong). */
int parse_size_opt(const char *name, const char *val, uint64_t min,
		   uint64_t max, uint64_t *out);
int parse_seconds(const char *name, const char *val, unsigned *out);
void fill_fetch_opts(const struct cfg *cfg, struct fetch_opts *fo);
bool is_catalog(const char *source);

/* setup.c: the trust set the options ask for (*out NULL when nothing is
 * verified), the route of mirrors and proxies, and the disk tier (*out
 * NULL when none). 0, or nonzero after logging why. */
int fs_build_trust(const struct cfg *cfg, struct trust **out);
int fs_setup_route(const struct cfg *cfg);
int fs_open_disk(const struct cfg *cfg, struct disk **out);

#endif
