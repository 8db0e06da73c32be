/* SPDX-License-Identifier: MIT */
/*
 * index.h - the .sfidx file: a published index of one artifact.
 *
 * Layout (docs/index-format.md has it byte by byte):
 *   header   fixed fields, section table, identity, SHA-256 of the header
 *   MEMBERS  zstd: every accepted tar member in archive order (replayed
 *            through tree_add, so duplicates resolve exactly as at build)
 *   POINTS   zstd: the seek points with span and window digests
 *   WINDOWS  the deflate-compressed 32 KiB windows, one after the other
 * The header, MEMBERS and POINTS form the eager part a node reads at
 * mount (two requests); a window is fetched by range the first time a
 * read needs its span, and checked against its digest.
 *
 * Output is deterministic: it depends only on the artifact's bytes and the
 * spacing (and on the identity string, which is empty unless given).
 * Parsers bound every count and length and fail with -EINVAL (malformed),
 * -EPROTO (unknown major version) or -ENOMEM; they never trust a length
 * without checking it against the bytes they hold.
 * Never includes FUSE headers.
 */
#ifndef SFFS_INDEX_H
#define SFFS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "sffs/fetch.h"
#include "sffs/seek.h"
#include "sffs/tar.h"
#include "sffs/tree.h"

#define INDEX_MAGIC "SFFSIDX\n"
#define INDEX_MAJOR 1
#define INDEX_MINOR 0
#define INDEX_HEADER_MAX 4096u
#define INDEX_MAX_IDENTITY 1024u
#define INDEX_MAX_SECTION (UINT64_C(1) << 30) /* 1 GiB, stored or raw */

enum index_section { INDEX_MEMBERS, INDEX_POINTS, INDEX_WINDOWS,
		     INDEX_NSECTIONS };

struct index_section_desc {
	uint64_t off;    /* from the start of the file */
	uint64_t len;    /* bytes stored */
	uint64_t rawlen; /* bytes after decompression */
	unsigned char sha256[32]; /* of the stored bytes */
};

struct index_header {
	uint16_t major, minor;
	uint32_t hlen;
	uint64_t artifact_size;
	unsigned char artifact_sha256[32];
	enum seek_codec codec;
	uint64_t usize;
	uint64_t spacing;
	uint64_t nmembers;
	uint64_t npoints;
	struct index_section_desc sec[INDEX_NSECTIONS];
	char identity[INDEX_MAX_IDENTITY + 1]; /* "" if unknown */
};

/* ---- writing ---- */

/* Member records, appended in archive order while indexing. */
struct index_members;
struct index_members *index_members_new(void);
void index_members_free(struct index_members *m);
/* Appends one tar entry. 0 or -ENOMEM. */
int index_members_add(struct index_members *m, const struct tar_entry *e);
uint64_t index_members_count(const struct index_members *m);

/*
 * Writes the index of an artifact to path, atomically (a temporary file
 * in the same directory, fsync, rename). hdr supplies artifact_size,
 * artifact_sha256, spacing and identity; the rest is filled in. Every
 * point of si must hold its window (as built). 0 or -errno.
 */
int index_write(const char *path, struct index_header *hdr,
		const struct index_members *m, const struct seek_index *si);

/* ---- reading ---- */

/* Parses and checks a header held in buf (at least its first hlen
 * bytes). 0, -EINVAL (bad magic, digest, bounds), -EPROTO (major). */
int index_parse_header(const void *buf, size_t len, struct index_header *h);

/* Replays the raw (decompressed) MEMBERS section into t. 0 or -errno. */
int index_parse_members(const void *raw, size_t len, uint64_t count,
			struct tree *t);
/* Parses the raw POINTS section into a new seek index (windows not
 * loaded: window NULL, woff/wdigest set). 0 or -errno. */
int index_parse_points(const void *raw, size_t len,
		       const struct index_header *h, struct seek_index **out);

/*
 * Loads the eager part of the index behind idx for the artifact of
 * artifact_size: header, MEMBERS into t, POINTS into *si. Checks every
 * digest and that the index describes an artifact of that size. On
 * failure a one-line reason goes to err. 0 or -errno.
 */
int index_load(struct fetch *idx, uint64_t artifact_size,
	       struct index_header *h, struct tree *t, struct seek_index **si,
	       char *err, size_t errlen);

/* Fetches point i's window from idx into a new buffer after checking
 * its digest. 0 and *out (malloc'd, pts[i].wlen bytes), or -errno. */
int index_load_window(struct fetch *idx, const struct index_header *h,
		      const struct seek_point *pt, unsigned char **out);

#endif
