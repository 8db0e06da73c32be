/* SPDX-License-Identifier: MIT */
/*
 * tar.h - a streaming (push) tar reader that never copies member data.
 *
 * Formats: v7, ustar, GNU (././@LongLink names and link names, 'S' old
 * sparse with extension headers, base-256 numbers) and pax (x/g headers:
 * path, linkpath, size, mtime; GNU.sparse 0.0, 0.1 and 1.0). The caller
 * feeds the decompressed archive in pieces of any size; the parser calls
 * back once per member with its metadata and where its data lies in the
 * uncompressed stream. Data bytes are skipped, not buffered (the 1.0 sparse
 * map, which lives at the start of the data, is the one thing read from it).
 *
 * Names are normalised: leading "./" and "/" components are dropped, "//"
 * and "/./" fold, trailing "/" goes. A member whose name is empty after
 * that (other than the root directory "."), holds a NUL, has a ".."
 * component or a component longer than TAR_MAX_COMPONENT (NAME_MAX: the
 * kernel could never look it up) is skipped with a warning. Device nodes and FIFOs are skipped
 * with a warning; unknown types are read as regular files with a warning,
 * as GNU tar extracts them; GNU volume labels are skipped silently.
 *
 * Every field read from a header is bounded: names and pax records are
 * capped at TAR_MAX_NAME / TAR_MAX_PAX bytes; sizes must fit 2^62; anything
 * else is an error with the archive offset. A longer name skips its member
 * (with a warning naming its length); a longer extended header, a bigger
 * size or more than TAR_MAX_SPARSE segments stops the parse
 * (docs/limits.md has every message).
 *
 * Not thread safe: one parser per stream.
 * Never includes FUSE headers.
 */
#ifndef SFFS_TAR_H
#define SFFS_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAR_MAX_NAME 4096            /* longest path or link target */
#define TAR_MAX_COMPONENT 255        /* longest name component (NAME_MAX) */
#define TAR_MAX_PAX (1u << 20)       /* largest pax extended header */
#define TAR_MAX_SPARSE 65536         /* most sparse segments per member */
#define TAR_MAX_SIZE (UINT64_C(1) << 62)

enum tar_type { TAR_REG, TAR_DIR, TAR_SYMLINK, TAR_HARDLINK };

/* One data segment of a sparse file: 'len' bytes at logical offset 'off'.
 * Segments are stored one after the other in the member's data area. */
struct tar_sparse {
	uint64_t off;
	uint64_t len;
};

struct tar_entry {
	const char *path;      /* normalised; "" is the root directory */
	const char *link;      /* symlink target (verbatim) or hardlink target
				  (normalised path); NULL otherwise */
	enum tar_type type;
	uint32_t mode;         /* permission bits incl. suid/sgid/sticky (07777) */
	int64_t mtime;         /* seconds since the epoch */
	uint64_t size;         /* logical file size (sparse: the full size) */
	uint64_t data_off;     /* offset of the data in the uncompressed stream */
	uint64_t data_len;     /* bytes stored there (sparse: sum of segments) */
	const struct tar_sparse *sparse; /* NULL unless sparse */
	size_t nsparse;
	uint64_t header_off;   /* offset of the member's first header block */
};

struct tar_parser;

/* Called once per accepted member. The entry and its strings are valid only
 * during the call. Return 0 to go on, or -errno to stop parsing (returned by
 * tar_parser_feed). */
typedef int (*tar_entry_cb)(void *arg, const struct tar_entry *e);
/* Called for each skipped member or oddity; msg names the problem. */
typedef void (*tar_warn_cb)(void *arg, uint64_t off, const char *msg);

/* Returns NULL on allocation failure. warn may be NULL. */
struct tar_parser *tar_parser_new(tar_entry_cb entry, tar_warn_cb warn,
				  void *arg);
void tar_parser_free(struct tar_parser *p);

/*
 * Feeds the next len bytes of the uncompressed archive. Returns 0, or
 * -EINVAL / -EIO / -E2BIG / -ENOMEM on malformed or oversized input (then
 * tar_parser_error() says what and where, e.g. "bad header checksum at
 * offset 1536"), or the callback's error. After an error, feed nothing more.
 * Bytes after the end-of-archive marker are ignored.
 */
int tar_parser_feed(struct tar_parser *p, const void *data, size_t len);
/* Declares the end of input. Returns 0 if the archive was complete (an
 * end-of-archive marker, or a clean end at a header boundary - GNU tar
 * accepts a missing marker with a warning), -EIO if it ended inside a header
 * or member data. */
int tar_parser_finish(struct tar_parser *p);
/* The last error's message ("" if none). Owned by p. */
const char *tar_parser_error(const struct tar_parser *p);
/* Bytes consumed so far (offset in the uncompressed stream). */
uint64_t tar_parser_offset(const struct tar_parser *p);
/* True once a header block with a valid checksum has been read: the input
 * is a tar archive, even if a later limit or field stops the parse (so an
 * error is "not a tar archive" only while this is false). */
bool tar_parser_seen_header(const struct tar_parser *p);

#endif
