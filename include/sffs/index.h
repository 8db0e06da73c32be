/* SPDX-License-Identifier: MIT */
/*
 * index.h - the .sfidx file: a published index of one artifact.
 *
 * Layout (docs/index-format.md has it byte by byte):
 *   header   fixed fields, section table, identity, SHA-256 of the header
 *   MEMBERS  zstd: every accepted tar member in archive order (replayed
 *            through tree_add, so duplicates resolve exactly as at build)
 *   POINTS   zstd: the seek points with window digests
 *   BLOCKS   the SHA-256 of every aligned block of the compressed artifact
 *   WINDOWS  the deflate-compressed 32 KiB windows, one after the other
 * The header, MEMBERS and POINTS form the eager part a node reads at
 * mount (two requests); BLOCKS too for an index without pages (bpage 0),
 * else a page of block digests is fetched by range the first time a block
 * of it is read (index_digests_*), as a window is the first time a read
 * needs its span; each is checked against its digest. The header also
 * names the artifact: its size, SHA-256 and the digests of its first and
 * last 4 KiB, which the daemon checks against the served artifact (two
 * small ranges) before it trusts the index.
 *
 * Output is deterministic: it depends only on the artifact's bytes and the
 * spacing (and on the identity and signer strings, empty unless given).
 * Parsers bound every count and length and fail with -EINVAL (malformed),
 * -EPROTO (a major version outside INDEX_MAJOR_MIN..INDEX_MAJOR) or -ENOMEM;
 * they never trust a length without checking it against the bytes they hold.
 * Never includes FUSE headers.
 */
#ifndef SFFS_INDEX_H
#define SFFS_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sffs/fetch.h"
#include "sffs/seek.h"
#include "sffs/tar.h"
#include "sffs/tree.h"

#define INDEX_MAGIC "SFFSIDX\n"
/* 3: MEMBERS stores offsets as differences and paths front-coded. A
 * reader reads every major from INDEX_MAJOR_MIN on: 2.x files are still
 * read (their MEMBERS the old way). */
#define INDEX_MAJOR 3
#define INDEX_MAJOR_MIN 2
/* 2.1: the optional verified-signer field; 2.2 and 3.0: block-digest
 * pages; 3.1: the binding (name, version, toolchain, publication time) */
#define INDEX_MINOR 1
#define INDEX_HEADER_MAX 4096u
#define INDEX_MAX_IDENTITY 1024u
#define INDEX_MAX_SECTION (UINT64_C(1) << 30) /* 1 GiB, stored or raw */
#define INDEX_EDGE 4096u
#define INDEX_MAX_SIGNER 64u
/* Minor 2: BLOCKS is cut into pages of bpage digests (a power of two,
 * INDEX_MIN_BPAGE or more) with at most INDEX_MAX_PAGES pages, and the
 * header holds the SHA-256 of each page, so that a reader may fetch and
 * check only the pages of the blocks it reads. */
#define INDEX_MAX_PAGES 64u
#define INDEX_MIN_BPAGE 128u
/* Minor 3.1: the binding's bounds (a file name; a catalog's version and
 * toolchain are at most CATALOG_NAME_MAX). */
#define INDEX_MAX_NAME 255u
#define INDEX_MAX_TAG 64u

enum index_section {
	INDEX_MEMBERS,
	INDEX_POINTS,
	INDEX_BLOCKS,
	INDEX_WINDOWS,
	INDEX_NSECTIONS
};

struct index_section_desc {
	uint64_t off;		  /* from the start of the file */
	uint64_t len;		  /* bytes stored */
	uint64_t rawlen;	  /* bytes after decompression */
	unsigned char sha256[32]; /* of the stored bytes */
};

/*
 * Minor 3.1: what the signed header is for, so that a validly signed
 * build served under another name (or an older one under the same name)
 * is refused: the artifact's file name, its version and toolchain (as a
 * catalog template gives them) and when it was published (seconds since
 * the epoch). Each is "" or 0 when unknown, and then not checked.
 */
