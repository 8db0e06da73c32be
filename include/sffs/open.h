/* SPDX-License-Identifier: MIT */
/*
 * open.h - the open policy: how an artifact gets ready to serve. From its
 * local index cache, else from the published index (SOURCE.sfidx, or the
 * one named), else by one streaming pass whose index is then kept in the
 * cache. Every index is checked against the artifact it claims
 * (archive_open_index). Used by the single-artifact daemon and by the
 * catalog for each artifact it attaches. No FUSE.
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

/* 0 and *out filled, or -errno after logging why nothing could be
 * opened: -ENOENT (no such artifact), -EACCES, -ETIMEDOUT,
 * -ECONNREFUSED, -EHOSTUNREACH (the network), -EIO (not a usable
 * archive), -ENOMEM. */
int artifact_open(const struct open_cfg *cfg, struct archive_opts *ao,
		  struct opened *out);
/* Frees what artifact_open filled; safe on a zeroed struct. */
void artifact_close(struct opened *o);

#endif
