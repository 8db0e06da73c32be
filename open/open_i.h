/* SPDX-License-Identifier: MIT */
/*
 * open_i.h - what open.c uses of the other files of open/.
 */
#ifndef SFFS_OPEN_I_H
#define SFFS_OPEN_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sffs/open.h"

/* ---- cache.c: the cache directory ---- */

/* The cache directory cfg asks for (cache_dir, else /var/cache/sffs as
 * root, ~/.cache/sffs otherwise) into dir, made if missing and checked
 * private (open's rules: ours, 0700, writable by no one else; else
 * ignored with a warning). 0, or 1: no cache. */
int open_cache_dir(const struct open_cfg *cfg, char *dir, size_t len);
/* dir/<prefix><sha256 of s1 NUL s2 NUL s3 (NULL parts left out)><suffix>
 * into buf; s1 is a URL, whose query and fragment are left out (a
 * presigned URL signed again is the same object). 0, or 1 (too long, or
 * OpenSSL failed). */
int open_cache_key(const char *dir, const char *prefix, const char *s1,
		   const char *s2, const char *s3, const char *suffix,
		   char *buf, size_t len);
/* The cached index of the artifact at url of this size and validator:
 * a changed artifact gets another name, so a stale index is never used.
 * 0, or 1. */
int open_cache_path(const char *dir, const char *url, uint64_t size,
		    const char *identity, char *buf, size_t len);
/* Makes the directories of path up to its last '/' (0700). 0 or -errno. */
int open_mkdir_p(const char *path);
/* A cached file is used only if it is a regular file of ours that no one
 * else may write, reached without following a symlink (else a warning). */
bool open_cache_file_ok(const char *cpath);
/* A file just written: 0600, whatever the writer's umask said. */
void open_cache_file_seal(const char *cpath);
/* Writes all of data to fd (EINTR retried). 0 or -errno. */
int open_write_all(int fd, const void *data, size_t len);
/* Replaces path by len bytes of data: a new temporary file beside it
 * (mkstemp: never through a planted name or symlink), 0600, fsync'd and
 * renamed over. 0 or -errno. */
int open_write_private(const char *path, const void *data, size_t len);

/* ---- offline.c: opening while no server answers ---- */

/* Records in cdir what f pinned (size, validator) under source, so a
 * later open that reaches no server finds its cached index. Logged, never
 * fatal. */
void offline_record(const char *cdir, const char *source, struct fetch *f);
/* *out: the artifact cfg->source opened without a request, pinned as the
 * record says (fetch_open_pinned). 0, or -ENOENT (never opened here) or
 * -errno with why. */
int offline_pinned(const struct open_cfg *cfg, const char *cdir,
		   struct fetch **out, char *why, size_t whylen);
/* Copies the published index at index_url (as served: pinned to its size
 * and validator) to cpath with sig (NULL: none) beside it, on a thread
 * of its own; logged, never fatal. */
void offline_keep_index(const char *cpath, const char *index_url,
			const struct fetch_opts *fo, struct fetch *served,
			const void *sig, size_t siglen);

/* ---- rollback.c ---- */

/*
 * The rollback check (rollback.c): for an artifact accepted under trust,
 * the newest signed time (a signature's creation time, or an index
 * header's publication time) seen under key (an artifact's name: its
 * URL as logs show it, without query, or the catalog's
 * version/toolchain/name) is kept in a private file of dir (0600, written
 * to a temporary name and renamed). An artifact whose time is older than
 * that record and whose SHA-256 is another is refused unless allow; the
 * same artifact, or one as new or newer, is accepted and a newer time
 * recorded. dir NULL (no cache) or when 0 (unknown) checks nothing (a
 * debug line says so). 0, or -EKEYREJECTED with both times (ISO 8601)
 * and what to do in why. A record that cannot be read or written is
 * logged and checks nothing: the artifact is verified already, the
 * record only adds "not older".
 */
int rollback_check(const char *dir, const char *key, uint64_t when,
		   const unsigned char sha256[32], bool allow, char *why,
		   size_t whylen);

#endif