struct index_binding {
	char name[INDEX_MAX_NAME + 1];
	char version[INDEX_MAX_TAG + 1];
	char toolchain[INDEX_MAX_TAG + 1];
	uint64_t published;
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
	uint32_t block_size; /* bytes of a verified block */
	uint64_t nblocks;    /* ceil(artifact_size / block_size) */
	/* SHA-256 of the artifact's first and last INDEX_EDGE bytes (or of
	 * all of it, if smaller): what the daemon compares with the served
	 * artifact before it trusts the index. */
	unsigned char first_edge[32], last_edge[32];
	struct index_section_desc sec[INDEX_NSECTIONS];
	char identity[INDEX_MAX_IDENTITY + 1]; /* "" if unknown */
	/* Minor 1: who verified the artifact this index was built from, as
	 * "openpgp:<fingerprint>", or "". Written by the daemon into its own
	 * cache; the open policy believes it only there, never from a
	 * published index (whose trust is its detached signature). */
	char signer[INDEX_MAX_SIGNER + 1];
	/* Minor 2: digests per page of BLOCKS (0: an older index without
	 * pages, whose BLOCKS only index_load_blocks reads), the number of
	 * pages, ceil(nblocks / bpage), and the SHA-256 of each page's
	 * stored bytes. index_write fills them in. */
	uint32_t bpage;
	uint32_t npages;
	unsigned char page_sha256[INDEX_MAX_PAGES][32];
	/* Minor 3.1: bound is false for an older header (no binding
	 * fields: bind is all empty); index_write writes bind as given. */
	bool bound;
	struct index_binding bind;
};

/* Called by index_load with the raw header (its first h->hlen bytes,
 * self-digest checked and parsed into h) before any other byte of the
 * index is read: 0 to go on, or -errno (with a reason in why) to refuse
 * the index. */
typedef int (*index_check_cb)(void *arg, const void *raw,
			      const struct index_header *h, char *why,
			      size_t whylen);

/* ---- writing ---- */

/* Member records, appended in archive order while indexing. */
struct index_members;
struct index_members *index_members_new(void);
void index_members_free(struct index_members *m);
/* Appends one tar entry. 0 or -ENOMEM. */
int index_members_add(struct index_members *m, const struct tar_entry *e);
uint64_t index_members_count(const struct index_members *m);

/* Where index_write finds the windows: read(arg, pt, buf) puts pt's
 * wlen window bytes into buf (0 or -errno). NULL: in pt->window. */
struct index_windows {
	int (*read)(void *arg, const struct seek_point *pt, unsigned char *buf);
	void *arg;
};

/*
 * Writes the index of an artifact to path, atomically (a temporary file
 * in the same directory, fsync, rename). hdr supplies artifact_size,
 * artifact_sha256, first_edge, last_edge, spacing, block_size,
 * identity and bind (all of it may be empty); the rest is filled in. blocks
 * holds the nblocks block digests. Every point with a window has its wdigest
 * set (or its window in memory when w is NULL, whose digest is then computed).
 * 0 or -errno.
 */
int index_write(const char *path, struct index_header *hdr,
		const struct index_members *m, const struct seek_index *si,
		const unsigned char *blocks, const struct index_windows *w);

/* Fetches the first and last min(INDEX_EDGE, size) bytes of f and puts
 * their SHA-256 digests into first and last. 0 or -errno. */
int index_edge_digests(struct fetch *f, unsigned char first[32],
		       unsigned char last[32]);

/* ---- reading ---- */

/* Parses and checks a header held in buf (at least its first hlen
 * bytes). 0, -EINVAL (bad magic, digest, bounds), -EPROTO (major),
 * -EFBIG (a section or count larger than an artifact of the header's
 * size can need: index_budget_check). */
int index_parse_header(const void *buf, size_t len, struct index_header *h);

/* Whether the header's MEMBERS, POINTS, nmembers and npoints fit what an
 * artifact of h->artifact_size can need (see index.c for the bounds):
 * 0, or -EFBIG with the section, its size and the bound in why. */
int index_budget_check(const struct index_header *h, char *why, size_t whylen);

/* The bare file name a URL or path names: its last path segment,
 * without query or fragment, into out (at most outlen - 1 bytes, cut
 * when longer); "" when it names none (a directory, a bare host). */
