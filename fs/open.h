/* SPDX-License-Identifier: MIT */
/*
 * open.h - how the daemon gets an artifact ready: from its local index
 * cache, else from the published index, else by one streaming pass whose
 * index it then keeps in the cache.
 */
#ifndef SFFS_OPEN_H
#define SFFS_OPEN_H

#include <stdbool.h>

#include "sffs/archive.h"
#include "sffs/fetch.h"

struct open_cfg {
	const char *source;
	const char *index;     /* URL/path, NULL: SOURCE.sfidx, "none" */
	const char *cache_dir; /* NULL: default, "none": no cache */
	struct fetch_opts fo;
	bool quiet;
};

struct opened {
	struct fetch *f;    /* the artifact */
	struct fetch *idx;  /* the index windows come from, or NULL */
	struct archive *ar;
	const char *how;    /* "cache", "published index", "indexed" */
};

/* 0 and *out filled, or 1 after logging why nothing could be opened. */
int artifact_open(const struct open_cfg *cfg, struct archive_opts *ao,
		  struct opened *out);
/* Frees what artifact_open filled; safe on a zeroed struct. */
void artifact_close(struct opened *o);

#endif