void index_url_basename(const char *url, char *out, size_t outlen);

/* Replays the raw (decompressed) MEMBERS section of the current major
 * version into t (index_load reads 2.x ones too). 0 or -errno. */
int index_parse_members(const void *raw, size_t len, uint64_t count,
			struct tree *t);
/* Parses the raw POINTS section into a new seek index (windows not
 * loaded: window NULL, woff/wdigest set). 0 or -errno. */
int index_parse_points(const void *raw, size_t len,
		       const struct index_header *h, struct seek_index **out);

/*
 * Loads the eager part of the index behind idx for the artifact of
 * artifact_size: header, MEMBERS into t, POINTS into *si, BLOCKS into
 * *blocks (malloc'd, h->nblocks * 32 bytes; the caller frees it). check
 * (may be NULL) sees the header before anything else is read. Checks
 * every digest and that the index describes an artifact of that size
 * (-ESTALE otherwise). On failure a one-line reason goes to err and
 * nothing is left to free. 0 or -errno.
 * blocks may be NULL: BLOCKS is then not read at all (one range request
 * for MEMBERS and POINTS only); the caller gets block digests with
 * index_load_page (h->bpage != 0) or index_load_blocks (any index).
 */
int index_load(struct fetch *idx, uint64_t artifact_size,
	       struct index_header *h, struct tree *t, struct seek_index **si,
	       unsigned char **blocks, index_check_cb check, void *check_arg,
	       char *err, size_t errlen);

/* The page of BLOCKS that holds block b's digest (h->bpage != 0). */
uint64_t index_page_of(const struct index_header *h, uint64_t b);

/*
 * Fetches page `page` of BLOCKS (one range request) into out, which has
 * room for h->bpage * 32 bytes, after checking it against the header's
 * page digest: the digests of blocks [page * bpage, min((page + 1) *
 * bpage, nblocks)), *n of them. 0, -EINVAL (no pages in this index, or
 * page out of range), -EBADMSG (digest mismatch) or the fetch's -errno.
 * Thread safe for distinct out buffers (fetch_range is).
 */
int index_load_page(struct fetch *idx, const struct index_header *h,
		    uint64_t page, unsigned char *out, uint64_t *n);

/* Fetches the whole BLOCKS section (any minor version) into *out
 * (malloc'd, h->nblocks * 32 bytes) after checking the section digest.
 * 0, -EBADMSG or -errno. */
int index_load_blocks(struct fetch *idx, const struct index_header *h,
		      unsigned char **out);

/*
 * The block digests of a 2.2 index, fetched a page at a time the first
 * time a block of that page is asked for (instead of all of BLOCKS at
 * mount): what a block store verifies against. idx is borrowed (free it
 * after index_digests_free); h is copied. NULL when the index has no
 * pages (h->bpage == 0: use index_load_blocks) or on ENOMEM.
 * Thread safe: callers that want one page wait for one fetch; no lock is
 * held during I/O; a failed load is not remembered (the next call
 * fetches again).
 */
struct index_digests;
struct index_digests *index_digests_new(struct fetch *idx,
					const struct index_header *h);
void index_digests_free(struct index_digests *d);
/* Block b's digest into out, waiting at most until deadline_ns
 * (CLOCK_MONOTONIC as fetch_now_ns; 0 = none). 0, -EINVAL (b >=
 * nblocks), -EBADMSG (the page does not match the header), -ETIMEDOUT,
 * -ENOMEM or the fetch's -errno. */
int index_digests_get(struct index_digests *d, uint64_t b, uint64_t deadline_ns,
		      unsigned char out[32]);
/* Bytes of digests held and page fetches that succeeded. */
void index_digests_stats(struct index_digests *d, uint64_t *bytes,
			 uint64_t *loads);

/* Fetches point i's window from idx into a new buffer after checking
 * its digest. 0 and *out (malloc'd, pts[i].wlen bytes), or -errno. */
int index_load_window(struct fetch *idx, const struct index_header *h,
		      const struct seek_point *pt, unsigned char **out);

#endif
